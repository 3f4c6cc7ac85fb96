"""The L4 service of one host: UDP and ping sockets' protocol side (net/ipv4/udp.c,
ping.c); TCP arrives with issue 5.

Servicer for pktpath.v1.L4: UdpRcv, PingRcv and IcmpErr are L3's way up;
UdpSendmsg and PingSendmsg the socket layer's way down, answered with the
errno sendmsg returns; Hash and Unhash keep the port tables for bind,
connect and close.
"""

import errno

import grpc
from google.protobuf import empty_pb2

from pktpath import skbuff as s
from pktpath import sockerr
from pktpath.counters import Mib
from pktpath.hop import Hop, batches
from pktpath.pb import l3_pb2, l3_pb2_grpc, l4_pb2, l4_pb2_grpc, socket_pb2
from pktpath.config import hop_path
from pktpath.service import channel
from pktpath.services.l4.udp import Datagram
from pktpath.sockerr import SockError
from pktpath.wire.addr import ip_from_str, ip_to_str
from pktpath.wire.errors import SanityError

pb = s.pb
SEND_TIMEOUT_S = 10


def _sock_err_batch(errs) -> socket_pb2.SockErrBatch:
    batch = socket_pb2.SockErrBatch()
    for sk, err, fatal, offender, type_, code, info in errs:
        batch.errs.add(sk=sk, errno=err, fatal=fatal, offender=ip_to_str(offender), type=type_, code=code, info=info)
    return batch


def _icmp_send_batch(items) -> l3_pb2.IcmpSendBatch:
    batch = l3_pb2.IcmpSendBatch()
    for skb, type_, code in items:
        s.to_proto(skb, batch.requests.add(type=type_, code=code).skb_in)
    return batch


class L4Servicer(l4_pb2_grpc.L4Servicer):
    def __init__(self, ctx) -> None:
        self.ctx = ctx
        self.mib = Mib()
        host = ctx.topology.host(ctx.host)
        self._channel = channel(ctx.addrs.target(ctx.host, "l3"))
        self.l3 = l3_pb2_grpc.L3Stub(self._channel)  # the send path's synchronous calls
        sock_path = hop_path(ctx.run_id, ctx.host, "socket")
        self.to_sock = Hop("socket", sock_path, "SockQueueRcvSkb", s.to_batch, self.mib)
        self.to_sock_err = Hop("socket-err", sock_path, "SkErrorReport", _sock_err_batch, self.mib)
        self.to_icmp = Hop("icmp-send", hop_path(ctx.run_id, ctx.host, "l3"), "IcmpSend", _icmp_send_batch, self.mib)
        self.dgram = Datagram(ctx.host, [int(i.addr.ip) for i in host.interfaces], mib=self.mib,
                              to_sock=self.to_sock.put, sk_err=self.to_sock_err.put,
                              icmp_send=lambda skb, type_, code: self.to_icmp.put([(skb, type_, code)]),
                              route_output=self._route_output, ip_queue_xmit=self._ip_queue_xmit)

    def _route_output(self, daddr: int) -> tuple[int, int]:
        res = self.l3.IpRouteOutput(l3_pb2.Flowi4(daddr=daddr), timeout=SEND_TIMEOUT_S)
        return res.errno, res.saddr

    def _ip_queue_xmit(self, skbs) -> int:
        try:
            return self.l3.IpQueueXmit(s.to_batch(skbs), timeout=SEND_TIMEOUT_S).errno
        except grpc.RpcError:
            self.mib.drop(pb.PKTPATH_DROP_REASON_HOP_FAILED, len(skbs))
            return errno.EIO  # IPv4 below is unreachable

    # -- receive ------------------------------------------------------------------
    @batches(pb.SkBuffBatch)
    def UdpRcv(self, request, context):
        """udp_rcv()."""
        return s.disposition(*self.dgram.udp_rcv([s.from_proto(m) for m in request.skbs]))

    @batches(pb.SkBuffBatch)
    def PingRcv(self, request, context):
        """ping_rcv()."""
        return s.disposition(*self.dgram.ping_rcv([s.from_proto(m) for m in request.skbs]))

    @batches(pb.SkBuffBatch)
    def TcpV4Rcv(self, request, context):
        """tcp_v4_rcv(): no TCP sockets exist until issue 5: every segment finds none."""
        for m in request.skbs:
            skb = s.from_proto(m)
            s.kfree_skb_reason(skb, pb.SKB_DROP_REASON_NO_SOCKET, pb.LAYER_L4, self.ctx.host, "tcp_v4_rcv")
            self.mib.drop(pb.SKB_DROP_REASON_NO_SOCKET)
        return s.disposition(0, len(request.skbs), pb.SKB_DROP_REASON_NO_SOCKET)

    @batches(l4_pb2.IcmpErrBatch)
    def IcmpErr(self, request, context):
        """icmp_unreach → the err_handler of the quoted protocol."""
        items = [(s.from_proto(e.skb), e.type, e.code, e.info) for e in request.errs]
        return s.disposition(*self.dgram.icmp_err(items))

    # -- send -----------------------------------------------------------------------
    def _sendmsg(self, request, send):
        d = pb.Disposition()
        for m in request.skbs:
            err = send(s.from_proto(m))
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

    def TcpSendmsg(self, request, context):
        sockerr.abort(context, errno.EPROTONOSUPPORT, "TCP arrives with issue 5")

    # -- port tables ------------------------------------------------------------------
    def Hash(self, request, context):
        """inet_bind / inet_autobind / ip4_datagram_connect: returns the socket's addresses."""
        try:
            table = self.dgram.table(request.protocol)
            saddr, daddr = (ip_from_str(a) if a else 0 for a in (request.saddr, request.daddr))
            if daddr and not saddr:
                bound = table.get(request.sk)
                saddr = bound.saddr if bound is not None and bound.saddr else 0
                if not saddr:
                    err, saddr = self._route_output(daddr)
                    if err:
                        raise SockError(err, f"no route to {request.daddr}")
            e = table.hash(request.sk, saddr, request.sport, daddr, request.dport)
        except SanityError as exc:
            sockerr.abort(context, errno.EINVAL, str(exc))
        except SockError as exc:
            sockerr.abort(context, exc.errno)
        return l4_pb2.SockAddrs(sk=e.sk, protocol=e.protocol, saddr=ip_to_str(e.saddr), sport=e.sport,
                                daddr=ip_to_str(e.daddr), dport=e.dport)

    def Unhash(self, request, context):
        try:
            self.dgram.table(request.protocol).unhash(request.sk)
        except SockError as exc:
            sockerr.abort(context, exc.errno)
        return empty_pb2.Empty()

    def GetCounters(self, request, context):
        return self.mib.to_proto()

    def close(self) -> None:
        for hop in (self.to_sock, self.to_sock_err, self.to_icmp):
            hop.close()
        self._channel.close()


def build(ctx) -> L4Servicer:
    return L4Servicer(ctx)
