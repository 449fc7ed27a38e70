"""
The liveness probe writes nothing to a default OpenSSH server's log
(issue: a quiet probe). A forward-only account often has MaxSessions 0,
and a probe that opened "session" channels cost one "no more sessions"
line per keepalive: about 8,600 a day per idle link. The probe now asks
for a channel of a type no server knows, which sshd refuses without a
word. sshd runs at its default LogLevel (INFO) here; Dropbear and
AsyncSSH get the same check in test_servers.py.
"""

import harness
from faults import KEEPALIVE_S, report, server_cfg, wait_serving
from harness import observe, wait_until


class InfoSshd(harness.Sshd):
    """sshd as a production server logs (LogLevel INFO, not the harness's
    DEBUG1), with MaxSessions 0 as forward-only accounts often have."""

    def _write_config(self):
        super()._write_config()
        text = self.config.read_text().replace("LogLevel DEBUG1\n",
                                               "LogLevel INFO\n")
        self.config.write_text(text + "MaxSessions 0\n")


def test_idle_link_adds_no_server_log_lines(world):
    sshd = InfoSshd(world, "quiet", [world.user_key])
    world.on_cleanup(sshd.stop)
    sshd.start()
    up = world.bring_up(server_cfg(world, sshd), wait=None)
    d, rport = up.daemon, up.remote
    wait_serving(d, rport, 10)
    # MaxSessions 0 refuses the reclaim's exec channel (logged once, at
    # connect); the window starts after it.
    wait_until(lambda: d.server("s1").get("exec") == "denied", 10,
               "the exec channel to be refused")
    offset = len(sshd.log_text())
    window = 8 * KEEPALIVE_S

    def check():
        srv = d.server("s1")
        # sshd sends nothing on its own (no ClientAlive here): the link
        # stays up only because every probe is answered.
        assert srv["state"] == "up" and srv["connects"] == 1, srv
    observe(window, check, interval=0.5)
    lines = sshd.log_text()[offset:].splitlines()
    report("openssh_probe_log", window_s=window, new_lines=len(lines))
    assert not lines, "sshd logged this while the link was idle:\n" + \
        "\n".join(lines[:20])
    assert "the link is dead" not in d.log_text()
