"""struct tcp_sock and what hangs off it: the eleven states, sequence arithmetic,
the segments on the write and retransmit queues, the RTT estimator.

Models include/net/tcp_states.h, include/linux/tcp.h (struct tcp_sock),
include/net/tcp.h (before/after, TCP_SKB_CB's seq/end_seq, the timer constants)
and tcp_rtt_estimator/__tcp_set_rto (net/ipv4/tcp_input.c).
"""

import enum
from collections import deque
from dataclasses import dataclass, field

from pktpath.sysctl import KNOBS


# include/net/tcp_states.h
class TcpState(enum.IntEnum):
    ESTABLISHED = 1
    SYN_SENT = 2
    SYN_RECV = 3
    FIN_WAIT1 = 4
    FIN_WAIT2 = 5
    TIME_WAIT = 6
    CLOSE = 7
    CLOSE_WAIT = 8
    LAST_ACK = 9
    LISTEN = 10
    CLOSING = 11


# How `ss` prints them.
SS_NAMES = {
    TcpState.ESTABLISHED: "ESTAB", TcpState.SYN_SENT: "SYN-SENT", TcpState.SYN_RECV: "SYN-RECV",
    TcpState.FIN_WAIT1: "FIN-WAIT-1", TcpState.FIN_WAIT2: "FIN-WAIT-2", TcpState.TIME_WAIT: "TIME-WAIT",
    TcpState.CLOSE: "UNCONN", TcpState.CLOSE_WAIT: "CLOSE-WAIT", TcpState.LAST_ACK: "LAST-ACK",
    TcpState.LISTEN: "LISTEN", TcpState.CLOSING: "CLOSING",
}

# Timers and limits, in seconds where they are times (include/net/tcp.h, the sysctl defaults).
TCP_TIMEOUT_INIT = 1.0      # the RTO before any RTT sample (RFC 6298)
TCP_RTO_MIN = 0.2
TCP_RTO_MAX = 120.0
TCP_DELACK_MIN = 0.04       # the delayed-ACK timer
TCP_DELACK_MAX = 0.2        # the longest a peer may delay its ACK
TCP_TIMEOUT_MIN = 0.002     # two jiffies: the shortest timer
TCP_INVALID_RATELIMIT = 0.5 # tcp_invalid_ratelimit: at most one challenge or out-of-window ACK per socket in it
TCP_TIMEWAIT_LEN = 60.0     # 2 MSL; an engine may be given a shorter one
TCP_INIT_CWND = 10          # segments (RFC 6928)
TCP_MSS_DEFAULT = 536       # the peer's MSS when its SYN has none (RFC 9293)
TCP_MAX_QUICKACKS = 16      # segments acknowledged at once while the connection starts
TCP_MAX_WSCALE = 14
# Linux's tcp_rmem (net.ipv4 sysctls: pktpath.sysctl): a socket's SO_RCVBUF, and what the window scale is
# chosen for
_, TCP_RMEM_DEFAULT, TCP_RMEM_MAX = KNOBS["net.ipv4.tcp_rmem"].linux
TCP_HEADER_LEN = 20         # plus options

_MOD = 1 << 32


def before(seq1: int, seq2: int) -> bool:
    """before(): seq1 comes before seq2, modulo 2^32 ((s32)(seq1 - seq2) < 0)."""
    return (seq1 - seq2) % _MOD > 0x7FFFFFFF


def after(seq1: int, seq2: int) -> bool:
    return before(seq2, seq1)


def seq_add(seq: int, n: int) -> int:
    return (seq + n) % _MOD


def seq_diff(later: int, earlier: int) -> int:
    """How far `later` is past `earlier` (mod 2^32; negative when it is before)."""
    d = (later - earlier) % _MOD
    return d - _MOD if d > 0x7FFFFFFF else d


@dataclass(eq=False)
class Seg:
    """An skb on the write or retransmit queue with its TCP_SKB_CB: the sequence
    space it covers (SYN and FIN count one each), its flags, and when it went out."""
    skb: object                # the original: kept until acknowledged, a clone goes out
    seq: int
    end_seq: int
    flags: int = 0             # TCPHDR_SYN / TCPHDR_FIN besides the data; TCPHDR_PSH: a write ends here
    sent_at: float = 0.0       # the last transmission
    retrans: int = 0           # how often it was retransmitted (Karn: no RTT sample then)
    lost: bool = False         # marked lost (a timeout, or SACKs above it), not retransmitted since
    sacked: bool = False       # the peer has it (a SACK block covered it)
    resent_in: int = 0         # the recovery (TcpSock.recovery) it was last retransmitted in
    pcount: int = 1            # tcp_skb_pcount(): the segments it is on the wire (a GSO skb: several)

    @property
    def len(self) -> int:
        return self.skb.len

    def set_tso_segs(self, mss: int) -> int:
        """tcp_set_skb_tso_segs(): how many segments of mss it makes; returns the change."""
        old, self.pcount = self.pcount, max(1, -(-self.skb.len // mss))
        return self.pcount - old


@dataclass
class RequestSock:
    """A connection a listener has answered with SYN-ACK (struct request_sock, the
    kernel's TCP_NEW_SYN_RECV minisock), waiting for the handshake's last ACK."""
    saddr: int               # ours
    sport: int
    daddr: int               # the peer's
    dport: int
    iss: int
    irs: int
    mss: int                 # the peer's, from its SYN
    snd_wnd: int             # the peer's window in its SYN (never scaled)
    snd_wscale: int = -1     # -1: the peer offered no window scaling
    sack_ok: bool = False
    ts_recent: int = -1      # the peer's TSval; -1: no timestamps
    ts_off: int = 0          # our TSval's offset for this peer (tcp_rsk(req)->ts_off)
    ecn_ok: bool = False     # the SYN asked for ECN and we agree (inet_rsk(req)->ecn_ok)
    retrans: int = 0
    expires: float = 0.0
    sent_at: float = 0.0     # the first SYN-ACK: its ACK gives the handshake's RTT
    v6: bool = False         # the SYN came over IPv6 (an AF_INET6 listener's: ireq->ir_v6_*); else IPv4
    advmss: int = 0          # the MSS our SYN-ACK announces (dst_metric_advmss of its route, clamped)
    pmtu: int = 0            # the path MTU of its route
    dev: str = ""            # ir_iif: the device a link-local peer's SYN came in on


@dataclass
class TcpSock:
    sk: int
    state: TcpState = TcpState.CLOSE
    saddr: int = 0
    sport: int = 0
    daddr: int = 0
    dport: int = 0
    parent: int = 0                   # the listener a passive open came from, until accepted
    # the family: sk_family as the user made the socket; v6 whether its segments go over IPv6
    # (icsk_af_ops ipv6_specific). An AF_INET6 socket with an IPv4 peer (ipv6_mapped) keeps
    # IPv4 addresses here, as inet_saddr/inet_daddr, and shows them ::ffff:a.b.c.d.
    family: int = 2                   # AF_INET; AF_INET6 (10)
    v6: bool = False
    ipv6only: bool = False            # IPV6_V6ONLY: an AF_INET6 listener that takes no IPv4
    dev: str = ""                     # sk_bound_dev_if: the device a link-local peer is on
    hop_limit: int = -1               # IPV6_UNICAST_HOPS (np->hop_limit); -1: the route's
    tclass: int = 0                   # IPV6_TCLASS (np->tclass) without the ECN field,
    tclass_ecn: int = 0               # which is TCP's: the last segment's (INET_ECN_xmit / _dontxmit)
    pmtu: int = 0                     # icsk_pmtu_cookie: the path MTU mss_cache was last synced to
    err_soft: int = 0                 # sk_err_soft: an ICMP error seen, reported if the connection times out

    # send sequence space (RFC 9293 3.3.1)
    iss: int = 0
    write_seq: int = 0                # the next byte the user's data will get
    snd_una: int = 0
    snd_nxt: int = 0
    snd_sml: int = 0                  # the end of the last segment sent short of an MSS (Minshall)
    snd_wnd: int = 0                  # the peer's window, scaled
    snd_wl1: int = 0
    snd_wl2: int = 0
    max_window: int = 0
    # receive sequence space
    irs: int = 0
    rcv_nxt: int = 0
    rcv_wup: int = 0                  # rcv_nxt when the window was last advertised
    rcv_wnd: int = 0                  # the window last advertised (bytes from rcv_wup)

    # options, as negotiated by the handshake
    mss_cache: int = TCP_MSS_DEFAULT  # what a segment carries at most
    advmss: int = TCP_MSS_DEFAULT     # what we announced: the route's MTU - 40
    rx_opt_mss: int = TCP_MSS_DEFAULT # the peer's MSS option
    snd_wscale: int = 0               # the peer's shift, applied to its windows
    rcv_wscale: int = 0               # ours, applied to the windows we send
    wscale_ok: bool = False
    sack_ok: bool = False
    tstamp_ok: bool = False
    ts_recent: int = 0                # the peer's last TSval, echoed in TSecr
    ts_off: int = 0                   # tsoffset: added to our TSval clock for this peer
    ecn_flags: int = 0                # TCP_ECN_* (ecn.py): RFC 3168 ECN agreed, CWR owed, ECE owed, ECT seen

    # buffers: the socket layer holds the receive queue and the user's buffer sizes
    rcvbuf: int = TCP_RMEM_DEFAULT
    rcvbuf_locked: bool = False       # set by SO_RCVBUF: no autotuning (SOCK_RCVBUF_LOCK)
    unread: int = 0                   # bytes delivered to the socket layer and not read yet
    user_copied: int = 0              # bytes the socket layer said the user read (copied_seq's advance)
    user_written: int = 0             # bytes of the user's writes that came down (taken or refused)
    rcvq_space: int = 0               # the most the user read in one RTT (tcp_rcv_space_adjust)
    rcvq_copied: int = 0              # read since rcvq_time
    rcvq_time: float = 0.0
    rcv_rtt: float = 0.0              # the receiver's RTT estimate (tcp_rcv_rtt_measure)
    rcv_rtt_seq: int = 0              # the window's end when the current sample began
    rcv_rtt_time: float = 0.0
    sndbuf_advised: int = 0           # the send buffer last suggested to the socket layer
    nodelay: bool = False
    # tp->nonagle's other bits, and the options that stay with the socket (do_tcp_setsockopt)
    cork: bool = False                # TCP_CORK (TCP_NAGLE_CORK): a segment short of an MSS waits
    nagle_push: bool = False          # TCP_NAGLE_PUSH: TCP_NODELAY set; what is queued goes past a cork
    user_mss: int = 0                 # TCP_MAXSEG (rx_opt.user_mss): caps the MSS a SYN announces; 0: none
    keepalive: bool = False           # SO_KEEPALIVE (SOCK_KEEPOPEN)
    keepalive_time: int = 0           # TCP_KEEPIDLE, TCP_KEEPINTVL (seconds), TCP_KEEPCNT; 0: the sysctl's
    keepalive_intvl: int = 0
    keepalive_probes: int = 0
    rcv_tstamp: float = 0.0           # when an ACK last came (tcp_ack): keepalive's idle time starts there
    lrcvtime: float = 0.0             # when data last came (icsk_ack.lrcvtime), or the connection began
    shutdown_rd: bool = False         # the user can read no more: data arriving aborts an orphan
    orphan: bool = False              # closed by the user; the protocol finishes on its own
    fin_queued: bool = False

    # queues
    write_queue: deque = field(default_factory=deque)  # Segs not sent yet
    rtx_queue: deque = field(default_factory=deque)    # Segs sent, not acknowledged
    ofo_queue: dict = field(default_factory=dict)       # seq -> (end_seq, skb, fin): out of order
    ofo_last: int = 0                 # the seq of the out-of-order segment that came last

    # RTT and retransmission (RFC 6298)
    srtt: float = 0.0
    rttvar: float = 0.0
    rto: float = TCP_TIMEOUT_INIT
    backoff: int = 0
    retransmits: int = 0              # consecutive RTO expiries (icsk_retransmits)
    wstamp: float = 0.0               # when the last segment went out (tcp_wstamp_ns: with pacing, when the next may)

    # the queues below L4: TCP Small Queues and pacing
    wmem_alloc: int = 0               # sk_wmem_alloc: truesize of this socket's skbs sent, not yet freed
    tsq_throttled: bool = False       # TSQ_THROTTLED: tcp_write_xmit stopped for them; a free resumes it
    pacing_fq: bool = False           # sk_pacing_status == SK_PACING_FQ: an fq qdisc paces by skb->tstamp
    data_segs_out: int = 0            # tcpi_data_segs_out: data segments sent, retransmissions too
    total_retrans: int = 0            # tcpi_total_retrans: segments sent again (__tcp_retransmit_skb)
    rcv_ooopack: int = 0              # tcpi_rcv_ooopack: segments queued out of order (tcp_data_queue_ofo)

    # congestion control
    cwnd: int = TCP_INIT_CWND
    ssthresh: int = 0x7FFFFFFF        # TCP_INFINITE_SSTHRESH
    cwnd_cnt: int = 0
    ca: object = None                 # the congestion-control state (cong.py)
    cwnd_limited: bool = False        # cwnd was what held the sender back in this window (is_cwnd_limited)
    max_packets_out: int = 0          # the most segments out in this window (tcp_cwnd_validate)
    cwnd_usage_seq: int = 0           # snd_nxt when that window began
    lsndtime: float = 0.0             # when data last went out (tcp_event_data_sent): where an idle time starts
    snd_cwnd_stamp: float = 0.0       # when cwnd was last used in full or set anew (RFC 2861's validation)
    snd_cwnd_used: int = 0            # the most segments out since, while the application left cwnd unused
    dupacks: int = 0
    packets_out: int = 0              # segments on the retransmit queue (a GSO skb counts its pcount)
    lost_out: int = 0                 # of those, marked lost
    sacked_out: int = 0               # of those, SACKed by the peer
    high_seq: int = 0                 # snd_nxt when recovery began (NewReno's "recover")
    in_recovery: bool = False
    in_cwr: bool = False              # TCP_CA_CWR: cwnd reduced for an ECN echo, until high_seq is acknowledged
    prior_cwnd: int = 0               # PRR (RFC 6937): cwnd when the reduction began,
    prr_delivered: int = 0            # segments delivered since,
    prr_out: int = 0                  # and sent since
    delivered_ce: int = 0             # segments the peer acknowledged with ECE (tcpi_delivered_ce)
    frto: bool = False                # an RTO with tcp_frto on: the next ACK is F-RTO's, which pktpath lacks
    frto_high: int = 0                # snd_nxt at that RTO (tcp_enter_loss's high_seq)
    dsack: tuple[int, int] | None = None  # rx_opt.dsack, duplicate_sack[0]: a D-SACK for the next segment out
    recovery: int = 0                 # counts recoveries: a segment resent in this one is not lost again
    rack_mstamp: float = 0.0          # RACK: when the most recently sent of the delivered segments went out
    min_rtt: float = 0.0              # the smallest RTT sample (RACK's reordering window is a quarter)

    # delayed ACK and probes
    ack_pending: bool = False
    ack_now: bool = False             # the pending ACK may not wait (ICSK_ACK_NOW): a duplicate, a FIN
    quickack: int = TCP_MAX_QUICKACKS
    pingpong: bool = False            # interactive (the peer's FIN came): no quick ACKs (inet_csk_in_pingpong_mode)
    rcv_mss: int = TCP_MSS_DEFAULT    # the peer's segment size as seen (icsk_ack.rcv_mss): "a full segment"
    last_seg_size: int = 0            # the last short segment's size, header included (icsk_ack.last_seg_size)
    ack_pushed: int = 0               # ICSK_ACK_PUSHED (1) / PUSHED2 (2): a read that empties the queue ACKs
    ato: float = 0.0                  # the delayed-ACK timeout: 0 until data first arrives (icsk_ack.ato)
    last_oow_ack_time: float = 0.0    # when the last challenge or out-of-window ACK went (0: never)
    probes_out: int = 0

    # timers: when each fires (0: not armed)
    rto_at: float = 0.0
    delack_at: float = 0.0
    probe_at: float = 0.0
    tlp_at: float = 0.0               # the tail loss probe (ICSK_TIME_LOSS_PROBE)
    tlp_out: bool = False             # a probe went and nothing new was acknowledged since
    close_at: float = 0.0             # TIME_WAIT's end, or an orphan's FIN_WAIT2 timeout
    keepalive_at: float = 0.0         # the keepalive timer (icsk_keepalive_timer)

    # a listener's queues
    backlog: int = 0
    syn_queue: dict = field(default_factory=dict)     # (daddr, dport) -> RequestSock
    accept_queue: deque = field(default_factory=deque)  # child sks, established

    def adjust_pcount(self, seg: Seg, delta: int) -> None:
        """tcp_adjust_pcount(): a queued segment's pcount changed by delta (split, trimmed)."""
        self.packets_out += delta
        if seg.lost:
            self.lost_out += delta
        if seg.sacked:
            self.sacked_out += delta

    def mark_lost(self, seg: Seg) -> None:
        """tcp_mark_skb_lost()."""
        if not seg.lost:
            seg.lost = True
            self.lost_out += seg.pcount

    def bytes_in_flight(self) -> int:
        return seq_diff(self.snd_nxt, self.snd_una)

    def send_queue_bytes(self) -> int:
        """What `ss` shows as Send-Q: sent and unacknowledged plus not yet sent."""
        return sum(seg.len for seg in self.rtx_queue) + sum(seg.len for seg in self.write_queue)

    def rtt_sample(self, rtt: float) -> None:
        """tcp_rtt_estimator + __tcp_set_rto (RFC 6298 2.2–2.3), the variance floored at
        TCP_RTO_MIN as the kernel floors mdev (so rto >= srtt + 200 ms)."""
        self.min_rtt = rtt if not self.min_rtt else min(self.min_rtt, rtt)
        if self.srtt == 0.0:
            self.srtt, self.rttvar = rtt, rtt / 2
        else:
            self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - rtt)
            self.srtt = 0.875 * self.srtt + 0.125 * rtt
        self.rto = min(TCP_RTO_MAX, self.srtt + max(4 * self.rttvar, TCP_RTO_MIN))
