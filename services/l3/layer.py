"""L3 of one host without its RPC surface: IPv4 (services/l3/ipv4.py) with its FIB and
netfilter built from the topology, and IPv6 (services/l3/ipv6.py receiving, ip6_output.py
sending and forwarding, ndisc.py's neighbour discovery and duplicate address detection over
the addresses and routes of addrconf.py), fed by the edges into it (pktpath/seams.py) and
answering L4's route lookups. Neighbour discovery tells L2's IPv6 neighbour table what it
learned by `l2`'s NeighUpdate (a stub of L2's synchronous calls).

The L3 service serves it over gRPC with its tables (services/l3/server.py); the
one-process stack (pktpath/drill/local.py) calls it directly. Its timers are the caller's
to run (frag_expire, every second; ipv6_timers, as often as it asks).
"""

import errno
import time
from typing import Callable

from google.protobuf import empty_pb2

from pktpath import skbuff as s
from pktpath.counters import Mib
from pktpath.flow import Flowi6 as SockFlowi6
from pktpath.hop import batches
from pktpath.pb import l2_pb2, l3_pb2, skbuff_pb2
from pktpath.seams import edge, open_tcp_wfree
from pktpath.services.l3 import netfilter as nf
from pktpath.services.l3 import netfilter6 as nf6
from pktpath.services.l3.addrconf import RT6_TABLE_MAIN, Addrconf
from pktpath.services.l3.icmp import IcmpRateLimit
from pktpath.services.l3.ip6_output import Ip6Output
from pktpath.services.l3.ipv4 import Ipv4
from pktpath.services.l3.ipv6 import Flowi6, Inet6SkbParm, Ipv6, icmp6_out_stats
from pktpath.services.l3.mcast6 import Mcast6
from pktpath.services.l3.ndisc import RADVD_ICMP6_FILTER, Ndisc, radvd_conf
from pktpath.services.l3.route import Fib, FibRoute
from pktpath.services.l3.route6 import fib6_lookup
from pktpath.wire import IpHdr, WireError
from pktpath.sockerr import SockError
from pktpath.wire.addr import ip6_to_str, ipv6_addr_is_multicast, mac_from_str
from pktpath.wire.icmpv6 import ICMPV6_HLEN, ICMPV6_PKT_TOOBIG
from pktpath.wire.ipv6 import IPPROTO_ICMPV6, NEXTHDR_TCP, NEXTHDR_UDP, Ipv6Hdr

NEIGH_UPDATE_TIMEOUT_S = 5
AF_INET6 = 10  # a Route's family
NUD_VALID = (l2_pb2.NUD_PERMANENT | l2_pb2.NUD_NOARP | l2_pb2.NUD_REACHABLE | l2_pb2.NUD_PROBE | l2_pb2.NUD_STALE
             | l2_pb2.NUD_DELAY)


def rt6_route(rt) -> l3_pb2.Route:
    """rt6_fill_node() for a dst (`ip -6 route get`): the destination itself, its gateway (a
    redirect's target), the route's protocol, metric, preference and table, an exception's
    RTF_EXPIRES and the RTAX_MTU and RTAX_HOPLIMIT metrics."""
    r = l3_pb2.Route(dst=ip6_to_str(rt.daddr), gateway=ip6_to_str(rt.gateway) if rt.gateway else "", dev=rt.dev,
                     proto=rt.f6i.protocol, metric=rt.f6i.metric, family=AF_INET6, pref=rt.f6i.pref, mtu=rt.rt_mtu,
                     hoplimit=rt.f6i.hoplimit, table="" if rt.f6i.table == RT6_TABLE_MAIN else rt.f6i.table)
    if rt.expires is not None:
        r.expires = int(rt.expires)
    return r


class L3:
    def __init__(self, host: str, config, hop, l2=None, *, clock=time.monotonic) -> None:
        """`config` is the host's topology entry; `hop(edge, mib)` opens an edge out of L3;
        `l2` takes L3's synchronous calls to L2 (NeighUpdate)."""
        self.mib = Mib()
        self.fib = Fib()
        for iface in config.interfaces:
            self.fib.add_address(iface.name, int(iface.addr.ip), iface.addr.network.prefixlen)
        for r in config.routes:
            self.fib.add(FibRoute(int(r.dst.network_address), r.dst.prefixlen, r.dev,
                                  gateway=int(r.via) if r.via else 0, metric=r.metric))
        self.ifaces = {i.name: i for i in config.interfaces}
        # the devices' IPv6 multicast lists and MLD, filled as addrconf makes devices and addresses
        self.mcast = Mcast6(host, mib=self.mib, clock=clock, on_timer=lambda: self.ipv6_timers_changed())
        self.addrconf = Addrconf(config.interfaces, config.routes6, forwarding=config.forwarding, mcast=self.mcast)
        self.to_l2 = hop(edge("l3", "l2"), self.mib)
        self.to_l4_wfree = open_tcp_wfree("l3", host, hop, self.mib)
        self.host = host
        self.to_l4 = {kind: hop(edge("l3", name), self.mib)
                      for kind, name in (("udp", "udp"), ("tcp", "tcp"), ("ping", "ping"), ("err", "icmp-err"),
                                         ("udp6", "udp6"), ("tcp6", "tcp6"), ("ping6", "ping6"),
                                         ("err6", "icmpv6-err"))}
        self.netfilter = nf.Netfilter(nf.rules_from_topology(config.rules))
        # ip6tables': apart from iptables'
        self.netfilter6 = nf6.Netfilter6(nf.rules_from_topology(getattr(config, "rules6", ()), nf6.NfRule6))
        mtus = {i.name: i.mtu for i in config.interfaces}
        ratelimit = IcmpRateLimit(clock=clock)  # the global ICMP bucket is IPv4's and IPv6's
        advertise = radvd_conf(config.interfaces)  # radvd's RAs from a router host
        self.clock = clock
        self.ip = Ipv4(host, self.fib, mtus, forwarding=config.forwarding,
                       to_l2=self.to_l2.put, to_l4=lambda kind, items: self.to_l4[kind].put(items),
                       mib=self.mib, netfilter=self.netfilter, clock=clock, ratelimit=ratelimit)
        # Ipv6, Ip6Output and Ndisc call one another: each reaches the others through self
        self.ip6 = Ipv6(host, self.addrconf, to_l4=self._to_l4_ipv6, mib=self.mib, ratelimit=ratelimit, clock=clock,
                        netfilter=self.netfilter6,
                        ip6_output=lambda skb, flow: self.ip6out.ip6_output(skb, flow),
                        ndisc_rcv=lambda skb, hdr: self.ndisc.ndisc_rcv(skb, hdr),
                        mld_rcv=self.mcast.igmp6_event,
                        route_input=lambda daddr, iif: self.ip6out.ip6_route_input(daddr, iif),
                        forward=lambda *args: self.ip6out.ip6_forward(*args),
                        # radvd's raw ICMPv6 socket, on a host that advertises
                        raw6_rcv=(lambda skb, hdr: self.ndisc.radvd_rcv(skb, hdr)) if advertise else None,
                        raw6_filter=RADVD_ICMP6_FILTER)
        self.ip6out = Ip6Output(host, self.addrconf, mtus, to_l2=self.to_l2.put, loopback_rcv=self.ip6.ipv6_rcv,
                                get_saddr=self.ip6.ipv6_dev_get_saddr, mib=self.mib, clock=clock,
                                mc_joined=self.ip6.ipv6_chk_mcast_addr, netfilter=self.netfilter6,
                                ratelimit=ratelimit,
                                ndisc_send_redirect=lambda skb, hdr, target: self.ndisc.ndisc_send_redirect(
                                    skb, hdr, target))
        self.mcast.ip6_local_out = self.ip6out.ip6_local_out  # mld_sendpack's way out
        self.mcast.dev_mtu.update(mtus)
        self._l2 = l2
        self.ndisc = Ndisc(host, self.addrconf, {i.name: mac_from_str(i.mac) for i in config.interfaces},
                           neigh_update=self._neigh_update, ip6_local_out=self.ip6out.ip6_local_out, mib=self.mib,
                           clock=clock, on_timer=lambda: self.ipv6_timers_changed(),
                           advertise=advertise, ra_output=lambda skb, flow: self.ip6out.ip6_output(skb, flow),
                           route6=self.ip6out.route6, ratelimit=ratelimit, neigh_lookup=self._neigh_lookup)
        self.ndisc.dev_mtu.update(mtus)
        self.ipv6_timers_changed: Callable[[], None] = lambda: None  # a timer armed earlier than the caller knew
        for dev in self.mcast.devices():  # NETDEV_UP: the groups joined so far reported (ipv6_mc_up)
            self.mcast.ipv6_mc_up(dev)
        self.ndisc.start()

    def _neigh_update(self, dev: str, ip: int, lladdr: bytes | None, state: int, flags: int, create: bool) -> bool:
        """L2's neigh_update on its IPv6 table, waited for: the answer that follows must find the
        entry. Whether there was one (or one was made)."""
        if self._l2 is None:
            return False
        try:
            return self._l2.NeighUpdate(l2_pb2.NeighUpdateRequest(
                dev=dev, dst=ip.to_bytes(16, "big"), lladdr=lladdr or b"", state=state, flags=flags, create=create),
                timeout=NEIGH_UPDATE_TIMEOUT_S).known
        except SockError:  # L2 is away: what it was told is lost, and it will solicit for itself
            self.mib.inc("L3", "NeighUpdateFailures")
            return False

    def _neigh_lookup(self, dev: str, ip: int) -> bytes | None:
        """dst_neigh_lookup() for ndisc_send_redirect: the MAC of L2's IPv6 entry for ip on dev
        when it is NUD_VALID (the target link-layer address option), else None. Read from L2's
        table (a dump: redirects are rate-limited to one a second per peer); the one-process
        stack's L2 (pktpath/drill/local.py) serves no dump: None there."""
        get_neighbours = getattr(self._l2, "GetNeighbours", None)
        if get_neighbours is None:
            return None
        try:
            entries = get_neighbours(empty_pb2.Empty(), timeout=NEIGH_UPDATE_TIMEOUT_S).entries
        except SockError:
            return None
        dst = ip6_to_str(ip)
        for n in entries:
            if n.dev == dev and n.dst == dst and n.state & NUD_VALID and n.lladdr:
                return mac_from_str(n.lladdr)
        return None

    def _to_l4_ipv6(self, kind: str, items: list) -> bool:
        """IPv6's way up to L4: UDP (udpv6_rcv), TCP (tcp_v6_rcv), echo replies (ping_rcv) and
        ICMPv6 errors (udpv6_err, tcp_v6_err, ping_err) by their edges. A Packet Too Big about a
        UDP datagram or a TCP segment teaches the path MTU first, as udpv6_err's
        ip6_sk_update_pmtu and tcp_v6_mtu_reduced's inet6_csk_update_pmtu do (pktpath learns it
        whether or not a socket matches, and before L4 lowers the connection's MSS to it)."""
        if kind == "err6":
            for skb, type_, _, info, nexthdr, _ in items:
                if type_ == ICMPV6_PKT_TOOBIG and nexthdr in (NEXTHDR_UDP, NEXTHDR_TCP):
                    quoted = skb.payload()[ICMPV6_HLEN:]
                    self.ip6out.ip6_update_pmtu(int.from_bytes(quoted[24:40], "big"), info)
        return self.to_l4[kind].put(items)

    def ipv6_timers(self) -> float | None:
        """IPv6's timers that are due (duplicate address detection, router solicitations, address
        lifetimes, the fib6 gc of expired routes, MLD's reports); returns when the next one is."""
        dues = [t for t in (self.ndisc.tick(), self.mcast.tick()) if t is not None]
        return min(dues) if dues else None

    # -- the data path ------------------------------------------------------------
    @batches(skbuff_pb2.SkBuffBatch)
    def IpRcv(self, request, context):
        """ip_list_rcv(): one poll's IPv4 packets."""
        return s.disposition(*self.ip.ip_list_rcv(s.from_protos(request.skbs, self.mib)))

    @batches(skbuff_pb2.SkBuffBatch)
    def Ipv6Rcv(self, request, context):
        """ipv6_list_rcv(): one poll's IPv6 packets."""
        return s.disposition(*self.ip6.ipv6_list_rcv(s.from_protos(request.skbs, self.mib)))

    @batches(l3_pb2.NdiscSolicitBatch)
    def NdiscSolicit(self, request, context):
        """ndisc_solicit() for L2's IPv6 neighbour table. Accepted: solicitations sent; dropped:
        items that name no device of ours or carry no 16-byte address."""
        sent = bad = 0
        for item in request.items:
            if item.dev not in self.ifaces or len(item.target) != 16 or len(item.saddr) not in (0, 16) or \
                    len(item.lladdr) not in (0, 6):
                bad += 1
                continue
            self.ndisc.ndisc_solicit(item.dev, int.from_bytes(item.target, "big"), item.lladdr or None,
                                     int.from_bytes(item.saddr, "big"))
            sent += 1
        if bad:
            self.mib.inc("L3", "BadNdiscSolicits", bad)
        return s.disposition(sent, bad)

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

    # -- IPv6's calls from L4 ---------------------------------------------------------
    @staticmethod
    def _flowi6(msg) -> Flowi6:
        """A Flowi6 message as L3's Flowi6; ValueError for an address that is not 16 bytes."""
        if len(msg.daddr) != 16 or len(msg.saddr) not in (0, 16):
            raise ValueError("a Flowi6's addresses are 16 bytes")
        return Flowi6(int.from_bytes(msg.daddr, "big"), int.from_bytes(msg.saddr, "big"), msg.proto, oif=msg.oif,
                      hop_limit=msg.hop_limit & 0xFF, tclass=msg.tclass & 0xFF, flowlabel=msg.flowlabel & 0xFFFFF,
                      icmp_type=msg.icmp_type & 0xFF, icmp_code=msg.icmp_code & 0xFF)

    def Ip6RouteOutput(self, request, context):
        """ip6_dst_lookup_flow(): the route and source address for a flow. No route counts
        Ip6OutNoRoutes (ip6_dst_lookup_tail), ENETUNREACH; no source address EADDRNOTAVAIL."""
        try:
            flow = self._flowi6(request)
        except ValueError:
            return l3_pb2.Rt6Result(errno=errno.EINVAL)
        if flow.oif and flow.oif not in self.ifaces:
            return l3_pb2.Rt6Result(errno=errno.ENODEV)
        rt = self.ip6out.ip6_route_output(flow)
        if rt is None:
            self.mib.inc("Ip6", "OutNoRoutes")
            return l3_pb2.Rt6Result(errno=errno.ENETUNREACH)
        if not rt.saddr:
            return l3_pb2.Rt6Result(errno=errno.EADDRNOTAVAIL)
        return l3_pb2.Rt6Result(dev=rt.dev, nexthop=rt.nexthop.to_bytes(16, "big"), saddr=rt.saddr.to_bytes(16, "big"),
                                mtu=rt.mtu, hop_limit=rt.hop_limit, type=rt.type, route=rt6_route(rt))

    def Ip6SendSkb(self, request, context):
        """ip6_make_skb → ip6_send_skb (udp_v6_send_skb, icmpv6_push_pending_frames): L4's
        datagrams with their flows; the answer carries the errno sendmsg returns (the last one
        met). An ICMPv6 message counts Icmp6OutMsgs and its type where
        __ip6_make_skb does: once the route is found and the packet built."""
        accepted = dropped = err = 0
        for item in request.items:
            skb = s.checked(item.skb, self.mib)
            try:
                flow = self._flowi6(item.flow)
            except ValueError:
                flow = None
            if skb is None or flow is None or flow.oif and flow.oif not in self.ifaces:
                dropped += 1
                err = errno.EINVAL
                continue
            skb.record(s.ENTER, skbuff_pb2.LAYER_L3, self.host, "ip6_make_skb")
            e = self.ip6out.ip6_output(skb, flow, pmtudisc=item.flow.pmtudisc)
            if flow.proto == IPPROTO_ICMPV6 and e == errno.EMSGSIZE:
                self.mib.inc("Icmp6", "OutErrors")  # ping_v6_sendmsg: ip6_append_data failed
            elif flow.proto == IPPROTO_ICMPV6 and e not in (errno.ENETUNREACH, errno.EADDRNOTAVAIL):
                icmp6_out_stats(self.mib, flow.icmp_type)
            if e:
                dropped += 1
                err = e
            else:
                accepted += 1
        d = s.disposition(accepted, dropped)
        d.errno = err
        return d

    @batches(skbuff_pb2.SkBuffBatch)
    def Inet6CskXmit(self, request, context):
        """inet6_csk_xmit → ip6_xmit: TCP's segments over IPv6, each with its flow in skb->cb
        (pktpath.flow.Flowi6: the connection's addresses, the traffic class with its ECN field,
        the socket's hop limit, the interface index of a link-local peer). The header is built as ip6_xmit builds it,
        never fragmented: TCP's MSS keeps a segment within the path MTU, and one that is not is
        dropped (Ip6FragFails). The answer carries the errno of the last refusal."""
        accepted = dropped = err = 0
        devs = list(self.ifaces)
        for skb in s.from_protos(request.skbs, self.mib):
            skb.record(s.ENTER, skbuff_pb2.LAYER_L3, self.host, "inet6_csk_xmit")
            try:
                f = SockFlowi6.unpack(skb.cb)
                oif = devs[f.scope_id - 1] if f.scope_id else ""
            except (ValueError, IndexError):
                s.kfree_skb_reason(skb, skbuff_pb2.SKB_DROP_REASON_NOT_SPECIFIED, skbuff_pb2.LAYER_L3, self.host,
                                   "inet6_csk_xmit")
                self.mib.drop(skbuff_pb2.SKB_DROP_REASON_NOT_SPECIFIED)
                dropped, err = dropped + 1, errno.EINVAL
                continue
            skb.cb = b""
            e = self.ip6out.ip6_output(skb, Flowi6(f.daddr, f.saddr, NEXTHDR_TCP, oif=oif, tclass=f.tclass & 0xFF,
                                                   hop_limit=max(f.hop_limit, 0),  # np->hop_limit; -1: the route's
                                                   flowlabel=f.flowlabel & 0xFFFFF))
            if e:
                dropped, err = dropped + 1, e
            else:
                accepted += 1
        d = s.disposition(accepted, dropped)
        d.errno = err
        return d

    @batches(l3_pb2.IcmpSendBatch)
    def Icmpv6Send(self, request, context):
        """icmpv6_send() on L4's behalf (port unreachable), each about an skb_in whose network
        header is its IPv6 header. Accepted: errors sent; dropped: requests without one to quote,
        and errors icmp6_send's rules or rate limits held back."""
        sent = bad = 0
        for r in request.requests:
            try:
                skb = s.from_proto(r.skb_in)
                hdr = Ipv6Hdr.from_bytes(s.skb_network_header(skb))
            except (s.SkbError, WireError, ValueError):
                bad += 1
                continue
            if self.ip6.icmp6_send(skb, hdr, Inet6SkbParm(skb.dev), r.type, r.code, r.info):
                sent += 1
            else:
                bad += 1
        return s.disposition(sent, bad)

    def Ipv6ChkAddr(self, request, context):
        """ipv6_chk_addr(net, addr, dev, 0): one of the host's addresses, not tentative (a
        link-local one on `dev` only)."""
        if len(request.addr) != 16:
            return l3_pb2.Ipv6ChkAddrReply(ours=False)
        addr = int.from_bytes(request.addr, "big")
        ours = self.ip6.ipv6_chk_addr(addr, request.dev) if request.dev else self.addrconf.ipv6_chk_addr(addr)
        return l3_pb2.Ipv6ChkAddrReply(ours=ours)

    def Ipv6DevMc(self, request, context):
        """The device side of a socket's IPV6_JOIN_GROUP / IPV6_LEAVE_GROUP (ipv6_sock_mc_join,
        __ipv6_sock_mc_drop): the interface of `ifindex` (1 the first, as the socket layer numbers
        them), or for 0 the device rt6_lookup() routes the group by (ENODEV for neither: lo has
        no number here), then __ipv6_dev_mc_inc (join: EINVAL for a device without IPv6) or
        __ipv6_dev_mc_dec (leave, which fails for nothing). EINVAL for a group that is not 16
        bytes of multicast. The answer names the interface, which the socket leaves by."""
        group = int.from_bytes(request.group, "big")
        if len(request.group) != 16 or not ipv6_addr_is_multicast(group):
            return l3_pb2.Ipv6DevMcReply(errno=errno.EINVAL)
        devs = list(self.ifaces)
        if request.ifindex:
            dev = devs[request.ifindex - 1] if request.ifindex <= len(devs) else None
        else:
            rt = fib6_lookup(self.addrconf, group)  # rt6_lookup(net, group, NULL, 0, NULL, 0)
            dev = rt.dev if rt is not None and rt.dev in self.ifaces else None
        if dev is None:
            return l3_pb2.Ipv6DevMcReply(errno=0 if not request.join else errno.ENODEV)
        if request.join:
            err = self.mcast.ipv6_dev_mc_inc(dev, group)
        else:
            err = 0
            self.mcast.ipv6_dev_mc_dec(dev, group)  # (its ENOENT is nobody's business)
        return l3_pb2.Ipv6DevMcReply(errno=err, ifindex=devs.index(dev) + 1)

    def close(self) -> None:
        self.ndisc.radvd_stop_adverts()  # radvd's last word: router lifetime 0
        s.set_destructor(self.host, None)
        for hop in (self.to_l2, self.to_l4_wfree, *self.to_l4.values()):
            hop.close()
