"""
What the test SSH servers share (OpenSSH in openssh.py, Dropbear and
AsyncSSH in servers.py): start on an allocated loopback port, retried while
another test holds the port; ready once the pid file exists and the port
sends an SSH banner; the processes serving its connections; stop, restart,
logs and the known_hosts line for its host key.

Part of the integration harness (harness.py re-exports it).
"""

import os
import signal
import subprocess

from binaries import PYTHON
from keys import Key
from netio import alloc_port, connect
from procs import descendants, kill_pids, log_tail, stop_popen
from waits import WaitTimeout, wait_until


def authorized_text(keys):
    """authorized_keys content: Key objects and raw lines, one a line."""
    return "".join((k.pub_line if isinstance(k, Key) else k) + "\n"
                   for k in keys)


class SshServer:
    """
    Base of a test SSH server. A subclass sets name, port (None: allocate),
    proc (None), pidfile, log and host_key, names itself in KIND, and
    implements _launch() (returns the started Popen); _prepare() runs
    before each launch.
    """

    KIND = "server"
    READY_S = 10
    FORKS = True        # a process per connection (stop() ends them too)

    def _prepare(self):
        pass

    def _launch(self):
        raise NotImplementedError

    def _log_tails(self, lines):
        """The logs to show when it does not start (and to look for a port
        already in use in)."""
        return log_tail(self.log, lines)

    def start(self, tries=5):
        """Start on self.port (or a fresh allocated port); wait for ready."""
        fixed = self.port is not None
        last = None
        for _ in range(1 if fixed else tries):
            if not fixed:
                self.port = alloc_port()
            self._prepare()
            try:
                self.pidfile.unlink()
            except FileNotFoundError:
                pass
            self.proc = self._launch()
            try:
                wait_until(self._ready, self.READY_S,
                           "%s %s ready on port %d" %
                           (self.KIND, self.name, self.port))
                return self
            except WaitTimeout as e:
                last = e
                stop_popen(self.proc)
                busy = "Address already in use" in self._log_tails(20)
                if not busy or fixed:
                    break
        raise AssertionError("%s %s did not start: %s\n%s" %
                             (self.KIND, self.name, last,
                              self._log_tails(30)))

    def _ready(self):
        """True once the pid file exists and the port sends a banner."""
        if self.proc.poll() is not None:
            raise WaitTimeout("%s exited with %s" % (self.KIND,
                                                    self.proc.returncode))
        if not os.path.exists(self.pidfile):
            return False
        s = connect(self.port, timeout=2.0)
        try:
            s.settimeout(2.0)
            return s.recv(64).startswith(b"SSH-2.0-")
        finally:
            s.close()

    def known_hosts_line(self, key=None, host="127.0.0.1", port=None):
        """known_hosts line for this server's host key; `port` names another
        port that reaches it (a relay in front of it)."""
        key = key or self.host_key
        return "[%s]:%d %s" % (host, port or self.port, key.pub_line)

    @property
    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def session_pids(self):
        """The processes serving its connections: every descendant of the
        listener."""
        if not self.running():
            return []
        return descendants(self.proc.pid)

    def kill_sessions(self, sig=signal.SIGTERM, timeout=5.0):
        """End every connection it serves; return the pids killed."""
        pids = self.session_pids()
        if pids:
            kill_pids(pids, sig, timeout, "%s %s sessions" % (self.KIND,
                                                              self.name))
        return pids

    def stop(self):
        """Stop the listener and every session it forked (FORKS)."""
        if self.proc is None:
            return
        pids = self.session_pids() if self.FORKS else []  # before it dies
        stop_popen(self.proc)
        if pids:
            kill_pids(pids, signal.SIGTERM, 5.0,
                      "%s %s sessions" % (self.KIND, self.name))

    def restart(self):
        """Stop everything, then start again on the same port."""
        self.stop()
        return self.start()

    def log_text(self):
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""


class ScriptServer(SshServer):
    """
    An SSH server the tests wrote in Python (SCRIPT, run by PYTHON) with a
    generated ed25519 host key, its own authorized_keys, log and stderr:
    one process serves every connection (its session_pids are only the
    commands it runs). A subclass adds its own options in _args().
    """

    FORKS = False
    READY_S = 15
    SCRIPT = None

    def __init__(self, world, name, authorized=()):
        self.world = world
        self.name = name
        self.dir = world.dir / name
        self.dir.mkdir()
        self.log = self.dir / "server.log"
        self.out = self.dir / "server.stderr"
        self.pidfile = self.dir / "server.pid"
        self.authorized_keys = self.dir / "authorized_keys"
        self.port = None
        self.proc = None
        self.user = world.user
        self.host_key = Key(self.dir / "host_ed25519",
                            comment="%s-host" % name)
        self.set_authorized(authorized)
        world.add_log("%s %s log" % (self.KIND, name), self.log, 60)
        world.add_log("%s %s stderr" % (self.KIND, name), self.out, 20)

    def set_authorized(self, keys):
        self.authorized_keys.write_text(authorized_text(keys))

    def _args(self):
        return []

    def _launch(self):
        argv = [PYTHON, str(self.SCRIPT), "--port", str(self.port),
                "--host-key", self.host_key.path,
                "--authorized-keys", str(self.authorized_keys),
                "--pidfile", str(self.pidfile), "--log", str(self.log)]
        with open(self.out, "ab") as of:
            return subprocess.Popen(argv + self._args(),
                                    stdin=subprocess.DEVNULL,
                                    stdout=of, stderr=of)

    def _log_tails(self, lines):
        return log_tail(self.log, lines) + "\n" + log_tail(self.out, lines)
