"""The TCP socket options L4 acts on, as Linux 6.12 does them: SO_KEEPALIVE with TCP_KEEPIDLE,
TCP_KEEPINTVL and TCP_KEEPCNT (tcp_keepalive_timer), TCP_CORK (TCP_NAGLE_CORK), TCP_MAXSEG
(rx_opt.user_mss), TCP_QUICKACK (ping-pong mode), and the FIN riding on the unsent tail
(tcp_send_fin); and the socket layer's half: the values checked, kept and reported, and
handed to L4. The numbers are those tests/drill/{keepalive,cork,maxseg,quickack}*.pkt proved
against the kernel. One engine (B, listening on 80) is driven by a hand-made peer (A)."""

import errno

import pytest

from pktpath.counters import Mib
from pktpath.services.l4.tcp import output, timer
from pktpath.services.l4.tcp.ipv4 import SHUT_WR, TCP_MAXSEG, TCP_QUICKACK, Tcp
from pktpath.services.l4.tcp.sock import TCP_DELACK_MAX, TcpState
from pktpath.services.socket.sock import (
    AF_INET, SO_KEEPALIVE, SOCK_STREAM, SOL_SOCKET, TCP_CORK, TCP_KEEPCNT, TCP_KEEPIDLE, TCP_KEEPINTVL,
    TCP_NODELAY, SocketLayer,
)
from pktpath.services.socket.sock import TCP_MAXSEG as SO_TCP_MAXSEG
from pktpath.services.socket.sock import TCP_QUICKACK as SO_TCP_QUICKACK
from pktpath.sockerr import SockError
from pktpath.wire import IpHdr, TcpHdr
from pktpath.wire.ipv4 import IPPROTO_TCP
from pktpath.wire.tcp import (
    TCPHDR_ACK, TCPHDR_FIN, TCPHDR_PSH, TCPHDR_RST, TCPHDR_SYN, TcpOptMss, TcpOptNop, TcpOptWindow, encode_options,
)

from fakes import Clock
from tcpframes import ip_skb, user_skb

A, B = 0x0A000001, 0x0A000002
LISTENER = 100


class Peer:
    """A at 40000 talking to B:80 (ISNs 0 and 1000); B's segments read back as (header,
    payload length), B's events to its socket layer kept."""

    def __init__(self) -> None:
        self.clock = Clock()
        self.out: list = []
        self.events: list = []
        self.mib = Mib()
        self.tcp = Tcp("B", mib=self.mib, clock=self.clock, ip_queue_xmit=self.out.extend,
                       to_sock=self.events.extend, route_output=lambda daddr: (0, B, 1500), isn=lambda: 1000)
        self.tcp.listen(LISTENER, 0, 80, 10)

    def send(self, flags: int, seq: int, ack: int = 0, data: int = 0, *, opts: bytes = b"", win: int = 257):
        payload = bytes(data)
        th = TcpHdr(40000, 80, seq, ack + 1000 if flags & TCPHDR_ACK else 0, 0, flags, win,
                    options=opts).to_bytes(payload, A, B)
        self.tcp.tcp_v4_rcv([ip_skb(IpHdr(A, B, 6).to_bytes(len(th) + data) + th + payload)])
        return self.sent()

    def sent(self) -> list[tuple[TcpHdr, int]]:
        got = [(TcpHdr.from_bytes(bytes(skb.payload())), skb.len) for skb in self.out]
        self.out.clear()
        return [(th, n - th.header_len) for th, n in got]

    def open(self, mss: int = 1000):
        """The handshake: returns (the SYN-ACK, the child's tcp_sock)."""
        (synack, _), = self.send(TCPHDR_SYN, 0, opts=encode_options(TcpOptMss(mss), TcpOptNop(), TcpOptWindow(7)))
        self.clock.t += 0.01
        assert self.send(TCPHDR_ACK, 1, 1) == []
        return synack, self.tcp.established()[0]

    def write(self, tp, n: int):
        self.tcp.sendmsg(tp.sk, [user_skb(tp.sk, n)])
        return self.sent()

    def at(self, t: float):
        """The timers, `t` seconds after the handshake's end."""
        self.clock.t = 1000.01 + t
        self.tcp.run_timers()
        return self.sent()


def mss_option(th: TcpHdr) -> int:
    return th.option(TcpOptMss).mss


# -- keepalive ---------------------------------------------------------------------------------
def test_keepalive_probes_after_the_idle_time_an_answer_resets_the_count_and_unanswered_ones_reset_the_connection():
    peer = Peer()
    _, tp = peer.open()
    peer.tcp.setsockopt(tp.sk, keepalive=True, keepidle=1, keepintvl=1, keepcnt=2)
    assert tp.keepalive_at == pytest.approx(peer.clock.t + 1)
    assert peer.at(0.999) == []
    (probe, n), = peer.at(1.0)
    assert probe.seq == tp.snd_una - 1 and n == 0 and probe.flags == TCPHDR_ACK  # the peer must answer it
    assert peer.mib.get("TcpExt", "TCPKeepAlive") == 1 and peer.mib.get("TcpExt", "TCPWinProbe") == 0
    assert tp.probes_out == 1
    peer.send(TCPHDR_ACK, 1, 1)  # the answer: the count starts again
    assert tp.probes_out == 0
    assert [th.seq for th, _ in peer.at(2.0)] == [tp.snd_una - 1]
    assert [th.seq for th, _ in peer.at(3.0)] == [tp.snd_una - 1]
    (rst, _), = peer.at(4.0)
    assert rst.flags == TCPHDR_RST | TCPHDR_ACK and rst.seq == tp.snd_nxt
    assert tp.state == TcpState.CLOSE and ("error", tp.sk, errno.ETIMEDOUT) in [e[:3] for e in peer.events]
    assert peer.mib.get("TcpExt", "TCPKeepAlive") == 3 and peer.mib.get("TcpExt", "TCPAbortOnTimeout") == 1


def test_keepalive_waits_while_data_is_out_and_counts_the_idle_time_from_the_last_ack():
    peer = Peer()
    _, tp = peer.open()
    peer.tcp.setsockopt(tp.sk, keepalive=True, keepidle=2, keepintvl=1, keepcnt=1)
    peer.clock.t += 1.9
    assert len(peer.write(tp, 100)) == 1
    assert peer.at(2.0) == [] and tp.keepalive_at == pytest.approx(peer.clock.t + 2)  # alive: data is out
    peer.clock.t += 0.05
    peer.send(TCPHDR_ACK, 1, 101)
    assert peer.at(4.0) == [] and tp.keepalive_at == pytest.approx(peer.clock.t + 0.05)  # 2 s after the ACK
    assert [th.seq for th, _ in peer.at(4.05)] == [tp.snd_una - 1]


def test_keepidle_set_later_rearms_the_timer_for_that_much_silence_since_the_peer_last_spoke():
    peer = Peer()
    _, tp = peer.open()
    peer.tcp.setsockopt(tp.sk, keepalive=True)  # tcp_keepalive_time: two hours
    assert tp.keepalive_at == pytest.approx(peer.clock.t + 7200)
    peer.clock.t += 5
    peer.tcp.setsockopt(tp.sk, keepidle=3)  # 5 s of silence already: at once
    assert tp.keepalive_at == pytest.approx(peer.clock.t)
    peer.tcp.setsockopt(tp.sk, keepidle=10)
    assert tp.keepalive_at == pytest.approx(peer.clock.t + 5)
    peer.tcp.setsockopt(tp.sk, keepalive=False)
    assert tp.keepalive_at == 0.0 and not tp.keepalive


def test_the_keepalive_defaults_are_the_sysctls():
    peer = Peer()
    _, tp = peer.open()
    assert (timer.keepalive_time_when(peer.tcp, tp), timer.keepalive_intvl_when(peer.tcp, tp),
            timer.keepalive_probes(peer.tcp, tp)) == (7200, 75, 9)
    peer.tcp.sysctls.set("net.ipv4.tcp_keepalive_time", "60")
    peer.tcp.setsockopt(tp.sk, keepalive=True)
    assert tp.keepalive_at == pytest.approx(peer.clock.t + 60)


def test_a_listeners_keepalive_goes_to_the_connections_it_accepts():
    peer = Peer()
    peer.tcp.setsockopt(LISTENER, keepalive=True, keepidle=2, keepcnt=4)
    listener = peer.tcp.sock(LISTENER)
    assert listener.keepalive and not listener.keepalive_at  # no timer on a listener
    _, tp = peer.open()
    assert tp.keepalive and tp.keepalive_time == 2 and tp.keepalive_probes == 4
    assert tp.keepalive_at == pytest.approx(peer.clock.t + 2)


# -- TCP_CORK -------------------------------------------------------------------------------------
def test_cork_holds_short_segments_until_a_full_one_can_go_and_uncorking_sends_the_rest():
    peer = Peer()
    _, tp = peer.open()
    peer.tcp.setsockopt(tp.sk, cork=True)
    assert peer.write(tp, 300) == [] and peer.write(tp, 300) == []  # no ACK outstanding: Nagle would send
    sent = peer.write(tp, 500)
    assert [(th.seq - 1001, n, bool(th.flags & TCPHDR_PSH)) for th, n in sent] == [(0, 1000, False)]
    (rest, n), = (peer.tcp.setsockopt(tp.sk, cork=False), peer.sent())[1]
    assert (rest.seq - 1001, n, bool(rest.flags & TCPHDR_PSH)) == (1000, 100, True)


def test_nodelay_on_a_corked_socket_pushes_what_is_queued_once():
    peer = Peer()
    _, tp = peer.open()
    peer.tcp.setsockopt(tp.sk, cork=True)
    assert peer.write(tp, 300) == []
    peer.tcp.setsockopt(tp.sk, nodelay=True)  # TCP_NAGLE_PUSH
    assert [(th.seq - 1001, n) for th, n in peer.sent()] == [(0, 300)]
    assert peer.write(tp, 200) == []  # a new skb: PUSH is spent, the cork holds again
    assert output.tcp_nonagle(tp) == output.TCP_NAGLE_OFF | output.TCP_NAGLE_CORK


def test_shutdown_sends_a_corked_tail_with_the_fin_on_it():
    peer = Peer()
    _, tp = peer.open()
    peer.tcp.setsockopt(tp.sk, cork=True)
    assert peer.write(tp, 400) == []
    peer.tcp.shutdown(tp.sk, SHUT_WR)
    (fin, n), = peer.sent()
    assert (fin.seq - 1001, n, fin.flags & (TCPHDR_FIN | TCPHDR_PSH)) == (0, 400, TCPHDR_FIN | TCPHDR_PSH)
    assert tp.write_seq == tp.snd_nxt == 1001 + 401


# -- the FIN on the tail skb ----------------------------------------------------------------------------
def test_the_fin_rides_on_the_unsent_tail_skb_and_alone_only_when_nothing_waits():
    peer = Peer()
    _, tp = peer.open()
    peer.write(tp, 10000)  # cwnd 10: all of it goes
    assert peer.write(tp, 1500) == []  # cwnd is full
    peer.tcp.shutdown(tp.sk, SHUT_WR)
    assert len(tp.write_queue) == 1 and tp.write_queue[0].flags & TCPHDR_FIN
    assert tp.write_queue[0].len == 1500 and tp.write_queue[0].end_seq == tp.write_seq == 1001 + 11501
    peer2 = Peer()
    _, tp2 = peer2.open()
    peer2.tcp.shutdown(tp2.sk, SHUT_WR)
    (fin, n), = peer2.sent()
    assert fin.flags & TCPHDR_FIN and n == 0 and tp2.rtx_queue[0].len == 0


# -- TCP_MAXSEG -------------------------------------------------------------------------------------
def test_maxseg_on_a_listener_caps_the_mss_its_syn_ack_announces_and_its_childrens_segments():
    peer = Peer()
    assert peer.tcp.getsockopt(LISTENER, TCP_MAXSEG) == 536  # a listener's mss_cache: TCP_MSS_DEFAULT
    peer.tcp.setsockopt(LISTENER, maxseg=1000)
    assert peer.tcp.getsockopt(LISTENER, TCP_MAXSEG) == 1000
    synack, tp = peer.open(mss=1460)
    assert mss_option(synack) == 1000
    assert tp.advmss == 1000 and tp.mss_cache == 1000 and peer.tcp.getsockopt(tp.sk, TCP_MAXSEG) == 1000
    assert peer.tcp.sock(LISTENER).advmss == 1460  # the route's, for a later TCP_MAXSEG


def test_maxseg_set_before_connect_is_the_mss_the_syn_announces():
    peer = Peer()
    assert peer.tcp.connect(7, 0, 5000, A, 80, opts={"maxseg": 1000}) == (0, B)
    (syn, _), = peer.sent()
    assert syn.flags == TCPHDR_SYN and mss_option(syn) == 1000
    assert peer.tcp.getsockopt(7, TCP_MAXSEG) == 1000 and peer.tcp.getsockopt(8, TCP_MAXSEG) is None


# -- TCP_QUICKACK ------------------------------------------------------------------------------------
def test_quickack_sends_the_delayed_ack_of_data_the_user_has_read():
    peer = Peer()
    _, tp = peer.open()
    tp.quickack = 0  # the quick ACKs of the start are spent
    assert peer.send(TCPHDR_ACK, 1, 1, 1000) == []  # no PSH: it waits for the delayed-ACK timer
    peer.tcp.recvd(tp.sk, 1000)
    assert peer.sent() == [] and tp.ack_pending
    peer.tcp.setsockopt(tp.sk, quickack=1)
    (ack, n), = peer.sent()
    assert ack.ack_seq == 1001 and n == 0 and not tp.delack_at


def test_quickack_0_is_ping_pong_mode_which_the_delayed_ack_timer_ends():
    peer = Peer()
    _, tp = peer.open()
    assert peer.tcp.getsockopt(tp.sk, TCP_QUICKACK) == 1
    peer.tcp.setsockopt(tp.sk, quickack=0)
    assert peer.tcp.getsockopt(tp.sk, TCP_QUICKACK) == 0
    assert peer.send(TCPHDR_ACK | TCPHDR_PSH, 1, 1, 100) == []  # no quick ACK in ping-pong mode
    (ack, _), = peer.at(0.04)
    assert ack.ack_seq == 101 and peer.tcp.getsockopt(tp.sk, TCP_QUICKACK) == 1


def test_quickack_0_before_connect_delays_the_handshakes_last_ack():
    peer = Peer()
    peer.tcp.connect(7, 0, 5000, A, 80, opts={"quickack": 0})
    (syn, _), = peer.sent()
    tp = peer.tcp.sock(7)
    synack = TcpHdr(80, 5000, 0, syn.seq + 1, 0, TCPHDR_SYN | TCPHDR_ACK, 65535,
                    options=encode_options(TcpOptMss(1460))).to_bytes(b"", A, B)
    peer.tcp.tcp_v4_rcv([ip_skb(IpHdr(A, B, 6).to_bytes(len(synack)) + synack)])
    assert tp.state == TcpState.ESTABLISHED and peer.sent() == []
    assert tp.delack_at == pytest.approx(peer.clock.t + TCP_DELACK_MAX) and not tp.pingpong
    peer.clock.t += TCP_DELACK_MAX
    peer.tcp.run_timers()
    (ack, _), = peer.sent()
    assert ack.flags == TCPHDR_ACK and ack.ack_seq == 1


# -- the socket layer -------------------------------------------------------------------------------
class FakeTcp:
    """L4's TCP calls as the socket layer makes them, recorded."""

    def __init__(self) -> None:
        self.calls: list = []

    def setsockopt(self, sock, **opts):
        self.calls.append(opts)

    def hash(self, sock):
        return sock.saddr, sock.sport or 40000, sock.daddr, sock.dport

    def listen(self, sock, backlog):
        pass


@pytest.fixture
def layer():
    tcp = FakeTcp()
    return SocketLayer("B", tcp, Mib(), tcp)


def einval(fn) -> bool:
    with pytest.raises(SockError) as exc:
        fn()
    return exc.value.errno == errno.EINVAL


def test_a_new_sockets_tcp_options_read_as_linuxs_defaults(layer):
    sock = layer.socket(AF_INET, SOCK_STREAM, 0)
    got = {opt: layer.getsockopt(sock, IPPROTO_TCP, opt)
           for opt in (SO_TCP_MAXSEG, TCP_CORK, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT, SO_TCP_QUICKACK)}
    assert got == {SO_TCP_MAXSEG: 536, TCP_CORK: 0, TCP_KEEPIDLE: 7200, TCP_KEEPINTVL: 75, TCP_KEEPCNT: 9,
                   SO_TCP_QUICKACK: 1}
    assert layer.getsockopt(sock, SOL_SOCKET, SO_KEEPALIVE) == 0


def test_tcp_options_out_of_linuxs_ranges_are_einval_and_change_nothing(layer):
    sock = layer.socket(AF_INET, SOCK_STREAM, 0)
    for opt, value in ((SO_TCP_MAXSEG, 87), (SO_TCP_MAXSEG, 32768), (SO_TCP_MAXSEG, -1), (TCP_KEEPIDLE, 0),
                       (TCP_KEEPIDLE, 32768), (TCP_KEEPINTVL, 0), (TCP_KEEPCNT, 0), (TCP_KEEPCNT, 128)):
        assert einval(lambda: layer.setsockopt(sock, IPPROTO_TCP, opt, value)), (opt, value)
    assert layer.getsockopt(sock, IPPROTO_TCP, SO_TCP_MAXSEG) == 536 and layer.stream.tcp.calls == []
    layer.setsockopt(sock, IPPROTO_TCP, SO_TCP_MAXSEG, 0)  # 0: no cap
    assert layer.getsockopt(sock, IPPROTO_TCP, SO_TCP_MAXSEG) == 536


def test_tcp_options_are_kept_and_l4_is_told_just_the_one_set(layer):
    sock = layer.socket(AF_INET, SOCK_STREAM, 0)
    for level, opt, value in ((IPPROTO_TCP, SO_TCP_MAXSEG, 1000), (IPPROTO_TCP, TCP_CORK, 5),
                              (IPPROTO_TCP, TCP_KEEPIDLE, 1), (IPPROTO_TCP, TCP_KEEPINTVL, 2),
                              (IPPROTO_TCP, TCP_KEEPCNT, 3), (IPPROTO_TCP, SO_TCP_QUICKACK, 0),
                              (SOL_SOCKET, SO_KEEPALIVE, 1)):
        layer.setsockopt(sock, level, opt, value)
    assert layer.stream.tcp.calls == [{"maxseg": 1000}, {"cork": True}, {"keepidle": 1}, {"keepintvl": 2},
                                      {"keepcnt": 3}, {"quickack": 0}, {"keepalive": True}]
    got = {opt: layer.getsockopt(sock, IPPROTO_TCP, opt)
           for opt in (SO_TCP_MAXSEG, TCP_CORK, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT, SO_TCP_QUICKACK)}
    assert got == {SO_TCP_MAXSEG: 1000, TCP_CORK: 1, TCP_KEEPIDLE: 1, TCP_KEEPINTVL: 2, TCP_KEEPCNT: 3,
                   SO_TCP_QUICKACK: 0}


def test_an_accepted_socket_has_its_listeners_tcp_options(layer):
    listener = layer.socket(AF_INET, SOCK_STREAM, 0)
    for level, opt, value in ((IPPROTO_TCP, TCP_NODELAY, 1), (IPPROTO_TCP, TCP_CORK, 1),
                              (IPPROTO_TCP, TCP_KEEPIDLE, 3), (SOL_SOCKET, SO_KEEPALIVE, 1)):
        layer.setsockopt(listener, level, opt, value)

    class Child:
        sk, saddr, sport, daddr, dport, mss = 1 << 40, B, 80, A, 40000, 988

    child = layer.child(listener, Child)
    assert child.keepalive and child.stream.nodelay and child.stream.cork and child.stream.keepidle == 3
