"""The hand-off from one layer service to the next: never a message per packet.

A layer's handler puts the skbs it passes on into a Hop and returns at once. The
Hop keeps one long-lived bidirectional gRPC stream to the next layer (the
hop RPCs are `rpc X(stream Batch) returns (stream Disposition)`) and writes
whatever has queued up as one batch message; the next layer answers each batch
with a Disposition, in order. A stream costs no call set-up per batch and no
thread-pool dispatch on the receiving side: on this 2-core machine a batch
crosses a hop in about a third of the time a unary call takes.

At low load a batch is one NAPI poll's packets (no waiting to fill a batch);
under load batches merge (up to `max_batch`), at most `max_in_flight` batches
await their answer, and when the queue is full `put` blocks: back-pressure
that reaches the NIC, whose RX ring then overflows and counts it, as a real
one does.

Each hop counts its batches and items (group "Hop": `<name>Batches`,
`<name>Items`): their ratio is the batching the load produced.

When the stream breaks (the next layer is down or restarting), the batches in
flight and those queued are dropped with PKTPATH_DROP_REASON_HOP_FAILED and
counted; the next `put` opens a new stream. Nothing is lost silently.

The Hop never imports a stub: `rpc` is a stream-stream stub method and
`encode` turns a list of items into its request message.
"""

import functools
import logging
import threading
from collections import deque
from typing import Callable

from pktpath.counters import Mib
from pktpath.pb import skbuff_pb2

log = logging.getLogger(__name__)


class Hop:
    def __init__(self, name: str, rpc: Callable, encode: Callable[[list], object], mib: Mib, *,
                 max_batch: int = 256, max_queued: int = 4096, max_in_flight: int = 1) -> None:
        self.name = name
        self._rpc = rpc
        self._encode = encode
        self._mib = mib
        self._max_batch = max_batch
        self._max_queued = max_queued
        self._max_in_flight = max_in_flight
        self._queue: deque = deque()
        self._in_flight: deque = deque()  # sizes of the batches sent and not yet answered
        self._cond = threading.Condition()
        self._closed = False
        self._call = None
        self._thread = threading.Thread(target=self._run, name=f"hop-{name}", daemon=True)
        self._thread.start()

    def put(self, items: list, timeout: float | None = None) -> bool:
        """Queue items for the next layer; blocks while the queue is full.
        False if the hop is closed or the timeout passed (the caller drops them)."""
        if not items:
            return True
        with self._cond:
            if not self._cond.wait_for(lambda: self._closed or len(self._queue) < self._max_queued, timeout):
                return False
            if self._closed:
                return False
            self._queue.extend(items)
            self._cond.notify_all()
        return True

    def _requests(self, ended: threading.Event):
        """The request stream: a batch whenever items wait and the window has room."""
        while True:
            with self._cond:
                self._cond.wait_for(lambda: ended.is_set() or (self._closed and not self._queue) or (
                    self._queue and len(self._in_flight) < self._max_in_flight))
                if ended.is_set() or not self._queue:
                    return  # the call broke, or the hop closed with nothing left to send
                n = min(len(self._queue), self._max_batch)
                batch = [self._queue.popleft() for _ in range(n)]
                self._in_flight.append(n)
                self._cond.notify_all()
            self._mib.inc("Hop", f"{self.name}Batches")
            self._mib.inc("Hop", f"{self.name}Items", n)
            yield self._encode(batch)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._queue or self._closed)
                if self._closed and not self._queue:
                    return
            ended = threading.Event()
            try:
                self._call = self._rpc(self._requests(ended))
                for _ in self._call:
                    with self._cond:
                        self._in_flight.popleft()
                        self._cond.notify_all()
                if self._in_flight:
                    raise RuntimeError("the stream ended with batches unanswered")
            except Exception as exc:  # the next layer is down or refused: count, never crash
                self._fail(exc)
            finally:
                ended.set()
                with self._cond:
                    self._cond.notify_all()

    def _fail(self, exc: Exception) -> None:
        with self._cond:
            lost = sum(self._in_flight) + len(self._queue)
            self._in_flight.clear()
            self._queue.clear()
            self._cond.notify_all()
        self._mib.inc("Hop", f"{self.name}Errors")
        if lost:
            self._mib.drop(skbuff_pb2.PKTPATH_DROP_REASON_HOP_FAILED, lost)
        log.warning("hop %s: stream failed, %d items dropped: %s", self.name, lost, exc)

    def close(self, timeout: float = 2.0) -> None:
        """Send what is queued, then end the stream."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout)
        if self._thread.is_alive() and self._call is not None:
            self._call.cancel()  # the next layer does not answer: give up on it
            self._thread.join(timeout)


def _batch_len(request) -> int:
    for field in ("skbs", "errs", "requests"):
        if hasattr(request, field):
            return len(getattr(request, field))
    return 0


def batches(handler):
    """The receiving side of a hop: a bidi RPC answered batch by batch by `handler`
    (self, request, context) -> Disposition. A handler that raises costs its own
    batch (dropped and counted), not the stream."""
    @functools.wraps(handler)
    def rpc(self, requests, context):
        for request in requests:
            try:
                yield handler(self, request, context)
            except Exception:
                log.exception("%s: batch dropped", handler.__name__)
                n = _batch_len(request)
                self.mib.inc("Hop", f"{handler.__name__}Errors")
                self.mib.drop(skbuff_pb2.SKB_DROP_REASON_NOT_SPECIFIED, n)
                yield skbuff_pb2.Disposition(dropped=n)
    return rpc
