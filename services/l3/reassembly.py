"""IPv6 fragment reassembly as Linux 6.18 does it: ipv6_frag_rcv's queueing half (fq_find,
ip6_frag_queue, ip6_frag_reasm) and ip6frag_expire_frag_queue (net/ipv6/reassembly.c,
include/net/ipv6_frag.h), on the queue machinery IPv4 shares (services/l3/inet_fragment.py).

The caller (Ipv6.ipv6_frag_rcv) has counted Ip6ReasmReqds, handled atomic fragments and refused
a first fragment without its upper-layer header; Ipv6Defrag.queue takes a real fragment from
there, as Linux does (each seen on 6.18 in a namespace, /proc/net/snmp6 and the skb:kfree_skb
tracepoint's reasons):

- Fragments are queued by (identification, saddr, daddr) and, for a multicast or link-local
  destination, the device they came in by. While the queues hold more than ip6frag_high_thresh
  (4 MiB; each queue costs sizeof(struct frag_queue), each fragment its truesize) every
  fragment is refused: Ip6ReasmFails, freed NOT_SPECIFIED.
- A fragment reaching past 65535 bytes, or a non-last fragment whose length is not a multiple
  of 8, is answered with Parameter Problem code 0, pointing at the fragment offset field or at
  payload_len (RFC 8200 4.5): the caller counts Ip6InHdrErrors and sends it (queue returns a
  FragParamProb), no Ip6ReasmFails. The queue fq_find made for it stays, empty, and times out.
- A fragment wholly inside a run of queued ones is a duplicate: only it goes (DUP_FRAG),
  nothing counted but Drops. Any other overlap (RFC 5722), a second last fragment with another
  end, data past the last fragment's end, or an empty fragment discards the datagram:
  Ip6ReasmFails, this fragment freed NOT_SPECIFIED, the queued ones consumed (the kernel's
  inet_frag_kill without INET_FRAG_DROP; pktpath ends their record with an uncounted DROP).
  The queue leaves the table: later fragments of the same datagram start a new queue, which
  can still complete if all of them come again. (The kernel also counts REASM_OVERLAPS, which
  /proc/net/snmp6 does not show: pktpath does not count it.)
- When every byte is in, ip6_frag_reasm: the ECN codepoints must agree (ip_frag_ecn_table: a
  Not-ECT fragment among ECT ones discards the datagram, CE among ECT ones marks it CE) and the
  payload with the first fragment's unfragmentable headers must fit 65535 bytes; either
  failure counts one Ip6ReasmFails and consumes every fragment. Otherwise Ip6ReasmOKs.
- A queue still incomplete ip6frag_time (60 s) after fq_find made it expires: Ip6ReasmFails,
  Ip6ReasmTimeout, an ICMPv6 Time Exceeded (code 1) about the offset-0 fragment if it came
  (quoting it, as far as 1280 bytes allow), and every fragment dropped FRAG_REASM_TIMEOUT.

The reassembled packet continues in the skb whose fragment completed it, as the kernel's
inet_frag_reasm_prepare morphs that skb into the head: its headroom, then the first fragment's
headers up to its fragment header, with the fragment header removed, the byte that named it
(IP6CB nhoff) now naming the header after it, payload_len and the ECN field fixed; then the
payload in order.

Pure logic: no gRPC, no locking (the caller serialises queue and expire, as Ipv4 does for IpDefrag).
"""

import time
from dataclasses import dataclass
from typing import NamedTuple

from pktpath import skbuff as s
from pktpath.counters import Mib
from pktpath.pb import skbuff_pb2
from pktpath.services.l3.inet_fragment import (
    INET_FRAG_DROP, INET_FRAG_FIRST_IN, INET_FRAG_LAST_IN, IPFRAG_DUP, Frag, FragDir, InetFragQueue, ip_frag_ecn,
    ip_frag_ecn_table,
)
from pktpath.wire.addr import IPV6_ADDR_LINKLOCAL, IPV6_ADDR_MULTICAST, ipv6_addr_type
from pktpath.wire.ipv6 import ICMPV6_HDR_FIELD, IPV6_HLEN, IPV6_MAXPLEN, Ipv6FragHdr, Ipv6Hdr

pb = skbuff_pb2
L3 = pb.LAYER_L3
IP6 = "Ip6"

# include/net/ipv6.h: net.ipv6.ip6frag_high_thresh, ip6frag_low_thresh, ip6frag_time
IPV6_FRAG_HIGH_THRESH = 4 * 1024 * 1024
IPV6_FRAG_LOW_THRESH = 3 * 1024 * 1024
IPV6_FRAG_TIMEOUT_S = 60.0
# sizeof(struct frag_queue) on x86-64: what one queue adds to /proc/net/sockstat6's FRAG6 memory
# before its first fragment (seen: 2488 after one 1280-byte fragment of truesize 2304).
FRAG_QUEUE_SIZE = 184
IP6_DEFRAG_LOCAL_DELIVER = 0  # enum ip6_defrag_users: the receive path's queues, not conntrack's
PAYLOAD_LEN_OFFSET = 4        # offsetof(struct ipv6hdr, payload_len)
FRAG_OFF_OFFSET = 2           # offsetof(struct frag_hdr, frag_off)


@dataclass(eq=False)
class Ipv6FragQueue(InetFragQueue):
    """struct frag_queue."""

    iif: str = ""      # the device the latest fragment came in by
    nhoffset: int = 0  # the first fragment's IP6CB nhoff: the byte that names the fragment header
    fhoff: int = 0     # where the first fragment's fragment header starts (the kernel finds it in the skb)
    ecn: int = 0       # IPFRAG_ECN_* bits of every fragment


class Ipv6Reasm(NamedTuple):
    """What ip6_frag_reasm leaves for ip6_protocol_deliver_rcu's resubmit.

    skb: the fragment's skb that completed the datagram, now carrying all of it: data and
    network_header at its IPv6 header, transport_header at the header after the (removed)
    fragment header. hdr: that IPv6 header (payload_len and ECN as reassembled). nhoff and
    frag_max_size: IP6CB's (the byte that now names the next header; the largest fragment from
    its IPv6 header on), to set with IP6SKB_FRAGMENTED."""
    skb: "s.SkBuff"
    hdr: Ipv6Hdr
    nhoff: int
    frag_max_size: int


class FragParamProb(NamedTuple):
    """ip6_frag_queue's prob_offset: the caller counts Ip6InHdrErrors and answers with
    icmpv6_param_prob(skb, code, pointer), which frees the skb (NOT_SPECIFIED). The skb is
    untouched and not freed here."""
    pointer: int  # from the IPv6 header's first byte
    code: int = ICMPV6_HDR_FIELD


class Ipv6Defrag(FragDir):
    """The IPv6 queues of one host (net->ipv6.fqdir)."""

    QSIZE = FRAG_QUEUE_SIZE

    def __init__(self, host: str, mib: Mib, *, clock=time.monotonic, timeout_s: float = IPV6_FRAG_TIMEOUT_S,
                 high_thresh: int = IPV6_FRAG_HIGH_THRESH, low_thresh: int = IPV6_FRAG_LOW_THRESH) -> None:
        super().__init__(host, mib, timeout_s=timeout_s, high_thresh=high_thresh, low_thresh=low_thresh,
                         clock=clock)

    def queue(self, skb, hdr: Ipv6Hdr, fh: Ipv6FragHdr, off: int, nhoff: int) -> Ipv6Reasm | FragParamProb | None:
        """ipv6_frag_rcv() from fq_find() on, for a real fragment (fh.is_fragment): skb's
        network header at its IPv6 header `hdr` (trimmed to payload_len), its fragment header
        `fh` at `off` from there, nhoff the byte that names that header (IP6CB nhoff), skb.dev
        the device it came in by. Returns the reassembled packet when this fragment completes
        it; a FragParamProb for the caller to answer; None when the fragment was queued, or
        dropped and counted here."""
        iif = skb.dev
        # fq_find(): the device is part of the key only where the address needs a scope
        scoped = ipv6_addr_type(hdr.daddr) & (IPV6_ADDR_MULTICAST | IPV6_ADDR_LINKLOCAL)
        key = (fh.identification, hdr.saddr, hdr.daddr, IP6_DEFRAG_LOCAL_DELIVER, iif if scoped else "")
        q = self.inet_frag_find(key, Ipv6FragQueue)
        if q is None:
            self.mib.inc(IP6, "ReasmFails")
            self.drop(skb, pb.SKB_DROP_REASON_NOT_SPECIFIED, "ipv6_frag_rcv")
            return None
        q.iif = iif
        return self.ip6_frag_queue(q, skb, hdr, fh, off, nhoff)

    def ip6_frag_queue(self, q: Ipv6FragQueue, skb, hdr: Ipv6Hdr, fh: Ipv6FragHdr, off: int,
                       nhoff: int) -> Ipv6Reasm | FragParamProb | None:
        """ip6_frag_queue()."""
        offset = fh.frag_offset
        unfrag = off + Ipv6FragHdr.header_len  # the IPv6 header, the headers before and the fragment header
        end = offset + hdr.payload_len - (unfrag - IPV6_HLEN)
        if end > IPV6_MAXPLEN:
            return FragParamProb(off + FRAG_OFF_OFFSET)
        ecn = ip_frag_ecn(hdr.tclass)
        if not fh.mf:  # the last fragment: bits already beyond its end, or another end, is corruption
            if end < q.len or (q.flags & INET_FRAG_LAST_IN and end != q.len):
                return self._discard(q, skb)
            q.flags |= INET_FRAG_LAST_IN
            q.len = end
        else:
            if end & 7:  # RFC 8200 4.5: every fragment but the last is a multiple of 8 bytes long
                return FragParamProb(PAYLOAD_LEN_OFFSET)
            if end > q.len:
                if q.flags & INET_FRAG_LAST_IN:  # bits beyond the last fragment's end
                    return self._discard(q, skb)
                q.len = end
        if end == offset:
            return self._discard(q, skb)
        data = bytes(s.skb_network_header(skb)[unfrag:IPV6_HLEN + hdr.payload_len])
        frag = Frag(offset, end, skb, data)
        err = q.insert(frag)
        if err == IPFRAG_DUP:
            self.drop(skb, pb.SKB_DROP_REASON_DUP_FRAG, "ipv6_frag_rcv")
            return None
        if err:  # IPFRAG_OVERLAP (IPSTATS_MIB_REASM_OVERLAPS: not in /proc/net/snmp6)
            return self._discard(q, skb)
        q.meat += end - offset
        q.ecn |= ecn
        self.add_frag(q, frag)
        q.max_size = max(q.max_size, unfrag + end - offset)
        if offset == 0:
            q.nhoffset, q.fhoff = nhoff, off
            q.flags |= INET_FRAG_FIRST_IN
        if q.complete():
            return self.ip6_frag_reasm(q, skb)
        return None

    def _discard(self, q: Ipv6FragQueue, skb) -> None:
        """ip6_frag_queue's discard_fq: the datagram goes; its queued fragments are consumed."""
        self.inet_frag_kill(q)
        self.inet_frag_destroy(q, pb.SKB_DROP_REASON_NOT_SPECIFIED, "inet_frag_destroy", counted=False)
        self.mib.inc(IP6, "ReasmFails")
        self.drop(skb, pb.SKB_DROP_REASON_NOT_SPECIFIED, "ipv6_frag_rcv")
        return None

    def ip6_frag_reasm(self, q: Ipv6FragQueue, skb) -> Ipv6Reasm | None:
        """ip6_frag_reasm(): skb, whose fragment completed the datagram, carries it on."""
        self.inet_frag_kill(q)
        ecn = ip_frag_ecn_table[q.ecn]
        first = q.head.skb
        payload_len = q.fhoff - IPV6_HLEN + q.len
        if ecn == 0xFF or payload_len > IPV6_MAXPLEN:  # out_fail, out_oversize
            self.mib.inc(IP6, "ReasmFails")
            reason = pb.SKB_DROP_REASON_PKT_TOO_BIG if ecn != 0xFF else pb.SKB_DROP_REASON_NOT_SPECIFIED
            self.inet_frag_destroy(q, reason, "ip6_frag_reasm", counted=False)
            return None
        headers = bytearray(s.skb_network_header(first)[:q.fhoff])
        headers[q.nhoffset] = s.skb_network_header(first)[q.fhoff]  # the fragment header's nexthdr
        headers[4:6] = payload_len.to_bytes(2, "big")
        headers[1] |= ecn << 4  # ipv6_change_dsfield(hdr, 0xff, ecn)
        payload = self.inet_frag_reasm(q, skb, "ip6_frag_reasm")
        nh = skb.network_header
        buf = bytearray(nh + len(headers) + len(payload))
        buf[:nh] = memoryview(skb.buf)[:nh]  # skb's headroom, its Ethernet header with it
        buf[nh:nh + len(headers)] = headers
        buf[nh + len(headers):] = payload
        skb.buf, skb.data, skb.tail, skb.end = buf, nh, len(buf), len(buf)
        skb.transport_header = nh + q.fhoff
        self.mib.inc(IP6, "ReasmOKs")
        return Ipv6Reasm(skb, Ipv6Hdr.from_bytes(buf[nh:]), q.nhoffset, q.max_size)

    def expire(self, send_time_exceeded) -> int:
        """ip6_frag_expire() → ip6frag_expire_frag_queue() for every queue whose ip6frag_time ran
        out; returns how many. send_time_exceeded(skb) is called with the first fragment, if it
        came (network header at its IPv6 header, skb.dev the device of the queue's latest
        fragment), to send icmpv6_send(ICMPV6_TIME_EXCEED, ICMPV6_EXC_FRAGTIME); it is dropped
        FRAG_REASM_TIMEOUT afterwards, as every other fragment of the queue."""
        expired = self.expired()
        for q in expired:
            q.flags |= INET_FRAG_DROP
            self.inet_frag_kill(q)
            self.mib.inc(IP6, "ReasmFails")
            self.mib.inc(IP6, "ReasmTimeout")
            head = self.inet_frag_pull_head(q) if q.flags & INET_FRAG_FIRST_IN else None
            if head is not None:
                head.skb.dev = q.iif
                send_time_exceeded(head.skb)
                self.drop(head.skb, pb.SKB_DROP_REASON_FRAG_REASM_TIMEOUT, "ip6_frag_expire")
            self.inet_frag_destroy(q, pb.SKB_DROP_REASON_FRAG_REASM_TIMEOUT, "inet_frag_rbtree_purge", counted=True)
        return len(expired)
