"""
Network change notifications (DESIGN §5.2): a link coming up makes a
backed-off server retry at once instead of waiting out its backoff. Runs in
a network namespace the test creates; the "network change" is a veth pair
brought up inside it.
"""

import time

import apps
import faults
from harness import alloc_port, wait_until


class NotSsh(apps.App):
    """Answers every connection with a line that is not an SSH banner
    (a costly failure: the daemon backs off for real), counting them."""

    def handle(self, c, n):
        c.sendall(b"HTTP/1.0 400 not ssh\r\n\r\n")


def test_link_up_retries_a_backed_off_server_at_once(world):
    ns = faults.NetNS(world)
    with ns.entered():
        bogus = world.app(NotSsh())
        key = world.user_key
        kh = world.dir / "known_hosts"
        kh.write_text("[127.0.0.1]:%d ssh-ed25519 %s\n" % (
            bogus.port, key.pub_line.split()[1]))
        cfg, _ = world.write_config(
            {"s1": {"host": "127.0.0.1", "port": bogus.port,
                    "user": world.user, "identity": str(key.path),
                    "known_hosts": str(kh), "keepalive": "2s",
                    "connect_timeout": "5s"}},
            [{"name": "t1", "server": "s1", "remote": alloc_port(),
              "local": alloc_port()}],
            backoff={"initial": "30s", "max": "60s"})
        d = world.daemon(cfg)
        srv = d.wait_server("s1", "backoff", 10)
        assert srv.get("retry_in_s", 0) >= 25, srv
        attempts = bogus.accepted
        assert attempts == 1, "attempts before the change: %d" % attempts

        # No IPv6 on the new links: its addresses would arrive a second
        # later (duplicate address detection) as a second, separate change.
        ns.run("sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1")
        t0 = time.monotonic()
        ns.run("ip", "link", "add", "tv0", "type", "veth", "peer", "name",
               "tv1")
        ns.run("ip", "link", "set", "tv0", "up")
        ns.run("ip", "link", "set", "tv1", "up")
        wait_until(lambda: bogus.accepted > attempts, 5,
                   "a new connection attempt after the link came up")
        took = time.monotonic() - t0
        print("retried %.2fs after the link came up (backoff said %ds)" %
              (took, srv["retry_in_s"]))
        # 0.5 s debounce, then the attempt itself.
        assert took <= 2.0, "retried %.2fs after the link came up" % took
        assert "network changed" in d.log_text()
        # One burst of netlink events, one retry: no storm.
        d.wait_server("s1", "backoff", 10)
        assert bogus.accepted == attempts + 1, bogus.accepted
