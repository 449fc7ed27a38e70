"""
Host keys and user keys of every kind a current server has (DESIGN §5.1):
RSA host keys verified with rsa-sha2-512/256 (never SHA-1 when the server
offers better), RSA user keys, known_hosts read the way ssh(1) reads it
(@revoked honoured, @cert-authority skipped with a warning, hashed names,
wildcard and negated patterns). Real sshd, real ssh-keyscan/ssh-keygen.
"""

import base64
import hashlib
import hmac
import os
import re
import subprocess

import apps
from harness import SSH_KEYGEN, alloc_port, echo_ok, echo_roundtrip, run_cli

SSH_KEYSCAN = "/usr/bin/ssh-keyscan"
TIMEOUT = 15


def keyscan(sshd, ktype):
    """known_hosts lines from ssh-keyscan -t KTYPE, as "[127.0.0.1]:PORT"."""
    r = subprocess.run([SSH_KEYSCAN, "-t", ktype, "-p", str(sshd.port),
                        "127.0.0.1"], capture_output=True, text=True,
                       timeout=20, stdin=subprocess.DEVNULL)
    lines = [l for l in r.stdout.splitlines()
             if l.strip() and not l.startswith("#")]
    assert lines, "ssh-keyscan found no %s key: %s%s" % (ktype, r.stdout,
                                                         r.stderr)
    name = "[127.0.0.1]:%d" % sshd.port
    out = []
    for l in lines:
        host, rest = l.split(None, 1)
        # OpenSSH writes the bracketed form for ports other than 22.
        out.append("%s %s" % (name if host == "127.0.0.1" else host, rest))
    assert all(l.startswith(name + " ") for l in out), out
    return out


def bring_up(world, sshd, known_hosts=None, identity=None, backoff=None,
             **over):
    """One echo tunnel on sshd; returns (daemon, config path, remote)."""
    srv = world.server_cfg(sshd, known_hosts=known_hosts, identity=identity,
                           **over)
    up = world.bring_up(srv, backoff=backoff, wait=None)
    return up.daemon, up.config, up.remote


def hostkey_lines(d):
    """Daemon log lines about verified host keys."""
    return [l for l in d.log_text().splitlines()
            if re.search(r"host key \S+ SHA256:\S+ matches", l)]


def sshd_hostkey_algs(sshd):
    """Host key algorithms sshd says it negotiated, in order."""
    return re.findall(r"kex: host key algorithm: (\S+)", sshd.log_text())


def check_cli(cfg):
    r = run_cli("check", "-c", cfg)
    return r.returncode, r.stdout, r.stderr


def assert_up_and_intact(d, rport):
    d.wait_tunnel("t1", "up", TIMEOUT)
    payload = bytes(range(256)) * 64
    assert echo_roundtrip(rport, payload) == payload


def test_rsa_only_host_key_from_keyscan(world):
    """ssh-keyscan -t rsa writes an ssh-rsa line; we verify it with
    rsa-sha2-512 even though this server also allows ssh-rsa (SHA-1)."""
    sshd = world.sshd("sshd1", host_key_type="rsa", extra=[
        "HostKeyAlgorithms rsa-sha2-512,rsa-sha2-256,ssh-rsa"])
    lines = keyscan(sshd, "rsa")
    assert all(l.split()[1] == "ssh-rsa" for l in lines), lines
    kh = world.known_hosts(*lines)
    d, cfg, rport = bring_up(world, sshd, kh)
    rc, out, err = check_cli(cfg)
    assert rc == 0 and "valid" in out and not err, (rc, out, err)
    assert_up_and_intact(d, rport)
    lines = hostkey_lines(d)
    assert lines, "no host key verification logged:\n%s" % d.log_text()
    assert "host key rsa-sha2-512 %s matches %s:1" % (
        sshd.host_key.fingerprint, kh) in lines[0], lines
    # The server's own account of the negotiation.
    assert sshd_hostkey_algs(sshd)[-1:] == ["rsa-sha2-512"], \
        sshd_hostkey_algs(sshd)
    assert "ssh-rsa" not in "\n".join(
        l for l in d.log_text().splitlines() if "host key" in l)
    assert "SHA-1" not in d.log_text()


def test_rsa_sha2_256_when_the_server_has_no_512(world):
    sshd = world.sshd("sshd1", host_key_type="rsa",
                      extra=["HostKeyAlgorithms rsa-sha2-256"])
    d, cfg, rport = bring_up(world, sshd, world.known_hosts(sshd))
    assert_up_and_intact(d, rport)
    assert "host key rsa-sha2-256 %s matches" % sshd.host_key.fingerprint \
        in "\n".join(hostkey_lines(d))
    assert sshd_hostkey_algs(sshd)[-1:] == ["rsa-sha2-256"]
    assert "SHA-1" not in d.log_text()


def test_ssh_rsa_only_server_is_used_with_a_warning(world):
    """A server that signs only with ssh-rsa (SHA-1) is still reached,
    and the daemon says what it had to accept."""
    sshd = world.sshd("sshd1", host_key_type="rsa",
                      extra=["HostKeyAlgorithms ssh-rsa"])
    d, cfg, rport = bring_up(world, sshd, world.known_hosts(sshd))
    assert_up_and_intact(d, rport)
    assert sshd_hostkey_algs(sshd)[-1:] == ["ssh-rsa"]
    warn = [l for l in d.log_text().splitlines() if "SHA-1" in l]
    assert len(warn) == 1 and "warning" in warn[0] and \
        "ssh-rsa" in warn[0], warn


def test_rsa_pinned_host_key(world):
    sshd = world.sshd("sshd1", host_key_type="rsa")
    d, cfg, rport = bring_up(world, sshd, host_key=sshd.host_key.pub_line)
    assert_up_and_intact(d, rport)
    assert "host key rsa-sha2-512 %s matches the pinned host_key" % \
        sshd.host_key.fingerprint in d.log_text()


def test_unknown_rsa_host_shows_its_fingerprint(world):
    """No entry for the host: every algorithm is offered, so the refusal
    names the RSA key's fingerprint (and how to add it)."""
    sshd = world.sshd("sshd1", host_key_type="rsa")
    kh = world.known_hosts("other.example %s" %
                           world.key("other_host").pub_line)
    d, cfg, rport = bring_up(world, sshd, kh)
    srv = d.wait_server("s1", "failed", TIMEOUT)
    err = srv["last_error"]
    assert "unknown host key for [127.0.0.1]:%d" % sshd.port in err, err
    assert "rsa-sha2-512 %s" % sshd.host_key.fingerprint in err, err
    assert "ssh-keyscan -p %d 127.0.0.1" % sshd.port in err, err


def test_rsa_user_key(world):
    """An RSA identity: check accepts it, server-setup prints the line
    sshd accepts, and the tunnel comes up with it."""
    key = world.key("id_rsa", "rsa", bits=3072)
    echo = world.app(apps.EchoServer())
    rport = alloc_port()
    tunnels = [{"name": "t1", "server": "s1", "remote": rport,
                "local": echo.local}]
    setup_cfg, _ = world.write_config({"s1": {
        "host": "127.0.0.1", "port": 22, "user": world.user,
        "identity": key.path, "known_hosts": "/nonexistent"}}, tunnels,
        name="setup.yaml")
    r = run_cli("server-setup", "-c", setup_cfg, "--server", "s1")
    assert r.returncode == 0, r.stdout + r.stderr
    active = [l for l in r.stdout.splitlines() if l.startswith("restrict")]
    assert len(active) == 1, r.stdout
    # The key's own comment (ssh-keygen's -C), then the tag of this home.
    assert re.search(r" %s id_rsa tunnels:[A-Za-z0-9._-]+/s1$" %
                     re.escape(key.pub_line), active[0]), active
    assert key.pub_line.startswith("ssh-rsa ")

    sshd = world.sshd("sshd1", authorized=[active[0]])
    cfg, _ = world.write_config({"s1": world.server_cfg(
        sshd, identity=key.path)}, tunnels)
    rc, out, err = check_cli(cfg)
    assert rc == 0 and "valid" in out and not err, (rc, out, err)
    d = world.daemon(cfg)
    d.wait_tunnel("t1", "up", TIMEOUT)
    assert echo_ok(rport)
    log = sshd.log_text()
    assert "Accepted publickey for %s" % world.user in log
    assert "RSA %s" % key.fingerprint in log, \
        "sshd did not log the RSA key as the one accepted"


def test_revoked_key_fails_permanently(world):
    """@revoked wins over a plain line for the same key: failed, no
    ssh-keyscan advice, retried only at the backoff cap."""
    sshd = world.sshd("sshd1")
    kh = world.known_hosts(
        "[127.0.0.1]:%d %s" % (sshd.port, sshd.host_key.pub_line),
        "@revoked [127.0.0.*]:* %s" % sshd.host_key.pub_line)
    d, cfg, rport = bring_up(world, sshd, kh,
                             backoff={"initial": "200ms", "max": "60s"})
    srv = d.wait_server("s1", "failed", TIMEOUT)
    err = srv["last_error"]
    assert "revoked" in err.lower() and "%s:2" % kh in err, err
    assert sshd.host_key.fingerprint in err, err
    assert "ssh-keyscan" not in err, err
    # At the cap (never less than half of it, 30s), not the 200ms of a
    # transient failure; 10s of slack for a slow status read.
    assert srv.get("retry_in_s", 0) >= 20, srv
    assert d.tunnel("t1")["state"] == "failed"
    assert "Accepted publickey" not in sshd.log_text(), \
        "the daemon authenticated to a server whose key is revoked"


def test_cert_authority_line_warns(world):
    """@cert-authority: a warning from check (still valid) and once per
    run in the daemon log; the plain line still verifies the server."""
    sshd = world.sshd("sshd1")
    ca = world.key("host_ca")
    kh = world.known_hosts(
        "@cert-authority [127.0.0.1]:%d %s" % (sshd.port, ca.pub_line),
        "[127.0.0.1]:%d %s" % (sshd.port, sshd.host_key.pub_line))
    d, cfg, rport = bring_up(world, sshd, kh)
    rc, out, err = check_cli(cfg)
    assert rc == 0 and "valid" in out, (rc, out, err)
    warn = [l for l in err.splitlines() if "warning" in l]
    assert len(warn) == 1, err
    assert "%s:1: @cert-authority line for [127.0.0.1]:%d ignored" % (
        kh, sshd.port) in warn[0] and "not supported" in warn[0], warn
    assert warn[0].startswith(str(cfg) + ":"), warn

    d.wait_tunnel("t1", "up", TIMEOUT)
    assert echo_ok(rport)
    # A second connection (the first one killed) verifies again...
    sshd.kill_sessions()
    d.wait_status(lambda st: d.server("s1", st)["connects"] >= 2 and
                  d.server("s1", st)["state"] == "up", TIMEOUT,
                  "a second connection")
    assert len(hostkey_lines(d)) >= 2, hostkey_lines(d)
    # ...but the warning stays said once.
    ca_lines = [l for l in d.log_text().splitlines()
                if "@cert-authority" in l]
    assert len(ca_lines) == 1, ca_lines
    assert "warning" in ca_lines[0] and "not supported" in ca_lines[0]


def hashed(world, lines):
    """A known_hosts file hashed by ssh-keygen -H."""
    kh = world.known_hosts(*lines, name="known_hosts_hashed")
    subprocess.run([SSH_KEYGEN, "-H", "-f", str(kh)], check=True,
                   capture_output=True, stdin=subprocess.DEVNULL)
    text = kh.read_text()
    assert "127.0.0.1" not in text and text.count("|1|") == len(lines), text
    return kh


def test_hashed_known_hosts(world):
    sshd = world.sshd("sshd1", host_key_type="ecdsa")
    kh = hashed(world, [
        "other.example %s" % world.key("other").pub_line,
        "[127.0.0.1]:%d %s" % (sshd.port, sshd.host_key.pub_line)])
    d, cfg, rport = bring_up(world, sshd, kh)
    assert_up_and_intact(d, rport)
    assert "host key ecdsa-sha2-nistp256 %s matches %s:2" % (
        sshd.host_key.fingerprint, kh) in "\n".join(hostkey_lines(d))


def hash_name(name):
    """"|1|salt|hmac" as OpenSSH hashes a name (hostfile.c host_hash)."""
    salt = os.urandom(20)
    mac = hmac.new(salt, name.encode(), hashlib.sha1).digest()
    return "|1|%s|%s" % (base64.b64encode(salt).decode(),
                         base64.b64encode(mac).decode())


def test_hashed_revoked_line(world):
    """A hashed @revoked line still bites (ssh-keygen -H leaves marker
    lines alone, so it is hashed here as OpenSSH defines it)."""
    sshd = world.sshd("sshd1")
    name = "[127.0.0.1]:%d" % sshd.port
    kh = hashed(world, ["%s %s" % (name, sshd.host_key.pub_line)])
    with open(kh, "a") as f:
        f.write("@revoked %s %s\n" % (hash_name(name),
                                      sshd.host_key.pub_line))
    d, cfg, rport = bring_up(world, sshd, kh)
    srv = d.wait_server("s1", "failed", TIMEOUT)
    assert "revoked" in srv["last_error"].lower(), srv


def test_wildcard_patterns_verify(world):
    sshd = world.sshd("sshd1")
    imposter = world.key("imposter").pub_line
    kh = world.known_hosts(
        # Excluded by its negation: would read as a changed key otherwise.
        "*,![127.0.0.1]:%d %s" % (sshd.port, imposter),
        "[127.0.0.*]:%d %s" % (sshd.port, sshd.host_key.pub_line))
    d, cfg, rport = bring_up(world, sshd, kh)
    assert_up_and_intact(d, rport)
    assert "matches %s:2" % kh in "\n".join(hostkey_lines(d))


def test_star_with_negation_verifies_other_hosts(world):
    sshd = world.sshd("sshd1")
    kh = world.known_hosts("*,!other.example %s" % sshd.host_key.pub_line)
    d, cfg, rport = bring_up(world, sshd, kh)
    assert_up_and_intact(d, rport)


def test_negated_pattern_excludes(world):
    """The only line names the server but negates it: unknown host."""
    sshd = world.sshd("sshd1")
    kh = world.known_hosts("[127.0.0.*]:*,![127.0.0.1]:%d %s" % (
        sshd.port, sshd.host_key.pub_line))
    d, cfg, rport = bring_up(world, sshd, kh)
    srv = d.wait_server("s1", "failed", TIMEOUT)
    assert "unknown host key" in srv["last_error"], srv
    assert "Accepted publickey" not in sshd.log_text()


def test_passphrase_protected_key(world):
    """An ed25519 identity with a passphrase: passphrase_file unlocks it;
    a wrong passphrase is a permanent failure that says so."""
    key = world.dir / "id_locked"
    subprocess.run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "s3cret pass",
                    "-f", str(key), "-C", "locked"], check=True,
                   capture_output=True, stdin=subprocess.DEVNULL)
    pub = (world.dir / "id_locked.pub").read_text().split()
    sshd = world.sshd("sshd1", authorized=["%s %s" % (pub[0], pub[1])])
    good = world.dir / "pass"
    good.write_text("s3cret pass\n")
    good.chmod(0o600)
    d, cfg, rport = bring_up(world, sshd, identity=key,
                             passphrase_file=str(good))
    d.wait_tunnel("t1", "up", TIMEOUT)
    assert echo_ok(rport)
    d.stop()
    bad = world.dir / "badpass"
    bad.write_text("not it\n")
    bad.chmod(0o600)
    d2, _, _ = bring_up(world, sshd, identity=key, passphrase_file=str(bad),
                        backoff={"initial": "200ms", "max": "20s"})
    err = d2.wait_server("s1", "failed", TIMEOUT)["last_error"]
    assert "wrong passphrase" in err, err
    assert "s3cret" not in d2.log_text() and "not it" not in d2.log_text()
