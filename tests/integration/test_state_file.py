"""
The reclaim state file (<state_dir>/<config stem>.<server>.session, see
reclaim.c) is written through a temp file of a unique name created with
O_EXCL, and read only when it is a regular file (issue 10, finding 7):
whatever is planted in the state directory is neither followed nor
truncated, and a FIFO there cannot block the daemon's start.
"""

import os

import pytest

import apps
import harness


def start(world, sshd, state):
    up = world.bring_up(sshd, wait=None, state_dir=str(state))
    return up.daemon, up.remote


def wait_saved(d, path):
    """The record is written once the exec channel learned our pid."""
    st = d.wait_status(lambda st: d.server("s1", st).get("server_pid"), 15,
                       "the server-side pid learned")
    pid = d.server("s1", st)["server_pid"]
    harness.wait_until(lambda: os.path.isfile(path) and
                       not os.path.islink(path) and
                       ("\n%d " % pid) in open(path).read(), 10,
                       "%s written with pid %d" % (path, pid))
    return pid


def test_temp_name_planted_symlink_not_followed(world, sshd):
    state = world.dir / "state"
    state.mkdir(mode=0o700)
    path = state / "tunnels.s1.session"
    victim = world.dir / "victim"
    victim.write_text("precious\n")
    # The temp name older versions always used.
    planted = state / "tunnels.s1.session.tmp"
    planted.symlink_to(victim)
    d, remote = start(world, sshd, state)
    d.wait_tunnel("t1", "up", 15)
    wait_saved(d, path)
    assert victim.read_text() == "precious\n", "the planted link was followed"
    assert planted.is_symlink() and os.readlink(planted) == str(victim)
    text = path.read_text()
    assert text.startswith("127.0.0.1 %d %s\n" % (sshd.port, world.user)), \
        text
    assert (path.stat().st_mode & 0o777) == 0o600, oct(path.stat().st_mode)
    # No temp file left behind.
    assert sorted(p.name for p in state.iterdir()) == sorted(
        [path.name, planted.name]), list(state.iterdir())
    assert harness.echo_ok(remote)


@pytest.mark.parametrize("kind", ["fifo", "symlink"])
def test_state_file_not_regular_is_ignored(world, sshd, kind):
    state = world.dir / "state"
    state.mkdir(mode=0o700)
    path = state / "tunnels.s1.session"
    if kind == "fifo":
        # Opening it for reading would block until a writer comes.
        os.mkfifo(path, 0o600)
    else:
        # A record of a "previous session" elsewhere: never read through
        # a link.
        planted = world.dir / "planted"
        planted.write_text("127.0.0.1 %d %s\n2 1 sshd -\n" % (
            sshd.port, world.user))
        path.symlink_to(planted)
    d, remote = start(world, sshd, state)
    d.wait_tunnel("t1", "up", 15)
    assert "remembered" not in d.log_text(), d.log_text()
    # The first save replaces it with a regular file.
    wait_saved(d, path)
    assert harness.echo_ok(remote)


def test_clean_stops_are_not_remembered(world, sshd):
    """A stop the server answers (sshd closes the connection as its
    session process exits) leaves no record: restarts never pile up
    "previous sessions", and no kill command ever runs (issue 12)."""
    state = world.dir / "state"
    state.mkdir(mode=0o700)
    path = state / "tunnels.s1.session"
    echo = world.app(apps.EchoServer())
    remote = harness.alloc_port()
    cfg, _ = world.write_config(
        {"s1": world.server_cfg(sshd)},
        [{"name": "t1", "server": "s1", "remote": remote,
          "local": echo.local}], state_dir=str(state))
    pids = []
    for i in range(3):
        d = world.daemon(cfg, name="daemon%d" % i)
        d.wait_tunnel("t1", "up", 15)
        pids.append(wait_saved(d, path))
        assert harness.echo_ok(remote)
        d.stop(timeout=5.0, expect=0)
        log = d.log_text()
        assert "remembered" not in log, log
        assert "ending our stale server-side session" not in log, log
        # Only the server line is left: no record of the ended session.
        lines = path.read_text().splitlines()
        assert len(lines) == 1 and lines[0] == "127.0.0.1 %d %s" % (
            sshd.port, world.user), lines
    assert len(set(pids)) == 3, pids
