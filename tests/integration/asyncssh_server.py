#!/usr/bin/python3
"""
A small AsyncSSH server for the integration tests: one process serves
every connection (that is the point: the daemon's stale-session reclaim
must never end a process shared by several sessions).

It accepts the keys of one authorized_keys file for any user name, allows
reverse forwarding (server_requested: AsyncSSH binds the port and forwards
each connection back as a forwarded-tcpip channel), and runs every exec
request with `/bin/sh -c CMD`, so the daemon's reclaim commands run (their
$PPID is this process). No shell, no PTY.

Signals: SIGTERM ends the server and every connection; SIGUSR1 aborts
every connection (the listener stays), like killing sshd's sessions.

Run with /usr/bin/python3 (Debian's python3-asyncssh).
"""

import asyncio
import ctypes
import logging
import signal

import asyncssh

from script_server import arg_parser, log_to, run, write_pidfile

CONNS = set()
log = logging.getLogger("asyncssh_server")


class Server(asyncssh.SSHServer):
    def connection_made(self, conn):
        self.conn = conn
        CONNS.add(conn)

    def connection_lost(self, exc):
        CONNS.discard(self.conn)

    def begin_auth(self, username):
        return True             # authentication required (keys below)

    def password_auth_supported(self):
        return False

    def server_requested(self, listen_host, listen_port):
        return True             # AsyncSSH listens and forwards back


async def run_exec(process):
    """An exec request: /bin/sh -c CMD, output back, its exit status."""
    cmd = process.command
    if cmd is None:
        process.stderr.write(b"no shell here\n")
        process.exit(1)
        return
    proc = await asyncio.create_subprocess_exec(
        "/bin/sh", "-c", cmd, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    process.stdout.write(out)
    process.stderr.write(err)
    process.exit(proc.returncode if proc.returncode >= 0 else 255)


def set_comm(name):
    """prctl(PR_SET_NAME): what /proc/PID/comm shows for this process."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(15, name.encode()[:15], 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NAME)")


def abort_all():
    n = len(CONNS)
    for c in list(CONNS):
        c.abort()
    log.info("aborted %d connection(s)", n)


async def main(args):
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, lambda: stop.done() or
                            stop.set_result(None))
    loop.add_signal_handler(signal.SIGUSR1, abort_all)
    opts = {}
    if args.keepalive:
        opts["keepalive_interval"] = args.keepalive
        opts["keepalive_count_max"] = args.keepalive_count
    server = await asyncssh.create_server(
        Server, "127.0.0.1", args.port, server_host_keys=[args.host_key],
        authorized_client_keys=args.authorized_keys, encoding=None,
        process_factory=run_exec, agent_forwarding=False,
        x11_forwarding=False, allow_scp=False, reuse_address=True, **opts)
    write_pidfile(args.pidfile)
    log.info("listening on 127.0.0.1:%d", args.port)
    await stop
    server.close()
    abort_all()
    await server.wait_closed()
    log.info("stopped")


if __name__ == "__main__":
    p = arg_parser()
    p.add_argument("--keepalive", type=float, default=0,
                   help="server keepalive interval in seconds (0: none)")
    p.add_argument("--keepalive-count", type=int, default=3)
    p.add_argument("--comm", help="process name (/proc/PID/comm)")
    p.add_argument("--debug", type=int, default=0,
                   help="AsyncSSH debug level 1-3 (0: INFO only)")
    a = p.parse_args()
    log_to(a.log, logging.DEBUG if a.debug else logging.INFO)
    if a.debug:
        asyncssh.set_debug_level(a.debug)
    if a.comm:
        set_comm(a.comm)
    run(main(a), log)
