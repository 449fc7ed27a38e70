"""
The daemon's side of the systemd notification protocol (DESIGN §5.6), with
a fake systemd: a datagram socket the test binds with SO_PASSCRED, given to
the daemon as NOTIFY_SOCKET, with WATCHDOG_USEC and WATCHDOG_PID (set to
the daemon's own pid, as systemd does) in its environment.

Checked: READY=1 only once every tunnel came up or failed its first attempt
(and then the forward is usable); STATUS= on state changes; WATCHDOG=1 at
half WATCHDOG_USEC, and none when the watchdog is not meant for this
process; RELOADING=1 + MONOTONIC_USEC then READY=1 around SIGHUP (and
`tunnels reload`), also when the new file is refused; STOPPING=1 on
SIGTERM. Every datagram must come from the daemon's pid (NotifyAccess=main
drops the others).
"""

import signal
import socket
import struct
import threading
import time

import pytest

import apps
from harness import (alloc_port, assert_quiet, connect, echo_ok,
                     observe, run_cli, wait_until)

WATCHDOG_USEC = 1000000
# Set WATCHDOG_PID to the pid that then execs the daemon.
WITH_OWN_PID = ["sh", "-c", 'WATCHDOG_PID=$$ exec "$0" "$@"']


class FakeSystemd:
    """NOTIFY_SOCKET receiver: records (monotonic time, sender pid, dict)."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.msgs = []
        self.cond = threading.Condition()
        self._stop = False
        self.t = threading.Thread(target=self._loop, daemon=True,
                                  name="fake-systemd")
        self.t.start()

    def _loop(self):
        cred_len = socket.CMSG_SPACE(struct.calcsize("3i"))
        while not self._stop:
            try:
                data, anc, _, _ = self.sock.recvmsg(65536, cred_len)
            except socket.timeout:
                continue
            except OSError:
                return
            now = time.monotonic()
            pid = None
            for level, typ, cdata in anc:
                if level == socket.SOL_SOCKET and \
                        typ == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("3i", cdata[:12])[0]
            fields = {}
            for line in data.decode(errors="replace").split("\n"):
                if "=" in line:
                    k, _, v = line.partition("=")
                    fields[k] = v
            with self.cond:
                self.msgs.append((now, pid, fields))
                self.cond.notify_all()

    def close(self):
        self._stop = True
        self.t.join(5)
        self.sock.close()

    def env(self, watchdog_usec=WATCHDOG_USEC):
        e = {"NOTIFY_SOCKET": self.path}
        if watchdog_usec is not None:
            e["WATCHDOG_USEC"] = str(watchdog_usec)
        return e

    # -- queries

    def snapshot(self):
        with self.cond:
            return list(self.msgs)

    def with_key(self, key, value=None, after=0.0):
        return [(t, p, f) for t, p, f in self.snapshot()
                if t >= after and key in f
                and (value is None or f[key] == value)]

    def wait(self, key, value=None, after=0.0, timeout=10.0,
             pred=None):
        """The first message at/after `after` with key (=value), matching
        pred(fields) if given."""
        def find():
            for m in self.with_key(key, value, after):
                if pred is None or pred(m[2]):
                    return m
            return None
        try:
            return wait_until(find, timeout, "notification %s%s" % (
                key, "=" + value if value else ""), interval=0.01)
        except AssertionError as e:
            raise AssertionError("%s\nreceived so far:\n%s" % (
                e, "\n".join("%.3f pid=%s %s" % m
                             for m in self.snapshot())))

    def statuses(self, after=0.0):
        return [f["STATUS"] for t, _, f in self.snapshot()
                if "STATUS" in f and t >= after]


@pytest.fixture
def fake(world):
    f = FakeSystemd(world.dir / "notify.sock")
    world.on_cleanup(f.close)
    return f


def start(world, fake, tunnels, servers, watchdog_usec=WATCHDOG_USEC,
          wrapper=WITH_OWN_PID, **kw):
    cfg, control = world.write_config(servers, tunnels, **kw)
    t0 = time.monotonic()
    d = world.daemon(cfg, extra_env=fake.env(watchdog_usec),
                     wrapper=wrapper)
    return d, cfg, t0


def one_up(world, fake, echo=None, **kw):
    sshd = world.sshd("sshd1")
    echo = echo or world.app(apps.EchoServer())
    rport = alloc_port()
    d, cfg, t0 = start(world, fake, [
        {"name": "t1", "server": "s1", "remote": rport,
         "local": echo.local}], {"s1": world.server_cfg(sshd)}, **kw)
    return sshd, d, cfg, rport, t0


def assert_from_daemon(fake, d):
    bad = [m for m in fake.snapshot() if m[1] != d.pid]
    assert not bad, "datagrams not from the daemon's pid %d: %s" % (
        d.pid, bad)


# ---------------------------------------------------------------------------


def test_ready_once_tunnel_is_up(world, fake):
    sshd, d, cfg, rport, t0 = one_up(world, fake)
    _, _, f = fake.wait("READY", "1", timeout=15)
    # READY means usable: the remote port forwards right now.
    assert echo_ok(rport), "READY=1 sent before the forward worked"
    assert f.get("STATUS") == "1/1 tunnels up", f
    assert d.tunnel("t1")["state"] == "up"
    # Exactly one READY=1 at start-up.
    assert_quiet(lambda: len(fake.with_key("READY")) != 1 and
                 fake.snapshot(), 0.3, "a second READY=1")
    assert_from_daemon(fake, d)


class BlackHole:
    """A TCP listener that never accepts: connects succeed, the SSH
    handshake never starts (so the first attempt ends by connect_timeout)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]

    def stop(self):
        self.sock.close()


def test_ready_waits_for_first_attempt_to_fail(world, fake):
    # t1 comes up at once; t2's server answers TCP but never speaks SSH,
    # so its first attempt fails only after connect_timeout (1s). READY=1
    # must wait for that, and must then come (not hang).
    sshd = world.sshd("sshd1")
    hole = BlackHole()
    world.on_cleanup(hole.stop)
    echo = world.app(apps.EchoServer())
    r1, r2 = alloc_port(), alloc_port()
    d, cfg, t0 = start(world, fake, [
        {"name": "t1", "server": "s1", "remote": r1, "local": echo.local},
        {"name": "t2", "server": "dead", "remote": r2, "local": echo.local},
    ], {"s1": world.server_cfg(sshd),
        "dead": world.server_cfg(sshd, port=hole.port,
                                 connect_timeout="1s")})
    d.wait_tunnel("t1", "up", 10)
    assert not fake.with_key("READY"), (
        "READY=1 before t2's first attempt ended: %s" % fake.snapshot())
    t_ready, _, f = fake.wait("READY", "1", timeout=10)
    assert t_ready - t0 >= 0.9, "READY after %.2fs, before connect_timeout" \
        % (t_ready - t0)
    assert t_ready - t0 < 6, "READY only after %.2fs" % (t_ready - t0)
    assert f["STATUS"].startswith("1/2 tunnels up; "), f
    assert "t2" in f["STATUS"] or "dead" in f["STATUS"], f
    assert echo_ok(r1)
    assert_from_daemon(fake, d)


def test_ready_when_server_refuses(world, fake):
    # Nothing listens: the first attempt fails at once, READY=1 follows.
    echo = world.app(apps.EchoServer())
    dead = world.sshd("dead", start=False)
    dead.port = alloc_port()
    d, cfg, t0 = start(world, fake, [
        {"name": "t1", "server": "s1", "remote": alloc_port(),
         "local": echo.local}], {"s1": world.server_cfg(dead)})
    t_ready, _, f = fake.wait("READY", "1", timeout=10)
    assert t_ready - t0 < 5
    assert f["STATUS"].startswith("0/1 tunnels up; "), f
    assert d.running()


def test_ready_with_no_tunnels(world, fake):
    sshd = world.sshd("sshd1")
    d, cfg, t0 = start(world, fake, [], {"s1": world.server_cfg(sshd)})
    _, _, f = fake.wait("READY", "1", timeout=5)
    assert f.get("STATUS", "").startswith("0/0 tunnels up"), f


def test_status_follows_changes(world, fake):
    sshd, d, cfg, rport, t0 = one_up(world, fake)
    t_ready, _, _ = fake.wait("READY", "1", timeout=15)
    # Drop the SSH connection: STATUS shows the tunnel down, then up again.
    sshd.kill_sessions()
    t_down, _, f = fake.wait("STATUS", after=t_ready, timeout=10,
                             pred=lambda f: f["STATUS"].startswith(
                                 "0/1 tunnels up"))
    assert "READY" not in f, f
    fake.wait("STATUS", "1/1 tunnels up", after=t_down, timeout=15)
    wait_until(lambda: echo_ok(rport), 5, "tunnel serving again")
    # No duplicate STATUS lines in a row: only changes are sent.
    st = fake.statuses()
    assert all(a != b for a, b in zip(st, st[1:])), st
    assert_from_daemon(fake, d)


def test_watchdog_cadence(world, fake):
    sshd, d, cfg, rport, t0 = one_up(world, fake)
    fake.wait("READY", "1", timeout=15)
    start_w = time.monotonic()
    observe(2.2)     # the window the cadence is measured in
    pings = [t for t, _, f in fake.with_key("WATCHDOG", "1", start_w - 0.6)]
    gaps = [b - a for a, b in zip(pings, pings[1:])]
    # Half of WATCHDOG_USEC (1 s): about every 0.5 s.
    assert len([t for t in pings if t >= start_w]) >= 3, pings
    assert gaps and min(gaps) >= 0.4, "pings too close: %s" % gaps
    assert max(gaps) <= 0.9, "pings too far apart: %s" % gaps
    # A ping is only WATCHDOG=1 (no STATUS piggy-backed).
    assert all(set(f) == {"WATCHDOG"} for _, _, f in
               fake.with_key("WATCHDOG")), fake.with_key("WATCHDOG")
    assert_from_daemon(fake, d)


@pytest.mark.parametrize("case", ["other_pid", "no_usec"])
def test_no_watchdog_when_not_ours(world, fake, case):
    # WATCHDOG_PID names another process (systemd meant the watchdog for
    # it), or no WATCHDOG_USEC at all: no pings.
    if case == "other_pid":
        sshd, d, cfg, rport, t0 = one_up(
            world, fake, wrapper=["sh", "-c",
                                  'WATCHDOG_PID=1 exec "$0" "$@"'])
    else:
        sshd, d, cfg, rport, t0 = one_up(world, fake, watchdog_usec=None)
    fake.wait("READY", "1", timeout=15)
    assert_quiet(lambda: fake.with_key("WATCHDOG"), 1.2,
                 "a WATCHDOG=1 ping")


@pytest.mark.parametrize("how", ["SIGHUP", "tunnels reload"])
def test_reload_notifications(world, fake, how):
    sshd, d, cfg, rport, t0 = one_up(world, fake)
    t_ready, _, _ = fake.wait("READY", "1", timeout=15)
    s = connect(rport)
    s.sendall(b"x\n")
    assert s.recv(10) == b"x\n"
    before_us = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    t_sig = time.monotonic()
    if how == "SIGHUP":
        d.send_signal(signal.SIGHUP)
    else:
        r = run_cli("reload", "-c", cfg)
        assert r.returncode == 0, r.stdout + r.stderr
    t_rel, _, f = fake.wait("RELOADING", "1", after=t_sig, timeout=5)
    after_us = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert "MONOTONIC_USEC" in f, f
    mono = int(f["MONOTONIC_USEC"])
    assert before_us <= mono <= after_us, (before_us, mono, after_us)
    t_rdy, _, f2 = fake.wait("READY", "1", after=t_rel, timeout=5)
    assert f2.get("STATUS") == "1/1 tunnels up", f2
    # RELOADING strictly before READY, and nothing else READY in between.
    seq = [m[2] for m in fake.snapshot() if t_sig <= m[0] <= t_rdy
           and ("READY" in m[2] or "RELOADING" in m[2])]
    assert [("RELOADING" in x, "READY" in x) for x in seq] == \
        [(True, False), (False, True)], seq
    s.sendall(b"y\n")
    assert s.recv(10) == b"y\n", "connection lost over the reload"
    s.close()
    assert_from_daemon(fake, d)


def test_refused_reload_notifications(world, fake):
    sshd, d, cfg, rport, t0 = one_up(world, fake)
    fake.wait("READY", "1", timeout=15)
    good = cfg.read_text()
    # Invalid, but still naming the control socket (`tunnels reload`
    # finds the daemon through it).
    cfg.write_text(good.replace("tunnels:\n", "tunnels:\n  - name: t1\n"
                                "    bogus: 1\n", 1))
    t_sig = time.monotonic()
    r = run_cli("reload", "-c", cfg)
    assert r.returncode == 1, r.stdout + r.stderr
    t_rel, _, _ = fake.wait("RELOADING", "1", after=t_sig, timeout=5)
    _, _, f = fake.wait("READY", "1", after=t_rel, timeout=5)
    assert f["STATUS"].startswith("1/1 tunnels up; reload failed: "), f
    assert str(cfg) + ":" in f["STATUS"], f
    assert echo_ok(rport)
    cfg.write_text(good)
    d.send_signal(signal.SIGHUP)
    _, _, f = fake.wait("READY", "1", after=t_rel + 0.001, timeout=5,
                        pred=lambda f: "reload failed" not in f["STATUS"])
    assert f["STATUS"] == "1/1 tunnels up", f


def test_stopping_on_sigterm(world, fake):
    sshd, d, cfg, rport, t0 = one_up(world, fake)
    fake.wait("READY", "1", timeout=15)
    t_sig = time.monotonic()
    rc, took = d.stop(timeout=2.0, expect=0)
    _, _, f = fake.wait("STOPPING", "1", after=t_sig, timeout=1)
    assert f.get("STATUS") == "stopping", f
    # No READY=1 after STOPPING=1.
    t_stop = fake.with_key("STOPPING")[0][0]
    assert not fake.with_key("READY", after=t_stop), fake.snapshot()
    assert_from_daemon(fake, d)


def test_no_notify_socket_is_fine(world):
    # Not under systemd: no NOTIFY_SOCKET, everything still works.
    sshd = world.sshd("sshd1")
    echo = world.app(apps.EchoServer())
    rport = alloc_port()
    cfg, _ = world.write_config({"s1": world.server_cfg(sshd)}, [
        {"name": "t1", "server": "s1", "remote": rport,
         "local": echo.local}])
    d = world.daemon(cfg, extra_env={"WATCHDOG_USEC": "1000000"})
    d.wait_tunnel("t1", "up", 10)
    assert echo_ok(rport)
