"""
`tunnels status` from a user the control socket does not admit says so
(issue 12): the daemon is running, the socket is 0600, and the answer is
not "no daemon answers" but who may ask and how.
"""

import os
import shutil
import subprocess

from harness import tunnels_bin


def test_status_without_permission_says_so(world, bring_up):
    up = bring_up()
    cfg, control = up.config, up.daemon.control
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
