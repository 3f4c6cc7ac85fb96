"""IPv6 journeys as the observing tools show them, on the default topology: `pktpath trace`
with a pcap filter that names IPv6 (`ip6 and udp`, `host 2001:db8::2`) traces the matching
packets and no other while the sampler takes nothing else; `pktpath drops` names an IPv6
datagram's drop with its reason, place and tuple; the orchestrator's journeys of a UDP
datagram fragmented at the source, a ping and a TCP transfer over IPv6 cross every layer of
both hosts with their flows; L3's layer tap sees what L4 sends over IPv6; and the dashboard's
journey view decodes the IPv6 headers. (`pktpath copies`' IPv6 cases run in test_copies.py.)"""

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request

import pytest
from google.protobuf import empty_pb2

from pktpath.client import AF_INET6, SHUT_WR, SOCK_STREAM
from pktpath.pb import orchestrator_pb2, trace_pb2
from pktpath.rpc import orchestrator_pb2_grpc, trace_pb2_grpc
from pktpath.tools.apps import ping
from pktpath.tools.observe import TRACE_HEADER, filtered_drops, watched
from pktpath.trace import parse_filter

from e2ekit import ipv6_ready, wait_for, with_sockets

pytestmark = pytest.mark.slow
A6, B6 = "2001:db8::1", "2001:db8::2"
TX = [("A", "socket"), ("A", "l4"), ("A", "l3"), ("A", "l2"), ("A", "softirq"), ("A", "nic")]
RX = [("B", "nic"), ("B", "softirq"), ("B", "l2"), ("B", "l3"), ("B", "l4"), ("B", "socket")]


@pytest.fixture(scope="module")
def net(default_topology):
    assert ipv6_ready(default_topology, "A", "B"), "the hosts' IPv6 addresses stayed tentative"
    yield from with_sockets(default_topology, "A", "B")


def orchestrator(sup) -> orchestrator_pb2_grpc.OrchestratorStub:
    return orchestrator_pb2_grpc.OrchestratorStub(sup.addrs.channel("", "orchestrator"))


@pytest.fixture
def sample_nothing(net):
    """The sampler takes no packet by itself (neither a share nor a few a second): only the
    flows a trace or drops filter names are traced. Every packet again afterwards."""
    orch = orchestrator(net[0])
    orch.SetSampling(trace_pb2.Sampling(rate=0, per_second=0), timeout=5)
    yield orch
    orch.SetSampling(trace_pb2.Sampling(rate=1, per_second=10), timeout=5)


def udp6(a, b, port: int, data: bytes, *, to_port: int | None = None, family: int = AF_INET6) -> None:
    """A datagram from A to B's port (to_port: to another, closed one, not waited for)."""
    with b.socket(family=family) as rx, a.socket(family=family) as tx:
        rx.bind(("::" if family == AF_INET6 else "0.0.0.0", port))
        tx.sendto(data, (B6 if family == AF_INET6 else "10.0.0.2", to_port or port))
        if to_port is None:
            assert rx.recvfrom(65535, timeout=10)[0] == data


def lines_of(events, until, timeout: float = 15) -> list:
    """The watch's lines until until(lines) holds or the timeout passes (then closed)."""
    got, deadline = [], time.monotonic() + timeout
    try:
        for line in events:
            got.append(line)
            if until(got) or time.monotonic() > deadline:
                break
    finally:
        events.close()
    return got


def places(lines) -> set:
    return {(line.host, line.layer) for line in lines}


def test_trace_ip6_and_udp_follows_an_ipv6_datagram_through_both_hosts_and_nothing_else(net, sample_nothing):
    sup, a, b = net
    orch = sample_nothing
    events = watched(orch, parse_filter(["ip6", "and", "udp"]), timeout=20)
    udp6(a, b, 7101, b"traced over IPv6")
    udp6(a, b, 7102, b"IPv4 is not ip6", family=2)
    ping(a, B6, count=1, interval=0.2, linger=2, out=lambda line: None)  # ICMPv6: not udp
    lines = lines_of(events, lambda got: set(TX + RX) <= places(got))
    assert set(TX + RX) <= places(lines), places(lines)
    assert all(line.tuple.startswith(f"[{A6}]:") and line.tuple.endswith(f" > [{B6}]:7101 udp") for line in lines)
    funcs = {(line.host, line.layer, line.kind): line.func for line in lines}
    assert funcs["A", "l3", "ENTER"] == "ip6_make_skb" and funcs["B", "l3", "ENTER"] == "ipv6_rcv"
    assert funcs["B", "l4", "ENTER"] == "udpv6_rcv"
    assert not orch.GetSampling(empty_pb2.Empty(), timeout=5).flows  # the watch took its filter away


def test_pktpath_trace_host_prints_a_ping6s_events_as_pwru_does(net, sample_nothing):
    sup, a, b = net
    proc = subprocess.Popen([sys.executable, "-m", "pktpath.cli", "trace", "host", B6, "--timeout", "20",
                             "--base-port", str(sup.base_port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().rstrip() == TRACE_HEADER.rstrip()  # the filter is in place
        ping(a, B6, count=1, interval=0.2, linger=2, out=lambda line: None)
        got = []
        reader = threading.Thread(target=lambda: got.extend(iter(proc.stdout.readline, "")), daemon=True)
        reader.start()
        assert wait_for(lambda: any(f"{B6} > {A6} icmp6" in line for line in got), timeout=15), got
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    request = [line.split() for line in got if f"{A6} > {B6} icmp6" in line]
    assert {(w[1], w[2]) for w in request} >= {("A", "socket"), ("A", "l3"), ("B", "nic"), ("B", "l3")}, got
    assert any(w[3] == "ENTER" and w[4] == "ping_v6_sendmsg" for w in request)


def test_drops_names_an_ipv6_datagrams_drop_with_its_reason_place_and_tuple(net, sample_nothing):
    sup, a, b = net
    out: list[str] = []
    done = threading.Event()

    def watch():
        filtered_drops(sample_nothing, parse_filter(["ip6", "and", "udp", "port", "7199"]), out.append, count=1,
                       timeout=20)
        done.set()

    threading.Thread(target=watch, daemon=True).start()
    assert wait_for(lambda: sample_nothing.GetSampling(empty_pb2.Empty(), timeout=5).flows)  # the watch is set
    udp6(a, b, 7198, b"nobody listens", to_port=7199)
    assert done.wait(20), out
    assert out[-1].startswith("1 drops at B/l4 (SKB_DROP_REASON_NO_SOCKET) in __udp6_lib_rcv: ")
    assert out[-1].endswith(f" > [{B6}]:7199 udp") and f"[{A6}]:" in out[-1]


def journeys(orch, expression: str, until, timeout: float = 20) -> list:
    query = orchestrator_pb2.PacketQuery(filter=trace_pb2.PacketFilter(expression=expression))
    return list(wait_for(lambda: (found := orch.QueryPackets(query, timeout=5).packets) and until(found) and found,
                         timeout) or orch.QueryPackets(query, timeout=5).packets)


def visited(p) -> list:
    out = []
    for e in p.events:
        place = (e.host, {1: "nic", 2: "softirq", 3: "l2", 4: "l3", 5: "l4", 6: "socket"}.get(e.layer))
        if not out or out[-1] != place:
            out.append(place)
    return out


def in_order(seen: list, expected: list) -> bool:
    it = iter(seen)
    return all(step in it for step in expected)


def test_journeys_of_a_fragmented_datagram_a_ping_and_a_tcp_transfer_over_ipv6(net):
    sup, a, b = net
    orch = orchestrator(sup)
    t0 = time.time_ns()  # the layers' clock: this test's packets are the ones made after it
    udp6(a, b, 7103, bytes(3000))
    ping(a, B6, count=1, interval=0.2, linger=2, out=lambda line: None)
    with b.socket(SOCK_STREAM, family=AF_INET6) as srv, a.socket(SOCK_STREAM, family=AF_INET6) as cli:
        srv.bind(("::", 7104))
        srv.listen(1)
        cli.connect((B6, 7104), timeout=10)
        conn, _ = srv.accept(timeout=10)
        cli.sendall(b"x" * 5000)
        cli.shutdown(SHUT_WR)
        got = b""
        while chunk := conn.recv(65536, timeout=10):
            got += chunk
        conn.close()
    assert got == b"x" * 5000

    # the datagram: A's socket copies it in whole, and A's L3 cuts it to the MTU of 1500 (1448 +
    # 1448 + 112 bytes of UDP's 3008), each fragment its own journey to B: a copy of the whole
    def sent(found) -> list:
        return [p for p in found if p.flow.dport == 7103 and any(e.func == "udpv6_sendmsg" for e in p.events)]

    def pieces(found) -> list:
        return [p for p in found if sent(found) and p.copy_of == sent(found)[0].id]

    found = journeys(orch, f"ip6 and udp and dst host {B6}",
                     lambda found: len(pieces(found)) == 3 and all(("B", "l3") in visited(p) for p in pieces(found)))
    (whole,) = sent(found)
    assert in_order(visited(whole), TX[:3]), visited(whole)
    assert all(in_order(visited(p), [("A", "l3")] + TX[3:] + RX[:4]) for p in pieces(found))
    assert sorted(p.flow.dport for p in pieces(found)) == [0, 0, 7103]  # a later fragment carries no ports
    assert {(p.flow.saddr, p.flow.daddr, p.flow.protocol) for p in pieces(found)} == {(A6, B6, "udp")}

    def requests(found) -> list:
        return [p for p in found if p.events[0].ts_ns > t0 and any(e.func == "ping_v6_sendmsg" for e in p.events)]

    echo = journeys(orch, f"icmp6 and src host {A6}", lambda found: any(("B", "l3") in visited(p)
                                                                         for p in requests(found)))
    (request,) = requests(echo)
    assert request.flow.protocol == "icmp6" and (request.flow.saddr, request.flow.daddr) == (A6, B6)
    assert in_order(visited(request), TX + RX[:4]), visited(request)  # B's L3 answers it

    # TCP: the clone each transmission makes goes down through A's L3 (inet6_csk_xmit), and the
    # segments GSO cuts it into at A's softirq cross to B's socket
    segs = journeys(orch, "ip6 and tcp port 7104", lambda found: any(p.outcome == "delivered" for p in found))
    data = [p for p in segs if p.outcome == "delivered"]
    assert data and in_order(visited(data[0]), [("A", "nic")] + RX), visited(data[0])
    assert any(in_order(visited(p), TX[1:5]) and any(e.func == "inet6_csk_xmit" for e in p.events) for p in segs)
    assert {(p.flow.saddr, p.flow.daddr) for p in segs} <= {(A6, B6), (B6, A6)}


def test_l3s_layer_tap_sees_what_l4_sends_over_ipv6(net):
    sup, a, b = net
    stream = trace_pb2_grpc.TraceStub(sup.addrs.channel("A", "l3")).Capture(trace_pb2.CaptureRequest(), timeout=15)
    try:
        next(stream)  # the tap is open
        udp6(a, b, 7105, b"at the l3 tap")
        frames = []
        for reply in stream:
            frames += [f for f in reply.frames if f.outgoing and f.func == "ip6_make_skb"]
            if frames:
                break
    finally:
        stream.cancel()
    assert frames and frames[0].data.endswith(b"at the l3 tap") and frames[0].linktype == 252


@pytest.fixture(scope="module")
def dashboard(net) -> tuple[str, dict]:
    """The dashboard's address and the journey of a datagram A -> B over IPv6, once whole."""
    sup, a, b = net
    udp6(a, b, 7106, b"to the dashboard over IPv6")
    base = f"http://{sup.addrs.http('', 'orchestrator')}"

    def journey():
        found = api(base, f"/api/packets?addr={B6}&protocol=udp&dport=7106")["packets"]
        if not found:
            return None
        j = api(base, f"/api/packet?host={found[0]['origin_host']}&id={found[0]['id']}")
        return j if set(TX + RX) <= {(v["host"], v["layer"]) for v in j["visits"]} else None

    j = wait_for(journey, timeout=15)
    assert j, "the orchestrator never had the datagram's whole journey"
    return base, j


def api(base: str, path: str) -> dict:
    with urllib.request.urlopen(base + path, timeout=10) as reply:
        return json.loads(reply.read())


def test_the_dashboards_journey_of_an_ipv6_datagram_has_its_addresses_and_ipv6_headers(dashboard):
    base, j = dashboard
    assert j["flow"].endswith(f" > [{B6}]:7106 udp") and j["outcome"] == "delivered"
    visits = {(v["host"], v["layer"]): v for v in j["visits"]}
    assert visits["A", "l3"]["func"] == "ip6_make_skb"
    exit_l3 = [h for h in visits["A", "l3"]["heads"] if h["at"] == "exit"][0]
    assert [x["proto"] for x in exit_l3["headers"]][:2] == ["ipv6", "udp"]
    rx = visits["B", "softirq"]["heads"][0]["headers"]
    assert [x["proto"] for x in rx][:3] == ["ethernet", "ipv6", "udp"]
    assert dict(rx[1]["fields"])["saddr"] == A6 and dict(rx[1]["fields"])["daddr"] == B6
    assert api(base, "/api/topology")["hosts"][1]["interfaces"][0]["addr6"] == [f"{B6}/64"]


def test_the_browser_shows_the_ipv6_journey_and_the_hosts_ipv6_addresses(dashboard, tmp_path):
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: CI runs the dashboard's tests (apt-get install chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    base, j = dashboard
    target = f"{base}/#packet={j['origin_host']}:{j['id']}"
    proc = subprocess.run([found, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                           "--no-first-run", "--disable-background-networking", f"--user-data-dir={tmp_path}",
                           "--virtual-time-budget=10000", "--dump-dom", target],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    assert f'data-journey="{j["origin_host"]}:{j["id"]}"' in dom, "the journey view did not load"
    assert f"[{B6}]:7106 udp" in dom and f"eth0 10.0.0.2/24 {B6}/64" in dom
    assert '<span class="tag ipv6"' in dom and '>ip6</span>' in dom  # the header stack's IPv6 header
    assert 'data-proto="ipv6"' in dom and f"IPv6 {A6} &gt; {B6} udp" in dom
