"""
Every current server reachable, and every handshake failure explained
(issue: modern SSH). Real OpenSSH servers configured the way the field
configures them: hardened to AEAD ciphers and EtM MACs only, left with
nothing but SHA-1/CBC, sharing no key exchange with us, refusing new
connections (MaxStartups) and timing out a slow AuthorizedKeysCommand.
"""

import hashlib
import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from harness import connect, echo_roundtrip, recv_exact, run_cli, wait_until

# AuthorizedKeysCommand for the slow-lookup test: waits the seconds in
# file $1 (a slow LDAP or HTTP key lookup), then prints the keys in $2.
SLOW_KEYS = """#!/bin/sh
sleep "$(cat "$1")"
cat "$2"
"""


def trusted_script(world, text):
    """Write an executable where sshd accepts an AuthorizedKeysCommand:
    every directory up to / owned by root and writable by no one else
    (not under /tmp, where the repository itself may live)."""
    d = Path(tempfile.mkdtemp(prefix="tunnels-test-", dir="/run"))
    world.on_cleanup(lambda: shutil.rmtree(d, ignore_errors=True))
    d.chmod(0o755)
    path = d / "keys.sh"
    path.write_text(text)
    path.chmod(0o755)
    return path

# What the ssh-audit hardening guides (and NixOS's default sshd) allow.
HARDENED = {
    "chacha": ["Ciphers chacha20-poly1305@openssh.com",
               "MACs hmac-sha2-512-etm@openssh.com,"
               "hmac-sha2-256-etm@openssh.com,umac-128-etm@openssh.com",
               "KexAlgorithms sntrup761x25519-sha512@openssh.com,"
               "curve25519-sha256,curve25519-sha256@libssh.org"],
    "gcm": ["Ciphers aes256-gcm@openssh.com,aes128-gcm@openssh.com",
            "MACs hmac-sha2-512-etm@openssh.com,umac-128-etm@openssh.com",
            "KexAlgorithms curve25519-sha256"],
    "ctr-etm": ["Ciphers aes256-ctr,aes128-ctr",
                "MACs hmac-sha2-512-etm@openssh.com,"
                "hmac-sha2-256-etm@openssh.com,umac-128-etm@openssh.com",
                "KexAlgorithms diffie-hellman-group16-sha512"],
}
EXPECT = {
    "chacha": ("curve25519-sha256", "chacha20-poly1305@openssh.com"),
    "gcm": ("curve25519-sha256", "aes256-gcm@openssh.com"),
    "ctr-etm": ("diffie-hellman-group16-sha512", "aes256-ctr"),
}


def one_tunnel(world, sshd, backoff_max="20s", **server_over):
    up = world.bring_up(world.server_cfg(sshd, **server_over), wait=None,
                        backoff={"initial": "500ms", "max": backoff_max})
    return up.daemon, up.remote


def checksummed_echo(port, size):
    """Send size random bytes through the echo tunnel; compare digests."""
    data = os.urandom(size)
    s = connect(port, timeout=20)
    try:
        s.sendall(data)
        back = recv_exact(s, size, timeout=30)
    finally:
        s.close()
    return hashlib.sha256(back).hexdigest() == hashlib.sha256(data).hexdigest()


def transient_error(d, timeout):
    """Wait for server s1's first last_error; it must be a backoff (a
    transient failure), not failed. Returns the error text."""
    st = d.wait_status(
        lambda st: (d.find(st, "servers", "s1") or {}).get("last_error"),
        timeout, "a last_error of server s1")
    srv = d.find(st, "servers", "s1")
    assert srv["state"] == "backoff", srv
    return srv["last_error"]


@pytest.mark.parametrize("variant", sorted(HARDENED))
def test_hardened_server(world, variant):
    """A server that allows only AEAD ciphers or EtM MACs is reached with
    the strongest algorithms both sides have, and the data is intact."""
    sshd = world.sshd("hardened", extra=HARDENED[variant])
    d, rport = one_tunnel(world, sshd)
    d.wait_all_up(15)
    assert checksummed_echo(rport, 4 << 20), "data corrupted through tunnel"
    kex, cipher = EXPECT[variant]
    line = [l for l in d.log_text().splitlines() if "connected to" in l]
    assert line, "no 'connected to' line in the daemon log"
    assert "(%s, %s)" % (kex, cipher) in line[-1], line[-1]
    assert "nothing stronger" not in d.log_text()


def test_weak_only_server_warns(world):
    """A server left with only CBC and SHA-1 MACs still works, and the log
    says that nothing stronger was on offer."""
    sshd = world.sshd("old", extra=["Ciphers aes128-cbc",
                                    "MACs hmac-sha1",
                                    "KexAlgorithms diffie-hellman-group14-sha1"])
    d, rport = one_tunnel(world, sshd)
    d.wait_all_up(15)
    assert echo_roundtrip(rport).startswith(b"ping ")
    log = d.log_text()
    for name in ("aes128-cbc", "hmac-sha1", "diffie-hellman-group14-sha1"):
        assert re.search(r"nothing stronger than %s\b" % re.escape(name),
                         log), "no warning naming %s:\n%s" % (name, log)


def test_no_common_key_exchange(world):
    """No key exchange in common: a sentence with both sides' lists, state
    failed, retried only at the backoff cap."""
    sshd = world.sshd("pq", extra=[
        "KexAlgorithms sntrup761x25519-sha512@openssh.com"])
    d, rport = one_tunnel(world, sshd)
    srv = d.wait_server("s1", "failed", 15)
    err = srv["last_error"]
    assert ("no common key exchange: the server offers "
            "sntrup761x25519-sha512@openssh.com; tunnels has "
            "curve25519-sha256,") in err, err
    assert "libssh2 error" not in err and "(-5)" not in err, err
    # At the cap (20 s here): never a retry storm.
    assert srv.get("retry_in_s", 0) >= 10, srv
    assert d.tunnel("t1")["state"] == "failed"


def test_banner_refused_is_transient(world):
    """A server refusing new connections before its banner (MaxStartups)
    is explained and retried; once it accepts again the tunnel comes up."""
    sshd = world.sshd("busy", extra=["MaxStartups 1", "LoginGraceTime 60"])
    # Hold the one unauthenticated slot: connect and say nothing (the
    # harness's own readiness probe may still hold it for a moment).
    def take_slot():
        s = connect(sshd.port)
        if recv_exact(s, 4) == b"SSH-":
            return s
        s.close()
        return None
    hog = wait_until(take_slot, 10, "the one unauthenticated slot",
                     ignore=(OSError, AssertionError))
    try:
        d, rport = one_tunnel(world, sshd, backoff_max="2s")
        err = transient_error(d, 15)
        assert "MaxStartups" in err, err
        assert "libssh2 error" not in err, err
    finally:
        hog.close()
    d.wait_all_up(30)
    assert echo_roundtrip(rport).startswith(b"ping ")


def test_auth_timeout_is_transient(world):
    """sshd's LoginGraceTime ending a slow AuthorizedKeysCommand is not a
    rejected key: the server backs off (not failed) with a sentence that
    says so, and comes up once the lookup is fast again."""
    delay = world.dir / "keys-delay"
    delay.write_text("5\n")
    keys = world.dir / "slow_authorized_keys"
    keys.write_text(world.user_key.pub_line + "\n")
    # No authorized_keys file entries: only the slow command has the key.
    sshd = world.sshd("slow", authorized=[], extra=[
        "LoginGraceTime 2",
        "AuthorizedKeysCommand %s %s %s" % (
            trusted_script(world, SLOW_KEYS), delay, keys),
        "AuthorizedKeysCommandUser root"])
    d, rport = one_tunnel(world, sshd, backoff_max="2s",
                          connect_timeout="8s")
    err = transient_error(d, 20)
    assert "during authentication" in err, err
    assert "does not accept the key" not in err, err
    delay.write_text("0\n")
    d.wait_all_up(40)
    assert echo_roundtrip(rport).startswith(b"ping ")


def test_version_names_libssh2():
    """--version says which libssh2 runs, and it is new enough."""
    r = run_cli("--version")
    assert r.returncode == 0, r
    m = re.search(r"\(libssh2 (\d+)\.(\d+)\.(\d+), (built in|system "
                  r"library)\)", r.stdout)
    assert m, r.stdout
    assert tuple(int(x) for x in m.groups()[:3]) >= (1, 11, 1), r.stdout


def test_no_common_host_key_type(world):
    """known_hosts knows only an ed25519 key, the server has only RSA:
    the error says which host key algorithms each side has, and why ours
    are so few."""
    sshd = world.sshd("rsaonly", host_key_type="rsa")
    kh = world.known_hosts("[127.0.0.1]:%d %s" % (
        sshd.port, world.key("some_ed25519_host").pub_line))
    d, rport = one_tunnel(world, sshd, known_hosts=kh)
    err = d.wait_server("s1", "failed", 15)["last_error"]
    assert "no common host key algorithm: the server offers rsa-sha2-512," \
        in err, err
    assert "tunnels has ssh-ed25519 (the key types known_hosts" in err, err
