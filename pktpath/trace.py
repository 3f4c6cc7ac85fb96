"""The sampled packets that finished in this process, kept for tools to read.

When a sampled skb is freed (consumed after delivery, dropped, or freed after
transmission), skbuff's finish hook hands it here: a bounded buffer of
records (the skb's identity, lineage and every event, earlier hops' too, but
no data), numbered so a reader can ask for what is new, as the kernel's trace
ring buffer keeps the newest and counts what it overwrote. Every layer
service serves it (pktpath.v1.Trace).
"""

import threading
from collections import deque

from pktpath import skbuff as s
from pktpath.pb import skbuff_pb2, trace_pb2, trace_pb2_grpc

CAPACITY = 4096


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
