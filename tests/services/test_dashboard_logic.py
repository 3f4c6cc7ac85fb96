"""The dashboard's JSON without running layers or a browser: a journey from hand-made records
as waterfall rows with their events and decoded headers, latency histograms as quantiles,
COPY/CLONE/DMA counters by kind, the topology, queries, and the HTTP routes over a store."""

import json

import pytest

from pktpath.config import Addresses
from pktpath.pb import skbuff_pb2 as pb
from pktpath.services.orchestrator.dashboard import (BadRequest, Dashboard, counters_json, decode_head, hexdump,
                                                     journey_json, latency_summary, moves_summary, packet_query,
                                                     quantile)
from pktpath.services.orchestrator.journey import Journey
from pktpath.services.orchestrator.store import PacketStore
from pktpath.topology import load
from pktpath.wire import ArpHdr, EthHdr, IcmpHdr, IpHdr, TcpHdr, UdpHdr
from pktpath.wire.addr import ip_from_str as ip
from pktpath.wire.arp import ARPOP_REQUEST
from pktpath.wire.ipv4 import IP_DF, IP_MF, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP
from pktpath.wire.tcp import TCPHDR_ACK, TCPHDR_SYN, TcpOptMss, TcpOptSackPerm, encode_options

A, B = ip("10.0.0.1"), ip("10.0.0.2")
MAC_A, MAC_B = bytes.fromhex("02000000000a"), bytes.fromhex("02000000000b")
PAYLOAD = b"hello"
UDP = UdpHdr(40000, 7001).to_bytes(PAYLOAD, A, B) + PAYLOAD
IP_UDP = IpHdr(A, B, IPPROTO_UDP, id=7, frag_off=IP_DF).to_bytes(len(UDP)) + UDP
FRAME = EthHdr(MAC_B, MAC_A, 0x0800).to_bytes() + IP_UDP


def ev(kind, layer, host, func, t, nbytes=0, **kw):
    return pb.SkbEvent(kind=kind, layer=layer, host=host, func=func, ts_ns=t, bytes=nbytes, **kw)


# A UDP datagram A -> B as its layers record it (times in ns), with a drop variant below.
STORY = [
    ev(pb.COPY, pb.LAYER_SOCKET, "A", "skb_copy_from_iter", 1000, 5, copy_from="user", copy_to="skb"),
    ev(pb.ENTER, pb.LAYER_L4, "A", "udp_sendmsg", 2000, 5, head=PAYLOAD, head_type="data"),
    ev(pb.EXIT, pb.LAYER_L4, "A", "udp_send_skb", 3500, 13, head=UDP, head_type="l4"),
    ev(pb.ENTER, pb.LAYER_L3, "A", "ip_queue_xmit", 4000, 13, head=UDP, head_type="l4"),
    ev(pb.EXIT, pb.LAYER_L3, "A", "ip_finish_output2", 5000, 33, head=IP_UDP, head_type="ip"),
    ev(pb.DMA, pb.LAYER_NIC, "A", "ndo_start_xmit", 6000, 60),
    ev(pb.DMA, pb.LAYER_NIC, "B", "napi_gro_receive", 7000, 60),
    ev(pb.ENTER, pb.LAYER_SOFTIRQ, "B", "net_rx_action", 8000, 60, head=FRAME, head_type="eth"),
    ev(pb.EXIT, pb.LAYER_SOFTIRQ, "B", "netif_receive_skb_list", 9000, 60, head=FRAME, head_type="eth"),
    ev(pb.ENTER, pb.LAYER_SOCKET, "B", "sock_queue_rcv_skb", 10000, 5, head=PAYLOAD, head_type="data"),
    ev(pb.COPY, pb.LAYER_SOCKET, "B", "skb_copy_datagram_msg", 11000, 5, copy_from="skb", copy_to="user"),
    ev(pb.FREE, pb.LAYER_SOCKET, "B", "skb_consume_udp", 12000, 0),
]


def journey(events=STORY, id=0x10) -> Journey:
    j = Journey("A", id)
    j.merge(pb.SkBuff(id=id, origin_host="A", sampled=True, events=events))
    return j


# -- the journey ------------------------------------------------------------------------------

def test_a_journey_is_waterfall_rows_in_time_order_across_hosts():
    d = journey_json(journey())
    assert d["outcome"] == "delivered" and d["flow"] == "10.0.0.1:40000 > 10.0.0.2:7001 udp"
    assert d["id"] == "16" and d["id_hex"] == "0x10" and d["hosts"] == ["A", "B"] and d["duration_ns"] == 11000
    rows = [(v["host"], v["layer"], v["func"], v["exit_func"], v["start_ns"], v["duration_ns"]) for v in d["visits"]]
    assert rows == [
        ("A", "socket", "skb_copy_from_iter", "", 0, 0),
        ("A", "l4", "udp_sendmsg", "udp_send_skb", 1000, 1500),
        ("A", "l3", "ip_queue_xmit", "ip_finish_output2", 3000, 1000),
        ("A", "nic", "ndo_start_xmit", "", 5000, 0),
        ("B", "nic", "napi_gro_receive", "", 6000, 0),
        ("B", "softirq", "net_rx_action", "netif_receive_skb_list", 7000, 1000),
        ("B", "socket", "sock_queue_rcv_skb", "", 9000, 2000),
    ]
    assert d["moves"] == {"COPY": {"count": 2, "bytes": 10}, "CLONE": {"count": 0, "bytes": 0},
                          "DMA": {"count": 2, "bytes": 120}}


def test_each_visit_lists_its_events_relative_to_the_first():
    socket_b = journey_json(journey())["visits"][-1]
    assert socket_b["events"] == [
        {"kind": "COPY", "func": "skb_copy_datagram_msg", "t_ns": 10000, "bytes": 5, "copy_from": "skb",
         "copy_to": "user"},
        {"kind": "FREE", "func": "skb_consume_udp", "t_ns": 11000, "bytes": 0}]
    assert [h["at"] for h in socket_b["heads"]] == ["enter"]  # the ENTER that opened the visit keeps its snapshot


def test_each_visit_shows_the_headers_at_skb_data_on_entry_and_exit():
    visits = {(v["host"], v["layer"]): v for v in journey_json(journey())["visits"]}
    l3_a = visits["A", "l3"]
    assert [(h["at"], h["func"], h["len"], [x["proto"] for x in h["headers"]]) for h in l3_a["heads"]] == [
        ("enter", "ip_queue_xmit", 13, ["udp", "data"]),     # the UDP header pushed, no IP header yet
        ("exit", "ip_finish_output2", 33, ["ipv4", "udp", "data"])]
    rx = visits["B", "softirq"]["heads"][0]
    assert [x["proto"] for x in rx["headers"]] == ["ethernet", "ipv4", "udp", "data"]
    assert rx["hex"] == FRAME.hex() and rx["hexdump"][0].startswith("0000  02 00 00 00 00 0b 02 00")


def test_a_dropped_packet_marks_the_visit_that_dropped_it():
    drop = ev(pb.DROP, pb.LAYER_L4, "B", "__udp4_lib_rcv", 9500, 13, reason=pb.SKB_DROP_REASON_NO_SOCKET)
    d = journey_json(journey(STORY[:9] + [ev(pb.ENTER, pb.LAYER_L4, "B", "udp_rcv", 9200, 13, head=UDP,
                                             head_type="l4"), drop]))
    assert (d["outcome"], d["drop_reason"]) == ("dropped", "SKB_DROP_REASON_NO_SOCKET")
    (dropped,) = [v for v in d["visits"] if v["dropped"]]
    assert (dropped["host"], dropped["layer"], dropped["dropped"]) == ("B", "l4", "SKB_DROP_REASON_NO_SOCKET")
    assert dropped["events"][0]["reason"] == "SKB_DROP_REASON_NO_SOCKET"


# -- header snapshots ---------------------------------------------------------------------------

def fields(header: dict) -> dict:
    return dict(header["fields"])


def test_a_frame_decodes_in_the_kernels_field_names():
    eth, iph, udp, data = decode_head(FRAME, "eth")
    assert fields(eth) == {"h_dest": "02:00:00:00:00:0b", "h_source": "02:00:00:00:00:0a",
                           "h_proto": "0x0800 (ETH_P_IP)"}
    assert (eth["offset"], eth["len"], iph["offset"], iph["len"], udp["offset"], udp["len"]) == (0, 14, 14, 20, 34, 8)
    f = fields(iph)
    assert (f["saddr"], f["daddr"], f["ttl"], f["protocol"], f["tot_len"], f["id"]) == (
        "10.0.0.1", "10.0.0.2", "64", "17 (udp)", str(len(IP_UDP)), "7")
    assert f["frag_off"].startswith("0x4000 DF")
    assert fields(udp)["source"] == "40000" and fields(udp)["dest"] == "7001" and fields(udp)["len"] == "13"
    assert data["len"] == 5 and data["summary"].endswith("hello")


def test_a_snapshot_shorter_than_the_datagram_still_shows_its_headers():
    big = UdpHdr(40000, 7001).to_bytes(b"x" * 1000, A, B) + b"x" * 1000
    snap = (EthHdr(MAC_B, MAC_A, 0x0800).to_bytes() + IpHdr(A, B, IPPROTO_UDP).to_bytes(len(big)) + big)[:96]
    assert [h["proto"] for h in decode_head(snap, "eth")] == ["ethernet", "ipv4", "udp", "data"]
    assert fields(decode_head(snap, "eth")[2])["len"] == "1008"


def test_tcp_icmp_arp_and_fragments():
    syn = TcpHdr(40000, 80, seq=1, flags=TCPHDR_SYN | TCPHDR_ACK, window=65535,
                 options=encode_options(TcpOptMss(1460), TcpOptSackPerm())).to_bytes(b"", A, B)
    (tcp,) = decode_head(syn, "l4", IPPROTO_TCP)
    assert fields(tcp)["flags"] == "0x12 SYN ACK" and "mss 1460, sackOK" in fields(tcp)["options"]
    echo = IcmpHdr.echo(0x1234, 7).to_bytes(b"ping") + b"ping"
    icmp, _ = decode_head(IpHdr(A, B, IPPROTO_ICMP).to_bytes(len(echo)) + echo, "ip")[1:]
    assert fields(icmp)["un.echo.id"] == str(0x1234) and fields(icmp)["un.echo.sequence"] == "7"
    arp = ArpHdr(ARPOP_REQUEST, MAC_A, A, bytes(6), B).to_bytes()
    _, arph = decode_head(EthHdr(b"\xff" * 6, MAC_A, 0x0806).to_bytes() + arp, "eth")
    assert arph["summary"] == "ARP who-has 10.0.0.2 tell 10.0.0.1" and fields(arph)["ar_op"] == "1 (request)"
    later = IpHdr(A, B, IPPROTO_UDP, frag_off=IP_MF | 185).to_bytes(8) + b"\x00" * 8
    assert [h["proto"] for h in decode_head(later, "ip")] == ["ipv4", "data"]  # a later fragment: no UDP header


def test_bytes_that_do_not_parse_end_in_an_error_not_an_exception():
    assert [h["proto"] for h in decode_head(b"\x60" + bytes(30), "ip")] == ["error"]
    assert decode_head(b"abc", "l4", None) == [{"proto": "data", "offset": 0, "len": 3,
                                               "summary": "3 bytes in the snapshot: abc", "fields": []}]
    assert hexdump(b"AB\x00") == ["0000  41 42 00" + " " * 39 + "  |AB.|"]


# -- counters -------------------------------------------------------------------------------------

def test_quantiles_interpolate_inside_the_bucket_as_histogram_quantile_does():
    assert quantile(0.5, {}) is None
    assert quantile(0.5, {"le_100us": 100, "count": 100}) == pytest.approx(75.0)   # 50..100 µs
    assert quantile(0.99, {"le_100us": 100, "count": 100}) == pytest.approx(99.5)
    hist = {"le_10us": 50, "le_1000us": 49, "le_inf": 1, "count": 100, "sum_ns": 5_000_000}
    assert quantile(0.5, hist) == pytest.approx(10.0)
    assert quantile(0.99, hist) == pytest.approx(1000.0)
    assert quantile(1.0, hist) == 1_000_000  # the overflow bucket: its lower bound, the highest finite one
    s = latency_summary(hist)
    assert (s["count"], s["mean_us"], s["p50_us"]) == (100, 50.0, pytest.approx(10.0))
    assert s["buckets"][0] == {"le_us": 10, "n": 50} and s["buckets"][-1] == {"le_us": None, "n": 1}


def test_moves_are_counted_by_kind_with_their_kernel_functions():
    m = moves_summary({"COPY skb_copy_datagram_msg": 3, "COPY skb_copy_from_iter": 5, "DMA ndo_start_xmit": 2},
                      {"COPY skb_copy_datagram_msg": 300, "COPY skb_copy_from_iter": 50, "DMA ndo_start_xmit": 120})
    assert (m["COPY"]["count"], m["COPY"]["bytes"]) == (8, 350)
    assert [f["func"] for f in m["COPY"]["by_func"]] == ["skb_copy_from_iter", "skb_copy_datagram_msg"]
    assert m["CLONE"] == {"count": 0, "bytes": 0, "by_func": []} and m["DMA"]["bytes"] == 120


def test_counters_per_host_and_layer_and_summed_over_hosts():
    topo = load("default")
    l3 = {"Latency": {"le_100us": 4, "count": 4, "sum_ns": 200_000}, "Drops": {"SKB_DROP_REASON_IP_CSUM": 2},
          "Ip": {"InReceives": 4}}
    d = counters_json(topo, {("A", "l3"): l3, ("B", "l3"): l3, ("A", "nic"): None}, {"Store": {"Journeys": 1}})
    a = d["hosts"][0]["layers"]
    assert a["l3"]["up"] and a["l3"]["groups"]["Ip"] == {"InReceives": 4} and a["l3"]["summary"]["packets"] == 4
    assert a["l3"]["summary"]["drops"] == {"total": 2, "by_reason": {"SKB_DROP_REASON_IP_CSUM": 2}}
    assert not a["nic"]["up"]
    assert d["totals"]["l3"]["packets"] == 8 and d["totals"]["l3"]["drops"]["total"] == 4
    assert d["orchestrator"] == {"Store": {"Journeys": 1}}


# -- queries and routes -------------------------------------------------------------------------

def test_packet_queries_from_url_parameters():
    q = packet_query({"protocol": "udp", "port": "7001", "drop_reason": "any", "limit": "5000", "id": "0x10"})
    assert (q.filter.protocol, q.filter.port, q.drop_reason, q.limit, q.id) == ("udp", 7001, "any", 1000, 16)
    with pytest.raises(BadRequest):
        packet_query({"port": "http"})


@pytest.fixture
def routes():
    store = PacketStore()
    store.add(pb.SkBuff(id=0x10, origin_host="A", sampled=True, events=STORY))
    store.add(pb.SkBuff(id=0x11, origin_host="A", sampled=True, events=[
        ev(pb.ENTER, pb.LAYER_L3, "B", "ip_rcv", 20000, 33, head=IP_UDP, head_type="ip"),
        ev(pb.DROP, pb.LAYER_L3, "B", "ip_rcv_core", 20500, 33, reason=pb.SKB_DROP_REASON_IP_CSUM)]))
    topo = load("default")
    return Dashboard(topo, Addresses(topo, 50000), store, lambda: {("A", "l3"): {}}).routes()


def get(routes, path, **query):
    status, ctype, body = routes[path](query)
    return status, ctype, json.loads(body) if ctype.startswith("application/json") else body


def test_the_routes_answer_json_over_the_store(routes):
    status, _, body = get(routes, "/api/packets")
    assert status == 200 and [p["id"] for p in body["packets"]] == ["17", "16"] and body["stored"] == 2
    status, _, body = get(routes, "/api/packets", drop_reason="any", port="7001")  # as the page sends them
    assert [(p["id"], p["drop_reason"]) for p in body["packets"]] == [("17", "SKB_DROP_REASON_IP_CSUM")]
    assert get(routes, "/api/packets", addr="10.0.0.300")[0] == 400
    status, _, body = get(routes, "/api/packet", host="A", id="16")
    assert status == 200 and [v["layer"] for v in body["visits"]][:3] == ["socket", "l4", "l3"]
    assert get(routes, "/api/packet", host="A", id="0x10")[2]["id"] == "16"
    assert get(routes, "/api/packet", host="B", id="16")[0] == 404
    assert get(routes, "/api/packet", host="A")[0] == 400
    status, _, body = get(routes, "/api/topology")
    assert [h["name"] for h in body["hosts"]] == ["A", "B"] and body["links"][0]["a"] == {"host": "A", "dev": "eth0"}
    assert body["hosts"][0]["layers"][5] == {"layer": "socket", "target": "127.0.0.1:50015", "http": "127.0.0.1:50515"}
    status, _, body = get(routes, "/api/counters")
    assert body["hosts"][0]["layers"]["l3"]["up"] and not body["hosts"][1]["layers"]["l3"]["up"]


def test_the_query_string_arrives_quoted_and_is_unquoted(routes):
    status, _, body = get(routes, "/api/packets", addr="10%2E0%2E0%2E1", drop_reason="SKB%5FDROP%5FREASON%5FIP%5FCSUM")
    assert status == 200 and [p["id"] for p in body["packets"]] == ["17"]
    assert get(routes, "/api/packets", protocol="udp%20")[0] == 400  # "udp " is no protocol: the %20 was decoded


def test_the_page_and_its_script_and_style_are_served(routes):
    status, ctype, page = routes["/"]({})
    assert status == 200 and ctype.startswith("text/html") and b'src="/dashboard.js"' in page
    assert b"http" not in page.replace(b"http-equiv", b"")  # nothing fetched from elsewhere: it works offline
    assert routes["/dashboard.js"]({})[1].startswith("text/javascript")
    assert routes["/dashboard.css"]({})[0] == 200
