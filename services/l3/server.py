"""The L3 service of one host: IPv4 (net/ipv4/ip_input.c, ip_forward.c, ip_output.c,
ip_fragment.c, icmp.c, route.c) and netfilter's hooks.

Servicer for pktpath.v1.L3: IpRcv is L2's way up (one message per poll),
IpQueueXmit and IpRouteOutput are L4's way down, IcmpSend is L4 asking for an
error (port unreachable). The tables (`ip route`, `ip addr`, `iptables -L -v`)
and /proc/net/snmp's Ip and Icmp counters are readable and, for IPv4 routes and
rules, changeable at run time. `ip -6 addr` and `ip -6 route` read the IPv6
addresses and main table addrconf keeps (services/l3/addrconf.py), `ip -6 maddr` the
devices' multicast lists (GetAddrs' maddr6, services/l3/mcast6.py).
"""

import ipaddress
import threading
import time

import grpc
from google.protobuf import empty_pb2

from pktpath import validate
from pktpath.pb import l3_pb2
from pktpath.rpc import ErrnoStub, checked, l2_pb2_grpc, l3_pb2_grpc
from pktpath.services.l3 import netfilter as nf
from pktpath.services.l3 import netfilter6 as nf6
from pktpath.services.l3.addrconf import Fib6Info
from pktpath.services.l3.layer import L3
from pktpath.services.l3.route import FibRoute
from pktpath.services.l3.route6 import rta_expires
from pktpath.topology import IP6_RT_PRIO_USER
from pktpath.wire.addr import ip6_to_str, ip_to_str

FRAG_TICK_S = 1.0
IPV6_TICK_S = 0.1
AF_INET6 = 10  # include/linux/socket.h: a Route's family


class L3Servicer(L3, l3_pb2_grpc.L3Servicer):
    def __init__(self, ctx) -> None:
        self.ctx = ctx
        self._channel = ctx.addrs.channel(ctx.host, "l2")
        super().__init__(ctx.host, ctx.topology.host(ctx.host), ctx.hop, ErrnoStub(l2_pb2_grpc.L2Stub(self._channel)))
        self._stop = threading.Event()
        threading.Thread(target=self._frag_timer, name="ipfrag-timer", daemon=True).start()
        self._ipv6_wake = threading.Event()
        self.ipv6_timers_changed = self._ipv6_wake.set
        threading.Thread(target=self._ipv6_timer, name="addrconf-timer", daemon=True).start()

    def _frag_timer(self) -> None:
        while not self._stop.wait(FRAG_TICK_S):
            self.ip.frag_expire()
            self.ip6.frag_expire()

    def _ipv6_timer(self) -> None:
        """Neighbour discovery's and addrconf's timers, each when it is due (at least every tick)."""
        while not self._stop.is_set():
            deadline = self.ipv6_timers()
            self._ipv6_wake.clear()
            wait = IPV6_TICK_S if deadline is None else min(max(deadline - time.monotonic(), 0.001), IPV6_TICK_S)
            self._ipv6_wake.wait(wait)

    # -- ip route / ip addr / iptables -------------------------------------------
    def GetRoutes(self, request, context):
        table = l3_pb2.RouteTable()
        for r in self.fib.routes():
            net = ipaddress.IPv4Network((r.dst, r.prefixlen))
            table.routes.add(dst=str(net), gateway=ip_to_str(r.gateway) if r.gateway else "", dev=r.dev,
                             scope=r.scope, proto=r.proto, metric=r.metric,
                             prefsrc=ip_to_str(r.prefsrc) if r.prefsrc else "")
        now = self.clock()
        for r in self.addrconf.routes():
            route = table.routes.add(dst=f"{ip6_to_str(r.dst)}/{r.dst_len}",
                                     gateway=ip6_to_str(r.gateway) if r.gateway else "", dev=r.dev, scope="global",
                                     proto=r.protocol, metric=r.metric, family=AF_INET6, pref=r.pref, mtu=r.mtu,
                                     hoplimit=r.hoplimit)
            if r.expires is not None:  # RTF_EXPIRES: the seconds left, as rt6_fill_node's RTA_CACHEINFO
                route.expires = rta_expires(r.expires, now)
        return table

    @staticmethod
    def _route_arg(request) -> tuple[tuple[int, int], int]:
        return validate.prefix(request.dst, "dst"), validate.ipv4(request.gateway, "gateway")

    @checked
    def RouteAdd(self, request, context):
        if request.dev not in self.ifaces:
            context.abort(grpc.StatusCode.NOT_FOUND, f"{self.ctx.host} has no interface "
                                                     f"{validate.shown(request.dev)}")
        try:
            if request.family == AF_INET6:  # ip -6 route add: ip6_route_add, a static route of the main table
                self.addrconf.ip6_route_add(self._route6(request))
            else:
                (dst, prefixlen), gateway = self._route_arg(request)
                self.fib.add(FibRoute(dst, prefixlen, request.dev, gateway=gateway, metric=request.metric))
        except FileExistsError as exc:
            context.abort(grpc.StatusCode.ALREADY_EXISTS, str(exc))
        return empty_pb2.Empty()

    @checked
    def RouteDel(self, request, context):
        try:
            if request.family == AF_INET6:
                wanted = self._route6(request)
                found = next((r for r in self.addrconf.routes() if (r.dst, r.dst_len) == (wanted.dst, wanted.dst_len)
                              and r.protocol != "kernel" and (not request.dev or r.dev == request.dev)), None)
                if found is None:
                    raise LookupError(f"no route to {_prefix6_str((wanted.dst, wanted.dst_len))}")
                self.addrconf.ip6_del_rt(found)
            else:
                (dst, prefixlen), _ = self._route_arg(request)
                self.fib.delete(dst, prefixlen)
        except LookupError as exc:
            context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
        return empty_pb2.Empty()

    @staticmethod
    def _route6(request) -> Fib6Info:
        """The IPv6 route a Route asks for: ip -6 route's defaults (metric 1024, protocol boot)."""
        dst, dst_len = _prefix6(request.dst, "dst")
        if ipaddress.IPv6Network((dst, dst_len)).network_address != ipaddress.IPv6Address(dst):
            raise validate.Invalid(f"dst {validate.shown(request.dst)}: host bits set")
        return Fib6Info(dst, dst_len, request.dev, gateway=validate.ipv6(request.gateway, "gateway"),
                        metric=request.metric or IP6_RT_PRIO_USER, protocol=request.proto or "boot")

    def GetAddrs(self, request, context):
        table = l3_pb2.AddrTable()
        for i in self.ifaces.values():
            addr = table.addrs.add(dev=i.name, local=str(i.addr), broadcast=str(i.addr.network.broadcast_address),
                                   mtu=i.mtu, lladdr=i.mac)
            for a in self.addrconf.addr_list(i.name):
                valid, preferred = a.lifetimes(self.clock())  # inet6_fill_ifaddr: what is left of them
                addr.inet6.add(local=str(a), scope=a.scope_name, flags=a.flags, valid_lft=valid,
                               preferred_lft=preferred)
            for mc in self.mcast.groups(i.name):  # /proc/net/igmp6's lines, what ip -6 maddr reads
                addr.maddr6.add(addr=ip6_to_str(mc.addr), users=mc.users, flags=mc.flags)
        return table

    def GetRules(self, request, context):
        """iptables' table (NFPROTO_IPV4), then ip6tables' (NFPROTO_IPV6)."""
        table = l3_pb2.RuleTable()
        for family, netfilter, text in ((l3_pb2.NFPROTO_IPV4, self.netfilter, _prefix_str),
                                        (l3_pb2.NFPROTO_IPV6, self.netfilter6, _prefix6_str)):
            for r in netfilter.rules():
                table.rules.add(hook=r.hook, src=text(r.src), dst=text(r.dst), protocol=r.protocol, sport=r.sport,
                                dport=r.dport, target=r.verdict, pkts=r.pkts, bytes=r.bytes, family=family)
            for hook, policy in enumerate(netfilter.policies):
                pkts, nbytes = netfilter.policy_counts(hook)
                table.policies.add(hook=hook, policy=policy, pkts=pkts, bytes=nbytes, family=family)
        return table

    def _table(self, request) -> nf.Netfilter:
        """The request's family's table: ip6tables' for NFPROTO_IPV6, else iptables'."""
        family = validate.enum(request.family, l3_pb2.NfProto, "family")
        return self.netfilter6 if family == l3_pb2.NFPROTO_IPV6 else self.netfilter

    @staticmethod
    def _rule(request) -> nf.NfRule:
        """A rule as iptables (ip6tables, for NFPROTO_IPV6) would take it: a known hook and target,
        prefixes of its family, ports."""
        ipv6 = validate.enum(request.family, l3_pb2.NfProto, "family") == l3_pb2.NFPROTO_IPV6
        rule, prefix = (nf6.NfRule6, _prefix6) if ipv6 else (nf.NfRule, validate.prefix)
        return rule(validate.enum(request.hook, l3_pb2.NfHook, "hook"),
                    validate.enum(request.target, l3_pb2.NfVerdict, "target"),
                    prefix(request.src, "src"), prefix(request.dst, "dst"),
                    validate.integer(request.protocol, "protocol", 0, 0xFF),
                    validate.port(request.sport, "sport"), validate.port(request.dport, "dport"))

    @checked
    def RuleAdd(self, request, context):
        """iptables -A, -I (ip6tables' for family NFPROTO_IPV6, as each of these)."""
        try:
            self._table(request).add(self._rule(request), validate.integer(request.position, "position", 0, 1 << 20))
        except IndexError as exc:
            context.abort(grpc.StatusCode.OUT_OF_RANGE, str(exc))
        return empty_pb2.Empty()

    @checked
    def RuleDel(self, request, context):
        """iptables -D."""
        if not self._table(request).delete(self._rule(request), request.position):
            context.abort(grpc.StatusCode.NOT_FOUND, "no such rule" if not request.position else
                          f"no rule {request.position} in that chain")
        return empty_pb2.Empty()

    @staticmethod
    def _chain(request) -> int | None:
        return validate.enum(request.hook, l3_pb2.NfHook, "hook") if request.HasField("hook") else None

    @checked
    def RuleFlush(self, request, context):
        """iptables -F [CHAIN]."""
        self._table(request).flush(self._chain(request))
        return empty_pb2.Empty()

    @checked
    def ZeroCounters(self, request, context):
        """iptables -Z [CHAIN]."""
        self._table(request).zero(self._chain(request))
        return empty_pb2.Empty()

    @checked
    def SetPolicy(self, request, context):
        """iptables -P CHAIN TARGET (ip6tables' alike): the policy's counts from 0, as iptables-nft's."""
        self._table(request).set_policy(validate.enum(request.hook, l3_pb2.NfHook, "hook"),
                                  validate.enum(request.policy, l3_pb2.NfVerdict, "policy"))
        return empty_pb2.Empty()

    def GetCounters(self, request, context):
        return self.mib.to_proto()

    def close(self) -> None:
        self._stop.set()
        self._ipv6_wake.set()
        super().close()
        self._channel.close()


def _prefix_str(prefix: tuple[int, int]) -> str:
    return str(ipaddress.IPv4Network(prefix)) if prefix[1] else ""


def _prefix6_str(prefix: tuple[int, int]) -> str:
    return str(ipaddress.IPv6Network(prefix)) if prefix[1] else ""


def _prefix6(text: str, field: str) -> tuple[int, int]:
    """"2001:db8::/64" as (network, length); "" is any (0, 0). Host bits are refused (ip6tables
    masks them before it asks)."""
    if not text:
        return 0, 0
    if not text.isascii() or not text.isprintable() or len(text) > 43:
        raise validate.Invalid(f"{field} {validate.shown(text)} is not an IPv6 prefix")
    try:
        net = ipaddress.IPv6Network(text)
    except ValueError as exc:
        raise validate.Invalid(f"{field} {validate.shown(text)}: {exc}") from None
    return int(net.network_address), net.prefixlen


def build(ctx) -> L3Servicer:
    return L3Servicer(ctx)
