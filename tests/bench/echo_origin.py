"""
A single-threaded epoll echo server for the benchmark's connection tests:
thousands of concurrent connections in one process (the threaded
apps.EchoServer would need a thread per connection). Echoes everything;
on EOF it finishes sending, then closes.

Run: python3 echo_origin.py [HOST]  -- prints the bound port on stdout.
"""

import selectors
import socket
import sys

READ_MAX = 1 << 16
BUFFER_MAX = 1 << 20       # stop reading a connection above this backlog


class Conn:
    """One client connection: its socket, unsent bytes, EOF seen."""

    __slots__ = ("sock", "out", "eof")

    def __init__(self, sock):
        self.sock = sock
        self.out = bytearray()
        self.eof = False


def interest(c):
    """The selector events a connection needs now."""
    ev = 0
    if not c.eof and len(c.out) < BUFFER_MAX:
        ev |= selectors.EVENT_READ
    if c.out:
        ev |= selectors.EVENT_WRITE
    return ev


def pump(sel, c, mask):
    """Read and/or write one connection; returns False once it is done."""
    try:
        if mask & selectors.EVENT_READ:
            data = c.sock.recv(READ_MAX)
            if data:
                c.out += data
            else:
                c.eof = True
        if c.out:
            n = c.sock.send(c.out)
            del c.out[:n]
    except BlockingIOError:
        pass
    except OSError:
        return False
    if c.eof and not c.out:
        return False
    sel.modify(c.sock, interest(c), c)
    return True


def serve(host="127.0.0.1"):
    """Listen on host:0, print the port, echo until killed."""
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, 0))
    ls.listen(4096)
    ls.setblocking(False)
    sel = selectors.EpollSelector()
    sel.register(ls, selectors.EVENT_READ, None)
    print(ls.getsockname()[1], flush=True)
    while True:
        for key, mask in sel.select():
            if key.data is None:
                while True:
                    try:
                        s, _ = ls.accept()
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError:      # EMFILE and the like: retry later
                        break
                    s.setblocking(False)
                    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    c = Conn(s)
                    sel.register(s, selectors.EVENT_READ, c)
                continue
            c = key.data
            if not pump(sel, c, mask):
                sel.unregister(c.sock)
                c.sock.close()


if __name__ == "__main__":
    try:
        serve(*sys.argv[1:2])
    except KeyboardInterrupt:
        pass
