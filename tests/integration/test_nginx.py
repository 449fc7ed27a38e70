"""
`tunnels nginx` against a real nginx (DESIGN §5.8): every generated file set
passes `nginx -t`, and real requests travel browser -> nginx -> sshd
listener -> tunnels -> a local app that echoes the request headers back:
forwarding headers, https with a self-signed certificate, the http -> https
redirect that still serves the ACME challenge, WebSocket upgrades, unknown
names refused, a letsencrypt name waiting for its certificate. Also the -o
directory mechanics (atomic files, modes, stale files reported) and that
contrib/nginx/example-tunnels-vps.conf is the current output.
"""

import json
import os
import re
import ssl
import stat
import subprocess

import pytest

from harness import (DAEMON_ENV, REPO, alloc_port, run_cli, sanitizer_lines,
                     tunnels_bin)
from nginx_apps import (HeaderEcho, Nginx, http_get, self_signed,
                        websocket_roundtrip)

NAMES = ["blog.test", "www.blog.test"]


def generate(cfg, out_dir, http, https=None):
    """`tunnels nginx -c cfg -o out_dir` on the given ports."""
    out_dir.mkdir(exist_ok=True)
    args = ["nginx", "-c", cfg, "-o", out_dir, "--http-port", http]
    if https is not None:
        args += ["--https-port", https]
    r = run_cli(*args)
    assert r.returncode == 0, "tunnels nginx: rc %s\n%s%s" % (
        r.returncode, r.stdout, r.stderr)
    return r


def site(world, nginx_section, app=None):
    """sshd + daemon with one tunnel "blog" to a HeaderEcho app; returns
    (config path, app, daemon)."""
    sshd = world.sshd("sshd1")
    app = app or world.app(HeaderEcho())
    tunnel = {"name": "blog", "server": "vps", "remote": alloc_port(),
              "local": app.local, "nginx": nginx_section}
    cfg, _ = world.write_config({"vps": world.server_cfg(sshd)}, [tunnel])
    d = world.daemon(cfg)
    d.wait_tunnel("blog", "up", 15)
    return cfg, app, d


def acme_file(webroot):
    """A challenge token in the webroot; returns (path, content)."""
    d = webroot / ".well-known" / "acme-challenge"
    d.mkdir(parents=True)
    token = os.urandom(8).hex()
    (d / token).write_text("acme-" + token)
    return "/.well-known/acme-challenge/" + token, b"acme-" + token.encode()


def echoed(resp):
    """The headers the app saw, from its JSON answer."""
    status, _, body = resp
    assert status == 200, "expected 200 from the app, got %r %r" % (
        status, body[:300])
    return json.loads(body)["headers"]


# ---------------------------------------------------------------------------
# nginx -t on every generated set


CONFIG_SHAPES = {
    "plain": [{"server_name": "plain.test"}],
    "names_ws_off_body": [
        {"server_name": ["a.test", "www.a.test", "*.a.test"],
         "websocket": False, "client_max_body_size": "0"},
        {"server_name": "b.test", "client_max_body_size": "10m"}],
    "tls_files": [{"server_name": NAMES, "tls": "FILES",
                   "client_max_body_size": "512k"}],
    "letsencrypt_pending": [{"server_name": "le.test",
                             "tls": "letsencrypt"}],
    "mixed": [{"server_name": "p.test"},
              {"server_name": "t.test", "tls": "FILES", "websocket": False},
              {"server_name": "le.test", "tls": "letsencrypt"}],
}


@pytest.mark.parametrize("shape", sorted(CONFIG_SHAPES))
def test_nginx_t_accepts_every_generated_set(world, shape):
    cert, key = self_signed(world.dir, ["x.test"])
    webroot = world.dir / "webroot"
    tunnels = []
    remotes = ["127.0.0.1:%d" % alloc_port(), "[::1]:%d" % alloc_port(),
               "0.0.0.0:%d" % alloc_port()]
    for i, section in enumerate(CONFIG_SHAPES[shape]):
        section = dict(section, acme_webroot=str(webroot))
        if section.get("tls") == "FILES":
            section["tls"] = {"cert": str(cert), "key": str(key)}
        tunnels.append({"name": "t%d" % i, "server": "s%d" % (i % 2),
                        "remote": remotes[i % 3], "local": 1000 + i,
                        "nginx": section})
    # Two servers: -o writes one file per server.
    servers = {"s%d" % i: {"host": "127.0.0.1", "user": "u",
                           "identity": "/nonexistent/id",
                           "known_hosts": "/nonexistent/kh"}
               for i in range(2)}
    cfg, _ = world.write_config(servers, tunnels)
    http, https = alloc_port(), alloc_port()
    conf = world.dir / "conf.d"
    r = generate(cfg, conf, http, https)
    files = sorted(p.name for p in conf.iterdir())
    assert files == ["00-tunnels-default.conf", "tunnels-s0.conf",
                     "tunnels-s1.conf"], files
    le = any(t["nginx"].get("tls") == "letsencrypt" for t in tunnels)
    if le:
        assert "le.test" in r.stderr and "does not exist yet" in r.stderr
    else:
        assert r.stderr == ""
    t = Nginx(world, conf).test()
    assert t.returncode == 0, "nginx -t failed:\n%s" % t.stderr
    assert "test is successful" in t.stderr

    # stdout mode (no letsencrypt: its certificate files do not exist).
    if not le:
        out = run_cli("nginx", "-c", cfg, "--http-port", http,
                      "--https-port", https)
        assert out.returncode == 0, out.stderr
        one = world.dir / "one"
        one.mkdir()
        (one / "all.conf").write_text(out.stdout)
        t = Nginx(world, one, name="nginx-stdout").test()
        assert t.returncode == 0, "nginx -t (stdout) failed:\n%s" % t.stderr


# ---------------------------------------------------------------------------
# Real traffic


def test_http_headers_acme_unknown_host_and_websocket(world):
    webroot = world.dir / "webroot"
    cfg, app, d = site(world, {"server_name": NAMES,
                               "acme_webroot": str(webroot)})
    http = alloc_port()
    conf = world.dir / "conf.d"
    generate(cfg, conf, http)
    Nginx(world, conf).start(http)

    # The forwarding headers arrive at the app behind the tunnel.
    h = echoed(http_get(http, "www.blog.test:%d" % http, "/a?b=c",
                        headers={"X-Forwarded-For": "203.0.113.9"}))
    assert h["host"] == "www.blog.test"
    assert h["x-real-ip"] == "127.0.0.1"
    assert h["x-forwarded-for"] == "203.0.113.9, 127.0.0.1"
    assert h["x-forwarded-proto"] == "http"
    assert h["x-forwarded-host"] == "www.blog.test"
    assert app.requests[-1][0] == "GET /a?b=c HTTP/1.1"
    h = echoed(http_get(http, "blog.test"))
    assert h["host"] == "blog.test" and h["x-forwarded-for"] == "127.0.0.1"
    st = d.tunnel("blog")
    assert st["total_connections"] >= 2, st

    # A plain-HTTP name still serves the ACME challenge (certbot later).
    path, content = acme_file(webroot)
    status, _, body = http_get(http, "blog.test", path)
    assert (status, body) == (200, content)

    # An unknown Host: 444, the connection closes without an answer, and
    # nothing reaches the app.
    before = len(app.requests)
    assert http_get(http, "evil.test") == (None, {}, b"")
    assert http_get(http, "127.0.0.1:%d" % http) == (None, {}, b"")
    assert len(app.requests) == before

    # WebSocket: 101 with the right accept key, bytes both ways.
    line, ok, hello, echo = websocket_roundtrip(http, "blog.test")
    assert line.startswith("HTTP/1.1 101"), line
    assert ok
    assert hello == b"hello"
    assert echo == b"echo:ping"
    up = app.requests[-1][1]
    assert up["upgrade"] == "websocket" and up["connection"] == "upgrade"
    assert up["x-forwarded-proto"] == "http"


def test_https_redirect_acme_unknown_sni_and_websocket(world):
    webroot = world.dir / "webroot"
    cert, key = self_signed(world.dir, NAMES)
    cfg, app, d = site(world, {"server_name": NAMES,
                               "tls": {"cert": str(cert), "key": str(key)},
                               "acme_webroot": str(webroot)})
    http, https = alloc_port(), alloc_port()
    conf = world.dir / "conf.d"
    generate(cfg, conf, http, https)
    Nginx(world, conf).start(https)

    # https through the tunnel, with the right scheme.
    h = echoed(http_get(https, "blog.test", "/x", sni="blog.test"))
    assert h["host"] == "blog.test"
    assert h["x-forwarded-proto"] == "https"
    assert h["x-forwarded-for"] == "127.0.0.1"
    assert h["x-real-ip"] == "127.0.0.1"
    assert h["x-forwarded-host"] == "blog.test"
    h = echoed(http_get(https, "www.blog.test", sni="www.blog.test"))
    assert h["host"] == "www.blog.test"

    # http redirects to https on the https port, path and query kept...
    status, hdrs, _ = http_get(http, "www.blog.test", "/p/q?r=1")
    assert status in (301, 308), status
    assert hdrs["location"] == "https://www.blog.test:%d/p/q?r=1" % https
    # ...except the ACME challenge, served from the webroot.
    path, content = acme_file(webroot)
    status, _, body = http_get(http, "blog.test", path)
    assert (status, body) == (200, content)
    before = len(app.requests)

    # Unknown names: refused handshake on 443, 444 on 80.
    with pytest.raises(ssl.SSLError):
        http_get(https, "evil.test", sni="evil.test")
    assert http_get(http, "evil.test") == (None, {}, b"")
    assert len(app.requests) == before

    # WebSocket over TLS.
    line, ok, hello, echo = websocket_roundtrip(https, "blog.test",
                                                sni="blog.test",
                                                payload=b"over tls")
    assert line.startswith("HTTP/1.1 101"), line
    assert ok and hello == b"hello" and echo == b"echo:over tls"
    assert app.requests[-1][1]["x-forwarded-proto"] == "https"


def test_letsencrypt_pending_serves_acme_then_https(world):
    webroot = world.dir / "webroot"
    cfg, app, d = site(world, {"server_name": "le.test",
                               "tls": "letsencrypt",
                               "acme_webroot": str(webroot)})
    http, https = alloc_port(), alloc_port()
    conf = world.dir / "conf.d"
    r = generate(cfg, conf, http, https)
    assert ("/etc/letsencrypt/live/le.test/fullchain.pem does not exist "
            "yet" in r.stderr), r.stderr
    assert "certbot certonly --webroot -w %s --cert-name le.test -d " \
           "le.test" % webroot in r.stderr
    text = (conf / "tunnels-vps.conf").read_text()
    assert "TLS pending" in text and "ssl_certificate" not in text
    Nginx(world, conf).start(http)
    path, content = acme_file(webroot)
    status, _, body = http_get(http, "le.test", path)
    assert (status, body) == (200, content)
    status, _, _ = http_get(http, "le.test", "/")
    assert status == 503
    assert app.requests == []


# ---------------------------------------------------------------------------
# The -o directory


def test_output_dir_atomic_modes_and_stale_files(world):
    conf = world.dir / "conf.d"
    conf.mkdir()
    stale = conf / "tunnels-gone.conf"
    stale.write_text("# Generated by tunnels 0.0.1 from x -- do not edit;\n")
    mine = conf / "tunnels-mine.conf"
    mine.write_text("# hand-written\n")
    servers = {"vps": {"host": "127.0.0.1", "user": "u",
                       "identity": "/nonexistent/id",
                       "known_hosts": "/nonexistent/kh"}}
    tunnels = [{"name": "blog", "server": "vps", "remote": 4001,
                "local": 1313, "nginx": {"server_name": "blog.test"}}]
    cfg, _ = world.write_config(servers, tunnels)
    (conf / "tunnels-vps.conf").write_text("old contents\n")
    os.chmod(conf / "tunnels-vps.conf", 0o600)
    r = run_cli("nginx", "-c", cfg, "-o", conf)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "wrote %s/00-tunnels-default.conf\nwrote %s/" \
        "tunnels-vps.conf\n" % (conf, conf)
    # Replaced, world-readable, no temp files left behind.
    for name in ("00-tunnels-default.conf", "tunnels-vps.conf"):
        st = os.stat(conf / name)
        assert stat.S_IMODE(st.st_mode) == 0o644, name
    assert "proxy_pass http://127.0.0.1:4001;" in \
        (conf / "tunnels-vps.conf").read_text()
    assert sorted(os.listdir(conf)) == [
        "00-tunnels-default.conf", "tunnels-gone.conf", "tunnels-mine.conf",
        "tunnels-vps.conf"]
    # Our stale file is reported and kept; a foreign one is not touched.
    assert "tunnels-gone.conf" in r.stderr and "no longer" in r.stderr
    assert "tunnels-mine.conf" not in r.stderr
    assert stale.exists() and mine.read_text() == "# hand-written\n"
    # Header: generated, from which config, how to regenerate.
    first = (conf / "tunnels-vps.conf").read_text().splitlines()[:2]
    assert first[0].startswith("# Generated by tunnels ")
    assert ("from %s -- do not edit" % cfg) in first[0]
    assert first[1] == "# regenerate with: tunnels nginx -c %s -o %s" % (
        cfg, conf)

    # Errors: unknown server (2), missing dir (1), bad config (6).
    r = run_cli("nginx", "-c", cfg, "--server", "nope")
    assert r.returncode == 2 and 'no server "nope"' in r.stderr
    r = run_cli("nginx", "-c", cfg, "-o", world.dir / "missing")
    assert r.returncode == 1 and "No such file" in r.stderr
    r = run_cli("nginx", "-c", cfg, "--http-port", "70000")
    assert r.returncode == 2
    bad = world.dir / "bad.yaml"
    bad.write_text(cfg.read_text().replace("server_name: blog.test",
                                           "server_name: bad_name!"))
    r = run_cli("nginx", "-c", bad)
    assert r.returncode == 6
    assert re.search(r"bad\.yaml:\d+:\d+: invalid server_name", r.stderr)


def test_remote_zero_is_skipped_with_a_warning(world):
    servers = {"vps": {"host": "127.0.0.1", "user": "u",
                       "identity": "/nonexistent/id",
                       "known_hosts": "/nonexistent/kh"}}
    tunnels = [{"name": "any", "server": "vps", "remote": 0, "local": 1,
                "nginx": {"server_name": "any.test"}},
               {"name": "six", "server": "vps", "remote": "[::1]:4005",
                "local": 2, "nginx": {"server_name": "six.test"}}]
    cfg, _ = world.write_config(servers, tunnels)
    r = run_cli("nginx", "-c", cfg)
    assert r.returncode == 0
    assert "tunnel any: skipped" in r.stderr
    assert "proxy_pass http://[::1]:4005;" in r.stdout
    assert "any.test" not in r.stdout.replace("# tunnel any", "")


def test_contrib_example_is_current():
    """contrib/nginx/example-tunnels-vps.conf is what the binary prints
    for etc/tunnels.yaml, run from the top of the repository."""
    env = dict(os.environ)
    env.update(DAEMON_ENV)
    r = subprocess.run([tunnels_bin(), "nginx", "-c", "etc/tunnels.yaml"],
                       cwd=str(REPO), capture_output=True, text=True,
                       timeout=20, env=env, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    assert not sanitizer_lines(r.stderr), r.stderr
    example = REPO / "contrib" / "nginx" / "example-tunnels-vps.conf"
    assert example.read_text() == r.stdout, (
        "contrib/nginx/example-tunnels-vps.conf is stale: regenerate it "
        "with `build/tunnels nginx -c etc/tunnels.yaml > "
        "contrib/nginx/example-tunnels-vps.conf` (from the top directory)")
