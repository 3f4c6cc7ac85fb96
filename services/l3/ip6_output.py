"""The IPv6 output path of one host: route, header, fragmentation, forwarding, as net/ipv6/ip6_output.c
and output_core.c run them on Linux 6.18.

Locally generated packets (ip6_output(skb, flow), data at the transport header) take what
ip6_append_data + ip6_push_pending_frames (UDP, ICMPv6, ping) or ip6_xmit (TCP) do:
ip6_dst_lookup_tail (no route: Ip6OutNoRoutes, ENETUNREACH), the source address (the flow's or
ipv6_dev_get_saddr's on the route's device), the MTU rules of the sender (IPV6_PMTUDISC_*), the
IPv6 header (ip6_flow_hdr: traffic class, the flow's label or an automatic one), Ip6OutRequests,
then dst_output. Packets with a complete IPv6 header (ip6_local_out(skb, dev): neighbour
discovery and MLD build theirs, ndisc_send_skb / mld_sendpack count Ip6OutRequests) join there.

dst_output → ip6_output() (a device without IPv6: Ip6OutDiscards, IPV6DISABLED) →
ip6_finish_output() (ip6_fragment when the packet exceeds the path MTU) → ip6_finish_output2():
a multicast packet is looped back to this host when its device joined the group and the sender
allows it (sk_mc_loop: sockets yes, NDP and MLD no) and counts Ip6OutMcastPkts/OutMcastOctets;
an interface-local (ff01::/16) one leaves no further; every packet then counts Ip6OutTransmits
and Ip6OutOctets and goes to L2 with its next hop (rt6_nexthop), or, routed to lo, straight back
into the receive path. Seen on Linux 6.18 (/proc/net/snmp6 before and after): a 1448-byte echo
request fragmented at a path MTU of 1300 counted Ip6OutRequests 1, Ip6FragOKs 1, Ip6FragCreates
2, Ip6OutTransmits 2, Ip6OutOctets 1504 (the fragments' bytes); a ping of our own address
Ip6OutRequests, Ip6OutTransmits and Ip6OutOctets; ping ff02::1 Ip6OutMcastPkts 1,
Ip6OutMcastOctets 104 and a looped copy answered by ourselves.

Fragmentation (ip6_fragment): the unfragmentable part (ip6_find_1stfragopt: hop-by-hop, routing,
and destination options up to a routing header — Linux keeps a destination options header with
no routing header in it too) repeated in each fragment, its last next-header byte 44, then the
fragment header (the original next header, offset | M, one random nonzero identification per
datagram: ipv6_select_ident), then (mtu - unfragmentable - 8) & ~7 bytes, the last fragment the
rest. Linux 6.18 sent a 1453-byte UDP payload at MTU 1500 as 1496 bytes (payload_len 1456,
offset 0, M, nexthdr 17, 1448 data bytes) and 61 bytes (offset 1448, 13 bytes); with an 8-byte
hop-by-hop (or destination options) header, 1496 and 77 bytes, the fragment header after it.

Forwarding (ip6_forward, net.ipv6.conf.all.forwarding on), in the kernel's order: a frame not
addressed to us is dropped; hop limit <= 1 → Time Exceeded + Ip6InHdrErrors (IP_INHDR); out of
the device it came in by, a Redirect to the source (ndisc_send_redirect, at most one a second
per destination after a burst of 6: inet_peer_xrlim_allow) and no address checks, so a
link-local source or destination goes back out of its own link, the packet forwarded too (as
Linux 6.18 did: redirect, then the echo request out again, hop limit 63); otherwise an
unspecified, multicast or loopback source counts Ip6InAddrErrors, and a link-local one also gets
Destination Unreachable, beyond scope (IP_INADDRERRORS); then Ip6OutForwDatagrams — Linux 6.18
counts it before the MTU check, so a packet answered Packet Too Big counts it too; larger than
the outgoing device's MTU → Packet Too Big with that MTU + Ip6InTooBigErrors + Ip6FragFails
(PKT_TOO_BIG); the hop limit decremented; then larger than the path MTU a Packet Too Big taught
this router → Packet Too Big with it + Ip6FragFails only (ip6_fragment never fragments what it
forwards: NOT_SPECIFIED); then out (Ip6OutTransmits, Ip6OutOctets; never Ip6OutRequests).
Checked on Linux 6.18 with three namespaces (a router with a 1300-byte link).

Netfilter's IPv6 hooks (services/l3/netfilter6.py, ip6tables' table), where Linux has them:
NF_INET_LOCAL_OUT after Ip6OutRequests (__ip6_local_out, ip6_xmit, ndisc_send_skb),
NF_INET_POST_ROUTING in ip6_output before ip6_finish_output fragments (and once more for a
multicast copy looped back, ip6_finish_output2), NF_INET_FORWARD in ip6_forward after the hop
limit is decremented, then POST_ROUTING as for a local packet. A DROP frees the packet
NETFILTER_DROP (nf_hook_slow) and its sender sees EPERM; a datagram's (ip6_send_skb: UDP,
ICMPv6, ping) also counts Ip6OutDiscards, TCP's (ip6_xmit) and neighbour discovery's nothing.
Seen on Linux 6.18: a UDP sendto dropped at OUTPUT, and one dropped at POSTROUTING, each got
EPERM and counted Ip6OutDiscards.

Not here: xfrm, proxy NDP, the router alert chain (no raw
sockets), jumbograms, IPv6 GSO segmentation (pktpath's GSO is IPv4's: a GSO packet
whose segments exceed the MTU is dropped, PKT_TOO_BIG), IPV6_DONTFRAG and extension headers from
socket options (Flowi6 carries neither), multicast routing.

Pure logic: the layers around are callables (`to_l2(skbs) -> bool`, `loopback_rcv(skb)`,
`get_saddr(dev, daddr) -> int`, `mc_joined(dev, group) -> bool`).
"""

import dataclasses
import errno
import random
import time
from typing import Callable

from pktpath import skbuff as s
from pktpath.counters import Mib
from pktpath.pb import skbuff_pb2
from pktpath.services.l3 import netfilter6 as nf6
from pktpath.services.l3.addrconf import LOOPBACK_DEV, Fib6Info
from pktpath.services.l3.icmp import IcmpRateLimit
from pktpath.services.l3.route6 import RTN_MULTICAST, Route6, Rt6Info, ip6_pkt_discard
from pktpath.wire.addr import (
    IPV6_ADDR_LINKLOCAL, IPV6_ADDR_LOOPBACK, IPV6_ADDR_MC_SCOPE, IPV6_ADDR_MULTICAST, IPV6_ADDR_SCOPE_NODELOCAL,
    ipv6_addr_is_multicast, ipv6_addr_type,
)
from pktpath.wire.errors import WireError
from pktpath.wire.icmpv6 import (
    ICMPV6_DEST_UNREACH, ICMPV6_EXC_HOPLIMIT, ICMPV6_NOT_NEIGHBOUR, ICMPV6_PKT_TOOBIG,
    ICMPV6_TIME_EXCEED,
)
from pktpath.wire.ipv6 import (
    IP6_MF, IPV6_DEFAULT_MCASTHOPS, IPV6_HLEN, IPV6_MAXPLEN, IPV6_MIN_MTU, NEXTHDR_DEST, NEXTHDR_FRAGMENT,
    NEXTHDR_HOP, NEXTHDR_ICMP, NEXTHDR_ROUTING, NEXTHDR_TCP, NEXTHDR_UDP, Ipv6FragHdr, Ipv6Hdr,
)

pb = skbuff_pb2
L3 = pb.LAYER_L3
IP6 = "Ip6"
ETH_P_IPV6 = 0x86DD
FRAG_HLEN = Ipv6FragHdr.header_len  # sizeof(struct frag_hdr)

# IPV6_MTU_DISCOVER values (include/uapi/linux/in6.h); a socket's default is WANT
# (net.ipv6.ip_no_pmtu_disc = 0): the source fragments what exceeds the path MTU.
IPV6_PMTUDISC_DONT, IPV6_PMTUDISC_WANT, IPV6_PMTUDISC_DO = 0, 1, 2
IPV6_PMTUDISC_PROBE, IPV6_PMTUDISC_INTERFACE, IPV6_PMTUDISC_OMIT = 3, 4, 5

# net.ipv6.auto_flowlabels: 1 (IP6_AUTO_FLOW_LABEL_OPTOUT) labels every socket's flow unless it
# opts out; Linux 6.18 sent 0x55857, 0x7cc67, 0x13182 ... (flowlabel_state_ranges 0: bit 19 not forced).
IP6_AUTO_FLOW_LABEL_OFF, IP6_AUTO_FLOW_LABEL_OPTOUT, IP6_AUTO_FLOW_LABEL_OPTIN, IP6_AUTO_FLOW_LABEL_FORCED = 0, 1, 2, 3
IPV6_FLOWLABEL_MASK = 0xFFFFF


def ip6_sk_ignore_df(pmtudisc: int) -> bool:
    """ip6_sk_ignore_df(): may the sender's datagrams be fragmented at the source?"""
    return pmtudisc < IPV6_PMTUDISC_DO or pmtudisc == IPV6_PMTUDISC_OMIT


def ip6_find_1stfragopt(pkt) -> tuple[int, int] | None:
    """ip6_find_1stfragopt() (net/ipv6/output_core.c): where the fragmentable part of the packet
    (from its IPv6 header) starts, and the offset of the next-header byte that names it
    (prevhdr). Hop-by-hop and routing headers are unfragmentable, and so is a destination
    options header unless a routing header came before it. None: the headers run past the
    packet (-EINVAL)."""
    offset, prevhdr, found_rhdr = IPV6_HLEN, 6, False
    n = len(pkt)
    while offset <= n:
        nexthdr = pkt[prevhdr]
        if nexthdr == NEXTHDR_ROUTING:
            found_rhdr = True
        elif nexthdr == NEXTHDR_DEST:
            if found_rhdr:
                return offset, prevhdr
        elif nexthdr != NEXTHDR_HOP:
            return offset, prevhdr
        if offset + 2 > n:
            return None
        prevhdr = offset
        offset += (pkt[offset + 1] + 1) << 3  # ipv6_optlen
        if offset > IPV6_MAXPLEN:
            return None
    return None


def ip6_fragment(skb, mtu: int, frag_id: int, host: str, mib: Mib, *, slow_path: bool) -> list | None:
    """ip6_fragment() → ip6_frag_init / ip6_frag_next: skb (data at its IPv6 header, len > mtu,
    the sender allowing it) as fragments that fit mtu, each the unfragmentable headers (their
    last next header 44), a fragment header and the next (mtu - hlen - 8) & ~7 bytes.
    Counts Ip6FragCreates per fragment and Ip6FragOKs; the original is consumed. None when it
    cannot be split (headers past the packet, or no 8 bytes of room: the caller counts
    Ip6FragFails and drops it).

    A local datagram takes the kernel's fast path (ip6_append_data laid it out as one skb per
    fragment while copying it from the user, ip6_fraglist_init pushes the headers): no copy
    here. The slow path (slow_path) copies each fragment into a new skb: a COPY event."""
    pkt = skb.payload()
    found = ip6_find_1stfragopt(pkt)
    if found is None:
        return None
    hlen, prevhdr = found
    if mtu < hlen + FRAG_HLEN + 8:
        return None
    room = mtu - hlen - FRAG_HLEN
    unfrag = bytearray(pkt[:hlen])
    nexthdr = unfrag[prevhdr]
    unfrag[prevhdr] = NEXTHDR_FRAGMENT
    left, ptr, offset = len(pkt) - hlen, hlen, 0
    frags = []
    while left > 0:
        size = left if left <= room else room & ~7  # only a fragment short of the end is aligned
        left -= size
        unfrag[4:6] = (hlen - IPV6_HLEN + FRAG_HLEN + size).to_bytes(2, "big")  # payload_len
        fh = Ipv6FragHdr(nexthdr, offset | (IP6_MF if left > 0 else 0), frag_id).to_bytes()
        frag = s.alloc_skb(s.MAX_HEADER + hlen + FRAG_HLEN + size, origin_host=skb.origin_host, sampled=skb.sampled)
        s.skb_reserve(frag, s.MAX_HEADER)
        s.skb_put_data(frag, unfrag)
        s.skb_put_data(frag, fh)
        s.skb_put_data(frag, pkt[ptr:ptr + size])
        s.skb_reset_network_header(frag)
        frag.transport_header = frag.network_header + hlen + FRAG_HLEN
        frag.copy_of = skb.id
        frag.traceparent = skb.traceparent
        for name in ("protocol", "dev", "pkt_type", "mark", "priority", "sk", "nexthop", "tstamp"):  # ip6_copy_metadata
            setattr(frag, name, getattr(skb, name))
        if slow_path:
            frag.record(s.COPY, L3, host, "ip6_frag_next", hlen + FRAG_HLEN + size, copy_from="skb", copy_to="skb")
        frags.append(frag)
        ptr += size
        offset += size
    mib.inc(IP6, "FragCreates", len(frags))
    mib.inc(IP6, "FragOKs")
    s.consume_skb(skb, L3, host, "ip6_fragment")
    return frags


def skb_gso_network_seglen6(skb) -> int:
    """skb_gso_network_seglen(): what each segment of a GSO packet (TCP) would be from its IPv6
    header on: the headers up to and including TCP's, and gso_size."""
    th = skb.transport_header
    return th - skb.network_header + (skb.buf[th + 12] >> 4) * 4 + skb.gso_size


def ip6_pkt_too_big(skb, frag_max_size: int, mtu: int) -> bool:
    """ip6_pkt_too_big(): a forwarded packet that does not fit mtu (one reassembled by
    conntrack, frag_max_size, by the size of its largest fragment; a GSO packet by its
    segments'). Forwarded packets never have ignore_df."""
    if skb.len <= mtu:
        return False
    if frag_max_size and frag_max_size > mtu:
        return True
    return not (skb.gso_size and skb_gso_network_seglen6(skb) <= mtu)


class Ip6Output:
    def __init__(self, host: str, addrconf, mtus: dict[str, int], *, to_l2: Callable[[list], object],
                 loopback_rcv: Callable[[s.SkBuff], object], get_saddr: Callable[[str, int], int], mib: Mib,
                 clock=time.monotonic, mc_joined: Callable[[str, int], bool] | None = None, disable_ipv6=(),
                 rng: random.Random | None = None, netfilter: nf6.Netfilter6 | None = None,
                 ratelimit: IcmpRateLimit | None = None,
                 ndisc_send_redirect: Callable[[s.SkBuff, Ipv6Hdr, int], None] | None = None) -> None:
        """addrconf: the host's Addrconf (routes, which devices have IPv6). mtus: each device's MTU.
        to_l2(skbs) hands packets to L2 (False: refused); loopback_rcv(skb) takes one back into
        the receive path (Ipv6.ipv6_rcv); get_saddr(dev, daddr) is source address selection
        (Ipv6.ipv6_dev_get_saddr). mc_joined(dev, group) says whether dev joined a group
        (Ipv6.ipv6_chk_mcast_addr: a socket's multicast is looped back then); disable_ipv6: the
        devices with net.ipv6.conf.DEV.disable_ipv6 = 1. netfilter: the host's ip6tables table
        (services/l3/netfilter6.py; empty if not given). ratelimit: the host's IcmpRateLimit (its
        per-peer buckets, inet_peer_xrlim_allow); ndisc_send_redirect(skb, hdr, target): neighbour
        discovery's (Ndisc.ndisc_send_redirect), for a packet forwarded back out of its link."""
        self.host = host
        self.nf = netfilter if netfilter is not None else nf6.Netfilter6()
        self.addrconf = addrconf
        self.mib = mib
        self.route6 = Route6(addrconf, mtus, clock=clock)
        self.disable_ipv6 = set(disable_ipv6)
        self.auto_flowlabels = IP6_AUTO_FLOW_LABEL_OPTOUT
        self._to_l2 = to_l2
        self._loopback_rcv = loopback_rcv
        self._get_saddr = get_saddr
        self._mc_joined = mc_joined
        self._rng = rng if rng is not None else random.Random()
        self._hashrnd = self._rng.getrandbits(32)  # the flow dissector's hashrnd
        self.ratelimit = ratelimit if ratelimit is not None else IcmpRateLimit(clock=clock)
        self._ndisc_send_redirect = ndisc_send_redirect

    def drop(self, skb, reason: int, func: str) -> int:
        s.kfree_skb_reason(skb, reason, L3, self.host, func)
        self.mib.drop(reason)
        return reason

    # -- routes ----------------------------------------------------------------------------
    def ip6_route_output(self, flow) -> Rt6Info | None:
        """ip6_dst_lookup_flow() for a Flowi6: the dst (route, device, next hop, path MTU) with the
        source address filled in: the flow's, else ipv6_dev_get_saddr() on the route's own device
        (ip6_route_get_saddr; no route has a preferred source here). None: no route (not
        counted here: ip6_output counts Ip6OutNoRoutes)."""
        rt = self.route6.ip6_route_output(flow.daddr, flow.oif, flow.saddr)
        if rt is None:
            return None
        return dataclasses.replace(rt, saddr=flow.saddr or self._get_saddr(rt.fib_dev, flow.daddr))

    def ip6_route_input(self, daddr: int, iif: str) -> Rt6Info | None:
        """ip6_route_input(): where a packet that came in on iif goes (see Route6.ip6_route_input)."""
        return self.route6.ip6_route_input(daddr, iif)

    def ip6_update_pmtu(self, daddr: int, mtu: int, oif: str = "") -> bool:
        """ip6_update_pmtu(): what a Packet Too Big about a packet to daddr teaches (RFC 8201, as
        Linux does it: an MTU below 1280 or not below the current one is ignored). Returns
        whether a path MTU was learned."""
        return self.route6.ip6_update_pmtu(daddr, mtu, oif)

    def ipv6_select_ident(self) -> int:
        """ipv6_select_ident(): a fragment identification, random and never 0 (get_random_u32_above(0))."""
        return self._rng.randrange(1, 1 << 32)

    def ip6_make_flowlabel(self, skb, flow, saddr: int) -> int:
        """ip6_make_flowlabel(): the flow's label, else (auto_flowlabels on) the flow's hash turned
        (rol32 16) to its low 20 bits: skb_get_hash_flowi6 over the addresses, protocol and ports
        (ICMPv6's type and code stand where the ports are), seeded at random per host. TCP's
        label is its socket's txhash in Linux: here its ports' hash, as stable for a connection."""
        label = flow.flowlabel & IPV6_FLOWLABEL_MASK
        if label or self.auto_flowlabels in (IP6_AUTO_FLOW_LABEL_OFF, IP6_AUTO_FLOW_LABEL_OPTIN):
            return label
        ports = 0
        if flow.proto in (NEXTHDR_TCP, NEXTHDR_UDP) and skb.len >= 4:
            ports = int.from_bytes(skb.payload()[:4], "big")
        elif flow.proto == NEXTHDR_ICMP:
            ports = flow.icmp_type << 8 | flow.icmp_code
        h = hash((self._hashrnd, saddr, flow.daddr, flow.proto, ports)) & 0xFFFFFFFF
        return (h << 16 | h >> 16) & IPV6_FLOWLABEL_MASK

    # -- locally generated -----------------------------------------------------------------
    def ip6_output(self, skb, flow, *, pmtudisc: int | None = None) -> int:
        """A local packet, skb data at its transport header, flow a Flowi6: what ip6_append_data +
        ip6_push_pending_frames do (ip6_xmit for TCP), then dst_output. Returns the errno the
        sender sees (0: sent; the skb is gone either way).

        pmtudisc: the socket's IPV6_MTU_DISCOVER (default the flow's `pmtudisc` if it has one,
        else WANT). Under WANT/DONT/OMIT a datagram up to 65535 bytes of payload is fragmented to
        the path MTU (OMIT and PROBE and INTERFACE: the device's); under DO/PROBE/INTERFACE one
        that does not fit is refused before anything is built (EMSGSIZE, no counter). TCP
        (ip6_xmit) is never fragmented: too big counts Ip6FragFails (EMSGSIZE)."""
        rt = self.ip6_route_output(flow)
        if rt is None:
            self.mib.inc(IP6, "OutNoRoutes")  # ip6_dst_lookup_tail
            self.drop(skb, pb.SKB_DROP_REASON_IP_OUTNOROUTES, "ip6_dst_lookup_tail")
            return errno.ENETUNREACH
        if not rt.saddr:  # ipv6_dev_get_saddr found none: -EADDRNOTAVAIL, nothing counted
            self.drop(skb, pb.SKB_DROP_REASON_NOT_SPECIFIED, "ip6_route_get_saddr")
            return errno.EADDRNOTAVAIL
        if pmtudisc is None:
            pmtudisc = getattr(flow, "pmtudisc", IPV6_PMTUDISC_WANT)
        length = skb.len  # the transport header and data: cork->length + length
        if flow.proto == NEXTHDR_TCP:  # ip6_xmit
            mtu, ignore_df = rt.mtu, False
            if IPV6_HLEN + length > mtu and not skb.gso_size or length > IPV6_MAXPLEN:
                self.mib.inc(IP6, "FragFails")
                self.drop(skb, pb.SKB_DROP_REASON_NOT_SPECIFIED, "ip6_xmit")
                return errno.EMSGSIZE
        else:  # ip6_setup_cork, __ip6_append_data
            mtu = self.route6.dev_mtu(rt.dev) if pmtudisc >= IPV6_PMTUDISC_PROBE else rt.mtu
            ignore_df = ip6_sk_ignore_df(pmtudisc)
            maxnonfragsize = IPV6_HLEN + IPV6_MAXPLEN if ignore_df else mtu
            if length > maxnonfragsize - IPV6_HLEN:
                self.drop(skb, pb.SKB_DROP_REASON_PKT_TOO_BIG, "__ip6_append_data")
                return errno.EMSGSIZE
        daddr = flow.daddr
        hop_limit = flow.hop_limit or (IPV6_DEFAULT_MCASTHOPS if ipv6_addr_is_multicast(daddr) else rt.hop_limit)
        hdr = Ipv6Hdr(rt.saddr, daddr, flow.proto, hop_limit=hop_limit, tclass=flow.tclass,
                      flow_lbl=self.ip6_make_flowlabel(skb, flow, rt.saddr), payload_len=length)
        s.skb_reset_transport_header(skb)
        try:
            s.skb_push_data(skb, hdr.to_bytes(length))
        except (WireError, s.SkbError):
            self.drop(skb, pb.SKB_DROP_REASON_NOT_SPECIFIED, "ip6_output")
            return errno.EINVAL
        s.skb_reset_network_header(skb)
        skb.protocol = ETH_P_IPV6
        self.mib.inc(IP6, "OutRequests")  # __ip6_make_skb / ip6_xmit
        if nf6.nf_hook6(self.nf, nf6.NF_INET_LOCAL_OUT, skb):  # __ip6_local_out / ip6_xmit
            reason = self.drop(skb, pb.SKB_DROP_REASON_NETFILTER_DROP, "nf_hook_slow")
        else:
            reason = self._dst_output(skb, hdr, rt, mtu, ignore_df=ignore_df, mc_loop=True)
        if reason == pb.SKB_DROP_REASON_NETFILTER_DROP and flow.proto != NEXTHDR_TCP:
            self.mib.inc(IP6, "OutDiscards")  # ip6_send_skb: ip6_local_out's -EPERM (ip6_xmit counts nothing)
        return self._errno(reason)

    def ip6_local_out(self, skb, dev: str | None = None) -> int:
        """ip6_local_out() of a packet with its IPv6 header built (skb data at it): neighbour
        discovery's and MLD's (ndisc_send_skb, mld_sendpack), which count Ip6OutRequests first.
        Out of `dev` when given, without a route lookup (icmp6_dst_alloc: next hop the
        destination, the device's MTU), else routed by its destination. payload_len is set from
        the length (__ip6_local_out); a packet over the MTU is fragmented. Returns the errno."""
        if skb.len < IPV6_HLEN or skb.payload()[0] >> 4 != 6 or skb.len - IPV6_HLEN > IPV6_MAXPLEN:
            self.drop(skb, pb.SKB_DROP_REASON_NOT_SPECIFIED, "ip6_local_out")
            return errno.EINVAL
        buf = skb.writable()
        buf[skb.data + 4:skb.data + 6] = (skb.len - IPV6_HLEN).to_bytes(2, "big")  # ipv6_set_payload_len
        s.skb_reset_network_header(skb)
        hdr = Ipv6Hdr.from_bytes(skb.payload())
        if dev:
            rt = self._icmp6_dst_alloc(dev, hdr.daddr)
        else:
            rt = self.route6.ip6_route_output(hdr.daddr, "", hdr.saddr)
            if rt is None:
                self.mib.inc(IP6, "OutNoRoutes")
                self.drop(skb, pb.SKB_DROP_REASON_IP_OUTNOROUTES, "ip6_local_out")
                return errno.ENETUNREACH
        skb.protocol = ETH_P_IPV6
        self.mib.inc(IP6, "OutRequests")
        if nf6.nf_hook6(self.nf, nf6.NF_INET_LOCAL_OUT, skb):  # ndisc_send_skb's NF_HOOK: EPERM, nothing counted
            return self._errno(self.drop(skb, pb.SKB_DROP_REASON_NETFILTER_DROP, "nf_hook_slow"))
        return self._errno(self._dst_output(skb, hdr, rt, rt.mtu, ignore_df=True, mc_loop=False))

    def _icmp6_dst_alloc(self, dev: str, daddr: int) -> Rt6Info:
        """icmp6_dst_alloc(): a dst out of dev to daddr itself, the device's MTU, no route behind it."""
        f6i = Fib6Info(daddr, 128, dev, metric=0, type=RTN_MULTICAST if ipv6_addr_is_multicast(daddr) else "unicast")
        return Rt6Info(daddr, f6i, dev, daddr, self.route6.dev_mtu(dev))

    @staticmethod
    def _errno(reason: int) -> int:
        """What the sender sees of a drop after the header was built: L2's refusal is ENOBUFS
        (net_xmit_errno of NET_XMIT_DROP); netfilter's EPERM (nf_hook_slow's NF_DROP_GETERR);
        a failed fragmentation EMSGSIZE or EINVAL."""
        if not reason:
            return 0
        return {pb.SKB_DROP_REASON_CPU_BACKLOG: errno.ENOBUFS, pb.SKB_DROP_REASON_PKT_TOO_BIG: errno.EMSGSIZE,
                pb.SKB_DROP_REASON_NETFILTER_DROP: errno.EPERM}.get(reason, errno.EINVAL)

    # -- dst_output ------------------------------------------------------------------------
    def _ip6_output_dev(self, skb, rt: Rt6Info) -> int:
        """ip6_output(): the packet takes the dst's device; one without IPv6 (no inet6_dev, or
        disable_ipv6) drops it, Ip6OutDiscards, IPV6DISABLED (and ip6_output returns 0)."""
        skb.protocol = ETH_P_IPV6
        skb.dev = rt.dev
        if rt.dev not in self.addrconf.idev or rt.dev in self.disable_ipv6:
            self.mib.inc(IP6, "OutDiscards")
            self.drop(skb, pb.SKB_DROP_REASON_IPV6DISABLED, "ip6_output")
            return pb.SKB_DROP_REASON_IPV6DISABLED
        return 0

    def _dst_output(self, skb, hdr: Ipv6Hdr, rt: Rt6Info, mtu: int, *, ignore_df: bool, mc_loop: bool) -> int:
        """ip6_output() → NF_INET_POST_ROUTING → ip6_finish_output(): fragment what exceeds mtu
        (ip6_skb_dst_mtu), then ip6_finish_output2. Returns the drop reason that reaches the
        sender (0: sent, or freed as the kernel frees it without an error)."""
        if self._ip6_output_dev(skb, rt):
            return 0
        if nf6.nf_hook6(self.nf, nf6.NF_INET_POST_ROUTING, skb):
            return self.drop(skb, pb.SKB_DROP_REASON_NETFILTER_DROP, "nf_hook_slow")
        if skb.gso_size:  # ip6_finish_output_gso
            if skb_gso_network_seglen6(skb) <= mtu:
                return self._finish_output2([skb], hdr, rt, mc_loop=mc_loop)
            self.mib.inc(IP6, "FragFails")  # would be segmented in software: pktpath's GSO is IPv4's
            return self.drop(skb, pb.SKB_DROP_REASON_PKT_TOO_BIG, "ip6_finish_output_gso")
        if skb.len <= mtu:
            return self._finish_output2([skb], hdr, rt, mc_loop=mc_loop)
        if not ignore_df:  # ip6_fragment's fail_toobig (the local senders here were refused earlier)
            self.mib.inc(IP6, "FragFails")
            return self.drop(skb, pb.SKB_DROP_REASON_PKT_TOO_BIG, "ip6_fragment")
        frags = ip6_fragment(skb, mtu, self.ipv6_select_ident(), self.host, self.mib, slow_path=False)
        if frags is None:
            self.mib.inc(IP6, "FragFails")
            return self.drop(skb, pb.SKB_DROP_REASON_NOT_SPECIFIED, "ip6_fragment")
        return self._finish_output2(frags, hdr, rt, mc_loop=mc_loop)

    def _finish_output2(self, skbs: list, hdr: Ipv6Hdr, rt: Rt6Info, *, mc_loop: bool) -> int:
        """ip6_finish_output2() for each packet (a datagram's fragments together): multicast
        looped back if joined (dev_loopback_xmit: a clone, PACKET_LOOPBACK, on the outgoing
        device), counted, an interface-local group's freed; Ip6OutTransmits, Ip6OutOctets; then
        to lo (back in) or to L2 with skb.nexthop (rt6_nexthop). L2's refusal drops them all:
        Ip6OutDiscards, CPU_BACKLOG, returned."""
        daddr = hdr.daddr
        multicast = ipv6_addr_is_multicast(daddr)
        lo = rt.dev == LOOPBACK_DEV
        out = []
        for skb in skbs:
            if multicast:
                if not lo and mc_loop and self._mc_joined is not None and self._mc_joined(rt.dev, daddr):
                    clone = s.skb_clone(skb, L3, self.host, "dev_loopback_xmit")
                    if nf6.nf_hook6(self.nf, nf6.NF_INET_POST_ROUTING, clone):  # the copy's own POST_ROUTING
                        self.drop(clone, pb.SKB_DROP_REASON_NETFILTER_DROP, "nf_hook_slow")
                    else:
                        clone.pkt_type = pb.PACKET_LOOPBACK
                        clone.record(s.EXIT, L3, self.host, "dev_loopback_xmit")
                        self._loopback_rcv(clone)
                    if hdr.hop_limit == 0:  # for this host only
                        self.mib.inc(IP6, "OutDiscards")
                        self.drop(skb, pb.SKB_DROP_REASON_NOT_SPECIFIED, "ip6_finish_output2")
                        continue
                self.mib.inc(IP6, "OutMcastPkts")
                self.mib.inc(IP6, "OutMcastOctets", skb.len)
                if IPV6_ADDR_MC_SCOPE(daddr) <= IPV6_ADDR_SCOPE_NODELOCAL and not lo:
                    self.drop(skb, pb.SKB_DROP_REASON_NOT_SPECIFIED, "ip6_finish_output2")
                    continue
            self.mib.inc(IP6, "OutTransmits")  # IP6_UPD_PO_STATS(IPSTATS_MIB_OUT)
            self.mib.inc(IP6, "OutOctets", skb.len)
            skb.dev = rt.dev
            skb.nexthop = rt.nexthop
            skb.protocol = ETH_P_IPV6
            if lo:
                self._loopback_xmit(skb)
            else:
                skb.record(s.EXIT, L3, self.host, "ip6_finish_output2")
                out.append(skb)
        if out and not self._to_l2(out):
            for skb in out:
                self.drop(skb, pb.SKB_DROP_REASON_CPU_BACKLOG, "ip6_finish_output2")
            self.mib.inc(IP6, "OutDiscards", len(out))
            return pb.SKB_DROP_REASON_CPU_BACKLOG
        return 0

    def _loopback_xmit(self, skb) -> None:
        """loopback_xmit(): a packet for one of our own addresses comes straight back in on lo,
        orphaned first (its socket gets its memory back), as IPv4's does (PACKET_LOOPBACK)."""
        s.skb_orphan(skb, self.host)
        skb.dev = LOOPBACK_DEV
        skb.pkt_type = pb.PACKET_LOOPBACK
        skb.record(s.EXIT, L3, self.host, "loopback_xmit")
        self._loopback_rcv(skb)

    # -- forwarding ------------------------------------------------------------------------
    def ip6_forward(self, skb, hdr: Ipv6Hdr, parm, icmp6_send, rt: Rt6Info | None = None) -> int:
        """ip6_forward() on a host that forwards: skb data at the IPv6 header hdr, parm its
        Inet6SkbParm (iif, frag_max_size), icmp6_send(skb, hdr, parm, type, code, info) the
        caller's (Ipv6.icmp6_send); rt the dst ip6_route_input gave (looked up here if None, and
        with none ip6_pkt_discard's answer: Destination Unreachable, no route, Ip6InNoRoutes).
        The checks, counters and drop reasons in the kernel's order (see the module's
        docstring). Returns the drop reason, 0 if it went on to L2."""
        if rt is None:
            rt = self.ip6_route_input(hdr.daddr, parm.iif)
            if rt is None:
                return ip6_pkt_discard(self, skb, hdr, parm, icmp6_send)
        if rt.is_local or rt.type == RTN_MULTICAST:  # dst_input is ip6_input / ip6_mc_input: the caller's
            return self.drop(skb, pb.SKB_DROP_REASON_NOT_SPECIFIED, "ip6_forward")
        if skb.pkt_type != pb.PACKET_HOST:
            return self.drop(skb, pb.SKB_DROP_REASON_NOT_SPECIFIED, "ip6_forward")
        if hdr.hop_limit <= 1:
            icmp6_send(skb, hdr, parm, ICMPV6_TIME_EXCEED, ICMPV6_EXC_HOPLIMIT, 0)
            self.mib.inc(IP6, "InHdrErrors")
            return self.drop(skb, pb.SKB_DROP_REASON_IP_INHDR, "ip6_forward")
        dev = rt.dev
        if parm.iif == dev:  # back out of the link it came in on: a redirect (no routing header here: srcrt 0)
            target = rt.gateway or hdr.daddr  # rt6i_gateway under RTF_GATEWAY, else the destination
            # limited by destination here and by source inside ndisc_send_redirect, 1 s apart after a burst of 6
            if self._ndisc_send_redirect is not None and self.ratelimit.peer_allow(("ip6", hdr.daddr), 1.0):
                self._ndisc_send_redirect(skb, hdr, target)
        else:
            addrtype = ipv6_addr_type(hdr.saddr)
            if not hdr.saddr or addrtype & (IPV6_ADDR_MULTICAST | IPV6_ADDR_LOOPBACK):
                return self._addr_error(skb)
            if addrtype & IPV6_ADDR_LINKLOCAL:
                icmp6_send(skb, hdr, parm, ICMPV6_DEST_UNREACH, ICMPV6_NOT_NEIGHBOUR, 0)
                return self._addr_error(skb)
        self.mib.inc(IP6, "OutForwDatagrams")
        mtu = max(self.route6.dev_mtu(dev), IPV6_MIN_MTU)  # ip6_dst_mtu_maybe_forward(dst, true)
        if ip6_pkt_too_big(skb, parm.frag_max_size, mtu):
            skb.dev = dev  # the kernel's "force OUTPUT device used as source address"
            icmp6_send(skb, hdr, parm, ICMPV6_PKT_TOOBIG, 0, mtu)
            self.mib.inc(IP6, "InTooBigErrors")
            self.mib.inc(IP6, "FragFails")
            return self.drop(skb, pb.SKB_DROP_REASON_PKT_TOO_BIG, "ip6_forward")
        buf = skb.writable()  # skb_cow, then the hop limit
        buf[skb.network_header + 7] -= 1
        hdr = hdr._replace(hop_limit=hdr.hop_limit - 1)
        if nf6.nf_hook6(self.nf, nf6.NF_INET_FORWARD, skb):
            return self.drop(skb, pb.SKB_DROP_REASON_NETFILTER_DROP, "nf_hook_slow")
        skb.tstamp = 0  # ip6_forward_finish: skb_clear_tstamp
        if self._ip6_output_dev(skb, rt):
            return pb.SKB_DROP_REASON_IPV6DISABLED
        if nf6.nf_hook6(self.nf, nf6.NF_INET_POST_ROUTING, skb):  # dst_output → ip6_output
            return self.drop(skb, pb.SKB_DROP_REASON_NETFILTER_DROP, "nf_hook_slow")
        if ip6_pkt_too_big(skb, 0, rt.mtu):  # ip6_finish_output → ip6_fragment: !ignore_df → fail_toobig
            icmp6_send(skb, hdr, parm, ICMPV6_PKT_TOOBIG, 0, rt.mtu)
            self.mib.inc(IP6, "FragFails")
            return self.drop(skb, pb.SKB_DROP_REASON_NOT_SPECIFIED, "ip6_fragment")
        return self._finish_output2([skb], hdr, rt, mc_loop=False)

    def _addr_error(self, skb) -> int:
        """ip6_forward's error: label."""
        self.mib.inc(IP6, "InAddrErrors")
        return self.drop(skb, pb.SKB_DROP_REASON_IP_INADDRERRORS, "ip6_forward")
