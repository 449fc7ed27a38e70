"""
What the nginx tests need besides harness.py: a real nginx run from a
prefix directory on allocated ports (`daemon off;`, pid file, stopped by
PID), a local app that answers every HTTP request with the headers it got
(and speaks a minimal RFC 6455 WebSocket echo), an HTTP client that sets
Host and TLS SNI freely, a WebSocket client, and a self-signed certificate.

Standard library only. Run with /usr/bin/python3 -m pytest.
"""

import base64
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

from apps import App
from harness import (descendants, is_listening, kill_pids, log_tail,
                     stop_popen, wait_until)

NGINX = "/usr/sbin/nginx"
OPENSSL = "/usr/bin/openssl"
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


# ---------------------------------------------------------------------------
# nginx


class Nginx:
    """
    nginx with prefix `dir`: nginx.conf includes every *.conf of conf_dir
    (as Debian's includes /etc/nginx/conf.d/*.conf); all paths (pid, logs,
    temp files) stay inside dir.
    """

    def __init__(self, world, conf_dir, name="nginx"):
        self.world = world
        self.name = name
        self.dir = world.dir / name
        self.dir.mkdir()
        (self.dir / "tmp").mkdir()
        self.conf_dir = conf_dir
        self.conf = self.dir / "nginx.conf"
        self.pidfile = self.dir / "nginx.pid"
        self.error_log = self.dir / "error.log"
        self.proc = None
        self._pids = []
        tmp = self.dir / "tmp"
        # As root, workers would run as nobody and could not read the
        # per-test dir (mode 0700): keep them root, like the master.
        user = "user root;\n" if os.geteuid() == 0 else ""
        self.conf.write_text(
            user +
            "daemon off;\n"
            "worker_processes 1;\n"
            "pid %s;\n"
            "error_log %s info;\n"
            "events { worker_connections 256; }\n"
            "http {\n"
            "\taccess_log %s;\n"
            "\tclient_body_temp_path %s/body;\n"
            "\tproxy_temp_path %s/proxy;\n"
            "\tfastcgi_temp_path %s/fastcgi;\n"
            "\tuwsgi_temp_path %s/uwsgi;\n"
            "\tscgi_temp_path %s/scgi;\n"
            "\tinclude %s/*.conf;\n"
            "}\n" % (self.pidfile, self.error_log, self.dir / "access.log",
                     tmp, tmp, tmp, tmp, tmp, self.dir / "conf.d"))
        world.add_log("%s error.log" % name, self.error_log, 60)

    def _cmd(self, *extra):
        return [NGINX, "-p", str(self.dir) + "/", "-c", str(self.conf),
                "-e", str(self.error_log)] + list(extra)

    def _loopback_copy(self):
        """
        Copy the generated files into the include dir with every listen
        bound to loopback (tests never listen on other addresses); the
        generated text is otherwise used unchanged.
        """
        dst = self.dir / "conf.d"
        shutil.rmtree(dst, ignore_errors=True)
        dst.mkdir()
        for f in sorted(Path(self.conf_dir).glob("*.conf")):
            text = re.sub(r"(?m)^(\s*listen\s+)\[::\]:(\d+)",
                          r"\1[::1]:\2", f.read_text())
            text = re.sub(r"(?m)^(\s*listen\s+)(\d+)(?=[\s;])",
                          r"\g<1>127.0.0.1:\2", text)
            (dst / f.name).write_text(text)

    def test(self):
        """`nginx -t`: returns the CompletedProcess (text)."""
        self._loopback_copy()
        return subprocess.run(self._cmd("-t"), capture_output=True,
                              text=True, stdin=subprocess.DEVNULL,
                              timeout=30)

    def start(self, port):
        """nginx -t, then run it; ready once the pid file exists and
        `port` accepts connections."""
        t = self.test()
        assert t.returncode == 0, "nginx -t failed:\n%s%s" % (t.stdout,
                                                              t.stderr)
        self.proc = subprocess.Popen(self._cmd(), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        self.world.on_cleanup(self.stop)

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("nginx exited with %s:\n%s" % (
                    self.proc.returncode, log_tail(self.error_log, 20)))
            return self.pidfile.exists() and is_listening(port)
        wait_until(ready, 10, "nginx ready on port %d" % port)
        self._pids = descendants(self.proc.pid)   # the worker(s)
        return self

    def stop(self):
        """Stop the master we started (by its PID) and its workers."""
        if self.proc is None:
            return
        stop_popen(self.proc)
        left = [p for p in self._pids if os.path.exists("/proc/%d" % p)]
        if left:
            kill_pids(left, signal.SIGTERM, 5.0, "nginx workers")
        self.proc = None
        bad = [l for l in log_tail(self.error_log, 10000).splitlines()
               if "[alert]" in l or "[emerg]" in l or "[crit]" in l]
        assert not bad, "nginx %s logged:\n%s" % (self.name, "\n".join(bad))


# ---------------------------------------------------------------------------
# The local app behind the tunnel


def read_head(sock, limit=65536):
    """Bytes up to and including the blank line ending an HTTP head, and
    whatever came after it."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("EOF in HTTP head after %r" % data[:200])
        data += chunk
        if len(data) > limit:
            raise ConnectionError("HTTP head too long")
    head, rest = data.split(b"\r\n\r\n", 1)
    return head.decode("latin-1"), rest


def parse_head(head):
    """(first line, {lower-case name: value}) of an HTTP head."""
    lines = head.split("\r\n")
    headers = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        headers[k.strip().lower()] = v.strip()
    return lines[0], headers


def ws_accept(key):
    return base64.b64encode(hashlib.sha1(key.encode() + WS_GUID)
                            .digest()).decode()


def ws_frame(payload, mask):
    """One final text frame (payload < 126 bytes), masked if asked."""
    assert len(payload) < 126
    first = bytes([0x81, (0x80 if mask else 0) | len(payload)])
    if not mask:
        return first + payload
    key = os.urandom(4)
    return first + key + bytes(b ^ key[i % 4] for i, b in
                               enumerate(payload))


def ws_read_frame(sock, rest=b""):
    """(opcode, unmasked payload, leftover bytes) of one short frame."""
    data = rest
    while len(data) < 2:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("EOF before a WebSocket frame")
        data += chunk
    masked, n = data[1] & 0x80, data[1] & 0x7F
    assert n < 126, "test frames are short"
    need = 2 + (4 if masked else 0) + n
    while len(data) < need:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("EOF in a WebSocket frame")
        data += chunk
    if masked:
        key, body = data[2:6], data[6:need]
        body = bytes(b ^ key[i % 4] for i, b in enumerate(body))
    else:
        body = data[2:need]
    return data[0] & 0x0F, body, data[need:]


class HeaderEcho(App):
    """
    Answers each HTTP request with 200 and a JSON body: the request line
    and its headers (names lower-cased). A WebSocket upgrade gets 101 and
    the RFC 6455 accept key; then it sends a "hello" frame and echoes the
    frames it receives. Records every request it saw in self.requests.
    """

    def __init__(self, **kw):
        super().__init__(**kw)
        self.requests = []

    def handle(self, c, n):
        head, rest = read_head(c)
        line, headers = parse_head(head)
        with self._lock:
            self.requests.append((line, headers))
        if headers.get("upgrade", "").lower() == "websocket":
            self._websocket(c, headers, rest)
            return
        body = json.dumps({"line": line, "headers": headers}).encode()
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\nConnection: close\r\n\r\n" %
                  len(body) + body)

    def _websocket(self, c, headers, rest):
        c.sendall(("HTTP/1.1 101 Switching Protocols\r\n"
                   "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Accept: %s\r\n\r\n" %
                   ws_accept(headers["sec-websocket-key"])).encode())
        c.sendall(ws_frame(b"hello", mask=False))
        while True:
            try:
                op, body, rest = ws_read_frame(c, rest)
            except ConnectionError:
                return
            if op == 0x8:                      # close
                c.sendall(bytes([0x88, 0]))
                return
            c.sendall(ws_frame(b"echo:" + body, mask=False))


# ---------------------------------------------------------------------------
# Clients


def tls_client_context():
    """TLS without verification: the test certificate is self-signed."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def open_conn(port, sni=None, timeout=10.0):
    """A TCP connection to 127.0.0.1:port, TLS with SNI `sni` if given."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    if sni is None:
        return s
    try:
        return tls_client_context().wrap_socket(s, server_hostname=sni)
    except BaseException:
        s.close()
        raise


def http_get(port, host, path="/", sni=None, headers=None, timeout=10.0):
    """
    GET path with the given Host header (and TLS SNI when sni is set),
    Connection: close; read to EOF. Returns (status, {header: value},
    body), or (None, {}, b"") when the server closed without answering.
    """
    return http_exchange(open_conn(port, sni, timeout), host, path, headers,
                         timeout)


def http_exchange(s, host, path="/", headers=None, timeout=10.0):
    """
    On connected socket s (plain or TLS; closed here): GET path with the
    Host header, Connection: close; read to EOF within timeout. Returns
    (status, {header: value}, body), or (None, {}, b"") when the server
    closed without answering.
    """
    try:
        req = "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n" % (
            path, host)
        for k, v in (headers or {}).items():
            req += "%s: %s\r\n" % (k, v)
        s.sendall((req + "\r\n").encode())
        data = b""
        deadline = time.monotonic() + timeout
        while True:
            s.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, ssl.SSLEOFError):
                chunk = b""
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    if not data:
        return None, {}, b""
    head, _, body = data.partition(b"\r\n\r\n")
    line, hdrs = parse_head(head.decode("latin-1"))
    return int(line.split()[1]), hdrs, body


def websocket_roundtrip(port, host, sni=None, payload=b"ping"):
    """
    Upgrade through nginx; returns (status line, accept ok, first frame
    from the server, echo of our frame).
    """
    s = open_conn(port, sni)
    try:
        key = base64.b64encode(os.urandom(16)).decode()
        s.sendall(("GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                   "Sec-WebSocket-Version: 13\r\n\r\n" % (host, key))
                  .encode())
        head, rest = read_head(s)
        line, hdrs = parse_head(head)
        if not line.split()[1] == "101":
            return line, False, None, None
        ok = hdrs.get("sec-websocket-accept") == ws_accept(key)
        _, hello, rest = ws_read_frame(s, rest)
        s.sendall(ws_frame(payload, mask=True))
        _, echo, rest = ws_read_frame(s, rest)
        s.sendall(bytes([0x88, 0x80]) + os.urandom(4))   # masked close
        return line, ok, hello, echo
    finally:
        s.close()


def self_signed(dirpath, names):
    """A self-signed certificate for names; returns (cert, key) paths."""
    cert, key = dirpath / "cert.pem", dirpath / "key.pem"
    san = ",".join("DNS:%s" % n for n in names)
    subprocess.run([OPENSSL, "req", "-x509", "-newkey", "ec",
                    "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "2",
                    "-subj", "/CN=%s" % names[0], "-addext",
                    "subjectAltName=%s" % san],
                   check=True, capture_output=True, stdin=subprocess.DEVNULL)
    return cert, key
