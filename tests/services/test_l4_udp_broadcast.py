"""Which datagrams UDP treats as broadcasts: __udp4_lib_rcv goes by the route (RTCF_BROADCAST |
RTCF_MULTICAST), not by the frame. Linux 6.18, a datagram to a closed port: to the subnet or
limited broadcast, IgnoredMulti and no ICMP; to our own address in a link-layer broadcast
frame, NoPorts and NO_SOCKET (icmp_send then refuses: not PACKET_HOST)."""

from pktpath.pb import skbuff_pb2 as pb
from pktpath.wire.addr import ip_from_str as ip

from test_l4_datagram import A, BCAST, L4, PEER, rx, udp


def test_our_address_in_a_link_layer_broadcast_is_unicast_to_udp():
    l4 = L4()
    assert l4.dg.udp_rcv([rx(PEER, A, udp(PEER, A), pkt_type=pb.PACKET_BROADCAST)]) == (0, 1)
    assert l4.mib.get("Udp", "NoPorts") == 1 and l4.mib.get("Udp", "IgnoredMulti") == 0
    assert l4.drops(pb.SKB_DROP_REASON_NO_SOCKET) == 1
    assert [(type_, code) for _, type_, code in l4.icmp] == [(3, 3)]  # asked; L3 sends nothing for it


def test_a_subnet_broadcast_in_a_unicast_frame_is_still_a_broadcast():
    l4 = L4()
    assert l4.dg.udp_rcv([rx(PEER, ip("10.0.0.255"), udp(PEER, ip("10.0.0.255")))]) == (0, 1)
    assert l4.mib.get("Udp", "IgnoredMulti") == 1 and l4.mib.get("Udp", "NoPorts") == 0 and l4.icmp == []


def test_a_limited_broadcast_to_a_closed_port_sends_no_icmp():
    l4 = L4()
    assert l4.dg.udp_rcv([rx(PEER, BCAST, udp(PEER, BCAST), pkt_type=pb.PACKET_BROADCAST)]) == (0, 1)
    assert l4.mib.get("Udp", "IgnoredMulti") == 1 and l4.icmp == []
