"""
pytest glue for the integration harness (harness.py, apps.py).

Fixtures:
  world     a harness.World: private temp dir, cleanup stack, factories
            (world.sshd(), world.app(), world.write_config(), world.daemon())
  sshd      one started sshd accepting world.user_key
  echo      one started apps.EchoServer on 127.0.0.1
  bring_up  world.bring_up: start an sshd, write a one-tunnel config,
            start the daemon, wait until the tunnel is up (harness.Up)

On failure (any phase) the daemon log, the sshd logs and the config are
attached to the report as sections, and the temp dir is kept (its path is
shown); TEST_KEEP=1 keeps it on success too.
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import apps  # noqa: E402
import harness  # noqa: E402


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
    world = getattr(item, "_tunnels_world", None)
    if world is None or not rep.failed:
        return
    rep.sections.append(("tunnels: temp dir (kept)", str(world.dir)))
    for title, path, lines in world.logs:
        rep.sections.append(("tunnels: " + title,
                             harness.log_tail(path, lines)))


@pytest.fixture
def world(request):
    w = harness.World(request.node.name)
    request.node._tunnels_world = w
    yield w

    def failed():
        return any(getattr(request.node, "rep_" + ph, None) is not None and
                   getattr(request.node, "rep_" + ph).failed
                   for ph in ("setup", "call"))
    errors, kept = w.close(failed())
    if errors:
        msg = "\n".join("%s: %s" % (type(e).__name__, e) for e in errors)
        pytest.fail("teardown problems (temp dir kept: %s):\n%s" %
                    (w.dir, msg), pytrace=False)


@pytest.fixture
def sshd(world):
    return world.sshd("sshd1")


@pytest.fixture
def echo(world):
    return world.app(apps.EchoServer())


@pytest.fixture
def bring_up(world):
    """The usual start, as a call: bring_up(**kw) -> harness.Up (see
    World.bring_up for the arguments: server, app, remote, backoff, wait,
    daemon_kw and top-level config keys)."""
    return world.bring_up
