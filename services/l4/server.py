"""The L4 service of one host: the protocol side of UDP and ping sockets
(net/ipv4/udp.c, ping.c) and TCP (services/l4/tcp).

Servicer for pktpath.v1.L4: UdpRcv, PingRcv, TcpV4Rcv and IcmpErr are L3's
way up (Udpv6Rcv, TcpV6Rcv, PingRcv and Icmpv6Err IPv6's: services/l4/udp6.py,
services/l4/tcp/ipv6.py); UdpSendmsg
and PingSendmsg the socket layer's way down for both families, answered with
the errno sendmsg returns; TcpSendmsg and TcpCleanupRbuf come by hops, the
other TCP calls (connect, listen, accept, shutdown, close) are synchronous;
Hash and Unhash keep the port tables for bind, connect and close. TCP's
segments go down by a hop to L3's IpQueueXmit (Inet6CskXmit over IPv6) and its
socket callbacks up by one to the socket layer's SkCallbacks; a timer thread
runs TCP's timers.
"""

import threading
import time

from pktpath.pb import l4_pb2
from pktpath.rpc import ErrnoStub, errno_status, l3_pb2_grpc, l4_pb2_grpc, sysctl_rpc
from pktpath.services.l4.layer import L4
from pktpath.services.l4.tcp.ipv4 import AF_INET6, user_addr
from pktpath.services.l4.tcp.sock import SS_NAMES, TcpState
from pktpath.wire.addr import ip6_to_str, ip_to_str

TCP_TIMER_TICK_S = 0.02  # the longest the timer thread sleeps; woken sooner when TCP arms a timer


class L4Servicer(L4, l4_pb2_grpc.L4Servicer):
    def __init__(self, ctx) -> None:
        self.ctx = ctx
        self._channel = ctx.addrs.channel(ctx.host, "l3")
        l3 = ErrnoStub(l3_pb2_grpc.L3Stub(self._channel))  # the send path's synchronous calls
        super().__init__(ctx.host, ctx.topology.host(ctx.host), ctx.hop, l3)
        self._stop = threading.Event()
        self._timers_changed = threading.Event()  # a timer armed may be due before the thread's wake-up
        self.tcp.timers_changed = self._timers_changed.set
        self._session_lock = threading.Lock()
        self._session: object | None = None  # the socket layer's session, while one is open
        self._session_ended: threading.Event | None = None  # set to end it
        threading.Thread(target=self._tcp_timers, name="tcp-timers", daemon=True).start()

    def _tcp_timers(self) -> None:
        while not self._stop.is_set():
            deadline = self.tcp.run_timers()
            self._timers_changed.clear()  # after: running them arms timers too (a wake lost here waits a tick)
            wait = TCP_TIMER_TICK_S if not deadline else deadline - time.monotonic()
            self._timers_changed.wait(min(max(wait, 0.0005), TCP_TIMER_TICK_S))

    # the socket layer's synchronous calls: a SockError ends the call with its errno
    UdpSendmsg = errno_status(L4.UdpSendmsg)
    PingSendmsg = errno_status(L4.PingSendmsg)
    TcpV4Connect = errno_status(L4.TcpV4Connect)
    TcpV6Connect = errno_status(L4.TcpV6Connect)
    InetCskListenStart = errno_status(L4.InetCskListenStart)
    InetCskAccept = errno_status(L4.InetCskAccept)
    TcpAbort = errno_status(L4.TcpAbort)
    TcpSetsockopt = errno_status(L4.TcpSetsockopt)
    TcpGetsockopt = errno_status(L4.TcpGetsockopt)
    Hash = errno_status(L4.Hash)
    Unhash = errno_status(L4.Unhash)
    TcpGetInfo = errno_status(L4.TcpGetInfo)

    def GetTcpSockets(self, request, context):
        def info(tp) -> l4_pb2.TcpSockInfo:
            listening = tp.state == TcpState.LISTEN
            text = ip6_to_str if tp.family == AF_INET6 else ip_to_str  # an IPv4 peer's as ::ffff:a.b.c.d
            return l4_pb2.TcpSockInfo(
                sk=tp.sk, state=SS_NAMES[tp.state], saddr=text(user_addr(tp, tp.saddr)), sport=tp.sport,
                daddr=text(user_addr(tp, tp.daddr)), dport=tp.dport, family=tp.family, ipv6only=tp.ipv6only,
                recv_q=len(tp.accept_queue) if listening else tp.unread,
                send_q=tp.backlog if listening else tp.send_queue_bytes(), cwnd=tp.cwnd,
                ssthresh=min(tp.ssthresh, 0xFFFFFFFF), mss=tp.mss_cache, rto_ms=tp.rto * 1000,
                srtt_ms=tp.srtt * 1000, cong=tp.ca.name if tp.ca else "", snd_wnd=tp.snd_wnd, rcv_wnd=tp.rcv_wnd,
                unacked=tp.packets_out, rcvbuf=tp.rcvbuf, wmem_alloc=tp.wmem_alloc)

        return l4_pb2.TcpSockTable(socks=self.tcp.sockets(info))

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
            self._session, self._session_ended = session, ended
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
        """The service is going down: the sessions it ends are not the socket layer's death,
        and the open one ends now, not at the server's grace."""
        self._stop.set()
        with self._session_lock:
            if self._session_ended is not None:
                self._session_ended.set()

    def GetCounters(self, request, context):
        return self.mib.to_proto()

    def Sysctl(self, request, context):
        return sysctl_rpc(self.tcp.sysctls, request, context, self.mib)

    def close(self) -> None:
        self._stop.set()
        self._timers_changed.set()
        super().close()
        self._channel.close()


def build(ctx) -> L4Servicer:
    return L4Servicer(ctx)
