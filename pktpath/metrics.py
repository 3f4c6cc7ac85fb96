"""Every service's Prometheus metrics, and the per-layer latency they include.

Names are node_exporter's where it has them: node_network_* from a NIC's
/proc/net/dev counters (label device), node_softnet_* from softnet_stat,
node_netstat_<Group>_<Name> from /proc/net/snmp and netstat (Ip, IpExt, Icmp, IcmpMsg,
Tcp, TcpExt, Udp) and from /proc/net/snmp6, whose names node_exporter splits after their
first "6" (Ip6InReceives: node_netstat_Ip6_InReceives; Icmp6, Udp6, UdpLite6 alike, and
Icmp6InType128: node_netstat_Icmp6_InType128). pktpath's own: drops by reason (pktpath_drops_total), the
data movements of every packet (pktpath_moves_total, pktpath_move_bytes_total by
kind and kernel function), each layer's latency (pktpath_layer_latency_seconds,
a histogram), and every other counter group (pktpath_counter_total{group,name}).
Every series carries the host and the layer.

Latency is a layer's time with a batch of packets, from the batch's arrival to
its hand-off (the hop handler, the NAPI poll), observed once per packet: cheap
enough for all of them, sampled or not.
"""

import ipaddress
import logging
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from pktpath.counters import MOVE_BYTES, MOVES, PROCESS, Mib

log = logging.getLogger(__name__)
LATENCY = "Latency"
BUCKETS_US = (10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 1000000)
NETSTAT_GROUPS = ("Ip", "IpExt", "Icmp", "IcmpMsg", "Tcp", "TcpExt", "Udp", "Ip6", "Icmp6", "Udp6", "UdpLite6")
SOFTNET = {"processed": "node_softnet_processed_total", "dropped": "node_softnet_dropped_total",
           "time_squeeze": "node_softnet_times_squeezed_total"}
NETDEV = {  # rtnl_link_stats64 field -> node_exporter's netdev collector name
    "rx_bytes": "node_network_receive_bytes_total", "rx_packets": "node_network_receive_packets_total",
    "rx_errors": "node_network_receive_errs_total", "rx_dropped": "node_network_receive_drop_total",
    "rx_fifo_errors": "node_network_receive_fifo_total", "multicast": "node_network_receive_multicast_total",
    "tx_bytes": "node_network_transmit_bytes_total", "tx_packets": "node_network_transmit_packets_total",
    "tx_errors": "node_network_transmit_errs_total", "tx_dropped": "node_network_transmit_drop_total",
    "tx_fifo_errors": "node_network_transmit_fifo_total", "collisions": "node_network_transmit_colls_total",
    "tx_carrier_errors": "node_network_transmit_carrier_total",
}
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _bucket_name(us: int) -> str:
    return f"le_{us}us"


def observe_latency(seconds: float, n: int = 1, mib: Mib = PROCESS) -> None:
    """n packets spent `seconds` in this layer (group Latency: a count per bucket, not
    cumulative, plus count and sum_ns)."""
    us = seconds * 1e6
    for bound in BUCKETS_US:
        if us <= bound:
            mib.inc(LATENCY, _bucket_name(bound), n)
            break
    else:
        mib.inc(LATENCY, "le_inf", n)
    mib.inc(LATENCY, "count", n)
    mib.inc(LATENCY, "sum_ns", int(seconds * 1e9) * n)


def _labels(**kw) -> str:
    return "{" + ",".join(f'{k}="{_escape(str(v))}"' for k, v in kw.items()) + "}"


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(host: str, layer: str, groups: dict[str, dict[str, int]], netdevs: dict[str, dict[str, int]] = None) -> str:
    """The exposition text for one service: its counter groups and its devices' stats."""
    base = {"host": host, "layer": layer}
    out: dict[str, list[str]] = {}  # metric name -> sample lines, so each gets one TYPE line
    types: dict[str, str] = {}

    def sample(metric: str, value, mtype: str = "counter", **labels) -> None:
        types.setdefault(metric, mtype)
        out.setdefault(metric, []).append(f"{metric}{_labels(**base, **labels)} {value}")

    for dev, stats in sorted((netdevs or {}).items()):
        for field, name in NETDEV.items():
            if field in stats:
                sample(name, stats[field], device=dev)
    for group, values in sorted(groups.items()):
        for name, value in sorted(values.items()):
            if group in NETSTAT_GROUPS:
                sample(f"node_netstat_{group}_{name}", value, "untyped")
            elif group == "Softnet" and name in SOFTNET:
                sample(SOFTNET[name], value, cpu="0")
            elif group == "Drops":
                sample("pktpath_drops_total", value, reason=name)
            elif group in (MOVES, MOVE_BYTES):
                kind, func = name.split(" ", 1)
                sample("pktpath_moves_total" if group == MOVES else "pktpath_move_bytes_total", value, kind=kind,
                       func=func)
            elif group != LATENCY:
                sample("pktpath_counter_total", value, group=group, name=name)
    latency = groups.get(LATENCY)
    if latency is not None or layer != "orchestrator":  # from the start, zeros: rate() needs the 0 before the 1
        latency = latency or {}
        name = "pktpath_layer_latency_seconds"
        types[name] = "histogram"
        lines, cumulative = [], 0
        for bound in BUCKETS_US:
            cumulative += latency.get(_bucket_name(bound), 0)
            lines.append(f"{name}_bucket{_labels(**base, le=bound / 1e6)} {cumulative}")
        lines.append(f"{name}_bucket{_labels(**base, le='+Inf')} {latency.get('count', 0)}")
        lines.append(f"{name}_sum{_labels(**base)} {latency.get('sum_ns', 0) / 1e9}")
        lines.append(f"{name}_count{_labels(**base)} {latency.get('count', 0)}")
        out[name] = lines
    text = []
    for name, lines in out.items():
        text.append(f"# TYPE {name} {types[name]}")
        text += lines
    return "\n".join(text) + "\n"


def host_allowed(host_header: str | None, extra: tuple[str, ...] = ()) -> bool:
    """Is a request's Host one this server answers? An address, localhost, or a name
    PKTPATH_HTTP_HOSTS lists: a page of another domain that a DNS rebinding points at
    127.0.0.1 comes with its own name and is refused."""
    if not host_header:
        return True  # HTTP/1.0, or a tool that sends none: no browser page does that
    name = host_header.rsplit(":", 1)[0] if not host_header.endswith("]") else host_header
    name = name.strip("[]").lower().rstrip(".")
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return name in ("localhost", *extra)


class MetricsServer:
    """GET (and HEAD) /metrics over HTTP, on a thread; other paths may be added (the
    dashboard's). A request whose Host is a name not its own is refused (403); a failure
    answers 500 without its text (it goes to the log)."""

    def __init__(self, listen: str, metrics: Callable[[], str],
                 routes: dict[str, Callable[[dict], tuple[int, str, bytes]]] | None = None) -> None:
        host, port = listen.rsplit(":", 1)
        routes = {"/metrics": lambda query: (200, CONTENT_TYPE, metrics().encode()), **(routes or {})}

        allowed = tuple(h.strip().lower() for h in os.environ.get("PKTPATH_HTTP_HOSTS", "").split(",") if h.strip())

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> tuple[int, str, bytes]:
                if not host_allowed(self.headers.get("Host"), allowed):
                    return 403, "text/plain", b"this server answers requests for its address or localhost\n"
                path, _, qs = self.path.partition("?")
                query = dict(p.split("=", 1) if "=" in p else (p, "") for p in qs.split("&") if p)
                route = routes.get(path)
                try:
                    return route(query) if route else (404, "text/plain", b"not found\n")
                except Exception as exc:  # a bad request or a peer gone: an answer, never a dead server
                    log.warning("%s %s: %s: %s", self.command, self.path[:200], type(exc).__name__, exc)
                    return 500, "text/plain", b"internal error (the service's log says what)\n"

            def do_GET(self, body: bool = True):
                status, ctype, content = self._answer()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                if body:
                    self.wfile.write(content)

            def do_HEAD(self):
                self.do_GET(body=False)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer((host, int(port)), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, name="metrics", daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
