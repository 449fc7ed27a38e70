"""
The recovery table of issue 3: the same faults applied to tunnels and to
`autossh -M 0 -N -o ServerAliveInterval=K -o ServerAliveCountMax=C -o
ExitOnForwardFailure=yes -R ...` (AUTOSSH_GATETIME=0), with the daemon's
keepalive K × keepalive_count C equal to autossh's (2 s × 3) and the
daemon's default backoff (1 s .. 60 s). Each row starts from a fresh
world (sshd, echo service, client) in steady state.

"Serving" is the same probe for both sides: an echo round trip through
the remote port (1 s timeout, repeated until it works or the cap).
- sshd restart after 1/3/10 s: sshd and its sessions killed, started again
  on the same port; time from sshd answering again to serving.
- black hole: the client reaches sshd through a forking socat relay and
  the relay process carrying the session is SIGSTOPped (the kernel keeps
  ACKing); time from the stall to serving.
- NAT rebinding: in a network namespace, an nftables rule drops the
  established session's packets (new connections pass); time from the
  drop to serving.
Black hole and NAT rows run sshd with ClientAliveInterval 0: the server
never ends the stale session that holds the port, only the client can
(the realistic worst case). autossh's black hole and NAT rows run at the
same time (two threads, separate worlds): each mostly waits for its cap.
"""

import functools
import os
import threading
import time
import traceback

import apps
import faults
import harness
from faults import Relay, learned_session, try_echo
from waits import observe
from harness import WaitTimeout, alloc_port, wait_until

import report
from sides import ssh_child, start_autossh, start_sshd, start_tunnels

SECTION = "recovery"
K, C = 2, 3
DEFAULT_BACKOFF = {"initial": "1s", "max": "60s"}
STALE = ["ClientAliveInterval 0"]


# ---------------------------------------------------------------------------
# The two clients


class TunnelsClient:
    """The daemon with one tunnel t1 on server s1."""

    label = "tunnels"

    def __init__(self, w, sshd, rport, lport, port=None, known_hosts=None):
        over = {"keepalive": "%ds" % K, "keepalive_count": C}
        if port:
            over.update(port=port, known_hosts=known_hosts)
        self.sshd = sshd
        self.d = start_tunnels(w, sshd, [{"name": "t1", "server": "s1",
                                          "remote": rport,
                                          "local": "127.0.0.1:%d" % lport}],
                               name="tunnels", backoff=DEFAULT_BACKOFF,
                               **over)

    def steady(self, rport, timeout):
        """Serving, and its server-side session learned (what the daemon
        does within a second of every connect)."""
        wait_until(lambda: try_echo(rport, timeout=1.0), timeout,
                   "tunnels serving")
        learned_session(self.d, self.sshd)

    def session_pid(self):
        """The process holding the SSH connection."""
        return self.d.pid

    def diagnosis(self):
        """What the daemon reports about its server and tunnel now."""
        st = self.d.status()
        srv, t = self.d.server("s1", st), self.d.tunnel("t1", st)
        return "server %s after %d connects, tunnel %s%s" % (
            srv["state"], srv["connects"], t["state"],
            " (%s)" % t["last_error"] if t.get("last_error") else "")


class AutosshClient:
    """autossh -M 0 with ServerAlive K × C and ExitOnForwardFailure."""

    label = "autossh"

    def __init__(self, w, sshd, rport, lport, port=None, known_hosts=None):
        self.p = start_autossh(w, sshd, [(rport, lport)], K, C,
                               port=port, known_hosts=known_hosts)
        self.log = w.dir / "autossh.log"

    def steady(self, rport, timeout):
        """Serving."""
        wait_until(lambda: try_echo(rport, timeout=1.0), timeout,
                   "autossh serving")

    def session_pid(self):
        """The ssh child holding the SSH connection."""
        return ssh_child(self.p)

    def diagnosis(self):
        """ssh restarts and refused forwards, from autossh's log."""
        text = self.log.read_text(errors="replace")
        return "%d ssh restarts, %d refused forwards" % (
            max(0, text.count("starting ssh (count") - 1),
            text.count("remote port forwarding failed"))


CLIENTS = {"tunnels": TunnelsClient, "autossh": AutosshClient}


def serving_after(rport, t0, cap):
    """Probe until an echo through rport works: seconds since t0, or
    None when it did not within cap seconds of t0."""
    try:
        wait_until(lambda: try_echo(rport, timeout=1.0),
                   max(0.0, t0 + cap - time.monotonic()),
                   "serving again", interval=0.05)
    except WaitTimeout:
        return None
    return time.monotonic() - t0


# ---------------------------------------------------------------------------
# Scenarios: each returns (seconds to serving again or None when not
# within cap, the client's diagnosis)


def restart(w, side, cap, down_s):
    """sshd and its sessions killed; back on the same port after down_s."""
    sshd = start_sshd(w, "sshd")
    echo = w.app(apps.EchoServer())
    rport = alloc_port()
    cl = CLIENTS[side](w, sshd, rport, echo.port)
    cl.steady(rport, 20)
    sshd.stop()
    observe(down_s)                  # the downtime itself
    sshd.start()                     # returns once sshd answers
    return serving_after(rport, time.monotonic(), cap), cl.diagnosis()


def black_hole(w, side, cap):
    """The relay process carrying the session SIGSTOPped."""
    sshd = start_sshd(w, "sshd", STALE)
    relay = Relay(w, sshd.port).start()
    kh = w.known_hosts(sshd.known_hosts_line(port=relay.port),
                       name="known_hosts_relay")
    echo = w.app(apps.EchoServer())
    rport = alloc_port()
    cl = CLIENTS[side](w, sshd, rport, echo.port, relay.port, kh)
    cl.steady(rport, 20)
    carriers = relay.live_connection_pids()
    assert len(carriers) == 1, ("expected one relayed connection (the "
                                "session), found %s" % carriers)
    t0 = time.monotonic()
    relay.stall(carriers[0])
    return serving_after(rport, t0, cap), cl.diagnosis()


def nat(w, side, cap):
    """In a network namespace: the session's packets dropped both ways."""
    ns = faults.NetNS(w)
    with ns.entered():
        sshd = start_sshd(w, "sshd", STALE)
        echo = w.app(apps.EchoServer())
        rport = alloc_port()
        cl = CLIENTS[side](w, sshd, rport, echo.port)
        cl.steady(rport, 20)
        pid = cl.session_pid()
        conns = [c for c in ns.tcp_connections(pid) if c[3] == sshd.port]
        assert len(conns) == 1, "%s's sessions to sshd: %s" % (side, conns)
        ns.drop_port(conns[0][1])
        t0 = time.monotonic()
        took = serving_after(rport, t0, cap)
        assert ns.dropped_packets() > 0, "the nft rule dropped nothing"
        return took, cl.diagnosis()


# ---------------------------------------------------------------------------
# Running them


def attempt(ctx, name, fn, side, cap, *args):
    """Run one scenario in its own world; a value dict for the table."""
    if fn is nat and os.geteuid() != 0:
        return report.missing("needs root (ip netns, nft)")
    w = harness.World("bench-%s-%s" % (name, side))
    failed = True
    try:
        took, diag = fn(w, side, cap, *args)
        failed = False
    except Exception as e:           # a finding: report it, keep going
        ctx.log("    %s %s: ERROR %s (logs kept in %s)\n%s" % (
            side, name, e, w.dir, traceback.format_exc()))
        return report.missing("error: %s" % str(e).splitlines()[0][:200])
    finally:
        w.close(failed)
    ctx.log("    %s %s: %s; %s" % (
        side, name, "%.2f s" % took if took is not None else
        "not serving within %d s" % cap, diag))
    v = report.measured(took) if took is not None else report.at_least(cap)
    v["diagnosis"] = diag
    return v


def concurrently(calls):
    """Run the zero-argument callables in threads; their results in
    order (used for the capped autossh rows, which mostly wait)."""
    out = [None] * len(calls)

    def one(i, fn):
        """Thread body: store fn's result."""
        out[i] = fn()
    threads = [threading.Thread(target=one, args=(i, fn), daemon=True)
               for i, fn in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def run(ctx):
    """The section: every scenario for tunnels, then for autossh."""
    cap = ctx.recovery_cap
    downs = ctx.restart_downs
    scen = [("sshd restart, down %d s" % s, restart, (s,)) for s in downs]
    scen += [("black hole", black_hole, ()), ("NAT rebinding", nat, ())]
    res = {}
    for side in ("tunnels", "autossh"):
        ctx.log("  %s" % side)
        long_ones = []
        for name, fn, args in scen:
            call = functools.partial(attempt, ctx, name, fn, side, cap,
                                     *args)
            if side == "autossh" and fn is not restart:
                long_ones.append((name, call))
            else:
                res[(name, side)] = call()
        for (name, _), v in zip(long_ones,
                                concurrently([c for _, c in long_ones])):
            res[(name, side)] = v
    ctx.raw[SECTION] = {"%s / %s" % k: v for k, v in res.items()}
    ctx.raw[SECTION].update(keepalive="%d s × %d" % (K, C), cap_s=cap,
                            backoff=DEFAULT_BACKOFF)

    rows = []
    for name, fn, _ in scen:
        what = {restart: "from sshd's return", black_hole: "from the stall",
                nat: "from the drop"}[fn]
        target = (2 if fn is restart else K * C + 3)
        note = "tunnels target ≤ %d s" % target
        if fn is not restart:
            note += "; sshd ClientAliveInterval 0 (only the client can " \
                "free the stale port); autossh's two such rows ran " \
                "concurrently"
        base = res[(name, "autossh")]
        if base.get("gt"):
            note += "; autossh meanwhile: %s" % base.get("diagnosis")
        rows.append(report.row(SECTION, "%s: serving again %s" % (name, what),
                               "s", report.LOWER, res[(name, "autossh")],
                               res[(name, "tunnels")], "autossh",
                               note=note))
    return rows
