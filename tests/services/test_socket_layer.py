"""The socket layer without gRPC: fds, options, the receive queue and its accounting,
blocking recvfrom, sendto, which ICMP errors a socket sees, close."""

import errno
import threading
import time

import pytest

from pktpath import skbuff as s
from pktpath.counters import Mib
from pktpath.flow import IP_PMTUDISC_DONT, IP_PMTUDISC_WANT, Flowi4
from pktpath.pb import skbuff_pb2 as pb
from pktpath.services.socket.sock import (
    AF_INET, IP_MTU_DISCOVER, IP_RECVERR, IP_TTL, IPPROTO_IP, MSG_DONTWAIT, MSG_PEEK, MSG_WAITFORONE, RMEM_MAX,
    SHUT_RD, SO_ERROR, SO_RCVBUF, SO_SNDBUF, SO_TIMESTAMPNS, SOCK_DGRAM, SOCK_MIN_RCVBUF, SOCK_MIN_SNDBUF, SOCK_STREAM,
    SOL_SOCKET, SocketLayer, truesize,
)
from pktpath.sockerr import SockError
from pktpath.wire import IpHdr, UdpHdr
from pktpath.wire.addr import ip_from_str as ip
from pktpath.wire.ipv4 import IPPROTO_ICMP, IPPROTO_UDP

A, PEER = ip("10.0.0.1"), ip("10.0.0.2")


class FakeL4:
    """The protocol side: port tables and sendmsg, recorded."""

    def __init__(self) -> None:
        self.hashed, self.unhashed, self.sent = [], [], []
        self.errno = 0
        self._ports = iter(range(40000, 41000))

    def hash(self, sock):
        self.hashed.append(sock.sk)
        sport = sock.sport or next(self._ports)
        saddr = sock.saddr or (A if sock.daddr else 0)
        return saddr, sport, sock.daddr, sock.dport

    def unhash(self, sock):
        self.unhashed.append(sock.sk)

    def sendmsg(self, sock, skb):
        self.sent.append((sock, skb))
        return self.errno


@pytest.fixture
def layer():
    return SocketLayer("A", FakeL4(), Mib())


def udp_socket(layer, protocol: int = IPPROTO_UDP):
    return layer.socket(AF_INET, SOCK_DGRAM, protocol)


def delivered(sock, data: bytes = b"hello", *, saddr: int = PEER, sport: int = 4000, ttl: int = 61):
    """A datagram as L4 hands it to the socket layer: data at the payload, sk set."""
    body = UdpHdr(sport, sock.sport or 5000).to_bytes(data, saddr, A) + data
    raw = IpHdr(saddr, A, IPPROTO_UDP, ttl=ttl).to_bytes(len(body)) + body
    skb = s.alloc_skb(s.NET_SKB_PAD + len(raw))
    s.skb_reserve(skb, s.NET_SKB_PAD)
    s.skb_put_data(skb, raw)
    s.skb_reset_network_header(skb)
    s.skb_pull(skb, 20)
    s.skb_reset_transport_header(skb)
    s.skb_pull(skb, 8)
    skb.sk = sock.sk
    return skb


def drops(layer, reason: int) -> int:
    return layer.mib.get("Drops", pb.DropReason.Name(reason))


def errno_of(call) -> int:
    with pytest.raises(SockError) as exc:
        call()
    return exc.value.errno


# -- fds and sockets ----------------------------------------------------------------------

def test_each_socket_gets_its_own_sk(layer):
    a, b = udp_socket(layer), udp_socket(layer)
    layer.close(a)
    c = udp_socket(layer)
    assert len({a.sk, b.sk, c.sk}) == 3
    assert {k.sk for k in layer.sockets()} == {b.sk, c.sk}


def test_socket_arguments_checked(layer):
    assert errno_of(lambda: layer.socket(17, SOCK_DGRAM, 0)) == errno.EAFNOSUPPORT  # AF_PACKET
    assert errno_of(lambda: layer.socket(AF_INET, SOCK_STREAM, IPPROTO_UDP)) == errno.EPROTONOSUPPORT
    assert layer.socket(AF_INET, SOCK_STREAM, 0).protocol == 6
    assert errno_of(lambda: layer.socket(AF_INET, 3, 0)) == errno.ESOCKTNOSUPPORT
    assert errno_of(lambda: layer.socket(AF_INET, SOCK_DGRAM, 6)) == errno.EPROTONOSUPPORT
    assert layer.socket(AF_INET, SOCK_DGRAM, 0).protocol == IPPROTO_UDP
    assert layer.socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP).protocol == IPPROTO_ICMP


def test_bind_and_connect_go_through_l4(layer):
    sock = udp_socket(layer)
    layer.bind(sock, 0, 5000)
    assert sock.bound and sock.sport == 5000 and layer.l4.hashed == [sock.sk]
    assert errno_of(lambda: layer.bind(sock, 0, 5001)) == errno.EINVAL
    layer.connect(sock, PEER, 53)
    assert (sock.saddr, sock.sport, sock.daddr, sock.dport) == (A, 5000, PEER, 53) and sock.connected
    assert layer.l4.hashed == [sock.sk, sock.sk]


# -- options -------------------------------------------------------------------------------

@pytest.mark.parametrize("value, expected", [
    (10000, 20000),                  # doubled for the skb overhead
    (100, SOCK_MIN_RCVBUF),          # at least SOCK_MIN_RCVBUF
    (0, SOCK_MIN_RCVBUF),
    (10 ** 7, 2 * RMEM_MAX),         # capped at rmem_max, then doubled
])
def test_so_rcvbuf_is_doubled_within_bounds(layer, value, expected):
    sock = udp_socket(layer)
    layer.setsockopt(sock, SOL_SOCKET, SO_RCVBUF, value)
    assert layer.getsockopt(sock, SOL_SOCKET, SO_RCVBUF) == expected == sock.rcvbuf


def test_negative_so_rcvbuf_reads_as_a_huge_unsigned_value(layer):
    sock = udp_socket(layer)
    layer.setsockopt(sock, SOL_SOCKET, SO_RCVBUF, -1)
    assert sock.rcvbuf == 2 * RMEM_MAX


def test_so_sndbuf_is_doubled_with_its_own_minimum(layer):
    sock = udp_socket(layer)
    layer.setsockopt(sock, SOL_SOCKET, SO_SNDBUF, 1000)
    assert layer.getsockopt(sock, SOL_SOCKET, SO_SNDBUF) == SOCK_MIN_SNDBUF
    layer.setsockopt(sock, SOL_SOCKET, SO_SNDBUF, 50000)
    assert layer.getsockopt(sock, SOL_SOCKET, SO_SNDBUF) == 100000


def test_ip_options(layer):
    sock = udp_socket(layer)
    assert layer.getsockopt(sock, IPPROTO_IP, IP_TTL) == 64
    layer.setsockopt(sock, IPPROTO_IP, IP_TTL, 9)
    assert layer.getsockopt(sock, IPPROTO_IP, IP_TTL) == 9
    assert errno_of(lambda: layer.setsockopt(sock, IPPROTO_IP, IP_TTL, 256)) == errno.EINVAL
    assert errno_of(lambda: layer.setsockopt(sock, IPPROTO_IP, IP_MTU_DISCOVER, 6)) == errno.EINVAL
    assert errno_of(lambda: layer.setsockopt(sock, IPPROTO_IP, 99, 1)) == errno.ENOPROTOOPT
    assert errno_of(lambda: layer.getsockopt(sock, IPPROTO_IP, 99)) == errno.ENOPROTOOPT


# -- the receive queue ------------------------------------------------------------------------

def test_receive_queue_accounting_and_rcvbuf_drops(layer):
    """Accepted while sk_rmem_alloc <= sk_rcvbuf, counted by truesize; then SOCKET_RCVBUFF."""
    sock = udp_socket(layer)
    layer.bind(sock, 0, 5000)
    layer.setsockopt(sock, SOL_SOCKET, SO_RCVBUF, 0)   # 2304 bytes
    skbs = [delivered(sock, bytes(200)) for _ in range(6)]
    size = truesize(skbs[0])
    expected = 0
    while expected * size <= sock.rcvbuf:
        expected += 1
    assert 1 < expected < 6
    accepted, dropped = layer.sock_queue_rcv_skb(skbs)
    assert (accepted, dropped) == (expected, 6 - expected)
    assert sock.rmem == expected * size and len(sock.queue) == expected
    assert layer.mib.get("Udp", "RcvbufErrors") == 6 - expected
    assert layer.mib.get("Udp", "InErrors") == 6 - expected
    assert drops(layer, pb.SKB_DROP_REASON_SOCKET_RCVBUFF) == 6 - expected
    # Reading one frees its truesize; one more fits again.
    layer.recvfrom(sock, 1000, MSG_DONTWAIT)
    assert sock.rmem == (expected - 1) * size
    assert layer.sock_queue_rcv_skb([delivered(sock)]) == (1, 0)


def test_an_empty_queue_takes_one_skb_larger_than_rcvbuf(layer):
    sock = udp_socket(layer)
    layer.setsockopt(sock, SOL_SOCKET, SO_RCVBUF, 0)
    big = delivered(sock, bytes(5000))
    assert truesize(big) > sock.rcvbuf
    assert layer.sock_queue_rcv_skb([big]) == (1, 0)
    assert layer.sock_queue_rcv_skb([delivered(sock)]) == (0, 1)


def test_ping_socket_rcvbuf_drop_is_not_a_udp_error(layer):
    sock = udp_socket(layer, IPPROTO_ICMP)
    layer.setsockopt(sock, SOL_SOCKET, SO_RCVBUF, 0)
    layer.sock_queue_rcv_skb([delivered(sock, bytes(5000)), delivered(sock)])
    assert drops(layer, pb.SKB_DROP_REASON_SOCKET_RCVBUFF) == 1
    assert layer.mib.get("Udp", "RcvbufErrors") == 0


def test_skb_for_a_socket_that_is_gone_is_dropped(layer):
    sock = udp_socket(layer)
    skb = delivered(sock)
    layer.close(sock)
    assert layer.sock_queue_rcv_skb([skb]) == (0, 1)
    assert drops(layer, pb.SKB_DROP_REASON_SOCKET_CLOSE) == 1


# -- recvfrom --------------------------------------------------------------------------------

def test_recvfrom_copies_to_user_and_returns_the_sender(layer):
    sock = udp_socket(layer)
    layer.bind(sock, 0, 5000)
    skb = delivered(sock, b"datagram", saddr=PEER, sport=4321, ttl=33)
    layer.sock_queue_rcv_skb([skb])
    dg = layer.recvfrom(sock, 2048, MSG_DONTWAIT)
    assert (dg.data, dg.saddr, dg.sport, dg.ttl, dg.truncated_from) == (b"datagram", PEER, 4321, 33, 0)
    copies = [e for e in skb.events if e[0] == s.COPY]
    assert [(e[3], e[5], e[7], e[8]) for e in copies] == [("skb_copy_datagram_msg", 8, "skb", "user")]
    assert any(e[0] == s.FREE for e in skb.events)
    assert layer.mib.get("Udp", "InDatagrams") == 1
    assert sock.rmem == 0 and not sock.queue


def test_so_timestampns_gives_the_receive_time_only_when_asked(layer):
    sock = udp_socket(layer)
    layer.bind(sock, 0, 5000)
    stamped, unstamped = delivered(sock, b"1"), delivered(sock, b"2")
    stamped.tstamp = 1_764_000_000_000_000_001
    layer.sock_queue_rcv_skb([delivered(sock, b"0"), stamped])
    assert layer.recvfrom(sock, 100, MSG_DONTWAIT).tstamp == 0  # not asked for
    layer.setsockopt(sock, SOL_SOCKET, SO_TIMESTAMPNS, 1)
    assert layer.getsockopt(sock, SOL_SOCKET, SO_TIMESTAMPNS) == 1
    layer.sock_queue_rcv_skb([unstamped])
    assert layer.recvfrom(sock, 100, MSG_DONTWAIT).tstamp == 1_764_000_000_000_000_001
    before = time.time_ns()
    assert before <= layer.recvfrom(sock, 100, MSG_DONTWAIT).tstamp <= time.time_ns()  # stamped at recv


def test_recvfrom_truncates_to_bufsize_and_loses_the_rest(layer):
    sock = udp_socket(layer)
    layer.sock_queue_rcv_skb([delivered(sock, b"0123456789"), delivered(sock, b"next")])
    dg = layer.recvfrom(sock, 4, MSG_DONTWAIT)
    assert (dg.data, dg.truncated_from) == (b"0123", 10)
    assert layer.recvfrom(sock, 100, MSG_DONTWAIT).data == b"next"


def test_msg_peek_leaves_the_datagram_queued_without_a_copy(layer):
    sock = udp_socket(layer)
    skb = delivered(sock, b"peek")
    layer.sock_queue_rcv_skb([skb])
    assert layer.recvfrom(sock, 100, MSG_PEEK | MSG_DONTWAIT).data == b"peek"
    assert len(sock.queue) == 1 and not [e for e in skb.events if e[0] == s.COPY]
    assert layer.mib.get("Udp", "InDatagrams") == 0
    assert layer.recvfrom(sock, 100, MSG_DONTWAIT).data == b"peek"
    assert not sock.queue


def test_recvfrom_blocks_until_a_datagram_is_queued_from_another_thread(layer):
    sock = udp_socket(layer)
    result = {}

    def reader():
        result["dg"] = layer.recvfrom(sock, 100, timeout=5.0)
        result["t"] = time.monotonic()

    thread = threading.Thread(target=reader)
    thread.start()
    time.sleep(0.05)
    assert thread.is_alive() and "dg" not in result   # still waiting
    queued_at = time.monotonic()
    layer.sock_queue_rcv_skb([delivered(sock, b"wake up")])
    thread.join(2.0)
    assert not thread.is_alive()
    assert result["dg"].data == b"wake up"
    assert result["t"] - queued_at < 0.5   # woken by sk_data_ready, not by the 5 s timeout


def test_recvfrom_timeout_is_eagain(layer):
    sock = udp_socket(layer)
    start = time.monotonic()
    assert errno_of(lambda: layer.recvfrom(sock, 100, timeout=0.05)) == errno.EAGAIN
    assert 0.04 <= time.monotonic() - start < 1.0


def test_msg_dontwait_is_eagain_at_once(layer):
    sock = udp_socket(layer)
    start = time.monotonic()
    assert errno_of(lambda: layer.recvfrom(sock, 100, MSG_DONTWAIT, timeout=5.0)) == errno.EAGAIN
    assert time.monotonic() - start < 0.5


def test_shutdown_rd_wakes_a_reader_with_an_empty_datagram(layer):
    sock = udp_socket(layer)
    layer.connect(sock, PEER, 53)
    layer.shutdown(sock, SHUT_RD)
    start = time.monotonic()
    assert layer.recvfrom(sock, 100, timeout=1.0).data == b""
    assert time.monotonic() - start < 0.5


def test_shutdown_rd_does_not_stop_udp_datagrams_being_queued(layer):
    sock = udp_socket(layer)
    layer.connect(sock, PEER, 53)
    layer.shutdown(sock, SHUT_RD)
    assert layer.sock_queue_rcv_skb([delivered(sock, b"late")]) == (1, 0)
    assert layer.recvfrom(sock, 100, MSG_DONTWAIT).data == b"late"


# -- sendto -------------------------------------------------------------------------------

def test_sendto_copies_from_user_into_a_new_skb_and_autobinds(layer):
    sock = udp_socket(layer)
    layer.setsockopt(sock, IPPROTO_IP, IP_TTL, 7)
    assert layer.sendto(sock, b"request", PEER, 53) == 7
    assert sock.bound and sock.sport == 40000
    ((sent_sock, skb),) = layer.l4.sent
    assert sent_sock is sock and skb.sk == sock.sk
    assert bytes(skb.payload()) == b"request"
    assert skb.headroom() >= 28
    copies = [e for e in skb.events if e[0] == s.COPY]
    assert [(e[3], e[5], e[7], e[8]) for e in copies] == [("skb_copy_from_iter", 7, "user", "skb")]
    assert Flowi4.unpack(skb.cb) == Flowi4(PEER, 0, 53, 0, 0, 7, 0, IP_PMTUDISC_WANT)


def test_sendto_on_a_connected_socket_uses_the_peer(layer):
    sock = udp_socket(layer)
    layer.setsockopt(sock, IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DONT)
    layer.connect(sock, PEER, 53)
    layer.sendto(sock, b"x")
    flow = Flowi4.unpack(layer.l4.sent[0][1].cb)
    assert (flow.daddr, flow.dport, flow.ttl, flow.pmtudisc) == (PEER, 53, 0, IP_PMTUDISC_DONT)


def test_sendto_size_limits(layer):
    sock = udp_socket(layer)
    assert errno_of(lambda: layer.sendto(sock, bytes(65508), PEER, 53)) == errno.EMSGSIZE
    assert layer.l4.sent == []
    assert layer.sendto(sock, bytes(65507), PEER, 53) == 65507
    ping = udp_socket(layer, IPPROTO_ICMP)
    assert errno_of(lambda: layer.sendto(ping, bytes(65516), PEER)) == errno.EMSGSIZE
    assert layer.sendto(ping, bytes(65515), PEER) == 65515


def test_sendto_without_a_destination(layer):
    sock = udp_socket(layer)
    assert errno_of(lambda: layer.sendto(sock, b"x")) == errno.EDESTADDRREQ
    assert errno_of(lambda: layer.sendto(sock, b"x", PEER, 0)) == errno.EINVAL
    assert layer.l4.sent == []


def test_sendto_raises_the_errno_l4_returns(layer):
    sock = udp_socket(layer)
    layer.l4.errno = errno.ENETUNREACH
    assert errno_of(lambda: layer.sendto(sock, b"x", PEER, 53)) == errno.ENETUNREACH


# -- ICMP errors -------------------------------------------------------------------------------

def report(layer, sock, err=errno.ECONNREFUSED, fatal=True, type_=3, code=3) -> bool:
    return layer.sk_error_report(sock.sk, err, fatal, "from 10.0.0.2: port unreachable", type_, code)


def test_hard_error_on_a_connected_socket_is_reported_once(layer):
    sock = udp_socket(layer)
    layer.connect(sock, PEER, 53)
    assert report(layer, sock)
    assert errno_of(lambda: layer.recvfrom(sock, 100, MSG_DONTWAIT)) == errno.ECONNREFUSED
    assert errno_of(lambda: layer.recvfrom(sock, 100, MSG_DONTWAIT)) == errno.EAGAIN  # taken


def test_pending_error_readable_with_so_error(layer):
    sock = udp_socket(layer)
    layer.connect(sock, PEER, 53)
    report(layer, sock)
    assert layer.getsockopt(sock, SOL_SOCKET, SO_ERROR) == errno.ECONNREFUSED
    assert layer.getsockopt(sock, SOL_SOCKET, SO_ERROR) == 0


def test_soft_error_needs_ip_recverr(layer):
    sock = udp_socket(layer)
    layer.connect(sock, PEER, 53)
    assert not report(layer, sock, errno.EHOSTUNREACH, False, 11, 0)
    assert sock.err == 0
    layer.setsockopt(sock, IPPROTO_IP, IP_RECVERR, 1)
    assert report(layer, sock, errno.EHOSTUNREACH, False, 11, 0)
    assert sock.err == errno.EHOSTUNREACH


def test_unconnected_socket_sees_errors_only_with_ip_recverr(layer):
    sock = udp_socket(layer)
    layer.bind(sock, 0, 5000)
    assert not report(layer, sock)
    assert not report(layer, sock, errno.EHOSTUNREACH, False, 11, 0)
    assert sock.err == 0
    layer.setsockopt(sock, IPPROTO_IP, IP_RECVERR, 1)
    assert report(layer, sock)
    assert sock.err == errno.ECONNREFUSED


def test_connected_ping_socket_sees_hard_errors(layer):
    sock = udp_socket(layer, IPPROTO_ICMP)
    layer.connect(sock, PEER, 0)
    assert sock.connected
    assert report(layer, sock, errno.EHOSTUNREACH, True, 3, 10)


def test_frag_needed_is_not_reported_when_pmtu_discovery_is_off(layer):
    sock = udp_socket(layer)
    layer.connect(sock, PEER, 53)
    layer.setsockopt(sock, IPPROTO_IP, IP_RECVERR, 1)
    layer.setsockopt(sock, IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DONT)
    assert not report(layer, sock, errno.EMSGSIZE, True, 3, 4)
    layer.setsockopt(sock, IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_WANT)
    assert report(layer, sock, errno.EMSGSIZE, True, 3, 4)


def test_error_for_an_unknown_sk_is_not_reported(layer):
    assert not layer.sk_error_report(999, errno.ECONNREFUSED, True, "", 3, 3)


def test_error_wakes_a_blocked_reader(layer):
    sock = udp_socket(layer)
    layer.connect(sock, PEER, 53)
    result = {}

    def reader():
        try:
            layer.recvfrom(sock, 100, timeout=5.0)
        except SockError as exc:
            result["errno"] = exc.errno

    thread = threading.Thread(target=reader)
    thread.start()
    time.sleep(0.05)
    report(layer, sock)
    thread.join(2.0)
    assert not thread.is_alive() and result == {"errno": errno.ECONNREFUSED}


# -- close -------------------------------------------------------------------------------------

def test_close_wakes_a_blocked_reader_with_ebadf(layer):
    sock = udp_socket(layer)
    result = {}

    def reader():
        try:
            layer.recvfrom(sock, 100, timeout=5.0)
        except SockError as exc:
            result["errno"] = exc.errno
        result["t"] = time.monotonic()

    thread = threading.Thread(target=reader)
    thread.start()
    time.sleep(0.05)
    closed_at = time.monotonic()
    layer.close(sock)
    thread.join(2.0)
    assert not thread.is_alive()
    assert result["errno"] == errno.EBADF and result["t"] - closed_at < 0.5


def test_close_drops_queued_datagrams_and_unhashes(layer):
    sock = udp_socket(layer)
    layer.bind(sock, 0, 5000)
    skbs = [delivered(sock) for _ in range(3)]
    layer.sock_queue_rcv_skb(skbs)
    layer.close(sock)
    assert drops(layer, pb.SKB_DROP_REASON_SOCKET_CLOSE) == 3
    assert all(any(e[0] == s.DROP and e[6] == pb.SKB_DROP_REASON_SOCKET_CLOSE for e in k.events) for k in skbs)
    assert sock.rmem == 0 and not sock.queue
    assert layer.l4.unhashed == [sock.sk]


def test_close_of_an_unbound_socket_does_not_unhash(layer):
    sock = udp_socket(layer)
    layer.close(sock)
    assert layer.l4.unhashed == []


def test_recvmmsg_waitforone_takes_what_is_queued(layer):
    """MSG_WAITFORONE: up to vlen datagrams in one call, never waiting for more."""
    sock = udp_socket(layer)
    layer.sock_queue_rcv_skb([delivered(sock, bytes([i])) for i in range(3)])
    assert [d.data for d in layer.recvmmsg(sock, 2, 100, MSG_WAITFORONE)] == [b"\x00", b"\x01"]
    assert [d.data for d in layer.recvmmsg(sock, 64, 100, MSG_WAITFORONE, timeout=1)] == [b"\x02"]
    assert sock.rmem == 0
    with pytest.raises(SockError) as exc:
        layer.recvmmsg(sock, 64, 100, MSG_WAITFORONE, timeout=0.05)
    assert exc.value.errno == errno.EAGAIN


def test_recvmmsg_without_waitforone_waits_for_vlen_until_the_timeout(layer):
    sock = udp_socket(layer)
    layer.sock_queue_rcv_skb([delivered(sock, b"a")])

    def later():
        time.sleep(0.1)
        layer.sock_queue_rcv_skb([delivered(sock, b"b"), delivered(sock, b"c")])

    threading.Thread(target=later).start()
    t0 = time.monotonic()
    assert [d.data for d in layer.recvmmsg(sock, 3, 100, timeout=5)] == [b"a", b"b", b"c"]
    assert 0.08 < time.monotonic() - t0 < 4  # it waited for the third, not for the timeout
    layer.sock_queue_rcv_skb([delivered(sock, b"d")])
    t0 = time.monotonic()
    assert [d.data for d in layer.recvmmsg(sock, 3, 100, timeout=0.2)] == [b"d"]  # the timeout: what came
    assert time.monotonic() - t0 >= 0.19
    with pytest.raises(SockError) as exc:
        layer.recvmmsg(sock, 3, 100, timeout=0.05)
    assert exc.value.errno == errno.EAGAIN
