"""TCP over a link that loses, reorders and duplicates 5 % of the frames each way
(the built-in `lossy` topology): the data still arrives byte-exact, over IPv4 and
over IPv6, and the counters show how (retransmissions, the out-of-order queue)."""

import hashlib
import os
import subprocess
import sys
import threading

import pytest

from pktpath.client import AF_INET6, SHUT_WR, SOCK_STREAM
from pktpath.rpc import l4_pb2_grpc, nic_pb2_grpc

from e2ekit import counter, read_all, stub, tcp_connection, wait_for, with_sockets

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def net(lossy_topology):
    yield from with_sockets(lossy_topology, "A", "B")


def test_ten_megabytes_over_a_lossy_link_arrive_byte_exact(net):
    sup, a, b = net
    data = os.urandom(10_000_000)
    got = bytearray()
    with tcp_connection(a, b, "10.0.0.2", 6001) as (_, cli, conn):
        reader = threading.Thread(target=read_all, args=(conn, got, 120))
        reader.start()
        cli.sendall(data)
        cli.shutdown(SHUT_WR)
        reader.join(300)
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    l4_a, l4_b = stub(sup, "A", "l4", l4_pb2_grpc.L4Stub), stub(sup, "B", "l4", l4_pb2_grpc.L4Stub)
    assert counter(l4_a, "Tcp", "RetransSegs") > 0
    assert counter(l4_b, "TcpExt", "TCPOFOQueue") > 0
    nic_a = stub(sup, "A", "nic", nic_pb2_grpc.NicStub)
    assert all(counter(nic_a, "Link", what) > 0 for what in ("Loss", "Duplicate", "Reorder"))


def addresses_ready(sup, host: str) -> bool:
    out = subprocess.run([sys.executable, "-m", "pktpath.cli", "ip", "-6", "addr", "show", "--on", host,
                          "--base-port", str(sup.base_port)], capture_output=True, text=True, timeout=30)
    return out.returncode == 0 and "2001:db8::" in out.stdout and "tentative" not in out.stdout


def test_two_megabytes_over_ipv6_on_the_lossy_link_arrive_byte_exact(net):
    """tcp_v6_rcv's out-of-order queue and the retransmissions over IPv6, neighbour discovery
    on the same lossy link first."""
    sup, a, b = net
    assert wait_for(lambda: addresses_ready(sup, "A") and addresses_ready(sup, "B"), timeout=20)
    l4_a, l4_b = stub(sup, "A", "l4", l4_pb2_grpc.L4Stub), stub(sup, "B", "l4", l4_pb2_grpc.L4Stub)
    retrans, ofo = counter(l4_a, "Tcp", "RetransSegs"), counter(l4_b, "TcpExt", "TCPOFOQueue")
    data = os.urandom(2_000_000)
    got = bytearray()
    with b.socket(SOCK_STREAM, family=AF_INET6) as srv, a.socket(SOCK_STREAM, family=AF_INET6) as cli:
        srv.bind(("::", 6002))
        srv.listen(4)
        cli.connect(("2001:db8::2", 6002), timeout=30)
        conn, peer = srv.accept(timeout=30)
        with conn:
            assert peer[0] == "2001:db8::1"
            reader = threading.Thread(target=read_all, args=(conn, got, 120))
            reader.start()
            cli.sendall(data)
            cli.shutdown(SHUT_WR)
            reader.join(300)
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    assert counter(l4_a, "Tcp", "RetransSegs") > retrans and counter(l4_b, "TcpExt", "TCPOFOQueue") > ofo
