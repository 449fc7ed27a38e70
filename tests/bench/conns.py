"""
10 000 concurrent connections through one forward, to a local epoll echo
server. The client (in this process, epoll) opens them with at most
PENDING_MAX handshakes in flight (sshd's forward listener has a backlog of
128), each sends a short unique line and reads its echo, and keeps the
connection open. Once all are open at the same time, every connection
sends a second line and reads its echo (all at once), then all close.
Reported: errors of every kind, the daemon's (or ssh's) peak RSS (VmHWM),
the time to open them all and the time of the all-at-once round; then,
while all of them are still held, bulk throughput (iperf3, BULK_S each
way) through a second forward of the same SSH connection: what a busy
connection gets next to thousands of idle ones (sshd, too, looks at every
channel of the connection on each turn of its loop).
"""

import errno
import os
import selectors
import socket
import time

from harness import alloc_port

import origins
import report
from throughput import iperf_run
from sides import (SSH_DEFAULT, cpu_seconds, one_tunnel, start_ssh,
                   start_tunnels, status_kib, stop_tree, total_cpu)

SECTION = "concurrent connections"
PENDING_MAX = 100
STALL_S = 30.0       # no progress for this long: the rest count as timeouts
BULK_S = 3           # each iperf3 run while all are held


class Conn:
    """One client connection and its progress."""

    __slots__ = ("sock", "idx", "want", "got", "round")

    def __init__(self, sock, idx):
        self.sock = sock
        self.idx = idx
        self.want = b""
        self.got = bytearray()
        self.round = 0


def line(idx, rnd):
    """The unique line connection idx sends in round rnd."""
    return b"%d.%d %s\n" % (idx, rnd, os.urandom(6).hex().encode())


class Client:
    """Holds n connections to 127.0.0.1:port (see the module doc)."""

    def __init__(self, port, n):
        self.port = port
        self.n = n
        self.sel = selectors.EpollSelector()
        self.errors = {"connect": 0, "reset": 0, "eof": 0, "mismatch": 0,
                       "timeout": 0}
        self.held = []
        self.round2_ok = 0

    def _fail(self, c, kind):
        """Count an error and drop the connection."""
        self.errors[kind] += 1
        try:
            self.sel.unregister(c.sock)
        except (KeyError, ValueError):
            pass
        c.sock.close()

    def _send(self, c, rnd):
        """Send the round's line (short: one send on a fresh socket)."""
        c.want = line(c.idx, rnd)
        c.got = bytearray()
        c.round = rnd
        c.sock.send(c.want)

    def _readable(self, c):
        """Read the echo; returns True once the whole line came back."""
        try:
            data = c.sock.recv(4096)
        except BlockingIOError:
            return False
        except OSError:
            self._fail(c, "reset")
            return None
        if not data:
            self._fail(c, "eof")
            return None
        c.got += data
        if len(c.got) < len(c.want):
            return False
        if bytes(c.got) != c.want:
            self._fail(c, "mismatch")
            return None
        return True

    def _open_one(self, idx):
        """Start a non-blocking connect; the Conn, or None on failure."""
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        err = s.connect_ex(("127.0.0.1", self.port))
        if err not in (0, errno.EINPROGRESS):
            s.close()
            self.errors["connect"] += 1
            return None
        c = Conn(s, idx)
        self.sel.register(s, selectors.EVENT_WRITE, c)
        return c

    def _drain(self, pending, on_event, refill=None):
        """Select until nothing is pending (after refill(pending), if
        given, had its chance to add more) or STALL_S passes without
        progress (then the rest count as timeouts)."""
        last = time.monotonic()
        while True:
            if refill is not None:
                refill(pending)
            if not pending:
                return
            events = self.sel.select(1.0)
            if events:
                last = time.monotonic()
            elif time.monotonic() - last > STALL_S:
                for c in list(pending.values()):
                    self._fail(c, "timeout")
                pending.clear()
                return
            for key, mask in events:
                on_event(key.data, mask, pending)

    def open_all(self):
        """Phase 1: open n connections, one echo each, keep them open."""
        nxt = [0]

        def refill(pending):
            """Start connects up to PENDING_MAX in flight."""
            while nxt[0] < self.n and len(pending) < PENDING_MAX:
                c = self._open_one(nxt[0])
                nxt[0] += 1
                if c is not None:
                    pending[c.sock.fileno()] = c

        def on_event(c, mask, pending):
            """Connect finished: send line 1; readable: check echo 1."""
            if c.round == 0:                    # connect finished
                err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    pending.pop(c.sock.fileno())
                    self._fail(c, "connect")
                    return
                try:
                    self._send(c, 1)
                except OSError:
                    pending.pop(c.sock.fileno())
                    self._fail(c, "reset")
                    return
                self.sel.modify(c.sock, selectors.EVENT_READ, c)
                return
            fd = c.sock.fileno()
            done = self._readable(c)
            if done is None:
                pending.pop(fd)
            elif done:
                pending.pop(fd)
                self.sel.unregister(c.sock)
                self.held.append(c)

        self._drain({}, on_event, refill)

    def round_all(self):
        """Phase 2: every held connection sends a line at once and reads
        its echo."""
        pending = {}
        for c in self.held:
            try:
                self._send(c, 2)
            except OSError:
                self._fail(c, "reset")
                continue
            self.sel.register(c.sock, selectors.EVENT_READ, c)
            pending[c.sock.fileno()] = c

        def on_event(c, mask, pending):
            """Readable: check echo 2."""
            fd = c.sock.fileno()
            done = self._readable(c)
            if done is None:
                pending.pop(fd)
            elif done:
                pending.pop(fd)
                self.sel.unregister(c.sock)
                self.round2_ok += 1
        self._drain(pending, on_event)

    def close_all(self):
        """Close every connection still open."""
        for c in self.held:
            if c.sock.fileno() >= 0:
                c.sock.close()
        self.held = []
        self.sel.close()


def hold(port, n, held_then=None):
    """Run the three phases, calling held_then() after the round while
    all are still open; the figures."""
    cl = Client(port, n)
    t0 = time.monotonic()
    try:
        cl.open_all()
        t1 = time.monotonic()
        held = len(cl.held)
        cl.round_all()
        t2 = time.monotonic()
        if held_then is not None:
            held_then()
    finally:
        cl.close_all()
    return {"n": n, "held_at_once": held, "round2_ok": cl.round2_ok,
            "errors": dict(cl.errors), "errors_total": sum(
                cl.errors.values()), "open_s": t1 - t0,
            "round2_s": t2 - t1}


def measure(ctx, pid, port, bulk_port, name):
    """Warm up (100 connections), run, read the process's RSS figures
    and the CPU time of the client process, of sshd's sessions and of
    this benchmark's own client (up to the end of the round); then the
    bulk runs while all are held."""
    ctx.log("  %s: %d connections" % (name, ctx.conns))
    hold(port, 100)
    rss0 = status_kib(pid, "VmRSS")
    sessions = ctx.sshd.session_pids()
    cpu0 = (cpu_seconds(pid), total_cpu(sessions), time.process_time())
    cpu1, bulk, peak = [], {}, []

    def held_then():
        """The CPU and memory figures end here; then the bulk runs."""
        cpu1.extend((cpu_seconds(pid), total_cpu(sessions),
                     time.process_time()))
        peak.append(status_kib(pid, "VmHWM"))
        for way in ("upload", "download"):
            bulk[way] = iperf_run(bulk_port, BULK_S,
                                  reverse=way == "download")[0]
    res = hold(port, ctx.conns, held_then)
    res["bulk_mib_s"] = bulk
    res["cpu_s"], res["sshd_cpu_s"], res["bench_client_cpu_s"] = (
        b - a for a, b in zip(cpu0, cpu1))
    res["rss_before_kib"] = rss0
    res["rss_peak_kib"] = peak[0]
    ctx.log("    held %d at once, round 2 ok %d, errors %s, open %.1fs, "
            "round 2 %.1fs, RSS peak %.1f MiB, CPU s: client %.1f, sshd "
            "%.1f, bench client %.1f" % (
                res["held_at_once"], res["round2_ok"], res["errors"],
                res["open_s"], res["round2_s"], res["rss_peak_kib"] / 1024,
                res["cpu_s"], res["sshd_cpu_s"], res["bench_client_cpu_s"]))
    ctx.log("    bulk while all held: upload %.1f, download %.1f MiB/s" % (
        res["bulk_mib_s"]["upload"], res["bulk_mib_s"]["download"]))
    return res


def run(ctx):
    """The section: ssh -R (default cipher) vs tunnels."""
    w, sshd = ctx.world, ctx.sshd
    echo = origins.EchoOrigin(w).start()
    iperf = origins.iperf_server(w)

    rport, bport = alloc_port(), alloc_port()
    p = start_ssh(w, sshd, [(rport, echo.port), (bport, iperf)],
                  SSH_DEFAULT[1], name="ssh-10k")
    try:
        ssh = measure(ctx, p.pid, rport, bport, SSH_DEFAULT[0])
    finally:
        stop_tree(p)

    rport, bport = alloc_port(), alloc_port()
    # More connections than a tunnel's default max_connections (4096).
    t = dict(one_tunnel(rport, echo.local), max_connections=ctx.conns + 16)
    d = start_tunnels(w, sshd, [t, one_tunnel(bport, "127.0.0.1:%d" % iperf,
                                              "bulk")], name="tun-10k")
    d.wait_tunnel("t1", "up", 10)
    d.wait_tunnel("bulk", "up", 10)
    try:
        tun = measure(ctx, d.pid, rport, bport, "tunnels")
        # Every bridge must end once its client closed.
        st = d.wait_status(lambda st: d.tunnel("t1", st)
                           ["active_connections"] == 0, 60,
                           "all bridged connections to end")
        tun["after"] = d.tunnel("t1", st)
        tun["rss_after_kib"] = status_kib(d.pid, "VmRSS")
    finally:
        d.teardown()
    echo.stop()
    ctx.raw[SECTION] = {"ssh": ssh, "tunnels": tun,
                        "pending_max": PENDING_MAX}

    n = ctx.conns
    return [
        report.row(SECTION, "connections held at once, echoed twice (of "
                   "%d)" % n, "count", report.HIGHER, ssh["round2_ok"],
                   tun["round2_ok"]),
        report.row(SECTION, "errors (connect/reset/eof/mismatch/timeout)",
                   "count", report.LOWER, ssh["errors_total"],
                   tun["errors_total"]),
        report.row(SECTION, "client process RSS peak (VmHWM)", "MiB",
                   report.LOWER, ssh["rss_peak_kib"] / 1024,
                   tun["rss_peak_kib"] / 1024, "ssh -R",
                   note="the process on the tunnel's side of the link: "
                   "`ssh -R` or the tunnels daemon"),
        report.row(SECTION, "client process CPU for the whole test",
                   "CPU s", report.LOWER, ssh["cpu_s"], tun["cpu_s"],
                   note="sshd's session meanwhile: %.1f CPU s with ssh -R, "
                   "%.1f with tunnels" % (ssh["sshd_cpu_s"],
                                          tun["sshd_cpu_s"])),
        report.row(SECTION, "time to open all (≤%d handshakes in flight)"
                   % PENDING_MAX, "s", report.LOWER, ssh["open_s"],
                   tun["open_s"]),
        report.row(SECTION, "all-at-once echo round over %d" % n, "s",
                   report.LOWER, ssh["round2_s"], tun["round2_s"],
                   note="libssh2 looks a channel up by walking the list of "
                   "all of them for every packet, and reads a channel by "
                   "walking every queued packet (most of the daemon's time "
                   "in this round)"),
    ] + [report.row(SECTION, "%s while all %d are held" % (way, n),
                    "MiB/s", report.HIGHER, ssh["bulk_mib_s"][way],
                    tun["bulk_mib_s"][way], "ssh -R",
                    note="iperf3, %d s, through a second forward of the "
                    "same SSH connection; sshd's loop visits every channel "
                    "on each turn" % BULK_S if way == "upload" else None)
         for way in ("upload", "download")]
