"""RFC 3168 ECN in TCP, as Linux 6.18 does it: include/net/tcp_ecn.h, the tcp_ecn_* of
net/ipv4/tcp_input.c and tcp_output.c, and the CWR state of tcp_input.c.

net.ipv4.tcp_ecn 1 asks for ECN in a connection's SYN (ECE and CWR); 1 and 2 (the default)
agree when a peer's SYN asks, with ECE in the SYN-ACK. A connection that agreed sends its new
data ECT(0) in the IP header (never its SYNs, pure ACKs, FINs without data or retransmissions),
answers a CE-marked data segment with ECE on everything it sends until a segment with CWR says
the peer reduced its window, and on an ACK with ECE reduces its own once per window of data
(tcp_enter_cwr: the CWR state, cwnd brought down to the congestion control's ssthresh by
PRR, RFC 6937) and says so with CWR on its next new data segment.

The tos byte of what L4 sends rides in the flowi4 (skb->cb) to IPv4, which writes it into the
header (over IPv6, the flowi6's traffic class: ip6_xmit's tclass); what arrived is read from the
IPv4 header, or the IPv6 header's traffic class, the skb still holds (TCP_SKB_CB's ip_dsfield).

Linux 6.18 also has Accurate ECN (AccECN), asked for only by a congestion control that needs
it (its tcp_ecn takes no value above 2). pktpath has none: a SYN-ACK answering our ECN SYN as
an AccECN server does (AE, CWR, ECE = 2, 3, 4 or 6) leaves the connection without ECN here,
where 6.18 goes on in AccECN.
"""

from pktpath import skbuff as s
from pktpath.services.l4.tcp.sock import TcpSock, TcpState, after
from pktpath.wire.tcp import TCPHDR_CWR, TCPHDR_ECE, TCPHDR_SYN, TcpHdr

# tp->ecn_flags (include/linux/tcp.h)
TCP_ECN_OK = 1            # RFC 3168 ECN agreed (6.18: TCP_ECN_MODE_RFC3168)
TCP_ECN_QUEUE_CWR = 2     # cwnd was reduced: CWR goes on the next new data
TCP_ECN_DEMAND_CWR = 4    # a CE mark came in: ECE on everything until the peer's CWR
TCP_ECN_SEEN = 8          # an ECT or CE segment came in
# the IP header's ECN field (include/net/inet_ecn.h)
INET_ECN_NOT_ECT, INET_ECN_ECT_1, INET_ECN_ECT_0, INET_ECN_CE = 0, 1, 2, 3
INET_ECN_MASK = 3
TCPHDR_SYN_ECN = TCPHDR_SYN | TCPHDR_ECE | TCPHDR_CWR
TCP_INFINITE_SSTHRESH = 0x7FFFFFFF
QUICKACKS_ON_CE = 2       # tcp_enter_quickack_mode(sk, 2)


def ip_dsfield(skb) -> int:
    """TCP_SKB_CB(skb)->ip_dsfield: the tos byte of the IPv4 header the segment came in
    (ipv4_get_dsfield(ip_hdr(skb))), or the traffic class of its IPv6 header
    (ipv6_get_dsfield: the 8 bits after the version); 0 for an skb without one."""
    nh = skb.network_header
    if nh == s.UNSET:
        return 0
    buf = skb.buf
    if buf[nh] >> 4 == 6:
        return (buf[nh] & 0x0F) << 4 | buf[nh + 1] >> 4
    return buf[nh + 1]


def ace(th: TcpHdr) -> int:
    """tcp_accecn_ace(): AE, CWR and ECE as a number (AE: the low bit of the data-offset byte)."""
    return (th.doff_res & 1) << 2 | th.cwr << 1 | th.ece


# -- the handshake -----------------------------------------------------------------------------
def tcp_ecn_create_request(tcp, th: TcpHdr, dsfield: int) -> bool:
    """tcp_ecn_create_request(): a SYN asks for ECN with ECE and CWR; tcp_ecn 1 or 2 agrees.
    A SYN whose IP header is already ECT or CE is refused (RFC 3168 6.1.1: a network is
    playing with the bits), unless one of the reserved bits or AE is set: a later extension
    such as AccECN, which may send its SYN ECT (RFC 8311 4.3)."""
    if not (th.ece and th.cwr) or not tcp.sysctls.tcp_ecn:
        return False
    ect = dsfield & INET_ECN_MASK != INET_ECN_NOT_ECT
    return not ect or bool(th.doff_res & 0x0F)  # th->res1 || th->ae


def tcp_ecn_openreq_child(tp: TcpSock, ecn_ok: bool) -> None:
    """tcp_ecn_openreq_child(): the connection is ECN-capable if its request agreed."""
    tp.ecn_flags = TCP_ECN_OK if ecn_ok else 0


def tcp_ecn_send_syn(tcp, tp: TcpSock) -> int:
    """tcp_ecn_send_syn(): with tcp_ecn 1 our SYN asks for ECN (ECE and CWR) and the
    connection is ECN-capable until the SYN-ACK says otherwise. Returns the SYN's flags."""
    tp.ecn_flags = 0
    if tcp.sysctls.tcp_ecn != 1:
        return 0
    tp.ecn_flags = TCP_ECN_OK
    return TCPHDR_ECE | TCPHDR_CWR


def tcp_ecn_clear_syn(tcp, seg) -> None:
    """tcp_ecn_clear_syn() (__tcp_retransmit_skb): with tcp_ecn_fallback, a SYN sent again
    asks for ECN no more, in case a middlebox drops ECN-setup SYNs (RFC 3168 6.1.1.1); the
    connection stays ECN-capable should the SYN-ACK agree all the same."""
    if tcp.sysctls.tcp_ecn_fallback and seg.flags & TCPHDR_SYN_ECN == TCPHDR_SYN_ECN:
        seg.flags &= ~(TCPHDR_ECE | TCPHDR_CWR)


def tcp_ecn_rcv_synack(tp: TcpSock, th: TcpHdr) -> None:
    """tcp_ecn_rcv_synack(): the SYN-ACK agrees to RFC 3168 ECN with ECE and neither CWR
    nor AE, or with ECE and AE (ACE 5: RFC 3168 here, as 6.18 takes it when AccECN was not
    asked for); none (0), all three (7) or an AccECN server's answer leave it off."""
    if tp.ecn_flags & TCP_ECN_OK and ace(th) not in (1, 5):
        tp.ecn_flags &= ~TCP_ECN_OK


def tcp_ecn_rcv_syn(tp: TcpSock, th: TcpHdr) -> None:
    """tcp_ecn_rcv_syn(): in a simultaneous open the peer's SYN must ask for ECN too."""
    if tp.ecn_flags & TCP_ECN_OK and not (th.ece and th.cwr):
        tp.ecn_flags &= ~TCP_ECN_OK


def tcp_ecn_send_synack(tp: TcpSock, flags: int) -> int:
    """tcp_ecn_send_synack(): our SYN sent again as the SYN-ACK of a simultaneous open
    carries no CWR, and ECE only if ECN was agreed."""
    flags &= ~TCPHDR_CWR
    return flags if tp.ecn_flags & TCP_ECN_OK else flags & ~TCPHDR_ECE


# -- an established connection's segments ----------------------------------------------------
def tcp_ecn_send(tp: TcpSock, payload: int, new_data: bool) -> tuple[int, int]:
    """tcp_ecn_send(), for every segment of a connection but a SYN: new data goes ECT(0)
    (INET_ECN_xmit) with CWR if a reduction is owed; pure ACKs and retransmissions go
    Not-ECT (INET_ECN_dontxmit); ECE while the peer owes us its CWR. A TIME_WAIT socket's
    ACKs are the host's (ip_send_unicast_reply), without ECN. Returns (flags, tos)."""
    if not tp.ecn_flags & TCP_ECN_OK or tp.state == TcpState.TIME_WAIT:
        return 0, INET_ECN_NOT_ECT
    flags, tos = 0, INET_ECN_NOT_ECT
    if payload and new_data:
        tos = INET_ECN_ECT_0
        if tp.ecn_flags & TCP_ECN_QUEUE_CWR:
            tp.ecn_flags &= ~TCP_ECN_QUEUE_CWR
            flags |= TCPHDR_CWR  # GSO puts it on the first segment only (SKB_GSO_TCP_ECN)
    if tp.ecn_flags & TCP_ECN_DEMAND_CWR:
        flags |= TCPHDR_ECE
    return flags, tos


def tcp_enter_quickack_mode(tcp, tp: TcpSock, max_quickacks: int) -> None:
    """tcp_enter_quickack_mode() / tcp_incr_quickack(): the next ACKs may not wait, as many
    as half the window in segments, at most max_quickacks (the peer's MSS taken as ours);
    an interactive connection is one no more, and the delayed-ACK timeout is the least."""
    quickacks = tp.rcv_wnd // (2 * tp.advmss) or 2
    tp.quickack = max(tp.quickack, min(quickacks, max_quickacks))
    tp.pingpong = False  # inet_csk_exit_pingpong_mode()
    tp.ato = tcp.delack  # TCP_ATO_MIN


def tcp_ecn_check_ce(tcp, tp: TcpSock, dsfield: int) -> None:
    """tcp_ecn_check_ce(), for data taken in (in order or out of it): CE asks for ECE until
    the peer's CWR, and for quick ACKs, as the sender's cwnd may be small; Not-ECT after ECT
    was seen is likely a retransmission: quick ACKs too."""
    if not tp.ecn_flags & TCP_ECN_OK:
        return
    field = dsfield & INET_ECN_MASK
    if field == INET_ECN_NOT_ECT:
        if tp.ecn_flags & TCP_ECN_SEEN:
            tcp_enter_quickack_mode(tcp, tp, QUICKACKS_ON_CE)
        return
    if field == INET_ECN_CE and not tp.ecn_flags & TCP_ECN_DEMAND_CWR:
        tcp_enter_quickack_mode(tcp, tp, QUICKACKS_ON_CE)
        tp.ecn_flags |= TCP_ECN_DEMAND_CWR
    tp.ecn_flags |= TCP_ECN_SEEN


def tcp_ecn_accept_cwr(tp: TcpSock, seg) -> None:
    """tcp_ecn_accept_cwr() (tcp_ack, an ACK not older than snd_una): the peer's CWR ends our
    ECE; if it came with data, that is ACKed at once, the peer's cwnd may be very low.
    Linux takes CWR on pure ACKs too (RFC 3168 wants it on data only)."""
    if tp.ecn_flags & TCP_ECN_OK and seg.th.cwr:
        tp.ecn_flags &= ~TCP_ECN_DEMAND_CWR
        if seg.seq != seg.end_seq:
            tp.ack_now = True  # ICSK_ACK_NOW


def tcp_ecn_rcv_ecn_echo(tp: TcpSock, th: TcpHdr) -> bool:
    """tcp_ecn_rcv_ecn_echo(): FLAG_ECE, an ECN echo from the peer (never on a SYN)."""
    return th.ece and not th.syn and bool(tp.ecn_flags & TCP_ECN_OK)


def tcp_ecn_queue_cwr(tp: TcpSock) -> None:
    """tcp_ecn_queue_cwr(): cwnd was reduced (ECE, a loss, a timeout): CWR on the next new data."""
    if tp.ecn_flags & TCP_ECN_OK:
        tp.ecn_flags |= TCP_ECN_QUEUE_CWR


# -- the CWR state ---------------------------------------------------------------------------
def tcp_init_cwnd_reduction(tp: TcpSock) -> None:
    """tcp_init_cwnd_reduction(): ssthresh from the congestion control, PRR's counts from
    zero, until snd_nxt as it is now is acknowledged (high_seq); CWR owed to the peer."""
    tp.high_seq = tp.snd_nxt
    tp.cwnd_cnt = 0
    tp.prior_cwnd = tp.cwnd
    tp.prr_delivered = tp.prr_out = 0
    tp.ssthresh = tp.ca.ssthresh(tp)
    tcp_ecn_queue_cwr(tp)


def tcp_enter_cwr(tcp, tp: TcpSock) -> None:
    """tcp_enter_cwr(): from Open or Disorder only, so once per window of data: a
    recovery, a timeout's loss state or a reduction under way already took cwnd down."""
    if tp.in_cwr or tp.in_recovery or tp.lost_out:
        return
    tcp_init_cwnd_reduction(tp)
    tp.in_cwr = True


def tcp_cwnd_reduction(tp: TcpSock, newly_acked_sacked: int, snd_una_advanced: bool) -> None:
    """tcp_cwnd_reduction() (PRR, RFC 6937): while more than ssthresh is in flight, send
    ssthresh/prior_cwnd of what is delivered, spreading the reduction over an RTT; below
    it, as much as is delivered, one more on an ACK that moves snd_una, up to ssthresh."""
    if newly_acked_sacked <= 0 or not tp.prior_cwnd:
        return
    in_flight = tp.packets_out - tp.lost_out - tp.sacked_out
    tp.prr_delivered += newly_acked_sacked
    delta = tp.ssthresh - in_flight
    if delta < 0:
        sndcnt = (tp.ssthresh * tp.prr_delivered + tp.prior_cwnd - 1) // tp.prior_cwnd - tp.prr_out
    else:
        sndcnt = max(tp.prr_delivered - tp.prr_out, newly_acked_sacked)
        if snd_una_advanced:
            sndcnt += 1
        sndcnt = min(delta, sndcnt)
    sndcnt = max(sndcnt, 0 if tp.prr_out else 1)
    tp.cwnd = in_flight + sndcnt


def tcp_end_cwnd_reduction(tp: TcpSock) -> None:
    """tcp_end_cwnd_reduction(): the reduction is over: cwnd is ssthresh, the state Open."""
    if tp.ssthresh < TCP_INFINITE_SSTHRESH:
        tp.cwnd = tp.ssthresh
    tp.in_cwr = False


def tcp_cwr_ack(tcp, tp: TcpSock, ece: bool, delivered: int, snd_una_advanced: bool) -> bool:
    """What an ACK (with something in flight before it) does in the Open and CWR states:
    tcp_fastretrans_alert ends CWR once the ACK is past high_seq, so that the CWR bit
    reached the peer, and enters it on an ECE (again, if the ECE came with the end); then
    tcp_cong_control's PRR sets cwnd while in CWR. Returns whether it did (cwnd may not
    grow then)."""
    if tp.in_cwr and after(tp.snd_una, tp.high_seq):
        tcp_end_cwnd_reduction(tp)
    if ece:
        tcp_enter_cwr(tcp, tp)
    if not tp.in_cwr:
        return False
    tcp_cwnd_reduction(tp, delivered, snd_una_advanced)
    return True
