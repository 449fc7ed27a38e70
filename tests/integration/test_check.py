"""
`tunnels check` (DESIGN §2, §3): exit 0 and a one-line summary for a valid
file; exit 6 and every problem as `FILE:LINE:COL: message` otherwise, all
problems of a file in one run. `tunnels run` with a bad config exits 6.

Places are computed from the YAML text below, and every case pins the
complete output: each FILE:LINE:COL: message line, nothing more.

Input that once hung or crashed is refused at once: a FIFO as the config
(check, run, status -c and reload -c; the daemon's own reload too) or in
place of a key, known_hosts or passphrase file; 100k levels of nesting
(libyaml took 20 s, and a reload blocked the daemon's loop); files of
megabytes; durations that overflowed the daemon's timer arithmetic
(`run` never gets as far as a session).
"""

import os
import re
import shutil
import signal
import subprocess
import time

import pytest

from harness import alloc_port, run_cli

BASE = """\
control: {d}/control.sock
state_dir: {d}/state
servers:
  s1:
    host: 127.0.0.1
    port: 2222
    user: tunnel
    identity: {d}/id_ed25519
    known_hosts: {d}/known_hosts
    keepalive: 2s
    keepalive_count: 3
  s2:
    host: 127.0.0.1
    port: 2223
    user: tunnel
    identity: {d}/id_ed25519
    host_key: "{pub}"
tunnels:
  - name: web
    server: s1
    remote: 4001
    local: 1313
  - name: api
    server: s1
    remote: "127.0.0.1:4002"
    local: "unix:/run/app.sock"
  - name: other
    server: s2
    remote: 0
    local: 8080
backoff:
  initial: 200ms
  max: 2s
"""


@pytest.fixture
def env(world):
    """Key files and the valid base config text for this world."""
    key = world.user_key
    (world.dir / "known_hosts").write_text(
        "[127.0.0.1]:2222 %s\n" % world.key("host_ed25519").pub_line)
    text = BASE.format(d=world.dir, pub=key.pub_line)
    return world, text


def write(world, text, name="tunnels.yaml"):
    p = world.dir / name
    p.write_text(text)
    world.add_log("config %s" % name, p, 200)
    return str(p)


def edit(text, old, new, count=1):
    assert text.count(old) >= count, "test bug: %r not in config" % old
    return text.replace(old, new, count)


def pos(text, needle, nth=1, offset=0):
    """1-based (line, col) of the nth occurrence of needle (+offset)."""
    i = -1
    for _ in range(nth):
        i = text.index(needle, i + 1)
    i += offset
    line = text.count("\n", 0, i) + 1
    col = i - (text.rfind("\n", 0, i) + 1) + 1
    return line, col


def check(path):
    r = run_cli("check", "-c", path)
    return r.returncode, r.stdout + r.stderr


def test_valid_config(env):
    world, text = env
    path = write(world, text)
    rc, out = check(path)
    assert rc == 0, out
    lines = [l for l in out.splitlines() if l.strip()]
    assert len(lines) == 1, "expected a one-line summary, got:\n%s" % out
    assert re.search(r"\b3\b", lines[0]), \
        "summary does not mention the 3 tunnels: %r" % lines[0]
    assert not re.search(r"^" + re.escape(path) + r":\d+:\d+: ", out, re.M), \
        "problems reported for a valid file:\n%s" % out


# Each case edits the valid text t (world dir d) and returns the bad text
# and every line `check` must print for it, as (LINE, COL, MESSAGE) with
# "{d}" standing for the world's directory.
def _case_syntax(t, d):
    t = edit(t, "    keepalive: 2s\n", "    keepalive: 2s: 3\n")
    return t, [pos(t, "keepalive: 2s: 3", offset=len("keepalive: 2s")) +
               ("YAML syntax error: mapping values are not allowed in this "
                "context",)]


def _case_unknown_key(t, d):
    t = edit(t, "    host: 127.0.0.1\n    port: 2222",
             "    hots: 127.0.0.1\n    port: 2222")
    return t, [pos(t, "s1:") + ('server "s1" is missing required key '
                                '"host"',),
               pos(t, "hots:") + ('unknown key "hots" in server "s1" (did '
                                  'you mean "host"?)',)]


def _case_wrong_type_seq(t, d):
    t = edit(t, "    user: tunnel\n", "    user: [a, b]\n")
    return t, [pos(t, "[a, b]") + ('"user" must be a string',)]


def _case_wrong_type_int(t, d):
    t = edit(t, "    keepalive_count: 3\n", "    keepalive_count: lots\n")
    return t, [pos(t, "lots") + ('"keepalive_count" must be an integer',)]


def _case_port_range_local(t, d):
    t = edit(t, "    local: 1313\n", "    local: 70000\n")
    return t, [pos(t, "70000") + ("port 70000 out of range (1-65535)",)]


def _case_port_range_remote(t, d):
    t = edit(t, "    remote: 4001\n", "    remote: 65536\n")
    return t, [pos(t, "65536") + ("port 65536 out of range (0-65535)",)]


def _case_server_port_zero(t, d):
    t = edit(t, "    port: 2222\n", "    port: 0\n")
    return t, [pos(t, "port: 0", offset=6) +
               ("port 0 out of range (1-65535)",)]


def _case_dup_name(t, d):
    t = edit(t, "  - name: api\n", "  - name: web\n")
    first = pos(t, "  - name: web")[0]
    return t, [pos(t, "web", nth=2) + ('duplicate tunnel name "web" (first '
                                       'defined at line %d)' % first,)]


def _case_dup_remote(t, d):
    t = edit(t, '    remote: "127.0.0.1:4002"\n', "    remote: 4001\n")
    return t, [pos(t, "4001", nth=2) + (
        'tunnel "api" uses remote 127.0.0.1:4001 on server "s1" already '
        'used by tunnel "web"',)]


def _case_unknown_server(t, d):
    t = edit(t, "    server: s2\n", "    server: s9\n")
    # The value after "server: " (a bare "s9" may occur in a random key).
    return t, [pos(t, "    server: s9\n", offset=12) + (
        'tunnel "other" names unknown server "s9" (known: s1, s2)',)]


def _case_missing_identity(t, d):
    t = edit(t, "identity: %s/id_ed25519" % d,
             "identity: %s/nonexistent_key" % d)
    return t, [pos(t, "{d}/nonexistent_key".format(d=d)) + (
        'identity file "{d}/nonexistent_key" does not exist',)]


def _case_identity_mode(t, d):
    t = edit(t, "identity: %s/id_ed25519" % d, "identity: %s/id_0644" % d)
    return t, [pos(t, "{d}/id_0644".format(d=d)) + (
        'identity file "{d}/id_0644" is readable by group or others (mode '
        '0644); run chmod 600 "{d}/id_0644"',)]


def _case_dsa_identity(t, d):
    t = edit(t, "identity: %s/id_ed25519" % d, "identity: %s/id_dsa" % d)
    return t, [pos(t, "{d}/id_dsa".format(d=d)) + (
        'identity "{d}/id_dsa" is a DSA key, which OpenSSH 7.0 and later '
        'refuse; generate an ed25519 key with ssh-keygen -t ed25519',)]


def _case_bad_known_hosts(t, d):
    # The daemon would refuse to read it: check says so, naming the line.
    with open(os.path.join(d, "known_hosts"), "a") as f:
        f.write("@revokd [127.0.0.1]:2222 ssh-ed25519 AAAA\n")
    return t, [pos(t, "{d}/known_hosts".format(d=d)) + (
        '{d}/known_hosts:2: unknown marker "@revokd" (known: @revoked, '
        '@cert-authority)',)]


def _case_missing_known_hosts(t, d):
    t = edit(t, "known_hosts: %s/known_hosts" % d, "known_hosts: %s/no_kh" % d)
    return t, [pos(t, "{d}/no_kh".format(d=d)) + (
        'known_hosts file "{d}/no_kh" does not exist: put the server\'s '
        'host keys there (`tunnels server-setup --script` prints them on '
        'the server; or ssh-keyscan, once their fingerprints are '
        'checked)',)]


def _case_no_known_hosts_no_host_key(t, d):
    t = edit(t, "    known_hosts: %s/known_hosts\n" % d, "")
    return t, [pos(t, "s1:") + ('server "s1" needs known_hosts or host_key',)]


def _fifo(d, name):
    p = os.path.join(d, name)
    if not os.path.exists(p):
        os.mkfifo(p, 0o600)
    return p


def _case_fifo_identity(t, d):
    # Never opened for reading by anyone: a blocking open would hang.
    f = _fifo(d, "id_fifo")
    t = edit(t, "identity: %s/id_ed25519" % d, "identity: %s" % f)
    return t, [pos(t, f) + ('identity file "%s" is not a regular file (a '
                            'FIFO)' % f,)]


def _case_fifo_known_hosts(t, d):
    f = _fifo(d, "kh_fifo")
    t = edit(t, "known_hosts: %s/known_hosts" % d, "known_hosts: %s" % f)
    return t, [pos(t, f) + ('known_hosts file "%s" is not a regular file '
                            '(a FIFO)' % f,)]


def _case_fifo_passphrase(t, d):
    f = _fifo(d, "pass_fifo")
    t = edit(t, "    keepalive: 2s\n",
             "    keepalive: 2s\n    passphrase_file: %s\n" % f)
    return t, [pos(t, f) + ('passphrase file "%s" is not a regular file '
                            '(a FIFO)' % f,)]


def _case_keepalive_overflow(t, d):
    # Fits an int64_t; the daemon multiplied it by keepalive_count.
    t = edit(t, "    keepalive: 2s\n",
             "    keepalive: 9223372036854775807ms\n")
    return t, [pos(t, "9223372036854775807ms") + (
        '"keepalive" must be at most 24h (got 9223372036854775807ms)',)]


def _case_connect_timeout_overflow(t, d):
    t = edit(t, "    keepalive: 2s\n",
             "    keepalive: 2s\n    connect_timeout: 153722867280912m\n")
    return t, [pos(t, "153722867280912m") + (
        '"connect_timeout" must be at most 24h (got 153722867280912m)',)]


def _case_keepalive_count_big(t, d):
    t = edit(t, "    keepalive: 2s\n    keepalive_count: 3\n",
             "    keepalive: 24h\n    keepalive_count: 2147483647\n")
    return t, [pos(t, "2147483647") + (
        '"keepalive_count" must be at most 100 (got 2147483647)',)]


def _case_backoff_overflow(t, d):
    t = edit(t, "  max: 2s\n", "  max: 2562047788015h\n")
    return t, [pos(t, "2562047788015h") + (
        '"max" must be at most 24h (got 2562047788015h)',)]


def _case_deep_nesting(t, d):
    t = edit(t, "backoff:\n", "x: " + "[" * 100 + "]" * 100 + "\nbackoff:\n")
    line, col = pos(t, "x: [")
    # The root mapping is level 1: the 64th "[" opens level 65.
    return t, [(line, col + 3 + 63,
                "nested deeper than 64 levels of lists and mappings")]


CASES = [
    ("yaml_syntax", _case_syntax),
    ("unknown_key", _case_unknown_key),
    ("wrong_type_sequence", _case_wrong_type_seq),
    ("wrong_type_integer", _case_wrong_type_int),
    ("port_out_of_range_local", _case_port_range_local),
    ("port_out_of_range_remote", _case_port_range_remote),
    ("server_port_zero", _case_server_port_zero),
    ("duplicate_tunnel_name", _case_dup_name),
    ("duplicate_remote", _case_dup_remote),
    ("unknown_server", _case_unknown_server),
    ("missing_identity", _case_missing_identity),
    ("identity_mode_0644", _case_identity_mode),
    ("dsa_identity", _case_dsa_identity),
    ("bad_known_hosts", _case_bad_known_hosts),
    ("missing_known_hosts", _case_missing_known_hosts),
    ("no_known_hosts_no_host_key", _case_no_known_hosts_no_host_key),
    ("fifo_identity", _case_fifo_identity),
    ("fifo_known_hosts", _case_fifo_known_hosts),
    ("fifo_passphrase_file", _case_fifo_passphrase),
    ("keepalive_overflow", _case_keepalive_overflow),
    ("connect_timeout_overflow", _case_connect_timeout_overflow),
    ("keepalive_count_too_big", _case_keepalive_count_big),
    ("backoff_overflow", _case_backoff_overflow),
    ("deep_nesting", _case_deep_nesting),
]


def expected_lines(path, d, reports):
    return sorted("%s:%d:%d: %s" % (path, line, col, msg.replace("{d}", d))
                  for line, col, msg in reports)


def problem_lines(out):
    return sorted(l for l in out.splitlines() if l.strip())


def make_key_files(world):
    shutil.copy(world.user_key.path, world.dir / "id_0644")
    os.chmod(world.dir / "id_0644", 0o644)
    world.key("id_dsa", "dsa")


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_invalid_config(env, case):
    """Exit 6 and exactly the expected FILE:LINE:COL: message lines."""
    world, text = env
    make_key_files(world)
    name, fn = case
    d = str(world.dir)
    bad, reports = fn(text, d)
    path = write(world, bad)
    t0 = time.monotonic()
    rc, out = check(path)
    took = time.monotonic() - t0
    assert rc == 6, "rc %d for %s:\n%s" % (rc, name, out)
    assert problem_lines(out) == expected_lines(path, d, reports), out
    # None of these may wait on a file or grind in libyaml.
    assert took < 10, "check took %.1fs" % took


def test_several_problems_reported_in_one_run(env):
    world, text = env
    d = str(world.dir)
    t = text
    fns = (_case_unknown_key, _case_port_range_local, _case_unknown_server,
           _case_missing_known_hosts)
    want = []
    for fn in fns:
        t, _ = fn(t, d)
        # No edit changes the line count or touches another's line: the
        # places computed on the text with one edit hold for all four.
        want += fn(text, d)[1]
    path = write(world, t)
    rc, out = check(path)
    assert rc == 6, out
    assert problem_lines(out) == expected_lines(path, d, want), out


@pytest.mark.parametrize("fmt", ["openssh", "pem"])
def test_rsa_identity_is_valid(env, fmt):
    """RSA user keys are accepted: libssh2 signs with rsa-sha2-256/512."""
    world, text = env
    key = world.key("id_rsa", "rsa")
    if fmt == "pem":
        subprocess.run(["ssh-keygen", "-q", "-p", "-N", "", "-m", "PEM",
                        "-f", key.path], check=True, capture_output=True)
        assert "BEGIN RSA PRIVATE KEY" in open(key.path).read()
    d = str(world.dir)
    path = write(world, edit(text, "identity: %s/id_ed25519" % d,
                             "identity: %s" % key.path))
    rc, out = check(path)
    assert rc == 0, out
    assert "valid" in out and "RSA" not in out, out


def test_run_with_bad_config_exits_6(env):
    world, text = env
    t, positions = _case_unknown_key(text, str(world.dir))
    path = write(world, t)
    r = run_cli("run", "-c", path, timeout=20)
    assert r.returncode == 6, "rc %d\n%s%s" % (r.returncode, r.stdout,
                                               r.stderr)
    assert "hots" in r.stdout + r.stderr, \
        "run does not say what is wrong:\n%s%s" % (r.stdout, r.stderr)
    assert not os.path.exists(world.dir / "control.sock")


# ---------------------------------------------------------------------------
# Input that hung or crashed


def timed_cli(*args, limit=10.0):
    """run_cli with a deadline (the subprocess is killed past it); returns
    (CompletedProcess, seconds)."""
    t0 = time.monotonic()
    r = run_cli(*args, timeout=limit)
    return r, time.monotonic() - t0


@pytest.mark.parametrize("cmd", ["check", "run", "status", "reload"])
def test_fifo_config_refused_promptly(world, cmd):
    """No writer ever opens the FIFO: a blocking open() would wait for
    ever; the subprocess deadline turns that into a failure."""
    path = world.dir / "fifo.yaml"
    os.mkfifo(path, 0o600)
    r, took = timed_cli(cmd, "-c", path)
    assert r.returncode == 6, (r.returncode, r.stdout, r.stderr)
    want = "%s: not a regular file (a FIFO)" % path
    if cmd in ("status", "reload"):
        want = "tunnels: " + want
    assert r.stderr.splitlines() == [want], r.stderr
    assert r.stdout == "", r.stdout
    assert not os.path.exists(world.dir / "control.sock")


@pytest.mark.parametrize("cmd", ["check", "run", "status", "reload"])
def test_huge_config_refused(world, cmd):
    path = world.dir / "huge.yaml"
    with open(path, "w") as f:
        f.write("# padding\n" * (3 * 1024 * 1024 // 10))
    r, took = timed_cli(cmd, "-c", path)
    assert r.returncode == 6, (r.returncode, r.stdout, r.stderr)
    want = "%s: too large: a configuration may have at most 1048576 " \
        "bytes" % path
    if cmd in ("status", "reload"):
        want = "tunnels: " + want
    assert r.stderr.splitlines() == [want], r.stderr


def test_deep_nesting_refused_fast(env):
    """100k levels: refused at the 65th with its place, in well under a
    second (the ASan build; libyaml needed over 20 s for the whole)."""
    world, text = env
    head = "servers: "
    path = write(world, head + "[" * 100000 + "]" * 100000 + "\n")
    r, took = timed_cli("check", "-c", path)
    assert r.returncode == 6, r.stdout + r.stderr
    # "servers:" is level 1, the n-th "[" opens level n + 1.
    col = len(head) + 64
    assert r.stderr.splitlines() == [
        "%s:1:%d: nested deeper than 64 levels of lists and mappings" % (
            path, col)], r.stderr
    print("check refused 100k nesting levels in %.3f s" % took)
    assert took < 3.0, "took %.2fs" % took
    # status reads the file only for the control socket: no hang either.
    r, took = timed_cli("status", "-c", path)
    assert r.returncode == 1 and "control.sock" in r.stderr, r.stderr
    assert took < 3.0, "took %.2fs" % took


@pytest.mark.parametrize("case", [_case_keepalive_overflow,
                                  _case_connect_timeout_overflow,
                                  _case_keepalive_count_big],
                         ids=["keepalive", "connect_timeout",
                              "keepalive_count"])
def test_run_refuses_overflowing_durations(env, case):
    """`run` exits 6 with the message: no session ever computes with them
    (keepalive: 9223372036854775807ms was a UBSan abort in session.c)."""
    world, text = env
    d = str(world.dir)
    bad, reports = case(text, d)
    path = write(world, bad)
    r, took = timed_cli("run", "-c", path, limit=20)
    assert r.returncode == 6, (r.returncode, r.stdout, r.stderr)
    assert problem_lines(r.stderr) == expected_lines(path, d, reports), \
        r.stderr
    assert not os.path.exists(world.dir / "control.sock")


def test_daemon_reload_of_hostile_files(world):
    """A running daemon asked to reload a FIFO, 100k nesting levels or a
    huge file refuses each at once and keeps answering status."""
    cfg, control = world.write_config({}, [])
    good = cfg.read_text()
    d = world.daemon(cfg)
    d.wait_status(lambda st: "reloads" in st, 10, "first status")
    deep = good.replace("servers: {}", "servers: " + "[" * 100000 +
                        "]" * 100000)
    assert deep != good
    for what in ("deep", "huge", "fifo"):
        os.unlink(cfg)
        if what == "deep":
            cfg.write_text(deep)
            why = "nested deeper than 64 levels"
        elif what == "huge":
            cfg.write_text(good + "# padding\n" * 200000)
            why = "too large"
        else:
            os.mkfifo(cfg, 0o600)
            why = "not a regular file (a FIFO)"
        before = d.status()["reloads"]
        t0 = time.monotonic()
        if what != "deep":
            # `tunnels reload -c` refuses to read these (tested above):
            # the daemon's own reload must not block on them either.
            d.send_signal(signal.SIGHUP)
        else:
            r = run_cli("reload", "-c", cfg, timeout=10)
            assert r.returncode == 1, r.stdout + r.stderr
            assert "reload refused" in r.stderr and why in r.stderr, \
                r.stderr
        st = d.wait_status(lambda st: st["reloads"] > before, 5,
                           "reload of the %s file" % what)
        took = time.monotonic() - t0
        assert why in (st.get("reload_error") or ""), st
        assert took < 5, "%s: %.1fs" % (what, took)
    assert d.running()


def test_largest_durations_run(world):
    """The caps themselves (24h, keepalive_count 100) are valid, and a
    daemon computes its timers and socket options with them cleanly
    (ASan/UBSan build: any overflow aborts it)."""
    sshd = world.sshd("sshd1")
    rport = alloc_port()
    cfg, _ = world.write_config(
        {"s1": world.server_cfg(sshd, keepalive="24h", keepalive_count=100,
                                connect_timeout="24h")},
        [{"name": "t1", "server": "s1", "remote": rport, "local": 1}],
        backoff={"initial": "24h", "max": "24h"})
    r = run_cli("check", "-c", cfg)
    assert r.returncode == 0, r.stdout + r.stderr
    d = world.daemon(cfg)
    t = d.wait_tunnel("t1", "up", 15)
    assert t["state"] == "up"
    d.stop(timeout=5)
