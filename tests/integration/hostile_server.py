#!/usr/bin/python3
"""
A hostile SSH server for test_hostile.py: AsyncSSH, scripted to misbehave
on command. It authenticates like asyncssh_server.py (the keys of one
authorized_keys file, any user name) and grants tcpip-forward requests
(AsyncSSH then listens on the port and forwards real connections back as
forwarded-tcpip channels), except for ports it is told to ignore: those
requests are never answered at all.

Misbehaviour is ordered over a control socket (a Unix stream socket; one
command line in, one reply line out, "ok ..." or "error ..."), and applies
to every connection open at that moment:

  ignore PORT / answer PORT
      Never answer tcpip-forward requests for PORT from now on / answer
      them again (requests already left unanswered stay so).
  unknown SIZE
      Send packets of message type 200 (unknown to every SSH library),
      SIZE bytes of payload each, as fast as the socket takes them, until
      the connection ends. Replies at once.
  tiny PORT N
      Open N forwarded-tcpip channels for PORT (as if clients connected to
      the listener) and push data into each: 32 KiB packets while the
      client keeps reading, then, once the client stops replenishing the
      window (its local app stopped reading), the rest of the window one
      byte per packet. Replies when the channels are open.
  open PORT N
      Open N forwarded-tcpip channels for PORT at once, send nothing;
      replies "ok confirmed C failed F" once every open was answered.
  count
      "ok open O closed_by_peer K": channels of ours still open, and how
      many of them the client closed (not we).
  closeall
      Close every channel we opened.
  rekey N
      Run N key exchanges, one after another (each waits for the last);
      replies "ok rekeys K".
  conns
      "ok N": connections open now.

Options that hold for every connection from its start: --ignore-forward
PORT (as "ignore"), --mute-open TYPE (channel opens of that type, e.g.
"session", are never answered), --mute-exec (session channels open, but
exec requests are never answered), --chatter-ms N (an IGNORE packet every
N ms, so the link never falls silent while requests go unanswered).

Run with /usr/bin/python3 (Debian's python3-asyncssh).
"""

import argparse
import asyncio
import logging
import os
import signal
import time
import warnings

with warnings.catch_warnings():
    # asyncssh imports ciphers that cryptography deprecates.
    warnings.simplefilter("ignore")
    import asyncssh
    from asyncssh.packet import String

from script_server import arg_parser, log_to, run, write_pidfile

MSG_IGNORE = 2
MSG_CHANNEL_OPEN = 90
MSG_CHANNEL_DATA = 94
MSG_UNKNOWN = 200
BIG = 32768
WRITE_HIGH = 1 << 20         # pause while this much waits in the socket

CONNS = set()
IGNORED = set()
CHANNELS = []                # [SSHTCPChannel, closed_by_peer]
MUTED_OPENS = set()          # channel types never answered
OPTS = argparse.Namespace(mute_exec=False, chatter_ms=0)
log = logging.getLogger("hostile_server")


def override(obj, pkttype, fn):
    """Route one packet type of this connection or channel to fn(orig,
    obj, pkttype, pktid, packet), orig being AsyncSSH's own handler."""
    handlers = dict(obj._packet_handlers)
    orig = handlers[pkttype]
    handlers[pkttype] = lambda o, t, i, p: fn(orig, o, t, i, p)
    obj._packet_handlers = handlers


def muted_open(orig, conn, pkttype, pktid, packet):
    start = packet._idx
    chantype = packet.get_string()
    packet._idx = start
    if chantype.decode(errors="replace") in MUTED_OPENS:
        log.info("channel open of type %r: never answering", chantype)
        return
    orig(conn, pkttype, pktid, packet)


def muted_exec(chan, packet):
    """AsyncSSH's exec handler, replaced: no answer (None) ever goes out,
    and the channel's later requests queue up behind this one."""
    log.info("exec request: never answering")
    return None


class ExecSession(asyncssh.SSHServerSession):
    """A session channel (its exec requests go unanswered)."""


async def chatter(conn, ms):
    try:
        while writable(conn):
            conn.send_packet(MSG_IGNORE, String(b""))
            await asyncio.sleep(ms / 1000)
    except Exception as e:
        log.info("chatter ended: %r", e)


class Quiet(asyncssh.SSHTCPSession):
    """A forwarded-tcpip channel of ours: records that the peer closed it."""

    def __init__(self):
        self.rec = None

    def connection_lost(self, exc):
        if self.rec is not None and not self.rec[2]:
            self.rec[1] = True


class Server(asyncssh.SSHServer):
    def connection_made(self, conn):
        self.conn = conn
        CONNS.add(conn)
        if MUTED_OPENS:
            override(conn, MSG_CHANNEL_OPEN, muted_open)

    def connection_lost(self, exc):
        CONNS.discard(self.conn)

    def begin_auth(self, username):
        return True             # authentication required (keys below)

    def password_auth_supported(self):
        return False

    def auth_completed(self):
        if OPTS.chatter_ms:
            self.conn.create_task(chatter(self.conn, OPTS.chatter_ms))

    def session_requested(self):
        return ExecSession() if OPTS.mute_exec else False

    def server_requested(self, listen_host, listen_port):
        if listen_port in IGNORED:
            log.info("tcpip-forward for %s:%d: never answering",
                     listen_host, listen_port)
            return asyncio.get_running_loop().create_future()
        return True             # AsyncSSH listens and forwards back


def writable(conn):
    """False once the connection is gone; waits while its socket is full."""
    t = conn._transport
    return t is not None and not t.is_closing()


async def drain(conn):
    t = conn._transport
    while t is not None and not t.is_closing() and \
            t.get_write_buffer_size() > WRITE_HIGH:
        await asyncio.sleep(0.002)


async def flood_unknown(conn, size):
    payload = os.urandom(size)
    n = 0
    try:
        while writable(conn):
            for _ in range(32):
                conn.send_packet(MSG_UNKNOWN, payload)
            n += 32
            await drain(conn)
            await asyncio.sleep(0)
    except Exception as e:       # the connection went away mid-send
        log.info("unknown flood ended: %r", e)
    log.info("unknown flood: %d packets of %d bytes sent", n, size)


async def open_channels(conn, port, n):
    """Open n forwarded-tcpip channels for port; (channels, failures)."""
    async def one(i):
        s = Quiet()
        chan, _ = await conn.create_connection(
            lambda: s, "127.0.0.1", port, "127.0.0.1", 30000 + i % 30000)
        rec = [chan, False, False]      # channel, closed by peer, by us
        s.rec = rec
        CHANNELS.append(rec)
        return chan
    res = await asyncio.gather(*(one(i) for i in range(n)),
                               return_exceptions=True)
    ok = [r for r in res if not isinstance(r, BaseException)]
    bad = [r for r in res if isinstance(r, BaseException)]
    for e in bad[:3]:
        log.info("channel open failed: %r", e)
    return ok, len(bad)


async def trickle(conn, chan):
    """Big packets while the window is replenished, then one byte each."""
    sent_big = sent_tiny = 0
    tiny = False
    try:
        while writable(conn) and chan._send_chan is not None:
            w = chan._send_window
            if not tiny:
                if w > 1 << 20:
                    chan.send_packet(MSG_CHANNEL_DATA, String(b"B" * BIG))
                    chan._send_window -= BIG
                    sent_big += BIG
                    await drain(conn)
                    await asyncio.sleep(0)
                    continue
                # Below 1 MiB left: a reading client tops it up soon.
                t0 = time.monotonic()
                while chan._send_window <= 1 << 20 and \
                        time.monotonic() - t0 < 1.0:
                    await asyncio.sleep(0.02)
                if chan._send_window <= 1 << 20:
                    tiny = True
                    log.info("client stopped reading after %d bytes: %d "
                             "bytes of window left, one per packet",
                             sent_big, chan._send_window)
                continue
            if w <= 0:
                await asyncio.sleep(0.05)
                continue
            for _ in range(min(w, 64)):
                chan.send_packet(MSG_CHANNEL_DATA, String(b"t"))
            chan._send_window -= min(w, 64)
            sent_tiny += min(w, 64)
            await drain(conn)
            await asyncio.sleep(0)
    except Exception as e:
        log.info("trickle ended: %r", e)
    log.info("trickle: %d bytes in big packets, %d in 1-byte packets",
             sent_big, sent_tiny)


async def rekey(conn, n):
    done = 0
    for _ in range(n):
        t0 = time.monotonic()
        while not conn._kex_complete and time.monotonic() - t0 < 10:
            await asyncio.sleep(0.005)
        if not writable(conn) or not conn._kex_complete:
            break
        conn._send_kexinit()
        conn._kexinit_sent = True
        t0 = time.monotonic()
        while not conn._kex_complete and time.monotonic() - t0 < 10:
            await asyncio.sleep(0.005)
        if not conn._kex_complete:
            break
        done += 1
    return done


async def command(line):
    w = line.split()
    if not w:
        return "error empty command"
    cmd, args = w[0], [int(a) for a in w[1:]]
    conns = list(CONNS)
    if cmd == "ignore":
        IGNORED.add(args[0])
        return "ok"
    if cmd == "answer":
        IGNORED.discard(args[0])
        return "ok"
    if cmd == "conns":
        return "ok %d" % len(conns)
    if cmd == "unknown":
        for c in conns:
            c.create_task(flood_unknown(c, args[0]))
        return "ok %d" % len(conns)
    if cmd == "open":
        ok = bad = 0
        for c in conns:
            chans, failed = await open_channels(c, args[0], args[1])
            ok += len(chans)
            bad += failed
        return "ok confirmed %d failed %d" % (ok, bad)
    if cmd == "tiny":
        ok = 0
        for c in conns:
            chans, _ = await open_channels(c, args[0], args[1])
            for ch in chans:
                c.create_task(trickle(c, ch))
            ok += len(chans)
        return "ok %d" % ok
    if cmd == "count":
        return "ok open %d closed_by_peer %d" % (
            sum(1 for r in CHANNELS if not r[1] and not r[2]),
            sum(1 for r in CHANNELS if r[1]))
    if cmd == "closeall":
        for r in CHANNELS:
            if not r[1] and not r[2]:
                r[2] = True
                r[0].close()
        return "ok"
    if cmd == "rekey":
        done = 0
        for c in conns:
            done += await rekey(c, args[0])
        return "ok rekeys %d" % done
    return "error unknown command %r" % cmd


async def control_client(reader, writer):
    try:
        while True:
            line = await reader.readline()
            if not line:
                break
            try:
                reply = await command(line.decode().strip())
            except Exception as e:
                log.exception("command %r", line)
                reply = "error %r" % e
            log.info("command %r: %s", line.decode().strip(), reply)
            writer.write((reply + "\n").encode())
            await writer.drain()
    finally:
        writer.close()


async def main(args):
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, lambda: stop.done() or
                            stop.set_result(None))
    IGNORED.update(args.ignore_forward)
    MUTED_OPENS.update(args.mute_open)
    OPTS.mute_exec = args.mute_exec
    if args.mute_exec:
        asyncssh.channel.SSHServerChannel._process_exec_request = muted_exec
    OPTS.chatter_ms = args.chatter_ms
    server = await asyncssh.create_server(
        Server, "127.0.0.1", args.port, server_host_keys=[args.host_key],
        authorized_client_keys=args.authorized_keys, encoding=None,
        agent_forwarding=False, x11_forwarding=False, allow_scp=False,
        reuse_address=True)
    try:
        os.unlink(args.control)
    except FileNotFoundError:
        pass
    ctl = await asyncio.start_unix_server(control_client, args.control)
    write_pidfile(args.pidfile)
    log.info("listening on 127.0.0.1:%d, control %s", args.port,
             args.control)
    await stop
    ctl.close()
    server.close()
    for c in list(CONNS):
        c.abort()
    log.info("stopped")


if __name__ == "__main__":
    p = arg_parser()
    p.add_argument("--control", required=True)
    p.add_argument("--ignore-forward", type=int, action="append", default=[],
                   help="never answer tcpip-forward for this port")
    p.add_argument("--mute-open", action="append", default=[],
                   help="never answer channel opens of this type")
    p.add_argument("--mute-exec", action="store_true",
                   help="never answer exec requests")
    p.add_argument("--chatter-ms", type=int, default=0,
                   help="send an IGNORE packet this often")
    a = p.parse_args()
    log_to(a.log)
    logging.getLogger("asyncssh").setLevel(logging.WARNING)
    run(main(a), log)
