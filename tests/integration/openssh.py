"""
A real OpenSSH sshd per test on an allocated loopback port.

Part of the integration harness (harness.py re-exports it).
"""

import os
import subprocess

from binaries import SSHD
from keys import Key
from sshserver import SshServer, authorized_text


class Sshd(SshServer):
    """
    One real /usr/sbin/sshd on an allocated loopback port, with its own
    generated host key (of type host_key_type: ed25519, rsa, ecdsa),
    authorized_keys and log, all in `dir`.
    """

    KIND = "sshd"

    def __init__(self, world, name, authorized=(), extra=(), listen_v6=False,
                 port=None, host_key_type="ed25519"):
        self.world = world
        self.name = name
        self.dir = world.dir / name
        self.dir.mkdir()
        self.config = self.dir / "sshd_config"
        self.log = self.dir / "sshd.log"
        self.pidfile = self.dir / "sshd.pid"
        self.authorized_keys = self.dir / "authorized_keys"
        self.extra = list(extra)
        self.listen_v6 = listen_v6
        self.port = port
        self.proc = None
        self.host_key = None
        self.host_key_type = host_key_type
        self._host_key_gen = 0
        self.set_authorized(authorized)
        self.new_host_key()
        world.add_log("sshd %s log" % name, self.log, 60)

    # -- keys and files

    def new_host_key(self):
        """Generate a fresh host key (takes effect at the next start)."""
        self._host_key_gen += 1
        n = self._host_key_gen
        self.host_key = Key(self.dir / ("host_%s_%d" % (self.host_key_type,
                                                         n)),
                            self.host_key_type,
                            comment="%s-host-%d" % (self.name,
                                                    self._host_key_gen))
        return self.host_key

    def set_authorized(self, keys):
        self.authorized_keys.write_text(authorized_text(keys))

    def _write_config(self):
        lines = ["ListenAddress 127.0.0.1:%d" % self.port]
        if self.listen_v6:
            lines.append("ListenAddress [::1]:%d" % self.port)
        lines += [
            "HostKey %s" % self.host_key.path,
            "PidFile %s" % self.pidfile,
            "AuthorizedKeysFile %s" % self.authorized_keys,
            "StrictModes no",
            "UsePAM no",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password",
            "AllowTcpForwarding yes",
            "LogLevel DEBUG1",
            # Commands run with the account's shell, and bash started by
            # sshd sources ~/.bashrc unless SHLVL says it is nested: keep
            # the test server independent of the account's dotfiles (a
            # slow or lock-waiting .bashrc, e.g. pyenv's rehash, stalls
            # every exec channel, such as the daemon's session lookup).
            "SetEnv SHLVL=1",
        ] + self.extra
        self.config.write_text("\n".join(lines) + "\n")

    # -- lifecycle

    def _prepare(self):
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        self._write_config()
        t = subprocess.run([SSHD, "-t", "-f", str(self.config)],
                           capture_output=True, text=True)
        assert t.returncode == 0, "sshd -t failed: %s%s" % (t.stdout,
                                                            t.stderr)

    def _launch(self):
        with open(self.log, "a") as lf:
            lf.write("=== harness: starting sshd on port %d\n" % self.port)
        return subprocess.Popen(
            [SSHD, "-D", "-f", str(self.config), "-E", str(self.log)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)

    def restart(self, new_host_key=False):
        """Stop everything, then start again on the same port."""
        self.stop()
        if new_host_key:
            self.new_host_key()
        return self.start()
