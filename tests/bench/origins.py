"""
The local services behind the forwards, the same for both sides: an
iperf3 server (bulk), an nginx serving one small static file (HTTP), and
an epoll echo server in its own process (thousands of connections).
"""

import selectors
import tempfile
import subprocess
import sys
from pathlib import Path

from harness import WaitTimeout, alloc_port, stop_popen, wait_until
from nginx_apps import Nginx

from sides import listening_ports

IPERF3 = "/usr/bin/iperf3"
HERE = Path(__file__).resolve().parent
SMALL_FILE = "small.html"
SMALL_SIZE = 612            # bytes: the size of nginx's stock index.html


def iperf_server(world):
    """iperf3 -s on 127.0.0.1 (a fresh port); returns the port."""
    port = alloc_port()
    p = subprocess.Popen([IPERF3, "-s", "-B", "127.0.0.1", "-p", str(port)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    world.on_cleanup(lambda: stop_popen(p))
    # Checked in /proc, not by connecting: iperf3 would take a probe
    # connection for a test client.
    wait_until(lambda: port in listening_ports(), 10, "iperf3 server")
    return port


def nginx_origin(world):
    """nginx (1 worker) serving SMALL_FILE from a static root, no access
    log, unlimited keep-alive requests (so keep-alive runs measure reused
    connections, not nginx's default 1000-request cycling); returns the
    port."""
    # Several sections may each start one in the same world.
    root = Path(tempfile.mkdtemp(prefix="www-", dir=world.dir))
    root.chmod(0o755)
    (root / SMALL_FILE).write_bytes(b"<!DOCTYPE html>\n" +
                                    b"x" * (SMALL_SIZE - 17) + b"\n")
    conf = Path(tempfile.mkdtemp(prefix="nginx-conf-", dir=world.dir))
    port = alloc_port()
    (conf / "origin.conf").write_text(
        "server {\n"
        "\tlisten 127.0.0.1:%d;\n"
        "\troot %s;\n"
        "\taccess_log off;\n"
        "\tkeepalive_requests 1000000;\n"
        "}\n" % (port, root))
    Nginx(world, conf, conf.name.replace("nginx-conf-", "nginx-")).start(port)
    return port


class EchoOrigin:
    """echo_origin.py in its own process (same interpreter)."""

    def __init__(self, world):
        self.world = world
        self.port = None
        self.proc = None

    @property
    def local(self):
        """The tunnel's `local:` value."""
        return "127.0.0.1:%d" % self.port

    def start(self, timeout=10.0):
        """Start it and read the port it prints (with a deadline)."""
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "echo_origin.py")],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL)
        self.world.on_cleanup(self.stop)
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            raise WaitTimeout("echo origin did not print its port within "
                              "%.0fs" % timeout)
        sel.close()
        line = self.proc.stdout.readline()
        if not line.strip().isdigit():
            raise AssertionError("echo origin printed %r (rc %s)" % (
                line, self.proc.poll()))
        self.port = int(line)
        return self

    def stop(self):
        """Stop the process."""
        if self.proc is not None:
            stop_popen(self.proc)
            self.proc.stdout.close()
            self.proc = None
