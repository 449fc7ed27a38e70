"""
The reclaim state file (<state_dir>/<config stem>.<server>.session, see
reclaim.c) is written through a temp file of a unique name created with
O_EXCL, and read only when it is a regular file (issue 10, finding 7):
whatever is planted in the state directory is neither followed nor
truncated, and a FIFO there cannot block the daemon's start.
"""

import os

import pytest

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
