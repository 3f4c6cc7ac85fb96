"""The copy count: every case of `pktpath copies` through running topologies, its COPY,
CLONE and DMA counted from the packets' own traces."""

import pytest

from pktpath.client import AF_INET6, SocketApi
from pktpath.tools.copies import CASES, Traces, run_case, summary
from pktpath.pb import trace_pb2
from pktpath.rpc import orchestrator_pb2_grpc

from e2ekit import ipv6_ready, wait_for

pytestmark = pytest.mark.slow

# case: (CPU copies, bytes copied, clones, DMAs); a range where GRO decides
EXPECTED = {
    "TCP 100 B": (2, 200, 1, 2),
    # copied in once, sent (a CLONE each) as 2 to 4 packets of at most half of cwnd
    # (tcp_cwnd_test: 5 of the 7 segments), the segments of each GSO one getting a copy of
    # the headers (66 B); B's reader copies out what GRO merged: 1..7 skbs
    "TCP 10 kB": (range(9, 16), range(20_000 + 2 * 66, 20_000 + 7 * 66 + 1), range(2, 5), 14),
    "UDP 100 B": (2, 200, 0, 2),
    "UDP 3000 B (fragmented)": (2, 6000, 0, 6),  # fragmenting our own datagram copies nothing
    "UDP 1400 B forwarded by R onto MTU 1280": (4, 4248, 0, 6),  # R's slow path copies each fragment
    # over IPv6 the MSS is 1428 (the header 20 bytes longer): 8 segments, each GSO one's headers
    # 86 B (Ethernet, IPv6, TCP with timestamps); B's reader copies out 1..8 skbs
    "TCP 10 kB over IPv6": (range(4, 18), range(20_000 + 2 * 86, 20_000 + 8 * 86 + 1), range(2, 6), 16),
    "UDP 3000 B over IPv6 (fragmented)": (2, 6000, 0, 6),  # ip6_fragment's fast path for our own datagram
}


@pytest.fixture(scope="module")
def topologies(default_topology, router_topology):
    return {"default": default_topology, "router": router_topology}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_copy_count(topologies, case):
    sup = topologies[case.topology]
    if case.family == AF_INET6:
        assert ipv6_ready(sup, "A", "B"), "the hosts' IPv6 addresses stayed tentative"
    a, b = (SocketApi(sup.addrs.target(h.name, "socket")) for h in (sup.topology.hosts[0], sup.topology.hosts[-1]))
    moves = run_case(case, a, b, Traces(sup.addrs), 7500 + CASES.index(case))
    c = summary(moves)
    got = (c["COPY"], c["COPY bytes"], c["CLONE"], c["DMA"])
    assert all(g in w if isinstance(w, range) else g == w for g, w in zip(got, EXPECTED[case.name])), (got, moves)
    assert all(m.nbytes == 232 for m in moves if m.kind == "CLONE")  # a header, never the data


def test_copies_running_counts_every_packet_not_only_the_sampled(topologies):
    """`pktpath copies --running`: the movements every service counted, sampled or not,
    grow by exactly what an unsampled send makes (one COPY in, one out; a DMA each side)."""
    import subprocess
    import sys

    sup = topologies["default"]

    def table() -> dict:
        out = subprocess.run([sys.executable, "-m", "pktpath.cli", "copies", "--running", "--base-port",
                              str(sup.base_port)], capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        rows = [line.split() for line in out.stdout.splitlines()[1:]]
        return {tuple(r[:4]): (int(r[4]), int(r[5])) for r in rows}

    a, b = (SocketApi(sup.addrs.target(h, "socket")) for h in ("A", "B"))
    orch = orchestrator_pb2_grpc.OrchestratorStub(sup.addrs.channel("", "orchestrator"))
    orch.SetSampling(trace_pb2.Sampling(rate=0), timeout=5)  # nothing traced from here on
    try:
        before = table()
        with b.socket() as rx, a.socket() as tx:
            rx.bind(("0.0.0.0", 7600))
            tx.sendto(b"n" * 300, ("10.0.0.2", 7600))
            assert rx.recvfrom(1000, timeout=10)[0] == b"n" * 300
    finally:
        orch.SetSampling(trace_pb2.Sampling(rate=1), timeout=5)
    after = wait_for(lambda: (t := table())[("DMA", "B", "nic", "napi_gro_receive")][0] > before.get(
        ("DMA", "B", "nic", "napi_gro_receive"), (0, 0))[0] and t)

    def grew(key):
        return tuple(x - y for x, y in zip(after[key], before.get(key, (0, 0))))

    assert grew(("COPY", "A", "socket", "skb_copy_from_iter")) == (1, 300)
    assert grew(("COPY", "B", "socket", "skb_copy_datagram_msg")) == (1, 300)
