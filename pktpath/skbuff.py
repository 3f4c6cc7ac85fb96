"""The sk_buff: one linear buffer, offsets into it, and the packet's story so far.

Models struct sk_buff and its helpers (include/linux/skbuff.h, net/core/skbuff.c):
alloc_skb, skb_reserve, skb_put, skb_push, skb_pull, skb_trim, the
skb_{reset,set}_*_header setters, skb_clone and skb_copy, kfree_skb_reason and
consume_skb. Pure: no I/O, no gRPC (a process may hook the freeing of sampled
skbs: set_finish_hook); conversion to and from the protobuf SkBuff lives here too.

    head          data                tail          end
     |  headroom   |   data (len)      |  tailroom   |
     0 ........... data ............. tail ......... end

Headers move like the kernel's: stripping one on RX is skb_pull (no copy),
adding one on TX is skb_push into reserved headroom (no copy). Going past
either end is an SkbError, never a silent corruption (the kernel panics:
skb_under_panic / skb_over_panic).

skb_clone gives a new header that shares the buffer (and its headroom, as the
kernel's clones of header-less TCP skbs do); writing into a shared buffer's
data or tailroom is refused. skb_copy duplicates the buffer: a COPY event.

Events (ENTER/EXIT per layer, COPY, CLONE, DMA, DROP, FREE) are recorded only
for sampled packets: the orchestrator builds traces from them, while counters
and histograms are kept per layer for every packet.
"""

import itertools
import os
import time

from pktpath.counters import MOVE_BYTES, MOVES, PROCESS
from pktpath.pb import skbuff_pb2
from pktpath.wire.ethernet import ETH_P_IPV6

pb = skbuff_pb2
NET_SKB_PAD = 64     # headroom every RX skb gets (max(32, L1_CACHE_BYTES))
MAX_HEADER = 128     # TX headroom for link + IP + TCP headers (MAX_TCP_HEADER's role)
SKB_HEADER_SIZE = 232  # sizeof(struct sk_buff) on x86_64: what a clone copies
UNSET = 0xFFFF       # an unset header offset, as the kernel's (typeof(skb->mac_header))~0U
# What an skb handed between layers may claim, checked where it enters one (from_proto):
# the largest buffer any layer makes (a 64 KiB GSO packet or datagram and its headroom,
# with room to spare), and GSO fields a segmenter can honour (TCP_MIN_MSS, GSO_MAX_SIZE,
# GSO_MAX_SEGS): gso_size=1 on 60 kB would be 60,000 frames.
SKB_MAX_END = 1 << 17
TCP_MIN_MSS, GSO_MAX_SIZE, GSO_MAX_SEGS = 88, 65536, 65535 // 88 + 1
HEAD_SNAPSHOT = 96   # bytes at skb->data an ENTER/EXIT event keeps: Ethernet, IP and TCP headers with options

ENTER, EXIT, COPY, CLONE, DMA, DROP, FREE = (
    pb.ENTER, pb.EXIT, pb.COPY, pb.CLONE, pb.DMA, pb.DROP, pb.FREE)
_FRAME_LAYERS = (pb.LAYER_NIC, pb.LAYER_SOFTIRQ, pb.LAYER_L2)
_KIND_NAMES = {COPY: "COPY", CLONE: "CLONE", DMA: "DMA"}


class SkbError(Exception):
    """A helper was asked to step outside the buffer or write into shared data."""


class _SharedInfo:
    """The part of skb_shared_info pktpath needs: how many skbs share the buffer."""

    __slots__ = ("dataref",)

    def __init__(self) -> None:
        self.dataref = 1


class PacketIds:
    """Packet ids unique per host: the creating layer in the top byte, then a
    random start epoch (so a restarted service does not reuse ids), then a count."""

    def __init__(self, layer: int) -> None:
        epoch = int.from_bytes(os.urandom(1), "big")
        self._next = itertools.count(1)
        self._base = (layer & 0xFF) << 56 | epoch << 48

    def __call__(self) -> int:
        return self._base | next(self._next) & 0xFFFF_FFFF_FFFF


_local_ids = PacketIds(pb.LAYER_UNSPECIFIED)


def _new_epoch_after_fork() -> None:
    """A forked service (pktpath.forkserver) numbers from an epoch of its own, not its parent's."""
    global _local_ids
    _local_ids = PacketIds(pb.LAYER_UNSPECIFIED)


os.register_at_fork(after_in_child=_new_epoch_after_fork)

# When a traced packet's events happen: CLOCK_REALTIME, not CLOCK_MONOTONIC, so that the events of
# hosts on different machines fall on one time line (as well as the machines' clocks agree: NTP keeps
# them within a millisecond or so), and a journey's spans need no conversion to the epoch.
event_time_ns = time.time_ns


class SkBuff:
    __slots__ = (
        "id", "origin_host", "clone_of", "copy_of",
        "buf", "data", "tail", "end",
        "mac_header", "network_header", "transport_header",
        "protocol", "dev", "pkt_type", "mark", "priority", "sk", "truesize", "cb", "nexthop", "tstamp",
        "ip_summed", "gso_size", "gso_segs", "traceparent", "sampled", "events", "prior_events", "shinfo",
    )

    def __init__(self, buf, data: int, tail: int, end: int, *, id: int = 0, origin_host: str = "",
                 sampled: bool = True) -> None:
        self.id = id or _local_ids()
        self.origin_host = origin_host
        self.clone_of = 0
        self.copy_of = 0
        self.buf = buf  # bytes (read-only, as received) or bytearray; see writable()
        self.data = data
        self.tail = tail
        self.end = end
        self.mac_header = self.network_header = self.transport_header = UNSET
        self.protocol = 0
        self.dev = ""
        self.pkt_type = pb.PACKET_HOST
        self.mark = self.priority = self.sk = 0
        self.truesize = 0  # held against sk's sk_wmem_alloc until freed (skb_set_owner_w); 0: not charged
        self.cb = b""
        self.nexthop = 0  # the next hop for L2, IPv4's or IPv6's by protocol (the kernel keeps it in skb_dst)
        self.tstamp = 0   # receive time, ns since the epoch (skb->tstamp); 0: none
        self.ip_summed = 0  # CHECKSUM_NONE; pktpath.offload names the others
        self.gso_size = self.gso_segs = 0  # skb_shinfo()'s, for GRO and GSO packets
        self.traceparent = ""
        self.sampled = sampled
        self.events: list[tuple] = []
        self.prior_events = ()  # events from earlier hops, still in protobuf form
        self.shinfo = _SharedInfo()

    # -- geometry ---------------------------------------------------------
    @property
    def len(self) -> int:
        return self.tail - self.data

    def headroom(self) -> int:
        return self.data

    def tailroom(self) -> int:
        return self.end - self.tail

    def cloned(self) -> bool:
        return self.shinfo.dataref > 1

    def payload(self) -> memoryview:
        """A read-only view of [data, tail): no copy."""
        return memoryview(self.buf)[self.data:self.tail].toreadonly()

    def writable(self) -> bytearray:
        """The buffer as a bytearray, turning a received read-only buffer into one.

        That conversion is the cost of Python's immutable bytes, not a kernel
        copy, so it records no COPY event.
        """
        if type(self.buf) is not bytearray:
            buf = bytearray(self.end)
            buf[:len(self.buf)] = self.buf
            self.buf = buf
        elif len(self.buf) < self.end:
            self.buf.extend(bytes(self.end - len(self.buf)))
        return self.buf

    # -- events -----------------------------------------------------------
    def record(self, kind: int, layer: int, host: str, func: str, nbytes: int | None = None,
               reason: int = 0, copy_from: str = "", copy_to: str = "") -> None:
        """An event of a sampled packet; nbytes defaults to the skb's length. ENTER and
        EXIT keep a snapshot of the headers at data (the journey view shows them). COPY,
        CLONE and DMA are counted for every packet (group Moves: "COPY func" -> times,
        MoveBytes: -> bytes), sampled or not."""
        if COPY <= kind <= DMA:
            count_move(kind, func, self.tail - self.data if nbytes is None else nbytes)
        elif kind == ENTER and _enter_hook is not None:
            _enter_hook(self, layer, func)
        if self.sampled:
            head, head_type = self.head_snapshot(layer) if kind in (ENTER, EXIT) else (b"", "")
            self.events.append((kind, layer, host, func, event_time_ns(),
                                self.tail - self.data if nbytes is None else nbytes, reason, copy_from, copy_to,
                                head, head_type))

    def head_snapshot(self, layer: int) -> tuple[bytes, str]:
        """The first HEAD_SNAPSHOT bytes at data, and which header starts there: below L3
        a frame no one parsed yet (no header offset set) starts with its Ethernet header."""
        d = self.data
        if d == self.mac_header or (layer in _FRAME_LAYERS and self.mac_header == self.network_header == UNSET):
            kind = "eth"
        else:
            kind = "ip" if d == self.network_header else "l4" if d == self.transport_header else "data"
        return bytes(memoryview(self.buf)[d:min(self.tail, d + HEAD_SNAPSHOT)]), kind

    def all_events(self) -> list[tuple]:
        """Every event, earlier hops' first, as (kind, layer, host, func, ts_ns,
        bytes, reason, copy_from, copy_to, head, head_type) tuples."""
        prior = [(e.kind, e.layer, e.host, e.func, e.ts_ns, e.bytes, e.reason, e.copy_from, e.copy_to, e.head,
                  e.head_type) for e in self.prior_events]
        return prior + self.events

    def __repr__(self) -> str:
        return (f"<SkBuff id={self.id:#x} len={self.len} headroom={self.data} tailroom={self.end - self.tail}"
                f" protocol={self.protocol:#06x} dev={self.dev!r}>")


def count_move(kind: int, func: str, nbytes: int, n: int = 1) -> None:
    """A COPY, CLONE or DMA of any packet, sampled or not: n times, nbytes in all."""
    name = f"{_KIND_NAMES[kind]} {func}"
    PROCESS.inc(MOVES, name, n)
    PROCESS.inc(MOVE_BYTES, name, nbytes)


# -- allocation and geometry (include/linux/skbuff.h) ------------------------

SKB_TRUESIZE_OVERHEAD = 576  # SKB_DATA_ALIGN(sizeof(struct sk_buff)) + SKB_DATA_ALIGN(sizeof(skb_shared_info)), x86-64


def skb_truesize(nbytes: int) -> int:
    """SKB_TRUESIZE(): what an skb of nbytes costs its socket's memory accounting."""
    return nbytes + SKB_TRUESIZE_OVERHEAD


def alloc_skb(size: int, *, id: int = 0, origin_host: str = "", sampled: bool = True) -> SkBuff:
    """alloc_skb(): an empty skb with `size` bytes of buffer, data == tail == head."""
    if size < 0:
        raise SkbError(f"alloc_skb: negative size {size}")
    return SkBuff(bytearray(size), 0, 0, size, id=id, origin_host=origin_host, sampled=sampled)


def skb_reserve(skb: SkBuff, n: int) -> None:
    """skb_reserve(): make headroom in an empty skb."""
    if skb.tail != skb.data:
        raise SkbError("skb_reserve on an skb that already holds data")
    if n < 0 or skb.tail + n > skb.end:
        raise SkbError(f"skb_reserve {n}: only {skb.end - skb.tail} bytes of tailroom")
    skb.data += n
    skb.tail += n


def skb_put(skb: SkBuff, n: int) -> int:
    """skb_put(): extend the data at the tail by n bytes; returns the offset of the new area."""
    if n < 0 or skb.tail + n > skb.end:
        raise SkbError(f"skb_over_panic: put {n} with {skb.end - skb.tail} bytes of tailroom")
    if skb.cloned():
        raise SkbError("skb_put on a cloned skb: the tailroom is shared; skb_copy it first")
    offset = skb.tail
    skb.tail += n
    return offset


def skb_put_data(skb: SkBuff, data) -> int:
    """skb_put_data(): skb_put and fill the new area with `data`."""
    offset = skb_put(skb, len(data))
    skb.writable()[offset:offset + len(data)] = data
    return offset


def skb_push(skb: SkBuff, n: int) -> int:
    """skb_push(): extend the data at the head by n bytes of headroom; returns the new data offset."""
    if n < 0 or n > skb.data:
        raise SkbError(f"skb_under_panic: push {n} with {skb.data} bytes of headroom")
    skb.data -= n
    return skb.data


def skb_push_data(skb: SkBuff, header) -> int:
    """skb_push() and write `header` there: how every TX layer adds its header."""
    offset = skb_push(skb, len(header))
    skb.writable()[offset:offset + len(header)] = header
    return offset


def skb_pull(skb: SkBuff, n: int) -> int:
    """skb_pull(): strip n bytes from the head of the data (no copy); returns the new data offset.

    The kernel returns NULL when len < n; pktpath raises so no caller can miss it.
    """
    if n < 0 or n > skb.len:
        raise SkbError(f"skb_pull {n} from an skb of len {skb.len}")
    skb.data += n
    return skb.data


def pskb_may_pull(skb: SkBuff, n: int) -> bool:
    """pskb_may_pull(): are n bytes of data present (linear skbs: a length check)?"""
    return skb.len >= n


def skb_trim(skb: SkBuff, length: int) -> None:
    """skb_trim(): cut the data to `length` bytes (drop link padding)."""
    if length < 0:
        raise SkbError(f"skb_trim to {length}")
    if length < skb.len:
        skb.tail = skb.data + length


def skb_reset_mac_header(skb: SkBuff) -> None:
    skb.mac_header = skb.data


def skb_reset_network_header(skb: SkBuff) -> None:
    skb.network_header = skb.data


def skb_reset_transport_header(skb: SkBuff) -> None:
    skb.transport_header = skb.data


def _check_offset(skb: SkBuff, offset: int) -> int:
    pos = skb.data + offset
    if not 0 <= pos <= skb.tail:
        raise SkbError(f"header offset {offset} outside the data of len {skb.len}")
    return pos


def skb_set_mac_header(skb: SkBuff, offset: int) -> None:
    skb.mac_header = _check_offset(skb, offset)


def skb_set_network_header(skb: SkBuff, offset: int) -> None:
    skb.network_header = _check_offset(skb, offset)


def skb_set_transport_header(skb: SkBuff, offset: int) -> None:
    skb.transport_header = _check_offset(skb, offset)


def skb_network_header(skb: SkBuff) -> memoryview:
    """The bytes from the network header to the tail (ip_hdr() and what follows)."""
    if skb.network_header == UNSET:
        raise SkbError("network header not set")
    return memoryview(skb.buf)[skb.network_header:skb.tail].toreadonly()


def skb_transport_header(skb: SkBuff) -> memoryview:
    if skb.transport_header == UNSET:
        raise SkbError("transport header not set")
    return memoryview(skb.buf)[skb.transport_header:skb.tail].toreadonly()


def skb_mac_header(skb: SkBuff) -> memoryview:
    if skb.mac_header == UNSET:
        raise SkbError("mac header not set")
    return memoryview(skb.buf)[skb.mac_header:skb.tail].toreadonly()


# -- clone, copy, free (net/core/skbuff.c) -----------------------------------

_COPIED_FIELDS = ("origin_host", "data", "tail", "end", "mac_header", "network_header", "transport_header",
                  "protocol", "dev", "pkt_type", "mark", "priority", "sk", "cb", "nexthop", "tstamp", "ip_summed",
                  "gso_size", "gso_segs", "traceparent", "sampled")


def _copy_header(skb: SkBuff, buf, id: int) -> SkBuff:
    new = SkBuff(buf, skb.data, skb.tail, skb.end, id=id, sampled=skb.sampled)
    for name in _COPIED_FIELDS:
        setattr(new, name, getattr(skb, name))
    return new


def skb_clone(skb: SkBuff, layer: int, host: str, func: str = "skb_clone", *, id: int = 0) -> SkBuff:
    """skb_clone(): a new sk_buff header over the same data (dataref + 1). A CLONE event, not a COPY."""
    clone = _copy_header(skb, skb.buf, id)
    clone.shinfo = skb.shinfo
    skb.shinfo.dataref += 1
    clone.clone_of = skb.id
    clone.record(CLONE, layer, host, func, SKB_HEADER_SIZE)
    return clone


def skb_clone_for_xmit(skb: SkBuff, layer: int, host: str, func: str = "skb_clone") -> SkBuff:
    """skb_clone() of a queued original whose clone leaves this process (TCP's every
    transmission). The CLONE event is the kernel's: header copied, data shared. The
    clone still gets its own Python buffer: the next layer serializes it later, and a
    retransmission pushing its header into the shared headroom meanwhile must not
    change it. That copy is the process boundary's, like to_proto's, not the kernel's."""
    clone = _copy_header(skb, bytearray(skb.buf), 0)
    clone.clone_of = skb.id
    clone.record(CLONE, layer, host, func, SKB_HEADER_SIZE)
    return clone


def skb_copy(skb: SkBuff, layer: int, host: str, func: str = "skb_copy", *, id: int = 0) -> SkBuff:
    """skb_copy(): a private copy of header and data (headroom included, as the kernel copies it).

    A COPY event of headroom + len bytes.
    """
    nbytes = skb.tail  # head..tail: headroom and data
    buf = bytearray(skb.end)
    buf[:nbytes] = memoryview(skb.buf)[:nbytes]
    copy = _copy_header(skb, buf, id)
    copy.copy_of = skb.id
    copy.record(COPY, layer, host, func, nbytes, copy_from="skb", copy_to="skb")
    return copy


_finish_hook = None
_enter_hook = None
_destructors: dict = {}


def set_enter_hook(hook) -> None:
    """Call hook(skb, layer, func) for every skb entering a layer in this process, sampled
    or not (a capture at the layer's boundary: pktpath/taps.py). None: nobody listens."""
    global _enter_hook
    _enter_hook = hook


def entered(skb: SkBuff, layer: int, func: str) -> None:
    """skb enters a layer whose ENTER event is written by hand (the NAPI poll's)."""
    if _enter_hook is not None:
        _enter_hook(skb, layer, func)


def set_finish_hook(hook) -> None:
    """Call hook(skb) for every sampled skb freed in this process, its events complete
    (a service keeps them for tools: pktpath/trace.py). None: nobody listens."""
    global _finish_hook
    _finish_hook = hook


def set_destructor(host: str, destructor) -> None:
    """Call destructor(skb) when an skb of `host` charged to its socket (skb.truesize) is
    freed in this process (tcp_wfree: the socket's sk_wmem_alloc goes down); None: remove it."""
    if destructor is None:
        _destructors.pop(host, None)
    else:
        _destructors[host] = destructor


def skb_orphan(skb: SkBuff, host: str) -> None:
    """skb_orphan(): run the skb's destructor now and charge it no longer: its socket gets
    its truesize back (loopback_xmit, tun's xmit, and every free of a charged skb)."""
    if skb.truesize:
        destructor = _destructors.get(host)
        if destructor is not None:
            destructor(skb)
        skb.truesize = 0


def _release(skb: SkBuff, layer: int, host: str, func: str, *, stolen: bool = False) -> None:
    if skb.truesize:
        skb_orphan(skb, host)
    skb.shinfo.dataref -= 1
    # FREE carries the buffer's size when this was its last reference, else 0 (header only).
    skb.record(FREE, layer, host, func, skb.end if skb.shinfo.dataref == 0 and not stolen else 0)
    if skb.sampled and _finish_hook is not None:
        _finish_hook(skb)


def kfree_skb_reason(skb: SkBuff, reason: int, layer: int, host: str, func: str) -> None:
    """kfree_skb_reason(): a drop. A DROP event naming `reason`, then the free."""
    if reason in (pb.SKB_NOT_DROPPED_YET, pb.SKB_CONSUMED):
        raise SkbError("a drop needs a reason: use consume_skb for packets that were not dropped")
    skb.record(DROP, layer, host, func, skb.len, reason)
    _release(skb, layer, host, func)


def consume_skb(skb: SkBuff, layer: int, host: str, func: str = "consume_skb") -> None:
    """consume_skb(): the packet was used, not dropped."""
    _release(skb, layer, host, func)


def napi_skb_free_stolen_head(skb: SkBuff, layer: int, host: str, func: str) -> None:
    """napi_skb_free_stolen_head(): GRO merged this skb's data into another packet; only
    the sk_buff is freed (FREE of 0 bytes), the data lives on there."""
    _release(skb, layer, host, func, stolen=True)


# -- protobuf conversion ----------------------------------------------------

def to_proto(skb: SkBuff, out: "pb.SkBuff | None" = None) -> "pb.SkBuff":
    """Fill `out`, a fresh message (e.g. batch.skbs.add()), from skb. The buffer is copied
    once, into the message; the tailroom is not sent, only its size (end). Fields at
    their default are left unset: the same bytes on the wire, a third less time."""
    m = pb.SkBuff() if out is None else out
    m.id = skb.id
    if skb.origin_host:
        m.origin_host = skb.origin_host
    if skb.clone_of:
        m.clone_of = skb.clone_of
    if skb.copy_of:
        m.copy_of = skb.copy_of
    buf = skb.buf
    m.buf = buf if type(buf) is bytes and len(buf) == skb.tail else bytes(memoryview(buf)[:skb.tail])
    m.data = skb.data
    m.tail = skb.tail
    m.end = skb.end
    m.mac_header = skb.mac_header
    m.network_header = skb.network_header
    m.transport_header = skb.transport_header
    if skb.protocol:
        m.protocol = skb.protocol
    if skb.dev:
        m.dev = skb.dev
    if skb.pkt_type:
        m.pkt_type = skb.pkt_type
    if skb.mark:
        m.mark = skb.mark
    if skb.priority:
        m.priority = skb.priority
    if skb.sk:
        m.sk = skb.sk
    if skb.truesize:
        m.truesize = skb.truesize
    if skb.cb:
        m.cb = skb.cb
    if skb.nexthop:
        if skb.protocol == ETH_P_IPV6:
            m.nexthop6 = skb.nexthop.to_bytes(16, "big")
        else:
            m.nexthop = skb.nexthop
    if skb.tstamp:
        m.tstamp = skb.tstamp
    if skb.ip_summed:
        m.ip_summed = skb.ip_summed
    if skb.gso_size:
        m.gso_size = skb.gso_size
        m.gso_segs = skb.gso_segs
    if skb.traceparent:
        m.traceparent = skb.traceparent
    if skb.sampled:
        m.sampled = True
        export_events(skb, m.events)
    return m


def to_batch(skbs) -> "pb.SkBuffBatch":
    """One message for a list of skbs: what every hop sends."""
    batch = pb.SkBuffBatch()
    add = batch.skbs.add
    for skb in skbs:
        to_proto(skb, add())
    return batch


def checked(m: "pb.SkBuff", mib, network: int = 0, transport: int = 0) -> SkBuff | None:
    """from_proto() where an skb enters a layer: one that does not hold together, or lacks
    the headers the layer reads (`network`, `transport`: bytes that must be in the buffer
    at those offsets, as the layer below has pulled them), is dropped alone and counted
    under its reason (PKTPATH_DROP_REASON_BAD_SKB); None then."""
    try:
        skb = from_proto(m)
    except SkbError:
        mib.drop(pb.PKTPATH_DROP_REASON_BAD_SKB)
        return None
    for offset, need in ((skb.network_header, network), (skb.transport_header, transport)):
        if need and (offset == UNSET or offset + need > skb.tail):
            mib.drop(pb.PKTPATH_DROP_REASON_BAD_SKB)
            return None
    return skb


def from_protos(msgs, mib, network: int = 0, transport: int = 0) -> list[SkBuff]:
    """checked() of each message of a batch: the bad ones dropped alone, the rest go on."""
    return [skb for skb in (checked(m, mib, network, transport) for m in msgs) if skb is not None]


def disposition(accepted: int, dropped: int, reason: int = 0) -> "pb.Disposition":
    """A hop's answer; when every drop had one reason, it is named."""
    d = pb.Disposition(accepted=accepted, dropped=dropped)
    if dropped and reason:
        d.drops.add(reason=reason, count=dropped)
    return d


def export_events(skb: SkBuff, events, *, heads: bool = True) -> None:
    """Append all of skb's events, earlier hops' first, to a repeated SkbEvent field;
    without their header snapshots when heads is False (a frame's events must fit its
    ring slot beside it: the layers that took the snapshots keep them in their records)."""
    events.extend(skb.prior_events)
    if not heads:
        for e in events:
            e.ClearField("head")
    for kind, layer, host, func, ts_ns, nbytes, reason, copy_from, copy_to, head, head_type in skb.events:
        events.add(kind=kind, layer=layer, host=host, func=func, ts_ns=ts_ns, bytes=nbytes,
                   reason=reason, copy_from=copy_from, copy_to=copy_to, head=head if heads else b"",
                   head_type=head_type)


def from_proto(m: "pb.SkBuff") -> SkBuff:
    """An SkBuff over the message's buffer: no copy until a layer writes into it.

    Earlier hops' events stay in protobuf form (prior_events) and are passed on
    as they are, not converted back and forth at every hop. Every hop runs this
    for every packet, so it sets each slot once instead of going through
    __init__ (a quarter less time).
    """
    data, tail, end, buf = m.data, m.tail, m.end, m.buf
    if not data <= tail <= end <= SKB_MAX_END or len(buf) != tail:
        raise SkbError(f"malformed SkBuff {m.id:#x}: data={data} tail={tail} end={end} buf={len(buf)}")
    for offset in (m.mac_header, m.network_header, m.transport_header):
        if offset != UNSET and offset > tail:
            raise SkbError(f"malformed SkBuff {m.id:#x}: a header offset {offset} past tail={tail}")
    if m.gso_size and not TCP_MIN_MSS <= m.gso_size <= GSO_MAX_SIZE or m.gso_segs > GSO_MAX_SEGS:
        raise SkbError(f"malformed SkBuff {m.id:#x}: gso_size={m.gso_size} gso_segs={m.gso_segs}")
    skb = _new_skb(SkBuff)
    skb.id = m.id
    skb.origin_host = m.origin_host
    skb.clone_of = m.clone_of
    skb.copy_of = m.copy_of
    skb.buf = buf
    skb.data = data
    skb.tail = tail
    skb.end = end
    skb.mac_header = m.mac_header
    skb.network_header = m.network_header
    skb.transport_header = m.transport_header
    skb.protocol = m.protocol
    skb.dev = m.dev
    skb.pkt_type = m.pkt_type
    skb.mark = m.mark
    skb.priority = m.priority
    skb.sk = m.sk
    skb.truesize = m.truesize
    skb.cb = m.cb
    skb.nexthop = int.from_bytes(m.nexthop6, "big") if m.nexthop6 else m.nexthop
    skb.tstamp = m.tstamp
    skb.ip_summed = m.ip_summed
    skb.gso_size = m.gso_size
    skb.gso_segs = m.gso_segs
    skb.traceparent = m.traceparent
    skb.sampled = sampled = m.sampled
    skb.events = []
    skb.prior_events = m.events if sampled else ()
    skb.shinfo = _SharedInfo()
    return skb


_new_skb = object.__new__
