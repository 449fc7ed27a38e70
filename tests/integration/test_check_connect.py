"""
`tunnels check --connect [SERVER]` (DESIGN §2): a live diagnosis per
server, one line per step starting with a check mark or a cross, a fix
line under every cross, a summary line; exit 0 when every step passed, 1
otherwise, 6 on an invalid config, 2 on an unknown SERVER.

Real sshd on loopback for every case: a clean pass, a refused port (and a
name with a refusing and a working address), an unknown host key, a wrong
user key, no key exchange in common, a port refused by permitlisten next
to an allowed one, a port held by the running daemon, a key restricted to
command="/bin/false", SERVER selection, and a silent TCP listener that
must not make the command hang.
"""

import os
import re
import socket
import subprocess
import threading
import time

import apps
from harness import (DAEMON_ENV, alloc_port, run_cli, sanitizer_lines,
                     tunnels_bin)

OK = "\u2713"
FAIL = "\u2717"
STEPS = ("resolve", "TCP", "banner", "algorithms", "host key",
         "authentication")


def steps(out):
    """The step lines of the output as (mark, text), in order."""
    res = []
    for line in out.splitlines():
        s = line.strip()
        if s[:1] in (OK, FAIL):
            res.append((s[0], s[1:].strip()))
    return res


def step(out, prefix):
    """The one step line whose text starts with prefix: (mark, text)."""
    found = [(m, t) for m, t in steps(out) if t.startswith(prefix)]
    assert len(found) == 1, "expected one %r step line, got %r in:\n%s" % (
        prefix, found, out)
    return found[0]


def fix_after(out, prefix):
    """The indented fix line right under the step line starting prefix."""
    lines = out.splitlines()
    for i, line in enumerate(lines):
        s = line.strip()
        if s[:1] == FAIL and s[1:].strip().startswith(prefix):
            nxt = lines[i + 1] if i + 1 < len(lines) else ""
            assert nxt.startswith("    fix: "), \
                "no fix line under %r:\n%s" % (line, out)
            return nxt[len("    fix: "):]
    raise AssertionError("no failed %r step in:\n%s" % (prefix, out))


def assert_ascii_after_marks(out):
    """Only the marks are outside ASCII (server text is sanitised)."""
    for line in out.splitlines():
        rest = line.replace(OK, "").replace(FAIL, "")
        assert all(ord(c) < 128 for c in rest), repr(line)


def diagnose(cfg, *extra, timeout=60):
    r = run_cli("check", "--connect", "-c", cfg, *extra, timeout=timeout)
    assert_ascii_after_marks(r.stdout)
    return r


def one_server(world, sshd, tunnels=None, **over):
    """A config with server "vps" on sshd and the given tunnels (default:
    one tunnel on a free port)."""
    if tunnels is None:
        tunnels = [{"name": "blog", "server": "vps", "remote": alloc_port(),
                    "local": 1313}]
    servers = {"vps": world.server_cfg(sshd, **over)}
    cfg, control = world.write_config(servers, tunnels)
    return cfg


def test_all_steps_pass(world):
    sshd = world.sshd("vps")
    p1 = alloc_port()
    cfg = one_server(world, sshd, [
        {"name": "blog", "server": "vps", "remote": p1, "local": 1313},
        {"name": "any", "server": "vps", "remote": 0, "local": 1314},
    ])
    r = diagnose(cfg)
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    got = steps(r.stdout)
    assert all(m == OK for m, _ in got), r.stdout
    names = [t for _, t in got]
    for prefix in STEPS + ("forward blog", "forward any", "exec"):
        assert sum(1 for t in names if t.startswith(prefix)) == 1, \
            (prefix, r.stdout)
    # The steps come in the order the daemon runs them.
    order = [next(i for i, t in enumerate(names) if t.startswith(p))
             for p in STEPS + ("forward blog", "exec")]
    assert order == sorted(order), r.stdout
    assert "valid: 1 server, 2 tunnels" in r.stdout
    _, banner = step(r.stdout, "banner")
    assert "SSH-2.0-OpenSSH_" in banner, banner
    # OpenSSH offers chacha20-poly1305 and tunnels prefers it.
    _, algos = step(r.stdout, "algorithms")
    assert "cipher chacha20-poly1305@openssh.com" in algos, algos
    assert "key exchange curve25519-sha256" in algos, algos
    assert "warning" not in r.stdout, r.stdout
    _, hk = step(r.stdout, "host key")
    assert sshd.host_key.fingerprint in hk, hk
    _, fw = step(r.stdout, "forward blog")
    assert "127.0.0.1:%d" % p1 in fw, fw
    _, fw0 = step(r.stdout, "forward any")
    m = re.search(r"allocated port (\d+)", fw0)
    assert m and 0 < int(m.group(1)) < 65536, fw0
    _, ex = step(r.stdout, "exec")
    assert re.search(r"pid \d+", ex), ex
    assert r.stdout.rstrip().endswith("1 of 1 server passes"), r.stdout
    # It really authenticated and asked for the forwards.
    log = sshd.log_text()
    assert "Accepted publickey for %s" % world.user in log
    assert re.search(r"tcpip-forward listen 127\.0\.0\.1 port %d" % p1,
                     log), "sshd saw no tcpip-forward for port %d" % p1


def test_weak_algorithm_named(world):
    sshd = world.sshd("vps", extra=["Ciphers aes128-cbc"])
    r = diagnose(one_server(world, sshd))
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    _, algos = step(r.stdout, "algorithms")
    assert "cipher aes128-cbc" in algos, algos
    assert re.search(r"warning: aes128-cbc: weak", r.stdout), r.stdout


def test_refused_port(world):
    sshd = world.sshd("vps", start=False)
    sshd.port = alloc_port()     # nothing listens there
    r = diagnose(one_server(world, sshd))
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    mark, text = step(r.stdout, "TCP")
    assert mark == FAIL and "connection refused" in text, text
    assert "127.0.0.1:%d" % sshd.port in text, text
    assert "sshd" in fix_after(r.stdout, "TCP")
    assert not any(t.startswith("banner") for _, t in steps(r.stdout))
    assert "server vps: 1 problem" in r.stdout.splitlines()[-1]


def test_refusing_and_working_address(world):
    """A name with two addresses: one refuses, the other works. The hosts
    file is replaced for the command alone (a private mount namespace)."""
    sshd = world.sshd("vps")
    hosts = world.dir / "hosts"
    hosts.write_text("127.0.0.2 multi.test\n127.0.0.1 multi.test\n")
    kh = world.known_hosts("[multi.test]:%d %s" % (sshd.port,
                                                   sshd.host_key.pub_line))
    cfg = one_server(world, sshd, host="multi.test", known_hosts=str(kh))
    unshare = ["unshare", "--mount"] + \
        ([] if os.geteuid() == 0 else ["--map-root-user"])
    script = 'mount --bind "$1" /etc/hosts && shift && exec "$@"'
    env = dict(os.environ)
    env.update(DAEMON_ENV)
    r = subprocess.run(unshare + ["sh", "-c", script, "sh", str(hosts),
                                  tunnels_bin(), "check", "--connect", "-c",
                                  str(cfg)],
                       capture_output=True, text=True, timeout=60, env=env,
                       stdin=subprocess.DEVNULL)
    assert not sanitizer_lines(r.stdout + r.stderr), r.stderr
    out = r.stdout
    _, res = step(out, "resolve")
    assert "127.0.0.1" in res and "127.0.0.2" in res, res
    mark2, t2 = step(out, "TCP 127.0.0.2:%d" % sshd.port)
    assert mark2 == FAIL and "connection refused" in t2, out
    mark1, t1 = step(out, "TCP 127.0.0.1:%d" % sshd.port)
    assert mark1 == OK and "connected in" in t1, out
    # It went on with the address that worked.
    for prefix in ("banner", "algorithms", "host key", "authentication",
                   "forward blog", "exec"):
        assert step(out, prefix)[0] == OK, out
    assert r.returncode == 1, (r.returncode, out, r.stderr)


def test_unknown_host_key(world):
    sshd = world.sshd("vps")
    kh = world.known_hosts("[127.0.0.1]:%d %s" % (
        alloc_port(), sshd.host_key.pub_line))
    r = diagnose(one_server(world, sshd, known_hosts=str(kh)))
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    for prefix in ("resolve", "TCP", "banner", "algorithms"):
        assert step(r.stdout, prefix)[0] == OK, r.stdout
    mark, text = step(r.stdout, "host key")
    assert mark == FAIL and sshd.host_key.fingerprint in text, text
    fix = fix_after(r.stdout, "host key")
    assert "ssh-keyscan -p %d 127.0.0.1 >> %s" % (sshd.port, kh) in fix, fix
    # Never authenticates to a server whose key it does not know.
    assert not any(t.startswith("authentication") for _, t in
                   steps(r.stdout)), r.stdout
    assert "Accepted publickey" not in sshd.log_text()


def test_wrong_user_key(world):
    sshd = world.sshd("vps", authorized=[world.key("not_ours")])
    r = diagnose(one_server(world, sshd))
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    for prefix in ("resolve", "TCP", "banner", "algorithms", "host key"):
        assert step(r.stdout, prefix)[0] == OK, r.stdout
    mark, text = step(r.stdout, "authentication")
    assert mark == FAIL and "authentication refused" in text, text
    assert world.user_key.path in text, text
    assert "authorized_keys" in fix_after(r.stdout, "authentication")
    assert not any(t.startswith("forward") for _, t in steps(r.stdout))


def test_no_common_key_exchange(world):
    sshd = world.sshd("vps", extra=[
        "KexAlgorithms sntrup761x25519-sha512@openssh.com"])
    r = diagnose(one_server(world, sshd))
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert step(r.stdout, "banner")[0] == OK, r.stdout
    mark, text = step(r.stdout, "algorithms")
    assert mark == FAIL and "no common key exchange" in text, text
    # Both lists: the server's and ours.
    assert "the server offers sntrup761x25519-sha512@openssh.com;" in text
    assert re.search(r"tunnels has curve25519-sha256,", text), text
    assert "KexAlgorithms" in fix_after(r.stdout, "algorithms")
    assert not any(t.startswith("host key") for _, t in steps(r.stdout))


def test_permitlisten_refusal(world):
    allowed, refused = alloc_port(), alloc_port()
    key_line = world.user_key.authorized_line(
        'permitlisten="127.0.0.1:%d"' % allowed)
    sshd = world.sshd("vps", authorized=[key_line])
    cfg = one_server(world, sshd, [
        {"name": "ok", "server": "vps", "remote": allowed, "local": 1313},
        {"name": "no", "server": "vps", "remote": refused, "local": 1314},
    ])
    r = diagnose(cfg)
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    mark, text = step(r.stdout, "forward ok")
    assert mark == OK and "127.0.0.1:%d" % allowed in text, text
    mark, text = step(r.stdout, "forward no")
    assert mark == FAIL and "refused to listen on 127.0.0.1:%d" % refused \
        in text, text
    assert "permitlisten" in text, text
    assert "tunnels server-setup" in fix_after(r.stdout, "forward no")
    # The refusal does not end the diagnosis.
    assert step(r.stdout, "exec")[0] == OK, r.stdout
    assert r.stdout.splitlines()[-1] == "server vps: 1 problem", r.stdout


def test_port_held_by_running_daemon(world):
    echo = world.app(apps.EchoServer())
    sshd = world.sshd("vps")
    port = alloc_port()
    cfg = one_server(world, sshd, [
        {"name": "blog", "server": "vps", "remote": port,
         "local": echo.local}])
    d = world.daemon(cfg)
    d.wait_all_up(15)
    r = diagnose(cfg)
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    mark, text = step(r.stdout, "forward blog")
    assert mark == OK, text
    assert "held by the running tunnels daemon (pid %d)" % d.pid in text, \
        text
    # The daemon's tunnel is untouched.
    assert d.tunnel("blog")["state"] == "up"


def test_exec_refused_by_restricted_key(world):
    key_line = world.user_key.authorized_line(
        'restrict,port-forwarding,command="/bin/false"')
    sshd = world.sshd("vps", authorized=[key_line])
    r = diagnose(one_server(world, sshd))
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    for prefix in STEPS + ("forward blog",):
        assert step(r.stdout, prefix)[0] == OK, r.stdout
    mark, text = step(r.stdout, "exec")
    assert mark == FAIL, text
    assert text.startswith("exec refused (restricted key or ForceCommand): "
                           "a port held by a stale session is freed only by "
                           "the server's ClientAlive"), text
    assert "reclaim_stale_port" in fix_after(r.stdout, "exec")


def test_exec_off(world):
    sshd = world.sshd("vps")
    r = diagnose(one_server(world, sshd, reclaim_stale_port=False))
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    mark, text = step(r.stdout, "exec")
    assert mark == OK and "reclaim_stale_port is off" in text, text


def test_server_selection(world):
    good = world.sshd("vps")
    servers = {
        "vps": world.server_cfg(good),
        "down": dict(world.server_cfg(good), port=alloc_port()),
    }
    cfg, _ = world.write_config(servers, [
        {"name": "blog", "server": "vps", "remote": alloc_port(),
         "local": 1313},
        {"name": "api", "server": "down", "remote": alloc_port(),
         "local": 1314},
    ])
    r = diagnose(cfg, "vps")
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    assert "server vps " in r.stdout and "server down" not in r.stdout
    r = diagnose(cfg, "down")
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert "server down " in r.stdout and "server vps" not in r.stdout
    # Every server: one passes, one does not.
    r = diagnose(cfg)
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert r.stdout.splitlines()[-1] == \
        "server down: 1 problem (1 of 2 servers pass)", r.stdout
    r = run_cli("check", "--connect", "-c", cfg, "nosuch")
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "nosuch" in r.stderr and "vps" in r.stderr and \
        "down" in r.stderr, r.stderr
    # A SERVER without --connect is a usage error.
    r = run_cli("check", "-c", cfg, "vps")
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)


def test_invalid_config(world):
    sshd = world.sshd("vps", start=False)
    sshd.port = alloc_port()
    cfg = one_server(world, sshd)
    cfg.write_text(cfg.read_text().replace("keepalive: 2s",
                                           "keepalive: 2"))
    r = run_cli("check", "--connect", "-c", cfg)
    assert r.returncode == 6, (r.returncode, r.stdout, r.stderr)
    assert re.search(re.escape(str(cfg)) + r":\d+:\d+: .*unit", r.stderr), \
        r.stderr
    assert not steps(r.stdout), r.stdout


def silent_listener(world, greeting=b""):
    """A TCP listener that accepts, sends greeting, then says nothing
    more; returns (port, list of accepted sockets)."""
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(8)
    held = []
    stop = threading.Event()

    def accept():
        lsock.settimeout(0.2)
        while not stop.is_set():
            try:
                c, _ = lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            if greeting:
                c.sendall(greeting)
            held.append(c)       # keep it open, say nothing more

    th = threading.Thread(target=accept, daemon=True)
    th.start()

    def cleanup():
        stop.set()
        th.join(5)
        lsock.close()
        for c in held:
            c.close()
    world.on_cleanup(cleanup)
    return lsock.getsockname()[1], held


def fake_server_config(world, port):
    sshd = world.sshd("vps", start=False)
    sshd.port = port
    return one_server(world, sshd, known_hosts=str(world.known_hosts(
        "[127.0.0.1]:%d %s" % (port, sshd.host_key.pub_line))),
        connect_timeout="2s")


def test_hostile_banner_sanitised(world):
    """Control bytes and non-ASCII from the server never reach the
    terminal: the banner is printed sanitised, then the key exchange that
    never comes fails at the deadline."""
    port, held = silent_listener(
        world, b"\x1b]0;owned\x07 hi\r\nSSH-2.0-evil\x1b[2J\xff x\r\n")
    r = diagnose(fake_server_config(world, port), timeout=30)
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert "\x1b" not in r.stdout and "\x07" not in r.stdout
    mark, text = step(r.stdout, "banner")
    assert mark == OK and text == "banner: SSH-2.0-evil?[2J? x", text
    mark, text = step(r.stdout, "algorithms")
    assert mark == FAIL and "did not finish within 2s" in text, text


def test_silent_server(world):
    """A TCP listener that accepts and never says a word: the banner step
    fails within connect_timeout; the command does not hang."""
    port, held = silent_listener(world)
    cfg = fake_server_config(world, port)
    t0 = time.monotonic()
    r = diagnose(cfg, timeout=30)
    took = time.monotonic() - t0
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert step(r.stdout, "TCP")[0] == OK, r.stdout
    mark, text = step(r.stdout, "banner")
    assert mark == FAIL and "no SSH banner within 2s" in text, text
    assert held, "the listener never saw the connection"
    # Bounded by the 2 s deadline (generous margin for a loaded machine).
    assert took < 20, "took %.1fs" % took
