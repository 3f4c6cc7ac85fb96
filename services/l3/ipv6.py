"""The IPv6 layer of one host, receive side: ipv6_rcv, local delivery, ICMPv6 in, ICMPv6 errors out.

Receive models net/ipv6/ip6_input.c as Linux 6.18 runs it:

- ip6_rcv_core(): its checks in the kernel's order, each with its drop reason and Ip6 counter.
  PACKET_OTHERHOST is dropped before anything is counted; then Ip6InReceives and Ip6InOctets
  (the length L2 handed over, link padding included); a device with IPv6 off (IPV6DISABLED) or
  none (no inet6_dev) counts Ip6InDiscards; under 40 bytes (IP_INHDR) and a version other than
  6 (UNHANDLED_PROTO) count Ip6InHdrErrors; the ECN class counts Ip6In{NoECT,ECT1,ECT0,CE}Pkts;
  ::1 from the wire, an interface-local (ff01::/16) or scope-0 multicast destination and a
  multicast source count Ip6InHdrErrors (IP_INHDR); payload_len past the data counts
  Ip6InTruncatedPkts (PKT_TOO_SMALL); link padding is trimmed; a hop-by-hop header is parsed
  at once (ipv6_parse_hopopts), any failure counting Ip6InHdrErrors.
- ip6_rcv_finish() → ip6_route_input(): a multicast destination goes to ip6_mc_input
  (Ip6InMcastPkts, Ip6InMcastOctets; a group the device has not joined — its multicast list,
  services/l3/mcast6.py's — is freed, uncounted, NOT_SPECIFIED, as Linux 6.18 frees a UDP
  datagram to ff12::5555); a local address (the receiving device's, or a global one of any device: a
  link-local address is ours only on its own device) to ip6_input; anything else to
  ip6_forward, which with forwarding off (the default) counts Ip6InAddrErrors and drops it
  IP_INADDRERRORS without a word; with no route at all ip6_pkt_discard answers Destination
  Unreachable, no route, and counts Ip6InNoRoutes (IP_INNOROUTES; :: counts Ip6InAddrErrors,
  IP_INADDRERRORS).
- ip6_protocol_deliver_rcu(): the extension headers in packet order (ipv6_rthdr_rcv,
  ipv6_frag_rcv, ipv6_destopt_rcv), then the upper protocol: UDP and TCP go to L4 (`to_l4`),
  ICMPv6 to icmpv6_rcv, NEXTHDR_NONE is freed (dst_discard_out) after counting Ip6InDelivers,
  anything else counts Ip6InUnknownProtos and is answered with Parameter Problem code 1
  pointing at the byte that named it (IP_NOPROTO). A hop-by-hop header anywhere but first is
  such an unknown protocol.

ICMPv6 models net/ipv6/icmp.c: icmpv6_rcv (Icmp6InMsgs, the checksum, Icmp6In<Type> and
Icmp6InType<N>; echo requests answered by icmpv6_echo_reply; echo replies to ping sockets;
errors to icmpv6_notify and the quoted protocol's err_handler in L4; NDP through ndisc_validate
to the `ndisc_rcv` the caller supplies; MLD queries and reports to `mld_rcv`; everything else
freed NOT_SPECIFIED, as Linux does) and icmp6_send for errors (RFC 4443 2.4's rules, the
1280-byte limit, source address selection, rate limits).

Counters are the /proc/net/snmp6 names split after their prefix: group "Ip6" (Ip6InReceives is
("Ip6", "InReceives")), group "Icmp6" (Icmp6InMsgs, Icmp6InEchos, Icmp6InType128 ...; the kernel
prints the named and the numbered line from one counter, pktpath counts both as Ipv4 counts Icmp
and IcmpMsg). The global ICMP rate limit is IPv4's and IPv6's together: its misses count IPv4's
Icmp OutRateLimitGlobal, as in the kernel.

Fragments are reassembled as net/ipv6/reassembly.c does (services/l3/reassembly.py: RFC 5722's
rule that an overlap discards the datagram, the 60 s timeout with its Time Exceeded).

Netfilter's IPv6 hooks (services/l3/netfilter6.py, ip6tables' table): NF_INET_PRE_ROUTING in
ipv6_rcv after ip6_rcv_core, NF_INET_LOCAL_IN in ip6_input (before the extension headers and
reassembly: fragments meet it one by one); a DROP frees the packet NETFILTER_DROP, uncounted
in Ip6 (nf_hook_slow).

Left for later steps (each a marked hook): path MTU learning from Packet Too Big, routing
output (errors and replies go to `ip6_output(skb, flow)` with data at the ICMPv6 header and
a Flowi6), raw sockets but radvd's ICMPv6 one
(raw6_local_deliver: a clone of each RS and RA before icmpv6_rcv, for Ndisc.radvd_rcv).

Pure logic: the layers around are callables (`to_l4(kind, items)` with kind "udp6", "tcp6",
"ping6" or "err6"; `ip6_output(skb, Flowi6)`; `ndisc_rcv(skb, hdr)` and `mld_rcv(skb, hdr)`
returning a drop reason, 0 when consumed). Addresses are 128-bit ints; the host's addresses
come from an Addrconf (services/l3/addrconf.py).
"""

import threading
import time
from dataclasses import dataclass
from typing import Callable, NamedTuple

from pktpath import skbuff as s
from pktpath.counters import Mib
from pktpath.pb import skbuff_pb2
from pktpath.services.l3.handoff import PollHandOff
from pktpath.services.l3.addrconf import (
    IFA_F_DADFAILED, IFA_F_DEPRECATED, IFA_F_OPTIMISTIC, IFA_F_TENTATIVE, LOOPBACK_DEV,
)
from pktpath.services.l3 import netfilter6 as nf6
from pktpath.services.l3.icmp import IcmpRateLimit
from pktpath.services.l3.reassembly import FragParamProb, Ipv6Defrag, Ipv6Reasm
from pktpath.services.l3.route6 import Route6, ip6_pkt_discard
from pktpath.wire.addr import (
    IN6ADDR_LOOPBACK, IPV6_ADDR_LINKLOCAL, IPV6_ADDR_LOOPBACK, IPV6_ADDR_MC_SCOPE, IPV6_ADDR_SCOPE_LINKLOCAL,
    ipv6_addr_is_multicast, ipv6_addr_scope, ipv6_addr_src_scope,
)
from pktpath.wire.errors import ChecksumError, TruncatedError, WireError
from pktpath.wire.icmpv6 import (
    ICMPV6_ECHO_REPLY, ICMPV6_ECHO_REQUEST, ICMPV6_ERRMSG_MAX, ICMPV6_EXT_ECHO_REPLY,
    ICMPV6_EXC_FRAGTIME, ICMPV6_EXT_ECHO_REQUEST, ICMPV6_HLEN, ICMPV6_INFOMSG_MASK, ICMPV6_MGM_QUERY,
    ICMPV6_MGM_REPORT, ICMPV6_PARAMPROB, ICMPV6_PKT_TOOBIG, ICMPV6_TIME_EXCEED, NDISC_MESSAGES,
    Icmp6Hdr, ndisc_validate, quote,
)
from pktpath.wire.ipv6 import (
    ICMPV6_HDR_FIELD, ICMPV6_HDR_INCOMP, ICMPV6_UNK_NEXTHDR, ICMPV6_UNK_OPTION, IP6_DEFAULT_MAX_DST_OPTS_CNT,
    IP6_DEFAULT_MAX_DST_OPTS_LEN, IP6_DEFAULT_MAX_HBH_OPTS_CNT, IP6_DEFAULT_MAX_HBH_OPTS_LEN, IPPROTO_ICMPV6,
    IPV6_HLEN, IPV6_SRCRT_TYPE_3, IPV6_SRCRT_TYPE_4, NEXTHDR_DEST, NEXTHDR_FRAGMENT, NEXTHDR_HOP, NEXTHDR_ICMP,
    NEXTHDR_NONE, NEXTHDR_ROUTING, NEXTHDR_TCP, NEXTHDR_UDP, ExtHdrInvalid, ExtHdrRefused, ExtHdrTruncated,
    Ipv6DestOptHdr, Ipv6FragHdr, Ipv6Hdr, Ipv6HopOptHdr, Ipv6OptRouterAlert, Ipv6ParamProb, Ipv6RtHdr,
    Ipv6UnknownOption, ipv6_ext_hdr, ipv6_skip_exthdr, ipv6frag_thdr_truncated,
)

pb = skbuff_pb2
L3 = pb.LAYER_L3
IP6, ICMP6, ICMP = "Ip6", "Icmp6", "Icmp"
ETH_P_IPV6 = 0x86DD
IPPROTO_RAW = 255

# net.ipv6.icmp.ratelimit: Linux 6.18 starts a namespace at 100 ms (6.12's icmpv6_time was 1*HZ),
# and gives every destination that interval whatever route it takes (6.12 shortened it for
# shorter prefixes). Seen: 20 errors at once to one peer → 6 sent, then one per 100 ms.
ICMPV6_RATELIMIT_S = 0.1
# net.ipv6.icmp.ratemask "0-1,3-127": every error type but Packet Too Big; no informational one.
ICMPV6_RATEMASK = frozenset(t for t in range(ICMPV6_ERRMSG_MAX + 1) if t != ICMPV6_PKT_TOOBIG)

# icmp6type2name[] (net/ipv6/proc.c): the /proc/net/snmp6 names of Icmp6In<Name> / Icmp6Out<Name>.
TYPE_NAMES6 = {
    1: "DestUnreachs", 2: "PktTooBigs", 3: "TimeExcds", 4: "ParmProblems", 128: "Echos", 129: "EchoReplies",
    130: "GroupMembQueries", 131: "GroupMembResponses", 132: "GroupMembReductions", 143: "MLDv2Reports",
    133: "RouterSolicits", 134: "RouterAdvertisements", 135: "NeighborSolicits", 136: "NeighborAdvertisements",
    137: "Redirects",
}
# IPSTATS_MIB_NOECTPKTS + (ipv6_get_dsfield(hdr) & INET_ECN_MASK)
_ECN_COUNTERS = ("InNoECTPkts", "InECT1Pkts", "InECT0Pkts", "InCEPkts")
_L4_HANDLERS6 = {NEXTHDR_UDP: "udp6", NEXTHDR_TCP: "tcp6"}  # inet6_protos[] that live in L4
_ERR_HANDLERS6 = frozenset((NEXTHDR_UDP, NEXTHDR_TCP))        # and have an err_handler there

_QUEUED = -1  # ipv6_frag_rcv: the fragment waits in its queue (the kernel's return -1 after ip6_frag_queue)

# struct inet6_skb_parm's flags (include/linux/ipv6.h)
IP6SKB_ROUTERALERT = 8
IP6SKB_FRAGMENTED = 16

# The default address label policy (net/ipv6/addrlabel.c, RFC 6724 2.1): (prefix, length, label),
# longest prefix first.
_ADDR_LABELS = (
    (IN6ADDR_LOOPBACK, 128, 0), (0xFFFF << 32, 96, 4), (0, 96, 3), (0x20010010 << 96, 28, 7),
    (0x20010000 << 96, 32, 6), (0x2002 << 112, 16, 2), (0x3FFE << 112, 16, 12), (0xFEC0 << 112, 10, 11),
    (0xFC00 << 112, 7, 5), (0, 0, 1),
)


def _prefix_match(addr: int, prefix: int, plen: int) -> bool:
    return not plen or (addr ^ prefix) >> (128 - plen) == 0


def ipv6_addr_label(addr: int) -> int:
    """ipv6_addr_label(): addr's label in the default policy table."""
    return next(label for prefix, plen, label in _ADDR_LABELS if _prefix_match(addr, prefix, plen))


def ipv6_addr_diff(a: int, b: int) -> int:
    """ipv6_addr_diff(): how many leading bits a and b share."""
    return 128 - (a ^ b).bit_length()


class Flowi6(NamedTuple):
    """struct flowi6, what an ICMPv6 message's sender tells the output path: 0 in saddr lets the
    route pick the source, 0 in hop_limit is the route's default (64)."""
    daddr: int
    saddr: int = 0
    proto: int = IPPROTO_ICMPV6
    oif: str = ""          # flowi6_oif: the device the message must leave by ("" for any)
    hop_limit: int = 0
    tclass: int = 0
    flowlabel: int = 0
    icmp_type: int = 0     # fl6_icmp_type / fl6_icmp_code
    icmp_code: int = 0


@dataclass
class Inet6SkbParm:
    """IP6CB(skb), struct inet6_skb_parm: what the receive path learns about a packet."""
    iif: str                # the device it came in on
    nhoff: int = 6          # the byte that named the header being handled: offsetof(ipv6hdr, nexthdr)
    flags: int = 0          # IP6SKB_*
    ra: int | None = None   # the Router Alert value, if any
    frag_max_size: int = 0


class Ipv6(PollHandOff):
    MIB_GROUP, DELIVER_FUNC = "Ip6", "ip6_protocol_deliver_rcu"

    def __init__(self, host: str, addrconf, *, to_l4: Callable[[str, list], object],
                 ip6_output: Callable[[s.SkBuff, Flowi6], object], mib: Mib,
                 ndisc_rcv: Callable[[s.SkBuff, Ipv6Hdr], int] | None = None,
                 mld_rcv: Callable[[s.SkBuff, Ipv6Hdr], int] | None = None,
                 ratelimit: IcmpRateLimit | None = None, disable_ipv6=(), clock=time.monotonic,
                 route_input: Callable | None = None, forward: Callable | None = None,
                 netfilter: nf6.Netfilter6 | None = None,
                 raw6_rcv: Callable[[s.SkBuff, Ipv6Hdr], None] | None = None, raw6_filter=frozenset()) -> None:
        """addrconf: the host's addresses (an Addrconf: ipv6_chk_addr, addr_list, idev, routes,
        forwarding). ratelimit: the host's IcmpRateLimit, shared with Ipv4 for the global bucket.
        disable_ipv6: the devices with net.ipv6.conf.DEV.disable_ipv6 = 1. route_input(daddr, iif)
        and forward(skb, hdr, parm, icmp6_send, rt) are Ip6Output's (services/l3/ip6_output.py);
        without them, routes are looked up in addrconf's tables and nothing is forwarded.
        netfilter: the host's ip6tables table (services/l3/netfilter6.py; empty if not given).
        raw6_rcv(skb, hdr): the one raw ICMPv6 socket pktpath has, a router's radvd
        (Ndisc.radvd_rcv), passing the ICMPv6 types in raw6_filter (its ICMP6_FILTER)."""
        self.host = host
        self.addrconf = addrconf
        self.mib = mib
        self.nf = netfilter if netfilter is not None else nf6.Netfilter6()
        self.ratelimit = ratelimit if ratelimit is not None else IcmpRateLimit(clock=clock)
        self.disable_ipv6 = set(disable_ipv6)
        # net.ipv6.max_hbh_opts_number, max_dst_opts_number, max_hbh_length, max_dst_opts_length
        self.max_hbh_opts_cnt = IP6_DEFAULT_MAX_HBH_OPTS_CNT
        self.max_dst_opts_cnt = IP6_DEFAULT_MAX_DST_OPTS_CNT
        self.max_hbh_opts_len = IP6_DEFAULT_MAX_HBH_OPTS_LEN
        self.max_dst_opts_len = IP6_DEFAULT_MAX_DST_OPTS_LEN
        self.icmp_ratelimit = ICMPV6_RATELIMIT_S
        self._to_l4 = to_l4
        self._ip6_output = ip6_output
        self._ndisc_rcv = ndisc_rcv
        self._mld_rcv = mld_rcv
        self._route_input = route_input or Route6(addrconf, {}, clock=clock).ip6_route_input
        self._forward = forward
        self._raw6_rcv = raw6_rcv
        self._raw6_filter = frozenset(raw6_filter)
        self.frags = Ipv6Defrag(host, mib, clock=clock)
        self._frag_lock = threading.Lock()
        self._init_handoff()

    def drop(self, skb, reason: int, func: str) -> int:
        s.kfree_skb_reason(skb, reason, L3, self.host, func)
        self.mib.drop(reason)
        return reason

    def _free(self, skb, reason: int, func: str) -> int:
        """What icmpv6_rcv does with the reason a handler returned: consume or drop."""
        if not reason or reason == pb.SKB_CONSUMED:
            s.consume_skb(skb, L3, self.host, func)
            return 0
        return self.drop(skb, reason, func)

    # -- the host's addresses (addrconf) ---------------------------------------------------
    def ipv6_chk_addr(self, addr: int, dev: str) -> bool:
        """ipv6_chk_addr(net, addr, dev, strict=0): one of dev's addresses, or a wider-scoped one
        of any device (a link-local or loopback address belongs to its own device only)."""
        if self.addrconf.ipv6_chk_addr(addr, dev):
            return True
        return not ipv6_addr_scope(addr) & (IPV6_ADDR_LINKLOCAL | IPV6_ADDR_LOOPBACK) and \
            self.addrconf.ipv6_chk_addr(addr)

    def ipv6_chk_mcast_addr(self, dev: str, group: int) -> bool:
        """ipv6_chk_mcast_addr(): is `group` in dev's multicast list (addrconf.mcast: the all-nodes
        groups, each address's solicited-node group, a router's all-routers group, and what
        sockets joined)?"""
        return self.addrconf.mcast.ipv6_chk_mcast_addr(dev, group)

    def _has_idev(self, dev: str) -> bool:
        return dev in self.addrconf.idev

    def ipv6_dev_get_saddr(self, dev: str, daddr: int) -> int:
        """ipv6_dev_get_saddr(): the source address for daddr when the message leaves by dev
        (RFC 6724 5, as __ipv6_dev_get_saddr scores them): for a multicast or link-scoped
        destination only dev's addresses, else every device's; rule 1 the address itself, 2 the
        appropriate scope, 3 not deprecated, 5 the outgoing device, 6 the same label, 8 the
        longest matching prefix (up to the address's prefix length). 0 when there is none."""
        dscope = ipv6_addr_src_scope(daddr)
        devs = [dev] if ipv6_addr_is_multicast(daddr) or dscope <= IPV6_ADDR_SCOPE_LINKLOCAL else \
            [dev] + [d for d in self.addrconf.idev if d != dev]
        dlabel = ipv6_addr_label(daddr)
        best, best_score = 0, None
        for d in devs:
            for ifa in self.addrconf.addr_list(d):
                if ifa.flags & IFA_F_DADFAILED or ifa.flags & IFA_F_TENTATIVE and not ifa.flags & IFA_F_OPTIMISTIC:
                    continue
                scope = ipv6_addr_src_scope(ifa.addr)
                score = (ifa.addr == daddr, -scope if scope >= dscope else scope - 128,
                         not (ifa.flags & IFA_F_DEPRECATED or ifa.prefered_lft == 0), d == dev,
                         ipv6_addr_label(ifa.addr) == dlabel, min(ipv6_addr_diff(ifa.addr, daddr), ifa.prefix_len))
                if best_score is None or score > best_score:
                    best, best_score = ifa.addr, score
        return best

    # -- receive ---------------------------------------------------------------------------
    def ipv6_list_rcv(self, skbs: list) -> tuple[int, int]:
        """ipv6_list_rcv(): one poll's IPv6 packets from L2. Returns (accepted, dropped)."""
        return self._list_rcv(skbs, self.ipv6_rcv)

    def _up(self, kind: str, skb, item=None) -> int:
        skb.record(s.EXIT, L3, self.host, "ip6_protocol_deliver_rcu")
        return self._pass_on(kind, skb if item is None else item, [skb])

    def ipv6_rcv(self, skb) -> int:
        """ipv6_rcv(): data at the IPv6 header. ip6_rcv_core, NF_INET_PRE_ROUTING, ip6_rcv_finish.
        Returns the drop reason, 0 if the packet went on."""
        skb.record(s.ENTER, L3, self.host, "ipv6_rcv")
        got = self.ip6_rcv_core(skb)
        if type(got) is int:
            return got
        if nf6.nf_hook6(self.nf, nf6.NF_INET_PRE_ROUTING, skb):
            return self.drop(skb, pb.SKB_DROP_REASON_NETFILTER_DROP, "nf_hook_slow")
        return self.ip6_rcv_finish(skb, *got)

    def ip6_rcv_core(self, skb) -> tuple[Ipv6Hdr, Inet6SkbParm] | int:
        """ip6_rcv_core(): the header's checks in the kernel's order (see the module's
        docstring), the trim, the hop-by-hop header. Returns (header, IP6CB) or the drop reason,
        the skb dropped."""
        if skb.pkt_type == pb.PACKET_OTHERHOST:
            return self.drop(skb, pb.SKB_DROP_REASON_OTHERHOST, "ip6_rcv_core")
        mib = self.mib
        mib.inc(IP6, "InReceives")
        mib.inc(IP6, "InOctets", skb.len)
        dev = skb.dev
        if dev in self.disable_ipv6 or not self._has_idev(dev):
            mib.inc(IP6, "InDiscards")
            reason = pb.SKB_DROP_REASON_IPV6DISABLED if dev in self.disable_ipv6 else pb.SKB_DROP_REASON_NOT_SPECIFIED
            return self.drop(skb, reason, "ip6_rcv_core")
        data = skb.payload()
        if len(data) < IPV6_HLEN:
            return self._hdr_error(skb, pb.SKB_DROP_REASON_IP_INHDR)
        if data[0] >> 4 != 6:
            return self._hdr_error(skb, pb.SKB_DROP_REASON_UNHANDLED_PROTO)
        mib.inc(IP6, _ECN_COUNTERS[data[1] >> 4 & 3], max(1, skb.gso_segs))
        saddr = int.from_bytes(data[8:24], "big")
        daddr = int.from_bytes(data[24:40], "big")
        loopback = dev == LOOPBACK_DEV
        if (saddr == IN6ADDR_LOOPBACK or daddr == IN6ADDR_LOOPBACK) and not loopback:  # RFC 4291 2.5.3
            return self._hdr_error(skb, pb.SKB_DROP_REASON_IP_INHDR)
        if ipv6_addr_is_multicast(daddr):
            scope = IPV6_ADDR_MC_SCOPE(daddr)
            if scope == 0 or scope == 1 and not loopback and skb.pkt_type != pb.PACKET_LOOPBACK:  # RFC 4291 2.7
                return self._hdr_error(skb, pb.SKB_DROP_REASON_IP_INHDR)
        if ipv6_addr_is_multicast(saddr):
            return self._hdr_error(skb, pb.SKB_DROP_REASON_IP_INHDR)
        try:
            hdr = Ipv6Hdr.from_bytes(data)
        except TruncatedError:
            mib.inc(IP6, "InTruncatedPkts")
            return self.drop(skb, pb.SKB_DROP_REASON_PKT_TOO_SMALL, "ip6_rcv_core")
        except WireError:  # payload_len 0 before a hop-by-hop header: a jumbogram, which pktpath refuses
            return self._hdr_error(skb, pb.SKB_DROP_REASON_IP_INHDR)
        s.skb_reset_network_header(skb)
        s.skb_trim(skb, IPV6_HLEN + hdr.payload_len)
        skb.transport_header = skb.network_header + IPV6_HLEN
        parm = Inet6SkbParm(dev)
        if hdr.nexthdr == NEXTHDR_HOP:
            reason = self.ipv6_parse_hopopts(skb, hdr, parm)
            if reason:
                mib.inc(IP6, "InHdrErrors")
                return reason
        return hdr, parm

    def _hdr_error(self, skb, reason: int) -> int:
        """ip6_rcv_core's err: label."""
        self.mib.inc(IP6, "InHdrErrors")
        return self.drop(skb, reason, "ip6_rcv_core")

    def ipv6_parse_hopopts(self, skb, hdr: Ipv6Hdr, parm: Inet6SkbParm) -> int:
        """ipv6_parse_hopopts(): the hop-by-hop header right after the fixed one, its options by
        ip6_parse_tlv (RFC 8200 4.2's actions for unknown options included). Returns the drop
        reason (the caller counts Ip6InHdrErrors), 0 if the packet goes on."""
        data = s.skb_network_header(skb)
        try:
            opt = Ipv6HopOptHdr.from_bytes(data, IPV6_HLEN, daddr=hdr.daddr, payload_len=hdr.payload_len,
                                           max_count=self.max_hbh_opts_cnt, max_len=self.max_hbh_opts_len)
        except Ipv6ParamProb as exc:
            return self._exthdr_error(skb, hdr, parm, exc, "ipv6_parse_hopopts")
        for o in opt.options:
            if type(o) is Ipv6OptRouterAlert:  # ipv6_hop_ra
                parm.flags |= IP6SKB_ROUTERALERT
                parm.ra = o.value
        skb.transport_header += (data[IPV6_HLEN + 1] + 1) << 3
        parm.nhoff = IPV6_HLEN
        return 0

    def _exthdr_error(self, skb, hdr: Ipv6Hdr, parm: Inet6SkbParm, exc: Ipv6ParamProb, func: str) -> int:
        """An options header the codec refused, as exthdrs.c frees it: an unknown option by
        ip6_tlvopt_unknown (UNHANDLED_PROTO, Parameter Problem 2 where its action bits ask for
        one), malformed options by ip6_parse_tlv and its option handlers (IP_INHDR; a Jumbo
        option's Parameter Problem 0), a header cut short or over max_*_opts_len by the caller
        (NOT_SPECIFIED)."""
        if exc.code is not None:
            self.icmp6_send(skb, hdr, parm, ICMPV6_PARAMPROB, exc.code, exc.offset)
        if isinstance(exc, Ipv6UnknownOption):
            return self.drop(skb, pb.SKB_DROP_REASON_UNHANDLED_PROTO, "ip6_tlvopt_unknown")
        if isinstance(exc, ExtHdrInvalid):
            return self.drop(skb, pb.SKB_DROP_REASON_IP_INHDR, "ip6_parse_tlv")
        return self.drop(skb, pb.SKB_DROP_REASON_NOT_SPECIFIED, func)

    def ip6_rcv_finish(self, skb, hdr: Ipv6Hdr, parm: Inet6SkbParm) -> int:
        """ip6_rcv_finish() → ip6_route_input() → dst_input: ip6_mc_input, ip6_input,
        ip6_forward or ip6_pkt_discard."""
        daddr = hdr.daddr
        if ipv6_addr_is_multicast(daddr):
            return self.ip6_mc_input(skb, hdr, parm)
        if self.ipv6_chk_addr(daddr, skb.dev):
            return self.ip6_input(skb, hdr, parm)
        rt = self._route_input(daddr, skb.dev)
        if rt is None:
            return self.ip6_pkt_discard(skb, hdr, parm)
        # a local route of an address not (yet) ours, a tentative one: Linux has no such route until
        # DAD completes, and the connected route takes the packet to ip6_forward
        return self.ip6_forward(skb, hdr, parm, None if rt.is_local else rt)

    def ip6_forward(self, skb, hdr: Ipv6Hdr, parm: Inet6SkbParm, rt=None) -> int:
        """ip6_forward(): with forwarding off, Ip6InAddrErrors and no ICMP (RFC 4443 leaves a host
        silent about what is not its own); on, the router's path (services/l3/ip6_output.py)."""
        if not self.addrconf.forwarding or self._forward is None:
            self.mib.inc(IP6, "InAddrErrors")
            return self.drop(skb, pb.SKB_DROP_REASON_IP_INADDRERRORS, "ip6_forward")
        return self._forward(skb, hdr, parm, self.icmp6_send, rt)

    def ip6_pkt_discard(self, skb, hdr: Ipv6Hdr, parm: Inet6SkbParm) -> int:
        """ip6_pkt_discard() → ip6_pkt_drop(ICMPV6_NOROUTE, IPSTATS_MIB_INNOROUTES): no route
        (ip6_null_entry). The unspecified address counts Ip6InAddrErrors instead; both are
        answered with Destination Unreachable, no route."""
        return ip6_pkt_discard(self, skb, hdr, parm, self.icmp6_send)

    def ip6_mc_input(self, skb, hdr: Ipv6Hdr, parm: Inet6SkbParm) -> int:
        """ip6_mc_input(): Ip6InMcastPkts and Ip6InMcastOctets, then delivery if the device joined
        the group; otherwise kfree_skb(), nothing else counted (no multicast routing)."""
        self.mib.inc(IP6, "InMcastPkts")
        self.mib.inc(IP6, "InMcastOctets", skb.len)
        if not self.ipv6_chk_mcast_addr(skb.dev, hdr.daddr):
            return self.drop(skb, pb.SKB_DROP_REASON_NOT_SPECIFIED, "ip6_mc_input")
        return self.ip6_input(skb, hdr, parm)

    def ip6_input(self, skb, hdr: Ipv6Hdr, parm: Inet6SkbParm) -> int:
        """ip6_input() → NF_INET_LOCAL_IN → ip6_input_finish."""
        if nf6.nf_hook6(self.nf, nf6.NF_INET_LOCAL_IN, skb):
            return self.drop(skb, pb.SKB_DROP_REASON_NETFILTER_DROP, "nf_hook_slow")
        return self.ip6_protocol_deliver_rcu(skb, hdr, parm)

    def ip6_protocol_deliver_rcu(self, skb, hdr: Ipv6Hdr, parm: Inet6SkbParm) -> int:
        """ip6_protocol_deliver_rcu(): pull to the transport header, handle the extension header
        there and resubmit, until an upper protocol. (The check of a multicast destination
        against the socket-level source filters of a group, ipv6_chk_mcast_addr with a source,
        waits for sockets that join groups.)"""
        nh = skb.network_header
        while True:
            s.skb_pull(skb, skb.transport_header - skb.data)
            nexthdr = skb.buf[nh + parm.nhoff]
            off = skb.transport_header - nh
            if nexthdr == NEXTHDR_ROUTING:
                reason = self.ipv6_rthdr_rcv(skb, hdr, parm, off)
            elif nexthdr == NEXTHDR_FRAGMENT:
                reason = self.ipv6_frag_rcv(skb, hdr, parm, off)
                if type(reason) is Ipv6Reasm:  # the datagram is whole: on with the header after the fragment's
                    hdr, reason = reason.hdr, 0
                elif reason == _QUEUED:
                    return 0
            elif nexthdr == NEXTHDR_DEST:
                reason = self.ipv6_destopt_rcv(skb, hdr, parm, off)
            else:
                break
            if reason:
                return reason
        if nexthdr == NEXTHDR_ICMP:
            self.raw6_local_deliver(skb, hdr)
            self.mib.inc(IP6, "InDelivers")  # icmpv6_rcv returns 0, whatever becomes of the message
            return self.icmpv6_rcv(skb, hdr, parm)
        if nexthdr == NEXTHDR_NONE:  # nodata_protocol: dst_discard, which returns 0
            self.mib.inc(IP6, "InDelivers")
            return self.drop(skb, pb.SKB_DROP_REASON_NOT_SPECIFIED, "dst_discard_out")
        kind = _L4_HANDLERS6.get(nexthdr)
        if kind is None:  # no inet6_protos entry and no raw socket
            self.mib.inc(IP6, "InUnknownProtos")
            self.icmp6_send(skb, hdr, parm, ICMPV6_PARAMPROB, ICMPV6_UNK_NEXTHDR, parm.nhoff)
            return self.drop(skb, pb.SKB_DROP_REASON_IP_NOPROTO, "ip6_protocol_deliver_rcu")
        self.mib.inc(IP6, "InDelivers")
        return self._up(kind, skb)

    def raw6_local_deliver(self, skb, hdr: Ipv6Hdr) -> bool:
        """raw6_local_deliver() → ipv6_raw_deliver() for an ICMPv6 message, before icmpv6_rcv:
        the raw socket (raw6_rcv) gets a clone if its ICMP6_FILTER passes the type
        (icmpv6_filter reads 4 bytes; fewer: filtered), whatever the kernel then does with the
        message. rawv6_recvmsg checks the checksum as it reads the clone: a bad one is freed
        (skb_kill_datagram) and the socket sees nothing; a good one is freed once read
        (skb_free_datagram). Returns whether a socket matched."""
        if self._raw6_rcv is None:
            return False
        data = skb.payload()
        if len(data) < 4 or data[0] not in self._raw6_filter:
            return False
        clone = s.skb_clone(skb, L3, self.host, "ipv6_raw_deliver")
        try:
            Icmp6Hdr.from_bytes(data, hdr.saddr, hdr.daddr)
        except WireError:
            self.drop(clone, pb.SKB_DROP_REASON_NOT_SPECIFIED, "skb_kill_datagram")
            return True
        self._raw6_rcv(clone, hdr)
        s.consume_skb(clone, L3, self.host, "skb_free_datagram")
        return True

    # -- extension headers (net/ipv6/exthdrs.c, reassembly.c) -------------------------------
    def ipv6_destopt_rcv(self, skb, hdr: Ipv6Hdr, parm: Inet6SkbParm, off: int) -> int:
        """ipv6_destopt_rcv(): a header cut short counts Ip6InHdrErrors (NOT_SPECIFIED); one
        longer than max_dst_opts_len is freed uncounted; bad or unknown options count
        Ip6InHdrErrors with ip6_parse_tlv's reason and answer."""
        data = s.skb_network_header(skb)
        try:
            Ipv6DestOptHdr.from_bytes(data, off, daddr=hdr.daddr, max_count=self.max_dst_opts_cnt,
                                      max_len=self.max_dst_opts_len)
        except ExtHdrTruncated:
            self.mib.inc(IP6, "InHdrErrors")
            return self.drop(skb, pb.SKB_DROP_REASON_NOT_SPECIFIED, "ipv6_destopt_rcv")
        except (Ipv6UnknownOption, ExtHdrInvalid) as exc:
            self.mib.inc(IP6, "InHdrErrors")
            return self._exthdr_error(skb, hdr, parm, exc, "ipv6_destopt_rcv")
        except ExtHdrRefused:
            return self.drop(skb, pb.SKB_DROP_REASON_NOT_SPECIFIED, "ipv6_destopt_rcv")
        skb.transport_header += (data[off + 1] + 1) << 3
        parm.nhoff = off
        return 0

    def ipv6_rthdr_rcv(self, skb, hdr: Ipv6Hdr, parm: Inet6SkbParm, off: int) -> int:
        """ipv6_rthdr_rcv() on a host: a header cut short counts Ip6InHdrErrors; one in a packet
        to a multicast address or that came in a frame not addressed to us counts
        Ip6InAddrErrors; segment routing (type 4) and RPL (type 3) are off (seg6_enabled and
        rpl_seg_enabled 0) and freed uncounted; with no segments left any other type is passed
        over; with segments left it is an unknown routing header (no Mobile IPv6, type 0
        deprecated): Ip6InHdrErrors and Parameter Problem 0 pointing at the type. All
        NOT_SPECIFIED, as Linux 6.18 frees them."""
        data = s.skb_network_header(skb)
        try:
            rt = Ipv6RtHdr.from_bytes(data, off)
        except ExtHdrTruncated:
            self.mib.inc(IP6, "InHdrErrors")
            return self.drop(skb, pb.SKB_DROP_REASON_NOT_SPECIFIED, "ipv6_rthdr_rcv")
        if ipv6_addr_is_multicast(hdr.daddr) or skb.pkt_type not in (pb.PACKET_HOST, pb.PACKET_LOOPBACK):
            self.mib.inc(IP6, "InAddrErrors")
            return self.drop(skb, pb.SKB_DROP_REASON_NOT_SPECIFIED, "ipv6_rthdr_rcv")
        if rt.type == IPV6_SRCRT_TYPE_4:
            return self.drop(skb, pb.SKB_DROP_REASON_NOT_SPECIFIED, "ipv6_srh_rcv")
        if rt.type == IPV6_SRCRT_TYPE_3:
            return self.drop(skb, pb.SKB_DROP_REASON_NOT_SPECIFIED, "ipv6_rpl_srh_rcv")
        if rt.segments_left:  # unknown_rh
            self.mib.inc(IP6, "InHdrErrors")
            return self.icmpv6_param_prob(skb, hdr, parm, ICMPV6_HDR_FIELD, off + 2, "ipv6_rthdr_rcv")
        skb.transport_header += rt.header_len
        parm.nhoff = off
        return 0

    def ipv6_frag_rcv(self, skb, hdr: Ipv6Hdr, parm: Inet6SkbParm, off: int) -> int | Ipv6Reasm:
        """ipv6_frag_rcv(): Ip6ReasmReqds for every fragment header but a second one; a second
        one, one in a jumbogram or one cut short counts Ip6InHdrErrors and gets Parameter
        Problem 0 pointing at it; an atomic fragment (RFC 6946) counts Ip6ReasmOKs and goes on;
        a first fragment without the upper-layer header gets Parameter Problem 3, pointer 0.
        A real fragment joins its datagram's queue (services/l3/reassembly.py): _QUEUED until
        the datagram is whole, then the reassembled packet (Ipv6Reasm); a length the queue
        refuses gets Parameter Problem."""
        data = s.skb_network_header(skb)
        if parm.flags & IP6SKB_FRAGMENTED:
            return self._frag_fail_hdr(skb, hdr, parm, off)
        self.mib.inc(IP6, "ReasmReqds")
        if not hdr.payload_len:
            return self._frag_fail_hdr(skb, hdr, parm, off)
        try:
            fh = Ipv6FragHdr.from_bytes(data, off)
        except ExtHdrTruncated:
            return self._frag_fail_hdr(skb, hdr, parm, off)
        if not fh.is_fragment:
            skb.transport_header += Ipv6FragHdr.header_len
            self.mib.inc(IP6, "ReasmOKs")
            parm.nhoff = off
            parm.flags |= IP6SKB_FRAGMENTED
            parm.frag_max_size = IPV6_HLEN + hdr.payload_len
            return 0
        if ipv6frag_thdr_truncated(data, IPV6_HLEN, hdr.nexthdr):  # RFC 8200 4.5
            self.mib.inc(IP6, "InHdrErrors")
            return self.icmpv6_param_prob(skb, hdr, parm, ICMPV6_HDR_INCOMP, 0, "ipv6_frag_rcv")
        with self._frag_lock:
            got = self.frags.queue(skb, hdr, fh, off, parm.nhoff)
        if got is None:
            return _QUEUED
        if type(got) is FragParamProb:
            self.mib.inc(IP6, "InHdrErrors")
            return self.icmpv6_param_prob(skb, hdr, parm, got.code, got.pointer, "ipv6_frag_rcv")
        parm.nhoff = got.nhoff
        parm.flags |= IP6SKB_FRAGMENTED
        parm.frag_max_size = got.frag_max_size
        return got

    def frag_expire(self) -> int:
        """ip6_frag_expire() for every queue whose 60 s ran out: Time Exceeded (fragment
        reassembly time exceeded) about its first fragment, if that came."""
        def time_exceeded(first) -> None:
            self.icmp6_send(first, Ipv6Hdr.from_bytes(s.skb_network_header(first)), Inet6SkbParm(first.dev),
                            ICMPV6_TIME_EXCEED, ICMPV6_EXC_FRAGTIME)
        with self._frag_lock:
            return self.frags.expire(time_exceeded)

    def _frag_fail_hdr(self, skb, hdr: Ipv6Hdr, parm: Inet6SkbParm, off: int) -> int:
        self.mib.inc(IP6, "InHdrErrors")
        return self.icmpv6_param_prob(skb, hdr, parm, ICMPV6_HDR_FIELD, off, "ipv6_frag_rcv")

    # -- ICMPv6 in ---------------------------------------------------------------------------
    def icmpv6_rcv(self, skb, hdr: Ipv6Hdr, parm: Inet6SkbParm) -> int:
        """icmpv6_rcv(): data at the ICMPv6 header. Icmp6InMsgs, then the checksum (Icmp6InCsumErrors
        and Icmp6InErrors, ICMP_CSUM), the 8-byte header (Icmp6InErrors, NOT_SPECIFIED), the type's
        counters, and by type: echo requests answered; echo replies (and extended ones) to ping
        sockets; errors of any type below 128 to icmpv6_notify; NDP to ndisc_rcv; MLD queries and
        reports to MLD. The rest (MLD done, MLDv2 reports, node information, extended echo requests
        with icmp_echo_enable_probe 0, unknown informational types) is freed NOT_SPECIFIED."""
        mib = self.mib
        mib.inc(ICMP6, "InMsgs")
        data = skb.payload()
        try:
            icmph = Icmp6Hdr.from_bytes(data, hdr.saddr, hdr.daddr)
        except ChecksumError:
            mib.inc(ICMP6, "InCsumErrors")
            mib.inc(ICMP6, "InErrors")
            return self.drop(skb, pb.SKB_DROP_REASON_ICMP_CSUM, "icmpv6_rcv")
        except WireError:
            mib.inc(ICMP6, "InErrors")
            return self.drop(skb, pb.SKB_DROP_REASON_NOT_SPECIFIED, "icmpv6_rcv")
        type_ = icmph.type
        mib.inc(ICMP6, f"InType{type_}")  # ICMP6MSGIN_INC_STATS
        name = TYPE_NAMES6.get(type_)
        if name:
            mib.inc(ICMP6, "In" + name)
        reason = pb.SKB_DROP_REASON_NOT_SPECIFIED
        if type_ == ICMPV6_ECHO_REQUEST:
            reason = self.icmpv6_echo_reply(skb, hdr, parm, icmph)
        elif type_ == ICMPV6_EXT_ECHO_REQUEST:
            pass  # PROBE (RFC 8335) is off: icmp_echo_enable_probe 0
        elif type_ in (ICMPV6_ECHO_REPLY, ICMPV6_EXT_ECHO_REPLY):
            return self._up("ping6", skb)
        elif type_ == ICMPV6_PKT_TOOBIG and len(data) < ICMPV6_HLEN + IPV6_HLEN:
            mib.inc(ICMP6, "InErrors")  # discard_it
        elif not type_ & ICMPV6_INFOMSG_MASK:
            return self.icmpv6_notify(skb, icmph)
        elif type_ in NDISC_MESSAGES:
            reason = self.ndisc_rcv(skb, hdr, parm)
        elif type_ in (ICMPV6_MGM_QUERY, ICMPV6_MGM_REPORT):
            func = "igmp6_event_query" if type_ == ICMPV6_MGM_QUERY else "igmp6_event_report"
            return self._free(skb, self._mld_rcv(skb, hdr) if self._mld_rcv else 0, func)
        return self._free(skb, reason, "icmpv6_rcv")

    def ndisc_rcv(self, skb, hdr: Ipv6Hdr, parm: Inet6SkbParm) -> int:
        """ndisc_rcv(): a message that came in fragments is refused (suppress_frag_ndisc 1:
        IPV6_NDISC_FRAG), then RFC 4861's validity checks (ndisc_validate: hop limit 255, code 0,
        lengths, options), then the caller's ndisc_rcv with its state (neighbour cache, routers),
        whose drop reason is returned. Without one the message is consumed."""
        if parm.flags & IP6SKB_FRAGMENTED:
            return pb.SKB_DROP_REASON_IPV6_NDISC_FRAG
        name = ndisc_validate(skb.payload(), hop_limit=hdr.hop_limit, saddr=hdr.saddr, daddr=hdr.daddr)
        if name is not None:
            return pb.DropReason.Value(name)
        return self._ndisc_rcv(skb, hdr) if self._ndisc_rcv else 0

    def icmpv6_notify(self, skb, icmph: Icmp6Hdr) -> int:
        """icmpv6_notify(): an error must quote the invoking packet's IPv6 header (PKT_TOO_SMALL),
        its extension headers must end (ipv6_skip_exthdr: IPV6_BAD_EXTHDR) before 8 bytes of the
        upper-layer header (PKT_TOO_SMALL), which is not IPPROTO_RAW (NOT_SPECIFIED); each counts
        Icmp6InErrors. Then the quoted protocol's err_handler: UDP's and TCP's in L4, and for an
        ICMPv6 echo request quoted, ping_err there too: item (skb at the ICMPv6 header, type, code,
        info, the quoted nexthdr, the offset of its header from the quoted IPv6 header). Errors
        about anything else are consumed (no raw sockets). TODO(issue 19): icmpv6_err's
        ip6_update_pmtu for a Packet Too Big about ICMPv6, with routing."""
        data = skb.payload()
        inner = data[ICMPV6_HLEN:]
        reason = 0
        if len(inner) < IPV6_HLEN:
            reason = pb.SKB_DROP_REASON_PKT_TOO_SMALL
        else:
            nexthdr, offset = inner[6], IPV6_HLEN
            if ipv6_ext_hdr(nexthdr):
                offset, nexthdr, _ = ipv6_skip_exthdr(inner, IPV6_HLEN, nexthdr)
                if offset < 0:
                    reason = pb.SKB_DROP_REASON_IPV6_BAD_EXTHDR
            if not reason and offset + 8 > len(inner):
                reason = pb.SKB_DROP_REASON_PKT_TOO_SMALL
            elif not reason and nexthdr == IPPROTO_RAW:
                reason = pb.SKB_DROP_REASON_NOT_SPECIFIED
        if reason:
            self.mib.inc(ICMP6, "InErrors")
            return self.drop(skb, reason, "icmpv6_rcv")
        if nexthdr in _ERR_HANDLERS6 or nexthdr == NEXTHDR_ICMP and inner[offset] == ICMPV6_ECHO_REQUEST:
            return self._up("err6", skb, (skb, icmph.type, icmph.code, icmph.un, nexthdr, offset))
        s.consume_skb(skb, L3, self.host, "icmpv6_notify")
        return 0

    # -- ICMPv6 out --------------------------------------------------------------------------
    def icmpv6_echo_reply(self, skb, hdr: Ipv6Hdr, parm: Inet6SkbParm, icmph: Icmp6Hdr) -> int:
        """icmpv6_echo_reply(): the request's header (its code too) and data back, from the address
        the request was sent to, or, for one sent to a group (icmpv6_echo_ignore_multicast 0), from
        the address source selection picks on the device it came in by; the request's traffic
        class kept; echo replies are outside the rate mask. Returns SKB_CONSUMED once sent, else
        NOT_SPECIFIED: a request from :: has no route back (Ip6OutNoRoutes, as Linux 6.18 counts)."""
        daddr = hdr.saddr
        if daddr == 0:
            self.mib.inc(IP6, "OutNoRoutes")
            return pb.SKB_DROP_REASON_NOT_SPECIFIED
        saddr = 0 if ipv6_addr_is_multicast(hdr.daddr) else hdr.daddr
        saddr = saddr or self.ipv6_dev_get_saddr(parm.iif, daddr)
        reply = icmph._replace(type=ICMPV6_ECHO_REPLY, checksum=0)
        body = bytes(skb.payload()[ICMPV6_HLEN:])
        out = self._icmp6_skb(reply, body, saddr, daddr, skb, "icmpv6_echo_reply")
        self._icmp6_xmit(out, Flowi6(daddr, saddr, oif=parm.iif, tclass=hdr.tclass, icmp_type=ICMPV6_ECHO_REPLY,
                                     icmp_code=reply.code))
        return pb.SKB_CONSUMED

    def icmpv6_param_prob(self, skb, hdr: Ipv6Hdr, parm: Inet6SkbParm, code: int, pos: int, func: str) -> int:
        """icmpv6_param_prob(): Parameter Problem about skb, then kfree_skb (NOT_SPECIFIED)."""
        self.icmp6_send(skb, hdr, parm, ICMPV6_PARAMPROB, code, pos)
        return self.drop(skb, pb.SKB_DROP_REASON_NOT_SPECIFIED, func)

    def icmp6_send(self, skb, hdr: Ipv6Hdr, parm: Inet6SkbParm, type_: int, code: int, info: int = 0) -> bool:
        """icmp6_send(): an error about skb (network header at its IPv6 header hdr), in RFC 4443
        2.4's limits. Not about a packet to a group or in a frame not addressed to us, except
        Packet Too Big and an unknown option whose action asks for it (code 2, type bits 10:
        opt_unrec); never to a source that is :: or a group; never about an ICMPv6 error
        (is_ineligible). From the address the packet was for if it is ours, else by source
        selection on the device it came in by. Rate-limited for the types in the ratemask unless
        it came in by lo: the global bucket (IPv4's Icmp OutRateLimitGlobal) and one bucket per
        destination (net.ipv6.icmp.ratelimit, Icmp6OutRateLimitHost; none towards ourselves).
        The message quotes as much of the packet as keeps it within 1280 bytes. Returns whether
        one was sent. (The anycast rules and the route back wait for routing.)"""
        pkt = s.skb_network_header(skb)
        if len(pkt) < IPV6_HLEN:
            return False
        saddr = hdr.daddr if self.ipv6_chk_addr(hdr.daddr, skb.dev) else 0
        if ipv6_addr_is_multicast(hdr.daddr) or skb.pkt_type not in (pb.PACKET_HOST, pb.PACKET_LOOPBACK):
            if type_ != ICMPV6_PKT_TOOBIG and not (type_ == ICMPV6_PARAMPROB and code == ICMPV6_UNK_OPTION
                                                   and opt_unrec(pkt, info)):
                return False
            saddr = 0
        daddr = hdr.saddr
        if daddr == 0 or ipv6_addr_is_multicast(daddr):  # RFC 4443 2.4 (e.3)
            return False
        if is_ineligible(pkt):
            return False
        apply_ratelimit = False
        if skb.dev != LOOPBACK_DEV and type_ in ICMPV6_RATEMASK:  # icmpv6_global_allow
            if not self.ratelimit.global_allow():
                self.mib.inc(ICMP, "OutRateLimitGlobal")
                return False
            apply_ratelimit = True
        saddr = saddr or self.ipv6_dev_get_saddr(parm.iif, daddr)
        # icmpv6_xrlim_allow: no per-destination limit towards ourselves (the route is lo's)
        if apply_ratelimit and not self.ipv6_chk_addr(daddr, parm.iif) and \
                not self.ratelimit.peer_allow(("ip6", daddr), self.icmp_ratelimit):
            self.mib.inc(ICMP6, "OutRateLimitHost")
            return False
        icmph = Icmp6Hdr(type_, code, info & 0xFFFFFFFF)
        body = quote(pkt)
        out = self._icmp6_skb(icmph, body, saddr, daddr, skb, "icmp6_send")
        oif = parm.iif if ipv6_addr_src_scope(daddr) <= IPV6_ADDR_SCOPE_LINKLOCAL else ""  # needs a scope id
        self._icmp6_xmit(out, Flowi6(daddr, saddr, oif=oif, icmp_type=type_, icmp_code=code))
        return True

    def _icmp6_skb(self, icmph: Icmp6Hdr, body: bytes, saddr: int, daddr: int, about, func: str) -> s.SkBuff:
        """The message, checksummed, in a new skb with room for the headers below (ip6_append_data
        copying the body with icmpv6_getfrag)."""
        skb = s.alloc_skb(s.MAX_HEADER + ICMPV6_HLEN + len(body), origin_host=self.host, sampled=about.sampled)
        s.skb_reserve(skb, s.MAX_HEADER)
        s.skb_put_data(skb, icmph.to_bytes(saddr, daddr, body))
        s.skb_put_data(skb, body)
        s.skb_reset_transport_header(skb)
        skb.protocol = ETH_P_IPV6
        skb.traceparent = about.traceparent
        skb.record(s.COPY, L3, self.host, func, len(body), copy_from="skb", copy_to="skb")
        return skb

    def _icmp6_xmit(self, skb, flow: Flowi6) -> None:
        """__ip6_make_skb's ICMPv6 counts, then out."""
        icmp6_out_stats(self.mib, flow.icmp_type)
        skb.record(s.EXIT, L3, self.host, "icmpv6_push_pending_frames")
        self._ip6_output(skb, flow)


def icmp6_out_stats(mib: Mib, type_: int) -> None:
    """ICMP6MSGOUT_INC_STATS + ICMP6_INC_STATS(OUTMSGS): Icmp6OutMsgs, Icmp6OutType<N>, Icmp6Out<Name>."""
    mib.inc(ICMP6, "OutMsgs")
    mib.inc(ICMP6, f"OutType{type_}")
    name = TYPE_NAMES6.get(type_)
    if name:
        mib.inc(ICMP6, "Out" + name)


def opt_unrec(pkt, offset: int) -> bool:
    """opt_unrec(): is the option at `offset` of the packet one whose type bits are 10 (send
    Parameter Problem even to a group)? True if the offset is past the packet."""
    if offset >= len(pkt):
        return True
    return pkt[offset] & 0xC0 == 0x80


def is_ineligible(pkt) -> bool:
    """is_ineligible() (net/ipv6/icmp.c): is the packet (from its IPv6 header) an ICMPv6 error,
    or cut short so that its ICMPv6 type is missing (unless it is a later fragment)? Extension
    headers that cannot be skipped leave it eligible."""
    ptr, nexthdr, frag_off = ipv6_skip_exthdr(pkt, IPV6_HLEN, pkt[6])
    if ptr < 0 or nexthdr != NEXTHDR_ICMP:
        return False
    if ptr >= len(pkt):
        return frag_off == 0
    return not pkt[ptr] & ICMPV6_INFOMSG_MASK
