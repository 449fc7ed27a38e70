"""
The bar chart of `make bench`: one bar per metric that has a ratio, the
factor by which tunnels is better (>1) or worse (<1) whatever the
direction of the metric, drawn by gnuplot (ratios.gp) as SVG.
"""

import subprocess
from pathlib import Path

import report

GNUPLOT = "/usr/bin/gnuplot"
SCRIPT = Path(__file__).resolve().parent / "ratios.gp"


def write_data(rows, path):
    """The data file: index, label, advantage, capped, bar text;
    returns (bar count, smallest advantage, largest advantage)."""
    n, lo, hi = 0, 1.0, 1.0
    with open(path, "w") as f:
        for r in rows:
            a = report.advantage(r)
            if a is None or a <= 0:
                continue
            label = "%s: %s" % (r["section"], r["metric"])
            if len(label) > 64:
                label = label[:61] + "..."
            capped = 1 if r["ratio_bound"] else 0
            text = "%s%s×" % ("≥" if capped else "", report.fmt_num(a))
            f.write("%d\t%s\t%.6g\t%d\t%s\n" % (
                n, label.replace("\t", " "), a, capped, text))
            n += 1
            lo, hi = min(lo, a), max(hi, a)
    return n, lo, hi


def plot(rows, outdir, subtitle):
    """Write ratios.dat and ratios.svg into outdir; the SVG path, or None
    (with the reason) when there is nothing to draw or gnuplot failed."""
    data = Path(outdir) / "ratios.dat"
    svg = Path(outdir) / "ratios.svg"
    n, lo, hi = write_data(rows, data)
    if n == 0:
        return None, "no metric with a ratio to plot"
    r = subprocess.run(
        [GNUPLOT, "-e", "datafile='%s'; outfile='%s'; subtitle='%s'; "
         "nbars=%d; xmin=%g; xmax=%g" % (data, svg, subtitle.replace("'", ""), n,
                                        min(0.1, lo / 4), max(10, hi * 4)),
         str(SCRIPT)],
        capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        return None, "gnuplot failed: %s" % r.stderr.strip()[-500:]
    return svg, None
