"""TCP over a link that loses, reorders and duplicates 5 % of the frames each way
(the built-in `lossy` topology): the data still arrives byte-exact, and the
counters show how (retransmissions, the out-of-order queue)."""

import hashlib
import os
import threading

import pytest

from pktpath.client import SHUT_WR
from pktpath.rpc import l4_pb2_grpc, nic_pb2_grpc

from e2ekit import counter, read_all, stub, tcp_connection, with_sockets

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
