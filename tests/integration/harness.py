"""
Integration test harness for `tunnels`: a private world per test (temp dir,
generated keys, real /usr/sbin/sshd on allocated ports, the daemon under
test, local apps) and the helpers that wait on state instead of time.

Standard library only. Run with /usr/bin/python3 -m pytest.
"""

import getpass
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

SSHD = "/usr/sbin/sshd"
SSH = "/usr/bin/ssh"
SSH_KEYGEN = "/usr/bin/ssh-keygen"
REPO = Path(__file__).resolve().parents[2]

SANITIZER_PATTERNS = ("AddressSanitizer", "LeakSanitizer",
                      "UndefinedBehaviorSanitizer", "runtime error:")

DAEMON_ENV = {
    "ASAN_OPTIONS": "abort_on_error=0:detect_leaks=1",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
}


def tunnels_bin():
    """Path of the daemon under test (TUNNELS_BIN, default build/tunnels)."""
    return os.environ.get("TUNNELS_BIN") or str(REPO / "build" / "tunnels")


def release_bin():
    """The release build (build/tunnels, built by `make` and by the
    integration target): for measurements ASan would distort (RSS, CPU)."""
    b = str(REPO / "build" / "tunnels")
    assert os.access(b, os.X_OK), "release build %s missing (run make)" % b
    return b


# ---------------------------------------------------------------------------
# Waiting and timing


class WaitTimeout(AssertionError):
    pass


def wait_until(predicate, timeout, what, interval=0.05,
               ignore=(OSError, ValueError)):
    """
    Call predicate() until it returns a truthy value (returned) or the
    deadline passes (WaitTimeout naming `what`, the last value and the last
    ignored exception). Exceptions of the `ignore` types count as "not yet".
    """
    deadline = time.monotonic() + timeout
    last, last_exc = None, None
    while True:
        try:
            last = predicate()
            if last:
                return last
        except ignore as e:  # noqa: PERF203
            last_exc = e
        if time.monotonic() >= deadline:
            msg = "timed out after %.1fs waiting for %s" % (timeout, what)
            if last is not None:
                msg += "; last value: %s" % _short(last)
            if last_exc is not None:
                msg += "; last error: %r" % (last_exc,)
            raise WaitTimeout(msg)
        time.sleep(interval)  # polling interval, bounded by the deadline


def _short(v, limit=2000):
    if isinstance(v, (dict, list)):
        s = json.dumps(v, indent=1)
    else:
        s = repr(v)
    return s if len(s) <= limit else s[:limit] + "...(truncated)"


# ---------------------------------------------------------------------------
# Ports and sockets


def alloc_port(host="127.0.0.1"):
    """A free TCP port on host (bind :0, read, close)."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _family(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def connect(port, host="127.0.0.1", timeout=5.0):
    """A connected TCP client socket (blocking, with timeout)."""
    s = socket.socket(_family(host), socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect((host, port))
    except BaseException:
        s.close()
        raise
    return s


def connect_unix(path, timeout=5.0):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
    except BaseException:
        s.close()
        raise
    return s


def is_refused(port, host="127.0.0.1"):
    """True if a TCP connect to host:port is refused (nothing listening)."""
    try:
        s = connect(port, host, timeout=2.0)
    except ConnectionRefusedError:
        return True
    s.close()
    return False


def is_listening(port, host="127.0.0.1"):
    try:
        s = connect(port, host, timeout=2.0)
    except OSError:
        return False
    s.close()
    return True


def recv_exact(sock, n, timeout=10.0):
    """Exactly n bytes, or AssertionError on EOF/timeout (with what came)."""
    deadline = time.monotonic() + timeout
    buf = bytearray()
    while len(buf) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("timeout: got %d of %d bytes" % (len(buf), n))
        sock.settimeout(left)
        try:
            chunk = sock.recv(min(n - len(buf), 1 << 18))
        except socket.timeout:
            raise AssertionError("timeout: got %d of %d bytes" % (len(buf), n))
        if not chunk:
            raise AssertionError("EOF after %d of %d bytes: %r" %
                                 (len(buf), n, bytes(buf[:200])))
        buf += chunk
    return bytes(buf)


def recv_until_eof(sock, timeout=10.0, hasher=None):
    """
    Read until EOF. Returns the bytes (or, with hasher, the byte count and
    feeds the hasher instead of keeping the data). AssertionError on timeout.
    """
    deadline = time.monotonic() + timeout
    buf = bytearray()
    count = 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("timeout before EOF after %d bytes" %
                                 (count,))
        sock.settimeout(left)
        try:
            chunk = sock.recv(1 << 18)
        except socket.timeout:
            raise AssertionError("timeout before EOF after %d bytes" %
                                 (count,))
        if not chunk:
            return count if hasher is not None else bytes(buf)
        count += len(chunk)
        if hasher is not None:
            hasher.update(chunk)
        else:
            buf += chunk


def echo_roundtrip(port, payload=None, host="127.0.0.1", prefix=b"",
                   timeout=10.0):
    """
    Connect, send payload, read back prefix + payload exactly (no
    half-close, so it only needs plain bridging), close. Returns the bytes.
    """
    if payload is None:
        payload = b"ping " + os.urandom(8).hex().encode() + b"\n"
    s = connect(port, host, timeout)
    try:
        s.sendall(payload)
        return recv_exact(s, len(prefix) + len(payload), timeout)
    finally:
        s.close()


def echo_ok(port, host="127.0.0.1", prefix=b"", timeout=5.0):
    """True if one echo round trip through host:port returns the payload."""
    payload = b"probe " + os.urandom(8).hex().encode() + b"\n"
    got = echo_roundtrip(port, payload, host, prefix, timeout)
    return got == prefix + payload


# ---------------------------------------------------------------------------
# Processes


def children(pid):
    """Direct children of pid (all threads' children files)."""
    out = []
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
    except FileNotFoundError:
        return out
    for t in tasks:
        try:
            with open("/proc/%d/task/%s/children" % (pid, t)) as f:
                out += [int(x) for x in f.read().split()]
        except (FileNotFoundError, ProcessLookupError):
            pass
    return out


def descendants(pid):
    """All descendants of pid, parents before children."""
    out, todo = [], [pid]
    while todo:
        for c in children(todo.pop(0)):
            out.append(c)
            todo.append(c)
    return out


def pid_alive(pid):
    """True if pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    state = data.rsplit(")", 1)[1].split()[0]
    return state not in ("Z", "X")


def proc_cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def kill_pids(pids, sig=signal.SIGTERM, timeout=5.0, what="processes"):
    """Signal the given pids, wait until they are gone, SIGKILL leftovers."""
    for p in pids:
        try:
            os.kill(p, sig)
        except ProcessLookupError:
            pass
    try:
        wait_until(lambda: not any(pid_alive(p) for p in pids), timeout,
                   "%s %s to exit" % (what, pids))
    except WaitTimeout:
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        wait_until(lambda: not any(pid_alive(p) for p in pids), 5,
                   "%s %s to die after SIGKILL" % (what, pids))


def stop_popen(proc, timeout=5.0, sig=signal.SIGTERM):
    """Stop a Popen we started: sig, wait, SIGKILL fallback. Returns rc."""
    if proc.poll() is None:
        try:
            proc.send_signal(sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode


def log_tail(path, lines=80):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        return "(no log: %s)" % e
    text = data.decode(errors="replace").splitlines()
    if len(text) > lines:
        return ("...(%d earlier lines)\n" % (len(text) - lines) +
                "\n".join(text[-lines:]))
    return "\n".join(text)


def sanitizer_lines(text):
    return [l for l in text.splitlines()
            if any(p in l for p in SANITIZER_PATTERNS)]


# ---------------------------------------------------------------------------
# Keys


class Key:
    """An ed25519 (or other type) key pair generated with ssh-keygen."""

    def __init__(self, path, ktype="ed25519", comment=None, bits=None):
        self.path = str(path)
        self.type = ktype
        cmd = [SSH_KEYGEN, "-q", "-t", ktype, "-N", "", "-f", self.path,
               "-C", comment or os.path.basename(self.path)]
        if bits is not None or ktype == "rsa":
            cmd[4:4] = ["-b", str(bits or 2048)]
        subprocess.run(cmd, check=True, stdin=subprocess.DEVNULL,
                       capture_output=True)
        with open(self.path + ".pub") as f:
            parts = f.read().split()
        self.pub_line = "%s %s" % (parts[0], parts[1])   # "TYPE BASE64"
        out = subprocess.run([SSH_KEYGEN, "-lf", self.path + ".pub"],
                             check=True, capture_output=True,
                             text=True).stdout
        m = re.search(r"SHA256:[A-Za-z0-9+/]+", out)
        assert m, "no SHA256 fingerprint in %r" % out
        self.fingerprint = m.group(0)

    def authorized_line(self, options=None):
        """The authorized_keys line for this key, with optional key options
        (e.g. 'restrict,port-forwarding,command="/bin/false"')."""
        return ("%s %s" % (options, self.pub_line)) if options else \
            self.pub_line


# ---------------------------------------------------------------------------
# sshd


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


# ---------------------------------------------------------------------------
# Config YAML


_PLAIN = re.compile(r"[A-Za-z0-9_./][A-Za-z0-9_./:@+-]*")


def yaml_scalar(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    s = str(v)
    if _PLAIN.fullmatch(s) and not s.endswith(":"):
        return s
    return json.dumps(s)    # a JSON string is a valid YAML double-quoted one


def to_yaml(obj, indent=0):
    """Block-style YAML for dicts/lists of scalars (insertion order)."""
    pad = " " * indent
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, (dict, list)) and v:
                out.append("%s%s:" % (pad, k))
                out.append(to_yaml(v, indent + 2))
            else:
                out.append("%s%s: %s" % (pad, k,
                                         yaml_scalar(v) if not isinstance(
                                             v, (dict, list)) else
                                         ("{}" if isinstance(v, dict)
                                          else "[]")))
    elif isinstance(obj, list):
        for item in obj:
            if isinstance(item, dict):
                sub = to_yaml(item, indent + 2).splitlines()
                sub[0] = pad + "- " + sub[0][indent + 2:]
                out += sub
            else:
                out.append("%s- %s" % (pad, yaml_scalar(item)))
    return "\n".join(out)


# ---------------------------------------------------------------------------
# The daemon


class Daemon:
    """A running `tunnels run -c CONFIG`, its log and its control socket."""

    def __init__(self, world, config_path, control, name="daemon",
                 extra_env=None, binary=None, wrapper=None):
        self.world = world
        self.config = str(config_path)
        self.control = str(control)
        self.name = name
        self.log = world.dir / ("%s.log" % name)
        self.out = world.dir / ("%s.stdout" % name)
        self.bin = str(binary) if binary else tunnels_bin()
        self.expected_rc = 0
        self.stopped_rc = None
        if not os.access(self.bin, os.X_OK):
            raise AssertionError("tunnels binary not found or not executable:"
                                 " %s (build it, or set TUNNELS_BIN)" %
                                 self.bin)
        env = dict(os.environ)
        env.update(DAEMON_ENV)
        env.pop("NOTIFY_SOCKET", None)
        env.pop("JOURNAL_STREAM", None)
        env.pop("WATCHDOG_USEC", None)
        env.update(extra_env or {})
        world.add_log("%s log (stderr)" % name, self.log, 200)
        world.add_log("%s stdout" % name, self.out, 20)
        self._lf = open(self.log, "ab")
        self._of = open(self.out, "ab")
        # wrapper: argv run in front of the daemon's that must exec it (so
        # self.pid stays the daemon's), e.g. to set WATCHDOG_PID=$$.
        self.proc = subprocess.Popen(list(wrapper or []) +
                                     [self.bin, "run", "-c", self.config],
                                     stdin=subprocess.DEVNULL,
                                     stdout=self._of, stderr=self._lf,
                                     env=env, cwd=str(world.dir))
        self.started = time.monotonic()

    @property
    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc.poll() is None

    # -- status over the control socket (the synchronisation primitive)

    def status(self, timeout=3.0):
        """One status document: connect, read to EOF, json.loads."""
        s = connect_unix(self.control, timeout)
        try:
            data = recv_until_eof(s, timeout)
        finally:
            s.close()
        return json.loads(data.decode())

    def wait_status(self, pred, timeout=10.0, what="status condition"):
        """Poll status until pred(status) is truthy; returns that status."""
        holder = {}

        def probe():
            if self.proc.poll() is not None:
                raise WaitTimeout("daemon exited with rc %s while waiting "
                                  "for %s" % (self.proc.returncode, what))
            st = self.status()
            holder["st"] = st
            return st if pred(st) else None
        try:
            return wait_until(probe, timeout, what)
        except WaitTimeout as e:
            if "st" in holder:
                raise WaitTimeout("%s\nlast status:\n%s" %
                                  (e, json.dumps(holder["st"], indent=1)))
            raise

    @staticmethod
    def find(st, kind, name):
        for x in st.get(kind, []):
            if x.get("name") == name:
                return x
        return None

    def tunnel(self, name, st=None):
        st = st or self.status()
        t = self.find(st, "tunnels", name)
        assert t is not None, "tunnel %s not in status: %s" % (name, st)
        return t

    def server(self, name, st=None):
        st = st or self.status()
        s = self.find(st, "servers", name)
        assert s is not None, "server %s not in status: %s" % (name, st)
        return s

    def wait_tunnel(self, name, state="up", timeout=10.0):
        st = self.wait_status(
            lambda st: (self.find(st, "tunnels", name) or {}).get("state")
            == state, timeout, "tunnel %s %s" % (name, state))
        return self.find(st, "tunnels", name)

    def wait_server(self, name, state="up", timeout=10.0):
        st = self.wait_status(
            lambda st: (self.find(st, "servers", name) or {}).get("state")
            == state, timeout, "server %s %s" % (name, state))
        return self.find(st, "servers", name)

    def wait_all_up(self, timeout=10.0):
        return self.wait_status(
            lambda st: st.get("tunnels") and all(
                t.get("state") == "up" for t in st["tunnels"]),
            timeout, "every tunnel up")

    # -- stop and logs

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=2.0, expect=0, sig=signal.SIGTERM):
        """
        Send sig, wait up to timeout for the exit; assert it exited in time
        with `expect` (None: don't check). Returns (rc, seconds).
        """
        if self.proc.poll() is not None:
            rc = self.proc.returncode
            self.stopped_rc = rc
            if expect is not None:
                assert rc == expect, ("daemon had already exited with %s "
                                      "(expected %s)" % (rc, expect))
            return rc, 0.0
        t0 = time.monotonic()
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            self.stopped_rc = self.proc.returncode
            raise AssertionError("daemon did not exit within %.1fs after %s "
                                 "(killed)" % (timeout, sig.name))
        took = time.monotonic() - t0
        self.stopped_rc = rc
        if expect is not None:
            assert rc == expect, ("daemon exited with %s after %s (expected "
                                  "%s)" % (rc, sig.name, expect))
        return rc, took

    def close_files(self):
        for f in (self._lf, self._of):
            try:
                f.close()
            except OSError:
                pass

    def log_text(self):
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def assert_clean_log(self):
        bad = sanitizer_lines(self.log_text())
        assert not bad, "sanitizer reports in %s log:\n%s" % (
            self.name, "\n".join(bad[:40]))

    def teardown(self):
        """Stop (SIGTERM, exit 0 expected unless told otherwise); check log."""
        errors = []
        try:
            if self.proc.poll() is None:
                self.stop(timeout=5.0, expect=self.expected_rc)
            elif (self.stopped_rc is None and self.expected_rc is not None
                  and self.proc.returncode != self.expected_rc):
                errors.append("daemon exited on its own with %s" %
                              self.proc.returncode)
        except AssertionError as e:
            errors.append(str(e))
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(5)
            self.close_files()
        bad = sanitizer_lines(self.log_text())
        if bad:
            errors.append("sanitizer reports in daemon log:\n" +
                          "\n".join(bad[:40]))
        if errors:
            raise AssertionError("; ".join(errors))


def run_cli(*args, timeout=20.0, check_sanitizers=True):
    """Run `tunnels ARGS...` to completion; CompletedProcess (text)."""
    b = tunnels_bin()
    if not os.access(b, os.X_OK):
        raise AssertionError("tunnels binary not found or not executable: %s"
                             " (build it, or set TUNNELS_BIN)" % b)
    env = dict(os.environ)
    env.update(DAEMON_ENV)
    r = subprocess.run([b] + [str(a) for a in args], capture_output=True,
                       text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                       env=env, errors="replace")
    if check_sanitizers:
        bad = sanitizer_lines(r.stdout + r.stderr)
        assert not bad, "sanitizer reports from tunnels %s:\n%s" % (
            " ".join(map(str, args)), "\n".join(bad[:40]))
    return r


# ---------------------------------------------------------------------------
# The per-test world


class World:
    """
    Everything one test owns: a short temp dir (unix socket paths stay under
    108 bytes), a cleanup stack run in reverse order, the logs to show on
    failure, and factories for keys, sshd, apps, configs and the daemon.
    """

    def __init__(self, test_name="test"):
        self.dir = Path(os.path.realpath(tempfile.mkdtemp(prefix="tun-")))
        self.test_name = test_name
        self._cleanups = []
        self.logs = []          # (title, path, tail lines)
        self._user_key = None
        self.user = getpass.getuser()
        self.daemons = []

    # -- bookkeeping

    def add_log(self, title, path, lines=80):
        self.logs.append((title, Path(path), lines))

    def on_cleanup(self, fn):
        self._cleanups.append(fn)

    def close(self, failed):
        """Run cleanups (LIFO); keep the dir on failure or TEST_KEEP=1."""
        errors = []
        while self._cleanups:
            fn = self._cleanups.pop()
            try:
                fn()
            except Exception as e:   # collect, keep cleaning up
                errors.append(e)
        keep = failed or errors or os.environ.get("TEST_KEEP") == "1"
        if not keep:
            shutil.rmtree(self.dir, ignore_errors=True)
        return errors, keep

    # -- keys

    @property
    def user_key(self):
        if self._user_key is None:
            self._user_key = Key(self.dir / "id_ed25519", comment="tunnels")
        return self._user_key

    def key(self, name, ktype="ed25519", bits=None):
        return Key(self.dir / name, ktype, bits=bits)

    # -- sshd

    def sshd(self, name=None, authorized=None, extra=(), listen_v6=False,
             start=True, port=None, host_key_type="ed25519"):
        name = name or "sshd%d" % (sum(1 for t, _, _ in self.logs
                                       if t.startswith("sshd ")) + 1)
        if authorized is None:
            authorized = [self.user_key]
        d = Sshd(self, name, authorized, extra, listen_v6, port,
                 host_key_type)
        self.on_cleanup(d.stop)
        if start:
            d.start()
        return d

    def known_hosts(self, *lines_or_sshds, name="known_hosts"):
        """Write a known_hosts file from sshd objects and/or raw lines."""
        path = self.dir / name
        out = []
        for x in lines_or_sshds:
            # Any test server (harness.Sshd, servers.py) has the method.
            out.append(x.known_hosts_line() if hasattr(x, "known_hosts_line")
                       else x)
        path.write_text("".join(l + "\n" for l in out))
        return path

    # -- apps

    def app(self, app):
        """Start a local app (apps.py) and stop it at cleanup."""
        app.start()
        self.on_cleanup(app.stop)
        return app

    # -- config and daemon

    def server_cfg(self, sshd, known_hosts=None, identity=None, **over):
        """A server entry for the config, with the brief's defaults."""
        if known_hosts is None and "host_key" not in over:
            known_hosts = self.known_hosts(sshd, name="known_hosts_%s" %
                                           sshd.name)
        d = {
            "host": "127.0.0.1",
            "port": sshd.port,
            "user": self.user,
            "identity": str(identity or self.user_key.path),
        }
        if known_hosts is not None:
            d["known_hosts"] = str(known_hosts)
        d.update({"keepalive": "2s", "keepalive_count": 3,
                  "connect_timeout": "5s"})
        d.update(over)
        return {k: v for k, v in d.items() if v is not None}

    def write_config(self, servers, tunnels, name="tunnels.yaml",
                     backoff=None, **top):
        """Write the daemon's YAML; returns (path, control socket path)."""
        control = self.dir / "control.sock"
        doc = {"control": str(control), "state_dir": str(self.dir / "state")}
        doc.update(top)
        doc["servers"] = servers
        doc["tunnels"] = tunnels
        doc["backoff"] = backoff or {"initial": "200ms", "max": "2s"}
        path = self.dir / name
        text = to_yaml(doc) + "\n"
        path.write_text(text)
        if not any(p == path for _, p, _ in self.logs):
            self.add_log("config %s" % name, path, 200)
        return path, Path(doc["control"])

    def daemon(self, config_path, control=None, name="daemon", **kw):
        if control is None:
            control = self.dir / "control.sock"
        d = Daemon(self, config_path, control, name, **kw)
        self.daemons.append(d)
        self.on_cleanup(d.teardown)
        return d

