"""
Resilience over time (issue 3): 100 reconnects while traffic flows leave
no fd or memory growth and never corrupt a completed round trip; a server
away for 2 minutes costs the daemon no CPU (timers only).

Memory and CPU are measured on the release build (build/tunnels): ASan
keeps freed memory in quarantine (RSS grows with churn whatever the code
does) and multiplies CPU cost. The fd check also runs on the build under
test ($TUNNELS_BIN, the ASan build in `make test`), whose LeakSanitizer
report at exit (checked at teardown) covers what RSS cannot see.
The measured figures are printed (pytest -s shows them).
"""

import time

import pytest

import apps
from faults import (DEFAULT_BACKOFF, FAST_BACKOFF, EchoTraffic, cpu_seconds,
                    fd_count, report, rss_bytes, server_cfg, try_echo,
                    wait_serving)
from harness import alloc_port, is_refused, observe, release_bin, wait_until

MiB = 1 << 20
CYCLES = 100
FD_NOISE = 2
RSS_GROWTH_MAX = 4 * MiB


def measure(d, traffic):
    """fds and RSS of the daemon with no bridged connection open."""
    traffic.pause()
    d.wait_status(lambda st: d.tunnel("t1", st)["active_connections"] == 0,
                  10, "no active connection")
    fds, rss = fd_count(d.pid), rss_bytes(d.pid)
    traffic.resume()
    return fds, rss


@pytest.mark.parametrize("build", ["release", "under_test"])
def test_100_reconnects_while_traffic_flows(world, build):
    sshd = world.sshd("sshd1")
    echo = world.app(apps.EchoServer())
    rport = alloc_port()
    cfg, _ = world.write_config({"s1": server_cfg(world, sshd)}, [
        {"name": "t1", "server": "s1", "remote": rport, "local": echo.local}],
        backoff=FAST_BACKOFF)
    d = world.daemon(cfg, binary=release_bin() if build == "release"
                     else None)
    wait_serving(d, rport, 10)
    traffic = EchoTraffic(rport).start()
    world.on_cleanup(traffic.stop)

    marks = {}
    t_start = time.monotonic()
    for cycle in range(1, CYCLES + 1):
        c0 = d.server("s1")["connects"]
        killed = sshd.kill_sessions()
        assert killed, "cycle %d: no sshd session to kill" % cycle
        d.wait_status(lambda st: d.server("s1", st)["connects"] > c0 and
                      d.server("s1", st)["state"] == "up" and
                      d.tunnel("t1", st)["state"] == "up", 10,
                      "cycle %d: a new session with t1 up" % cycle)
        wait_until(lambda: try_echo(rport), 5,
                   "cycle %d: an echo through the new session" % cycle)
        if cycle in (10, CYCLES):
            marks[cycle] = measure(d, traffic)
    took = time.monotonic() - t_start
    traffic.stop()

    (fd10, rss10), (fd100, rss100) = marks[10], marks[CYCLES]
    connects = d.server("s1")["connects"]
    report("reconnects_%s" % build, cycles=CYCLES, seconds=took,
           fds_after_10=fd10, fds_after_100=fd100,
           rss_after_10_kib=rss10 // 1024, rss_after_100_kib=rss100 // 1024,
           round_trips_ok=traffic.ok, connections_cut=traffic.failed,
           connects_refused=traffic.refused,
           mib_echoed=traffic.bytes / MiB, corrupt=len(traffic.corrupt))
    assert not traffic.corrupt, "%d corrupted round trips, e.g. %s" % (
        len(traffic.corrupt), traffic.corrupt[:3])
    assert traffic.ok >= CYCLES, ("only %d round trips completed: the "
                                  "traffic did not flow" % traffic.ok)
    assert connects == CYCLES + 1, "connects %d after %d cycles" % (
        connects, CYCLES)
    assert abs(fd100 - fd10) <= FD_NOISE, (
        "fd count %d after cycle 10, %d after cycle %d" % (fd10, fd100,
                                                           CYCLES))
    if build == "release":
        assert rss100 - rss10 <= RSS_GROWTH_MAX, (
            "RSS grew by %.1f MiB between cycle 10 and %d (bound %d MiB)" %
            ((rss100 - rss10) / MiB, CYCLES, RSS_GROWTH_MAX // MiB))


def test_server_away_2min_costs_no_cpu(world):
    """sshd (and its sessions) gone for 120 s: the daemon's CPU time over
    that window is at most 1 % of it; then it serves again within 2 s of
    sshd's return. The default backoff: cheap retries every 0.5-1 s."""
    away = 120.0
    sshd = world.sshd("sshd1")
    echo = world.app(apps.EchoServer())
    rport = alloc_port()
    cfg, _ = world.write_config({"s1": server_cfg(world, sshd)}, [
        {"name": "t1", "server": "s1", "remote": rport, "local": echo.local}],
        backoff=DEFAULT_BACKOFF)
    d = world.daemon(cfg, binary=release_bin())
    wait_serving(d, rport, 10)

    sshd.stop()
    d.wait_status(lambda st: d.server("s1", st)["state"] != "up", 5,
                  "server s1 to notice sshd is gone")
    cpu0, t0 = cpu_seconds(d.pid), time.monotonic()

    def alive():
        assert d.running(), "daemon exited while sshd was away"
    observe(away, alive, interval=1.0)    # /proc only: no daemon work
    cpu1, t1 = cpu_seconds(d.pid), time.monotonic()
    window = t1 - t0
    used = cpu1 - cpu0
    st = d.status()
    assert d.server("s1", st)["state"] != "up"
    assert is_refused(rport)

    sshd.start()
    t_ready = time.monotonic()
    wait_serving(d, rport, 15, min_connects=2)
    back = time.monotonic() - t_ready
    report("server_away", window_s=window, cpu_s=used,
           cpu_percent=100.0 * used / window, serving_after_return_s=back)
    assert used <= 0.01 * window, (
        "daemon used %.2fs of CPU in %.0fs while its server was away "
        "(bound 1%% = %.2fs)" % (used, window, 0.01 * window))
    assert back <= 2.0, "served %.2fs after sshd's return" % back
