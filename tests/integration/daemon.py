"""
The daemon under test (`tunnels run`) and one-shot CLI runs.

Part of the integration harness (harness.py re-exports it).
"""

import json
import os
import signal
import subprocess
import time

from binaries import DAEMON_ENV, tunnels_bin
from netio import connect_unix, recv_until_eof
from procs import sanitizer_lines
from waits import WaitTimeout, scaled, wait_until


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

    # -- reload

    def reload(self, how="SIGHUP", timeout=20.0, refused=None):
        """
        Reload the config and wait until the daemon has applied or refused
        it: its `reloads` counter in status (applied or refused, tunnels(8))
        grew. how: "SIGHUP", or "cli" for `tunnels reload -c CONFIG` (which
        itself waits and exits 0 applied, 1 refused). refused: None asserts
        it applied (reload_error null); a string asserts it was refused
        with that text in reload_error. Returns the status after it.
        """
        before = self.status()["reloads"]
        if how == "SIGHUP":
            self.send_signal(signal.SIGHUP)
        else:
            assert how == "cli", "reload how=%r: SIGHUP or cli" % (how,)
            r = run_cli("reload", "-c", self.config, timeout=2 * timeout)
            want = 0 if refused is None else 1
            assert r.returncode == want, "tunnels reload: rc %d\n%s%s" % (
                r.returncode, r.stdout, r.stderr)
        st = self.wait_status(lambda st: st["reloads"] > before, timeout,
                              "the reload to be applied or refused")
        if refused is None:
            assert st["reload_error"] is None, st["reload_error"]
        else:
            assert refused in (st.get("reload_error") or ""), st
        return st

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
            rc = self.proc.wait(scaled(timeout))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            self.stopped_rc = self.proc.returncode
            raise AssertionError("daemon did not exit within %.1fs after %s "
                                 "(killed)" % (scaled(timeout), sig.name))
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
                       text=True, timeout=scaled(timeout),
                       stdin=subprocess.DEVNULL, env=env, errors="replace")
    if check_sanitizers:
        bad = sanitizer_lines(r.stdout + r.stderr)
        assert not bad, "sanitizer reports from tunnels %s:\n%s" % (
            " ".join(map(str, args)), "\n".join(bad[:40]))
    return r
