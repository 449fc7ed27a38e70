"""
Receive-window autotuning (src/window.c, issue 13) through a delay relay
of ~50 ms round trip between the daemon and sshd (tests/bench/
delay_relay.c; this kernel has no netem):

  - a bulk upload arrives intact, the channel's window grows past
    libssh2's 2 MiB base and the server's rtt_ms is measured;
  - uploads into a local app that never reads never grow a window, hold
    no budget, keep the daemon's memory bounded and are not shed; every
    byte arrives once the app reads;
  - max_receive_window: 0 turns it off;
  - a reload changes max_receive_window of the running session (no
    reconnect: s1's connects and sshd session process stay, the tunnel
    stays up): raised from 0, a new upload's window grows past 2 MiB;
    lowered under a grown window (its upload paused at the reload, then
    resumed), status never shows the tunnel's window above the new
    ceiling, what the server may still send falls within it, and the
    upload arrives intact.

No timing is asserted: only what status and the bytes say.
"""

import hashlib
import os
import selectors
import socket
import subprocess
import threading

import pytest

import apps
from faults import rss_bytes
from harness import REPO, alloc_port, connect, stop_popen, wait_until

MiB = 1 << 20
BASE = 2 * MiB          # LIBSSH2_CHANNEL_WINDOW_DEFAULT
RTT_MS = 50
STALLED_CONNS = 10
STALLED_SIZE = 32 * MiB
RSS_GROWTH_MAX = 64 * MiB
BLOCK = os.urandom(MiB)


def payload(i):
    """Block i of an upload: random, and different for every i."""
    return i.to_bytes(8, "big") + BLOCK[8:]


class Relay:
    """delay_relay in front of a port, rtt_ms / 2 each way."""

    def __init__(self, world, target_port, rtt_ms):
        src = REPO / "tests" / "bench" / "delay_relay.c"
        exe = world.dir / "delay_relay"
        subprocess.run(["cc", "-O2", "-std=c11", "-D_GNU_SOURCE", "-Wall",
                        "-Wextra", "-Werror", "-o", str(exe), str(src)],
                       check=True)
        self.proc = subprocess.Popen([str(exe), str(target_port),
                                      str(rtt_ms * 500)],
                                     stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE)
        world.on_cleanup(self.stop)
        line = self.proc.stdout.readline().decode()
        if not line.strip():
            raise AssertionError("delay_relay exited (rc %s)" %
                                 self.proc.poll())
        self.port = int(line)

    def stop(self):
        if self.proc is not None:
            stop_popen(self.proc)
            self.proc.stdout.close()
            self.proc = None


def start(world, sink, **server):
    """sshd behind the relay, and the daemon with one tunnel to sink.
    Returns (daemon, remote port, rewrite): rewrite(**server) writes the
    config again with these server settings instead (then d.reload())."""
    sshd = world.sshd("sshd1")
    relay = Relay(world, sshd.port, RTT_MS)
    kh = world.known_hosts(sshd.known_hosts_line(port=relay.port))
    rport = alloc_port()

    def rewrite(**over):
        srv = world.server_cfg(sshd, known_hosts=kh, port=relay.port,
                               **over)
        return world.write_config(
            {"s1": srv},
            [{"name": "t1", "server": "s1", "remote": rport,
              "local": sink.local}])[0]
    d = world.daemon(rewrite(**server))
    d.wait_tunnel("t1", "up", 20)
    return d, rport, rewrite


def reply_of(s):
    """The sink's "<bytes> <sha256>" line."""
    line = b""
    while not line.endswith(b"\n"):
        b = s.recv(256)
        if not b:
            raise AssertionError("EOF before the sink's reply: %r" % line)
        line += b
    size, digest = line.split()
    return int(size), digest.decode()


def upload_then_check(d, rport, sink, blocks):
    """Send blocks MiB; once the sink has them all (the connection still
    open), return the tunnel's status; then check the sink's reply."""
    h = hashlib.sha256()
    had = sink.received
    s = connect(rport, timeout=60)
    for i in range(blocks):
        p = payload(i)
        h.update(p)
        s.sendall(p)
    wait_until(lambda: sink.received >= had + blocks * MiB, 120,
               "the sink to receive %d MiB" % blocks)
    st = d.status()
    s.shutdown(socket.SHUT_WR)
    size, digest = reply_of(s)
    s.close()
    assert size == blocks * MiB
    assert digest == h.hexdigest()
    return st


def test_upload_grows_the_window(world):
    sink = world.app(apps.GatedSink())
    d, rport, _ = start(world, sink)
    st = upload_then_check(d, rport, sink, 64)
    t = d.find(st, "tunnels", "t1")
    srv = d.find(st, "servers", "s1")
    assert srv["rtt_ms"] is not None and srv["rtt_ms"] >= 40, srv
    assert t["active_connections"] == 1, t
    assert t["receive_window_max"] > BASE, t
    assert t["receive_window_bytes"] == t["receive_window_max"], t
    budget = st["receive_window_budget"]
    assert budget["limit"] == 64 * MiB, budget
    assert 0 < budget["used"] <= budget["limit"], budget
    # Gone with the connection: the budget is given back.
    st = d.wait_status(lambda st: d.find(st, "tunnels", "t1")
                       ["active_connections"] == 0, 20, "connection gone")
    assert st["receive_window_budget"]["used"] == 0
    assert d.find(st, "tunnels", "t1")["receive_window_bytes"] == 0


def stalled_uploads(rport, n, size):
    """n connections sending size bytes each, non-blocking, until no byte
    is accepted for a while; returns the sockets and what each sent."""
    sel = selectors.DefaultSelector()
    socks = [connect(rport, timeout=30) for _ in range(n)]
    sent = {}
    for s in socks:
        s.setblocking(False)
        sent[s] = 0
        sel.register(s, selectors.EVENT_WRITE)
    quiet = 0
    # A path that takes nothing for 2 s in a row (20 selects) is full.
    while sel.get_map() and quiet < 20:
        events = sel.select(0.1)
        moved = False
        for key, _ in events:
            s = key.fileobj
            i, off = divmod(sent[s], MiB)
            try:
                k = s.send(payload(i)[off:])
            except BlockingIOError:
                continue
            sent[s] += k
            moved = moved or k > 0
            if sent[s] >= size:
                sel.unregister(s)
        quiet = 0 if moved else quiet + 1
    sel.close()
    return socks, sent


def finish_uploads(socks, sent, size):
    """Send the rest of every upload, blocking, then check every reply."""
    digests = {}
    for s in socks:
        s.setblocking(True)
        s.settimeout(120)
        h = hashlib.sha256()
        for i in range(size // MiB):
            h.update(payload(i))
        # Each socket is drained by its own handler thread: sendall the
        # rest of one while the others' buffers are already being read.
        while sent[s] < size:
            i, off = divmod(sent[s], MiB)
            s.sendall(payload(i)[off:])
            sent[s] += MiB - off
        s.shutdown(socket.SHUT_WR)
        digests[s] = h.hexdigest()
    for s in socks:
        got, digest = reply_of(s)
        assert got == size
        assert digest == digests[s]
        s.close()


@pytest.fixture
def release_bin(monkeypatch):
    """Memory is measured on the release build (ASan's quarantine grows
    RSS with churn even when use is bounded)."""
    monkeypatch.setenv("TUNNELS_BIN", str(REPO / "build" / "tunnels"))


def test_stalled_app_never_grows_a_window(world, release_bin):
    sink = world.app(apps.GatedSink(gate_open=False))
    world.on_cleanup(sink.gate.set)     # never leave its threads waiting
    d, rport, _ = start(world, sink)
    before = rss_bytes(d.pid)
    socks, sent = stalled_uploads(rport, STALLED_CONNS, STALLED_SIZE)
    world.on_cleanup(lambda: [s.close() for s in socks])
    st = d.status()
    t = d.find(st, "tunnels", "t1")
    grown = rss_bytes(d.pid) - before
    assert t["active_connections"] == STALLED_CONNS, t
    assert t["shed_connections"] == 0, t
    assert t["receive_window_max"] == BASE, t
    assert t["receive_window_bytes"] == STALLED_CONNS * BASE, t
    assert st["receive_window_budget"]["used"] == 0, st
    assert d.find(st, "servers", "s1")["receive_window_used"] == 0
    assert grown <= RSS_GROWTH_MAX, "RSS grew by %d MiB" % (grown >> 20)
    # Nothing is lost: the app reads, every upload completes intact.
    sink.gate.set()
    finish_uploads(socks, sent, STALLED_SIZE)
    st = d.status()
    assert d.find(st, "tunnels", "t1")["shed_connections"] == 0


def test_max_receive_window_zero_turns_it_off(world):
    sink = world.app(apps.GatedSink())
    d, rport, _ = start(world, sink, max_receive_window=0)
    st = upload_then_check(d, rport, sink, 48)
    t = d.find(st, "tunnels", "t1")
    assert d.find(st, "servers", "s1")["rtt_ms"] >= 40
    assert t["receive_window_max"] == BASE, t
    assert st["receive_window_budget"]["used"] == 0, st


def same_session(d, before, pid):
    """The session and tunnel t1 of status `before` are still the ones
    running: no reconnect (s1's connects, its sshd session process), the
    tunnel up all along (its since_s did not restart)."""
    st = d.status()
    srv, t = d.server("s1", st), d.tunnel("t1", st)
    assert srv["connects"] == 1 and srv["state"] == "up", srv
    assert srv["server_pid"] == pid, srv
    assert t["state"] == "up", t
    assert t["since_s"] >= d.tunnel("t1", before)["since_s"], t
    return st


def server_pid(d):
    """s1's sshd session process, once learned over exec."""
    st = d.wait_status(lambda st: isinstance(
        d.server("s1", st).get("server_pid"), int), 20,
        "server s1 to learn its server-side session pid")
    return d.server("s1", st)["server_pid"]


def test_reload_raises_the_ceiling_of_a_running_session(world):
    sink = world.app(apps.GatedSink())
    d, rport, rewrite = start(world, sink, max_receive_window=0)
    pid = server_pid(d)
    st = upload_then_check(d, rport, sink, 48)
    assert d.find(st, "servers", "s1")["rtt_ms"] >= 40
    assert d.tunnel("t1", st)["receive_window_max"] == BASE, st
    before = d.wait_status(lambda st: d.tunnel("t1", st)
                           ["active_connections"] == 0, 20,
                           "connection gone")

    rewrite(max_receive_window="16MiB")
    d.reload()
    same_session(d, before, pid)
    st = upload_then_check(d, rport, sink, 48)
    t = d.tunnel("t1", st)
    assert BASE < t["receive_window_max"] <= 16 * MiB, t
    assert t["total_connections"] == 2, t   # the same forward counted on
    assert st["receive_window_budget"]["used"] > 0, st
    same_session(d, before, pid)


class Upload(threading.Thread):
    """One connection to port sending payload blocks until finish(),
    pausing while `go` is clear (then `idle` is set); its sha256 and size
    are what the sink must reply."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.sock = connect(port, timeout=60)
        self.hash = hashlib.sha256()
        self.sent = 0
        self.error = None
        self.stop = threading.Event()
        self.go = threading.Event()
        self.idle = threading.Event()
        self.go.set()

    def run(self):
        try:
            while not self.stop.is_set():
                if not self.go.is_set():
                    self.idle.set()
                    self.go.wait(120)
                    self.idle.clear()
                    continue
                p = payload(self.sent // MiB)
                self.sock.sendall(p)
                self.hash.update(p)
                self.sent += len(p)
            self.sock.shutdown(socket.SHUT_WR)
        except OSError as e:
            self.error = e

    def abort(self):
        """Stop sending (cleanup: the thread ends, paused or not)."""
        self.stop.set()
        self.go.set()

    def finish(self):
        """Stop sending, half-close; returns (bytes sent, sha256)."""
        self.abort()
        self.join(120)
        assert not self.is_alive(), "the upload did not finish sending"
        assert self.error is None, self.error
        return self.sent, self.hash.hexdigest()


def test_reload_lowers_the_ceiling_of_a_grown_window(world):
    low = 4 * MiB
    sink = world.app(apps.GatedSink())
    d, rport, rewrite = start(world, sink)
    pid = server_pid(d)
    up = Upload(rport)
    world.on_cleanup(up.abort)
    world.on_cleanup(up.sock.close)
    up.start()
    before = d.wait_status(lambda st: d.tunnel("t1", st)
                           ["receive_window_max"] > low, 60,
                           "the upload's window to grow past 4 MiB")
    # Paused at the reload, with all it sent read: no read of the
    # channel applies the new ceiling before status shows it.
    up.go.clear()
    wait_until(lambda: up.idle.is_set() and sink.received >= up.sent, 60,
               "the paused upload to arrive")
    st = d.status()
    assert d.tunnel("t1", st)["receive_window_max"] > low, st
    assert d.server("s1", st)["receive_window_used"] > low - BASE, st

    rewrite(max_receive_window="4MiB")
    samples = [d.reload()]
    up.go.set()
    mark = sink.received

    def sample(done):
        samples.append(d.status())
        return done()
    # 32 MiB more under the new ceiling, then the rest of the upload.
    wait_until(lambda: sample(lambda: sink.received >= mark + 32 * MiB),
               120, "32 MiB more to arrive after the reload")
    sent, digest = up.finish()
    wait_until(lambda: sample(lambda: sink.received >= sent), 120,
               "the whole upload to arrive")
    # What the server may still send is within the new ceiling too: the
    # window granted beyond the base is charged to the budget.
    used = d.server("s1", samples[-1])["receive_window_used"]
    assert used <= low - BASE, samples[-1]
    assert reply_of(up.sock) == (sent, digest)
    up.sock.close()
    over = [d.tunnel("t1", st) for st in samples
            if d.tunnel("t1", st)["receive_window_bytes"] > low]
    assert not over, "over the new ceiling after the reload: %s" % over[:3]
    assert all(d.tunnel("t1", st)["active_connections"] == 1
               for st in samples)
    same_session(d, before, pid)
