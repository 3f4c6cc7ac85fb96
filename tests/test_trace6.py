"""IPv6 flows for tracing: the flow key of an IPv6 packet (extension headers followed to the
transport header, a later fragment without ports), the flow an AF_INET6 socket's send has (a
v4-mapped destination is IPv4's), and packet filters that match IPv6 flows by address, protocol,
port and pcap-filter expression as pwru and tcpdump do."""

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop
from scapy.layers.l2 import Ether

from pktpath import skbuff as s
from pktpath import taps
from pktpath.flow import Flowi6
from pktpath.pb import skbuff_pb2 as pb, trace_pb2
from pktpath.trace import FlowKey, PacketMatch, Sampler, frame_flow, ip_flow, parse_filter, socket_flow
from pktpath.wire.addr import ip6_from_str as ip6, ip_from_str as ip, ipv6_addr_set_v4mapped

A6, B6 = ip6("2001:db8::1"), ip6("2001:db8::2")
UDP6 = FlowKey(A6, B6, 17, 40000, 7001, family=6)
TCP6 = FlowKey(A6, B6, 6, 40001, 80, family=6)
PING6 = FlowKey(A6, B6, 58, family=6)
UDP4 = FlowKey(ip("10.0.0.1"), ip("10.0.0.2"), 17, 40000, 7001)


def test_an_ipv6_flow_prints_its_addresses_in_brackets_before_the_ports():
    assert str(UDP6) == "[2001:db8::1]:40000 > [2001:db8::2]:7001 udp"
    assert str(PING6) == "2001:db8::1 > 2001:db8::2 icmp6"
    assert str(FlowKey(A6, B6, 17, family=6)) == "2001:db8::1 > 2001:db8::2 udp"  # a later fragment: no ports
    assert str(FlowKey(1, 1, 6, 5, 6, family=6)) == "[::1]:5 > [::1]:6 tcp"  # ::1 is not 0.0.0.1


def test_the_flow_of_an_ipv6_packet_follows_its_extension_headers_to_the_ports():
    base = IPv6(src="2001:db8::1", dst="2001:db8::2")
    assert ip_flow(bytes(base / UDP(sport=40000, dport=7001))) == UDP6
    assert ip_flow(bytes(base / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt() / TCP(sport=40001, dport=80))) == TCP6
    first = bytes(base / IPv6ExtHdrFragment(m=1, id=9) / UDP(sport=40000, dport=7001) / bytes(1000))
    later = bytes(base / IPv6ExtHdrFragment(offset=185, nh=17, id=9) / bytes(100))
    assert ip_flow(first) == UDP6
    assert ip_flow(later) == FlowKey(A6, B6, 17, family=6)  # the fragment header names UDP; no ports here
    assert ip_flow(bytes(base / ICMPv6EchoRequest(id=3, seq=1))) == PING6
    assert ip_flow(bytes(base / UDP())[:42]) == FlowKey(A6, B6, 17, family=6)  # cut short before the ports


def test_the_flow_of_a_frame_from_outside_is_ipv4s_or_ipv6s_by_its_ethertype():
    assert frame_flow(bytes(Ether() / IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(sport=40000, dport=7001))) \
        == UDP6
    assert frame_flow(bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=40000, dport=7001))) == UDP4
    assert frame_flow(bytes(Ether(type=0x86DD) / IP())) is None  # the version contradicts the EtherType
    assert frame_flow(bytes(Ether(type=0x0800)) + bytes([0x41]) + bytes(40)) is None  # IPv4 with ihl 1


def test_an_af_inet6_sockets_flow_is_ipv6s_unless_its_destination_is_v4_mapped():
    assert socket_flow(A6, B6, 17, 40000, 7001, ipv6=True) == UDP6
    mapped = socket_flow(0, ipv6_addr_set_v4mapped(ip("10.0.0.2")), 17, 40000, 7001, ipv6=True)
    assert mapped == FlowKey(0, ip("10.0.0.2"), 17, 40000, 7001) and mapped.family == 4
    assert socket_flow(ip("10.0.0.1"), ip("10.0.0.2"), 17, 40000, 7001) == UDP4


@pytest.mark.parametrize("fields, udp6, tcp6, udp4", [
    ({"addr": "2001:db8::2"}, True, True, False),
    ({"addr": "2001:0db8:0::2"}, True, True, False),  # any spelling of the address
    ({"saddr": "2001:db8::1", "dport": 7001}, True, False, False),
    ({"daddr": "2001:db8::1"}, False, False, False),
    ({"addr": "10.0.0.2"}, False, False, True),
    ({"protocol": "udp", "port": 7001}, True, False, True),
])
def test_address_fields_match_the_flows_of_their_own_ip_version(fields, udp6, tcp6, udp4):
    match = PacketMatch(trace_pb2.PacketFilter(**fields))
    assert (match.matches(UDP6), match.matches(TCP6), match.matches(UDP4)) == (udp6, tcp6, udp4)


def test_an_icmp6_protocol_field_matches_ping6_and_a_bad_address_is_a_clear_error():
    assert PacketMatch(trace_pb2.PacketFilter(protocol="icmp6")).matches(PING6)
    assert not PacketMatch(trace_pb2.PacketFilter(protocol="icmp")).matches(PING6)
    with pytest.raises(ValueError, match="not an IPv4 or IPv6 address"):
        PacketMatch(trace_pb2.PacketFilter(addr="2001:db8::g"))


@pytest.mark.parametrize("expr, udp6, tcp6, ping6, udp4", [
    ("ip6 and udp", True, False, False, False),
    ("host 2001:db8::2", True, True, True, False),
    ("ip6 src 2001:db8::1 and tcp port 80", False, True, False, False),
    ("icmp6", False, False, True, False),
    ("net 2001:db8::/64 and not icmp6", True, True, False, False),
    ("udp port 7001", True, False, False, True),
    ("ip", False, False, False, True),
])
def test_pcap_filter_expressions_match_the_ipv6_packet_a_flow_makes(expr, udp6, tcp6, ping6, udp4):
    match = PacketMatch(parse_filter(expr.split()))
    assert [match.matches(f) for f in (UDP6, TCP6, PING6, UDP4)] == [udp6, tcp6, ping6, udp4]


def test_a_filter_traces_every_packet_of_an_ipv6_flow_and_no_other():
    sample = Sampler(0.0, 0)
    sample.set(trace_pb2.Sampling(rate=0.0, flows=[parse_filter(["ip6", "and", "udp"])]))
    assert all(sample(UDP6) for _ in range(20))
    assert not any(sample(f) for f in (TCP6, UDP4) for _ in range(20))


def test_at_l3s_ipv6_entries_on_the_way_down_the_tap_is_outgoing_and_tagged_ipv6():
    segment = bytes(TCP(sport=40001, dport=80))
    skb = s.alloc_skb(128)
    s.skb_reserve(skb, 100)
    s.skb_put_data(skb, segment)
    s.skb_reset_transport_header(skb)
    skb.cb = Flowi6(B6, 80, saddr=A6).pack()
    data, linktype, upper = taps.at_boundary(skb, pb.LAYER_L3, "inet6_csk_xmit")
    assert (bytes(data), linktype) == (segment, taps.LINKTYPE_WIRESHARK_UPPER_PDU)
    assert upper == {"upper": "tcp", "saddr": A6, "daddr": B6, "family": 6}
    skb.cb = b""  # L4's datagram: its flow travels beside it, so no addresses yet
    assert taps.at_boundary(skb, pb.LAYER_L3, "ip6_make_skb")[2] == {"upper": "data", "saddr": 0, "daddr": 0,
                                                                     "family": 6}
    assert {"ip6_make_skb", "inet6_csk_xmit"} <= taps.TX_ENTRIES
