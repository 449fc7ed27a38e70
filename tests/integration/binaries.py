"""
The programs the tests run: the daemon under test, the release build,
OpenSSH's tools, and the environment the daemon runs with.

Part of the integration harness (harness.py re-exports it).
"""

import os
from pathlib import Path


SSHD = "/usr/sbin/sshd"
SSH = "/usr/bin/ssh"
SSH_KEYGEN = "/usr/bin/ssh-keygen"
PYTHON = "/usr/bin/python3"
REPO = Path(__file__).resolve().parents[2]

DAEMON_ENV = {
    "ASAN_OPTIONS": "abort_on_error=0:detect_leaks=1",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
}


def tunnels_bin():
    """Path of the daemon under test (TUNNELS_BIN, default build/tunnels)."""
    return os.environ.get("TUNNELS_BIN") or str(REPO / "build" / "tunnels")


def release_bin():
    """The release build (build/tunnels, built by `make` and by the
    integration target): for measurements ASan would distort (RSS, CPU)."""
    b = str(REPO / "build" / "tunnels")
    assert os.access(b, os.X_OK), "release build %s missing (run make)" % b
    return b
