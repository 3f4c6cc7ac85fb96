"""The L4 service of one host: the protocol side of UDP and ping sockets
(net/ipv4/udp.c, ping.c) and TCP (services/l4/tcp).

Servicer for pktpath.v1.L4: UdpRcv, PingRcv, TcpV4Rcv and IcmpErr are L3's
way up; UdpSendmsg and PingSendmsg the socket layer's way down, answered with
the errno sendmsg returns; TcpSendmsg and TcpCleanupRbuf come by hops, the
other TCP calls (connect, listen, accept, shutdown, close) are synchronous;
Hash and Unhash keep the port tables for bind, connect and close. TCP's
segments go down by a hop to L3's IpQueueXmit and its socket callbacks up by
one to the socket layer's SkCallbacks; a timer thread runs TCP's timers.
"""

import errno
import threading
import time

import grpc
from google.protobuf import empty_pb2

from pktpath import skbuff as s
from pktpath import rpc, validate
from pktpath.counters import Mib
from pktpath.hop import batches
from pktpath.pb import l3_pb2, l4_pb2
from pktpath.rpc import l3_pb2_grpc, l4_pb2_grpc, sysctl_rpc
from pktpath.seams import edge
from pktpath.services.l4.table import PortTable
from pktpath.services.l4.tcp.info import tcp_get_info
from pktpath.services.l4.tcp.ipv4 import CHILD_SK_BASE, Tcp
from pktpath.services.l4.tcp.sock import SS_NAMES, TcpState
from pktpath.services.l4.udp import Datagram
from pktpath.sockerr import SockError
from pktpath.wire.addr import ip_to_str
from pktpath.wire.icmp import ICMP_HLEN
from pktpath.wire.ipv4 import IPPROTO_TCP, IPV4_MIN_HLEN
from pktpath.wire.tcp import TCP_MIN_HLEN
from pktpath.wire.udp import UDP_HLEN

pb = s.pb
SEND_TIMEOUT_S = 10
TCP_TIMER_TICK_S = 0.02  # the longest the timer thread sleeps; TCP's shortest timer is 40 ms
class L4Servicer(l4_pb2_grpc.L4Servicer):
    def __init__(self, ctx) -> None:
        self.ctx = ctx
        self.mib = Mib()
        host = ctx.topology.host(ctx.host)
        self._channel = ctx.addrs.channel(ctx.host, "l3")
        self.l3 = l3_pb2_grpc.L3Stub(self._channel)  # the send path's synchronous calls
        self.to_sock = ctx.hop(edge("l4", "socket"), self.mib)
        self.to_sock_err = ctx.hop(edge("l4", "socket-err"), self.mib)
        self.to_icmp = ctx.hop(edge("l4", "icmp-send"), self.mib)
        self.dgram = Datagram(ctx.host, [int(i.addr.ip) for i in host.interfaces], mib=self.mib,
                              to_sock=self.to_sock.put, sk_err=self.to_sock_err.put,
                              icmp_send=lambda skb, type_, code: self.to_icmp.put([(skb, type_, code)]),
                              route_output=self._route_output, ip_queue_xmit=self._ip_queue_xmit)
        self.tcp_ports = PortTable(IPPROTO_TCP, [int(i.addr.ip) for i in host.interfaces])
        self.to_ip = ctx.hop(edge("l4", "ip"), self.mib)
        self.to_sock_cb = ctx.hop(edge("l4", "socket-cb"), self.mib)
        self.tcp = Tcp(ctx.host, mib=self.mib, ip_queue_xmit=self.to_ip.put, to_sock=self.to_sock_cb.put,
                       route_output=self._route_output_mtu, congestion_control=host.tcp_congestion_control,
                       timewait_len=host.tcp_timewait)
        self._stop = threading.Event()
        self._session_lock = threading.Lock()
        self._session: object | None = None  # the socket layer's session, while one is open
        self._sk_high = 0  # the highest socket id the socket layer has used here
        threading.Thread(target=self._tcp_timers, name="tcp-timers", daemon=True).start()

    def _tcp_timers(self) -> None:
        while not self._stop.is_set():
            deadline = self.tcp.run_timers()
            wait = TCP_TIMER_TICK_S if not deadline else deadline - time.monotonic()
            self._stop.wait(min(max(wait, 0.001), TCP_TIMER_TICK_S))

    def _route_output_mtu(self, daddr: int) -> tuple[int, int, int]:
        res = self.l3.IpRouteOutput(l3_pb2.Flowi4(daddr=daddr), timeout=SEND_TIMEOUT_S)
        return res.errno, res.saddr, res.mtu

    def _route_output(self, daddr: int) -> tuple[int, int]:
        err, saddr, _ = self._route_output_mtu(daddr)
        return err, saddr

    def _ip_queue_xmit(self, skbs) -> int:
        try:
            return self.l3.IpQueueXmit(iter([s.to_batch(skbs)]), timeout=SEND_TIMEOUT_S).errno
        except grpc.RpcError:
            self.mib.drop(pb.PKTPATH_DROP_REASON_HOP_FAILED, len(skbs))
            return errno.EIO  # IPv4 below is unreachable

    # -- receive ------------------------------------------------------------------
    @batches(pb.SkBuffBatch)
    def UdpRcv(self, request, context):
        """udp_rcv()."""
        return s.disposition(*self.dgram.udp_rcv(s.from_protos(request.skbs, self.mib, IPV4_MIN_HLEN, UDP_HLEN)))

    @batches(pb.SkBuffBatch)
    def PingRcv(self, request, context):
        """ping_rcv()."""
        return s.disposition(*self.dgram.ping_rcv(s.from_protos(request.skbs, self.mib, IPV4_MIN_HLEN, ICMP_HLEN)))

    @batches(pb.SkBuffBatch)
    def TcpV4Rcv(self, request, context):
        """tcp_v4_rcv()."""
        return s.disposition(*self.tcp.tcp_v4_rcv(s.from_protos(request.skbs, self.mib, IPV4_MIN_HLEN, TCP_MIN_HLEN)))

    @batches(l4_pb2.IcmpErrBatch)
    def IcmpErr(self, request, context):
        """icmp_unreach → the err_handler of the quoted protocol."""
        items = [(skb, e.type, e.code, e.info) for e in request.errs
                 if (skb := s.checked(e.skb, self.mib)) is not None]
        return s.disposition(*self.dgram.icmp_err(items))

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

    def UdpSendmsg(self, request, context):
        return self._sendmsg(request, self.dgram.udp_sendmsg)

    def PingSendmsg(self, request, context):
        return self._sendmsg(request, self.dgram.ping_sendmsg)

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

    @staticmethod
    def _endpoint(context, addr: str, port: int, side: str) -> tuple[int, int]:
        """An address and port from the socket layer: EINVAL for what no sockaddr_in holds."""
        try:
            return validate.ipv4(addr, f"{side} address"), validate.port(port, f"{side} port")
        except validate.Invalid as exc:
            rpc.abort(context, errno.EINVAL, str(exc))

    def _user_sk(self, sk: int) -> None:
        if sk < CHILD_SK_BASE:
            self._sk_high = max(self._sk_high, sk)

    def TcpV4Connect(self, request, context):
        self._user_sk(request.sk)
        saddr, sport = self._endpoint(context, request.saddr, request.sport, "source")
        daddr, dport = self._endpoint(context, request.daddr, request.dport, "destination")
        err, saddr = self.tcp.connect(request.sk, saddr, sport, daddr, dport, rcvbuf=request.rcvbuf,
                                      nodelay=request.nodelay)
        return l4_pb2.TcpConnectReply(errno=err, saddr=ip_to_str(saddr) if saddr else "")

    def InetCskListenStart(self, request, context):
        self._user_sk(request.sk)
        saddr, sport = self._endpoint(context, request.saddr, request.sport, "source")
        self.tcp.listen(request.sk, saddr, sport, request.backlog, rcvbuf=request.rcvbuf, nodelay=request.nodelay)
        return empty_pb2.Empty()

    def InetCskAccept(self, request, context):
        self.tcp.accepted(request.listener, request.child)
        return empty_pb2.Empty()

    def TcpAbort(self, request, context):
        self.tcp.abort(request.sk)
        return empty_pb2.Empty()

    def TcpSetsockopt(self, request, context):
        self.tcp.setsockopt(request.sk, nodelay=request.nodelay if request.HasField("nodelay") else None,
                            rcvbuf=request.rcvbuf if request.HasField("rcvbuf") else None)
        return empty_pb2.Empty()

    def GetTcpSockets(self, request, context):
        def info(tp) -> l4_pb2.TcpSockInfo:
            listening = tp.state == TcpState.LISTEN
            return l4_pb2.TcpSockInfo(
                sk=tp.sk, state=SS_NAMES[tp.state], saddr=ip_to_str(tp.saddr), sport=tp.sport,
                daddr=ip_to_str(tp.daddr), dport=tp.dport, recv_q=len(tp.accept_queue) if listening else tp.unread,
                send_q=tp.backlog if listening else tp.send_queue_bytes(), cwnd=tp.cwnd,
                ssthresh=min(tp.ssthresh, 0xFFFFFFFF), mss=tp.mss_cache, rto_ms=tp.rto * 1000,
                srtt_ms=tp.srtt * 1000, cong=tp.ca.name if tp.ca else "", snd_wnd=tp.snd_wnd, rcv_wnd=tp.rcv_wnd,
                unacked=tp.packets_out, rcvbuf=tp.rcvbuf)

        return l4_pb2.TcpSockTable(socks=self.tcp.sockets(info))

    # -- port tables ------------------------------------------------------------------
    def Hash(self, request, context):
        """inet_bind / inet_autobind / ip4_datagram_connect: returns the socket's addresses."""
        self._user_sk(request.sk)
        saddr, sport = self._endpoint(context, request.saddr, request.sport, "source")
        daddr, dport = self._endpoint(context, request.daddr, request.dport, "destination")
        try:
            table = self._table(request.protocol)
            if daddr and not saddr:
                bound = table.get(request.sk)
                saddr = bound.saddr if bound is not None and bound.saddr else 0
                if not saddr:
                    err, saddr = self._route_output(daddr)
                    if err:
                        raise SockError(err, f"no route to {request.daddr}")
            e = table.hash(request.sk, saddr, sport, daddr, dport)
        except SockError as exc:
            rpc.abort(context, exc.errno)
        return l4_pb2.SockAddrs(sk=e.sk, protocol=e.protocol, saddr=ip_to_str(e.saddr), sport=e.sport,
                                daddr=ip_to_str(e.daddr), dport=e.dport)

    def Unhash(self, request, context):
        try:
            self._table(request.protocol).unhash(request.sk)
        except SockError as exc:
            rpc.abort(context, exc.errno)
        return empty_pb2.Empty()

    # -- the socket layer above -----------------------------------------------------------
    def SocketLayerSession(self, request, context):
        """The socket layer's session, open while both live. When it ends (the socket layer
        died, or a new one arrived while the old session still looked open), every socket
        the old one held is ended here, as the kernel ends a dead process's files: TCP
        sockets closed (a FIN, or a reset for unread data and unaccepted children), every
        port unhashed. The answer gives the new socket layer ids above every one the old
        one used (orphans still finish here, in FIN-WAIT or TIME-WAIT), so none is taken
        for another."""
        session, ended = object(), threading.Event()
        context.add_callback(ended.set)
        with self._session_lock:
            if self._session is not None:
                self._socket_layer_gone()
            self._session = session
            # above every id the last socket layer used, not only those still running here: a
            # callback for one of them may still be on its way up, and must find no new socket
            sk_base = max(self._sk_high, self.tcp.max_user_sk()) + 1
        yield l4_pb2.Session(sk_base=sk_base)
        ended.wait()
        with self._session_lock:
            if self._session is session:
                self._session = None
                if not self._stop.is_set():
                    self._socket_layer_gone()

    def _socket_layer_gone(self) -> None:
        closed = self.tcp.close_all()
        freed = sum(t.clear() for t in (self.tcp_ports, self.dgram.udp, self.dgram.ping))
        self.mib.inc("Peer", "SocketLayerLost")
        self.mib.inc("Peer", "SocketsClosed", closed)
        self.mib.inc("Peer", "PortsFreed", freed)

    def stopping(self) -> None:
        """The service is going down: the sessions it ends are not the socket layer's death."""
        self._stop.set()

    def _table(self, protocol: int) -> PortTable:
        return self.tcp_ports if protocol == IPPROTO_TCP else self.dgram.table(protocol)

    def GetCounters(self, request, context):
        return self.mib.to_proto()

    def TcpGetInfo(self, request, context):
        tp = self.tcp.sock(request.sk)
        if tp is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no TCP socket {request.sk}")
        return l4_pb2.TcpInfo(info=tcp_get_info(tp, self.tcp.delack))

    def Sysctl(self, request, context):
        return sysctl_rpc(self.tcp.sysctls, request, context, self.mib)

    def close(self) -> None:
        self._stop.set()
        for hop in (self.to_sock, self.to_sock_err, self.to_icmp, self.to_ip, self.to_sock_cb):
            hop.close()
        self._channel.close()


def build(ctx) -> L4Servicer:
    return L4Servicer(ctx)
