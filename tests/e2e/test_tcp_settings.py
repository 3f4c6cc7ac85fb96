"""A host's TCP settings from the topology: a short TIME_WAIT that ends, and Reno
instead of CUBIC, as `ss` shows them."""

import time
from importlib import resources

import pytest
from google.protobuf import empty_pb2

from pktpath.pb import l4_pb2_grpc

from conftest import running
from e2ekit import stub, tcp_connection, wait_for, with_sockets

pytestmark = pytest.mark.slow

TIMEWAIT_S = 1.0


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    """The default topology with A's TIME_WAIT short and B on Reno."""
    base = resources.files("pktpath.topologies").joinpath("default.toml").read_text()
    path = tmp_path_factory.mktemp("topo") / "settings.toml"
    path.write_text(base.replace('name = "A"', f'name = "A"\ntcp_timewait = {TIMEWAIT_S}')
                        .replace('name = "B"', 'name = "B"\ntcp_congestion_control = "reno"'))
    for sup in running(str(path), tmp_path_factory):
        yield from with_sockets(sup, "A", "B")


def tcp_socks(sup, host: str):
    return stub(sup, host, "l4", l4_pb2_grpc.L4Stub).GetTcpSockets(empty_pb2.Empty(), timeout=5).socks


def test_the_active_closer_waits_in_time_wait_then_forgets_the_connection(net):
    sup, a, b = net
    with tcp_connection(a, b, "10.0.0.2", 5100) as (_, cli, conn):
        sport = cli.getsockname()[1]
        cli.close()  # A closes first: A ends in TIME_WAIT
        assert conn.recv(10, timeout=10) == b""
        conn.close()
        mine = lambda: [t.state for t in tcp_socks(sup, "A") if t.sport == sport]  # noqa: E731
        assert wait_for(lambda: mine() == ["TIME-WAIT"], 5)
        closed_at = time.monotonic()
        assert wait_for(lambda: mine() == [], 10)
        assert time.monotonic() - closed_at < TIMEWAIT_S + 2


def test_a_host_set_to_reno_uses_reno(net):
    sup, a, b = net
    with tcp_connection(a, b, "10.0.0.2", 5101):
        on_b = {t.cong for t in tcp_socks(sup, "B") if t.sport == 5101 and t.state == "ESTAB"}
        on_a = {t.cong for t in tcp_socks(sup, "A") if t.dport == 5101}
        assert on_b == {"reno"} and on_a == {"cubic"}
