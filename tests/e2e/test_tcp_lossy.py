"""TCP over a link that loses, reorders and duplicates 5 % of the frames each way
(the built-in `lossy` topology): the data still arrives byte-exact, and the
counters show how (retransmissions, the out-of-order queue)."""

import hashlib
import os
import threading

import pytest

from pktpath.client import SHUT_WR, SO_SNDBUF, SOCK_STREAM, SOL_SOCKET
from pktpath.pb import l4_pb2_grpc, nic_pb2_grpc

from e2ekit import counter, stub, with_sockets

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def net(lossy_topology):
    yield from with_sockets(lossy_topology, "A", "B")


def test_a_megabyte_over_a_lossy_link_arrives_byte_exact(net):
    sup, a, b = net
    data = os.urandom(1_000_000)
    got = bytearray()
    with b.socket(SOCK_STREAM) as srv, a.socket(SOCK_STREAM) as cli:
        srv.bind(("0.0.0.0", 6001))
        srv.listen(1)
        cli.setsockopt(SOL_SOCKET, SO_SNDBUF, 1 << 20)
        cli.connect(("10.0.0.2", 6001), timeout=30)
        conn, _ = srv.accept(timeout=30)

        def read():
            while chunk := conn.recv(1 << 20, timeout=60):
                got.extend(chunk)

        reader = threading.Thread(target=read)
        reader.start()
        cli.sendall(data)
        cli.shutdown(SHUT_WR)
        reader.join(120)
        conn.close()
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    l4_a, l4_b = stub(sup, "A", "l4", l4_pb2_grpc.L4Stub), stub(sup, "B", "l4", l4_pb2_grpc.L4Stub)
    assert counter(l4_a, "Tcp", "RetransSegs") > 0
    assert counter(l4_b, "TcpExt", "TCPOFOQueue") > 0
    nic_a = stub(sup, "A", "nic", nic_pb2_grpc.NicStub)
    assert all(counter(nic_a, "Link", what) > 0 for what in ("Loss", "Duplicate", "Reorder"))
