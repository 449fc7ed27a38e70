"""
Integration test harness for `tunnels`: a private world per test (temp dir,
generated keys, real /usr/sbin/sshd on allocated ports, the daemon under
test, local apps) and the helpers that wait on state instead of time.

This module only gathers the parts, one job each, so tests can keep
`from harness import ...`:

  binaries  the daemon under test, the release build, OpenSSH's tools
  waits     wait_until, observe, assert_quiet, the timing multiplier SLOW
  netio     ports, connects, exact reads, echo round trips
  procs     /proc children, liveness, stopping, log tails, sanitizer lines
  keys      ssh-keygen key pairs
  sshserver what the test SSH servers share (start, ready, stop, logs)
  openssh   one real sshd per test
  yamlcfg   the daemon's config as YAML
  daemon    the running daemon (status, waits, reload, stop) and run_cli
  world     the per-test world and bring_up()

Standard library only. Run with /usr/bin/python3 -m pytest.
"""

from binaries import (DAEMON_ENV, REPO, SSH, SSH_KEYGEN, SSHD,
                      release_bin, tunnels_bin)
from daemon import Daemon, run_cli
from keys import Key
from netio import (alloc_port, connect, connect_unix, echo_ok,
                   echo_roundtrip, is_listening, is_refused, recv_exact,
                   recv_until_eof)
from openssh import Sshd
from procs import (SANITIZER_PATTERNS, children, descendants,
                   kill_pids, log_tail, pid_alive, proc_cmdline,
                   sanitizer_lines, stop_popen)
from waits import (SLOW, WaitTimeout, assert_quiet, observe,
                   scaled, wait_until)
from world import Up, World
from yamlcfg import to_yaml, yaml_scalar

__all__ = [
    "DAEMON_ENV", "REPO", "SSH", "SSH_KEYGEN", "SSHD", "release_bin",
    "tunnels_bin", "Daemon", "run_cli", "Key", "alloc_port", "connect",
    "connect_unix", "echo_ok", "echo_roundtrip", "is_listening", "is_refused",
    "recv_exact", "recv_until_eof", "Sshd", "SANITIZER_PATTERNS", "children",
    "descendants", "kill_pids", "log_tail", "pid_alive", "proc_cmdline",
    "sanitizer_lines", "stop_popen", "SLOW", "WaitTimeout", "assert_quiet",
    "observe", "scaled", "wait_until", "Up", "World", "to_yaml", "yaml_scalar",
]
