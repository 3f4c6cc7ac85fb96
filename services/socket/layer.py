"""The socket layer of one host without its RPC surface: the sockets (services/socket/
sock.py) over L4's protocols, fed by the edges into it (pktpath/seams.py).

The socket service serves it to processes over gRPC (services/socket/server.py); the
one-process stack (pktpath/drill/local.py) calls it directly. `l4` takes the socket
layer's synchronous calls to L4 (pktpath/seams.py CALLS), raising SockError as L4 does.
"""

import errno

from pktpath import skbuff as s
from pktpath import sockerr
from pktpath.counters import Mib
from pktpath.flow import TcpChild
from pktpath.hop import batches
from pktpath.pb import l4_pb2, socket_pb2
from pktpath.seams import edge
from pktpath.services.socket.sock import AF_INET, AF_INET6, SocketLayer
from pktpath.sockerr import SockError
from pktpath.wire import tcp_info
from pktpath.wire.addr import ip6_from_str, ip6_to_str, ip_from_str, ip_to_str
from pktpath.wire.errors import SanityError
from pktpath.wire.icmp import (
    ICMP_DEST_UNREACH, ICMP_EXC_FRAGTIME, ICMP_FRAG_NEEDED, ICMP_PORT_UNREACH, ICMP_PROT_UNREACH,
    ICMP_TIME_EXCEEDED,
)
from pktpath.wire.icmpv6 import (
    ICMPV6_DEST_UNREACH, ICMPV6_EXC_FRAGTIME, ICMPV6_EXC_HOPLIMIT, ICMPV6_PARAMPROB, ICMPV6_PKT_TOOBIG,
    ICMPV6_TIME_EXCEED,
)
from pktpath.wire.ipv4 import IPPROTO_TCP, IPPROTO_UDP

TCP_CLOSE = 7  # include/net/tcp_states.h
L4_TIMEOUT_S = 10

_UNREACH = {0: "network unreachable", 1: "host unreachable", ICMP_PROT_UNREACH: "protocol unreachable",
            ICMP_PORT_UNREACH: "port unreachable", ICMP_FRAG_NEEDED: "fragmentation needed"}


# iputils ping's words for ICMPv6 errors (ping6_common.c, print_icmp / pr_icmph for IPv6)
_UNREACH6 = ("No route", "Administratively prohibited", "Beyond scope of source address", "Address unreachable",
             "Port unreachable")
_PARAMPROB6 = ("Wrong header field ", "Unknown header ", "Unknown option ")


def icmp6_text(type_: int, code: int, info: int, offender: str) -> str:
    """What ping -6 prints for an ICMPv6 error, after the offender: "from 2001:db8::2:
    destination unreachable: Port unreachable" (ping capitalizes its first letter)."""
    if type_ == ICMPV6_DEST_UNREACH:
        what = "destination unreachable: " + (_UNREACH6[code] if code < len(_UNREACH6) else f"Unknown code {code}")
    elif type_ == ICMPV6_PKT_TOOBIG:
        what = f"packet too big: mtu={info}" + (f", code={code}" if code else "")
    elif type_ == ICMPV6_TIME_EXCEED:
        what = "time exceeded: " + ("Hop limit" if code == ICMPV6_EXC_HOPLIMIT else
                                    "Defragmentation failure" if code == ICMPV6_EXC_FRAGTIME else f"code {code}")
    elif type_ == ICMPV6_PARAMPROB:
        what = "parameter problem: " + (_PARAMPROB6[code] if code < len(_PARAMPROB6) else f"code {code} ") + \
            f"at {info}"
    else:
        what = f"ICMPv6 type {type_} code {code}"
    return f"from {offender}: {what}"


def icmp_text(type_: int, code: int, info: int, offender: str) -> str:
    """What ping prints for an ICMP error: "From 10.0.1.254: time to live exceeded"."""
    if type_ == ICMP_DEST_UNREACH:
        what = _UNREACH.get(code, f"destination unreachable (code {code})")
        if code == ICMP_FRAG_NEEDED:
            what += f" (mtu {info})"
    elif type_ == ICMP_TIME_EXCEEDED:
        what = "fragment reassembly time exceeded" if code == ICMP_EXC_FRAGTIME else "time to live exceeded"
    else:
        what = f"ICMP type {type_} code {code}"
    return f"from {offender}: {what}"


class L4Protocols:
    """The protocol side of the socket calls: L4's port tables and sendmsg."""

    @staticmethod
    def _call(rpc, request):
        return rpc(request, timeout=L4_TIMEOUT_S)  # a failure is L4's SockError

    def __init__(self, stub, devs=()) -> None:
        self.stub = stub
        self.devs = list(devs)  # interface index 1 first: a link-local address's scope

    def hash(self, sock) -> tuple[int, int, int, int]:
        if sock.family == AF_INET6:
            return self._hash6(sock)
        reply = self._call(self.stub.Hash, l4_pb2.SockAddrs(
            sk=sock.sk, protocol=sock.protocol, saddr=ip_to_str(sock.saddr) if sock.saddr else "",
            sport=sock.sport, daddr=ip_to_str(sock.daddr) if sock.daddr else "", dport=sock.dport))
        return ip_from_str(reply.saddr), reply.sport, ip_from_str(reply.daddr), reply.dport

    def _hash6(self, sock) -> tuple[int, int, int, int]:
        scope = sock.scope_id
        dev = self.devs[scope - 1] if 0 < scope <= len(self.devs) else ""
        reply = self._call(self.stub.Hash, l4_pb2.SockAddrs(
            sk=sock.sk, protocol=sock.protocol, saddr=ip6_to_str(sock.saddr) if sock.saddr else "",
            sport=sock.sport, daddr=ip6_to_str(sock.daddr) if sock.daddr else "", dport=sock.dport,
            family=AF_INET6, ipv6only=sock.ipv6only, dev=dev))
        return ip6_from_str(reply.saddr), reply.sport, ip6_from_str(reply.daddr), reply.dport

    def unhash(self, sock) -> None:
        try:
            self._call(self.stub.Unhash, l4_pb2.SockAddrs(sk=sock.sk, protocol=sock.protocol))
        except SockError:
            pass  # close() succeeds whatever happened below, as in the kernel

    def sendmsg(self, sock, skb) -> int:
        rpc = self.stub.UdpSendmsg if sock.protocol == IPPROTO_UDP else self.stub.PingSendmsg
        return self._call(rpc, s.to_batch([skb])).errno


class L4Tcp:
    """L4's side of TCP sockets: the calls that wait for an answer over gRPC, the
    others (send, read, shutdown, close) by one hop, in order."""

    _KINDS = {v: k.lower() for k, v in socket_pb2.SkCallback.Kind.items()}

    def __init__(self, stub, calls: L4Protocols, hop, mib: Mib) -> None:
        self.stub = stub
        self._call = calls._call
        self._devs = calls.devs
        # sends, reads, shutdowns and closes in one ordered stream: none overtakes another
        self._calls = hop(edge("socket", "tcp-calls"), mib)
        self._mib = mib

    def connect(self, sock) -> int:
        """tcp_v4_connect(), or tcp_v6_connect() for an AF_INET6 socket (IPv6 text; the scope of
        a link-local peer as its device)."""
        if sock.family == AF_INET6:
            scope = sock.scope_id
            return self._call(self.stub.TcpV6Connect, l4_pb2.TcpConnectRequest(
                sk=sock.sk, saddr=ip6_to_str(sock.saddr), sport=sock.sport, daddr=ip6_to_str(sock.daddr),
                dport=sock.dport, rcvbuf=_user_rcvbuf(sock), nodelay=sock.stream.nodelay, opts=_tcp_sockopts(sock),
                ipv6only=sock.ipv6only, dev=self._devs[scope - 1] if 0 < scope <= len(self._devs) else "")).errno
        return self._call(self.stub.TcpV4Connect, l4_pb2.TcpConnectRequest(
            sk=sock.sk, saddr=ip_to_str(sock.saddr), sport=sock.sport, daddr=ip_to_str(sock.daddr),
            dport=sock.dport, rcvbuf=_user_rcvbuf(sock), nodelay=sock.stream.nodelay, opts=_tcp_sockopts(sock))).errno

    def listen(self, sock, backlog: int) -> None:
        text = ip6_to_str if sock.family == AF_INET6 else ip_to_str
        self._call(self.stub.InetCskListenStart, l4_pb2.TcpListenRequest(
            sk=sock.sk, saddr=text(sock.saddr) if sock.saddr else "", sport=sock.sport, backlog=backlog,
            rcvbuf=_user_rcvbuf(sock), nodelay=sock.stream.nodelay, opts=_tcp_sockopts(sock),
            family=sock.family, ipv6only=sock.ipv6only))

    def accepted(self, listener_sk: int, child_sk: int) -> None:
        self._call(self.stub.InetCskAccept, l4_pb2.TcpAccepted(listener=listener_sk, child=child_sk))

    def sendmsg(self, skbs) -> None:
        # value 1 on the write's last skb: tcp_push() marks it PSH
        last = len(skbs) - 1
        self._calls.put([(l4_pb2.TcpCall.SENDMSG, skb.sk, int(i == last), skb) for i, skb in enumerate(skbs)])

    def recvd(self, sk: int, copied: int) -> None:
        self._calls.put([(l4_pb2.TcpCall.RECVD, sk, copied, None)])

    def shutdown(self, sk: int, how: int) -> None:
        self._calls.put([(l4_pb2.TcpCall.SHUTDOWN, sk, how, None)])

    def close(self, sk: int) -> None:
        self._calls.put([(l4_pb2.TcpCall.CLOSE, sk, 0, None)])

    def abort(self, sk: int) -> None:
        try:
            self._call(self.stub.TcpAbort, l4_pb2.TcpSk(sk=sk))
        except SockError:
            pass

    def setsockopt(self, sock, **opts) -> None:
        """TCP_NODELAY and SO_RCVBUF as the socket holds them, or the one option in opts
        (L4_TCP_OPTIONS's field = the value set), which L4 acts on as it comes."""
        if opts:
            self._call(self.stub.TcpSetsockopt, l4_pb2.TcpSockopt(sk=sock.sk, **opts))
            return
        opts = l4_pb2.TcpSockopt(sk=sock.sk, nodelay=sock.stream.nodelay)
        if sock.rcvbuf_locked:
            opts.rcvbuf = sock.rcvbuf
        self._call(self.stub.TcpSetsockopt, opts)

    def ioctl(self, sk: int):
        """tcp_ioctl()'s queues as L4 has them (a TcpInfo: inq, outq, outq_nsd, and the bytes of
        the user's reads and writes it has taken); None once L4 has no such socket."""
        try:
            return self.stub.TcpGetInfo(l4_pb2.TcpSk(sk=sk), timeout=L4_TIMEOUT_S)
        except SockError as exc:
            if exc.errno != errno.ENOENT:
                raise SockError(errno.EIO, f"ioctl: {exc.detail}") from None
            return None

    def callbacks(self, batch) -> list:
        """SkCallbacks' items as the socket layer takes them. One that makes no sense (an
        unknown kind, a bad skb or address) is left out alone and counted (Hop BadCallbacks)."""
        out = []
        for it in batch.items:
            kind, child, skb = self._KINDS.get(it.kind), None, None
            try:
                if it.kind == socket_pb2.SkCallback.ACCEPT:
                    c = it.child
                    addr = ip6_from_str if c.family == AF_INET6 else ip_from_str
                    child = TcpChild(c.sk, addr(c.local.addr), c.local.port, addr(c.peer.addr), c.peer.port, c.mss,
                                     c.family or AF_INET)
                if it.kind == socket_pb2.SkCallback.DATA:
                    skb = s.from_proto(it.skb)
            except (s.SkbError, SanityError, ValueError):
                kind = None
            if kind is None:
                self._mib.inc("Hop", "BadCallbacks")
                continue
            out.append((kind, it.sk, it.value, skb, child))
        return out

    def close_hops(self) -> None:
        self._calls.close()


def _tcp_sockopts(sock) -> l4_pb2.TcpSockopt:
    """The options the user set before connect() or listen(), for L4's new tcp_sock."""
    st, opts = sock.stream, l4_pb2.TcpSockopt(sk=sock.sk)
    for name, value in (("keepalive", sock.keepalive), ("cork", st.cork), ("maxseg", st.user_mss),
                        ("keepidle", st.keepidle), ("keepintvl", st.keepintvl), ("keepcnt", st.keepcnt)):
        if value:
            setattr(opts, name, value)
    if st.pingpong:
        opts.quickack = 0
    if sock.hop_limit != -1:  # IPV6_UNICAST_HOPS, IPV6_TCLASS
        opts.hop_limit = sock.hop_limit
    if sock.tclass:
        opts.tclass = sock.tclass
    return opts


def _user_rcvbuf(sock) -> int:
    """SO_RCVBUF if the user set it, else 0: L4 autotunes it."""
    return sock.rcvbuf if sock.rcvbuf_locked else 0


class Socket:
    def __init__(self, host: str, hop, l4, *, sample=lambda flow=None: True, devs=()) -> None:
        """`hop(edge, mib)` opens an edge out of the socket layer; `l4` takes its calls to L4;
        devs: the host's interfaces in order (an IPv6 link-local address's scope id is 1 + its
        place, as `pktpath ip link` numbers them)."""
        self.mib = Mib()
        calls = L4Protocols(l4, devs)
        self.tcp = L4Tcp(l4, calls, hop, self.mib)
        self.layer = SocketLayer(host, calls, self.mib, self.tcp, sample=sample, devs=devs)

    def tcp_getsockopt(self, sock, optname: int, level: int = IPPROTO_TCP) -> int:
        """do_tcp_getsockopt() of TCP_MAXSEG or TCP_QUICKACK, IPV6_TCLASS at level IPPROTO_IPV6:
        L4 holds the tcp_sock (mss_cache, ping-pong mode, the ECN field of the last segment); for
        one it has not (not connected or listening yet) the socket answers."""
        try:
            request = l4_pb2.TcpGetsockoptRequest(sk=sock.sk, optname=optname,
                                                  level=0 if level == IPPROTO_TCP else level)
            return self.tcp.stub.TcpGetsockopt(request, timeout=L4_TIMEOUT_S).value
        except SockError as exc:
            if exc.errno != errno.ENOENT:
                raise SockError(errno.EIO, f"getsockopt: {exc.detail}") from None
            return self.layer.getsockopt(sock, level, optname)

    def tcp_info(self, sock) -> bytes:
        """getsockopt(TCP_INFO): L4 holds the tcp_sock; one it has not (a socket not yet
        connected or listening) is CLOSE, as tcp_get_info says of it."""
        try:
            return self.tcp.stub.TcpGetInfo(l4_pb2.TcpSk(sk=sock.sk), timeout=L4_TIMEOUT_S).info
        except SockError as exc:
            if exc.errno != errno.ENOENT:
                raise SockError(errno.EIO, f"TCP_INFO: {exc.detail}") from None
            return tcp_info.pack(tcpi_state=TCP_CLOSE)

    @batches(s.pb.SkBuffBatch)
    def SockQueueRcvSkb(self, request, context):
        """sock_queue_rcv_skb(): L4's delivered datagrams."""
        return s.disposition(*self.layer.sock_queue_rcv_skb(s.from_protos(request.skbs, self.mib)))

    @batches(socket_pb2.SockErrBatch)
    def SkErrorReport(self, request, context):
        """sk_error_report(): ICMP errors for sockets of this host."""
        errs = [e for e in request.errs if 0 < e.errno < sockerr.MAX_ERRNO]
        if len(errs) < len(request.errs):  # no errno a kernel could set: left out alone
            self.mib.inc("Hop", "BadErrorReports", len(request.errs) - len(errs))
        seen = sum(self.layer.sk_error_report(
            e.sk, e.errno, e.fatal, (icmp6_text if e.family == AF_INET6 else icmp_text)(e.type, e.code, e.info,
                                                                                       e.offender),
            e.type, e.code, e.family or AF_INET) for e in errs)
        return s.disposition(seen, len(request.errs) - len(errs))

    @batches(socket_pb2.SkCallbackBatch)
    def SkCallbacks(self, request, context):
        """TCP's socket callbacks from L4, in order."""
        orphans = self.layer.stream.callbacks(self.tcp.callbacks(request))
        return s.disposition(len(request.items) - orphans, orphans)

    def close(self) -> None:
        self.tcp.close_hops()
