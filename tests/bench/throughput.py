"""
Bulk throughput through one forward, each direction, with iperf3 (one TCP
stream, 128 KiB writes): `ssh -R` with its default cipher, `ssh -R -c
aes128-ctr -m hmac-sha2-256` (what libssh2 1.10 negotiated), and tunnels
with its default (libssh2 1.11.1: chacha20-poly1305 with this sshd). The
ciphers each side negotiated are read from their own logs and reported.
Each variant gets a 1 s warm-up run that is not counted; the figures are
medians of interleaved rounds.
"""

import json
import re
import subprocess
import time

from harness import alloc_port

import origins
import report
import harness
from sides import (SSH_AES, SSH_DEFAULT, cpu_seconds, one_tunnel, ssh_args,
                   start_ssh, start_tunnels, stop_tree, total_cpu)

SECTION = "throughput"


def iperf_run(port, seconds, reverse):
    """One iperf3 client run through port; (MiB/s, bytes) the receiver
    got.
    reverse=False: the client sends (upload: from the server's side of
    the forward to the local service); True: the local service sends."""
    cmd = [origins.IPERF3, "-c", "127.0.0.1", "-p", str(port),
           "-t", str(seconds), "-J", "-l", "128K"]
    if reverse:
        cmd.append("-R")
    # iperf3's server runs one test at a time and finishes the previous
    # one only when its control connection's close has come through the
    # forward: "busy" then means "not yet", so try again a few times.
    for attempt in range(20):
        out = subprocess.run(cmd, capture_output=True, text=True,
                             timeout=seconds + 30)
        try:
            doc = json.loads(out.stdout)
        except ValueError:
            raise RuntimeError("iperf3 rc %d: %s%s" % (out.returncode,
                                                       out.stdout[-500:],
                                                       out.stderr[-500:]))
        if "busy" not in doc.get("error", ""):
            break
        time.sleep(0.25)
    if "error" in doc:
        raise RuntimeError("iperf3: %s" % doc["error"])
    got = doc["end"]["sum_received"]
    return got["bits_per_second"] / 8 / (1 << 20), got["bytes"]


def ssh_cipher(world, sshd, extra=()):
    """The cipher `ssh` negotiates with sshd (from `ssh -v ... true`)."""
    args = [a for a in ssh_args(world, sshd, [], extra) if a != "-N"]
    out = subprocess.run([harness.SSH, "-v"] + args + ["true"],
                         capture_output=True, text=True, timeout=30)
    m = re.search(r"kex: server->client cipher: (\S+)", out.stderr)
    return m.group(1) if m else "?"


def tunnels_cipher(daemon):
    """The key exchange and cipher the daemon logged when it connected."""
    m = re.search(r"connected to \S+ as \S+ \(([^,]+), ([^)]+)\)",
                  daemon.log_text())
    return m.group(2) if m else "?"


def median(xs):
    """The median of a non-empty list."""
    xs = sorted(xs)
    m = len(xs) // 2
    return xs[m] if len(xs) % 2 else (xs[m - 1] + xs[m]) / 2


def run(ctx):
    """The section: all three forwards up at once (idle ones cost
    nothing), then `rounds` interleaved rounds (each variant upload and
    download in turn, so drifts of the machine hit all alike); the
    median per variant and direction; rows against both ssh variants."""
    w, sshd = ctx.world, ctx.sshd
    lport = origins.iperf_server(w)
    variants = []            # (key, label, remote port, client pid)
    procs = []
    for key, (label, extra) in (("ssh_default", SSH_DEFAULT),
                                ("ssh_aes128", SSH_AES)):
        rport = alloc_port()
        procs.append(start_ssh(w, sshd, [(rport, lport)], extra, name=key))
        variants.append((key, label, rport, procs[-1].pid))
    rport = alloc_port()
    daemon = start_tunnels(w, sshd, [one_tunnel(rport, "127.0.0.1:%d" %
                                                lport)], name="tun-bulk")
    daemon.wait_tunnel("t1", "up", 10)
    variants.append(("tunnels", "tunnels", rport, daemon.pid))
    ciphers = {"ssh_default": ssh_cipher(w, sshd),
               "ssh_aes128": ssh_cipher(w, sshd, SSH_AES[1]),
               "tunnels": tunnels_cipher(daemon)}
    ctx.log("  negotiated ciphers: " + ", ".join(
        "%s %s" % kv for kv in sorted(ciphers.items())))

    try:
        samples = measure(ctx, variants)
    finally:
        for p in procs:
            stop_tree(p)
        daemon.teardown()
    res = {key: {what: median(xs) for what, xs in per.items()}
           for key, per in samples.items()}
    ctx.raw[SECTION] = {"median": res, "samples": samples,
                        "seconds": ctx.tp_seconds, "rounds": ctx.tp_rounds,
                        "stream": "1 TCP stream, 128 KiB writes",
                        "ciphers": ciphers}
    return rows(ctx, res, ciphers)


def measure(ctx, variants):
    """Warm-up, then the interleaved rounds. Samples per variant key:
    MiB/s ("upload", "download") and CPU seconds per GiB moved of the
    client process ("cpu_*") and of sshd's sessions ("sshd_cpu_*")."""
    keys = ("upload", "download", "cpu_upload", "cpu_download",
            "sshd_cpu_upload", "sshd_cpu_download")
    samples = {v[0]: {k: [] for k in keys} for v in variants}
    for v in variants:
        iperf_run(v[2], 1, reverse=False)       # warm-up, not counted
    for i in range(ctx.tp_rounds):
        for key, label, port, pid in variants:
            for way in ("upload", "download"):
                sessions = ctx.sshd.session_pids()
                c0, s0 = cpu_seconds(pid), total_cpu(sessions)
                rate, nbytes = iperf_run(port, ctx.tp_seconds,
                                         reverse=way == "download")
                c1, s1 = cpu_seconds(pid), total_cpu(sessions)
                gib = nbytes / (1 << 30)
                samples[key][way].append(rate)
                samples[key]["cpu_" + way].append((c1 - c0) / gib)
                samples[key]["sshd_cpu_" + way].append((s1 - s0) / gib)
            ctx.log("  round %d %-38s upload %6.1f  download %6.1f MiB/s"
                    % (i + 1, label, samples[key]["upload"][-1],
                       samples[key]["download"][-1]))
    return samples


def rows(ctx, res, ciphers):
    """Upload and download rows against both ssh variants."""
    out = []
    for d in ("upload", "download"):
        note = ("upload = the server-side client sends to the local "
                "service; download = the reverse; iperf3, 1 stream, median "
                "of %d runs of %d s; negotiated: ssh -R %s, tunnels %s" % (
                    ctx.tp_rounds, ctx.tp_seconds, ciphers["ssh_default"],
                    ciphers["tunnels"])) \
            if d == "upload" else None
        out.append(report.row(SECTION, "%s vs ssh default" % d, "MiB/s",
                              report.HIGHER, res["ssh_default"][d],
                              res["tunnels"][d], "ssh -R", note=note))
        out.append(report.row(SECTION, "%s vs ssh aes128-ctr" % d, "MiB/s",
                              report.HIGHER, res["ssh_aes128"][d],
                              res["tunnels"][d], "ssh -R aes128-ctr"))
    for d in ("upload", "download"):
        out.append(report.row(
            SECTION, "client CPU per GiB, %s, vs ssh default" % d, "CPU s",
            report.LOWER, res["ssh_default"]["cpu_" + d],
            res["tunnels"]["cpu_" + d], "ssh -R",
            note="CPU time of `ssh -R` / the daemon per GiB moved; sshd's "
            "side per GiB: %.2f s with ssh -R, %.2f s with tunnels" % (
                res["ssh_default"]["sshd_cpu_" + d],
                res["tunnels"]["sshd_cpu_" + d])))
    return out
