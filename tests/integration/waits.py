"""
Waiting on state instead of time: wait_until (a deadline), observe and
assert_quiet (a window in which nothing may happen), and the timing
multiplier that stretches every deadline on slow runs.

Part of the integration harness (harness.py re-exports it).
"""

import json
import os
import time

from binaries import tunnels_bin


def _slow_factor():
    """TUNNELS_TEST_SLOW if set (a number >= 1), else 2 for a sanitizer
    build of the daemon (a path with /asan/ in it), else 1."""
    v = os.environ.get("TUNNELS_TEST_SLOW")
    if v:
        f = float(v)
        assert f >= 1, "TUNNELS_TEST_SLOW must be a number >= 1, not %r" % v
        return f
    return 2.0 if "/asan/" in tunnels_bin() else 1.0


# Every deadline the harness waits with is stretched by this much: ASan
# makes the daemon several times slower, and a busy 2-core CI machine more
# so. A deadline only bounds how long a wait for a state may take, so a
# longer one never lets a wrong state pass; contract timings a test asserts
# (e.g. "exits within 2 s") stay as DESIGN.md states them.
SLOW = _slow_factor()


def scaled(seconds):
    """A wall-clock bound stretched by the timing multiplier (SLOW)."""
    return seconds * SLOW

class WaitTimeout(AssertionError):
    pass


def wait_until(predicate, timeout, what, interval=0.05,
               ignore=(OSError, ValueError)):
    """
    Call predicate() until it returns a truthy value (returned) or the
    deadline passes (WaitTimeout naming `what`, the last value and the last
    ignored exception). Exceptions of the `ignore` types count as "not yet".
    The timeout is stretched by SLOW.
    """
    timeout = scaled(timeout)
    deadline = time.monotonic() + timeout
    last, last_exc = None, None
    while True:
        try:
            last = predicate()
            if last:
                return last
        except ignore as e:  # noqa: PERF203
            last_exc = e
        if time.monotonic() >= deadline:
            msg = "timed out after %.1fs waiting for %s" % (timeout, what)
            if last is not None:
                msg += "; last value: %s" % _short(last)
            if last_exc is not None:
                msg += "; last error: %r" % (last_exc,)
            raise WaitTimeout(msg)
        time.sleep(interval)  # polling interval, bounded by the deadline


def _short(v, limit=2000):
    if isinstance(v, (dict, list)):
        s = json.dumps(v, indent=1)
    else:
        s = repr(v)
    return s if len(s) <= limit else s[:limit] + "...(truncated)"


def observe(seconds, check=None, interval=0.2):
    """
    Stay in a measurement window of `seconds` (the length the test is
    about, not a synchronisation delay), calling check() every `interval`
    so that a violation fails at once instead of at the end. The window is
    not stretched by SLOW: it is a minimum, not a deadline.
    """
    deadline = time.monotonic() + seconds
    while True:
        if check is not None:
            check()
        left = deadline - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(interval, left))  # sampling period inside the window


def assert_quiet(predicate, seconds, what, interval=0.1):
    """
    Nothing happens in this window: predicate() (the thing that must not
    happen) stays falsy for `seconds`, checked every `interval` and once
    more at the end. AssertionError naming `what` and the value otherwise.
    """
    def check():
        v = predicate()
        assert not v, "%s within %.1fs: %s" % (what, seconds, _short(v))
    observe(seconds, check, interval)
    check()
