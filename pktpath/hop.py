"""The hand-off from one layer service to the next: never a message per packet.

A layer's handler puts the skbs it passes on into a Hop and returns at once. The
Hop writes whatever has queued up as one protobuf batch message (the request
type of the next layer's hop RPC, e.g. an SkBuffBatch for L3's IpRcv) on a
Unix stream socket to that service's hop listener, framed with its length and
the RPC's name; the listener hands it to the same per-batch handler that
serves the RPC over gRPC, and acknowledges it with one byte.

Why not gRPC for this one thing: measured on this 2-core machine, six relay
processes pass an idle batch along in ~1–1.6 ms over local stream sockets
against ~2 ms over gRPC client streams and ~4.4 ms with unary calls, and carry
~55–80k packets/s against ~45–65k; with gRPC most of each process's CPU went
to gRPC's own Python threads. Every service still is a gRPC service: its API,
its tables, health, and the same hop RPCs for one-off callers (tests, tools).

At low load a batch is one NAPI poll's packets (no waiting to fill a batch),
written by the caller itself when nothing is queued (the qdisc bypass); while
a write is in progress the queue merges what follows (up to `max_batch`); at
most `max_in_flight` batches await their acknowledgement, so a slow next layer
stops the writes, the queue fills and `put` blocks: back-pressure that reaches
the NIC, whose RX ring then overflows and counts it, as a real one does. While
the next layer is not up the Hop waits for it (the queue holding, then
blocking); when a connection breaks, the batches written but not acknowledged
are counted as `<name>Unconfirmed` and the queue goes to the next connection.
Each hop counts its batches and items (group "Hop": `<name>Batches`,
`<name>Items`).
"""

import functools
import logging
import os
import socket
import struct
import threading
import time
from collections import deque
from typing import Callable

from pktpath.counters import Mib
from pktpath.metrics import observe_latency
from pktpath.pb import skbuff_pb2

log = logging.getLogger(__name__)

_FRAME = struct.Struct("<IB")  # payload length, RPC-name length; then the name, then the payload
RECONNECT_S = 0.1
ACK = b"\x06"


class Hop:
    def __init__(self, name: str, path: str, method: str, encode: Callable[[list], object], mib: Mib, *,
                 max_batch: int = 256, max_queued: int = 4096, max_in_flight: int = 8, bypass: bool = True) -> None:
        self.name = name
        self.path = path
        self._method = method.encode()
        self._encode = encode
        self._mib = mib
        self._max_batch = max_batch
        self._max_queued = max_queued
        self._max_in_flight = max_in_flight
        self._may_bypass = bypass
        self._queue: deque = deque()
        self._cond = threading.Condition()
        self._tx = threading.Lock()        # the connection: one writer at a time
        self._in_flight: deque = deque()   # sizes of the batches written, not yet acknowledged
        self._closed = False
        self._sock: socket.socket | None = None
        self._thread = threading.Thread(target=self._run, name=f"hop-{name}", daemon=True)
        self._thread.start()

    def put(self, items: list, timeout: float | None = None) -> bool:
        """Hand items to the next layer; blocks while the queue is full.
        False if the hop is closed or the timeout passed (the caller drops them)."""
        if not items:
            return True
        if self._bypass(items):
            return True
        with self._cond:
            if not self._cond.wait_for(lambda: self._closed or len(self._queue) < self._max_queued, timeout):
                return False
            if self._closed:
                return False
            self._queue.extend(items)
            self._cond.notify_all()
        return True

    def _bypass(self, items: list) -> bool:
        """The qdisc bypass (__dev_xmit_skb with TCQ_F_CAN_BYPASS): with nothing queued
        and the connection idle, the caller writes the batch itself, saving the
        hand-off to the Hop's thread that dominates an idle packet's time."""
        if not self._may_bypass or self._queue or self._sock is None or len(items) > self._max_batch:
            return False
        if not self._tx.acquire(blocking=False):
            return False
        try:
            with self._cond:
                if self._queue or self._closed or self._sock is None:
                    return False
            if len(self._in_flight) >= self._max_in_flight:
                self._collect_acks()
                if len(self._in_flight) >= self._max_in_flight:
                    return False
            try:
                self._send(items)
            except OSError as exc:  # requeued by _send: the thread reconnects and sends them
                self._broken(exc)
                with self._cond:
                    self._cond.notify_all()
            return True
        finally:
            self._tx.release()

    def _send(self, batch: list) -> None:
        """Write one batch (the caller holds _tx and a connection); put back if it fails."""
        payload = self._encode(batch).SerializeToString()
        try:
            self._sock.sendall(_FRAME.pack(len(payload), len(self._method)) + self._method + payload)
        except OSError:
            with self._cond:  # not (wholly) written: the receiver drops a partial frame
                self._queue.extendleft(reversed(batch))
            raise
        self._in_flight.append(len(batch))
        self._mib.inc("Hop", f"{self.name}Batches")
        self._mib.inc("Hop", f"{self.name}Items", len(batch))
        self._collect_acks()

    def _connect(self) -> socket.socket | None:
        """The connection to the next layer, waiting for it to be up; None once closed."""
        while True:
            with self._cond:
                if self._closed and not self._queue:
                    return None
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(self.path)
                return sock
            except OSError:
                sock.close()
                with self._cond:
                    if self._closed:  # closing, and the next layer is gone (stopping too): nobody takes these
                        self._drop_queued()
                        return None
                    if self._cond.wait_for(lambda: self._closed, RECONNECT_S):
                        continue  # one more try: what is queued goes if the next layer is still there

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._queue or self._closed)
                if self._closed and not self._queue:
                    break
            with self._tx:
                if self._sock is None:
                    self._sock = self._connect()
                    if self._sock is None:
                        break
                try:
                    while len(self._in_flight) >= self._max_in_flight:
                        self._await_ack()
                    with self._cond:
                        n = min(len(self._queue), self._max_batch)
                        batch = [self._queue.popleft() for _ in range(n)]
                        self._cond.notify_all()
                    if batch:
                        self._send(batch)
                except OSError as exc:  # the next layer went away: count, reconnect, never crash
                    self._broken(exc)
        with self._tx:
            if self._sock is not None:
                try:
                    while self._in_flight:
                        self._await_ack()
                except OSError as exc:
                    self._broken(exc)
                if self._sock is not None:
                    self._sock.close()
                    self._sock = None

    def _await_ack(self) -> None:
        acks = self._sock.recv(self._max_in_flight)
        if not acks:
            raise ConnectionResetError("the next layer closed the connection")
        for _ in acks:
            self._in_flight.popleft()

    def _collect_acks(self) -> None:
        try:
            acks = self._sock.recv(self._max_in_flight, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return
        if not acks:
            raise ConnectionResetError("the next layer closed the connection")
        for _ in acks:
            self._in_flight.popleft()

    def _broken(self, exc: Exception) -> None:
        lost = sum(self._in_flight)
        self._in_flight.clear()
        self._mib.inc("Hop", f"{self.name}Errors")
        if lost:
            self._mib.inc("Hop", f"{self.name}Unconfirmed", lost)
        log.warning("hop %s: connection to %s broke, %d items unconfirmed: %s", self.name, self.path, lost, exc)
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _drop_queued(self) -> None:
        """What is queued goes nowhere: counted as HOP_FAILED drops (self._cond held)."""
        dropped = len(self._queue)
        self._queue.clear()
        if dropped:
            self._mib.drop(skbuff_pb2.PKTPATH_DROP_REASON_HOP_FAILED, dropped)

    def close(self, timeout: float = 2.0) -> None:
        """Send what is queued, then disconnect."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout)
        if self._thread.is_alive():  # the next layer does not take what we send: give up on it
            with self._cond:
                self._drop_queued()
            sock = self._sock
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self._thread.join(timeout)


def _batch_len(request) -> int:
    for field in ("skbs", "errs", "requests", "items", "calls", "frames"):
        if hasattr(request, field):
            return len(getattr(request, field))
    return 0


class Refused(Exception):
    """A batch refused whole for a reason its sender can act on (no such device): it is
    dropped and counted (Hop <Handler>Refused), a gRPC caller gets `code` and the message,
    and nothing is logged: bad input is not a fault."""

    def __init__(self, code, message: str, reason: int = skbuff_pb2.SKB_DROP_REASON_NOT_SPECIFIED) -> None:
        super().__init__(message)
        self.code, self.message, self.reason = code, message, reason


def batches(request_type):
    """Declare a hop handler `(self, request, context) -> Disposition` taking one batch of
    `request_type`. It serves both ways in: the hop listener (each batch from a Hop)
    and the gRPC client-stream RPC of the same name (one-off callers), whose answer is
    the tally. A handler that raises costs its own batch (dropped and counted)."""
    def decorate(handler):
        def one(self, request, context=None):
            t0 = time.perf_counter()
            try:
                return handler(self, request, context)
            except Refused as exc:
                n = _batch_len(request)
                self.mib.inc("Hop", f"{handler.__name__}Refused")
                self.mib.drop(exc.reason, n)
                if context is not None:
                    context.abort(exc.code, exc.message)
                return skbuff_pb2.Disposition(dropped=n)
            except Exception:
                log.exception("%s: batch dropped", handler.__name__)
                n = _batch_len(request)
                self.mib.inc("Hop", f"{handler.__name__}Errors")
                self.mib.drop(skbuff_pb2.SKB_DROP_REASON_NOT_SPECIFIED, n)
                return skbuff_pb2.Disposition(dropped=n)
            finally:  # the layer's time with this batch, for each of its packets
                observe_latency(time.perf_counter() - t0, _batch_len(request))

        @functools.wraps(handler)
        def rpc(self, requests, context):
            tally = skbuff_pb2.Disposition()
            for request in requests:
                d = one(self, request, context)
                tally.accepted += d.accepted
                tally.dropped += d.dropped
                if d.errno:
                    tally.errno = d.errno
            return tally

        rpc.hop_request = request_type
        rpc.hop_batch = one
        return rpc
    return decorate


def hop_handlers(servicer) -> dict:
    """The servicer's @batches methods by RPC name: what its hop listener serves."""
    cls = type(servicer)
    return {name: getattr(cls, name) for name in dir(cls) if hasattr(getattr(cls, name), "hop_batch")}


def listen_unix(path: str, backlog: int) -> socket.socket:
    """A listening Unix stream socket at path (in the run's private directory, made here
    0700 if a test or a lone service has none), replacing a stale one a killed process left."""
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    if os.path.exists(path):
        os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    sock.listen(backlog)
    return sock


class HopListener:
    """The receiving end of the Hops into one service: a Unix stream socket whose
    connections carry framed batches for the servicer's @batches handlers."""

    def __init__(self, path: str, servicer) -> None:
        self.path = path
        self._servicer = servicer
        self._handlers = {name.encode(): (m.hop_request.FromString, m.hop_batch)
                          for name, m in hop_handlers(servicer).items()}
        self._sock = listen_unix(path, 16)
        self._conns: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, name="hop-listener", daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), name="hop-conn", daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        reader = conn.makefile("rb", buffering=1 << 20)
        try:
            while True:
                header = reader.read(_FRAME.size)
                if len(header) < _FRAME.size:
                    return  # the sender disconnected
                length, name_len = _FRAME.unpack(header)
                name = reader.read(name_len)
                payload = reader.read(length)
                if len(payload) < length:
                    return
                handler = self._handlers.get(name)
                if handler is None:
                    log.warning("hop listener %s: no handler %r; batch dropped", self.path, name)
                    self._servicer.mib.inc("Hop", "UnknownMethod")
                else:
                    parse, one = handler
                    try:
                        request = parse(payload)
                    except Exception:  # DecodeError: a corrupt batch is counted, the connection lives
                        self._servicer.mib.inc("Hop", f"{name.decode()}DecodeErrors")
                    else:
                        one(self._servicer, request)
                conn.sendall(ACK)
        except OSError:
            return
        finally:
            reader.close()
            conn.close()

    def close(self) -> None:
        self._closed = True
        self._sock.close()
        for conn in self._conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if os.path.exists(self.path):
            os.unlink(self.path)
