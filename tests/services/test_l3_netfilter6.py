"""Netfilter's IPv6 hooks and `pktpath ip6tables` (`pktpath iptables`, the same program): the
protocol ip6tables' -p sees through extension headers, the five hooks where net/ipv6 has them, a
table apart from IPv4's, and the program's words and columns for each family.

The expectations are what Linux 6.18 did with ip6tables v1.8.9 (nf_tables) in network
namespaces: frames sent with scapy over a veth, rule counters read with ip6tables -L -v -n -x
(and nft's meta l4proto for headers cut short), a router namespace for FORWARD, a UDP socket's
sendto for OUTPUT and POSTROUTING, and the listings and messages of the same commands.
"""

import errno
import io
import ipaddress

import grpc
import pytest
from scapy.layers.inet import UDP
from scapy.layers.inet6 import (
    ICMPv6EchoRequest, IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, IPv6ExtHdrRouting,
    fragment6,
)
from scapy.layers.ipsec import AH

from pktpath import skbuff as s
from pktpath.counters import Mib
from pktpath.pb import l3_pb2
from pktpath.pb import skbuff_pb2 as pb
from pktpath.services.l3 import netfilter as nf
from pktpath.services.l3 import netfilter6 as nf6
from pktpath.services.l3.addrconf import Addrconf, Fib6Info
from pktpath.services.l3.ip6_output import Ip6Output
from pktpath.services.l3.ipv6 import Flowi6, Inet6SkbParm, Ipv6
from pktpath.services.l3.netfilter6 import NF_ACCEPT, NF_DROP, Netfilter6, NfRule6, ipv6_find_hdr
from pktpath.services.l3.server import L3Servicer
from pktpath.tools import iptables, ip6tables
from pktpath.tools.iptables import IptablesError
from pktpath.topology import TopologyError, parse
from pktpath.wire import UdpHdr
from pktpath.wire.addr import addrconf_addr_solict_mult, ip6_from_str
from pktpath.wire.icmpv6 import Icmp6Hdr
from pktpath.wire.ipv6 import NEXTHDR_ICMP, NEXTHDR_TCP, NEXTHDR_UDP, Ipv6Hdr

from fakes import Clock

LOCAL_IN, PRE_ROUTING, FORWARD = nf6.NF_INET_LOCAL_IN, nf6.NF_INET_PRE_ROUTING, nf6.NF_INET_FORWARD
LOCAL_OUT, POST_ROUTING = nf6.NF_INET_LOCAL_OUT, nf6.NF_INET_POST_ROUTING
SRC, DST = "2001:db8::1", "2001:db8::2"


def ip6(text: str) -> int:
    return ip6_from_str(text)


def net(text: str) -> tuple[int, int]:
    n = ipaddress.IPv6Network(text)
    return int(n.network_address), n.prefixlen


def echo(*ext, src: str = SRC, dst: str = DST, size: int = 8) -> bytes:
    """An echo request behind the extension headers given (scapy layers)."""
    pkt = IPv6(src=src, dst=dst)
    for layer in ext:
        pkt = pkt / layer
    return bytes(pkt / ICMPv6EchoRequest(id=1, seq=1, data=bytes(size)))


def verdict(n: Netfilter6, raw: bytes, hook: int = LOCAL_IN) -> int:
    return n.hook(hook, raw, len(raw))


# -- ipv6_find_hdr: the protocol -p matches ------------------------------------------------------

@pytest.mark.parametrize("ext", [(), (IPv6ExtHdrDestOpt(),), (IPv6ExtHdrHopByHop(),),
                                 (IPv6ExtHdrRouting(segleft=0, addresses=[]),),
                                 (IPv6ExtHdrHopByHop(), IPv6ExtHdrDestOpt(), IPv6ExtHdrFragment())],
                         ids=["plain", "destopts", "hop-by-hop", "routing", "three"])
def test_the_protocol_is_the_one_after_the_extension_headers(ext):
    """Linux 6.18: -p icmpv6 counted an echo request behind a destination options, hop-by-hop
    or routing header."""
    raw = echo(*ext)
    proto, thoff, frag_off = ipv6_find_hdr(raw)
    assert (proto, frag_off) == (NEXTHDR_ICMP, 0) and raw[thoff] == 128  # at the ICMPv6 type


def test_every_fragment_has_its_protocol_and_only_the_first_its_offset_zero():
    """Linux 6.18: all 3 fragments of an echo request counted at INPUT under -p icmpv6; of a UDP
    datagram to port 53, the first under --dport 53, the other two under -p udp."""
    pkt = IPv6(src=SRC, dst=DST) / IPv6ExtHdrFragment(id=8) / UDP(sport=1000, dport=53) / bytes(200)
    frags = [bytes(f) for f in fragment6(pkt, 150)]
    found = [ipv6_find_hdr(f) for f in frags]
    assert [p for p, _, _ in found] == [NEXTHDR_UDP] * 3
    assert found[0][2] == 0 and all(off for _, _, off in found[1:])
    rules = [NfRule6(LOCAL_IN, NF_ACCEPT, protocol=NEXTHDR_UDP, dport=53), NfRule6(LOCAL_IN, NF_ACCEPT,
                                                                                   protocol=NEXTHDR_UDP)]
    n = Netfilter6(rules)
    for f in frags:
        verdict(n, f)
    assert [(r.pkts, r.bytes) for r in rules] == [(1, 144), (2, 208)]  # the kernel's counters, byte for byte


def test_ah_ends_the_walk_and_no_next_header_is_59():
    """Linux 6.18: -p 51 counted an echo request behind AH (IP6_FH_F_AUTH); a packet whose next
    header is 59, or a destination options header naming 59, counted under -p 59."""
    assert ipv6_find_hdr(echo(AH(nh=58, payloadlen=4, spi=1, seq=1)))[0] == 51
    assert ipv6_find_hdr(bytes(IPv6(src=SRC, dst=DST, nh=59)))[:2] == (59, 40)
    assert ipv6_find_hdr(bytes(IPv6(src=SRC, dst=DST) / IPv6ExtHdrDestOpt(nh=59)))[:2] == (59, 48)


def test_a_header_whose_first_bytes_are_missing_leaves_the_packet_without_a_protocol():
    """Linux 6.18 (nft's meta l4proto): none for an empty destination options header, a 2-byte
    routing header, or a later fragment of a header chain; but a 16-byte destination options
    header with only 2 bytes there, or a fragment header cut to 4, still named the protocol
    after them."""
    hdr = bytes(IPv6(src=SRC, dst=DST))[:40]

    def with_payload(nexthdr: int, payload: bytes) -> bytes:
        return hdr[:4] + len(payload).to_bytes(2, "big") + bytes([nexthdr]) + hdr[7:] + payload

    assert ipv6_find_hdr(with_payload(60, b"")) is None
    assert ipv6_find_hdr(with_payload(43, bytes([58, 0]))) is None
    assert ipv6_find_hdr(with_payload(44, bytes([60, 0, 0, 8]) + bytes(12))) is None
    assert ipv6_find_hdr(with_payload(60, bytes([58, 1])))[0] == NEXTHDR_ICMP
    assert ipv6_find_hdr(with_payload(44, bytes([58, 0, 0, 8])))[0] == NEXTHDR_ICMP
    n = Netfilter6([NfRule6(LOCAL_IN, NF_DROP, protocol=60), NfRule6(LOCAL_IN, NF_ACCEPT, src=net(SRC))])
    assert verdict(n, with_payload(60, b"")) == NF_ACCEPT and n.rules()[1].pkts == 1  # only a rule without -p


# -- rules: prefixes, ports, counters, policies ---------------------------------------------------

def test_prefixes_are_128_bit():
    rule = NfRule6(LOCAL_IN, NF_DROP, src=net("2001:db8::/64"), dst=net("2001:db8::2/128"))
    n = Netfilter6([rule])
    assert verdict(n, echo(src="2001:db8::ffff:1")) == NF_DROP
    assert verdict(n, echo(src="2001:db8:0:1::1")) == NF_ACCEPT  # the 64th bit differs
    assert verdict(n, echo(dst="2001:db8::3")) == NF_ACCEPT
    assert rule.pkts == 1


def test_ports_match_tcp_and_udp_behind_extension_headers_and_the_first_rule_decides():
    pkt = IPv6(src=SRC, dst=DST) / IPv6ExtHdrDestOpt() / UDP(sport=7, dport=9999) / b"x"
    drop = NfRule6(LOCAL_IN, NF_DROP, protocol=NEXTHDR_UDP, dport=9999)
    later = NfRule6(LOCAL_IN, NF_ACCEPT, protocol=NEXTHDR_UDP, sport=7)
    n = Netfilter6([drop, later])
    assert verdict(n, bytes(pkt)) == NF_DROP and (drop.pkts, drop.bytes, later.pkts) == (1, len(pkt), 0)
    assert verdict(n, bytes(IPv6(src=SRC, dst=DST) / UDP(sport=7, dport=1))) == NF_ACCEPT and later.pkts == 1
    tcp = NfRule6(LOCAL_IN, NF_DROP, protocol=NEXTHDR_TCP, dport=9999)
    assert not tcp.matches(nf6.Ip6Match(0, 0, NEXTHDR_UDP), (7, 9999))


def test_a_policy_decides_what_no_rule_did_counts_it_and_ip6tables_p_starts_it_from_zero():
    """Linux 6.18 with iptables-nft: 2 pings under INPUT's policy DROP counted 2 packets, 208
    bytes; -P INPUT ACCEPT then listed 0 packets, 0 bytes."""
    n = Netfilter6()
    n.set_policy(LOCAL_IN, NF_DROP)
    for _ in range(2):
        assert verdict(n, echo(size=56)) == NF_DROP
    assert n.policy_counts(LOCAL_IN) == (2, 208)
    n.set_policy(LOCAL_IN, NF_ACCEPT)
    assert n.policy_counts(LOCAL_IN) == (0, 0)
    verdict(n, echo(size=56))
    assert n.policy_counts(LOCAL_IN) == (1, 104)
    n.zero()
    assert n.policy_counts(LOCAL_IN) == (0, 0)


def test_the_tables_are_apart_an_ipv4_rule_never_sees_ipv6_nor_the_other_way():
    v4, v6 = nf.Netfilter(), Netfilter6()
    v4.add(nf.NfRule(nf.NF_INET_LOCAL_IN, NF_DROP))
    assert verdict(v6, echo()) == NF_ACCEPT and v6.policy_counts(LOCAL_IN) == (1, 56)
    assert v4.rules()[0].pkts == 0 and v4.policy_counts(LOCAL_IN) == (0, 0)


# -- the receive hooks (services/l3/ipv6.py) -----------------------------------------------------

class Receiver:
    """Host B (2001:db8::2 on b0) with its ip6tables table; what L4 gets and Ip6 counts."""

    def __init__(self, *rules: NfRule6) -> None:
        self.mib = Mib()
        self.addrconf = Addrconf(dad=False)
        self.addrconf.addrconf_add_dev("b0")
        self.addrconf.inet6_addr_add("b0", ip6(DST), 64)
        self.addrconf.addrconf_addr_gen("b0", bytes.fromhex("02000000000b"))
        self.nf = Netfilter6(rules)
        self.out, self.ndisc = [], []
        self.ip = Ipv6("B", self.addrconf, to_l4=lambda kind, items: True, mib=self.mib, clock=Clock(),
                       ip6_output=lambda skb, flow: self.out.append(flow), netfilter=self.nf,
                       ndisc_rcv=lambda skb, hdr: self.ndisc.append(hdr) or 0)

    def rcv(self, raw: bytes) -> int:
        skb = s.alloc_skb(s.NET_SKB_PAD + len(raw))
        s.skb_reserve(skb, s.NET_SKB_PAD)
        s.skb_put_data(skb, raw)
        s.skb_reset_network_header(skb)
        skb.dev, skb.protocol, skb.pkt_type = "b0", 0x86DD, pb.PACKET_HOST
        return self.ip.ipv6_rcv(skb)

    def dropped(self) -> int:
        return self.mib.get("Drops", "SKB_DROP_REASON_NETFILTER_DROP")


def test_an_input_drop_of_icmpv6_stops_an_echo_request_behind_destination_options():
    b = Receiver(NfRule6(LOCAL_IN, NF_DROP, protocol=NEXTHDR_ICMP))
    assert b.rcv(echo(IPv6ExtHdrDestOpt())) == pb.SKB_DROP_REASON_NETFILTER_DROP
    assert b.out == [] and b.dropped() == 1 and b.nf.rules()[0].pkts == 1
    # counted as received; nothing after the hook (Ip6InDelivers) is
    assert b.mib.get("Ip6", "InReceives") == 1 and b.mib.get("Ip6", "InDelivers") == 0


def test_pre_routing_sees_a_packet_before_routing_and_local_in_only_ours():
    pre = NfRule6(PRE_ROUTING, NF_ACCEPT, protocol=NEXTHDR_ICMP)
    local = NfRule6(LOCAL_IN, NF_ACCEPT, protocol=NEXTHDR_ICMP)
    b = Receiver(pre, local)
    b.rcv(echo())                              # ours: both, and answered
    b.rcv(echo(dst="2001:db8::99"))            # not ours, not forwarding: PRE_ROUTING only
    assert (pre.pkts, local.pkts) == (2, 1) and len(b.out) == 1
    b.nf.set_policy(PRE_ROUTING, NF_DROP)
    b.nf.flush()
    assert b.rcv(echo()) == pb.SKB_DROP_REASON_NETFILTER_DROP and len(b.out) == 1
    assert b.mib.get("Ip6", "InDelivers") == 1 and b.nf.policy_counts(PRE_ROUTING) == (1, 56)


def test_local_in_sees_each_fragment_before_reassembly():
    """Linux 6.18: an echo request in 3 fragments counted 3 packets, 352 bytes, at INPUT and
    was answered once."""
    rule = NfRule6(LOCAL_IN, NF_ACCEPT, protocol=NEXTHDR_ICMP)
    b = Receiver(rule)
    pkt = IPv6(src=SRC, dst=DST) / IPv6ExtHdrFragment(id=7) / ICMPv6EchoRequest(id=1, seq=4, data=b"x" * 200)
    for f in fragment6(pkt, 150):
        b.rcv(bytes(f))
    assert (rule.pkts, rule.bytes) == (3, 352) and len(b.out) == 1


def test_neighbour_discovery_comes_in_through_pre_routing_and_local_in():
    """Linux 6.18: A's neighbour solicitation for B (72 bytes) counted at B's PREROUTING and INPUT."""
    rules = [NfRule6(PRE_ROUTING, NF_ACCEPT, protocol=NEXTHDR_ICMP), NfRule6(LOCAL_IN, NF_ACCEPT,
                                                                             protocol=NEXTHDR_ICMP)]
    b = Receiver(*rules)
    group = addrconf_addr_solict_mult(ip6(DST))
    body = ip6(DST).to_bytes(16, "big") + bytes([1, 1, 2, 0, 0, 0, 0, 0xA])
    ns = Ipv6Hdr(ip6(SRC), group, NEXTHDR_ICMP, hop_limit=255).to_bytes(32) + \
        Icmp6Hdr(135, 0, 0).to_bytes(ip6(SRC), group, body) + body
    assert b.rcv(ns) == 0 and len(b.ndisc) == 1
    assert [(r.pkts, r.bytes) for r in rules] == [(1, 72), (1, 72)]


# -- the output hooks (services/l3/ip6_output.py) ------------------------------------------------

A0, GW, C = ip6("2001:db8:1::1"), ip6("2001:db8:1::2"), ip6("2001:db8:2::1")


class Sender:
    """A host or router's Ip6Output with its table; what reaches L2 and what loops back."""

    def __init__(self, devs, *rules: NfRule6, default_via: int = 0, forwarding: bool = False) -> None:
        self.mib = Mib()
        self.addrconf = Addrconf(forwarding=forwarding, dad=False)
        for dev, mac, addr, _ in devs:
            self.addrconf.addrconf_add_dev(dev)
            self.addrconf.inet6_addr_add(dev, addr, 64)
            self.addrconf.addrconf_addr_gen(dev, bytes.fromhex(mac.replace(":", "")))
        if default_via:
            self.addrconf.ip6_route_add(Fib6Info(0, 0, devs[0][0], gateway=default_via, metric=1024))
        self.nf = Netfilter6(rules)
        ipv6 = Ipv6("H", self.addrconf, to_l4=lambda kind, items: True, ip6_output=lambda skb, flow: 0,
                    mib=self.mib, clock=Clock())
        self.l2, self.looped = [], []
        self.out = Ip6Output("H", self.addrconf, {dev: mtu for dev, _, _, mtu in devs},
                             to_l2=lambda skbs: self.l2.extend(skbs) or True, loopback_rcv=self.looped.append,
                             get_saddr=ipv6.ipv6_dev_get_saddr, mib=self.mib, clock=Clock(),
                             mc_joined=ipv6.ipv6_chk_mcast_addr, netfilter=self.nf)

    def ip6(self, name: str) -> int:
        return self.mib.get("Ip6", name)


def host() -> Sender:
    return Sender([("a0", "02:00:00:00:00:0a", A0, 1500)], default_via=GW)


def l4(data: bytes) -> s.SkBuff:
    skb = s.alloc_skb(s.MAX_HEADER + len(data))
    s.skb_reserve(skb, s.MAX_HEADER)
    s.skb_put_data(skb, data)
    return skb


def udp(daddr: int, payload: bytes) -> s.SkBuff:
    return l4(UdpHdr(40000, 9).to_bytes(payload, A0, daddr, ipv6=True) + payload)


@pytest.mark.parametrize("hook", [LOCAL_OUT, POST_ROUTING], ids=["OUTPUT", "POSTROUTING"])
def test_a_dropped_datagram_is_eperm_and_counts_out_discards(hook):
    """Linux 6.18: sendto() of a UDP datagram dropped at OUTPUT, and at POSTROUTING, failed
    with EPERM and counted Ip6OutDiscards."""
    a = host()
    a.nf.add(NfRule6(hook, NF_DROP, protocol=NEXTHDR_UDP))
    assert a.out.ip6_output(udp(C, b"hi"), Flowi6(C, proto=NEXTHDR_UDP)) == errno.EPERM
    assert a.l2 == [] and a.ip6("OutRequests") == 1 and a.ip6("OutDiscards") == 1
    assert a.ip6("OutTransmits") == 0 and a.mib.get("Drops", "SKB_DROP_REASON_NETFILTER_DROP") == 1


def test_a_dropped_tcp_segment_is_eperm_without_out_discards():
    """ip6_xmit returns NF_HOOK's -EPERM; only ip6_send_skb counts Ip6OutDiscards."""
    a = host()
    a.nf.set_policy(LOCAL_OUT, NF_DROP)
    assert a.out.ip6_output(l4(bytes(20)), Flowi6(C, proto=NEXTHDR_TCP)) == errno.EPERM
    assert a.ip6("OutDiscards") == 0 and a.nf.policy_counts(LOCAL_OUT) == (1, 60)


def test_neighbour_discovery_out_is_dropped_at_output_eperm_and_nothing_more_counted():
    """ndisc_send_skb: Ip6OutRequests, then NF_HOOK; its error leaves the ICMPv6 counts to the caller."""
    a = host()
    a.nf.add(NfRule6(LOCAL_OUT, NF_DROP, protocol=NEXTHDR_ICMP))
    target = ip6("2001:db8:1::77")
    group = addrconf_addr_solict_mult(target)
    body = Icmp6Hdr(135, 0, 0).to_bytes(0, group, target.to_bytes(16, "big")) + target.to_bytes(16, "big")
    assert a.out.ip6_local_out(l4(Ipv6Hdr(0, group, NEXTHDR_ICMP, hop_limit=255).to_bytes(0) + body),
                               "a0") == errno.EPERM
    assert a.l2 == [] and a.ip6("OutRequests") == 1 and a.ip6("OutDiscards") == 0


def test_post_routing_sees_a_datagram_once_whole_before_it_is_fragmented():
    """Linux 6.18: a 3000-byte UDP sendto counted 1 packet, 3048 bytes, at OUTPUT and at
    POSTROUTING (and none under -p 44), then left in 3 fragments."""
    rules = [NfRule6(LOCAL_OUT, NF_ACCEPT, protocol=NEXTHDR_UDP), NfRule6(POST_ROUTING, NF_ACCEPT,
                                                                          protocol=NEXTHDR_UDP)]
    a = host()
    for r in rules:
        a.nf.add(r)
    assert a.out.ip6_output(udp(C, bytes(3000)), Flowi6(C, proto=NEXTHDR_UDP)) == 0
    assert [(r.pkts, r.bytes) for r in rules] == [(1, 3048), (1, 3048)] and len(a.l2) == 3


def test_a_looped_back_multicast_copy_meets_post_routing_a_second_time():
    """Linux 6.18, ping -6 ff02::1%eth1: POSTROUTING counted 2 packets (the request and its
    looped copy), OUTPUT 1; the copy then came in through PREROUTING and INPUT."""
    rule = NfRule6(POST_ROUTING, NF_ACCEPT, protocol=NEXTHDR_ICMP)
    a = host()
    a.nf.add(rule)
    group = ip6("ff02::1")
    data = bytes(56)
    skb = l4(Icmp6Hdr(128, 0, 1).to_bytes(ip6("fe80::ff:fe00:a"), group, data) + data)
    assert a.out.ip6_output(skb, Flowi6(group, oif="a0")) == 0
    assert (rule.pkts, rule.bytes) == (2, 208) and len(a.looped) == 1 and len(a.l2) == 1
    a.nf.add(NfRule6(POST_ROUTING, NF_DROP, protocol=NEXTHDR_ICMP), position=1)
    skb = l4(Icmp6Hdr(128, 0, 1).to_bytes(ip6("fe80::ff:fe00:a"), group, data) + data)
    assert a.out.ip6_output(skb, Flowi6(group, oif="a0")) == errno.EPERM  # the original, before any copy
    assert len(a.looped) == 1 and len(a.l2) == 1


def router(*rules: NfRule6) -> Sender:
    return Sender([("r0", "02:00:00:00:00:10", GW, 1500), ("r1", "02:00:00:00:00:11", ip6("2001:db8:2::2"), 1500)],
                  *rules, forwarding=True)


def forward(r: Sender, raw: bytes) -> int:
    skb = s.alloc_skb(s.NET_SKB_PAD + len(raw))
    s.skb_reserve(skb, s.NET_SKB_PAD)
    s.skb_put_data(skb, raw)
    s.skb_reset_network_header(skb)
    skb.dev, skb.protocol, skb.pkt_type = "r0", 0x86DD, pb.PACKET_HOST
    return r.out.ip6_forward(skb, Ipv6Hdr.from_bytes(raw), Inet6SkbParm("r0"), lambda *a: True)


def test_a_forward_drop_comes_after_out_forw_datagrams_and_the_hop_limit():
    """Linux 6.18, a router with FORWARD -p icmpv6 -j DROP and 2 pings through it: the rule
    counted 2 packets, 208 bytes; Ip6InReceives and Ip6OutForwDatagrams 2, nothing sent."""
    drop = NfRule6(FORWARD, NF_DROP, protocol=NEXTHDR_ICMP)
    r = router(drop)
    raw = echo(src="2001:db8:1::1", dst="2001:db8:2::1", size=56)
    assert forward(r, raw) == pb.SKB_DROP_REASON_NETFILTER_DROP
    assert (drop.pkts, drop.bytes) == (1, 104) and r.ip6("OutForwDatagrams") == 1 and r.l2 == []


def test_a_forwarded_packet_meets_forward_and_post_routing_but_not_input_or_output():
    """Linux 6.18: 2 pings through the router counted 4 packets at its PREROUTING and
    POSTROUTING (both ways), none at INPUT or OUTPUT."""
    rules = [NfRule6(h, NF_ACCEPT) for h in (LOCAL_IN, FORWARD, LOCAL_OUT, POST_ROUTING)]
    r = router(*rules)
    assert forward(r, echo(src="2001:db8:1::1", dst="2001:db8:2::1", size=56)) == 0
    assert [r_.pkts for r_ in rules] == [0, 1, 0, 1] and len(r.l2) == 1


# -- the L3 service's rule RPCs, by family --------------------------------------------------------

class Abort(grpc.RpcError):
    def __init__(self, code, details) -> None:
        self._code, self._details = code, details

    def code(self):
        return self._code

    def details(self):
        return self._details


class Context:
    def abort(self, code, details):
        raise Abort(code, details)


class L3Stub:
    """The L3 servicer's rule RPCs in this process (its two tables and nothing else)."""

    def __init__(self) -> None:
        self.servicer = object.__new__(L3Servicer)
        self.servicer.netfilter, self.servicer.netfilter6 = nf.Netfilter(), Netfilter6()

    def __getattr__(self, name):
        method = getattr(self.servicer, name)
        return lambda request, timeout=None: method(request, Context())


class View:
    def __init__(self) -> None:
        self.stub = {"l3": L3Stub()}


def test_each_rpc_reaches_its_familys_table_and_get_rules_tags_them():
    stub = L3Stub()
    stub.RuleAdd(l3_pb2.Rule(hook=LOCAL_IN, target=NF_DROP, src="2001:db8::/64", protocol=58,
                             family=l3_pb2.NFPROTO_IPV6))
    stub.RuleAdd(l3_pb2.Rule(hook=LOCAL_IN, target=NF_DROP, src="10.0.0.0/24"))  # no family: IPv4's
    v4, v6 = stub.servicer.netfilter, stub.servicer.netfilter6
    assert [r.src for r in v6.rules()] == [net("2001:db8::/64")] and [r.src for r in v4.rules()] == [(0x0A000000, 24)]
    stub.SetPolicy(l3_pb2.ChainPolicy(hook=FORWARD, policy=NF_DROP, family=l3_pb2.NFPROTO_IPV6))
    assert v6.policies[FORWARD] == NF_DROP and v4.policies[FORWARD] == NF_ACCEPT
    table = stub.GetRules(None)
    assert [(r.family, r.src) for r in table.rules] == [(l3_pb2.NFPROTO_IPV4, "10.0.0.0/24"),
                                                        (l3_pb2.NFPROTO_IPV6, "2001:db8::/64")]
    assert [p.family for p in table.policies] == [l3_pb2.NFPROTO_IPV4] * 5 + [l3_pb2.NFPROTO_IPV6] * 5
    stub.RuleFlush(l3_pb2.Chain(family=l3_pb2.NFPROTO_IPV6))
    assert v6.rules() == [] and len(v4.rules()) == 1
    with pytest.raises(Abort) as exc:
        stub.RuleAdd(l3_pb2.Rule(hook=LOCAL_IN, target=NF_DROP, src="10.0.0.0/24", family=l3_pb2.NFPROTO_IPV6))
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_iptables_lists_only_ipv4s_and_ip6tables_only_ipv6s():
    view = View()
    ip6tables.run(view, ["-A", "INPUT", "-p", "icmpv6", "-j", "DROP"])
    ip6tables.run(view, ["-P", "OUTPUT", "DROP"])
    assert [line.rstrip() for line in iptables.run(view, ["-L", "-n"])] == [
        "Chain INPUT (policy ACCEPT)", "target     prot opt source               destination", "",
        "Chain FORWARD (policy ACCEPT)", "target     prot opt source               destination", "",
        "Chain OUTPUT (policy ACCEPT)", "target     prot opt source               destination"]
    assert ip6tables.run(view, ["-L", "-n"])[2] == "DROP       58   --  ::/0                 ::/0                "
    assert ip6tables.run(view, ["-L", "-n"])[-2] == "Chain OUTPUT (policy DROP)"


# -- pktpath iptables and ip6tables: one program, each family's columns and words ------------------

RULES = [["-A", "INPUT", "-p", "udp", "--dport", "9999", "-j", "DROP"],
         ["-I", "INPUT", "1", "-s", "2001:db8::1/128", "-p", "tcp", "--dport", "22", "-j", "ACCEPT"],
         ["-A", "INPUT", "-s", "fe80::/10", "-d", "ff02::1", "-p", "icmpv6", "-j", "ACCEPT"],
         ["-A", "INPUT", "-p", "41", "-j", "DROP"],
         ["-A", "OUTPUT", "-d", "2001:db8::/64", "-p", "ipv6-icmp", "-j", "DROP"],
         ["-A", "FORWARD", "-p", "udp", "--sport", "53", "--dport", "5353", "-j", "ACCEPT"],
         ["-P", "FORWARD", "DROP"]]

# Linux 6.18's ip6tables v1.8.9 (nf_tables) after RULES, byte for byte (its blanks at line ends kept)
KERNEL_VNX_LINES = [
    "Chain INPUT (policy ACCEPT 0 packets, 0 bytes)",
    "num      pkts      bytes target     prot opt in     out     source               destination         ",
    "1           0        0 ACCEPT     6    --  *      *       2001:db8::1          ::/0                 tcp dpt:22",
    "2           0        0 DROP       17   --  *      *       ::/0                 ::/0                 udp dpt:9999",
    "3           0        0 ACCEPT     58   --  *      *       fe80::/10            ff02::1             ",
    "4           0        0 DROP       41   --  *      *       ::/0                 ::/0                ",
    "",
    "Chain FORWARD (policy DROP 0 packets, 0 bytes)",
    "num      pkts      bytes target     prot opt in     out     source               destination         ",
    "1           0        0 ACCEPT     17   --  *      *       ::/0                 ::/0                 "
    "udp spt:53 dpt:5353",
    "",
    "Chain OUTPUT (policy ACCEPT 0 packets, 0 bytes)",
    "num      pkts      bytes target     prot opt in     out     source               destination         ",
    "1           0        0 DROP       58   --  *      *       ::/0                 2001:db8::/64       "]

KERNEL_L_OUTPUT_V = [
    "Chain OUTPUT (policy ACCEPT 0 packets, 0 bytes)",
    " pkts bytes target     prot opt in     out     source               destination         ",
    "    0     0 DROP       ipv6-icmp --  any    any     anywhere             2001:db8::/64       "]


def test_the_listing_is_the_kernels_column_for_column():
    view = View()
    for words in RULES:
        assert ip6tables.run(view, words) == []
    assert ip6tables.run(view, ["-L", "-v", "-n", "-x", "--line-numbers"]) == KERNEL_VNX_LINES
    assert ip6tables.run(view, ["-vL", "OUTPUT"]) == KERNEL_L_OUTPUT_V
    assert ip6tables.run(view, ["-L", "INPUT", "3", "-n"]) == [  # one rule, no chain line
        "ACCEPT     58   --  fe80::/10            ff02::1             "]
    assert ip6tables.run(view, ["-L", "INPUT", "9"]) == []


def test_iptables_lists_as_the_kernels_iptables_did():
    """Linux 6.18, iptables v1.8.9 (nf_tables): -s 10.0.0.9/24 listed 10.0.0.0/24, -p 41 ipv6 (a
    name from /etc/protocols), an interface `any' without -n, `*' with it; 127.0.0.1 localhost and
    127.0.0.0/8 loopback/8 (/etc/hosts, /etc/networks); -v echoed the rule it added."""
    view = View()
    assert iptables.run(view, ["-A", "INPUT", "-s", "10.0.0.9/24", "-p", "41", "-j", "DROP"]) == []
    assert iptables.run(view, ["-A", "INPUT", "-s", "127.0.0.1", "-d", "127.0.0.0/8", "-j", "DROP", "-v"]) == [
        "DROP  all opt -- in * out *  127.0.0.1  -> 127.0.0.0/8  "]
    assert iptables.run(view, ["-L", "INPUT", "-v"])[2:] == [
        "    0     0 DROP       ipv6 --  any    any     10.0.0.0/24          anywhere            ",
        "    0     0 DROP       all  --  any    any     localhost            loopback/8          "]
    assert iptables.run(view, ["-L", "INPUT", "-v", "-n"])[2:] == [
        "    0     0 DROP       41   --  *      *       10.0.0.0/24          0.0.0.0/0           ",
        "    0     0 DROP       0    --  *      *       127.0.0.1            127.0.0.0/8         "]


def test_iptables_p_starts_the_policys_counts_from_zero_and_only_that_chains():
    """Linux 6.18 with iptables-nft: 4 packets under INPUT's policy and 4 under OUTPUT's; -P INPUT
    DROP listed INPUT 0 packets, 0 bytes, OUTPUT still 4 packets, 336 bytes."""
    view = View()
    v4 = view.stub["l3"].servicer.netfilter
    for _ in range(4):
        v4.passed(nf.NF_INET_LOCAL_IN, 84)
        v4.passed(nf.NF_INET_LOCAL_OUT, 84)
    iptables.run(view, ["-P", "INPUT", "DROP"])
    chains = [line for line in iptables.run(view, ["-L", "-v"]) if line.startswith("Chain")]
    assert chains == ["Chain INPUT (policy DROP 0 packets, 0 bytes)",
                      "Chain FORWARD (policy ACCEPT 0 packets, 0 bytes)",
                      "Chain OUTPUT (policy ACCEPT 4 packets, 336 bytes)"]
    v4.passed(nf.NF_INET_LOCAL_IN, 300000)
    assert iptables.run(view, ["-L", "INPUT", "-v"])[0] == "Chain INPUT (policy DROP 1 packets, 300K bytes)"
    assert iptables.run(view, ["-L", "INPUT", "-v", "-x"])[0] == "Chain INPUT (policy DROP 1 packets, 300000 bytes)"


def test_host_bits_masks_and_case_are_taken_as_ip6tables_takes_them():
    """Linux 6.18: -s 2001:DB8:0:0::5/64 listed 2001:db8::/64, -s 2001:db8::1/ff00:: 2000::/8,
    -s fe80::1%lo fe80::1, -s ::1/010 ::/8, -p ICMPv6 58, -p tcp --dport 0x10 dpt:16."""
    view = View()
    for words in (["-s", "2001:DB8:0:0::5/64"], ["-s", "2001:db8::1/ff00::"], ["-s", "fe80::1%lo"], ["-s", "::1/010"],
                  ["-p", "ICMPv6"], ["-p", "tcp", "--dport", "0x10"]):
        ip6tables.run(view, ["-A", "INPUT", *words, "-j", "DROP"])
    assert [line.split()[3:] for line in ip6tables.run(view, ["-nL", "INPUT"])[2:]] == [
        ["2001:db8::/64", "::/0"], ["2000::/8", "::/0"], ["fe80::1", "::/0"], ["::/8", "::/0"], ["::/0", "::/0"],
        ["::/0", "::/0", "tcp", "dpt:16"]]


def test_addresses_numbers_and_ports_are_read_as_libxtables_reads_them():
    """Linux 6.18: -s 10.1 listed 10.1.0.0, 010.0.0.1 8.0.0.1, 10.0.0.1/255.255.255.128
    10.0.0.0/25, foo/0 anywhere; -p 0x29 41; the tcp match's --dport 010 8, the udp match's
    70000 4464 (16 bits of a decimal service) and http 80."""
    view = View()
    for words in (["-s", "10.1"], ["-s", "010.0.0.1"], ["-s", "10.0.0.1/255.255.255.128"], ["-s", "foo/0"],
                  ["-p", "0x29"], ["-p", "tcp", "--dport", "010"], ["-p", "udp", "--dport", "70000"],
                  ["-p", "udp", "--dport", "http"]):
        iptables.run(view, ["-A", "INPUT", *words, "-j", "DROP"])
    assert [line.split()[1:] for line in iptables.run(view, ["-nL", "INPUT"])[2:]] == [
        ["0", "--", "10.1.0.0", "0.0.0.0/0"], ["0", "--", "8.0.0.1", "0.0.0.0/0"],
        ["0", "--", "10.0.0.0/25", "0.0.0.0/0"], ["0", "--", "0.0.0.0/0", "0.0.0.0/0"],
        ["41", "--", "0.0.0.0/0", "0.0.0.0/0"], ["6", "--", "0.0.0.0/0", "0.0.0.0/0", "tcp", "dpt:8"],
        ["17", "--", "0.0.0.0/0", "0.0.0.0/0", "udp", "dpt:4464"],
        ["17", "--", "0.0.0.0/0", "0.0.0.0/0", "udp", "dpt:80"]]


@pytest.mark.parametrize("words, said, status", [
    (["-A", "INPUT", "-s", "10.0.0.1", "-j", "DROP"], "host/network `10.0.0.1' not found", 2),
    (["-A", "INPUT", "-s", "2001:db8::/129", "-j", "DROP"], "invalid mask `129' specified", 2),
    (["-A", "INPUT", "-p", "icmp", "--dport", "5", "-j", "DROP"], "unknown option \"--dport\"", 2),
    (["-A", "INPUT", "-p", "foo", "-j", "DROP"], "unknown protocol \"foo\" specified", 2),
    (["-A", "INPUT", "-p", "tcp", "--dport", "70000", "-j", "DROP"], "invalid port/service `70000' specified", 2),
    (["-A", "INPUT", "-p", "udp", "--dport", "0x10", "-j", "DROP"], "Port \"0x10\" does not resolve to anything.\n", 2),
    (["-A", "INPUT", "-p", "udp", "--dport", "1", "--dport", "2", "-j", "DROP"],
     "udp: option \"--destination-port\" can only be used once.\n", 2),
    (["-A", "INPUT", "-m", "tcp", "--dport", "1", "-j", "DROP"], "TCP match requires '-p tcp'", 2),
    (["-A", "INPUT", "-j", "FOO"], "Chain 'FOO' does not exist", 2),
    (["-A", "INPUT", "-s", "::1", "-s", "::2", "-j", "DROP"], "multiple -s flags not allowed", 2),
    (["-L", "-A", "INPUT"], "Cannot use -A with -L", 2),
    (["-I", "INPUT", "0", "-j", "DROP"], "Invalid rule number `0'", 2),
    (["-P", "INPUT"], "-P requires a chain and a policy", 2),
    (["-D", "INPUT", "1", "-j", "DROP"], "Illegal option `-j' with this command", 2),
    (["-A", "INPUT", "--line-numbers", "-j", "DROP"], "Illegal option `-0' with this command", 2),
    (["-L", "-n", "-n"], "multiple -n flags not allowed", 2),
    (["-nq", "-L"], "unknown option \"-nq\"", 2),
    ([], "no command specified", 2),
])
def test_a_bad_command_line_is_refused_in_ip6tables_words(words, said, status):
    with pytest.raises(IptablesError) as exc:
        ip6tables.parse(words)
    assert str(exc.value) == f"ip6tables v1.8.9 (pktpath): {said}\n{ip6tables.TRY}" and exc.value.status == status


@pytest.mark.parametrize("family", [iptables.IPV4, iptables.IPV6], ids=["iptables", "ip6tables"])
def test_what_the_host_refuses_is_said_as_the_program_says_it(family):
    """Linux 6.18: each family's program said these of the same commands, with its own name."""
    view, name = View(), family.name
    bad_rule = f"{name}: Bad rule (does a matching rule exist in that chain?)."

    def said(*words):
        try:
            iptables.run(view, list(words), family)
        except IptablesError as exc:
            return str(exc), exc.status
        return "", 0

    assert said("-D", "INPUT", "-s", "::1" if family is iptables.IPV6 else "127.0.0.1", "-j", "DROP") == (bad_rule, 1)
    assert said("-D", "INPUT", "9") == (f"{name}: Index of deletion too big.", 1)
    assert said("-I", "INPUT", "2", "-j", "DROP") == (f"{name}: Index of insertion too big.", 1)
    assert said("-A", "PREROUTING", "-j", "DROP") == (f"{name}: No chain/target/match by that name.", 1)
    assert said("-D", "PREROUTING", "-j", "DROP") == (bad_rule, 1)
    assert said("-P", "FOO", "DROP") == (f"{name}: Bad built-in chain name.", 1)
    assert said("-P", "INPUT", "FOO") == (f"{name}: Bad policy name. Run `dmesg' for more information.", 1)
    assert said("-L", "FOO") == (f"{name} v1.8.9 (pktpath): chain `FOO' in table `filter' is incompatible, "
                                 "use 'nft' tool.", 1)
    assert said("-t", "foo", "-L") == (f"{name} v1.8.9 (pktpath): table 'foo' does not exist\n"
                                       f"Perhaps {name} or your kernel needs to be upgraded.", 3)
    assert said(family.other, "-L") == (f"Try `{name} -h' or '{name} --help' for more information.", 2)


def test_an_extension_header_protocol_is_warned_about_as_never_matched_by_ip6tables_only():
    err = io.StringIO()
    ip6tables.run(View(), ["-A", "INPUT", "-p", "ipv6-frag", "-j", "DROP"], err=err)
    assert err.getvalue() == "Warning: never matched protocol: ipv6-frag. use extension match instead.\n"
    with pytest.raises(IptablesError):  # said even when the command is refused after
        ip6tables.parse(["-L", "-p", "44"], err=err)
    assert err.getvalue().endswith("Warning: never matched protocol: 44. use extension match instead.\n")
    iptables.run(View(), ["-A", "INPUT", "-p", "ipv6-frag", "-j", "DROP"], err=(v4 := io.StringIO()))
    assert v4.getvalue() == ""


def test_verbose_commands_say_what_they_did_as_iptables_does():
    view = View()
    assert iptables.run(view, ["-A", "INPUT", "-s", "10.0.0.7/8", "-d", "10.9.9.9", "-p", "tcp", "--dport", "22",
                               "-j", "ACCEPT", "-v"]) == [
        "ACCEPT  tcp opt -- in * out *  10.0.0.0/8  -> 10.9.9.9   tcp dpt:22"]
    assert ip6tables.run(view, ["-I", "INPUT", "-p", "icmpv6", "-j", "DROP", "-v"]) == [
        "DROP  ipv6-icmp opt -- in * out *  ::/0  -> ::/0  "]
    assert iptables.run(view, ["-F", "-v", "-t", "raw"]) == ["Flushing chain `PREROUTING'", "Flushing chain `OUTPUT'"]
    listed = iptables.run(view, ["-L", "INPUT", "-Z", "-v"])
    assert listed[0] == "Chain INPUT (policy ACCEPT 0 packets, 0 bytes)" and listed[-1] == "Zeroing chain `INPUT'"


# -- the topology's rules ---------------------------------------------------------------------------

def iface(**kw) -> dict:
    return {"name": "eth0", "mac": "02:00:00:00:00:01", "addr": "10.0.0.1/24", **kw}


def test_topology_rules_go_to_their_familys_table_by_address_protocol_or_family():
    topo = parse({"host": [{"name": "A", "interface": [iface()], "rule": [
        {"hook": "LOCAL_IN", "src": "10.0.0.0/24", "target": "DROP"},
        {"hook": "LOCAL_IN", "src": "2001:db8::/64", "proto": "udp", "dport": 53, "target": "DROP"},
        {"hook": "LOCAL_OUT", "proto": "icmpv6", "target": "ACCEPT"},
        {"hook": "FORWARD", "family": "ip6", "target": "DROP"},
        {"hook": "FORWARD", "target": "DROP"}]}]})
    a = topo.host("A")
    assert [r.hook for r in a.rules] == ["LOCAL_IN", "FORWARD"]
    assert nf.rules_from_topology(a.rules6, NfRule6) == [
        NfRule6(LOCAL_IN, NF_DROP, net("2001:db8::/64"), (0, 0), 17, 0, 53), NfRule6(LOCAL_OUT, NF_ACCEPT, protocol=58),
        NfRule6(FORWARD, NF_DROP)]
    assert len(nf.rules_from_topology(a.rules)) == 2


def test_a_topology_rule_of_two_families_is_refused():
    with pytest.raises(TopologyError, match="src and dst are of one family"):
        parse({"host": [{"name": "A", "interface": [iface()], "rule": [
            {"hook": "LOCAL_IN", "src": "10.0.0.0/24", "dst": "2001:db8::/64", "target": "DROP"}]}]})
    with pytest.raises(TopologyError, match="family 'inet'"):
        parse({"host": [{"name": "A", "interface": [iface()], "rule": [
            {"hook": "LOCAL_IN", "family": "inet", "target": "DROP"}]}]})
