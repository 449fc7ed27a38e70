"""
Forwarding through the daemon (DESIGN §3, §5.5, §5.7): several tunnels on
two real sshd, bulk data both ways, many parallel connections, half-close,
the local side closing first, a refused local target, `remote: 0`, an IPv6
loopback remote and a unix-socket local target.
"""

import hashlib
import json
import os
import re
import socket
import threading
import time

import apps
from harness import (alloc_port, connect, echo_ok, echo_roundtrip,
                     is_refused, recv_exact, recv_until_eof, run_cli,
                     wait_until)

MiB = 1 << 20


def start_daemon(world, tunnels, servers=None, sshd=None):
    """One sshd (unless servers are given), the config, the daemon."""
    if servers is None:
        sshd = sshd or world.sshd("sshd1")
        servers = {"s1": world.server_cfg(sshd)}
    cfg, _ = world.write_config(servers, tunnels)
    return world.daemon(cfg), cfg


def one_tunnel(world, app, remote=None, name="t1"):
    up = world.bring_up(app=app, remote=remote, name=name)
    return up.daemon, up.remote


def test_four_tunnels_on_two_servers(world):
    s1 = world.sshd("sshd1")
    s2 = world.sshd("sshd2")
    names = ["t1", "t2", "t3", "t4"]
    echos = {n: world.app(apps.EchoServer(greeting=b"%s\n" % n.encode()))
             for n in names}
    rports = {n: alloc_port() for n in names}
    tunnels = [
        {"name": "t1", "server": "s1", "remote": rports["t1"],
         "local": echos["t1"].port},                       # bare ports
        {"name": "t2", "server": "s1",
         "remote": "127.0.0.1:%d" % rports["t2"],
         "local": echos["t2"].local},                      # host:port
        {"name": "t3", "server": "s1", "remote": rports["t3"],
         "local": echos["t3"].local},
        {"name": "t4", "server": "s2", "remote": rports["t4"],
         "local": echos["t4"].local},
    ]
    servers = {"s1": world.server_cfg(s1), "s2": world.server_cfg(s2)}
    d, cfg = start_daemon(world, tunnels, servers)
    st = d.wait_all_up(10)

    assert st["pid"] == d.pid
    assert isinstance(st["uptime_s"], int) and st["uptime_s"] >= 0
    assert isinstance(st["version"], str) and st["version"]
    assert sorted(s["name"] for s in st["servers"]) == ["s1", "s2"]
    for name, sshd in (("s1", s1), ("s2", s2)):
        srv = d.server(name, st)
        assert srv["state"] == "up", srv
        assert srv["address"] == "127.0.0.1:%d" % sshd.port, srv
        assert srv["connects"] == 1, srv
        assert srv["last_error"] is None, srv
        assert isinstance(srv["since_s"], int), srv
    assert sorted(t["name"] for t in st["tunnels"]) == names
    for t in tunnels:
        n = t["name"]
        ts = d.tunnel(n, st)
        assert ts["server"] == t["server"], ts
        assert ts["remote"] == "127.0.0.1:%d" % rports[n], ts
        assert ts["local"] == "127.0.0.1:%d" % echos[n].port, ts
        assert ts["last_error"] is None, ts
        assert ts["active_connections"] == 0, ts
        assert ts["total_connections"] == 0, ts

    # Each remote port reaches its own local app (greeting tells them apart).
    for n in names:
        payload = b"hello %s %s\n" % (n.encode(), os.urandom(4).hex().encode())
        got = echo_roundtrip(rports[n], payload, prefix=b"%s\n" % n.encode())
        assert got == b"%s\n" % n.encode() + payload, (n, got)

    st = d.wait_status(
        lambda st: all(d.tunnel(n, st)["total_connections"] == 1 and
                       d.tunnel(n, st)["active_connections"] == 0
                       for n in names),
        10, "each tunnel to count one finished connection")
    for n in names:
        ts = d.tunnel(n, st)
        assert ts["bytes_in"] > 0 and ts["bytes_out"] > 0, ts

    # `tunnels status` answers from the same daemon.
    r = run_cli("status", "-c", cfg)
    assert r.returncode == 0, r.stdout + r.stderr
    for n in names:
        assert n in r.stdout
    r = run_cli("status", "-c", cfg, "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    assert sorted(t["name"] for t in doc["tunnels"]) == names
    assert doc["pid"] == d.pid


def test_bulk_upload_64mib(world):
    """Remote client -> local sink: 64 MiB random, byte-identical."""
    sink = world.app(apps.BulkSink())
    d, rport = one_tunnel(world, sink)
    size = 64 * MiB
    h = hashlib.sha256()
    t0 = time.monotonic()
    s = connect(rport, timeout=60)
    try:
        left = size
        while left:
            chunk = os.urandom(min(left, MiB))
            h.update(chunk)
            s.sendall(chunk)
            left -= len(chunk)
        s.shutdown(socket.SHUT_WR)
        reply = recv_until_eof(s, timeout=120 - (time.monotonic() - t0))
    finally:
        s.close()
    assert reply == b"%d %s\n" % (size, h.hexdigest().encode()), \
        "sink saw %r (sent %d bytes, %s)" % (reply[:200], size, h.hexdigest())
    print("upload 64 MiB: %.1fs" % (time.monotonic() - t0))
    d.wait_status(lambda st: max(d.tunnel("t1", st)["bytes_in"],
                                 d.tunnel("t1", st)["bytes_out"]) >= size,
                  10, "byte counters to include the 64 MiB")


def test_bulk_download_64mib(world):
    """Local source -> remote client: 64 MiB random, byte-identical."""
    size = 64 * MiB
    src = world.app(apps.BulkSource(size))
    d, rport = one_tunnel(world, src)
    t0 = time.monotonic()
    s = connect(rport, timeout=60)
    h = hashlib.sha256()
    try:
        n = recv_until_eof(s, timeout=120, hasher=h)
    finally:
        s.close()
    print("download 64 MiB: %.1fs" % (time.monotonic() - t0))
    wait_until(lambda: src.sent, 10, "the source to record what it sent")
    assert (n, h.hexdigest()) == src.sent[0], \
        "received %d bytes %s, source sent %s" % (n, h.hexdigest(),
                                                  src.sent[0])
    d.wait_status(lambda st: max(d.tunnel("t1", st)["bytes_in"],
                                 d.tunnel("t1", st)["bytes_out"]) >= size,
                  10, "byte counters to include the 64 MiB")


def test_200_parallel_connections(world):
    """200 connections open at once through one tunnel, each with its own
    payload echoed back intact; status counts them."""
    n = 200
    echo = world.app(apps.EchoServer())
    d, rport = one_tunnel(world, echo)
    results = [None] * n
    barrier = threading.Barrier(n + 1, timeout=60)

    def worker(i):
        s = None
        try:
            payload = (b"conn-%03d:" % i +
                       hashlib.sha256(b"%d" % i).digest() *
                       (1 + (i * 37) % 400))
            s = connect(rport, timeout=30)
            s.sendall(payload)
            got = recv_exact(s, len(payload), timeout=30)
            results[i] = "ok" if got == payload else \
                "mismatch: %r..." % got[:40]
            barrier.wait()          # all n connections open at once
            barrier.wait()          # released after the status check
        except threading.BrokenBarrierError:
            pass                    # another connection failed: see it
        except Exception as e:      # reported below, per connection
            results[i] = "%s: %s" % (type(e).__name__, e)
            barrier.abort()
        finally:
            if s is not None:
                s.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True)
               for i in range(n)]
    for t in threads:
        t.start()
    status_error = None
    try:
        barrier.wait()
        try:
            d.wait_status(lambda st: d.tunnel("t1", st)
                          ["active_connections"] == n, 10,
                          "%d active connections" % n)
        except AssertionError as e:
            status_error = e
        barrier.wait()
    except threading.BrokenBarrierError:
        pass
    for t in threads:
        t.join(60)
    bad = {i: r for i, r in enumerate(results) if r != "ok"}
    assert not bad, "%d of %d connections failed, e.g. %s" % (
        len(bad), n, list(bad.items())[:5])
    if status_error:
        raise status_error
    st = d.wait_status(lambda st: d.tunnel("t1", st)
                       ["active_connections"] == 0, 10,
                       "connections to be closed")
    assert d.tunnel("t1", st)["total_connections"] == n
    assert d.tunnel("t1", st)["state"] == "up"


def test_half_close_from_client(world):
    """Client shuts down its write side; the local app sees EOF and its
    reply still reaches the client, then EOF."""
    app = world.app(apps.ReadThenReply(tail=b"done\n"))
    d, rport = one_tunnel(world, app)
    for size in (0, 10, 3 * MiB):
        data = os.urandom(size)
        s = connect(rport, timeout=10)
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            reply = recv_until_eof(s, timeout=15)
        finally:
            s.close()
        want = b"%d %s\ndone\n" % (size,
                                   hashlib.sha256(data).hexdigest().encode())
        assert reply == want, "size %d: got %r" % (size, reply[:200])


def test_local_service_closes_first(world):
    """The local service sends data and closes: the remote client receives
    all of it, then EOF (also with nothing sent, and with > 2 MiB)."""
    blob = os.urandom(3 * MiB)
    payloads = [b"hello then bye\n", blob, b""]
    app = world.app(apps.ReplyThenClose(payloads))
    d, rport = one_tunnel(world, app)
    for want in payloads:
        s = connect(rport, timeout=10)
        try:
            got = recv_until_eof(s, timeout=15)
        finally:
            s.close()
        assert got == want, "got %d bytes, want %d" % (len(got), len(want))


def test_local_target_refused(world):
    """A refused local connect closes the remote client's connection within
    1 s; the tunnel stays up and a sibling tunnel keeps serving."""
    refusing = world.app(apps.RefusingPort())
    echo = world.app(apps.EchoServer(greeting=b"alive\n"))
    r_dead, r_alive = alloc_port(), alloc_port()
    d, cfg = start_daemon(world, [
        {"name": "dead", "server": "s1", "remote": r_dead,
         "local": refusing.local},
        {"name": "alive", "server": "s1", "remote": r_alive,
         "local": echo.local},
    ])
    d.wait_all_up(10)
    for attempt in range(3):
        s = connect(r_dead, timeout=5)
        t0 = time.monotonic()
        try:
            s.settimeout(1.0)
            try:
                data = s.recv(1024)
            except ConnectionResetError:
                data = b""
            except socket.timeout:
                raise AssertionError("attempt %d: connection to a refused "
                                     "target still open after 1 s" % attempt)
        finally:
            s.close()
        took = time.monotonic() - t0
        assert data == b"", "attempt %d: got data %r" % (attempt, data)
        assert took < 1.0, "attempt %d: closed after %.2fs" % (attempt, took)
        assert echo_ok(r_alive, prefix=b"alive\n")
    st = d.status()
    assert d.tunnel("dead", st)["state"] == "up", d.tunnel("dead", st)
    assert d.tunnel("alive", st)["state"] == "up"
    assert d.server("s1", st)["connects"] == 1
    assert is_refused(refusing.port)


def test_remote_port_zero(world):
    """remote: 0 -> the server allocates; status reports the port."""
    echo = world.app(apps.EchoServer(greeting=b"zero\n"))
    d, cfg = start_daemon(world, [{"name": "z", "server": "s1", "remote": 0,
                                   "local": echo.local}])
    t = d.wait_tunnel("z", "up", 10)
    m = re.fullmatch(r"127\.0\.0\.1:(\d+)", t["remote"])
    assert m, "status remote %r is not 127.0.0.1:<port>" % t["remote"]
    port = int(m.group(1))
    assert 0 < port < 65536
    assert echo_ok(port, prefix=b"zero\n")


def test_ipv6_remote_and_unix_local(world):
    """remote "[::1]:PORT" is bound on ::1 (only), and a unix: local target
    is bridged."""
    tcp_echo = world.app(apps.EchoServer(greeting=b"v6\n"))
    sock_path = world.dir / "app.sock"
    world.app(apps.EchoServer(greeting=b"unix\n", unix_path=sock_path))
    p6, pu = alloc_port("::1"), alloc_port()
    d, cfg = start_daemon(world, [
        {"name": "v6", "server": "s1", "remote": "[::1]:%d" % p6,
         "local": tcp_echo.local},
        {"name": "ux", "server": "s1", "remote": pu,
         "local": "unix:%s" % sock_path},
    ])
    st = d.wait_all_up(10)
    assert d.tunnel("v6", st)["remote"] == "[::1]:%d" % p6
    assert d.tunnel("ux", st)["local"] == "unix:%s" % sock_path
    assert d.tunnel("ux", st)["remote"] == "127.0.0.1:%d" % pu

    assert echo_ok(p6, host="::1", prefix=b"v6\n")
    assert is_refused(p6, "127.0.0.1"), \
        "the [::1] forward is also bound on 127.0.0.1: wrong bind address"
    assert echo_ok(pu, prefix=b"unix\n")
    big = os.urandom(MiB)
    assert echo_roundtrip(pu, big, prefix=b"unix\n", timeout=20) == \
        b"unix\n" + big
