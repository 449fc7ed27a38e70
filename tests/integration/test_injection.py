"""
Every string a server sends reaches the log, the status document and the
`tunnels status` table only as one bounded line of printable text (issue
10, finding 5): a hostile server's disconnect text and exec output carry a
fake log line after a newline, terminal escape sequences (CSI, OSC, C1,
bidi overrides) and 30 kB. And a server's word on the port it allocated
for `remote: 0` is checked (finding 7).

The server is injection_server.py (AsyncSSH). The status table is also
fed a hostile document directly, by a stand-in for the daemon on the
control socket: the table must be safe whatever the JSON holds.
"""

import json
import re

import pytest

import apps
import harness
from harness import REPO, alloc_port, wait_until
from sshserver import ScriptServer

INJECTION_SERVER = REPO / "tests" / "integration" / "injection_server.py"

# What a hostile server says: a newline and a line that looks like ours,
# CSI (colour, clear screen), OSC (window title) ended by BEL, a C1 CSI,
# a bidi override, then 30 kB.
FAKE = "2026-01-01T00:00:00.000 tunnels[1]: error: FAKE LINE"
HOSTILE = ("bye\n" + FAKE + "\r\n\x1b[31mRED\x1b[2J\x1b]0;owned\x07"
           "\u009b31m\u202eevil\x7f" + "A" * 30000)
# One line of ours: stamp, ident[pid], priority, then the message.
LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3} tunnels\[\d+\]: "
                  r"(emerg|alert|crit|error|warning|notice|info|debug): ")
# Longest log line the daemon may write (LOG_MSG_MAX plus the prefix).
LINE_MAX = 4096 + 200


class InjectionServer(ScriptServer):
    """injection_server.py on an allocated loopback port; opts become its
    --options."""

    KIND = "injection"
    SCRIPT = INJECTION_SERVER

    def __init__(self, world, name="hostile", **opts):
        super().__init__(world, name, [world.user_key])
        self.opts = opts
        world.on_cleanup(self.stop)

    def _args(self):
        argv = []
        for k, v in self.opts.items():
            argv += ["--" + k.replace("_", "-"), str(v)]
        return argv


def hostile_file(world, name, text):
    p = world.dir / name
    p.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return p


def assert_clean_text(text, what, max_line=LINE_MAX):
    """No control byte but newlines, no C1 or bidi control, short lines."""
    bad = sorted({"%02x" % ord(c) for c in text
                  if (ord(c) < 0x20 and c != "\n") or 0x7f <= ord(c) < 0xa0
                  or c in "\u2028\u2029\u202a\u202b\u202c\u202d\u202e"})
    assert not bad, "%s holds control characters %s" % (what, bad)
    longest = max((len(l) for l in text.splitlines()), default=0)
    assert longest <= max_line, "%s has a %d-character line" % (what,
                                                                longest)


def assert_log_lines_ours(d):
    """Every line of the daemon's log is one event of its own."""
    raw = d.log.read_bytes()
    assert b"\x1b" not in raw and b"\r" not in raw and b"\x07" not in raw
    text = raw.decode("utf-8")      # valid UTF-8 throughout
    assert_clean_text(text, "the daemon log")
    for l in text.splitlines():
        assert LINE.match(l), "a log line that is not an event of ours: %r" \
            % l[:200]
        assert not l.startswith(FAKE)


def status_table(cfg):
    r = harness.run_cli("status", "-c", cfg)
    assert r.returncode in (0, 3), r.stdout + r.stderr
    return r.stdout


def hostile_daemon(world, srv, remote=None):
    """A daemon with one tunnel through srv; (config, daemon, remote)."""
    echo = world.app(apps.EchoServer())
    if remote is None:
        remote = alloc_port()
    cfg, _ = world.write_config(
        {"s1": world.server_cfg(srv)},
        [{"name": "t1", "server": "s1", "remote": remote,
          "local": echo.local}])
    return cfg, world.daemon(cfg), remote


def test_disconnect_text(world):
    srv = InjectionServer(world, disconnect_file=hostile_file(
        world, "disconnect.txt", HOSTILE)).start()
    cfg, d, remote = hostile_daemon(world, srv)
    # The server hangs up on every forward request: the daemon goes on
    # retrying, and its status keeps the server's words.
    st = d.wait_status(lambda st: "FAKE LINE" in (
        d.server("s1", st).get("last_error") or ""), 15,
        "the server's disconnect text in status")
    wait_until(lambda: srv.log_text().count("disconnecting with") >= 2, 15,
               "a second disconnect")
    err = d.server("s1", st)["last_error"]
    assert_clean_text(err, "status last_error", 400)
    assert len(err) < 400, "last_error of %d characters" % len(err)
    assert "bye?" + FAKE in err, err
    assert "?[31mRED" in err, err
    t = d.tunnel("t1", st)
    assert_clean_text(t.get("last_error") or "", "tunnel last_error", 400)

    assert_log_lines_ours(d)
    disc = [l for l in d.log_text().splitlines() if "FAKE LINE" in l]
    assert disc, "the disconnect is not in the log"

    table = status_table(cfg)
    assert_clean_text(table, "tunnels status", 800)
    lines = table.splitlines()
    # SERVER header, s1, blank, TUNNEL header, t1: nothing injected.
    assert len(lines) == 5, table
    assert lines[1].startswith("s1 ") and lines[4].startswith("t1 "), table
    assert not any(l.startswith(FAKE) for l in lines), table


def test_exec_output(world):
    out = ("\x1b[2J\x1b]0;owned\x07\n" + FAKE + "\n" + "B" * 30000 +
           "\n").encode()
    srv = InjectionServer(world, exec_file=hostile_file(
        world, "exec.txt", out)).start()
    cfg, d, remote = hostile_daemon(world, srv)
    d.wait_tunnel("t1", "up", 15)
    # The learn command's answer is not ours: the daemon says so, with
    # the output cut and made printable, and carries on.
    wait_until(lambda: "cannot learn our server-side session" in
               d.log_text(), 15, "the exec answer refused in the log")
    st = d.status()
    assert d.server("s1", st).get("exec") == "denied", d.server("s1", st)
    assert_log_lines_ours(d)
    line = [l for l in d.log_text().splitlines()
            if "cannot learn our server-side session" in l][0]
    # Each control byte is a '?', the newline too; cut at 64 bytes.
    assert 'output "?[2J?]0;owned??' + FAKE[:20] in line, line
    assert '..."' in line, line
    assert harness.echo_ok(remote), "the tunnel does not serve"
    assert_clean_text(status_table(cfg), "tunnels status", 800)


@pytest.mark.parametrize("port", [70000, 4294967295])
def test_remote_zero_bad_port(world, port):
    srv = InjectionServer(world, bound_port=port).start()
    cfg, d, _ = hostile_daemon(world, srv, remote=0)
    want = "allocated port %d for remote: 0, which is not a TCP port" % (
        port if port < 2 ** 31 else port - 2 ** 32)
    wait_until(lambda: d.log_text().count(want) >= 2, 15,
               "the bad port refused twice (and the session re-made)")
    st = d.status()
    t = d.tunnel("t1", st)
    assert t["state"] != "up", t
    assert not re.search(r":(-1|70000|4294967295)$", t["remote"]), t
    table = status_table(cfg)
    assert ":70000" not in table and ":-1" not in table, table
    assert d.server("s1", st)["connects"] >= 2


def test_status_table_sanitises_any_document(world):
    # Whatever the daemon's JSON carries (a daemon of another version, a
    # hole in its own sanitising), the table prints one safe line a row.
    control = world.dir / "fake.sock"
    cfg = world.dir / "fake.yaml"
    cfg.write_text("control: %s\nservers: {}\ntunnels: []\n" % control)
    evil = HOSTILE + "\u2028" + FAKE
    doc = {"version": "x", "pid": 1, "uptime_s": 1, "reloads": 0,
           "servers": [{"name": "s1\n" + FAKE, "state": "up\x1b[2J",
                        "address": "127.0.0.1:22\x1b]0;t\x07",
                        "since_s": 1, "last_error": evil}],
           "tunnels": [{"name": "t1", "server": "s1", "state": "up",
                        "remote": "127.0.0.1:1\n" + FAKE,
                        "local": "unix:/run/\u202eevil.sock",
                        "since_s": 1, "active_connections": 0,
                        "total_connections": 0, "bytes_in": 0,
                        "bytes_out": 0, "last_error": evil}],
           "reload_error": evil}
    # As the daemon writes it: UTF-8 as is, \u00XX for control bytes.
    world.app(apps.FakeControl(control, json.dumps(
        doc, ensure_ascii=False).encode()))
    table = status_table(cfg)
    assert_clean_text(table, "tunnels status", 800)
    lines = table.splitlines()
    # 5 table lines, a blank one and the reload note.
    assert len(lines) == 7, table
    assert not any(l.startswith(FAKE) for l in lines), table
    assert lines[1].startswith("s1?" + FAKE[:10]), lines[1]
    assert lines[6].startswith("last reload failed: bye?" + FAKE), lines[6]
    assert lines[6].endswith("..."), "the error was not cut: %d" % len(
        lines[6])
