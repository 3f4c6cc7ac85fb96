"""Netfilter's five IPv6 hooks with ip6tables-style rules and their counters.

Linux keeps ip6_tables apart from ip_tables: an IPv6 packet meets only the IPv6 family's
chains, and rules, policies and counters of one family never touch the other's. This is
the IPv6 family's table (services/l3/netfilter.py is IPv4's), as Linux 6.18 runs
ip6tables' rules with the nft backend (Debian's ip6tables is iptables-nft: `table ip6
filter`, nft_do_chain_ipv6 for each hook): the first rule that matches decides and counts
the packet and its bytes (skb->len from the IPv6 header); no match leaves it to the
chain's policy, which counts it too (-P sets the policy and starts those counts from 0,
as iptables-nft's chain update does; -Z zeroes rules and policies).

The hooks, where net/ipv6 calls NF_HOOK (services/l3/ipv6.py and ip6_output.py call
nf_hook6 at each):
- NF_INET_PRE_ROUTING: ipv6_rcv, after ip6_rcv_core (a hop-by-hop header already parsed);
- NF_INET_LOCAL_IN: ip6_input, before ip6_input_finish. The extension headers and
  reassembly come after it, so LOCAL_IN sees every fragment by itself (no conntrack, no
  nf_defrag_ipv6): Linux 6.18 counted 3 packets at INPUT for an echo request in 3 fragments;
- NF_INET_FORWARD: ip6_forward, after the hop limit is decremented;
- NF_INET_LOCAL_OUT: __ip6_local_out and ip6_xmit, after Ip6OutRequests: every local
  packet, neighbour discovery's too (ndisc_send_skb);
- NF_INET_POST_ROUTING: ip6_output (NF_HOOK_COND), before ip6_finish_output fragments, so
  a datagram sent in fragments meets it whole; forwarded packets meet it too, and a
  multicast packet looped back to this host a second time (ip6_finish_output2).
A DROP frees the packet with SKB_DROP_REASON_NETFILTER_DROP (nf_hook_slow); a local
sender sees EPERM.

A rule matches source and destination prefixes (128-bit), the protocol and, for TCP and
UDP, ports. ip6tables' -p is the upper-layer protocol after the extension headers:
nft_set_pktinfo_ipv6 walks them with ipv6_find_hdr() (hop-by-hop, routing, destination
options, fragment; an AH header ends the walk, IP6_FH_F_AUTH, so -p 51 matches it). A
packet whose walk fails (a header's first bytes past its end) has no protocol: no -p rule
matches it, -p all does. A non-first fragment has its fragment header's next header as
protocol (-p udp matches it) but no ports (a port rule never does). Seen on Linux 6.18:
-p icmpv6 matched echo requests behind a destination options, hop-by-hop or routing header,
and each of their fragments.

Pure logic: no gRPC.
"""

import struct
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

from pktpath import skbuff as s
from pktpath.services.l3.netfilter import (
    NF_ACCEPT, NF_DROP, NF_INET_FORWARD, NF_INET_LOCAL_IN, NF_INET_LOCAL_OUT, NF_INET_POST_ROUTING,
    NF_INET_PRE_ROUTING, Netfilter, NfRule,
)
from pktpath.wire.ipv6 import (
    NEXTHDR_AUTH, NEXTHDR_FRAGMENT, NEXTHDR_NONE, NEXTHDR_ROUTING, NEXTHDR_TCP, NEXTHDR_UDP, ipv6_ext_hdr,
)

__all__ = ["NF_ACCEPT", "NF_DROP", "NF_INET_FORWARD", "NF_INET_LOCAL_IN", "NF_INET_LOCAL_OUT", "NF_INET_POST_ROUTING",
           "NF_INET_PRE_ROUTING", "NfRule6", "Netfilter6", "ipv6_find_hdr", "nf_hook6"]

NFPROTO_IPV4, NFPROTO_IPV6 = 2, 10  # include/uapi/linux/netfilter.h
IPV6_HLEN = 40
_PORTS = struct.Struct("!HH")


def ipv6_find_hdr(pkt) -> tuple[int, int, int] | None:
    """ipv6_find_hdr(skb, &thoff, -1, &frag_off, &flags) with flags IP6_FH_F_AUTH, as
    nft_set_pktinfo_ipv6 calls it (net/ipv6/exthdrs_core.c): the upper-layer protocol of the
    packet (`pkt` from its IPv6 header), where its header starts, and the fragment offset.
    The walk passes hop-by-hop, routing, destination options and fragment headers; it stops
    at an AH header (its protocol is AH), at NEXTHDR_NONE, and at a non-first fragment, whose
    fragment header names the protocol. None (-EBADMSG, -ENOENT): the bytes it reads of a
    header (2; a routing header's 4, a fragment header's offset) are past the packet, or a
    non-first fragment's next header is another extension header. Linux 6.18 reads no more
    of a header than that: a destination options header of 16 bytes with 2 in the packet
    passed as the protocol it names (nft's meta l4proto was ipv6-icmp), so here too."""
    if len(pkt) < IPV6_HLEN:
        return None
    nexthdr, start = pkt[6], IPV6_HLEN
    while ipv6_ext_hdr(nexthdr) and nexthdr != NEXTHDR_NONE:
        if start + (4 if nexthdr == NEXTHDR_ROUTING else 2) > len(pkt):  # struct ipv6_rt_hdr, ipv6_opt_hdr
            return None
        if nexthdr == NEXTHDR_FRAGMENT:
            if start + 4 > len(pkt):
                return None
            frag_off = int.from_bytes(pkt[start + 2:start + 4], "big") & ~7
            if frag_off:
                following = pkt[start]
                if not ipv6_ext_hdr(following) or following == NEXTHDR_NONE:
                    return following, start, frag_off
                return None  # -ENOENT: a later fragment of a header chain
            hdrlen = 8
        elif nexthdr == NEXTHDR_AUTH:
            break
        else:
            hdrlen = (pkt[start + 1] + 1) << 3  # ipv6_optlen
        nexthdr, start = pkt[start], start + hdrlen
    return (nexthdr, start, 0) if start <= 0xFFFF else None  # nft_set_pktinfo_ipv6: thoff > U16_MAX


class Ip6Match(NamedTuple):
    """What a rule looks at: the addresses and the protocol ipv6_find_hdr found (None: none)."""
    saddr: int
    daddr: int
    protocol: int | None


@dataclass
class NfRule6(NfRule):
    """An ip6tables rule: NfRule's fields, the prefixes 128-bit."""
    ADDR_BITS: ClassVar[int] = 128


class Netfilter6(Netfilter):
    """The IPv6 family's chains, one per hook, with their policies and counters."""

    def hook(self, hook: int, pkt, length: int) -> int:
        """nf_hook() → nft_do_chain_ipv6: the verdict for `pkt` (from its IPv6 header) of
        `length` bytes (what the counters add)."""
        chain = self._chains[hook]
        if not chain:  # the common case: nothing registered on this hook
            self.passed(hook, length)
            return self.policies[hook]
        found = ipv6_find_hdr(pkt)
        protocol, ports = None, None
        if found is not None:
            protocol, thoff, frag_off = found
            # the tcp/udp port match (payload @th): only with the transport header in this packet
            if protocol in (NEXTHDR_TCP, NEXTHDR_UDP) and not frag_off and len(pkt) >= thoff + 4:
                ports = _PORTS.unpack_from(pkt, thoff)
        match = Ip6Match(int.from_bytes(pkt[8:24], "big"), int.from_bytes(pkt[24:40], "big"), protocol)
        return self.verdict(hook, match, ports, length)


def nf_hook6(netfilter: Netfilter6, hook: int, skb) -> bool:
    """NF_HOOK(NFPROTO_IPV6, hook, ...): does the hook's chain drop skb (network header set,
    the packet to its tail)? The caller frees a dropped one, NETFILTER_DROP."""
    pkt = s.skb_network_header(skb)
    return netfilter.hook(hook, pkt, len(pkt)) == NF_DROP
