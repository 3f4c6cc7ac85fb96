"""The copy count: every case of `pktpath copies` through running topologies, its COPY,
CLONE and DMA counted from the packets' own traces."""

import pytest

from pktpath.client import SocketApi
from pktpath.copies import CASES, Traces, run_case, summary

pytestmark = pytest.mark.slow

# case: (CPU copies, bytes copied, clones, DMAs); a range where GRO decides
EXPECTED = {
    "TCP 100 B": (2, 200, 1, 2),
    # copied in once, cloned once as a GSO packet whose 7 segments each get a copy of the
    # headers (66 B); B's reader copies out what GRO merged: 1..7 skbs
    "TCP 10 kB": (range(9, 16), 20_462, 1, 14),
    "UDP 100 B": (2, 200, 0, 2),
    "UDP 3000 B (fragmented)": (2, 6000, 0, 6),  # fragmenting our own datagram copies nothing
    "UDP 1400 B forwarded by R onto MTU 1000": (4, 4248, 0, 6),  # R's slow path copies each fragment
}


@pytest.fixture(scope="module")
def topologies(default_topology, router_topology):
    return {"default": default_topology, "router": router_topology}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_copy_count(topologies, case):
    sup = topologies[case.topology]
    a, b = (SocketApi(sup.addrs.target(h.name, "socket")) for h in (sup.topology.hosts[0], sup.topology.hosts[-1]))
    moves = run_case(case, a, b, Traces(sup.addrs), 7500 + CASES.index(case))
    c = summary(moves)
    got = (c["COPY"], c["COPY bytes"], c["CLONE"], c["DMA"])
    assert all(g in w if isinstance(w, range) else g == w for g, w in zip(got, EXPECTED[case.name])), (got, moves)
    assert all(m.nbytes == 232 for m in moves if m.kind == "CLONE")  # a header, never the data
