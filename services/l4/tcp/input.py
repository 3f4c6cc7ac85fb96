"""Receiving segments on a socket: net/ipv4/tcp_input.c.

tcp_rcv_synsent_state_process for an active open, tcp_rcv_state_process for
every synchronized state: tcp_validate_incoming (the sequence check, RFC 5961's
RST and SYN rules with challenge ACKs), tcp_ack (the window update, the
retransmit queue cleaned and its originals freed, the RTT sample under Karn's
rule, congestion avoidance, duplicate ACKs and NewReno's fast retransmit and
recovery), the state changes an ACK of our FIN makes, then tcp_data_queue (in
order to the socket layer, out of order to the ofo queue, FIN), and the
delayed-ACK decision. Functions take the engine and the socket, as the
kernel's take `sk`.
"""

import errno
from typing import NamedTuple

from pktpath import skbuff as s
from pktpath.pb import skbuff_pb2
from pktpath.services.l4.tcp import ecn, output, timer
from pktpath.services.l4.tcp.sock import (
    TCP_DELACK_MAX, TCP_MAX_QUICKACKS, TCP_MSS_DEFAULT, TCP_TIMEOUT_MIN, TcpSock, TcpState, after, before, seq_add,
    seq_diff,
)
from pktpath.wire.tcp import (
    TCPHDR_FIN, TCPHDR_RST, TCPHDR_SYN, TCPHDR_URG, TcpHdr, TcpOptMss, TcpOptSack, TcpOptSackPerm, TcpOptTimestamp,
    TcpOptWindow,
)

pb = skbuff_pb2
TCP, TCPEXT = output.TCP, output.TCPEXT
TCP_TS_OPTION_LEN = 12  # NOP, NOP, timestamps: what every segment carries when they are on
ICSK_ACK_PUSHED, ICSK_ACK_PUSHED2 = 1, 2


class RxOptions(NamedTuple):
    """tcp_parse_options(): what a SYN offered (-1 / None: not offered)."""
    mss: int
    wscale: int
    sack_ok: bool
    tsval: int | None

    @classmethod
    def parse(cls, th: TcpHdr, sysctls) -> "RxOptions":
        """An option whose sysctl is off is not seen (tcp_window_scaling, tcp_sack,
        tcp_timestamps), so it is never agreed to."""
        mss, wscale, sack_ok, tsval = TCP_MSS_DEFAULT, -1, False, None
        for opt in th.parsed_options(strict=False):
            if type(opt) is TcpOptMss and opt.mss:
                mss = opt.mss
            elif type(opt) is TcpOptWindow and sysctls.tcp_window_scaling:
                wscale = min(opt.snd_wscale, 14)  # RFC 7323: a larger shift is taken as 14
            elif type(opt) is TcpOptSackPerm and sysctls.tcp_sack:
                sack_ok = True
            elif type(opt) is TcpOptTimestamp and sysctls.tcp_timestamps:
                tsval = opt.tsval
        return cls(mss, wscale, sack_ok, tsval)


class Segment(NamedTuple):
    """The parsed header and TCP_SKB_CB's seq/end_seq of a received segment (data at payload)."""
    th: TcpHdr
    seq: int
    end_seq: int
    len: int

    @classmethod
    def of(cls, th: TcpHdr, skb) -> "Segment":
        n = skb.len
        return cls(th, th.seq, seq_add(th.seq, n + (1 if th.syn else 0) + (1 if th.fin else 0)), n)


def apply_syn_options(tp: TcpSock, opts: RxOptions) -> None:
    """What a SYN or SYN-ACK settles: the MSS (tcp_sync_mss), window scaling, SACK and
    timestamps, each on only when both sides offered it."""
    tp.rx_opt_mss = opts.mss
    tp.wscale_ok = opts.wscale >= 0
    tp.snd_wscale = opts.wscale if tp.wscale_ok else 0
    if not tp.wscale_ok:
        tp.rcv_wscale = 0
    tp.sack_ok = opts.sack_ok
    tp.tstamp_ok = opts.tsval is not None
    tp.ts_recent = opts.tsval or 0
    tp.mss_cache = min(opts.mss, tp.advmss) - (TCP_TS_OPTION_LEN if tp.tstamp_ok else 0)


def _update_ts_recent(tp: TcpSock, th: TcpHdr, seq: int) -> None:
    if tp.tstamp_ok and not after(seq, tp.rcv_wup):
        ts = th.option(TcpOptTimestamp)
        if ts is not None:
            tp.ts_recent = ts.tsval


def tcp_rcv_synsent_state_process(tcp, tp: TcpSock, skb, seg: Segment) -> None:
    """SYN_SENT: a SYN-ACK completes the open; a SYN alone is a simultaneous open;
    an RST answering our SYN refuses the connection."""
    th = seg.th
    if th.ack:
        if not after(th.ack_seq, tp.iss) or after(th.ack_seq, tp.snd_nxt):
            if not tp.retransmits:  # the peer may not have had our SYN: send it again soon, not at the RTO
                tp.rto_at = tcp.clock() + TCP_TIMEOUT_MIN
            if not th.rst:
                tcp.send_reset_for(skb, th, seg.len)
            return tcp.drop(skb, pb.SKB_DROP_REASON_TCP_ACK_UNSENT_DATA, "tcp_rcv_synsent_state_process")
        if th.rst:
            tcp_reset(tcp, tp)
            return tcp.drop(skb, pb.SKB_DROP_REASON_TCP_RESET, "tcp_rcv_synsent_state_process")
        if not th.syn:
            return tcp.drop(skb, pb.SKB_DROP_REASON_TCP_FLAGS, "tcp_rcv_synsent_state_process")
        ecn.tcp_ecn_rcv_synack(tp, th)
        apply_syn_options(tp, RxOptions.parse(th, tcp.sysctls))
        tp.irs = th.seq
        tp.rcv_nxt = tp.rcv_wup = seq_add(th.seq, 1)
        tp.snd_wnd = tp.max_window = th.window  # a SYN's window is never scaled
        tp.snd_wl1 = th.seq
        _clean_rtx_queue(tcp, tp, th.ack_seq)
        tp.snd_una = th.ack_seq
        tp.rto_at = 0.0  # the SYN is acknowledged; nothing is in flight
        tp.retransmits = tp.backoff = 0
        tcp.set_state(tp, TcpState.ESTABLISHED)
        tp.lrcvtime = tp.rcv_tstamp = tcp.clock()  # tcp_finish_connect, tcp_ack
        if tp.keepalive:
            timer.inet_csk_reset_keepalive_timer(tp, tp.lrcvtime, timer.keepalive_time_when(tcp, tp))
        tcp.event("established", tp.sk, value=tp.mss_cache)
        output.tcp_sndbuf_expand(tcp, tp)  # tcp_init_buffer_space()
        s.consume_skb(skb, output.L4, tcp.host, "tcp_rcv_synsent_state_process")
        if tp.pingpong:  # TCP_QUICKACK 0 before connect(): "Save one ACK", for the first data to carry
            tp.ack_pending = True
            ecn.tcp_enter_quickack_mode(tcp, tp, TCP_MAX_QUICKACKS)
            tp.delack_at = tcp.clock() + TCP_DELACK_MAX
            return None
        output.tcp_send_ack(tcp, tp)
        output.tcp_write_xmit(tcp, tp)
        return None
    if th.rst:
        return tcp.drop(skb, pb.SKB_DROP_REASON_TCP_RESET, "tcp_rcv_synsent_state_process")
    if th.syn:  # simultaneous open: both SYNs crossed
        apply_syn_options(tp, RxOptions.parse(th, tcp.sysctls))
        ecn.tcp_ecn_rcv_syn(tp, th)
        tp.irs = th.seq
        tp.rcv_nxt = tp.rcv_wup = seq_add(th.seq, 1)
        tp.snd_wnd = tp.max_window = th.window
        tp.snd_wl1 = th.seq
        tcp.set_state(tp, TcpState.SYN_RECV)
        s.consume_skb(skb, output.L4, tcp.host, "tcp_rcv_synsent_state_process")
        output.tcp_transmit_skb(tcp, tp, tp.rtx_queue[0])  # our SYN again, now with the ACK
        return None
    return tcp.drop(skb, pb.SKB_DROP_REASON_TCP_FLAGS, "tcp_rcv_synsent_state_process")


def tcp_sequence(tp: TcpSock, seg: Segment) -> bool:
    """tcp_sequence(): does the segment touch the receive window?"""
    return (not before(seg.end_seq, tp.rcv_wup)
            and not after(seg.seq, seq_add(tp.rcv_nxt, output.receive_window(tp))))


def tcp_validate_incoming(tcp, tp: TcpSock, skb, seg: Segment) -> bool:
    """tcp_validate_incoming(): False when the segment was dropped here."""
    th = seg.th
    if not tcp_sequence(tp, seg):
        if not th.rst:
            if th.syn:
                return _syn_challenge(tcp, tp, skb)
            # tcp_send_dupack: tell the sender where we are; a segment without data (an ACK loop's,
            # a forger's) at most once per tcp_invalid_ratelimit (tcp_oow_rate_limited)
            if seg.seq != seg.end_seq and before(seg.seq, tp.rcv_nxt):  # data had before
                tcp.mib.inc(TCPEXT, "DelayedACKLost")
                tcp_dsack_set(tcp, tp, seg.seq, seg.end_seq if before(seg.end_seq, tp.rcv_nxt) else tp.rcv_nxt)
            if seg.seq != seg.end_seq or not output.tcp_oow_rate_limited(tcp, tp, "TCPACKSkippedSeq"):
                output.tcp_send_ack(tcp, tp)
        tcp.drop(skb, pb.SKB_DROP_REASON_TCP_INVALID_SEQUENCE, "tcp_validate_incoming")
        return False
    if th.rst:
        if th.seq == tp.rcv_nxt:
            tcp_reset(tcp, tp)
            tcp.drop(skb, pb.SKB_DROP_REASON_TCP_RESET, "tcp_validate_incoming")
        else:  # RFC 5961 3.2: in the window but not exactly next: it may be forged
            output.tcp_send_challenge_ack(tcp, tp)
            tcp.drop(skb, pb.SKB_DROP_REASON_TCP_RESET, "tcp_validate_incoming")
        return False
    if th.syn:
        # RFC 5961 4.2, but for a simultaneous open's SYN-ACK acknowledging our SYN-ACK
        if not (tp.state == TcpState.SYN_RECV and th.ack and seg.len == 0 and not th.fin
                and seq_add(th.seq, 1) == tp.rcv_nxt and th.ack_seq == tp.snd_nxt):
            return _syn_challenge(tcp, tp, skb)
    return True


def _syn_challenge(tcp, tp: TcpSock, skb) -> bool:
    tcp.mib.inc(TCPEXT, "TCPSYNChallenge")
    output.tcp_send_challenge_ack(tcp, tp)
    tcp.drop(skb, pb.SKB_DROP_REASON_TCP_INVALID_SYN, "tcp_validate_incoming")
    return False


def tcp_rcv_state_process(tcp, tp: TcpSock, skb, seg: Segment) -> None:
    """tcp_rcv_state_process(): every state but LISTEN, SYN_SENT and TIME_WAIT."""
    th = seg.th
    if not tcp_validate_incoming(tcp, tp, skb, seg):
        return
    if not th.ack:
        tcp.drop(skb, pb.SKB_DROP_REASON_TCP_FLAGS, "tcp_rcv_state_process")
        return
    _update_ts_recent(tp, th, seg.seq)
    verdict = tcp_ack(tcp, tp, seg)
    if tp.state == TcpState.SYN_RECV:
        if verdict != ACK_OK:
            tcp.send_reset_for(skb, th, seg.len)
            tcp.drop(skb, pb.SKB_DROP_REASON_TCP_ACK_UNSENT_DATA, "tcp_rcv_state_process")
            return
        tcp.set_state(tp, TcpState.ESTABLISHED)
        tcp.event("established", tp.sk, value=tp.mss_cache)
        output.tcp_sndbuf_expand(tcp, tp)  # tcp_init_buffer_space()
    elif verdict in (ACK_UNSENT, ACK_TOO_OLD):
        # RFC 5961 5.2: an ACK for data never sent, or older than any window the peer could
        # still mean, is dropped and answered with a (rate-limited) challenge ACK
        output.tcp_send_challenge_ack(tcp, tp)
        tcp.drop(skb, pb.SKB_DROP_REASON_TCP_ACK_UNSENT_DATA if verdict == ACK_UNSENT
                 else pb.SKB_DROP_REASON_TCP_TOO_OLD_ACK, "tcp_ack")
        return
    fin_acked = tp.fin_queued and tp.snd_una == tp.write_seq
    if tp.state == TcpState.FIN_WAIT1 and fin_acked:
        tcp.set_state(tp, TcpState.FIN_WAIT2)
        if tp.orphan:
            tp.close_at = tcp.clock() + tcp.fin_timeout
    elif tp.state == TcpState.CLOSING and fin_acked:
        tcp.time_wait(tp)
    elif tp.state == TcpState.LAST_ACK and fin_acked:
        tcp.done(tp)
        s.consume_skb(skb, output.L4, tcp.host, "tcp_rcv_state_process")
        return
    tcp_data_queue(tcp, tp, skb, seg)
    if tp.state != TcpState.CLOSE:
        if tp.state != TcpState.TIME_WAIT:
            output.tcp_write_xmit(tcp, tp)  # tcp_data_snd_check: the ACK may have opened room
        tcp_ack_snd_check(tcp, tp)


ACK_OK, ACK_OLD, ACK_TOO_OLD, ACK_UNSENT = range(4)


def tcp_ack(tcp, tp: TcpSock, seg: Segment) -> int:
    """tcp_ack(): the peer's window and what it acknowledges."""
    th = seg.th
    ack = th.ack_seq
    if after(ack, tp.snd_nxt):
        return ACK_UNSENT
    if before(ack, tp.snd_una):
        # older than the largest window the peer offered, or than what it has acknowledged so far
        max_window = min(tp.max_window, max(seq_diff(tp.snd_una, tp.iss) - 1, 0))
        return ACK_TOO_OLD if before(ack, seq_add(tp.snd_una, -max_window)) else ACK_OLD
    ece = ecn.tcp_ecn_rcv_ecn_echo(tp, th)  # FLAG_ECE
    ecn.tcp_ecn_accept_cwr(tp, seg)
    tp.rcv_tstamp = tcp.clock()  # the peer is alive: keepalive's idle time starts again
    if not tp.write_queue:
        # icsk_probes_out = 0 on any ACK; pktpath's zero-window probes (data waiting) back off by
        # probes_out where Linux's back off by icsk_backoff, so there only new data resets it, below
        tp.probes_out = 0
    prior_packets = tp.packets_out
    window = th.window << tp.snd_wscale
    window_changed = False
    # tcp_may_update_window(): only a newer segment may move the window (RFC 9293 3.10.7.4), or
    # on the same one a larger window, or a zero one
    if after(ack, tp.snd_una) or after(seg.seq, tp.snd_wl1) or (
            seg.seq == tp.snd_wl1 and (window > tp.snd_wnd or not window)):
        window_changed = window != tp.snd_wnd
        tp.snd_wnd, tp.snd_wl1 = window, seg.seq
        tp.max_window = max(tp.max_window, window)
        if window_changed and tp.write_queue:  # tcp_ack_update_window
            output.tcp_slow_start_after_idle_check(tcp, tp)
    now = tcp.clock()
    # SACK blocks, if any: options beyond the timestamps (or any options, without timestamps)
    has_sack = tp.sack_ok and len(th.options) > (TCP_TS_OPTION_LEN if tp.tstamp_ok else 0)
    newly_sacked = _sacktag(tcp, tp, th, now) if has_sack else 0
    if tp.frto and after(ack, tp.snd_una):
        _frto_moment(tcp, tp, ack)
    if after(ack, tp.snd_una):
        # tcp_is_cwnd_limited(): cwnd grows only while it is what holds the sender back
        cwnd_limited = tp.cwnd_limited or (tp.cwnd < tp.ssthresh and tp.cwnd < 2 * tp.max_packets_out)
        acked_segs = _clean_rtx_queue(tcp, tp, ack, th)
        tp.snd_una = ack
        tp.dupacks = 0
        tp.backoff = tp.retransmits = tp.probes_out = 0
        _count_delivered_ce(tcp, tp, ece, acked_segs + newly_sacked)
        if tp.in_recovery:
            _newreno_ack(tcp, tp, ack, acked_segs)
        elif ecn.tcp_cwr_ack(tcp, tp, ece, acked_segs + newly_sacked, snd_una_advanced=True):
            pass  # PRR took cwnd down: it does not grow meanwhile
        elif cwnd_limited:
            tp.ca.cong_avoid(tp, acked_segs, now)
            output.tcp_sndbuf_expand(tcp, tp)
        if not (tp.in_recovery or tp.in_cwr):  # tcp_cong_avoid, called on cwnd_limited or not: cwnd in use
            tp.snd_cwnd_stamp = now
        tp.rto_at = now + tp.rto if tp.rtx_queue else 0.0
        tp.tlp_out = False
        output.tcp_schedule_loss_probe(tcp, tp)
    else:
        if (seg.len == 0 and not th.syn and not th.fin and not window_changed and tp.rtx_queue
                and ack == tp.snd_una):
            _dupack(tcp, tp)
        elif newly_sacked and tp.in_recovery:
            _sack_recovery(tcp, tp)
        _count_delivered_ce(tcp, tp, ece, newly_sacked)
        if prior_packets and not tp.in_recovery:
            ecn.tcp_cwr_ack(tcp, tp, ece, newly_sacked, snd_una_advanced=False)
    had_lost = tp.lost_out  # segments marked lost already: a timeout's loss state, or recovery
    if tp.sacked_out and tcp_rack_mark_lost(tp):
        if not tp.in_recovery and not had_lost:
            _enter_recovery(tcp, tp)
        output.tcp_write_xmit(tcp, tp)
    return ACK_OK


def _frto_moment(tcp, tp: TcpSock, ack: int) -> None:
    """The first ACK after an RTO that moves snd_una, with tcp_frto on: where Linux's
    tcp_process_loss decides. If it acknowledges data never retransmitted, Linux calls the
    RTO spurious and undoes it (tcp_try_undo_loss); if it leaves data sent before the RTO
    unacknowledged, Linux sends new data instead (F-RTO step 2b). pktpath does neither:
    counted. An ACK for exactly what was resent is the same either way."""
    tp.frto = False
    orig_acked = any(not seg.retrans and not after(seg.end_seq, ack) for seg in tp.rtx_queue)
    if orig_acked or before(ack, tp.frto_high):
        tcp.unmodelled("tcp_frto")


def tcp_dsack_set(tcp, tp: TcpSock, seq: int, end_seq: int) -> None:
    """tcp_dsack_set() (RFC 2883): the next segment out reports this duplicate first."""
    if tp.sack_ok and tcp.sysctls.tcp_dsack:
        tcp.mib.inc(TCPEXT, "TCPDSACKOldSent" if before(seq, tp.rcv_nxt) else "TCPDSACKOfoSent")
        tp.dsack = (seq, end_seq)


def tcp_dsack_extend(tcp, tp: TcpSock, seq: int, end_seq: int) -> None:
    """tcp_dsack_extend(): widen the pending D-SACK by an overlapping duplicate, or set one."""
    if tp.dsack is None:
        tcp_dsack_set(tcp, tp, seq, end_seq)
    elif not after(seq, tp.dsack[1]) and not after(tp.dsack[0], end_seq):  # tcp_sack_extend
        tp.dsack = (seq if before(seq, tp.dsack[0]) else tp.dsack[0],
                    end_seq if after(end_seq, tp.dsack[1]) else tp.dsack[1])


def _count_delivered_ce(tcp, tp: TcpSock, ece: bool, delivered: int) -> None:
    """tcp_count_delivered() / tcp_newly_delivered(): segments an ECE ACK delivered
    (acknowledged or SACKed) count as delivered with CE (TCPDeliveredCE)."""
    if ece and delivered:
        tp.delivered_ce += delivered
        tcp.mib.inc(TCPEXT, "TCPDeliveredCE", delivered)


def _tsecr(tp: TcpSock, th: TcpHdr) -> int | None:
    """The timestamp the peer echoed (TSecr), if timestamps are on; 0 is none."""
    if not tp.tstamp_ok:
        return None
    ts = th.option(TcpOptTimestamp)
    return ts.tsecr if ts is not None and ts.tsecr else None


def tcp_rack_advance(tp: TcpSock, seg, now: float) -> None:
    """tcp_rack_advance() (RFC 8985 6.2): a segment was delivered (ACKed or SACKed); RACK
    remembers the latest send time among those delivered. A retransmission acknowledged
    sooner than min_rtt after it went out was likely the original's ACK: not counted."""
    if seg.retrans and tp.min_rtt and now - seg.sent_at < tp.min_rtt:
        return
    if seg.sent_at > tp.rack_mstamp:
        tp.rack_mstamp = seg.sent_at


def tcp_rack_mark_lost(tp: TcpSock) -> int:
    """tcp_rack_detect_loss() (RFC 8985 6.2): a segment not delivered that was sent more
    than a reordering window (min_rtt / 4) before one that was is lost, a retransmission
    too: what lets a lost retransmission be resent without waiting for the RTO. Returns
    how many were newly marked."""
    reo_wnd = tp.min_rtt / 4
    newly = 0
    for seg in tp.rtx_queue:
        if not seg.sacked and not seg.lost and seg.sent_at + reo_wnd < tp.rack_mstamp:
            tp.mark_lost(seg)
            newly += seg.pcount
    return newly


def _sacktag(tcp, tp: TcpSock, th: TcpHdr, now: float) -> int:
    """tcp_sacktag_write_queue(): mark the segments a SACK option's blocks cover (ignoring
    blocks at or below snd_una: D-SACKs); a GSO skb a block's edge falls in is split there
    first (tcp_match_skb_to_sack → tcp_fragment). Returns how many were newly marked."""
    opt = th.option(TcpOptSack)
    if opt is None:
        return 0
    newly = 0
    q = tp.rtx_queue
    blocks = opt.blocks
    # tcp_check_dsack(): a first block below the ACK, or inside the second, reports a duplicate
    if blocks and (before(blocks[0][0], th.ack_seq) or len(blocks) > 1 and not before(blocks[0][0], blocks[1][0])
                   and not after(blocks[0][1], blocks[1][1])):
        tcp.mib.inc(TCPEXT, "TCPDSACKRecv" if before(blocks[0][0], th.ack_seq) else "TCPDSACKOfoRecv")
        tcp.unmodelled("dsack_received")  # Linux may undo a recovery on it, and widens RACK's reo_wnd
    for left, right in blocks:
        if not after(right, tp.snd_una) or after(right, tp.snd_nxt):
            continue
        i = 0
        while i < len(q) and before(q[i].seq, right):
            seg = q[i]
            i += 1
            if seg.sacked or not after(seg.end_seq, left):
                continue
            if before(seg.seq, left):  # the block starts inside: the part before it stays
                output.tcp_fragment(tcp, tp, q, i - 1, seq_diff(left, seg.seq))
                continue
            if after(seg.end_seq, right):  # it ends inside: the part after it stays
                output.tcp_fragment(tcp, tp, q, i - 1, seq_diff(right, seg.seq))
            seg.sacked = True
            tp.sacked_out += seg.pcount
            newly += seg.pcount
            tcp_rack_advance(tp, seg, now)
            if seg.lost:
                seg.lost = False
                tp.lost_out -= seg.pcount
    return newly


def _mark_lost(tp: TcpSock) -> None:
    """RFC 6675's IsLost, as tcp_mark_head_lost does it: a segment with three SACKed ones
    above it is lost, unless it was retransmitted in this recovery already."""
    sacked_above = 0
    for seg in reversed(tp.rtx_queue):
        if seg.sacked:
            sacked_above += seg.pcount
        elif sacked_above >= 3 and not seg.lost and seg.resent_in != tp.recovery:
            tp.mark_lost(seg)


def _mark_head_lost(tcp, tp: TcpSock) -> None:
    """tcp_mark_head_lost(sk, 1): the first segment is lost; of a GSO skb only its first
    MSS (tcp_fragment), the rest may yet arrive."""
    head = tp.rtx_queue[0]
    if head.len > tp.mss_cache:
        output.tcp_fragment(tcp, tp, tp.rtx_queue, 0, tp.mss_cache)
    tp.mark_lost(head)


def _sack_recovery(tcp, tp: TcpSock) -> None:
    """In recovery with SACK: resend what the scoreboard says is lost, as the pipe allows."""
    _mark_lost(tp)
    output.tcp_write_xmit(tcp, tp)


def _clean_rtx_queue(tcp, tp: TcpSock, ack: int, th: TcpHdr | None = None) -> int:
    """tcp_clean_rtx_queue(): free the originals the ACK covers (FREE); trim a partly
    acknowledged head (tcp_trim_head: a pull, no copy). Returns the segments acked.
    The RTT sample comes from a segment never retransmitted (Karn's rule), or else from
    the echoed timestamp (tcp_ack_update_rtt: TSecr is unambiguous, RFC 7323 4)."""
    now = tcp.clock()
    acked_segs = acked_bytes = 0
    rtt = None
    while tp.rtx_queue and not after(tp.rtx_queue[0].end_seq, ack):
        seg = tp.rtx_queue.popleft()
        acked_segs += seg.pcount
        acked_bytes += seg.len
        tp.adjust_pcount(seg, -seg.pcount)
        if not seg.retrans:
            rtt = now - seg.sent_at
        tcp_rack_advance(tp, seg, now)
        s.consume_skb(seg.skb, output.L4, tcp.host, "tcp_clean_rtx_queue")
    if tp.rtx_queue and after(ack, tp.rtx_queue[0].seq):  # tcp_tso_acked(): part of a GSO skb
        head = tp.rtx_queue[0]
        n = seq_diff(ack, head.seq)
        s.skb_pull(head.skb, min(n, head.skb.len))
        head.seq = ack
        acked_bytes += n
        delta = head.set_tso_segs(tp.mss_cache)
        tp.adjust_pcount(head, delta)
        acked_segs -= delta
        if delta and not head.retrans:
            rtt = now - head.sent_at
    tsecr = _tsecr(tp, th) if rtt is None and th is not None and acked_segs else None  # parsed only if needed
    if tsecr is not None:
        ms = (output.tcp_time_stamp(tcp, tp) - tsecr) & 0xFFFFFFFF
        if ms < 0x7FFFFFFF:
            rtt = max(ms, 1) / 1000
    if rtt is not None:
        tp.rtt_sample(rtt)
        tp.ca.pkts_acked(tp, rtt)
    if acked_bytes:
        tcp.event("acked", tp.sk, value=acked_bytes)
    return acked_segs


def _dupack(tcp, tp: TcpSock) -> None:
    """A duplicate ACK: the third starts fast retransmit and NewReno recovery (RFC 6582);
    each one after inflates cwnd by the segment that left the network."""
    tp.dupacks += 1
    if tp.in_recovery:
        if tp.sack_ok:
            _sack_recovery(tcp, tp)
        else:
            tp.cwnd += 1
            output.tcp_write_xmit(tcp, tp)
    elif tp.dupacks == 3 and not tp.lost_out:
        _enter_recovery(tcp, tp)
        if tp.sack_ok:
            head = tp.rtx_queue[0]
            if not head.sacked:
                _mark_head_lost(tcp, tp)
            _sack_recovery(tcp, tp)
        else:
            output.tcp_retransmit_skb(tcp, tp, tp.rtx_queue[0])


def _enter_recovery(tcp, tp: TcpSock) -> None:
    """tcp_enter_recovery(): three duplicate ACKs, or RACK found a loss. ssthresh from the
    congestion control; with SACK cwnd is ssthresh (RFC 6675: the pipe, not inflation,
    says what may go), without it NewReno's ssthresh + 3."""
    tp.in_recovery = True
    tp.high_seq = tp.snd_nxt
    tp.recovery += 1
    if tp.in_cwr:  # a reduction is under way (tcp_in_cwnd_reduction): its ssthresh stands
        tp.in_cwr = False
    else:  # tcp_init_cwnd_reduction
        tp.ssthresh = tp.ca.ssthresh(tp)
        ecn.tcp_ecn_queue_cwr(tp)
    tcp.mib.inc(TCPEXT, "TCPFastRetrans")
    if tp.sack_ok:
        tp.cwnd = tp.ssthresh
        tcp.mib.inc(TCPEXT, "TCPSackRecovery")
    else:
        tp.cwnd = tp.ssthresh + 3
    tp.rto_at = tcp.clock() + tp.rto


def _newreno_ack(tcp, tp: TcpSock, ack: int, acked_segs: int) -> None:
    """New data acknowledged during recovery: a partial ACK retransmits the next hole
    and deflates cwnd; a full ACK (past high_seq) ends recovery at ssthresh."""
    if not before(ack, tp.high_seq):
        tp.in_recovery = False
        tp.cwnd = max(min(tp.ssthresh, output.in_flight(tp) + 1), 1)
        return
    if tp.sack_ok:
        head = tp.rtx_queue[0] if tp.rtx_queue else None
        if head is not None and not head.sacked and head.resent_in != tp.recovery:
            _mark_head_lost(tcp, tp)  # a partial ACK: the next hole is lost too
        _sack_recovery(tcp, tp)
        return
    if tp.rtx_queue:
        output.tcp_retransmit_skb(tcp, tp, tp.rtx_queue[0])
    tp.cwnd = max(tp.cwnd - acked_segs + 1, 1)


def tcp_reset(tcp, tp: TcpSock) -> None:
    """tcp_reset(): the peer reset the connection."""
    if tp.state == TcpState.SYN_SENT:
        err = errno.ECONNREFUSED
    elif tp.state == TcpState.CLOSE_WAIT:
        err = errno.EPIPE
    else:
        err = errno.ECONNRESET
    tcp.done(tp, err)


def tcp_data_queue(tcp, tp: TcpSock, skb, seg: Segment) -> None:
    """tcp_data_queue(): in order to the socket layer (and whatever the ofo queue then
    continues), out of order to the ofo queue, a retransmission already had dropped;
    each of the latter two answered by an immediate (duplicate) ACK."""
    th = seg.th
    if seg.seq == seg.end_seq:  # nothing that takes sequence space (a SYN again does: it is answered)
        s.consume_skb(skb, output.L4, tcp.host, "tcp_rcv_state_process")
        return
    if tp.state not in (TcpState.ESTABLISHED, TcpState.FIN_WAIT1, TcpState.FIN_WAIT2):
        # After the peer's FIN nothing more can come (RFC 9293 3.10.7.4 "seventh").
        tcp.drop(skb, pb.SKB_DROP_REASON_TCP_CLOSE, "tcp_data_queue")
        return
    if (tp.shutdown_rd and tp.state in (TcpState.FIN_WAIT1, TcpState.FIN_WAIT2)
            and after(seq_add(seg.end_seq, -1 if th.fin else 0), tp.rcv_nxt)):
        # new data for a socket nobody will read (RFC 1122 4.2.2.13): the connection is reset and
        # the segment answered with a reset of its own (tcp_rcv_state_process's step 7, whose
        # caller, tcp_v4_do_rcv, sends tcp_v4_send_reset)
        tcp.mib.inc(TCPEXT, "TCPAbortOnData")
        tcp_reset(tcp, tp)
        tcp.send_reset_for(skb, th, seg.len)
        tcp.drop(skb, pb.SKB_DROP_REASON_TCP_CLOSE, "tcp_rcv_state_process")  # 6.12: TCP_ABORT_ON_DATA
        return
    if not after(seg.end_seq, tp.rcv_nxt):  # all of it was had before: a retransmission
        tcp.mib.inc(TCPEXT, "DelayedACKLost")
        tcp_dsack_set(tcp, tp, seg.seq, seg.end_seq)
        tp.ack_pending = True
        tp.ack_now = True
        tcp.drop(skb, pb.SKB_DROP_REASON_TCP_OLD_DATA, "tcp_data_queue")
        return
    if after(seg.seq, tp.rcv_nxt):
        _ofo_insert(tcp, tp, skb, seg)
        return
    if before(seg.seq, tp.rcv_nxt):  # starts with bytes we have: reported, and pulled off
        tcp_dsack_set(tcp, tp, seg.seq, tp.rcv_nxt)
        s.skb_pull(skb, seq_diff(tp.rcv_nxt, seg.seq))
    if skb.len and output.receive_window(tp) == 0:
        tp.ack_pending = True
        tp.ack_now = True
        tcp.drop(skb, pb.SKB_DROP_REASON_TCP_ZEROWINDOW, "tcp_data_queue")
        return
    if skb.len:
        ecn.tcp_ecn_check_ce(tcp, tp, ecn.ip_dsfield(skb))  # tcp_event_data_recv
        tcp_measure_rcv_mss(tp, skb, th)
        tp.lrcvtime = tcp.clock()
    had_ofo = bool(tp.ofo_queue)
    _queue_rcv(tcp, tp, skb, th.fin)
    if tp.ofo_queue:
        _ofo_queue(tcp, tp)
    if had_ofo:
        tp.ack_now = True  # a hole filled: tell the sender at once
    tp.ack_pending = True


def _queue_rcv(tcp, tp: TcpSock, skb, fin: bool) -> None:
    """tcp_queue_rcv(): in-order bytes go up to the socket's receive queue."""
    if skb.len:
        if not tp.ato:  # tcp_event_data_recv(): the first data sets the delayed-ACK timeout
            tp.ato = tcp.delack
        tp.rcv_nxt = seq_add(tp.rcv_nxt, skb.len)
        tp.unread += skb.len
        tcp_rcv_rtt_measure(tp, tcp.clock())
        skb.sk = tp.sk
        skb.record(s.EXIT, output.L4, tcp.host, "tcp_queue_rcv")
        tcp.event("data", tp.sk, skb=skb)
    else:
        s.consume_skb(skb, output.L4, tcp.host, "tcp_data_queue")
    if fin:
        tcp_fin(tcp, tp)


TCP_MIN_MSS = 88
TCP_REMNANT = TCPHDR_FIN | TCPHDR_URG | TCPHDR_SYN | TCPHDR_RST


def tcp_measure_rcv_mss(tp: TcpSock, skb, th: TcpHdr) -> None:
    """tcp_measure_rcv_mss(): learn the peer's segment size from what arrives, and mark
    the ends of the peer's writes (a full segment with PSH, or a short one: ICSK_ACK_PUSHED;
    two short ones: PUSHED2), whose pending ACK a read that empties the queue sends at once
    (tcp_cleanup_rbuf); a short size that comes twice is the peer's segment size."""
    lss, tp.last_seg_size = tp.last_seg_size, 0
    length = skb.gso_size or skb.len
    if length >= tp.rcv_mss:
        tp.rcv_mss = min(length, tp.advmss)
        if th.psh:
            tp.ack_pushed |= ICSK_ACK_PUSHED
        return
    length += th.header_len
    if length >= TCP_MSS_DEFAULT + 20 or (length >= TCP_MIN_MSS + 20 and not th.flags & TCP_REMNANT):
        tp.last_seg_size = length
        if length == lss:
            tp.rcv_mss = length
            return
    if tp.ack_pushed & ICSK_ACK_PUSHED:
        tp.ack_pushed |= ICSK_ACK_PUSHED2
    tp.ack_pushed |= ICSK_ACK_PUSHED


def tcp_rcv_rtt_measure(tp: TcpSock, now: float) -> None:
    """tcp_rcv_rtt_measure(): a receiver's RTT is the time one window's worth of data
    takes to arrive; the smallest recent sample counts (it overestimates, never under)."""
    if tp.rcv_rtt_time and not before(tp.rcv_nxt, tp.rcv_rtt_seq):
        sample = now - tp.rcv_rtt_time
        tp.rcv_rtt = sample if not tp.rcv_rtt else min(tp.rcv_rtt, (7 * tp.rcv_rtt + sample) / 8)
        tp.rcv_rtt_time = 0.0
    if not tp.rcv_rtt_time:
        tp.rcv_rtt_seq = seq_add(tp.rcv_nxt, max(tp.rcv_wnd, tp.advmss))
        tp.rcv_rtt_time = now


def _ofo_insert(tcp, tp: TcpSock, skb, seg: Segment) -> None:
    """tcp_data_queue_ofo(): keep it for later unless it brings nothing new."""
    if not before(seg.seq, seq_add(tp.rcv_nxt, output.receive_window(tp))):
        tp.ack_pending = True
        tp.ack_now = True
        tcp.drop(skb, pb.SKB_DROP_REASON_TCP_OVERWINDOW, "tcp_data_queue_ofo")
        return
    ecn.tcp_ecn_check_ce(tcp, tp, ecn.ip_dsfield(skb))
    tp.ack_now = True  # a gap: the sender needs a duplicate ACK for each segment now
    tp.ack_pending = True
    for start, (end, _, _) in tp.ofo_queue.items():
        if not before(seg.seq, start) and not after(seg.end_seq, end):
            tcp.mib.inc(TCPEXT, "TCPOFOMerge")
            tcp_dsack_set(tcp, tp, seg.seq, seg.end_seq)
            tcp.drop(skb, pb.SKB_DROP_REASON_TCP_OFOMERGE, "tcp_data_queue_ofo")
            return
    old = tp.ofo_queue.get(seg.seq)
    if old is not None:  # the new one covers it: the old one is the duplicate
        tcp_dsack_extend(tcp, tp, seg.seq, old[0])
        tcp.drop(old[1], pb.SKB_DROP_REASON_TCP_OFOMERGE, "tcp_data_queue_ofo")
    tcp.mib.inc(TCPEXT, "TCPOFOQueue")
    tp.rcv_ooopack += max(1, skb.gso_segs)  # a GRO packet counts its segments
    tp.ofo_queue[seg.seq] = (seg.end_seq, skb, seg.th.fin)
    tp.ofo_last = seg.seq


def _ofo_queue(tcp, tp: TcpSock) -> None:
    """tcp_ofo_queue(): move what now follows rcv_nxt from the ofo queue to the socket."""
    while tp.ofo_queue and tp.state in (TcpState.ESTABLISHED, TcpState.FIN_WAIT1, TcpState.FIN_WAIT2):
        start = next((k for k in tp.ofo_queue if not after(k, tp.rcv_nxt)), None)
        if start is None:
            return
        end, skb, fin = tp.ofo_queue.pop(start)
        if not after(end, tp.rcv_nxt):
            tcp.drop(skb, pb.SKB_DROP_REASON_TCP_OFOMERGE, "tcp_ofo_queue")
            continue
        s.skb_pull(skb, seq_diff(tp.rcv_nxt, start))
        _queue_rcv(tcp, tp, skb, fin)


def tcp_fin(tcp, tp: TcpSock) -> None:
    """tcp_fin(): the peer has sent all it will; the reader sees end of file. In
    ESTABLISHED the connection turns interactive (ping-pong mode): the FIN's ACK is
    delayed, for the user's answer or FIN to carry it; in FIN_WAIT1/2 it goes at once."""
    tp.rcv_nxt = seq_add(tp.rcv_nxt, 1)
    if tp.state == TcpState.ESTABLISHED:
        tp.pingpong = True  # inet_csk_enter_pingpong_mode()
    else:
        tp.ack_now = True
    tp.ack_pending = True
    tcp.event("eof", tp.sk)
    for _, skb, _ in tp.ofo_queue.values():  # nothing can follow a FIN
        tcp.drop(skb, pb.SKB_DROP_REASON_TCP_OFO_DROP, "tcp_fin")
    tp.ofo_queue.clear()
    if tp.state == TcpState.ESTABLISHED:
        tcp.set_state(tp, TcpState.CLOSE_WAIT)
    elif tp.state == TcpState.FIN_WAIT1:
        tcp.set_state(tp, TcpState.CLOSING)  # simultaneous close: our FIN is not acked yet
    elif tp.state == TcpState.FIN_WAIT2:
        tcp.time_wait(tp)


def tcp_ack_snd_check(tcp, tp: TcpSock) -> None:
    """__tcp_ack_snd_check(): a duplicate ACK (a gap, old data), a hole filled or a FIN is
    acknowledged at once; in-order data when more than one full segment is unacknowledged
    or in quick-ACK mode (the connection's start) at the end of the batch being received
    (the segments of one NAPI poll together, as GRO merges in-order segments, never
    out-of-order ones); else within the delayed-ACK timer, which is 0 until data has come
    (a FIN alone on a fresh connection: at once) and has no quick ACKs in ping-pong mode."""
    if not tp.ack_pending:
        return
    if tp.ack_now or tp.state == TcpState.TIME_WAIT or not tp.ato:
        output.tcp_send_ack(tcp, tp)
    elif (tp.quickack and not tp.pingpong) or seq_diff(tp.rcv_nxt, tp.rcv_wup) > tp.rcv_mss:
        if tcp.batch_acks is not None:  # in-order data: one ACK when the batch is done, as for GRO
            tcp.batch_acks[tp.sk] = tp
        else:
            output.tcp_send_ack(tcp, tp)
    elif not tp.delack_at:
        tp.delack_at = tcp.clock() + tp.ato
