"""Every service's /metrics text: node_exporter's names, read back by prometheus_client's
own parser (an independent reader of the exposition format)."""

from prometheus_client.parser import text_string_to_metric_families

from pktpath.counters import Mib
from pktpath.metrics import observe_latency, render


def families(text: str) -> dict:
    return {f.name: f for f in text_string_to_metric_families(text)}


def value(fams: dict, family: str, sample: str | None = None, **labels) -> float:
    for s in fams[family].samples:
        if (sample is None or s.name == sample) and all(s.labels.get(k) == str(v) for k, v in labels.items()):
            return s.value
    raise KeyError((family, sample, labels))


def test_counters_netdev_stats_and_latency_in_node_exporters_names():
    mib = Mib()
    mib.inc("Udp", "NoPorts", 3)
    mib.inc("Softnet", "time_squeeze", 2)
    mib.inc("Drops", "SKB_DROP_REASON_NO_SOCKET", 3)
    mib.inc("Moves", "COPY skb_copy_datagram_msg", 4)
    mib.inc("MoveBytes", "COPY skb_copy_datagram_msg", 400)
    mib.inc("Hop", "l3Items", 9)
    for seconds in (20e-6, 40e-6, 0.003):
        observe_latency(seconds, 2, mib)
    text = render("B", "l4", mib.snapshot(), {"eth0": {"rx_packets": 7, "rx_bytes": 700, "tx_dropped": 1}})
    fams = families(text)
    assert value(fams, "node_network_receive_packets", device="eth0", host="B", layer="l4") == 7
    assert value(fams, "node_network_transmit_drop", device="eth0") == 1
    assert value(fams, "node_netstat_Udp_NoPorts", host="B") == 3
    assert value(fams, "node_softnet_times_squeezed", cpu="0") == 2
    assert value(fams, "pktpath_drops", reason="SKB_DROP_REASON_NO_SOCKET") == 3
    assert value(fams, "pktpath_moves", kind="COPY", func="skb_copy_datagram_msg") == 4
    assert value(fams, "pktpath_move_bytes", kind="COPY") == 400
    assert value(fams, "pktpath_counter", group="Hop", name="l3Items") == 9
    hist = "pktpath_layer_latency_seconds"
    assert fams[hist].type == "histogram"
    assert value(fams, hist, f"{hist}_bucket", le="2.5e-05") == 2      # cumulative
    assert value(fams, hist, f"{hist}_bucket", le="5e-05") == 4
    assert value(fams, hist, f"{hist}_bucket", le="+Inf") == 6
    assert value(fams, hist, f"{hist}_count") == 6
    assert abs(value(fams, hist, f"{hist}_sum") - 2 * (20e-6 + 40e-6 + 0.003)) < 1e-6


def test_a_layer_shows_its_latency_histogram_at_zero_before_its_first_packet():
    fams = families(render("B", "l4", Mib().snapshot()))
    hist = "pktpath_layer_latency_seconds"
    assert value(fams, hist, f"{hist}_bucket", le="+Inf") == 0 and value(fams, hist, f"{hist}_count") == 0
    assert hist not in families(render("", "orchestrator", Mib().snapshot()))  # it sees no packet itself


def test_the_http_server_refuses_other_hosts_hides_errors_and_answers_head():
    import http.client

    from pktpath.metrics import MetricsServer, host_allowed

    def broken(query):
        raise RuntimeError("secret internals")

    server = MetricsServer("127.0.0.1:0", lambda: "up 1\n", {"/broken": broken})
    try:
        def ask(method, path, host):
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
            conn.request(method, path, headers={"Host": host})
            reply = conn.getresponse()
            return reply.status, reply.read(), reply.getheader("Content-Length")

        assert ask("GET", "/metrics", f"127.0.0.1:{server.port}")[:2] == (200, b"up 1\n")
        assert ask("GET", "/metrics", "localhost")[0] == 200
        assert ask("GET", "/metrics", "attacker.example:80")[0] == 403  # a DNS rebinding's name
        status, body, _ = ask("GET", "/broken", "localhost")
        assert status == 500 and b"secret" not in body
        assert ask("HEAD", "/metrics", "localhost") == (200, b"", "5")  # the length a GET would have
    finally:
        server.close()
    assert host_allowed("[::1]:8080") and host_allowed(None) and not host_allowed("evil.localhost.example")
