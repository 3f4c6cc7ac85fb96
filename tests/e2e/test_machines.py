"""One topology over several "machines" (pktpath.machines): each host of the default and the
router topology in a network and a mount namespace of its own, started there by `pktpath up
TOPOLOGY --only HOST`, its links VXLAN tunnels over a bridge; the orchestrator here collects
over the network. Ping, UDP that needs fragments, TCP 10 MB byte-exact, one packet's trace
across every host, and a host killed and started again. Needs root and `ip netns`; skips
with the reason elsewhere."""

import hashlib
import os
import re
import subprocess
import threading
import time

import pytest

from pktpath.client import SHUT_WR, SOCK_STREAM
from pktpath.machines import Machines
from pktpath.topology import load

from e2ekit import cli_here, free_base_port, read_all, wait_for
from test_dashboard import api
from test_kernel_peer import unavailable

pytestmark = pytest.mark.slow
TEN_MB = 10_000_000


@pytest.fixture(scope="module", params=[("default", 1), ("router", 2)], ids=["default", "router"])
def machines(request, tmp_path_factory):
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    name, net = request.param
    # the default sampling (1 %, and the first 10 packets a second): 10 MB fully traced took twice as long
    m = Machines(name, net, free_base_port(len(load(name).hosts)), tmp_path_factory.mktemp(f"machines-{name}"))
    with m.as_client():  # this test is a client too
        try:
            yield m.start()
        finally:
            failed = m.stop()
    assert failed == []


def last_host_addr(m) -> str:
    """B's address, where A's packets go across every machine."""
    return str(m.topology.host("B").interfaces[0].addr.ip)


def pktpath(m, *words) -> subprocess.CompletedProcess:
    return cli_here(*words, "--topology", m.topology.name, "--base-port", str(m.base))


def test_each_machine_runs_only_its_own_host_and_listens_on_its_own_address(machines):
    for host in machines.hosts:
        ours = subprocess.run(["ip", "netns", "exec", machines.ns(host), "ss", "-Hltn"], capture_output=True,
                              text=True, timeout=10).stdout
        # gRPC's listener is an IPv6 socket on the v4-mapped address
        listening = {line.split()[3].replace("[::ffff:", "").replace("]", "") for line in ours.splitlines()}
        assert machines.orchestrator.addrs.target(host, "socket") in listening, sorted(listening)
        others = [h for h in machines.hosts if h != host]
        assert not any(machines.at[o] in address for o in others for address in listening)


def test_a_ping_crosses_every_machine_and_is_answered(machines):
    out = pktpath(machines, "ping", last_host_addr(machines), "-c", "3", "-i", "0.2", "-W", "5", "--on", "A")
    assert out.returncode == 0 and "3 received" in out.stdout, out.stdout + out.stderr


def test_a_datagram_that_needs_fragments_arrives_whole(machines):
    payload = bytes(range(256)) * 16  # 4096 bytes: three fragments at MTU 1500
    with machines.socket_api("A") as a, machines.socket_api("B") as b, b.socket() as rx, a.socket() as tx:
        rx.bind(("0.0.0.0", 7000))
        tx.sendto(payload, (last_host_addr(machines), 7000))
        got, _ = rx.recvfrom(65535, timeout=10)
    assert got == payload


def test_tcp_moves_10_mb_byte_exact_through_the_tunnels(machines):
    data = os.urandom(TEN_MB)
    with machines.socket_api("A") as a, machines.socket_api("B") as b:
        with b.socket(SOCK_STREAM) as srv:
            srv.bind(("0.0.0.0", 7001))
            srv.listen(1)
            with a.socket(SOCK_STREAM) as cli:
                cli.connect((last_host_addr(machines), 7001), timeout=30)
                conn, _ = srv.accept(timeout=30)
                with conn:
                    got = bytearray()
                    reader = threading.Thread(target=read_all, args=(conn, got), kwargs={"timeout": 60})
                    reader.start()  # B reads while A writes: 10 MB is more than the buffers between them
                    cli.sendall(data)
                    cli.shutdown(SHUT_WR)
                    reader.join(120)
    assert len(got) == TEN_MB and hashlib.sha256(got).digest() == hashlib.sha256(data).digest()


def test_one_packets_trace_crosses_every_machine_in_the_dashboard(machines):
    """A datagram A -> B is traced on every host it crosses, from A's socket to B's, one journey
    put together by the orchestrator from records it collected from each machine."""
    port = 7002
    time.sleep(1.1)  # a new second: the sampler's first ten packets of it are traced, this datagram among them
    with machines.socket_api("A") as a, machines.socket_api("B") as b, b.socket() as rx, a.socket() as tx:
        rx.bind(("0.0.0.0", port))
        tx.sendto(b"across machines", (last_host_addr(machines), port))
        assert rx.recvfrom(100, timeout=10)[0] == b"across machines"

    def journey():
        found = api(machines.orchestrator, f"/api/packets?protocol=udp&dport={port}")["packets"]
        if not found:
            return None
        j = api(machines.orchestrator, f"/api/packet?host={found[0]['origin_host']}&id={found[0]['id']}")
        hosts = {v["host"] for v in j["visits"]}
        return j if hosts == set(machines.hosts) and j["outcome"] == "delivered" else None

    j = wait_for(journey, timeout=20)
    assert j, api(machines.orchestrator, f"/api/packets?protocol=udp&dport={port}")
    layers = [(v["host"], v["layer"]) for v in j["visits"]]
    assert layers[0] == ("A", "socket") and layers[-1] == ("B", "socket"), layers


def test_netem_on_a_tunnelled_link_delays_and_loses_as_on_a_local_one(machines):
    """`tc qdisc change dev eth0 root netem ...` on A: the impairments apply where frames leave
    A's NIC, whether the link is a Unix socket or a tunnel."""
    def tc(*words: str) -> None:
        out = pktpath(machines, "tc", "qdisc", *words, "--on", "A")
        assert out.returncode == 0, out.stderr

    def ping(count: int, wait: str) -> subprocess.CompletedProcess:
        return pktpath(machines, "ping", last_host_addr(machines), "-c", str(count), "-i", "0.2", "-W", wait,
                       "--on", "A")

    def avg_rtt() -> float:
        out = ping(5, "3")
        assert out.returncode == 0, out.stdout
        return float(re.search(r"rtt min/avg/max/mdev = [\d.]+/([\d.]+)/", out.stdout).group(1))

    before = avg_rtt()
    try:
        tc("change", "dev", "eth0", "root", "netem", "delay", "60ms")
        assert avg_rtt() - before >= 50
        tc("change", "dev", "eth0", "root", "netem", "loss", "100%")
        assert ping(2, "1").returncode == 1
    finally:
        tc("del", "dev", "eth0", "root")
    assert avg_rtt() < before + 30


def test_a_host_killed_and_started_again_carries_traffic_again(machines):
    """The machine in the middle (B of default, R of router) goes down at once: A's pings go
    unanswered; started again (new rings, new sockets, the same addresses), they are answered."""
    host = machines.hosts[-1] if len(machines.hosts) == 2 else "R"
    machines.kill(host)
    lost = pktpath(machines, "ping", last_host_addr(machines), "-c", "2", "-i", "0.2", "-W", "1", "--on", "A")
    assert lost.returncode == 1, lost.stdout
    started = time.monotonic()
    machines.up(host)
    out = pktpath(machines, "ping", last_host_addr(machines), "-c", "3", "-i", "0.2", "-W", "5", "--on", "A")
    assert out.returncode == 0 and "3 received" in out.stdout, out.stdout + out.stderr
    assert time.monotonic() - started < 30
