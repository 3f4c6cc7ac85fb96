"""ECN in pktpath's TCP (RFC 3168, as Linux 6.18's tcp_ecn_* do it): the handshake that
agrees to it, ECT(0) on new data only, CE echoed with ECE until CWR, and the sender's one
reduction per window (the CWR state, PRR). The numbers are those tests/drill/ecn-*.pkt
proved against the kernel: one engine is driven segment by segment here (Peer), or two
talk over the simulated wire of test_l4_tcp (EcnNet, which keeps the IP header's tos and
can mark CE as a congested router would)."""

import pytest

from pktpath import skbuff as s
from pktpath.counters import Mib
from pktpath.flow import Flowi4
from pktpath.offload import skb_gso_segment
from pktpath.pb import skbuff_pb2 as pb
from pktpath.services.l4.tcp import ecn
from pktpath.services.l4.tcp.ipv4 import Tcp
from pktpath.services.l4.tcp.sock import TcpState
from pktpath.wire import IpHdr, TcpHdr
from pktpath.wire.tcp import (
    TCPHDR_ACK, TCPHDR_CWR, TCPHDR_ECE, TCPHDR_PSH, TCPHDR_SYN, TcpOptMss, TcpOptNop, TcpOptWindow, encode_options,
)

from fakes import Clock
from tcpframes import ip_skb, user_skb
from test_l4_tcp import Net, connect

A, B = 0x0A000001, 0x0A000002
NOT_ECT, ECT_1, ECT_0, CE = 0, 1, 2, 3
SEW = TCPHDR_SYN | TCPHDR_ECE | TCPHDR_CWR
AE = 0x01  # in the data-offset byte's low nibble (doff_res)


class Peer:
    """A listening on B:80 of one engine; the test is the peer at A:40000, its segments
    built by hand (tos and all), the engine's read back with their flowi4's tos."""

    def __init__(self, **sysctls) -> None:
        self.clock = Clock()
        self.out: list = []
        self.mib = Mib()
        self.tcp = Tcp("B", mib=self.mib, clock=self.clock, ip_queue_xmit=self.out.extend,
                       to_sock=lambda events: None, route_output=lambda daddr: (0, B, 1500), isn=lambda: 1000)
        for name, value in sysctls.items():
            self.tcp.sysctls.set(f"net.ipv4.{name}", str(value))
        self.tcp.listen(100, 0, 80, 10, rcvbuf=131072)

    def send(self, flags: int, seq: int, ack: int = 0, data: int = 0, *, tos: int = NOT_ECT, doff_res: int = 0,
             opts: bytes = b"") -> list[tuple[TcpHdr, int, int]]:
        """One segment from the peer (seq/ack relative to the ISNs, 0 and 1000); what the
        engine sent in answer: (header, payload length, tos)."""
        payload = bytes(data)
        th = TcpHdr(40000, 80, seq, ack + 1000 if flags & TCPHDR_ACK else 0, doff_res, flags, 257,
                    options=opts).to_bytes(payload, A, B)
        raw = IpHdr(A, B, 6, tos=tos).to_bytes(len(th) + len(payload)) + th + payload
        skb = ip_skb(raw)
        self.tcp.tcp_v4_rcv([skb])
        return self.sent()

    def sent(self) -> list[tuple[TcpHdr, int, int]]:
        got = []
        for skb in self.out:
            th = TcpHdr.from_bytes(bytes(skb.payload()))
            got.append((th, skb.len - th.header_len, Flowi4.unpack(skb.cb).tos))
        self.out.clear()
        return got

    def open(self, syn_flags: int = SEW, *, tos: int = NOT_ECT, doff_res: int = 0):
        """The handshake, MSS 1000: returns (the SYN-ACK, the child tcp_sock)."""
        (synack, _, synack_tos), = self.send(syn_flags, 0, tos=tos, doff_res=doff_res, opts=encode_options(
            TcpOptMss(1000), TcpOptNop(), TcpOptWindow(7)))
        assert synack_tos == NOT_ECT  # a SYN-ACK is never ECT
        self.clock.t += 0.01
        assert self.send(TCPHDR_ACK, 1, 1) == []
        return synack, self.tcp.established()[0]

    def write(self, tp, n: int) -> list[tuple[TcpHdr, int, int]]:
        self.tcp.sendmsg(tp.sk, [user_skb(tp.sk, n)])
        return self.sent()


def flags(th: TcpHdr) -> int:
    return th.flags & (TCPHDR_ECE | TCPHDR_CWR)


# -- the handshake ---------------------------------------------------------------------------
@pytest.mark.parametrize("tcp_ecn, syn, tos, doff_res, agreed", [
    (2, SEW, NOT_ECT, 0, True),           # the default agrees when asked
    (1, SEW, NOT_ECT, 0, True),
    (0, SEW, NOT_ECT, 0, False),          # off: never
    (2, TCPHDR_SYN | TCPHDR_ECE, NOT_ECT, 0, False),  # ECE and CWR both, or no request
    (2, TCPHDR_SYN | TCPHDR_CWR, NOT_ECT, 0, False),
    (2, TCPHDR_SYN, NOT_ECT, AE, False),  # AE alone: an AccECN request, which 6.18 answers only with tcp_ecn >= 3
    (2, SEW, ECT_0, 0, False),            # an ECT or CE SYN: someone played with the bits (RFC 3168 6.1.1)
    (2, SEW, ECT_1, 0, False),
    (2, SEW, CE, 0, False),
    (2, SEW, ECT_0, AE, True),            # ... unless AE or a reserved bit says a later extension (RFC 8311 4.3)
    (2, SEW, ECT_0, 0x02, True),
    (2, SEW, NOT_ECT, AE, True),
])
def test_a_listener_agrees_to_ecn_as_tcp_ecn_create_request_does(tcp_ecn, syn, tos, doff_res, agreed):
    peer = Peer(tcp_ecn=tcp_ecn)
    synack, tp = peer.open(syn, tos=tos, doff_res=doff_res)
    assert flags(synack) == (TCPHDR_ECE if agreed else 0)  # ECE alone: never CWR in a SYN-ACK
    assert bool(tp.ecn_flags & ecn.TCP_ECN_OK) == agreed
    assert {tos for _, _, tos in peer.write(tp, 1000)} == {ECT_0 if agreed else NOT_ECT}


def test_a_resent_syn_ack_still_carries_ece():
    peer = Peer()
    (synack, _, _), = peer.send(SEW, 0)
    peer.clock.t += 1.0
    peer.tcp.run_timers()
    (again, _, _), = peer.sent()
    assert flags(synack) == flags(again) == TCPHDR_ECE


# -- ECT on new data only ----------------------------------------------------------------------
def test_new_data_goes_ect0_but_not_pure_acks_retransmissions_or_a_bare_fin():
    peer = Peer()
    _, tp = peer.open()
    (data, n, tos), = peer.write(tp, 1000)
    assert (n, tos) == (1000, ECT_0)
    peer.clock.t += 1.0
    peer.tcp.run_timers()  # the RTO: the same bytes again
    (rtx, n, tos), = peer.sent()
    assert (rtx.seq, n, tos) == (data.seq, 1000, NOT_ECT)
    peer.clock.t += 0.01
    (ack, n, tos), = peer.send(TCPHDR_ACK | TCPHDR_PSH, 1, 1001, 1000, tos=ECT_0)
    assert (n, tos, flags(ack)) == (0, NOT_ECT, 0)
    peer.tcp.close(tp.sk)  # unread data: a reset, Not-ECT too
    assert [(th.rst, tos) for th, _, tos in peer.sent()] == [(True, NOT_ECT)]
    assert tp.state == TcpState.CLOSE


# -- CE echoed with ECE until CWR ------------------------------------------------------------------
def test_ce_is_echoed_on_every_segment_until_the_peers_cwr_and_counts_as_seen():
    peer = Peer()
    _, tp = peer.open()
    assert not tp.ecn_flags & ecn.TCP_ECN_SEEN
    (ack, _, tos), = peer.send(TCPHDR_ACK | TCPHDR_PSH, 1, 1, 1000, tos=CE)
    assert (flags(ack), tos) == (TCPHDR_ECE, NOT_ECT)
    assert tp.ecn_flags & ecn.TCP_ECN_SEEN
    (ack, _, _), = peer.send(TCPHDR_ACK | TCPHDR_PSH, 1001, 1, 1000, tos=ECT_0)
    assert flags(ack) == TCPHDR_ECE
    (data, _, tos), = peer.write(tp, 1000)
    assert (flags(data), tos) == (TCPHDR_ECE, ECT_0)  # our own data echoes it too
    (ack, _, _), = peer.send(TCPHDR_ACK | TCPHDR_PSH | TCPHDR_CWR, 2001, 1001, 1000, tos=ECT_0)
    assert flags(ack) == 0
    (ack, _, _), = peer.send(TCPHDR_ACK | TCPHDR_PSH, 3001, 1001, 1000, tos=CE)
    assert flags(ack) == TCPHDR_ECE
    assert peer.send(TCPHDR_ACK | TCPHDR_CWR, 4001, 1001, tos=ECT_0) == []  # a pure ACK's CWR ends it too
    (ack, _, _), = peer.send(TCPHDR_ACK | TCPHDR_PSH, 4001, 1001, 1000, tos=ECT_0)
    assert flags(ack) == 0


def test_ce_brings_quick_acks_back_and_cwr_with_data_is_acked_at_once():
    peer = Peer()
    _, tp = peer.open()
    tp.quickack = 0  # the start's quick ACKs spent
    assert peer.send(TCPHDR_ACK | TCPHDR_PSH, 1, 1, 1000, tos=ECT_0) == [] and tp.delack_at  # delayed
    peer.clock.t = tp.delack_at
    peer.tcp.run_timers()
    peer.sent()
    assert len(peer.send(TCPHDR_ACK | TCPHDR_PSH, 1001, 1, 1000, tos=CE)) == 1     # quick ACK 1 of 2
    assert len(peer.send(TCPHDR_ACK | TCPHDR_PSH, 2001, 1, 1000, tos=ECT_0)) == 1  # and 2
    assert peer.send(TCPHDR_ACK | TCPHDR_PSH, 3001, 1, 1000, tos=ECT_0) == []      # delayed again
    peer.clock.t = tp.delack_at
    peer.tcp.run_timers()
    assert [flags(th) for th, _, _ in peer.sent()] == [TCPHDR_ECE]
    (ack, _, _), = peer.send(TCPHDR_ACK | TCPHDR_PSH | TCPHDR_CWR, 4001, 1, 1000, tos=ECT_0)
    assert (ack.ack_seq, flags(ack)) == (5001, 0)  # ICSK_ACK_NOW: at once, and the echo is over
    assert peer.send(TCPHDR_ACK | TCPHDR_PSH, 5001, 1, 1000, tos=ECT_0) == []      # delayed
    peer.clock.t = tp.delack_at
    peer.tcp.run_timers()
    peer.sent()
    (ack, _, _), = peer.send(TCPHDR_ACK | TCPHDR_PSH, 6001, 1, 1000, tos=NOT_ECT)  # after ECT: a retransmission?
    assert ack.ack_seq == 7001


def test_a_time_wait_socket_acks_without_ecn():
    peer = Peer()
    _, tp = peer.open()
    peer.send(TCPHDR_ACK | TCPHDR_PSH, 1, 1, 1000, tos=CE)  # ECE owed
    peer.tcp.recvd(tp.sk, 1000)
    peer.tcp.close(tp.sk)
    (fin, _, _), = peer.sent()
    assert fin.fin and flags(fin) == TCPHDR_ECE
    peer.send(TCPHDR_ACK | 0x01, 1001, 2)  # the peer's FIN, acknowledging ours
    assert tp.state == TcpState.TIME_WAIT
    peer.sent()
    (ack, _, tos), = peer.send(TCPHDR_ACK | 0x01, 1001, 2)  # its FIN again
    assert (flags(ack), tos) == (0, NOT_ECT)


# -- the sender's reduction -------------------------------------------------------------------------
def test_an_ece_reduces_cwnd_once_per_window_by_prr_and_cwr_goes_on_the_next_new_data():
    """tests/drill/ecn-ece-cwr.pkt's numbers, as Linux 6.18 had them."""
    peer = Peer()
    _, tp = peer.open()
    assert sum(n for _, n, _ in peer.write(tp, 10000)) == 10000
    peer.clock.t += 0.01
    assert peer.send(TCPHDR_ACK | TCPHDR_ECE, 1, 2001) == []
    assert (tp.in_cwr, tp.ssthresh, tp.cwnd, tp.delivered_ce) == (True, 7, 10, 2)
    assert peer.mib.get("TcpExt", "TCPDeliveredCE") == 2
    sent = peer.write(tp, 2000)
    assert [(th.seq - 1000, n, flags(th), tos) for th, n, tos in sent] == [(10001, 2000, TCPHDR_CWR, ECT_0)]
    peer.send(TCPHDR_ACK, 1, 4001)
    assert tp.cwnd == 9
    (th, _, _), = peer.write(tp, 1000)
    assert flags(th) == 0  # CWR once
    peer.send(TCPHDR_ACK | TCPHDR_ECE, 1, 6001)  # ECE again, same window: no new reduction
    assert (tp.in_cwr, tp.ssthresh, tp.cwnd, tp.delivered_ce) == (True, 7, 7, 4)
    peer.send(TCPHDR_ACK, 1, 10001)  # at high_seq, not past it
    assert (tp.in_cwr, tp.cwnd) == (True, 7)
    assert sum(n for _, n, _ in peer.write(tp, 4000)) == 4000
    peer.send(TCPHDR_ACK, 1, 12001)
    assert (tp.in_cwr, tp.ssthresh, tp.cwnd) == (False, 7, 7)
    assert [flags(th) for th, _, _ in peer.write(tp, 1000)] == [0]


def test_a_connection_without_ecn_ignores_ece():
    peer = Peer(tcp_ecn=0)
    _, tp = peer.open()
    peer.write(tp, 10000)
    peer.send(TCPHDR_ACK | TCPHDR_ECE, 1, 2001)
    assert (tp.in_cwr, tp.cwnd, tp.delivered_ce) == (False, 12, 0)  # slow start went on


def test_a_timeout_owes_cwr_and_keeps_the_ecn_reductions_ssthresh():
    peer = Peer()
    _, tp = peer.open()
    peer.write(tp, 10000)
    peer.send(TCPHDR_ACK | TCPHDR_ECE, 1, 2001)
    peer.write(tp, 2000)  # CWR sent
    peer.clock.t += tp.rto
    peer.tcp.run_timers()
    (rtx, _, tos), = peer.sent()
    assert (rtx.seq - 1000, flags(rtx), tos) == (2001, 0, NOT_ECT)
    assert (tp.in_cwr, tp.ssthresh, tp.cwnd) == (False, 7, 1)  # tcp_enter_loss: high_seq was not yet acked
    assert tp.ecn_flags & ecn.TCP_ECN_QUEUE_CWR


# -- the active side -----------------------------------------------------------------------------
def active(tcp_ecn: int = 1, **sysctls):
    peer = Peer(tcp_ecn=tcp_ecn, **sysctls)
    assert peer.tcp.connect(1, 0, 40000, A, 80) == (0, B)
    (syn, _, tos), = peer.sent()
    return peer, peer.tcp.sock(1), syn, tos


def synack(peer, ace: int):
    """The SYN-ACK from A:80 with ECE, CWR and AE as ACE (AE << 2 | CWR << 1 | ECE)."""
    th = TcpHdr(80, 40000, 5000, peer.tcp.sock(1).iss + 1, AE if ace & 4 else 0,
                TCPHDR_SYN | TCPHDR_ACK | (TCPHDR_CWR if ace & 2 else 0) | (TCPHDR_ECE if ace & 1 else 0), 65535,
                options=encode_options(TcpOptMss(1000))).to_bytes(b"", A, B)
    raw = IpHdr(A, B, 6).to_bytes(len(th)) + th
    skb = ip_skb(raw)
    peer.tcp.tcp_v4_rcv([skb])
    return peer.sent()


@pytest.mark.parametrize("tcp_ecn, asks", [(1, True), (2, False), (0, False)])
def test_only_tcp_ecn_1_asks_for_ecn_in_the_syn(tcp_ecn, asks):
    _, tp, syn, tos = active(tcp_ecn)
    assert (flags(syn), tos) == ((TCPHDR_ECE | TCPHDR_CWR) if asks else 0, NOT_ECT)
    assert bool(tp.ecn_flags & ecn.TCP_ECN_OK) == asks


@pytest.mark.parametrize("ace, agreed", [(0, False), (1, True), (5, True), (7, False),
                                         (2, False), (3, False), (4, False), (6, False)])  # AccECN: not here
def test_the_syn_ack_agrees_with_ece_alone_or_ece_and_ae(ace, agreed):
    peer, tp, _, _ = active()
    (ack, _, tos), = synack(peer, ace)
    assert (flags(ack), tos) == (0, NOT_ECT)
    assert bool(tp.ecn_flags & ecn.TCP_ECN_OK) == agreed
    (data, _, tos), = peer.write(tp, 100)
    assert tos == (ECT_0 if agreed else NOT_ECT) and flags(data) == 0


@pytest.mark.parametrize("fallback", [1, 0])
def test_a_resent_syn_asks_no_more_unless_tcp_ecn_fallback_is_off_and_owes_cwr(fallback):
    peer, tp, _, _ = active(tcp_ecn_fallback=fallback)
    peer.clock.t += 1.0
    peer.tcp.run_timers()
    (syn, _, _), = peer.sent()
    assert flags(syn) == (0 if fallback else TCPHDR_ECE | TCPHDR_CWR)
    synack(peer, 1)
    assert tp.ecn_flags & ecn.TCP_ECN_OK  # the SYN-ACK's ECE still agrees
    (data, _, tos), = peer.write(tp, 100)
    assert (flags(data), tos) == (TCPHDR_CWR, ECT_0)  # the SYN's timeout was a reduction (tcp_enter_loss)


def test_a_simultaneous_open_keeps_ecn_only_if_both_syns_asked():
    for peer_flags, kept in ((SEW, True), (TCPHDR_SYN, False)):
        peer, tp, _, _ = active()
        th = TcpHdr(80, 40000, 5000, 0, 0, peer_flags, 65535).to_bytes(b"", A, B)
        raw = IpHdr(A, B, 6).to_bytes(len(th)) + th
        skb = s.alloc_skb(s.NET_SKB_PAD + len(raw), sampled=False)
        s.skb_reserve(skb, s.NET_SKB_PAD)
        s.skb_put_data(skb, raw)
        s.skb_reset_network_header(skb)
        s.skb_pull(skb, 20)
        peer.tcp.tcp_v4_rcv([skb])
        (our_synack, _, _), = peer.sent()
        assert flags(our_synack) == (TCPHDR_ECE if kept else 0)  # tcp_ecn_send_synack: never CWR
        assert bool(tp.ecn_flags & ecn.TCP_ECN_OK) == kept


# -- two engines over a congested wire -----------------------------------------------------------------
class EcnNet(Net):
    """test_l4_tcp's wire with the IP header's tos kept, and a router that marks CE on the
    ECT packets `mark(src, th, payload)` picks."""

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.mark = None
        self.tos_seen: list = []  # (from, flags, payload length, tos)

    def send(self, src, skbs) -> None:
        packets = []
        for skb in skbs:
            flow = Flowi4.unpack(skb.cb)
            s.skb_push_data(skb, IpHdr(flow.saddr, flow.daddr, 6, tos=flow.tos).to_bytes(skb.len))
            s.skb_reset_network_header(skb)
            packets += skb_gso_segment(skb, pb.LAYER_SOFTIRQ, src.name) if skb.gso_size else [skb]
        dst = self.b if src is self.a else self.a
        for skb in packets:
            raw = bytes(skb.payload())
            ip, th = IpHdr.from_bytes(raw), TcpHdr.from_bytes(raw[20:])
            n = len(raw) - 20 - th.header_len
            if self.mark and ip.tos & 3 in (ECT_1, ECT_0) and self.mark(src, th, n):
                raw = IpHdr(ip.saddr, ip.daddr, 6, tos=ip.tos | CE).to_bytes(len(raw) - 20) + raw[20:]
            self.tos_seen.append((src.name, th.flags, n, raw[1] & 3))
            self.wire.append((self.clock.t, src.name, raw))
            self.later(self.delay, lambda raw=raw: self._arrive(dst, raw))


def test_two_hosts_agree_and_a_ce_mark_makes_the_sender_back_off_once():
    net = EcnNet()
    net.a.tcp.sysctls.set("net.ipv4.tcp_ecn", "1")
    marked = []

    def mark_the_20th(src, th, n):
        if src is net.a and n and not marked and sum(1 for f, _, m, _ in net.tos_seen if f == "A" and m) == 19:
            marked.append(th.seq)
            return True
        return False

    net.mark = mark_the_20th
    c, srv = connect(net)
    syn, synack = net.tos_seen[0], net.tos_seen[1]
    assert syn[1] & SEW == SEW and synack[1] & (TCPHDR_ECE | TCPHDR_CWR) == TCPHDR_ECE
    data = bytes(200_000)
    net.a.send(c, data)
    net.run(10.0, until=lambda: len(net.b.data.get(srv, b"")) == len(data))
    assert bytes(net.b.data[srv]) == data and marked
    a_data = [(fl, tos) for f, fl, n, tos in net.tos_seen if f == "A" and n]
    assert all(tos in (ECT_0, CE) for _, tos in a_data)  # nothing lost: no retransmission, all ECT(0)
    assert [fl & TCPHDR_CWR for fl, _ in a_data].count(TCPHDR_CWR) == 1  # one reduction, one CWR
    b_acks = [fl for f, fl, n, _ in net.tos_seen if f == "B" and not n]
    assert any(fl & TCPHDR_ECE for fl in b_acks) and not b_acks[-1] & TCPHDR_ECE
    tp_a = net.a.tcp.sock(c)
    assert tp_a.delivered_ce > 0 and net.a.count("TcpExt", "TCPDeliveredCE") == tp_a.delivered_ce
    assert tp_a.ssthresh < 0x7FFFFFFF and not tp_a.in_cwr
