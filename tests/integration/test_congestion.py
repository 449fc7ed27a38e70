"""
A congested link loses nothing. When the path to the server stops taking
the daemon's bytes, the send queue fills past its mark and the bridges
wait (link_congested); libssh2's own small packets — above all the
confirmation of a channel the server opens for a new connection — are
still taken (docs/libssh2.md rules 1a/1b: a packet libssh2 cannot hand
over stays in its one send slot, and a confirmation left there loses its
connection). Here a relay between daemon and sshd stops carrying the
daemon's bytes (the other direction keeps flowing) while eight echo
streams fill the queue; a connection made then must work once the path
drains, the bridges must resume, and every echoed byte must come back
intact on the same session. (The library bug itself is pinned by the
readreply program of test_libssh2_contract.py: through the daemon it
needs the queue within a few bytes of its limit, which no test can
arrange reliably.)
"""

import hashlib
import os
import socket
import threading

from harness import connect, recv_exact

STREAMS = 8
STREAM_BYTES = 3 << 20


class OneWayRelay:
    """TCP relay on loopback for one connection at a time whose
    client-to-server direction can be paused (the server-to-client one
    keeps flowing): a path that stops taking the daemon's bytes."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(4)
        self.port = self.lsock.getsockname()[1]
        self.flowing = threading.Event()
        self.flowing.set()
        self.stop = threading.Event()
        self.socks = [self.lsock]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stop.is_set():
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            s = socket.create_connection(("127.0.0.1", self.target_port))
            self.socks += [c, s]
            threading.Thread(target=self._pump, args=(c, s, True),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(s, c, False),
                             daemon=True).start()

    def _pump(self, src, dst, pausable):
        while not self.stop.is_set():
            if pausable:
                self.flowing.wait()
            try:
                data = src.recv(65536)
                if not data:
                    dst.shutdown(socket.SHUT_WR)
                    return
                dst.sendall(data)
            except OSError:
                return

    def close(self):
        self.stop.set()
        self.flowing.set()
        for s in self.socks:
            try:
                s.close()
            except OSError:
                pass


def test_new_connection_while_the_link_is_congested(world):
    sshd = world.sshd("s")
    relay = OneWayRelay(sshd.port)
    world.on_cleanup(relay.close)
    kh = world.known_hosts(sshd.known_hosts_line(port=relay.port))
    srv = world.server_cfg(sshd, known_hosts=kh, port=relay.port,
                           keepalive="30s")
    up = world.bring_up(srv)
    d, rport = up.daemon, up.remote

    # Eight echo connections (open: one round trip each); then stop the
    # daemon's direction and pour data through them: the echoed bytes
    # pile up in the daemon's send queue.
    clients = [connect(rport, timeout=60) for _ in range(STREAMS)]
    for c in clients:
        c.sendall(b"hi\n")
        assert recv_exact(c, 3) == b"hi\n"
    relay.flowing.clear()
    payloads = [os.urandom(STREAM_BYTES) for _ in range(STREAMS)]
    for c, p in zip(clients, payloads):
        threading.Thread(target=c.sendall, args=(p,), daemon=True).start()
    # (Most of the way to the 256 KiB mark is enough: replies made then
    # found no room in the old design.)
    d.wait_status(lambda st: d.server("s1", st)["send_queue_bytes"] >=
                  192 * 1024, 30, "the daemon's send queue near its mark")

    # A new connection now: its channel is confirmed into the full queue.
    late = connect(rport, timeout=30)
    late.sendall(b"late hello\n")
    relay.flowing.set()
    assert recv_exact(late, 11, timeout=30) == b"late hello\n"
    late.close()
    for c, p in zip(clients, payloads):
        got = recv_exact(c, len(p), timeout=60)
        assert hashlib.sha256(got).digest() == hashlib.sha256(p).digest()
        c.close()
    assert d.server("s1")["connects"] == 1, "the session was replaced"
