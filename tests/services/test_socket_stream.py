"""The socket layer's TCP half without gRPC: L4's callbacks feeding the receive queue,
recv across skbs, a send that waits for acknowledgements, accept, connect's outcome."""

import errno
import threading
import time

import pytest

from pktpath import skbuff as s
from pktpath.counters import Mib
from pktpath.flow import TcpChild
from pktpath.services.socket.sock import AF_INET, MSG_DONTWAIT, SOCK_STREAM, SocketLayer
from pktpath.sockerr import SockError
from pktpath.wire.addr import ip_from_str as ip

A, B = ip("10.0.0.1"), ip("10.0.0.2")


class FakeL4:
    """Port tables and L4's TCP calls, recorded."""

    def __init__(self) -> None:
        self.calls, self.sent, self.read = [], [], []
        self.connect_errno = 0

    # the port tables
    def hash(self, sock):
        return sock.saddr or A, sock.sport or 40000, sock.daddr, sock.dport

    def unhash(self, sock):
        self.calls.append(("unhash", sock.sk))

    # TCP
    def connect(self, sock):
        self.calls.append(("connect", sock.sk))
        return self.connect_errno

    def listen(self, sock, backlog):
        self.calls.append(("listen", sock.sk, backlog))

    def accepted(self, listener_sk, child_sk):
        self.calls.append(("accepted", listener_sk, child_sk))

    def sendmsg(self, skbs):
        self.sent.extend(skbs)

    def recvd(self, sk, copied):
        self.read.append(copied)

    def shutdown(self, sk, how):
        self.calls.append(("shutdown", sk, how))

    def close(self, sk):
        self.calls.append(("close", sk))

    def abort(self, sk):
        self.calls.append(("abort", sk))

    def setsockopt(self, sock):
        self.calls.append(("setsockopt", sock.sk))


@pytest.fixture
def layer():
    l4 = FakeL4()
    return SocketLayer("B", l4, Mib(), l4)


def data_skb(sk: int, payload: bytes):
    skb = s.alloc_skb(s.MAX_HEADER + len(payload))
    s.skb_reserve(skb, s.MAX_HEADER)
    s.skb_put_data(skb, payload)
    skb.sk = sk
    return skb


def established(layer, mss: int = 1448):
    sock = layer.socket(AF_INET, SOCK_STREAM, 0)
    threading.Timer(0.05, lambda: layer.stream.callbacks([("established", sock.sk, mss, None, None)])).start()
    layer.connect(sock, B, 80, timeout=5)
    return sock


def test_connect_waits_for_the_handshake_and_reports_a_refusal(layer):
    sock = established(layer)
    assert sock.stream.state == "ESTABLISHED" and ("connect", sock.sk) in layer.l4.calls
    refused = layer.socket(AF_INET, SOCK_STREAM, 0)
    threading.Timer(0.05, lambda: layer.stream.callbacks([("error", refused.sk, errno.ECONNREFUSED, None, None),
                                                          ("closed", refused.sk, 0, None, None)])).start()
    with pytest.raises(SockError) as exc:
        layer.connect(refused, B, 81, timeout=5)
    assert exc.value.errno == errno.ECONNREFUSED


def test_recv_takes_bytes_across_skbs_and_tells_l4_what_it_read(layer):
    sock = established(layer)
    layer.stream.callbacks([("data", sock.sk, 0, data_skb(sock.sk, b"hello "), None),
                            ("data", sock.sk, 0, data_skb(sock.sk, b"world"), None)])
    assert layer.recvfrom(sock, 8).data == b"hello wo"   # a part of the second skb
    assert layer.recvfrom(sock, 100).data == b"rld"
    assert layer.l4.read == [8, 3] and not sock.queue and sock.stream.unread == 0
    layer.stream.callbacks([("eof", sock.sk, 0, None, None)])
    assert layer.recvfrom(sock, 100).data == b""  # the FIN: end of file
    with pytest.raises(SockError) as exc:
        layer.recvfrom(layer.socket(AF_INET, SOCK_STREAM, 0), 10, MSG_DONTWAIT)
    assert exc.value.errno == errno.ENOTCONN  # never connected


def test_send_copies_into_size_goal_skbs_and_waits_for_acknowledgements(layer):
    sock = established(layer, mss=1000)
    sock.sndbuf = 4000
    assert layer.sendto(sock, b"x" * 3500) == 3500
    assert [k.len for k in layer.l4.sent] == [3500]  # one skb: less than a GSO packet's worth
    sock.sndbuf = 200_000
    layer.sendto(sock, b"w" * 150_000)
    assert [k.len for k in layer.l4.sent[1:]] == [65000, 65000, 20000]  # 65 segments of 1000 fit one
    assert all(e[0] == s.COPY for k in layer.l4.sent for e in k.events if e[3] == "tcp_sendmsg_locked")
    t0 = time.monotonic()
    sock.sndbuf = 4000
    threading.Timer(0.2, lambda: layer.stream.callbacks([("acked", sock.sk, 153_500, None, None)])).start()
    assert layer.sendto(sock, b"y" * 2000, timeout=5) == 2000  # waited for room
    assert time.monotonic() - t0 >= 0.15
    # less than SO_SNDBUF queued (2000 of 4000): a new skb takes all of it, past the buffer
    # (sk_stream_memory_free is asked once per skb, as tcp_sendmsg_locked asks it)
    assert layer.sendto(sock, b"z" * 5000, timeout=0.1) == 5000
    with pytest.raises(SockError) as exc:
        layer.sendto(sock, b"z", timeout=0.1)  # 7000 queued, not less than 4000: EAGAIN
    assert exc.value.errno == errno.EAGAIN and sock.stream.wmem == 7000


def test_accept_hands_out_the_connection_l4_established(layer):
    srv = layer.socket(AF_INET, SOCK_STREAM, 0)
    layer.bind(srv, 0, 80)
    layer.listen(srv, 5)
    child = TcpChild(1 << 40, B, 80, A, 40001, 1448)
    layer.stream.callbacks([("accept", srv.sk, 0, None, child),
                            ("data", child.sk, 0, data_skb(child.sk, b"early"), None)])
    conn = layer.accept(srv, timeout=5)
    assert (conn.sk, conn.daddr, conn.dport) == (child.sk, A, 40001)
    assert ("accepted", srv.sk, child.sk) in layer.l4.calls
    assert layer.recvfrom(conn, 100).data == b"early"  # data that came before accept()


def test_callbacks_for_a_socket_that_is_gone_are_counted_and_a_child_is_aborted(layer):
    child = TcpChild(1 << 40, B, 80, A, 40001, 1448)
    orphans = layer.stream.callbacks([("data", 999, 0, data_skb(999, b"x"), None), ("accept", 998, 0, None, child)])
    assert orphans == 2 and ("abort", child.sk) in layer.l4.calls
    assert layer.mib.get("Drops", "SKB_DROP_REASON_SOCKET_CLOSE") == 1
