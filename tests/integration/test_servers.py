"""
SSH servers other than OpenSSH (servers.py): Dropbear and AsyncSSH.

For each: tunnels come up and carry data intact both ways (several
connections, a few MB, checksums); the tunnel serves again after the
server's connections are killed and after the server restarts; the
liveness probe leaves the server's log quiet.

And the stale-session reclaim (DESIGN §5.4) against each server's real
per-connection process: Dropbear's is `dropbear`, which the daemon ends
when the account may (root) and cannot end when the account is
unprivileged (the process keeps root): then the tunnel waits for
Dropbear's own keepalive (-K) with waiting_reason
"stale_session_server_keepalive". AsyncSSH serves every connection from
one process: when a second session learns the same process, nothing is
ever killed, and the log says why.

Stale sessions are made the way test_resilience.py makes them: a relay
between daemon and server whose connection process is SIGSTOPped.
"""

import hashlib
import os
import re
import threading
import time
import types

import pytest

import apps
import servers
from faults import (DEAD_S, FAST_BACKOFF, KEEPALIVE_S, Relay, proc_state,
                    report, server_cfg, try_echo, wait_down, wait_serving)
from harness import (REPO, alloc_port, connect, is_refused, observe, pid_alive,
                     recv_exact, wait_until)

MiB = 1 << 20
KINDS = ["dropbear", "asyncssh"]
STALE_REASON = "stale_session_server_keepalive"


def make_server(world, kind, **kw):
    if kind == "dropbear":
        return servers.dropbear(world, **kw)
    return servers.asyncssh_server(world, **kw)


def cfg_for(world, srv, **over):
    """The server entry (short liveness settings) with its account."""
    over.setdefault("user", srv.user)
    return server_cfg(world, srv, **over)


def one_tunnel(world, srv_cfg, backoff=FAST_BACKOFF):
    up = world.bring_up(srv_cfg, backoff=backoff, wait=None)
    return up.daemon, up.remote


def echo_checked(port, size, results, i):
    """One connection: send `size` random bytes from a thread while
    reading the echo; record (sent digest, received digest)."""
    data = os.urandom(size)
    s = connect(port, timeout=30.0)
    try:
        t = threading.Thread(target=s.sendall, args=(data,), daemon=True)
        t.start()
        got = recv_exact(s, size, timeout=60.0)
        t.join(10)
        results[i] = (hashlib.sha256(data).hexdigest(),
                      hashlib.sha256(got).hexdigest())
    finally:
        s.close()


def new_lines(srv, offset):
    """Lines the server's log gained after byte offset `offset`."""
    return srv.log_text()[offset:].splitlines()


# ---------------------------------------------------------------------------
# Tunnels and data


@pytest.mark.parametrize("kind", KINDS)
def test_tunnels_carry_data_intact(world, kind):
    """Two tunnels on one server; three parallel connections on each echo
    1 MiB of random bytes (6 MiB each way): every byte comes back."""
    srv = make_server(world, kind)
    echos = [world.app(apps.EchoServer()) for _ in range(2)]
    rports = [alloc_port() for _ in range(2)]
    cfg, _ = world.write_config({"s1": world.server_cfg(srv, user=srv.user)},
                                [{"name": "t%d" % i, "server": "s1",
                                  "remote": rports[i], "local": e.local}
                                 for i, e in enumerate(echos)])
    d = world.daemon(cfg)
    st = d.wait_all_up(10)
    assert d.server("s1", st)["connects"] == 1

    n_per = 3
    results = [None] * (2 * n_per)
    threads = [threading.Thread(target=echo_checked,
                                args=(rports[i // n_per], MiB, results, i),
                                daemon=True) for i in range(2 * n_per)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    took = time.monotonic() - t0
    assert not any(t.is_alive() for t in threads), "a transfer hung"
    report("%s_data" % kind, mib_each_way=2 * n_per, seconds=took)
    for i, r in enumerate(results):
        assert r is not None, "connection %d failed" % i
        assert r[0] == r[1], "connection %d: data corrupted" % i
    st = d.status()
    for i in range(2):
        t = d.tunnel("t%d" % i, st)
        assert t["total_connections"] == n_per, t
        assert t["bytes_in"] >= n_per * MiB and \
            t["bytes_out"] >= n_per * MiB, t
    assert d.server("s1", st)["connects"] == 1, "the session was replaced"


@pytest.mark.parametrize("kind", KINDS)
def test_serves_again_after_connection_killed_and_restart(world, kind):
    """The server ends our connection (its per-connection processes
    killed, or AsyncSSH aborting it): the tunnel serves again. The server
    stops, stays away, comes back on the same port: serving again."""
    srv = make_server(world, kind)
    d, rport = one_tunnel(world, cfg_for(world, srv))
    wait_serving(d, rport, 10)

    srv.kill_sessions()
    wait_serving(d, rport, 10, min_connects=2,
                 what="serving after the server dropped our connection")

    srv.stop()
    wait_down(d, 5, 2)

    def still_down():
        assert d.running(), "daemon exited while the server was away"
        assert is_refused(rport), "remote port open while the server is down"
    observe(2, still_down)
    srv.start()
    t_ready = time.monotonic()
    wait_serving(d, rport, 15, min_connects=3,
                 what="serving after the server's return")
    took = time.monotonic() - t_ready
    report("%s_restart" % kind, serving_after_return_s=took)
    assert d.server("s1")["connects"] == 3, "more reconnects than needed"


# ---------------------------------------------------------------------------
# The liveness probe in the server's log


def asyncssh_noisy(line):
    """An AsyncSSH log line at WARNING or above, or a connection lost."""
    m = re.match(r"\S+ \S+ (\w+) ", line)
    return (m is None or m.group(1) not in ("INFO", "DEBUG") or
            "Connection lost" in line or "Aborting connection" in line)


@pytest.mark.parametrize("kind", KINDS)
def test_probe_leaves_server_log_quiet(world, kind):
    """keepalive 1s, count 3, an idle tunnel: for several keepalive
    intervals the daemon probes the server (it stays up only because each
    probe is answered: neither server sends anything on its own here), and
    the server's log gains no warning or error line from it (Dropbear's no
    line at all)."""
    srv = make_server(world, kind)
    d, rport = one_tunnel(world, cfg_for(world, srv))
    wait_serving(d, rport, 10)
    wait_until(lambda: d.server("s1").get("server_pid"), 5,
               "the session's server process to be learned")
    offset = len(srv.log_text())
    window = 6 * KEEPALIVE_S

    def check():
        st = d.status()
        assert d.server("s1", st)["state"] == "up", d.server("s1", st)
        assert d.server("s1", st)["connects"] == 1, (
            "the link was replaced: probes not answered?")
    observe(window, check, interval=0.5)
    lines = new_lines(srv, offset)
    if kind == "dropbear":
        noisy = lines
        probes = None
    else:
        noisy = [l for l in lines if asyncssh_noisy(l)]
        probes = sum("New SSH session requested" in l for l in lines)
    report("%s_probe_log" % kind, window_s=window, new_lines=len(lines),
           session_channels=probes)
    assert not noisy, ("the server logged this while being probed:\n" +
                       "\n".join(noisy[:20]))
    assert "the link is dead" not in d.log_text()


def test_dropbear_keepalive_is_answered(world):
    """Dropbear -K 1 sends keepalive requests that want a reply: the
    daemon answers them, so Dropbear keeps our session."""
    srv = servers.dropbear(world, keepalive=1)
    d, rport = one_tunnel(world, cfg_for(world, srv))
    wait_serving(d, rport, 10)

    def check():
        assert d.server("s1")["connects"] == 1
    observe(6, check, interval=0.5)
    assert "Keepalive" not in srv.log_text(), srv.log_text()
    assert try_echo(rport)


# ---------------------------------------------------------------------------
# Stale sessions


def behind_relay(world, srv, **over):
    """The server behind a socat relay; one tunnel; serving."""
    relay = Relay(world, srv.port).start()
    kh = world.known_hosts(srv.known_hosts_line(port=relay.port),
                           name="known_hosts_relay")
    d, rport = one_tunnel(world, cfg_for(world, srv, known_hosts=kh,
                                         port=relay.port, **over))
    wait_serving(d, rport, 10)
    return types.SimpleNamespace(srv=srv, relay=relay, d=d, rport=rport)


def learned(d):
    st = d.wait_status(lambda st: d.server("s1", st).get("exec") == "ok" and
                       isinstance(d.server("s1", st).get("server_pid"), int),
                       10, "server s1 to learn its server-side process")
    return d.server("s1", st)["server_pid"]


def stall(relay):
    carriers = relay.live_connection_pids()
    assert len(carriers) == 1, carriers
    relay.stall(carriers[0])
    return carriers[0], time.monotonic()


def readme_kill_command(pid, start, name):
    """The kill command as the README quotes it, filled in."""
    text = (REPO / "README.md").read_text()
    m = re.search(r"^(p=PID; .*)$", text, re.M)
    assert m, "README quotes no kill command starting with p=PID;"
    return (m.group(1).replace("p=PID;", "p=%d;" % pid, 1)
            .replace("!= START ]", "!= %s ]" % start, 1)
            .replace("!= NAME ]", "!= %s ]" % name, 1))


def test_dropbear_stale_session_ended(world):
    """The account is the test's own (root): Dropbear's per-connection
    process is ours to end. A black-holed link: the daemon ends the old
    `dropbear` process with the README's command and serves again."""
    srv = servers.dropbear(world)       # no -K: only the reclaim frees it
    w = behind_relay(world, srv)
    old = learned(w.d)
    assert old in srv.connection_pids(), (old, srv.connection_pids())
    with open("/proc/%d/stat" % old) as f:
        start = f.read().rsplit(")", 1)[1].split()[19]

    carrier, t0 = stall(w.relay)
    wait_serving(w.d, w.rport, DEAD_S + 10, min_connects=2,
                 what="serving after the reclaim")
    serving = time.monotonic() - t0
    report("dropbear_reclaim", serving_s=serving)
    log = w.d.log_text()
    assert "ended our stale server-side session pid %d (dropbear)" % old \
        in log, log[-3000:]
    cmd = readme_kill_command(old, start, "dropbear")
    assert "ending our stale server-side session: %s" % cmd in log, (
        "the logged kill command is not the README's:\n%s" % cmd)
    wait_until(lambda: not pid_alive(old), 2, "old dropbear %d gone" % old)
    assert proc_state(carrier) == "T", "the relay process resumed?"
    assert serving <= DEAD_S + 5, serving


def test_dropbear_unprivileged_account_waits_for_keepalive(world):
    """An unprivileged account on a Dropbear run as root: the stale
    `dropbear` process keeps root, the kill is not permitted. The log says
    so, the tunnel waits with waiting_reason
    "stale_session_server_keepalive", and serves again once Dropbear's own
    keepalive (-K 3) ended the old session."""
    acc = servers.account(world)
    srv = servers.dropbear(world, account=acc, keepalive=3)
    w = behind_relay(world, srv)
    old = learned(w.d)
    assert old in srv.connection_pids()
    assert os.stat("/proc/%d" % old).st_uid == 0, "dropbear not root?"
    assert re.search(r"pid %d \(dropbear\) runs as uid 0 and this account "
                     r"is uid %d" % (old, acc.uid), w.d.log_text())

    carrier, t0 = stall(w.relay)
    st = w.d.wait_status(
        lambda st: w.d.tunnel("t1", st).get("waiting_reason") ==
        STALE_REASON, DEAD_S + 15,
        "tunnel t1 waiting with waiting_reason %s" % STALE_REASON)
    waiting = time.monotonic() - t0
    t = w.d.tunnel("t1", st)
    assert t["state"] == "waiting", t
    assert "not permitted" in t["last_error"], t
    assert "keepalive" in t["last_error"], t
    assert "Dropbear: -K" in t["last_error"], t
    log = w.d.log_text()
    assert re.search(r"cannot end our stale server-side session pid %d "
                     r"\(dropbear, uid 0\): not permitted" % old, log), \
        log[-3000:]
    assert "no longer exists" not in log
    assert pid_alive(old), "the stale dropbear process went away early"

    wait_serving(w.d, w.rport, 30, min_connects=2,
                 what="serving after Dropbear's keepalive ended the old "
                 "session")
    serving = time.monotonic() - t0
    report("dropbear_not_permitted", waiting_s=waiting, serving_s=serving)
    assert not pid_alive(old)
    assert "Keepalive" in srv.log_text() or "keepalive" in srv.log_text(), \
        "Dropbear's log does not say its keepalive ended the session"
    assert proc_state(carrier) == "T"


@pytest.mark.parametrize("comm", [None, "sshd"],
                         ids=["python3", "named_sshd"])
def test_asyncssh_shared_process_is_never_killed(world, comm):
    """AsyncSSH serves every connection from one process, so our next
    session learns the same PID as the stale one: it is not ours to kill.
    No kill is attempted (even when the process calls itself "sshd", a
    known per-connection name: the shared-PID rule alone must hold), the
    log says why once, the tunnel waits for AsyncSSH's keepalive."""
    srv = servers.asyncssh_server(world, keepalive=2, keepalive_count=3,
                                  comm=comm)
    w = behind_relay(world, srv)
    first = learned(w.d)
    assert first == srv.pid

    carrier, t0 = stall(w.relay)
    wait_down(w.d, DEAD_S + 5, 1)
    # The refusal may come before the new session learned its process;
    # the reason's text follows at the next retry (at most 2 s later).
    st = w.d.wait_status(
        lambda st: w.d.tunnel("t1", st).get("waiting_reason") ==
        STALE_REASON and w.d.server("s1", st)["server_pid"] == srv.pid and
        "serves more than one of our sessions" in
        (w.d.tunnel("t1", st)["last_error"] or ""), 15,
        "tunnel t1 waiting with waiting_reason %s, the process shared" %
        STALE_REASON)
    t = w.d.tunnel("t1", st)
    assert t["state"] == "waiting", t
    assert "keepalive" in t["last_error"], t
    log = w.d.log_text()
    shared = re.findall(r"server-side pid %d \(%s\) also served an earlier "
                        r"session of ours: it serves more than one of our "
                        r"sessions" % (srv.pid, comm or "python3"), log)
    assert len(shared) == 1, log[-3000:]

    wait_serving(w.d, w.rport, 30, min_connects=2,
                 what="serving after AsyncSSH's keepalive ended the old "
                 "connection")
    serving = time.monotonic() - t0
    report("asyncssh_shared_%s" % (comm or "python3"), serving_s=serving)
    log = w.d.log_text()
    assert "ending our stale server-side session" not in log, log[-3000:]
    assert srv.running() and pid_alive(srv.pid)
    assert proc_state(carrier) == "T"
    if comm is None:
        assert re.search(r"pid %d \(python3\) is not a known per-connection "
                         r"server process" % srv.pid, log)


def test_openssh_unprivileged_account_ends_its_session(world):
    """The same stale session on OpenSSH with an unprivileged account: its
    `sshd: USER@notty` process runs as the account, which may end it (no
    warning about the owner), and does."""
    acc = servers.account(world)
    sshd = world.sshd("sshd1", extra=["ClientAliveInterval 0"])
    sshd.user = acc.name
    w = behind_relay(world, sshd)
    old = learned(w.d)
    assert os.stat("/proc/%d" % old).st_uid == acc.uid
    assert "may not be permitted" not in w.d.log_text()

    carrier, t0 = stall(w.relay)
    wait_serving(w.d, w.rport, DEAD_S + 10, min_connects=2,
                 what="serving after the reclaim")
    report("openssh_unprivileged_reclaim", serving_s=time.monotonic() - t0)
    assert re.search(r"ended our stale server-side session pid %d \(sshd\)"
                     % old, w.d.log_text())
    wait_until(lambda: not pid_alive(old), 2, "old session %d gone" % old)
    assert proc_state(carrier) == "T"
