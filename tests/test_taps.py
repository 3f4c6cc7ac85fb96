"""Layer taps: a packet is captured from its outermost header still in the buffer, the
hook is set only while a capture is open, and pcapng's blocks are ones scapy reads."""

import io

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import PcapNgReader

from pktpath import skbuff as s
from pktpath import taps
from pktpath.tools.capture import PcapngWriter, describe
from pktpath.flow import Flowi4
from pktpath.pb import skbuff_pb2 as pb
from pktpath.pb import trace_pb2
from pktpath.wire.addr import ip_from_str

FRAME = bytes(Ether(src="02:00:00:00:00:0a", dst="02:00:00:00:00:0b") / IP(src="10.0.0.1", dst="10.0.0.2")
              / UDP(sport=40000, dport=7000) / b"hello")


def received() -> s.SkBuff:
    skb = s.alloc_skb(64 + len(FRAME))
    s.skb_reserve(skb, 64)
    s.skb_put_data(skb, FRAME)
    return skb


def test_a_received_packet_above_l2_is_still_its_whole_frame():
    skb = received()
    assert taps.at_boundary(skb, pb.LAYER_SOFTIRQ)[:2] == (FRAME, taps.LINKTYPE_ETHERNET)  # nothing parsed yet
    s.skb_reset_mac_header(skb)
    s.skb_pull(skb, 14)
    s.skb_reset_network_header(skb)
    s.skb_pull(skb, 20)
    s.skb_reset_transport_header(skb)
    data, linktype, upper = taps.at_boundary(skb, pb.LAYER_L4)
    assert (bytes(data), linktype, upper) == (FRAME, taps.LINKTYPE_ETHERNET, {})


def test_on_the_way_down_above_l3_it_is_a_segment_tagged_with_the_flow():
    segment = bytes(UDP(sport=40000, dport=7000) / b"hi")
    skb = s.alloc_skb(128)
    s.skb_reserve(skb, 100)
    s.skb_put_data(skb, segment)
    s.skb_reset_transport_header(skb)
    skb.cb = Flowi4(ip_from_str("10.0.0.2"), ip_from_str("10.0.0.1"), 7000, 40000, 17).pack()
    data, linktype, upper = taps.at_boundary(skb, pb.LAYER_L3)
    assert (bytes(data), linktype) == (segment, taps.LINKTYPE_WIRESHARK_UPPER_PDU)
    assert upper == {"upper": "udp", "saddr": ip_from_str("10.0.0.1"), "daddr": ip_from_str("10.0.0.2")}
    s.skb_push(skb, 20)
    s.skb_reset_network_header(skb)
    assert taps.at_boundary(skb, pb.LAYER_L2)[1] == taps.LINKTYPE_IPV4


def test_the_enter_hook_is_set_only_while_a_capture_is_open():
    assert s._enter_hook is None
    cap = taps.open_layer_capture()
    try:
        skb = received()
        skb.record(s.ENTER, pb.LAYER_SOFTIRQ, "A", "net_rx_action")
        skb.record(s.ENTER, pb.LAYER_L2, "A", "neigh_output")
        (rx, tx) = cap.take(0)
        assert (rx.outgoing, rx.func, rx.data) == (False, "net_rx_action", FRAME)
        assert (tx.outgoing, tx.func) == (True, "neigh_output")
    finally:
        taps.close_layer_capture(cap)
    assert s._enter_hook is None


def test_pcapng_with_two_link_types_reads_back_in_scapy():
    out = io.BytesIO()
    w = PcapngWriter(out, "B:l3")
    w.write(trace_pb2.CapturedFrame(ts_ns=1_700_000_000_123_456_789, len=len(FRAME), data=FRAME, linktype=1,
                                    func="ip_rcv"))
    ip = FRAME[14:]
    w.write(trace_pb2.CapturedFrame(ts_ns=1_700_000_000_200_000_000, len=len(ip), data=ip, linktype=228,
                                    outgoing=True, func="neigh_output"))
    packets = list(PcapNgReader(io.BytesIO(out.getvalue())))
    assert len(packets) == 2 and packets[0].haslayer(Ether) and packets[0][UDP].dport == 7000
    assert bytes(packets[1]) == ip  # the second interface's link type: raw IPv4
    assert abs(float(packets[0].time) - 1_700_000_000.123456789) < 1e-6  # nanosecond resolution
    assert describe(trace_pb2.CapturedFrame(data=ip, len=len(ip), linktype=228)).startswith(
        "IP 10.0.0.1.40000 > 10.0.0.2.7000: UDP, length 5")


def test_a_pcap_filter_chooses_a_layers_packets_above_ip_by_their_flow():
    """A layer tap's PDU above IP has no IP header yet: the filter reads the flow's addresses
    and protocol, as the IPv4 packet it becomes will carry them."""
    from types import SimpleNamespace

    import pytest

    from pktpath.taps import LINKTYPE_WIRESHARK_UPPER_PDU
    from pktpath.tools.capture import PcapFilter

    udp = SimpleNamespace(linktype=LINKTYPE_WIRESHARK_UPPER_PDU, upper="udp", saddr="10.0.0.1", daddr="10.0.0.2",
                          data=bytes.fromhex("9c401b580010" + "0000") + b"x" * 8)  # 40000 > 7000
    unsourced = SimpleNamespace(**{**vars(udp), "saddr": ""})  # no source chosen yet
    assert PcapFilter("udp dst port 7000 and dst host 10.0.0.2").match(udp)
    assert PcapFilter("src 10.0.0.1 and udp").match(udp) and not PcapFilter("src 10.0.0.1").match(unsourced)
    assert not PcapFilter("tcp or icmp").match(udp) and not PcapFilter("udp port 7001").match(udp)
    assert PcapFilter("").match(udp)
    with pytest.raises(ValueError, match="syntax error"):
        PcapFilter("host and")
