"""
make bench: tunnels side by side with OpenSSH's `ssh -R` and autossh, on
one machine, one sshd and the same local services, in one run. Sections
(one module each):

  throughput  iperf3 through one forward, both directions    throughput.py
  http        wrk to nginx: keep-alive, latency, new conns    web.py
  conns       10 000 concurrent connections through one tunnel conns.py
  scale       1000 tunnels on one server vs autossh pairs     scale.py
  recovery    time to serve again after faults, vs autossh    recovery.py
  wan         0/50/150 ms RTT through a delay relay: bulk,    wan.py
              small requests, memory with stalled uploads

Prints one table (metric, ssh/autossh, tunnels, ratio, better) with the
date and the machine, and writes build/bench/results.json, table.txt and
ratios.svg (gnuplot).

Run: /usr/bin/python3 tests/bench/bench.py [--bin PATH] [--only "http
recovery"] [--quick] [--out DIR]
"""

import argparse
import os
import resource
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
import harness  # noqa: E402

import conns  # noqa: E402
import plot  # noqa: E402
import recovery  # noqa: E402
import report  # noqa: E402
import scale  # noqa: E402
import throughput  # noqa: E402
import wan  # noqa: E402
import web  # noqa: E402
from sides import start_sshd  # noqa: E402

SECTIONS = [("throughput", throughput), ("http", web), ("conns", conns),
            ("scale", scale), ("recovery", recovery), ("wan", wan)]
ALIASES = {"10k": "conns", "1000": "scale", "web": "http"}
NOFILE = 65536          # the unit's LimitNOFILE


class Ctx:
    """What every section gets: the shared world and sshd, its sizes
    (full or --quick), a log function and the raw-results dict."""

    def __init__(self, args, world, sshd):
        self.world = world
        self.sshd = sshd
        self.quick = args.quick
        self.seconds = args.seconds or (2 if args.quick else 5)
        self.tp_seconds = args.seconds or (2 if args.quick else 3)
        self.tp_rounds = 1 if args.quick else 3
        self.conns = 2000 if args.quick else 10000
        self.tunnels = 100 if args.quick else 1000
        self.pairs = 5 if args.quick else 10
        self.idle = 5 if args.quick else 60
        self.recovery_cap = 20 if args.quick else 120
        self.restart_downs = [1] if args.quick else [1, 3, 10]
        self.raw = {}
        self.t0 = time.monotonic()

    def log(self, msg):
        """A progress line with the elapsed time."""
        print("[%6.1fs] %s" % (time.monotonic() - self.t0, msg), flush=True)


def raise_nofile(want=NOFILE):
    """Raise RLIMIT_NOFILE of this process (inherited by sshd, the daemon,
    ssh, autossh and the origins we start) towards `want`, as the systemd
    unit's LimitNOFILE does: the hard limit too when allowed
    (CAP_SYS_RESOURCE), else up to the hard limit. Returns the soft
    limit in effect."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
            return want
        except (ValueError, OSError):
            pass
    soft = want if hard == resource.RLIM_INFINITY else min(want, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return soft


def parse_only(text):
    """Section names from --only ("http recovery", commas allowed)."""
    names = [ALIASES.get(n, n) for n in text.replace(",", " ").split()]
    known = [n for n, _ in SECTIONS]
    bad = [n for n in names if n not in known]
    if bad:
        raise SystemExit("unknown section(s) %s; known: %s" % (
            ", ".join(bad), ", ".join(known)))
    return names


def main():
    """Run the chosen sections, print the table, write the files."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=str(harness.REPO / "build" / "tunnels"))
    ap.add_argument("--out", default=str(harness.REPO / "build" / "bench"))
    ap.add_argument("--only", default="",
                    help="sections to run: %s" % " ".join(
                        n for n, _ in SECTIONS))
    ap.add_argument("--quick", action="store_true",
                    help="short runs and small sizes, for iterating")
    ap.add_argument("--seconds", type=int, default=0,
                    help="length of each throughput/HTTP run")
    args = ap.parse_args()
    os.environ["TUNNELS_BIN"] = args.bin
    only = parse_only(args.only) if args.only.strip() else \
        [n for n, _ in SECTIONS]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    nofile = raise_nofile()
    world = harness.World("bench")
    sshd = start_sshd(world, "sshd")
    ctx = Ctx(args, world, sshd)
    if nofile < ctx.conns + 1000:       # each process holds one fd each
        ctx.conns = max(100, nofile - 1000)
        ctx.log("RLIMIT_NOFILE is %d: the connection test uses %d" % (
            nofile, ctx.conns))
    mach, vers = report.machine(), report.versions(args.bin)
    rows, errors = [], {}
    failed = False
    try:
        for name, mod in SECTIONS:
            if name not in only:
                continue
            ctx.log("%s" % name)
            t = time.monotonic()
            try:
                rows += mod.run(ctx)
            except Exception as e:      # a finding: record, go on
                failed = True
                errors[name] = "%s: %s" % (type(e).__name__, e)
                ctx.log("%s FAILED: %s\n%s" % (name, e,
                                               traceback.format_exc()))
            ctx.raw.setdefault("durations_s", {})[name] = round(
                time.monotonic() - t, 1)
    finally:
        cleanup_errors, kept = world.close(failed)
        if kept:
            ctx.log("logs kept in %s" % world.dir)
        for e in cleanup_errors:
            errors.setdefault("cleanup", "")
            errors["cleanup"] += "%s: %s; " % (type(e).__name__, e)

    total = time.monotonic() - ctx.t0
    lines = report.header(mach, vers)
    lines += ["RLIMIT_NOFILE %d for every process started (the unit sets "
              "LimitNOFILE=%d); loopback only (wan: through a delay "
              "relay); %s" % (
                  nofile, NOFILE, "QUICK mode (small sizes)" if ctx.quick else
                  "full run"), ""]
    lines += report.table(rows)
    lines += ["", "ratio = tunnels ÷ ssh (or autossh); `better` says "
              "whether higher or lower values win; tie = within ±5 %."]
    lines += ["notes:"] + ["  " + n for n in report.notes(rows)]
    for name, e in errors.items():
        lines.append("SECTION %s FAILED: %s" % (name, e))
    svg, why = plot.plot(rows, out, "%s, %s × %s" % (
        mach["date"], mach["nproc"], mach["cpu"]))
    lines += ["", "total %.0f s; wrote %s, %s, %s" % (
        total, out / "results.json", out / "table.txt",
        svg or "no plot (%s)" % why)]
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    (out / "table.txt").write_text(text)
    report.write_json(out / "results.json", {
        "machine": mach, "versions": vers, "nofile": nofile,
        "quick": ctx.quick, "sections": only, "total_s": round(total, 1),
        "rows": rows, "raw": ctx.raw, "errors": errors})
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
