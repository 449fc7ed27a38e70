"""
Reloads under traffic and the control socket under pressure (issue 10,
findings 1, 3 and 7): real sshd servers, echo apps and the daemon under
test (run it with the ASan build: TUNNELS_BIN=build/asan/tunnels).

- test_reloads_under_traffic: 40 echo streams through tunnels on several
  servers while the config is reloaded again and again (tunnels added,
  removed and changed, servers changed, removed and added, backoff and
  state_dir changed), alternately by SIGHUP and `tunnels reload`. No
  sanitizer report, the daemon alive, and every connection on a tunnel
  that never changed survives every reload with its bytes intact.
- test_reload_applies_changes: a changed tunnel or server is really
  changed (new local target answers, new remote port listens and the old
  one is gone, the new server port is the one connected).
- test_reload_backoff_reaches_sessions: a changed backoff.max is used by
  a kept session (and a new one) at once, seen in status retry_in_s.
- test_control_fd_exhaustion: out of fds, the control socket neither
  spins nor floods the log, and status answers again.
- test_control_slow_clients: 50 clients that never read do not keep
  status from answering.
- test_reload_checks_peer_pid: `tunnels reload` signals nobody when the
  pid named on the control socket is not the socket's peer.
"""

import hashlib
import json
import os
import random
import socket
import struct
import subprocess
import threading
import time

import apps
from faults import cpu_seconds, fd_count, require_tool
from harness import (alloc_port, connect, is_listening, is_refused, observe,
                     recv_exact, recv_until_eof, run_cli, to_yaml, wait_until)


# ---------------------------------------------------------------------------
# Echo streams that keep one connection open


class Stream:
    """
    One echo connection doing round trips without pause (random sizes),
    hashing every byte sent and every byte received. `port` is a callable
    (a changed tunnel moves). A survivor must never lose its connection;
    any other stream reconnects after a cut. Wrong bytes are recorded,
    never tolerated.
    """

    def __init__(self, name, port, survivor, active=lambda: True):
        self.name = name
        self.port = port
        self.survivor = survivor
        self.active = active        # False: its tunnel is not configured
        self.rounds = 0
        self.bytes = 0
        self.connections = 0
        self.cuts = []
        self.corrupt = []
        self.sent = hashlib.sha256()
        self.received = hashlib.sha256()
        self._stop = threading.Event()
        self._thread = None
        self._rng = random.Random(name)

    def start(self):
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name="stream-%s" % self.name)
        self._thread.start()
        return self

    def _connect(self):
        while not self._stop.is_set():
            try:
                s = socket.create_connection(("127.0.0.1", self.port()),
                                             timeout=5.0)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self.connections += 1
                return s
            except OSError:
                self._stop.wait(0.02)    # pacing: the port is not there yet
        return None

    def _run(self):
        s = self._connect()
        while s is not None and not self._stop.is_set():
            size = self._rng.choice((1, 7, 512, 4096, 16384, 65536))
            payload = self._rng.randbytes(size)
            try:
                s.sendall(payload)
                got = bytearray()
                while len(got) < size:
                    chunk = s.recv(size - len(got))
                    if not chunk:
                        raise ConnectionError("closed by the tunnel")
                    got += chunk
            except (OSError, ConnectionError) as e:
                self.cuts.append("%s after %d rounds: %s" % (
                    self.name, self.rounds, e))
                s.close()
                if self.survivor:
                    return
                s = self._connect()
                continue
            if bytes(got) != payload:
                self.corrupt.append("%s: round %d came back different" %
                                    (self.name, self.rounds))
                s.close()
                return
            # Only complete round trips count in the hashes.
            self.sent.update(payload)
            self.received.update(bytes(got))
            self.rounds += 1
            self.bytes += size
        if s is not None:
            s.close()

    def stop(self):
        self._stop.set()
        self._thread.join(15)
        assert not self._thread.is_alive(), "stream %s hangs" % self.name


def wait_progress(streams, what, timeout=30.0):
    """Wait until every stream whose tunnel is configured completed a
    round trip after this call."""
    marks = {s.name: s.rounds for s in streams}

    def moved():
        for s in streams:
            assert not s.corrupt, s.corrupt
            if s.survivor:
                assert not s.cuts, "a connection on an unchanged tunnel " \
                    "was cut: %s" % s.cuts
        return all(s.rounds > marks[s.name] for s in streams
                   if s.active())
    wait_until(moved, timeout, "every stream moving %s" % what)


# ---------------------------------------------------------------------------
# Reload helpers


def write_atomic(path, text):
    tmp = str(path) + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def do_reload(world, d, cfg, how):
    """Reload by SIGHUP or `tunnels reload`; assert it was applied."""
    assert str(cfg) == d.config, (cfg, d.config)
    return d.reload("SIGHUP" if how == "SIGHUP" else "cli")


def cfg_text(world, servers, tunnels, backoff, state_dir):
    """The YAML world.write_config would write (written atomically here)."""
    doc = {"control": str(world.dir / "control.sock"),
           "state_dir": str(state_dir), "servers": servers,
           "tunnels": tunnels, "backoff": backoff}
    return to_yaml(doc) + "\n"


# ---------------------------------------------------------------------------
# 1. Reloads under traffic


def test_reloads_under_traffic(world):
    key = world.user_key
    sa = world.sshd("a", authorized=[key])
    sb = world.sshd("b", authorized=[key])
    sb2 = world.sshd("b2", authorized=[key])
    sc = world.sshd("c", authorized=[key])
    kh_b = world.known_hosts(sb, sb2, name="known_hosts_b")
    echo1 = world.app(apps.EchoServer())
    echo2 = world.app(apps.EchoServer())
    ports = {n: alloc_port() for n in
             ("keep1", "keep2", "onb", "onc", "mut", "mut2", "extra")}

    base_servers = {
        "a": world.server_cfg(sa),
        "b": world.server_cfg(sb, known_hosts=kh_b),
        "c": world.server_cfg(sc),
    }

    def tunnel(name, server, remote, local):
        return {"name": name, "server": server, "remote": remote,
                "local": local}

    state = {"servers": json.loads(json.dumps(base_servers)),
             "extra": False, "mut_local": echo1.local,
             "mut_remote": ports["mut"], "c": True,
             "backoff": {"initial": "200ms", "max": "2s"},
             "state_dir": world.dir / "state"}

    def tunnels():
        t = [tunnel("keep1", "a", ports["keep1"], echo1.local),
             tunnel("keep2", "a", ports["keep2"], echo1.local),
             tunnel("onb", "b", ports["onb"], echo1.local),
             tunnel("mut", "a", state["mut_remote"], state["mut_local"])]
        if state["c"]:
            t.append(tunnel("onc", "c", ports["onc"], echo1.local))
        if state["extra"]:
            t.append(tunnel("extra", "a", ports["extra"], echo2.local))
        return t

    def servers():
        s = dict(state["servers"])
        if not state["c"]:
            del s["c"]
        return s

    cfg = world.dir / "tunnels.yaml"
    world.add_log("config tunnels.yaml", cfg, 200)

    def write():
        write_atomic(cfg, cfg_text(world, servers(), tunnels(),
                                   state["backoff"], state["state_dir"]))
    write()
    d = world.daemon(cfg)
    d.wait_all_up(timeout=30)

    streams = []
    for i in range(10):
        streams.append(Stream("keep1-%d" % i, lambda: ports["keep1"], True))
        streams.append(Stream("keep2-%d" % i, lambda: ports["keep2"], True))
    for i in range(8):
        streams.append(Stream("onb-%d" % i, lambda: ports["onb"], False))
    for i in range(6):
        streams.append(Stream("onc-%d" % i, lambda: ports["onc"], False,
                              lambda: state["c"]))
    for i in range(6):
        streams.append(Stream("mut-%d" % i, lambda: state["mut_remote"],
                              False))
    assert len(streams) == 40
    for s in streams:
        s.start()
    world.on_cleanup(lambda: [s.stop() for s in streams
                              if s._thread.is_alive()])
    wait_progress(streams, "before the first reload")

    def set_server(name, **kw):
        state["servers"][name].update(kw)

    # Each step changes the file; together they cover every kind of change.
    steps = [
        ("tunnel added", lambda: state.update(extra=True)),
        ("tunnel local changed", lambda: state.update(
            mut_local=echo2.local)),
        ("tunnel remote changed", lambda: state.update(
            mut_remote=ports["mut2"])),
        ("server keepalive changed", lambda: set_server("b",
                                                        keepalive="3s")),
        ("server port changed", lambda: set_server("b", port=sb2.port)),
        ("server removed", lambda: state.update(c=False)),
        ("server added", lambda: state.update(c=True)),
        ("backoff and state_dir changed", lambda: state.update(
            backoff={"initial": "300ms", "max": "3s"},
            state_dir=world.dir / "state2")),
        ("tunnel removed", lambda: state.update(extra=False)),
        ("everything back", lambda: (
            state.update(mut_local=echo1.local, mut_remote=ports["mut"],
                         backoff={"initial": "200ms", "max": "2s"},
                         state_dir=world.dir / "state"),
            set_server("b", port=sb.port, keepalive="2s"))),
    ]
    rounds = int(os.environ.get("RELOAD_ROUNDS", "3"))
    n = 0
    for _ in range(rounds):
        for what, change in steps:
            change()
            write()
            how = "SIGHUP" if n % 2 == 0 else "tunnels reload"
            n += 1
            try:
                do_reload(world, d, cfg, how)
                st = d.wait_all_up(timeout=30)
                names = sorted(t["name"] for t in st["tunnels"])
                assert names == sorted(t["name"] for t in tunnels()), names
                # Traffic again on every tunnel before the next reload,
                # and the unchanged tunnels' connections still the first.
                wait_progress(streams, "after the reload")
            except AssertionError as e:
                raise AssertionError("reload %d (%s, by %s)%s: %s" % (
                    n, what, how, "" if d.running() else
                    ": the daemon died", e)) from e
    for s in streams:
        s.stop()
    assert d.running()
    d.assert_clean_log()
    survivors = [s for s in streams if s.survivor]
    for s in survivors:
        assert not s.cuts, s.cuts
        assert s.connections == 1, "%s reconnected" % s.name
        assert s.sent.hexdigest() == s.received.hexdigest(), s.name
    for s in streams:
        assert not s.corrupt, s.corrupt
    churn = [s for s in streams if not s.survivor]
    print("%d reloads under traffic; survivors moved %d MB in %d round "
          "trips on one connection each; other streams reconnected %d "
          "times" % (n, sum(s.bytes for s in survivors) >> 20,
                     sum(s.rounds for s in survivors),
                     sum(s.connections - 1 for s in churn)))


# ---------------------------------------------------------------------------
# 2. A changed tunnel or server is really changed


def greeting(port, n=2, timeout=5.0):
    """The first n bytes a tunnel's app sends (EchoServer greeting)."""
    s = connect(port, timeout=timeout)
    try:
        return recv_exact(s, n, timeout)
    finally:
        s.close()


def test_reload_applies_changes(world):
    s1 = world.sshd("s1")
    s2 = world.sshd("s2")
    kh = world.known_hosts(s1, s2, name="known_hosts_s")
    app_a = world.app(apps.EchoServer(greeting=b"A:"))
    app_b = world.app(apps.EchoServer(greeting=b"B:"))
    p1, p2 = alloc_port(), alloc_port()
    srv = world.server_cfg(s1, known_hosts=kh)

    def write(remote, local, server):
        return world.write_config({"s": server}, [
            {"name": "t", "remote": remote, "local": local}])[0]
    cfg = write(p1, app_a.local, srv)
    d = world.daemon(cfg)
    d.wait_tunnel("t")
    assert greeting(p1) == b"A:"

    # A new local: the new app answers, the old one gets nothing more.
    write(p1, app_b.local, srv)
    do_reload(world, d, cfg, "SIGHUP")
    d.wait_tunnel("t")
    accepted_a = app_a.accepted
    wait_until(lambda: greeting(p1) == b"B:", 15,
               "the new local app answering through the tunnel")
    assert greeting(p1) == b"B:"
    assert app_a.accepted == accepted_a, "the old local app still served"

    # A new remote: the new port listens, the old one is given back.
    write(p2, app_b.local, srv)
    do_reload(world, d, cfg, "tunnels reload")
    t = d.wait_tunnel("t")
    assert t["remote"].endswith(":%d" % p2), t
    wait_until(lambda: is_listening(p2) and is_refused(p1), 15,
               "port %d listening and %d given back" % (p2, p1))
    assert greeting(p2) == b"B:"

    # A server's new port: the session really moves to the other sshd.
    srv2 = dict(srv, port=s2.port)
    write(p2, app_b.local, srv2)
    do_reload(world, d, cfg, "SIGHUP")
    st = d.wait_status(
        lambda st: d.find(st, "servers", "s")["state"] == "up" and
        d.find(st, "servers", "s")["address"].endswith(":%d" % s2.port)
        and d.find(st, "tunnels", "t")["state"] == "up", 20,
        "server s up on port %d" % s2.port)
    wait_until(lambda: s2.session_pids() and not s1.session_pids(), 15,
               "the session on sshd s2 and none left on s1")
    # With s1 gone entirely, the tunnel still works: it runs through s2.
    s1.stop()
    wait_until(lambda: greeting(p2) == b"B:", 15, "the tunnel via s2")
    assert d.server("s")["state"] == "up", st


# ---------------------------------------------------------------------------
# 3. A changed backoff reaches kept and new sessions at once


def test_reload_backoff_reaches_sessions(world, echo):
    # sshd servers that accept no key: auth fails, a permanent error, so
    # the next attempt waits "at the cap", between max/2 and max.
    deny1 = world.sshd("deny1", authorized=[])
    deny2 = world.sshd("deny2", authorized=[])
    servers = {"d1": world.server_cfg(deny1)}
    tunnels = [{"name": "t1", "server": "d1", "remote": alloc_port(),
                "local": echo.local}]
    cfg, _ = world.write_config(servers, tunnels,
                                backoff={"initial": "1s", "max": "60s"})
    d = world.daemon(cfg)
    s = d.wait_server("d1", "failed", timeout=20)
    assert 29 <= s["retry_in_s"] <= 60, s

    servers["d2"] = world.server_cfg(deny2)
    tunnels.append({"name": "t2", "server": "d2", "remote": alloc_port(),
                    "local": echo.local})
    world.write_config(servers, tunnels,
                       backoff={"initial": "1s", "max": "4s"})
    do_reload(world, d, cfg, "SIGHUP")
    # The kept session: its pending wait is cut to the new cap at once.
    s = d.server("d1")
    assert s["state"] == "failed" and s["retry_in_s"] <= 4, s
    # The new session uses the new bounds from its first failure.
    s = d.wait_server("d2", "failed", timeout=20)
    assert s["retry_in_s"] <= 4, s
    # And the next attempts of the kept one follow within the new cap.
    mark = len(d.log_text())
    wait_until(lambda: d.log_text()[mark:].count(
        "server d1: connecting -> handshake") >= 2, 15,
        "two more attempts of d1 (at most 4s apart)")
    assert d.server("d1").get("retry_in_s", 0) <= 4


# ---------------------------------------------------------------------------
# 4. A changed state_dir moves kept sessions' files and is used by new ones


def test_reload_state_dir_moves(world, echo):
    s1 = world.sshd("s1")
    s2 = world.sshd("s2")
    servers = {"s1": world.server_cfg(s1)}
    tunnels = [{"name": "t1", "server": "s1", "remote": alloc_port(),
                "local": echo.local}]
    cfg, _ = world.write_config(servers, tunnels)
    old_dir, new_dir = world.dir / "state", world.dir / "state2"
    d = world.daemon(cfg)
    d.wait_status(lambda st: d.find(st, "servers", "s1")["server_pid"],
                  20, "the server-side pid of s1 learned")
    wait_until(lambda: (old_dir / "tunnels.s1.session").exists(), 10,
               "the state file of s1")

    servers["s2"] = world.server_cfg(s2)
    tunnels.append({"name": "t2", "server": "s2", "remote": alloc_port(),
                    "local": echo.local})
    world.write_config(servers, tunnels, state_dir=str(new_dir))
    do_reload(world, d, cfg, "tunnels reload")
    # The kept session's file moved with what it knew (its sshd's pid).
    pid1 = d.server("s1")["server_pid"]
    moved = new_dir / "tunnels.s1.session"
    assert moved.exists(), sorted(os.listdir(world.dir))
    assert not (old_dir / "tunnels.s1.session").exists()
    assert moved.read_text().splitlines()[1].startswith("%d " % pid1)
    # The new session writes into the new directory.
    d.wait_status(lambda st: d.find(st, "servers", "s2")["server_pid"],
                  20, "the server-side pid of s2 learned")
    wait_until(lambda: (new_dir / "tunnels.s2.session").exists(), 10,
               "the state file of s2 in the new state_dir")
    assert not (old_dir / "tunnels.s2.session").exists()


# ---------------------------------------------------------------------------
# 5. The control socket under pressure


def socket_buffer():
    """The default send buffer of a socket (what one write can queue)."""
    with open("/proc/sys/net/core/wmem_default") as f:
        return int(f.read())


def filler(world, n):
    """A server that refuses our key (failed, retried at the cap: quiet)
    and n tunnels on it: a status document of about 300 bytes a tunnel."""
    deny = world.sshd("deny", authorized=[])
    tunnels = [{"name": "filler-tunnel-%05d" % i, "server": "deny",
                "remote": 20000 + i, "local": "127.0.0.1:%d" % (40000 + i)}
               for i in range(n)]
    return world.server_cfg(deny), tunnels


def unix_client(path, timeout=5.0):
    """
    A blocking connect, as `tunnels status` does: with the listen backlog
    full it waits in the kernel (up to timeout) instead of failing with
    EAGAIN as a non-blocking connect would.
    """
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    tv = struct.pack("ll", int(timeout), int((timeout % 1) * 1e6))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, tv)
    try:
        s.connect(str(path))
    except OSError:
        s.close()
        raise
    s.settimeout(timeout)
    return s


def raw_status(control, timeout=5.0):
    """The raw status document and the seconds it took."""
    t0 = time.monotonic()
    s = unix_client(control, timeout)
    try:
        data = recv_until_eof(s, timeout)
    finally:
        s.close()
    return data, time.monotonic() - t0


def daemon_alive(d):
    assert d.running(), "the daemon died (exit %s)" % d.proc.returncode


def test_control_slow_clients(world):
    srv, tunnels = filler(world, 2000)
    cfg, control = world.write_config({"deny": srv}, tunnels,
                                      backoff={"initial": "1s",
                                               "max": "60s"})
    d = world.daemon(cfg)
    d.wait_server("deny", "failed", timeout=30)
    doc, _ = raw_status(control)
    assert len(doc) > 2 * socket_buffer(), (
        "the document (%d bytes) must not fit in a socket buffer" % len(doc))
    # 50 clients that connect and never read: each could hold a slot.
    stuck = []
    world.on_cleanup(lambda: [s.close() for s in stuck])
    for _ in range(50):
        try:
            stuck.append(unix_client(control, timeout=1.0))
        except OSError:
            pass        # the backlog is full: a daemon that stopped
    assert len(stuck) >= 48, len(stuck)
    took = []
    for _ in range(3):
        try:
            data, t = raw_status(control, timeout=5.0)
        except OSError as e:
            raise AssertionError("status not answered with %d clients "
                                 "that never read: %s" % (len(stuck), e))
        assert json.loads(data)["pid"] == d.pid
        took.append(t)
    assert max(took) < 4.0, took
    assert d.running()
    # The stuck clients are dropped after their deadline, not kept.
    wait_until(lambda: fd_count(d.pid) < 30, 20,
               "the daemon to drop the clients that never read")
    print("status with 50 stuck clients, a %d kB document: %s s" % (
        len(doc) >> 10, ", ".join("%.2f" % t for t in took)))


def test_control_fd_exhaustion(world, sshd):
    limit = 64
    hold = world.app(apps.EchoServer())
    srv, fill = filler(world, 1000)
    port = alloc_port()
    cfg, control = world.write_config(
        {"s": world.server_cfg(sshd), "deny": srv},
        [{"name": "t", "server": "s", "remote": port, "local": hold.local}]
        + fill, backoff={"initial": "1s", "max": "60s"})
    d = world.daemon(cfg, wrapper=[require_tool("prlimit"),
                                   "--nofile=%d:%d" % (limit, limit), "--"])
    d.wait_tunnel("t", timeout=30)
    d.wait_server("deny", "failed", timeout=30)
    doc, _ = raw_status(control)
    assert len(doc) > socket_buffer()

    # Forwarded connections until the daemon has no fd left for the next.
    conns = []
    world.on_cleanup(lambda: [c.close() for c in conns])
    exhausted = False
    for _ in range(limit + 20):
        c = connect(port)
        conns.append(c)
        try:
            c.sendall(b"x")
            c.settimeout(10)
            exhausted = c.recv(1) != b"x"
        except OSError:
            exhausted = True
        if exhausted:
            break
    assert exhausted, "the daemon never ran out of fds (limit %d)" % limit
    assert fd_count(d.pid) >= limit - 1, fd_count(d.pid)

    # A flood of control clients that never read: the first gets the
    # reserve fd (and a document too big to send at once), the rest find
    # no fd. Nothing may spin, and the log says it once.
    log_mark = len(d.log_text())
    flood = []
    world.on_cleanup(lambda: [c.close() for c in flood])
    for _ in range(20):
        try:
            flood.append(unix_client(control, timeout=0.5))
        except OSError:
            pass        # backlog full: the daemon accepts nothing
    assert flood
    cpu0 = cpu_seconds(d.pid)
    observe(3.0, check=lambda: daemon_alive(d))
    cpu = cpu_seconds(d.pid) - cpu0
    assert cpu < 0.5, "%.2f s of CPU in 3 s while out of fds" % cpu

    # The flood goes away: status answers even with the fds still held.
    for c in flood:
        c.close()
    data, took = wait_until(lambda: raw_status(control, 3.0), 15,
                            "status answering while fds are still held")
    assert json.loads(data)["pid"] == d.pid
    # Fds free again: status and the tunnel work as before.
    for c in conns:
        c.close()
    conns.clear()
    wait_until(lambda: fd_count(d.pid) < limit // 2, 15,
               "the daemon's fds released")
    d.wait_tunnel("t")
    s = connect(port)
    s.sendall(b"ping")
    assert recv_exact(s, 4) == b"ping"
    s.close()
    lines = [l for l in d.log_text()[log_mark:].splitlines()
             if "control socket" in l]
    assert 1 <= len(lines) <= 2, lines
    print("out of fds: %.2f s CPU in 3 s; control log lines: %d" % (
        cpu, len(lines)))


# ---------------------------------------------------------------------------
# 6. `tunnels reload` signals only the process that serves the socket


def test_reload_checks_peer_pid(world):
    # A bystander: our own child, which a SIGHUP would kill.
    victim = subprocess.Popen(["sleep", "120"])
    world.on_cleanup(lambda: (victim.kill(), victim.wait(5)))
    control = world.dir / "control.sock"
    cfg = world.dir / "tunnels.yaml"
    cfg.write_text("control: %s\n" % control)
    doc = {"version": "0.1.0", "pid": victim.pid, "reloads": 0,
           "reload_error": None, "servers": [], "tunnels": []}
    fake = world.app(apps.FakeControl(control,
                                      (json.dumps(doc) + "\n").encode()))
    env_mainpid = os.environ.pop("MAINPID", None)
    try:
        r = run_cli("reload", "-c", cfg, timeout=45)
    finally:
        if env_mainpid is not None:
            os.environ["MAINPID"] = env_mainpid
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert fake.served >= 1, "tunnels reload never asked the socket"
    assert ("served by pid %d but names pid %d" % (os.getpid(), victim.pid)
            in r.stderr), r.stderr
    assert "not reloading" in r.stderr
    # The bystander got no SIGHUP: still running (it would have died).
    assert victim.poll() is None, "the pid named on the socket was " \
        "signalled (exit %s)" % victim.returncode
