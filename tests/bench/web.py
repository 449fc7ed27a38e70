"""
HTTP through the forward to a local nginx serving one small static file,
with wrk (2 threads, 16 connections, --latency): keep-alive request rate
and p50/p99 latency, and the new-connection rate (`Connection: close`:
every request is a new TCP connection to sshd's listener, so a new
forwarded channel and a new connection to nginx). ssh -R (default cipher)
vs tunnels; nginx without a tunnel is measured too, as the ceiling.
Each run follows a 1 s warm-up run that is not counted.
"""

import re
import subprocess

from harness import alloc_port

import origins
import report
from sides import (SSH_DEFAULT, cpu_seconds, one_tunnel, start_ssh,
                   start_tunnels, stop_tree)

SECTION = "http"
WRK = "/usr/bin/wrk"
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def parse_ms(text):
    """A wrk duration ("812.00us", "1.20ms", "2.01s") in milliseconds."""
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        raise ValueError("wrk duration %r" % text)
    return float(m.group(1)) * UNITS[m.group(2)]


def parse_wrk(out):
    """wrk --latency output -> {rps, p50_ms, p99_ms, requests, errors,
    non2xx}."""
    res = {"errors": 0, "non2xx": 0}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not m:
        raise RuntimeError("no Requests/sec in wrk output:\n%s" % out)
    res["rps"] = float(m.group(1))
    for pct, key in (("50", "p50_ms"), ("99", "p99_ms")):
        m = re.search(r"^\s+%s%%\s+(\S+)" % pct, out, re.M)
        res[key] = parse_ms(m.group(1)) if m else None
    m = re.search(r"(\d+) requests in", out)
    res["requests"] = int(m.group(1)) if m else None
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                  r"timeout (\d+)", out)
    if m:
        res["errors"] = sum(int(x) for x in m.groups())
        res["socket_errors"] = m.group(0)
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        res["non2xx"] = int(m.group(1))
    return res


def wrk(port, seconds, close):
    """One wrk run against 127.0.0.1:port/SMALL_FILE; parsed results."""
    cmd = [WRK, "-t2", "-c16", "-d%ds" % seconds, "--latency"]
    if close:
        cmd += ["-H", "Connection: close"]
    cmd.append("http://127.0.0.1:%d/%s" % (port, origins.SMALL_FILE))
    r = subprocess.run(cmd, capture_output=True, text=True,
                       timeout=seconds + 60)
    if r.returncode != 0:
        raise RuntimeError("wrk rc %d: %s%s" % (r.returncode, r.stdout,
                                                r.stderr))
    return parse_wrk(r.stdout)


def timed_wrk(port, seconds, close, pid):
    """wrk after a 1 s warm-up run (not counted); with pid, adds the CPU
    microseconds that process spent per request ("cpu_us")."""
    wrk(port, 1, close)                          # warm-up, not counted
    c0 = cpu_seconds(pid) if pid else 0.0
    res = wrk(port, seconds, close)
    if pid and res["requests"]:
        res["cpu_us"] = (cpu_seconds(pid) - c0) / res["requests"] * 1e6
    return res


def measure(ctx, port, name, pid=None):
    """The keep-alive and the new-connection runs; pid: the client
    process whose CPU time is counted."""
    ctx.log("  %s" % name)
    ka = timed_wrk(port, ctx.seconds, False, pid)
    nc = timed_wrk(port, ctx.seconds, True, pid)
    ctx.log("    keep-alive %.0f req/s p50 %.2f ms p99 %.2f ms errors %d; "
            "new connections %.0f/s errors %d" % (
                ka["rps"], ka["p50_ms"], ka["p99_ms"], ka["errors"] +
                ka["non2xx"], nc["rps"], nc["errors"] + nc["non2xx"]))
    return {"keepalive": ka, "close": nc}


def run(ctx):
    """The section: direct, ssh -R, tunnels; rows vs ssh -R."""
    w, sshd = ctx.world, ctx.sshd
    nport = origins.nginx_origin(w)
    res = {"direct": measure(ctx, nport, "nginx direct (no tunnel)")}

    rport = alloc_port()
    p = start_ssh(w, sshd, [(rport, nport)], SSH_DEFAULT[1], name="ssh-http")
    try:
        res["ssh"] = measure(ctx, rport, SSH_DEFAULT[0], p.pid)
    finally:
        stop_tree(p)

    rport = alloc_port()
    d = start_tunnels(w, sshd, [one_tunnel(rport, "127.0.0.1:%d" % nport)],
                      name="tun-http")
    d.wait_tunnel("t1", "up", 10)
    try:
        res["tunnels"] = measure(ctx, rport, "tunnels", d.pid)
        res["tunnels_status"] = d.tunnel("t1")
    finally:
        d.teardown()
    ctx.raw[SECTION] = dict(res, seconds=ctx.seconds,
                            wrk="-t2 -c16 --latency",
                            file="%d bytes" % origins.SMALL_SIZE)

    s, t = res["ssh"], res["tunnels"]
    note_direct = ("nginx alone (no tunnel): %.0f req/s keep-alive, %.0f "
                   "new conn/s" % (res["direct"]["keepalive"]["rps"],
                                   res["direct"]["close"]["rps"]))
    return [
        report.row(SECTION, "keep-alive requests", "req/s", report.HIGHER,
                   s["keepalive"]["rps"], t["keepalive"]["rps"],
                   note=note_direct),
        report.row(SECTION, "keep-alive latency p50", "ms", report.LOWER,
                   s["keepalive"]["p50_ms"], t["keepalive"]["p50_ms"]),
        report.row(SECTION, "keep-alive latency p99", "ms", report.LOWER,
                   s["keepalive"]["p99_ms"], t["keepalive"]["p99_ms"]),
        report.row(SECTION, "new connections (Connection: close)",
                   "conn/s", report.HIGHER, s["close"]["rps"],
                   t["close"]["rps"]),
        report.row(SECTION, "new-connection latency p99", "ms",
                   report.LOWER, s["close"]["p99_ms"],
                   t["close"]["p99_ms"]),
        report.row(SECTION, "client CPU per request, keep-alive", "µs",
                   report.LOWER, s["keepalive"].get("cpu_us"),
                   t["keepalive"].get("cpu_us"),
                   note="CPU time of `ssh -R` / the daemon per request"),
        report.row(SECTION, "client CPU per request, new connections",
                   "µs", report.LOWER, s["close"].get("cpu_us"),
                   t["close"].get("cpu_us")),
        report.row(SECTION, "wrk errors (socket errors + non-2xx)",
                   "count", report.LOWER,
                   sum(s[k]["errors"] + s[k]["non2xx"] for k in s),
                   sum(t[k]["errors"] + t[k]["non2xx"] for k in t)),
    ]
