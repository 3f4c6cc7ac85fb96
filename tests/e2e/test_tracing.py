"""Traces end to end: every service its own process, the orchestrator collecting from all
of them and exporting over OTLP/HTTP to a local receiver, sampling set at run time to
"trace this flow" only. A UDP datagram and a TCP segment from A to B each become one
trace: the layers in order across both hosts, every visit's span under the packet's
root, the copies as events; TCP's transmitted clone links to the original it shares
its data with."""

import json
import math
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest
from google.protobuf import empty_pb2
from prometheus_client.parser import text_string_to_metric_families

from pktpath.client import SHUT_WR, SOCK_STREAM, SocketApi
from pktpath.pb import orchestrator_pb2, trace_pb2
from pktpath.rpc import orchestrator_pb2_grpc
from pktpath.services.orchestrator.spans import trace_id
from pktpath.supervisor import Supervisor
from pktpath.topology import load

from e2ekit import free_base_port, wait_for
from otlpsink import HttpSink

pytestmark = pytest.mark.slow
TX = [("socket", "A"), ("l4", "A"), ("l3", "A"), ("l2", "A"), ("softirq", "A"), ("nic", "A")]
RX = [("nic", "B"), ("softirq", "B"), ("l2", "B"), ("l3", "B"), ("l4", "B"), ("socket", "B")]


@pytest.fixture(scope="module")
def traced(tmp_path_factory):
    sink = HttpSink()
    env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint, "OTEL_TRACES_SAMPLER_ARG": "0"}
    sup = Supervisor(load("default"), free_base_port(2), log_dir=tmp_path_factory.mktemp("logs-traced"), env=env)
    sup.start(timeout=60)
    try:
        yield sup, sink
    finally:
        statuses = sup.stop()
        sink.close()
    assert all(rc == 0 for _, _, rc in statuses), statuses


def orchestrator(sup) -> orchestrator_pb2_grpc.OrchestratorStub:
    return orchestrator_pb2_grpc.OrchestratorStub(sup.addrs.channel("", "orchestrator"))


def complete(found) -> bool:
    """Every clone delivered or dropped, and the original each one shares its data with in too
    (its record comes from another layer, maybe in a later collection)."""
    ids = {p.id for p in found}
    return bool(found) and all(p.outcome in ("delivered", "dropped") and p.clone_of in ids
                               for p in found if p.clone_of)


def delivered(found) -> bool:
    """The records of the receiving host are in too (the sender's come first)."""
    return bool(found) and all(p.outcome == "delivered" for p in found)


def packets(orch, until=complete, timeout: float = 30, **filter_) -> list:
    """The orchestrator's packets of a flow, once their records are in (on a loaded machine
    the ACK that frees TCP's original can come seconds late)."""
    query = orchestrator_pb2.PacketQuery(filter=trace_pb2.PacketFilter(**filter_))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = orch.QueryPackets(query, timeout=5).packets
        if until(found):
            return list(found)
        time.sleep(0.2)
    return list(orch.QueryPackets(query, timeout=5).packets)


def layer_spans(sink: HttpSink, tid: str) -> tuple:
    spans = sink.wait_for(lambda spans: any(s.trace_id == tid and not s.parent for s in spans))
    trace = sorted((s for s in spans if s.trace_id == tid), key=lambda s: s.start)
    (root,) = [s for s in trace if not s.parent]
    return root, [s for s in trace if s.parent]


def in_order(visited: list, expected: list) -> bool:
    """expected is a subsequence of visited."""
    it = iter(visited)
    return all(step in it for step in expected)


def test_a_udp_datagram_is_one_trace_across_both_hosts(traced):
    sup, sink = traced
    a, b = (SocketApi(sup.addrs.target(h, "socket")) for h in ("A", "B"))
    orch = orchestrator(sup)
    got = orch.SetSampling(trace_pb2.Sampling(rate=0, flows=[trace_pb2.PacketFilter(protocol="udp", port=7001)]))
    assert got.rate == 0 and len(got.flows) == 1
    with b.socket() as rx, a.socket() as tx:
        rx.bind(("0.0.0.0", 7001))
        tx.sendto(b"traced", ("10.0.0.2", 7001))
        tx.sendto(b"not traced", ("10.0.0.2", 7002))
        assert rx.recvfrom(100, timeout=10)[0] == b"traced"
    (p,) = packets(orch, delivered, port=7001)
    assert p.outcome == "delivered" and (p.flow.daddr, p.flow.dport, p.flow.protocol) == ("10.0.0.2", 7001, "udp")
    assert packets(orch, timeout=2, port=7002) == []  # the sampler passed it by (10 collections later)
    root, spans = layer_spans(sink, p.trace_id)
    assert root.service == "pktpath" and root.attributes["pktpath.outcome"] == "delivered"
    assert all(s.parent == root.span_id for s in spans)
    visited = [(s.service.removeprefix("pktpath-"), s.attributes["host.name"]) for s in spans]
    assert in_order(visited, TX + RX), visited
    by_place = {(s.service.removeprefix("pktpath-"), s.attributes["host.name"]): s for s in spans}
    copies = [(name, attrs["pktpath.copy.from"], attrs["pktpath.copy.to"], attrs["pktpath.bytes"])
              for s in (by_place["socket", "A"], by_place["socket", "B"]) for name, attrs in s.events
              if name == "COPY"]
    assert copies == [("COPY", "user", "skb", 6), ("COPY", "skb", "user", 6)]
    assert [n for n, _ in by_place["nic", "A"].events] == ["DMA"] and [n for n, _ in by_place["nic", "B"].events] == [
        "DMA"]


def test_a_tcp_segment_is_a_trace_linked_to_the_original_it_cloned(traced):
    sup, sink = traced
    a, b = (SocketApi(sup.addrs.target(h, "socket")) for h in ("A", "B"))
    orch = orchestrator(sup)
    orch.SetSampling(trace_pb2.Sampling(keep_rate=True, flows=[trace_pb2.PacketFilter(protocol="tcp", port=7003)]))
    with b.socket(SOCK_STREAM) as srv, a.socket(SOCK_STREAM) as cli:
        srv.bind(("0.0.0.0", 7003))
        srv.listen(1)
        cli.connect(("10.0.0.2", 7003), timeout=10)
        conn, _ = srv.accept(timeout=10)
        cli.sendall(b"y" * 100)
        cli.shutdown(SHUT_WR)
        assert conn.recv(1000, timeout=10) == b"y" * 100
        conn.close()
    found = packets(orch, port=7003, protocol="tcp")
    (clone,) = [p for p in found if p.outcome == "delivered"]
    (original,) = [p for p in found if p.id == clone.clone_of]
    assert [e.func for e in original.events if e.kind == 3] == ["tcp_sendmsg_locked"]  # COPY user -> skb
    assert original.events[-1].func == "tcp_clean_rtx_queue"  # freed by the ACK
    root, spans = layer_spans(sink, clone.trace_id)
    assert [(lk[0], lk[2]["pktpath.link"]) for lk in root.links] == [
        (f"{trace_id('A', original.id):032x}", "clone_of")]
    visited = [(s.service.removeprefix("pktpath-"), s.attributes["host.name"]) for s in spans]
    assert in_order(visited, TX[1:] + RX), visited
    (l4_a,) = [s for s in spans if s.service == "pktpath-l4" and s.attributes["host.name"] == "A"]
    assert ("CLONE", 232) in [(n, attrs["pktpath.bytes"]) for n, attrs in l4_a.events]


def test_the_orchestrator_counts_what_it_collected_and_exported(traced):
    sup, _ = traced
    counters = {g.name: dict(g.values) for g in orchestrator(sup).GetCounters(empty_pb2.Empty(), timeout=5).groups}
    assert counters["Orchestrator"]["RecordsCollected"] >= 3
    assert counters["Orchestrator"]["SpansExported"] > 10
    assert counters["Store"]["Journeys"] >= 3
    assert "RecordsLost" not in counters["Orchestrator"]


def cli(sup, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pktpath.cli", *args, "--base-port", str(sup.base_port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_pktpath_trace_prints_each_event_of_the_matching_packets_like_pwru(traced):
    sup, _ = traced
    a = SocketApi(sup.addrs.target("A", "socket"))
    proc = cli(sup, "trace", "udp", "and", "dst", "port", "7005", "--timeout", "6")
    orch = orchestrator(sup)
    header = proc.stdout.readline()  # printed once its filter is set on every layer
    assert header.split()[:5] == ["SKB", "HOST", "LAYER", "EVENT", "FUNC"], proc.stderr.read()
    flows = orch.GetSampling(empty_pb2.Empty(), timeout=5).flows
    assert any(f.expression == "udp and dst port 7005" for f in flows)
    with a.socket() as tx:
        tx.sendto(b"to nobody", ("10.0.0.2", 7005))  # nobody listens: B's L4 drops it
    out, err = proc.communicate(timeout=40)
    assert proc.returncode == 0, err
    lines = [header] + out.splitlines()
    events = [line.split() for line in lines[1:]]
    assert ["A", "socket", "COPY", "skb_copy_from_iter"] in [e[1:5] for e in events]
    (drop,) = [e for e in events if e[3] == "DROP"]
    assert drop[1:3] == ["B", "l4"] and "(SKB_DROP_REASON_NO_SOCKET)" in drop
    assert all("10.0.0.2:7005" in line for line in lines[1:] if "udp" in line)
    assert not any(f.expression for f in orch.GetSampling(empty_pb2.Empty(), timeout=5).flows)  # taken away


def test_pktpath_drops_reports_drops_by_reason_and_place_like_dropwatch(traced):
    sup, _ = traced
    a = SocketApi(sup.addrs.target("A", "socket"))
    proc = cli(sup, "drops", "-i", "1", "-n", "3")
    for _ in range(3):  # printed once the counts it compares with are taken
        proc.stdout.readline()
    with a.socket() as tx:
        for _ in range(3):
            tx.sendto(b"x", ("10.0.0.2", 7006))
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    counted = [int(line.split()[0]) for line in out.splitlines()
               if line.endswith(" drops at B/l4 (SKB_DROP_REASON_NO_SOCKET)")]  # in one interval or over two
    assert sum(counted) == 3, out


def test_pktpath_drops_with_a_filter_prints_each_dropped_packet_it_matches(traced):
    sup, _ = traced
    a = SocketApi(sup.addrs.target("A", "socket"))
    proc = cli(sup, "drops", "udp", "dst", "port", "7009", "-c", "2", "--timeout", "30")
    assert proc.stdout.readline().startswith("Initializing"), proc.stderr.read()  # the watch is in place
    for _ in range(2):
        proc.stdout.readline()
    with a.socket() as tx:
        tx.sendto(b"not matched", ("10.0.0.2", 7010))  # dropped too, but not by the filter's port
        for _ in range(2):
            tx.sendto(b"matched", ("10.0.0.2", 7009))
    out, err = proc.communicate(timeout=40)
    assert proc.returncode == 0, err
    lines = out.splitlines()
    assert len(lines) == 2, out
    for line in lines:
        assert line.startswith("1 drops at B/l4 (SKB_DROP_REASON_NO_SOCKET) in "), line
        assert line.endswith("> 10.0.0.2:7009 udp"), line


def scrape(sup, host: str, layer: str) -> dict:
    with urllib.request.urlopen(f"http://{sup.addrs.http(host, layer)}/metrics", timeout=5) as reply:
        assert reply.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return {f.name: f for f in text_string_to_metric_families(reply.read().decode())}


def metric(fams: dict, family: str, sample: str | None = None, **labels) -> float:
    return sum(s.value for s in fams[family].samples
               if (sample is None or s.name == sample) and all(s.labels.get(k) == v for k, v in labels.items()))


def test_every_service_serves_prometheus_metrics_in_node_exporters_names(traced):
    sup, _ = traced
    a = SocketApi(sup.addrs.target("A", "socket"))
    b = SocketApi(sup.addrs.target("B", "socket"))
    with a.socket() as tx, b.socket() as rx:  # not sampled (rate 0, no flow filter): counted all the same
        for _ in range(4):
            tx.sendto(b"z" * 10, ("10.0.0.2", 7008))
        rx.bind(("0.0.0.0", 7012))
        tx.sendto(b"delivered", ("10.0.0.2", 7012))  # through B's socket layer too
        assert rx.recvfrom(100, timeout=10)[0] == b"delivered"
    time.sleep(0.5)
    for host in ("A", "B"):
        for layer in ("nic", "softirq", "l2", "l3", "l4", "socket"):
            fams = scrape(sup, host, layer)
            hist = "pktpath_layer_latency_seconds"
            assert fams[hist].type == "histogram" and metric(fams, hist, f"{hist}_count") > 0, (host, layer)
    nic_b = scrape(sup, "B", "nic")
    assert metric(nic_b, "node_network_receive_packets", device="eth0", host="B") >= 4
    assert metric(nic_b, "pktpath_moves", kind="DMA", func="napi_gro_receive") >= 4
    l4_b = scrape(sup, "B", "l4")
    assert metric(l4_b, "node_netstat_Udp_NoPorts") >= 4
    assert metric(l4_b, "pktpath_drops", reason="SKB_DROP_REASON_NO_SOCKET") >= 4
    assert metric(scrape(sup, "B", "softirq"), "node_softnet_processed", cpu="0") >= 4
    socket_a = scrape(sup, "A", "socket")
    assert metric(socket_a, "pktpath_move_bytes", kind="COPY", func="skb_copy_from_iter") >= 40


def promql(port: int, query: str) -> list[tuple[dict, float]]:
    """An instant query through Prometheus' HTTP API: (labels, value) per series."""
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            body = json.load(reply)
    except OSError:
        return []  # not listening yet
    assert body["status"] == "success", body
    return [(r["metric"], float(r["value"][1])) for r in body["data"]["result"]]


def value(port: int, query: str) -> float | None:
    found = promql(port, query)
    return found[0][1] if found else None


@pytest.fixture
def prometheus(traced, tmp_path):
    """Debian's Prometheus scraping every service of the topology each second."""
    sup, _ = traced
    binary = shutil.which("prometheus")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("prometheus is not installed (.ci/run installs Debian's prometheus)")
        pytest.skip("prometheus is not installed")
    targets = [sup.addrs.http("", "orchestrator")] + [sup.addrs.http(h.name, layer) for h in sup.topology.hosts
                                                      for layer in ("nic", "softirq", "l2", "l3", "l4", "socket")]
    config = tmp_path / "prometheus.yml"
    config.write_text(json.dumps({  # YAML is a superset of JSON
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
        "scrape_configs": [{"job_name": "pktpath", "static_configs": [{"targets": targets}]}]}))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=(tmp_path / "prometheus.log").open("w"))
    try:
        up = wait_for(lambda: value(port, 'count(up{job="pktpath"} == 1)') == len(targets), timeout=30)
        assert up, (promql(port, "up"), (tmp_path / "prometheus.log").read_text()[-2000:])
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_prometheus_scrapes_every_service_and_promql_reads_counters_and_latency(traced, prometheus):
    sup, _ = traced
    no_ports = 'sum(node_netstat_Udp_NoPorts{host="B"})'
    dropped = 'sum(pktpath_drops_total{host="B",layer="l4",reason="SKB_DROP_REASON_NO_SOCKET"})'
    before = value(prometheus, no_ports) or 0, value(prometheus, dropped) or 0
    a = SocketApi(sup.addrs.target("A", "socket"))
    with a.socket() as tx:
        for _ in range(5):
            tx.sendto(b"to a closed port", ("10.0.0.2", 7011))
    assert wait_for(lambda: (value(prometheus, no_ports) or 0) >= before[0] + 5, timeout=20)
    assert wait_for(lambda: (value(prometheus, dropped) or 0) >= before[1] + 5, timeout=5)
    p90 = ('histogram_quantile(0.9, sum by (le) '
           '(rate(pktpath_layer_latency_seconds_bucket{host="B",layer="l4"}[10s])))')
    seconds = wait_for(lambda: finite(value(prometheus, p90)), timeout=10)  # NaN until two scrapes differ
    assert seconds is not None and 0 < seconds < 1, promql(prometheus, p90)
    rx = 'sum(increase(node_network_receive_packets_total{host="B",device="eth0"}[10s]))'
    assert (wait_for(lambda: finite(value(prometheus, rx)), timeout=5) or 0) >= 4, promql(prometheus, rx)


def finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None
