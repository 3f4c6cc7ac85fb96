"""TCP_INQ and the queue ioctls (net/ipv4/tcp.c: tcp_ioctl, tcp_inq, tcp_inq_hint, tcp_recvmsg's
TCP_CM_INQ; udp_ioctl): L4's answers from its tcp_sock, the socket layer's from them plus what
is still on its way down, and a program's recvmsg and fcntl.ioctl (pktpath.interpose)."""

import errno
import socket
import struct

import pytest

from pktpath.flow import TcpChild
from pktpath.pb import l4_pb2, socket_pb2
from pktpath.counters import Mib
from pktpath.services.l4.tcp.info import tcp_ioctl
from pktpath.services.l4.tcp.sock import TcpState
from pktpath.services.socket.sock import AF_INET, SOCK_DGRAM, SOCK_STREAM, IPPROTO_ICMP, SocketLayer
from pktpath.services.socket.syscalls import _recv_reply
from pktpath.sockerr import SockError

from test_l4_tcp import B, Net, connect
from test_socket_layer import delivered
from test_socket_stream import A as PEER, FakeL4, data_skb, established

SIOCINQ, SIOCOUTQ, SIOCATMARK, SIOCOUTQNSD = 0x541B, 0x5411, 0x8905, 0x894B
SOL_TCP, TCP_INQ, TCP_CM_INQ = 6, 36, 36


# -- L4: tcp_ioctl from the tcp_sock ------------------------------------------------------------
def test_l4_counts_what_arrived_unread_and_what_was_written_unacknowledged_or_unsent():
    net = Net()
    net.b.reading = False
    c, srv = connect(net)
    assert net.a.send(c, b"x" * 3000) == 0
    client = net.a.tcp.sock(c)
    assert tcp_ioctl(client) == (0, 3000, 0)  # all sent at once (cwnd 10), none acknowledged yet
    assert client.user_written == 3000
    net.run(1.0)
    assert tcp_ioctl(client) == (0, 0, 0)
    server = net.b.tcp.sock(srv)
    assert tcp_ioctl(server)[0] == 3000      # delivered to the socket layer, not read
    net.b.tcp.recvd(srv, 1000)
    assert tcp_ioctl(server)[0] == 2000 and server.user_copied == 1000


def test_l4_counts_our_fin_in_siocoutq_until_acknowledged_and_not_the_peers_in_siocinq():
    net = Net()
    net.b.reading = False
    c, srv = connect(net)
    net.a.send(c, b"y" * 500)
    net.run(1.0)
    net.a.tcp.shutdown(c, socket.SHUT_WR)
    assert tcp_ioctl(net.a.tcp.sock(c)) == (0, 1, 0)  # write_seq - snd_una: the FIN, sent
    net.run(1.0)
    assert tcp_ioctl(net.a.tcp.sock(c)) == (0, 0, 0)
    server = net.b.tcp.sock(srv)
    assert server.state == TcpState.CLOSE_WAIT and tcp_ioctl(server)[0] == 500  # SOCK_DONE: less the FIN


def test_l4_says_nothing_is_queued_before_the_handshake_is_done():
    net = Net()
    net.b.tcp.listen(100, 0, 80, 16)
    net.a.tcp.connect(1, 0, 40000, B, 80)
    assert net.a.tcp.sock(1).state == TcpState.SYN_SENT and tcp_ioctl(net.a.tcp.sock(1)) == (0, 0, 0)


# -- the socket layer: tcp_ioctl, TCP_INQ ----------------------------------------------------------
class IoctlL4(FakeL4):
    """L4's TCP calls, with tcp_ioctl's queues as L4 would answer them (None: no such socket)."""

    def __init__(self) -> None:
        super().__init__()
        self.queues = None
        self.asked = 0

    def ioctl(self, sk):
        self.asked += 1
        return self.queues


@pytest.fixture
def layer():
    l4 = IoctlL4()
    return SocketLayer("B", l4, Mib(), l4)


def ioctl_errno(layer, sock, cmd) -> int:
    with pytest.raises(SockError) as exc:
        layer.ioctl(sock, cmd)
    return exc.value.errno


def test_ioctls_add_the_reads_and_writes_still_on_their_way_to_l4(layer):
    sock = established(layer)
    layer.stream.callbacks([("data", sock.sk, 0, data_skb(sock.sk, b"a" * 700), None)])
    assert len(layer.recvfrom(sock, 200).data) == 200
    layer.sendto(sock, b"w" * 300)
    # L4 has not seen the read of 200 nor the last 100 bytes of the write yet
    layer.l4.queues = l4_pb2.TcpInfo(inq=700, outq=150, outq_nsd=50, user_copied=0, user_written=200)
    assert [layer.ioctl(sock, cmd) for cmd in (SIOCINQ, SIOCOUTQ, SIOCOUTQNSD)] == [500, 250, 150]
    layer.l4.queues = l4_pb2.TcpInfo(inq=500, outq=250, outq_nsd=150, user_copied=200, user_written=300)
    assert [layer.ioctl(sock, cmd) for cmd in (SIOCINQ, SIOCOUTQ, SIOCOUTQNSD)] == [500, 250, 150]


def test_once_l4_is_done_the_socket_layer_answers_from_what_it_kept(layer):
    sock = established(layer)
    layer.sendto(sock, b"w" * 120)  # never acknowledged: the reset leaves write_seq - snd_una as it was
    layer.stream.callbacks([("data", sock.sk, 0, data_skb(sock.sk, b"a" * 300), None),
                            ("error", sock.sk, errno.ECONNRESET, None, None), ("closed", sock.sk, 0, None, None)])
    assert [layer.ioctl(sock, cmd) for cmd in (SIOCINQ, SIOCOUTQ, SIOCOUTQNSD)] == [300, 120, 0]


def test_a_listener_has_no_queues_and_a_socket_not_connected_has_nothing_queued(layer):
    fresh = layer.socket(AF_INET, SOCK_STREAM, 0)
    assert [layer.ioctl(fresh, cmd) for cmd in (SIOCINQ, SIOCOUTQ, SIOCOUTQNSD, SIOCATMARK)] == [0, 0, 0, 0]
    layer.bind(fresh, 0, 80)
    layer.listen(fresh, 5)
    assert [ioctl_errno(layer, fresh, cmd) for cmd in (SIOCINQ, SIOCOUTQ, SIOCOUTQNSD)] == [errno.EINVAL] * 3
    assert layer.ioctl(fresh, SIOCATMARK) == 0  # no urgent data, ever
    assert layer.l4.asked == 0


def test_other_requests_are_enotty_and_the_device_ones_pktpath_lacks_are_counted(layer):
    sock = established(layer)
    assert ioctl_errno(layer, sock, 0x5412) == errno.ENOTTY  # TIOCSTI: no terminal
    assert layer.mib.snapshot().get("Unmodelled", {}) == {}
    assert ioctl_errno(layer, sock, 0x8915) == errno.ENOTTY  # SIOCGIFADDR: inet_ioctl's, not modelled
    assert layer.mib.snapshot()["Unmodelled"] == {"ioctl 0x8915": 1}


def test_udp_answers_the_first_datagrams_length_and_ping_sockets_have_no_ioctl(layer):
    udp = layer.socket(AF_INET, SOCK_DGRAM, 0)
    layer.bind(udp, 0, 5000)
    assert layer.ioctl(udp, SIOCINQ) == 0
    layer.sock_queue_rcv_skb([delivered(udp, b"a" * 33), delivered(udp, b"b" * 77)])
    assert [layer.ioctl(udp, cmd) for cmd in (SIOCINQ, SIOCOUTQ)] == [33, 0]  # first_packet_length
    assert ioctl_errno(layer, udp, SIOCOUTQNSD) == errno.ENOTTY
    ping = layer.socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP)
    assert [ioctl_errno(layer, ping, cmd) for cmd in (SIOCINQ, SIOCOUTQ)] == [errno.ENOTTY] * 2


def test_tcp_inq_is_0_or_1_and_an_accepted_socket_has_its_listeners(layer):
    srv = layer.socket(AF_INET, SOCK_STREAM, 0)
    assert layer.getsockopt(srv, SOL_TCP, TCP_INQ) == 0
    for bad in (2, -1):
        with pytest.raises(SockError) as exc:
            layer.setsockopt(srv, SOL_TCP, TCP_INQ, bad)
        assert exc.value.errno == errno.EINVAL
    layer.setsockopt(srv, SOL_TCP, TCP_INQ, 1)
    assert layer.getsockopt(srv, SOL_TCP, TCP_INQ) == 1
    assert layer.mib.snapshot().get("Unmodelled", {}) == {}  # no longer an option Linux has and pktpath has not
    layer.bind(srv, 0, 80)
    layer.listen(srv, 5)
    layer.stream.callbacks([("accept", srv.sk, 0, None, TcpChild(1 << 40, B, 80, PEER, 40001, 1448))])
    conn = layer.accept(srv, timeout=5)
    assert layer.getsockopt(conn, SOL_TCP, TCP_INQ) == 1  # tcp_create_openreq_child copies the listener
    with pytest.raises(SockError) as exc:
        layer.setsockopt(layer.socket(AF_INET, SOCK_DGRAM, 0), SOL_TCP, TCP_INQ, 1)
    assert exc.value.errno == errno.ENOPROTOOPT


def test_a_read_with_tcp_inq_says_what_is_left_counting_the_fin_while_data_before_it_is_unread(layer):
    sock = established(layer)
    layer.stream.callbacks([("data", sock.sk, 0, data_skb(sock.sk, b"a" * 500), None)])
    assert layer.recvfrom(sock, 100).inq is None  # TCP_INQ not set: no TCP_CM_INQ
    layer.setsockopt(sock, SOL_TCP, TCP_INQ, 1)
    assert layer.recvfrom(sock, 100).inq == 300
    layer.stream.callbacks([("eof", sock.sk, 0, None, None)])
    assert layer.recvfrom(sock, 200).inq == 101  # rcv_nxt - copied_seq: the FIN's sequence number too
    last = layer.recvfrom(sock, 200)
    assert (len(last.data), last.inq) == (100, 1)  # only end of file left: 1, to read on
    eof = layer.recvfrom(sock, 200)
    assert (eof.data, eof.inq) == (b"", 1)
    assert _recv_reply(eof).inq == 1 and not _recv_reply(last._replace(inq=None)).HasField("inq")


# -- a program's calls (pktpath.interpose) ----------------------------------------------------------
class FakeApi:
    """A host's socket API answering Recvfrom and Ioctl with what the test set."""

    def __init__(self, reply=None, value: int = 0) -> None:
        self.reply, self.value, self.requests = reply, value, []

    def call(self, rpc, request, timeout=None):
        self.requests.append((rpc, request))
        return self.reply if rpc == "Recvfrom" else socket_pb2.IoctlReply(value=self.value)


def pkt_socket(api, kind=socket.SOCK_STREAM):
    from pktpath.interpose.sockets import PktSocket

    return PktSocket(socket.AF_INET, kind, 0, _fd=3, _api=api)


@pytest.mark.parametrize("ancbufsize, ancdata, msg_flags", [
    (0, [], socket.MSG_CTRUNC),                                      # no room at all (put_cmsg)
    (16, [(SOL_TCP, TCP_CM_INQ, b"")], socket.MSG_CTRUNC),           # the header only
    (socket.CMSG_LEN(4), [(SOL_TCP, TCP_CM_INQ, struct.pack("i", 9000))], 0),
    (256, [(SOL_TCP, TCP_CM_INQ, struct.pack("i", 9000))], 0),
])
def test_recvmsg_puts_tcp_cm_inq_in_the_control_buffer_as_put_cmsg_does(ancbufsize, ancdata, msg_flags):
    sock = pkt_socket(FakeApi(socket_pb2.RecvfromReply(data=b"z" * 1000, inq=9000)))
    try:
        assert sock.recvmsg(1000, ancbufsize) == (b"z" * 1000, ancdata, msg_flags, None)  # a stream: no address
    finally:
        sock.close()


def test_recvmsg_without_tcp_inq_has_no_control_message_and_a_datagram_has_its_sender():
    reply = socket_pb2.RecvfromReply(data=b"d", addr=socket_pb2.Sockaddr(addr="10.0.0.9", port=53))
    sock = pkt_socket(FakeApi(reply), socket.SOCK_DGRAM)
    try:
        assert sock.recvmsg(100, 64) == (b"d", [], 0, ("10.0.0.9", 53))
    finally:
        sock.close()


def test_fcntl_ioctl_on_a_pktpath_sockets_fileno_asks_the_host_and_any_other_file_the_kernel():
    import termios

    from pktpath.interpose.sockets import fcntl_ioctl

    api = FakeApi(value=1234)
    sock = pkt_socket(api)
    try:
        assert fcntl_ioctl(sock.fileno(), termios.FIONREAD, bytes(4)) == struct.pack("i", 1234)
        buf = bytearray(4)
        assert fcntl_ioctl(sock, termios.TIOCOUTQ, buf) == 0 and struct.unpack("i", buf)[0] == 1234
        assert [r.request for rpc, r in api.requests] == [termios.FIONREAD, termios.TIOCOUTQ]
        with pytest.raises(OSError) as exc:
            fcntl_ioctl(sock.fileno(), termios.FIONREAD, 0)  # an int is no buffer to write to
        assert exc.value.errno == errno.EFAULT
    finally:
        sock.close()
    r, w = socket.socketpair()
    try:
        w.send(b"abc")
        assert struct.unpack("i", fcntl_ioctl(r.fileno(), termios.FIONREAD, bytes(4)))[0] == 3
    finally:
        r.close()
        w.close()
