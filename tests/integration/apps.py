"""
Local test apps: small threaded servers on loopback (TCP) or a unix socket,
standing in for the local services a tunnel forwards to. Each one has
start() and a clean stop() (closes the listener and every connection, joins
its threads) and records what it saw so tests can assert on it.
"""

import hashlib
import os
import socket
import threading

from netio import alloc_port


class App:
    """Accept loop + one handler thread per connection."""

    def __init__(self, host="127.0.0.1", unix_path=None, backlog=512,
                 port=0):
        self.host = host
        self.unix_path = str(unix_path) if unix_path else None
        self.backlog = backlog
        self.port = port            # 0: any free port, known after start
        self.sock = None
        self._stopping = threading.Event()
        self._threads = []
        self._conns = set()
        self._lock = threading.Lock()
        self.accepted = 0
        self.errors = []           # exceptions raised in handlers

    # -- addresses as the config wants them

    @property
    def local(self):
        """The tunnel's `local:` value for this app."""
        if self.unix_path:
            return "unix:" + self.unix_path
        if ":" in self.host:
            return "[%s]:%d" % (self.host, self.port)
        return "%s:%d" % (self.host, self.port)

    # -- lifecycle

    def start(self):
        if self.unix_path:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                os.unlink(self.unix_path)
            except FileNotFoundError:
                pass
            s.bind(self.unix_path)
        else:
            fam = socket.AF_INET6 if ":" in self.host else socket.AF_INET
            s = socket.socket(fam, socket.SOCK_STREAM)
            s.bind((self.host, self.port))
            self.port = s.getsockname()[1]
        s.listen(self.backlog)
        self.sock = s
        t = threading.Thread(target=self._accept_loop, daemon=True,
                             name="%s-accept" % type(self).__name__)
        t.start()
        self._threads.append(t)
        return self

    def _accept_loop(self):
        while not self._stopping.is_set():
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self._lock:
                if self._stopping.is_set():
                    c.close()
                    return
                self.accepted += 1
                n = self.accepted
                self._conns.add(c)
            t = threading.Thread(target=self._run, args=(c, n), daemon=True)
            with self._lock:
                self._threads.append(t)
            t.start()

    def _run(self, c, n):
        try:
            c.settimeout(120)
            self.handle(c, n)
        except OSError as e:
            if not self._stopping.is_set():
                with self._lock:
                    self.errors.append(e)
        finally:
            with self._lock:
                self._conns.discard(c)
            c.close()

    def handle(self, conn, n):
        raise NotImplementedError

    def stop(self):
        self._stopping.set()
        if self.sock is not None:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)   # wakes accept()
            except OSError:
                pass
            self.sock.close()
        with self._lock:
            conns = list(self._conns)
            threads = list(self._threads)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in threads:
            t.join(10)
        if self.unix_path:
            try:
                os.unlink(self.unix_path)
            except FileNotFoundError:
                pass
        alive = [t.name for t in threads if t.is_alive()]
        assert not alive, "%s threads still alive: %s" % (
            type(self).__name__, alive)


class EchoServer(App):
    """Echoes everything; on EOF, half-closes back and closes. An optional
    greeting is sent first on every connection (tells apps apart)."""

    def __init__(self, greeting=b"", **kw):
        super().__init__(**kw)
        self.greeting = greeting

    def handle(self, c, n):
        if self.greeting:
            c.sendall(self.greeting)
        while True:
            data = c.recv(1 << 16)
            if not data:
                break
            c.sendall(data)
        c.shutdown(socket.SHUT_WR)


class ReplyThenClose(App):
    """Sends a payload as soon as a connection arrives, then closes (the
    local service closes first). payloads are used in turn."""

    def __init__(self, payloads, **kw):
        super().__init__(**kw)
        self.payloads = list(payloads)
        self.sent = []

    def handle(self, c, n):
        data = self.payloads[(n - 1) % len(self.payloads)]
        c.sendall(data)
        with self._lock:
            self.sent.append(len(data))
        # close() in _run: a FIN after all the data.


class ReadThenReply(App):
    """Reads until EOF, then replies b"<count> <sha256 hex>\\n" (plus an
    optional tail) and closes: exercises half-close from the client."""

    def __init__(self, tail=b"", **kw):
        super().__init__(**kw)
        self.tail = tail
        self.received = []        # (count, hex) per connection

    def handle(self, c, n):
        h = hashlib.sha256()
        count = 0
        while True:
            data = c.recv(1 << 18)
            if not data:
                break
            count += len(data)
            h.update(data)
        with self._lock:
            self.received.append((count, h.hexdigest()))
        c.sendall(b"%d %s\n" % (count, h.hexdigest().encode()) + self.tail)


class BulkSink(ReadThenReply):
    """Alias with a clearer name for big uploads: hashes what it receives
    and reports the byte count and sha256 after the client's EOF."""


class BulkSource(App):
    """Sends `size` random bytes on every connection, then closes; records
    (count, sha256 hex) of what it sent."""

    def __init__(self, size, **kw):
        super().__init__(**kw)
        self.size = size
        self.sent = []

    def handle(self, c, n):
        h = hashlib.sha256()
        left = self.size
        while left > 0:
            chunk = os.urandom(min(left, 1 << 20))
            h.update(chunk)
            c.sendall(chunk)
            left -= len(chunk)
        with self._lock:
            self.sent.append((self.size, h.hexdigest()))


class RefusingPort:
    """An allocated loopback port with nothing listening on it."""

    def __init__(self, host="127.0.0.1"):
        self.host = host
        self.port = None

    @property
    def local(self):
        return "%s:%d" % (self.host, self.port)

    def start(self):
        self.port = alloc_port(self.host)
        return self

    def stop(self):
        pass


class FakeControl:
    """A unix socket answering every client with the same bytes (a status
    document), as any process able to bind the control path could;
    counts the clients it served."""

    def __init__(self, path, data):
        self.path = str(path)
        self.data = data
        self.served = 0
        self.sock = None
        self._thread = None

    def start(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(8)
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name="fake-control")
        self._thread.start()
        return self

    def _run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with c:
                c.sendall(self.data)
            self.served += 1

    def stop(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self._thread.join(5)
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


class GatedSink(App):
    """Reads each connection to EOF once the gate is open (set at once
    unless gate_open=False), counting what arrived in self.received, then
    replies "<bytes> <sha256>"."""

    def __init__(self, gate_open=True, **kw):
        super().__init__(**kw)
        self.gate = threading.Event()
        if gate_open:
            self.gate.set()
        self.received = 0
        self.count_lock = threading.Lock()

    def handle(self, c, n):
        self.gate.wait(300)
        h, size = hashlib.sha256(), 0
        while True:
            b = c.recv(1 << 18)
            if not b:
                break
            h.update(b)
            size += len(b)
            with self.count_lock:
                self.received += len(b)
        c.sendall(b"%d %s\n" % (size, h.hexdigest().encode()))
