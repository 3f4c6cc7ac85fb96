"""tcp_get_info() (net/ipv4/tcp.c): a socket's struct tcp_info, for getsockopt(TCP_INFO);
and tcp_ioctl()'s queue lengths, for ioctl(SIOCINQ, SIOCOUTQ, SIOCOUTQNSD).

Every field pktpath keeps is filled as the kernel fills it (times in microseconds, the
window scales only once agreed, bytes acknowledged and received counted from the ISNs);
the ones it does not keep (segment counts, the last-activity times, pacing rates,
delivery and busy-time accounting but the segments delivered with ECE) are 0.
"""

from pktpath.services.l4.tcp.ecn import TCP_ECN_OK, TCP_ECN_SEEN
from pktpath.services.l4.tcp.sock import TcpSock, TcpState, seq_diff
from pktpath.wire.tcp_info import pack

TCPI_OPT_TIMESTAMPS, TCPI_OPT_SACK, TCPI_OPT_WSCALE, TCPI_OPT_ECN, TCPI_OPT_ECN_SEEN = 1, 2, 4, 8, 16
TCP_CA_OPEN, TCP_CA_CWR, TCP_CA_RECOVERY, TCP_CA_LOSS = 0, 2, 3, 4
_SYNCHRONIZED = {TcpState.ESTABLISHED, TcpState.FIN_WAIT1, TcpState.FIN_WAIT2, TcpState.CLOSE_WAIT,
                 TcpState.CLOSING, TcpState.LAST_ACK, TcpState.TIME_WAIT}


def tcp_get_info(tp: TcpSock, delack: float) -> bytes:
    options = ((TCPI_OPT_TIMESTAMPS if tp.tstamp_ok else 0) | (TCPI_OPT_SACK if tp.sack_ok else 0)
               | (TCPI_OPT_WSCALE if tp.wscale_ok else 0) | (TCPI_OPT_ECN if tp.ecn_flags & TCP_ECN_OK else 0)
               | (TCPI_OPT_ECN_SEEN if tp.ecn_flags & TCP_ECN_SEEN else 0))
    synchronized = tp.state in _SYNCHRONIZED
    ca_state = (TCP_CA_LOSS if tp.retransmits and tp.lost_out else TCP_CA_RECOVERY if tp.in_recovery
                else TCP_CA_CWR if tp.in_cwr else TCP_CA_OPEN)
    # the user's socket is done once TIME_WAIT begins: a timewait minisock holds the 4-tuple then
    # (tcp_time_wait → tcp_done), so the socket reports CLOSE
    state = TcpState.CLOSE if tp.state == TcpState.TIME_WAIT else tp.state
    if tp.state == TcpState.LISTEN:  # a listener's: its queues (tcp_get_info's LISTEN case)
        return pack(tcpi_state=tp.state, tcpi_unacked=len(tp.accept_queue), tcpi_sacked=tp.backlog)
    return pack(
        tcpi_state=state, tcpi_ca_state=ca_state, tcpi_retransmits=tp.retransmits, tcpi_probes=tp.probes_out,
        tcpi_backoff=tp.backoff, tcpi_options=options,
        tcpi_snd_wscale=tp.snd_wscale if tp.wscale_ok else 0, tcpi_rcv_wscale=tp.rcv_wscale if tp.wscale_ok else 0,
        tcpi_rto=int(tp.rto * 1e6), tcpi_ato=int(delack * 1e6), tcpi_snd_mss=tp.mss_cache, tcpi_rcv_mss=tp.advmss,
        tcpi_unacked=tp.packets_out, tcpi_sacked=tp.sacked_out, tcpi_lost=tp.lost_out,
        tcpi_pmtu=tp.pmtu or tp.advmss + 40, tcpi_rtt=int(tp.srtt * 1e6), tcpi_rttvar=int(tp.rttvar * 1e6),
        tcpi_snd_ssthresh=min(tp.ssthresh, 0x7FFFFFFF), tcpi_snd_cwnd=tp.cwnd, tcpi_advmss=tp.advmss,
        tcpi_reordering=3, tcpi_rcv_rtt=int(tp.rcv_rtt * 1e6), tcpi_rcv_space=tp.rcvq_space,
        tcpi_bytes_acked=max(seq_diff(tp.snd_una, tp.iss) - 1, 0) if synchronized else 0,
        tcpi_bytes_received=max(seq_diff(tp.rcv_nxt, tp.irs) - 1, 0) if synchronized else 0,
        tcpi_notsent_bytes=sum(seg.len for seg in tp.write_queue), tcpi_min_rtt=int(tp.min_rtt * 1e6),
        tcpi_snd_wnd=tp.snd_wnd, tcpi_rcv_wnd=tp.rcv_wnd, tcpi_delivered_ce=tp.delivered_ce,
        tcpi_total_retrans=tp.total_retrans, tcpi_rcv_ooopack=tp.rcv_ooopack)


def tcp_ioctl(tp: TcpSock) -> tuple[int, int, int]:
    """tcp_ioctl()'s SIOCINQ, SIOCOUTQ and SIOCOUTQNSD as L4 has them: nothing before the
    handshake is done (SYN_SENT, SYN_RECV); else tcp_inq()'s rcv_nxt - copied_seq less the
    FIN's sequence number once it came (SOCK_DONE), which is the bytes delivered and not yet
    read; write_seq - snd_una (the FIN counts until acknowledged); write_seq - snd_nxt.
    tcp_inq's urgent-data case never applies: pktpath has no tcp_urg(), urgent bytes stay inline
    (as with SO_OOBINLINE).
    A listener's EINVAL is the socket layer's to give."""
    if tp.state in (TcpState.SYN_SENT, TcpState.SYN_RECV, TcpState.LISTEN):
        return 0, 0, 0
    return tp.unread, seq_diff(tp.write_seq, tp.snd_una), seq_diff(tp.write_seq, tp.snd_nxt)
