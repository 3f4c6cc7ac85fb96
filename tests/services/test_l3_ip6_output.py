"""The IPv6 output path (services/l3/ip6_output.py): route, header, fragmentation, forwarding.

The expectations are what Linux 6.18 did in three network namespaces: a host A (2001:db8:1::1/64,
MTU 1500, default route via the router), a forwarding router R (2001:db8:1::2/64 towards A,
2001:db8:2::2/64 on a link of MTU 1300) and a host C (2001:db8:2::1/64) beyond it, with
/proc/net/snmp6 read before and after each ping -6 -s / ping -t 1 / UDP send / scapy frame, and
tcpdump captures decoded with scapy.
"""

import errno

import pytest
from scapy.layers.inet6 import UDP, ICMPv6EchoRequest, IPv6, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, defragment6

from pktpath import skbuff as s
from pktpath.counters import Mib
from pktpath.pb import skbuff_pb2 as pb
from pktpath.services.l3.addrconf import Addrconf, Fib6Info
from pktpath.services.l3.ip6_output import (
    IP6_AUTO_FLOW_LABEL_OFF, IPV6_PMTUDISC_DO, IPV6_PMTUDISC_OMIT, IPV6_PMTUDISC_PROBE, Ip6Output,
    ip6_find_1stfragopt,
)
from pktpath.services.l3.ipv6 import Flowi6, Inet6SkbParm, Ipv6
from pktpath.wire import UdpHdr
from pktpath.wire.addr import addrconf_addr_solict_mult, ip6_from_str, ip6_to_str
from pktpath.wire.icmpv6 import (
    ICMPV6_DEST_UNREACH, ICMPV6_NOROUTE, ICMPV6_NOT_NEIGHBOUR, ICMPV6_PKT_TOOBIG, ICMPV6_TIME_EXCEED, Icmp6Hdr,
)
from pktpath.wire.ipv6 import (
    NEXTHDR_DEST, NEXTHDR_FRAGMENT, NEXTHDR_HOP, NEXTHDR_ICMP, NEXTHDR_ROUTING, NEXTHDR_TCP, NEXTHDR_UDP,
    Ipv6HopOptHdr, Ipv6Hdr, Ipv6OptPadN,
)

from fakes import Clock


def ip6(text: str) -> int:
    return ip6_from_str(text)


A0, A0LL = ip6("2001:db8:1::1"), ip6("fe80::ff:fe00:a")
GW, R1 = ip6("2001:db8:1::2"), ip6("2001:db8:2::2")
C, C5 = ip6("2001:db8:2::1"), ip6("2001:db8:2::5")
ALLNODES = ip6("ff02::1")


class Node:
    """One host's Ip6Output with L2 and the loopback recorded, source selection and group
    membership from its Ipv6."""

    def __init__(self, devs, *, default_via: int = 0, forwarding: bool = False, disable_ipv6=()) -> None:
        self.clock = Clock(1000.0)
        self.mib = Mib()
        self.addrconf = Addrconf(forwarding=forwarding, dad=False)
        for dev, mac, addr, _ in devs:
            self.addrconf.addrconf_add_dev(dev)
            self.addrconf.inet6_addr_add(dev, addr, 64)
            self.addrconf.addrconf_addr_gen(dev, bytes.fromhex(mac.replace(":", "")))
        if default_via:
            self.addrconf.ip6_route_add(Fib6Info(0, 0, devs[0][0], gateway=default_via, metric=1024, protocol="boot"))
        self.ipv6 = Ipv6("H", self.addrconf, to_l4=lambda kind, items: True, ip6_output=lambda skb, flow: 0,
                         mib=self.mib, clock=self.clock)
        self.l2, self.looped, self.icmp = [], [], []
        self.l2_accepts = True
        self.out = Ip6Output("H", self.addrconf, {dev: mtu for dev, _, _, mtu in devs}, to_l2=self._to_l2,
                             loopback_rcv=self.looped.append, get_saddr=self.ipv6.ipv6_dev_get_saddr, mib=self.mib,
                             clock=self.clock, mc_joined=self.ipv6.ipv6_chk_mcast_addr, disable_ipv6=disable_ipv6)

    def _to_l2(self, skbs):
        self.l2.append(list(skbs))
        return self.l2_accepts

    def icmp6_send(self, skb, hdr, parm, type_, code, info):
        """Ipv6.icmp6_send's place: what was asked, the quoted packet as it was then."""
        self.icmp.append((type_, code, info, bytes(s.skb_network_header(skb)), skb.dev))
        return True

    def ip6(self, name: str) -> int:
        return self.mib.get("Ip6", name)

    def drops(self, reason: int) -> int:
        return self.mib.get("Drops", pb.DropReason.Name(reason))

    def counters(self) -> dict:
        return {k: v for k, v in self.mib.snapshot().get("Ip6", {}).items() if v}

    def frames(self) -> list[bytes]:
        return [bytes(skb.payload()) for batch in self.l2 for skb in batch]


def host_a() -> Node:
    return Node([("a0", "02:00:00:00:00:0a", A0, 1500)], default_via=GW)


def router() -> Node:
    return Node([("r0", "02:00:00:00:00:10", GW, 1500), ("r1", "02:00:00:00:00:11", R1, 1300)], forwarding=True)


def l4(data: bytes, headroom: int = s.MAX_HEADER) -> s.SkBuff:
    """What L4 hands down: data at the transport header, headroom for the rest."""
    skb = s.alloc_skb(headroom + len(data))
    s.skb_reserve(skb, headroom)
    s.skb_put_data(skb, data)
    return skb


def udp_skb(saddr: int, daddr: int, payload: bytes, sport: int = 40000, dport: int = 9999) -> s.SkBuff:
    return l4(UdpHdr(sport, dport).to_bytes(payload, saddr, daddr, ipv6=True) + payload)


def echo_skb(saddr: int, daddr: int, size: int) -> s.SkBuff:
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    return l4(Icmp6Hdr(128, 0, 7 << 16 | 1).to_bytes(saddr, daddr, data) + data)


def rx(raw: bytes, dev: str, pkt_type: int = pb.PACKET_HOST) -> s.SkBuff:
    """A packet the router received: data and network header at its IPv6 header."""
    skb = s.alloc_skb(s.NET_SKB_PAD + len(raw))
    s.skb_reserve(skb, s.NET_SKB_PAD)
    s.skb_put_data(skb, raw)
    s.skb_reset_network_header(skb)
    skb.transport_header = skb.network_header + 40
    skb.dev, skb.protocol, skb.pkt_type, skb.tstamp = dev, 0x86DD, pkt_type, 123456789
    return skb


def forward(node: Node, raw: bytes, iif: str = "r0", pkt_type: int = pb.PACKET_HOST):
    skb = rx(raw, iif, pkt_type)
    return node.out.ip6_forward(skb, Ipv6Hdr.from_bytes(raw), Inet6SkbParm(iif), node.icmp6_send), skb


def a_to_c(size: int = 56, hop_limit: int = 64, saddr: int = A0, daddr: int = C) -> bytes:
    """The echo request A's ping -6 -s size sent, as it reached the router."""
    return bytes(IPv6(src=ip6_to_str(saddr), dst=ip6_to_str(daddr), hlim=hop_limit) /
                 ICMPv6EchoRequest(id=7, seq=1, data=bytes(size)))


# -- route output ---------------------------------------------------------------------------------

def test_the_route_for_a_flow_names_device_next_hop_source_and_path_mtu():
    a = host_a()
    rt = a.out.ip6_route_output(Flowi6(C))
    assert (rt.dev, rt.nexthop, rt.saddr, rt.mtu) == ("a0", GW, A0, 1500)
    # ip -6 route get 2001:db8:2::1 on A, Linux 6.18
    assert str(rt) == "2001:db8:2::1 from :: via 2001:db8:1::2 dev a0 src 2001:db8:1::1 metric 1024 pref medium"
    assert str(a.out.ip6_route_output(Flowi6(ALLNODES, oif="a0"))) == \
        "multicast ff02::1 from :: dev a0 table local proto kernel src fe80::ff:fe00:a metric 256 pref medium"
    assert str(a.out.ip6_route_output(Flowi6(A0))) == \
        "local 2001:db8:1::1 from :: dev lo table local proto kernel src 2001:db8:1::1 metric 0 pref medium"
    assert a.out.ip6_route_output(Flowi6(C, saddr=A0LL)).saddr == A0LL  # the flow's own is kept


# -- locally generated ----------------------------------------------------------------------------

def test_a_datagram_gets_its_ipv6_header_and_goes_to_l2_with_the_gateway_as_next_hop():
    a = host_a()
    skb = udp_skb(A0, C, b"hello")
    assert a.out.ip6_output(skb, Flowi6(C, proto=NEXTHDR_UDP, tclass=0x28, flowlabel=0x12345)) == 0
    [[sent]] = a.l2
    assert (sent.dev, sent.nexthop, sent.protocol, sent.network_header) == ("a0", GW, 0x86DD, sent.data)
    pkt = IPv6(bytes(sent.payload()))
    assert (pkt.src, pkt.dst, pkt.nh, pkt.hlim, pkt.tc, pkt.fl, pkt.plen) == \
        ("2001:db8:1::1", "2001:db8:2::1", 17, 64, 0x28, 0x12345, 13)
    again = pkt.copy()
    del again[UDP].chksum  # scapy works it out afresh over the IPv6 pseudo-header
    assert pkt[UDP].load == b"hello" and IPv6(bytes(again))[UDP].chksum == pkt[UDP].chksum
    assert a.counters() == {"OutRequests": 1, "OutTransmits": 1, "OutOctets": 53}


def test_the_hop_limit_is_the_flows_else_64_else_1_towards_a_group():
    a = host_a()
    a.out.ip6_output(udp_skb(A0, C, b"x"), Flowi6(C, proto=NEXTHDR_UDP, hop_limit=7))
    a.out.ip6_output(udp_skb(A0, C, b"x"), Flowi6(C, proto=NEXTHDR_UDP))
    a.out.ip6_output(udp_skb(A0LL, ALLNODES, b"x"), Flowi6(ALLNODES, proto=NEXTHDR_UDP, oif="a0"))
    assert [IPv6(f).hlim for f in a.frames()] == [7, 64, 1]  # ping ff02::1: hlim 1 (mcast_hops)


def test_a_flow_without_a_label_gets_one_of_its_own_as_auto_flowlabels_gives():
    a = host_a()
    for sport in (40000, 40000, 40001):
        a.out.ip6_output(udp_skb(A0, C, b"x", sport=sport), Flowi6(C, proto=NEXTHDR_UDP))
    labels = [IPv6(f).fl for f in a.frames()]
    assert labels[0] == labels[1] and 0 < labels[0] <= 0xFFFFF
    assert labels[2] != labels[0]  # another flow, another label (of 2**20: a 1-in-a-million miss)
    a.out.auto_flowlabels = IP6_AUTO_FLOW_LABEL_OFF
    a.out.ip6_output(udp_skb(A0, C, b"x"), Flowi6(C, proto=NEXTHDR_UDP))
    assert IPv6(a.frames()[-1]).fl == 0


def test_no_route_is_enetunreach_and_counts_out_no_routes():
    """Linux 6.18 on the router, which has no default route: ping and a UDP send to 2001:db8:9::1
    were refused with Network is unreachable, Ip6OutNoRoutes 2."""
    r = router()
    assert r.out.ip6_output(udp_skb(GW, ip6("2001:db8:9::1"), b"x"), Flowi6(ip6("2001:db8:9::1"), proto=17)) == \
        errno.ENETUNREACH
    assert r.counters() == {"OutNoRoutes": 1} and r.drops(pb.SKB_DROP_REASON_IP_OUTNOROUTES) == 1
    assert r.l2 == []


def test_a_packet_to_an_own_address_comes_back_in_through_lo_unfragmented():
    """Linux 6.18: ping -6 2001:db8:1::1 and ping -s 3000 of it counted Ip6OutRequests, Ip6OutTransmits
    and Ip6OutOctets for each request (3048 bytes: lo's MTU is 65536), no fragments."""
    a = host_a()
    assert a.out.ip6_output(echo_skb(A0, A0, 3000), Flowi6(A0)) == 0
    [skb] = a.looped
    assert (skb.dev, skb.pkt_type, skb.len) == ("lo", pb.PACKET_LOOPBACK, 3048)
    assert a.l2 == [] and a.counters() == {"OutRequests": 1, "OutTransmits": 1, "OutOctets": 3048}


def test_a_1453_byte_udp_payload_at_mtu_1500_leaves_as_linux_splits_it():
    """Linux 6.18 sent it as 1496 bytes (payload_len 1456, offset 0, M, next header 17, 1448 data
    bytes) and 61 bytes (offset 1448, 13 bytes), one identification; Ip6OutRequests 1, Ip6FragOKs 1,
    Ip6FragCreates 2, Ip6OutTransmits 2, Ip6OutOctets 1557."""
    a = host_a()
    payload = bytes(range(256)) * 5 + bytes(173)
    skb = udp_skb(A0, GW, payload)
    original = bytes(IPv6(src="2001:db8:1::1", dst="2001:db8:1::2", fl=0x55857) / UDP(bytes(skb.payload())))
    assert a.out.ip6_output(skb, Flowi6(GW, proto=NEXTHDR_UDP, flowlabel=0x55857)) == 0
    [batch] = a.l2
    frags = [IPv6(bytes(f.payload())) for f in batch]
    assert [(len(p), p.plen, p.nh) for p in frags] == [(1496, 1456, NEXTHDR_FRAGMENT), (61, 21, NEXTHDR_FRAGMENT)]
    fh = [p[IPv6ExtHdrFragment] for p in frags]
    assert [(f.nh, f.offset * 8, f.m, f.res1, f.res2) for f in fh] == [(17, 0, 1, 0, 0), (17, 1448, 0, 0, 0)]
    assert fh[0].id == fh[1].id != 0
    assert [len(bytes(f.payload)) for f in fh] == [1448, 13]
    assert all((p.fl, p.hlim) == (0x55857, 64) for p in frags)
    assert all(f.nexthop == GW and f.dev == "a0" for f in batch)
    assert bytes(defragment6(frags)) == original
    assert a.counters() == {"OutRequests": 1, "FragOKs": 1, "FragCreates": 2, "OutTransmits": 2, "OutOctets": 1557}


def test_a_packet_too_big_makes_the_next_datagram_fragment_at_the_path_mtu():
    """Linux 6.18: after R's Packet Too Big (mtu 1300), ping -s 1400 (1448 bytes) left A as 1296
    and 208 bytes: Ip6FragCreates 2, Ip6OutTransmits 2, Ip6OutOctets 1504."""
    a = host_a()
    assert a.out.ip6_update_pmtu(C, 1300)
    assert a.out.ip6_output(echo_skb(A0, C, 1400), Flowi6(C)) == 0
    assert [len(f) for f in a.frames()] == [1296, 208]
    assert a.counters() == {"OutRequests": 1, "FragOKs": 1, "FragCreates": 2, "OutTransmits": 2, "OutOctets": 1504}


def test_a_packet_too_big_below_1280_teaches_nothing():
    a = host_a()
    assert not a.out.ip6_update_pmtu(C, 1000)
    a.out.ip6_output(echo_skb(A0, C, 1400), Flowi6(C))
    assert [len(f) for f in a.frames()] == [1448]


def test_a_sender_that_forbids_fragments_gets_emsgsize_and_nothing_is_counted():
    a = host_a()
    a.out.ip6_update_pmtu(C, 1300)
    assert a.out.ip6_output(echo_skb(A0, C, 1400), Flowi6(C), pmtudisc=IPV6_PMTUDISC_DO) == errno.EMSGSIZE
    assert a.l2 == [] and a.counters() == {} and a.drops(pb.SKB_DROP_REASON_PKT_TOO_BIG) == 1
    # PROBE holds it against the device's MTU instead, OMIT fragments it to the device's
    assert a.out.ip6_output(echo_skb(A0, C, 1400), Flowi6(C), pmtudisc=IPV6_PMTUDISC_PROBE) == 0
    assert a.out.ip6_output(echo_skb(A0, C, 1500), Flowi6(C), pmtudisc=IPV6_PMTUDISC_OMIT) == 0
    assert [len(f) for f in a.frames()] == [1448, 1496, 108]


def test_a_datagram_over_65535_bytes_is_refused():
    a = host_a()
    assert a.out.ip6_output(l4(bytes(65536), headroom=200), Flowi6(C, proto=NEXTHDR_UDP)) == errno.EMSGSIZE
    assert a.l2 == []


def test_tcp_is_never_fragmented_at_the_source():
    """ip6_xmit: a segment over the path MTU counts Ip6FragFails and is refused."""
    a = host_a()
    a.out.ip6_update_pmtu(C, 1300)
    assert a.out.ip6_output(l4(bytes(20) + bytes(1300)), Flowi6(C, proto=NEXTHDR_TCP)) == errno.EMSGSIZE
    assert a.counters() == {"FragFails": 1} and a.l2 == []


def test_a_packet_for_a_joined_group_is_looped_back_as_well():
    """Linux 6.18: ping -6 ff02::1%a0 counted Ip6OutMcastPkts 1, Ip6OutMcastOctets 104, and the
    sender answered its own request from the looped copy."""
    a = host_a()
    assert a.out.ip6_output(echo_skb(A0LL, ALLNODES, 56), Flowi6(ALLNODES, oif="a0")) == 0
    [looped] = a.looped
    assert (looped.dev, looped.pkt_type) == ("a0", pb.PACKET_LOOPBACK)
    [[sent]] = a.l2
    assert (sent.dev, sent.nexthop) == ("a0", ALLNODES) and bytes(looped.payload()) == bytes(sent.payload())
    assert a.counters() == {"OutRequests": 1, "OutMcastPkts": 1, "OutMcastOctets": 104, "OutTransmits": 1,
                            "OutOctets": 104}
    other = ip6("ff02::1234")  # a group a0 did not join: out only
    a.out.ip6_output(echo_skb(A0LL, other, 56), Flowi6(other, oif="a0"))
    assert len(a.looped) == 1 and len(a.l2) == 2


def test_an_interface_local_group_never_leaves_the_host():
    """Linux 6.18, ping -6 ff01::1%a0: answered by the host itself; the request counted
    Ip6OutMcastPkts and Ip6OutMcastOctets but not Ip6OutTransmits (freed before)."""
    a = host_a()
    group = ip6("ff01::1")
    assert a.out.ip6_output(echo_skb(A0LL, group, 8), Flowi6(group, oif="a0")) == 0
    assert len(a.looped) == 1 and a.l2 == []
    assert a.ip6("OutMcastPkts") == 1 and a.ip6("OutTransmits") == 0


def test_what_l2_refuses_is_dropped_counted_and_enobufs():
    a = host_a()
    a.l2_accepts = False
    payload = bytes(1453)
    assert a.out.ip6_output(udp_skb(A0, GW, payload), Flowi6(GW, proto=NEXTHDR_UDP)) == errno.ENOBUFS
    assert a.ip6("OutDiscards") == 2 and a.drops(pb.SKB_DROP_REASON_CPU_BACKLOG) == 2


def test_a_device_with_ipv6_disabled_drops_what_is_routed_out_of_it():
    a = Node([("a0", "02:00:00:00:00:0a", A0, 1500)], default_via=GW, disable_ipv6=("a0",))
    assert a.out.ip6_output(udp_skb(A0, C, b"x"), Flowi6(C, proto=NEXTHDR_UDP)) == 0  # as ip6_output returns
    assert a.ip6("OutDiscards") == 1 and a.drops(pb.SKB_DROP_REASON_IPV6DISABLED) == 1 and a.l2 == []


# -- packets with their header built ------------------------------------------------------------

def test_a_dad_neighbour_solicitation_leaves_by_its_device_without_a_route():
    """ndisc_send_skb of a DAD probe: from ::, to the solicited-node group, hop limit 255; out of
    the device asked for, next hop the group, never looped back (ndisc's socket has mc_loop 0)."""
    a = host_a()
    target = ip6("2001:db8:1::77")
    group = addrconf_addr_solict_mult(target)
    body = Icmp6Hdr(135, 0, 0).to_bytes(0, group, target.to_bytes(16, "big")) + target.to_bytes(16, "big")
    hdr = Ipv6Hdr(0, group, NEXTHDR_ICMP, hop_limit=255).to_bytes(0)  # payload_len left for ip6_local_out
    assert a.out.ip6_local_out(l4(hdr + body), "a0") == 0
    [[ns]] = a.l2
    assert (ns.dev, ns.nexthop) == ("a0", group) and a.looped == []
    pkt = IPv6(bytes(ns.payload()))
    assert (pkt.src, pkt.plen, pkt.hlim, pkt.fl) == ("::", 24, 255, 0)
    assert a.counters() == {"OutRequests": 1, "OutMcastPkts": 1, "OutMcastOctets": 64, "OutTransmits": 1,
                            "OutOctets": 64}


def test_a_built_packet_without_a_device_is_routed_by_its_destination():
    a = host_a()
    raw = Ipv6Hdr(A0, C, NEXTHDR_UDP).to_bytes(13) + UdpHdr(1, 2).to_bytes(b"hello", A0, C, ipv6=True) + b"hello"
    assert a.out.ip6_local_out(l4(raw)) == 0
    assert a.l2[0][0].nexthop == GW
    r = router()
    assert r.out.ip6_local_out(l4(Ipv6Hdr(GW, ip6("2001:db8:9::1"), 59).to_bytes(0))) == errno.ENETUNREACH
    assert r.ip6("OutNoRoutes") == 1


def test_fragments_repeat_the_unfragmentable_headers_before_the_fragment_header():
    """Linux 6.18, a UDP socket with an 8-byte hop-by-hop (or destination options) header sending
    1453 bytes at MTU 1500: 1496 and 77 bytes, IPv6 / HBH (next header 44) / fragment (17), offsets
    0 and 1440."""
    a = host_a()
    payload = bytes(1453)
    udp = UdpHdr(40000, 9999).to_bytes(payload, A0, GW, ipv6=True) + payload
    ext = Ipv6HopOptHdr(NEXTHDR_UDP, (Ipv6OptPadN(4),)).to_bytes()
    raw = Ipv6Hdr(A0, GW, NEXTHDR_HOP).to_bytes(len(ext) + len(udp)) + ext + udp
    assert a.out.ip6_local_out(l4(raw)) == 0
    frags = [IPv6(f) for f in a.frames()]
    assert [len(p) for p in frags] == [1496, 77]
    assert all(p.nh == NEXTHDR_HOP and p[IPv6ExtHdrHopByHop].nh == NEXTHDR_FRAGMENT for p in frags)
    assert [(p[IPv6ExtHdrFragment].nh, p[IPv6ExtHdrFragment].offset * 8) for p in frags] == [(17, 0), (17, 1440)]
    assert bytes(defragment6(frags)) == raw


def test_the_fragmentable_part_starts_after_hop_by_hop_routing_and_destination_options_before_routing():
    def chain(*hdrs: int) -> bytes:
        """An IPv6 header and 8-byte extension headers of the given types, then UDP's 8 bytes."""
        out = bytearray(Ipv6Hdr(A0, C, hdrs[0] if hdrs else NEXTHDR_UDP).to_bytes(8 * (len(hdrs) + 1)))
        for n, _ in enumerate(hdrs):
            out += bytes((hdrs[n + 1] if n + 1 < len(hdrs) else NEXTHDR_UDP, 0)) + bytes(6)
        return bytes(out) + bytes(8)
    assert ip6_find_1stfragopt(chain()) == (40, 6)
    assert ip6_find_1stfragopt(chain(NEXTHDR_HOP)) == (48, 40)
    assert ip6_find_1stfragopt(chain(NEXTHDR_HOP, NEXTHDR_DEST, NEXTHDR_ROUTING, NEXTHDR_DEST)) == (64, 56)
    assert ip6_find_1stfragopt(chain(NEXTHDR_DEST)) == (48, 40)  # Linux keeps it with no routing header
    assert ip6_find_1stfragopt(chain(NEXTHDR_HOP)[:44]) is None


# -- forwarding -------------------------------------------------------------------------------------

def test_a_forwarded_packet_loses_a_hop_and_counts_out_forw_datagrams_not_out_requests():
    """Linux 6.18, ping -s 1240 through the router: Ip6OutForwDatagrams, Ip6OutTransmits and
    Ip6OutOctets for each direction."""
    r = router()
    raw = a_to_c(1240)
    reason, skb = forward(r, raw)
    assert reason == 0
    [[sent]] = r.l2
    assert sent is skb and (sent.dev, sent.nexthop, sent.tstamp) == ("r1", C, 0)
    assert IPv6(bytes(sent.payload())).hlim == 63 and bytes(sent.payload())[8:] == raw[8:]
    assert r.counters() == {"OutForwDatagrams": 1, "OutTransmits": 1, "OutOctets": 1288}


def test_a_frame_not_addressed_to_the_router_is_not_forwarded():
    r = router()
    reason, _ = forward(r, a_to_c(), pkt_type=pb.PACKET_OTHERHOST)
    assert reason == pb.SKB_DROP_REASON_NOT_SPECIFIED and r.counters() == {} and r.icmp == []


def test_hop_limit_one_is_answered_time_exceeded():
    """Linux 6.18, ping -t 1: Time Exceeded (hop limit) from the router, Ip6InHdrErrors 1."""
    r = router()
    reason, _ = forward(r, a_to_c(hop_limit=1))
    assert reason == pb.SKB_DROP_REASON_IP_INHDR
    assert [(t, c, i) for t, c, i, _, _ in r.icmp] == [(ICMPV6_TIME_EXCEED, 0, 0)]
    assert r.counters() == {"InHdrErrors": 1} and r.l2 == []


def test_too_big_for_the_next_link_is_answered_packet_too_big_with_its_mtu():
    """Linux 6.18, ping -s 1400 through the router to the 1300-byte link: Packet too big: mtu=1300;
    Ip6InTooBigErrors 1, Ip6FragFails 1, and Ip6OutForwDatagrams 1 (counted before the check)."""
    r = router()
    reason, _ = forward(r, a_to_c(1400))
    assert reason == pb.SKB_DROP_REASON_PKT_TOO_BIG
    [(type_, code, info, quoted, dev)] = r.icmp
    assert (type_, code, info, dev) == (ICMPV6_PKT_TOOBIG, 0, 1300, "r1")
    assert IPv6(quoted).hlim == 64  # not decremented yet
    assert r.counters() == {"OutForwDatagrams": 1, "InTooBigErrors": 1, "FragFails": 1}


def test_a_path_mtu_the_router_learned_is_answered_too_but_counts_only_frag_fails():
    """Linux 6.18: once the router learned mtu 1290 towards 2001:db8:2::5, a 1298-byte packet to it
    (under r1's 1300) got Packet too big: mtu=1290 from ip6_fragment: Ip6FragFails, no
    Ip6InTooBigErrors."""
    r = router()
    assert r.out.ip6_update_pmtu(C5, 1290)
    reason, _ = forward(r, a_to_c(1250, daddr=C5))
    assert reason == pb.SKB_DROP_REASON_NOT_SPECIFIED
    [(type_, code, info, quoted, _)] = r.icmp
    assert (type_, code, info, IPv6(quoted).hlim) == (ICMPV6_PKT_TOOBIG, 0, 1290, 63)
    assert r.counters() == {"OutForwDatagrams": 1, "FragFails": 1}
    reason, _ = forward(r, a_to_c(1250))  # another destination on that link still fits its 1300
    assert reason == 0


def test_a_link_local_source_is_not_forwarded_beyond_its_link():
    """Linux 6.18: Destination Unreachable, beyond scope of source address; Ip6InAddrErrors 1."""
    r = router()
    reason, _ = forward(r, a_to_c(saddr=ip6("fe80::5893:bbff:fe85:a911")))
    assert reason == pb.SKB_DROP_REASON_IP_INADDRERRORS
    assert [(t, c) for t, c, _, _, _ in r.icmp] == [(ICMPV6_DEST_UNREACH, ICMPV6_NOT_NEIGHBOUR)]
    assert r.counters() == {"InAddrErrors": 1}


def test_the_unspecified_source_is_not_forwarded_and_not_answered():
    r = router()
    reason, _ = forward(r, a_to_c(saddr=0))
    assert reason == pb.SKB_DROP_REASON_IP_INADDRERRORS and r.icmp == [] and r.counters() == {"InAddrErrors": 1}


def test_link_local_addresses_go_back_out_of_the_link_they_came_from():
    """Linux 6.18 forwarded both back out of the router's r0 (with a redirect, which pktpath does
    not send): a link-local source to an on-link address, and a global source to fe80::1234."""
    r = router()
    reason, _ = forward(r, a_to_c(saddr=ip6("fe80::5893:bbff:fe85:a911"), daddr=ip6("2001:db8:1::99")))
    assert reason == 0
    reason, _ = forward(r, a_to_c(daddr=ip6("fe80::1234")))
    assert reason == 0
    assert [(b[0].dev, b[0].nexthop) for b in r.l2] == [("r0", ip6("2001:db8:1::99")), ("r0", ip6("fe80::1234"))]
    assert r.icmp == [] and r.ip6("OutForwDatagrams") == 2


def test_no_route_is_answered_destination_unreachable_no_route():
    r = router()
    reason, _ = forward(r, a_to_c(daddr=ip6("2001:db8:9::1")))
    assert reason == pb.SKB_DROP_REASON_IP_INNOROUTES
    assert [(t, c) for t, c, _, _, _ in r.icmp] == [(ICMPV6_DEST_UNREACH, ICMPV6_NOROUTE)]
    assert r.counters() == {"InNoRoutes": 1}


@pytest.mark.parametrize("accepts, reason", [(True, 0), (False, pb.SKB_DROP_REASON_CPU_BACKLOG)])
def test_what_l2_does_with_a_forwarded_packet_is_the_answer(accepts, reason):
    r = router()
    r.l2_accepts = accepts
    assert forward(r, a_to_c())[0] == reason
    assert r.ip6("OutDiscards") == (not accepts)
