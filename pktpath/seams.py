"""The seams of one host's path, named once: every hand-off from one layer to the next.

An Edge is one way batches go from a layer to the next by a Hop (pktpath/hop.py): its
name (the Hop's, and its counters': `Hop l3Batches`), the layer that hands over, the
layer that takes, the taking layer's handler (a `@batches` method, also the gRPC method
of the same name), the message it takes, and the kernel function the hand-off is.

The services open their Hops from these (ServiceContext.hop), and a test holds every
Edge against the handler it names, so the path cannot change in one place and not the
other. A Call is a seam a layer crosses synchronously, waiting for the answer (a route
lookup, a socket's bind): an RPC of the layer below.

    send:     socket ─tcp-calls─▶ l4 ─ip, icmp-send─▶ l3 ─l2─▶ l2 ─softirq─▶ softirq ▶ NIC ─link─▶ peer NIC
              l4 ─ip6, icmpv6-send─▶ l3
              l4 ◀─tcp-wfree─ l3, l2, softirq   (freed skbs give their socket its sk_wmem_alloc back)
              (a datagram goes down by a call that waits for its errno: IpQueueXmit, Ip6SendSkb)
    receive:  NIC ▶ softirq ─l2─▶ l2 ─l3, ipv6─▶ l3 ─udp, tcp, ping, icmp-err─▶ l4
                                                  l3 ─udp6, tcp6, ping6, icmpv6-err─▶ l4
              l4 ─socket, socket-err, socket-cb─▶ socket
    IPv6's neighbours: l2 ─ndisc-solicit─▶ l3 (the table asks), l3 ═NeighUpdate═▶ l2 (what NDP learned)

Nothing here loads gRPC: the one-process stack is wired from the same list.
"""

from dataclasses import dataclass
from typing import Callable

from pktpath import skbuff as s
from pktpath.pb import l3_pb2, l4_pb2, skbuff_pb2, socket_pb2
from pktpath.wire.addr import ip6_to_str, ip_to_str

AF_INET6 = 10
LAYERS = ("nic", "softirq", "l2", "l3", "l4", "socket")


def _icmp_err_batch(items) -> l4_pb2.IcmpErrBatch:
    batch = l4_pb2.IcmpErrBatch()
    for skb, type_, code, info in items:
        s.to_proto(skb, batch.errs.add(type=type_, code=code, info=info).skb)
    return batch


def _icmp6_err_batch(items) -> l4_pb2.Icmp6ErrBatch:
    """icmpv6_notify's (skb, type, code, info, quoted nexthdr, offset of its header)."""
    batch = l4_pb2.Icmp6ErrBatch()
    for skb, type_, code, info, nexthdr, offset in items:
        s.to_proto(skb, batch.errs.add(type=type_, code=code, info=info, nexthdr=nexthdr, offset=offset).skb)
    return batch


def _icmp_send_batch(items) -> l3_pb2.IcmpSendBatch:
    batch = l3_pb2.IcmpSendBatch()
    for skb, type_, code in items:
        s.to_proto(skb, batch.requests.add(type=type_, code=code).skb_in)
    return batch


def _sock_err_batch(errs) -> socket_pb2.SockErrBatch:
    """(sk, errno, fatal, offender, type, code, info[, family]): family AF_INET6 for ICMPv6's."""
    batch = socket_pb2.SockErrBatch()
    for sk, err, fatal, offender, type_, code, info, *family in errs:
        v6 = family == [AF_INET6]
        batch.errs.add(sk=sk, errno=err, fatal=fatal, offender=ip6_to_str(offender) if v6 else ip_to_str(offender),
                       type=type_, code=code, info=info, family=AF_INET6 if v6 else 0)
    return batch


_CALLBACK = {"data": socket_pb2.SkCallback.DATA, "eof": socket_pb2.SkCallback.EOF,
             "established": socket_pb2.SkCallback.ESTABLISHED, "accept": socket_pb2.SkCallback.ACCEPT,
             "error": socket_pb2.SkCallback.ERROR, "acked": socket_pb2.SkCallback.ACKED,
             "closed": socket_pb2.SkCallback.CLOSED, "sndbuf": socket_pb2.SkCallback.SNDBUF}


def _sk_callbacks(events) -> socket_pb2.SkCallbackBatch:
    """TCP's TcpEvents, in order, as the socket layer's callbacks."""
    batch = socket_pb2.SkCallbackBatch()
    for ev in events:
        item = batch.items.add(kind=_CALLBACK[ev.kind], sk=ev.sk, value=ev.value)
        if ev.skb is not None:
            s.to_proto(ev.skb, item.skb)
        if ev.child is not None:
            c = ev.child
            text = ip6_to_str if c.family == AF_INET6 else ip_to_str
            item.child.sk, item.child.mss, item.child.family = c.sk, c.mss, c.family
            item.child.local.addr, item.child.local.port = text(c.saddr), c.sport
            item.child.peer.addr, item.child.peer.port = text(c.daddr), c.dport
    return batch


def _wfree_batch(items) -> l4_pb2.SkWfreeBatch:
    """Freed skbs' (sk, truesize, paced by fq) as one sum per socket."""
    by_sk: dict[int, list] = {}
    for sk, truesize, fq in items:
        entry = by_sk.setdefault(sk, [0, False])
        entry[0] += truesize
        entry[1] = entry[1] or fq
    batch = l4_pb2.SkWfreeBatch()
    for sk, (truesize, fq) in by_sk.items():
        batch.items.add(sk=sk, truesize=truesize, pacing_fq=fq)
    return batch


def _ndisc_solicit_batch(items) -> l3_pb2.NdiscSolicitBatch:
    """nd_tbl's solicitations, (dev, target, unicast lladdr or None, saddr or 0)."""
    batch = l3_pb2.NdiscSolicitBatch()
    for dev, target, lladdr, saddr in items:
        batch.items.add(dev=dev, target=target.to_bytes(16, "big"), lladdr=lladdr or b"",
                        saddr=saddr.to_bytes(16, "big") if saddr else b"")
    return batch


def _tcp_calls(items) -> l4_pb2.TcpCallBatch:
    """The socket layer's TCP calls, (kind, sk, value, skb or None), in order."""
    batch = l4_pb2.TcpCallBatch()
    for kind, sk, value, skb in items:
        call = batch.calls.add(kind=kind, sk=sk, value=value)
        if skb is not None:
            s.to_proto(skb, call.skb)
    return batch


@dataclass(frozen=True)
class Edge:
    """Batches of items from layer `src` to layer `dst`'s handler `method`."""

    src: str
    name: str
    dst: str
    method: str
    encode: Callable[[list], object]  # the items → the message `method` takes
    request: type                     # that message's type
    kernel: str                       # what the hand-off is in the kernel
    coalesce: bool = False            # many tiny items: always batched by the Hop's thread, never sent one by one


def _skbs(src: str, name: str, dst: str, method: str, kernel: str) -> Edge:
    return Edge(src, name, dst, method, s.to_batch, skbuff_pb2.SkBuffBatch, kernel)


EDGES: tuple[Edge, ...] = (
    # receive
    _skbs("softirq", "l2", "l2", "NetifReceiveSkb", "netif_receive_skb_list"),
    _skbs("l2", "l3", "l3", "IpRcv", "ip_list_rcv"),
    _skbs("l2", "ipv6", "l3", "Ipv6Rcv", "ipv6_list_rcv"),
    Edge("l2", "ndisc-solicit", "l3", "NdiscSolicit", _ndisc_solicit_batch, l3_pb2.NdiscSolicitBatch,
         "neigh_probe → ndisc_solicit"),
    _skbs("l3", "udp", "l4", "UdpRcv", "udp_rcv"),
    _skbs("l3", "tcp", "l4", "TcpV4Rcv", "tcp_v4_rcv"),
    _skbs("l3", "ping", "l4", "PingRcv", "ping_rcv"),
    Edge("l3", "icmp-err", "l4", "IcmpErr", _icmp_err_batch, l4_pb2.IcmpErrBatch, "icmp_unreach → err_handler"),
    _skbs("l3", "udp6", "l4", "Udpv6Rcv", "udpv6_rcv"),
    _skbs("l3", "tcp6", "l4", "TcpV6Rcv", "tcp_v6_rcv"),
    _skbs("l3", "ping6", "l4", "PingRcv", "icmpv6_rcv → ping_rcv (both families')"),
    Edge("l3", "icmpv6-err", "l4", "Icmpv6Err", _icmp6_err_batch, l4_pb2.Icmp6ErrBatch,
         "icmpv6_notify → udpv6_err, ping_err, tcp_v6_err"),
    _skbs("l4", "socket", "socket", "SockQueueRcvSkb", "sock_queue_rcv_skb"),
    Edge("l4", "socket-err", "socket", "SkErrorReport", _sock_err_batch, socket_pb2.SockErrBatch,
         "sk_error_report"),
    Edge("l4", "socket-cb", "socket", "SkCallbacks", _sk_callbacks, socket_pb2.SkCallbackBatch,
         "sk_data_ready, sk_state_change, sk_write_space"),
    # send
    Edge("socket", "tcp-calls", "l4", "TcpSocketCalls", _tcp_calls, l4_pb2.TcpCallBatch,
         "tcp_sendmsg, tcp_cleanup_rbuf, tcp_shutdown, tcp_close"),
    _skbs("l4", "ip", "l3", "IpQueueXmit", "ip_queue_xmit"),
    _skbs("l4", "ip6", "l3", "Inet6CskXmit", "inet6_csk_xmit → ip6_xmit"),
    Edge("l4", "icmp-send", "l3", "IcmpSend", _icmp_send_batch, l3_pb2.IcmpSendBatch, "icmp_send"),
    Edge("l4", "icmpv6-send", "l3", "Icmpv6Send", _icmp_send_batch, l3_pb2.IcmpSendBatch, "icmpv6_send"),
    _skbs("l3", "l2", "l2", "NeighOutput", "neigh_output"),
    _skbs("l2", "softirq", "softirq", "DevQueueXmit", "dev_queue_xmit"),
    # the destructor of TCP's skbs, where they are freed: sent by the device, or dropped below L4
    *(Edge(src, "tcp-wfree", "l4", "TcpWfree", _wfree_batch, l4_pb2.SkWfreeBatch,
           "tcp_wfree (TX completion, or a drop)", coalesce=True) for src in ("softirq", "l2", "l3")),
)
_BY_NAME = {(e.src, e.name): e for e in EDGES}

# The cable between two hosts' NICs: frames of one interface to the peer's LinkXmit.
LINK = Edge("nic", "link", "nic", "LinkXmit", None, skbuff_pb2.FrameBatch, "the wire")


def edge(src: str, name: str) -> Edge:
    """The edge `name` out of layer `src`."""
    return _BY_NAME[(src, name)]


def open_tcp_wfree(src: str, host: str, hop, mib, paced: Callable | None = None):
    """Open layer `src`'s tcp-wfree edge and make it the destructor of `host`'s charged skbs
    freed in this process (skbuff.set_destructor); paced(skb): whether an fq qdisc paced it.
    Returns the edge's hop."""
    wfree = hop(edge(src, "tcp-wfree"), mib)
    s.set_destructor(host, lambda skb: wfree.put([(skb.sk, skb.truesize, bool(paced and paced(skb)))]))
    return wfree


def edges_into(layer: str) -> list[Edge]:
    return [e for e in EDGES if e.dst == layer]


@dataclass(frozen=True)
class Call:
    """A synchronous seam: layer `src` calls layer `dst`'s RPC `method` and waits."""

    src: str
    dst: str
    method: str
    kernel: str


CALLS: tuple[Call, ...] = (
    Call("l3", "l2", "NeighUpdate", "neigh_update (ndisc_recv_ns, ndisc_recv_na)"),
    Call("l4", "l3", "IpRouteOutput", "ip_route_output_key"),
    Call("l4", "l3", "IpQueueXmit", "ip_queue_xmit (a datagram's sendmsg waits for its errno)"),
    Call("l4", "l3", "Ip6RouteOutput", "ip6_dst_lookup_flow"),
    Call("l4", "l3", "Ip6SendSkb", "ip6_make_skb → ip6_send_skb (a datagram's sendmsg waits for its errno)"),
    Call("l4", "l3", "Ipv6ChkAddr", "ipv6_chk_addr (inet6_bind)"),
    Call("socket", "l4", "Hash", "inet_bind, inet6_bind, inet_autobind, ip4_datagram_connect, ip6_datagram_connect"),
    Call("socket", "l4", "Unhash", "inet_release"),
    Call("socket", "l4", "UdpSendmsg", "udp_sendmsg, udpv6_sendmsg"),
    Call("socket", "l4", "PingSendmsg", "ping_v4_sendmsg, ping_v6_sendmsg"),
    Call("socket", "l4", "TcpV4Connect", "tcp_v4_connect"),
    Call("socket", "l4", "TcpV6Connect", "tcp_v6_connect"),
    Call("socket", "l4", "InetCskListenStart", "inet_csk_listen_start"),
    Call("socket", "l4", "InetCskAccept", "inet_csk_accept"),
    Call("socket", "l4", "TcpAbort", "tcp_abort"),
    Call("socket", "l4", "TcpSetsockopt", "do_tcp_setsockopt"),
    Call("socket", "l4", "TcpGetsockopt", "do_tcp_getsockopt"),
    Call("socket", "l4", "TcpGetInfo", "tcp_get_info"),
    Call("socket", "l4", "SocketLayerSession", "the socket layer's life: its files closed when it dies"),
    Call("socket", "l3", "Ipv6DevMc", "ipv6_sock_mc_join, ipv6_sock_mc_drop, ipv6_sock_mc_close → "
                                      "__ipv6_dev_mc_inc, __ipv6_dev_mc_dec"),
    Call("softirq", "nic", "GetRingParam", "the driver's probe: mapping the NIC's rings"),
)
