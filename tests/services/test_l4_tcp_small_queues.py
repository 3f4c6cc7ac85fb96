"""TCP Small Queues (tcp_small_queue_check, tcp_wfree) and fq's pacing (the Earliest
Departure Time TCP stamps on each skb) in pktpath's TCP: a socket keeps no more than
about two skbs, or 1 ms at its pacing rate, below TCP; each freed skb gives its
truesize back and sends the next. One engine (B) driven by a hand-made peer, MSS 1000,
the handshake's RTT 100 ms (a pacing rate of 2 x 10 MSS per 100 ms: TSO packets of 2 MSS)."""

from pktpath import skbuff as s

from tcpframes import user_skb
from test_l4_tcp_tso_defer import ack, open_conn

TS = s.skb_truesize(2000)  # what a 2-MSS skb is charged


def opened(**sysctls):
    peer, tp = open_conn(0.1, **sysctls)
    peer.tcp.tsq = True  # the layers below report each freed skb (the L4 service's engine has it on)
    return peer, tp


def write(peer, tp, n: int) -> list[int]:
    return [length for _, length, _ in peer.write(tp, n)]


def test_the_next_skb_waits_while_more_than_two_of_its_size_are_below_tcp_and_a_free_sends_it():
    peer, tp = opened()
    # the first two always go (rtx queue empty or single); a third while two are below: not more than 2 x TS
    assert write(peer, tp, 10000) == [2000, 2000, 2000]
    assert tp.wmem_alloc == 3 * TS and tp.tsq_throttled  # more than 2 x TS: the rest waits
    peer.tcp.tcp_wfree([(tp.sk, TS, False)])  # the device sent one: tcp_wfree → tcp_tsq_handler
    assert [length for _, length, _ in peer.sent()] == [2000] and tp.wmem_alloc == 3 * TS and tp.tsq_throttled
    peer.tcp.tcp_wfree([(tp.sk, 2 * TS, False)])
    assert [length for _, length, _ in peer.sent()] == [2000] and not tp.tsq_throttled
    assert tp.packets_out == 10  # cwnd's worth out (without TSQ, all at once)


def test_a_socket_may_keep_no_more_than_tcp_limit_output_bytes_below_it_unless_fq_paces_it():
    peer, tp = opened(tcp_limit_output_bytes=1000)
    assert write(peer, tp, 10000) == [2000, 2000]  # the two that always go; then 2 x TS is more than 1000
    peer.tcp.tcp_wfree([(tp.sk, TS, False)])
    assert peer.sent() == [] and tp.tsq_throttled  # TS left is still more than 1000
    peer.tcp.tcp_wfree([(tp.sk, 0, True)])  # fq paces it: no cap, 2 x TS is the limit
    assert [length for _, length, _ in peer.sent()] == [2000, 2000] and tp.wmem_alloc == 3 * TS


def test_without_a_throttle_a_free_only_gives_the_bytes_back():
    peer, tp = opened()
    write(peer, tp, 4000)
    assert not tp.tsq_throttled
    peer.tcp.tcp_wfree([(tp.sk, 2 * TS, False)])
    assert peer.sent() == [] and tp.wmem_alloc == 0


def sent_skbs(peer, tp, n: int) -> list:
    """A write of n bytes: the skbs it sent, as IPv4 took them."""
    peer.out.clear()
    peer.tcp.sendmsg(tp.sk, [user_skb(tp.sk, n)])
    skbs = list(peer.out)
    peer.out.clear()
    return skbs


def test_every_skb_sent_is_charged_its_truesize_and_an_ack_frees_none_of_it():
    peer, tp = opened()
    skbs = sent_skbs(peer, tp, 4000)
    assert [skb.truesize for skb in skbs] == [TS, TS] and tp.wmem_alloc == 2 * TS
    ack(peer, 4000, after=0.1)
    assert tp.wmem_alloc == 2 * TS  # acknowledged, but for all TCP knows still below it: only a free counts


def test_an_engine_without_the_free_seam_does_not_throttle():
    peer, tp = open_conn(0.1)  # a unit test's engine: tsq off
    assert sum(write(peer, tp, 10000)) == 10000 and tp.wmem_alloc == 0


def test_once_fq_paces_the_socket_each_skb_leaves_its_length_at_the_pacing_rate_after_the_last():
    peer, tp = open_conn(0.1)
    peer.tcp.tcp_wfree([(tp.sk, 0, True)])  # an fq qdisc saw its skbs: sk_pacing_status SK_PACING_FQ
    first = sent_skbs(peer, tp, 10000)
    assert len({skb.tstamp for skb in first}) == 1  # fq does not pace the first ten segments
    ack(peer, 4000, after=0.1)  # cwnd 14, srtt about 100 ms
    rate = 2 * tp.cwnd * 1000 / tp.srtt  # tcp_pacing_ss_ratio 200 %: twice cwnd x MSS per srtt
    skbs = [*sent_skbs(peer, tp, 2000), *sent_skbs(peer, tp, 2000), *sent_skbs(peer, tp, 2000)]
    gaps = [(b.tstamp - a.tstamp) / 1e9 for a, b in zip(skbs, skbs[1:])]
    # the first left late (its time was long past): half its length is forgiven; the next one, none
    assert [round(gap, 6) for gap in gaps] == [round(1000 / rate, 6), round(2000 / rate, 6)]
