"""One packet's journey, from the records its layers kept: pure logic.

A sampled skb's record is its whole story up to where it finished (the events of
earlier hops travel with it, across hosts too), so records of one packet (the
same origin host and id) from several layers overlap: merged, each event counts
once. From the merged events come the packet's flow (decoded from the header
snapshots ENTER and EXIT keep), its outcome (delivered, dropped and why,
transmitted, freed), and its visits: consecutive events in one layer of one host,
each of which becomes a span.
"""

from dataclasses import dataclass, field

from pktpath.pb import name_of, skbuff_pb2
from pktpath.trace import FlowKey, ip_flow

pb = skbuff_pb2
LAYER_NAMES = {pb.LAYER_NIC: "nic", pb.LAYER_SOFTIRQ: "softirq", pb.LAYER_L2: "l2", pb.LAYER_L3: "l3",
               pb.LAYER_L4: "l4", pb.LAYER_SOCKET: "socket", pb.LAYER_LINK: "link"}
ETH_HLEN = 14
ETH_P_IPS = (b"\x08\x00", b"\x86\xdd")  # ETH_P_IP, ETH_P_IPV6
MAX_EVENTS = 4096  # a journey's: a TCP segment retransmitted many times has some hundreds


def event_key(e) -> tuple:
    """What makes an event the same one in every record that carries it."""
    return (e.kind, e.layer, e.host, e.func, e.ts_ns, e.bytes)


@dataclass
class Visit:
    """Consecutive events of one packet in one layer of one host: a span."""
    host: str
    layer: int
    func: str           # the entry point (the ENTER's function), else the first event's
    start_ns: int
    end_ns: int
    length: int         # skb->len on entry
    events: list = field(default_factory=list)  # what happened inside: COPY, CLONE, DMA, DROP, FREE, EXIT

    @property
    def layer_name(self) -> str:
        return LAYER_NAMES.get(self.layer, "?")


def visits(events) -> list[Visit]:
    """The packet's events (time order) cut into visits."""
    out: list[Visit] = []
    for e in events:
        cur = out[-1] if out else None
        if cur is None or (cur.host, cur.layer) != (e.host, e.layer) or (e.kind == pb.ENTER and cur.events):
            cur = Visit(e.host, e.layer, e.func, e.ts_ns, e.ts_ns, e.bytes)
            out.append(cur)
            if e.kind == pb.ENTER:
                continue
        cur.end_ns = max(cur.end_ns, e.ts_ns)
        cur.events.append(e)
    return out


def flow_of(events) -> FlowKey | None:
    """The addresses, protocol and ports, from the first header snapshot that shows an IPv4
    or IPv6 header (and the transport header after it, past IPv6's extension headers)."""
    for e in events:
        head = e.head
        if e.head_type == "eth" and head[12:14] in ETH_P_IPS:
            head = head[ETH_HLEN:]
        elif e.head_type != "ip":
            continue
        flow = ip_flow(head)
        if flow is not None:
            return flow
    return None


def outcome(events) -> tuple[str, str]:
    """("dropped", reason) when a layer dropped it; else "delivered" when a socket copied it
    to a user, "transmitted" when a NIC sent it last, or "freed"."""
    for e in events:
        if e.kind == pb.DROP:
            return "dropped", name_of(pb.DropReason, e.reason)
    if any(e.kind == pb.COPY and e.copy_to == "user" for e in events):
        return "delivered", ""
    last_dma = next((e for e in reversed(events) if e.kind == pb.DMA), None)
    if last_dma is not None and last_dma.func == "ndo_start_xmit" and last_dma.host == events[-1].host:
        return "transmitted", ""
    return "freed", ""


@dataclass
class Journey:
    """A packet's merged story."""
    origin_host: str
    id: int
    clone_of: int = 0
    copy_of: int = 0
    events: list = field(default_factory=list)  # SkbEvent messages, time order
    seen: dict = field(default_factory=dict)    # event_key -> the event
    updated: float = 0.0                        # when a record last added to it (collector clock)
    flow: FlowKey | None = None

    def merge(self, record) -> list:
        """Add a record's events; returns those new to this journey (time order)."""
        self.clone_of = self.clone_of or record.clone_of
        self.copy_of = self.copy_of or record.copy_of
        new, better = [], False
        for e in record.events:
            key = event_key(e)
            old = self.seen.get(key)
            if old is None and len(self.seen) >= MAX_EVENTS:
                continue  # records that keep a packet id alive can grow it no further
            if old is None:
                self.seen[key] = e
                new.append(e)
            elif e.head and not old.head:  # a frame's copy of the event lost its snapshot: this one has it
                self.seen[key], better = e, True
        if new or better:
            self.events = sorted(self.seen.values(), key=lambda e: e.ts_ns)
            if self.flow is None:
                self.flow = flow_of(self.events)
        return sorted(new, key=lambda e: e.ts_ns)

    def outcome(self) -> tuple[str, str]:
        return outcome(self.events) if self.events else ("freed", "")

    def visits(self) -> list[Visit]:
        return visits(self.events)

    def previous_ts(self, e) -> int:
        """The time of the event before e in this journey (e's own when it is the first)."""
        before = [x.ts_ns for x in self.events if x.ts_ns < e.ts_ns]
        return before[-1] if before else e.ts_ns
