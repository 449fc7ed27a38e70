"""
SSH servers other than OpenSSH for the integration tests: Dropbear and a
small AsyncSSH server (asyncssh_server.py), each on an allocated loopback
port with a generated host key, with the interface of harness.Sshd where
it makes sense (port, known_hosts_line(), start/stop/restart,
session_pids(), kill_sessions(), log_text()), so world.server_cfg(),
world.write_config(), world.daemon() and the echo apps work with them.

Dropbear has no AuthorizedKeysFile option: it reads
~/.ssh/authorized_keys of the account. The real home directory is never
touched: for the test's own account, Dropbear runs in a private mount
namespace where a temp dir is bind-mounted over that home; or the server
runs for a test account (TestAccount: created with useradd, a temp home,
removed at cleanup), e.g. an unprivileged one that cannot signal
Dropbear's root-owned session processes.

Standard library only.
"""

import os
import pwd
import re
import signal
import subprocess
import types

from faults import require_tool
from harness import REPO, children, kill_pids, wait_until
from sshserver import ScriptServer, SshServer, authorized_text

DROPBEAR = "/usr/sbin/dropbear"
DROPBEARKEY = "/usr/bin/dropbearkey"
ASYNCSSH_SERVER = REPO / "tests" / "integration" / "asyncssh_server.py"


# ---------------------------------------------------------------------------
# A test account


class TestAccount:
    """
    A Unix account created for one test (useradd, /bin/sh, no password
    but not locked, a home in a temp dir it owns, ~/.ssh/authorized_keys),
    removed with its group at cleanup. Its name is unique (tunsrv + random
    hex).
    """

    def __init__(self, world, keys, prefix="tunsrv"):
        self.world = world
        self.name = "%s%s" % (prefix, os.urandom(4).hex())
        self.home = world.dir / ("home-%s" % self.name)
        useradd = require_tool("useradd")
        self.home.mkdir()
        # Other tests may hold /etc/passwd's lock for a moment: useradd
        # waits for it itself; retry a failure a few times all the same.
        last = None
        for _ in range(5):
            # -p '*': no password, but not locked ("!"), which sshd
            # without PAM refuses.
            r = subprocess.run([useradd, "-M", "-U", "-d", str(self.home),
                                "-s", "/bin/sh", "-p", "*", self.name],
                               capture_output=True, text=True, timeout=60)
            if r.returncode == 0:
                break
            last = r
            wait_until(lambda: not os.path.exists("/etc/passwd.lock"), 20,
                       "/etc/passwd.lock to go")
        else:
            raise AssertionError("useradd %s: rc %d: %s" % (
                self.name, last.returncode, last.stderr))
        world.on_cleanup(self.remove)
        pw = pwd.getpwnam(self.name)
        self.uid, self.gid = pw.pw_uid, pw.pw_gid
        ssh = self.home / ".ssh"
        ssh.mkdir(mode=0o700)
        self.authorized_keys = ssh / "authorized_keys"
        self.set_authorized(keys)
        for p in (self.home, ssh):
            os.chown(p, self.uid, self.gid)
        os.chmod(self.home, 0o700)
        # The world dir is root's and 0700: let the account reach its home.
        os.chmod(world.dir, 0o711)

    def set_authorized(self, keys):
        self.authorized_keys.write_text(authorized_text(keys))
        os.chown(self.authorized_keys, self.uid, self.gid)
        os.chmod(self.authorized_keys, 0o600)

    def pids(self):
        """Processes running as this account."""
        out = []
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    if os.stat("/proc/" + d).st_uid == self.uid:
                        out.append(int(d))
                except FileNotFoundError:
                    pass
        return out

    def remove(self):
        pids = self.pids()
        if pids:
            kill_pids(pids, signal.SIGKILL, 5.0, "processes of %s" %
                      self.name)
        userdel = require_tool("userdel")
        r = subprocess.run([userdel, self.name], capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 0, "userdel %s: %s" % (self.name, r.stderr)


# ---------------------------------------------------------------------------
# Dropbear


class Dropbear(SshServer):
    """
    /usr/sbin/dropbear -F -E on an allocated loopback port with its own
    ed25519 host key (dropbearkey) and log. Each connection is served by
    a forked `dropbear` process that keeps root privileges.

    account: None for the test's own account (the home dir is replaced by
    a temp dir in a private mount namespace), or a TestAccount.
    keepalive: seconds for -K (0: Dropbear sends no keepalives).
    """

    KIND = "dropbear"

    def __init__(self, world, name, authorized=(), account=None,
                 keepalive=0, extra=()):
        self.world = world
        self.name = name
        self.dir = world.dir / name
        self.dir.mkdir()
        self.log = self.dir / "dropbear.log"
        self.pidfile = self.dir / "dropbear.pid"
        self.account = account
        self.keepalive = keepalive
        self.extra = list(extra)
        self.port = None
        self.proc = None
        if account is None:
            self.user = pwd.getpwuid(os.getuid()).pw_name
            self.real_home = pwd.getpwuid(os.getuid()).pw_dir
            self.home = self.dir / "home"
            (self.home / ".ssh").mkdir(parents=True, mode=0o700)
            os.chmod(self.home, 0o700)
            self.authorized_keys = self.home / ".ssh" / "authorized_keys"
        else:
            self.user = account.name
            self.home = account.home
            self.authorized_keys = account.authorized_keys
        self.set_authorized(authorized)
        self.host_key = self._new_host_key()
        world.add_log("dropbear %s log" % name, self.log, 60)

    def _new_host_key(self):
        path = self.dir / "host_ed25519"
        subprocess.run([DROPBEARKEY, "-t", "ed25519", "-f", str(path)],
                       check=True, capture_output=True,
                       stdin=subprocess.DEVNULL)
        out = subprocess.run([DROPBEARKEY, "-y", "-f", str(path)],
                             check=True, capture_output=True,
                             text=True).stdout
        m = re.search(r"^(ssh-ed25519 [A-Za-z0-9+/=]+)", out, re.M)
        assert m, "no public key line from dropbearkey -y: %r" % out
        return types.SimpleNamespace(path=str(path), pub_line=m.group(1))

    def set_authorized(self, keys):
        if self.account is not None:
            self.account.set_authorized(keys)
            return
        self.authorized_keys.write_text(authorized_text(keys))
        os.chmod(self.authorized_keys, 0o600)

    def _argv(self):
        argv = [DROPBEAR, "-F", "-E", "-s", "-p", "127.0.0.1:%d" % self.port,
                "-r", self.host_key.path, "-P", str(self.pidfile)]
        if self.keepalive:
            argv += ["-K", str(self.keepalive)]
        argv += self.extra
        if self.account is not None:
            return argv
        # The own account's home: a temp dir over it, in a private mount
        # namespace (the real home is never modified or seen).
        unshare = require_tool("unshare")
        return [unshare, "--mount", "--propagation", "private", "/bin/sh",
                "-c", 'mount --bind "$1" "$2" && shift 2 && exec "$@"',
                "sh", str(self.home), self.real_home] + argv

    def _launch(self):
        with open(self.log, "ab") as lf:
            return subprocess.Popen(self._argv(), stdin=subprocess.DEVNULL,
                                    stdout=lf, stderr=lf)

    def connection_pids(self):
        """Only the per-connection dropbear processes."""
        if not self.running():
            return []
        return children(self.proc.pid)


# ---------------------------------------------------------------------------
# AsyncSSH


class AsyncSSHServer(ScriptServer):
    """
    asyncssh_server.py under /usr/bin/python3 on an allocated loopback
    port: one process serves every connection. keepalive: the server's
    keepalive interval in seconds (0: none). comm: the process name it
    gives itself (default python3).
    """

    KIND = "asyncssh"
    SCRIPT = ASYNCSSH_SERVER

    def __init__(self, world, name, authorized=(), keepalive=0,
                 keepalive_count=3, comm=None, debug=0):
        self.keepalive = keepalive
        self.keepalive_count = keepalive_count
        self.comm = comm
        self.debug = debug
        super().__init__(world, name, authorized)

    def _args(self):
        argv = []
        if self.keepalive:
            argv += ["--keepalive", str(self.keepalive),
                     "--keepalive-count", str(self.keepalive_count)]
        if self.comm:
            argv += ["--comm", self.comm]
        if self.debug:
            argv += ["--debug", str(self.debug)]
        return argv

    def kill_sessions(self, sig=signal.SIGUSR1, timeout=5.0):
        """Abort every connection (the server's SIGUSR1); wait until it
        logged doing so. Returns the server's pid."""
        before = self.log_text().count("aborted ")
        os.kill(self.proc.pid, sig)
        wait_until(lambda: self.log_text().count("aborted ") > before,
                   timeout, "asyncssh %s to abort its connections" %
                   self.name)
        return [self.proc.pid]


# ---------------------------------------------------------------------------
# Factories (registered for cleanup like world.sshd())


def _server(world, cls, name, authorized, start, **kw):
    """A cls server accepting `authorized` (default: the world's user
    key), stopped at cleanup; started unless start is False."""
    if authorized is None:
        authorized = [world.user_key]
    srv = cls(world, name, authorized, **kw)
    world.on_cleanup(srv.stop)
    return srv.start() if start else srv


def dropbear(world, name="dropbear1", authorized=None, start=True, **kw):
    return _server(world, Dropbear, name, authorized, start, **kw)


def asyncssh_server(world, name="asyncssh1", authorized=None, start=True,
                    **kw):
    return _server(world, AsyncSSHServer, name, authorized, start, **kw)


def account(world, keys=None):
    """A test account accepting `keys` (default: the world's user key)."""
    return TestAccount(world, [world.user_key] if keys is None else keys)

