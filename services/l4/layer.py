"""L4 of one host without its RPC surface: the protocol side of UDP and ping sockets over
IPv4 (services/l4/udp.py) and IPv6 (services/l4/udp6.py), TCP over both (services/l4/tcp)
and the port tables both families share, fed by the edges into it (pktpath/seams.py) and
answering the socket layer's synchronous calls.

The L4 service serves it over gRPC (services/l4/server.py); the one-process stack
(pktpath/drill/local.py) calls it directly. `l3` takes L4's synchronous calls to L3
(IpRouteOutput, IpQueueXmit; IPv6's Ip6RouteOutput, Ip6SendSkb, Ipv6ChkAddr), raising
SockError when L3 cannot answer. A call that fails raises SockError with its errno. TCP's
timers are the caller's to run (self.tcp.run_timers).
"""

import errno
import time

from google.protobuf import empty_pb2

from pktpath import skbuff as s
from pktpath import validate
from pktpath.counters import Mib
from pktpath.hop import batches
from pktpath.pb import l3_pb2, l4_pb2
from pktpath.seams import edge
from pktpath.services.l3.ipv6 import Flowi6
from pktpath.services.l4.table import AF_INET, AF_INET6, PortTable, SockEntry
from pktpath.services.l4.tcp.info import tcp_get_info, tcp_ioctl
from pktpath.services.l4.tcp.ipv4 import CHILD_SK_BASE, IPPROTO_IPV6, IPV6_TCLASS, TCP_MAXSEG, TCP_QUICKACK, Tcp
from pktpath.services.l4.udp import Datagram
from pktpath.services.l4.udp6 import Datagram6, icmpv6_err_convert, ipv6_addr_needs_scope_id, is_ipv6
from pktpath.sockerr import SockError
from pktpath.sysctl import left_out
from pktpath.wire.addr import ip6_to_str, ip_to_str, ipv6_addr_set_v4mapped, ipv6_addr_v4mapped
from pktpath.wire.icmp import ICMP_HLEN
from pktpath.wire.ipv4 import IPPROTO_TCP, IPV4_MIN_HLEN
from pktpath.wire.ipv6 import IPPROTO_ICMPV6, IPV6_HLEN
from pktpath.wire.tcp import TCP_MIN_HLEN
from pktpath.wire.udp import UDP_HLEN

pb = s.pb
SEND_TIMEOUT_S = 10


class L4:
    def __init__(self, host: str, config, hop, l3, *, clock=time.monotonic) -> None:
        """`config` is the host's topology entry; `hop(edge, mib)` opens an edge out of L4."""
        self.mib = Mib()
        self.l3 = l3
        addrs = [int(i.addr.ip) for i in config.interfaces]
        self.to_sock = hop(edge("l4", "socket"), self.mib)
        self.to_sock_err = hop(edge("l4", "socket-err"), self.mib)
        self.to_icmp = hop(edge("l4", "icmp-send"), self.mib)
        self.dgram = Datagram(host, addrs, mib=self.mib, to_sock=self.to_sock.put, sk_err=self.to_sock_err.put,
                              icmp_send=lambda skb, type_, code: self.to_icmp.put([(skb, type_, code)]),
                              route_output=self._route_output, ip_queue_xmit=self._ip_queue_xmit)
        self.to_icmp6 = hop(edge("l4", "icmpv6-send"), self.mib)
        self.dgram6 = Datagram6(host, self.dgram, mib=self.mib, to_sock=self.to_sock.put, sk_err=self.to_sock_err.put,
                                icmp6_send=lambda skb, type_, code: self.to_icmp6.put([(skb, type_, code)]),
                                route_output6=self._route_output6, ip6_send=self._ip6_send_skb,
                                devs=[i.name for i in config.interfaces])
        for table in (self.dgram.udp, self.dgram.ping):
            table.chk_addr6 = self._ipv6_chk_addr
        self.tcp_ports = PortTable(IPPROTO_TCP, addrs, chk_addr6=self._ipv6_chk_addr)
        self.to_ip = hop(edge("l4", "ip"), self.mib)
        self.to_ip6 = hop(edge("l4", "ip6"), self.mib)
        self.to_sock_cb = hop(edge("l4", "socket-cb"), self.mib)
        self.tcp = Tcp(host, mib=self.mib, ip_queue_xmit=self.to_ip.put, to_sock=self.to_sock_cb.put,
                       route_output=self._route_output_mtu, congestion_control=config.tcp_congestion_control,
                       timewait_len=config.tcp_timewait, clock=clock, tsq=not left_out("tsq"),
                       ip6_xmit=self.to_ip6.put, route_output6=self._route_output6_mtu, sk_err=self.to_sock_err.put,
                       devs=[i.name for i in config.interfaces])
        self._sk_high = 0  # the highest socket id the socket layer has used here

    def _route_output_mtu(self, daddr: int) -> tuple[int, int, int]:
        res = self.l3.IpRouteOutput(l3_pb2.Flowi4(daddr=daddr), timeout=SEND_TIMEOUT_S)
        return res.errno, res.saddr, res.mtu

    def _route_output(self, daddr: int) -> tuple[int, int]:
        err, saddr, _ = self._route_output_mtu(daddr)
        return err, saddr

    def _route_output6(self, flow: Flowi6) -> tuple[int, int]:
        """ip6_dst_lookup_flow(): (errno, the source address the route gives)."""
        res = self.l3.Ip6RouteOutput(_flowi6_msg(flow), timeout=SEND_TIMEOUT_S)
        return res.errno, int.from_bytes(res.saddr, "big") if len(res.saddr) == 16 else 0

    def _route_output6_mtu(self, daddr: int, dev: str = "") -> tuple[int, int, int]:
        """ip6_dst_lookup_flow() for TCP: (errno, source address, path MTU); L3 away is ENETUNREACH."""
        try:
            res = self.l3.Ip6RouteOutput(_flowi6_msg(Flowi6(daddr, 0, IPPROTO_TCP, oif=dev)), timeout=SEND_TIMEOUT_S)
        except SockError:
            return errno.ENETUNREACH, 0, 0
        return res.errno, int.from_bytes(res.saddr, "big") if len(res.saddr) == 16 else 0, res.mtu

    def _ip6_send_skb(self, skb, flow: Flowi6, pmtudisc: int) -> int:
        """ip6_send_skb(): one datagram down, waiting for its errno."""
        batch = l3_pb2.Ip6SendBatch()
        item = batch.items.add()
        s.to_proto(skb, item.skb)
        item.flow.CopyFrom(_flowi6_msg(flow, pmtudisc))
        try:
            return self.l3.Ip6SendSkb(batch, timeout=SEND_TIMEOUT_S).errno
        except SockError as exc:  # IPv6 below is unreachable
            self.mib.drop(pb.PKTPATH_DROP_REASON_HOP_FAILED)
            return exc.errno

    def _ipv6_chk_addr(self, addr: int, dev: str) -> bool:
        """ipv6_chk_addr() for inet6_bind: L3 knows the addresses (and which are tentative)."""
        return self.l3.Ipv6ChkAddr(l3_pb2.Ipv6ChkAddrRequest(addr=addr.to_bytes(16, "big"), dev=dev),
                                   timeout=SEND_TIMEOUT_S).ours

    def _ip_queue_xmit(self, skbs) -> int:
        try:
            return self.l3.IpQueueXmit(iter([s.to_batch(skbs)]), timeout=SEND_TIMEOUT_S).errno
        except SockError as exc:  # IPv4 below is unreachable
            self.mib.drop(pb.PKTPATH_DROP_REASON_HOP_FAILED, len(skbs))
            return exc.errno

    # -- receive ------------------------------------------------------------------
    @batches(pb.SkBuffBatch)
    def UdpRcv(self, request, context):
        """udp_rcv()."""
        return s.disposition(*self.dgram.udp_rcv(s.from_protos(request.skbs, self.mib, IPV4_MIN_HLEN, UDP_HLEN)))

    @batches(pb.SkBuffBatch)
    def Udpv6Rcv(self, request, context):
        """udpv6_rcv()."""
        return s.disposition(*self.dgram6.udpv6_rcv(s.from_protos(request.skbs, self.mib, IPV6_HLEN, UDP_HLEN)))

    @batches(pb.SkBuffBatch)
    def PingRcv(self, request, context):
        """ping_rcv(): echo replies of both families, told apart as skb->protocol tells them."""
        skbs = s.from_protos(request.skbs, self.mib, IPV4_MIN_HLEN, ICMP_HLEN)
        v6 = [skb for skb in skbs if is_ipv6(skb)]
        accepted, dropped = self.dgram.ping_rcv([skb for skb in skbs if not is_ipv6(skb)]) if len(v6) < len(skbs) \
            else (0, 0)
        if v6:
            a6, d6 = self.dgram6.ping_rcv6(v6)
            accepted, dropped = accepted + a6, dropped + d6
        return s.disposition(accepted, dropped)

    @batches(pb.SkBuffBatch)
    def TcpV4Rcv(self, request, context):
        """tcp_v4_rcv()."""
        return s.disposition(*self.tcp.tcp_v4_rcv(s.from_protos(request.skbs, self.mib, IPV4_MIN_HLEN, TCP_MIN_HLEN)))

    @batches(pb.SkBuffBatch)
    def TcpV6Rcv(self, request, context):
        """tcp_v6_rcv()."""
        return s.disposition(*self.tcp.tcp_v6_rcv(s.from_protos(request.skbs, self.mib, IPV6_HLEN, TCP_MIN_HLEN)))

    @batches(l4_pb2.IcmpErrBatch)
    def IcmpErr(self, request, context):
        """icmp_unreach → the err_handler of the quoted protocol."""
        items = [(skb, e.type, e.code, e.info) for e in request.errs
                 if (skb := s.checked(e.skb, self.mib)) is not None]
        return s.disposition(*self.dgram.icmp_err(items))

    @batches(l4_pb2.Icmp6ErrBatch)
    def Icmpv6Err(self, request, context):
        """icmpv6_notify → udpv6_err / ping_err, tcp_v6_err for a quoted TCP segment."""
        items = [(skb, e.type, e.code, e.info, e.nexthdr, e.offset) for e in request.errs
                 if (skb := s.checked(e.skb, self.mib, IPV6_HLEN)) is not None]
        tcp = [(skb, type_, code, info, offset) for skb, type_, code, info, nexthdr, offset in items
               if nexthdr == IPPROTO_TCP]
        taken, unmatched = self.dgram6.icmpv6_err([i for i in items if i[4] != IPPROTO_TCP]) if len(tcp) < len(
            items) else (0, 0)
        if tcp:
            t6, u6 = self.tcp.tcp_v6_err(tcp, icmpv6_err_convert)
            taken, unmatched = taken + t6, unmatched + u6
        return s.disposition(taken, unmatched)

    # -- send -----------------------------------------------------------------------
    def _sendmsg(self, request, send):
        d = pb.Disposition()
        for m in request.skbs:
            skb = s.checked(m, self.mib)
            err = errno.EINVAL if skb is None else send(skb)
            if err:
                d.dropped += 1
                d.errno = err
            else:
                d.accepted += 1
        return d

    def _family(self, table: PortTable, sk: int) -> int:
        entry = table.get(sk)
        return entry.family if entry is not None else 0

    def UdpSendmsg(self, request, context):
        """udp_sendmsg(), or udpv6_sendmsg() for an AF_INET6 socket."""
        return self._sendmsg(request, lambda skb: self.dgram6.udpv6_sendmsg(skb) if self._family(
            self.dgram.udp, skb.sk) == AF_INET6 else self.dgram.udp_sendmsg(skb))

    def PingSendmsg(self, request, context):
        """ping_v4_sendmsg(), or ping_v6_sendmsg() for an AF_INET6 socket."""
        return self._sendmsg(request, lambda skb: self.dgram6.ping_v6_sendmsg(skb) if self._family(
            self.dgram.ping, skb.sk) == AF_INET6 else self.dgram.ping_sendmsg(skb))

    # -- TCP's socket calls ------------------------------------------------------------
    @batches(l4_pb2.TcpCallBatch)
    def TcpSocketCalls(self, request, context):
        """The socket layer's TCP calls, in order; consecutive sends of a socket are one tcp_sendmsg."""
        refused, sends, pushes, sk = 0, [], [], 0

        def send() -> int:
            n = len(sends) if sends and self.tcp.sendmsg(sk, sends, pushes) else 0
            sends.clear()
            pushes.clear()
            return n

        for call in request.calls:
            if call.kind == l4_pb2.TcpCall.SENDMSG:
                if sends and call.sk != sk:
                    refused += send()
                skb = s.checked(call.skb, self.mib)
                if skb is None:
                    refused += 1
                    continue
                sk = call.sk
                sends.append(skb)
                pushes.append(bool(call.value))
                continue
            refused += send()
            if call.kind == l4_pb2.TcpCall.RECVD:
                self.tcp.recvd(call.sk, call.value)
            elif call.kind == l4_pb2.TcpCall.SHUTDOWN:
                self.tcp.shutdown(call.sk, call.value)
            elif call.kind == l4_pb2.TcpCall.CLOSE:
                self.tcp.close(call.sk)
        refused += send()
        return s.disposition(len(request.calls) - refused, refused)

    @batches(l4_pb2.SkWfreeBatch)
    def TcpWfree(self, request, context):
        """tcp_wfree(): what freed skbs give back to their sockets."""
        self.tcp.tcp_wfree([(i.sk, i.truesize, i.pacing_fq) for i in request.items])
        return s.disposition(len(request.items), 0)

    @staticmethod
    def _endpoint(addr: str, port: int, side: str) -> tuple[int, int]:
        """An address and port from the socket layer: EINVAL for what no sockaddr_in holds."""
        try:
            return validate.ipv4(addr, f"{side} address"), validate.port(port, f"{side} port")
        except validate.Invalid as exc:
            raise SockError(errno.EINVAL, str(exc)) from None

    def _user_sk(self, sk: int) -> None:
        if sk < CHILD_SK_BASE:
            self._sk_high = max(self._sk_high, sk)

    def TcpV4Connect(self, request, context):
        self._user_sk(request.sk)
        saddr, sport = self._endpoint(request.saddr, request.sport, "source")
        daddr, dport = self._endpoint(request.daddr, request.dport, "destination")
        err, saddr = self.tcp.connect(request.sk, saddr, sport, daddr, dport, rcvbuf=request.rcvbuf,
                                      nodelay=request.nodelay, opts=_tcp_sockopts(request.opts))
        return l4_pb2.TcpConnectReply(errno=err, saddr=ip_to_str(saddr) if saddr else "")

    def TcpV6Connect(self, request, context):
        """tcp_v6_connect(): the socket layer has mapped :: to ::1 and refused a multicast peer
        and a link-local one without an interface; a v4-mapped peer goes on over IPv4
        (tcp_v4_connect, ENETUNREACH from an IPV6_V6ONLY socket), any other over IPv6. The
        source address comes back in IPv6 text (v4-mapped for an IPv4 peer)."""
        self._user_sk(request.sk)
        saddr, sport = self._endpoint6(request.saddr, request.sport, "source")
        daddr, dport = self._endpoint6(request.daddr, request.dport, "destination")
        opts = dict(rcvbuf=request.rcvbuf, nodelay=request.nodelay, opts=_tcp_sockopts(request.opts))
        if ipv6_addr_v4mapped(daddr):
            if request.ipv6only:
                return l4_pb2.TcpConnectReply(errno=errno.ENETUNREACH)
            if saddr and not ipv6_addr_v4mapped(saddr):  # bound to an IPv6 address: no IPv4 to send from
                return l4_pb2.TcpConnectReply(errno=errno.ENETUNREACH)
            err, src = self.tcp.connect(request.sk, saddr & 0xFFFFFFFF, sport, daddr & 0xFFFFFFFF, dport,
                                        family=AF_INET6, **opts)
            src = ipv6_addr_set_v4mapped(src) if src else 0
        else:
            if ipv6_addr_v4mapped(saddr):
                return l4_pb2.TcpConnectReply(errno=errno.EAFNOSUPPORT)
            err, src = self.tcp.connect6(request.sk, saddr, sport, daddr, dport, dev=request.dev, **opts)
        return l4_pb2.TcpConnectReply(errno=err, saddr=ip6_to_str(src) if src else "")

    def InetCskListenStart(self, request, context):
        self._user_sk(request.sk)
        if request.family == AF_INET6:
            saddr, sport = self._endpoint6(request.saddr, request.sport, "source")
        else:
            saddr, sport = self._endpoint(request.saddr, request.sport, "source")
        self.tcp.listen(request.sk, saddr, sport, request.backlog, rcvbuf=request.rcvbuf, nodelay=request.nodelay,
                        opts=_tcp_sockopts(request.opts), family=request.family or AF_INET,
                        ipv6only=request.ipv6only)
        return empty_pb2.Empty()

    def InetCskAccept(self, request, context):
        self.tcp.accepted(request.listener, request.child)
        return empty_pb2.Empty()

    def TcpAbort(self, request, context):
        self.tcp.abort(request.sk)
        return empty_pb2.Empty()

    def TcpSetsockopt(self, request, context):
        self.tcp.setsockopt(request.sk, nodelay=request.nodelay if request.HasField("nodelay") else None,
                            rcvbuf=request.rcvbuf if request.HasField("rcvbuf") else None,
                            **_tcp_sockopts(request))
        return empty_pb2.Empty()

    def TcpGetsockopt(self, request, context):
        """do_tcp_getsockopt() for TCP_MAXSEG and TCP_QUICKACK, do_ipv6_getsockopt() for
        IPV6_TCLASS (level IPPROTO_IPV6): ENOENT for a socket L4 does not hold (the socket layer
        answers for it), ENOPROTOOPT for another option."""
        level = request.level or IPPROTO_TCP
        if (level, request.optname) not in ((IPPROTO_TCP, TCP_MAXSEG), (IPPROTO_TCP, TCP_QUICKACK),
                                            (IPPROTO_IPV6, IPV6_TCLASS)):
            raise SockError(errno.ENOPROTOOPT, f"level {level} option {request.optname}")
        value = self.tcp.getsockopt(request.sk, request.optname, level)
        if value is None:
            raise SockError(errno.ENOENT, f"no TCP socket {request.sk}")
        return l4_pb2.TcpGetsockoptReply(value=value)

    # -- port tables ------------------------------------------------------------------
    def Hash(self, request, context):
        """inet_bind / inet_autobind / ip4_datagram_connect: returns the socket's addresses.
        An AF_INET6 socket's: inet6_bind / ip6_datagram_connect (_hash6)."""
        self._user_sk(request.sk)
        if request.family == AF_INET6:
            return self._hash6(request)
        saddr, sport = self._endpoint(request.saddr, request.sport, "source")
        daddr, dport = self._endpoint(request.daddr, request.dport, "destination")
        table = self._table(request.protocol)
        if daddr and not saddr:
            bound = table.get(request.sk)
            saddr = bound.saddr if bound is not None and bound.saddr else 0
            if not saddr:
                err, saddr = self._route_output(daddr)
                if err:
                    raise SockError(err, f"no route to {request.daddr}")
        e = table.hash(request.sk, saddr, sport, daddr, dport)
        return l4_pb2.SockAddrs(sk=e.sk, protocol=e.protocol, saddr=ip_to_str(e.saddr), sport=e.sport,
                                daddr=ip_to_str(e.daddr), dport=e.dport)

    @staticmethod
    def _endpoint6(addr: str, port: int, side: str) -> tuple[int, int]:
        """An IPv6 address and port from the socket layer: EINVAL for what no sockaddr_in6 holds."""
        try:
            return validate.ipv6(addr, f"{side} address"), validate.port(port, f"{side} port")
        except validate.Invalid as exc:
            raise SockError(errno.EINVAL, str(exc)) from None

    def _hash6(self, request) -> l4_pb2.SockAddrs:
        """inet6_bind(), inet_autobind() and ip6_datagram_connect() for an AF_INET6 socket, as
        Linux 6.18 answers (checked in a namespace): binding a v4-mapped address with
        IPV6_V6ONLY set, or any from a ping socket, is EINVAL, a link-local one without an
        interface EINVAL, one not the host's EADDRNOTAVAIL; connecting to a v4-mapped peer from
        an IPV6_V6ONLY socket, or from one bound to an IPv6 address, is ENETUNREACH. The source
        of a connected socket bound to :: is the route's (v4-mapped for an IPv4 peer)."""
        saddr, sport = self._endpoint6(request.saddr, request.sport, "source")
        daddr, dport = self._endpoint6(request.daddr, request.dport, "destination")
        table = self._table(request.protocol)
        bound = table.get(request.sk)
        dev = request.dev or (bound.dev if bound is not None else "")
        if not daddr:  # bind or autobind
            if ipv6_addr_v4mapped(saddr) and (request.ipv6only or request.protocol == IPPROTO_ICMPV6):
                raise SockError(errno.EINVAL, "an IPv6-only socket binds no IPv4 address")
            if saddr and ipv6_addr_needs_scope_id(saddr) and not dev:
                raise SockError(errno.EINVAL, "a link-local address needs an interface (sin6_scope_id)")
        else:
            saddr = saddr or (bound.saddr if bound is not None else 0)
            me = SockEntry(request.sk, request.protocol, saddr, family=AF_INET6, ipv6only=request.ipv6only)
            if ipv6_addr_v4mapped(daddr):
                v4 = me.v4_side()
                if v4 is None:
                    raise SockError(errno.ENETUNREACH, "an IPv6-only socket, or one bound to an IPv6 address, "
                                                       "reaches no IPv4 peer")
                if not v4:
                    err, v4 = self._route_output(daddr & 0xFFFFFFFF)
                    if err:
                        raise SockError(err, f"no route to {request.daddr}")
                saddr = ipv6_addr_set_v4mapped(v4)
            elif me.v6_side() is None:
                raise SockError(errno.EAFNOSUPPORT, "a socket on an IPv4 address reaches no IPv6 peer")
            elif not saddr:
                err, saddr = self._route_output6(Flowi6(daddr, 0, request.protocol, oif=dev))
                if err:
                    raise SockError(err, f"no route to {request.daddr}")
        e = table.hash(request.sk, saddr, sport, daddr, dport, family=AF_INET6, ipv6only=request.ipv6only, dev=dev,
                       check_local=not daddr)
        return l4_pb2.SockAddrs(sk=e.sk, protocol=e.protocol, saddr=ip6_to_str(e.saddr), sport=e.sport,
                                daddr=ip6_to_str(e.daddr), dport=e.dport, family=AF_INET6, ipv6only=e.ipv6only,
                                dev=e.dev)

    def Unhash(self, request, context):
        self._table(request.protocol).unhash(request.sk)
        return empty_pb2.Empty()

    def _table(self, protocol: int) -> PortTable:
        return self.tcp_ports if protocol == IPPROTO_TCP else self.dgram.table(protocol)

    def TcpGetInfo(self, request, context):
        """tcp_get_info() for getsockopt(TCP_INFO), and tcp_ioctl()'s queues with the bytes of
        the user's reads and writes that reached L4 (the socket layer adds those on their way)."""
        reply = self.tcp.sock_view(request.sk, self._tcp_info)
        if reply is None:
            raise SockError(errno.ENOENT, f"no TCP socket {request.sk}")
        return reply

    def _tcp_info(self, tp) -> l4_pb2.TcpInfo:
        inq, outq, outq_nsd = tcp_ioctl(tp)
        return l4_pb2.TcpInfo(info=tcp_get_info(tp, self.tcp.delack), inq=inq, outq=outq, outq_nsd=outq_nsd,
                              user_copied=tp.user_copied, user_written=tp.user_written)

    def close(self) -> None:
        for hop in (self.to_sock, self.to_sock_err, self.to_icmp, self.to_icmp6, self.to_ip, self.to_ip6,
                    self.to_sock_cb):
            hop.close()


def _flowi6_msg(flow: Flowi6, pmtudisc: int = 1) -> l3_pb2.Flowi6:
    """L3's Flowi6 as its message."""
    return l3_pb2.Flowi6(daddr=flow.daddr.to_bytes(16, "big"), saddr=flow.saddr.to_bytes(16, "big") if flow.saddr
                         else b"", proto=flow.proto, oif=flow.oif, hop_limit=flow.hop_limit, tclass=flow.tclass,
                         flowlabel=flow.flowlabel, pmtudisc=pmtudisc, icmp_type=flow.icmp_type,
                         icmp_code=flow.icmp_code)


# TcpSockopt's fields that Tcp._tcp_setsockopt takes
_TCP_SOCKOPTS = ("keepalive", "keepidle", "keepintvl", "keepcnt", "quickack", "maxseg", "cork", "hop_limit", "tclass")


def _tcp_sockopts(msg) -> dict:
    """The options a TcpSockopt sets, as Tcp's keyword arguments."""
    return {name: getattr(msg, name) for name in _TCP_SOCKOPTS if msg.HasField(name)}
