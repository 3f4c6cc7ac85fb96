"""Segmentation offloads done in software, for TCP over IPv4 and IPv6: GRO on receive, GSO
on transmit. Per-packet costs are paid per packet, not per byte, in the kernel and even
more so here, so both let one skb cross the stack for up to 45 segments.

GRO (napi_gro_receive → dev_gro_receive → inet_gro_receive → tcp4_gro_receive /
tcp_gro_receive; net/core/gro.c, net/ipv4/af_inet.c, net/ipv4/tcp_offload.c)
merges the in-order segments of one flow that one NAPI poll takes off the ring
into one skb, which napi_gro_complete → inet_gro_complete → tcp4_gro_complete
finishes when the flow is flushed: at the poll's end (napi_complete_done, with
gro_flush_timeout 0), or when a segment cannot join it. The merged skb carries
the first segment's headers with IP tot_len and checksum rewritten, the flags
PSH and FIN of those merged, gso_size (the first segment's payload: the MSS)
and gso_segs, and CHECKSUM_UNNECESSARY: GRO verified every segment's checksum,
and the merged header's `check` is only the pseudo-header sum, as the kernel
leaves it (tcpdump on a receiver shows such packets, larger than the MTU).

GSO (skb_gso_segment → inet_gso_segment → tcp4_gso_segment → skb_segment;
net/core/gso.c, net/core/skbuff.c) cuts such an skb back into segments of
gso_size, each with a copy of the headers: IP id counting up, tot_len and
checksum per segment, sequence numbers advancing, CWR on the first only, PSH and
FIN on the last only, and the TCP checksum computed in software (the device has
no checksum offload).

Over IPv6 the same (ipv6_gro_receive → tcp6_gro_receive, ipv6_gso_segment →
tcp6_gso_segment): a segment joins its flow when the addresses, ports and flow label are
the same (a different traffic class or hop limit flushes it), with no IP id to follow and
no header checksum; the merged packet's payload length is rewritten and its TCP `check` is
IPv6's pseudo-header sum. TCP directly after the IPv6 header only: an extension header
leaves the segment alone, as it does pktpath's TCP, which adds none.
"""

from dataclasses import dataclass, field

from pktpath import skbuff as s
from pktpath.counters import Mib
from pktpath.wire.checksum import csum_fold, csum_tcpudp_magic_partial, ip_compute_csum, pseudo_header_sum
from pktpath.wire.ipv4 import IPPROTO_TCP
from pktpath.wire.ipv6 import IPV6_HLEN
from pktpath.wire.tcp import TCPHDR_CWR, TCPHDR_FIN, TCPHDR_PSH, TCPHDR_RST, TCPHDR_SYN, TCPHDR_URG

CHECKSUM_NONE, CHECKSUM_UNNECESSARY, CHECKSUM_COMPLETE, CHECKSUM_PARTIAL = range(4)
ETH_HLEN = 14
ETH_P_IP = b"\x08\x00"
ETH_P_IPV6 = b"\x86\xdd"
GRO_LEGACY_MAX_SIZE = 65536          # a merged packet's IP length stays under it
GSO_LEGACY_MAX_SIZE = 65536          # sk_gso_max_size: so does a GSO packet's
GRO = "Gro"
_FLUSH_FLAGS = TCPHDR_URG | TCPHDR_PSH | TCPHDR_RST | TCPHDR_SYN | TCPHDR_FIN
_from_bytes = int.from_bytes


def tcp_xmit_size_goal(mss: int) -> int:
    """tcp_xmit_size_goal(): the data a TCP skb is built to carry, whole segments of mss,
    as many as one GSO packet holds with its headers (sk_gso_max_size - 1 - MAX_TCP_HEADER)."""
    return max(mss, (GSO_LEGACY_MAX_SIZE - 1 - s.MAX_HEADER) // mss * mss)


@dataclass
class _Held:
    """A flow on the GRO list: its first skb, where it sits in the poll's output, and
    what joined it (struct napi_gro_cb's count, the segments' data)."""
    head: object
    slot: int
    mss: int
    hdr_end: int                     # offset in head.buf where the payload starts
    next_seq: int
    match: bytes                     # the bytes every segment of the flow must share
    ip_len: int
    ip_id: int                       # -1: DF set, any id will do (is_atomic); else the next must follow
    flags: int = 0                   # PSH/FIN of the segments merged
    payloads: list = field(default_factory=list)
    count: int = 1
    v6: bool = False                 # an IPv6 flow (tcp6_gro_receive)


def _tcp4(skb):
    """inet_gro_receive + tcp4_gro_receive's checks of one RX frame (data at the Ethernet
    header): None unless it is an unfragmented IPv4 TCP segment without IP options whose
    IP and TCP checksums verify; else (flow key, seq, flags, payload offset, payload
    length, the bytes that must match, IP length)."""
    buf, d = skb.buf, skb.data
    nh = d + ETH_HLEN
    if skb.tail - nh < 40 or buf[d + 12:nh] != ETH_P_IP or buf[nh] != 0x45 or buf[nh + 9] != IPPROTO_TCP:
        return None
    if buf[nh + 6] & 0x3F or buf[nh + 7]:  # MF or a fragment offset: fragments are not merged
        return None
    ip_len = _from_bytes(buf[nh + 2:nh + 4], "big")
    if ip_len < 40 or nh + ip_len > skb.tail or _from_bytes(buf[nh:nh + 20], "big") % 0xFFFF:
        return None  # ip_fast_csum fails, or the length is off: ip_rcv_core will say why
    th = nh + 20
    thlen = (buf[th + 12] >> 4) * 4
    end = nh + ip_len
    if thlen < 20 or th + thlen > end:
        return None
    saddr, daddr = _from_bytes(buf[nh + 12:nh + 16], "big"), _from_bytes(buf[nh + 16:nh + 20], "big")
    seg_len = end - th
    total = _from_bytes(buf[th:end], "big") << (8 if seg_len & 1 else 0)
    if (total + pseudo_header_sum(saddr, daddr, IPPROTO_TCP, seg_len)) % 0xFFFF:
        return None  # skb_gro_checksum_validate fails: tcp_v4_rcv counts it
    key = bytes(buf[d:d + 12]) + bytes(buf[nh + 12:nh + 20]) + bytes(buf[th:th + 4])
    # tos, ttl; ack_seq; doff, flags but CWR/PSH/FIN, window; options (tcp_gro_receive's memcmp)
    match = bytes(buf[nh + 1:nh + 2] + buf[nh + 8:nh + 9] + buf[th + 8:th + 13]
                  + bytes([buf[th + 13] & ~(TCPHDR_CWR | TCPHDR_PSH | TCPHDR_FIN) & 0xFF])
                  + buf[th + 14:th + 16] + buf[th + 20:th + thlen])
    ip_id = -1 if buf[nh + 6] & 0x40 else _from_bytes(buf[nh + 4:nh + 6], "big")
    return (key, _from_bytes(buf[th + 4:th + 8], "big"), buf[th + 13], th + thlen, end - th - thlen, match, ip_len,
            ip_id)


def _tcp6(skb):
    """ipv6_gro_receive + tcp6_gro_receive's checks of one RX frame: None unless it is an IPv6
    packet whose next header is TCP and whose TCP checksum verifies over IPv6's pseudo-header;
    else _tcp4's tuple (ip_id -1: IPv6 has none to follow; the IP length the payload's + 40)."""
    buf, d = skb.buf, skb.data
    nh = d + ETH_HLEN
    if skb.tail - nh < 60 or buf[d + 12:nh] != ETH_P_IPV6 or buf[nh] >> 4 != 6 or buf[nh + 6] != IPPROTO_TCP:
        return None
    plen = _from_bytes(buf[nh + 4:nh + 6], "big")
    th = nh + IPV6_HLEN
    end = th + plen
    if plen < 20 or end > skb.tail:
        return None  # ip6_rcv_core will say why
    thlen = (buf[th + 12] >> 4) * 4
    if thlen < 20 or th + thlen > end:
        return None
    saddr, daddr = _from_bytes(buf[nh + 8:nh + 24], "big"), _from_bytes(buf[nh + 24:nh + 40], "big")
    total = _from_bytes(buf[th:end], "big") << (8 if plen & 1 else 0)
    if (total + pseudo_header_sum(saddr, daddr, IPPROTO_TCP, plen)) % 0xFFFF:
        return None  # skb_gro_checksum_validate fails: tcp_v6_rcv counts it
    # the flow: addresses, ports and the flow label (first_word & 0xF00FFFFF must match)
    key = (bytes(buf[d:d + 12]) + bytes(buf[nh + 8:nh + 40]) + bytes(buf[th:th + 4])
           + bytes([buf[nh + 1] & 0x0F]) + bytes(buf[nh + 2:nh + 4]))
    # traffic class and hop limit (a difference flushes); ack_seq; doff, flags but CWR/PSH/FIN, window; options
    match = bytes(buf[nh:nh + 2] + buf[nh + 7:nh + 8] + buf[th + 8:th + 13]
                  + bytes([buf[th + 13] & ~(TCPHDR_CWR | TCPHDR_PSH | TCPHDR_FIN) & 0xFF])
                  + buf[th + 14:th + 16] + buf[th + 20:th + thlen])
    return (key, _from_bytes(buf[th + 4:th + 8], "big"), buf[th + 13], th + thlen, end - th - thlen, match,
            IPV6_HLEN + plen, -1)


def napi_gro_receive(skbs: list, mib: Mib, layer: int, host: str) -> list:
    """One poll's skbs (data at the Ethernet header) → the same packets with each flow's
    in-order segments merged, every packet where its flow's first one was."""
    out: list = []
    held: dict[tuple, _Held] = {}
    for skb in skbs:
        v6 = skb.buf[skb.data + 12:skb.data + 14] == ETH_P_IPV6
        parsed = _tcp6(skb) if v6 else _tcp4(skb)
        if parsed is None:
            out.append(skb)
            continue
        key, seq, flags, hdr_end, plen, match, ip_len, ip_id = parsed
        skb.ip_summed = CHECKSUM_UNNECESSARY
        flow = held.get(key)
        if flow is not None:
            if (plen and seq == flow.next_seq and plen <= flow.mss and match == flow.match
                    and not flags & TCPHDR_CWR and flow.ip_len + plen < GRO_LEGACY_MAX_SIZE
                    and (flow.ip_id < 0 or ip_id == (flow.ip_id + flow.count) & 0xFFFF)):
                flow.payloads.append(skb.buf[hdr_end:hdr_end + plen])  # skb_gro_receive
                flow.count += 1
                flow.ip_len += plen
                flow.next_seq = (seq + plen) & 0xFFFFFFFF
                flow.flags |= flags & (TCPHDR_PSH | TCPHDR_FIN)
                s.napi_skb_free_stolen_head(skb, layer, host, "napi_gro_receive")
                if plen < flow.mss or flags & _FLUSH_FLAGS:  # the last one: flush the flow now
                    out[flow.slot] = napi_gro_complete(held.pop(key), mib)
                continue
            out[flow.slot] = napi_gro_complete(held.pop(key), mib)  # it cannot join: flush what was held
        if plen and not flags & _FLUSH_FLAGS:
            held[key] = _Held(skb, len(out), plen, hdr_end, (seq + plen) & 0xFFFFFFFF, match, ip_len, ip_id,
                              payloads=[skb.buf[hdr_end:hdr_end + plen]], v6=v6)
        out.append(skb)
    for flow in held.values():
        out[flow.slot] = napi_gro_complete(flow, mib)
    return out


def napi_gro_complete(flow: _Held, mib: Mib):
    """napi_gro_complete → inet_gro_complete → tcp4_gro_complete (ipv6_gro_complete →
    tcp6_gro_complete for an IPv6 flow): one skb for the flow."""
    skb = flow.head
    if flow.count == 1:
        return skb
    nh = skb.data + ETH_HLEN
    iphlen = IPV6_HLEN if flow.v6 else 20
    th = nh + iphlen
    buf = bytearray(skb.buf[:flow.hdr_end])
    buf += b"".join(flow.payloads)
    if flow.v6:
        buf[nh + 4:nh + 6] = (flow.ip_len - IPV6_HLEN).to_bytes(2, "big")
        saddr, daddr = _from_bytes(buf[nh + 8:nh + 24], "big"), _from_bytes(buf[nh + 24:nh + 40], "big")
    else:
        buf[nh + 2:nh + 4] = flow.ip_len.to_bytes(2, "big")
        buf[nh + 10:nh + 12] = b"\0\0"
        buf[nh + 10:nh + 12] = ip_compute_csum(buf[nh:nh + 20]).to_bytes(2, "big")
        saddr, daddr = _from_bytes(buf[nh + 12:nh + 16], "big"), _from_bytes(buf[nh + 16:nh + 20], "big")
    buf[th + 13] |= flow.flags
    check = csum_tcpudp_magic_partial(saddr, daddr, IPPROTO_TCP, flow.ip_len - iphlen)
    buf[th + 16:th + 18] = check.to_bytes(2, "big")
    skb.buf = buf
    skb.tail = skb.end = len(buf)
    skb.gso_size = flow.mss
    skb.gso_segs = flow.count
    mib.inc(GRO, "Packets")
    mib.inc(GRO, "Segments", flow.count)
    return skb


def skb_gso_segment(skb, layer: int, host: str, func: str = "skb_segment") -> list:
    """skb_gso_segment(): a GSO skb (network_header set, data at the Ethernet or the IP
    header) as a list of segments of gso_size; the GSO skb is consumed. Each segment is a
    new skb (copy_of the GSO skb) with a COPY of the headers; the payload itself is the
    kernel's page fragments, referenced, not copied. Over IPv6 (ipv6_gso_segment →
    tcp6_gso_segment) each segment's payload length is its own, and the TCP checksum is over
    IPv6's pseudo-header; there is no IP id nor header checksum."""
    buf, d, nh = skb.buf, skb.data, skb.network_header
    v6 = buf[nh] >> 4 == 6
    ihl = IPV6_HLEN if v6 else (buf[nh] & 0x0F) * 4  # TCP follows IPv6's header: pktpath adds no extension
    th = nh + ihl
    thlen = (buf[th + 12] >> 4) * 4
    hdr = bytes(buf[d:th + thlen])
    ipo, to = nh - d, th - d
    payload = memoryview(buf)[th + thlen:skb.tail]
    mss = skb.gso_size
    n = max(1, -(-len(payload) // mss))
    ip_id = 0 if v6 else _from_bytes(hdr[ipo + 4:ipo + 6], "big")
    seq = _from_bytes(hdr[to + 4:to + 8], "big")
    flags = hdr[to + 13]
    if v6:
        saddr, daddr = _from_bytes(hdr[ipo + 8:ipo + 24], "big"), _from_bytes(hdr[ipo + 24:ipo + 40], "big")
    else:
        saddr, daddr = _from_bytes(hdr[ipo + 12:ipo + 16], "big"), _from_bytes(hdr[ipo + 16:ipo + 20], "big")
    segs = []
    for i in range(n):
        chunk = payload[i * mss:(i + 1) * mss]
        h = bytearray(hdr)
        if v6:
            h[ipo + 4:ipo + 6] = (thlen + len(chunk)).to_bytes(2, "big")  # payload_len
        else:
            h[ipo + 2:ipo + 4] = (ihl + thlen + len(chunk)).to_bytes(2, "big")
            h[ipo + 4:ipo + 6] = ((ip_id + i) & 0xFFFF).to_bytes(2, "big")
            h[ipo + 10:ipo + 12] = b"\0\0"
            h[ipo + 10:ipo + 12] = ip_compute_csum(h[ipo:ipo + ihl]).to_bytes(2, "big")
        h[to + 4:to + 8] = ((seq + i * mss) & 0xFFFFFFFF).to_bytes(4, "big")
        f = flags if i == 0 else flags & ~TCPHDR_CWR
        h[to + 13] = f if i == n - 1 else f & ~(TCPHDR_PSH | TCPHDR_FIN)
        h[to + 16:to + 18] = b"\0\0"
        partial = pseudo_header_sum(saddr, daddr, IPPROTO_TCP, thlen + len(chunk))
        partial += _from_bytes(h[to:], "big") + (_from_bytes(chunk, "big") << (8 if len(chunk) & 1 else 0))
        h[to + 16:to + 18] = csum_fold(partial).to_bytes(2, "big")
        seg = s.SkBuff(bytes(h) + chunk, 0, len(h) + len(chunk), len(h) + len(chunk),
                       origin_host=skb.origin_host, sampled=skb.sampled)
        seg.network_header, seg.transport_header = ipo, to
        if skb.mac_header != s.UNSET:
            seg.mac_header = skb.mac_header - d
        for name in ("protocol", "dev", "mark", "priority", "sk", "nexthop", "tstamp", "traceparent", "pkt_type"):
            setattr(seg, name, getattr(skb, name))
        seg.copy_of = skb.id
        seg.record(s.COPY, layer, host, func, len(h), copy_from="skb", copy_to="skb")
        segs.append(seg)
    if skb.truesize:  # tcp_gso_segment's copy_destructor: the segments hold the charge, in even shares
        share, rest = divmod(skb.truesize, len(segs))
        for i, seg in enumerate(segs):
            seg.truesize = share + (i < rest)
        skb.truesize = 0
    s.consume_skb(skb, layer, host, "skb_gso_segment")
    return segs
