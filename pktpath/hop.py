"""The hand-off from one layer service to the next: never a message per packet.

A layer's handler puts the skbs it passes on into a Hop and returns at once. The
Hop keeps one long-lived client stream to the next layer (the hop RPCs are
`rpc X(stream Batch) returns (Disposition)`) and writes whatever has queued up
as one batch message. Measured on this 2-core machine, a stream costs a third
of a unary call per batch (no call set-up, no thread-pool dispatch at the
receiver), and a client stream half the CPU of a bidirectional one, whose
per-batch answers the receiving process has to send and the sender to read.

At low load a batch is one NAPI poll's packets (no waiting to fill a batch);
while a write is in progress the queue merges what follows (up to
`max_batch`); HTTP/2 flow control stops the writes when the receiver falls
behind, the queue fills, and `put` blocks: back-pressure that reaches the NIC,
whose RX ring then overflows and counts it, as a real one does.

Accounting: each hop counts the batches and items it writes (group "Hop":
`<name>Batches`, `<name>Items`), each receiver what it takes in and what it
drops, by reason; the receiver's tally answers the stream when it ends. A
stream waits for the next layer to be up (wait_for_ready) rather than failing:
while it is down, the queue fills and back-pressure does the rest. When a
stream breaks half-way (the next layer died), the items written to it since it
opened are counted as `<name>Unconfirmed`: the receiver may have taken some,
as frames on a wire when the link drops; the next `put` opens a new stream.

The Hop never imports a stub: `rpc` is a stream-unary stub method and `encode`
turns a list of items into its request message.
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
                 max_batch: int = 256, max_queued: int = 4096) -> None:
        self.name = name
        self._rpc = rpc
        self._encode = encode
        self._mib = mib
        self._max_batch = max_batch
        self._max_queued = max_queued
        self._queue: deque = deque()
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

    def _requests(self, ended: threading.Event, written: list):
        """The request stream: a batch whenever items wait (gRPC pulls the next one
        when the previous write is done)."""
        while True:
            with self._cond:
                self._cond.wait_for(lambda: ended.is_set() or self._closed or self._queue)
                if ended.is_set() or not self._queue:
                    return  # the call broke, or the hop closed with nothing left to send
                n = min(len(self._queue), self._max_batch)
                batch = [self._queue.popleft() for _ in range(n)]
                self._cond.notify_all()
            self._mib.inc("Hop", f"{self.name}Batches")
            self._mib.inc("Hop", f"{self.name}Items", n)
            written[0] += n
            yield self._encode(batch)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._queue or self._closed)
                if self._closed and not self._queue:
                    return
            ended = threading.Event()
            written = [0]
            try:
                self._call = self._rpc.future(self._requests(ended, written), wait_for_ready=True)
                self._call.result()
            except Exception as exc:  # the next layer died or refused: count, never crash
                self._fail(exc, written[0])
            finally:
                ended.set()
                with self._cond:
                    self._cond.notify_all()

    def _fail(self, exc: Exception, written: int) -> None:
        self._mib.inc("Hop", f"{self.name}Errors")
        self._mib.inc("Hop", f"{self.name}Unconfirmed", written)
        with self._cond:
            lost = len(self._queue) if self._closed else 0  # closing: nobody will send them
            if lost:
                self._queue.clear()
                self._mib.drop(skbuff_pb2.PKTPATH_DROP_REASON_HOP_FAILED, lost)
            self._cond.notify_all()
        log.warning("hop %s: stream broke after %d items, %d queued dropped: %s", self.name, written, lost, exc)

    def close(self, timeout: float = 2.0) -> None:
        """Send what is queued, then end the stream."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout)
        if self._thread.is_alive() and self._call is not None:
            self._call.cancel()  # the next layer does not take what we send: give up on it
            self._thread.join(timeout)


def _batch_len(request) -> int:
    for field in ("skbs", "errs", "requests"):
        if hasattr(request, field):
            return len(getattr(request, field))
    return 0


def batches(handler):
    """The receiving side of a hop: a client-stream RPC whose batches `handler`
    (self, request, context) -> Disposition takes one by one; the answer, when the
    stream ends, is the tally. A handler that raises costs its own batch (dropped
    and counted), not the stream."""
    @functools.wraps(handler)
    def rpc(self, requests, context):
        tally = skbuff_pb2.Disposition()
        for request in requests:
            try:
                d = handler(self, request, context)
            except Exception:
                log.exception("%s: batch dropped", handler.__name__)
                n = _batch_len(request)
                self.mib.inc("Hop", f"{handler.__name__}Errors")
                self.mib.drop(skbuff_pb2.SKB_DROP_REASON_NOT_SPECIFIED, n)
                tally.dropped += n
                continue
            tally.accepted += d.accepted
            tally.dropped += d.dropped
        return tally
    return rpc
