"""The orchestrator and its dashboard with IPv6 packets, without running layers: a journey's
flow from an IPv6 header snapshot, queries and watches that find it by IPv6 address and
pcap-filter expression, a dropped IPv6 datagram with its reason, and the journey view's
decoded headers (struct ipv6hdr, the fragment and other extension headers, ICMPv6)."""

import pytest

from pktpath.config import Addresses
from pktpath.pb import orchestrator_pb2, skbuff_pb2 as pb, trace_pb2
from pktpath.services.orchestrator.dashboard import Dashboard, decode_head, journey_json, topology_json
from pktpath.services.orchestrator.journey import Journey, flow_of
from pktpath.services.orchestrator.store import PacketStore, Query, Watch, to_packet
from pktpath.topology import load
from pktpath.wire import EthHdr, UdpHdr
from pktpath.wire.addr import ip6_from_str as ip6
from pktpath.wire.icmpv6 import Icmp6Hdr
from pktpath.wire.ipv6 import IP6_MF, NEXTHDR_FRAGMENT, NEXTHDR_UDP, IPPROTO_ICMPV6, Ipv6FragHdr, Ipv6Hdr

A6, B6 = ip6("2001:db8::1"), ip6("2001:db8::2")
MAC_A, MAC_B = bytes.fromhex("02000000000a"), bytes.fromhex("02000000000b")
PAYLOAD = b"hello"
UDP = UdpHdr(40000, 7001).to_bytes(PAYLOAD, A6, B6, ipv6=True) + PAYLOAD
IP6_UDP = Ipv6Hdr(A6, B6, NEXTHDR_UDP).to_bytes(len(UDP)) + UDP
FRAME = EthHdr(MAC_B, MAC_A, 0x86DD).to_bytes() + IP6_UDP


def ev(kind, layer, host, func, t, nbytes=0, **kw):
    return pb.SkbEvent(kind=kind, layer=layer, host=host, func=func, ts_ns=t, bytes=nbytes, **kw)


# A UDP datagram over IPv6 from A to B, as its layers record it; B has no socket on the port.
STORY = [
    ev(pb.COPY, pb.LAYER_SOCKET, "A", "skb_copy_from_iter", 1000, 5, copy_from="user", copy_to="skb"),
    ev(pb.ENTER, pb.LAYER_L4, "A", "udpv6_sendmsg", 2000, 5, head=PAYLOAD, head_type="data"),
    ev(pb.EXIT, pb.LAYER_L4, "A", "udp_v6_send_skb", 3000, 13, head=UDP, head_type="l4"),
    ev(pb.ENTER, pb.LAYER_L3, "A", "ip6_make_skb", 4000, 13, head=UDP, head_type="l4"),
    ev(pb.EXIT, pb.LAYER_L3, "A", "ip6_finish_output2", 5000, 53, head=IP6_UDP, head_type="ip"),
    ev(pb.DMA, pb.LAYER_NIC, "A", "ndo_start_xmit", 6000, 67),
    ev(pb.DMA, pb.LAYER_NIC, "B", "napi_gro_receive", 7000, 67),
    ev(pb.ENTER, pb.LAYER_SOFTIRQ, "B", "net_rx_action", 8000, 67, head=FRAME, head_type="eth"),
    ev(pb.ENTER, pb.LAYER_L3, "B", "ipv6_rcv", 9000, 53, head=IP6_UDP, head_type="ip"),
    ev(pb.ENTER, pb.LAYER_L4, "B", "udpv6_rcv", 10000, 13, head=UDP, head_type="l4"),
    ev(pb.DROP, pb.LAYER_L4, "B", "__udp6_lib_rcv", 11000, 13, reason=pb.SKB_DROP_REASON_NO_SOCKET),
]


def journey(events=STORY) -> Journey:
    j = Journey("A", 0x20)
    j.merge(pb.SkBuff(id=0x20, origin_host="A", sampled=True, events=events))
    return j


def test_an_ipv6_journey_takes_its_flow_from_the_first_ipv6_header_it_shows():
    j = journey()
    assert str(j.flow) == "[2001:db8::1]:40000 > [2001:db8::2]:7001 udp" and j.flow.family == 6
    assert flow_of(STORY[7:8]) == j.flow  # from B's frame too (EtherType 0x86dd)
    p = to_packet(j, "00")
    assert (p.flow.saddr, p.flow.daddr, p.flow.protocol, p.flow.sport, p.flow.dport) == (
        "2001:db8::1", "2001:db8::2", "udp", 40000, 7001)
    assert (p.outcome, p.drop_reason) == ("dropped", "SKB_DROP_REASON_NO_SOCKET")


def test_a_later_ipv6_fragment_has_the_datagrams_protocol_and_no_ports():
    frag = Ipv6Hdr(A6, B6, NEXTHDR_FRAGMENT).to_bytes(8 + 16) + Ipv6FragHdr(NEXTHDR_UDP, 1232, 7).to_bytes() + \
        bytes(16)
    assert str(flow_of([ev(pb.ENTER, pb.LAYER_L3, "B", "ipv6_rcv", 1, head=frag, head_type="ip")])) == \
        "2001:db8::1 > 2001:db8::2 udp"


@pytest.mark.parametrize("query, found", [
    ({"filter": trace_pb2.PacketFilter(addr="2001:db8::2")}, True),
    ({"filter": trace_pb2.PacketFilter(addr="10.0.0.2")}, False),
    ({"filter": trace_pb2.PacketFilter(expression="ip6 and udp")}, True),
    ({"filter": trace_pb2.PacketFilter(expression="host 2001:db8::2 and port 7001")}, True),
    ({"filter": trace_pb2.PacketFilter(expression="ip")}, False),
    ({"drop_reason": "SKB_DROP_REASON_NO_SOCKET", "filter": trace_pb2.PacketFilter(expression="ip6")}, True),
    ({"host": "B", "layer": "l4", "filter": trace_pb2.PacketFilter(daddr="2001:db8::2", dport=7001)}, True),
])
def test_queries_find_an_ipv6_packet_by_its_addresses_expression_and_drop(query, found):
    store = PacketStore()
    store.add(pb.SkBuff(id=0x20, origin_host="A", sampled=True, events=STORY))
    assert [j.id for j in store.query(Query(orchestrator_pb2.PacketQuery(**query)))] == ([0x20] if found else [])


def test_a_drops_watch_prints_an_ipv6_drop_with_its_reason_and_flow():
    watch = Watch(Query(orchestrator_pb2.PacketQuery(filter=trace_pb2.PacketFilter(expression="ip6"))))
    watch.flush(journey())
    lines = [watch.lines.get_nowait() for _ in range(watch.lines.qsize())]
    (drop,) = [line for line in lines if line.kind == "DROP"]
    assert (drop.host, drop.layer, drop.func, drop.detail) == ("B", "l4", "__udp6_lib_rcv", "SKB_DROP_REASON_NO_SOCKET")
    assert drop.tuple == "[2001:db8::1]:40000 > [2001:db8::2]:7001 udp"


def test_the_journey_view_shows_an_ipv6_datagrams_layers_and_headers():
    d = journey_json(journey())
    assert d["flow"] == "[2001:db8::1]:40000 > [2001:db8::2]:7001 udp" and d["protocol"] == "udp"
    visits = {(v["host"], v["layer"]): v for v in d["visits"]}
    assert visits["A", "l3"]["func"] == "ip6_make_skb" and visits["A", "l3"]["exit_func"] == "ip6_finish_output2"
    assert [[x["proto"] for x in h["headers"]] for h in visits["A", "l3"]["heads"]] == [
        ["udp", "data"], ["ipv6", "udp", "data"]]
    eth, ip, udp, _ = visits["B", "softirq"]["heads"][0]["headers"]
    assert dict(eth["fields"])["h_proto"] == "0x86dd (ETH_P_IPV6)"
    assert (ip["offset"], ip["len"], udp["offset"]) == (14, 40, 54)
    f = dict(ip["fields"])
    assert (f["version"], f["saddr"], f["daddr"], f["nexthdr"], f["payload_len"], f["hop_limit"]) == (
        "6", "2001:db8::1", "2001:db8::2", "17 (udp)", "13", "64")
    assert ip["summary"] == "IPv6 2001:db8::1 > 2001:db8::2 udp, hop_limit 64, payload_len 13"
    assert visits["B", "l4"]["dropped"] == "SKB_DROP_REASON_NO_SOCKET"


def test_fragment_headers_and_icmpv6_decode_in_the_kernels_field_names():
    body = UDP + bytes(1500)
    first = Ipv6Hdr(A6, B6, NEXTHDR_FRAGMENT).to_bytes(8 + 1232) + \
        Ipv6FragHdr(NEXTHDR_UDP, IP6_MF, 0x1234).to_bytes() + body[:1232]
    ip, frag, udp, _ = decode_head(first[:96], "ip")
    assert (frag["proto"], frag["offset"], frag["len"], udp["proto"], udp["offset"]) == ("ipv6-frag", 40, 8, "udp", 48)
    assert frag["summary"] == "IPv6 fragment offset 0 MF, id 0x00001234" and ip["summary"].split()[4] == "udp,"
    later = Ipv6Hdr(A6, B6, NEXTHDR_FRAGMENT).to_bytes(8 + 16) + Ipv6FragHdr(NEXTHDR_UDP, 1232, 0x1234).to_bytes() + \
        body[1232:1248]
    assert [h["proto"] for h in decode_head(later, "ip")] == ["ipv6", "ipv6-frag", "data"]  # no UDP header here
    echo = Icmp6Hdr.echo(0x99, 3).to_bytes(A6, B6, b"ping") + b"ping"
    ip, icmp, _ = decode_head(Ipv6Hdr(A6, B6, IPPROTO_ICMPV6).to_bytes(len(echo)) + echo, "ip")
    assert icmp["summary"] == "ICMPv6 echo request, id 153, seq 3" and dict(icmp["fields"])["icmp6_identifier"] == "153"
    ns = Icmp6Hdr(135).to_bytes(0, 0, B6.to_bytes(16, "big")) + B6.to_bytes(16, "big")
    (icmp, *_) = decode_head(ns, "l4", IPPROTO_ICMPV6)
    assert icmp["summary"] == "ICMPv6 neighbor solicitation, who has 2001:db8::2" and icmp["len"] == 24
    cut = decode_head(Ipv6Hdr(A6, B6, 0).to_bytes(48) + b"\x11\x05" + bytes(6), "ip")  # 48 bytes of options
    assert [(h["proto"], h["offset"], h["len"]) for h in cut] == [("ipv6", 0, 40), ("ipv6-hopopts", 40, 8)]
    assert cut[1]["summary"] == "IPv6 hop-by-hop options header, cut short by the snapshot"
    assert [h["proto"] for h in decode_head(b"\x60" + bytes(30), "ip")] == ["error"]


def test_the_topology_lists_each_interfaces_ipv6_addresses_and_the_api_filters_by_them():
    topo = load("default")
    interface = topology_json(topo, Addresses(topo, 50000))["hosts"][1]["interfaces"][0]
    assert (interface["addr"], interface["addr6"]) == ("10.0.0.2/24", ["2001:db8::2/64"])
    store = PacketStore()
    store.add(pb.SkBuff(id=0x20, origin_host="A", sampled=True, events=STORY))
    routes = Dashboard(topo, Addresses(topo, 50000), store, lambda: {}).routes()
    status, _, body = routes["/api/packets"]({"addr": "2001%3Adb8%3A%3A2", "protocol": "udp"})
    assert status == 200 and b'"flow":"[2001:db8::1]:40000 > [2001:db8::2]:7001 udp"' in body
    assert routes["/api/packets"]({"addr": "2001:db8::zz"})[0] == 400


def test_a_datagram_sent_as_fragments_takes_the_first_fragments_flow_whichever_comes_first():
    def fragment(id_, frag_off, head):
        packet = Ipv6Hdr(A6, B6, NEXTHDR_FRAGMENT).to_bytes(8 + len(head)) + \
            Ipv6FragHdr(NEXTHDR_UDP, frag_off, 7).to_bytes() + head
        return pb.SkBuff(id=id_, origin_host="A", copy_of=0x30, sampled=True, events=[
            ev(pb.EXIT, pb.LAYER_L3, "A", "ip6_finish_output2", id_, len(packet), head=packet, head_type="ip")])

    store = PacketStore()
    store.add(fragment(0x32, 1448, bytes(16)))  # the later fragment's records come in first
    store.add(pb.SkBuff(id=0x30, origin_host="A", sampled=True, events=STORY[:4]))  # the datagram, no IP header
    store.add(fragment(0x31, IP6_MF, UDP))
    (whole,) = store.query(Query(orchestrator_pb2.PacketQuery(id=0x30)))
    assert str(whole.flow) == "[2001:db8::1]:40000 > [2001:db8::2]:7001 udp"
    assert [str(j.flow) for j in store.query(Query(orchestrator_pb2.PacketQuery(id=0x32)))] == [
        "2001:db8::1 > 2001:db8::2 udp"]  # a later fragment keeps its own
