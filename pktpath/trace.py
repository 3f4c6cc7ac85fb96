"""The sampled packets that finished in this process, kept for tools to read.

When a sampled skb is freed (consumed after delivery, dropped, or freed after
transmission), skbuff's finish hook hands it here: a bounded buffer of
records (the skb's identity, lineage and every event, earlier hops' too, but
no data), numbered so a reader can ask for what is new, as the kernel's trace
ring buffer keeps the newest and counts what it overwrote. Every layer
service serves it (pktpath.v1.Trace).
"""

import os
import random
import threading
from collections import deque

from pktpath import skbuff as s
from pktpath.pb import skbuff_pb2, trace_pb2, trace_pb2_grpc

CAPACITY = 4096
SAMPLER_ARG = "OTEL_TRACES_SAMPLER_ARG"  # OpenTelemetry's ratio for its traceidratio sampler


def sampler():
    """Which packets a socket layer traces: each with the probability OTEL_TRACES_SAMPLER_ARG
    gives (0..1). Unset, every one is (until the orchestrator of issue #6 collects them)."""
    text = os.environ.get(SAMPLER_ARG, "1")
    try:
        ratio = float(text)
    except ValueError:
        raise ValueError(f"{SAMPLER_ARG}={text!r}: not a ratio between 0 and 1") from None
    if not 0 <= ratio <= 1:
        raise ValueError(f"{SAMPLER_ARG}={text!r}: not a ratio between 0 and 1")
    if ratio == 1:
        return lambda: True
    return lambda: random.random() < ratio


class FinishedPackets(trace_pb2_grpc.TraceServicer):
    def __init__(self, capacity: int = CAPACITY) -> None:
        self._lock = threading.Lock()
        self._records: deque = deque(maxlen=capacity)  # (seq, SkBuff record)
        self._seq = 0
        self._lost = 0

    def add(self, skb) -> None:
        record = skbuff_pb2.SkBuff(id=skb.id, origin_host=skb.origin_host, clone_of=skb.clone_of,
                                   copy_of=skb.copy_of, sampled=True)
        s.export_events(skb, record.events)
        with self._lock:
            if len(self._records) == self._records.maxlen:
                self._lost += 1
            self._seq += 1
            self._records.append((self._seq, record))

    def GetFinished(self, request, context):
        reply = trace_pb2.FinishedPackets()
        with self._lock:
            reply.skbs.extend(r for seq, r in self._records if seq > request.after_seq)
            reply.last_seq, reply.lost = self._seq, self._lost
        return reply
