"""
The engine's contract with libssh2 (docs/libssh2.md), checked against the
libssh2 we link and a real sshd: each test runs one small C program from
tests/libssh2/ (built by `make libssh2-tests`, which the integration target
runs) and checks its verdict, plus what sshd logged where that matters.

A failure here means libssh2 changed one of the behaviours the engine is
built around: read the program's comment and the matching section of
docs/libssh2.md before changing the engine or the test.
"""

import os
import select
import socket
import subprocess
import threading

import pytest

import harness
import servers

BIN_DIR = harness.REPO / "build" / "libssh2-tests"
_built = False


def program(name):
    """Path of a contract program; builds them all once if needed."""
    global _built
    path = BIN_DIR / name
    if not _built:
        r = subprocess.run(["make", "-s", "libssh2-tests"], cwd=harness.REPO,
                           capture_output=True, text=True)
        assert r.returncode == 0, "make libssh2-tests failed:\n%s%s" % (
            r.stdout, r.stderr)
        _built = True
    assert os.access(path, os.X_OK), "%s was not built" % path
    return str(path)


def run(world, name, port, *args, timeout=30):
    """Run a program to completion; return its stdout (facts) on success."""
    cmd = [program(name), str(port), world.user, world.user_key.path]
    cmd += [str(a) for a in args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    out = r.stdout + r.stderr
    assert r.returncode == 0 and out.rstrip().endswith("ok"), \
        "%s failed (rc %d):\n%s" % (name, r.returncode, out)
    print(out)      # the facts, shown with pytest -rA
    return out


class Relay:
    """
    A one-connection TCP relay in front of sshd that can break the link
    the ways a network does: fin (close both sides), rst (reset our side),
    stall (stop forwarding; the kernel keeps ACKing).
    """

    def __init__(self, target):
        self.target = target
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(1)
        self.port = self.ls.getsockname()[1]
        self.mode = "fwd"
        self.socks = []
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        c, _ = self.ls.accept()
        u = socket.create_connection(("127.0.0.1", self.target))
        self.socks = [c, u]
        peer = {c: u, u: c}
        while self.mode == "fwd":
            r, _, _ = select.select([c, u], [], [], 0.05)
            for s in r:
                try:
                    d = s.recv(65536)
                except OSError:
                    d = b""
                if not d:
                    self.mode = "closed"
                    break
                peer[s].sendall(d)

    def break_link(self, mode):
        self.mode = mode
        self.t.join(5)
        c, u = self.socks
        if mode == "rst":
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                         b"\x01\x00\x00\x00\x00\x00\x00\x00")
        if mode in ("fin", "rst"):
            c.close()
            u.close()

    def close(self):
        for s in self.socks + [self.ls]:
            s.close()


@pytest.fixture
def sshd(world):
    return world.sshd("sshd1")


def test_send_slot_is_single(world, sshd):
    """Rule 1: while one packet holds the slot, every other sender gets
    EAGAIN (with OUTBOUND still set) and nothing is sent or lost except a
    keepalive; the owner's repeat completes it."""
    run(world, "slot", sshd.port)


def test_stack_built_packets_need_the_same_frame(world, sshd):
    """Rule 2: send_eof's packet lives on the caller's stack: a repeat
    from another depth never completes, another channel's send_eof from
    the same frame completes the first and loses its own EOF."""
    run(world, "stack", sshd.port)


def test_replies_made_while_reading_hold_the_slot(world, sshd):
    """Rule 1 (reads): a refused internal reply blocks the read-first
    call's repeat forever; a refused open confirmation loses the
    forwarded connection (libssh2 bug)."""
    run(world, "readreply", sshd.port)


def test_keepalive(world, sshd):
    """Rule 3: want_reply answers stay queued and poison the next
    forward_listen_ex (ghost listener); keepalive_send hides EAGAIN."""
    out = run(world, "keepalive", sshd.port, harness.alloc_port(),
              harness.alloc_port())
    assert "ghost" in out


def test_one_listen_and_one_open_in_flight(world, sshd):
    """Rule 4: forward_listen_ex and channel opens keep their state in
    the session."""
    run(world, "inflight", sshd.port, harness.alloc_port(),
        harness.alloc_port())


@pytest.mark.parametrize("mode", ["fin", "rst", "stall"])
def test_dead_transport_codes(world, sshd, mode):
    """Rule 5: the codes a dead or stalled link produces."""
    relay = Relay(sshd.port)
    world.on_cleanup(relay.close)
    p = subprocess.Popen([program("deadlink"), str(relay.port), world.user,
                          world.user_key.path, mode],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    world.on_cleanup(lambda: harness.stop_popen(p))
    line = p.stdout.readline()
    assert line.startswith("fact: libssh2 "), line + p.stdout.read()
    line = p.stdout.readline()
    assert line.strip() == "READY", line + p.stdout.read()
    relay.break_link(mode)
    p.stdin.write("go\n")
    p.stdin.flush()
    out, _ = p.communicate(timeout=20)
    assert p.returncode == 0 and out.rstrip().endswith("ok"), out
    print(out)


def test_window_and_write_size(world, sshd):
    """Rule 6: fixed 2 MiB receive window, adjust2 works on accepted
    channels, 32 700-byte writes."""
    run(world, "window", sshd.port)


def test_rekeys(world):
    """Rules 7 and 10: under frequent server re-keys a send hook that
    takes every packet never leaves one pending; each re-key leaks the
    previous host-key blob."""
    srv = world.sshd("rekey", extra=["RekeyLimit 1M"])
    out = run(world, "rekey", srv.port)
    blobs = int(out.split("hostkey_blobs ")[1].split()[0])
    kex = srv.log_text().count("SSH2_MSG_NEWKEYS received")
    assert kex >= 5, "only %d key exchanges" % kex
    assert blobs == kex, "%d host-key blobs live after %d key exchanges" % (
        blobs, kex)


class UnknownTypeServer:
    """An asyncssh server that answers tcpip-forward after sending N
    packets of message type 200."""

    def __init__(self, world, count):
        import asyncio
        import warnings
        with warnings.catch_warnings():
            # asyncssh imports ciphers cryptography deprecates.
            warnings.simplefilter("ignore")
            import asyncssh
        self.count = count
        self.port = harness.alloc_port()
        keys = world.dir / "asyncssh_authorized_keys"
        keys.write_text(world.user_key.pub_line + "\n")
        self.loop = asyncio.new_event_loop()
        outer = self

        class Server(asyncssh.SSHServer):
            def connection_made(self, conn):
                self.conn = conn

            def server_requested(self, host, port):
                for _ in range(outer.count):
                    self.conn.send_packet(200, b"\0" * 1000)
                return True

        async def start():
            return await asyncssh.create_server(
                Server, "127.0.0.1", self.port,
                server_host_keys=[asyncssh.generate_private_key(
                    "ssh-ed25519")],
                authorized_client_keys=str(keys))
        self.server = self.loop.run_until_complete(start())
        self.thread = threading.Thread(target=self.loop.run_forever,
                                       daemon=True)
        self.thread.start()

    def close(self):
        self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def test_unknown_message_types_are_kept(world):
    """Rule 7: unknown message types stay in the packet list."""
    srv = UnknownTypeServer(world, 200)
    world.on_cleanup(srv.close)
    run(world, "unknown", srv.port, 200)


class QuietSshd(harness.Sshd):
    """sshd at its default LogLevel (INFO), as servers in the field run."""

    def _write_config(self):
        super()._write_config()
        self.config.write_text(self.config.read_text().replace(
            "LogLevel DEBUG1", "LogLevel INFO"))


def quiet_sshd(world, name, extra=()):
    d = QuietSshd(world, name, [world.user_key], list(extra))
    world.on_cleanup(d.stop)
    return d.start()


def probe_log(world, srv, kind, count, expect):
    """Run `count` probes of `kind` on one session; return what sshd
    logged for that session (once its process has exited)."""
    harness.wait_until(lambda: not srv.session_pids(), 5,
                       "sshd's readiness-check connection to end")
    before = len(srv.log_text())
    run(world, "probe", srv.port, kind, count, expect)
    harness.wait_until(lambda: not srv.session_pids(), 5,
                       "the probing session's sshd process to exit")
    return srv.log_text()[before:]


@pytest.mark.parametrize("maxsessions", [None, 0])
def test_probe_channel_of_unknown_type(world, maxsessions):
    """Rule 9: an unknown channel type is refused, quietly (nothing at
    INFO beyond the connection's own lines), with or without
    MaxSessions 0."""
    extra = [] if maxsessions is None else ["MaxSessions %d" % maxsessions]
    srv = quiet_sshd(world, "quiet", extra)
    log = probe_log(world, srv, "unknown", 20, "refused")
    lines = [l for l in log.splitlines() if not l.startswith("===")]
    assert any("Accepted publickey" in l for l in lines), log
    noise = [l for l in lines if "Accepted publickey" not in l]
    print("\n".join(lines))
    assert noise == [], "sshd logged at INFO:\n" + "\n".join(noise)


def test_probe_session_channel(world):
    """Rule 9: what today's probe (a session channel) costs: opened and
    freed by default, refused with MaxSessions 0, and logged there."""
    srv = quiet_sshd(world, "dflt")
    log = probe_log(world, srv, "session", 5, "opened")
    print(log)
    srv0 = quiet_sshd(world, "max0", ["MaxSessions 0"])
    log = probe_log(world, srv0, "session", 5, "refused")
    print(log)
    assert log.count("no more sessions") >= 5, log


def test_probe_channel_of_unknown_type_dropbear(world):
    """Rule 9 on Dropbear: refused as an unknown type, nothing logged."""
    if os.geteuid() != 0:
        pytest.fail("needs root (a mount namespace for authorized_keys)")
    db = servers.dropbear(world)
    out = run(world, "probe", db.port, "unknown", 20, "refused")
    assert "unknown channel type" in out
    harness.wait_until(lambda: "Exit (" in db.log.read_text(), 5,
                       "dropbear to log the session's end")
    log = db.log.read_text()
    print(log)
    noise = [l for l in log.splitlines() if not any(k in l for k in (
        "Not backgrounding", "Child connection", "auth succeeded",
        "Exit (", "Exit before auth"))]
    assert noise == [], log


def _echo_bulk(port, size, results, i):
    """Push `size` bytes through the echo tunnel while reading them back;
    results[i] = (bytes back, matched)."""
    import hashlib
    data = os.urandom(size)
    s = harness.connect(port, timeout=30)
    t = threading.Thread(target=s.sendall, args=(data,), daemon=True)
    t.start()
    back = harness.recv_exact(s, size, timeout=60)
    t.join(10)
    s.close()
    results[i] = (len(back), hashlib.sha256(back).digest() ==
                  hashlib.sha256(data).digest())


def test_daemon_under_frequent_rekeys(world, echo, monkeypatch):
    """Rule 10 through the real engine: four bulk echo connections (and
    new connections while they run) over one session whose server re-keys
    every MiB: every byte comes back, the session is never lost.

    The release build: under ASan, LeakSanitizer reports libssh2's 51-byte
    host-key blob per re-key at exit (rule 7; test_rekeys pins it)."""
    monkeypatch.setenv("TUNNELS_BIN", harness.release_bin())
    srv = world.sshd("rekey", extra=["RekeyLimit 1M"])
    up = world.bring_up(srv, app=echo)
    d, rport = up.daemon, up.remote
    results = [None] * 4
    threads = [threading.Thread(target=_echo_bulk,
                                args=(rport, 6 << 20, results, i))
               for i in range(4)]
    for t in threads:
        t.start()
    opened = 0
    while any(t.is_alive() for t in threads) and opened < 20:
        assert harness.echo_ok(rport, timeout=30)
        opened += 1
    for t in threads:
        t.join(90)
    assert results == [(6 << 20, True)] * 4, results
    kex = srv.log_text().count("SSH2_MSG_NEWKEYS received")
    print("key exchanges: %d, connections opened meanwhile: %d" % (kex,
                                                                     opened))
    assert kex >= 20, "only %d key exchanges" % kex
    assert d.server("s1")["connects"] == 1, d.server("s1")
    d.assert_clean_log()


@pytest.mark.parametrize("extra,cipher,mac", [
    ([], "chacha20-poly1305@openssh.com", "-"),
    (["Ciphers chacha20-poly1305@openssh.com"],
     "chacha20-poly1305@openssh.com", "-"),
    (["Ciphers aes256-gcm@openssh.com"], "aes256-gcm@openssh.com", "-"),
    (["Ciphers aes128-ctr", "MACs hmac-sha2-512-etm@openssh.com"],
     "aes128-ctr", "hmac-sha2-512-etm@openssh.com"),
], ids=["default", "chacha20", "aes-gcm", "etm-only"])
def test_methods(world, extra, cipher, mac):
    """Rule 11: default negotiation, and the AEAD ciphers and EtM MACs
    hardened servers insist on carry data."""
    srv = world.sshd("m", extra=extra)
    run(world, "methods", srv.port, cipher, mac)
