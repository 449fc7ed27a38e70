"""
`tunnels status` from a user the control socket does not admit says so
(issue 12): the daemon is running, the socket is 0600, and the answer is
not "no daemon answers" but who may ask and how.
"""

import os
import shutil
import subprocess

import apps
from harness import alloc_port, tunnels_bin


def test_status_without_permission_says_so(world):
    sshd = world.sshd("sshd1")
    echo = world.app(apps.EchoServer())
    cfg, control = world.write_config({"s1": world.server_cfg(sshd)}, [
        {"name": "t1", "server": "s1", "remote": alloc_port(),
         "local": echo.local}])
    d = world.daemon(cfg)
    d.wait_all_up(10)
    # Let another user reach the socket's directory and read the config,
    # so that only the socket's own mode stands in the way.
    os.chmod(world.dir, 0o711)
    shared = world.dir / "shared"
    shared.mkdir(mode=0o755)
    shutil.copy(cfg, shared / "tunnels.yaml")
    os.chmod(shared / "tunnels.yaml", 0o644)
    r = subprocess.run(["runuser", "-u", "nobody", "--", tunnels_bin(),
                        "status", "-c", str(shared / "tunnels.yaml")],
                       capture_output=True, text=True, timeout=20,
                       env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                            "ASAN_OPTIONS": "detect_leaks=0"})
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert "open to its own user only" in r.stderr, r.stderr
    assert "no tunnels daemon answers" not in r.stderr, r.stderr
    assert str(control) in r.stderr
