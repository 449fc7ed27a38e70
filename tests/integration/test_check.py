"""
`tunnels check` (DESIGN §2, §3): exit 0 and a one-line summary for a valid
file; exit 6 and every problem as `FILE:LINE:COL: message` otherwise, all
problems of a file in one run. `tunnels run` with a bad config exits 6.

Line numbers are computed from the YAML text below; for problems about a
value the column may be the key's or the value's (both are accepted), for
syntax errors only the line is pinned. Messages are checked by a few stable
keywords; the unit tests pin the exact texts.
"""

import os
import re
import shutil
import subprocess

import pytest

from harness import run_cli

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


def key_and_value(text, key_needle, nth=1):
    """Positions of `key: value` on one line: the key and the value."""
    line, col = pos(text, key_needle, nth)
    vline, vcol = pos(text, key_needle, nth, offset=len(key_needle))
    # key_needle ends with ": " so offset lands on the value
    return {(line, col), (vline, vcol)}


def check(path):
    r = run_cli("check", "-c", path)
    return r.returncode, r.stdout + r.stderr


def find_report(out, path, positions, *patterns):
    """The output line FILE:LINE:COL: msg with (LINE, COL) in positions
    (COL None = any column) whose message matches every pattern."""
    rx = re.compile(re.escape(path) + r":(\d+):(\d+): (.+)$")
    for line in out.splitlines():
        m = rx.match(line)
        if not m:
            continue
        ln, col, msg = int(m.group(1)), int(m.group(2)), m.group(3)
        if (ln, col) not in positions and (ln, None) not in positions:
            continue
        if all(re.search(p, msg, re.I) for p in patterns):
            return line
    raise AssertionError(
        "no report at %s matching %s in output:\n%s" % (
            sorted(positions, key=str), patterns, out))


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
# and the set of acceptable (line, col) positions for its report.
def _case_syntax(t, d):
    t = edit(t, "    keepalive: 2s\n", "    keepalive: 2s: 3\n")
    return t, {(pos(t, "keepalive: 2s: 3")[0], None)}


def _case_unknown_key(t, d):
    t = edit(t, "    host: 127.0.0.1\n    port: 2222",
             "    hots: 127.0.0.1\n    port: 2222")
    return t, {pos(t, "hots:")}


def _case_wrong_type_seq(t, d):
    t = edit(t, "    user: tunnel\n", "    user: [a, b]\n")
    return t, key_and_value(t, "user: ")


def _case_wrong_type_int(t, d):
    t = edit(t, "    keepalive_count: 3\n", "    keepalive_count: lots\n")
    return t, key_and_value(t, "keepalive_count: ")


def _case_port_range_local(t, d):
    t = edit(t, "    local: 1313\n", "    local: 70000\n")
    return t, key_and_value(t, "local: ")


def _case_port_range_remote(t, d):
    t = edit(t, "    remote: 4001\n", "    remote: 65536\n")
    return t, key_and_value(t, "remote: ")


def _case_server_port_zero(t, d):
    t = edit(t, "    port: 2222\n", "    port: 0\n")
    return t, key_and_value(t, "port: ")


def _case_dup_name(t, d):
    t = edit(t, "  - name: api\n", "  - name: web\n")
    ln, _ = pos(t, "  - name: web", nth=2)
    return t, {(ln, 3), (ln, 5), (ln, 11)}


def _case_dup_remote(t, d):
    t = edit(t, '    remote: "127.0.0.1:4002"\n', "    remote: 4001\n")
    item = pos(t, "  - name: api")[0]
    return t, key_and_value(t, "remote: ", nth=2) | {(item, 3), (item, 5)}


def _case_unknown_server(t, d):
    t = edit(t, "    server: s2\n", "    server: s9\n")
    return t, key_and_value(t, "server: ", nth=3)


def _case_missing_identity(t, d):
    t = edit(t, "identity: %s/id_ed25519" % d,
             "identity: %s/nonexistent_key" % d)
    return t, key_and_value(t, "identity: ")


def _case_identity_mode(t, d):
    t = edit(t, "identity: %s/id_ed25519" % d, "identity: %s/id_0644" % d)
    return t, key_and_value(t, "identity: ")


def _case_dsa_identity(t, d):
    t = edit(t, "identity: %s/id_ed25519" % d, "identity: %s/id_dsa" % d)
    return t, key_and_value(t, "identity: ")


def _case_bad_known_hosts(t, d):
    # The daemon would refuse to read it: check says so, naming the line.
    with open(os.path.join(d, "known_hosts"), "a") as f:
        f.write("@revokd [127.0.0.1]:2222 ssh-ed25519 AAAA\n")
    return t, key_and_value(t, "known_hosts: ")


def _case_missing_known_hosts(t, d):
    t = edit(t, "known_hosts: %s/known_hosts" % d, "known_hosts: %s/no_kh" % d)
    return t, key_and_value(t, "known_hosts: ")


def _case_no_known_hosts_no_host_key(t, d):
    t = edit(t, "    known_hosts: %s/known_hosts\n" % d, "")
    ln, _ = pos(t, "  s1:")
    return t, {(ln, 3), (ln, 4), (ln + 1, 5)}


NOFILE = (r"no such|not found|missing|does not exist|cannot|can't|unable|"
          r"fail")

CASES = [
    ("yaml_syntax", _case_syntax, []),
    ("unknown_key", _case_unknown_key, [r'unknown key "hots"']),
    ("wrong_type_sequence", _case_wrong_type_seq,
     [r"expect|must be|should be|not a|type|scalar|string"]),
    ("wrong_type_integer", _case_wrong_type_int,
     [r"integer|number|numeric|invalid|expect"]),
    ("port_out_of_range_local", _case_port_range_local,
     [r"70000", r"out of range"]),
    ("port_out_of_range_remote", _case_port_range_remote,
     [r"65536", r"out of range"]),
    ("server_port_zero", _case_server_port_zero,
     [r"out of range|invalid|port"]),
    ("duplicate_tunnel_name", _case_dup_name,
     [r"duplicate|already|twice", r"web"]),
    ("duplicate_remote", _case_dup_remote,
     [r"duplicate|already|same|twice|conflict", r"4001"]),
    ("unknown_server", _case_unknown_server,
     [r"unknown|undefined|no such|not defined|not found", r"s9"]),
    ("missing_identity", _case_missing_identity,
     [r"nonexistent_key|identity", NOFILE]),
    ("identity_mode_0644", _case_identity_mode,
     [r"0?644|mode|permission|group|other|readable|open"]),
    ("dsa_identity", _case_dsa_identity, [r"DSA", r"ed25519"]),
    ("bad_known_hosts", _case_bad_known_hosts,
     [r"known_hosts:2: unknown marker \"@revokd\""]),
    ("missing_known_hosts", _case_missing_known_hosts,
     [r"no_kh|known_hosts", NOFILE]),
    ("no_known_hosts_no_host_key", _case_no_known_hosts_no_host_key,
     [r"known_hosts", r"host_key"]),
]


def make_key_files(world):
    shutil.copy(world.user_key.path, world.dir / "id_0644")
    os.chmod(world.dir / "id_0644", 0o644)
    world.key("id_dsa", "dsa")


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_invalid_config(env, case):
    world, text = env
    make_key_files(world)
    name, fn, patterns = case
    bad, positions = fn(text, str(world.dir))
    path = write(world, bad)
    rc, out = check(path)
    assert rc == 6, "rc %d for %s:\n%s" % (rc, name, out)
    find_report(out, path, positions, *patterns)


def test_several_problems_reported_in_one_run(env):
    world, text = env
    d = str(world.dir)
    t = text
    expected = []
    for fn, patterns in ((_case_unknown_key, [r'unknown key "hots"']),
                         (_case_port_range_local, [r"70000", r"range"]),
                         (_case_unknown_server, [r"s9"]),
                         (_case_missing_known_hosts, [r"no_kh|known_hosts"])):
        t, ps = fn(t, d)
        expected.append((ps, patterns))
    path = write(world, t)
    rc, out = check(path)
    assert rc == 6, out
    # Positions stay valid: no edit changed the line count.
    for ps, patterns in expected:
        find_report(out, path, ps, *patterns)


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
