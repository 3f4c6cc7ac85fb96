"""TSO deferral (tcp_tso_should_defer, net.ipv4.tcp_tso_win_divisor) and TSO autosizing
(tcp_tso_autosize) in pktpath's TCP, as Linux 6.12 does them: within a burst, an ACK that
opens less than a full TSO packet, less than 1/divisor of the window, with the next ACK due
at once, sends nothing and waits for that ACK. The numbers are those the drill scripts
tests/drill/sub-ms/tso-defer-*.pkt proved against the kernel. One engine (B, listening) is
driven segment by segment by a hand-made peer (test_l4_tcp_ecn's Peer): MSS 1000, the
peer's window 257 << 7."""

import pytest

from pktpath.drill.local import LocalHost
from pktpath.drill.parser import parse_file
from pktpath.drill.runner import Runner
from pktpath.services.l4.tcp import output
from pktpath.services.l4.tcp.ipv4 import SHUT_WR
from pktpath.sysctl import KNOBS, Sysctls, SysctlError
from pktpath.wire import IpHdr, TcpHdr
from pktpath.wire.tcp import (
    TCPHDR_ACK, TCPHDR_FIN, TCPHDR_SYN, TcpOptMss, TcpOptNop, TcpOptWindow, encode_options,
)

from drillkit import SCRIPTS
from tcpframes import ip_skb
from test_l4_tcp_ecn import A, B, Peer

MSS = 1000
# Drill scripts whose ACKs must come within 1 ms of the burst they answer, proven against the
# kernel (tests/e2e/test_drill_kernel.py): the virtual clock keeps that, a live pktpath
# host (whose hops take milliseconds) cannot, so they are not in tests/drill/ with the others
SUB_MS_SCRIPTS = sorted((SCRIPTS / "sub-ms").glob("*.pkt"))


def open_conn(rtt: float, wscale: int = 7, **sysctls):
    """B accepts A's connection, the handshake taking `rtt` (the first RTT sample); the
    peer's window 257 << 7, or 32792 unscaled (wscale 0)."""
    peer = Peer(**sysctls)
    peer.send(TCPHDR_SYN, 0, opts=encode_options(TcpOptMss(MSS), TcpOptNop(), TcpOptWindow(wscale)))
    peer.clock.t += rtt
    ack(peer, 0, win=257 if wscale else 32792)
    return peer, peer.tcp.established()[0]


def ack(peer, acked: int, *, after: float = 0.0, win: int = 257) -> list[tuple[int, int]]:
    """The peer acknowledges `acked` bytes of data `after` seconds on, its window `win`;
    what B sent in answer: (offset of the data, length) of each skb."""
    peer.clock.t += after
    raw = TcpHdr(40000, 80, 1, 1001 + acked, 0, TCPHDR_ACK, win).to_bytes(b"", A, B)
    raw = IpHdr(A, B, 6).to_bytes(len(raw)) + raw
    skb = ip_skb(raw)
    peer.tcp.tcp_v4_rcv([skb])
    return [(th.seq - 1001, n) for th, n, _ in peer.sent()]


def burst(peer, tp, n: int = 30000):
    """A write of n bytes: the first ten MSS go at once, back to back in GSO skbs of at most
    half of cwnd (tcp_cwnd_test)."""
    sent = [(th.seq - 1001, length) for th, length, _ in peer.write(tp, n)]
    assert [start for start, _ in sent] == [sum(length for _, length in sent[:i]) for i in range(len(sent))]
    assert sum(length for _, length in sent) == 10 * MSS and max(length for _, length in sent) <= 5 * MSS


# -- when it waits -------------------------------------------------------------------------
def test_an_ack_in_a_burst_opening_less_than_a_third_of_cwnd_waits_for_the_next():
    """tso-defer-waits-for-a-third-of-cwnd.pkt: 2 MSS of cwnd 11 waits, cwnd-limited; the
    next ACK's 4 MSS (a third of cwnd 12) go as one TSO packet."""
    peer, tp = open_conn(0.00005)
    burst(peer, tp)
    assert ack(peer, 1000, after=0.00005) == []
    assert tp.packets_out == 9 and tp.cwnd == 11
    assert ack(peer, 2000) == [(10000, 4000)]
    assert tp.packets_out == 12


def test_an_application_limited_tail_waits_unless_it_carries_the_fin():
    """tso-defer-app-limited-tail-waits.pkt: the last 1500 bytes fit in the 2 MSS opened, but
    the tail may grow: it waits. With the FIN after it (shutdown) it will not: it goes."""
    peer, tp = open_conn(0.00005)
    burst(peer, tp, 11500)
    assert ack(peer, 1000, after=0.00005) == []

    peer, tp = open_conn(0.00005)
    burst(peer, tp, 11500)
    peer.tcp.shutdown(tp.sk, SHUT_WR)
    assert peer.sent() == []  # cwnd is full
    # the FIN rides on the unsent tail (tcp_send_fin), which will get no more data: it goes, FIN and all
    assert ack(peer, 1000) == [(10000, 1500)] and not tp.write_queue and tp.rtx_queue[-1].flags & TCPHDR_FIN


def test_the_peers_window_cut_short_waits_rwnd_limited():
    """tso-defer-rwnd-limited.pkt: cwnd opens 4 MSS but the window (82 << 7) ends 2496 bytes
    past snd_nxt, less than a third of it: nothing goes, and not for cwnd; when the window
    opens, 6 MSS at once."""
    peer, tp = open_conn(0.00005)
    burst(peer, tp)
    assert ack(peer, 2000, after=0.00005, win=82) == []
    assert tp.packets_out == 8 and tp.cwnd == 12
    assert ack(peer, 3000) == [(10000, 6000)]


def test_a_deferral_for_cwnd_tells_tcp_cwnd_validate_that_cwnd_limits():
    """is_cwnd_limited: with 2 MSS of cwnd's 11 left unused, only the deferral says cwnd
    is what holds the sender back (so that slow start may go on growing it); a deferral
    for the application (the last 1500 bytes of a write) does not."""
    for n, limited in ((30000, True), (11500, False)):
        peer, tp = open_conn(0.00005)
        burst(peer, tp, n)
        peer.clock.t += 0.00005
        tp.snd_una, tp.packets_out, tp.cwnd = 1001 + 1000, 9, 11  # as after an ACK of 1000 bytes
        tp.cwnd_limited, tp.cwnd_usage_seq = False, tp.snd_una  # a new window: tcp_cwnd_validate decides afresh
        output.tcp_write_xmit(peer.tcp, tp)
        assert tp.cwnd_limited is limited and peer.sent() == []


# -- when it sends ---------------------------------------------------------------------------
def test_with_divisor_100_the_same_ack_sends_at_once():
    peer, tp = open_conn(0.00005, tcp_tso_win_divisor=100)
    burst(peer, tp)
    assert ack(peer, 1000, after=0.00005) == [(10000, 2000)]


def test_more_than_1ms_after_the_last_transmission_it_never_waits():
    """tso-defer-not-after-1ms-idle.pkt: Linux 6.12's burst rule (tcp_wstamp_ns + 1 ms)."""
    peer, tp = open_conn(0.00005)
    burst(peer, tp)
    assert ack(peer, 1000, after=0.002) == [(10000, 2000)]
    peer, tp = open_conn(0.00005)
    burst(peer, tp)
    assert ack(peer, 1000, after=0.001) == []  # exactly 1 ms: still a burst


@pytest.mark.parametrize("divisor, sent", [(0, []), (3, [(10000, 3000)])])
def test_divisor_0_waits_while_no_more_than_3_mss_can_go(divisor, sent):
    """tso-defer-divisor-0-waits-up-to-3-mss.pkt and tso-defer-a-third-of-the-window-goes.pkt:
    a 9000-byte window leaves 3000 bytes, a third of it (divisor 3 sends them) but no more
    than 3 MSS (tcp_max_tso_deferred_mss: divisor 0 waits); 4000 go under either."""
    peer, tp = open_conn(0.00005, wscale=0, tcp_tso_win_divisor=divisor)
    burst(peer, tp)
    assert ack(peer, 4000, after=0.00005, win=9000) == sent
    if not sent:
        assert ack(peer, 5000, win=9000) == [(10000, 4000)]


def test_a_full_tso_packet_a_mid_queue_skb_that_fits_and_recovery_never_wait():
    """As after an ACK of 1000 bytes 50 us into the burst: 2 MSS of room would wait."""
    peer, tp = open_conn(0.00005)
    burst(peer, tp)
    peer.clock.t += 0.00005
    tp.snd_una = 1001 + 1000
    tp.packets_out = 9
    tp.cwnd = 11
    seg = tp.write_queue[0]
    assert output.tcp_tso_should_defer(peer.tcp, tp, seg, 45) == (True, True)
    assert output.tcp_tso_should_defer(peer.tcp, tp, seg, 2) == (False, False)  # 2 MSS is a full packet
    tp.in_recovery = True  # icsk_ca_state >= TCP_CA_Recovery
    assert output.tcp_tso_should_defer(peer.tcp, tp, seg, 45) == (False, False)
    tp.in_recovery = False
    tp.retransmits = 1  # TCP_CA_Loss
    assert output.tcp_tso_should_defer(peer.tcp, tp, seg, 45) == (False, False)
    tp.retransmits = 0
    output.tcp_fragment(peer.tcp, tp, tp.write_queue, 0, 2000)  # the head now ends mid-queue, and all of it fits
    assert output.tcp_tso_should_defer(peer.tcp, tp, tp.write_queue[0], 45) == (False, False)


def test_an_ack_not_due_within_half_an_srtt_or_1ms_is_not_waited_for():
    """The oldest segment went out just now and the RTT is 50 ms: its ACK is 50 ms away."""
    peer, tp = open_conn(0.05)
    burst(peer, tp)
    tp.snd_una, tp.packets_out, tp.cwnd = 1001 + 1000, 9, 11
    assert output.tcp_tso_should_defer(peer.tcp, tp, tp.write_queue[0], 45) == (False, False)
    tp.rtx_queue[0].sent_at = peer.clock.t - tp.srtt + 0.0011  # due in 1.1 ms: more than min(srtt / 2, 1 ms)
    assert output.tcp_tso_should_defer(peer.tcp, tp, tp.write_queue[0], 45) == (False, False)
    tp.rtx_queue[0].sent_at = peer.clock.t - tp.srtt + 0.0009
    assert output.tcp_tso_should_defer(peer.tcp, tp, tp.write_queue[0], 45) == (True, True)


# -- TSO autosizing --------------------------------------------------------------------------
@pytest.mark.parametrize("rtt, segs", [
    (0.1, 2),       # 100 ms, cwnd 10: 200 kB/s is 195 bytes a ms: tcp_min_tso_segs
    (0.001, 52),    # 1 ms: 19.5 kB a ms, plus 65 kB >> 1 for min_rtt (999 us) >> 9
    (0.00005, output.SK_GSO_MAX_SIZE // MSS),  # a near peer: a GSO packet
])
def test_tso_packets_are_about_1ms_of_the_pacing_rate_and_bigger_for_near_peers(rtt, segs):
    peer, tp = open_conn(rtt)
    assert output.tcp_tso_segs(peer.tcp, tp, MSS) == segs


def test_without_an_rtt_sample_a_tso_packet_is_a_gso_packets_worth():
    peer, tp = open_conn(0.0)
    assert tp.srtt == 0 and output.tcp_tso_segs(peer.tcp, tp, MSS) == output.SK_GSO_MAX_SIZE // MSS


def test_the_pacing_rate_is_200_percent_in_slow_start_and_120_after():
    peer, tp = open_conn(0.01)
    assert output.tcp_pacing_rate(peer.tcp, tp) == pytest.approx(2.0 * 10 * MSS / 0.01)
    tp.ssthresh = 10
    assert output.tcp_pacing_rate(peer.tcp, tp) == pytest.approx(1.2 * 10 * MSS / 0.01)


def test_whole_tso_packets_go_together_and_the_short_rest_is_checked_on_its_own():
    """10 ms RTT, cwnd 10 in congestion avoidance: TSO packets of 2 MSS. An ACK of 3 MSS in
    a burst sends one packet's worth (Linux: 2 MSS; pktpath: the same as one GSO skb) and
    the third MSS, less than a full packet with its ACK due, waits, cwnd-limited."""
    peer, tp = open_conn(0.01)
    tp.ssthresh = 10
    burst(peer, tp)
    assert output.tcp_tso_segs(peer.tcp, tp, MSS) == 2
    assert ack(peer, 1000, after=0.01) == [(10000, 1000)]
    assert ack(peer, 4000) == [(11000, 2000)]
    assert tp.packets_out == 9 and tp.cwnd == 10 and tp.cwnd_limited


# -- the knob ---------------------------------------------------------------------------------
def test_tcp_tso_win_divisor_is_linuxs_u8_default_3():
    sysctls = Sysctls("l4")
    assert KNOBS["net.ipv4.tcp_tso_win_divisor"].linux == 3 and sysctls.tcp_tso_win_divisor == 3
    assert sysctls.set("net.ipv4.tcp_tso_win_divisor", "0") == "0"
    assert sysctls.set("net.ipv4.tcp_tso_win_divisor", "255") == "255"
    for bad in ("256", "-1", "abc"):
        with pytest.raises(SysctlError) as err:
            sysctls.set("net.ipv4.tcp_tso_win_divisor", bad)
        assert err.value.errno_name == "EINVAL"


# -- the drill scripts -------------------------------------------------------------------------
@pytest.mark.parametrize("script", SUB_MS_SCRIPTS, ids=lambda p: p.stem)
def test_each_sub_ms_drill_script_passes_on_the_virtual_clock_as_against_the_kernel(script):
    outcome = Runner(parse_file(str(script)), LocalHost()).run()
    assert (outcome.status, outcome.message) == ("pass", "")
