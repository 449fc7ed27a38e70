"""
Ports and sockets: free ports, connects, exact reads, echo round trips.

Part of the integration harness (harness.py re-exports it).
"""

import os
import socket
import time

from waits import scaled


def alloc_port(host="127.0.0.1"):
    """A free TCP port on host (bind :0, read, close)."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _family(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def connect(port, host="127.0.0.1", timeout=5.0):
    """A connected TCP client socket (blocking, with timeout)."""
    s = socket.socket(_family(host), socket.SOCK_STREAM)
    s.settimeout(scaled(timeout))
    try:
        s.connect((host, port))
    except BaseException:
        s.close()
        raise
    return s


def connect_unix(path, timeout=5.0):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(scaled(timeout))
    try:
        s.connect(path)
    except BaseException:
        s.close()
        raise
    return s


def _try_connect(port, host):
    """None if a TCP connect to host:port succeeds (closed at once), else
    the OSError it failed with."""
    try:
        s = connect(port, host, timeout=2.0)
    except OSError as e:
        return e
    s.close()
    return None


def is_refused(port, host="127.0.0.1"):
    """True if a TCP connect to host:port is refused (nothing listening);
    another failure (a timeout) is raised."""
    e = _try_connect(port, host)
    if e is not None and not isinstance(e, ConnectionRefusedError):
        raise e
    return e is not None


def is_listening(port, host="127.0.0.1"):
    """True if a TCP connect to host:port succeeds."""
    return _try_connect(port, host) is None


def recv_exact(sock, n, timeout=10.0):
    """Exactly n bytes, or AssertionError on EOF/timeout (with what came)."""
    deadline = time.monotonic() + scaled(timeout)
    buf = bytearray()
    while len(buf) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("timeout: got %d of %d bytes" % (len(buf), n))
        sock.settimeout(left)
        try:
            chunk = sock.recv(min(n - len(buf), 1 << 18))
        except socket.timeout:
            raise AssertionError("timeout: got %d of %d bytes" % (len(buf), n))
        if not chunk:
            raise AssertionError("EOF after %d of %d bytes: %r" %
                                 (len(buf), n, bytes(buf[:200])))
        buf += chunk
    return bytes(buf)


def recv_until_eof(sock, timeout=10.0, hasher=None):
    """
    Read until EOF. Returns the bytes (or, with hasher, the byte count and
    feeds the hasher instead of keeping the data). AssertionError on timeout.
    """
    deadline = time.monotonic() + scaled(timeout)
    buf = bytearray()
    count = 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("timeout before EOF after %d bytes" %
                                 (count,))
        sock.settimeout(left)
        try:
            chunk = sock.recv(1 << 18)
        except socket.timeout:
            raise AssertionError("timeout before EOF after %d bytes" %
                                 (count,))
        if not chunk:
            return count if hasher is not None else bytes(buf)
        count += len(chunk)
        if hasher is not None:
            hasher.update(chunk)
        else:
            buf += chunk


def echo_roundtrip(port, payload=None, host="127.0.0.1", prefix=b"",
                   timeout=10.0):
    """
    Connect, send payload, read back prefix + payload exactly (no
    half-close, so it only needs plain bridging), close. Returns the bytes.
    """
    if payload is None:
        payload = b"ping " + os.urandom(8).hex().encode() + b"\n"
    s = connect(port, host, timeout)
    try:
        s.sendall(payload)
        return recv_exact(s, len(prefix) + len(payload), timeout)
    finally:
        s.close()


def echo_ok(port, host="127.0.0.1", prefix=b"", timeout=5.0):
    """True if one echo round trip through host:port returns the payload."""
    payload = b"probe " + os.urandom(8).hex().encode() + b"\n"
    got = echo_roundtrip(port, payload, host, prefix, timeout)
    return got == prefix + payload
