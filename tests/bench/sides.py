"""
The two sides under comparison, started on the same sshd: OpenSSH's client
(`ssh -N -R`, alone or under Debian's autossh) and the tunnels daemon; plus
the sshd they share and the /proc readings the benchmark reports.

Standard library only; builds on tests/integration/harness.py.
"""

import os
import signal
import subprocess

import harness
from harness import WaitTimeout, descendants, kill_pids, stop_popen, wait_until

AUTOSSH = "/usr/bin/autossh"

# The ssh -R variants: (label, extra ssh arguments).
SSH_DEFAULT = ("ssh -R (default cipher)", [])
SSH_AES = ("ssh -R -c aes128-ctr -m hmac-sha2-256",
           ["-c", "aes128-ctr", "-m", "hmac-sha2-256"])


# ---------------------------------------------------------------------------
# The shared sshd


class BenchSshd(harness.Sshd):
    """The harness's sshd with benchmark settings: LogLevel INFO (the
    harness logs DEBUG1, a line per channel, which would tax sshd in the
    connection-rate runs), MaxStartups raised so several clients starting
    at once are not throttled, plus any `extra` lines."""

    def _write_config(self):
        """Write the harness config, then swap in the benchmark's lines."""
        super()._write_config()
        text = self.config.read_text().replace("LogLevel DEBUG1\n",
                                               "LogLevel INFO\n")
        self.config.write_text(text + "MaxStartups 200:30:400\n")


def start_sshd(world, name, extra=()):
    """A started BenchSshd accepting world.user_key, stopped at cleanup."""
    d = BenchSshd(world, name, [world.user_key], list(extra))
    world.on_cleanup(d.stop)
    d.start()
    return d


# ---------------------------------------------------------------------------
# Listening ports


def listening_ports():
    """Set of TCP ports in LISTEN state in the calling thread's network
    namespace (IPv4 and IPv6), read from /proc without connecting."""
    ports = set()
    for f in ("tcp", "tcp6"):
        try:
            with open("/proc/thread-self/net/%s" % f) as fp:
                next(fp)
                for line in fp:
                    cols = line.split()
                    if cols[3] == "0A":
                        ports.add(int(cols[1].rsplit(":", 1)[1], 16))
        except FileNotFoundError:
            pass
    return ports


def wait_listening(ports, timeout, what, alive=None):
    """Wait until every port in `ports` listens; `alive()` (optional) must
    stay true meanwhile (the process that should open them)."""
    want = set(ports)

    def ready():
        """Every port listens (the process must still run)."""
        if alive is not None and not alive():
            raise WaitTimeout("%s: the process exited" % what)
        return want <= listening_ports()
    return wait_until(ready, timeout, what, interval=0.02)


# ---------------------------------------------------------------------------
# OpenSSH client, alone or under autossh


def ssh_args(world, sshd, forwards, extra=(), port=None, known_hosts=None):
    """ssh client arguments (no program name) for `-N -R` forwards
    [(remote port, local port)], isolated from ~/.ssh/config (-F
    /dev/null), batch mode, strict host key checking."""
    kh = known_hosts or world.known_hosts(sshd, name="known_hosts_ssh")
    args = ["-N", "-F", "/dev/null", "-i", str(world.user_key.path),
            "-p", str(port or sshd.port),
            "-o", "UserKnownHostsFile=%s" % kh,
            "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
            "-o", "ExitOnForwardFailure=yes"]
    for rport, lport in forwards:
        args += ["-R", "127.0.0.1:%d:127.0.0.1:%d" % (rport, lport)]
    return args + list(extra) + ["%s@127.0.0.1" % world.user]


def start_ssh(world, sshd, forwards, extra=(), name="ssh", wait=10.0,
              port=None, known_hosts=None):
    """`ssh -N -R ...` (stderr to NAME.log in the world dir), to sshd or
    to `port` (a relay in front of it, with its known_hosts); waits until
    every remote port listens unless wait is None. Stopped at cleanup."""
    log = world.dir / ("%s.log" % name)
    world.add_log(name, log, 30)
    with open(log, "ab") as lf:
        p = subprocess.Popen([harness.SSH] + ssh_args(world, sshd, forwards,
                                                      extra, port,
                                                      known_hosts),
                             stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=lf)
    world.on_cleanup(lambda: stop_popen(p))
    if wait is not None:
        wait_listening([r for r, _ in forwards], wait, "%s forwards" % name,
                       alive=lambda: p.poll() is None)
    return p


def start_autossh(world, sshd, forwards, keepalive, count, name="autossh",
                  port=None, known_hosts=None, extra=()):
    """`autossh -M 0 -N -o ServerAliveInterval=keepalive -o
    ServerAliveCountMax=count -o ExitOnForwardFailure=yes -R ...` with
    AUTOSSH_GATETIME=0 (restart even when ssh dies early). Its log and
    ssh's stderr go to NAME.log. Does not wait. Stopped (with its ssh
    child) at cleanup."""
    log = world.dir / ("%s.log" % name)
    world.add_log(name, log, 30)
    env = dict(os.environ)
    env.update({"AUTOSSH_GATETIME": "0", "AUTOSSH_PATH": harness.SSH,
                "AUTOSSH_LOGFILE": str(log)})
    args = ssh_args(world, sshd, forwards,
                    ["-o", "ServerAliveInterval=%d" % keepalive,
                     "-o", "ServerAliveCountMax=%d" % count] + list(extra),
                    port=port, known_hosts=known_hosts)
    with open(log, "ab") as lf:
        p = subprocess.Popen([AUTOSSH, "-M", "0"] + args,
                             stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=lf, env=env)
    world.on_cleanup(lambda: stop_tree(p))
    return p


def ssh_child(autossh):
    """PID of the ssh process autossh currently runs, or None."""
    for pid in descendants(autossh.pid):
        if harness.proc_cmdline(pid).startswith(harness.SSH + " "):
            return pid
    return None


def stop_tree(proc):
    """Stop a process we started and whatever it left behind (autossh's
    ssh child): SIGTERM, wait, SIGKILL fallback."""
    left = descendants(proc.pid) if proc.poll() is None else []
    stop_popen(proc)
    left = [p for p in left if harness.pid_alive(p)]
    if left:
        kill_pids(left, signal.SIGTERM, 5.0, "children of %d" % proc.pid)


# ---------------------------------------------------------------------------
# The tunnels daemon


def start_tunnels(world, sshd, tunnels, name="tunnels", binary=None,
                  backoff=None, **server_over):
    """The daemon (`binary`, else the one bench.py --bin names, else the
    release build) with server "s1" = sshd and the given tunnel entries;
    its own config, control socket and state dir. Does not wait. Stopped
    at cleanup."""
    control = world.dir / ("%s.sock" % name)
    servers = {"s1": world.server_cfg(sshd, **server_over)}
    cfg, _ = world.write_config(servers, tunnels, name="%s.yaml" % name,
                                backoff=backoff, control=str(control),
                                state_dir=str(world.dir / ("%s.state" %
                                                           name)))
    return world.daemon(cfg, control=control, name=name,
                        binary=binary or os.environ.get("TUNNELS_BIN") or
                        harness.release_bin())


def one_tunnel(rport, local, name="t1"):
    """One tunnel entry on server s1: remote rport -> local."""
    return {"name": name, "server": "s1", "remote": rport, "local": local}


# ---------------------------------------------------------------------------
# /proc readings


def status_kib(pid, field):
    """A `kB` field of /proc/PID/status (VmRSS, VmHWM ...) in KiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError("no %s for pid %d" % (field, pid))


def pss_kib(pid):
    """Proportional set size of pid in KiB (shared pages split between the
    processes mapping them), from smaps_rollup."""
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    raise AssertionError("no Pss for pid %d" % pid)


def ctx_switches(pid):
    """Voluntary + involuntary context switches of pid so far: a count of
    its wake-ups (each sleep in epoll/poll ends in one)."""
    n = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(("voluntary_ctxt_switches:",
                                "nonvoluntary_ctxt_switches:")):
                n += int(line.split()[1])
    return n


def cpu_seconds(pid):
    """CPU time of pid in seconds: nanoseconds on CPU from
    /proc/PID/schedstat when the kernel keeps them (non-zero), else
    utime + stime (clock ticks)."""
    try:
        with open("/proc/%d/schedstat" % pid) as f:
            ns = int(f.read().split()[0])
        if ns > 0:
            return ns / 1e9
    except (IndexError, ValueError):
        pass
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def total_cpu(pids):
    """Summed CPU seconds of the pids still alive (a pid that vanished
    between listing and reading counts as 0)."""
    total = 0.0
    for p in pids:
        try:
            total += cpu_seconds(p)
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total
