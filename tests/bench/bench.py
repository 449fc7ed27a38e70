"""
make bench: tunnels side by side with OpenSSH's `ssh -R`, on one sshd, in
one run. Throughput is measured with iperf3 through the forwarded port in
each direction.

Run: /usr/bin/python3 tests/bench/bench.py [--seconds N] [--bin PATH]
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
import harness  # noqa: E402
from harness import alloc_port, wait_until  # noqa: E402

IPERF3 = "/usr/bin/iperf3"


def listening(port):
    """True if something listens on port, read from /proc (no connect:
    iperf3 would take a probe connection for a test client)."""
    for f in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(f) as fp:
            for line in fp.readlines()[1:]:
                cols = line.split()
                if cols[3] == "0A" and int(cols[1].split(":")[1], 16) == port:
                    return True
    return False


def iperf_server(world, port):
    """iperf3 server on 127.0.0.1:port (the local target of the tunnel)."""
    p = subprocess.Popen([IPERF3, "-s", "-B", "127.0.0.1", "-p", str(port)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    world.on_cleanup(lambda: harness.stop_popen(p))
    wait_until(lambda: listening(port), 10, "iperf3 server")
    return p


def iperf_run(port, seconds, reverse):
    """One iperf3 client run through the forwarded port; MiB/s received."""
    cmd = [IPERF3, "-c", "127.0.0.1", "-p", str(port), "-t", str(seconds),
           "-J", "-l", "128K"]
    if reverse:
        cmd.append("-R")
    out = subprocess.run(cmd, capture_output=True, text=True,
                         timeout=seconds + 30)
    doc = json.loads(out.stdout)
    if "error" in doc:
        raise RuntimeError("iperf3: %s" % doc["error"])
    bps = doc["end"]["sum_received"]["bits_per_second"]
    return bps / 8 / (1 << 20)


def ssh_forward(world, sshd, rport, lport, extra):
    """ssh -N -R rport -> lport (OpenSSH client), waits until it serves."""
    key = world.user_key
    kh = world.known_hosts(sshd)
    cmd = [harness.SSH, "-N", "-i", str(key.path), "-p", str(sshd.port),
           "-o", "UserKnownHostsFile=%s" % kh, "-o", "BatchMode=yes",
           "-o", "ExitOnForwardFailure=yes", "-o", "StrictHostKeyChecking=yes",
           "-R", "127.0.0.1:%d:127.0.0.1:%d" % (rport, lport)] + extra + \
          ["%s@127.0.0.1" % world.user]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    world.on_cleanup(lambda: harness.stop_popen(p))
    wait_until(lambda: listening(rport), 10, "ssh -R listener")
    return p


def tunnels_forward(world, sshd, rport, lport):
    """The daemon with one tunnel rport -> lport, waits until it is up."""
    cfg, _ = world.write_config(
        {"s1": world.server_cfg(sshd)},
        [{"name": "bench", "server": "s1", "remote": rport,
          "local": lport}])
    d = world.daemon(cfg)
    d.wait_tunnel("bench", "up", 10)
    return d


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--bin", default=str(harness.REPO / "build" / "tunnels"))
    args = ap.parse_args()
    os.environ["TUNNELS_BIN"] = args.bin

    world = harness.World("bench")
    failed = True
    try:
        sshd = world.sshd("bench")
        lport = alloc_port()
        iperf_server(world, lport)
        rows = []
        variants = [
            ("ssh -R (default cipher)", lambda r: ssh_forward(
                world, sshd, r, lport, [])),
            ("ssh -R -c aes128-ctr", lambda r: ssh_forward(
                world, sshd, r, lport, ["-c", "aes128-ctr",
                                        "-m", "hmac-sha2-256"])),
            ("tunnels", lambda r: tunnels_forward(
                world, sshd, r, lport)),
        ]
        for name, start in variants:
            rport = alloc_port()
            print("measuring %s ..." % name, flush=True)
            start(rport)
            up = iperf_run(rport, args.seconds, reverse=False)
            down = iperf_run(rport, args.seconds, reverse=True)
            rows.append((name, up, down))
        print("\nthroughput through one forward, iperf3 %ds each, MiB/s "
              "(%s)" % (args.seconds, time.strftime("%Y-%m-%d")))
        print("%-26s %14s %14s" % ("", "upload", "download"))
        base = rows[0]
        for name, up, down in rows:
            print("%-26s %8.1f (%4.2fx) %8.1f (%4.2fx)" % (
                name, up, up / base[1], down, down / base[2]))
        print("upload = remote client -> local service; download = the "
              "reverse; ratios vs ssh -R default")
        failed = False
    finally:
        world.close(failed)


if __name__ == "__main__":
    main()
