"""cwnd validation after idle (RFC 2861, RFC 5681 4.1) in pktpath's TCP, as Linux 6.12 does it
with net.ipv4.tcp_slow_start_after_idle 1 (its default): a write, or a window update with data
waiting, after an idle time longer than the RTO restarts cwnd (tcp_slow_start_after_idle_check,
tcp_cwnd_restart), halving it per RTO down to the initial window; a cwnd the application leaves
unused for an RTO is cut toward what it used (tcp_cwnd_application_limited); CUBIC does not
count the idle time as growth time (CA_EVENT_TX_START); and net.ipv4.tcp_min_tso_segs sizes TSO
packets. The numbers are those tests/drill/cwnd-restart-*.pkt proved against the kernel: one
engine (B, listening) driven by a hand-made peer (test_l4_tcp_ecn's Peer), MSS 1000, a 10 ms
RTT (so an RTO of 210 ms)."""

import pytest

from pktpath.services.l4.tcp import output
from pktpath.services.l4.tcp.cong import CA_EVENT_TX_START, Cubic
from pktpath.sysctl import KNOBS, Sysctls, SysctlError
from pktpath.wire import IpHdr, TcpHdr
from pktpath.wire.tcp import TCPHDR_ACK

from tcpframes import ip_skb
from test_l4_tcp_ecn import A, B, Peer

MSS = 1000
RTT = 0.01
INFINITE_SSTHRESH = 0x7FFFFFFF


def ack(peer, acked: int, *, after: float = RTT, win: int = 1000) -> list[tuple[int, int]]:
    """The peer acknowledges `acked` bytes `after` seconds on, its window `win` (<< 7); what B
    sent in answer: (offset of the data, length) of each skb."""
    peer.clock.t += after
    raw = TcpHdr(40000, 80, 1, 1001 + acked, 0, TCPHDR_ACK, win).to_bytes(b"", A, B)
    peer.tcp.tcp_v4_rcv([ip_skb(IpHdr(A, B, 6).to_bytes(len(raw)) + raw)])
    return sent(peer)


def sent(peer) -> list[tuple[int, int]]:
    return [(th.seq - 1001, n) for th, n, _ in peer.sent()]


def write(peer, tp, n: int) -> list[tuple[int, int]]:
    return [(th.seq - 1001, length) for th, length, _ in peer.write(tp, n)]


def grown_to_40(**sysctls):
    """A connection whose slow start took cwnd to 40, all of it acknowledged: nothing in flight."""
    peer = Peer(**sysctls)
    _, tp = peer.open()
    write(peer, tp, 10 * MSS)
    ack(peer, 10 * MSS)
    write(peer, tp, 20 * MSS)
    ack(peer, 30 * MSS)
    assert (tp.cwnd, tp.packets_out, tp.rto) == (40, 0, pytest.approx(0.21))
    return peer, tp


def covered(chunks: list[tuple[int, int]]) -> int:
    """The bytes sent back to back from the first chunk's offset."""
    assert [start for start, _ in chunks] == [chunks[0][0] + sum(n for _, n in chunks[:i]) for i in range(len(chunks))]
    return sum(n for _, n in chunks)


# -- the restart --------------------------------------------------------------------------------
@pytest.mark.parametrize("idle, cwnd", [
    (0.15, 40),  # less than the RTO: no restart
    (0.3, 20),   # one RTO and a half: halved once (cwnd-restart-halves-per-rto.pkt)
    (0.5, 10),   # two and a half: twice
    (1.0, 10),   # more than four: stops at the initial window (cwnd-restart-to-the-initial-window.pkt)
])
def test_a_write_after_idle_restarts_cwnd_halving_it_per_rto_down_to_the_initial_window(idle, cwnd):
    peer, tp = grown_to_40()
    peer.clock.t += idle
    assert covered(write(peer, tp, 50 * MSS)) == cwnd * MSS
    assert tp.cwnd == cwnd and tp.ssthresh == INFINITE_SSTHRESH  # slow start climbs back


def test_the_restart_keeps_three_quarters_of_the_old_cwnd_as_ssthresh():
    """tcp_current_ssthresh: a finite ssthresh below 3/4 of cwnd rises to it, one above stays."""
    peer, tp = grown_to_40()
    tp.ssthresh = 20
    peer.clock.t += 1.0
    write(peer, tp, 1000)
    assert (tp.cwnd, tp.ssthresh) == (10, 30)
    peer, tp = grown_to_40()
    tp.ssthresh = 35
    tp.cwnd = 40
    peer.clock.t += 0.3
    write(peer, tp, 1000)
    assert (tp.cwnd, tp.ssthresh) == (20, 35)


def test_a_cwnd_below_the_initial_window_is_never_raised_by_a_restart():
    peer, tp = grown_to_40()
    tp.cwnd = 4
    peer.clock.t += 1.0
    write(peer, tp, 1000)
    assert tp.cwnd == 4


def test_with_tcp_slow_start_after_idle_0_an_idle_second_keeps_cwnd():
    """cwnd-restart-off-keeps-cwnd.pkt."""
    peer, tp = grown_to_40(tcp_slow_start_after_idle=0)
    peer.clock.t += 1.0
    assert covered(write(peer, tp, 50 * MSS)) == 40 * MSS and tp.cwnd == 40


def test_with_data_still_in_flight_there_is_no_restart():
    peer, tp = grown_to_40()
    write(peer, tp, 5 * MSS)
    peer.clock.t += 0.3  # unacknowledged all along: not idle (the RTO is the timer's business)
    output.tcp_slow_start_after_idle_check(peer.tcp, tp)
    assert tp.cwnd == 40


def test_the_handshake_is_no_idle_time():
    """lsndtime starts at the connection's establishment (tcp_finish_connect, tcp_create_openreq_child):
    a first write long after accept sends the whole initial window, whatever came before."""
    peer = Peer()
    _, tp = peer.open()
    assert tp.lsndtime == peer.clock.t
    tp.cwnd = 40  # as if the route gave a larger initial window: no restart cuts it on the first write
    peer.clock.t += 0.1
    write(peer, tp, 1000)
    assert tp.cwnd == 40


def test_a_window_update_with_data_waiting_restarts_cwnd():
    """tcp_ack_update_window (slow-start-after-win-update.pkt): the peer's window closed while a
    write waited; the ACK that opens it, 3 s later, finds the connection idle since the last data
    went out (zero-window probes are no data) and restarts cwnd 40 at 10: 10 MSS go."""
    peer, tp = grown_to_40()
    write(peer, tp, 5 * MSS)
    ack(peer, 35 * MSS, win=0)
    assert write(peer, tp, 20 * MSS) == [] and tp.cwnd == 40
    sent_now = ack(peer, 35 * MSS, after=3.0)
    assert sent_now[0][0] == 35000 and covered(sent_now) == 10 * MSS
    assert tp.cwnd == 10


def test_a_window_update_with_nothing_waiting_leaves_cwnd_to_the_next_write():
    peer, tp = grown_to_40()
    write(peer, tp, 5 * MSS)
    ack(peer, 35 * MSS, win=0)
    ack(peer, 35 * MSS, after=3.0)
    assert tp.cwnd == 40


# -- what marks the idle time's start ------------------------------------------------------------
def test_lsndtime_moves_with_data_sent_or_resent_not_with_a_bare_ack():
    peer, tp = grown_to_40()
    t0 = tp.lsndtime
    peer.clock.t += 0.05
    output.tcp_send_ack(peer.tcp, tp)
    assert tp.lsndtime == t0
    write(peer, tp, 1000)
    assert tp.lsndtime == peer.clock.t
    peer.clock.t += 0.05
    output.tcp_retransmit_skb(peer.tcp, tp, tp.rtx_queue[0])
    assert tp.lsndtime == peer.clock.t


def test_cubic_moves_its_epoch_on_by_the_idle_time_when_data_goes_with_nothing_in_flight():
    """cubictcp_cwnd_event(CA_EVENT_TX_START): the cubic curve does not grow over idle time."""
    peer, tp = grown_to_40()
    ca = tp.ca
    assert isinstance(ca, Cubic)
    ca.epoch_start = tp.lsndtime - 1.0
    peer.clock.t += 0.1
    write(peer, tp, 1000)  # not idle for an RTO: no restart, but a TX start
    assert ca.epoch_start == pytest.approx(peer.clock.t - 1.0)
    write(peer, tp, 1000)  # something in flight: no TX start
    assert ca.epoch_start == pytest.approx(peer.clock.t - 1.0)


def test_cubic_never_moves_its_epoch_past_now_nor_one_not_started():
    peer, tp = grown_to_40()
    ca = tp.ca
    now = tp.lsndtime + 5.0
    ca.epoch_start = tp.lsndtime + 0.5  # an ACK after the last data started it
    ca.cwnd_event(tp, CA_EVENT_TX_START, now)
    assert ca.epoch_start == now
    ca.epoch_start = 0.0
    ca.cwnd_event(tp, CA_EVENT_TX_START, now)
    assert ca.epoch_start == 0.0


# -- an application-limited cwnd (RFC 2861's slow part) -------------------------------------------
def app_limited_for_an_rto(**sysctls):
    """cwnd 40 with 5 segments out and no data acknowledged for an RTO: the next small write
    finds cwnd unused since."""
    peer, tp = grown_to_40(**sysctls)
    write(peer, tp, 5 * MSS)
    peer.clock.t += 0.25
    write(peer, tp, 1 * MSS)
    return peer, tp


def test_a_cwnd_unused_for_an_rto_is_cut_halfway_to_the_initial_window_or_what_was_used():
    """tcp_cwnd_application_limited: 6 segments used, less than the initial window: (40 + 10) / 2;
    ssthresh keeps 3/4 of the old cwnd (tcp_current_ssthresh)."""
    _, tp = app_limited_for_an_rto()
    assert (tp.cwnd, tp.ssthresh, tp.snd_cwnd_used) == (25, INFINITE_SSTHRESH, 0)
    peer, tp = grown_to_40()
    tp.ssthresh = 20
    write(peer, tp, 12 * MSS)
    peer.clock.t += 0.25
    write(peer, tp, 1 * MSS)
    assert (tp.cwnd, tp.ssthresh) == ((40 + 13) // 2, 30)


def test_a_cwnd_in_use_or_with_the_knob_off_is_not_cut():
    _, tp = app_limited_for_an_rto(tcp_slow_start_after_idle=0)
    assert tp.cwnd == 40
    peer, tp = grown_to_40()
    write(peer, tp, 5 * MSS)
    peer.clock.t += 0.1
    write(peer, tp, 1 * MSS)  # less than an RTO since the last data ACK
    assert tp.cwnd == 40 and tp.snd_cwnd_used == 6


def test_a_cwnd_reduction_under_way_is_not_cut_for_the_application():
    peer, tp = grown_to_40()
    write(peer, tp, 5 * MSS)
    tp.in_recovery = True  # not TCP_CA_Open
    peer.clock.t += 0.25
    write(peer, tp, 1 * MSS)
    assert tp.cwnd == 40


# -- sending half of cwnd at once ------------------------------------------------------------------
def test_a_burst_goes_as_packets_of_at_most_half_of_cwnd():
    """tcp_cwnd_test: with cwnd 10 and nothing out, 5 segments, then the other 5."""
    peer = Peer()
    _, tp = peer.open()
    assert output.tcp_cwnd_test(tp) == 5
    tp.packets_out = 8
    assert output.tcp_cwnd_test(tp) == 2
    tp.packets_out = 10
    assert output.tcp_cwnd_test(tp) == 0
    tp.cwnd, tp.packets_out = 1, 0
    assert output.tcp_cwnd_test(tp) == 1


# -- the knobs ------------------------------------------------------------------------------------
def test_tcp_slow_start_after_idle_is_linuxs_u8_default_1():
    sysctls = Sysctls("l4")
    assert KNOBS["net.ipv4.tcp_slow_start_after_idle"].linux == 1 and sysctls.tcp_slow_start_after_idle == 1
    assert sysctls.set("net.ipv4.tcp_slow_start_after_idle", "255") == "255"
    for bad in ("256", "-1"):
        with pytest.raises(SysctlError) as err:
            sysctls.set("net.ipv4.tcp_slow_start_after_idle", bad)
        assert err.value.errno_name == "EINVAL"


def test_tcp_min_tso_segs_is_linuxs_u8_from_1_default_2():
    sysctls = Sysctls("l4")
    assert KNOBS["net.ipv4.tcp_min_tso_segs"].linux == 2 and sysctls.tcp_min_tso_segs == 2
    assert sysctls.set("net.ipv4.tcp_min_tso_segs", "1") == "1"
    assert sysctls.set("net.ipv4.tcp_min_tso_segs", "0xff") == "255"
    for bad in ("0", "256"):
        with pytest.raises(SysctlError) as err:
            sysctls.set("net.ipv4.tcp_min_tso_segs", bad)
        assert err.value.errno_name == "EINVAL"


def test_tcp_min_tso_segs_is_the_fewest_segments_a_tso_packet_holds():
    """A 100 ms path at cwnd 10 paces 195 bytes a ms: the TSO packet is tcp_min_tso_segs."""
    for knob, segs in ((None, 2), (10, 10)):
        peer = Peer(**({} if knob is None else {"tcp_min_tso_segs": knob}))
        _, tp = peer.open()
        tp.srtt = tp.min_rtt = 0.1
        assert output.tcp_tso_segs(peer.tcp, tp, MSS) == segs
