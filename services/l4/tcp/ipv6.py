"""What TCP over IPv6 has of its own: net/ipv6/tcp_ipv6.c's tcp_v6_send_reset, tcp_v6_err and
tcp_v6_mtu_reduced, with tcp_output.c's tcp_mtu_to_mss / tcp_sync_mss and tcp_input.c's
tcp_simple_retransmit that path MTU discovery needs. The state machine, the tables, tcp_v6_rcv
and tcp_v6_connect are the engine's (tcp/ipv4.py), which both families share, as in Linux.

Seen on Linux 6.18 between namespaces (python sockets, tcpdump, nstat):
- over a 1500-byte link a SYN announces MSS 1440 (1500 - 40 - 20), data segments carry 1428
  bytes with timestamps; the SYN's window is 64800 (45 segments of 1440), the SYN-ACK's 64260;
- a SYN to a closed port is answered with RST|ACK, seq 0, ack the SYN's seq + 1, its traffic
  class the SYN's without the ECN bits, counting TcpOutSegs and TcpOutRsts;
- a Packet Too Big of 1280 from a router lowers the connection's MSS to 1208 (1280 - 60 - 12),
  getsockopt(TCP_MAXSEG) says so, the segments in flight go again at that size (TcpRetransSegs)
  and the route keeps the path MTU (ip -6 route show cache: mtu 1280);
- Destination Unreachable for a SYN ends the connect: administratively prohibited EACCES, no
  route ENETUNREACH (TcpAttemptFails); on an established connection no route is a soft error:
  the connection goes on, SO_ERROR reports ENETUNREACH once (sk_err_soft);
- IPV6_UNICAST_HOPS and IPV6_TCLASS (np->hop_limit, np->tclass) go into every segment the socket
  sends (ip6_xmit; output._flow builds the flowi6), from the next one on when set on a connection;
  a listener's into its SYN-ACKs and the connections it accepts; IPV6_TCLASS 0xb9 reads back 0xb8,
  the ECN field being TCP's (ECT(0) on new data, getsockopt showing the last segment's); a timewait
  sock (an orphan's FIN_WAIT2 too) answers with the route's hop limit and the DSCP alone.
"""

from pktpath import skbuff as s
from pktpath.flow import Flowi6
from pktpath.pb import skbuff_pb2
from pktpath.services.l4.tcp import output
from pktpath.services.l4.tcp.sock import TCP_MSS_DEFAULT, TcpSock, TcpState
from pktpath.services.l4.udp6 import ipv6_addr_needs_scope_id as needs_scope
from pktpath.wire.addr import ipv6_addr_is_multicast
from pktpath.wire.icmpv6 import ICMPV6_DEST_UNREACH, ICMPV6_HLEN, ICMPV6_NOROUTE, ICMPV6_PKT_TOOBIG
from pktpath.wire.ipv6 import IPV6_HLEN, IPV6_MIN_MTU
from pktpath.wire.tcp import TCPHDR_ACK, TCPHDR_FIN, TCPHDR_RST, TCPHDR_SYN, TcpHdr

pb = skbuff_pb2
L4 = output.L4
TCP, TCPEXT = output.TCP, output.TCPEXT
AF_INET6 = 10
TCP_HLEN = 20                        # sizeof(struct tcphdr)
IPV6_TCP_HLEN = IPV6_HLEN + TCP_HLEN  # what the MSS leaves of the path MTU over IPv6
TCPOLEN_TSTAMP_ALIGNED = 12
TCP_MIN_SND_MSS = 48                 # net.ipv4.tcp_min_snd_mss
INET_ECN_MASK = 3
_MOD = 1 << 32


def between(seq1: int, seq2: int, seq3: int) -> bool:
    """between(): seq2 <= seq1 <= seq3, modulo 2^32."""
    return (seq3 - seq2) % _MOD >= (seq1 - seq2) % _MOD


def tcp_v6_send_reset(tcp, saddr: int, daddr: int, th: TcpHdr, seg_len: int, dsfield: int, dev: str) -> None:
    """tcp_v6_send_reset() → tcp_v6_send_response(): the RST answering a segment no socket
    wants, as tcp_v4_send_reset builds it (our seq the segment's ACK, or seq 0 and an ACK of what
    it occupied), from the host's control socket: never in answer to an RST, nor to a multicast
    destination (ipv6_unicast_destination); its traffic class the segment's without the ECN
    field (ipv6_get_dsfield & ~INET_ECN_MASK), the device the segment came in on for a
    link-local peer (tcp_v6_iif). saddr/daddr are the segment's."""
    if th.flags & TCPHDR_RST or ipv6_addr_is_multicast(daddr):
        return
    if th.flags & TCPHDR_ACK:
        seq, ack_seq, flags = th.ack_seq, 0, TCPHDR_RST
    else:
        occupied = seg_len + (1 if th.flags & TCPHDR_SYN else 0) + (1 if th.flags & TCPHDR_FIN else 0)
        seq, ack_seq, flags = 0, (th.seq + occupied) % _MOD, TCPHDR_RST | TCPHDR_ACK
    skb = s.alloc_skb(output.MAX_TCP_HEADER, origin_host=tcp.host, sampled=False)
    s.skb_reserve(skb, output.MAX_TCP_HEADER)
    header = TcpHdr(th.dest, th.source, seq, ack_seq, 0, flags, 0).to_bytes(b"", daddr, saddr)
    s.skb_push_data(skb, header)
    s.skb_reset_transport_header(skb)
    skb.cb = Flowi6(saddr, th.source, tclass=dsfield & ~INET_ECN_MASK & 0xFF,
                           scope_id=tcp.scope_id(dev) if needs_scope(saddr) else 0, saddr=daddr).pack()
    skb.record(s.EXIT, L4, tcp.host, "tcp_v6_send_reset")
    tcp.mib.inc(TCP, "OutSegs")
    tcp.mib.inc(TCP, "OutRsts")
    tcp.out_segs6.append(skb)


# -- path MTU ------------------------------------------------------------------------------------
def tcp_mtu_to_mss(tp: TcpSock, pmtu: int) -> int:
    """tcp_mtu_to_mss(): the data a segment may carry on a path of pmtu: less the IP header
    (icsk_af_ops->net_header_len: 40 over IPv6, 20 over IPv4) and TCP's, at most the peer's MSS
    (rx_opt.mss_clamp, TCP_MAXSEG's if smaller), at least tcp_min_snd_mss, less the timestamps."""
    mss = pmtu - (IPV6_HLEN if tp.v6 else 20) - TCP_HLEN
    clamp = min(tp.rx_opt_mss, tp.user_mss) if tp.user_mss else tp.rx_opt_mss
    mss = max(min(mss, clamp), TCP_MIN_SND_MSS)
    return mss - (TCPOLEN_TSTAMP_ALIGNED if tp.tstamp_ok else 0)


def tcp_bound_to_half_wnd(tp: TcpSock, pktsize: int) -> int:
    """tcp_bound_to_half_wnd(): no segment larger than half the largest window the peer offered."""
    cutoff = tp.max_window >> 1 if tp.max_window > TCP_MSS_DEFAULT else tp.max_window
    if cutoff and pktsize > cutoff:
        return max(cutoff, 68 - TCP_HLEN - (TCPOLEN_TSTAMP_ALIGNED if tp.tstamp_ok else 0))
    return pktsize


def tcp_sync_mss(tp: TcpSock, pmtu: int) -> int:
    """tcp_sync_mss(): mss_cache for a path MTU, which the socket remembers (icsk_pmtu_cookie)."""
    mss = tcp_bound_to_half_wnd(tp, tcp_mtu_to_mss(tp, pmtu))
    tp.pmtu = pmtu
    tp.mss_cache = mss
    return mss


def tcp_simple_retransmit(tcp, tp: TcpSock) -> None:
    """tcp_simple_retransmit(): after the MSS came down, every segment sent larger (one of a GSO
    skb is the old MSS) is marked lost, unless SACKed, and sent again at once, cut to the new MSS;
    the congestion window is left as it is (the units changed, not the path's load): Loss state
    (tcp_non_congestion_loss_retransmit) with ssthresh at least 3/4 of cwnd (tcp_current_ssthresh)."""
    mss = tp.mss_cache
    for seg in tp.rtx_queue:
        if not seg.sacked and (seg.pcount > 1 or seg.len > mss):
            tp.mark_lost(seg)
    if not tp.lost_out:
        return
    if not tp.retransmits:  # not in TCP_CA_Loss yet (an RTO's)
        tp.high_seq = tp.snd_nxt
        tp.ssthresh = output.tcp_current_ssthresh(tp)
    output.tcp_xmit_retransmit_queue(tcp, tp)


def tcp_v6_mtu_reduced(tcp, tp: TcpSock, mtu: int) -> None:
    """tcp_v6_mtu_reduced(): a Packet Too Big's MTU that would lower the MSS (a request to raise
    it is dropped) becomes the route's path MTU (inet6_csk_update_pmtu: L3 learned it already,
    never below 1280 nor above what it was), and if that is below what the socket last synced to,
    the MSS follows it (tcp_sync_mss) and what was sent too large goes again (tcp_simple_retransmit)."""
    if tp.state in (TcpState.LISTEN, TcpState.CLOSE):
        return
    if tcp_mtu_to_mss(tp, mtu) >= tp.mss_cache:
        return
    dmtu = min(mtu, tp.pmtu) if tp.pmtu else mtu
    if not tp.pmtu or tp.pmtu > dmtu:
        tcp_sync_mss(tp, dmtu)
        tcp_simple_retransmit(tcp, tp)


# -- ICMPv6 errors -------------------------------------------------------------------------------
def tcp_v6_err(tcp, items: list, icmpv6_err_convert) -> tuple[int, int]:
    """tcp_v6_err() for ICMPv6 errors quoting our TCP segments: items are (skb at the ICMPv6
    header, type, code, info, offset of the TCP header from the quoted IPv6 header); every skb is
    consumed. icmpv6_err_convert(type, code) -> (errno, fatal). Returns (taken by a socket or a
    request, matched none: Icmp6InErrors).

    The connection is looked up by the quoted 4-tuple (__inet6_lookup_established); TIME_WAIT
    and closed sockets ignore it; a request sock (TCP_NEW_SYN_RECV) is dropped on a hard error
    quoting its SYN-ACK (tcp_req_err: ListenDrops; another seq OutOfWindowIcmps). A quoted seq
    outside snd_una..snd_nxt is stale (OutOfWindowIcmps). Packet Too Big goes to
    tcp_v6_mtu_reduced (1280 and up). Else in SYN_SENT or SYN_RECV the connection ends with the
    error (tcp_done_with_error); on an established one it is soft (sk_err_soft): the socket
    layer reports it at once only with IPV6_RECVERR, else SO_ERROR shows it, and it stands in for
    ETIMEDOUT should the connection time out (tcp_write_err). Linux's backoff revert on no route
    (tcp_ld_RTO_revert, RFC 6069) is not in pktpath: counted Unmodelled."""
    taken = unmatched = 0
    for skb, type_, code, info, offset in items:
        if _tcp_v6_err_one(tcp, skb, type_, code, info, offset, icmpv6_err_convert):
            taken += 1
        else:
            unmatched += 1
        s.consume_skb(skb, L4, tcp.host, "tcp_v6_err")
    return taken, unmatched


def _tcp_v6_err_one(tcp, skb, type_: int, code: int, info: int, offset: int, icmpv6_err_convert) -> bool:
    inner = skb.payload()[ICMPV6_HLEN:]
    if len(inner) < IPV6_HLEN or offset + 8 > len(inner):
        tcp.mib.inc("Icmp6", "InErrors")
        return False
    ours = int.from_bytes(inner[8:24], "big")
    peer = int.from_bytes(inner[24:40], "big")
    sport, dport = int.from_bytes(inner[offset:offset + 2], "big"), int.from_bytes(inner[offset + 2:offset + 4], "big")
    seq = int.from_bytes(inner[offset + 4:offset + 8], "big")
    err, fatal = icmpv6_err_convert(type_, code)
    tp = tcp.lookup_established(ours, sport, peer, dport, True)
    if tp is None:
        return _tcp_req_err(tcp, ours, sport, peer, dport, seq, fatal)
    if tp.state in (TcpState.TIME_WAIT, TcpState.CLOSE):
        return True
    if not between(seq, tp.snd_una, tp.snd_nxt):
        tcp.mib.inc(TCPEXT, "OutOfWindowIcmps")
        return True
    if type_ == ICMPV6_PKT_TOOBIG:
        if info >= IPV6_MIN_MTU:  # ip6_sk_accept_pmtu: a socket's default IPV6_PMTUDISC_WANT takes it
            tcp_v6_mtu_reduced(tcp, tp, info)
        return True
    if tp.state in (TcpState.SYN_SENT, TcpState.SYN_RECV):
        tcp.done(tp, err)  # tcp_done_with_error()
        return True
    if type_ == ICMPV6_DEST_UNREACH and code == ICMPV6_NOROUTE and tp.backoff:
        tcp.unmodelled("tcp_ld_RTO_revert")
    tp.err_soft = err
    offender = int.from_bytes(bytes(skb.buf[skb.network_header + 8:skb.network_header + 24]), "big")
    tcp.out_errs.append((tp.sk, err, False, offender, type_, code, info, AF_INET6))
    return True


def _tcp_req_err(tcp, ours: int, sport: int, peer: int, dport: int, seq: int, fatal: bool) -> bool:
    """tcp_req_err(): an error quoting a SYN-ACK of a request sock; none: Icmp6InErrors."""
    for listener in tcp.listeners():
        if listener.sport != sport:
            continue
        req = listener.syn_queue.get((peer, dport, True))
        if req is None or req.saddr != ours:
            continue
        if seq != req.iss:
            tcp.mib.inc(TCPEXT, "OutOfWindowIcmps")
        elif fatal:
            del listener.syn_queue[peer, dport, True]  # inet_csk_reqsk_queue_drop
            tcp.mib.inc(TCPEXT, "ListenDrops")
        return True
    tcp.mib.inc("Icmp6", "InErrors")
    return False
