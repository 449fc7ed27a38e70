"""
Permanent server errors (DESIGN §5.1): an unknown or changed host key and a
rejected user key put the server in "failed" with a clear last_error, its
tunnels "failed" too, and nothing is forwarded. Never a silent accept.
"""

import re

import pytest

import apps
from harness import alloc_port, echo_ok, is_refused, run_cli

HOSTKEY_RE = re.compile(r"host[ _-]?key", re.I)


def bring_up(world, sshd, known_hosts):
    echo = world.app(apps.EchoServer())
    rport = alloc_port()
    servers = {"s1": world.server_cfg(sshd, known_hosts=known_hosts)}
    cfg, _ = world.write_config(servers, [
        {"name": "t1", "server": "s1", "remote": rport, "local": echo.local},
        {"name": "t2", "server": "s1", "remote": alloc_port(),
         "local": echo.local},
    ])
    return world.daemon(cfg), cfg, rport


def assert_failed(d, pattern, what):
    srv = d.wait_server("s1", "failed", 15)
    err = srv.get("last_error")
    assert isinstance(err, str) and err, "server failed without last_error"
    assert re.search(pattern, err), \
        "server last_error %r does not mention %s" % (err, what)
    st = d.wait_status(lambda st: all(t["state"] == "failed"
                                      for t in st["tunnels"]), 5,
                       "every tunnel of the failed server to be failed")
    for t in st["tunnels"]:
        assert isinstance(t.get("last_error"), str) and t["last_error"], t
    return srv, st


def fingerprint_logged(d, fp):
    """The daemon log has a line naming the host key and its fingerprint."""
    lines = [l for l in d.log_text().splitlines() if fp in l]
    assert any(HOSTKEY_RE.search(l) for l in lines), \
        "no log line mentions the host key with fingerprint %s; lines " \
        "with it: %r" % (fp, lines[:5])


def accepted_logins(text, user):
    return text.count("Accepted publickey for %s" % user)


@pytest.mark.parametrize("variant", ["no_entry", "other_key"])
def test_unknown_host_key(world, variant):
    sshd = world.sshd("sshd1")
    if variant == "other_key":
        # known_hosts names this host:port but with a different key
        kh = world.known_hosts("[127.0.0.1]:%d %s" % (
            sshd.port, world.key("imposter_host").pub_line))
    else:
        # known_hosts has entries, none for [127.0.0.1]:PORT
        kh = world.known_hosts(
            "[127.0.0.1]:%d %s" % (alloc_port(), sshd.host_key.pub_line),
            "other.example %s" % world.key("other_host").pub_line)
    d, cfg, rport = bring_up(world, sshd, kh)
    assert_failed(d, HOSTKEY_RE, "the host key")
    assert is_refused(rport), "remote port is listening after a host key " \
        "failure"
    fingerprint_logged(d, sshd.host_key.fingerprint)
    assert accepted_logins(sshd.log_text(), world.user) == 0, \
        "the daemon authenticated to a server whose host key it rejected"
    r = run_cli("status", "-c", cfg)
    assert r.returncode == 3, (r.returncode, r.stdout, r.stderr)


def test_changed_host_key(world):
    sshd = world.sshd("sshd1")
    kh = world.known_hosts(sshd)
    d, cfg, rport = bring_up(world, sshd, kh)
    d.wait_all_up(10)
    assert echo_ok(rport)
    old_fp = sshd.host_key.fingerprint

    # Same port, new host key; the old session is killed so the daemon
    # must reconnect and meet the new key.
    sshd.restart(new_host_key=True)
    assert sshd.host_key.fingerprint != old_fp
    srv, st = assert_failed(d, HOSTKEY_RE, "the host key")
    assert "HOST KEY CHANGED" in srv["last_error"], srv
    assert is_refused(rport)
    fingerprint_logged(d, sshd.host_key.fingerprint)
    after = sshd.log_text().rsplit("=== harness: starting sshd", 1)[1]
    assert accepted_logins(after, world.user) == 0, \
        "the daemon authenticated to a server with a changed host key"
    assert d.running()


def test_wrong_user_key(world):
    other = world.key("not_ours_ed25519")
    sshd = world.sshd("sshd1", authorized=[other])
    kh = world.known_hosts(sshd)
    d, cfg, rport = bring_up(world, sshd, kh)
    assert_failed(d, re.compile(r"auth|publickey|denied|reject|permission",
                                re.I), "authentication")
    assert is_refused(rport)
    assert accepted_logins(sshd.log_text(), world.user) == 0
    assert d.running()
