"""The sockets of one host: the state a struct sock keeps and the socket calls
that act on it. Datagram sockets (UDP and ICMP echo "ping" sockets) are here;
TCP's stream calls are in stream.py; which process holds a socket is files.py's.

Models net/socket.c and net/ipv4/af_inet.c (socket, bind, connect, close,
getsockname/getpeername), sock_setsockopt/ip_setsockopt, the receive queue of
include/net/sock.h with its memory accounting (__udp_enqueue_schedule_skb:
SO_RCVBUF bounds sk_rmem_alloc, counted by skb truesize; a full buffer drops
with SOCKET_RCVBUFF and counts RcvbufErrors), sk_data_ready waking a blocked
reader through its wait queue (no polling), datagram_poll's readiness,
udp_recvmsg/ping_recvmsg copying kernel → user (a COPY)
and freeing the skb, sendmsg copying user → a new skb (a COPY), and
__udp4_lib_err's rule for which ICMP errors a socket sees (hard errors on a
connected socket, every error with IP_RECVERR).

AF_INET6 sockets (net/ipv6/af_inet6.c, udp.c, ping.c, tcp_ipv6.c, ipv6_sockglue.c): UDP,
ICMPv6 ping and TCP sockets whose addresses are 128-bit, an IPv4 peer's as ::ffff:a.b.c.d
(a dual-stack socket, IPV6_V6ONLY 0 as net.ipv6.bindv6only has it, takes and sends IPv4;
a ping socket starts IPV6_V6ONLY, as ping_init_sock sets it, and binding a specific IPv6
address sets it, as __inet6_bind does), the IPV6_* options (V6ONLY until the socket has a
port, UNICAST_HOPS, TCLASS, MTU_DISCOVER, RECVERR; the IP_* ones stay, for IPv4 peers),
udpv6_recvmsg's addresses and the Udp6 counters of a datagram that came over IPv6,
__udp6_lib_err's rule with IPV6_RECVERR, and tcp_v6_err's: an ICMPv6 error on a TCP
connection is soft, sk_err_soft for SO_ERROR, unless IPV6_RECVERR makes it sk_err.
IPV6_JOIN_GROUP / IPV6_LEAVE_GROUP (ipv6_sock_mc_join, ipv6_sock_mc_drop) keep the socket's
groups (ipv6_mc_list) and ask L3 to join or leave them on the device (`l3`'s Ipv6DevMc);
closing the socket leaves them all (ipv6_sock_mc_close).

A socket here is the struct socket and its sock; which process holds it under
which descriptor is files.py's business. Calls that can block are generators
(wait.py) that one definition serves to a thread (the `timeout=` methods) and to
the socket service's event loop alike.

Pure logic: the protocol layer below (L4) is a callable object with
hash/unhash/sendmsg.
"""

import errno
import itertools
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import NamedTuple

from pktpath import skbuff as s
from pktpath.counters import Mib
from pktpath.flow import IP_PMTUDISC_DONT, IP_PMTUDISC_WANT, Flowi4, Flowi6
from pktpath.pb import l3_pb2, skbuff_pb2, socket_pb2
from pktpath.services.socket.stream import SIOCATMARK, SIOCINQ, SIOCOUTQ, SIOCOUTQNSD, Stream, StreamState, tcp_poll
from pktpath.services.socket.wait import (
    POLL_READ, POLL_WRITE, POLLERR, POLLHUP, POLLRDHUP, POLLWRBAND, Blocking, WaitQueue, wait_sync, would_block,
)
from pktpath.sockerr import SockError
from pktpath.sysctl import Sysctls
from pktpath.trace import FlowKey, socket_flow
from pktpath.wire.addr import ipv6_addr_is_multicast, ipv6_addr_set_v4mapped, ipv6_addr_v4mapped
from pktpath.wire.icmp import ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED
from pktpath.wire.icmpv6 import ICMPV6_PKT_TOOBIG
from pktpath.wire.ipv4 import IPDEFTTL, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP
from pktpath.wire.ipv6 import IPPROTO_ICMPV6

pb = skbuff_pb2
SOCK = pb.LAYER_SOCKET
AF_INET, AF_INET6, SOCK_STREAM, SOCK_DGRAM = 2, 10, 1, 2
SOL_SOCKET, IPPROTO_IP, IPPROTO_IPV6 = 1, 0, 41
IPV6_UNICAST_HOPS, IPV6_MTU_DISCOVER, IPV6_RECVERR, IPV6_V6ONLY = 16, 23, 25, 26  # include/uapi/linux/in6.h
IPV6_TCLASS = 67
INET_ECN_MASK = 3  # the traffic class's ECN field, a TCP socket's own (include/net/inet_ecn.h)
IPV6_DEFAULT_HOPLIMIT = 64
IPV6_ADD_MEMBERSHIP, IPV6_DROP_MEMBERSHIP = 20, 21  # IPV6_JOIN_GROUP, IPV6_LEAVE_GROUP
IPV6_MREQ_LEN = 20  # sizeof(struct ipv6_mreq): the group, then the interface index (an int)
L3_TIMEOUT_S = 10
SO_REUSEADDR, SO_TYPE, SO_ERROR, SO_SNDBUF, SO_RCVBUF, SO_KEEPALIVE, SO_REUSEPORT, SO_TIMESTAMPNS = (
    2, 3, 4, 7, 8, 9, 15, 35)
_FLAGS = {SO_REUSEADDR: "reuseaddr", SO_REUSEPORT: "reuseport", SO_KEEPALIVE: "keepalive"}
IP_TTL, IP_MTU_DISCOVER, IP_RECVERR = 2, 10, 11
TCP_MAXSEG, TCP_CORK, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT, TCP_QUICKACK = 2, 3, 4, 5, 6, 12
TCP_MIN_MSS, MAX_TCP_WINDOW, MAX_TCP_KEEPIDLE, MAX_TCP_KEEPINTVL, MAX_TCP_KEEPCNT = 88, 32767, 32767, 32767, 127
# the options L4 acts on as well (the tcp_sock's), by the TcpSockopt field that carries each
L4_TCP_OPTIONS = {(SOL_SOCKET, SO_KEEPALIVE): "keepalive", (IPPROTO_TCP, TCP_MAXSEG): "maxseg",
                  (IPPROTO_TCP, TCP_CORK): "cork", (IPPROTO_TCP, TCP_KEEPIDLE): "keepidle",
                  (IPPROTO_TCP, TCP_KEEPINTVL): "keepintvl", (IPPROTO_TCP, TCP_KEEPCNT): "keepcnt",
                  (IPPROTO_TCP, TCP_QUICKACK): "quickack", (IPPROTO_IPV6, IPV6_UNICAST_HOPS): "hop_limit",
                  (IPPROTO_IPV6, IPV6_TCLASS): "tclass"}
TCP_NODELAY = 1
TCP_INQ = 36  # include/uapi/linux/tcp.h; TCP_CM_INQ, its control message, has the same number
STREAM_IOCTLS = (SIOCINQ, SIOCOUTQ, SIOCOUTQNSD, SIOCATMARK)  # tcp_ioctl's
MSG_PEEK, MSG_TRUNC, MSG_DONTWAIT, MSG_WAITFORONE, MSG_FASTOPEN = 0x2, 0x20, 0x40, 0x10000, 0x20000000
# TCP_FASTOPEN, TCP_FASTOPEN_CONNECT, TCP_FASTOPEN_KEY, TCP_FASTOPEN_NO_COOKIE (include/uapi/linux/tcp.h)
TCP_FASTOPEN_OPTIONS = frozenset({23, 30, 33, 34})
# Options Linux has that pktpath's sockets have not (include/uapi/asm-generic/socket.h, linux/tcp.h, linux/in.h)
LINUX_OPTIONS = {
    **{(SOL_SOCKET, n): name for n, name in ((6, "SO_BROADCAST"), (10, "SO_OOBINLINE"),
                                              (13, "SO_LINGER"), (16, "SO_PASSCRED"), (18, "SO_RCVLOWAT"),
                                              (20, "SO_RCVTIMEO"), (21, "SO_SNDTIMEO"), (25, "SO_BINDTODEVICE"),
                                              (29, "SO_TIMESTAMP"), (36, "SO_MARK"), (37, "SO_TIMESTAMPING"),
                                              (42, "SO_BUSY_POLL"), (47, "SO_MAX_PACING_RATE"),
                                              (60, "SO_ZEROCOPY"), (61, "SO_TXTIME"))},
    **{(IPPROTO_TCP, n): name for n, name in ((7, "TCP_SYNCNT"),
                                               (8, "TCP_LINGER2"), (9, "TCP_DEFER_ACCEPT"),
                                               (10, "TCP_WINDOW_CLAMP"),
                                               (13, "TCP_CONGESTION"), (14, "TCP_MD5SIG"),
                                               (18, "TCP_USER_TIMEOUT"), (25, "TCP_NOTSENT_LOWAT"),
                                               (31, "TCP_ZEROCOPY_RECEIVE"),
                                               (37, "TCP_TX_DELAY"))},
    **{(IPPROTO_IP, n): name for n, name in ((1, "IP_TOS"), (4, "IP_OPTIONS"), (8, "IP_RECVTOS"),
                                              (11, "IP_RECVTTL"), (14, "IP_MTU"), (15, "IP_FREEBIND"))},
}
SHUT_RD, SHUT_WR, SHUT_RDWR = 0, 1, 2
RCV_SHUTDOWN, SEND_SHUTDOWN = 1, 2

RMEM_DEFAULT = RMEM_MAX = 212992  # net.core.rmem_default / rmem_max
WMEM_DEFAULT = WMEM_MAX = 212992
SOCK_MIN_RCVBUF, SOCK_MIN_SNDBUF = 2304, 4608
SKB_TRUESIZE_OVERHEAD = 576  # SKB_TRUESIZE(): + sizeof(sk_buff) + sizeof(skb_shared_info), aligned
UDP_MAX_PAYLOAD = 0xFFFF - 20 - 8  # 65507
PING_MAX = 0xFFFF - 20             # 65515: an ICMP message in one IPv4 datagram
UDP6_MAX_PAYLOAD = 0xFFFF - 8      # 65527: a UDP datagram in one IPv6 payload (IPV6_MAXPLEN)
PING6_MAX = 0xFFFF                 # ping_common_sendmsg: len > 0xFFFF is EMSGSIZE
SHUTDOWN_MASK = RCV_SHUTDOWN | SEND_SHUTDOWN
_PORTS = struct.Struct("!HH")
_ADDRS = struct.Struct("!II")
_V4_MASK = 0xFFFFFFFF


def _udp_mib(skb) -> str:
    """The counters of a received UDP datagram: Udp6's if it came over IPv6."""
    return "Udp6" if skb.buf[skb.network_header] >> 4 == 6 else "Udp"


def truesize(skb) -> int:
    return skb.end + SKB_TRUESIZE_OVERHEAD


def sk_get_meminfo(sock: "Sock") -> "socket_pb2.SkMemInfo":
    """sk_get_meminfo() (net/core/sock.c), what ss -m prints as skmem: a stream socket's
    receive memory is the truesize of the skbs its queue holds, as a datagram socket's."""
    with sock.lock:
        rmem = sum(truesize(skb) for skb in sock.queue) if sock.stream is not None else sock.rmem
        queued = sock.stream.wmem if sock.stream is not None else 0
        return socket_pb2.SkMemInfo(rmem_alloc=rmem, rcvbuf=sock.rcvbuf, sndbuf=sock.sndbuf, wmem_queued=queued,
                                    drops=sock.drops)


def dontwait(flags: int, timeout: float | None) -> float | None:
    """MSG_DONTWAIT makes one call non-blocking: no time to wait at all."""
    return 0 if flags & MSG_DONTWAIT else timeout


@dataclass(eq=False)
class Sock:
    sk: int
    type: int
    protocol: int
    saddr: int = 0
    sport: int = 0
    daddr: int = 0
    dport: int = 0
    bound: bool = False
    rcvbuf: int = RMEM_DEFAULT
    sndbuf: int = WMEM_DEFAULT
    rcvbuf_locked: bool = False    # SOCK_RCVBUF_LOCK / SOCK_SNDBUF_LOCK: set by the user, not autotuned
    sndbuf_locked: bool = False
    ttl: int = -1                  # -1: the route's default, 64
    pmtudisc: int = IP_PMTUDISC_WANT
    recverr: bool = False
    rcvtstampns: bool = False      # SOCK_RCVTSTAMPNS: SO_TIMESTAMPNS set
    err: int = 0                   # sk_err, reported once by the next call that checks it
    err_detail: str = ""
    shutdown: int = 0
    closed: bool = False
    rmem: int = 0                  # sk_rmem_alloc
    drops: int = 0                 # sk_drops: datagrams the full receive buffer refused
    reuseaddr: bool = False        # SO_REUSEADDR, SO_REUSEPORT, SO_KEEPALIVE: kept and reported
    reuseport: bool = False
    keepalive: bool = False
    family: int = AF_INET
    ipv6only: bool = False         # IPV6_V6ONLY (sk_ipv6only)
    hop_limit: int = -1            # IPV6_UNICAST_HOPS; -1: the route's, 64
    tclass: int = 0                # IPV6_TCLASS (np->tclass); a stream's without the ECN field
    pmtudisc6: int = IP_PMTUDISC_WANT  # IPV6_MTU_DISCOVER (IPV6_PMTUDISC_*, the same values)
    recverr6: bool = False         # IPV6_RECVERR
    scope_id: int = 0              # the interface a link-local address is on (sk_bound_dev_if)
    ipv6_mc_list: list = field(default_factory=list)  # (ifindex, group) the socket joined, newest first
    err_soft: int = 0              # sk_err_soft: a TCP connection's soft ICMP error, for SO_ERROR
    queue: deque = field(default_factory=deque)
    lock: threading.Lock = field(default_factory=threading.Lock)   # lock_sock()
    wq: WaitQueue = field(default_factory=WaitQueue)               # sk_sleep(sk)
    stream: StreamState | None = None  # TCP only

    @property
    def netid(self) -> str:
        return {IPPROTO_ICMP: "icmp", IPPROTO_ICMPV6: "icmp6", IPPROTO_TCP: "tcp"}.get(self.protocol, "udp")

    @property
    def connected(self) -> bool:
        return bool(self.daddr)  # inet_daddr set by connect (TCP_ESTABLISHED for a datagram socket)

    def sock_error(self) -> int:
        """sock_error(): take the pending error."""
        err, self.err = self.err, 0
        return err

    def so_error(self) -> int:
        """getsockopt(SO_ERROR): sock_error(), else the soft error, taken too (xchg sk_err_soft)."""
        err = self.sock_error()
        if not err:
            err, self.err_soft = self.err_soft, 0
        return err

    def poll(self) -> int:
        """sock_poll(): tcp_poll for a stream, datagram_poll (udp_poll) otherwise."""
        if self.stream is not None:
            return tcp_poll(self)
        mask = POLLERR if self.err else 0
        if self.shutdown & RCV_SHUTDOWN:
            mask |= POLLRDHUP | POLL_READ
        if self.shutdown == SHUTDOWN_MASK:
            mask |= POLLHUP
        if self.queue:
            mask |= POLL_READ
        return mask | POLL_WRITE | POLLWRBAND  # sock_writeable(): a datagram leaves at once, nothing is held


class Datagram(NamedTuple):  # a tuple: one is built per datagram read
    data: bytes
    saddr: int
    sport: int
    ttl: int
    truncated_from: int  # the datagram's length when bufsize cut it (MSG_TRUNC), else 0
    tstamp: int = 0      # SCM_TIMESTAMPNS, when the socket asked for it
    inq: int | None = None  # TCP_CM_INQ, when the socket asked for it (TCP_INQ)
    scope_id: int = 0    # sin6_scope_id of a link-local source (an AF_INET6 socket's)


def sock_recv_timestamp(sock: Sock, skb) -> int:
    """__sock_recv_timestamp(): the skb's receive time for a socket with SO_TIMESTAMPNS;
    one that came without (sent to ourselves) is stamped now, as the kernel does."""
    if not sock.rcvtstampns:
        return 0
    return skb.tstamp or time.time_ns()


class SocketLayer:
    def __init__(self, host: str, l4, mib: Mib, tcp=None, sample=lambda flow=None: True, devs=()) -> None:
        """devs: the host's interfaces in order, interface index 1 first (sin6_scope_id)."""
        self.sysctls = Sysctls("socket")  # tcp_rmem[1] and tcp_wmem[1]: a new TCP socket's buffers
        self.host = host
        self.devs = list(devs)
        self.l4 = l4   # .hash(sock) -> (saddr, sport, daddr, dport), .unhash(sock), .sendmsg(sock, skb) -> errno
        self.mib = mib
        self.sample = sample  # (FlowKey) -> bool: is the next packet a user sends traced?
        self.stream = Stream(self, tcp)
        self._lock = threading.Lock()
        self._by_sk: dict[int, Sock] = {}
        self._sk_ids = itertools.count(1)
        self.l3 = None  # L3's Ipv6DevMc (a stub's call): a socket's groups on their devices
        self._mc_lock = threading.Lock()  # the RTNL ipv6_sock_mc_join takes: one join or leave at a time

    # -- sockets ------------------------------------------------------------------
    def sockets(self) -> list[Sock]:
        """Every socket the layer knows: open ones, and closed streams L4 still runs."""
        with self._lock:
            return list(self._by_sk.values())

    def socket(self, family: int, type_: int, protocol: int) -> Sock:
        """socket(2) → inet_create(), inet6_create() for AF_INET6 (UDP, ICMPv6 ping and TCP)."""
        if family == AF_INET6:
            return self._socket6(type_, protocol)
        if family != AF_INET:
            raise SockError(errno.EAFNOSUPPORT, f"family {family}: only AF_INET and AF_INET6")
        if type_ == SOCK_STREAM:
            if protocol not in (0, IPPROTO_TCP):
                raise SockError(errno.EPROTONOSUPPORT, f"protocol {protocol} with SOCK_STREAM")
            sock = Sock(next(self._sk_ids), type_, IPPROTO_TCP, rcvbuf=self.sysctls.tcp_rmem[1],
                        sndbuf=self.sysctls.tcp_wmem[1], stream=StreamState())  # tcp_init_sock()
        elif type_ != SOCK_DGRAM:
            raise SockError(errno.ESOCKTNOSUPPORT, f"type {type_}")
        elif protocol not in (0, IPPROTO_UDP, IPPROTO_ICMP):
            raise SockError(errno.EPROTONOSUPPORT, f"protocol {protocol} with SOCK_DGRAM")
        else:
            sock = Sock(next(self._sk_ids), type_, protocol or IPPROTO_UDP)
        with self._lock:
            self._by_sk[sock.sk] = sock
        return sock

    def _socket6(self, type_: int, protocol: int) -> Sock:
        """inet6_create(): an AF_INET6 socket, IPV6_V6ONLY as net.ipv6.bindv6only (0), a ping
        socket's set (ping_init_sock). IPPROTO_ICMP is refused as Linux refuses it
        (EPROTONOSUPPORT: no protosw of AF_INET6 has it); a stream is TCP's (tcp_v6_init_sock)."""
        if type_ == SOCK_STREAM:
            if protocol not in (0, IPPROTO_TCP):
                raise SockError(errno.EPROTONOSUPPORT, f"protocol {protocol} with AF_INET6 SOCK_STREAM")
            sock = Sock(next(self._sk_ids), type_, IPPROTO_TCP, rcvbuf=self.sysctls.tcp_rmem[1],
                        sndbuf=self.sysctls.tcp_wmem[1], stream=StreamState(), family=AF_INET6)
            with self._lock:
                self._by_sk[sock.sk] = sock
            return sock
        if type_ != SOCK_DGRAM:
            raise SockError(errno.ESOCKTNOSUPPORT, f"type {type_}")
        if protocol not in (0, IPPROTO_UDP, IPPROTO_ICMPV6):
            raise SockError(errno.EPROTONOSUPPORT, f"protocol {protocol} with AF_INET6 SOCK_DGRAM")
        protocol = protocol or IPPROTO_UDP
        sock = Sock(next(self._sk_ids), type_, protocol, family=AF_INET6, ipv6only=protocol == IPPROTO_ICMPV6)
        with self._lock:
            self._by_sk[sock.sk] = sock
        return sock

    def child(self, listener: Sock, c) -> Sock:
        """The socket of a connection L4 established for a listener; accept() gives it an fd."""
        sock = Sock(c.sk, SOCK_STREAM, IPPROTO_TCP, saddr=c.saddr, sport=c.sport, daddr=c.daddr,
                    dport=c.dport, rcvbuf=listener.rcvbuf, sndbuf=listener.sndbuf, stream=StreamState(),
                    rcvbuf_locked=listener.rcvbuf_locked, sndbuf_locked=listener.sndbuf_locked,
                    keepalive=listener.keepalive, family=listener.family, ipv6only=listener.ipv6only,
                    hop_limit=listener.hop_limit, tclass=listener.tclass, pmtudisc6=listener.pmtudisc6,
                    recverr6=listener.recverr6)
        for name in ("nodelay", "cork", "user_mss", "keepidle", "keepintvl", "keepcnt", "pingpong"):
            setattr(sock.stream, name, getattr(listener.stream, name))  # sk_clone_lock copies the tcp_sock
        with self._lock:
            self._by_sk[sock.sk] = sock
        return sock

    def reserve_sks(self, base: int) -> None:
        """Ids from `base` up: L4 still finishes sockets of an earlier socket layer below it."""
        with self._lock:
            self._sk_ids = itertools.count(max(next(self._sk_ids), base))

    def l4_lost(self) -> int:
        """L4 went away, and with it every TCP connection and listener it ran for us: each is
        aborted (ECONNABORTED once, then closed) and forgotten, so that a new L4's ids (it
        numbers the connections it accepts from the same base) find none of them. A socket
        with no state below (UDP, ping, a TCP socket only bound) keeps its port here and
        gets it back at the next session (l4_attached). Returns how many were aborted."""
        aborted = 0
        for sock in self.sockets():
            if sock.stream is None or sock.stream.state == "CLOSE":
                continue
            self.forget(sock)
            if not sock.closed and sock.stream.state != "CLOSED":
                self.stream.abort(sock, errno.ECONNABORTED, "connection aborted: this host's L4 went away "
                                                            "and its TCP state with it")
                aborted += 1
        return aborted

    def l4_attached(self) -> tuple[int, int]:
        """A new session with L4, which holds no port of ours: hash every bound socket that
        has no state below again. One whose port someone else took meanwhile gets the error
        (sk_err). Returns (hashed again, failed)."""
        done = failed = 0
        for sock in self.sockets():
            if not sock.bound or sock.closed or (sock.stream is not None and sock.stream.state != "CLOSE"):
                continue
            try:
                self.hash(sock)
                done += 1
            except SockError as exc:
                failed += 1
                with sock.lock:
                    sock.err, sock.err_detail = exc.errno, f"its port was lost while L4 restarted: {exc.detail}"
                sock.wq.wake(POLLERR)
        return done, failed

    def by_sk(self, sk: int) -> Sock | None:
        return self._by_sk.get(sk)

    def forget(self, sock: Sock) -> None:
        """The protocol is done with a socket the user closed (or never accepted)."""
        with self._lock:
            if self._by_sk.get(sock.sk) is sock:
                del self._by_sk[sock.sk]

    def close(self, sock: Sock) -> None:
        """sock_close() → udp_destroy_sock: unhash, purge the receive queue, wake any reader;
        a TCP socket stays known until L4 is done with it (tcp_close). An IPv6 socket's groups
        are left first (inet6_release → ipv6_sock_mc_close)."""
        if sock.ipv6_mc_list:
            self.ipv6_sock_mc_close(sock)
        with self._lock:
            if sock.stream is None:
                self._by_sk.pop(sock.sk, None)
        if sock.stream is not None:
            with sock.lock:
                sock.closed = True
            sock.wq.wake()
            self.stream.close(sock)
            if sock.bound:
                self.l4.unhash(sock)
            return
        with sock.lock:
            sock.closed = True
            queued = list(sock.queue)
            sock.queue.clear()
            sock.rmem = 0
        sock.wq.wake()
        for skb in queued:
            self.drop(skb, pb.SKB_DROP_REASON_SOCKET_CLOSE, "udp_destroy_sock")
        if sock.bound:
            self.l4.unhash(sock)

    def drop(self, skb, reason: int, func: str) -> None:
        s.kfree_skb_reason(skb, reason, SOCK, self.host, func)
        self.mib.drop(reason)

    # -- addresses ---------------------------------------------------------------
    def bind(self, sock: Sock, saddr: int, sport: int, scope_id: int = 0) -> None:
        """inet_bind(), inet6_bind() (scope_id: a link-local address's interface)."""
        if sock.bound:
            raise SockError(errno.EINVAL, "already bound")
        old = sock.saddr, sock.sport, sock.scope_id
        sock.saddr, sock.sport = saddr, sport
        if scope_id:
            self.dev_of(scope_id)
            sock.scope_id = scope_id
        try:
            self.hash(sock)
        except SockError:
            sock.saddr, sock.sport, sock.scope_id = old
            raise
        if sock.family == AF_INET6 and saddr and not ipv6_addr_v4mapped(saddr):
            sock.ipv6only = True  # __inet6_bind: a socket on an IPv6 address takes no IPv4

    def dev_of(self, scope_id: int) -> str:
        """The device of an interface index (0: none); ENODEV for an index no device has."""
        if not scope_id:
            return ""
        if not 0 < scope_id <= len(self.devs):
            raise SockError(errno.ENODEV, f"no interface with index {scope_id}")
        return self.devs[scope_id - 1]

    def scope_of(self, dev: str) -> int:
        """The interface index of a device (0: unknown)."""
        return self.devs.index(dev) + 1 if dev in self.devs else 0

    def hash(self, sock: Sock) -> None:
        sock.saddr, sock.sport, sock.daddr, sock.dport = self.l4.hash(sock)
        sock.bound = True

    def autobind(self, sock: Sock) -> None:
        """inet_autobind(): an ephemeral port for an unbound socket's first send."""
        if not sock.bound:
            self.hash(sock)

    def connect(self, sock: Sock, daddr: int, dport: int, *, nonblocking: bool = False,
                timeout: float | None = None) -> None:
        return wait_sync([sock.wq], self.connect_call(sock, daddr, dport, nonblocking=nonblocking), timeout)

    def connect_call(self, sock: Sock, daddr: int, dport: int, *, nonblocking: bool = False) -> Blocking:
        """ip4_datagram_connect(): fix the peer; daddr 0 (AF_UNSPEC) disconnects.
        A TCP socket does the handshake (stream.py)."""
        if sock.stream is not None:
            return (yield from self.stream.connect(sock, daddr, dport, nonblocking=nonblocking))
        old = sock.daddr, sock.dport
        if sock.family == AF_INET6 and ipv6_addr_v4mapped(daddr) and sock.ipv6only:
            raise SockError(errno.ENETUNREACH, "an IPv6-only socket reaches no IPv4 peer")
        sock.daddr, sock.dport = daddr, dport if sock.protocol == IPPROTO_UDP else 0
        try:
            self.hash(sock)
        except SockError:
            sock.daddr, sock.dport = old
            raise

    def listen(self, sock: Sock, backlog: int) -> None:
        if sock.stream is None:
            raise SockError(errno.EOPNOTSUPP, "listen() on a datagram socket")
        self.stream.listen(sock, backlog)

    def accept(self, sock: Sock, *, timeout: float | None = None) -> Sock:
        return wait_sync([sock.wq], self.accept_call(sock), timeout)

    def accept_call(self, sock: Sock) -> Blocking:
        """inet_accept(): the next connection; the caller gives it a descriptor."""
        if sock.stream is None:
            raise SockError(errno.EOPNOTSUPP, "accept() on a datagram socket")
        return (yield from self.stream.accept(sock))

    # -- options ------------------------------------------------------------------
    def setsockopt(self, sock: Sock, level: int, optname: int, value: int, data: bytes | None = None) -> None:
        """setsockopt(2) with an int, or with `data`, optval's bytes: a struct ipv6_mreq for
        IPV6_JOIN_GROUP / IPV6_LEAVE_GROUP, else an int read from its first 4 (fewer: EINVAL)."""
        if level == IPPROTO_IPV6 and optname in (IPV6_ADD_MEMBERSHIP, IPV6_DROP_MEMBERSHIP):
            return self.ipv6_mreq_setsockopt(sock, optname, data)
        if data is not None:
            if len(data) < 4:
                raise SockError(errno.EINVAL, f"optlen {len(data)}: an int takes 4 bytes")
            value = int.from_bytes(data[:4], "little", signed=True)
        self._setsockopt(sock, level, optname, value)
        if sock.stream is not None and (level, optname) in ((SOL_SOCKET, SO_RCVBUF), (SOL_SOCKET, SO_SNDBUF),
                                                             (IPPROTO_TCP, TCP_NODELAY)):
            self.stream.tcp.setsockopt(sock)
        elif sock.stream is not None and (level, optname) in L4_TCP_OPTIONS:
            value = bool(value) if optname in (SO_KEEPALIVE, TCP_CORK) else value
            if level == IPPROTO_IPV6:  # as the socket keeps it (IPV6_TCLASS -1 is 0)
                value = sock.hop_limit if optname == IPV6_UNICAST_HOPS else sock.tclass
            self.stream.tcp.setsockopt(sock, **{L4_TCP_OPTIONS[level, optname]: value})

    def _setsockopt(self, sock: Sock, level: int, optname: int, value: int) -> None:
        if level == IPPROTO_TCP and optname == TCP_INQ and sock.stream is not None:
            if value not in (0, 1):  # do_tcp_setsockopt: val > 1 || val < 0
                raise SockError(errno.EINVAL, f"TCP_INQ {value}: 0 or 1")
            sock.stream.recvmsg_inq = bool(value)
        elif level == IPPROTO_TCP and optname == TCP_NODELAY and sock.stream is not None:
            sock.stream.nodelay = bool(value)
        elif level == IPPROTO_TCP and (level, optname) in L4_TCP_OPTIONS and sock.stream is not None:
            self._tcp_setsockopt(sock.stream, optname, value)
        elif level == SOL_SOCKET and optname == SO_RCVBUF:
            # sk_rcvbuf = max(min_t(u32, val, rmem_max) * 2, SOCK_MIN_RCVBUF): doubled for the
            # skb overhead; a negative value read as u32 is huge, so it gets the maximum
            sock.rcvbuf = max(min(value & 0xFFFFFFFF, RMEM_MAX) * 2, SOCK_MIN_RCVBUF)
            sock.rcvbuf_locked = True
        elif level == SOL_SOCKET and optname == SO_SNDBUF:
            sock.sndbuf = max(min(value & 0xFFFFFFFF, WMEM_MAX) * 2, SOCK_MIN_SNDBUF)
            sock.sndbuf_locked = True
        elif level == IPPROTO_IP and optname == IP_TTL:
            if value != -1 and not 1 <= value <= 255:
                raise SockError(errno.EINVAL, f"IP_TTL {value}")
            sock.ttl = value
        elif level == IPPROTO_IP and optname == IP_MTU_DISCOVER:
            if not 0 <= value <= 5:
                raise SockError(errno.EINVAL, f"IP_MTU_DISCOVER {value}")
            sock.pmtudisc = value
        elif level == IPPROTO_IP and optname == IP_RECVERR:
            sock.recverr = bool(value)
        elif level == SOL_SOCKET and optname == SO_TIMESTAMPNS:
            sock.rcvtstampns = bool(value)
        elif level == IPPROTO_IPV6:
            self._ipv6_setsockopt(sock, optname, value)
        elif level == SOL_SOCKET and optname in _FLAGS:
            setattr(sock, _FLAGS[optname], bool(value))
        else:
            self._lacks(level, optname)
            raise SockError(errno.ENOPROTOOPT, f"level {level} option {optname}")

    def _ipv6_setsockopt(self, sock: Sock, optname: int, value: int) -> None:
        """do_ipv6_setsockopt() for what pktpath has: IPV6_V6ONLY (EINVAL once the socket has a
        port), IPV6_UNICAST_HOPS (-1 to 255), IPV6_TCLASS (-1 to 255, -1 being 0: RFC 3542 6.5;
        a stream socket keeps its ECN field, which is TCP's), IPV6_MTU_DISCOVER (0 to 5),
        IPV6_RECVERR. An AF_INET socket has no IPv6 options (ENOPROTOOPT). A TCP socket's
        hop limit and traffic class are L4's too: its segments carry them (ip6_xmit)."""
        if sock.family != AF_INET6:
            raise SockError(errno.ENOPROTOOPT, "IPv6 options on an AF_INET socket")
        if optname == IPV6_V6ONLY:
            if sock.sport:
                raise SockError(errno.EINVAL, "IPV6_V6ONLY on a socket that has a port")
            sock.ipv6only = bool(value)
        elif optname == IPV6_UNICAST_HOPS:
            if not -1 <= value <= 255:
                raise SockError(errno.EINVAL, f"IPV6_UNICAST_HOPS {value}")
            sock.hop_limit = value
        elif optname == IPV6_TCLASS:
            if not -1 <= value <= 255:
                raise SockError(errno.EINVAL, f"IPV6_TCLASS {value}")
            value = max(value, 0)
            sock.tclass = value & ~INET_ECN_MASK if sock.stream is not None else value
        elif optname == IPV6_MTU_DISCOVER:
            if not 0 <= value <= 5:
                raise SockError(errno.EINVAL, f"IPV6_MTU_DISCOVER {value}")
            sock.pmtudisc6 = value
        elif optname == IPV6_RECVERR:
            sock.recverr6 = bool(value)
        else:
            self.mib.inc("Unmodelled", f"sockopt IPPROTO_IPV6 {optname}")
            raise SockError(errno.ENOPROTOOPT, f"IPPROTO_IPV6 option {optname}")

    # -- IPv6 multicast groups (net/ipv6/mcast.c, ipv6_sockglue.c) --------------------------
    def ipv6_mreq_setsockopt(self, sock: Sock, optname: int, data: bytes | None) -> None:
        """do_ipv6_setsockopt()'s IPV6_ADD_MEMBERSHIP and IPV6_DROP_MEMBERSHIP: optval a struct
        ipv6_mreq (EINVAL shorter than its 20 bytes: an int's 4 are; more is fine), refused on a
        TCP socket (EPROTO, inet_test_bit(IS_ICSK)); an AF_INET socket has no IPv6 options
        (ENOPROTOOPT). Seen on Linux 6.18 with Python's socket module, each errno as named here."""
        if sock.family != AF_INET6:
            raise SockError(errno.ENOPROTOOPT, "IPv6 options on an AF_INET socket")
        if data is None or len(data) < IPV6_MREQ_LEN:
            raise SockError(errno.EINVAL, f"optlen {4 if data is None else len(data)}: struct ipv6_mreq "
                                          f"takes {IPV6_MREQ_LEN} bytes")
        if sock.stream is not None:
            raise SockError(errno.EPROTO, "a TCP socket joins no multicast group")
        group = int.from_bytes(data[:16], "big")
        ifindex = int.from_bytes(data[16:20], "little", signed=True)  # ipv6mr_ifindex, an int
        if optname == IPV6_ADD_MEMBERSHIP:
            self.ipv6_sock_mc_join(sock, ifindex, group)
        else:
            self.ipv6_sock_mc_drop(sock, ifindex, group)

    def _dev_mc(self, group: int, ifindex: int, join: bool):
        """L3's side (Ipv6DevMc): __ipv6_dev_mc_inc / __ipv6_dev_mc_dec on the device of
        ifindex (0: the group's route's). The reply: its errno and the device's index."""
        if self.l3 is None:
            self.mib.inc("Unmodelled", "sockopt IPV6_ADD_MEMBERSHIP")
            raise SockError(errno.ENOPROTOOPT, "no L3 to join multicast groups on")
        return self.l3.Ipv6DevMc(l3_pb2.Ipv6DevMcRequest(group=group.to_bytes(16, "big"), ifindex=ifindex,
                                                          join=join), timeout=L3_TIMEOUT_S)

    def ipv6_sock_mc_join(self, sock: Sock, ifindex: int, group: int) -> None:
        """ipv6_sock_mc_join(): EINVAL for a group that is not multicast (:: and v4-mapped
        addresses too), EADDRINUSE if the socket has it on that interface (on any, for ifindex
        0), ENODEV for an interface there is not (L3's answer), else L3 joins the group on the
        device and the socket remembers it there."""
        if not ipv6_addr_is_multicast(group):
            raise SockError(errno.EINVAL, "not a multicast group")
        with self._mc_lock:
            if any((ifindex == 0 or ifx == ifindex) and g == group for ifx, g in sock.ipv6_mc_list):
                raise SockError(errno.EADDRINUSE, "the socket joined that group already")
            if ifindex < 0:
                raise SockError(errno.ENODEV, f"no interface with index {ifindex}")
            reply = self._dev_mc(group, ifindex, True)
            if reply.errno:
                raise SockError(reply.errno, "joining the group on its device")
            sock.ipv6_mc_list.insert(0, (reply.ifindex, group))

    def ipv6_sock_mc_drop(self, sock: Sock, ifindex: int, group: int) -> None:
        """ipv6_sock_mc_drop(): EINVAL for a group that is not multicast, EADDRNOTAVAIL if the
        socket has not joined it (on that interface; on any for ifindex 0, the newest first);
        else the socket forgets it and L3 leaves it on the device (__ipv6_sock_mc_drop)."""
        if not ipv6_addr_is_multicast(group):
            raise SockError(errno.EINVAL, "not a multicast group")
        with self._mc_lock:
            entry = next(((ifx, g) for ifx, g in sock.ipv6_mc_list if (ifindex == 0 or ifx == ifindex) and g == group),
                         None)
            if entry is None:
                raise SockError(errno.EADDRNOTAVAIL, "the socket has not joined that group")
            sock.ipv6_mc_list.remove(entry)
            self._leave(*entry)

    def ipv6_sock_mc_close(self, sock: Sock) -> None:
        """ipv6_sock_mc_close(): every group the socket joined, left."""
        with self._mc_lock:
            entries, sock.ipv6_mc_list = sock.ipv6_mc_list, []
            for entry in entries:
                self._leave(*entry)

    def _leave(self, ifindex: int, group: int) -> None:
        try:
            self._dev_mc(group, ifindex, False)
        except SockError:  # L3 away: the group is the socket's no more whatever L3 missed
            self.mib.inc("Socket", "McLeaveLost")

    @staticmethod
    def _tcp_setsockopt(st: StreamState, optname: int, value: int) -> None:
        """do_tcp_setsockopt()'s checks of the options L4 acts on (EINVAL out of range), kept
        here for getsockopt and for L4 at connect() or listen(), which makes its tcp_sock then."""
        keep = {TCP_KEEPIDLE: ("keepidle", MAX_TCP_KEEPIDLE), TCP_KEEPINTVL: ("keepintvl", MAX_TCP_KEEPINTVL),
                TCP_KEEPCNT: ("keepcnt", MAX_TCP_KEEPCNT)}
        if optname in keep:
            name, most = keep[optname]
            if not 1 <= value <= most:
                raise SockError(errno.EINVAL, f"TCP_{name.upper()} {value}: 1 to {most}")
            setattr(st, name, value)
        elif optname == TCP_MAXSEG:
            if value and not TCP_MIN_MSS <= value <= MAX_TCP_WINDOW:
                raise SockError(errno.EINVAL, f"TCP_MAXSEG {value}: 0, or {TCP_MIN_MSS} to {MAX_TCP_WINDOW}")
            st.user_mss = value
        elif optname == TCP_CORK:
            st.cork = bool(value)
        else:  # TCP_QUICKACK (__tcp_sock_set_quickack): 0 enters ping-pong mode, anything else leaves it
            st.pingpong = not value

    def _lacks(self, level: int, optname: int) -> None:
        """An option Linux has and pktpath has not: counted (Unmodelled), so that what follows is
        not taken for Linux's behaviour (a drill script is unsupported there)."""
        if level == IPPROTO_TCP and optname in TCP_FASTOPEN_OPTIONS:
            self.mib.inc("Unmodelled", "tcp_fastopen")
        elif (level, optname) in LINUX_OPTIONS:
            self.mib.inc("Unmodelled", f"sockopt {LINUX_OPTIONS[level, optname]}")

    def getsockopt(self, sock: Sock, level: int, optname: int) -> int:
        options = {
            (SOL_SOCKET, SO_TYPE): lambda: sock.type,
            (SOL_SOCKET, SO_ERROR): sock.so_error,
            (SOL_SOCKET, SO_RCVBUF): lambda: sock.rcvbuf,
            (SOL_SOCKET, SO_SNDBUF): lambda: sock.sndbuf,
            (SOL_SOCKET, SO_TIMESTAMPNS): lambda: int(sock.rcvtstampns),
            (IPPROTO_IP, IP_TTL): lambda: IPDEFTTL if sock.ttl == -1 else sock.ttl,
            (IPPROTO_IP, IP_MTU_DISCOVER): lambda: sock.pmtudisc,
            (IPPROTO_IP, IP_RECVERR): lambda: int(sock.recverr),
            **{(SOL_SOCKET, opt): (lambda name=name: int(getattr(sock, name))) for opt, name in _FLAGS.items()},
        }
        if sock.family == AF_INET6:
            options.update({
                (IPPROTO_IPV6, IPV6_V6ONLY): lambda: int(sock.ipv6only),
                (IPPROTO_IPV6, IPV6_UNICAST_HOPS): lambda: IPV6_DEFAULT_HOPLIMIT if sock.hop_limit == -1
                else sock.hop_limit,
                (IPPROTO_IPV6, IPV6_TCLASS): lambda: sock.tclass,
                (IPPROTO_IPV6, IPV6_MTU_DISCOVER): lambda: sock.pmtudisc6,
                (IPPROTO_IPV6, IPV6_RECVERR): lambda: int(sock.recverr6),
            })
        elif level == IPPROTO_IPV6:  # udp_getsockopt → ip_getsockopt does not know the level
            raise SockError(errno.EOPNOTSUPP, "IPv6 options on an AF_INET socket")
        if sock.stream is not None:
            options[IPPROTO_TCP, TCP_NODELAY] = lambda: int(sock.stream.nodelay)
            options.update(self._tcp_getsockopts(sock))
            options[IPPROTO_TCP, TCP_INQ] = lambda: int(sock.stream.recvmsg_inq)
        get = options.get((level, optname))
        if get is None:
            self._lacks(level, optname)
            raise SockError(errno.ENOPROTOOPT, f"level {level} option {optname}")
        return get()

    def _tcp_getsockopts(self, sock: Sock) -> dict:
        """do_tcp_getsockopt() as the socket knows it: the keepalive times (keepalive_time_when,
        keepalive_intvl_when: the sysctls' unless set) and probes, TCP_CORK; TCP_MAXSEG and
        TCP_QUICKACK are L4's to answer once it holds the tcp_sock (Socket.tcp_getsockopt), this
        the answer before: TCP_MAXSEG's value, else TCP_MSS_DEFAULT (tcp_init_sock's mss_cache)."""
        st = sock.stream
        return {
            (IPPROTO_TCP, TCP_CORK): lambda: int(st.cork),
            (IPPROTO_TCP, TCP_KEEPIDLE): lambda: st.keepidle or self.sysctls.tcp_keepalive_time,
            (IPPROTO_TCP, TCP_KEEPINTVL): lambda: st.keepintvl or self.sysctls.tcp_keepalive_intvl,
            (IPPROTO_TCP, TCP_KEEPCNT): lambda: st.keepcnt or self.sysctls.tcp_keepalive_probes,
            (IPPROTO_TCP, TCP_MAXSEG): lambda: st.user_mss if st.user_mss and st.state in ("CLOSE", "LISTEN")
            else st.mss,
            (IPPROTO_TCP, TCP_QUICKACK): lambda: int(not st.pingpong),
        }

    def ioctl(self, sock: Sock, cmd: int) -> int:
        """sock_ioctl() → inet_ioctl() → the protocol's: tcp_ioctl (stream.py); udp_ioctl:
        SIOCINQ the first datagram's payload (first_packet_length, 0 for none), SIOCOUTQ
        sk_wmem_alloc, 0 here as a datagram leaves at once. Ping sockets have no ioctl and
        any other request is ENOTTY (sock_do_ioctl); the device and routing ones inet_ioctl
        and dev_ioctl answer (_IOC_TYPE 0x89) pktpath has not: counted."""
        if sock.stream is not None and cmd in STREAM_IOCTLS:
            return self.stream.ioctl(sock, cmd)
        if sock.protocol == IPPROTO_UDP and cmd in (SIOCINQ, SIOCOUTQ):
            with sock.lock:
                return sock.queue[0].len if cmd == SIOCINQ and sock.queue else 0
        if (cmd >> 8) & 0xFF == 0x89 and cmd not in STREAM_IOCTLS:
            self.mib.inc("Unmodelled", f"ioctl {cmd:#x}")
        raise SockError(errno.ENOTTY, f"ioctl {cmd:#x} on a {sock.netid} socket")

    # -- send -----------------------------------------------------------------------
    def sendto(self, sock: Sock, data: bytes, daddr: int = 0, dport: int = 0, *, flags: int = 0,
               timeout: float | None = None) -> int:
        return wait_sync([sock.wq], self.sendto_call(sock, data, daddr, dport, flags=flags),
                         dontwait(flags, timeout))

    def sendto_call(self, sock: Sock, data: bytes, daddr: int = 0, dport: int = 0, *, flags: int = 0,
                    scope_id: int = 0) -> Blocking:
        """sendto(2) → udp_sendmsg / ping_v4_sendmsg (udpv6_sendmsg / ping_v6_sendmsg for an
        AF_INET6 socket, scope_id a link-local destination's interface): the user's bytes copied
        into a new skb. A TCP socket's send is tcp_sendmsg (stream.py): the address is ignored."""
        if sock.stream is not None:
            if flags & MSG_FASTOPEN:  # tcp_sendmsg_fastopen: a connect carrying data, which pktpath has not
                self.mib.inc("Unmodelled", "tcp_fastopen")
                raise SockError(errno.EOPNOTSUPP, "MSG_FASTOPEN: no TCP Fast Open")
            return (yield from self.stream.send(sock, data, flags=flags))
        if sock.shutdown & SEND_SHUTDOWN:
            raise SockError(errno.EPIPE, "shut down for writing")
        if not daddr:
            if not sock.connected:
                raise SockError(errno.EDESTADDRREQ, "not connected and no address given")
            daddr, dport, scope_id = sock.daddr, sock.dport, sock.scope_id
        elif sock.protocol == IPPROTO_UDP and not dport:
            raise SockError(errno.EINVAL, "destination port 0")
        if sock.family == AF_INET6:
            return self._sendto6(sock, data, daddr, dport, scope_id)
        limit = UDP_MAX_PAYLOAD if sock.protocol == IPPROTO_UDP else PING_MAX
        if len(data) > limit:
            raise SockError(errno.EMSGSIZE, f"{len(data)} bytes > {limit}")
        self.autobind(sock)
        sampled = self.sample(FlowKey(sock.saddr, daddr, sock.protocol, sock.sport, dport))
        skb = s.alloc_skb(s.MAX_HEADER + len(data), origin_host=self.host, sampled=sampled)
        s.skb_reserve(skb, s.MAX_HEADER)
        s.skb_put_data(skb, data)
        skb.record(s.COPY, SOCK, self.host, "skb_copy_from_iter", len(data), copy_from="user", copy_to="skb")
        skb.sk = sock.sk
        skb.cb = Flowi4(daddr, dport=dport, ttl=0 if sock.ttl == -1 else sock.ttl,
                        pmtudisc=sock.pmtudisc).pack()
        err = self.l4.sendmsg(sock, skb)
        if err:
            raise SockError(err)
        return len(data)

    def _sendto6(self, sock: Sock, data: bytes, daddr: int, dport: int, scope_id: int) -> int:
        """udpv6_sendmsg / ping_v6_sendmsg's first steps: the size limits (an IPv4 destination's
        are IPv4's), an IPV6_V6ONLY socket's IPv4 destination (ENETUNREACH, before any port is
        taken), autobind, and the flow for L4 (pktpath.flow.Flowi6 in skb->cb)."""
        mapped = ipv6_addr_v4mapped(daddr)
        if sock.protocol == IPPROTO_UDP:
            if mapped and sock.ipv6only:
                raise SockError(errno.ENETUNREACH, "an IPv6-only socket sends no IPv4")
            limit = UDP_MAX_PAYLOAD if mapped else UDP6_MAX_PAYLOAD
        else:
            limit = PING6_MAX
        if len(data) > limit:
            raise SockError(errno.EMSGSIZE, f"{len(data)} bytes > {limit}")
        if scope_id:
            self.dev_of(scope_id)
        self.autobind(sock)
        sampled = self.sample(socket_flow(sock.saddr, daddr, sock.protocol, sock.sport, dport, ipv6=True))
        skb = s.alloc_skb(s.MAX_HEADER + len(data), origin_host=self.host, sampled=sampled)
        s.skb_reserve(skb, s.MAX_HEADER)
        s.skb_put_data(skb, data)
        skb.record(s.COPY, SOCK, self.host, "skb_copy_from_iter", len(data), copy_from="user", copy_to="skb")
        skb.sk = sock.sk
        skb.cb = Flowi6(daddr, dport, hop_limit=sock.hop_limit, tclass=sock.tclass, scope_id=scope_id,
                        pmtudisc=sock.pmtudisc6,
                        ttl=0 if sock.ttl == -1 else sock.ttl, pmtudisc4=sock.pmtudisc).pack()
        err = self.l4.sendmsg(sock, skb)
        if err:
            raise SockError(err)
        return len(data)

    # -- receive --------------------------------------------------------------------
    def sock_queue_rcv_skb(self, skbs: list) -> tuple[int, int]:
        """__udp_enqueue_schedule_skb / sock_queue_rcv_skb, then sk_data_ready: one
        wake-up per socket per batch, not one per datagram."""
        by_sock: dict[int, list] = {}
        dropped = 0
        for skb in skbs:
            skb.record(s.ENTER, SOCK, self.host, "sock_queue_rcv_skb")
            if skb.sk in self._by_sk:
                by_sock.setdefault(skb.sk, []).append(skb)
            else:
                self.drop(skb, pb.SKB_DROP_REASON_SOCKET_CLOSE, "sock_queue_rcv_skb")
                dropped += 1
        for sk, queued in by_sock.items():
            sock = self._by_sk.get(sk)
            if sock is None:  # closed meanwhile
                for skb in queued:
                    self.drop(skb, pb.SKB_DROP_REASON_SOCKET_CLOSE, "sock_queue_rcv_skb")
                dropped += len(queued)
                continue
            refused = []
            with sock.lock:
                for skb in queued:
                    if sock.closed:  # no shutdown check: a UDP socket shut for reading still queues
                        refused.append((skb, pb.SKB_DROP_REASON_SOCKET_CLOSE))
                    elif sock.rmem > sock.rcvbuf:  # always room for one skb in an empty queue
                        refused.append((skb, pb.SKB_DROP_REASON_SOCKET_RCVBUFF))
                    else:
                        sock.queue.append(skb)
                        sock.rmem += truesize(skb)
            if len(refused) < len(queued):
                sock.wq.wake(POLL_READ)  # sk_data_ready
            for skb, reason in refused:
                if reason == pb.SKB_DROP_REASON_SOCKET_RCVBUFF:
                    sock.drops += 1  # atomic_inc(&sk->sk_drops) in __udp_enqueue_schedule_skb
                    if sock.protocol == IPPROTO_UDP:
                        group = _udp_mib(skb)  # udpv6_queue_rcv_skb for a datagram over IPv6
                        self.mib.inc(group, "RcvbufErrors")
                        self.mib.inc(group, "InErrors")
                self.drop(skb, reason, "__udp_enqueue_schedule_skb")
            dropped += len(refused)
        return len(skbs) - dropped, dropped

    def recvfrom(self, sock: Sock, bufsize: int, flags: int = 0, timeout: float | None = None) -> Datagram:
        """recvfrom(2) on this thread: blocks until a datagram or an error arrives, up to
        `timeout` seconds (None: until then)."""
        return self.recvmmsg(sock, 1, bufsize, flags, timeout)[0]

    def recvmmsg(self, sock: Sock, vlen: int, bufsize: int, flags: int = 0,
                 timeout: float | None = None) -> list[Datagram]:
        return wait_sync([sock.wq], self.recvmmsg_call(sock, vlen, bufsize, flags), dontwait(flags, timeout))

    def recvmmsg_call(self, sock: Sock, vlen: int, bufsize: int, flags: int = 0) -> Blocking:
        """recvmmsg(2) → udp_recvmsg / ping_recvmsg: up to vlen datagrams in one call.
        With MSG_WAITFORONE it waits as recvfrom does for the first and takes what else
        is queued; without, it waits for vlen of them until its time is up, and then
        returns those queued (EAGAIN if none). A pending error is reported before any
        datagram, as __skb_recv_udp does. A TCP socket's is tcp_recvmsg (stream.py):
        one stretch of the byte stream, whatever vlen, and the peer's address."""
        if sock.stream is not None:
            data = yield from self.stream.recv(sock, bufsize, flags)
            inq = self.stream.tcp_inq_hint(sock) if sock.stream.recvmsg_inq else None  # after the read, as tcp_recvmsg
            return [Datagram(data, sock.daddr, sock.dport, 0, 0, inq=inq)]
        peek = bool(flags & MSG_PEEK)
        wait_all = vlen > 1 and not flags & (MSG_WAITFORONE | MSG_DONTWAIT | MSG_PEEK)
        timed_out = False
        while True:
            with sock.lock:
                if sock.closed:
                    raise SockError(errno.EBADF, "closed while waiting")
                if sock.queue:
                    if (not wait_all or len(sock.queue) >= vlen or sock.err or sock.shutdown & RCV_SHUTDOWN
                            or timed_out):
                        if peek:
                            skbs = [sock.queue[0]]
                        else:
                            skbs = [sock.queue.popleft() for _ in range(min(max(vlen, 1), len(sock.queue)))]
                            sock.rmem -= sum(truesize(skb) for skb in skbs)
                        break
                else:
                    err = sock.sock_error()
                    if err:
                        raise SockError(err, sock.err_detail)
                    if sock.shutdown & RCV_SHUTDOWN:
                        return [Datagram(b"", 0, 0, 0, 0)]
                    if timed_out:
                        raise would_block("no datagram waiting")
            timed_out = yield POLL_READ
        if not peek and sock.protocol == IPPROTO_UDP:
            v6 = sum(1 for skb in skbs if _udp_mib(skb) == "Udp6") if sock.family == AF_INET6 else 0
            if v6:
                self.mib.inc("Udp6", "InDatagrams", v6)  # udpv6_recvmsg: by the datagram's family
            if len(skbs) > v6:
                self.mib.inc("Udp", "InDatagrams", len(skbs) - v6)
        return [self._copy_to_user(sock, skb, bufsize, peek=peek) for skb in skbs]

    def _copy_to_user(self, sock: Sock, skb, bufsize: int, *, peek: bool) -> Datagram:
        """skb_copy_datagram_msg(): the payload up to bufsize; the rest of a datagram is lost."""
        data = bytes(skb.payload()[:bufsize])
        nh, scope_id = skb.network_header, 0
        if skb.buf[nh] >> 4 == 6:  # the source and hop limit of an IPv6 datagram (udpv6_recvmsg)
            saddr, ttl = int.from_bytes(skb.buf[nh + 8:nh + 24], "big"), skb.buf[nh + 7]
            if saddr >> 118 == 0x3FA:  # fe80::/10: ipv6_iface_scope_id gives the interface it came in on
                scope_id = self.scope_of(skb.dev)
        else:
            saddr, _ = _ADDRS.unpack_from(skb.buf, nh + 12)
            ttl = skb.buf[nh + 8]
            if sock.family == AF_INET6:
                saddr = ipv6_addr_set_v4mapped(saddr)
        sport = _PORTS.unpack_from(skb.buf, skb.transport_header)[0] if sock.protocol == IPPROTO_UDP else 0
        if not peek:
            skb.record(s.COPY, SOCK, self.host, "skb_copy_datagram_msg", len(data), copy_from="skb",
                       copy_to="user")
            s.consume_skb(skb, SOCK, self.host, "skb_consume_udp")
        return Datagram(data, saddr, sport, ttl, skb.len if skb.len > len(data) else 0,
                        sock_recv_timestamp(sock, skb), scope_id=scope_id)

    def shutdown(self, sock: Sock, how: int) -> None:
        """inet_shutdown(); a TCP socket's goes on to tcp_shutdown (stream.py)."""
        if how not in (SHUT_RD, SHUT_WR, SHUT_RDWR):
            raise SockError(errno.EINVAL, f"how {how}")
        with sock.lock:
            sock.shutdown |= {SHUT_RD: RCV_SHUTDOWN, SHUT_WR: SEND_SHUTDOWN}.get(how, SHUTDOWN_MASK)
        sock.wq.wake()  # sk_state_change
        if sock.stream is not None:
            self.stream.shutdown(sock, how)
        elif not sock.connected:
            raise SockError(errno.ENOTCONN, "shutdown takes effect, but the socket is not connected")

    # -- ICMP errors ----------------------------------------------------------------
    def sk_error_report(self, sk: int, err: int, fatal: bool, detail: str, type_: int, code: int,
                        family: int = AF_INET) -> bool:
        """__udp4_lib_err / ping_err's last step: does this socket see the error? An ICMPv6 one
        (family AF_INET6): __udp6_lib_err's, IPV6_RECVERR for IP_RECVERR, and Packet Too Big
        hard unless IPV6_MTU_DISCOVER is IPV6_PMTUDISC_DONT (then only IPV6_RECVERR sees it)."""
        sock = self._by_sk.get(sk)
        if sock is None:
            return False
        if sock.stream is not None:  # tcp_v6_err's soft error (L4 ended a handshake with a hard one)
            with sock.lock:
                if not (sock.recverr6 if family == AF_INET6 else sock.recverr):
                    sock.err_soft = err
                    return True
                sock.err = err
                sock.err_detail = detail
            sock.wq.wake(POLLERR)  # sk_error_report
            return True
        if family == AF_INET6:
            if type_ == ICMPV6_PKT_TOOBIG and sock.pmtudisc6 != IP_PMTUDISC_DONT:
                fatal = True
            recverr = sock.recverr6
        else:
            if type_ == ICMP_DEST_UNREACH and code == ICMP_FRAG_NEEDED and sock.pmtudisc == IP_PMTUDISC_DONT:
                return False  # the path MTU was learned; a socket that never sets DF is not told
            recverr = sock.recverr
        if not recverr and (not fatal or not sock.connected):
            return False
        with sock.lock:
            sock.err = err
            sock.err_detail = detail
        sock.wq.wake(POLLERR)  # sk_error_report
        return True
