"""The hand-off from one layer service to the next: never a message per packet.

A layer's handler puts the skbs it passes on into a Hop and returns at once; the
Hop's sender thread sends whatever has queued up as one batch. At low load a
batch is one NAPI poll's packets (no waiting to fill a batch, so latency stays
one call per layer); under load batches merge up to `max_batch`, and when the
queue is full `put` blocks: back-pressure that reaches the NIC, whose RX ring
then overflows and counts it, as a real one does.

The Hop never imports gRPC: `send` is any callable taking a list of skbs (the
servicer binds it to a stub). A send that fails drops its batch with
PKTPATH_DROP_REASON_HOP_FAILED, counted: nothing is lost silently.
"""

import logging
import threading
from collections import deque
from typing import Callable

from pktpath.counters import Mib
from pktpath.pb import skbuff_pb2

log = logging.getLogger(__name__)


class Hop:
    def __init__(self, name: str, send: Callable[[list], object], mib: Mib, *,
                 max_batch: int = 256, max_queued: int = 4096) -> None:
        self.name = name
        self._send = send
        self._mib = mib
        self._max_batch = max_batch
        self._max_queued = max_queued
        self._queue: deque = deque()
        self._cond = threading.Condition()
        self._closed = False
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

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._queue or self._closed)
                if not self._queue and self._closed:
                    return
                n = min(len(self._queue), self._max_batch)
                batch = [self._queue.popleft() for _ in range(n)]
                self._cond.notify_all()
            try:
                self._send(batch)
            except Exception as exc:  # the next layer is down or refused: count, never crash
                self._mib.inc("Hop", f"{self.name}Errors")
                self._mib.drop(skbuff_pb2.PKTPATH_DROP_REASON_HOP_FAILED, len(batch))
                log.warning("hop %s: %d skbs dropped: %s", self.name, len(batch), exc)

    def close(self, timeout: float = 2.0) -> None:
        """Send what is queued, then stop."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout)
