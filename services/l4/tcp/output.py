"""Sending segments: net/ipv4/tcp_output.c (and tcp_v4_send_reset from tcp_ipv4.c).

Every function takes the engine (`tcp`, for the host, the clock, the counters
and the outgoing list) and the socket it acts for, as the kernel's take `sk`.
Data and SYN/FIN segments stay on the retransmit queue as the original skb and
go out as a CLONE with the header pushed into its headroom (__tcp_transmit_skb);
pure ACKs and resets are new skbs of their own. An skb of more than one MSS goes
out as one GSO packet (gso_size the MSS): the layers below handle it once, and
the softirq's qdisc cuts it into segments (GSO) just before the device. Counts
of segments (cwnd, packets_out, lost_out, sacked_out) count a GSO skb as the
segments it makes (tcp_skb_pcount).
"""

import dataclasses
import math
from collections import deque

from pktpath import skbuff as s
from pktpath.flow import Flowi4, Flowi6
from pktpath.offload import CHECKSUM_PARTIAL, GSO_LEGACY_MAX_SIZE
from pktpath.pb import skbuff_pb2
from pktpath.services.l4.tcp import ecn
from pktpath.services.l4.tcp.cong import CA_EVENT_CWND_RESTART, CA_EVENT_TX_START
from pktpath.services.l4.tcp.sock import (
    TCP_DELACK_MAX, TCP_INIT_CWND, TCP_INVALID_RATELIMIT, TCP_TIMEOUT_MIN, Seg, TcpSock, TcpState, after, before,
    seq_add, seq_diff,
)
from pktpath.wire.ipv4 import IPPROTO_TCP
from pktpath.wire.tcp import (
    TCPHDR_ACK, TCPHDR_ECE, TCPHDR_FIN, TCPHDR_PSH, TCPHDR_RST, TCPHDR_SYN, TcpHdr, TcpOptMss, TcpOptNop, TcpOptSack,
    TcpOptSackPerm, TcpOptTimestamp, TcpOptWindow, encode_options,
)

L4 = skbuff_pb2.LAYER_L4
TCP, TCPEXT = "Tcp", "TcpExt"
MAX_WINDOW = 0xFFFF
TCP_TS_ALIGNED = 12  # TCPOLEN_TSTAMP_ALIGNED: NOP, NOP, timestamps
MAX_TCP_HEADER = s.MAX_HEADER  # headroom for TCP, IP and Ethernet headers
SKB_TRUESIZE_OVERHEAD = 576    # sizeof(struct sk_buff) + sizeof(struct skb_shared_info), aligned
# TSO autosizing and deferral (tcp_tso_autosize, tcp_tso_should_defer), as Linux's defaults
SK_GSO_MAX_SIZE = GSO_LEGACY_MAX_SIZE - 1 - MAX_TCP_HEADER  # sk_setup_caps: one GSO packet's TCP data at most
SK_PACING_SHIFT = 10           # sk_pacing_shift: a TSO packet of about 1 ms at the pacing rate
TCP_TSO_RTT_LOG = 9            # tcp_tso_rtt_log: the min_rtt bonus halves every 512 us
TCP_MAX_TSO_DEFERRED_MSS = 3   # tcp_max_tso_deferred_mss(): what tcp_tso_win_divisor 0 defers below
NSEC_PER_MSEC = 1_000_000
TCP_NAGLE_OFF, TCP_NAGLE_CORK, TCP_NAGLE_PUSH = 1, 2, 4  # tp->nonagle's bits (include/net/tcp.h)


def tcp_time_stamp(tcp, tp: TcpSock) -> int:
    """A connection's TSval: the milliseconds clock (tcp_time_stamp_ms) plus its offset."""
    return (int(tcp.clock() * 1000) + tp.ts_off) & 0xFFFFFFFF


def syn_options(tcp, tp: TcpSock, *, synack: bool) -> bytes:
    """tcp_syn_options()/tcp_synack_options(), laid out as tcp_options_write() does: MSS;
    timestamps, after SACK-permitted if both (else after NOP, NOP); SACK-permitted alone
    after NOP, NOP; window scale after a NOP. A SYN offers what the sysctls let it
    (tcp_sack, tcp_timestamps, tcp_window_scaling), a SYN-ACK what the SYN did too."""
    sysctls = tcp.sysctls
    sack = tp.sack_ok if synack else bool(sysctls.tcp_sack)
    opts = [TcpOptMss(tp.advmss)]
    if tp.tstamp_ok if synack else sysctls.tcp_timestamps:
        opts += [TcpOptSackPerm()] if sack else [TcpOptNop(), TcpOptNop()]
        opts.append(TcpOptTimestamp(tcp_time_stamp(tcp, tp), tp.ts_recent if synack else 0))
    elif sack:
        opts += [TcpOptNop(), TcpOptNop(), TcpOptSackPerm()]
    if tp.wscale_ok:
        opts += [TcpOptNop(), TcpOptWindow(tp.rcv_wscale)]
    return encode_options(*opts)


def established_options(tcp, tp: TcpSock) -> bytes:
    """tcp_established_options(): NOP, NOP, timestamps when both sides agreed to them, and
    while data is out of order, SACK blocks for it (RFC 2018: the newest first; three fit
    beside the timestamps)."""
    opts = []
    if tp.tstamp_ok:
        opts += [TcpOptNop(), TcpOptNop(), TcpOptTimestamp(tcp_time_stamp(tcp, tp), tp.ts_recent)]
    if tp.sack_ok and (tp.ofo_queue or tp.dsack):
        # a pending D-SACK first (RFC 2883 4), then the out-of-order data; it is reported once
        blocks = ([tp.dsack] if tp.dsack else []) + (sack_blocks(tp) if tp.ofo_queue else [])
        tp.dsack = None
        opts += [TcpOptNop(), TcpOptNop(), TcpOptSack(tuple(blocks[:3 if tp.tstamp_ok else 4]))]
    return encode_options(*opts) if opts else b""


def sack_blocks(tp: TcpSock) -> list[tuple[int, int]]:
    """tcp_sack_new_ofo_skb(): the out-of-order queue as contiguous ranges, the one holding
    the segment that came last first."""
    ranges: list[list[int]] = []
    for start in sorted(tp.ofo_queue, key=lambda q: seq_diff(q, tp.rcv_nxt)):
        end = tp.ofo_queue[start][0]
        if ranges and not after(start, ranges[-1][1]):
            if after(end, ranges[-1][1]):
                ranges[-1][1] = end
        else:
            ranges.append([start, end])
    last = tp.ofo_last
    ranges.sort(key=lambda r: not (not before(last, r[0]) and before(last, r[1])))
    return [(s_, e) for s_, e in ranges]


def free_window(tp: TcpSock) -> int:
    """__tcp_select_window(): the space left in the receive buffer for data (half of
    SO_RCVBUF, tcp_adv_win_scale 1), nothing when less than a segment (receiver-side
    silly window avoidance), in whole units of the window scale."""
    space = tp.rcvbuf // 2 - tp.unread
    if space < tp.advmss:
        return 0
    granularity = 1 << tp.rcv_wscale if tp.wscale_ok else tp.advmss
    return min(space - space % granularity, MAX_WINDOW << tp.rcv_wscale)


def initial_window(rcvbuf: int, mss: int) -> int:
    """tcp_select_initial_window()'s rcv_wnd: the full space (tcp_full_space: half the
    receive buffer at the default scaling ratio) in whole segments of mss; a SYN carries it
    unscaled, at most 65535 (64240 for 131072 bytes and MSS 1460, 65160 with timestamps)."""
    space = rcvbuf // 2
    return space - space % mss if space > mss else space


def receive_window(tp: TcpSock) -> int:
    """tcp_receive_window(): what is left of the window last advertised."""
    return max(0, seq_diff(seq_add(tp.rcv_wup, tp.rcv_wnd), tp.rcv_nxt))


def tcp_select_window(tp: TcpSock) -> int:
    """tcp_select_window(): the window to advertise now, never moving its right edge
    back (RFC 9293 3.8.6.2.2), scaled for the header."""
    window = max(free_window(tp), receive_window(tp))
    if tp.wscale_ok:
        window = (window + (1 << tp.rcv_wscale) - 1) >> tp.rcv_wscale << tp.rcv_wscale
    tp.rcv_wnd = window
    tp.rcv_wup = tp.rcv_nxt
    return min(window >> tp.rcv_wscale if tp.wscale_ok else window, MAX_WINDOW)


def _flow(tcp, tp: TcpSock, tos: int = 0) -> bytes:
    """The flowi4 IPv4 builds the header from; tos carries the ECN field (inet->tos). Over
    IPv6 the flowi6 inet6_csk_xmit fills: the connection's addresses, the traffic class
    (np->tclass: IPV6_TCLASS's DSCP with tos's ECN field), the hop limit (np->hop_limit, -1
    the route's: ip6_xmit), the device a link-local peer is on. A timewait sock's ACKs are the
    host's (tcp_v6_timewait_ack → tcp_v6_send_response from the control socket): the route's
    hop limit, tw_tclass without the ECN field; Linux makes an orphan's FIN_WAIT2 one too
    (tcp_time_wait(sk, TCP_FIN_WAIT2, tmo) when tcp_fin_timeout <= TCP_TIMEWAIT_LEN)."""
    if tp.v6:
        if tp.state == TcpState.TIME_WAIT or (tp.orphan and tp.state == TcpState.FIN_WAIT2):
            return Flowi6(tp.daddr, tp.dport, tclass=tp.tclass, scope_id=tcp.scope_id(tp.dev), saddr=tp.saddr).pack()
        return Flowi6(tp.daddr, tp.dport, hop_limit=tp.hop_limit, tclass=tp.tclass | tos,
                      scope_id=tcp.scope_id(tp.dev), saddr=tp.saddr).pack()
    return Flowi4(tp.daddr, tp.saddr, tp.dport, tp.sport, IPPROTO_TCP, tos=tos).pack()


def _push_header(tcp, tp: TcpSock, skb, seq: int, flags: int, options: bytes, window: int, func: str,
                 segs: int = 1, new_data: bool = False) -> None:
    """Push the TCP header onto skb and hand it to IPv4 (the engine flushes the list);
    a GSO skb's checksum is left partial (CHECKSUM_PARTIAL) for GSO to finish per segment.
    Every segment but a SYN gets its ECN bits here (tcp_ecn_send): new_data, never sent
    before, may go ECT."""
    tos = 0
    if not flags & TCPHDR_SYN:
        ecn_flags, tos = ecn.tcp_ecn_send(tp, skb.len, new_data)
        flags |= ecn_flags
        tp.tclass_ecn = tos  # INET_ECN_xmit / INET_ECN_dontxmit: what getsockopt(IPV6_TCLASS) shows
    ack_seq = tp.rcv_nxt if flags & TCPHDR_ACK else 0
    header = TcpHdr(tp.sport, tp.dport, seq, ack_seq, 0, flags, window, 0, 0, options).to_bytes(
        skb.payload(), tp.saddr, tp.daddr, partial=skb.ip_summed == CHECKSUM_PARTIAL)
    s.skb_push_data(skb, header)
    s.skb_reset_transport_header(skb)
    skb.cb = _flow(tcp, tp, tos)
    skb.sk = tp.sk
    skb.record(s.EXIT, L4, tcp.host, func)
    tcp.mib.inc(TCP, "OutSegs", segs)
    tp.wstamp = max(tp.wstamp, tcp.clock())  # tcp_wstamp_ns: not before the pacing allows
    if tp.pacing_fq:  # skb_set_delivery_time(): fq sends it at this time (Earliest Departure Time)
        skb.tstamp = _ns(tp.wstamp)
    if flags & TCPHDR_ACK:  # this ACK is the one a delayed ACK was waiting for
        tp.ack_pending = tp.ack_now = False
        tp.ack_pushed = 0
        tp.delack_at = 0.0
        if tp.quickack:
            tp.quickack -= 1
    (tcp.out_segs6 if tp.v6 else tcp.out_segs).append(skb)


def tcp_transmit_skb(tcp, tp: TcpSock, seg: Seg) -> None:
    """__tcp_transmit_skb(): a clone of the queued original goes out with the header; one
    of several segments as a GSO skb (gso_size the MSS, gso_segs its pcount)."""
    flags = seg.flags | TCPHDR_ACK if tp.state != TcpState.SYN_SENT else seg.flags
    if seg.flags & TCPHDR_SYN:
        if tp.state == TcpState.SYN_RECV:  # a simultaneous open's SYN-ACK
            flags = ecn.tcp_ecn_send_synack(tp, flags)
        options = syn_options(tcp, tp, synack=tp.state == TcpState.SYN_RECV)
        window = min(initial_window(tp.rcvbuf, tp.advmss), MAX_WINDOW)  # a SYN's window is never scaled
        tp.rcv_wnd, tp.rcv_wup = window, tp.rcv_nxt
    else:
        options = established_options(tcp, tp)
        window = tcp_select_window(tp)
        if seg.pcount > 1:  # PSH on every GSO packet (the clone's), so that GRO at the receiver flushes it
            flags |= TCPHDR_PSH
    clone = s.skb_clone_for_xmit(seg.skb, L4, tcp.host, "__tcp_transmit_skb")
    if seg.pcount > 1:
        clone.gso_size, clone.gso_segs, clone.ip_summed = tp.mss_cache, seg.pcount, CHECKSUM_PARTIAL
    seg.sent_at = tcp.clock()
    if seg.len:  # a new segment joined packets_out before it went: what was in flight is without it
        tcp_event_data_sent(tcp, tp, in_flight(tp) - (0 if seg.retrans else seg.pcount))
    if tcp.tsq:  # skb_set_owner_w() with tcp_wfree: the skb holds its truesize against the socket till freed
        clone.truesize = s.skb_truesize(clone.len)
        tp.wmem_alloc += clone.truesize
    prior_wstamp = tp.wstamp
    _push_header(tcp, tp, clone, seg.seq, flags, options, window, "__tcp_transmit_skb", seg.pcount,
                 new_data=not seg.retrans)
    if seg.len:
        tp.data_segs_out += seg.pcount
    tcp_update_skb_after_send(tcp, tp, seg.len, prior_wstamp)


def tcp_update_skb_after_send(tcp, tp: TcpSock, nbytes: int, prior_wstamp: float) -> None:
    """tcp_update_skb_after_send(): when an fq qdisc paces the socket, the next skb may leave
    this one's length at the pacing rate later (tcp_wstamp_ns, the Earliest Departure Time),
    less up to half of that for the time this one left late; the first 10 segments are not
    paced (as sch_fq did not pace them)."""
    if not tp.pacing_fq or tp.data_segs_out < 10:  # most sends: no pacing rate to work out
        return
    rate = tcp_pacing_rate(tcp, tp)
    if rate == math.inf or not rate:
        return
    length = nbytes / rate
    tp.wstamp += length - min(length / 2, tp.wstamp - prior_wstamp)


def tcp_small_queue_check(tcp, tp: TcpSock, nbytes: int, factor: int = 0) -> bool:
    """tcp_small_queue_check() (TCP Small Queues): hold the socket's next skb of nbytes back
    while its skbs below TCP (sk_wmem_alloc: in IPv4, L2, the qdisc, the device's ring) hold
    more than two of it, or more than about 1 ms at the pacing rate (sk_pacing_shift 10),
    capped at tcp_limit_output_bytes unless fq paces it; twice that for a retransmission
    (factor 1). With at most one skb unacknowledged it always goes. The free of one
    (tcp_wfree → tcp_tsq_handler) sends again."""
    if not tcp.tsq:
        return False
    rate = tcp_pacing_rate(tcp, tp)
    limit = max(2 * s.skb_truesize(nbytes), int(rate) >> SK_PACING_SHIFT if rate != math.inf else 1 << 64)
    if not tp.pacing_fq:  # sk_pacing_status SK_PACING_NONE
        limit = min(limit, tcp.sysctls.tcp_limit_output_bytes)
    if tp.wmem_alloc <= limit << factor or len(tp.rtx_queue) <= 1:
        return False
    tp.tsq_throttled = True
    return True


def tcp_event_data_sent(tcp, tp: TcpSock, prior_in_flight: int) -> None:
    """tcp_event_data_sent(), for a segment with data (new or resent): the first after nothing
    was in flight tells the congestion control (CA_EVENT_TX_START: CUBIC's epoch moves on by the
    idle time), and lsndtime marks it, from which tcp_slow_start_after_idle_check counts the idle
    time. (Its pingpong count, for delayed ACKs, is not modelled here.)"""
    now = tcp.clock()
    if prior_in_flight == 0:
        tp.ca.cwnd_event(tp, CA_EVENT_TX_START, now)
    tp.lsndtime = now


def tcp_current_ssthresh(tp: TcpSock) -> int:
    """tcp_current_ssthresh(): during a reduction (CWR, Recovery) ssthresh as it is, else at
    least 3/4 of cwnd: where slow start takes a cut cwnd back to."""
    if tp.in_cwr or tp.in_recovery:
        return tp.ssthresh
    return max(tp.ssthresh, (tp.cwnd >> 1) + (tp.cwnd >> 2))


def tcp_slow_start_after_idle_check(tcp, tp: TcpSock) -> None:
    """tcp_slow_start_after_idle_check() (include/net/tcp.h), where an skb joins the write queue
    (tcp_skb_entail) and where an ACK changes the peer's window with data waiting
    (tcp_ack_update_window): with tcp_slow_start_after_idle on and nothing out, an idle time
    since the last data went out longer than the RTO restarts cwnd."""
    if not tcp.sysctls.tcp_slow_start_after_idle or tp.packets_out:
        return
    delta = tcp.clock() - tp.lsndtime
    if delta > tp.rto:
        tcp_cwnd_restart(tcp, tp, delta)


def tcp_cwnd_restart(tcp, tp: TcpSock, delta: float) -> None:
    """tcp_cwnd_restart() (RFC 2861, RFC 5681 4.1): a cwnd idle for delta no longer measures the
    path; it is halved for each RTO of delta past the first, down to the restart window
    (tcp_init_cwnd: the initial window, pktpath's routes set no initcwnd; never above cwnd).
    ssthresh keeps 3/4 of the old cwnd (tcp_current_ssthresh), for slow start to climb back to."""
    now = tcp.clock()
    tp.ca.cwnd_event(tp, CA_EVENT_CWND_RESTART, now)
    tp.ssthresh = tcp_current_ssthresh(tp)
    restart_cwnd = min(TCP_INIT_CWND, tp.cwnd)
    cwnd = tp.cwnd
    delta -= tp.rto
    while delta > 0 and cwnd > restart_cwnd:
        cwnd >>= 1
        delta -= tp.rto
    tp.cwnd = max(cwnd, restart_cwnd)
    tp.snd_cwnd_stamp = now
    tp.snd_cwnd_used = 0


def tcp_send_ack(tcp, tp: TcpSock) -> None:
    """tcp_send_ack(): a new skb carrying nothing but the ACK and the window."""
    if tp.state in (TcpState.CLOSE, TcpState.LISTEN, TcpState.SYN_SENT):
        return
    skb = s.alloc_skb(MAX_TCP_HEADER, origin_host=tcp.host, sampled=False)
    s.skb_reserve(skb, MAX_TCP_HEADER)
    _push_header(tcp, tp, skb, tp.snd_nxt, TCPHDR_ACK, established_options(tcp, tp), tcp_select_window(tp),
                 "tcp_send_ack")


def tcp_oow_rate_limited(tcp, tp: TcpSock, mib: str) -> bool:
    """__tcp_oow_rate_limited(): one challenge or out-of-window ACK per socket within
    tcp_invalid_ratelimit (RFC 5961 7), so that forged or looping segments cannot make it
    send ACKs at their rate; a skipped one counts `mib`."""
    now = tcp.clock()
    if tp.last_oow_ack_time and 0 <= now - tp.last_oow_ack_time < TCP_INVALID_RATELIMIT:
        tcp.mib.inc(TCPEXT, mib)
        return True
    tp.last_oow_ack_time = now
    return False


def tcp_send_challenge_ack(tcp, tp: TcpSock) -> None:
    """tcp_send_challenge_ack() (RFC 5961): an ACK telling the sender where we are, unless
    one went within tcp_invalid_ratelimit (the per-netns tcp_challenge_ack_limit is
    unlimited by default)."""
    if tcp_oow_rate_limited(tcp, tp, "TCPACKSkippedChallenge"):
        return
    tcp.mib.inc(TCPEXT, "TCPChallengeACK")
    tcp_send_ack(tcp, tp)


def tcp_xmit_probe_skb(tcp, tp: TcpSock, mib: str = "TCPWinProbe") -> None:
    """tcp_xmit_probe_skb(): a zero-window or keepalive probe (counted as `mib`), an ACK whose
    seq is one before snd_una, so the peer, seeing an old segment, answers with its current window."""
    skb = s.alloc_skb(MAX_TCP_HEADER, origin_host=tcp.host, sampled=False)
    s.skb_reserve(skb, MAX_TCP_HEADER)
    tcp.mib.inc(TCPEXT, mib)
    _push_header(tcp, tp, skb, seq_add(tp.snd_una, -1), TCPHDR_ACK, established_options(tcp, tp),
                 tcp_select_window(tp), "tcp_xmit_probe_skb")


def tcp_send_active_reset(tcp, tp: TcpSock) -> None:
    """tcp_send_active_reset(): abort the connection with an RST at snd_nxt."""
    skb = s.alloc_skb(MAX_TCP_HEADER, origin_host=tcp.host, sampled=False)
    s.skb_reserve(skb, MAX_TCP_HEADER)
    tcp.mib.inc(TCP, "OutRsts")
    _push_header(tcp, tp, skb, tp.snd_nxt, TCPHDR_ACK | TCPHDR_RST, b"", 0, "tcp_send_active_reset")


def tcp_v4_send_reset(tcp, saddr: int, daddr: int, th: TcpHdr, seg_len: int) -> None:
    """tcp_v4_send_reset(): the RST answering a segment no socket wants (RFC 9293 3.5.2):
    with the segment's ACK as our seq, or else seq 0 and an ACK of what it occupied.
    saddr/daddr are the segment's; never in answer to an RST."""
    if th.flags & TCPHDR_RST:
        return
    if th.flags & TCPHDR_ACK:
        seq, ack_seq, flags = th.ack_seq, 0, TCPHDR_RST
    else:
        occupied = seg_len + (1 if th.flags & TCPHDR_SYN else 0) + (1 if th.flags & TCPHDR_FIN else 0)
        seq, ack_seq, flags = 0, seq_add(th.seq, occupied), TCPHDR_RST | TCPHDR_ACK
    skb = s.alloc_skb(MAX_TCP_HEADER, origin_host=tcp.host, sampled=False)
    s.skb_reserve(skb, MAX_TCP_HEADER)
    header = TcpHdr(th.dest, th.source, seq, ack_seq, 0, flags, 0).to_bytes(b"", daddr, saddr)
    s.skb_push_data(skb, header)
    s.skb_reset_transport_header(skb)
    skb.cb = Flowi4(saddr, daddr, th.source, th.dest, IPPROTO_TCP).pack()
    skb.record(s.EXIT, L4, tcp.host, "tcp_v4_send_reset")
    tcp.mib.inc(TCP, "OutSegs")
    tcp.mib.inc(TCP, "OutRsts")
    tcp.out_segs.append(skb)


def tcp_send_synack(tcp, listener: TcpSock, req) -> None:
    """tcp_v4_send_synack() (tcp_v6_send_synack for a SYN that came over IPv6): a listener's
    answer to a SYN, from the request sock."""
    tp = TcpSock(0, TcpState.SYN_RECV, req.saddr, req.sport, req.daddr, req.dport, rcvbuf=listener.rcvbuf,
                 advmss=req.advmss,  # tcp_make_synack, tcp_openreq_init_rwin
                 rcv_wscale=listener.rcv_wscale, wscale_ok=req.snd_wscale >= 0,
                 sack_ok=req.sack_ok, tstamp_ok=req.ts_recent >= 0, ts_recent=max(req.ts_recent, 0), ts_off=req.ts_off,
                 rcv_nxt=seq_add(req.irs, 1), v6=req.v6, dev=req.dev,
                 hop_limit=listener.hop_limit, tclass=listener.tclass)  # ip6_xmit(sk: the listener, np->tclass)
    skb = s.alloc_skb(MAX_TCP_HEADER, origin_host=tcp.host, sampled=False)
    s.skb_reserve(skb, MAX_TCP_HEADER)
    flags = TCPHDR_SYN | TCPHDR_ACK | (TCPHDR_ECE if req.ecn_ok else 0)  # tcp_ecn_make_synack
    _push_header(tcp, tp, skb, req.iss, flags, syn_options(tcp, tp, synack=True),
                 min(synack_window(listener.rcvbuf, tp.advmss, tp.tstamp_ok), MAX_WINDOW),
                 "tcp_v6_send_synack" if req.v6 else "tcp_v4_send_synack")


def tcp_mss_clamp(tp: TcpSock, mss: int) -> int:
    """tcp_mss_clamp(): TCP_MAXSEG (rx_opt.user_mss) caps the MSS a SYN or SYN-ACK announces,
    and with it the peer's segments and (the smaller of the two MSS) ours."""
    return min(tp.user_mss, mss) if tp.user_mss else mss


def synack_window(rcvbuf: int, advmss: int, tstamp_ok: bool) -> int:
    """tcp_openreq_init_rwin(): the initial window for segments that carry timestamps."""
    return initial_window(rcvbuf, advmss - (TCP_TS_ALIGNED if tstamp_ok else 0))


def _new_seg(tcp, tp: TcpSock, flags: int) -> Seg:
    """A zero-length original for a SYN or a FIN, which occupy one sequence number."""
    skb = s.alloc_skb(MAX_TCP_HEADER, origin_host=tcp.host, sampled=False)
    s.skb_reserve(skb, MAX_TCP_HEADER)
    skb.sk = tp.sk
    seq = tp.write_seq
    tp.write_seq = seq_add(seq, 1)
    return Seg(skb, seq, tp.write_seq, flags)


def tcp_connect(tcp, tp: TcpSock) -> None:
    """tcp_connect(): queue the SYN and send it."""
    seg = _new_seg(tcp, tp, TCPHDR_SYN | ecn.tcp_ecn_send_syn(tcp, tp))
    tp.snd_una = tp.snd_nxt = tp.snd_sml = seg.seq
    tp.write_queue.append(seg)
    tcp_write_xmit(tcp, tp, force=True)


def tcp_send_fin(tcp, tp: TcpSock) -> None:
    """tcp_send_fin(): the FIN rides on the last skb not sent yet, if there is one (it takes
    one more sequence number), else it is an skb of its own; then what is queued goes with
    Nagle off (__tcp_push_pending_frames with TCP_NAGLE_OFF), past a cork too."""
    tp.fin_queued = True
    tail = tp.write_queue[-1] if tp.write_queue else None
    if tail is not None and not tail.flags & (TCPHDR_SYN | TCPHDR_FIN):
        tail.flags |= TCPHDR_FIN
        tail.end_seq = seq_add(tail.end_seq, 1)
        tp.write_seq = seq_add(tp.write_seq, 1)
    else:
        tp.write_queue.append(_new_seg(tcp, tp, TCPHDR_FIN))
    tcp_write_xmit(tcp, tp, nonagle=TCP_NAGLE_OFF)


def tcp_nonagle(tp: TcpSock) -> int:
    """tp->nonagle: TCP_NAGLE_OFF (TCP_NODELAY), TCP_NAGLE_CORK (TCP_CORK) and TCP_NAGLE_PUSH,
    which TCP_NODELAY (or uncorking with it on) sets and the next new skb clears
    (tcp_skb_entail): what is queued then goes past a cork."""
    return ((TCP_NAGLE_OFF if tp.nodelay else 0) | (TCP_NAGLE_CORK if tp.cork else 0)
            | (TCP_NAGLE_PUSH if tp.nagle_push else 0))


def tcp_push_pending_frames(tcp, tp: TcpSock) -> None:
    """tcp_push_pending_frames(): send what is queued as tp->nonagle lets it."""
    if tp.write_queue and tp.state in (TcpState.ESTABLISHED, TcpState.CLOSE_WAIT):
        tcp_write_xmit(tcp, tp)


def tcp_sock_set_cork(tcp, tp: TcpSock, on: bool) -> None:
    """__tcp_sock_set_cork(): TCP_CORK holds back every segment short of an MSS (TCP_NAGLE_CORK:
    Nagle without waiting for an ACK) until a full one can go; uncorking sends what is left at
    once (tcp_push_pending_frames; with TCP_NODELAY on, TCP_NAGLE_PUSH too)."""
    tp.cork = on
    if not on:
        tp.nagle_push = tp.nagle_push or tp.nodelay
        tcp_push_pending_frames(tcp, tp)


def tcp_nagle_check(tp: TcpSock, partial: bool, nonagle: int | None = None) -> bool:
    """tcp_nagle_check() with tcp_minshall_check(): hold back a segment smaller than the MSS
    while corked (TCP_NAGLE_CORK), or while a small segment sent before is unacknowledged
    (Minshall's Nagle) unless nonagle (tp->nonagle unless given) has any bit: with
    TCP_NODELAY a write's short last segment goes out behind full ones at once."""
    nonagle = tcp_nonagle(tp) if nonagle is None else nonagle
    return partial and bool(nonagle & TCP_NAGLE_CORK or (
        not nonagle and tp.packets_out > 0 and after(tp.snd_sml, tp.snd_una) and not after(tp.snd_sml, tp.snd_nxt)))


def _nagle_holds(tp: TcpSock, seg: Seg, nonagle: int) -> bool:
    """tcp_nagle_test(): Nagle, never for the FIN, nor with TCP_NAGLE_PUSH, nor for an skb that
    is not the queue's last (tcp_write_xmit passes TCP_NAGLE_PUSH for it: it gets no more data)."""
    if seg is not tp.write_queue[-1]:
        nonagle = TCP_NAGLE_PUSH
    return (not nonagle & TCP_NAGLE_PUSH and not seg.flags & TCPHDR_FIN
            and tcp_nagle_check(tp, seg.len < tp.mss_cache, nonagle))


def tcp_snd_wnd_test(tp: TcpSock, seg: Seg, mss: int) -> bool:
    """tcp_snd_wnd_test(): does the peer's window take the segment's first MSS?"""
    end_seq = seq_add(seg.seq, mss) if seg.len > mss else seg.end_seq
    return not after(end_seq, seq_add(tp.snd_una, tp.snd_wnd))


def tcp_mss_split_point(tp: TcpSock, seg: Seg, mss: int, cwnd_quota: int, nonagle: int | None = None) -> int:
    """tcp_mss_split_point(): how much of a GSO-sized skb may go now, whole segments the
    congestion window has room for and the peer's window takes, and a short last segment
    (where the data or the peer's window ends) if Nagle lets it. Whether a window too
    small for the skb is worth using now is tcp_tso_should_defer's to say, before."""
    window = seq_diff(seq_add(tp.snd_una, tp.snd_wnd), seg.seq)
    max_len = mss * cwnd_quota
    if max_len <= window and seg is not tp.write_queue[-1]:
        return max_len
    needed = min(seg.len, window)
    if max_len <= needed:
        return max_len
    partial = needed % mss
    if partial and tcp_nagle_check(tp, True, nonagle):
        return needed - partial
    return needed


def tcp_sndbuf_expand(tcp, tp: TcpSock) -> None:
    """tcp_sndbuf_expand(): a send buffer for two congestion windows of segments, each
    charged its truesize rounded up to a power of two, up to tcp_wmem[2]; suggested to the
    socket layer, which takes it unless SO_SNDBUF was set (SOCK_SNDBUF_LOCK)."""
    per_mss = 1 << (tp.mss_cache + MAX_TCP_HEADER + SKB_TRUESIZE_OVERHEAD - 1).bit_length()
    sndmem = min(2 * max(tp.cwnd, TCP_INIT_CWND) * per_mss, tcp.sysctls.tcp_wmem[2])
    if sndmem > tp.sndbuf_advised:
        tp.sndbuf_advised = sndmem
        tcp.event("sndbuf", tp.sk, value=sndmem)


def in_flight(tp: TcpSock) -> int:
    """tcp_packets_in_flight(): segments sent, neither acknowledged, SACKed nor known lost."""
    return tp.packets_out - tp.lost_out - tp.sacked_out


def _ns(t: float) -> int:
    """Seconds as the kernel's nanosecond clocks count them."""
    return round(t * 1e9)


def tcp_pacing_rate(tcp, tp: TcpSock) -> float:
    """tcp_update_pacing_rate(): bytes per second, cwnd (or packets_out, if more) MSS per
    srtt times tcp_pacing_ss_ratio (200 %) while cwnd is under half ssthresh, else times
    tcp_pacing_ca_ratio (120 %); unlimited before an RTT sample. Linux keeps it in
    sk_pacing_rate, redone after each ACK's congestion control and when a passive open
    completes; pktpath, which does not pace, works it out from the same values when TSO
    autosizing asks."""
    if not tp.srtt:
        return math.inf
    sysctls = tcp.sysctls
    ratio = sysctls.tcp_pacing_ss_ratio if tp.cwnd < tp.ssthresh // 2 else sysctls.tcp_pacing_ca_ratio
    return tp.mss_cache * ratio / 100 * max(tp.cwnd, tp.packets_out) / tp.srtt


def tcp_tso_segs(tcp, tp: TcpSock, mss: int) -> int:
    """tcp_tso_segs() / tcp_tso_autosize(): how many segments a TSO packet should hold: what
    the pacing rate sends in about 1 ms (sk_pacing_shift 10), plus sk_gso_max_size halved
    for every 512 us of min_rtt (tcp_tso_rtt_log 9: near peers get big packets), at least
    the sysctl tcp_min_tso_segs (2), at most a GSO packet's worth (sk_gso_max_segs, 65535, never
    binds below that). A 100 ms path at cwnd 10 gets 2; a fast or near one, a GSO packet."""
    rate = tcp_pacing_rate(tcp, tp)
    size = SK_GSO_MAX_SIZE if rate == math.inf else int(rate) >> SK_PACING_SHIFT
    r = int(tp.min_rtt * 1e6) >> TCP_TSO_RTT_LOG
    if r < 32:
        size += SK_GSO_MAX_SIZE >> r
    return max(min(size, SK_GSO_MAX_SIZE) // mss, tcp.sysctls.tcp_min_tso_segs)


def tcp_tso_should_defer(tcp, tp: TcpSock, seg: Seg, max_segs: int) -> tuple[bool, bool]:
    """tcp_tso_should_defer() (John Heffner's "TSO Nagle"), for the send head when it is more
    than one segment: hold it back, to send a bigger TSO packet on the next ACK, when all of
    these hold: the connection is not repairing a loss (CA state below Recovery); the last
    transmission was within 1 ms (a burst is going out); the windows' room (the smaller of
    cwnd's and the peer's) is less than a full max_segs packet, than all of the skb unless
    it is the queue's tail, and than 1/tcp_tso_win_divisor of the smaller window (with 0,
    no more than 3 MSS); the oldest unacknowledged segment's ACK is due within min(srtt/2,
    1 ms); and the room is short of the skb (cwnd or the peer's window is what limits), or
    it is not (the application is) and the skb will grow: it carries no FIN. No timer: the
    ACK expected is what sends it (tcp_data_snd_check), else the RTO or a loss probe.
    Returns (defer, is_cwnd_limited); Linux's is_rwnd_limited only starts the
    TCP_CHRONO_RWND_LIMITED clock (tcpi_rwnd_limited), which pktpath does not keep."""
    if tp.in_recovery or tp.retransmits:  # icsk_ca_state >= TCP_CA_Recovery: Recovery or Loss
        return False, False
    now = tcp.clock()
    if _ns(now) - _ns(tp.wstamp) - NSEC_PER_MSEC > 0:  # Linux 6.12: 1 ms since the last write
        return False, False
    mss = tp.mss_cache
    send_win = seq_diff(seq_add(tp.snd_una, tp.snd_wnd), seg.seq)
    cong_win = (tp.cwnd - in_flight(tp)) * mss
    limit = min(send_win, cong_win)
    if limit >= max_segs * mss:  # a full-sized TSO packet can go
        return False, False
    fin = bool(seg.flags & TCPHDR_FIN)  # tcp_send_fin put it on the unsent tail skb
    if seg is not tp.write_queue[-1] and limit >= seg.len:  # mid-queue: it will not grow, and all can go
        return False, False
    divisor = tcp.sysctls.tcp_tso_win_divisor
    if divisor:
        if limit >= min(tp.snd_wnd, tp.cwnd * mss) // divisor:  # at least that fraction of a window: use it
            return False, False
    elif limit > TCP_MAX_TSO_DEFERRED_MSS * mss:  # more than 3 MSS: do not wait past an ACK
        return False, False
    if not tp.rtx_queue:
        return False, False
    srtt_ns = _ns(tp.srtt)
    how_far_is_the_ack = _ns(tp.rtx_queue[0].sent_at) + srtt_ns - _ns(now)
    if how_far_is_the_ack - min(srtt_ns >> 1, NSEC_PER_MSEC) > 0:  # the next ACK comes too late to wait for
        return False, False
    if cong_win < send_win:
        if cong_win <= seg.len:
            return True, True  # cwnd-limited
    elif send_win <= seg.len:
        return True, False  # rwnd-limited
    if fin:  # application-limited, and this skb gets no more data (nor does one with MSG_EOR, not modelled)
        return False, False
    return True, False


def tcp_write_xmit(tcp, tp: TcpSock, *, force: bool = False, nonagle: int | None = None) -> None:
    """tcp_write_xmit(): send queued skbs while the congestion window, the peer's window
    and Nagle allow, each as many segments at once as they allow (tso_fragment cuts off
    the rest), unless tcp_tso_should_defer holds one of several segments back for the
    next ACK; arm the retransmission or the zero-window probe timer. force (push_one: a
    SYN, a probe) sends one segment past those checks. nonagle: tp->nonagle unless given."""
    tcp_xmit_retransmit_queue(tcp, tp)
    nonagle = tcp_nonagle(tp) if nonagle is None else nonagle
    mss = tp.mss_cache
    max_segs = tcp_tso_segs(tcp, tp, mss)
    sent = is_cwnd_limited = False
    while tp.write_queue:
        seg = tp.write_queue[0]
        limit = mss
        if not force:
            cwnd_quota = tcp_cwnd_test(tp)
            if cwnd_quota <= 0:
                is_cwnd_limited = True
                break
            if not tcp_snd_wnd_test(tp, seg, mss) and not seg.flags & TCPHDR_SYN:
                break
            if seg.len <= mss:
                if _nagle_holds(tp, seg, nonagle):
                    break
            else:
                defer, cwnd_limited = tcp_tso_should_defer(tcp, tp, seg, max_segs)
                if defer:
                    is_cwnd_limited = is_cwnd_limited or cwnd_limited
                    break
                # packets of at most max_segs (tcp_tso_autosize), back to back; the rest is the next head
                limit = tcp_mss_split_point(tp, seg, mss, min(cwnd_quota, max_segs), nonagle)
        if not force and tcp_small_queue_check(tcp, tp, min(seg.len, limit)):
            break
        if seg.len > limit:
            tcp_fragment(tcp, tp, tp.write_queue, 0, limit)  # tso_fragment()
        tp.write_queue.popleft()
        seg.set_tso_segs(mss)  # tcp_init_tso_segs()
        tp.rtx_queue.append(seg)
        tp.packets_out += seg.pcount
        if after(seg.end_seq, tp.snd_nxt):
            tp.snd_nxt = seg.end_seq
        if seg.len < seg.pcount * mss:  # tcp_minshall_update(): a small segment went out
            tp.snd_sml = seg.end_seq
        tcp_transmit_skb(tcp, tp, seg)
        if tp.in_cwr:
            tp.prr_out += seg.pcount
        if not tp.rto_at:
            tp.rto_at = tcp.clock() + tp.rto
        force = False
        sent = True
        tcp_schedule_loss_probe(tcp, tp)
    is_cwnd_limited = is_cwnd_limited or in_flight(tp) >= tp.cwnd
    if sent or is_cwnd_limited:
        tcp_cwnd_validate(tcp, tp, is_cwnd_limited)
    tcp_check_probe_timer(tcp, tp)


def tcp_cwnd_test(tp: TcpSock) -> int:
    """tcp_cwnd_test(): the segments cwnd has room for, at most half of cwnd at once, so that
    at least two packets are in flight (a restarted cwnd of 10 goes as two packets of 5)."""
    out = in_flight(tp)
    if out >= tp.cwnd:
        return 0
    return min(max(tp.cwnd >> 1, 1), tp.cwnd - out)


def tcp_cwnd_validate(tcp, tp: TcpSock, is_cwnd_limited: bool) -> None:
    """tcp_cwnd_validate(): remember, for the window now out, whether cwnd was what limited
    the sender, and the most segments it had out, so that tcp_is_cwnd_limited lets cwnd
    grow on the window's ACKs (in slow start, up to twice that many). A cwnd that limits is
    in use (snd_cwnd_stamp); one the application has left unused for an RTO since is cut
    toward what it used (tcp_cwnd_application_limited), with tcp_slow_start_after_idle on."""
    if (not before(tp.snd_una, tp.cwnd_usage_seq) or is_cwnd_limited
            or (not tp.cwnd_limited and tp.packets_out > tp.max_packets_out)):
        tp.cwnd_limited = is_cwnd_limited
        tp.max_packets_out = tp.packets_out
        tp.cwnd_usage_seq = tp.snd_nxt
    now = tcp.clock()
    if tcp_is_cwnd_limited(tp):
        tp.snd_cwnd_used = 0
        tp.snd_cwnd_stamp = now
        return
    tp.snd_cwnd_used = max(tp.snd_cwnd_used, tp.packets_out)
    if tcp.sysctls.tcp_slow_start_after_idle and now - tp.snd_cwnd_stamp >= tp.rto:
        tcp_cwnd_application_limited(tcp, tp)


def tcp_is_cwnd_limited(tp: TcpSock) -> bool:
    """tcp_is_cwnd_limited(): cwnd limited the window now out, or (in slow start) cwnd is
    less than twice the most segments it had out."""
    return tp.cwnd_limited or (tp.cwnd < tp.ssthresh and tp.cwnd < 2 * tp.max_packets_out)


def tcp_cwnd_application_limited(tcp, tp: TcpSock) -> None:
    """tcp_cwnd_application_limited() (RFC 2861's slow part): in the Open state, a cwnd larger
    than the most segments the application had out since (snd_cwnd_used, or the initial
    window if more) is cut halfway to that, ssthresh keeping 3/4 of it (tcp_current_ssthresh).
    Linux also leaves cwnd be while a writer found the send buffer full (SOCK_NOSPACE), which
    the socket layer knows and L4 does not: taken as clear."""
    ca_open = not (tp.in_recovery or tp.in_cwr or tp.retransmits or tp.lost_out or tp.sacked_out or tp.dupacks)
    if ca_open:
        win_used = max(tp.snd_cwnd_used, TCP_INIT_CWND)
        if win_used < tp.cwnd:
            tp.ssthresh = tcp_current_ssthresh(tp)
            tp.cwnd = (tp.cwnd + win_used) >> 1
        tp.snd_cwnd_used = 0
    tp.snd_cwnd_stamp = tcp.clock()


def tcp_schedule_loss_probe(tcp, tp: TcpSock) -> None:
    """tcp_schedule_loss_probe() (RFC 8985 7.2): with data out, SACK on and no loss being
    repaired, a probe in two RTTs (plus the peer's delayed ACK when one segment is out),
    never after the RTO: if the last segments or their ACKs were lost, the probe draws
    the SACKs that let RACK repair them, where otherwise only the RTO would."""
    if (not tp.sack_ok or tp.in_recovery or tp.retransmits or tp.lost_out or tp.tlp_out or not tp.rtx_queue
            or not tp.srtt):
        tp.tlp_at = 0.0
        return
    now = tcp.clock()
    pto = now + 2 * tp.srtt + (TCP_DELACK_MAX if tp.packets_out == 1 else TCP_TIMEOUT_MIN)
    tp.tlp_at = min(pto, tp.rto_at) if tp.rto_at else pto


def tcp_check_probe_timer(tcp, tp: TcpSock) -> None:
    """tcp_check_probe_timer(): data waits, nothing is in flight and the window will not
    take it: only a probe will learn when the window opens."""
    if tp.write_queue and not tp.rtx_queue and not tp.probe_at:
        tp.probe_at = tcp.clock() + min(tp.rto * (1 << tp.probes_out), 120.0)
    elif not tp.write_queue or tp.rtx_queue:
        tp.probe_at = 0.0


def tcp_retransmit_skb(tcp, tp: TcpSock, seg: Seg, segs: int = 1) -> None:
    """tcp_retransmit_skb(): the same original, a new clone, at most `segs` segments of it
    (what cwnd has room for): a longer one is cut first (tcp_fragment)."""
    limit = segs * tp.mss_cache
    if seg.len > limit:
        tcp_fragment(tcp, tp, tp.rtx_queue, tp.rtx_queue.index(seg), limit)
    tp.adjust_pcount(seg, seg.set_tso_segs(tp.mss_cache))  # the MSS may have changed since
    if seg.flags & TCPHDR_SYN:
        ecn.tcp_ecn_clear_syn(tcp, seg)
    seg.retrans += 1
    seg.resent_in = tp.recovery
    tcp.mib.inc(TCP, "RetransSegs", seg.pcount)
    tp.total_retrans += seg.pcount
    tcp_transmit_skb(tcp, tp, seg)
    if seg.lost:  # in flight again once sent (retrans_out grows after tcp_transmit_skb)
        seg.lost = False
        tp.lost_out -= seg.pcount


def tcp_xmit_retransmit_queue(tcp, tp: TcpSock) -> None:
    """tcp_xmit_retransmit_queue(): resend the segments marked lost, oldest first, as
    many as the congestion window has room for."""
    if not tp.lost_out:
        return
    i = 0
    while i < len(tp.rtx_queue):  # by index: a retransmission may split the segment
        cwnd_quota = tp.cwnd - in_flight(tp)
        if cwnd_quota <= 0:
            break
        seg = tp.rtx_queue[i]
        if seg.lost:
            if tcp_small_queue_check(tcp, tp, min(seg.len, cwnd_quota * tp.mss_cache), factor=1):
                break
            tcp_retransmit_skb(tcp, tp, seg, cwnd_quota)
            if tp.in_cwr:
                tp.prr_out += seg.pcount
        i += 1


def tcp_write_wakeup(tcp, tp: TcpSock, mib: str = "TCPWinProbe") -> None:
    """tcp_write_wakeup(): the probe or the keepalive timer fired. If the window has room for
    part of the next segment, split it to fit (tcp_fragment: a COPY of the tail part) and
    send it; if none, or nothing waits (a keepalive), send a probe (counted as `mib`)."""
    if tp.state == TcpState.CLOSE:
        return
    seg = tp.write_queue[0] if tp.write_queue else None
    room = seq_diff(seq_add(tp.snd_una, tp.snd_wnd), seg.seq) if seg is not None else 0
    if room > 0:
        if room < seg.len:
            tcp_fragment(tcp, tp, tp.write_queue, 0, room)
        tcp_write_xmit(tcp, tp, force=True)
    else:
        tcp_xmit_probe_skb(tcp, tp, mib)


def tcp_skb_append(seg: Seg, data) -> None:
    """Add the user's bytes to an unsent skb's end, as tcp_sendmsg_locked copies into the
    tail skb's page fragment. The socket layer counted the copy from the user; growing the
    linear Python buffer is the model's, not a kernel copy."""
    skb = seg.skb
    skb.end = max(skb.end, skb.tail + len(data))
    s.skb_put_data(skb, data)


def tcp_fragment(tcp, tp: TcpSock, queue: deque, i: int, size: int) -> Seg:
    """tcp_fragment() / tso_fragment(): cut queue[i] after `size` bytes; the rest becomes a
    new skb right behind it with FIN and PSH, and on the retransmit queue the original's
    state (when sent, retransmitted, lost, SACKed), the segment counts redone
    (tcp_adjust_pcount). No byte is copied: TCP's data sits in page fragments, which
    skb_split hands to the new skb (the model's Python buffer is its own). The new skb
    is linked to the original as copy_of. Returns the new tail."""
    seg = queue[i]
    on_rtx = queue is tp.rtx_queue
    if on_rtx:
        tp.adjust_pcount(seg, -seg.pcount)
    rest = seg.skb.payload()[size:]
    skb = s.alloc_skb(MAX_TCP_HEADER + len(rest), origin_host=tcp.host, sampled=seg.skb.sampled)
    s.skb_reserve(skb, MAX_TCP_HEADER)
    s.skb_put_data(skb, rest)
    s.skb_trim(seg.skb, size)
    skb.sk, skb.copy_of = tp.sk, seg.skb.id
    tail = dataclasses.replace(seg, skb=skb, seq=seq_add(seg.seq, size), flags=seg.flags & (TCPHDR_FIN | TCPHDR_PSH))
    seg.end_seq = tail.seq
    seg.flags &= ~(TCPHDR_FIN | TCPHDR_PSH)
    seg.set_tso_segs(tp.mss_cache)
    tail.set_tso_segs(tp.mss_cache)
    if on_rtx:
        tp.adjust_pcount(seg, seg.pcount)
        tp.adjust_pcount(tail, tail.pcount)
    queue.insert(i + 1, tail)
    return tail
