"""The orchestrator's packets: the recent journeys, merged from every layer's records,
queried by id, flow, host, layer and drop reason, and watched as they grow.

Bounded like the layers' own buffers: past `capacity` journeys the oldest go, and
the store counts them. A journey is settled (its trace exported) once no record
added to it for `settle_s`: a packet's last records come from the hosts it
crossed at about the same time, a collector poll or two apart.
"""

import queue
import threading
import time
from collections import OrderedDict
from typing import Callable

from pktpath.pb import name_of, orchestrator_pb2, skbuff_pb2
from pktpath.services.orchestrator.journey import LAYER_NAMES, Journey, event_key
from pktpath.trace import PROTOCOLS, PacketMatch
from pktpath.wire.addr import ip6_to_str, ip_to_str

pb = skbuff_pb2
CAPACITY = 20000
SETTLE_S = 1.0
DEFAULT_LIMIT = 100
WATCH_QUEUE = 10000


def _better(had, flow) -> bool:
    """Does flow say more than had: had is none, or a later fragment's (no ports) where flow is
    the same packet's first (ip_do_fragment's and ip6_fragment's copies all name the original)."""
    return had is None or (not (had.sport or had.dport) and bool(flow.sport or flow.dport)
                           and had[:3] == flow[:3] and had.family == flow.family)


class Query:
    """A PacketQuery, compiled."""

    def __init__(self, q: "orchestrator_pb2.PacketQuery") -> None:
        self.q = q
        self.match = PacketMatch(q.filter)  # ValueError on a bad address or protocol
        if q.layer and q.layer not in LAYER_NAMES.values():
            raise ValueError(f"layer {q.layer!r} is not one of {', '.join(LAYER_NAMES.values())}")
        if q.drop_reason not in ("", "any") and q.drop_reason not in pb.DropReason.keys():
            raise ValueError(f"drop reason {q.drop_reason!r} is not an SKB_DROP_REASON_*")

    def matches(self, j: Journey) -> bool:
        q = self.q
        if (q.id and j.id != q.id) or (q.origin_host and j.origin_host != q.origin_host):
            return False
        if not self.match.matches_all and not self.match.matches(j.flow):
            return False
        if (q.host or q.layer) and not any((not q.host or e.host == q.host)
                                           and (not q.layer or LAYER_NAMES.get(e.layer) == q.layer)
                                           for e in j.events):
            return False  # it never visited that layer (of that host)
        if q.drop_reason:
            outcome, reason = j.outcome()
            return outcome == "dropped" and q.drop_reason in ("any", reason)
        return True


def to_packet(j: Journey, trace_id: str) -> "orchestrator_pb2.Packet":
    outcome, reason = j.outcome()
    p = orchestrator_pb2.Packet(id=j.id, origin_host=j.origin_host, clone_of=j.clone_of, copy_of=j.copy_of,
                                outcome=outcome, drop_reason=reason, trace_id=trace_id, events=j.events)
    if j.flow is not None:
        f = j.flow
        to_str = ip6_to_str if f.family == 6 else ip_to_str
        p.flow.CopyFrom(orchestrator_pb2.Flow(saddr=to_str(f.saddr), daddr=to_str(f.daddr),
                                              protocol=PROTOCOLS.get(f.protocol, str(f.protocol)),
                                              sport=f.sport, dport=f.dport))
    return p


def trace_line(j: Journey, e) -> "orchestrator_pb2.TraceLine":
    if e.kind == pb.DROP:
        detail = name_of(pb.DropReason, e.reason)
    elif e.kind == pb.COPY:
        detail = f"{e.bytes} B {e.copy_from} -> {e.copy_to}"
    elif e.kind in (pb.CLONE, pb.DMA, pb.FREE):
        detail = f"{e.bytes} B"
    else:
        detail = ""
    return orchestrator_pb2.TraceLine(id=j.id, origin_host=j.origin_host, host=e.host,
                                      layer=LAYER_NAMES.get(e.layer, "?"), kind=name_of(pb.EventKind, e.kind),
                                      func=e.func,
                                      delta_ns=e.ts_ns - j.previous_ts(e), len=e.bytes,
                                      tuple=str(j.flow) if j.flow else "", detail=detail, ts_ns=e.ts_ns)


class Watch:
    """One `pktpath trace`: the lines of matching packets, each packet's once its journey
    settles, in the packet's own order. Records come from every layer in any order (the
    socket layer's copy may arrive before the NIC's DMA of the same packet): printed as
    they came, the events of one packet were out of order."""

    def __init__(self, query: Query) -> None:
        self.query = query
        self.lines: queue.Queue = queue.Queue(WATCH_QUEUE)
        self.overflow = 0
        self._shown: OrderedDict[tuple[str, int], set] = OrderedDict()  # journey -> its events printed

    def flush(self, j: Journey) -> None:
        """A settled journey's events not printed yet, in time order (a late record adds more)."""
        if not self.query.matches(j):
            return
        key = (j.origin_host, j.id)
        shown = self._shown.pop(key, set())
        self._shown[key] = shown
        if len(self._shown) > WATCH_QUEUE:
            self._shown.popitem(last=False)
        for e in j.events:
            if event_key(e) in shown:
                continue
            shown.add(event_key(e))
            try:
                self.lines.put_nowait(trace_line(j, e))
            except queue.Full:
                self.overflow += 1


class PacketStore:
    def __init__(self, capacity: int = CAPACITY, settle_s: float = SETTLE_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = capacity
        self.settle_s = settle_s
        self.clock = clock
        self._lock = threading.Lock()
        self._journeys: OrderedDict[tuple[str, int], Journey] = OrderedDict()
        self._pending: dict[tuple[str, int], Journey] = {}  # not settled yet
        self._watches: list[Watch] = []
        self._child_flows: dict[tuple[str, int], object] = {}  # a parent not seen yet -> its child's flow
        self.records = 0     # records merged in
        self.evicted = 0     # journeys the full store let go

    def add(self, record) -> None:
        key = (record.origin_host, record.id)
        with self._lock:
            self.records += 1
            j = self._journeys.get(key)
            if j is None:
                j = self._journeys[key] = Journey(record.origin_host, record.id)
                if len(self._journeys) > self.capacity:
                    old_key, _ = self._journeys.popitem(last=False)
                    self._pending.pop(old_key, None)
                    self.evicted += 1
            else:
                self._journeys.move_to_end(key)
            new = j.merge(record)
            self._share_flow(j)
            if new:
                j.updated = self.clock()
                self._pending[key] = j

    def _share_flow(self, j: Journey) -> None:
        """A packet whose own headers never showed (TCP's original, freed by the ACK, only
        ever held data; a datagram that left as fragments) takes the flow of its clone or
        copy, the first fragment's (with the ports) over a later one's; and the other way round."""
        parents = [(j.origin_host, p) for p in (j.clone_of, j.copy_of) if p]
        if j.flow is None:
            j.flow = self._child_flows.get((j.origin_host, j.id))
            for key in parents:
                parent = self._journeys.get(key)
                if j.flow is None and parent is not None:
                    j.flow = parent.flow
        if j.flow is not None:
            for key in parents:
                parent = self._journeys.get(key)
                if parent is not None and _better(parent.flow, j.flow):
                    parent.flow = j.flow
                elif parent is None and _better(self._child_flows.get(key), j.flow):
                    self._child_flows[key] = j.flow
                    if len(self._child_flows) > self.capacity:
                        self._child_flows.pop(next(iter(self._child_flows)))

    def settle(self) -> list[Journey]:
        """The journeys no record added to for settle_s: their traces can go."""
        now = self.clock()
        with self._lock:
            done = [k for k, j in self._pending.items() if now - j.updated >= self.settle_s]
            settled = [self._pending.pop(k) for k in done]
            for w in self._watches:
                for j in settled:
                    w.flush(j)
            return settled

    def query(self, query: Query) -> list[Journey]:
        limit = query.q.limit or DEFAULT_LIMIT
        with self._lock:
            out = []
            for j in reversed(self._journeys.values()):
                if query.matches(j):
                    out.append(j)
                    if len(out) >= limit:
                        break
            return out

    def __len__(self) -> int:
        return len(self._journeys)

    def watch(self, query: Query) -> Watch:
        w = Watch(query)
        with self._lock:
            self._watches.append(w)
        return w

    def unwatch(self, w: Watch) -> None:
        with self._lock:
            if w in self._watches:
                self._watches.remove(w)
