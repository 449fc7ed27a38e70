"""
Fault injection and measurement helpers for the resilience tests
(DESIGN §5.1-§5.4, §7): a pausable TCP relay (socat, one forked process per
connection: SIGSTOP one = a silent black hole that the kernel still ACKs),
network namespaces with nftables rules that drop one established
connection (NAT rebinding), a log watcher that timestamps matching lines as
they appear, strict echo probes that tell "failed" from "corrupted", a
background echo client, and /proc readings (fds, RSS, CPU time).

Standard library only. Tools are required, never optional: a missing
socat/ip/nft is a test failure, not a skip.
"""

import contextlib
import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

from harness import (WaitTimeout, alloc_port, children, kill_pids,
                     log_tail, pid_alive, stop_popen, wait_until)

CLONE_NEWNET = 0x40000000


def require_tool(name):
    """Absolute path of a required tool; AssertionError when missing."""
    path = shutil.which(name, path=os.environ.get("PATH", "") +
                        ":/usr/sbin:/sbin:/usr/bin:/bin")
    assert path, ("%s is required by the fault tests and is not installed "
                  "(make deps installs it)" % name)
    return path


# ---------------------------------------------------------------------------
# /proc readings


def fd_count(pid):
    """Number of open file descriptors of pid."""
    return len(os.listdir("/proc/%d/fd" % pid))


def rss_bytes(pid):
    """Resident set size of pid in bytes (VmRSS)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS for pid %d" % pid)


def _stat_fields(pid):
    """Fields of /proc/PID/stat after the comm: [0] is the state (field 3)."""
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()


def cpu_seconds(pid):
    """utime + stime of pid, in seconds."""
    fields = _stat_fields(pid)
    ticks = int(fields[11]) + int(fields[12])     # fields 14 and 15
    return ticks / os.sysconf("SC_CLK_TCK")


def proc_state(pid):
    """One-letter process state (R, S, T, Z ...), None when gone."""
    try:
        return _stat_fields(pid)[0]
    except (FileNotFoundError, ProcessLookupError):
        return None


def tcp_listening(port):
    """True if something in the calling thread's network namespace listens
    on TCP `port` (IPv4), read from /proc without connecting to it."""
    want = ":%04X" % port
    with open("/proc/thread-self/net/tcp") as f:
        next(f)
        for line in f:
            parts = line.split()
            if parts[1].endswith(want) and parts[3] == "0A":
                return True
    return False


# ---------------------------------------------------------------------------
# Time windows


def waited(fn, *args, **kw):
    """Run fn(*args, **kw) (a wait); return (its result, seconds taken)."""
    t0 = time.monotonic()
    r = fn(*args, **kw)
    return r, time.monotonic() - t0


class LogWatcher:
    """
    Follows a growing log file from its current end and records
    (monotonic time, line) for each new line matching `pattern`, polled
    every `interval`: timestamps within about `interval` of the write.
    """

    def __init__(self, path, pattern, interval=0.02):
        self.path = str(path)
        self.pattern = re.compile(pattern)
        self.interval = interval
        self.events = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        self._offset = 0
        self._partial = b""

    def start(self):
        try:
            self._offset = os.path.getsize(self.path)
        except FileNotFoundError:
            self._offset = 0
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name="logwatch")
        self._thread.start()
        return self

    def _poll(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            return
        if not data:
            return
        now = time.monotonic()
        self._offset += len(data)
        data = self._partial + data
        lines = data.split(b"\n")
        self._partial = lines.pop()
        for raw in lines:
            line = raw.decode(errors="replace")
            if self.pattern.search(line):
                with self._lock:
                    self.events.append((now, line))

    def _run(self):
        while not self._stop.wait(self.interval):
            self._poll()

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self._poll()
        return self.snapshot()

    def snapshot(self):
        with self._lock:
            return list(self.events)

    def times_between(self, t0, t1):
        return [t for t, _ in self.snapshot() if t0 < t <= t1]


def gaps(times):
    return [b - a for a, b in zip(times, times[1:])]


# ---------------------------------------------------------------------------
# Echo probes


class Corrupted(AssertionError):
    pass


def echo_attempt(port, payload, host="127.0.0.1", timeout=5.0, rounds=1):
    """
    `rounds` echo round trips of `payload` on one connection. Returns the
    number of complete, byte-identical round trips (a reset, closed or
    timed-out connection just ends the count early), None if the connect
    itself failed. Raises Corrupted if any byte that came back differs from
    what was sent.
    """
    try:
        s = socket.create_connection((host, port), timeout=timeout)
    except OSError:
        return None
    done = 0
    try:
        s.settimeout(timeout)
        for _ in range(rounds):
            got = bytearray()
            try:
                s.sendall(payload)
                while len(got) < len(payload):
                    chunk = s.recv(min(1 << 18, len(payload) - len(got)))
                    if not chunk:
                        break
                    got += chunk
            except OSError:
                pass
            if bytes(got) != payload[:len(got)]:
                bad = next(i for i in range(len(got))
                           if got[i] != payload[i])
                raise Corrupted(
                    "echo through port %d returned wrong bytes: %d of %d "
                    "came back, first difference at offset %d" %
                    (port, len(got), len(payload), bad))
            if len(got) < len(payload):
                return done
            done += 1
    finally:
        s.close()
    return done


def try_echo(port, host="127.0.0.1", size=64, timeout=3.0):
    """True if one echo round trip works; False if the connection fails;
    Corrupted if wrong bytes come back."""
    payload = os.urandom(size)
    return echo_attempt(port, payload, host, timeout) == 1


class EchoTraffic:
    """
    A background client doing echo round trips through `port` without a
    pause: random payloads (1 B - 128 KiB), a few round trips per
    connection. Counts complete round trips, connections cut before their
    round trips completed, and refused connects (then paced at 10 ms, the
    port is simply not there yet); records every corruption (wrong bytes)
    instead of raising in the thread. pause()/resume() let a test measure
    the daemon with no bridged connection open.
    """

    def __init__(self, port, host="127.0.0.1"):
        self.port = port
        self.host = host
        self.ok = 0
        self.failed = 0
        self.refused = 0
        self.corrupt = []
        self.bytes = 0
        self._stop = threading.Event()
        self._run_gate = threading.Event()
        self._run_gate.set()
        self._idle = threading.Event()
        self._thread = None

    def start(self):
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name="echo-traffic")
        self._thread.start()
        return self

    def _run(self):
        rnd = os.urandom
        while not self._stop.is_set():
            if not self._run_gate.is_set():
                self._idle.set()
                self._run_gate.wait(1.0)
                continue
            self._idle.clear()
            size = 1 + int.from_bytes(rnd(3), "big") % (128 * 1024)
            rounds = 1 + rnd(1)[0] % 4
            payload = rnd(size)
            try:
                n = echo_attempt(self.port, payload, self.host, timeout=3.0,
                                 rounds=rounds)
            except Corrupted as e:
                self.corrupt.append(str(e))
                continue
            if n is None:
                self.refused += 1
                self._stop.wait(0.01)   # pacing, not synchronisation
                continue
            self.ok += n
            self.bytes += n * size
            if n < rounds:
                self.failed += 1
        self._idle.set()

    def pause(self, timeout=10.0):
        """Stop starting connections and wait until none is open."""
        self._run_gate.clear()
        wait_until(self._idle.is_set, timeout,
                   "the traffic client to finish its connection")

    def resume(self):
        self._idle.clear()
        self._run_gate.set()

    def stop(self):
        self._stop.set()
        self._run_gate.set()
        if self._thread is not None:
            self._thread.join(10)
            assert not self._thread.is_alive(), "traffic thread did not end"


# ---------------------------------------------------------------------------
# The pausable relay


class Relay:
    """
    socat TCP-LISTEN:P,fork TCP:target on loopback: one forked socat
    process per connection. stall() SIGSTOPs the process carrying a
    connection: the kernel keeps ACKing both sides, nothing is answered or
    forwarded (a silent black hole). Cleanup SIGCONTs and ends them all.
    """

    def __init__(self, world, target_port, target_host="127.0.0.1",
                 name="relay"):
        self.world = world
        self.target_port = target_port
        self.target_host = target_host
        self.name = name
        self.log = world.dir / ("%s.log" % name)
        self.port = None
        self.proc = None
        self.stopped = []

    def start(self, tries=5):
        socat = require_tool("socat")
        self.world.add_log("%s log" % self.name, self.log, 30)
        for _ in range(tries):
            self.port = alloc_port()
            lf = open(self.log, "ab")
            try:
                self.proc = subprocess.Popen(
                    [socat, "-d",
                     "TCP-LISTEN:%d,bind=127.0.0.1,fork,reuseaddr" %
                     self.port,
                     "TCP:%s:%d" % (self.target_host, self.target_port)],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                    stderr=lf)
            finally:
                lf.close()
            self.world.on_cleanup(self.stop)
            ok = wait_until(lambda: self.proc.poll() is not None or
                            tcp_listening(self.port), 5,
                            "relay listening on port %d" % self.port)
            if ok and self.proc.poll() is None:
                return self
        raise AssertionError("relay did not start:\n%s" %
                             log_tail(self.log, 20))

    def connection_pids(self):
        """The per-connection socat processes (children of the listener)."""
        if self.proc is None or self.proc.poll() is not None:
            return []
        return [p for p in children(self.proc.pid) if pid_alive(p)]

    def live_connection_pids(self):
        return [p for p in self.connection_pids() if p not in self.stopped]

    def stall(self, pid):
        """SIGSTOP the process carrying one connection."""
        os.kill(pid, signal.SIGSTOP)
        self.stopped.append(pid)
        wait_until(lambda: proc_state(pid) == "T", 2,
                   "relay process %d to be stopped" % pid)

    def stop(self):
        pids = self.connection_pids()
        for p in pids:
            try:
                os.kill(p, signal.SIGCONT)
            except ProcessLookupError:
                pass
        if self.proc is not None:
            stop_popen(self.proc)
        if pids:
            kill_pids(pids, signal.SIGTERM, 5.0, "relay connections")


# ---------------------------------------------------------------------------
# Network namespaces and nftables


_libc = None


def _setns(fd):
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        e = ctypes.get_errno()
        raise OSError(e, "setns: %s" % os.strerror(e))


class NetNS:
    """
    A network namespace this test creates (`ip netns add tunnels-<random>`,
    loopback up), deleted at cleanup. entered() moves the calling thread
    into it: sockets it creates, threads it starts and processes it spawns
    (sshd, the daemon, apps) all live there.
    """

    def __init__(self, world):
        self.ip = require_tool("ip")
        self.world = world
        self.name = "tunnels-%s" % os.urandom(4).hex()
        r = subprocess.run([self.ip, "netns", "add", self.name],
                           capture_output=True, text=True)
        assert r.returncode == 0, "ip netns add %s: %s" % (self.name,
                                                           r.stderr)
        world.on_cleanup(self.delete)
        self.run("ip", "link", "set", "lo", "up")

    def run(self, *cmd, input=None, check=True):
        """Run a command inside the namespace; CompletedProcess (text)."""
        r = subprocess.run([self.ip, "netns", "exec", self.name] +
                           [str(c) for c in cmd], capture_output=True,
                           text=True, input=input, timeout=20)
        if check:
            assert r.returncode == 0, "in netns %s: %s -> rc %d: %s%s" % (
                self.name, " ".join(map(str, cmd)), r.returncode, r.stdout,
                r.stderr)
        return r

    @contextlib.contextmanager
    def entered(self):
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        try:
            fd = os.open("/run/netns/%s" % self.name, os.O_RDONLY)
            try:
                _setns(fd)
            finally:
                os.close(fd)
            try:
                yield self
            finally:
                _setns(own)
        finally:
            os.close(own)

    def delete(self):
        if os.path.exists("/run/netns/%s" % self.name):
            r = subprocess.run([self.ip, "netns", "delete", self.name],
                               capture_output=True, text=True)
            assert r.returncode == 0, "ip netns delete %s: %s" % (
                self.name, r.stderr)

    # -- connections and rules

    def tcp_connections(self, pid):
        """Established TCP connections of pid in this namespace, as
        (local ip, local port, peer ip, peer port) tuples."""
        require_tool("ss")
        out = self.run("ss", "-tnpH", "state", "established").stdout
        conns = []
        for line in out.splitlines():
            if "pid=%d," % pid not in line:
                continue
            addrs = [f for f in line.split() if re.fullmatch(
                r"\[?[0-9a-fA-F.:]+\]?:\d+", f)]
            if len(addrs) < 2:
                continue
            (lip, lport), (pip, pport) = [a.rsplit(":", 1)
                                          for a in addrs[:2]]
            conns.append((lip, int(lport), pip, int(pport)))
        return conns

    def drop_port(self, port, table="tunnels_fault"):
        """nftables: drop every packet to or from TCP `port` (one
        connection's ephemeral port, both directions) on input; everything
        else passes."""
        require_tool("nft")
        rules = (
            "table inet %s {\n"
            "  chain input {\n"
            "    type filter hook input priority filter; policy accept;\n"
            "    tcp sport %d counter drop\n"
            "    tcp dport %d counter drop\n"
            "  }\n"
            "}\n" % (table, port, port))
        self.run("nft", "-f", "-", input=rules)

    def dropped_packets(self, table="tunnels_fault"):
        out = self.run("nft", "list", "table", "inet", table).stdout
        return sum(int(n) for n in re.findall(r"counter packets (\d+)", out))


# ---------------------------------------------------------------------------
# Scenario helpers shared by the resilience tests: one server "s1", one
# tunnel "t1", short liveness settings.

KEEPALIVE_S = 1
KEEPALIVE_COUNT = 3
DEAD_S = KEEPALIVE_S * KEEPALIVE_COUNT          # keepalive x keepalive_count
FAST_BACKOFF = {"initial": "200ms", "max": "2s"}
DEFAULT_BACKOFF = {"initial": "1s", "max": "60s"}   # the config defaults


def report(name, **figures):
    print("\nRESULT %s: %s" % (name, ", ".join(
        "%s=%s" % (k, ("%.2f" % v) if isinstance(v, float) else v)
        for k, v in figures.items())))


def server_cfg(world, sshd, **over):
    """A server entry with the short liveness settings of these tests."""
    d = {"keepalive": "%ds" % KEEPALIVE_S, "keepalive_count": KEEPALIVE_COUNT}
    d.update(over)
    return world.server_cfg(sshd, **d)


def wait_serving(d, rport, timeout, min_connects=1, what=None, seen=None):
    """
    Wait until server s1 and tunnel t1 are up (after at least
    `min_connects` sessions) and a real echo round trip through the remote
    port works. `seen` collects the (state, waiting_reason) values of t1
    met on the way.
    """
    def ready():
        if d.proc.poll() is not None:
            raise WaitTimeout("daemon exited with rc %s" % d.proc.returncode)
        st = d.status()
        srv, t = d.server("s1", st), d.tunnel("t1", st)
        if seen is not None:
            seen.add((t["state"], t.get("waiting_reason")))
        if srv["state"] != "up" or t["state"] != "up":
            return False
        if srv["connects"] < min_connects:
            return False
        return try_echo(rport)
    return wait_until(ready, timeout, what or "tunnel t1 serving again")


def wait_down(d, timeout, connects):
    """Wait until the session that was up (s1 `connects`) is declared
    gone: the server leaves "up" or a newer session came up."""
    d.wait_status(lambda st: d.server("s1", st)["state"] != "up" or
                  d.server("s1", st)["connects"] > connects, timeout,
                  "server s1 to leave its session %d" % connects)


def learned_session(d, sshd):
    """The daemon's own sshd session process, learned over exec."""
    st = d.wait_status(lambda st: d.server("s1", st).get("exec") == "ok" and
                       isinstance(d.server("s1", st).get("server_pid"), int),
                       10, "server s1 to learn its server-side session pid")
    pid = d.server("s1", st)["server_pid"]
    assert pid in sshd.session_pids(), (
        "server_pid %d is not one of sshd's session processes %s" %
        (pid, sshd.session_pids()))
    return pid


# ---------------------------------------------------------------------------
# What the daemon's log records (deterministic, unlike a status poll that
# can miss a state lasting a few milliseconds)

BACKOFF_RE = re.compile(r"server (\S+): \S+ -> backoff: (.*); retry in "
                        r"(\d+\.\d)s")


def retry_delays(text, cause=r"connect to \S+: connection refused"):
    """
    {server: [seconds]}: the delay the daemon chose after each failure
    whose cause matches `cause`, in order. Repeats of one failure are
    logged only at debug level: run the daemon with TUNNELS_DEBUG=1.
    """
    out = {}
    want = re.compile(cause)
    for m in BACKOFF_RE.finditer(text):
        if want.fullmatch(m.group(2)):
            out.setdefault(m.group(1), []).append(float(m.group(3)))
    return out


# waiting_reason in status, by the message the daemon logs with it.
WAIT_MESSAGES = (
    ("reclaiming", r"is held by a stale session of ours: ending it"),
    ("reclaiming", r"still busy just after ending our stale session"),
    ("stale_session", r"is probably held by a stale session of ours"),
    ("stale_session_no_exec", r"that cannot be ended: this account may "
     r"not run commands"),
    ("stale_session_server_keepalive", r"that will not be ended: "),
    ("policy", r"^server refused to listen on "),
)


def wait_reasons_logged(text, tunnel="t1", server="s1"):
    """The waiting reasons tunnel entered, in order, read from the log
    (the transition into "waiting" and every change of reason are
    logged with the reason's message)."""
    line_re = re.compile(r"tunnel %s \(server %s\): (?:\S+ -> waiting: )?"
                         r"((?:remote port|server refused) .*)$" %
                         (re.escape(tunnel), re.escape(server)))
    out = []
    for line in text.splitlines():
        m = line_re.search(line)
        if not m:
            continue
        for reason, pat in WAIT_MESSAGES:
            if re.search(pat, m.group(1)):
                out.append(reason)
                break
        else:
            raise AssertionError("waiting message of unknown reason: %r" %
                                 line)
    return out
