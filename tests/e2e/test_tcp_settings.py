"""A host's TCP settings from the topology: a short TIME_WAIT that ends, and Reno
instead of CUBIC, as `ss` shows them; and sysctls set while it runs."""

import socket
import subprocess
import sys
import time
from importlib import resources

import pytest
from google.protobuf import empty_pb2

from pktpath.rpc import l4_pb2_grpc

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


def cli(sup, *words: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pktpath.cli", *words, "--base-port", str(sup.base_port)],
                          capture_output=True, text=True, timeout=60)


def test_sysctls_set_while_it_runs_change_what_a_syn_offers_and_a_new_sockets_buffer(net):
    """A without SACK and timestamps offers MSS and window scale only, laid out as Linux
    does (NOP, WS after the MSS); B with packetdrill's tcp_rmem announces wscale 8, as Linux
    does with it, and gives a new socket its 540000-byte receive buffer."""
    from pktpath.client import SOCK_STREAM

    sup, a, b = net
    set_a = cli(sup, "sysctl", "-w", "net.ipv4.tcp_sack=0", "net.ipv4.tcp_timestamps=0", "--on", "A")
    assert set_a.stdout.splitlines() == ["net.ipv4.tcp_sack = 0", "net.ipv4.tcp_timestamps = 0"], set_a.stderr
    assert cli(sup, "sysctl", "-w", "net.ipv4.tcp_rmem=4096 540000 15728640", "--on", "B").returncode == 0
    try:
        dump = subprocess.Popen([sys.executable, "-m", "pktpath.cli", "tcpdump", "-i", "A:eth0", "-c", "2",
                                 "tcp", "port", "5102", "--timeout", "30", "--base-port", str(sup.base_port)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert "listening on" in dump.stderr.readline()
        with tcp_connection(a, b, "10.0.0.2", 5102):
            pass
        out, _ = dump.communicate(timeout=40)
        syn, synack = out.splitlines()
        assert "Flags [S], seq" in syn and syn.endswith("options [mss 1460,nop,wscale 10], length 0"), syn
        assert "Flags [S.], seq" in synack and synack.endswith("options [mss 1460,nop,wscale 8], length 0"), synack
        with b.socket(SOCK_STREAM) as fresh:
            assert fresh.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) == 540000
    finally:
        cli(sup, "sysctl", "-w", "net.ipv4.tcp_sack=1", "net.ipv4.tcp_timestamps=1", "--on", "A")
        cli(sup, "sysctl", "-w", "net.ipv4.tcp_rmem=4096 131072 33554432", "--on", "B")
    refused = cli(sup, "sysctl", "-w", "net.ipv4.tcp_notsent_lowat=16384", "--on", "A")
    assert refused.returncode == 1 and "is not modelled: pktpath behaves as 4294967295" in refused.stderr
    assert cli(sup, "sysctl", "net.ipv4.tcp_sack", "--on", "A").stdout == "net.ipv4.tcp_sack = 1\n"
