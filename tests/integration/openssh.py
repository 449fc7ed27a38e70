"""
A real OpenSSH sshd per test on an allocated loopback port.

Part of the integration harness (harness.py re-exports it).
"""

import os
import signal
import subprocess

from binaries import SSHD
from keys import Key
from netio import alloc_port, connect
from procs import descendants, kill_pids, log_tail, stop_popen
from waits import WaitTimeout, wait_until


class Sshd:
    """
    One real /usr/sbin/sshd on an allocated loopback port, with its own
    generated host key (of type host_key_type: ed25519, rsa, ecdsa),
    authorized_keys and log, all in `dir`.
    """

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
        with open(self.authorized_keys, "w") as f:
            for k in keys:
                f.write((k.pub_line if isinstance(k, Key) else k) + "\n")

    def known_hosts_line(self, key=None, host="127.0.0.1", port=None):
        """known_hosts line for this server's host key; `port` names another
        port that reaches it (a relay in front of it)."""
        key = key or self.host_key
        return "[%s]:%d %s" % (host, port or self.port, key.pub_line)

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

    def start(self, tries=5):
        """Start on self.port (or a fresh allocated port); wait for ready."""
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        fixed = self.port is not None
        last = None
        for _ in range(tries if not fixed else 1):
            if not fixed:
                self.port = alloc_port()
            self._write_config()
            t = subprocess.run([SSHD, "-t", "-f", str(self.config)],
                               capture_output=True, text=True)
            assert t.returncode == 0, "sshd -t failed: %s%s" % (t.stdout,
                                                                t.stderr)
            try:
                self.pidfile.unlink()
            except FileNotFoundError:
                pass
            with open(self.log, "a") as lf:
                lf.write("=== harness: starting sshd on port %d\n" % self.port)
            self.proc = subprocess.Popen(
                [SSHD, "-D", "-f", str(self.config), "-E", str(self.log)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL)
            try:
                wait_until(self._ready, 10, "sshd %s ready on port %d" %
                           (self.name, self.port))
                return self
            except WaitTimeout as e:
                last = e
                stop_popen(self.proc)
                busy = "Address already in use" in log_tail(self.log, 20)
                if not busy or fixed:
                    break
        raise AssertionError("sshd %s did not start: %s\n%s" %
                             (self.name, last, log_tail(self.log, 30)))

    def _ready(self):
        if self.proc.poll() is not None:
            raise WaitTimeout("sshd exited with %s" % self.proc.returncode)
        if not self.pidfile.exists():
            return False
        s = connect(self.port, timeout=2.0)
        try:
            s.settimeout(2.0)
            return s.recv(64).startswith(b"SSH-2.0-")
        finally:
            s.close()

    @property
    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def session_pids(self):
        """Per-connection sshd processes: every descendant of the listener."""
        if not self.running():
            return []
        return descendants(self.proc.pid)

    def kill_sessions(self, sig=signal.SIGTERM, timeout=5.0):
        """End every connection this sshd serves; return the pids killed."""
        pids = self.session_pids()
        if pids:
            kill_pids(pids, sig, timeout, "sshd %s sessions" % self.name)
        return pids

    def stop(self):
        """Stop the listener and every session it forked."""
        if self.proc is None:
            return
        pids = self.session_pids()   # before the listener dies
        stop_popen(self.proc)
        if pids:
            kill_pids(pids, signal.SIGTERM, 5.0,
                      "sshd %s sessions" % self.name)

    def restart(self, new_host_key=False):
        """Stop everything, then start again on the same port."""
        self.stop()
        if new_host_key:
            self.new_host_key()
        return self.start()

    def log_text(self):
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""
