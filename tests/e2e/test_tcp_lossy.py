"""TCP over a link that loses, reorders and duplicates 5 % of the frames each way
(the built-in `lossy` topology): 10 MB over IPv4 and 10 MB over IPv6 at the same time, on two
connections, each arriving byte-exact, and the counters show how: the hosts' Tcp RetransSegs
and TcpExt TCPOFOQueue (one MIB for both families, as Linux has it) and, per connection, TCP_INFO's
tcpi_total_retrans at the sender and tcpi_rcv_ooopack at the receiver."""

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor

import pytest
from google.protobuf import empty_pb2

from pktpath.client import AF_INET6, SHUT_WR, SOCK_STREAM
from pktpath.pb import l4_pb2
from pktpath.rpc import l4_pb2_grpc, nic_pb2_grpc
from pktpath.wire.tcp_info import unpack

from e2ekit import counter, ipv6_ready, listener, read_all, stub, with_sockets

pytestmark = pytest.mark.slow
MB10 = 10_000_000


@pytest.fixture(scope="module")
def net(lossy_topology):
    yield from with_sockets(lossy_topology, "A", "B")


def tcp_infos(l4, ports: tuple[int, ...]) -> dict[int, dict]:
    """TCP_INFO of a host's connections to or from the ports, by family (L4's tcp_get_info)."""
    out = {}
    for t in l4.GetTcpSockets(empty_pb2.Empty(), timeout=5).socks:
        if t.dport and {t.sport, t.dport} & set(ports):
            out[t.family] = unpack(l4.TcpGetInfo(l4_pb2.TcpSk(sk=t.sk), timeout=5).info)
    return out


def send_all(sock, data: bytes) -> None:
    sock.sendall(data)
    sock.shutdown(SHUT_WR)


def test_ten_megabytes_over_ipv4_and_over_ipv6_at_once_arrive_byte_exact(net):
    """tcp_v4_rcv's and tcp_v6_rcv's out-of-order queues and retransmissions side by side, on
    one lossy link (neighbour discovery on it first)."""
    sup, a, b = net
    assert ipv6_ready(sup, "A", "B", timeout=20)
    l4_a, l4_b = stub(sup, "A", "l4", l4_pb2_grpc.L4Stub), stub(sup, "B", "l4", l4_pb2_grpc.L4Stub)
    retrans, ofo = counter(l4_a, "Tcp", "RetransSegs"), counter(l4_b, "TcpExt", "TCPOFOQueue")
    data = {4: os.urandom(MB10), 6: os.urandom(MB10)}
    got = {4: bytearray(), 6: bytearray()}
    ports = (6001, 6002)
    with listener(b, ports[0]) as srv4, b.socket(SOCK_STREAM, family=AF_INET6) as srv6, \
            a.socket(SOCK_STREAM) as cli4, a.socket(SOCK_STREAM, family=AF_INET6) as cli6:
        srv6.bind(("::", ports[1]))
        srv6.listen(4)
        cli4.connect(("10.0.0.2", ports[0]), timeout=30)
        cli6.connect(("2001:db8::2", ports[1]), timeout=30)
        conn4, peer4 = srv4.accept(timeout=30)
        conn6, peer6 = srv6.accept(timeout=30)
        with conn4, conn6:
            assert peer4[0] == "10.0.0.1" and peer6[0] == "2001:db8::1"
            with ThreadPoolExecutor(4) as pool:  # each connection: a writer and a reader
                jobs = [pool.submit(read_all, conn4, got[4], 120), pool.submit(read_all, conn6, got[6], 120),
                        pool.submit(send_all, cli4, data[4]), pool.submit(send_all, cli6, data[6])]
                for job in jobs:
                    job.result(timeout=300)
            sent, received = tcp_infos(l4_a, ports), tcp_infos(l4_b, ports)
    for v in (4, 6):
        assert len(got[v]) == MB10 and hashlib.sha256(got[v]).digest() == hashlib.sha256(data[v]).digest(), v
    assert counter(l4_a, "Tcp", "RetransSegs") > retrans and counter(l4_b, "TcpExt", "TCPOFOQueue") > ofo
    assert set(sent) == set(received) == {2, 10}  # AF_INET's connection and AF_INET6's
    for family in (2, 10):
        assert sent[family]["tcpi_total_retrans"] > 0 and received[family]["tcpi_rcv_ooopack"] > 0, family
    nic_a = stub(sup, "A", "nic", nic_pb2_grpc.NicStub)
    assert all(counter(nic_a, "Link", what) > 0 for what in ("Loss", "Duplicate", "Reorder"))
