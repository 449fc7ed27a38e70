"""
A tunnel added after the server's policy changed comes up on reload (issue
12, "the daemon follows"). sshd reads a key's options (permitlisten) when
the session logs in, so the session that was up before the change keeps
refusing the new port; the daemon logs in again once per reload when a
tunnel the reload added is refused, and only then calls it a policy
refusal. Real sshd, real authorized_keys with permitlisten.
"""

import apps
from harness import alloc_port, echo_ok, is_refused


def key_line(world, *ports):
    """authorized_keys line allowing exactly these loopback ports."""
    opts = ",".join('permitlisten="127.0.0.1:%d"' % p for p in ports)
    return world.user_key.authorized_line("restrict,port-forwarding," + opts)


def test_added_tunnel_comes_up_after_the_policy_allows_it(world):
    pa, pb = alloc_port(), alloc_port()
    sshd = world.sshd("sshd1", authorized=[key_line(world, pa)])
    echo = world.app(apps.EchoServer())
    servers = {"s1": world.server_cfg(sshd)}
    ta = {"name": "ta", "server": "s1", "remote": pa, "local": echo.local}
    tb = {"name": "tb", "server": "s1", "remote": pb, "local": echo.local}
    cfg, _ = world.write_config(servers, [ta])
    d = world.daemon(cfg)
    d.wait_all_up(10)
    assert echo_ok(pa)

    # Added in the config before the server allows it: a policy refusal
    # that says what to do, and the session is not replaced in a loop.
    world.write_config(servers, [ta, tb])
    d.reload()
    # On the way it may wait on a reclaim first (is a stale session of
    # ours holding the port?); the policy is what it settles on.
    st = d.wait_status(lambda st: d.tunnel("tb", st).get("waiting_reason")
                       == "policy", 15, "tb waiting on the server's policy")
    t = d.tunnel("tb", st)
    assert t["state"] == "waiting", t
    assert "server-setup --script" in t["last_error"], t
    connects = d.server("s1")["connects"]
    assert connects == 2, "expected one fresh login for the reload"

    # The server now allows it; the next reload brings it up.
    sshd.set_authorized([key_line(world, pa, pb)])
    d.reload()
    d.wait_tunnel("tb", "up", 15)
    assert echo_ok(pb) and echo_ok(pa)
    assert d.server("s1")["connects"] == connects + 1
    # A reload that changes nothing refused creates no new login.
    d.reload()
    assert not is_refused(pb)
    assert d.server("s1")["connects"] == connects + 1
