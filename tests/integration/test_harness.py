"""
Harness self-tests, independent of the daemon: the real OpenSSH client
against our sshd fixture proves that sshd, keys, known_hosts, the session
killer and the local apps are right. Cheap; catches environment breakage.
"""

import hashlib
import os
import socket
import subprocess
import time

import pytest

import apps
from harness import (SSH, WaitTimeout, alloc_port, connect, connect_unix,
                     echo_ok, echo_roundtrip, is_refused, recv_exact,
                     recv_until_eof, wait_until)


def ssh_cmd(world, sshd, *args, known_hosts=None, name="ssh", command=()):
    kh = known_hosts or world.known_hosts(sshd, name="known_hosts_ssh")
    log = world.dir / ("%s.log" % name)
    world.add_log("%s client log" % name, log, 40)
    return [SSH, "-F", "/dev/null", "-E", str(log), "-v",
            "-i", world.user_key.path, "-o", "IdentitiesOnly=yes",
            "-o", "BatchMode=yes", "-o", "UserKnownHostsFile=%s" % kh,
            "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "StrictHostKeyChecking=yes",
            "-o", "ExitOnForwardFailure=yes",
            "-p", str(sshd.port)] + list(args) + \
        ["%s@127.0.0.1" % world.user] + list(command)


def start_ssh(world, cmd):
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop():
        if p.poll() is None:
            p.terminate()
            p.wait(5)
    world.on_cleanup(stop)
    return p


def test_openssh_remote_forward_through_fixture(world, sshd, echo):
    rport = alloc_port()
    p = start_ssh(world, ssh_cmd(world, sshd, "-N", "-R", "127.0.0.1:%d:%s" %
                                 (rport, echo.local)))
    wait_until(lambda: p.poll() is None and echo_ok(rport), 10,
               "ssh -R forward on %d serving" % rport)

    # A bigger payload both ways, byte-identical.
    data = os.urandom(1 << 20)
    assert echo_roundtrip(rport, data) == data

    # The session killer drops the connection: ssh exits, port released.
    killed = sshd.kill_sessions()
    assert killed, "no sshd session process found under the listener"
    wait_until(lambda: p.poll() is not None, 10, "ssh client to exit")
    wait_until(lambda: is_refused(rport), 5, "forwarded port %d released" %
               rport)
    assert sshd.running(), "killing sessions must leave the listener up"
    assert "Accepted publickey for %s" % world.user in sshd.log_text()


def test_openssh_ipv6_remote_and_unix_target(world, sshd):
    """sshd with GatewayPorts no binds a requested [::1] forward on ::1;
    remote forwards to a unix socket target work (our app)."""
    tcp_echo = world.app(apps.EchoServer(greeting=b"tcp\n"))
    unix_echo = world.app(apps.EchoServer(
        greeting=b"unix\n", unix_path=world.dir / "echo.sock"))
    p6 = alloc_port("::1")
    pu = alloc_port()
    p = start_ssh(world, ssh_cmd(
        world, sshd, "-N",
        "-R", "[::1]:%d:%s" % (p6, tcp_echo.local),
        "-R", "127.0.0.1:%d:%s" % (pu, unix_echo.unix_path)))
    wait_until(lambda: p.poll() is None and echo_ok(p6, "::1", b"tcp\n"), 10,
               "ssh -R [::1]:%d serving" % p6)
    wait_until(lambda: echo_ok(pu, prefix=b"unix\n"), 10,
               "ssh -R to unix socket serving")
    s = connect(p6, "::1")
    assert s.family == socket.AF_INET6
    s.close()


def test_sshd_restart_with_new_host_key(world, sshd):
    """Restart on the same port with a new host key: the old known_hosts
    no longer matches (what the changed-host-key daemon test relies on)."""
    kh = world.known_hosts(sshd, name="kh_old")
    old = sshd.host_key
    port = sshd.port
    r = subprocess.run(ssh_cmd(world, sshd, known_hosts=kh, name="ssh1",
                               command=["true"]),
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr

    sshd.restart(new_host_key=True)
    assert sshd.port == port
    assert sshd.host_key.fingerprint != old.fingerprint
    r = subprocess.run(ssh_cmd(world, sshd, known_hosts=kh, name="ssh2",
                               command=["true"]),
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 255
    log = (world.dir / "ssh2.log").read_text()
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in log, log[-2000:]
    assert sshd.host_key.fingerprint in log


def test_wrong_user_key_rejected_by_fixture(world):
    other = world.key("other_ed25519")
    sshd = world.sshd("sshd1", authorized=[other])
    r = subprocess.run(ssh_cmd(world, sshd, command=["true"]),
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 255
    assert "Permission denied (publickey)" in \
        (world.dir / "ssh.log").read_text()


def test_apps(world):
    # echo over TCP with a greeting, and over a unix socket
    e = world.app(apps.EchoServer(greeting=b"hi\n"))
    assert echo_roundtrip(e.port, b"abc", prefix=b"hi\n") == b"hi\nabc"
    u = world.app(apps.EchoServer(unix_path=world.dir / "u.sock"))
    s = connect_unix(u.unix_path)
    s.sendall(b"xyz")
    assert recv_exact(s, 3) == b"xyz"
    s.shutdown(socket.SHUT_WR)
    assert recv_until_eof(s) == b""
    s.close()

    # reply then close: all data, then EOF
    blob = os.urandom(3 << 20)
    r = world.app(apps.ReplyThenClose([blob, b"short"]))
    s = connect(r.port)
    assert recv_until_eof(s) == blob
    s.close()
    s = connect(r.port)
    assert recv_until_eof(s) == b"short"
    s.close()

    # read until EOF then reply (half-close from the client)
    h = world.app(apps.ReadThenReply(tail=b"bye\n"))
    data = os.urandom(300000)
    s = connect(h.port)
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    reply = recv_until_eof(s)
    s.close()
    assert reply == b"%d %s\nbye\n" % (len(data),
                                       hashlib.sha256(data).hexdigest()
                                       .encode())

    # bulk source: count and hash agree with what the app recorded
    src = world.app(apps.BulkSource(4 << 20))
    s = connect(src.port)
    hh = hashlib.sha256()
    n = recv_until_eof(s, hasher=hh)
    s.close()
    wait_until(lambda: src.sent, 5, "source to record its hash")
    assert src.sent[0] == (n, hh.hexdigest())

    # refusing port
    rp = world.app(apps.RefusingPort())
    assert is_refused(rp.port)


def test_sshd_ipv6_listener_and_extra_config(world):
    sshd = world.sshd("sshd1", listen_v6=True, extra=["MaxSessions 3"])
    for host in ("127.0.0.1", "::1"):
        s = connect(sshd.port, host)
        assert s.recv(64).startswith(b"SSH-2.0-"), host
        s.close()
    assert "MaxSessions 3" in sshd.config.read_text()


def test_sshd_on_a_busy_fixed_port_fails_clearly(world):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        with pytest.raises(AssertionError) as ei:
            world.sshd("sshd1", port=busy.getsockname()[1])
    finally:
        busy.close()
    assert "Address already in use" in str(ei.value)


def test_wait_until_names_what_it_waited_for():
    t0 = time.monotonic()
    with pytest.raises(WaitTimeout) as ei:
        wait_until(lambda: 0, 0.3, "the impossible")
    assert time.monotonic() - t0 < 2
    assert "the impossible" in str(ei.value)
    assert wait_until(lambda: 42, 1, "a value") == 42

