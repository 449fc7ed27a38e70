"""
The WAN section: `ssh -R` and tunnels reach sshd through delay_relay (a
userspace relay that delays each direction by RTT/2, no bandwidth limit:
this kernel has no netem), at 0, 50 and 150 ms RTT (WAN_RTTS="0 50 150"
overrides; WAN_ROUNDS=N the rounds). Per RTT and side, interleaved
rounds of:

  upload    32 MiB from a client of sshd's remote port to the home app,
            timed from the app's greeting (the path is open end to end)
            to the app's byte count coming back: the data plus one RTT.
  download  32 MiB from the home app to the client, timed from the
            client's request to EOF: the data plus one RTT.
  small     one small HTTP request (nginx, 612 bytes) on a new connection
            (a new forwarded channel), median of N: two RTTs at best.

Memory (at 50 ms, or the middle RTT run): ten concurrent 32 MiB uploads
into a home app that accepts and never reads; the client process's RSS
growth (VmRSS after the uploads stalled minus before; stalled = no byte
accepted for STALL_S, bounded by a deadline).

Expected today: both sides capped by the 2 MiB SSH channel window per
round trip (upload: the client's receive window; download: sshd's).
At 0 ms the relay's own cost is measured against a direct connection.

WAN_SERVER="key=value ..." adds server keys to the daemon's config (e.g.
"max_receive_window=32MiB max_session_memory=128MiB": a larger ceiling).
"""

import os
import selectors
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

from harness import REPO, WaitTimeout, alloc_port, stop_popen

import origins
import report
import wan_apps
from sides import (SSH_DEFAULT, cpu_seconds, one_tunnel, start_ssh,
                   start_tunnels, status_kib, stop_tree)

SECTION = "wan"
HERE = Path(__file__).resolve().parent
SIZE = 32 << 20
RTTS_MS = (0, 50, 150)
MEM_RTT_MS = 50
MEM_CONNS = 10
STALL_S = 2.0           # no byte accepted for this long: stalled
MEM_DEADLINE_S = 30.0
WINDOW = 2 << 20        # LIBSSH2_CHANNEL_WINDOW_DEFAULT and OpenSSH's
MIB = 1 << 20


# ---------------------------------------------------------------------------
# The relay and the home apps


def relay_binary(world):
    """delay_relay, built from its source into the build dir when missing
    or older than the source (a test tool: no Makefile rule needed)."""
    src = HERE / "delay_relay.c"
    out = REPO / "build" / "bench" / "delay_relay"
    if not out.exists() or out.stat().st_mtime < src.stat().st_mtime:
        out.parent.mkdir(parents=True, exist_ok=True)
        r = subprocess.run(["cc", "-O2", "-std=c11", "-D_GNU_SOURCE",
                            "-Wall", "-Wextra", "-Werror", "-o", str(out),
                            str(src)], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("building delay_relay: %s" % r.stderr)
    return str(out)


def read_line(proc, what, timeout=10.0):
    """The first stdout line of a helper process we started (deadline)."""
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    ready = sel.select(timeout)
    sel.close()
    if not ready:
        raise WaitTimeout("%s printed nothing within %.0fs" % (what, timeout))
    line = proc.stdout.readline().decode()
    if not line.strip():
        raise AssertionError("%s exited (rc %s)" % (what, proc.poll()))
    return line


class Relay:
    """delay_relay in front of sshd with a one-way delay of rtt_ms / 2."""

    def __init__(self, world, target_port, rtt_ms):
        self.rtt_ms = rtt_ms
        self.proc = subprocess.Popen(
            [relay_binary(world), str(target_port), str(rtt_ms * 500)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
        world.on_cleanup(self.stop)
        self.port = int(read_line(self.proc, "delay_relay"))

    def cpu(self):
        """CPU seconds the relay used so far."""
        return cpu_seconds(self.proc.pid)

    def stop(self):
        """End the relay."""
        if self.proc is not None:
            stop_popen(self.proc)
            self.proc.stdout.close()
            self.proc = None


class Apps:
    """wan_apps.py in its own process: the bulk app and the stall app."""

    def __init__(self, world):
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "wan_apps.py")],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
        world.on_cleanup(self.stop)
        self.bulk, self.stall = (int(x) for x in
                                 read_line(self.proc, "wan_apps").split())

    def stop(self):
        """End the apps (and every connection the stall app holds)."""
        if self.proc is not None:
            stop_popen(self.proc)
            self.proc.stdout.close()
            self.proc = None


# ---------------------------------------------------------------------------
# The client side: what a user of the remote port does


def recv_exact(s, n):
    """n bytes from s (AssertionError at an early EOF)."""
    out = b""
    while len(out) < n:
        d = s.recv(n - len(out))
        if not d:
            raise AssertionError("EOF after %d of %d bytes" % (len(out), n))
        out += d
    return out


def bulk(port, upload, timeout):
    """One 32 MiB transfer through port (see the module doc); seconds."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        if recv_exact(s, 1) != b"R":
            raise AssertionError("the bulk app did not greet")
        t0 = time.monotonic()
        if upload:
            s.sendall(b"U")
            chunk = b"\1" * MIB
            for _ in range(SIZE // MIB):
                s.sendall(chunk)
            s.shutdown(socket.SHUT_WR)
            (got,) = struct.unpack(">Q", recv_exact(s, 8))
        else:
            s.sendall(b"D" + struct.pack(">Q", SIZE))
            got = wan_apps.drain(s)
        t = time.monotonic() - t0
    if got != SIZE:
        raise AssertionError("%s moved %d of %d bytes" % (
            "upload" if upload else "download", got, SIZE))
    return t


def small_request(port, timeout):
    """One GET of the small file on a new connection; milliseconds."""
    req = ("GET /%s HTTP/1.1\r\nHost: home\r\nConnection: close\r\n\r\n" %
           origins.SMALL_FILE).encode()
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(req)
        with s.makefile("rb") as f:
            resp = f.read()           # to EOF (Connection: close)
    t = (time.monotonic() - t0) * 1e3
    if not resp.startswith(b"HTTP/1.1 200") or \
            len(resp) < origins.SMALL_SIZE:
        raise AssertionError("small request: %r" % resp[:80])
    return t


def stalled_uploads(port, n, size, stall_s, deadline_s):
    """n connections each sending size bytes at once (non-blocking) until
    none accepts a byte for stall_s (or deadline_s); returns (bytes the
    path accepted, seconds, connections the path closed, the sockets)."""
    sel = selectors.DefaultSelector()
    socks, left = [], {}
    chunk = b"\2" * (256 << 10)
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.setblocking(False)
        socks.append(s)
        left[s] = size
        sel.register(s, selectors.EVENT_WRITE)
    t0 = last = time.monotonic()
    sent = closed = 0
    while left and time.monotonic() - last < stall_s and \
            time.monotonic() - t0 < deadline_s:
        for key, _ in sel.select(0.1):
            s = key.fileobj
            try:
                k = s.send(chunk[:left[s]])
            except BlockingIOError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                closed += 1             # the tunnel's side closed it
                k, left[s] = 0, 0
            sent += k
            last = time.monotonic()
            left[s] -= k
            if left[s] == 0:
                sel.unregister(s)
                del left[s]
    sel.close()
    return sent, time.monotonic() - t0, closed, socks


# ---------------------------------------------------------------------------
# The section


class Side:
    """One client under test (ssh -R or the daemon) with its remote ports:
    bulk app and nginx; pid is the process measured."""

    def __init__(self, key, label, pid, ports, stop):
        self.key, self.label, self.pid = key, label, pid
        self.bulk, self.http = ports
        self.stop = stop


def start_side(ctx, key, app_ports, port, kh, tag=""):
    """ssh -R ("ssh") or the daemon ("tunnels", "direct") with two
    forwards (app_ports: the bulk app's and nginx's) through sshd port
    `port` (a relay, or sshd itself)."""
    w, sshd = ctx.world, ctx.sshd
    r1, r2 = alloc_port(), alloc_port()
    name = "wan-%s-%d%s" % (key, port, tag)
    fwd = [(r1, app_ports[0]), (r2, app_ports[1])]
    if key == "ssh":
        p = start_ssh(w, sshd, fwd, SSH_DEFAULT[1], name=name, port=port,
                      known_hosts=kh)
        return Side(key, "ssh -R", p.pid, (r1, r2), lambda: stop_tree(p))
    d = start_tunnels(w, sshd, [
        one_tunnel(r, "127.0.0.1:%d" % lp, "t%d" % i)
        for i, (r, lp) in enumerate(fwd)], name=name, port=port,
        known_hosts=kh, **server_keys())
    d.wait_tunnel("t0", "up", 20)
    d.wait_tunnel("t1", "up", 20)
    return Side(key, "tunnels", d.pid, (r1, r2), d.teardown)


def server_keys():
    """The server keys WAN_SERVER adds ("key=value ..."), as a dict."""
    return dict(kv.split("=", 1) for kv in
                os.environ.get("WAN_SERVER", "").split())


def median(xs):
    """The median of a non-empty list."""
    xs = sorted(xs)
    m = len(xs) // 2
    return xs[m] if len(xs) % 2 else (xs[m - 1] + xs[m]) / 2


def measure_rtt(ctx, rtt, sides, relay, rounds, n_small):
    """Interleaved rounds over the sides at one RTT: per side key the
    samples of upload/download MiB/s, small-request ms, and CPU seconds
    per GiB of the client process (and of the relay, when one runs)."""
    timeout = 60 + rtt * 0.5
    out = {s.key: {"upload": [], "download": [], "small_ms": [],
                   "cpu_s_per_gib": [], "relay_cpu_s_per_gib": []}
           for s in sides}
    for s in sides:                     # warm-up, not counted
        small_request(s.http, timeout)
    for i in range(rounds):
        for s in sides:
            for way in ("upload", "download"):
                c0 = cpu_seconds(s.pid)
                r0 = relay.cpu() if relay and s.key != "direct" else 0.0
                t = bulk(s.bulk, way == "upload", timeout)
                out[s.key][way].append(SIZE / MIB / t)
                out[s.key]["cpu_s_per_gib"].append(
                    (cpu_seconds(s.pid) - c0) * (1 << 30) / SIZE)
                if relay and s.key != "direct":
                    out[s.key]["relay_cpu_s_per_gib"].append(
                        (relay.cpu() - r0) * (1 << 30) / SIZE)
            out[s.key]["small_ms"] += [small_request(s.http, timeout)
                                       for _ in range(n_small)]
            ctx.log("  %3d ms round %d %-12s upload %6.1f  download %6.1f "
                    "MiB/s  small %6.1f ms" % (
                        rtt, i + 1, s.key, out[s.key]["upload"][-1],
                        out[s.key]["download"][-1],
                        median(out[s.key]["small_ms"][-n_small:])))
    return out


def measure_memory(ctx, key, port, kh):
    """RSS growth of a fresh ssh -R / daemon (key) through sshd port
    `port` with MEM_CONNS stalled uploads into a stall app of its own."""
    apps = Apps(ctx.world)
    side = None
    try:
        side = start_side(ctx, key, (apps.stall, apps.stall), port, kh,
                          tag="-mem")
        rss0 = status_kib(side.pid, "VmRSS")
        sent, secs, closed, socks = stalled_uploads(side.bulk, MEM_CONNS, SIZE,
                                            STALL_S, MEM_DEADLINE_S)
        rss1 = status_kib(side.pid, "VmRSS")
        hwm = status_kib(side.pid, "VmHWM")
        for s in socks:
            s.close()
    finally:
        if side is not None:
            side.stop()
        apps.stop()
    res = {"rss_before_kib": rss0, "rss_after_kib": rss1, "hwm_kib": hwm,
           "growth_mib": (rss1 - rss0) / 1024, "accepted_mib": sent / MIB,
           "closed": closed, "seconds": round(secs, 1)}
    ctx.log("  memory %-8s RSS %d -> %d KiB (+%.1f MiB), the path took "
            "%.1f MiB of %d x 32 MiB in %.1f s, closed %d" % (
                key, rss0, rss1, res["growth_mib"], res["accepted_mib"],
                MEM_CONNS, secs, closed))
    return res


def rtts():
    """The RTTs to run (WAN_RTTS env: space- or comma-separated ms)."""
    text = os.environ.get("WAN_RTTS", "").replace(",", " ").split()
    return tuple(int(x) for x in text) if text else RTTS_MS


def run(ctx):
    """The section: per RTT a relay, ssh -R and the daemon through it (at
    0 ms also the daemon straight to sshd, for the relay's overhead);
    rows vs ssh -R; memory at MEM_RTT_MS."""
    w, sshd = ctx.world, ctx.sshd
    apps = Apps(w)
    nginx = origins.nginx_origin(w)
    rounds = int(os.environ.get("WAN_ROUNDS") or (1 if ctx.quick else 3))
    n_small = 5 if ctx.quick else 9
    res, mem = {}, {}
    mem_rtt = MEM_RTT_MS if MEM_RTT_MS in rtts() else \
        rtts()[len(rtts()) // 2]
    for rtt in rtts():
        relay = Relay(w, sshd.port, rtt)
        kh = w.known_hosts(sshd.known_hosts_line(port=relay.port),
                           name="known_hosts_wan_%d" % rtt)
        sides = []
        try:
            for k in ("ssh", "tunnels"):
                sides.append(start_side(ctx, k, (apps.bulk, nginx),
                                        relay.port, kh))
            if rtt == 0:
                kd = w.known_hosts(sshd, name="known_hosts_wan_direct")
                sides.append(start_side(ctx, "direct", (apps.bulk, nginx),
                                        sshd.port, kd))
            res[rtt] = measure_rtt(ctx, rtt, sides, relay, rounds, n_small)
            for s in sides:
                s.stop()
            sides = []
            if rtt == mem_rtt:
                mem = {"rtt_ms": rtt}
                for k in ("ssh", "tunnels"):
                    mem[k] = measure_memory(ctx, k, relay.port, kh)
        finally:
            for s in sides:
                s.stop()
            relay.stop()
    med = {rtt: {k: {m: median(v) for m, v in per.items() if v}
                 for k, per in r.items()} for rtt, r in res.items()}
    ctx.raw[SECTION] = {"median": med, "samples": res, "memory": mem,
                        "size_mib": SIZE // MIB, "rounds": rounds,
                        "small_n": n_small}
    return rows(med, mem, rounds, n_small)


def rows(med, mem, rounds, n_small):
    """Upload, download and small-request rows per RTT, then memory."""
    out = []
    for rtt in sorted(med):
        m = med[rtt]
        ceiling = WINDOW / MIB / (rtt / 1e3) if rtt else None
        note = None
        if rtt == min(med):
            note = ("32 MiB per transfer through delay_relay (RTT/2 each "
                    "way, no bandwidth limit); median of %d rounds; small "
                    "= one GET on a new connection, median of %d per "
                    "round" % (rounds, n_small))
        for way in ("upload", "download"):
            n = note if way == "upload" else None
            if ceiling and way == "upload":
                n = "2 MiB window per RTT caps both at %.1f MiB/s" % ceiling
            out.append(report.row(
                SECTION, "%s 32 MiB, %d ms RTT" % (way, rtt), "MiB/s",
                report.HIGHER, m["ssh"][way], m["tunnels"][way], note=n))
        out.append(report.row(
            SECTION, "small request, %d ms RTT" % rtt, "ms", report.LOWER,
            m["ssh"]["small_ms"], m["tunnels"]["small_ms"]))
        if "direct" in m:
            d, t = m["direct"], m["tunnels"]
            out[-1]["note"] = (
                "relay at 0 ms vs the daemon straight to sshd: upload "
                "%.0f vs %.0f MiB/s, download %.0f vs %.0f, small %.2f vs "
                "%.2f ms; relay CPU %.2f s per GiB (the daemon's: %.2f)" % (
                    t["upload"], d["upload"], t["download"], d["download"],
                    t["small_ms"], d["small_ms"],
                    t.get("relay_cpu_s_per_gib", float("nan")),
                    t["cpu_s_per_gib"]))
    if mem:
        out.append(report.row(
            SECTION, "RSS growth, %d stalled 32 MiB uploads, %d ms RTT" % (
                MEM_CONNS, mem["rtt_ms"]), "MiB", report.LOWER,
            mem["ssh"]["growth_mib"], mem["tunnels"]["growth_mib"],
            note="the home app accepts and never reads; VmRSS of ssh -R / "
            "the daemon after no byte moved for %.0f s, minus before; the "
            "path took %.0f MiB (ssh -R) and %.0f MiB (tunnels); "
            "connections closed by the client side: %d and %d" % (
                STALL_S, mem["ssh"]["accepted_mib"],
                mem["tunnels"]["accepted_mib"], mem["ssh"]["closed"],
                mem["tunnels"]["closed"])))
    return out
