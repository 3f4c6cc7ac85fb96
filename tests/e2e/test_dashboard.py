"""The web dashboard end to end: every service its own process, the orchestrator serving the
page and its JSON on its HTTP port, and Debian's headless Chromium rendering it. A UDP
datagram from A to B is traced (every packet is sampled here); its journey, deep-linked as
/#packet=A:<id>, shows the layers it crossed on both hosts in order with the copies, and the
headers at skb->data; the topology shows live counters of every layer. Screenshots are kept
as test artifacts (in $PKTPATH_TEST_ARTIFACTS, else the test's temporary directory)."""

import json
import os
import shutil
import subprocess
import urllib.error
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import pytest

from pktpath.client import SocketApi
from pktpath.supervisor import Supervisor
from pktpath.topology import load

from e2ekit import free_base_port, wait_for

pytestmark = pytest.mark.slow
TX = [("A", "socket"), ("A", "l4"), ("A", "l3"), ("A", "l2"), ("A", "softirq"), ("A", "nic")]
RX = [("B", "nic"), ("B", "softirq"), ("B", "l2"), ("B", "l3"), ("B", "l4"), ("B", "socket")]
PORT = 7101


def chromium() -> str:
    """Debian's chromium: CI installs it and must run this test; a developer without it is told how."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("chromium is not installed: the dashboard test needs it in CI (apt-get install chromium)")
    pytest.skip("chromium is not installed (apt-get install chromium); CI runs this test")


@pytest.fixture(scope="module")
def browser() -> str:
    return chromium()


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> Path:
    where = os.environ.get("PKTPATH_TEST_ARTIFACTS")
    path = Path(where) if where else tmp_path_factory.mktemp("artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def topology(tmp_path_factory):
    env = {**os.environ, "OTEL_TRACES_SAMPLER_ARG": "1", "OTEL_TRACES_EXPORTER": "none"}  # every packet traced
    sup = Supervisor(load("default"), free_base_port(2), log_dir=tmp_path_factory.mktemp("logs-dashboard"), env=env)
    sup.start(timeout=60)
    try:
        yield sup
    finally:
        statuses = sup.stop()
    assert all(rc == 0 for _, _, rc in statuses), statuses


def url(sup, path: str = "/") -> str:
    return f"http://{sup.addrs.http('', 'orchestrator')}{path}"


def api(sup, path: str) -> dict:
    with urllib.request.urlopen(url(sup, path), timeout=10) as reply:
        assert reply.headers["Content-Type"].startswith("application/json")
        return json.loads(reply.read())


@pytest.fixture(scope="module")
def datagram(topology) -> dict:
    """A datagram A -> B, delivered; its journey once both hosts' records are in."""
    a, b = (SocketApi(topology.addrs.target(h, "socket")) for h in ("A", "B"))
    with a, b, b.socket() as rx, a.socket() as tx:
        rx.bind(("0.0.0.0", PORT))
        tx.sendto(b"to the dashboard", ("10.0.0.2", PORT))
        assert rx.recvfrom(100, timeout=10)[0] == b"to the dashboard"

    def journey():
        found = api(topology, f"/api/packets?protocol=udp&dport={PORT}")["packets"]
        if not found:
            return None
        j = api(topology, f"/api/packet?host={found[0]['origin_host']}&id={found[0]['id']}")
        return j if set(TX + RX) <= {(v["host"], v["layer"]) for v in j["visits"]} else None

    j = wait_for(journey, timeout=15)
    assert j, "the orchestrator never had the datagram's whole journey"
    return j


class Dom(HTMLParser):
    """The elements of a dumped DOM, as (tag, attributes), in document order; and the text."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)

    def having(self, css_class: str) -> list[dict]:
        return [a for _, a in self.elements if css_class in (a.get("class") or "").split()]


def run(browser: str, tmp: Path, target: str, *args: str) -> subprocess.CompletedProcess:
    """Headless Chromium on target; virtual time lets the page's fetches and first polls finish."""
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--hide-scrollbars", f"--user-data-dir={tmp}", "--virtual-time-budget=10000", *args, target]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def dump_dom(browser: str, tmp: Path, target: str) -> Dom:
    return Dom(run(browser, tmp, target, "--dump-dom").stdout)


def screenshot(browser: str, tmp: Path, target: str, path: Path, size: str = "1400,1000") -> None:
    run(browser, tmp, target, f"--screenshot={path}", f"--window-size={size}")
    assert path.stat().st_size > 10_000, f"{path} looks empty"


def in_order(visited: list, expected: list) -> bool:
    it = iter(visited)
    return all(step in it for step in expected)


def test_the_journey_view_shows_the_layers_a_datagram_crossed_on_both_hosts(topology, datagram, browser, artifacts,
                                                                          tmp_path):
    target = url(topology, f"/#packet=A:{datagram['id']}")
    dom = dump_dom(browser, tmp_path / "profile", target)
    (body,) = [a for tag, a in dom.elements if tag == "body"]
    assert body.get("data-journey") == f"A:{datagram['id']}", "the journey view did not load"
    rows = dom.having("wf-row")
    assert in_order([(r["data-host"], r["data-layer"]) for r in rows], TX + RX), rows
    marks = [m["data-kind"] for m in dom.having("mark") if "data-kind" in m]
    assert marks.count("COPY") == 2 and "DMA" in marks  # user -> skb on A, skb -> user on B; the NICs' DMA
    text = " ".join(dom.text)
    assert "10.0.0.1" in text and f"10.0.0.2:{PORT} udp" in text and "delivered" in text
    # the selected visit (B's softirq: a whole frame at skb->data) decoded in the kernel's field names
    assert {"ethernet", "ipv4", "udp"} <= {h["data-proto"] for h in dom.having("hdr")}
    assert "h_dest" in text and "saddr" in text and "tot_len" in text
    screenshot(browser, tmp_path / "profile", target, artifacts / "dashboard-journey.png")


def test_the_topology_shows_live_counters_of_every_layer(topology, datagram, browser, artifacts, tmp_path):
    counters = api(topology, "/api/counters")
    hosts = {h["name"]: h["layers"] for h in counters["hosts"]}
    assert all(layer["up"] for layers in hosts.values() for layer in layers.values())
    assert hosts["B"]["nic"]["summary"]["packets"] >= 1 and hosts["B"]["nic"]["summary"]["latency"]["p99_us"] > 0
    assert hosts["A"]["socket"]["summary"]["moves"]["COPY"]["count"] >= 1
    target = url(topology, "/")
    dom = dump_dom(browser, tmp_path / "profile", target)
    boxes = {(b["data-host"], b["data-layer"]) for b in dom.having("layer") if "data-layer" in b}
    assert boxes == set(TX + RX)
    assert f"A:{datagram['id']}" in {r.get("data-packet") for _, r in dom.elements}  # in the recent packets
    assert "eth0 ⟷ eth0" in " ".join(dom.text)  # the link between the NICs
    screenshot(browser, tmp_path / "profile", target, artifacts / "dashboard-topology.png", "1400,1900")


def test_the_api_answers_errors_as_json(topology):
    for path, status in (("/api/packet?host=A&id=12345", 404), ("/api/packets?addr=10.0.0.300", 400)):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(url(topology, path), timeout=10)
        assert err.value.code == status and "error" in json.loads(err.value.read())
    assert api(topology, "/api/topology")["hosts"][0]["interfaces"][0]["addr"] == "10.0.0.1/24"
