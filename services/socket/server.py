"""The socket service of one host: the BSD socket API that clients call, over gRPC.

Servicer for pktpath.v1.Socket (net/socket.c, net/ipv4/af_inet.c). Each call
is a system call on a descriptor of this host; failures end the RPC with the
errno's gRPC status (pktpath.sockerr). SockQueueRcvSkb (L4 queueing delivered
datagrams) and SkErrorReport (ICMP errors for a socket) are the way up.
"""

import errno

import grpc
from google.protobuf import empty_pb2

from pktpath import skbuff as s
from pktpath import sockerr
from pktpath.counters import Mib
from pktpath.hop import batches
from pktpath.pb import l4_pb2, l4_pb2_grpc, socket_pb2, socket_pb2_grpc
from pktpath.service import channel
from pktpath.services.socket.sock import SocketLayer
from pktpath.sockerr import SockError
from pktpath.wire.addr import ip_from_str, ip_to_str
from pktpath.wire.errors import SanityError
from pktpath.wire.icmp import (
    ICMP_DEST_UNREACH, ICMP_EXC_FRAGTIME, ICMP_FRAG_NEEDED, ICMP_PORT_UNREACH, ICMP_PROT_UNREACH,
    ICMP_TIME_EXCEEDED,
)
from pktpath.wire.ipv4 import IPPROTO_UDP

L4_TIMEOUT_S = 10
# Every blocked recvfrom holds a server thread; the calls that wake them must still get one.
WORKERS = 64

_UNREACH = {0: "network unreachable", 1: "host unreachable", ICMP_PROT_UNREACH: "protocol unreachable",
            ICMP_PORT_UNREACH: "port unreachable", ICMP_FRAG_NEEDED: "fragmentation needed"}


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

    def __init__(self, stub) -> None:
        self.stub = stub

    def _call(self, rpc, request):
        try:
            return rpc(request, timeout=L4_TIMEOUT_S)
        except grpc.RpcError as exc:
            raise SockError(sockerr.errno_of(exc) or errno.EIO, exc.details()) from None

    def hash(self, sock) -> tuple[int, int, int, int]:
        reply = self._call(self.stub.Hash, l4_pb2.SockAddrs(
            sk=sock.sk, protocol=sock.protocol, saddr=ip_to_str(sock.saddr) if sock.saddr else "",
            sport=sock.sport, daddr=ip_to_str(sock.daddr) if sock.daddr else "", dport=sock.dport))
        return ip_from_str(reply.saddr), reply.sport, ip_from_str(reply.daddr), reply.dport

    def unhash(self, sock) -> None:
        try:
            self._call(self.stub.Unhash, l4_pb2.SockAddrs(sk=sock.sk, protocol=sock.protocol))
        except SockError:
            pass  # close() succeeds whatever happened below, as in the kernel

    def sendmsg(self, sock, skb) -> int:
        rpc = self.stub.UdpSendmsg if sock.protocol == IPPROTO_UDP else self.stub.PingSendmsg
        return self._call(rpc, s.to_batch([skb])).errno


class SocketServicer(socket_pb2_grpc.SocketServicer):
    workers = WORKERS

    def __init__(self, ctx) -> None:
        self.ctx = ctx
        self.mib = Mib()
        self._channel = channel(ctx.addrs.target(ctx.host, "l4"))
        self.layer = SocketLayer(ctx.host, L4Protocols(l4_pb2_grpc.L4Stub(self._channel)), self.mib)

    @staticmethod
    def _addr(context, addr) -> tuple[int, int]:
        try:
            ip = ip_from_str(addr.addr) if addr.addr else 0
        except SanityError as exc:
            sockerr.abort(context, errno.EINVAL, str(exc))
        if addr.port > 0xFFFF:
            sockerr.abort(context, errno.EINVAL, f"port {addr.port} > 65535")
        return ip, addr.port

    def _run(self, context, call, *args):
        try:
            return call(*args)
        except SockError as exc:
            sockerr.abort(context, exc.errno, exc.detail)

    def Socket(self, request, context):
        sock = self._run(context, self.layer.socket, request.family, request.type, request.protocol)
        return socket_pb2.SocketReply(fd=sock.fd)

    def Bind(self, request, context):
        self._run(context, self.layer.bind, request.fd, *self._addr(context, request.addr))
        return empty_pb2.Empty()

    def Connect(self, request, context):
        self._run(context, self.layer.connect, request.fd, *self._addr(context, request.addr))
        return empty_pb2.Empty()

    def Sendto(self, request, context):
        daddr, dport = self._addr(context, request.addr) if request.HasField("addr") else (0, 0)
        sent = self._run(context, self.layer.sendto, request.fd, request.data, daddr, dport)
        return socket_pb2.SendtoReply(sent=sent)

    def _recv(self, request, context, vlen: int) -> list:
        timeout = request.timeout_s or None
        remaining = context.time_remaining()
        if remaining is not None:
            timeout = remaining if timeout is None else min(timeout, remaining)
        context.add_callback(lambda: self.layer.wake(request.fd))
        return self._run(context, self.layer.recvmmsg, request.fd, vlen, request.bufsize or 0xFFFF, request.flags,
                         timeout, lambda: not context.is_active())

    @staticmethod
    def _reply(dgram, out=None):
        out = socket_pb2.RecvfromReply() if out is None else out
        out.data, out.ttl = dgram.data, dgram.ttl
        out.addr.addr, out.addr.port = ip_to_str(dgram.saddr), dgram.sport
        if dgram.tstamp:
            out.tstamp_ns = dgram.tstamp
        return out

    def Recvfrom(self, request, context):
        return self._reply(self._recv(request, context, 1)[0])

    def Recvmmsg(self, request, context):
        reply = socket_pb2.RecvmmsgReply()
        for dgram in self._recv(request, context, request.vlen):
            self._reply(dgram, reply.msgs.add())
        return reply

    def Shutdown(self, request, context):
        self._run(context, self.layer.shutdown, request.fd, request.how)
        return empty_pb2.Empty()

    def Close(self, request, context):
        self._run(context, self.layer.close, request.fd)
        return empty_pb2.Empty()

    def Getsockname(self, request, context):
        sock = self._run(context, self.layer.sock, request.fd)
        return socket_pb2.Sockaddr(addr=ip_to_str(sock.saddr), port=sock.sport)

    def Getpeername(self, request, context):
        sock = self._run(context, self.layer.sock, request.fd)
        if not sock.connected:
            sockerr.abort(context, errno.ENOTCONN)
        return socket_pb2.Sockaddr(addr=ip_to_str(sock.daddr), port=sock.dport)

    def Setsockopt(self, request, context):
        self._run(context, self.layer.setsockopt, request.fd, request.level, request.optname, request.value)
        return empty_pb2.Empty()

    def Getsockopt(self, request, context):
        value = self._run(context, self.layer.getsockopt, request.fd, request.level, request.optname)
        return socket_pb2.SockoptReply(value=value)

    @batches(s.pb.SkBuffBatch)
    def SockQueueRcvSkb(self, request, context):
        """sock_queue_rcv_skb(): L4's delivered datagrams."""
        return s.disposition(*self.layer.sock_queue_rcv_skb([s.from_proto(m) for m in request.skbs]))

    @batches(socket_pb2.SockErrBatch)
    def SkErrorReport(self, request, context):
        """sk_error_report(): ICMP errors for sockets of this host."""
        seen = sum(self.layer.sk_error_report(e.sk, e.errno, e.fatal, icmp_text(e.type, e.code, e.info, e.offender),
                                              e.type, e.code) for e in request.errs)
        return s.disposition(seen, 0)

    def ListSockets(self, request, context):
        table = socket_pb2.SocketTable()
        for k in self.layer.sockets():
            table.sockets.add(fd=k.fd, netid=k.netid, state="ESTAB" if k.connected else "UNCONN",
                              recv_q=k.rmem, send_q=0,
                              local=socket_pb2.Sockaddr(addr=ip_to_str(k.saddr), port=k.sport),
                              peer=socket_pb2.Sockaddr(addr=ip_to_str(k.daddr), port=k.dport))
        return table

    def GetCounters(self, request, context):
        return self.mib.to_proto()

    def close(self) -> None:
        self._channel.close()


def build(ctx) -> SocketServicer:
    return SocketServicer(ctx)
