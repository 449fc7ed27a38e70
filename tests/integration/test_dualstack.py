"""
Dual-stack connects (RFC 8305 "Happy Eyeballs", src/dial.c): a server
host name that resolves to ::1 and 127.0.0.1, one family black-holed
(nftables drops its SYNs on input: nothing ever answers). The tunnel must
come up over the other family well within connect_timeout, on the first
attempt. With every address failing, the server's last_error names each
address with its own cause. Once connected, the handshake has its own
connect_timeout.

Everything runs in a network namespace the test creates (loopback only,
with 127.0.0.1 and ::1), with the name in /etc/netns/NS/hosts, which
`ip netns exec` (the daemon's wrapper) bind-mounts over /etc/hosts. glibc
sorts ::1 first for such a file, whatever the file's order; the tests
assert outcomes, never which address was tried first.
"""

import os
import shutil
import subprocess
import time

import apps
import faults
from harness import alloc_port, echo_ok

NAME = "dualhost"
TIMEOUT_S = 10          # connect_timeout where the tunnel must come up
UP_WITHIN_S = 5.0       # "well within" it: a sequential connect needs 10 s
FAIL_TIMEOUT_S = 3      # connect_timeout where every address fails


class DialNS(faults.NetNS):
    """A namespace named tunnels-dial-<random> (so a leftover says who made
    it) with its own hosts file; both removed at cleanup."""

    def __init__(self, world):
        self.ip = faults.require_tool("ip")
        self.world = world
        self.name = "tunnels-dial-%s" % os.urandom(4).hex()
        r = subprocess.run([self.ip, "netns", "add", self.name],
                           capture_output=True, text=True)
        assert r.returncode == 0, "ip netns add %s: %s" % (self.name,
                                                           r.stderr)
        world.on_cleanup(self.delete)
        self.etc = "/etc/netns/%s" % self.name
        os.makedirs(self.etc)
        world.on_cleanup(self.remove_etc)
        with open(os.path.join(self.etc, "hosts"), "w") as f:
            f.write("127.0.0.1 localhost\n"
                    "::1 localhost ip6-localhost\n"
                    "127.0.0.1 %s\n"
                    "::1 %s\n" % (NAME, NAME))
        self.run("ip", "link", "set", "lo", "up")
        # Both loopback addresses, or the test is not dual-stack.
        out = self.run("ip", "-o", "addr", "show", "dev", "lo").stdout
        assert "inet 127.0.0.1/" in out and "inet6 ::1/" in out, out

    def remove_etc(self):
        shutil.rmtree(self.etc, ignore_errors=True)
        try:
            os.rmdir("/etc/netns")          # only when nobody else uses it
        except OSError:
            pass

    def resolved(self):
        """What glibc returns for NAME inside the namespace, in order."""
        out = self.run("getent", "ahosts", NAME).stdout
        seen = []
        for line in out.splitlines():
            addr = line.split()[0]
            if "STREAM" in line and addr not in seen:
                seen.append(addr)
        return seen

    def block(self, port, rules):
        """nftables on input for TCP to `port`: rules maps a family ("ip",
        "ip6") to what happens to its packets: DROP (a black hole), RESET
        (refused), FIRST_SYN (the first SYN lost: connects after the
        kernel's 1 s SYN retransmission)."""
        faults.require_tool("nft")
        lines = "".join(
            "    meta nfproto %s tcp dport %d %s\n" % (
                "ipv4" if fam == "ip" else "ipv6", port, action)
            for fam, action in rules.items())
        self.run("nft", "-f", "-", input=(
            "table inet tunnels_dial {\n"
            "  chain input {\n"
            "    type filter hook input priority filter; policy accept;\n"
            "%s"
            "  }\n"
            "}\n" % lines))


DROP = "counter drop"
RESET = "counter reject with tcp reset"
# A SYN is 60-80 bytes: the quota covers exactly one.
FIRST_SYN = "tcp flags syn quota until 100 bytes counter drop"


def dual_world(world, connect_timeout, port=None):
    """The namespace, an sshd on 127.0.0.1 and ::1 inside it (unless a
    port is given: then nothing is started), an echo app, the config."""
    ns = DialNS(world)
    with ns.entered():
        sshd = None
        if port is None:
            sshd = world.sshd("sshd1", listen_v6=True)
            port = sshd.port
        echo = world.app(apps.EchoServer())
        rport = alloc_port()
    kh = world.dir / "known_hosts"
    key = (sshd.host_key if sshd else world.key("unused_host")).pub_line
    kh.write_text("[%s]:%d %s\n" % (NAME, port, key))
    srv = {"host": NAME, "port": port, "user": world.user,
           "identity": str(world.user_key.path), "known_hosts": str(kh),
           "keepalive": "2s", "keepalive_count": 3,
           "connect_timeout": "%ds" % connect_timeout}
    cfg, _ = world.write_config(
        {"s1": srv}, [{"name": "t1", "server": "s1", "remote": rport,
                       "local": echo.local}],
        backoff={"initial": "1s", "max": "30s"})
    assert ns.resolved() and set(ns.resolved()) == {"::1", "127.0.0.1"}, \
        "%s resolves to %s in the namespace" % (NAME, ns.resolved())
    return ns, port, cfg, rport


def start(world, ns, cfg):
    """The daemon inside the namespace (so it sees the namespace's
    /etc/hosts); returns it and its start time."""
    t0 = time.monotonic()
    d = world.daemon(cfg, wrapper=[ns.ip, "netns", "exec", ns.name])
    return d, t0


def up_over_the_other_family(world, dead, live_addr):
    ns, port, cfg, rport = dual_world(world, TIMEOUT_S)
    ns.block(port, {dead: DROP})
    print("glibc order for %s: %s" % (NAME, ns.resolved()))
    d, t0 = start(world, ns, cfg)
    st = d.wait_status(
        lambda st: d.server("s1", st)["state"] == "up" and
        d.tunnel("t1", st)["state"] == "up", TIMEOUT_S + 5,
        "server s1 and tunnel t1 up")
    took = time.monotonic() - t0
    srv = d.server("s1", st)
    print("up after %.2fs over %s (connect_timeout %ds)" % (
        took, srv["address"], TIMEOUT_S))
    assert srv["address"] == live_addr % port, srv
    # On the first attempt: no timeout, no backoff, no second try.
    assert srv["connects"] == 1 and srv["last_error"] is None, srv
    assert took < UP_WITHIN_S, (
        "up after %.2fs: the black-holed address held the connect" % took)
    with ns.entered():
        assert echo_ok(rport), "no echo through the tunnel"
    assert "during" not in d.log_text()
    return ns, d


def test_ipv6_black_holed_ipv4_wins(world):
    up_over_the_other_family(world, "ip6", "127.0.0.1:%d")


def test_ipv4_black_holed_ipv6_wins(world):
    up_over_the_other_family(world, "ip", "[::1]:%d")


def all_fail(world, hows):
    """Both families blocked (hows: family -> DROP|RESET): one error
    naming each address with its own cause, after one connect_timeout."""
    ns, port, cfg, rport = dual_world(world, FAIL_TIMEOUT_S)
    ns.block(port, hows)
    d, t0 = start(world, ns, cfg)
    srv = d.wait_server("s1", "backoff", 4 * FAIL_TIMEOUT_S)
    took = time.monotonic() - t0
    err = srv["last_error"] or ""
    print("backoff after %.2fs: %s" % (took, err))
    cause = {DROP: "timed out after %ds" % FAIL_TIMEOUT_S,
             RESET: "connection refused"}
    assert err.startswith("connect to %s: " % NAME), err
    assert "[::1]:%d: %s" % (port, cause[hows["ip6"]]) in err, err
    assert "127.0.0.1:%d: %s" % (port, cause[hows["ip"]]) in err, err
    assert err.count(";") == 1, err
    # The attempts ran side by side: one black hole's deadline, not two.
    assert took < 2 * FAIL_TIMEOUT_S, "backoff only after %.2fs" % took
    assert srv["state"] == "backoff" and srv["connects"] == 0, srv
    assert d.tunnel("t1")["state"] == "connecting"
    return err


def test_both_black_holed_each_address_named(world):
    all_fail(world, {"ip6": DROP, "ip": DROP})


def test_black_hole_and_refused_each_with_its_cause(world):
    all_fail(world, {"ip6": DROP, "ip": RESET})


class Silent(apps.ReadThenReply):
    """Accepts and says nothing until the client closes: the SSH banner
    never comes."""


def test_handshake_has_its_own_deadline(world):
    """::1 black-holed, 127.0.0.1 connects only after its first SYN is
    lost (about 1 s) and then never speaks SSH: the handshake times out on
    a connect_timeout of its own, started at the connect, and says so."""
    ns = DialNS(world)
    with ns.entered():
        silent = world.app(Silent())
    port = silent.port
    kh = world.dir / "known_hosts"
    kh.write_text("[%s]:%d %s\n" % (NAME, port,
                                    world.key("unused_host").pub_line))
    cfg, _ = world.write_config(
        {"s1": {"host": NAME, "port": port, "user": world.user,
                "identity": str(world.user_key.path), "known_hosts": str(kh),
                "connect_timeout": "%ds" % FAIL_TIMEOUT_S}},
        [{"name": "t1", "server": "s1", "remote": alloc_port(),
          "local": alloc_port()}],
        backoff={"initial": "1s", "max": "30s"})
    ns.block(port, {"ip6": DROP, "ip": FIRST_SYN})
    d, t0 = start(world, ns, cfg)
    srv = d.wait_server("s1", "backoff", 4 * FAIL_TIMEOUT_S)
    took = time.monotonic() - t0
    print("backoff after %.2fs: %s" % (took, srv["last_error"]))
    assert srv["last_error"] == "timed out after %ds during handshake" % (
        FAIL_TIMEOUT_S), srv
    assert srv["address"] == "127.0.0.1:%d" % port, srv
    assert silent.accepted == 1
    # One deadline over connect and handshake would have ended at
    # connect_timeout; the connect alone took a SYN retransmission (1 s).
    assert took >= FAIL_TIMEOUT_S + 0.9, took
