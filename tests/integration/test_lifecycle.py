"""
Process lifecycle (DESIGN §2, §5.6): SIGTERM/SIGINT end the daemon with
exit 0 within 2 s and the server releases the forwarded port; a killed sshd
session is reconnected and the tunnel serves again.
"""

import signal
import socket

import pytest

from harness import (connect, echo_ok, is_refused, recv_exact, run_cli,
                     wait_until)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT],
                         ids=["SIGTERM", "SIGINT"])
def test_signal_exits_zero_and_releases_port(bring_up, sig):
    up = bring_up()
    d, cfg, rport = up.daemon, up.config, up.remote
    # An open, bridged connection at the time of the signal.
    s = connect(rport)
    s.sendall(b"before\n")
    assert recv_exact(s, 7) == b"before\n"

    rc, took = d.stop(timeout=2.0, expect=0, sig=sig)
    assert took < 2.0, "exit took %.2fs" % took

    # The bridged connection ends, and the remote listener is gone.
    s.settimeout(3.0)
    try:
        data = s.recv(100)
    except ConnectionResetError:
        data = b""
    except socket.timeout:
        data = None
    finally:
        s.close()
    assert data == b"", "bridged connection still open after exit: %r" % data
    wait_until(lambda: is_refused(rport), 3,
               "remote port %d to be released after exit" % rport)

    r = run_cli("status", "-c", cfg)
    assert r.returncode == 1, "status with no daemon: rc %d\n%s%s" % (
        r.returncode, r.stdout, r.stderr)


def test_session_killed_reconnects(bring_up):
    up = bring_up()
    sshd, d, cfg, rport = up.sshd, up.daemon, up.config, up.remote
    assert echo_ok(rport)
    assert d.server("s1")["connects"] == 1

    killed = sshd.kill_sessions()
    assert killed, "no sshd session process to kill"

    st = d.wait_status(lambda st: d.server("s1", st)["connects"] >= 2 and
                       d.server("s1", st)["state"] == "up" and
                       d.tunnel("t1", st)["state"] == "up", 10,
                       "a new session with the tunnel up again")
    assert st["pid"] == d.pid
    assert echo_ok(rport), "tunnel reported up but does not serve"
    assert not set(killed) & set(sshd.session_pids())
    r = run_cli("status", "-c", cfg)
    assert r.returncode == 0, r.stdout + r.stderr
