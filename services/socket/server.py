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
from pktpath.config import hop_path
from pktpath.flow import TcpChild
from pktpath.hop import Hop, batches
from pktpath.pb import l4_pb2, l4_pb2_grpc, socket_pb2, socket_pb2_grpc
from pktpath.service import channel
from pktpath.services.socket.sock import SocketLayer
from pktpath.sockerr import SockError
from pktpath.trace import sampler
from pktpath.wire.addr import ip_from_str, ip_to_str
from pktpath.wire.errors import SanityError
from pktpath.wire.icmp import (
    ICMP_DEST_UNREACH, ICMP_EXC_FRAGTIME, ICMP_FRAG_NEEDED, ICMP_PORT_UNREACH, ICMP_PROT_UNREACH,
    ICMP_TIME_EXCEEDED,
)
from pktpath.wire.ipv4 import IPPROTO_UDP

L4_TIMEOUT_S = 10
MAX_WAIT_S = 1e6
_SS_STATE = {"ESTABLISHED": "ESTAB", "SYN_SENT": "SYN-SENT", "LISTEN": "LISTEN", "CLOSE": "UNCONN",
             "CLOSED": "CLOSED"}
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


class L4Tcp:
    """L4's side of TCP sockets: the calls that wait for an answer over gRPC, the
    others (send, read, shutdown, close) by one hop, in order."""

    _KINDS = {v: k.lower() for k, v in socket_pb2.SkCallback.Kind.items()}

    def __init__(self, stub, calls: L4Protocols, ctx, mib: Mib) -> None:
        self.stub = stub
        self._call = calls._call
        # sends, reads, shutdowns and closes in one ordered stream: none overtakes another
        self._calls = Hop("tcp-calls", hop_path(ctx.run_id, ctx.host, "l4"), "TcpSocketCalls", _tcp_calls, mib)

    def connect(self, sock) -> int:
        return self._call(self.stub.TcpV4Connect, l4_pb2.TcpConnectRequest(
            sk=sock.sk, saddr=ip_to_str(sock.saddr), sport=sock.sport, daddr=ip_to_str(sock.daddr),
            dport=sock.dport, rcvbuf=_user_rcvbuf(sock), nodelay=sock.stream.nodelay)).errno

    def listen(self, sock, backlog: int) -> None:
        self._call(self.stub.InetCskListenStart, l4_pb2.TcpListenRequest(
            sk=sock.sk, saddr=ip_to_str(sock.saddr) if sock.saddr else "", sport=sock.sport, backlog=backlog,
            rcvbuf=_user_rcvbuf(sock), nodelay=sock.stream.nodelay))

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

    def setsockopt(self, sock) -> None:
        opts = l4_pb2.TcpSockopt(sk=sock.sk, nodelay=sock.stream.nodelay)
        if sock.rcvbuf_locked:
            opts.rcvbuf = sock.rcvbuf
        self._call(self.stub.TcpSetsockopt, opts)

    def callbacks(self, batch) -> list:
        """SkCallbacks' items as the socket layer takes them."""
        out = []
        for it in batch.items:
            child = None
            if it.kind == socket_pb2.SkCallback.ACCEPT:
                c = it.child
                child = TcpChild(c.sk, ip_from_str(c.local.addr), c.local.port, ip_from_str(c.peer.addr),
                                 c.peer.port, c.mss)
            skb = s.from_proto(it.skb) if it.kind == socket_pb2.SkCallback.DATA else None
            out.append((self._KINDS[it.kind], it.sk, it.value, skb, child))
        return out

    def close_hops(self) -> None:
        self._calls.close()


def _user_rcvbuf(sock) -> int:
    """SO_RCVBUF if the user set it, else 0: L4 autotunes it."""
    return sock.rcvbuf if sock.rcvbuf_locked else 0


def _tcp_calls(items) -> l4_pb2.TcpCallBatch:
    batch = l4_pb2.TcpCallBatch()
    for kind, sk, value, skb in items:
        call = batch.calls.add(kind=kind, sk=sk, value=value)
        if skb is not None:
            s.to_proto(skb, call.skb)
    return batch


class SocketServicer(socket_pb2_grpc.SocketServicer):
    workers = WORKERS

    def __init__(self, ctx) -> None:
        self.ctx = ctx
        self.mib = Mib()
        self._channel = channel(ctx.addrs.target(ctx.host, "l4"))
        stub = l4_pb2_grpc.L4Stub(self._channel)
        calls = L4Protocols(stub)
        self.tcp = L4Tcp(stub, calls, ctx, self.mib)
        self.layer = SocketLayer(ctx.host, calls, self.mib, self.tcp, sample=sampler())

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

    def _blocking(self, request, context) -> tuple[float | None, object]:
        """The call's time limit (its own or the RPC's deadline) and the test that it was
        cancelled; a cancelled call wakes the socket so the waiter sees it."""
        timeout = request.timeout_s or None
        remaining = context.time_remaining()
        if remaining is not None and remaining < MAX_WAIT_S:  # a call without a deadline has a huge one
            timeout = remaining if timeout is None else min(timeout, remaining)
        context.add_callback(lambda: self.layer.wake(request.fd))
        return timeout, lambda: not context.is_active()

    def Connect(self, request, context):
        daddr, dport = self._addr(context, request.addr)
        timeout, cancelled = self._blocking(request, context)
        try:
            self.layer.connect(request.fd, daddr, dport, nonblocking=request.nonblocking, timeout=timeout,
                               cancelled=cancelled)
        except SockError as exc:
            sockerr.abort(context, exc.errno, exc.detail)
        return empty_pb2.Empty()

    def Listen(self, request, context):
        self._run(context, self.layer.listen, request.fd, request.backlog)
        return empty_pb2.Empty()

    def Accept(self, request, context):
        timeout, cancelled = self._blocking(request, context)
        try:
            child = self.layer.accept(request.fd, nonblocking=request.nonblocking, timeout=timeout,
                                      cancelled=cancelled)
        except SockError as exc:
            sockerr.abort(context, exc.errno, exc.detail)
        return socket_pb2.AcceptReply(fd=child.fd, peer=socket_pb2.Sockaddr(addr=ip_to_str(child.daddr),
                                                                            port=child.dport))

    def Sendto(self, request, context):
        daddr, dport = self._addr(context, request.addr) if request.HasField("addr") else (0, 0)
        timeout, cancelled = self._blocking(request, context)
        try:
            sent = self.layer.sendto(request.fd, request.data, daddr, dport, flags=request.flags, timeout=timeout,
                                     cancelled=cancelled)
        except SockError as exc:
            sockerr.abort(context, exc.errno, exc.detail)
        return socket_pb2.SendtoReply(sent=sent)

    def _recv(self, request, context, vlen: int) -> list:
        timeout, cancelled = self._blocking(request, context)
        return self._run(context, self.layer.recvmmsg, request.fd, vlen, request.bufsize or 0xFFFF, request.flags,
                         timeout, cancelled)

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

    @batches(socket_pb2.SkCallbackBatch)
    def SkCallbacks(self, request, context):
        """TCP's socket callbacks from L4, in order."""
        orphans = self.layer.stream.callbacks(self.tcp.callbacks(request))
        return s.disposition(len(request.items) - orphans, orphans)

    def ListSockets(self, request, context):
        table = socket_pb2.SocketTable()
        for k in self.layer.sockets():
            state, recv_q, send_q = ("ESTAB" if k.connected else "UNCONN"), k.rmem, 0
            if k.stream is not None:
                st = k.stream
                state = _SS_STATE.get(st.state, st.state)
                recv_q, send_q = (len(st.accept_queue), st.backlog) if st.state == "LISTEN" else (st.unread, st.wmem)
            table.sockets.add(fd=k.fd, netid=k.netid, state=state, recv_q=recv_q, send_q=send_q,
                              local=socket_pb2.Sockaddr(addr=ip_to_str(k.saddr), port=k.sport),
                              peer=socket_pb2.Sockaddr(addr=ip_to_str(k.daddr), port=k.dport))
        return table

    def GetCounters(self, request, context):
        return self.mib.to_proto()

    def close(self) -> None:
        self.tcp.close_hops()
        self._channel.close()


def build(ctx) -> SocketServicer:
    return SocketServicer(ctx)
