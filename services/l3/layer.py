"""L3 of one host without its RPC surface: IPv4 (services/l3/ipv4.py) with its FIB and
netfilter built from the topology, fed by the edges into it (pktpath/seams.py) and
answering L4's route lookups; the host's IPv6 addresses and routes (services/l3/addrconf.py).

The L3 service serves it over gRPC with its tables (services/l3/server.py); the
one-process stack (pktpath/drill/local.py) calls it directly. Its fragment timer is the
caller's to run (frag_expire).
"""

import time

from pktpath import skbuff as s
from pktpath.counters import Mib
from pktpath.hop import batches
from pktpath.pb import l3_pb2, skbuff_pb2
from pktpath.seams import edge, open_tcp_wfree
from pktpath.services.l3 import netfilter as nf
from pktpath.services.l3.addrconf import Addrconf
from pktpath.services.l3.ipv4 import Ipv4
from pktpath.services.l3.route import Fib, FibRoute
from pktpath.wire import IpHdr, WireError


class L3:
    def __init__(self, host: str, config, hop, *, clock=time.monotonic) -> None:
        """`config` is the host's topology entry; `hop(edge, mib)` opens an edge out of L3."""
        self.mib = Mib()
        self.fib = Fib()
        for iface in config.interfaces:
            self.fib.add_address(iface.name, int(iface.addr.ip), iface.addr.network.prefixlen)
        for r in config.routes:
            self.fib.add(FibRoute(int(r.dst.network_address), r.dst.prefixlen, r.dev,
                                  gateway=int(r.via) if r.via else 0, metric=r.metric))
        self.ifaces = {i.name: i for i in config.interfaces}
        self.addrconf = Addrconf(config.interfaces, config.routes6, forwarding=config.forwarding)
        self.to_l2 = hop(edge("l3", "l2"), self.mib)
        self.to_l4_wfree = open_tcp_wfree("l3", host, hop, self.mib)
        self.host = host
        self.to_l4 = {kind: hop(edge("l3", name), self.mib)
                      for kind, name in (("udp", "udp"), ("tcp", "tcp"), ("ping", "ping"), ("err", "icmp-err"))}
        self.netfilter = nf.Netfilter(nf.rules_from_topology(config))
        self.ip = Ipv4(host, self.fib, {i.name: i.mtu for i in config.interfaces}, forwarding=config.forwarding,
                       to_l2=self.to_l2.put, to_l4=lambda kind, items: self.to_l4[kind].put(items),
                       mib=self.mib, netfilter=self.netfilter, clock=clock)

    # -- the data path ------------------------------------------------------------
    @batches(skbuff_pb2.SkBuffBatch)
    def IpRcv(self, request, context):
        """ip_list_rcv(): one poll's IPv4 packets."""
        return s.disposition(*self.ip.ip_list_rcv(s.from_protos(request.skbs, self.mib)))

    @batches(skbuff_pb2.SkBuffBatch)
    def IpQueueXmit(self, request, context):
        """ip_queue_xmit(): L4's packets; the answer carries the errno sendmsg returns."""
        accepted, dropped, err = self.ip.ip_queue_xmit(s.from_protos(request.skbs, self.mib))
        d = s.disposition(accepted, dropped)
        d.errno = err
        return d

    def IpRouteOutput(self, request, context):
        """ip_route_output_key(): the route and source address for a flow."""
        res = self.ip.route_output(request.daddr)
        if res is None:
            self.mib.inc("Ip", "OutNoRoutes")
            return l3_pb2.RouteResult(errno=101)  # ENETUNREACH
        saddr = request.saddr or res.prefsrc or request.daddr
        return l3_pb2.RouteResult(type=res.type, dev=res.dev, nexthop=res.nexthop, saddr=saddr,
                                  mtu=self.ip.path_mtu(request.daddr, res.dev))

    @batches(l3_pb2.IcmpSendBatch)
    def IcmpSend(self, request, context):
        """icmp_send() on L4's behalf, each about an skb_in (network header set).
        Accepted: errors sent; dropped: requests without an IPv4 header to quote."""
        sent = bad = 0
        for r in request.requests:
            try:
                skb = s.from_proto(r.skb_in)  # a bad one is counted here, as OutErrors
                iph = IpHdr.from_bytes(s.skb_network_header(skb), verify_csum=False)
            except (s.SkbError, WireError):
                bad += 1
                continue
            sent += self.ip.icmp_send(skb, iph, r.type, r.code, r.info)
        if bad:
            self.mib.inc("Icmp", "OutErrors", bad)
        return s.disposition(sent, bad)

    def close(self) -> None:
        s.set_destructor(self.host, None)
        for hop in (self.to_l2, self.to_l4_wfree, *self.to_l4.values()):
            hop.close()
