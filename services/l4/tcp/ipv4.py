"""TCP on one host: the socket tables, tcp_v4_rcv and tcp_v6_rcv, the listener's side
of the handshake, TIME_WAIT, and the calls the socket layer makes.

Models net/ipv4/tcp_ipv4.c (tcp_v4_rcv, the established and listening
lookups, tcp_v4_send_reset, tcp_v4_connect), tcp_minisocks.c (tcp_check_req,
tcp_timewait_state_process), inet_connection_sock.c's queues (the SYN queue of
request socks and the accept queue, with ListenOverflows/ListenDrops), and
net/ipv4/tcp.c's tcp_sendmsg, tcp_recvmsg's window update (tcp_cleanup_rbuf),
tcp_shutdown and tcp_close; tcp_set_state keeps CurrEstab and EstabResets.

Both families, as Linux's one state machine carries both: what is IPv6's own
(net/ipv6/tcp_ipv6.c: tcp_v6_send_reset, tcp_v6_err, tcp_v6_mtu_reduced) is in
tcp/ipv6.py, and the engine takes it where tcp_ipv6.c's hooks are. A socket's
`family` is the user's (sk_family), `v6` whether its segments go over IPv6
(icsk_af_ops: ipv6_specific, or ipv6_mapped for an AF_INET6 socket with an IPv4
peer, whose addresses stay IPv4 here and go up as ::ffff:a.b.c.d). The tables hold
both: tcp_v6_rcv looks up IPv6 4-tuples (__inet6_lookup_established,
inet6_lookup_listener), an IPv4 segment may find an AF_INET6 listener on :: that is
not IPV6_V6ONLY, or on its v4-mapped address (__inet_lookup_listener).

The engine is pure logic. IPv4 below (`ip_queue_xmit`, taking skbs with a
flowi4 in skb->cb, and `route_output`), IPv6 below (`ip6_xmit`, taking skbs
with a pktpath.flow.Flowi6 in skb->cb, and `route_output6`), the socket layer above (`to_sock`,
taking an ordered list of TcpEvents: data for the receive queue, end of file,
connection established, a child to accept, an error, bytes acknowledged, the
protocol done with the socket) and the clock are given to it. Each call takes
one lock (the socket lock's role) and hands what it produced on after letting
it go, in order.
"""

import errno
import hashlib
import os
import threading
import time
from itertools import count
from typing import Callable, NamedTuple

from pktpath import skbuff as s
from pktpath.counters import Mib
from pktpath.flow import TcpChild
from pktpath.offload import CHECKSUM_PARTIAL, CHECKSUM_UNNECESSARY, tcp_xmit_size_goal
from pktpath.pb import skbuff_pb2
from pktpath.services.l4.tcp import input as tcp_input
from pktpath.services.l4.tcp import ecn, output, timer
from pktpath.services.l4.tcp import ipv6 as tcp_ipv6
from pktpath.services.l4.tcp.cong import CONGESTION_CONTROL, DEFAULT_CONGESTION_CONTROL
from pktpath.services.l4.tcp.sock import (
    TCP_DELACK_MIN, TCP_MAX_WSCALE, TCP_MSS_DEFAULT, TCP_RMEM_MAX, TCP_TIMEOUT_INIT, TCP_TIMEWAIT_LEN, RequestSock, Seg,
    TcpSock, TcpState, after, seq_add, seq_diff,
)
from pktpath.services.l4.udp import ip_addrs
from pktpath.services.l4.udp6 import ip6_addrs, is_ipv6
from pktpath.sysctl import Sysctls
from pktpath.wire import ChecksumError, TcpHdr, WireError
from pktpath.wire.addr import ipv6_addr_is_multicast, ipv6_addr_set_v4mapped, ipv6_addr_v4mapped
from pktpath.wire.tcp import TCPHDR_FIN, TCPHDR_PSH, TCPHDR_SYN, TcpOptTimestamp, TcpOptUnknown

# RFC 7413's option, and its experimental form (kind 254, magic 0xF989) Linux also reads;
# tcp_fastopen's TFO_SERVER_ENABLE bit
TCPOPT_FASTOPEN, TCPOPT_EXP, TCPOPT_FASTOPEN_MAGIC, TFO_SERVER_ENABLE = 34, 254, b"\xf9\x89", 0x2


def _is_fastopen(opt) -> bool:
    return type(opt) is TcpOptUnknown and (opt.kind == TCPOPT_FASTOPEN or opt.kind == TCPOPT_EXP
                                           and opt.data[:2] == TCPOPT_FASTOPEN_MAGIC)


pb = skbuff_pb2
L4 = output.L4
AF_INET, AF_INET6 = 2, 10
MTU_DEFAULT = 1500  # a listener's path MTU before any route says otherwise (ETH_DATA_LEN)
TCP, TCPEXT = output.TCP, output.TCPEXT
CHILD_SK_BASE = 1 << 40  # sk ids of accepted connections: the engine makes them, the socket layer the rest
SHUT_RD, SHUT_WR, SHUT_RDWR = 0, 1, 2
TCP_MAXSEG, TCP_QUICKACK = 2, 12  # include/uapi/linux/tcp.h: the getsockopts the tcp_sock answers
IPPROTO_TCP, IPPROTO_IPV6, IPV6_TCLASS = 6, 41, 67  # and IPV6_TCLASS at level IPPROTO_IPV6 (linux/in6.h)
# what a child socket takes from its listener (sk_clone_lock copies the tcp_sock)
_INHERITED = ("cork", "nagle_push", "user_mss", "keepalive", "keepalive_time", "keepalive_intvl", "keepalive_probes",
              "pingpong", "hop_limit", "tclass")  # the last two: the clone's ipv6_pinfo (tcp_v6_syn_recv_sock)


class TcpEvent(NamedTuple):
    kind: str            # data | eof | established | accept | error | acked | sndbuf | closed
    sk: int
    value: int = 0       # established: the MSS; error: the errno; acked: bytes; sndbuf: bytes
    skb: object = None   # data: in-order payload for the receive queue
    child: TcpChild | None = None


def tcp_select_initial_window(rcvbuf: int, rmem_max: int = TCP_RMEM_MAX) -> int:
    """tcp_select_initial_window(): the smallest window scale that can announce the
    largest receive buffer the socket may grow to (tcp_rmem[2]); one the user fixed with
    SO_RCVBUF (rcvbuf, else 0) clamps the window to its full space, half of it
    (tcp_connect_init / tcp_openreq_init_rwin: window_clamp = tcp_full_space())."""
    space, wscale = max(rmem_max, rcvbuf), 0
    if rcvbuf:
        space = min(space, rcvbuf // 2)
    while space > 0xFFFF and wscale < TCP_MAX_WSCALE:
        space >>= 1
        wscale += 1
    return wscale


def tcp_rcv_space_adjust(tp: TcpSock, copied: int, now: float, rmem_max: int = TCP_RMEM_MAX) -> None:
    """tcp_rcv_space_adjust() (dynamic right-sizing): once per RTT, if the reader took more
    than ever in one RTT, grow the receive buffer to twice that window's worth, up to
    tcp_rmem[2], so the window never holds the sender back (unless SO_RCVBUF was set)."""
    tp.rcvq_copied += copied
    rtt = tp.rcv_rtt or tp.srtt
    if not rtt or now - tp.rcvq_time < rtt:
        return
    if tp.rcvq_copied > tp.rcvq_space:
        tp.rcvq_space = tp.rcvq_copied
        if not tp.rcvbuf_locked:
            rcvwin = 2 * tp.rcvq_copied + 16 * tp.advmss
            tp.rcvbuf = min(max(tp.rcvbuf, 2 * rcvwin), rmem_max)  # half of it is window
    tp.rcvq_copied, tp.rcvq_time = 0, now


def user_addr(tp, addr: int) -> int:
    """An address of tp as its user sees it: an AF_INET6 socket's IPv4 one (ipv6_mapped) as
    ::ffff:a.b.c.d (sk_v6_rcv_saddr, sk_v6_daddr)."""
    return ipv6_addr_set_v4mapped(addr) if tp.family == AF_INET6 and not tp.v6 else addr


def _listen_addr(tp: TcpSock, v6: bool) -> int | None:
    """The address a listener takes segments of a family for (0: any), None if none: an IPv4
    segment an AF_INET one's, or an AF_INET6 one's on :: unless IPV6_V6ONLY, or on its
    v4-mapped address; an IPv6 segment an AF_INET6 one's not on a v4-mapped address."""
    if tp.family == AF_INET:
        return None if v6 else tp.saddr
    if ipv6_addr_v4mapped(tp.saddr):
        return None if v6 else tp.saddr & 0xFFFFFFFF
    if v6:
        return tp.saddr
    return None if tp.saddr or tp.ipv6only else 0


def _key(tp: TcpSock) -> tuple:
    """The ehash key: the 4-tuple and its family (an IPv6 address may read as an IPv4 one)."""
    return tp.saddr, tp.sport, tp.daddr, tp.dport, tp.v6


def _fn(name: str, v6: bool) -> str:
    """A kernel function's name for the family: tcp_v4_rcv's IPv6 twin is tcp_v6_rcv."""
    return name.replace("_v4_", "_v6_") if v6 else name


class Tcp:
    def __init__(self, host: str, *, mib: Mib, ip_queue_xmit: Callable[[list], object],
                 to_sock: Callable[[list], object], route_output: Callable[[int], tuple[int, int, int]],
                 clock: Callable[[], float] = time.monotonic, congestion_control: str = DEFAULT_CONGESTION_CONTROL,
                 timewait_len: float = TCP_TIMEWAIT_LEN, fin_timeout: float | None = None,
                 delack: float = TCP_DELACK_MIN, isn: Callable[[], int] | None = None,
                 sysctls: Sysctls | None = None, tsq: bool = False,
                 ip6_xmit: Callable[[list], object] | None = None,
                 route_output6: Callable[[int, str], tuple[int, int, int]] | None = None,
                 sk_err: Callable[[list], object] | None = None, devs=()) -> None:
        """tsq: the layers below report freed skbs (tcp_wfree), so TCP Small Queues holds
        a socket's skbs below TCP down; a stack without that seam (a unit test's) runs without.
        IPv6: ip6_xmit(skbs) hands segments to IPv6 (inet6_csk_xmit), route_output6(daddr, dev)
        -> (errno, saddr, mtu) is ip6_dst_lookup_flow; sk_err(errs) reports ICMPv6 errors to the
        socket layer (sk_error_report's items, as seams' socket-err edge takes them); devs: the
        host's interfaces, index 1 first (a link-local peer's scope)."""
        self.host = host
        self.tsq = tsq
        self.mib = mib
        self.clock = clock
        self.timers_changed: Callable[[], None] = lambda: None
        self.timewait_len = timewait_len
        self._fin_timeout = fin_timeout  # a test's shorter one; else tcp_fin_timeout
        self.delack = delack
        self.sysctls = sysctls or Sysctls("l4")
        if congestion_control != DEFAULT_CONGESTION_CONTROL:  # the topology's choice
            self.sysctls.set("net.ipv4.tcp_congestion_control", congestion_control)
        self._ip_queue_xmit = ip_queue_xmit
        self._ip6_xmit = ip6_xmit
        self._to_sock = to_sock
        self._route_output = route_output  # daddr -> (errno, saddr, mtu)
        self._route_output6 = route_output6  # (daddr, dev) -> (errno, saddr, mtu)
        self._sk_err = sk_err
        self.devs = list(devs)
        self._isn = isn or (lambda: int.from_bytes(os.urandom(4), "big"))
        self._ts_secret = os.urandom(16)
        self._lock = threading.RLock()
        self._flush_lock = threading.Lock()
        self._ehash: dict[tuple, TcpSock] = {}       # (saddr, sport, daddr, dport, v6) -> sock
        self._by_sk: dict[int, TcpSock] = {}
        self._lhash: dict[int, list[TcpSock]] = {}   # sport -> listeners
        self._child_sks = count(CHILD_SK_BASE)
        self.batch_acks: dict[int, TcpSock] | None = None  # sockets owed an ACK at the end of this batch
        self.out_segs: list = []   # to IPv4 (ip_queue_xmit)
        self.out_segs6: list = []  # to IPv6 (inet6_csk_xmit)
        self.out_errs: list = []   # ICMPv6 errors for the socket layer (sk_error_report)
        self.out_events: list[TcpEvent] = []
        for name, value in (("RtoAlgorithm", 1), ("RtoMin", 200), ("RtoMax", 120000), ("MaxConn", -1)):
            mib.inc(TCP, name, value)

    # -- what the state machine calls back ------------------------------------------

    def ts_off(self, saddr: int, daddr: int, v6: bool = False) -> int:
        """secure_tcp_ts_off() (secure_tcpv6_ts_off over IPv6's addresses): with tcp_timestamps
        1, each pair of addresses gets its own keyed offset on the TSval clock, so that a peer
        learns nothing of the host's uptime nor of its other connections'; with 2, none."""
        if self.sysctls.tcp_timestamps != 1:
            return 0
        n = 16 if v6 else 4
        key = saddr.to_bytes(n, "big") + daddr.to_bytes(n, "big")
        return int.from_bytes(hashlib.blake2b(key, key=self._ts_secret, digest_size=4).digest(), "big")

    @property
    def fin_timeout(self) -> float:
        return self._fin_timeout if self._fin_timeout is not None else self.sysctls.tcp_fin_timeout

    def event(self, kind: str, sk: int, *, value: int = 0, skb=None, child: TcpChild | None = None) -> None:
        self.out_events.append(TcpEvent(kind, sk, value, skb, child))

    def drop(self, skb, reason: int, func: str) -> None:
        s.kfree_skb_reason(skb, reason, L4, self.host, func)
        self.mib.drop(reason)

    def unmodelled(self, moment: str) -> None:
        """A mechanism pktpath lacks met its moment (pktpath.sysctl.UNMODELLED: the knob, or what
        happened): counted, so that nobody takes what follows for Linux's behaviour."""
        self.mib.inc("Unmodelled", moment)

    def set_state(self, tp: TcpSock, state: TcpState) -> None:
        """tcp_set_state(): CurrEstab counts ESTABLISHED and CLOSE_WAIT sockets; a reset
        or abort straight from either counts EstabResets."""
        old = tp.state
        established = (TcpState.ESTABLISHED, TcpState.CLOSE_WAIT)
        if state == TcpState.ESTABLISHED and old != TcpState.ESTABLISHED:
            self.mib.inc(TCP, "CurrEstab")
            # as tcp_finish_connect, tcp_rcv_state_process and tcp_init_buffer_space do: the handshake is no
            # idle time to restart cwnd after (tcp_cwnd_restart), nor an unused cwnd (tcp_cwnd_validate)
            tp.lsndtime = tp.snd_cwnd_stamp = self.clock()
        elif old in established and state not in established:
            self.mib.inc(TCP, "CurrEstab", -1)
            if state == TcpState.CLOSE:
                self.mib.inc(TCP, "EstabResets")
        tp.state = state

    def done(self, tp: TcpSock, err: int = 0) -> None:
        """tcp_done(): the connection is over; its queues are freed and the socket layer told."""
        if tp.state in (TcpState.SYN_SENT, TcpState.SYN_RECV):
            self.mib.inc(TCP, "AttemptFails")
        self.set_state(tp, TcpState.CLOSE)
        self._unhash(tp)
        self._purge(tp)
        if err:
            self.event("error", tp.sk, value=err)
        self.event("closed", tp.sk)

    def time_wait(self, tp: TcpSock) -> None:
        """tcp_time_wait(): keep the 4-tuple for timewait_len so that a late segment of
        this connection cannot be taken for one of the next; the user's socket is done."""
        self.set_state(tp, TcpState.TIME_WAIT)
        self._purge(tp)
        tp.close_at = self.clock() + self.timewait_len
        self.event("closed", tp.sk)

    def _purge(self, tp: TcpSock) -> None:
        for seg in list(tp.write_queue) + list(tp.rtx_queue):
            s.consume_skb(seg.skb, L4, self.host, "tcp_write_queue_purge")
        for _, skb, _ in tp.ofo_queue.values():
            s.consume_skb(skb, L4, self.host, "tcp_ofo_queue_purge")
        tp.write_queue.clear()
        tp.rtx_queue.clear()
        tp.ofo_queue.clear()
        tp.packets_out = tp.lost_out = tp.sacked_out = 0
        tp.rto_at = tp.delack_at = tp.probe_at = tp.tlp_at = 0.0
        tp.keepalive_at = 0.0

    def send_reset_for(self, skb, th: TcpHdr, seg_len: int) -> None:
        """tcp_v4_send_reset(), or tcp_v6_send_reset() for a segment that came over IPv6."""
        if is_ipv6(skb):
            saddr, daddr = ip6_addrs(skb)
            tcp_ipv6.tcp_v6_send_reset(self, saddr, daddr, th, seg_len, ecn.ip_dsfield(skb), skb.dev)
            return
        saddr, daddr = ip_addrs(skb)
        output.tcp_v4_send_reset(self, saddr, daddr, th, seg_len)

    def scope_id(self, dev: str) -> int:
        """The interface index of a device (0: none)."""
        return self.devs.index(dev) + 1 if dev in self.devs else 0

    def established(self) -> list[TcpSock]:
        return list(self._ehash.values())

    def listeners(self) -> list[TcpSock]:
        return [tp for tps in self._lhash.values() for tp in tps]

    # -- tables ------------------------------------------------------------------
    def _hash(self, tp: TcpSock) -> None:
        self._ehash[_key(tp)] = tp
        self._by_sk[tp.sk] = tp

    def _unhash(self, tp: TcpSock) -> None:
        if self._ehash.get(_key(tp)) is tp:
            del self._ehash[_key(tp)]
        listeners = self._lhash.get(tp.sport, [])
        if tp in listeners:
            listeners.remove(tp)
            if not listeners:
                del self._lhash[tp.sport]
        if self._by_sk.get(tp.sk) is tp:
            del self._by_sk[tp.sk]

    def _listener(self, daddr: int, dport: int, v6: bool = False) -> TcpSock | None:
        """__inet_lookup_listener() (inet6_lookup_listener() for an IPv6 segment): one bound to
        the address before a wildcard one; on equal terms an AF_INET one before an AF_INET6 one
        (compute_score: sk_family == PF_INET scores one more)."""
        best, best_score = None, -1
        for tp in self._lhash.get(dport, ()):
            bound = _listen_addr(tp, v6)
            if bound is None or bound and bound != daddr:
                continue
            score = (2 if bound else 0) + (tp.family == AF_INET)
            if score > best_score:
                best, best_score = tp, score
        return best

    def lookup_established(self, saddr: int, sport: int, daddr: int, dport: int, v6: bool) -> TcpSock | None:
        """__inet_lookup_established() / __inet6_lookup_established(): the connection (or
        TIME_WAIT) of a 4-tuple, ours first."""
        return self._ehash.get((saddr, sport, daddr, dport, v6))

    def sock(self, sk: int) -> TcpSock | None:
        return self._by_sk.get(sk)

    # -- the way out ---------------------------------------------------------------
    def _flush(self) -> None:
        """Hand on what the last calls produced, in the order they produced it; tell whoever
        runs the timers (`timers_changed`) that one may now be due sooner."""
        self.timers_changed()
        with self._flush_lock:
            with self._lock:
                segs, self.out_segs = self.out_segs, []
                segs6, self.out_segs6 = self.out_segs6, []
                errs, self.out_errs = self.out_errs, []
                events, self.out_events = self.out_events, []
            if segs:
                self._ip_queue_xmit(segs)
            if segs6:
                self._ip6_xmit(segs6)
            if errs:
                self._sk_err(errs)
            if events:
                self._to_sock(events)

    # -- receive -------------------------------------------------------------------
    def tcp_v4_rcv(self, skbs: list) -> tuple[int, int]:
        """tcp_v4_rcv() for one batch from IPv4 (data at the TCP header)."""
        return self._rcv(skbs, False)

    def tcp_v6_rcv(self, skbs: list) -> tuple[int, int]:
        """tcp_v6_rcv() for one batch from IPv6 (data at the TCP header): the same steps over
        IPv6's addresses, its pseudo-header in the checksum and its 4-tuples in the tables."""
        return self._rcv(skbs, True)

    def _rcv(self, skbs: list, v6: bool) -> tuple[int, int]:
        dropped = 0
        with self._lock:
            self.batch_acks = {}
            try:
                for skb in skbs:
                    if not self._rcv_one(skb, v6):
                        dropped += 1
            finally:
                owed, self.batch_acks = self.batch_acks, None
            for tp in owed.values():
                if tp.ack_pending and tp.state != TcpState.CLOSE:
                    output.tcp_send_ack(self, tp)
        self._flush()
        return len(skbs) - dropped, dropped

    def _rcv_one(self, skb, v6: bool) -> bool:
        func = _fn("tcp_v4_rcv", v6)
        skb.record(s.ENTER, L4, self.host, func)
        if skb.pkt_type not in (pb.PACKET_HOST, pb.PACKET_LOOPBACK):  # a frame to a group: not for TCP
            self.drop(skb, pb.SKB_DROP_REASON_NOT_SPECIFIED, func)
            return False
        self.mib.inc(TCP, "InSegs")
        saddr, daddr = ip6_addrs(skb) if v6 else ip_addrs(skb)
        try:  # skb_csum_unnecessary(): nothing to verify when GRO did it, or from this host (loopback)
            if skb.ip_summed in (CHECKSUM_UNNECESSARY, CHECKSUM_PARTIAL):
                th = TcpHdr.from_bytes(skb.payload())
            else:  # over IPv6's pseudo-header (ip6_compute_pseudo) for an IPv6 segment
                th = TcpHdr.from_bytes(skb.payload(), saddr, daddr)
        except ChecksumError:
            self.mib.inc(TCP, "InCsumErrors")
            self.mib.inc(TCP, "InErrs")
            self.drop(skb, pb.SKB_DROP_REASON_TCP_CSUM, func)
            return False
        except WireError:
            self.mib.inc(TCP, "InErrs")
            self.drop(skb, pb.SKB_DROP_REASON_PKT_TOO_SMALL, func)
            return False
        s.skb_pull(skb, th.header_len)
        seg = tcp_input.Segment.of(th, skb)
        tp = self._ehash.get((daddr, th.dest, saddr, th.source, v6))
        if tp is None:
            listener = self._listener(daddr, th.dest, v6)
            if listener is None:
                self.send_reset_for(skb, th, seg.len)
                self.drop(skb, pb.SKB_DROP_REASON_NO_SOCKET, func)
                return False
            return self._listen_rcv(listener, skb, seg, saddr, daddr, v6=v6)
        if tp.state == TcpState.TIME_WAIT:
            return self._timewait_rcv(tp, skb, seg)
        if tp.state == TcpState.SYN_SENT:
            tcp_input.tcp_rcv_synsent_state_process(self, tp, skb, seg)
        else:
            tcp_input.tcp_rcv_state_process(self, tp, skb, seg)
        return True

    def _timewait_rcv(self, tp: TcpSock, skb, seg) -> bool:
        """tcp_timewait_state_process(): an RST ends TIME_WAIT early (tcp_rfc1337 off); a
        SYN above the old connection's sequence space (or with a newer timestamp) is a new
        incarnation (RFC 1122 4.2.2.13, TCP_TW_SYN): TIME_WAIT ends and a listener takes it,
        its ISN past the old snd_nxt so that no old segment can be taken for a new one's;
        anything else, the peer's FIN again above all, is answered with our last ACK."""
        th = seg.th
        if th.syn and not th.rst and not th.ack and (after(seg.seq, tp.rcv_nxt) or self._newer_ts(tp, th)):
            listener = self._listener(tp.saddr, tp.sport, tp.v6)
            if listener is not None:
                isn = seq_add(tp.snd_nxt, 65535 + 2) or 1
                self.done(tp)  # inet_twsk_deschedule_put()
                return self._listen_rcv(listener, skb, seg, tp.daddr, tp.saddr, isn=isn, v6=tp.v6)
        if seg.th.rst:
            self.done(tp)
            self.drop(skb, pb.SKB_DROP_REASON_TCP_RESET, "tcp_timewait_state_process")
            return False
        if seg.th.fin:
            tp.close_at = self.clock() + self.timewait_len  # the peer missed our ACK: wait anew
        output.tcp_send_ack(self, tp)
        s.consume_skb(skb, L4, self.host, "tcp_timewait_state_process")
        return True

    @staticmethod
    def _newer_ts(tp: TcpSock, th: TcpHdr) -> bool:
        """The segment's TSval is newer than the last the connection had (ts_recent)."""
        ts = th.option(TcpOptTimestamp) if tp.tstamp_ok else None
        return ts is not None and (tp.ts_recent - ts.tsval) % (1 << 32) > 0x7FFFFFFF

    def _listen_rcv(self, listener: TcpSock, skb, seg, saddr: int, daddr: int, isn: int | None = None,
                    v6: bool = False) -> bool:
        th = seg.th
        do_rcv = _fn("tcp_v4_do_rcv", v6)
        req = listener.syn_queue.get((saddr, th.source, v6))
        if req is not None:
            return self._check_req(listener, req, skb, seg)
        if th.rst:
            self.drop(skb, pb.SKB_DROP_REASON_TCP_RESET, do_rcv)
            return False
        if th.ack:  # no handshake of ours: tcp_v4_do_rcv answers with a reset
            self.send_reset_for(skb, th, seg.len)
            self.drop(skb, pb.SKB_DROP_REASON_TCP_FLAGS, do_rcv)
            return False
        if not th.syn or th.fin:  # a SYN with FIN is no connection request (tcp_rcv_state_process)
            self.drop(skb, pb.SKB_DROP_REASON_TCP_FLAGS, "tcp_rcv_state_process" if th.syn else do_rcv)
            return False
        return self._conn_request(listener, skb, seg, saddr, daddr, isn, v6)

    def _listen_overflow(self, skb, func: str) -> bool:
        self.mib.inc(TCPEXT, "ListenOverflows")
        self.mib.inc(TCPEXT, "ListenDrops")
        self.drop(skb, pb.SKB_DROP_REASON_TCP_LISTEN_OVERFLOW, func)
        return False

    def _conn_request(self, listener: TcpSock, skb, seg, saddr: int, daddr: int, isn: int | None = None,
                      v6: bool = False) -> bool:
        """tcp_conn_request(): remember the SYN in the SYN queue and answer SYN-ACK. A full
        accept queue (sk_acceptq_is_full: more than backlog) or SYN queue drops it. Over IPv6
        (tcp_v6_conn_request): a SYN from a v4-mapped source is no IPv6 peer's (Ip6InHdrErrors),
        one to a multicast address none at all (ListenDrops), both consumed; the SYN-ACK's
        route (inet6_csk_route_req) gives its MSS (the path MTU - 60), and no route drops it
        (ListenDrops)."""
        if v6:
            if ipv6_addr_v4mapped(saddr):
                self.mib.inc("Ip6", "InHdrErrors")
                s.consume_skb(skb, L4, self.host, "tcp_v6_conn_request")
                return True
            if ipv6_addr_is_multicast(daddr):
                self.mib.inc(TCPEXT, "ListenDrops")
                s.consume_skb(skb, L4, self.host, "tcp_v6_conn_request")
                return True
        if len(listener.accept_queue) > listener.backlog:
            return self._listen_overflow(skb, "tcp_conn_request")
        if self.sysctls.tcp_fastopen & TFO_SERVER_ENABLE and any(_is_fastopen(o) for o in seg.th.options):
            self.unmodelled("tcp_fastopen")  # a cookie asked for or offered: Linux's server would answer it
        if len(listener.syn_queue) >= max(listener.backlog, 1):
            if self.sysctls.tcp_syncookies == 1:
                self.unmodelled("tcp_syncookies")  # Linux answers with a SYN cookie (tcp_syn_flood_action)
            self.mib.inc(TCPEXT, "TCPReqQFullDrop")
            self.mib.inc(TCPEXT, "ListenDrops")
            self.drop(skb, pb.SKB_DROP_REASON_TCP_LISTEN_OVERFLOW, "tcp_conn_request")
            return False
        dev = skb.dev if v6 and tcp_ipv6.needs_scope(saddr) and not listener.dev else listener.dev
        if v6:
            err, _, mtu = self.route_output6(saddr, dev)
            if err:  # tcp_conn_request: no dst for the SYN-ACK (drop_and_free)
                self.mib.inc(TCPEXT, "ListenDrops")
                s.consume_skb(skb, L4, self.host, "tcp_conn_request")
                return True
            advmss = mtu - tcp_ipv6.IPV6_TCP_HLEN
        else:
            mtu = listener.pmtu or MTU_DEFAULT
            advmss = mtu - 40
        opts = tcp_input.RxOptions.parse(seg.th, self.sysctls)
        isn = self._isn() if isn is None else isn  # a TIME_WAIT's successor's is given (tcp_tw_isn)
        req = RequestSock(daddr, seg.th.dest, saddr, seg.th.source, isn, seg.th.seq, opts.mss,
                          seg.th.window, opts.wscale, opts.sack_ok,
                          opts.tsval if opts.tsval is not None else -1,
                          expires=self.clock() + TCP_TIMEOUT_INIT, sent_at=self.clock(),
                          ts_off=self.ts_off(daddr, saddr, v6),
                          ecn_ok=ecn.tcp_ecn_create_request(self, seg.th, ecn.ip_dsfield(skb)),
                          v6=v6, advmss=output.tcp_mss_clamp(listener, advmss), pmtu=mtu, dev=dev)
        listener.syn_queue[saddr, seg.th.source, v6] = req
        output.tcp_send_synack(self, listener, req)
        s.consume_skb(skb, L4, self.host, "tcp_conn_request")
        return True

    def _check_req(self, listener: TcpSock, req: RequestSock, skb, seg) -> bool:
        """tcp_check_req(): the segment after our SYN-ACK. The handshake's ACK makes the
        child socket (ESTABLISHED, PassiveOpens) and queues it for accept()."""
        th = seg.th
        key = (req.daddr, req.dport, req.v6)
        if th.rst:
            del listener.syn_queue[key]
            self.drop(skb, pb.SKB_DROP_REASON_TCP_RESET, "tcp_check_req")
            return False
        if th.syn and th.seq == req.irs:  # our SYN-ACK was lost: the peer sends its SYN again
            output.tcp_send_synack(self, listener, req)
            s.consume_skb(skb, L4, self.host, "tcp_check_req")
            return True
        if not th.ack:
            self.drop(skb, pb.SKB_DROP_REASON_TCP_FLAGS, "tcp_check_req")
            return False
        if th.ack_seq != seq_add(req.iss, 1):
            self.send_reset_for(skb, th, seg.len)
            self.drop(skb, pb.SKB_DROP_REASON_TCP_ACK_UNSENT_DATA, "tcp_check_req")
            return False
        if len(listener.accept_queue) > listener.backlog:
            return self._listen_overflow(skb, "tcp_check_req")  # the request stays; its SYN-ACK is resent
        del listener.syn_queue[key]
        child = self._create_child(listener, req)
        self.mib.inc(TCP, "PassiveOpens")
        listener.accept_queue.append(child.sk)
        self.event("accept", listener.sk, child=TcpChild(child.sk, user_addr(child, child.saddr), child.sport,
                                                         user_addr(child, child.daddr), child.dport,
                                                         child.mss_cache, child.family))
        output.tcp_sndbuf_expand(self, child)  # tcp_init_buffer_space()
        tcp_input.tcp_rcv_state_process(self, child, skb, seg)
        return True

    def _create_child(self, listener: TcpSock, req: RequestSock) -> TcpSock:
        """tcp_create_openreq_child(): the connection's own socket, as the handshake set it."""
        tp = TcpSock(next(self._child_sks), TcpState.SYN_RECV, req.saddr, req.sport, req.daddr, req.dport,
                     parent=listener.sk, rcvbuf=listener.rcvbuf, rcvbuf_locked=listener.rcvbuf_locked,
                     nodelay=listener.nodelay, advmss=req.advmss, rcv_wscale=listener.rcv_wscale,
                     family=listener.family, v6=req.v6, dev=req.dev, pmtu=req.pmtu)
        # what the clone keeps of the listener's options: tp->nonagle, user_mss, keepalive, ping-pong mode
        for name in _INHERITED:
            setattr(tp, name, getattr(listener, name))
        tp.ca = CONGESTION_CONTROL[self.sysctls.tcp_congestion_control]()
        tp.iss = req.iss
        tp.snd_una = tp.snd_nxt = tp.snd_sml = tp.write_seq = seq_add(req.iss, 1)
        tp.irs = req.irs
        tp.ts_off = req.ts_off  # tcp_create_openreq_child: the request's tsoffset
        ecn.tcp_ecn_openreq_child(tp, req.ecn_ok)
        tp.rcv_nxt = tp.rcv_wup = seq_add(req.irs, 1)
        tp.rcv_wnd = min(output.synack_window(tp.rcvbuf, tp.advmss, req.ts_recent >= 0), output.MAX_WINDOW)
        tp.snd_wnd = tp.max_window = req.snd_wnd
        tp.snd_wl1 = req.irs
        tcp_input.apply_syn_options(tp, tcp_input.RxOptions(
            req.mss, req.snd_wscale, req.sack_ok, req.ts_recent if req.ts_recent >= 0 else None))
        if not req.retrans:  # tcp_synack_rtt_meas(): the handshake is the first RTT sample
            tp.rtt_sample(self.clock() - req.sent_at)
            tp.rcvq_time = self.clock()
        self.set_state(tp, TcpState.ESTABLISHED)
        tp.lrcvtime = self.clock()
        if tp.keepalive:
            timer.inet_csk_reset_keepalive_timer(tp, tp.lrcvtime, timer.keepalive_time_when(self, tp))
        self._hash(tp)
        return tp

    def tcp_v6_err(self, items: list, icmpv6_err_convert) -> tuple[int, int]:
        """tcp_v6_err() (tcp/ipv6.py) for a batch of ICMPv6 errors quoting TCP segments."""
        with self._lock:
            res = tcp_ipv6.tcp_v6_err(self, items, icmpv6_err_convert)
        self._flush()
        return res

    # -- the socket layer's calls ---------------------------------------------------------
    def _new_sock(self, sk: int, saddr: int, sport: int, daddr: int, dport: int, mtu: int, *,
                  rcvbuf: int, nodelay: bool, v6: bool = False, family: int = AF_INET) -> TcpSock:
        """rcvbuf 0: tcp_rmem's default, grown as the reader keeps up; else the user's, fixed."""
        tp = TcpSock(sk, TcpState.CLOSE, saddr, sport, daddr, dport, rcvbuf=rcvbuf or self.sysctls.tcp_rmem[1],
                     rcvbuf_locked=bool(rcvbuf), nodelay=nodelay, family=family, v6=v6, pmtu=mtu)
        tp.ca = CONGESTION_CONTROL[self.sysctls.tcp_congestion_control]()
        # the IP and TCP headers: 40 bytes over IPv4, 60 over IPv6 (dst_metric_advmss)
        tp.advmss = tp.mss_cache = mtu - (tcp_ipv6.IPV6_TCP_HLEN if v6 else 40)
        tp.wscale_ok = bool(self.sysctls.tcp_window_scaling)  # offered in our SYN; the SYN-ACK settles it
        tp.rcv_wscale = tcp_select_initial_window(rcvbuf, self.sysctls.tcp_rmem[2]) if tp.wscale_ok else 0
        return tp

    def connect(self, sk: int, saddr: int, sport: int, daddr: int, dport: int, *, rcvbuf: int = 0,
                nodelay: bool = False, opts: dict | None = None, family: int = AF_INET) -> tuple[int, int]:
        """tcp_v4_connect(): route, then send the SYN, with the options set before (opts: as
        setsockopt's; TCP_MAXSEG caps the MSS announced: tcp_connect_init). Returns (errno, the
        source address). family AF_INET6: an AF_INET6 socket's connect to a v4-mapped peer
        (tcp_v6_connect hands it to tcp_v4_connect, icsk_af_ops ipv6_mapped), addresses IPv4."""
        with self._lock:
            err, src, mtu = self._route_output(daddr)
            if err:
                return err, 0
            err = self._connect(sk, saddr or src, sport, daddr, dport, mtu, rcvbuf=rcvbuf, nodelay=nodelay,
                                opts=opts, family=family)
        self._flush()
        return err, 0 if err else saddr or src

    def route_output6(self, daddr: int, dev: str = "") -> tuple[int, int, int]:
        """ip6_dst_lookup_flow(): (errno, source address, path MTU); ENETUNREACH without IPv6 below."""
        if self._route_output6 is None:
            return errno.ENETUNREACH, 0, 0
        return self._route_output6(daddr, dev)

    def connect6(self, sk: int, saddr: int, sport: int, daddr: int, dport: int, *, dev: str = "",
                 rcvbuf: int = 0, nodelay: bool = False, opts: dict | None = None) -> tuple[int, int]:
        """tcp_v6_connect() to an IPv6 peer: the route (ip6_dst_lookup_flow, oif a link-local
        peer's device) gives the source address unless the socket is bound to one, and the path
        MTU the MSS we announce (the MTU - 60); then the SYN, over IPv6. Returns (errno, the
        source address)."""
        with self._lock:
            err, src, mtu = self.route_output6(daddr, dev)
            if err:
                return err, 0
            err = self._connect(sk, saddr or src, sport, daddr, dport, mtu, rcvbuf=rcvbuf, nodelay=nodelay,
                                opts=opts, family=AF_INET6, v6=True, dev=dev)
        self._flush()
        return err, 0 if err else saddr or src

    def _connect(self, sk: int, saddr: int, sport: int, daddr: int, dport: int, mtu: int, *, rcvbuf: int,
                 nodelay: bool, opts: dict | None, family: int = AF_INET, v6: bool = False, dev: str = "") -> int:
        """tcp_v4_connect's / tcp_v6_connect's common end: the 4-tuple hashed (inet_hash_connect:
        EADDRNOTAVAIL if taken), the ISN and TSval offset (secure_tcp(v6)_seq_and_ts_off), the SYN."""
        if (saddr, sport, daddr, dport, v6) in self._ehash:
            return errno.EADDRNOTAVAIL
        tp = self._new_sock(sk, saddr, sport, daddr, dport, mtu, rcvbuf=rcvbuf, nodelay=nodelay, v6=v6,
                            family=family)
        tp.dev = dev
        self._tcp_setsockopt(tp, **(opts or {}))
        tp.advmss = tp.mss_cache = output.tcp_mss_clamp(tp, tp.advmss)
        tp.iss = tp.write_seq = self._isn()
        tp.ts_off = self.ts_off(saddr, daddr, v6)
        tp.state = TcpState.SYN_SENT
        self._hash(tp)
        self.mib.inc(TCP, "ActiveOpens")
        output.tcp_connect(self, tp)
        return 0

    def listen(self, sk: int, saddr: int, sport: int, backlog: int, *, rcvbuf: int = 0,
               nodelay: bool = False, opts: dict | None = None, family: int = AF_INET,
               ipv6only: bool = False) -> None:
        """inet_csk_listen_start(), with the options set before (opts: as setsockopt's). An
        AF_INET6 listener's saddr is 128-bit: :: takes IPv4 as well unless ipv6only
        (IPV6_V6ONLY), a v4-mapped address IPv4 only."""
        with self._lock:
            tp = self._by_sk.get(sk)
            if tp is not None and tp.state == TcpState.LISTEN:
                tp.backlog = backlog  # listen() again changes only the backlog
                return
            v4 = saddr if family == AF_INET else saddr & 0xFFFFFFFF if ipv6_addr_v4mapped(saddr) else 0
            _, _, mtu = self._route_output(v4) if v4 else (0, 0, MTU_DEFAULT)
            tp = self._new_sock(sk, saddr, sport, 0, 0, mtu or MTU_DEFAULT, rcvbuf=rcvbuf, nodelay=nodelay,
                                family=family, v6=family == AF_INET6)  # tcp_v6_init_sock: ipv6_specific
            tp.ipv6only = ipv6only
            self._tcp_setsockopt(tp, **(opts or {}))
            tp.state = TcpState.LISTEN
            tp.backlog = backlog
            self._lhash.setdefault(sport, []).append(tp)
            self._by_sk[sk] = tp

    def accepted(self, listener_sk: int, child_sk: int) -> None:
        """accept() took a child off the accept queue (sk_acceptq_removed)."""
        with self._lock:
            listener = self._by_sk.get(listener_sk)
            if listener is not None and child_sk in listener.accept_queue:
                listener.accept_queue.remove(child_sk)
            child = self._by_sk.get(child_sk)
            if child is not None:
                child.parent = 0

    def sendmsg(self, sk: int, skbs: list, pushes: list[bool] | None = None) -> int:
        """tcp_sendmsg(): the user's bytes, already copied into skbs of at most the size goal
        each (tcp_xmit_size_goal: a GSO packet's worth of whole segments), join the write
        queue and go out as the windows allow. The last skb of each write (pushes; by
        default the last of skbs) carries PSH (tcp_push → tcp_mark_push). Bytes first fill
        an unsent tail short of the size goal, as tcp_sendmsg_locked appends to the write
        queue's tail skb: else every write's short end would sit in the middle of the queue
        as a short segment. Returns 0 or the errno."""
        with self._lock:
            tp = self._by_sk.get(sk)
            err = 0
            if tp is not None:  # what the socket layer handed down, for tcp_ioctl's answers
                tp.user_written += sum(skb.len for skb in skbs)
            if tp is None or tp.state in (TcpState.CLOSE, TcpState.LISTEN):
                err = errno.ENOTCONN if tp is None or tp.state == TcpState.LISTEN else errno.EPIPE
            elif tp.fin_queued or tp.state not in (TcpState.ESTABLISHED, TcpState.CLOSE_WAIT,
                                                   TcpState.SYN_SENT, TcpState.SYN_RECV):
                err = errno.EPIPE
            if err:
                for skb in skbs:
                    s.consume_skb(skb, L4, self.host, "tcp_sendmsg")
                return err
            if pushes is None:
                pushes = [i == len(skbs) - 1 for i in range(len(skbs))]
            size_goal = tcp_xmit_size_goal(tp.mss_cache)
            for skb, push in zip(skbs, pushes):
                skb.record(s.ENTER, L4, self.host, "tcp_sendmsg")
                tail = tp.write_queue[-1] if tp.write_queue else None
                if tail is not None and tail.len < size_goal and not tail.flags & (TCPHDR_SYN | TCPHDR_FIN):
                    n = min(size_goal - tail.len, skb.len)
                    output.tcp_skb_append(tail, skb.payload()[:n])
                    s.skb_pull(skb, n)
                    tp.write_seq = tail.end_seq = seq_add(tail.end_seq, n)
                    if not skb.len:
                        tail.flags |= TCPHDR_PSH if push else 0
                        s.consume_skb(skb, L4, self.host, "tcp_sendmsg")
                        continue
                seq = tp.write_seq
                tp.write_seq = seq_add(seq, skb.len)
                tp.write_queue.append(Seg(skb, seq, tp.write_seq, TCPHDR_PSH if push else 0))
                tp.nagle_push = False  # tcp_skb_entail(): TCP_NAGLE_PUSH pushed what was queued before
                output.tcp_slow_start_after_idle_check(self, tp)  # tcp_skb_entail
            if tp.state in (TcpState.ESTABLISHED, TcpState.CLOSE_WAIT):
                output.tcp_write_xmit(self, tp)
        self._flush()
        return 0

    def tcp_wfree(self, freed) -> None:
        """tcp_wfree() for (sk, truesize, paced by fq) of freed skbs: sk_wmem_alloc goes down
        (and fq's pacing is noted: sk_pacing_status SK_PACING_FQ); a socket TSQ throttled
        sends again (tcp_tsq_handler → tcp_tsq_write), in the states that send data."""
        with self._lock:
            for sk, truesize, fq in freed:
                tp = self._by_sk.get(sk)
                if tp is None:
                    continue
                tp.wmem_alloc = max(0, tp.wmem_alloc - truesize)
                tp.pacing_fq = tp.pacing_fq or fq
                if tp.tsq_throttled:
                    tp.tsq_throttled = False
                    if tp.state in (TcpState.ESTABLISHED, TcpState.FIN_WAIT1, TcpState.CLOSING,
                                    TcpState.CLOSE_WAIT, TcpState.LAST_ACK):
                        output.tcp_write_xmit(self, tp)
        self._flush()

    def recvd(self, sk: int, copied: int) -> None:
        """tcp_recvmsg() copied `copied` bytes to the user: tcp_cleanup_rbuf() sends the
        pending ACK when more than a segment is unacknowledged, or when this read emptied the
        queue of the end of a peer's write (ICSK_ACK_PUSHED, not in ping-pong mode; PUSHED2
        even then); else a window update when the window has at least doubled (or opened
        from zero)."""
        with self._lock:
            tp = self._by_sk.get(sk)
            if tp is None:
                return
            tp.unread = max(0, tp.unread - copied)
            tp.user_copied += copied
            tcp_rcv_space_adjust(tp, copied, self.clock(), self.sysctls.tcp_rmem[2])
            self._cleanup_rbuf(tp, copied)
        self._flush()

    def _cleanup_rbuf(self, tp: TcpSock, copied: int) -> None:
        """tcp_cleanup_rbuf(), after the user read `copied` bytes (as recvd() says): the ACK due
        goes in any state; a window update only while the peer may still send (no FIN yet)."""
        pushed = tp.ack_pushed & tcp_input.ICSK_ACK_PUSHED2 or (
            tp.ack_pushed & tcp_input.ICSK_ACK_PUSHED and not tp.pingpong)
        time_to_ack = tp.ack_pending and (seq_diff(tp.rcv_nxt, tp.rcv_wup) > tp.rcv_mss
                                          or (copied > 0 and pushed and not tp.unread))
        now_left = output.receive_window(tp)
        new = output.free_window(tp)
        if time_to_ack or tp.state in (TcpState.ESTABLISHED, TcpState.FIN_WAIT1, TcpState.FIN_WAIT2) and (
                new >= 2 * now_left if now_left else new >= tp.advmss):
            output.tcp_send_ack(self, tp)

    def shutdown(self, sk: int, how: int) -> None:
        """tcp_shutdown(): SHUT_WR sends our FIN after the queued data."""
        with self._lock:
            tp = self._by_sk.get(sk)
            if tp is None:
                return
            if how in (SHUT_RD, SHUT_RDWR):
                tp.shutdown_rd = True
            if how in (SHUT_WR, SHUT_RDWR) and not tp.fin_queued:
                self._close_state(tp)
        self._flush()

    def _close_state(self, tp: TcpSock) -> None:
        """tcp_close_state(): the state our FIN moves to, then the FIN."""
        if tp.state in (TcpState.ESTABLISHED, TcpState.SYN_RECV):
            self.set_state(tp, TcpState.FIN_WAIT1)
        elif tp.state == TcpState.CLOSE_WAIT:
            self.set_state(tp, TcpState.LAST_ACK)
        else:
            return
        output.tcp_send_fin(self, tp)

    def close(self, sk: int) -> None:
        """tcp_close(): the user is done with the socket. Unread data resets the
        connection (TCPAbortOnClose); else our FIN goes out and the orphan finishes."""
        with self._lock:
            tp = self._by_sk.get(sk)
            if tp is None:
                return
            if tp.state == TcpState.LISTEN:
                for child_sk in list(tp.accept_queue):  # never accepted: reset them
                    child = self._by_sk.get(child_sk)
                    if child is not None and child.state != TcpState.CLOSE:
                        output.tcp_send_active_reset(self, child)
                        self.done(child)
                tp.syn_queue.clear()
                tp.accept_queue.clear()
                self.done(tp)
            elif tp.state == TcpState.SYN_SENT:
                self.done(tp)
            elif tp.unread and tp.state not in (TcpState.CLOSE, TcpState.TIME_WAIT):
                self.mib.inc(TCPEXT, "TCPAbortOnClose")
                output.tcp_send_active_reset(self, tp)
                self.done(tp)
            else:
                tp.orphan = tp.shutdown_rd = True
                if not tp.fin_queued:
                    self._close_state(tp)
                if tp.state == TcpState.FIN_WAIT2 and not tp.close_at:
                    tp.close_at = self.clock() + self.fin_timeout
        self._flush()

    def close_all(self) -> int:
        """Every user of the sockets is gone at once (the socket layer died): tcp_close()
        each socket not closed yet, listeners first (their unaccepted children are reset
        with them), as do_exit() closing every file of every process would. Returns how
        many were closed."""
        owned = [tp.sk for tp in self.sockets() if not tp.orphan and tp.state not in (TcpState.CLOSE,
                                                                                       TcpState.TIME_WAIT)]
        for sk in owned:
            self.close(sk)
        return len(owned)

    def max_user_sk(self) -> int:
        """The highest id a socket of the socket layer's has here (the engine's children's are above)."""
        with self._lock:
            return max((sk for sk in self._by_sk if sk < CHILD_SK_BASE), default=0)

    def abort(self, sk: int, err: int = errno.ECONNABORTED) -> None:
        """tcp_abort(): reset the connection now."""
        with self._lock:
            tp = self._by_sk.get(sk)
            if tp is None:
                return
            if tp.state in (TcpState.ESTABLISHED, TcpState.CLOSE_WAIT, TcpState.FIN_WAIT1, TcpState.FIN_WAIT2,
                            TcpState.SYN_RECV):
                output.tcp_send_active_reset(self, tp)
            if tp.state != TcpState.CLOSE:
                self.done(tp, err)
        self._flush()

    def setsockopt(self, sk: int, *, nodelay: bool | None = None, rcvbuf: int | None = None, **opts) -> None:
        """The socket options L4 acts on: TCP_NODELAY (__tcp_sock_set_nodelay: on, TCP_NAGLE_PUSH
        too, and what is queued goes), SO_RCVBUF, and those of _tcp_setsockopt (opts)."""
        with self._lock:
            tp = self._by_sk.get(sk)
            if tp is None:
                return
            if rcvbuf:
                tp.rcvbuf, tp.rcvbuf_locked = rcvbuf, True
            if nodelay is not None:
                tp.nodelay = nodelay
                tp.nagle_push = tp.nagle_push or nodelay
                if nodelay and tp.state in (TcpState.ESTABLISHED, TcpState.CLOSE_WAIT):
                    output.tcp_write_xmit(self, tp)  # tcp_push_pending_frames
            self._tcp_setsockopt(tp, **opts)
        self._flush()

    def _tcp_setsockopt(self, tp: TcpSock, *, keepalive: bool | None = None, keepidle: int | None = None,
                        keepintvl: int | None = None, keepcnt: int | None = None, quickack: int | None = None,
                        maxseg: int | None = None, cork: bool | None = None, hop_limit: int | None = None,
                        tclass: int | None = None) -> None:
        """do_tcp_setsockopt() once the socket layer checked the values, and SO_KEEPALIVE's
        tcp_set_keepalive(): TCP_MAXSEG is rx_opt.user_mss, for the next SYN or SYN-ACK
        (tcp_mss_clamp); TCP_KEEPIDLE rearms the keepalive timer, TCP_KEEPINTVL and TCP_KEEPCNT
        are read when it fires (tcp_keepalive_timer); TCP_CORK and TCP_QUICKACK act at once.
        IPV6_UNICAST_HOPS and IPV6_TCLASS (do_ipv6_setsockopt: np->hop_limit, np->tclass) hold
        from the next segment on, a listener's for its SYN-ACKs and the connections it accepts."""
        if hop_limit is not None:
            tp.hop_limit = hop_limit
        if tclass is not None:
            tp.tclass = tclass & ~ecn.INET_ECN_MASK & 0xFF  # a stream's ECN field stays TCP's
        if maxseg is not None:
            tp.user_mss = maxseg
        if keepintvl is not None:
            tp.keepalive_intvl = keepintvl
        if keepcnt is not None:
            tp.keepalive_probes = keepcnt
        if keepalive is not None:
            timer.tcp_set_keepalive(self, tp, keepalive)
        if keepidle is not None:
            timer.tcp_sock_set_keepidle(self, tp, keepidle)
        if cork is not None:
            output.tcp_sock_set_cork(self, tp, cork)
        if quickack is not None:
            self._set_quickack(tp, quickack)

    def _set_quickack(self, tp: TcpSock, val: int) -> None:
        """__tcp_sock_set_quickack(): 0 enters ping-pong mode (ACKs wait to ride on an answer);
        anything else leaves it, and an ACK being delayed goes now if the user has read what it
        acknowledges (ICSK_ACK_PUSHED, then tcp_cleanup_rbuf as after a read of 1 byte); an even
        value then enters ping-pong mode again."""
        if not val:
            tp.pingpong = True
            return
        tp.pingpong = False
        if tp.state in (TcpState.ESTABLISHED, TcpState.CLOSE_WAIT) and tp.ack_pending:
            tp.ack_pushed |= tcp_input.ICSK_ACK_PUSHED
            self._cleanup_rbuf(tp, 1)
            if not val & 1:
                tp.pingpong = True

    def getsockopt(self, sk: int, optname: int, level: int = IPPROTO_TCP) -> int | None:
        """do_tcp_getsockopt() for what the tcp_sock holds (None: L4 has no such socket):
        TCP_MAXSEG is mss_cache, or TCP_MAXSEG's own value on a socket closed or listening (a
        listener's mss_cache stays tcp_init_sock's TCP_MSS_DEFAULT); TCP_QUICKACK is 1 unless
        in ping-pong mode. At level IPPROTO_IPV6, IPV6_TCLASS (do_ipv6_getsockopt: np->tclass):
        the user's DSCP with the ECN field of the last segment sent (ECT(0) after new data on
        an ECN connection)."""
        with self._lock:
            tp = self._by_sk.get(sk)
            if tp is None:
                return None
            if level == IPPROTO_IPV6:
                return tp.tclass | tp.tclass_ecn
            if optname == TCP_QUICKACK:
                return int(not tp.pingpong)
            if tp.user_mss and tp.state in (TcpState.CLOSE, TcpState.LISTEN):
                return tp.user_mss
            return TCP_MSS_DEFAULT if tp.state == TcpState.LISTEN else tp.mss_cache

    # -- timers ---------------------------------------------------------------------
    def run_timers(self, now: float | None = None) -> float:
        """Fire what is due; returns the next deadline (0: none armed)."""
        with self._lock:
            now = self.clock() if now is None else now
            timer.run(self, now)
            deadline = timer.next_deadline(self)
        self._flush()
        return deadline

    # -- ss ---------------------------------------------------------------------------
    def sock_view(self, sk: int, view: Callable[[TcpSock], object]):
        """view(tp) of one socket taken under the lock (None if L4 has no such socket): what a
        user asks of it (TCP_INFO, tcp_ioctl) is never read halfway through a segment."""
        with self._lock:
            tp = self._by_sk.get(sk)
            return None if tp is None else view(tp)

    def sockets(self, view: Callable[[TcpSock], object] = lambda tp: tp) -> list:
        """view(tp) of every socket, listeners first, taken under the lock: the queues a
        view reads change while segments come and go."""
        with self._lock:
            return [view(tp) for tp in self.listeners() + self.established()]

