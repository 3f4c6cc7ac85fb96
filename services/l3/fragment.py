"""IPv4 fragmentation and reassembly.

Reassembly models ip_defrag / ip_frag_queue / ip_frag_reasm / ip_expire
(net/ipv4/ip_fragment.c) with inet_frag_queue_insert (net/ipv4/inet_fragment.c):
fragments are queued by (saddr, daddr, id, protocol); a fragment wholly inside
one already queued is a duplicate and only it is dropped (DUP_FRAG); any other
overlap discards the whole datagram (RFC 5722's rule, which Linux applies to
IPv4 since 4.19: overlaps are how the FragmentSmack and teardrop attacks
work); a datagram that would exceed 65535 bytes is discarded (one ReasmFails,
nothing counted per fragment: see IpDefrag._reasm); a queue
still incomplete after ipfrag_time (30 s) expires, counting ReasmTimeout and
sending ICMP time exceeded (fragment reassembly) if its first fragment came.
Queued fragments are bounded by ipfrag_high_thresh (4 MB).

Fragmentation models ip_do_fragment (net/ipv4/ip_output.c): fragments of
(mtu - ihl) & ~7 bytes, MF on all but the last, options with the copied flag
repeated in each. Its slow path (forwarded packets) copies each fragment's
bytes into a new skb: a COPY event. Locally generated datagrams take the fast
path in the kernel, where ip_append_data already laid the data out as one skb
per fragment while copying it from the user: that copy is the socket's, so
pktpath records none here.

Pure logic: no gRPC.
"""

import time
from dataclasses import dataclass, field

from pktpath import skbuff as s
from pktpath.counters import Mib
from pktpath.pb import skbuff_pb2
from pktpath.wire.ipv4 import IP_DF, IP_MF, IP_OFFSET, IP_MAX_PACKET, IpHdr

pb = skbuff_pb2
L3 = pb.LAYER_L3
IPFRAG_TIME_S = 30.0
IPFRAG_HIGH_THRESH = 4 * 1024 * 1024
IPOPT_END, IPOPT_NOOP, IPOPT_COPY = 0, 1, 0x80


@dataclass
class IpFragQueue:
    """struct ipq: one datagram being reassembled."""

    key: tuple[int, int, int, int]
    created: float
    runs: list[tuple[int, int, bytes]] = field(default_factory=list)  # (offset, end, data), sorted
    skbs: list = field(default_factory=list)   # the fragments' skbs, freed or merged at the end
    first: "s.SkBuff | None" = None            # the offset-0 fragment: its header starts the datagram
    first_iph: IpHdr | None = None
    len: int = 0        # the datagram's payload length, as far as known
    last_in: bool = False
    meat: int = 0       # payload bytes received

    def complete(self) -> bool:
        return self.first is not None and self.last_in and self.meat == self.len


class IpDefrag:
    def __init__(self, host: str, mib: Mib, *, timeout_s: float = IPFRAG_TIME_S,
                 high_thresh: int = IPFRAG_HIGH_THRESH, clock=time.monotonic) -> None:
        self.host = host
        self.mib = mib
        self.timeout_s = timeout_s
        self.high_thresh = high_thresh
        self._clock = clock
        self._queues: dict[tuple, IpFragQueue] = {}
        self.mem = 0

    def _drop(self, skb, reason: int, func: str = "ip_defrag") -> None:
        s.kfree_skb_reason(skb, reason, L3, self.host, func)
        self.mib.drop(reason)

    def _kill(self, q: IpFragQueue, reason: int, func: str = "inet_frag_kill", *, counted: bool = True) -> None:
        """inet_frag_kill + freeing the queue: every fragment it held is dropped, each
        counted under `reason` unless not `counted` (the kernel consumed it)."""
        self._queues.pop(q.key, None)
        for skb in q.skbs:
            self.mem -= skb.end
            if counted:
                self._drop(skb, reason, func)
            else:
                s.kfree_skb_reason(skb, reason, L3, self.host, func)
        q.skbs.clear()

    def defrag(self, skb, iph: IpHdr):
        """ip_defrag(): skb (data at its IP header) is a fragment. Returns the reassembled
        skb when this one completes its datagram, else None (queued or dropped)."""
        self.mib.inc("Ip", "ReasmReqds")
        if self.mem > self.high_thresh:  # inet_frag_find refuses every fragment over the limit
            self.mib.inc("Ip", "ReasmFails")
            self._drop(skb, pb.SKB_DROP_REASON_NOMEM)
            return None
        key = (iph.saddr, iph.daddr, iph.id, iph.protocol)
        q = self._queues.get(key)
        if q is None:
            q = self._queues[key] = IpFragQueue(key, self._clock())
        return self._queue(q, skb, iph)

    def _queue(self, q: IpFragQueue, skb, iph: IpHdr):
        """ip_frag_queue()."""
        ihl = iph.header_len
        offset = iph.frag_offset
        data = bytes(skb.payload()[ihl:])  # the payload after the IP header
        end = offset + len(data)
        if not iph.mf:  # the last fragment fixes the datagram's length
            if end < q.len or (q.last_in and end != q.len):
                return self._discard(q, skb)
            q.last_in = True
            q.len = end
        else:
            if end & 7:  # a non-last fragment's payload is a multiple of 8: trim the excess
                end &= ~7
                data = data[:end - offset]
            if end > q.len:
                if q.last_in:  # data beyond the end
                    return self._discard(q, skb)
                q.len = end
        if end == offset:
            return self._discard(q, skb)
        # inet_frag_queue_insert(): a fragment wholly inside a run of contiguous queued
        # fragments is a duplicate; any other overlap poisons the datagram.
        for r_off, r_end in _fragruns(q.runs):
            if offset < r_end and end > r_off:
                if r_off <= offset and end <= r_end:
                    self._drop(skb, pb.SKB_DROP_REASON_DUP_FRAG)
                    return None
                self.mib.inc("IpExt", "ReasmOverlaps")
                return self._discard(q, skb)
        q.runs.append((offset, end, data))
        q.runs.sort()
        q.skbs.append(skb)
        self.mem += skb.end
        q.meat += end - offset
        if offset == 0:
            q.first, q.first_iph = skb, iph
        if q.complete():
            return self._reasm(q)
        return None

    def _discard(self, q: IpFragQueue, skb):
        """discard_qp: the whole datagram goes, this fragment with it."""
        self.mib.inc("Ip", "ReasmFails")
        self._kill(q, pb.SKB_DROP_REASON_IP_INHDR)
        self._drop(skb, pb.SKB_DROP_REASON_IP_INHDR)
        return None

    def _reasm(self, q: IpFragQueue):
        """ip_frag_reasm(): the datagram is whole; the first fragment's skb carries it on.

        A datagram longer than 65535 bytes (out_oversize) counts one ReasmFails and
        nothing else, as on Linux 6.18: the kernel kills the queue without INET_FRAG_DROP,
        so inet_frag_destroy frees every fragment as SKB_CONSUMED, which no drop counter
        or dropwatch sees. pktpath still ends each fragment's record with a DROP naming
        why (PKT_TOO_BIG, the kernel's reason for a packet over a size limit, since it has
        none of its own here), but counts none of them under Drops."""
        head, iph = q.first, q.first_iph
        ihl = iph.header_len
        if ihl + q.len > IP_MAX_PACKET:  # out_oversize
            self.mib.inc("Ip", "ReasmFails")
            self._kill(q, pb.SKB_DROP_REASON_PKT_TOO_BIG, "ip_frag_reasm", counted=False)
            return None
        self._queues.pop(q.key, None)
        self.mem -= sum(skb.end for skb in q.skbs)
        header = iph._replace(frag_off=iph.frag_off & IP_DF).to_bytes(q.len)
        payload = b"".join(data for _, _, data in q.runs)
        # The kernel chains the fragments on the head's frag_list: no copy. pktpath
        # needs one linear buffer for the next hop, a Python artifact: no COPY event.
        headroom = head.data
        buf = bytearray(headroom + ihl + q.len)
        buf[:headroom] = memoryview(head.buf)[:headroom]  # the head's headroom, its Ethernet header with it
        buf[headroom:headroom + ihl] = header
        buf[headroom + ihl:] = payload
        head.buf, head.tail, head.end = buf, len(buf), len(buf)
        head.network_header = head.data
        head.transport_header = head.data + ihl
        for skb in q.skbs:
            if skb is not head:
                s.consume_skb(skb, L3, self.host, "ip_frag_reasm")
        self.mib.inc("Ip", "ReasmOKs")
        return head

    def expire(self, send_time_exceeded) -> int:
        """ip_expire() for every queue older than ipfrag_time; returns how many expired.
        send_time_exceeded(skb) is called with the first fragment, if it came, before
        the queue is freed (icmp_send ICMP_TIME_EXCEEDED / ICMP_EXC_FRAGTIME)."""
        now = self._clock()
        expired = [q for q in self._queues.values() if now - q.created >= self.timeout_s]
        for q in expired:
            self.mib.inc("Ip", "ReasmFails")
            self.mib.inc("Ip", "ReasmTimeout")
            if q.first is not None:
                send_time_exceeded(q.first)
            self._kill(q, pb.SKB_DROP_REASON_FRAG_REASM_TIMEOUT)
        return len(expired)

    def __len__(self) -> int:
        return len(self._queues)


def _fragruns(runs: list[tuple[int, int, bytes]]) -> list[tuple[int, int]]:
    """The queued fragments (sorted) merged into runs of contiguous bytes."""
    merged: list[list[int]] = []
    for off, end, _ in runs:
        if merged and merged[-1][1] == off:
            merged[-1][1] = end
        else:
            merged.append([off, end])
    return [(a, b) for a, b in merged]


def _copied_options(options: bytes) -> bytes:
    """ip_options_fragment(): options without the copied flag are overwritten with NOOPs,
    so every later fragment keeps the first one's header length."""
    out, i = bytearray(options), 0
    while i < len(out):
        kind = out[i]
        if kind == IPOPT_END:
            break
        if kind == IPOPT_NOOP:
            i += 1
            continue
        if i + 1 >= len(out) or out[i + 1] < 2:
            break  # malformed: ip_options_compile would have refused it already
        optlen = out[i + 1]
        if not kind & IPOPT_COPY:
            out[i:i + optlen] = bytes([IPOPT_NOOP]) * min(optlen, len(out) - i)
        i += optlen
    return bytes(out)


def ip_fragment(skb, iph: IpHdr, mtu: int, host: str, mib: Mib, *, slow_path: bool) -> list:
    """ip_do_fragment(): skb (data at its IP header, len > mtu, DF clear) as fragments
    that fit mtu. The original skb is consumed; the fragments are new skbs."""
    ihl = iph.header_len
    payload = skb.payload()[ihl:]
    total = len(payload)
    frags = []
    offset = 0
    options = iph.options
    base_off = iph.frag_off & IP_OFFSET  # refragmenting a fragment keeps its place
    while offset < total:
        hlen = 20 + (len(options) + 3) // 4 * 4
        room = mtu - hlen
        size = total - offset if total - offset <= room else room & ~7  # ip_frag_next: only non-last pieces round to 8
        last = offset + size >= total
        mf = 0 if last and not iph.mf else IP_MF
        header = iph._replace(frag_off=mf | (base_off + offset // 8), options=options).to_bytes(size)
        frag = s.alloc_skb(s.MAX_HEADER + len(header) + size, origin_host=skb.origin_host,
                           sampled=skb.sampled)
        s.skb_reserve(frag, s.MAX_HEADER)
        s.skb_put_data(frag, header)
        s.skb_put_data(frag, payload[offset:offset + size])
        s.skb_reset_network_header(frag)
        frag.transport_header = frag.network_header + len(header)
        frag.copy_of = skb.id
        frag.traceparent = skb.traceparent
        for name in ("protocol", "dev", "mark", "priority", "sk", "nexthop", "tstamp"):  # ip_copy_metadata
            setattr(frag, name, getattr(skb, name))
        if slow_path:
            frag.record(s.COPY, L3, host, "ip_do_fragment", len(header) + size, copy_from="skb", copy_to="skb")
        frags.append(frag)
        offset += size
        options = _copied_options(iph.options)
    mib.inc("Ip", "FragOKs")
    mib.inc("Ip", "FragCreates", len(frags))
    s.consume_skb(skb, L3, host, "ip_do_fragment")
    return frags
