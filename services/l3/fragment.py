"""IPv4 fragmentation and reassembly.

Reassembly models ip_defrag / ip_frag_queue / ip_frag_reasm / ip_expire
(net/ipv4/ip_fragment.c) on the queue machinery IPv6 shares (services/l3/inet_fragment.py:
struct inet_frag_queue, struct fqdir, inet_frag_queue_insert): fragments are queued by
(saddr, daddr, id, protocol); a fragment wholly inside one run of queued fragments is a
duplicate and only it is dropped (DUP_FRAG); any other overlap discards the whole datagram
(RFC 5722's rule, which Linux applies to IPv4 since 4.19: overlaps are how the FragmentSmack
and teardrop attacks work); a datagram that would exceed 65535 bytes is discarded (one
ReasmFails, nothing counted per fragment: see IpDefrag._reasm); a queue
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
from dataclasses import dataclass

from pktpath import skbuff as s
from pktpath.counters import Mib
from pktpath.pb import skbuff_pb2
from pktpath.services.l3.inet_fragment import (
    INET_FRAG_FIRST_IN, INET_FRAG_LAST_IN, IPFRAG_DUP, Frag, FragDir, InetFragQueue,
)
from pktpath.wire.ipv4 import IP_DF, IP_MF, IP_OFFSET, IP_MAX_PACKET, IpHdr

pb = skbuff_pb2
L3 = pb.LAYER_L3
IPFRAG_TIME_S = 30.0
IPFRAG_HIGH_THRESH = 4 * 1024 * 1024
IPOPT_END, IPOPT_NOOP, IPOPT_COPY = 0, 1, 0x80


@dataclass(eq=False)
class IpFragQueue(InetFragQueue):
    """struct ipq: one datagram being reassembled."""

    first_iph: IpHdr | None = None  # the offset-0 fragment's header: it starts the datagram

    @property
    def first(self) -> "s.SkBuff | None":
        head = self.head
        return head.skb if head is not None else None


class IpDefrag(FragDir):
    """The IPv4 queues (net->ipv4.fqdir). Memory is counted as each fragment's buffer size
    (skb->end), no per-queue cost."""

    def __init__(self, host: str, mib: Mib, *, timeout_s: float = IPFRAG_TIME_S,
                 high_thresh: int = IPFRAG_HIGH_THRESH, clock=time.monotonic) -> None:
        super().__init__(host, mib, timeout_s=timeout_s, high_thresh=high_thresh, clock=clock)

    def truesize(self, skb) -> int:
        return skb.end

    def _drop(self, skb, reason: int, func: str = "ip_defrag") -> None:
        self.drop(skb, reason, func)

    def defrag(self, skb, iph: IpHdr):
        """ip_defrag(): skb (data at its IP header) is a fragment. Returns the reassembled
        skb when this one completes its datagram, else None (queued or dropped)."""
        self.mib.inc("Ip", "ReasmReqds")
        key = (iph.saddr, iph.daddr, iph.id, iph.protocol)
        q = self.inet_frag_find(key, IpFragQueue)
        if q is None:  # over ipfrag_high_thresh, inet_frag_find refuses every fragment
            self.mib.inc("Ip", "ReasmFails")
            self._drop(skb, pb.SKB_DROP_REASON_NOMEM)
            return None
        return self._queue(q, skb, iph)

    def _queue(self, q: IpFragQueue, skb, iph: IpHdr):
        """ip_frag_queue()."""
        ihl = iph.header_len
        offset = iph.frag_offset
        data = bytes(skb.payload()[ihl:])  # the payload after the IP header
        end = offset + len(data)
        if not iph.mf:  # the last fragment fixes the datagram's length
            if end < q.len or (q.flags & INET_FRAG_LAST_IN and end != q.len):
                return self._discard(q, skb)
            q.flags |= INET_FRAG_LAST_IN
            q.len = end
        else:
            if end & 7:  # a non-last fragment's payload is a multiple of 8: trim the excess
                end &= ~7
                data = data[:end - offset]
            if end > q.len:
                if q.flags & INET_FRAG_LAST_IN:  # data beyond the end
                    return self._discard(q, skb)
                q.len = end
        if end == offset:
            return self._discard(q, skb)
        frag = Frag(offset, end, skb, data)
        err = q.insert(frag)
        if err == IPFRAG_DUP:
            self._drop(skb, pb.SKB_DROP_REASON_DUP_FRAG)
            return None
        if err:
            self.mib.inc("IpExt", "ReasmOverlaps")
            return self._discard(q, skb)
        self.add_frag(q, frag)
        q.meat += end - offset
        if offset == 0:
            q.flags |= INET_FRAG_FIRST_IN
            q.first_iph = iph
        if q.complete():
            return self._reasm(q)
        return None

    def _discard(self, q: IpFragQueue, skb):
        """discard_qp: the whole datagram goes, this fragment with it."""
        self.mib.inc("Ip", "ReasmFails")
        self.inet_frag_kill(q)
        self.inet_frag_destroy(q, pb.SKB_DROP_REASON_IP_INHDR, "inet_frag_kill", counted=True)
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
        self.inet_frag_kill(q)
        if ihl + q.len > IP_MAX_PACKET:  # out_oversize
            self.mib.inc("Ip", "ReasmFails")
            self.inet_frag_destroy(q, pb.SKB_DROP_REASON_PKT_TOO_BIG, "ip_frag_reasm", counted=False)
            return None
        header = iph._replace(frag_off=iph.frag_off & IP_DF).to_bytes(q.len)
        payload = self.inet_frag_reasm(q, head, "ip_frag_reasm")
        headroom = head.data
        buf = bytearray(headroom + ihl + q.len)
        buf[:headroom] = memoryview(head.buf)[:headroom]  # the head's headroom, its Ethernet header with it
        buf[headroom:headroom + ihl] = header
        buf[headroom + ihl:] = payload
        head.buf, head.tail, head.end = buf, len(buf), len(buf)
        head.network_header = head.data
        head.transport_header = head.data + ihl
        self.mib.inc("Ip", "ReasmOKs")
        return head

    def expire(self, send_time_exceeded) -> int:
        """ip_expire() for every queue older than ipfrag_time; returns how many expired.
        send_time_exceeded(skb) is called with the first fragment, if it came, before
        the queue is freed (icmp_send ICMP_TIME_EXCEEDED / ICMP_EXC_FRAGTIME)."""
        expired = self.expired()
        for q in expired:
            self.mib.inc("Ip", "ReasmFails")
            self.mib.inc("Ip", "ReasmTimeout")
            if q.first is not None:
                send_time_exceeded(q.first)
            self.inet_frag_kill(q)
            self.inet_frag_destroy(q, pb.SKB_DROP_REASON_FRAG_REASM_TIMEOUT, "inet_frag_kill", counted=True)
        return len(expired)


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
