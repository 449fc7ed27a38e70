"""
Processes: children and descendants via /proc, liveness, stopping what
we started, log tails and sanitizer reports.

Part of the integration harness (harness.py re-exports it).
"""

import os
import signal
import subprocess

from waits import WaitTimeout, scaled, wait_until


SANITIZER_PATTERNS = ("AddressSanitizer", "LeakSanitizer",
                      "UndefinedBehaviorSanitizer", "runtime error:")


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
            proc.wait(scaled(timeout))
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
