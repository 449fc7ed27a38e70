"""
Holes in the suite found by mutation (issue 10): each test here fails on a
deliberate bug that the rest of the suite let through, and passes on the
real code. The mutant each one was checked against is named in its
docstring.

Real sshd, real processes, the daemon's own status and log: no mocks.
"""

import os
import re
import shutil
import socket
import stat
import subprocess

import pytest

import faults
from faults import (DEAD_S, FAST_BACKOFF, Relay, retry_delays, server_cfg,
                    try_echo)
from harness import (alloc_port, children, connect, echo_ok, is_refused,
                     observe, pid_alive, stop_popen, wait_until)

TIMEOUT = 15


def one_tunnel(world, srv, backoff=FAST_BACKOFF, **kw):
    """Config with server s1 and tunnel t1 to a new echo app; the daemon."""
    up = world.bring_up(srv, backoff=backoff, wait=None, daemon_kw=kw)
    return up.daemon, up.config, up.remote


def proc_start_time(pid):
    """Field 22 of /proc/PID/stat (start time in clock ticks), as text."""
    return faults._stat_fields(pid)[19]


def spawn(world, argv):
    """A process of ours, stopped at cleanup."""
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    world.on_cleanup(lambda: stop_popen(p))
    wait_until(lambda: faults.proc_state(p.pid) in ("S", "R"), 5,
               "process %s to run" % argv)
    return p


def listener(port):
    """A TCP socket listening on 127.0.0.1:port that never accepts."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(8)
    return s


# ---------------------------------------------------------------------------
# 1. A pinned host_key is checked against a real sshd


def test_pinned_host_key_mismatch_refuses_and_right_pin_works(world):
    """Mutant: hostkey_verify_pinned() returns 0 whatever the key."""
    sshd = world.sshd("sshd1")
    imposter = world.key("imposter_host")
    d, cfg, rport = one_tunnel(world, world.server_cfg(
        sshd, host_key=imposter.pub_line))
    srv = d.wait_server("s1", "failed", TIMEOUT)
    err = srv["last_error"] or ""
    assert "host key mismatch for 127.0.0.1:%d" % sshd.port in err, err
    assert "ssh-ed25519 %s" % sshd.host_key.fingerprint in err, err
    assert "not the host_key pinned" in err, err
    d.wait_tunnel("t1", "failed", 5)

    # Nothing forwarded, over a few retries (at the 2 s cap at most).
    def nothing_forwarded():
        st = d.status()
        assert d.server("s1", st)["state"] != "up", st
        assert d.tunnel("t1", st)["state"] != "up", st
        assert is_refused(rport), "remote port open through a wrong key"
    observe(3, nothing_forwarded, interval=0.5)
    assert "Accepted publickey" not in sshd.log_text(), \
        "the daemon authenticated to a server whose key is not the pin"
    assert "matches the pinned host_key" not in d.log_text()
    d.stop()

    # The right pin (with a comment after it, as in a .pub file).
    d2, _, rport2 = one_tunnel(world, world.server_cfg(
        sshd, host_key=sshd.host_key.pub_line + " the-real-one"),
        name="daemon2")
    d2.wait_tunnel("t1", "up", TIMEOUT)
    assert echo_ok(rport2)
    assert "host key ssh-ed25519 %s matches the pinned host_key" % \
        sshd.host_key.fingerprint in d2.log_text()


def test_hashed_line_of_another_host_does_not_verify(world):
    """Mutant: knownhosts_match_hashed() returns 1 for any name. A hashed
    line for another host holding this server's very key must not vouch
    for it (the existing hashed tests only have lines that name it)."""
    sshd = world.sshd("sshd1")
    kh = world.known_hosts("[127.0.0.1]:%d %s" % (alloc_port(),
                                                  sshd.host_key.pub_line),
                           name="known_hosts_hashed")
    subprocess.run(["/usr/bin/ssh-keygen", "-H", "-f", str(kh)], check=True,
                   capture_output=True, stdin=subprocess.DEVNULL)
    assert "127.0.0.1" not in kh.read_text() and "|1|" in kh.read_text()
    d, cfg, rport = one_tunnel(world, world.server_cfg(sshd,
                                                       known_hosts=kh))
    srv = d.wait_server("s1", "failed", TIMEOUT)
    assert "unknown host key for [127.0.0.1]:%d" % sshd.port in \
        srv["last_error"], srv
    assert "Accepted publickey" not in sshd.log_text()
    assert is_refused(rport)


# ---------------------------------------------------------------------------
# 2. The reclaim kill spares what is not our stale session


def seed_state(world, sshd, records):
    """The state file a previous run would have left for server s1 of
    tunnels.yaml: a header naming the server, then "PID START NAME KEEP"."""
    state = world.dir / "state"
    state.mkdir(mode=0o700, exist_ok=True)
    path = state / "tunnels.s1.session"
    path.write_text("127.0.0.1 %d %s\n" % (sshd.port, world.user) +
                    "".join("%d %s %s -\n" % r for r in records))
    return path


def test_reclaim_spares_live_sshd_named_process_with_wrong_start(world):
    """Mutant: the kill command without its name and start-time test
    (reclaim_kill_command: `if false; then echo "other $n"; elif kill...`).
    A live process of ours named sshd, remembered with another start time
    (its PID reused): the daemon tries to end it after a refused forward,
    the guard sees the other start time, the process lives."""
    victim_bin = world.dir / "sshd"         # comm "sshd"
    shutil.copy("/bin/sleep", victim_bin)
    victim = spawn(world, [str(victim_bin), "600"])
    assert open("/proc/%d/comm" % victim.pid).read().strip() == "sshd"
    wrong = str(int(proc_start_time(victim.pid)) + 100)

    sshd = world.sshd("sshd1", extra=["ClientAliveInterval 0"])
    rport = alloc_port()
    blocker = listener(rport)       # the server cannot listen there
    world.on_cleanup(blocker.close)
    seed_state(world, sshd, [(victim.pid, wrong, "sshd")])
    d = world.bring_up(server_cfg(world, sshd), remote=rport,
                       backoff=FAST_BACKOFF, wait=None).daemon

    other = "server-side pid %d is another process now (sshd)" % victim.pid
    wait_until(lambda: other in d.log_text(), TIMEOUT,
               "the kill command to report another process")
    log = d.log_text()
    assert "ending our stale server-side session: p=%d;" % victim.pid in log
    assert "ended our stale server-side session pid %d" % victim.pid \
        not in log
    assert pid_alive(victim.pid) and victim.poll() is None, \
        "a process that is not our session was ended"
    st = d.wait_status(lambda st: d.tunnel("t1", st).get("waiting_reason")
                       == "stale_session", TIMEOUT,
                       "t1 waiting for a stale session nobody can end")
    assert d.server("s1", st)["state"] == "up"

    # The port frees: the tunnel comes up; the process still lives.
    blocker.close()
    d.wait_tunnel("t1", "up", TIMEOUT)
    assert try_echo(rport)
    assert pid_alive(victim.pid) and victim.poll() is None


def test_reclaim_never_ends_a_remembered_process_of_unknown_name(world):
    """Mutant: reclaim_parse_rec() takes any name from the state file as
    endable (the known-name test dropped). A state file naming a live
    `sleep` with its true start time: never ended, and status says why."""
    victim = spawn(world, ["/bin/sleep", "600"])
    start = proc_start_time(victim.pid)

    sshd = world.sshd("sshd1", extra=["ClientAliveInterval 0"])
    rport = alloc_port()
    blocker = listener(rport)
    world.on_cleanup(blocker.close)
    seed_state(world, sshd, [(victim.pid, start, "sleep")])
    d = world.bring_up(server_cfg(world, sshd), remote=rport,
                       backoff=FAST_BACKOFF, wait=None).daemon
    st = d.wait_status(lambda st: d.tunnel("t1", st).get("waiting_reason")
                       == "stale_session_server_keepalive", TIMEOUT,
                       "t1 waiting: a remembered process not ours to end")
    err = d.tunnel("t1", st)["last_error"]
    assert "pid %d, sleep" % victim.pid in err, err
    assert "not a known per-connection server process" in err, err
    assert "ending our stale server-side session" not in d.log_text()
    assert pid_alive(victim.pid) and victim.poll() is None


# ---------------------------------------------------------------------------
# 3. reclaim_stale_port: false runs no command on the server


def test_reclaim_off_runs_no_exec_and_waits_as_stale(world):
    """Mutant: reclaim_session_up() learns whatever reclaim_stale_port
    says (learn_wanted = 1). With the flag off: no exec request ever
    reaches sshd, status says exec "unknown", and after a black hole the
    refused port waits as "stale_session" (nothing is ended)."""
    sshd = world.sshd("sshd1", extra=["ClientAliveInterval 0"])
    relay = Relay(world, sshd.port).start()
    kh = world.known_hosts(sshd.known_hosts_line(port=relay.port),
                           name="known_hosts_relay")
    d, cfg, rport = one_tunnel(world, server_cfg(
        world, sshd, known_hosts=kh, port=relay.port,
        reclaim_stale_port=False))
    d.wait_tunnel("t1", "up", TIMEOUT)
    assert try_echo(rport)
    old = children(sshd.pid)        # the connection's own sshd process
    assert len(old) == 1, old

    carriers = relay.live_connection_pids()
    assert len(carriers) == 1, carriers
    relay.stall(carriers[0])
    st = d.wait_status(
        lambda st: d.server("s1", st)["connects"] >= 2 and
        d.tunnel("t1", st).get("waiting_reason") == "stale_session",
        DEAD_S + 10, 't1 waiting with waiting_reason "stale_session"')
    t = d.tunnel("t1", st)
    assert t["state"] == "waiting", t
    assert "reclaim_stale_port is off" in t["last_error"], t
    srv = d.server("s1", st)
    assert srv["state"] == "up", srv
    assert srv["exec"] == "unknown" and srv["server_pid"] is None, srv

    log = sshd.log_text()
    execs = [l for l in log.splitlines()
             if re.search(r"request exec|req exec|Starting session: command",
                          l)]
    assert not execs, "exec requests with reclaim_stale_port off:\n%s" % \
        "\n".join(execs)
    # sshd logs other channel requests at this level (the check can fail).
    assert "server_input_global_request: rtype tcpip-forward" in log
    assert "ending our stale" not in d.log_text()
    assert all(pid_alive(p) for p in old), "the stale session was ended"
    assert faults.proc_state(carriers[0]) == "T"


# ---------------------------------------------------------------------------
# 4. local_errors counts refused local connects


@pytest.mark.parametrize("kind", ["tcp", "unix"])
def test_local_errors_counts_each_refused_connection(world, kind):
    """Mutants: `b->stats->local_errors++` (bridge_connected, a TCP target
    that refuses) or `st->local_errors++` (bridge_new, a unix socket that
    is not there) removed."""
    sshd = world.sshd("sshd1")
    if kind == "tcp":
        local = alloc_port()        # nothing listens there
    else:
        local = "unix:%s" % (world.dir / "nobody.sock")
    rport = alloc_port()
    cfg, _ = world.write_config({"s1": world.server_cfg(sshd)}, [
        {"name": "t1", "server": "s1", "remote": rport, "local": local}])
    d = world.daemon(cfg)
    t = d.wait_tunnel("t1", "up", TIMEOUT)
    assert t["local_errors"] == 0, t
    n = 5
    for i in range(n):
        s = connect(rport)
        s.settimeout(5)
        try:
            got = s.recv(10)
        except ConnectionResetError:
            got = b""
        finally:
            s.close()
        assert got == b"", "data from a refused local target: %r" % got
        d.wait_status(lambda st: d.tunnel("t1", st)["total_connections"] ==
                      i + 1 and d.tunnel("t1", st)["active_connections"]
                      == 0, 5, "connection %d to be closed" % (i + 1))
    t = d.tunnel("t1")
    assert t["local_errors"] == n, t
    assert t["total_connections"] == n, t
    assert t["state"] == "up", t


# ---------------------------------------------------------------------------
# 5. The control socket is 0600 whatever the umask


def test_control_socket_mode_0600_under_umask_0(world):
    """Mutant: control_new() without its umask(0177) around bind()."""
    sshd = world.sshd("sshd1")
    d, cfg, rport = one_tunnel(world, world.server_cfg(sshd), wrapper=[
        "/bin/sh", "-c", 'umask 000 && exec "$@"', "sh"])
    d.wait_tunnel("t1", "up", TIMEOUT)
    mode = os.stat(d.control).st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o600, "control socket mode %o" % \
        stat.S_IMODE(mode)


# ---------------------------------------------------------------------------
# 6. Status "ready" is false until the first attempt settles


def test_status_ready_false_while_first_connect_pending(world):
    """Mutant: supervisor_status_json() prints "ready":true always. A
    server that accepts TCP and never sends its banner, connect_timeout
    30s: not ready; the real sshd appears on that port: up and ready."""
    port = alloc_port()
    silent = listener(port)
    world.on_cleanup(silent.close)
    sshd = world.sshd("sshd1", start=False, port=port)
    d, cfg, rport = one_tunnel(world, world.server_cfg(
        sshd, connect_timeout="30s"))
    d.wait_server("s1", "handshake", TIMEOUT)

    def not_ready():
        st = d.status()
        assert st["ready"] is False, st
        assert d.server("s1", st)["state"] == "handshake", st
    observe(2, not_ready, interval=0.2)

    silent.close()          # resets the pending connection
    sshd.start()
    d.wait_tunnel("t1", "up", TIMEOUT)
    assert d.status()["ready"] is True
    assert try_echo(rport)


# ---------------------------------------------------------------------------
# 7. Two daemons do not retry in lock-step

def test_backoff_jitter_differs_between_daemons_and_servers(world):
    """Mutant: backoff_init() ignores its seed (every schedule starts from
    the same constant). Two daemons with two servers each, all refused:
    the four sequences of retry delays all differ."""
    dead = alloc_port()
    n = 8

    def start(tag):
        servers = {}
        tunnels = []
        for s in ("s1", "s2"):
            servers[s] = {"host": "127.0.0.1", "port": dead,
                          "user": world.user,
                          "identity": str(world.user_key.path),
                          "known_hosts": str(world.known_hosts(
                              "[127.0.0.1]:%d %s" % (
                                  dead, world.key("h_%s_%s" % (tag, s))
                                  .pub_line), name="kh_%s_%s" % (tag, s)))}
            tunnels.append({"name": "t_%s" % s, "server": s,
                            "remote": alloc_port(), "local": alloc_port()})
        cfg, ctl = world.write_config(
            servers, tunnels, name="%s.yaml" % tag,
            backoff={"initial": "1s", "max": "60s"},
            control=str(world.dir / ("%s.sock" % tag)),
            state_dir=str(world.dir / ("state_%s" % tag)))
        # Debug level: repeated failures are logged (with their delays).
        return world.daemon(cfg, control=ctl, name=tag,
                            extra_env={"TUNNELS_DEBUG": "1"})

    daemons = [start("a"), start("b")]

    def enough():
        seqs = {}
        for d in daemons:
            for srv, v in retry_delays(d.log_text()).items():
                seqs["%s/%s" % (d.name, srv)] = v[:n]
        return len(seqs) == 4 and all(len(v) == n for v in seqs.values()) \
            and seqs
    seqs = wait_until(enough, 3 * n + 10, "%d refused connects per server"
                      % n)
    print("\nRESULT retry delays: %s" % seqs)
    for v in seqs.values():
        assert all(0.5 <= x <= 1.0 for x in v), seqs   # cheap: [0.5, 1] s
    names = sorted(seqs)
    same = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]
            if seqs[a] == seqs[b]]
    assert not same, "identical retry schedules: %s\n%s" % (same, seqs)
