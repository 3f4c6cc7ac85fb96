"""TCP_INFO's per-connection loss counts (struct tcp_info): tcpi_total_retrans, the segments a
connection sent again (tp->total_retrans, __tcp_retransmit_skb), and tcpi_rcv_ooopack, the
segments it queued out of order (tp->rcv_ooopack, tcp_data_queue_ofo), which Linux keeps per
socket while its Tcp and TcpExt counters (RetransSegs, TCPOFOQueue) are the host's, both
families' together. One lost data segment over IPv6 and over IPv4 between two hosts."""

import pytest

from pktpath.services.l4.tcp.info import tcp_get_info
from pktpath.wire.tcp_info import unpack

from twohosts import TwoHosts

AF_INET, AF_INET6, SOCK_STREAM = 2, 10, 1
IPPROTO_TCP, TCP_NODELAY = 6, 1


@pytest.fixture
def net():
    h = TwoHosts()
    h.run(3)  # duplicate address detection
    yield h
    h.close()


def tcp_info(host, port: int, **match) -> dict:
    tp = next(t for t in host.l4.tcp.sockets() if port in (t.sport, t.dport) and t.dport and all(
        getattr(t, k) == v for k, v in match.items()))
    return unpack(tcp_get_info(tp, 0.04))


@pytest.mark.parametrize("family, server", [(AF_INET6, "2001:db8::2"), (AF_INET, "10.0.0.2")])
def test_a_lost_segment_counts_once_retransmitted_at_the_sender_and_out_of_order_at_the_receiver(net, family, server):
    srv = net.b.api.socket(SOCK_STREAM, 0, family)
    srv.bind(("::" if family == AF_INET6 else "0.0.0.0", 5000))
    srv.listen()
    c = net.a.api.socket(SOCK_STREAM, 0, family)
    c.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1)  # the second write goes before the first is acknowledged
    with pytest.raises(BlockingIOError):
        c.connect((server, 5000), nonblocking=True)
    net.run(0.05)
    conn, _ = srv.accept()
    assert tcp_info(net.a, 5000)["tcpi_total_retrans"] == 0 and tcp_info(net.b, 5000)["tcpi_rcv_ooopack"] == 0
    net.a.cable.cut = True
    c.send(b"a" * 1000)  # lost on the wire
    net.run(0.001)
    net.a.cable.cut = False
    c.send(b"b" * 1000)  # arrives first: out of order
    net.run(2)
    got = conn.recv()
    while len(got) < 2000:
        got += conn.recv()
    assert got == b"a" * 1000 + b"b" * 1000
    assert tcp_info(net.a, 5000)["tcpi_total_retrans"] >= 1
    assert tcp_info(net.b, 5000)["tcpi_rcv_ooopack"] == 1
