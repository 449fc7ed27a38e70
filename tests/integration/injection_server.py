#!/usr/bin/python3
"""
A hostile SSH server for test_injection.py (AsyncSSH): it authenticates
the keys of one authorized_keys file and then puts its own text where the
daemon logs or shows what a server says.

  --disconnect-file F  on the first tcpip-forward request, disconnect with
                       the text of F (UTF-8) as the reason
  --exec-file F        answer every exec request with the bytes of F on
                       stdout, exit status 0
  --bound-port N       for a tcpip-forward request of port 0, bind a real
                       port but report N as the one allocated

Without options it forwards like asyncssh_server.py. Run with
/usr/bin/python3 (Debian's python3-asyncssh).
"""

import asyncio
import logging
import signal

import asyncssh

from script_server import arg_parser, log_to, run, write_pidfile

log = logging.getLogger("injection_server")
ARGS = None


class LyingListener(asyncssh.SSHListener):
    """A real listener that reports another port than its own."""

    def __init__(self, real, port):
        super().__init__()
        self.real = real
        self.port = port

    def get_port(self):
        return self.port

    def close(self):
        self.real.close()

    async def wait_closed(self):
        await self.real.wait_closed()


class Server(asyncssh.SSHServer):
    def connection_made(self, conn):
        self.conn = conn

    def begin_auth(self, username):
        return True

    def password_auth_supported(self):
        return False

    def server_requested(self, listen_host, listen_port):
        if ARGS.disconnect_file:
            with open(ARGS.disconnect_file, encoding="utf-8") as f:
                text = f.read()
            log.info("disconnecting with %d characters", len(text))
            self.conn.disconnect(asyncssh.DISC_BY_APPLICATION, text)
            return False
        if ARGS.bound_port is not None and listen_port == 0:
            return self._lie(listen_host)
        return True

    async def _lie(self, listen_host):
        real = await self.conn.forward_local_port(listen_host, 0,
                                                  listen_host, 0)
        log.info("bound port %d, reporting %d", real.get_port(),
                 ARGS.bound_port)
        return LyingListener(real, ARGS.bound_port)


async def run_exec(process):
    """Every exec request: the prepared bytes, exit status 0."""
    data = b""
    if ARGS.exec_file:
        with open(ARGS.exec_file, "rb") as f:
            data = f.read()
    log.info("exec %r: answering %d bytes", process.command, len(data))
    process.stdout.write(data)
    process.exit(0)


async def main():
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, lambda: stop.done() or
                            stop.set_result(None))
    server = await asyncssh.create_server(
        Server, "127.0.0.1", ARGS.port, server_host_keys=[ARGS.host_key],
        authorized_client_keys=ARGS.authorized_keys, encoding=None,
        process_factory=run_exec, agent_forwarding=False,
        x11_forwarding=False, allow_scp=False, reuse_address=True)
    write_pidfile(ARGS.pidfile)
    log.info("listening on 127.0.0.1:%d", ARGS.port)
    await stop
    server.close()
    await server.wait_closed()


if __name__ == "__main__":
    p = arg_parser()
    p.add_argument("--disconnect-file")
    p.add_argument("--exec-file")
    p.add_argument("--bound-port", type=int)
    ARGS = p.parse_args()
    log_to(ARGS.log)
    run(main(), log)
