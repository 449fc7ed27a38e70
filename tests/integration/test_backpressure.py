"""
Backpressure (DESIGN §5.5): a side that stops reading must stop the other
side, with memory per connection bounded, and every byte must still arrive
once it reads again.
"""

import hashlib
import os
import select
import socket
import time

import pytest

import apps
from faults import rss_bytes
from harness import REPO, connect, recv_until_eof, wait_until

MiB = 1 << 20
TOTAL = 64 * MiB
# Everything that may legitimately hold bytes in flight: socket buffers on
# both loopback hops, sshd's channel buffers, libssh2's 2 MiB window and
# our bounded buffers. Far below the 64 MiB the writer wants to push.
IN_FLIGHT_MAX = 24 * MiB
# Daemon RSS growth allowed while a connection is stalled.
RSS_GROWTH_MAX = 12 * MiB


class CountingSource(apps.App):
    """Sends TOTAL random bytes, counting what the kernel accepted so far."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.sent = 0
        self.digest = None

    def handle(self, c, n):
        h = hashlib.sha256()
        left = TOTAL
        while left:
            chunk = os.urandom(min(left, 256 * 1024))
            h.update(chunk)
            c.sendall(chunk)
            self.sent += len(chunk)
            left -= len(chunk)
        self.digest = h.hexdigest()
        c.shutdown(socket.SHUT_WR)


@pytest.fixture(autouse=True)
def release_build(monkeypatch):
    """Memory is measured on the release build: ASan keeps freed memory in
    quarantine, so its RSS grows with churn even when use is bounded."""
    monkeypatch.setenv("TUNNELS_BIN", str(REPO / "build" / "tunnels"))


def start(world, app):
    up = world.bring_up(app=app)
    return up.daemon, up.remote


def settled(read_count, quiet=1.0, timeout=30.0, what="writer to stall"):
    """Wait until read_count() stops growing for `quiet` seconds."""
    last = [read_count(), time.monotonic()]

    def stalled():
        v = read_count()
        now = time.monotonic()
        if v != last[0]:
            last[0], last[1] = v, now
            return False
        return now - last[1] >= quiet
    wait_until(stalled, timeout, what)
    return last[0]


def test_slow_local_reader_stops_the_remote_client(world):
    sink = world.app(apps.GatedSink(gate_open=False))
    world.on_cleanup(sink.gate.set)     # never leave its thread waiting
    d, rport = start(world, sink)
    base = rss_bytes(d.pid)
    s = connect(rport, timeout=30)
    s.setblocking(False)
    h = hashlib.sha256()
    sent = [0]
    data = os.urandom(TOTAL)

    def push():
        """Send as much as the path accepts right now."""
        while sent[0] < TOTAL:
            try:
                n = s.send(data[sent[0]:sent[0] + 256 * 1024])
            except BlockingIOError:
                break
            sent[0] += n
        return sent[0]

    def pushed():
        select.select([], [s], [], 0.05)
        return push()
    stalled_at = settled(pushed, what="the remote client to be stopped")
    assert stalled_at < IN_FLIGHT_MAX, \
        "%d bytes accepted while the local app reads nothing" % stalled_at
    grown = rss_bytes(d.pid) - base
    print("remote client stopped after %d bytes; daemon RSS +%d" %
          (stalled_at, grown))
    assert grown < RSS_GROWTH_MAX, "daemon RSS grew by %d bytes" % grown

    sink.gate.set()
    s.setblocking(True)
    s.settimeout(60)
    s.sendall(data[sent[0]:])
    s.shutdown(socket.SHUT_WR)
    h.update(data)
    reply = recv_until_eof(s, timeout=60)
    s.close()
    assert reply == b"%d %s\n" % (TOTAL, h.hexdigest().encode())


def test_slow_remote_reader_stops_the_local_service(world):
    src = world.app(CountingSource())
    d, rport = start(world, src)
    base = rss_bytes(d.pid)
    s = connect(rport, timeout=30)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    wait_until(lambda: src.sent > 0, 10, "the source to start sending")
    stalled_at = settled(lambda: src.sent,
                         what="the local source to be stopped")
    assert stalled_at < IN_FLIGHT_MAX, \
        "local source pushed %d bytes while nobody reads" % stalled_at
    grown = rss_bytes(d.pid) - base
    print("local source stopped after %d bytes; daemon RSS +%d" %
          (stalled_at, grown))
    assert grown < RSS_GROWTH_MAX, "daemon RSS grew by %d bytes" % grown

    h = hashlib.sha256()
    n = recv_until_eof(s, timeout=60, hasher=h)
    s.close()
    wait_until(lambda: src.digest, 10, "the source to finish")
    assert (n, h.hexdigest()) == (TOTAL, src.digest)
