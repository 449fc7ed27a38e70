"""
1000 tunnels on one server: one daemon with 1000 tunnel entries (distinct
remote ports, one echo origin) against autossh, where each tunnel is one
autossh + ssh process pair and one sshd session. autossh is measured with
a few pairs (10) and its per-tunnel figures extrapolated, labelled
"estimated from N". Both sides use the daemon's default liveness
settings: keepalive 10 s × 3 (ServerAliveInterval=10,
ServerAliveCountMax=3).

Figures: time from process start to every remote port listening on the
server; client RSS (and PSS) per tunnel; the server's sshd RSS per
tunnel; CPU time and wake-ups (context switches) while idle.
"""

import socket
import time

from faults import try_echo
from waits import observe
from harness import WaitTimeout

import origins
import report
from sides import (ctx_switches, cpu_seconds, pss_kib, ssh_child,
                   start_autossh, start_tunnels, status_kib, stop_tree,
                   wait_listening)

SECTION = "many tunnels"
KEEPALIVE, COUNT = 10, 3
PORT_BASE = 20000      # below the ephemeral range: nothing else takes them


def pick_ports(n, base=PORT_BASE):
    """n loopback ports from base upward that are free right now."""
    out = []
    p = base
    while len(out) < n:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", p))
                out.append(p)
            except OSError:
                pass
        p += 1
    return out


def echo_failures(ports):
    """How many of the ports fail one echo round trip."""
    return sum(1 for p in ports if not try_echo(p, timeout=5.0))


def sshd_rss_kib(pids):
    """Summed RSS of the given (sshd session) processes still alive."""
    total = 0
    for p in pids:
        try:
            total += status_kib(p, "VmRSS")
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


def tunnels_daemon(ctx, echo, ports, name):
    """A daemon with one tunnel per port (keepalive 10 s × 3); returns
    (daemon, seconds from its start to every port listening)."""
    tunnels = [{"name": "t%04d" % i, "server": "s1", "remote": p,
                "local": echo.local} for i, p in enumerate(ports)]
    d = start_tunnels(ctx.world, ctx.sshd, tunnels, name=name,
                      keepalive="%ds" % KEEPALIVE, keepalive_count=COUNT)
    if not ports:
        return d, None
    wait_listening(ports, 120, "%d tunnels listening" % len(ports),
                   alive=d.running)
    return d, time.monotonic() - d.started


def baseline_rss(ctx, echo):
    """(VmRSS, PSS, server state) of the daemon with 0 tunnels once its status answers and its
    server has settled (left the connect path)."""
    d, _ = tunnels_daemon(ctx, echo, [], "tun-0")
    try:
        st = d.wait_status(lambda st: d.server("s1", st)["state"] not in
                           ("connecting", "handshake", "hostkey", "auth"),
                           20, "server s1 to settle with 0 tunnels")
        return (status_kib(d.pid, "VmRSS"), pss_kib(d.pid),
                d.server("s1", st)["state"])
    finally:
        d.teardown()


def autossh_pairs(ctx, echo, ports):
    """One autossh per port; returns (processes, seconds from start to
    every port listening)."""
    t0 = time.monotonic()
    procs = [start_autossh(ctx.world, ctx.sshd, [(p, echo.port)],
                           KEEPALIVE, COUNT, name="autossh-%d" % i)
             for i, p in enumerate(ports)]
    wait_listening(ports, 60, "%d autossh tunnels listening" % len(ports),
                   alive=lambda: all(p.poll() is None for p in procs))
    return procs, time.monotonic() - t0


def pair_pids(procs):
    """Every autossh process and its ssh child."""
    pids = []
    for p in procs:
        child = ssh_child(p)
        if child is None:
            raise WaitTimeout("autossh %d has no ssh child" % p.pid)
        pids += [p.pid, child]
    return pids


def usage(pids):
    """(CPU seconds, context switches) summed over pids."""
    return (sum(cpu_seconds(p) for p in pids),
            sum(ctx_switches(p) for p in pids))


def run(ctx):
    """The section."""
    n, pairs, idle = ctx.tunnels, ctx.pairs, ctx.idle
    echo = origins.EchoOrigin(ctx.world).start()
    ports = pick_ports(n + pairs)
    tports, aports = ports[:n], ports[n:]
    raw = {"n": n, "pairs": pairs, "idle_s": idle,
           "keepalive": "%d s × %d" % (KEEPALIVE, COUNT)}

    ctx.log("  tunnels: 0, %d and %d tunnels" % (pairs, n))
    raw["rss0_kib"], raw["pss0_kib"], raw["server_state_0"] = \
        baseline_rss(ctx, echo)
    d, raw["tun_up_small_s"] = tunnels_daemon(ctx, echo, tports[:pairs],
                                              "tun-small")
    d.teardown()

    before = set(ctx.sshd.session_pids())
    d, raw["tun_up_s"] = tunnels_daemon(ctx, echo, tports, "tun-scale")
    raw["tun_echo_failures"] = echo_failures(tports)
    tun_sshd = set(ctx.sshd.session_pids()) - before
    raw["tun_status_up"] = sum(1 for t in d.status()["tunnels"]
                               if t["state"] == "up")
    ctx.log("    all %d up in %.2fs; echo failures %d" % (
        n, raw["tun_up_s"], raw["tun_echo_failures"]))

    ctx.log("  autossh: %d pairs" % pairs)
    before = set(ctx.sshd.session_pids())
    procs, raw["auto_up_s"] = autossh_pairs(ctx, echo, aports)
    raw["auto_echo_failures"] = echo_failures(aports)
    auto_sshd = set(ctx.sshd.session_pids()) - before
    apids = pair_pids(procs)

    ctx.log("  idle window %ds (both sides at once)" % idle)
    tu0, au0 = usage([d.pid]), usage(apids)

    def alive():
        """Both sides still running."""
        assert d.running(), "tunnels daemon exited during the idle window"
        assert all(p.poll() is None for p in procs), "an autossh exited"
    observe(idle, alive, interval=1.0)
    tu1, au1 = usage([d.pid]), usage(apids)
    if pair_pids(procs) != apids:
        raw["note"] = "an ssh child was restarted during the idle window"

    raw["tun_rss_kib"] = status_kib(d.pid, "VmRSS")
    raw["tun_pss_kib"] = pss_kib(d.pid)
    raw["tun_sshd_rss_kib"] = sshd_rss_kib(tun_sshd)
    raw["tun_sshd_procs"] = len(tun_sshd)
    raw["tun_cpu_s"], raw["tun_wakeups"] = tu1[0] - tu0[0], tu1[1] - tu0[1]
    raw["auto_rss_kib"] = sum(status_kib(p, "VmRSS") for p in apids)
    raw["auto_pss_kib"] = sum(pss_kib(p) for p in apids)
    raw["auto_sshd_rss_kib"] = sshd_rss_kib(auto_sshd)
    raw["auto_sshd_procs"] = len(auto_sshd)
    raw["auto_cpu_s"], raw["auto_wakeups"] = au1[0] - au0[0], au1[1] - au0[1]
    for p in procs:
        stop_tree(p)
    d.teardown()
    echo.stop()
    ctx.raw[SECTION] = raw
    return rows(raw)


def rows(r):
    """Table rows from the raw figures."""
    n, k = r["n"], r["pairs"]
    est = "autossh estimated from %d pairs (×%d)" % (k, n // k)
    x = n / k
    rss_tun = (r["tun_rss_kib"] - r["rss0_kib"]) / n
    pss_tun = (r["tun_pss_kib"] - r["pss0_kib"]) / n
    notes = ("tunnels per-tunnel = (RSS with %d − RSS with 0 tunnels "
             "[%d KiB, server %s]) / %d" % (n, r["rss0_kib"],
                                             r["server_state_0"], n))
    return [
        report.row(SECTION, "time to all up, %d tunnels" % k, "s",
                   report.LOWER, r["auto_up_s"], r["tun_up_small_s"],
                   "autossh", note="from process start to every remote "
                   "port listening on the server"),
        report.row(SECTION, "time to all up, %d tunnels" % n, "s",
                   report.LOWER, report.missing(
                       "not started: %d autossh+ssh pairs would be %d "
                       "processes and %d sshd sessions" % (n, 2 * n, n)),
                   r["tun_up_s"], "autossh"),
        report.row(SECTION, "client RSS per tunnel", "KiB", report.LOWER,
                   r["auto_rss_kib"] / k, rss_tun, "autossh",
                   note=est + "; " + notes),
        report.row(SECTION, "client PSS per tunnel (shared pages split)",
                   "KiB", report.LOWER, r["auto_pss_kib"] / k, pss_tun,
                   "autossh", note="tunnels: (PSS with %d − PSS with 0) / "
                   "%d" % (n, n)),
        report.row(SECTION, "client RSS for %d tunnels (autossh est.)" % n,
                   "MiB", report.LOWER, r["auto_rss_kib"] * x / 1024,
                   r["tun_rss_kib"] / 1024, "autossh"),
        report.row(SECTION, "server sshd RSS per tunnel", "KiB",
                   report.LOWER, r["auto_sshd_rss_kib"] / k,
                   r["tun_sshd_rss_kib"] / n, "autossh",
                   note="sshd processes per tunnel: autossh %d for %d, "
                   "tunnels %d for %d" % (r["auto_sshd_procs"], k,
                                          r["tun_sshd_procs"], n)),
        report.row(SECTION, "idle CPU over %ds, %d tunnels (autossh est.)"
                   % (r["idle_s"], n), "CPU s", report.LOWER,
                   r["auto_cpu_s"] * x, r["tun_cpu_s"], "autossh"),
        report.row(SECTION, "idle wake-ups over %ds, %d tunnels (autossh "
                   "est.)" % (r["idle_s"], n), "count", report.LOWER,
                   r["auto_wakeups"] * x, r["tun_wakeups"], "autossh",
                   note="context switches of the client processes"),
        report.row(SECTION, "tunnels failing an echo after all up", "count",
                   report.LOWER, r["auto_echo_failures"],
                   r["tun_echo_failures"], "autossh"),
    ]
