"""The sampler (a share of packets and "trace this flow" filters) and packet filters."""

import pytest

from pktpath.pb import trace_pb2
from pktpath.trace import FlowKey, PacketMatch, Sampler, parse_filter
from pktpath.wire.addr import ip_from_str as ip

TCP_FLOW = FlowKey(ip("10.0.0.1"), ip("10.0.0.2"), 6, 40000, 80)
UDP_FLOW = FlowKey(ip("10.0.0.1"), ip("10.0.0.3"), 17, 5353, 53)


def test_the_sampler_follows_otel_traces_sampler_arg(monkeypatch):
    monkeypatch.setenv("PKTPATH_TRACES_PER_SECOND", "0")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "1")
    assert all(Sampler()() for _ in range(100))
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0")
    assert not any(Sampler()() for _ in range(100))
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.25")
    sample = Sampler()
    share = sum(sample() for _ in range(4000)) / 4000
    assert 0.2 < share < 0.3
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "lots")
    with pytest.raises(ValueError, match="not a ratio"):
        Sampler()


def test_unset_it_is_one_percent_and_the_first_ten_packets_of_each_second(monkeypatch):
    monkeypatch.delenv("OTEL_TRACES_SAMPLER_ARG", raising=False)
    monkeypatch.delenv("PKTPATH_TRACES_PER_SECOND", raising=False)
    clock = [1000.0]
    monkeypatch.setattr("pktpath.trace.time.monotonic", lambda: clock[0])
    sample = Sampler()
    assert (sample.rate, sample.per_second) == (0.01, 10)
    burst = [sample() for _ in range(5000)]
    assert all(burst[:10]) and 20 < sum(burst) < 90  # 10, then about 1 % of the rest
    clock[0] += 0.5  # half a second: five tokens back
    assert sum(sample() for _ in range(5)) == 5
    monkeypatch.setenv("PKTPATH_TRACES_PER_SECOND", "-1")
    with pytest.raises(ValueError, match="PKTPATH_TRACES_PER_SECOND"):
        Sampler()


def test_a_flow_filter_traces_every_packet_of_that_flow_and_no_other():
    sample = Sampler(0.0)
    sample.set(trace_pb2.Sampling(rate=0.0, flows=[trace_pb2.PacketFilter(protocol="tcp", port=80)]))
    assert all(sample(TCP_FLOW) for _ in range(50))
    assert not any(sample(UDP_FLOW) for _ in range(50)) and not sample(None)
    sample.set(trace_pb2.Sampling(keep_rate=True))  # the flows cleared, the rate kept
    assert sample.rate == 0.0 and not sample(TCP_FLOW)


def test_a_bad_sampling_changes_nothing():
    sample = Sampler(0.5)
    with pytest.raises(ValueError, match="IPv4"):
        sample.set(trace_pb2.Sampling(rate=1.0, flows=[trace_pb2.PacketFilter(addr="10.0.0")]))
    for bad in ({"rate": 2.0}, {"rate": float("nan")}, {"rate": 0.1, "per_second": float("inf")},
                {"rate": 0.1, "per_second": float("nan")}, {"rate": 0.1, "per_second": -1}):
        with pytest.raises(ValueError, match="must be a finite number"):
            sample.set(trace_pb2.Sampling(**bad))
    assert sample.rate == 0.5 and not sample.flows


@pytest.mark.parametrize("fields, tcp, udp", [
    ({}, True, True),
    ({"addr": "10.0.0.2"}, True, False),               # either end
    ({"addr": "10.0.0.1"}, True, True),
    ({"saddr": "10.0.0.2"}, False, False),
    ({"port": 53}, False, True),
    ({"dport": 53, "protocol": "udp"}, False, True),
    ({"sport": 53}, False, False),
    ({"protocol": "icmp"}, False, False),
])
def test_packet_filters_match_as_pwru_and_tcpdump_do(fields, tcp, udp):
    match = PacketMatch(trace_pb2.PacketFilter(**fields))
    assert (match.matches(TCP_FLOW), match.matches(UDP_FLOW)) == (tcp, udp)
    assert match.matches(None) == (not fields)  # a packet with no known flow matches only the empty filter


def test_flows_print_as_pwru_does():
    assert str(TCP_FLOW) == "10.0.0.1:40000 > 10.0.0.2:80 tcp"
    assert str(FlowKey(ip("10.0.0.1"), ip("10.0.0.2"), 1)) == "10.0.0.1 > 10.0.0.2 icmp"


@pytest.mark.parametrize("expr, tcp, udp", [
    ("", True, True),
    ("tcp port 80", True, False),
    ("host 10.0.0.2 and udp", False, False),
    ("src 10.0.0.1 and dst port 53", False, True),
    ("dst host 10.0.0.2 and (tcp[tcpflags] & tcp-syn == 0 or udp)", True, False),
    ("not port 53 and net 10.0.0.0/24", True, False),
])
def test_pcap_filter_expressions_are_libpcaps_over_the_packet_a_flow_makes(expr, tcp, udp):
    match = PacketMatch(parse_filter(expr.split()))
    assert (match.matches(TCP_FLOW), match.matches(UDP_FLOW)) == (tcp, udp)


@pytest.mark.parametrize("expr", ["port", "port 70000", "host and", "tcp port ftp-nonesuch", "(udp"])
def test_a_bad_filter_expression_is_a_clear_error(expr):
    with pytest.raises(ValueError, match="filter: "):
        parse_filter(expr.split())


def test_finished_packets_come_in_replies_of_at_most_1024_records():
    """A full buffer's records (~1.1 kB each with their events) would pass gRPC's 4 MB
    limit in one reply: a reader pages through them instead."""
    from pktpath import skbuff as s
    from pktpath.trace import CAPACITY, MAX_PER_REPLY, FinishedPackets

    finished = FinishedPackets()
    for i in range(1, CAPACITY + 1):
        finished.add(s.alloc_skb(64, id=i, origin_host="A"))
    first = finished.after(0)
    assert (len(first.skbs), first.more, first.last_seq) == (MAX_PER_REPLY, True, MAX_PER_REPLY)
    assert first.ByteSize() < 4 * 2**20
    seen, after, more = [r.id for r in first.skbs], first.last_seq, first.more
    while more:
        reply = finished.after(after)
        seen += [r.id for r in reply.skbs]
        after, more = reply.last_seq, reply.more
    assert seen == list(range(1, CAPACITY + 1)) and after == CAPACITY
    idle = finished.after(after)
    assert (len(idle.skbs), idle.more, idle.last_seq) == (0, False, CAPACITY)
    restarted = finished.after(CAPACITY + 50)
    assert restarted.last_seq < CAPACITY + 50  # how a reader sees that the layer started again


def test_the_flow_of_a_frame_from_outside():
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.l2 import ARP, Ether

    from pktpath.trace import frame_flow

    tcp = bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=40000, dport=80))
    assert frame_flow(tcp) == TCP_FLOW
    later = bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.3", proto=17, frag=185) / (b"x" * 8))  # no UDP header
    assert frame_flow(bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.3") / UDP(sport=5353, dport=53))) == UDP_FLOW
    assert frame_flow(later) == FlowKey(ip("10.0.0.1"), ip("10.0.0.3"), 17, 0, 0)
    assert frame_flow(bytes(Ether() / ARP())) is None and frame_flow(b"short") is None
