"""The IPv6 layer's receive side without gRPC: ipv6_rcv, local delivery, ICMPv6 in and errors out.

The expectations are what Linux 6.18 did with the same packets, sent with scapy from one network
namespace over a veth to another holding 2001:db8:1::b/64 on b0 (MAC 02:00:00:00:00:0b) and
2001:db8:2::1/64 on b1, forwarding off: the receiver's /proc/net/snmp6, the skb:kfree_skb
tracepoint's reason, and the ICMPv6 messages that came back.
"""

import pytest

from pktpath import skbuff as s
from pktpath.counters import Mib
from pktpath.pb import skbuff_pb2 as pb
from pktpath.services.l3.addrconf import Addrconf
from pktpath.services.l3.icmp import IcmpRateLimit
from pktpath.services.l3.ipv6 import ICMPV6_RATELIMIT_S, Flowi6, Ipv6, ipv6_addr_label, is_ineligible
from pktpath.wire import TcpHdr, UdpHdr
from pktpath.wire.addr import addrconf_addr_solict_mult, ip6_from_str
from pktpath.wire.checksum import csum_tcpudp
from pktpath.wire.icmpv6 import ICMPV6_ERROR_MAX_QUOTE, Icmp6Hdr, NdNeighSolicit, src_lladdr
from pktpath.wire.ipv6 import (
    IP6_MF, IPV6_HLEN, NEXTHDR_DEST, NEXTHDR_FRAGMENT, NEXTHDR_HOP, NEXTHDR_ICMP, NEXTHDR_NONE, NEXTHDR_ROUTING,
    NEXTHDR_TCP, NEXTHDR_UDP, Ipv6DestOptHdr, Ipv6FragHdr, Ipv6Hdr, Ipv6HopOptHdr, Ipv6OptJumbo, Ipv6OptPadN,
    Ipv6OptRouterAlert, Ipv6OptUnknown, Ipv6RtHdr,
)

from fakes import Clock


def ip6(text: str) -> int:
    return ip6_from_str(text)


# Host B as in the namespace: b0 towards A, b1 on another link.
B, B1 = ip6("2001:db8:1::b"), ip6("2001:db8:2::1")
BLL, B1LL = ip6("fe80::ff:fe00:b"), ip6("fe80::ff:fe00:b1")  # the EUI-64 link-local addresses
A, ALL = ip6("2001:db8:1::a"), ip6("fe80::ff:fe00:a")        # the sender, global and link-local
ALLNODES, SOLICITED_B = ip6("ff02::1"), ip6("ff02::1:ff00:b")
OFFLINK = ip6("2001:db9::1")  # no route


class Host:
    """Host B's Ipv6 with what it hands L4 and the output path recorded."""

    def __init__(self, *, forwarding: bool = False, ndisc_rcv=None, mld_rcv=None, l4_accepts: bool = True,
                 disable_ipv6=(), forward=None) -> None:
        self.clock = Clock(5000.0)
        self.mib = Mib()
        self.addrconf = Addrconf(forwarding=forwarding, dad=False)
        for dev, mac, addr in (("b0", "02:00:00:00:00:0b", B), ("b1", "02:00:00:00:00:b1", B1)):
            self.addrconf.addrconf_add_dev(dev)
            self.addrconf.inet6_addr_add(dev, addr, 64)
            self.addrconf.addrconf_addr_gen(dev, bytes.fromhex(mac.replace(":", "")))
        self.l4, self.out, self.l4_calls = [], [], 0
        self.l4_accepts = l4_accepts
        self.ip = Ipv6("B", self.addrconf, to_l4=self._to_l4, ip6_output=lambda skb, flow: self.out.append((skb, flow)),
                       mib=self.mib, ndisc_rcv=ndisc_rcv, mld_rcv=mld_rcv, ratelimit=IcmpRateLimit(clock=self.clock),
                       disable_ipv6=disable_ipv6, clock=self.clock, forward=forward)

    def _to_l4(self, kind, items):
        self.l4_calls += 1
        self.l4.extend((kind, i) for i in items)
        return self.l4_accepts

    def ip6(self, name: str) -> int:
        return self.mib.get("Ip6", name)

    def icmp6(self, name: str) -> int:
        return self.mib.get("Icmp6", name)

    def drops(self, reason: int) -> int:
        return self.mib.get("Drops", pb.DropReason.Name(reason))

    def rcv(self, raw: bytes, **kw) -> int:
        return self.ip.ipv6_rcv(rx(raw, **kw))

    def icmp_out(self):
        """The ICMPv6 messages handed to ip6_output: (flow, header, body), checksums verified."""
        msgs = []
        for skb, flow in self.out:
            data = bytes(skb.payload())
            assert skb.transport_header == skb.data
            msgs.append((flow, Icmp6Hdr.from_bytes(data, flow.saddr, flow.daddr), data[8:]))
        return msgs


def rx(raw: bytes, *, dev: str = "b0", pkt_type: int = pb.PACKET_HOST, pad: int = 0) -> s.SkBuff:
    """A packet as L2 hands it up: data (and the network header) at the IPv6 header."""
    skb = s.alloc_skb(s.NET_SKB_PAD + len(raw) + pad)
    s.skb_reserve(skb, s.NET_SKB_PAD)
    s.skb_put_data(skb, raw + bytes(pad))
    s.skb_reset_network_header(skb)
    skb.dev, skb.protocol, skb.pkt_type = dev, 0x86DD, pkt_type
    return skb


def packet(saddr: int, daddr: int, nexthdr: int, payload: bytes, *, hop_limit: int = 64, tclass: int = 0,
           plen: int | None = None) -> bytes:
    hdr = Ipv6Hdr(saddr, daddr, nexthdr, hop_limit=hop_limit, tclass=tclass)
    return hdr.to_bytes(len(payload) if plen is None else plen) + payload


def udp(saddr: int = A, daddr: int = B, data: bytes = b"hello", dport: int = 9) -> bytes:
    return UdpHdr(1234, dport).to_bytes(data, saddr, daddr, ipv6=True) + data


def icmp6(saddr: int, daddr: int, type_: int, code: int = 0, un: int = 0, body: bytes = b"") -> bytes:
    return Icmp6Hdr(type_, code, un).to_bytes(saddr, daddr, body) + body


def echo(saddr: int = A, daddr: int = B, data: bytes = b"abcdefgh", code: int = 0) -> bytes:
    return icmp6(saddr, daddr, 128, code, 7 << 16 | 1, data)


def udp_packet(saddr: int = A, daddr: int = B, **kw) -> bytes:
    return packet(saddr, daddr, NEXTHDR_UDP, udp(saddr, daddr), **kw)


def echo_packet(saddr: int = A, daddr: int = B, **kw) -> bytes:
    return packet(saddr, daddr, NEXTHDR_ICMP, echo(saddr, daddr), **kw)


def hbh(nexthdr: int, *options) -> bytes:
    return Ipv6HopOptHdr(nexthdr, tuple(options)).to_bytes()


def destopts(nexthdr: int, *options) -> bytes:
    return Ipv6DestOptHdr(nexthdr, tuple(options)).to_bytes()


def routing(nexthdr: int, type_: int, segments_left: int) -> bytes:
    return Ipv6RtHdr(nexthdr, type_, segments_left, bytes(4) + A.to_bytes(16, "big")).to_bytes()


def frag(nexthdr: int, offset: int = 0, mf: bool = False, ident: int = 1) -> bytes:
    return Ipv6FragHdr(nexthdr, offset | (IP6_MF if mf else 0), ident).to_bytes()


UNKNOWN_10 = Ipv6OptUnknown(0x9E, b"ab")  # an unknown option whose type bits ask for Parameter Problem
UNKNOWN_11 = Ipv6OptUnknown(0xDE, b"ab")  # ... unless the destination is a group
UNKNOWN_01 = Ipv6OptUnknown(0x5E, b"ab")  # ... discard silently
UNKNOWN_00 = Ipv6OptUnknown(0x1E, b"ab")  # ... skip it


# -- local delivery ------------------------------------------------------------------------


def test_udp_for_a_local_address_goes_up_to_l4_at_the_udp_header():
    h = Host()
    raw = udp_packet()
    assert h.rcv(raw) == 0
    ((kind, skb),) = h.l4
    assert kind == "udp6"
    assert bytes(skb.payload()) == raw[IPV6_HLEN:]
    assert skb.transport_header == skb.data and skb.network_header == skb.data - IPV6_HLEN
    assert (h.ip6("InReceives"), h.ip6("InDelivers"), h.ip6("InOctets"), h.ip6("InNoECTPkts")) == (1, 1, len(raw), 1)
    assert h.out == []


def test_tcp_goes_up_to_l4_as_tcp6():
    h = Host()
    seg = TcpHdr(1234, 80, 1).to_bytes(b"", A, B)
    assert h.rcv(packet(A, B, NEXTHDR_TCP, seg)) == 0
    assert [kind for kind, _ in h.l4] == ["tcp6"]


def test_a_poll_hands_l4_one_list_and_counts_accepted_and_dropped():
    h = Host()
    skbs = [rx(udp_packet()), rx(udp_packet(saddr=ip6("::1"))), rx(udp_packet())]
    assert h.ip.ipv6_list_rcv(skbs) == (2, 1)
    assert h.l4_calls == 1 and len(h.l4) == 2


def test_what_l4_refuses_is_dropped_as_a_full_backlog():
    h = Host(l4_accepts=False)
    assert h.ip.ipv6_list_rcv([rx(udp_packet())]) == (0, 1)
    assert h.drops(pb.SKB_DROP_REASON_CPU_BACKLOG) == 1


def test_link_padding_is_trimmed_but_counted_in_in_octets():
    """Linux counted Ip6InOctets 54 for a 44-byte packet in a 60-byte frame."""
    h = Host()
    raw = packet(A, B, NEXTHDR_NONE, b"junk")
    skb = rx(raw, pad=10)
    h.ip.ipv6_rcv(skb)
    assert h.ip6("InOctets") == len(raw) + 10


@pytest.mark.parametrize("tclass, counter", [(0, "InNoECTPkts"), (0xB9, "InECT1Pkts"), (0x02, "InECT0Pkts"),
                                             (0x03, "InCEPkts")])
def test_each_packet_counts_its_ecn_class(tclass, counter):
    h = Host()
    h.rcv(udp_packet(tclass=tclass))
    assert h.ip6(counter) == 1


def test_a_global_address_of_another_device_is_local():
    h = Host()
    assert h.rcv(udp_packet(daddr=B1)) == 0
    assert [kind for kind, _ in h.l4] == ["udp6"]


def test_a_link_local_address_of_another_device_is_not_ours_and_is_dropped_silently():
    """Linux: Ip6InAddrErrors, IP_INADDRERRORS at ip6_forward, nothing sent."""
    h = Host()
    assert h.rcv(echo_packet(ALL, B1LL)) == pb.SKB_DROP_REASON_IP_INADDRERRORS
    assert (h.ip6("InAddrErrors"), h.out, h.icmp6("InMsgs")) == (1, [], 0)


def test_a_packet_for_another_host_on_a_link_is_dropped_without_icmp_when_not_forwarding():
    h = Host()
    assert h.rcv(echo_packet(A, ip6("2001:db8:1::99"))) == pb.SKB_DROP_REASON_IP_INADDRERRORS
    assert (h.ip6("InAddrErrors"), h.out) == (1, [])


def test_a_packet_with_no_route_gets_destination_unreachable_no_route():
    """Linux: Ip6InNoRoutes, Destination Unreachable code 0 from B's address on the link."""
    h = Host()
    raw = echo_packet(A, OFFLINK)
    assert h.rcv(raw) == pb.SKB_DROP_REASON_IP_INNOROUTES
    ((flow, icmph, body),) = h.icmp_out()
    assert (icmph.type, icmph.code, flow.saddr, flow.daddr, body) == (1, 0, B, A, raw)
    assert (h.ip6("InNoRoutes"), h.icmp6("OutDestUnreachs"), h.icmp6("OutType1")) == (1, 1, 1)


def test_the_unspecified_destination_is_an_address_error_still_answered():
    h = Host()
    assert h.rcv(echo_packet(A, 0)) == pb.SKB_DROP_REASON_IP_INADDRERRORS
    ((_, icmph, _),) = h.icmp_out()
    assert (h.ip6("InAddrErrors"), h.ip6("InNoRoutes"), icmph.type, icmph.code) == (1, 0, 1, 0)


def test_a_forwarding_host_hands_others_packets_to_the_forwarding_path_with_their_route():
    forwarded = []
    h = Host(forwarding=True, forward=lambda skb, hdr, parm, icmp6_send, rt: forwarded.append((hdr.daddr, rt)) or 0)
    assert h.rcv(echo_packet(A, ip6("2001:db8:2::99"))) == 0
    ((daddr, rt),) = forwarded
    assert daddr == ip6("2001:db8:2::99") and rt.dev == "b1" and h.ip6("InAddrErrors") == 0


# -- ip6_rcv_core's checks -------------------------------------------------------------------


def _version4(raw: bytes) -> bytes:
    return bytes([0x40 | raw[0] & 0x0F]) + raw[1:]


# (name, raw, reason, counter): Linux 6.18's reason and the counter it moved besides Ip6InReceives
HEADER_CHECKS = [
    ("shorter than the header", echo_packet()[:30], pb.SKB_DROP_REASON_IP_INHDR, "InHdrErrors"),
    ("version 4", _version4(echo_packet()), pb.SKB_DROP_REASON_UNHANDLED_PROTO, "InHdrErrors"),
    ("to ::1", echo_packet(A, 1), pb.SKB_DROP_REASON_IP_INHDR, "InHdrErrors"),
    ("from ::1", echo_packet(1, B), pb.SKB_DROP_REASON_IP_INHDR, "InHdrErrors"),
    ("to interface-local ff01::1", echo_packet(A, ip6("ff01::1")), pb.SKB_DROP_REASON_IP_INHDR, "InHdrErrors"),
    ("to scope-0 ff00::1", echo_packet(A, ip6("ff00::1")), pb.SKB_DROP_REASON_IP_INHDR, "InHdrErrors"),
    ("from a group", echo_packet(ip6("ff02::5"), B), pb.SKB_DROP_REASON_IP_INHDR, "InHdrErrors"),
    ("payload_len past the data", packet(A, B, NEXTHDR_ICMP, echo(), plen=200), pb.SKB_DROP_REASON_PKT_TOO_SMALL,
     "InTruncatedPkts"),
]


@pytest.mark.parametrize("name, raw, reason, counter", HEADER_CHECKS, ids=[c[0] for c in HEADER_CHECKS])
def test_ip6_rcv_core_drops_as_linux_does(name, raw, reason, counter):
    h = Host()
    assert h.rcv(raw) == reason
    assert (h.ip6("InReceives"), h.ip6(counter), h.drops(reason)) == (1, 1, 1)
    assert h.l4 == [] and h.out == []


def test_a_bad_version_is_refused_before_its_ecn_bits_are_counted():
    h = Host()
    h.rcv(_version4(echo_packet()))
    assert h.ip6("InNoECTPkts") == 0


def test_a_frame_for_another_host_is_dropped_before_anything_is_counted():
    h = Host()
    assert h.rcv(echo_packet(), pkt_type=pb.PACKET_OTHERHOST) == pb.SKB_DROP_REASON_OTHERHOST
    assert h.ip6("InReceives") == 0


def test_a_device_with_ipv6_disabled_discards_what_it_receives():
    h = Host(disable_ipv6={"b0"})
    assert h.rcv(echo_packet()) == pb.SKB_DROP_REASON_IPV6DISABLED
    assert (h.ip6("InReceives"), h.ip6("InDiscards")) == (1, 1)


def test_a_device_without_ipv6_discards_what_it_receives():
    h = Host()
    assert h.rcv(echo_packet(), dev="eth9") == pb.SKB_DROP_REASON_NOT_SPECIFIED
    assert h.ip6("InDiscards") == 1


def test_a_payload_len_of_0_before_a_hop_by_hop_header_is_refused_as_a_jumbogram():
    """Linux takes it (the frame's length); pktpath has no jumbograms and refuses the header."""
    h = Host()
    raw = packet(A, B, NEXTHDR_HOP, hbh(NEXTHDR_UDP) + udp(), plen=0)
    assert h.rcv(raw) == pb.SKB_DROP_REASON_IP_INHDR
    assert h.ip6("InHdrErrors") == 1


# -- multicast -------------------------------------------------------------------------------


@pytest.mark.parametrize("group", [ALLNODES, SOLICITED_B], ids=["all-nodes", "solicited-node"])
def test_the_groups_every_device_joins_are_delivered_and_counted_as_multicast(group):
    h = Host()
    raw = udp_packet(A, group)
    assert h.rcv(raw, pkt_type=pb.PACKET_MULTICAST) == 0
    assert [kind for kind, _ in h.l4] == ["udp6"]
    assert (h.ip6("InMcastPkts"), h.ip6("InMcastOctets"), h.ip6("InDelivers")) == (1, len(raw), 1)


def test_the_solicited_node_group_of_the_link_local_address_is_joined_too():
    h = Host()
    assert h.ip.ipv6_chk_mcast_addr("b1", addrconf_addr_solict_mult(B1LL))
    assert not h.ip.ipv6_chk_mcast_addr("b0", addrconf_addr_solict_mult(B1LL))


def test_a_group_not_joined_is_dropped_after_counting_it_as_multicast():
    """Linux: Ip6InMcastPkts, then kfree_skb at ip6_mc_input (NOT_SPECIFIED), no Ip6InDiscards."""
    h = Host()
    assert h.rcv(echo_packet(A, ip6("ff02::1234")), pkt_type=pb.PACKET_MULTICAST) == \
        pb.SKB_DROP_REASON_NOT_SPECIFIED
    assert (h.ip6("InMcastPkts"), h.ip6("InDiscards"), h.icmp6("InMsgs")) == (1, 0, 0)


def test_only_a_forwarding_host_joins_the_all_routers_group():
    assert not Host().ip.ipv6_chk_mcast_addr("b0", ip6("ff02::2"))
    assert Host(forwarding=True).ip.ipv6_chk_mcast_addr("b0", ip6("ff02::2"))


def test_a_group_a_socket_joined_is_delivered():
    h = Host()
    assert h.addrconf.mcast.ipv6_dev_mc_inc("b0", ip6("ff02::1234")) == 0  # a socket's IPV6_JOIN_GROUP
    assert h.rcv(udp_packet(A, ip6("ff02::1234")), pkt_type=pb.PACKET_MULTICAST) == 0


# -- the hop-by-hop header -------------------------------------------------------------------


def test_an_unknown_option_whose_type_says_skip_is_skipped():
    h = Host()
    assert h.rcv(packet(A, B, NEXTHDR_HOP, hbh(NEXTHDR_UDP, UNKNOWN_00) + udp())) == 0
    ((kind, skb),) = h.l4
    assert kind == "udp6" and skb.data - skb.network_header == 48


def test_an_unknown_option_whose_type_says_discard_is_dropped_silently():
    h = Host()
    assert h.rcv(packet(A, B, NEXTHDR_HOP, hbh(NEXTHDR_UDP, UNKNOWN_01) + udp())) == \
        pb.SKB_DROP_REASON_UNHANDLED_PROTO
    assert (h.ip6("InHdrErrors"), h.out) == (1, [])


def test_an_unknown_option_whose_type_asks_for_it_gets_parameter_problem_2_at_the_option():
    h = Host()
    raw = packet(A, B, NEXTHDR_HOP, hbh(NEXTHDR_UDP, UNKNOWN_10) + udp())
    assert h.rcv(raw) == pb.SKB_DROP_REASON_UNHANDLED_PROTO
    ((flow, icmph, body),) = h.icmp_out()
    assert (icmph.type, icmph.code, icmph.pointer, flow.saddr, flow.daddr, body) == (4, 2, 42, B, A, raw)
    assert (h.ip6("InHdrErrors"), h.icmp6("OutParmProblems"), h.icmp6("OutType4")) == (1, 1, 1)


def test_the_hop_by_hop_header_is_judged_before_whether_the_packet_is_ours():
    """Linux answered an unknown option (type bits 10) in a packet for another host on the link."""
    h = Host()
    raw = packet(A, ip6("2001:db8:1::99"), NEXTHDR_HOP, hbh(NEXTHDR_UDP, UNKNOWN_10) + udp())
    assert h.rcv(raw) == pb.SKB_DROP_REASON_UNHANDLED_PROTO
    ((flow, icmph, _),) = h.icmp_out()
    assert (icmph.code, flow.saddr) == (2, B)  # the address B would use towards A
    assert h.ip6("InAddrErrors") == 0


def test_an_unknown_option_asking_for_it_is_answered_even_to_a_group_from_the_devices_address():
    """RFC 8200 4.2: type bits 10 answer even a multicast destination. Linux: from 2001:db8:1::b to
    a global source, from fe80::ff:fe00:b to a link-local one (source address selection)."""
    h = Host()
    h.rcv(packet(A, ALLNODES, NEXTHDR_HOP, hbh(NEXTHDR_UDP, UNKNOWN_10) + udp(A, ALLNODES)),
          pkt_type=pb.PACKET_MULTICAST)
    h.rcv(packet(ALL, ALLNODES, NEXTHDR_HOP, hbh(NEXTHDR_UDP, UNKNOWN_10) + udp(ALL, ALLNODES)),
          pkt_type=pb.PACKET_MULTICAST)
    (f1, m1, _), (f2, m2, _) = h.icmp_out()
    assert (m1.code, f1.saddr, f1.daddr, f1.oif) == (2, B, A, "")
    assert (m2.code, f2.saddr, f2.daddr, f2.oif) == (2, BLL, ALL, "b0")


def test_an_unknown_option_with_type_bits_11_is_not_answered_to_a_group():
    h = Host()
    assert h.rcv(packet(A, ALLNODES, NEXTHDR_HOP, hbh(NEXTHDR_UDP, UNKNOWN_11) + udp(A, ALLNODES)),
                 pkt_type=pb.PACKET_MULTICAST) == pb.SKB_DROP_REASON_UNHANDLED_PROTO
    assert h.out == []


def test_padn_with_a_non_zero_byte_is_a_header_error():
    h = Host()
    bad = bytearray(hbh(NEXTHDR_UDP, Ipv6OptPadN(4)))
    bad[5] = 1
    assert h.rcv(packet(A, B, NEXTHDR_HOP, bytes(bad) + udp())) == pb.SKB_DROP_REASON_IP_INHDR
    assert (h.ip6("InHdrErrors"), h.out) == (1, [])


def test_a_hop_by_hop_header_cut_short_is_dropped_unspecified():
    h = Host()
    assert h.rcv(packet(A, B, NEXTHDR_HOP, bytes([17, 0, 1, 2]))) == pb.SKB_DROP_REASON_NOT_SPECIFIED
    assert h.ip6("InHdrErrors") == 1


def test_a_hop_by_hop_header_over_max_hbh_opts_len_is_a_header_error():
    h = Host()
    h.ip.max_hbh_opts_len = 8
    assert h.rcv(packet(A, B, NEXTHDR_HOP, hbh(NEXTHDR_UDP, Ipv6OptUnknown(0x1E, bytes(10))) + udp())) == \
        pb.SKB_DROP_REASON_NOT_SPECIFIED
    assert (h.ip6("InHdrErrors"), h.l4) == (1, [])


def test_a_jumbo_option_in_a_packet_with_a_payload_len_gets_parameter_problem_0():
    h = Host()
    assert h.rcv(packet(A, B, NEXTHDR_HOP, hbh(NEXTHDR_UDP, Ipv6OptJumbo(70000)) + udp())) == \
        pb.SKB_DROP_REASON_IP_INHDR
    ((_, icmph, _),) = h.icmp_out()
    assert (icmph.type, icmph.code, icmph.pointer) == (4, 0, 42)


def test_a_router_alert_is_delivered():
    h = Host()
    raw = packet(A, B, NEXTHDR_HOP, hbh(NEXTHDR_ICMP, Ipv6OptRouterAlert(0)) + echo())
    assert h.rcv(raw) == 0
    assert h.icmp6("OutEchoReplies") == 1


def test_a_hop_by_hop_header_after_another_header_is_an_unknown_protocol():
    """Linux: Parameter Problem 1 pointing at the destination header's next header byte (40)."""
    h = Host()
    raw = packet(A, B, NEXTHDR_DEST, destopts(NEXTHDR_HOP) + hbh(NEXTHDR_UDP) + udp())
    assert h.rcv(raw) == pb.SKB_DROP_REASON_IP_NOPROTO
    ((_, icmph, _),) = h.icmp_out()
    assert (icmph.type, icmph.code, icmph.pointer, h.ip6("InUnknownProtos")) == (4, 1, 40, 1)


# -- destination options, routing, fragment headers, no next header ---------------------------


def test_an_unknown_destination_option_gets_parameter_problem_2():
    h = Host()
    assert h.rcv(packet(A, B, NEXTHDR_DEST, destopts(NEXTHDR_UDP, UNKNOWN_10) + udp())) == \
        pb.SKB_DROP_REASON_UNHANDLED_PROTO
    ((_, icmph, _),) = h.icmp_out()
    assert (icmph.code, icmph.pointer, h.ip6("InHdrErrors")) == (2, 42, 1)


def test_destination_options_are_not_read_in_a_packet_that_is_not_ours():
    """Linux: Ip6InAddrErrors for an unknown destination option in a packet for another host."""
    h = Host()
    raw = packet(A, ip6("2001:db8:1::99"), NEXTHDR_DEST, destopts(NEXTHDR_UDP, UNKNOWN_10) + udp())
    assert h.rcv(raw) == pb.SKB_DROP_REASON_IP_INADDRERRORS
    assert (h.ip6("InHdrErrors"), h.out) == (0, [])


def test_a_destination_header_cut_short_is_a_header_error():
    h = Host()
    assert h.rcv(packet(A, B, NEXTHDR_DEST, bytes([17, 0, 1, 2]))) == pb.SKB_DROP_REASON_NOT_SPECIFIED
    assert h.ip6("InHdrErrors") == 1


def test_a_destination_header_over_max_dst_opts_len_is_dropped_uncounted():
    h = Host()
    h.ip.max_dst_opts_len = 8
    assert h.rcv(packet(A, B, NEXTHDR_DEST, destopts(NEXTHDR_UDP, Ipv6OptUnknown(0x1E, bytes(10))) + udp())) == \
        pb.SKB_DROP_REASON_NOT_SPECIFIED
    assert h.ip6("InHdrErrors") == 0


def test_a_routing_header_with_segments_left_gets_parameter_problem_0_at_its_type():
    h = Host()
    raw = packet(A, B, NEXTHDR_ROUTING, routing(NEXTHDR_UDP, 0, 1) + udp())
    assert h.rcv(raw) == pb.SKB_DROP_REASON_NOT_SPECIFIED
    ((_, icmph, _),) = h.icmp_out()
    assert (icmph.type, icmph.code, icmph.pointer, h.ip6("InHdrErrors")) == (4, 0, 42, 1)


def test_a_mobile_ipv6_routing_header_is_unknown_too():
    h = Host()
    h.rcv(packet(A, B, NEXTHDR_ROUTING, routing(NEXTHDR_UDP, 2, 1) + udp()))
    ((_, icmph, _),) = h.icmp_out()
    assert (icmph.code, icmph.pointer) == (0, 42)


def test_a_routing_header_with_no_segments_left_is_passed_over():
    h = Host()
    assert h.rcv(packet(A, B, NEXTHDR_ROUTING, routing(NEXTHDR_ICMP, 0, 0) + echo())) == 0
    assert h.icmp6("OutEchoReplies") == 1


@pytest.mark.parametrize("type_", [3, 4], ids=["RPL", "segment routing"])
def test_rpl_and_segment_routing_headers_are_dropped_uncounted_as_they_are_off(type_):
    h = Host()
    assert h.rcv(packet(A, B, NEXTHDR_ROUTING, routing(NEXTHDR_ICMP, type_, 0) + echo())) == \
        pb.SKB_DROP_REASON_NOT_SPECIFIED
    assert (h.ip6("InHdrErrors"), h.ip6("InAddrErrors"), h.out) == (0, 0, [])


def test_a_routing_header_to_a_group_or_in_a_frame_to_a_group_is_an_address_error():
    h = Host()
    h.rcv(packet(A, ALLNODES, NEXTHDR_ROUTING, routing(NEXTHDR_UDP, 0, 1) + udp(A, ALLNODES)),
          pkt_type=pb.PACKET_MULTICAST)
    h.rcv(packet(A, B, NEXTHDR_ROUTING, routing(NEXTHDR_ICMP, 0, 0) + echo()), pkt_type=pb.PACKET_MULTICAST)
    assert (h.ip6("InAddrErrors"), h.drops(pb.SKB_DROP_REASON_NOT_SPECIFIED), h.out) == (2, 2, [])


def test_a_routing_header_cut_short_is_a_header_error():
    h = Host()
    assert h.rcv(packet(A, B, NEXTHDR_ROUTING, bytes([17, 0, 0, 0]))) == pb.SKB_DROP_REASON_NOT_SPECIFIED
    assert h.ip6("InHdrErrors") == 1


def test_an_atomic_fragment_is_delivered_and_counted_as_reassembled():
    h = Host()
    assert h.rcv(packet(A, B, NEXTHDR_FRAGMENT, frag(NEXTHDR_ICMP) + echo())) == 0
    assert (h.ip6("ReasmReqds"), h.ip6("ReasmOKs"), h.icmp6("OutEchoReplies")) == (1, 1, 1)


def test_a_second_fragment_header_gets_parameter_problem_0_pointing_at_it():
    h = Host()
    raw = packet(A, B, NEXTHDR_FRAGMENT, frag(NEXTHDR_FRAGMENT) + frag(NEXTHDR_UDP, ident=2) + udp())
    assert h.rcv(raw) == pb.SKB_DROP_REASON_NOT_SPECIFIED
    ((_, icmph, _),) = h.icmp_out()
    assert (icmph.code, icmph.pointer) == (0, 48)
    assert (h.ip6("InHdrErrors"), h.ip6("ReasmReqds"), h.ip6("ReasmOKs")) == (1, 1, 1)


def test_a_first_fragment_without_the_upper_layer_header_gets_parameter_problem_3():
    h = Host()
    raw = packet(A, B, NEXTHDR_DEST, destopts(NEXTHDR_FRAGMENT) + frag(NEXTHDR_UDP, mf=True, ident=4) + b"abcd")
    assert h.rcv(raw) == pb.SKB_DROP_REASON_NOT_SPECIFIED
    ((_, icmph, _),) = h.icmp_out()
    assert (icmph.code, icmph.pointer, h.ip6("InHdrErrors"), h.ip6("ReasmReqds")) == (3, 0, 1, 1)


def test_a_fragment_header_cut_short_gets_parameter_problem_0():
    h = Host()
    assert h.rcv(packet(A, B, NEXTHDR_FRAGMENT, b"\x11\0\0\0")) == pb.SKB_DROP_REASON_NOT_SPECIFIED
    ((_, icmph, _),) = h.icmp_out()
    assert (icmph.code, icmph.pointer, h.ip6("ReasmReqds")) == (0, 40, 1)


def test_fragments_wait_in_their_queue_then_the_whole_datagram_goes_up_to_udp():
    h = Host()
    data = udp(data=bytes(range(40)))  # 48 bytes: fragments of 16 and 32
    first = packet(A, B, NEXTHDR_FRAGMENT, frag(NEXTHDR_UDP, mf=True, ident=3) + data[:16])
    last = packet(A, B, NEXTHDR_FRAGMENT, frag(NEXTHDR_UDP, offset=16, ident=3) + data[16:])
    assert h.rcv(last) == 0 and h.l4 == []
    assert h.rcv(first) == 0
    ((kind, skb),) = h.l4
    assert kind == "udp6" and bytes(skb.payload()) == data
    assert (h.ip6("ReasmReqds"), h.ip6("ReasmOKs"), h.ip6("ReasmFails"), h.ip6("InDelivers")) == (2, 1, 0, 1)


def test_a_fragment_queue_left_incomplete_times_out_with_time_exceeded_about_its_first_fragment():
    h = Host()
    assert h.rcv(packet(A, B, NEXTHDR_FRAGMENT, frag(NEXTHDR_UDP, mf=True, ident=4) + udp()[:8])) == 0
    h.clock.t += 61
    assert h.ip.frag_expire() == 1
    ((_, icmph, _),) = h.icmp_out()
    assert (icmph.type, icmph.code, h.ip6("ReasmTimeout"), h.ip6("ReasmFails")) == (3, 1, 1, 1)


def test_no_next_header_counts_a_delivery_and_frees_the_packet():
    """Linux: Ip6InDelivers, then dst_discard_out (NOT_SPECIFIED)."""
    h = Host()
    assert h.rcv(packet(A, B, NEXTHDR_NONE, b"junk")) == pb.SKB_DROP_REASON_NOT_SPECIFIED
    assert (h.ip6("InDelivers"), h.out) == (1, [])


def test_an_unknown_protocol_gets_parameter_problem_1_pointing_at_the_next_header_field():
    """Linux: Ip6InUnknownProtos, Parameter Problem 1 pointer 6, IP_NOPROTO."""
    h = Host()
    raw = packet(A, B, 253, b"junk")
    assert h.rcv(raw) == pb.SKB_DROP_REASON_IP_NOPROTO
    ((flow, icmph, body),) = h.icmp_out()
    assert (icmph.type, icmph.code, icmph.pointer, flow.saddr, body) == (4, 1, 6, B, raw)
    assert (h.ip6("InUnknownProtos"), h.ip6("InDelivers")) == (1, 0)


def test_an_unknown_protocol_sent_to_a_group_is_not_answered():
    h = Host()
    assert h.rcv(packet(A, ALLNODES, 253, b"junk"), pkt_type=pb.PACKET_MULTICAST) == pb.SKB_DROP_REASON_IP_NOPROTO
    assert (h.ip6("InUnknownProtos"), h.out) == (1, [])


def test_an_error_is_sent_from_the_address_the_packet_was_for_even_on_another_device():
    """Linux answered protocol 253 to b1's 2001:db8:2::1, received on b0, from 2001:db8:2::1."""
    h = Host()
    h.rcv(packet(A, B1, 253, b"junk"))
    ((flow, _, _),) = h.icmp_out()
    assert flow.saddr == B1


# -- ICMPv6 in ---------------------------------------------------------------------------------


def test_an_echo_request_is_answered_from_the_address_it_was_sent_to():
    h = Host()
    assert h.rcv(echo_packet(tclass=0xB9)) == 0
    ((flow, icmph, body),) = h.icmp_out()
    assert (icmph.type, icmph.code, icmph.identifier, icmph.sequence, body) == (129, 0, 7, 1, b"abcdefgh")
    assert flow == Flowi6(A, B, oif="b0", tclass=0xB9, icmp_type=129)  # Linux kept the traffic class
    assert (h.ip6("InDelivers"), h.icmp6("InMsgs"), h.icmp6("InEchos"), h.icmp6("InType128")) == (1, 1, 1, 1)
    assert (h.icmp6("OutMsgs"), h.icmp6("OutEchoReplies"), h.icmp6("OutType129")) == (1, 1, 1)
    assert h.l4 == []


def test_an_echo_reply_keeps_the_requests_code():
    h = Host()
    h.rcv(packet(A, B, NEXTHDR_ICMP, echo(code=5)))
    ((_, icmph, _),) = h.icmp_out()
    assert (icmph.type, icmph.code) == (129, 5)


@pytest.mark.parametrize("src, group, reply_from", [
    (A, ALLNODES, B), (ALL, ALLNODES, BLL), (A, SOLICITED_B, B),
], ids=["all-nodes from a global address", "all-nodes from a link-local address", "solicited-node"])
def test_an_echo_request_to_a_group_is_answered_from_an_address_source_selection_picks(src, group, reply_from):
    """Linux (icmpv6_echo_ignore_multicast 0) answered from the address of b0 that suits the
    requester: the global one to a global source, the link-local one to a link-local source."""
    h = Host()
    assert h.rcv(packet(src, group, NEXTHDR_ICMP, echo(src, group)), pkt_type=pb.PACKET_MULTICAST) == 0
    ((flow, icmph, _),) = h.icmp_out()
    assert (icmph.type, flow.saddr, flow.daddr) == (129, reply_from, src)


def test_an_echo_request_with_a_bad_checksum_is_counted_delivered_and_dropped():
    """Linux: Ip6InDelivers, Icmp6InMsgs, Icmp6InErrors, Icmp6InCsumErrors, ICMP_CSUM; no type counted."""
    h = Host()
    raw = bytearray(echo_packet())
    raw[IPV6_HLEN + 2] ^= 0xFF
    assert h.rcv(bytes(raw)) == pb.SKB_DROP_REASON_ICMP_CSUM
    assert (h.ip6("InDelivers"), h.icmp6("InMsgs"), h.icmp6("InErrors"), h.icmp6("InCsumErrors")) == (1, 1, 1, 1)
    assert (h.icmp6("InType128"), h.out) == (0, [])


def test_an_icmpv6_message_shorter_than_its_header_is_an_error():
    h = Host()
    msg = b"\x80\x00" + csum_tcpudp(A, B, NEXTHDR_ICMP, b"\x80\x00\x00\x00").to_bytes(2, "big")
    assert h.rcv(packet(A, B, NEXTHDR_ICMP, msg)) == pb.SKB_DROP_REASON_NOT_SPECIFIED
    assert (h.icmp6("InErrors"), h.icmp6("InCsumErrors"), h.icmp6("InType128")) == (1, 0, 0)


def test_an_echo_request_from_the_unspecified_address_has_no_route_back():
    """Linux: Ip6OutNoRoutes, the request freed NOT_SPECIFIED."""
    h = Host()
    assert h.rcv(echo_packet(0, B)) == pb.SKB_DROP_REASON_NOT_SPECIFIED
    assert (h.ip6("OutNoRoutes"), h.icmp6("InEchos"), h.out) == (1, 1, [])


def test_echo_replies_are_not_rate_limited():
    h = Host()
    for _ in range(20):
        h.rcv(echo_packet())
    assert len(h.out) == 20 and h.icmp6("OutRateLimitHost") == 0


@pytest.mark.parametrize("type_", [129, 161], ids=["echo reply", "extended echo reply"])
def test_echo_replies_go_to_ping_sockets_in_l4(type_):
    h = Host()
    assert h.rcv(packet(A, B, NEXTHDR_ICMP, icmp6(A, B, type_, un=1 << 16 | 1))) == 0
    ((kind, skb),) = h.l4
    assert kind == "ping6" and skb.payload()[0] == type_


@pytest.mark.parametrize("type_, counter", [(160, None), (200, None), (143, "InMLDv2Reports"),
                                            (132, "InGroupMembReductions")],
                         ids=["extended echo request", "unknown informational", "MLDv2 report", "MLD done"])
def test_informational_messages_with_nothing_to_do_are_freed_unspecified_without_an_error(type_, counter):
    """Linux freed each NOT_SPECIFIED at icmpv6_rcv, counting its type but no Icmp6InErrors."""
    h = Host()
    assert h.rcv(packet(A, B, NEXTHDR_ICMP, icmp6(A, B, type_, body=bytes(16)))) == pb.SKB_DROP_REASON_NOT_SPECIFIED
    assert (h.icmp6(f"InType{type_}"), h.icmp6("InErrors"), h.out) == (1, 0, [])
    if counter:
        assert h.icmp6(counter) == 1


def test_mld_queries_and_reports_go_to_mld_and_are_consumed():
    seen = []
    h = Host(mld_rcv=lambda skb, hdr: seen.append(skb.payload()[0]) or 0)
    query = icmp6(ALL, ALLNODES, 130, body=bytes(20))
    raw = packet(ALL, ALLNODES, NEXTHDR_HOP, hbh(NEXTHDR_ICMP, Ipv6OptRouterAlert(0)) + query, hop_limit=1)
    assert h.rcv(raw, pkt_type=pb.PACKET_MULTICAST) == 0
    assert (seen, h.icmp6("InGroupMembQueries"), h.drops(pb.SKB_DROP_REASON_NOT_SPECIFIED)) == ([130], 1, 0)


# -- ICMPv6 errors in ----------------------------------------------------------------------------


def quoted_udp() -> bytes:
    """What B once sent A and an error about it quotes."""
    return packet(B, A, NEXTHDR_UDP, udp(B, A, b"data", dport=6666))


def error_packet(type_: int, body: bytes, code: int = 4, un: int = 0) -> bytes:
    return packet(A, B, NEXTHDR_ICMP, icmp6(A, B, type_, code, un, body))


@pytest.mark.parametrize("type_, code, un, counter", [
    (1, 4, 0, "InDestUnreachs"), (2, 0, 1280, "InPktTooBigs"), (3, 0, 0, "InTimeExcds"), (4, 0, 6, "InParmProblems"),
    (100, 0, 0, None),
], ids=["destination unreachable", "packet too big", "time exceeded", "parameter problem", "unknown error type"])
def test_an_error_about_udp_goes_to_l4s_err_handler(type_, code, un, counter):
    h = Host()
    assert h.rcv(error_packet(type_, quoted_udp(), code, un)) == 0
    ((kind, item),) = h.l4
    skb, t, c, info, nexthdr, offset = item
    assert (kind, t, c, info, nexthdr, offset) == ("err6", type_, code, un, NEXTHDR_UDP, IPV6_HLEN)
    assert skb.payload()[0] == type_
    assert (h.icmp6(f"InType{type_}"), h.icmp6("InErrors"), h.ip6("InDelivers")) == (1, 0, 1)
    if counter:
        assert h.icmp6(counter) == 1


def test_the_quoted_headers_offset_skips_its_extension_headers():
    h = Host()
    inner = packet(B, A, NEXTHDR_DEST, destopts(NEXTHDR_TCP) + TcpHdr(80, 1234, 9).to_bytes(b"", B, A))
    h.rcv(error_packet(1, inner))
    ((_, item),) = h.l4
    assert item[4:] == (NEXTHDR_TCP, 48)


@pytest.mark.parametrize("inner_type, to_l4", [(128, True), (129, False)], ids=["echo request", "echo reply"])
def test_an_error_quoting_icmpv6_reaches_ping_sockets_only_for_an_echo_request(inner_type, to_l4):
    h = Host()
    inner = packet(B, A, NEXTHDR_ICMP, icmp6(B, A, inner_type, un=5 << 16 | 1))
    assert h.rcv(error_packet(1, inner)) == 0
    assert [kind for kind, _ in h.l4] == (["err6"] if to_l4 else [])


def test_an_error_about_a_protocol_without_an_error_handler_is_consumed():
    h = Host()
    assert h.rcv(error_packet(1, packet(B, A, 253, bytes(8)))) == 0
    assert (h.l4, h.icmp6("InErrors"), h.drops(pb.SKB_DROP_REASON_NOT_SPECIFIED)) == ([], 0, 0)


# (name, quoted bytes, reason): Linux 6.18's reason; each counted Icmp6InErrors
BAD_QUOTES = [
    ("30 bytes of IPv6 header", quoted_udp()[:30], pb.SKB_DROP_REASON_PKT_TOO_SMALL),
    ("the IPv6 header and 4 bytes", quoted_udp()[:44], pb.SKB_DROP_REASON_PKT_TOO_SMALL),
    ("an extension header claiming more than is quoted",
     Ipv6Hdr(B, A, NEXTHDR_DEST).to_bytes(100) + bytes([17, 5, 0, 0]), pb.SKB_DROP_REASON_PKT_TOO_SMALL),
    ("extension headers ending in no next header",
     Ipv6Hdr(B, A, NEXTHDR_DEST).to_bytes(100) + destopts(NEXTHDR_NONE) + bytes(8), pb.SKB_DROP_REASON_IPV6_BAD_EXTHDR),
    ("a raw protocol", packet(B, A, 255, bytes(8)), pb.SKB_DROP_REASON_NOT_SPECIFIED),
]


@pytest.mark.parametrize("name, inner, reason", BAD_QUOTES, ids=[c[0] for c in BAD_QUOTES])
def test_an_error_whose_quote_cannot_be_read_is_dropped_as_linux_does(name, inner, reason):
    h = Host()
    assert h.rcv(error_packet(1, inner)) == reason
    assert (h.icmp6("InErrors"), h.icmp6("InDestUnreachs"), h.l4) == (1, 1, [])


def test_a_packet_too_big_quoting_less_than_an_ipv6_header_is_an_error():
    """Linux: Icmp6InPktTooBigs and Icmp6InErrors, NOT_SPECIFIED (icmpv6_rcv's discard_it)."""
    h = Host()
    assert h.rcv(error_packet(2, quoted_udp()[:20], 0, 1280)) == pb.SKB_DROP_REASON_NOT_SPECIFIED
    assert (h.icmp6("InPktTooBigs"), h.icmp6("InErrors")) == (1, 1)


# -- neighbour discovery -----------------------------------------------------------------------


def ns(code: int = 0, target: int = B) -> bytes:
    return NdNeighSolicit(target, (src_lladdr(bytes.fromhex("02000000000a")),)).to_bytes(ALL, SOLICITED_B, code=code)


def test_a_valid_neighbour_solicitation_goes_to_ndisc_and_its_verdict_is_the_drop_reason():
    seen = []

    def ndisc_rcv(skb, hdr):
        seen.append((skb.payload()[0], hdr.hop_limit))
        return pb.SKB_DROP_REASON_IPV6_NDISC_NS_OTHERHOST

    h = Host(ndisc_rcv=ndisc_rcv)
    raw = packet(ALL, SOLICITED_B, NEXTHDR_ICMP, ns(target=ip6("2001:db8:1::77")), hop_limit=255)
    assert h.rcv(raw, pkt_type=pb.PACKET_MULTICAST) == pb.SKB_DROP_REASON_IPV6_NDISC_NS_OTHERHOST
    assert seen == [(135, 255)]
    assert (h.icmp6("InNeighborSolicits"), h.icmp6("InErrors"), h.ip6("InDelivers")) == (1, 0, 1)


def test_without_ndisc_a_valid_solicitation_is_consumed():
    h = Host()
    assert h.rcv(packet(ALL, SOLICITED_B, NEXTHDR_ICMP, ns(), hop_limit=255), pkt_type=pb.PACKET_MULTICAST) == 0


@pytest.mark.parametrize("name, raw, reason", [
    ("hop limit 64", packet(ALL, SOLICITED_B, NEXTHDR_ICMP, ns(), hop_limit=64),
     pb.SKB_DROP_REASON_IPV6_NDISC_HOP_LIMIT),
    ("code 1", packet(ALL, SOLICITED_B, NEXTHDR_ICMP, ns(code=1), hop_limit=255),
     pb.SKB_DROP_REASON_IPV6_NDISC_BAD_CODE),
    ("in an atomic fragment", packet(ALL, SOLICITED_B, NEXTHDR_FRAGMENT, frag(NEXTHDR_ICMP, ident=9) + ns(),
                                     hop_limit=255), pb.SKB_DROP_REASON_IPV6_NDISC_FRAG),
], ids=lambda v: v if isinstance(v, str) else "")
def test_an_invalid_neighbour_solicitation_never_reaches_ndisc(name, raw, reason):
    seen = []
    h = Host(ndisc_rcv=lambda skb, hdr: seen.append(1) or 0)
    assert h.rcv(raw, pkt_type=pb.PACKET_MULTICAST) == reason
    assert (seen, h.icmp6("InNeighborSolicits"), h.icmp6("InErrors")) == ([], 1, 0)


# -- ICMPv6 errors out -----------------------------------------------------------------------------


def test_an_error_quotes_at_most_what_keeps_it_within_1280_bytes():
    h = Host()
    h.rcv(packet(A, B, 253, bytes(1400)))
    ((_, _, body),) = h.icmp_out()
    assert len(body) == ICMPV6_ERROR_MAX_QUOTE == 1232


def test_no_error_is_sent_about_an_icmpv6_error():
    """Linux dropped an unknown option (type bits 10) before a Destination Unreachable silently."""
    h = Host()
    raw = packet(A, B, NEXTHDR_HOP, hbh(NEXTHDR_ICMP, UNKNOWN_10) + icmp6(A, B, 1, 4, 0, quoted_udp()))
    assert h.rcv(raw) == pb.SKB_DROP_REASON_UNHANDLED_PROTO
    assert (h.ip6("InHdrErrors"), h.out) == (1, [])


def test_an_error_is_sent_about_an_icmpv6_informational_message():
    h = Host()
    h.rcv(packet(A, B, NEXTHDR_HOP, hbh(NEXTHDR_ICMP, UNKNOWN_10) + echo()))
    ((_, icmph, _),) = h.icmp_out()
    assert (icmph.type, icmph.code) == (4, 2)


def test_icmpv6_with_its_type_cut_off_is_ineligible_unless_a_later_fragment():
    head = Ipv6Hdr(A, B, NEXTHDR_ICMP).to_bytes(0)
    assert is_ineligible(head)
    assert not is_ineligible(Ipv6Hdr(A, B, NEXTHDR_FRAGMENT).to_bytes(8) + frag(NEXTHDR_ICMP, offset=8))


def test_no_error_is_sent_to_the_unspecified_address():
    h = Host()
    assert h.rcv(packet(0, B, 253, b"junk")) == pb.SKB_DROP_REASON_IP_NOPROTO
    assert h.out == []


def test_a_packet_too_big_may_answer_a_packet_sent_to_a_group():
    h = Host()
    skb = rx(udp_packet(A, ALLNODES), pkt_type=pb.PACKET_MULTICAST)
    hdr, parm = h.ip.ip6_rcv_core(skb)
    assert h.ip.icmp6_send(skb, hdr, parm, 2, 0, 1280)
    assert not h.ip.icmp6_send(skb, hdr, parm, 1, 4)
    ((flow, icmph, _),) = h.icmp_out()
    assert (icmph.type, icmph.mtu, flow.saddr) == (2, 1280, B)


def test_errors_to_one_destination_are_limited_to_a_burst_of_6_then_one_each_100_ms():
    """Linux 6.18 (net.ipv6.icmp.ratelimit 100): 20 at once → 6 sent, 14 Icmp6OutRateLimitHost."""
    h = Host()
    for _ in range(20):
        h.rcv(packet(A, B, 253, b"junk"))
    assert (len(h.out), h.icmp6("OutRateLimitHost"), h.ip6("InUnknownProtos")) == (6, 14, 20)
    h.clock.t += ICMPV6_RATELIMIT_S
    h.rcv(packet(A, B, 253, b"junk"))
    h.rcv(packet(A, B, 253, b"junk"))
    assert (len(h.out), h.icmp6("OutRateLimitHost")) == (7, 15)


def test_each_destination_has_its_own_bucket():
    h = Host()
    for src in (A, ip6("2001:db8:1::c")):
        for _ in range(7):
            h.rcv(packet(src, B, 253, b"junk"))
    assert (len(h.out), h.icmp6("OutRateLimitHost")) == (12, 2)


def test_packet_too_big_is_outside_the_rate_mask():
    h = Host()
    skb = rx(udp_packet())
    hdr, parm = h.ip.ip6_rcv_core(skb)
    assert all(h.ip.icmp6_send(skb, hdr, parm, 2, 0, 1280) for _ in range(20))


def test_the_global_bucket_shared_with_ipv4_counts_its_misses_as_ipv4s():
    h = Host()
    h.ip.ratelimit = IcmpRateLimit(burst=2, clock=h.clock)
    for n in range(3):
        h.rcv(packet(ip6(f"2001:db8:1::{n + 0x10:x}"), B, 253, b"junk"))
    assert (len(h.out), h.mib.get("Icmp", "OutRateLimitGlobal")) == (2, 1)


def test_what_comes_in_by_loopback_is_never_rate_limited():
    h = Host()
    h.addrconf.idev.setdefault("lo", [])
    for _ in range(10):
        h.rcv(packet(B, B, 253, b"junk"), dev="lo", pkt_type=pb.PACKET_LOOPBACK)
    assert len(h.out) == 10


def test_errors_towards_ourselves_have_no_per_destination_limit():
    h = Host()
    for _ in range(10):
        h.rcv(packet(B1, B, 253, b"junk"))
    assert (len(h.out), h.icmp6("OutRateLimitHost")) == (10, 0)


def test_source_selection_prefers_the_scope_then_the_outgoing_device_then_the_longest_prefix():
    h = Host()
    assert h.ip.ipv6_dev_get_saddr("b0", ALL) == BLL                     # rule 2: the scope
    assert h.ip.ipv6_dev_get_saddr("b1", A) == B1                       # rule 5 before 8: the device
    h.addrconf.inet6_addr_add("b0", ip6("2001:db8:9::b"), 64)
    assert h.ip.ipv6_dev_get_saddr("b0", ip6("2001:db8:9::1")) == ip6("2001:db8:9::b")  # rule 8: the prefix
    h.addrconf.inet6_addr_add("b1", ip6("fd00::b"), 64)
    assert h.ip.ipv6_dev_get_saddr("b0", ip6("fd00::1")) == ip6("2001:db8:9::b")  # rule 5 before 6: the device
    assert h.ip.ipv6_dev_get_saddr("b1", ip6("fd00::1")) == ip6("fd00::b")
    assert h.ip.ipv6_dev_get_saddr("b0", ip6("2001:db8:1::1")) == B


def test_address_labels_are_the_default_policy_tables():
    addrs = ("::1", "2001:db8::1", "fd00::1", "2002::1", "2001::1", "::ffff:1.2.3.4")
    labels = [ipv6_addr_label(ip6(a)) for a in addrs]
    assert labels == [0, 1, 5, 2, 6, 4]
