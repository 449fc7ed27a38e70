"""
`tunnels server-setup`: what it prints is what a real sshd needs. Its
authorized_keys line (and its Match block, appended to the test sshd's
config) let exactly the configured forwards through — a tunnel on another
port is refused and waits — and the two variants differ exactly in
command execution, which reclaim_stale_port needs.
"""

import os
import subprocess

import apps
from harness import SSH, alloc_port, echo_ok, run_cli

TIMEOUT = 15


def setup_output(world, cfg, *extra):
    r = run_cli("server-setup", "-c", cfg, *extra)
    assert r.returncode == 0, "server-setup: rc %s\n%s%s" % (
        r.returncode, r.stdout, r.stderr)
    return r.stdout


def key_lines(text):
    """(the active authorized_keys line, the commented alternative)."""
    active = [l for l in text.splitlines() if l.startswith("restrict")]
    alt = [l[2:] for l in text.splitlines() if l.startswith("# restrict")]
    assert len(active) == 1 and len(alt) == 1, text
    return active[0], alt[0]


def match_block(text):
    """The sshd_config lines, from "Match User" to the end of the block."""
    lines = text.splitlines()
    i = next(i for i, l in enumerate(lines) if l.startswith("Match User"))
    out = [lines[i]]
    for l in lines[i + 1:]:
        if not l.startswith("\t"):
            break
        out.append(l)
    return out


def server_entry(world, **over):
    """A server entry as written before the server exists: server-setup
    needs the identity, not known_hosts."""
    return dict({"host": "127.0.0.1", "port": 22, "user": world.user,
                 "identity": str(world.user_key.path),
                 "known_hosts": "/nonexistent/known_hosts"}, **over)


def ssh_exec(world, sshd, command):
    """Run a command over ssh with the user key; CompletedProcess."""
    kh = world.known_hosts(sshd, name="kh_ssh")
    return subprocess.run(
        [SSH, "-F", "/dev/null", "-i", str(world.user_key.path),
         "-p", str(sshd.port), "-o", "BatchMode=yes",
         "-o", "UserKnownHostsFile=%s" % kh, "-o", "StrictHostKeyChecking=yes",
         "-o", "IdentitiesOnly=yes", "%s@127.0.0.1" % world.user, command],
        capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)


def test_authorized_line_permits_exactly_the_configured_forwards(world):
    echo = world.app(apps.EchoServer(greeting=b"a\n"))
    echo6 = world.app(apps.EchoServer(greeting=b"six\n"))
    pa, p6, pb = alloc_port(), alloc_port("::1"), alloc_port()
    allowed = [
        {"name": "a", "server": "vps", "remote": pa, "local": echo.local},
        {"name": "six", "server": "vps", "remote": "[::1]:%d" % p6,
         "local": echo6.local},
    ]
    # server-setup runs before the server exists: no known_hosts needed.
    cfg_setup, _ = world.write_config({"vps": server_entry(world)},
                                      allowed, name="setup.yaml")
    text = setup_output(world, cfg_setup, "--server", "vps", "--home", "h1")
    line, alt = key_lines(text)
    pub = world.user_key.pub_line
    assert line == ('restrict,port-forwarding,'
                    'permitlisten="127.0.0.1:%d",permitlisten="[::1]:%d" '
                    '%s tunnels tunnels:h1/vps' % (pa, p6, pub))
    assert alt == ('restrict,port-forwarding,command="/bin/false",'
                   'permitlisten="127.0.0.1:%d",permitlisten="[::1]:%d" '
                   '%s tunnels tunnels:h1/vps' % (pa, p6, pub))
    block = match_block(text)
    assert "\tPermitListen 127.0.0.1:%d [::1]:%d" % (pa, p6) in block
    assert "\tAllowTcpForwarding remote" in block
    assert "\tClientAliveInterval 15" in block
    assert "UnusedConnectionTimeout" in text

    # The test sshd with exactly that line and block (sshd -t checks it).
    sshd = world.sshd("sshd1", authorized=[line], extra=block)
    # The daemon also asks for a port that server-setup did not list.
    extra = {"name": "b", "server": "vps", "remote": pb,
             "local": echo.local}
    cfg, _ = world.write_config({"vps": world.server_cfg(sshd)},
                                allowed + [extra])
    d = world.daemon(cfg)
    d.wait_tunnel("a", "up", TIMEOUT)
    d.wait_tunnel("six", "up", TIMEOUT)
    assert echo_ok(pa, prefix=b"a\n")
    assert echo_ok(p6, host="::1", prefix=b"six\n")
    b = d.wait_tunnel("b", "waiting", TIMEOUT)
    assert "refused" in (b["last_error"] or ""), b
    # Refused by sshd's policy, the one server-setup wrote.
    assert ("remote forward to host 127.0.0.1 port %d, but the request was "
            "denied" % pb) in sshd.log_text()
    assert d.tunnel("a")["state"] == "up"

    # "restrict" still lets the account run commands (what reclaim needs);
    # no PTY is needed for that.
    r = ssh_exec(world, sshd, "echo exec-ok")
    assert r.returncode == 0 and r.stdout == "exec-ok\n", r


def test_no_exec_variant_with_reclaim_off(world):
    echo = world.app(apps.EchoServer())
    pa = alloc_port()
    tunnels = [{"name": "a", "server": "vps", "remote": pa,
                "local": echo.local}]
    cfg_setup, _ = world.write_config(
        {"vps": server_entry(world, reclaim_stale_port=False)},
        tunnels, name="setup.yaml")
    text = setup_output(world, cfg_setup)
    line, alt = key_lines(text)
    # reclaim_stale_port: false: the no-exec variant comes first.
    assert line.startswith('restrict,port-forwarding,command="/bin/false",'
                           'permitlisten="127.0.0.1:%d" ' % pa), line
    assert alt.startswith('restrict,port-forwarding,permitlisten='
                          '"127.0.0.1:%d" ' % pa), alt
    assert "reclaim_stale_port: true" in text
    assert "\t# ForceCommand /bin/false" in match_block(text)

    sshd = world.sshd("sshd1", authorized=[line], extra=match_block(text))
    cfg, _ = world.write_config(
        {"vps": world.server_cfg(sshd, reclaim_stale_port=False)}, tunnels)
    d = world.daemon(cfg)
    d.wait_tunnel("a", "up", TIMEOUT)
    assert echo_ok(pa)
    # Commands are forced to /bin/false: nothing runs.
    r = ssh_exec(world, sshd, "echo exec-ok")
    assert r.returncode != 0 and "exec-ok" not in r.stdout, r


def test_certbot_commands_and_errors(world):
    webroot = "/srv/acme"
    tunnels = [
        {"name": "blog", "server": "vps", "remote": 4001, "local": 1,
         "nginx": {"server_name": ["blog.test", "www.blog.test"],
                   "tls": "letsencrypt", "acme_webroot": webroot}},
        {"name": "own", "server": "vps", "remote": 4002, "local": 2,
         "nginx": {"server_name": "own.test",
                   "tls": {"cert": "/c.pem", "key": "/k.pem"}}},
        {"name": "plain", "server": "vps", "remote": 0, "local": 3,
         "nginx": {"server_name": "plain.test"}},
    ]
    cfg, _ = world.write_config({"vps": server_entry(world)}, tunnels)
    text = setup_output(world, cfg)
    assert ("certbot certonly --webroot -w /srv/acme --cert-name blog.test "
            "-d blog.test -d www.blog.test") in text
    assert "own.test" not in text.split("---- 3.")[1].replace(
        "tunnel own: uses its own certificate /c.pem", "")
    assert "plain.test" not in text
    # remote 0: the server picks the port, so any port on that address.
    assert 'permitlisten="127.0.0.1:*"' in text
    assert "PermitListen 127.0.0.1:4001 127.0.0.1:4002 127.0.0.1:*" in text

    # A PEM identity without a .pub beside it: exit 1, clear message.
    pem = world.dir / "id_pem"
    subprocess.run(["/usr/bin/ssh-keygen", "-q", "-t", "ecdsa", "-m", "PEM",
                    "-N", "", "-f", str(pem)], check=True,
                   capture_output=True, stdin=subprocess.DEVNULL)
    cfg_pem, _ = world.write_config(
        {"vps": server_entry(world, identity=str(pem))}, tunnels,
        name="pem.yaml")
    r = run_cli("server-setup", "-c", cfg_pem)
    assert r.returncode == 0, r.stderr      # the .pub is there
    with open(str(pem) + ".pub") as f:
        assert " ".join(f.read().split()[:2]) in r.stdout
    os.unlink(str(pem) + ".pub")
    r = run_cli("server-setup", "-c", cfg_pem)
    assert r.returncode == 1 and "cannot find the public key" in r.stderr
    assert r.stdout == ""
    r = run_cli("server-setup", "-c", cfg, "--server", "nope")
    assert r.returncode == 2 and 'no server "nope"' in r.stderr
    r = run_cli("server-setup", "-c", world.dir / "missing.yaml")
    assert r.returncode == 6 and "cannot read" in r.stderr
