"""The sampled packets that finished in this process, kept for tools to read, and
the sampler that says which packets are traced.

When a sampled skb is freed (consumed after delivery, dropped, or freed after
transmission), skbuff's finish hook hands it here: a bounded buffer of
records (the skb's identity, lineage and every event, earlier hops' too, but
no data), numbered so a reader can ask for what is new, as the kernel's trace
ring buffer keeps the newest and counts what it overwrote. Every layer
service serves it (pktpath.v1.Trace); the orchestrator collects it.

The sampler decides where a packet is made (a socket layer's send): a share of
all packets (OTEL_TRACES_SAMPLER_ARG, as OpenTelemetry's traceidratio sampler
reads it; 1 % when unset), the first packets of every second on top of that
(PKTPATH_TRACES_PER_SECOND, 10 when unset: Jaeger's rate-limiting sampler, so
that a ping or a few datagrams are seen whole while a bulk transfer is traced
at the share), and every packet of the flows a filter names. The orchestrator
sets all three at run time through SetSampler.
"""

import os
import random
import struct
import threading
import time
from collections import deque
from typing import NamedTuple

from pktpath import skbuff as s
from pktpath import validate
from pktpath.counters import PROCESS
from pktpath.pcapfilter import compile_filter, flow_packet
from pktpath.pb import skbuff_pb2, trace_pb2
from pktpath.ratelimit import TokenBucket
from pktpath.wire.addr import ip6_from_str, ip6_to_str, ip_from_str, ip_to_str, ipv6_addr_v4mapped
from pktpath.wire.ipv6 import NEXTHDR_FRAGMENT, ipv6_skip_exthdr

CAPACITY = 4096
MAX_PER_SECOND = 1e6  # traces a second: far more than any collector takes
MAX_PER_REPLY = 1024  # records of ~1.1 kB each: a reply stays well under gRPC's 4 MB limit
# A record is a packet's events: some dozens of ~100 bytes. One beyond this came from a
# frame that claimed a history it cannot have had (an injected one): it keeps the events
# that fit and is counted (Trace RecordsTrimmed); 4096 of them stay under 128 MiB.
MAX_RECORD_BYTES = 32 * 1024
SAMPLER_ARG = "OTEL_TRACES_SAMPLER_ARG"  # OpenTelemetry's ratio for its traceidratio sampler
PER_SECOND_ENV = "PKTPATH_TRACES_PER_SECOND"  # traces per second besides the ratio
DEFAULT_RATE, DEFAULT_PER_SECOND = 0.01, 10
PROTOCOLS = {1: "icmp", 6: "tcp", 17: "udp", 58: "icmp6"}
PROTOCOL_NUMBERS = {name: number for number, name in PROTOCOLS.items()}
_V4_MASK = 0xFFFFFFFF


class FlowKey(NamedTuple):
    """A packet's addresses, protocol and ports, host order (ports 0 for ICMP), and its IP
    version: an IPv6 flow's addresses are 128-bit ints (family 6), its protocol the upper-layer
    header's (an extension header's next header followed to it)."""
    saddr: int
    daddr: int
    protocol: int
    sport: int = 0
    dport: int = 0
    family: int = 4

    def __str__(self) -> str:
        name = PROTOCOLS.get(self.protocol, str(self.protocol))
        if self.family == 6:  # RFC 5952's [address]:port, as ss prints IPv6
            src, dst = ip6_to_str(self.saddr), ip6_to_str(self.daddr)
            if self.protocol in (6, 17) and (self.sport or self.dport):
                return f"[{src}]:{self.sport} > [{dst}]:{self.dport} {name}"
            return f"{src} > {dst} {name}"
        if self.protocol in (6, 17) and (self.sport or self.dport):  # a later fragment has no ports
            return f"{ip_to_str(self.saddr)}:{self.sport} > {ip_to_str(self.daddr)}:{self.dport} {name}"
        return f"{ip_to_str(self.saddr)} > {ip_to_str(self.daddr)} {name}"


def socket_flow(saddr: int, daddr: int, protocol: int, sport: int = 0, dport: int = 0, *,
                ipv6: bool = False) -> FlowKey:
    """The flow of what a socket is about to send: an AF_INET6 socket's (ipv6) is IPv6's,
    unless its destination is v4-mapped (::ffff:a.b.c.d), which goes out as IPv4
    (udpv6_sendmsg hands it to udp_sendmsg, tcp_v6_connect to tcp_v4_connect)."""
    if not ipv6:
        return FlowKey(saddr, daddr, protocol, sport, dport)
    if ipv6_addr_v4mapped(daddr):
        return FlowKey(saddr & _V4_MASK if ipv6_addr_v4mapped(saddr) else 0, daddr & _V4_MASK, protocol, sport,
                       dport)
    return FlowKey(saddr, daddr, protocol, sport, dport, 6)


def ip_flow(packet) -> FlowKey | None:
    """The flow of the IP packet (IPv4 or IPv6, maybe cut short) at the start of packet:
    TCP's and UDP's ports unless it is a later fragment. IPv6's extension headers are
    followed to the upper-layer header (ipv6_skip_exthdr); a later fragment's protocol is
    its fragment header's next header. None when it is not an IP header (or an IPv4 one
    whose header length is short or past the bytes there)."""
    n = len(packet)
    if n >= 20 and packet[0] >> 4 == 4:
        ihl = (packet[0] & 0x0F) * 4
        if not 20 <= ihl <= n:
            return None
        protocol = packet[9]
        saddr, daddr = struct.unpack_from("!II", packet, 12)
        first = struct.unpack_from("!H", packet, 6)[0] & 0x1FFF == 0
        if protocol in (6, 17) and first and n >= ihl + 4:
            return FlowKey(saddr, daddr, protocol, *struct.unpack_from("!HH", packet, ihl))
        return FlowKey(saddr, daddr, protocol)
    if n >= 40 and packet[0] >> 4 == 6:
        saddr, daddr = int.from_bytes(packet[8:24], "big"), int.from_bytes(packet[24:40], "big")
        offset, protocol, _ = ipv6_skip_exthdr(packet, 40, packet[6])
        if protocol == NEXTHDR_FRAGMENT:  # a later fragment: its upper layer's header is in the first
            return FlowKey(saddr, daddr, packet[offset] if 0 <= offset < n else protocol,
                           family=6)
        if offset >= 0 and protocol in (6, 17) and n >= offset + 4:
            return FlowKey(saddr, daddr, protocol, *struct.unpack_from("!HH", packet, offset), family=6)
        return FlowKey(saddr, daddr, protocol, family=6)
    return None


def frame_flow(frame: bytes) -> FlowKey | None:
    """The flow of an Ethernet frame that carries IPv4 or IPv6 (ip_flow); None for anything
    else. For sampling frames that arrive from outside."""
    if len(frame) < 14 or frame[12:14] not in (b"\x08\x00", b"\x86\xdd"):
        return None
    flow = ip_flow(memoryview(frame)[14:])
    if flow is None or (flow.family == 6) != (frame[12:14] == b"\x86\xdd"):
        return None
    return flow


class PacketMatch:
    """A PacketFilter, compiled: matches(flow) is every field given matching."""

    def __init__(self, f: "trace_pb2.PacketFilter") -> None:
        self.addr, self.saddr, self.daddr = (_address(text) for text in (f.addr, f.saddr, f.daddr))
        if f.protocol and f.protocol not in PROTOCOL_NUMBERS:
            raise ValueError(f"filter: protocol {f.protocol!r} is not one of {', '.join(PROTOCOL_NUMBERS)}")
        self.protocol = PROTOCOL_NUMBERS.get(f.protocol)
        self.port, self.sport, self.dport = f.port or None, f.sport or None, f.dport or None
        self.program = None
        if f.expression:
            try:
                self.program = compile_filter(f.expression)
            except ValueError as exc:
                raise ValueError(f"filter: {exc}") from None

    @property
    def matches_all(self) -> bool:
        """No field given: every packet matches, those with no flow too."""
        return all(v is None for v in (self.addr, self.saddr, self.daddr, self.protocol, self.port, self.sport,
                                       self.dport, self.program))

    def matches(self, flow: FlowKey | None) -> bool:
        if flow is None:
            return self.matches_all
        if self.program is not None and not self.program.filter(flow_packet(*flow)):
            return False
        saddr, daddr = (flow.family, flow.saddr), (flow.family, flow.daddr)
        return ((self.addr is None or self.addr in (saddr, daddr))
                and (self.saddr is None or self.saddr == saddr)
                and (self.daddr is None or self.daddr == daddr)
                and (self.protocol is None or self.protocol == flow.protocol)
                and (self.port is None or self.port in (flow.sport, flow.dport))
                and (self.sport is None or self.sport == flow.sport)
                and (self.dport is None or self.dport == flow.dport))


def _address(text: str) -> tuple[int, int] | None:
    """A filter's address as (IP version, the address as an int); None when not given."""
    if not text:
        return None
    try:
        return (6, ip6_from_str(text)) if ":" in text else (4, ip_from_str(text))
    except ValueError as exc:
        raise ValueError(f"filter: not an IPv4 or IPv6 address: {exc}") from None


def _from_env(name: str, default: float, check, what: str) -> float:
    text = os.environ.get(name)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not check(value):
        raise ValueError(f"{name}={text!r}: not {what}")
    return value


class Sampler:
    """Is the packet about to be made traced? sampler(flow) -> bool; cheap on every send."""

    def __init__(self, rate: float | None = None, per_second: float | None = None) -> None:
        self.rate = _from_env(SAMPLER_ARG, DEFAULT_RATE, lambda r: 0 <= r <= 1, "a ratio between 0 and 1") \
            if rate is None else rate
        self.per_second = _from_env(PER_SECOND_ENV, DEFAULT_PER_SECOND, lambda r: r >= 0, "a number of traces") \
            if per_second is None else per_second
        self.flows: list = []                 # the PacketFilter messages, as set
        self._matches: list[PacketMatch] = []
        # the clock looked up at each call, so a test can move time
        self._bucket = TokenBucket(self.per_second, self.per_second, lambda: time.monotonic())

    def __call__(self, flow: FlowKey | None = None) -> bool:
        if self.rate >= 1 or (self.rate > 0 and random.random() < self.rate):
            return True
        if self._matches and any(m.matches(flow) for m in self._matches):
            return True
        return self.per_second > 0 and self._bucket.take()  # a second's worth at most

    def set(self, sampling: "trace_pb2.Sampling") -> None:
        """What SetSampler asks: a new rate and per-second floor (unless keep_rate) and the
        flows to trace, all checked before any takes effect."""
        if not sampling.keep_rate:
            validate.finite(sampling.rate, "rate", 0, 1)
            validate.finite(sampling.per_second, "per_second", 0, MAX_PER_SECOND)
        matches = [PacketMatch(f) for f in sampling.flows]
        if not sampling.keep_rate:
            self.rate, self.per_second = sampling.rate, sampling.per_second
            self._bucket.set(self.per_second, self.per_second)
        self.flows, self._matches = list(sampling.flows), matches

    def to_proto(self) -> "trace_pb2.Sampling":
        return trace_pb2.Sampling(rate=self.rate, per_second=self.per_second, flows=self.flows)


_sampler: Sampler | None = None


def sampler() -> Sampler:
    """This process's sampler, made on first use (the environment is read then)."""
    global _sampler
    if _sampler is None:
        _sampler = Sampler()
    return _sampler


def trim(record) -> None:
    """Keep the first events that fit MAX_RECORD_BYTES (the packet's own are the last)."""
    size = record.ByteSize() - sum(e.ByteSize() + 3 for e in record.events)
    keep = 0
    for e in record.events:
        size += e.ByteSize() + 3  # the field's tag and length
        if size > MAX_RECORD_BYTES:
            break
        keep += 1
    del record.events[keep:]


class FinishedPackets:
    def __init__(self, capacity: int = CAPACITY) -> None:
        self._lock = threading.Lock()
        self._records: deque = deque(maxlen=capacity)  # (seq, SkBuff record)
        self._seq = 0
        self._lost = 0

    def add(self, skb) -> None:
        record = skbuff_pb2.SkBuff(id=skb.id, origin_host=skb.origin_host, clone_of=skb.clone_of,
                                   copy_of=skb.copy_of, sampled=True)
        s.export_events(skb, record.events)
        if record.ByteSize() > MAX_RECORD_BYTES:
            trim(record)
            PROCESS.inc("Trace", "RecordsTrimmed")
        with self._lock:
            if len(self._records) == self._records.maxlen:
                self._lost += 1
            self._seq += 1
            self._records.append((self._seq, record))

    def after(self, after_seq: int) -> "trace_pb2.FinishedPackets":
        """The records newer than after_seq, as many as one reply carries."""
        reply = trace_pb2.FinishedPackets()
        with self._lock:
            newer = [(seq, r) for seq, r in self._records if seq > after_seq]
            taken = newer[:MAX_PER_REPLY]
            reply.skbs.extend(r for _, r in taken)
            reply.last_seq = taken[-1][0] if taken else self._seq
            reply.more, reply.lost = len(newer) > len(taken), self._lost
        return reply


def parse_filter(words: list[str]) -> "trace_pb2.PacketFilter":
    """A pcap-filter expression, as pwru and tcpdump take it, as a PacketFilter: compiled
    here by libpcap, so that a bad one is said at once (ValueError "filter: ...")."""
    f = trace_pb2.PacketFilter(expression=" ".join(words).strip())
    PacketMatch(f)
    return f
