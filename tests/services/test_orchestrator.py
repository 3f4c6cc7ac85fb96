"""The orchestrator's logic without running layers: journeys merged from overlapping
records, their flow, outcome and visits, the spans they become (exported through the
real OTLP exporters to local receivers), queries and watches."""

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from pktpath.pb import orchestrator_pb2, skbuff_pb2 as pb, trace_pb2
from pktpath.services.orchestrator.journey import Journey, flow_of, visits
from pktpath.services.orchestrator.spans import SpanSink, exporter_from_env, packet_spans, trace_id
from pktpath.services.orchestrator.store import SETTLE_S, PacketStore, Query
from pktpath.wire import EthHdr, IpHdr, UdpHdr
from pktpath.wire.addr import ip_from_str as ip
from pktpath.wire.ipv4 import IP_MF, IPPROTO_UDP

from fakes import Clock
from otlpsink import GrpcSink, HttpSink

A, B = ip("10.0.0.1"), ip("10.0.0.2")
UDP = UdpHdr(40000, 53).to_bytes(b"hello", A, B)
IP_HDR = IpHdr(A, B, IPPROTO_UDP, id=7).to_bytes(len(UDP) + 5)
FRAME = EthHdr(b"\x02" * 6, b"\x04" * 6, 0x0800).to_bytes() + IP_HDR + UDP


def ev(kind, layer, host, func, t, nbytes=0, **kw):
    return pb.SkbEvent(kind=kind, layer=layer, host=host, func=func, ts_ns=t, bytes=nbytes, **kw)


# A UDP datagram's whole story, as its layers record it (times in µs).
STORY = [
    ev(pb.COPY, pb.LAYER_SOCKET, "A", "skb_copy_from_iter", 1000, 5, copy_from="user", copy_to="skb"),
    ev(pb.ENTER, pb.LAYER_L4, "A", "udp_sendmsg", 2000, 5, head=b"hello", head_type="data"),
    ev(pb.EXIT, pb.LAYER_L4, "A", "udp_send_skb", 3000, 13, head=UDP, head_type="l4"),
    ev(pb.ENTER, pb.LAYER_L3, "A", "ip_queue_xmit", 4000, 13, head=UDP, head_type="l4"),
    ev(pb.EXIT, pb.LAYER_L3, "A", "ip_finish_output2", 5000, 33, head=IP_HDR + UDP, head_type="ip"),
    ev(pb.DMA, pb.LAYER_NIC, "A", "ndo_start_xmit", 6000, 47),
    ev(pb.DMA, pb.LAYER_NIC, "B", "napi_gro_receive", 7000, 47),
    ev(pb.ENTER, pb.LAYER_SOFTIRQ, "B", "net_rx_action", 8000, 47, head=FRAME, head_type="eth"),
    ev(pb.EXIT, pb.LAYER_SOFTIRQ, "B", "netif_receive_skb_list", 9000, 47, head=FRAME, head_type="eth"),
    ev(pb.ENTER, pb.LAYER_SOCKET, "B", "sock_queue_rcv_skb", 10000, 5, head=b"hello", head_type="data"),
    ev(pb.COPY, pb.LAYER_SOCKET, "B", "skb_copy_datagram_msg", 11000, 5, copy_from="skb", copy_to="user"),
    ev(pb.FREE, pb.LAYER_SOCKET, "B", "skb_consume_udp", 12000, 0),
]


def record(events, *, id=0x10, origin="A", **kw):
    return pb.SkBuff(id=id, origin_host=origin, sampled=True, events=events, **kw)


def journey(events=STORY, **kw) -> Journey:
    j = Journey("A", 0x10)
    j.merge(record(events, **kw))
    return j


def test_records_of_one_packet_merge_each_event_once():
    j = Journey("A", 0x10)
    assert len(j.merge(record(STORY[:6]))) == 6          # A's NIC freed it after the DMA
    assert len(j.merge(record(STORY))) == 6               # B's record carries A's events too
    assert [e.ts_ns for e in j.events] == [e.ts_ns for e in STORY]
    assert str(j.flow) == "10.0.0.1:40000 > 10.0.0.2:53 udp"


def test_the_flow_comes_from_a_frame_or_an_ip_header_and_a_fragment_has_no_ports():
    assert str(flow_of([STORY[7]])) == "10.0.0.1:40000 > 10.0.0.2:53 udp"
    assert str(flow_of([STORY[4]])) == "10.0.0.1:40000 > 10.0.0.2:53 udp"
    frag = IpHdr(A, B, IPPROTO_UDP, id=7, frag_off=IP_MF | 185).to_bytes(8) + bytes(8)
    assert str(flow_of([ev(pb.ENTER, pb.LAYER_L3, "B", "ip_rcv", 1, head=frag, head_type="ip")])) \
        == "10.0.0.1 > 10.0.0.2 udp"
    assert flow_of([STORY[1]]) is None  # payload only


@pytest.mark.parametrize("events, expected", [
    (STORY, ("delivered", "")),
    (STORY[:6] + [ev(pb.FREE, pb.LAYER_NIC, "A", "napi_consume_skb", 6500)], ("transmitted", "")),
    (STORY[:8] + [ev(pb.DROP, pb.LAYER_L3, "B", "ip_rcv_core", 8500, reason=pb.SKB_DROP_REASON_IP_CSUM)],
     ("dropped", "SKB_DROP_REASON_IP_CSUM")),
])
def test_the_outcome_names_the_drop_reason(events, expected):
    assert journey(events).outcome() == expected


def test_visits_are_consecutive_events_in_one_layer_of_one_host():
    got = [(v.host, v.layer_name, v.func, len(v.events)) for v in visits(STORY)]
    assert got == [("A", "socket", "skb_copy_from_iter", 1), ("A", "l4", "udp_sendmsg", 1),
                   ("A", "l3", "ip_queue_xmit", 1), ("A", "nic", "ndo_start_xmit", 1),
                   ("B", "nic", "napi_gro_receive", 1), ("B", "softirq", "net_rx_action", 1),
                   ("B", "socket", "sock_queue_rcv_skb", 2)]


def test_a_packet_is_one_trace_a_root_span_and_a_span_per_layer_visit():
    spans = packet_spans(journey(clone_of=0x0F), to_epoch=0)
    root, visits_ = spans[0], spans[1:]
    assert root.context.trace_id == trace_id("A", 0x10) and root.parent is None
    assert root.resource.attributes["service.name"] == "pktpath"
    assert root.attributes["pktpath.flow"] == "10.0.0.1:40000 > 10.0.0.2:53 udp"
    assert root.attributes["pktpath.outcome"] == "delivered"
    assert [(lk.context.trace_id, lk.attributes["pktpath.link"]) for lk in root.links] == [
        (trace_id("A", 0x0F), "clone_of")]
    assert all(s.parent.span_id == root.context.span_id and s.context.trace_id == root.context.trace_id
               for s in visits_)
    assert [(s.resource.attributes["service.name"], s.attributes["host.name"], s.name) for s in visits_] == [
        ("pktpath-socket", "A", "skb_copy_from_iter"), ("pktpath-l4", "A", "udp_sendmsg"),
        ("pktpath-l3", "A", "ip_queue_xmit"), ("pktpath-nic", "A", "ndo_start_xmit"),
        ("pktpath-nic", "B", "napi_gro_receive"), ("pktpath-softirq", "B", "net_rx_action"),
        ("pktpath-socket", "B", "sock_queue_rcv_skb")]
    copy = visits_[-1].events[0]
    assert copy.name == "COPY" and copy.attributes["pktpath.copy.to"] == "user" and copy.timestamp == 11000
    assert [s.start_time for s in visits_] == sorted(s.start_time for s in visits_)


def test_a_dropped_packets_spans_carry_the_error():
    drop = ev(pb.DROP, pb.LAYER_L3, "B", "ip_rcv_core", 8500, reason=pb.SKB_DROP_REASON_IP_CSUM)
    spans = packet_spans(journey(STORY[:8] + [drop]), to_epoch=0)
    assert spans[0].status.description == "SKB_DROP_REASON_IP_CSUM"
    (l3,) = [s for s in spans if s.attributes.get("pktpath.layer") == "l3" and s.attributes["host.name"] == "B"]
    assert l3.status.description == "SKB_DROP_REASON_IP_CSUM" and l3.events[0].name == "DROP"


def test_settled_journeys_go_to_the_exporter_once():
    clock = Clock(100.0)
    store, exporter = PacketStore(settle_s=1.0, clock=clock), InMemorySpanExporter()
    sink = SpanSink(exporter)
    store.add(record(STORY[:6]))
    clock.t += 0.5
    store.add(record(STORY))
    assert store.settle() == []  # a record came 0 s ago
    clock.t += 1.0
    (j,) = store.settle()
    assert sink.export(j) == 8 and store.settle() == []
    sink.flush()
    assert len(exporter.get_finished_spans()) == 8


def test_queries_by_id_flow_host_layer_and_drop_reason():
    store = PacketStore()
    store.add(record(STORY, id=1))
    drop = ev(pb.DROP, pb.LAYER_L3, "B", "ip_rcv_core", 8500, reason=pb.SKB_DROP_REASON_IP_CSUM)
    store.add(record(STORY[:8] + [drop], id=2))

    def ids(**kw):
        return [j.id for j in store.query(Query(orchestrator_pb2.PacketQuery(**kw)))]

    assert ids() == [2, 1]                                   # newest first
    assert ids(id=1) == [1] and ids(origin_host="B") == []
    assert ids(filter=trace_pb2.PacketFilter(port=53, protocol="udp")) == [2, 1]
    assert ids(filter=trace_pb2.PacketFilter(port=80)) == []
    assert ids(filter=trace_pb2.PacketFilter(expression="udp port 80")) == []  # an expression alone filters too
    assert ids(filter=trace_pb2.PacketFilter(expression="udp port 53 and host 10.0.0.2")) == [2, 1]
    assert ids(host="B", layer="socket") == [1]
    assert ids(drop_reason="any") == [2] and ids(drop_reason="SKB_DROP_REASON_IP_CSUM") == [2]
    assert ids(drop_reason="SKB_DROP_REASON_NO_SOCKET") == [] and ids(limit=1) == [2]
    for bad in ({"layer": "l7"}, {"drop_reason": "BECAUSE"}, {"filter": trace_pb2.PacketFilter(addr="10.0")}):
        with pytest.raises(ValueError):
            Query(orchestrator_pb2.PacketQuery(**bad))


def test_the_store_is_bounded_and_counts_what_it_let_go():
    store = PacketStore(capacity=3)
    for i in range(5):
        store.add(record(STORY[:2], id=i + 1))
    assert len(store) == 3 and store.evicted == 2
    assert [j.id for j in store.query(Query(orchestrator_pb2.PacketQuery()))] == [5, 4, 3]


def test_a_watch_gets_each_matching_packets_events_once_it_settles_in_its_own_order():
    clock = [0.0]
    store = PacketStore(clock=lambda: clock[0])
    watch = store.watch(Query(orchestrator_pb2.PacketQuery(filter=trace_pb2.PacketFilter(port=53))))
    store.add(record(STORY[6:]))             # B's record first: the collector may read B before A
    store.add(record(STORY))                 # then A's, with the events before
    assert watch.lines.empty()               # not settled yet: more may come
    clock[0] += SETTLE_S
    store.settle()
    lines = [watch.lines.get_nowait() for _ in range(watch.lines.qsize())]
    assert len(lines) == len(STORY)
    assert [ln.ts_ns for ln in lines] == sorted(ln.ts_ns for ln in lines)  # the packet's order, not arrival's
    assert [(ln.host, ln.layer, ln.kind, ln.func) for ln in lines[-2:]] == [
        ("B", "socket", "COPY", "skb_copy_datagram_msg"), ("B", "socket", "FREE", "skb_consume_udp")]
    assert lines[-2].delta_ns == 1000 and lines[-2].detail == "5 B skb -> user"
    assert lines[0].tuple == "10.0.0.1:40000 > 10.0.0.2:53 udp"
    store.unwatch(watch)
    store.add(record(STORY, id=99))
    clock[0] += SETTLE_S
    store.settle()
    assert watch.lines.empty()


def test_no_endpoint_no_exporter_and_a_bad_protocol_is_an_error(monkeypatch):
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_TRACES_EXPORTER"):
        monkeypatch.delenv(name, raising=False)
    assert exporter_from_env() is None
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    assert exporter_from_env() is None
    monkeypatch.delenv("OTEL_TRACES_EXPORTER")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon")
    with pytest.raises(ValueError, match="grpc or http/protobuf"):
        exporter_from_env()


@pytest.mark.parametrize("sink_type, protocol", [(HttpSink, "http/protobuf"), (GrpcSink, "grpc")])
def test_spans_reach_an_otlp_receiver_over_http_and_grpc(monkeypatch, sink_type, protocol):
    receiver = sink_type()
    try:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
        sink = SpanSink(exporter_from_env())
        sink.export(journey())
        sink.close()
        spans = receiver.wait_for(lambda spans: len(spans) == 8, timeout=10)
        assert {s.trace_id for s in spans} == {f"{trace_id('A', 0x10):032x}"}
        assert {s.service for s in spans} >= {"pktpath", "pktpath-l3", "pktpath-socket"}
    finally:
        receiver.close()


def test_spans_a_collector_does_not_take_are_counted_as_failed(monkeypatch):
    """No collector where the endpoint says (Jaeger not started): the spans fail, counted."""
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
    sink = SpanSink(exporter_from_env())
    assert sink.export(journey()) == 8
    sink.close()
    assert (sink.exporter.delivered, sink.exporter.failed) == (0, 8)
    receiver = HttpSink()
    try:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
        sink = SpanSink(exporter_from_env())
        sink.export(journey())
        sink.close()
        assert (sink.exporter.delivered, sink.exporter.failed) == (8, 0)
    finally:
        receiver.close()


def test_an_original_that_only_held_data_takes_its_clones_flow():
    """TCP's original never shows a header (it is freed by the ACK, after its clone's
    record came): found by the flow all the same."""
    store = PacketStore()
    store.add(record(STORY[1:], id=0x21, clone_of=0x20))
    store.add(record(STORY[:2], id=0x20))
    found = store.query(Query(orchestrator_pb2.PacketQuery(filter=trace_pb2.PacketFilter(port=53))))
    assert [j.id for j in found] == [0x20, 0x21] and found[0].flow == found[1].flow


def test_a_record_with_unknown_enums_is_shown_with_numbers_never_fatal():
    """An injected frame's record with an event kind and a drop reason no build knows."""
    from pktpath.services.orchestrator.dashboard import journey_json
    from pktpath.services.orchestrator.store import to_packet, trace_line

    store = PacketStore(clock=Clock())
    store.add(pb.SkBuff(id=99, origin_host="B", sampled=True, events=[
        ev(pb.ENTER, pb.LAYER_NIC, "B", "napi_gro_receive", 1000, 47),
        ev(999, pb.LAYER_NIC, "B", "mystery", 1500, 47),
        ev(pb.DROP, pb.LAYER_NIC, "B", "mystery", 2000, 47, reason=12345)]))
    (j,) = store.query(Query(orchestrator_pb2.PacketQuery()))
    shown = journey_json(j)
    assert shown["outcome"] == "dropped" and shown["visits"][0]["dropped"] == "12345"
    assert [e["kind"] for e in shown["visits"][0]["events"]] == ["999", "DROP"]
    assert trace_line(j, j.events[1]).kind == "999"
    assert to_packet(j, f"{trace_id(j.origin_host, j.id):032x}").id == 99
    assert packet_spans(j, 0)  # and its spans


def test_a_record_beyond_the_size_cap_is_trimmed_where_it_is_made():
    from pktpath import skbuff as s
    from pktpath.trace import MAX_RECORD_BYTES, FinishedPackets

    skb = s.alloc_skb(64, sampled=True)
    skb.prior_events = [ev(pb.ENTER, pb.LAYER_NIC, "B", "x" * 1000, t) for t in range(3000)]  # 3 MB claimed
    finished = FinishedPackets()
    finished.add(skb)
    (record,) = finished.after(0).skbs
    assert 0 < record.ByteSize() <= MAX_RECORD_BYTES and 0 < len(record.events) < 3000
