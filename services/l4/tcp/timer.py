"""TCP's timers: net/ipv4/tcp_timer.c (and the SYN-ACK retransmission of
inet_csk_reqsk_queue's request socks). The engine calls run() with the time;
each socket keeps its deadlines (0: not armed)."""

import errno

from pktpath.services.l4.tcp import ecn, output
from pktpath.services.l4.tcp.sock import (
    TCP_RTO_MAX, TCP_TIMEOUT_INIT, TcpSock, TcpState, after,
)


def tcp_write_err(tcp, tp: TcpSock) -> None:
    """tcp_write_err(): the connection timed out; the user sees the last ICMP error it met
    (sk_err_soft: tcp_v6_err's soft errors), else ETIMEDOUT."""
    tcp.done(tp, tp.err_soft or errno.ETIMEDOUT)


def tcp_retransmit_timer(tcp, tp: TcpSock, now: float) -> None:
    """tcp_retransmit_timer(): no ACK within the RTO. Give up after tcp_syn_retries
    (a SYN) or tcp_retries2; else enter loss (tcp_enter_loss: ssthresh from the
    congestion control, unless an ECN reduction under way set it, cwnd 1, everything
    outstanding marked lost, CWR owed to an ECN peer, even for a SYN), resend the
    oldest, and back off: the RTO doubles up to 120 s."""
    tp.tlp_at = 0.0
    if not tp.rtx_queue:
        tp.rto_at = 0.0
        return
    limit = tcp.sysctls.tcp_syn_retries if tp.state == TcpState.SYN_SENT else tcp.sysctls.tcp_retries2
    if tp.retransmits >= limit:
        if tp.state not in (TcpState.SYN_SENT, TcpState.SYN_RECV):
            tcp.mib.inc(output.TCPEXT, "TCPAbortOnTimeout")
        tcp_write_err(tcp, tp)
        return
    tcp.mib.inc(output.TCPEXT, "TCPTimeouts")
    reducing = tp.in_cwr and after(tp.high_seq, tp.snd_una)  # TCP_CA_CWR, high_seq not yet acknowledged
    if (tp.retransmits == 0 or not tp.lost_out) and not reducing:
        tp.ssthresh = tp.ca.ssthresh(tp)
    tp.in_cwr = False
    ecn.tcp_ecn_queue_cwr(tp)
    # tcp_enter_loss: tp->frto = sysctl_tcp_frto && (new_recovery || icsk_retransmits); its
    # decision comes with the next ACK (tcp_process_loss), there counted as pktpath's lack
    tp.frto = (bool(tcp.sysctls.tcp_frto) and tp.state not in (TcpState.SYN_SENT, TcpState.SYN_RECV)
               and (not tp.in_recovery or tp.retransmits > 0))
    tp.frto_high = tp.snd_nxt
    tp.cwnd, tp.cwnd_cnt = 1, 0
    tp.ca.on_loss(tp)
    tp.in_recovery = False
    tp.dupacks = 0
    for seg in tp.rtx_queue:
        if not seg.sacked:
            tp.mark_lost(seg)
    output.tcp_retransmit_skb(tcp, tp, tp.rtx_queue[0])
    tp.retransmits += 1
    tp.backoff += 1
    tp.rto = min(tp.rto * 2, TCP_RTO_MAX)
    tp.rto_at = now + tp.rto


def tcp_send_loss_probe(tcp, tp: TcpSock, now: float) -> None:
    """tcp_send_loss_probe() (RFC 8985 7.3): nothing was heard for two RTTs. Send the next
    new segment if the window takes it, else the last one again, so that the peer's
    answer (its SACKs) shows what is missing; then the RTO again."""
    tp.tlp_at = 0.0
    if not tp.rtx_queue or tp.in_recovery or tp.lost_out:
        return
    tcp.mib.inc(output.TCPEXT, "TCPLossProbes")
    tp.tlp_out = True
    head = tp.write_queue[0] if tp.write_queue else None
    if head is not None and output.tcp_snd_wnd_test(tp, head, tp.mss_cache):
        output.tcp_write_xmit(tcp, tp, force=True)
    else:  # the last segment again: of a GSO skb only its last MSS
        last = tp.rtx_queue[-1]
        if last.pcount > 1:
            last = output.tcp_fragment(tcp, tp, tp.rtx_queue, len(tp.rtx_queue) - 1, (last.pcount - 1) * tp.mss_cache)
        output.tcp_retransmit_skb(tcp, tp, last)
    tp.rto_at = now + tp.rto


def tcp_delack_timer(tcp, tp: TcpSock, now: float) -> None:
    """tcp_delack_timer(): the ACK that waited for more data goes out alone; in ping-pong mode
    no answer came to carry it, so the connection leaves it (inet_csk_exit_pingpong_mode)."""
    tp.delack_at = 0.0
    if tp.ack_pending:
        tp.pingpong = False
        tcp.mib.inc(output.TCPEXT, "DelayedACKs")
        output.tcp_send_ack(tcp, tp)


def tcp_probe_timer(tcp, tp: TcpSock, now: float) -> None:
    """tcp_probe_timer(): the zero-window probe, backing off like the RTO; a peer that
    never opens its window is given up after tcp_retries2 probes."""
    tp.probe_at = 0.0
    if not tp.write_queue or tp.rtx_queue:
        tp.probes_out = 0
        return
    if tp.probes_out >= tcp.sysctls.tcp_retries2:
        tcp.mib.inc(output.TCPEXT, "TCPAbortOnTimeout")
        tcp_write_err(tcp, tp)
        return
    tp.probes_out += 1
    output.tcp_write_wakeup(tcp, tp)
    output.tcp_check_probe_timer(tcp, tp)


def keepalive_time_when(tcp, tp: TcpSock) -> int:
    """keepalive_time_when(): TCP_KEEPIDLE, else tcp_keepalive_time (seconds)."""
    return tp.keepalive_time or tcp.sysctls.tcp_keepalive_time


def keepalive_intvl_when(tcp, tp: TcpSock) -> int:
    """keepalive_intvl_when(): TCP_KEEPINTVL, else tcp_keepalive_intvl (seconds)."""
    return tp.keepalive_intvl or tcp.sysctls.tcp_keepalive_intvl


def keepalive_probes(tcp, tp: TcpSock) -> int:
    """keepalive_probes(): TCP_KEEPCNT, else tcp_keepalive_probes."""
    return tp.keepalive_probes or tcp.sysctls.tcp_keepalive_probes


def keepalive_time_elapsed(tp: TcpSock, now: float) -> int:
    """keepalive_time_elapsed(): how long the peer has been silent, since the last data
    (icsk_ack.lrcvtime) or the last ACK (rcv_tstamp), whichever came later; in ns."""
    return min(output._ns(now) - output._ns(tp.lrcvtime), output._ns(now) - output._ns(tp.rcv_tstamp))


def inet_csk_reset_keepalive_timer(tp: TcpSock, now: float, seconds: float) -> None:
    """inet_csk_reset_keepalive_timer(): the keepalive timer fires `seconds` from now."""
    tp.keepalive_at = now + seconds


def tcp_set_keepalive(tcp, tp: TcpSock, on: bool) -> None:
    """tcp_set_keepalive() and SOCK_KEEPOPEN (sock_setsockopt's SO_KEEPALIVE): turned on, the
    timer is armed for the idle time; off, stopped. Not on a socket closed or listening."""
    if tp.state not in (TcpState.CLOSE, TcpState.LISTEN):
        if on and not tp.keepalive:
            inet_csk_reset_keepalive_timer(tp, tcp.clock(), keepalive_time_when(tcp, tp))
        elif not on:
            tp.keepalive_at = 0.0
    tp.keepalive = on


def tcp_sock_set_keepidle(tcp, tp: TcpSock, seconds: int) -> None:
    """tcp_sock_set_keepidle_locked(): a new idle time, counted from the peer's last word:
    the timer fires when that much silence will have passed (now, if it has)."""
    tp.keepalive_time = seconds
    if tp.keepalive and tp.state not in (TcpState.CLOSE, TcpState.LISTEN):
        now = tcp.clock()
        left = seconds * 1e9 - keepalive_time_elapsed(tp, now)
        inet_csk_reset_keepalive_timer(tp, now, max(left, 0) / 1e9)


def tcp_keepalive_timer(tcp, tp: TcpSock, now: float) -> None:
    """tcp_keepalive_timer() with SO_KEEPALIVE on (an orphan's FIN_WAIT2 timeout, which Linux
    also runs on this timer, is pktpath's close_at): while data is out or waiting the
    connection is alive and the timer comes back after the idle time. Once the peer has been
    silent for the idle time, a probe (tcp_write_wakeup: an ACK one below snd_una, which the
    peer must answer; TCPKeepAlive) goes every interval; any ACK resets the count (tcp_ack:
    icsk_probes_out = 0), and when TCP_KEEPCNT probes went unanswered the connection is
    reset and reported ETIMEDOUT (tcp_write_err)."""
    tp.keepalive_at = 0.0
    if not tp.keepalive or tp.state in (TcpState.CLOSE, TcpState.SYN_SENT, TcpState.LISTEN, TcpState.TIME_WAIT):
        return
    if tp.orphan and tp.state == TcpState.FIN_WAIT2:  # Linux's timer ends it here: pktpath's close_at does
        return
    when = keepalive_time_when(tcp, tp)
    if tp.packets_out or tp.write_queue:
        inet_csk_reset_keepalive_timer(tp, now, when)
        return
    elapsed = keepalive_time_elapsed(tp, now)
    if elapsed < when * 1e9:  # tp->rcv_tstamp + keepalive_time_when(tp)
        inet_csk_reset_keepalive_timer(tp, now, (when * 1e9 - elapsed) / 1e9)
        return
    if tp.probes_out >= keepalive_probes(tcp, tp):
        output.tcp_send_active_reset(tcp, tp)
        tcp.mib.inc(output.TCPEXT, "TCPAbortOnTimeout")
        tcp_write_err(tcp, tp)
        return
    output.tcp_write_wakeup(tcp, tp, "TCPKeepAlive")
    tp.probes_out += 1
    inet_csk_reset_keepalive_timer(tp, now, keepalive_intvl_when(tcp, tp))


def reqsk_timer(tcp, listener: TcpSock, now: float) -> None:
    """reqsk_timer_handler(): resend SYN-ACKs not yet answered, backing off; forget a
    request after tcp_synack_retries."""
    for key, req in list(listener.syn_queue.items()):
        if req.expires > now:
            continue
        if req.retrans >= tcp.sysctls.tcp_synack_retries:
            del listener.syn_queue[key]
            continue
        req.retrans += 1
        req.expires = now + min(TCP_TIMEOUT_INIT * (1 << req.retrans), TCP_RTO_MAX)
        tcp.mib.inc(output.TCP, "RetransSegs")
        output.tcp_send_synack(tcp, listener, req)


def run(tcp, now: float) -> None:
    """Fire whatever is due on every socket."""
    for tp in list(tcp.listeners()):
        if tp.syn_queue:
            reqsk_timer(tcp, tp, now)
    for tp in list(tcp.established()):
        if tp.close_at and tp.close_at <= now:
            tcp.done(tp)  # TIME_WAIT over, or an orphan's FIN_WAIT2 timeout
            continue
        # one timer in the kernel: the probe, when it is due no later than the RTO, goes instead
        if tp.tlp_at and tp.tlp_at <= now and (not tp.rto_at or tp.tlp_at <= tp.rto_at):
            tcp_send_loss_probe(tcp, tp, now)
        elif tp.rto_at and tp.rto_at <= now:
            tcp_retransmit_timer(tcp, tp, now)
        if tp.state == TcpState.CLOSE:
            continue
        if tp.probe_at and tp.probe_at <= now:
            tcp_probe_timer(tcp, tp, now)
        if tp.delack_at and tp.delack_at <= now:
            tcp_delack_timer(tcp, tp, now)
        if tp.keepalive_at and tp.keepalive_at <= now:
            tcp_keepalive_timer(tcp, tp, now)


def next_deadline(tcp) -> float:
    """The earliest armed timer of any socket (0: none)."""
    times = [t for tp in tcp.established()
             for t in (tp.rto_at, tp.tlp_at, tp.delack_at, tp.probe_at, tp.close_at, tp.keepalive_at) if t]
    times += [req.expires for tp in tcp.listeners() for req in tp.syn_queue.values()]
    return min(times, default=0.0)
