"""
Results of `make bench`: one row per metric (the OpenSSH/autossh value,
the tunnels value, their ratio and which is better), the machine it ran
on, the one table printed at the end, and the JSON written next to it.
"""

import json
import os
import platform
import subprocess
import sys
import time

HIGHER, LOWER = "higher", "lower"
TIE = 0.05          # within ±5 %: reported as a tie


# ---------------------------------------------------------------------------
# Values and rows


def measured(v):
    """A measured value."""
    return {"v": float(v)}


def at_least(v):
    """A lower bound: the wait was capped at v (printed as >v)."""
    return {"v": float(v), "gt": True}


def missing(why):
    """No value, and why it could not be measured."""
    return {"v": None, "why": why}


def _val(x):
    """Normalise a number / value dict / None into a value dict."""
    if isinstance(x, dict):
        return x
    if x is None:
        return missing("not measured")
    return measured(x)


def row(section, metric, unit, better, base, tun, base_label="ssh -R",
        note=None):
    """One table row. base/tun: a number or measured()/at_least()/
    missing(); better: HIGHER or LOWER."""
    r = {"section": section, "metric": metric, "unit": unit,
         "better": better, "base_label": base_label,
         "base": _val(base), "tunnels": _val(tun)}
    if note:
        r["note"] = note
    r["ratio"], r["ratio_bound"] = ratio(r["base"], r["tunnels"])
    r["winner"] = winner(r)
    return r


def ratio(base, tun):
    """(tunnels ÷ base, bound) with bound "" exact, ">" or "<" when one
    side was capped; (None, "") when it cannot be computed."""
    b, t = base.get("v"), tun.get("v")
    if b is None or t is None or b == 0 or (base.get("gt") and
                                            tun.get("gt")):
        return None, ""
    bound = ">" if tun.get("gt") else "<" if base.get("gt") else ""
    return t / b, bound


def winner(r):
    """"tunnels", "ssh" (the base side), "tie" or "" (no ratio)."""
    q = r["ratio"]
    if q is None:
        return ""
    better_tun = q > 1 if r["better"] == HIGHER else q < 1
    if not r["ratio_bound"] and abs(q - 1) <= TIE:
        return "tie"
    return "tunnels" if better_tun else r["base_label"].split()[0]


def advantage(r):
    """How many times better tunnels is (>1) or worse (<1), whichever the
    direction of the metric: the figure the plot shows."""
    q = r["ratio"]
    if q is None or q == 0:
        return None
    return q if r["better"] == HIGHER else 1 / q


# ---------------------------------------------------------------------------
# Formatting


def fmt_num(v):
    """A number with about three significant digits."""
    a = abs(v)
    if a >= 100:
        return "%.0f" % v
    if a >= 10:
        return "%.1f" % v
    if a >= 0.1 or a == 0:
        return "%.2f" % v
    return "%.2g" % v


def fmt_val(x, unit=""):
    """A value dict as table text (counts as integers)."""
    if x.get("v") is None:
        return "n/a"
    v = x["v"]
    text = "%d" % round(v) if unit == "count" else fmt_num(v)
    if x.get("gt"):
        return ">%g" % v
    return text


def fmt_ratio(r):
    """The ratio column."""
    if r["ratio"] is None:
        return "n/a"
    return "%s%s×" % (r["ratio_bound"], fmt_num(r["ratio"]))


def table(rows):
    """The one table, as text lines, with a heading line per section."""
    head = ("metric", "ssh/autossh", "tunnels", "tun÷ssh", "better",
            "winner")
    cells = [("%s (%s)" % (r["metric"], r["unit"]),
              fmt_val(r["base"], r["unit"]),
              fmt_val(r["tunnels"], r["unit"]), fmt_ratio(r), r["better"],
              r["winner"] or "-") for r in rows]
    w = [max([len(head[i])] + [len(c[i]) for c in cells])
         for i in range(len(head))]
    fmt = "%%-%ds  %%%ds  %%%ds  %%%ds  %%-%ds  %%s" % tuple(w[:5])
    out = [fmt % head, "-" * (sum(w) + 2 * 5)]
    section = None
    for r, c in zip(rows, cells):
        if r["section"] != section:
            section = r["section"]
            out.append("[%s]" % section)
        out.append(fmt % c)
    return out


def notes(rows):
    """The per-row notes and the reasons for missing values."""
    out = []
    for r in rows:
        for side in ("base", "tunnels"):
            why = r[side].get("why")
            if why and r[side].get("v") is None:
                out.append("%s / %s: %s n/a: %s" % (
                    r["section"], r["metric"],
                    r["base_label"] if side == "base" else "tunnels", why))
        if r.get("note"):
            out.append("%s / %s: %s" % (r["section"], r["metric"],
                                        r["note"]))
    return out


# ---------------------------------------------------------------------------
# Machine


def machine():
    """Date, host facts (nproc, CPU model, kernel, memory)."""
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            mem = "%.1f GiB" % (int(f.readline().split()[1]) / (1 << 20))
    except (OSError, ValueError, IndexError):
        pass
    return {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "nproc": os.cpu_count(), "cpu": model,
            "kernel": platform.release(), "memory": mem}


def versions(tunnels_bin):
    """Versions of every program involved."""
    def first_line(cmd):
        """First output line of cmd (stdout or stderr)."""
        try:
            r = subprocess.run(cmd, capture_output=True, text=True,
                               timeout=10)
        except OSError as e:
            return "unavailable (%s)" % e
        text = (r.stdout + r.stderr).strip().splitlines()
        return text[0].strip() if text else "?"
    return {
        "tunnels": first_line([tunnels_bin, "--version"]),
        "libssh2": first_line(["dpkg-query", "-W", "-f=${Version}",
                               "libssh2-1"]),
        "openssh": first_line(["/usr/bin/ssh", "-V"]),
        "autossh": first_line(["/usr/bin/autossh", "-V"]),
        "iperf3": first_line(["/usr/bin/iperf3", "--version"]),
        "wrk": first_line(["/usr/bin/wrk", "--version"]),
        "nginx": first_line(["/usr/sbin/nginx", "-v"]),
        "python": sys.version.split()[0],
    }


def header(mach, vers):
    """The lines above the table: date and machine."""
    return [
        "tunnels benchmark, %s" % mach["date"],
        "machine: %s × %s, Linux %s, %s RAM" % (
            mach["nproc"], mach["cpu"], mach["kernel"], mach["memory"]),
        "versions: %s; libssh2 %s; %s; %s" % (
            vers["tunnels"], vers["libssh2"], vers["openssh"],
            vers["autossh"]),
    ]


def write_json(path, doc):
    """Write doc as indented JSON (atomically: temp file + rename)."""
    tmp = "%s.tmp" % path
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=False)
        f.write("\n")
    os.replace(tmp, path)
