"""
The home-side apps of the WAN section, in their own process (their CPU
stays out of the measuring client's interpreter):

  bulk   on accept sends b"R" (the path is open end to end), then reads
         one command byte: b"U" reads to EOF and answers the byte count
         (8 bytes, big-endian) then closes; b"D" + 8-byte count sends that
         many bytes then closes.
  stall  accepts and holds every connection, never reads (the memory
         test's app that stopped reading).

Run: python3 wan_apps.py  -- prints "BULK_PORT STALL_PORT" on stdout.
"""

import socket
import struct
import sys
import threading

BUF = 1 << 20


def recv_exact(s, n):
    """n bytes from s, or fewer at EOF."""
    out = b""
    while len(out) < n:
        d = s.recv(n - len(out))
        if not d:
            break
        out += d
    return out


def drain(s):
    """Read s to EOF; the byte count."""
    buf = bytearray(BUF)
    total = 0
    while True:
        n = s.recv_into(buf)
        if n == 0:
            return total
        total += n


def bulk_conn(s):
    """Serve one bulk connection (see the module doc)."""
    with s:
        s.sendall(b"R")
        cmd = recv_exact(s, 1)
        if cmd == b"U":
            s.sendall(struct.pack(">Q", drain(s)))
        elif cmd == b"D":
            (left,) = struct.unpack(">Q", recv_exact(s, 8))
            chunk = b"\0" * BUF
            while left > 0:
                n = min(left, BUF)
                s.sendall(chunk[:n] if n < BUF else chunk)
                left -= n


def listener():
    """A loopback listening socket on a fresh port."""
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(128)
    return ls


def serve_bulk(ls):
    """Accept loop: a thread per bulk connection."""
    while True:
        s, _ = ls.accept()
        threading.Thread(target=bulk_conn, args=(s,), daemon=True).start()


def serve_stall(ls):
    """Accept loop: hold every connection, read nothing; a connection is
    closed only when this process ends."""
    held = []
    while True:
        s, _ = ls.accept()
        held.append(s)


def main():
    """Start both apps and print their ports."""
    bulk, stall = listener(), listener()
    threading.Thread(target=serve_stall, args=(stall,), daemon=True).start()
    print("%d %d" % (bulk.getsockname()[1], stall.getsockname()[1]),
          flush=True)
    serve_bulk(bulk)


if __name__ == "__main__":
    sys.exit(main())
