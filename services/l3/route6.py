"""IPv6 route lookups and the path MTU they carry, as net/ipv6/route.c and ip6_fib.c give them.

The tables are an Addrconf's (services/l3/addrconf.py): Fib6Info routes in "local" (our
addresses, the subnet-router anycast ones of a router, ff00::/8 per device) and "main"
(connected prefixes, fe80::/64, the topology's static routes).

- fib6_lookup(): what fib6_rule_lookup() does with the default rules (`ip -6 rule`: 0 local,
  32766 main): the local table, then the main one. In a table, fib6_table_lookup(): the
  longest matching prefix (fib6_node_lookup), and among that prefix's routes the lowest metric
  (rt6_select over fib6_add_rt2's order, the first added of equal ones). A lookup tied to a
  device (RT6_LOOKUP_F_IFACE: the destination needs it, rt6_need_strict, or the flow names an
  oif) takes only routes out of that device, falling back to shorter prefixes (fib6_backtrack)
  when a prefix has none; an untied one given an oif prefers it among equal routes
  (rt6_check_dev's score).
- Rt6Info, the dst a lookup gives: a local or anycast route's device is lo
  (ip6_rt_get_dev_rcu), its next hop rt6_nexthop(): the gateway, else the destination itself.
- The path MTU, dst6_mtu(): the device's (idev->cnf.mtu6), lowered for a destination by what a
  Packet Too Big taught (a route exception, RTF_CACHE, rt6_do_update_pmtu), for
  net.ipv6.route.mtu_expires (600 s). __ip6_rt_update_pmtu() ignores an MTU below 1280
  (IPV6_MIN_MTU: RFC 8201 lets a node not go lower, and since 4.x Linux simply drops such a
  Packet Too Big) and one not below the path MTU it has; checked on Linux 6.18: PTBs of 1000
  and 1279 taught nothing, 1280 and 1400 an exception "expires 600sec mtu 1280/1400", 1600 on
  a 1500 link nothing.

Not here: policy routing beyond the default rules, source-specific routes (subtrees), ECMP,
router preference and neighbour reachability in rt6_select (RT6_LOOKUP_F_REACHABLE),
unreachable/blackhole/prohibit/throw routes (Addrconf makes none), lwtunnel headroom, locked
MTU metrics. A route's own MTU and hop limit metrics (RTAX_MTU, RTAX_HOPLIMIT: an RA sets them on
its default route, Fib6Info.mtu and .hoplimit) are its dst's, the device's (mtu6, 64) otherwise.

Pure logic: no gRPC. Addresses are 128-bit ints.
"""

import threading
import time
from dataclasses import dataclass

from pktpath.pb import skbuff_pb2
from pktpath.services.l3.addrconf import LOOPBACK_DEV, RT6_TABLE_LOCAL, RT6_TABLE_MAIN, Fib6Info
from pktpath.wire.icmpv6 import ICMPV6_DEST_UNREACH, ICMPV6_NOROUTE
from pktpath.wire.addr import (
    IPV6_ADDR_LINKLOCAL, IPV6_ADDR_LOOPBACK, IPV6_ADDR_MULTICAST, ip6_to_str, ipv6_addr_type,
)
from pktpath.wire.ipv6 import IPV6_DEFAULT_HOPLIMIT, IPV6_MIN_MTU

# enum rtn_type as Fib6Info.type spells it
RTN_UNICAST, RTN_LOCAL, RTN_ANYCAST, RTN_MULTICAST = "unicast", "local", "anycast", "multicast"
def ip6_pkt_discard(owner, skb, hdr, parm, icmp6_send) -> int:
    """ip6_pkt_discard() → ip6_pkt_drop(ICMPV6_NOROUTE, IPSTATS_MIB_INNOROUTES): what the null
    route does with a packet it takes (no route; the unspecified destination counts
    Ip6InAddrErrors instead): Destination Unreachable, no route, then the drop. `owner` is the
    layer's receive or forwarding path (its `mib` and `drop`)."""
    if hdr.daddr == 0:
        owner.mib.inc("Ip6", "InAddrErrors")
        reason = skbuff_pb2.SKB_DROP_REASON_IP_INADDRERRORS
    else:
        owner.mib.inc("Ip6", "InNoRoutes")
        reason = skbuff_pb2.SKB_DROP_REASON_IP_INNOROUTES
    icmp6_send(skb, hdr, parm, ICMPV6_DEST_UNREACH, ICMPV6_NOROUTE, 0)
    return owner.drop(skb, reason, "ip6_pkt_drop")


IP6_RT_MTU_EXPIRES = 600.0  # net.ipv6.route.mtu_expires: a learned path MTU is forgotten after 10 minutes
LOOPBACK_MTU = 65536        # lo's MTU, what a dst to one of our own addresses has
IP6_MAX_MTU = 0xFFFF + 40   # sizeof(struct ipv6hdr) + IPV6_MAXPLEN: what dst6_mtu never exceeds


def rt6_need_strict(daddr: int) -> bool:
    """rt6_need_strict() (include/net/ip6_route.h): a multicast, link-local or loopback
    destination can only be reached through the device the lookup names."""
    return bool(ipv6_addr_type(daddr) & (IPV6_ADDR_MULTICAST | IPV6_ADDR_LINKLOCAL | IPV6_ADDR_LOOPBACK))


def _prefix_match(addr: int, prefix: int, plen: int) -> bool:
    return not plen or (addr ^ prefix) >> (128 - plen) == 0


def fib6_table_lookup(routes: list[Fib6Info], daddr: int, oif: str = "", *, strict: bool = False) -> Fib6Info | None:
    """fib6_table_lookup() over one table's routes (in fib6_walk's order, so a prefix's equal
    routes in the order they were added): the longest prefix holding daddr, then the lowest
    metric; `strict` (RT6_LOOKUP_F_IFACE) with an oif skips routes out of other devices, so
    the lookup backtracks to shorter prefixes; without it an oif only breaks ties."""
    best, best_key = None, None
    for n, rt in enumerate(routes):
        if not _prefix_match(daddr, rt.dst, rt.dst_len):
            continue
        on_oif = bool(oif) and rt.dev == oif
        if strict and oif and not on_oif:
            continue
        key = (rt.dst_len, -rt.metric, on_oif, -n)
        if best_key is None or key > best_key:
            best, best_key = rt, key
    return best


def fib6_lookup(addrconf, daddr: int, oif: str = "", *, strict: bool = False) -> Fib6Info | None:
    """fib6_rule_lookup() with the default rules: the local table, then main. None: no route
    (ip6_null_entry, -ENETUNREACH)."""
    for table in (RT6_TABLE_LOCAL, RT6_TABLE_MAIN):
        rt = fib6_table_lookup(addrconf.routes(table), daddr, oif, strict=strict)
        if rt is not None:
            return rt
    return None


def rt6_nexthop(f6i: Fib6Info, daddr: int) -> int:
    """rt6_nexthop(): the neighbour L2 resolves: the route's gateway (RTF_GATEWAY), else the
    destination itself (on-link, local, multicast)."""
    return f6i.gateway or daddr


@dataclass(frozen=True)
class Rt6Info:
    """struct rt6_info, the dst a lookup returns: where a packet to daddr goes."""
    daddr: int
    f6i: Fib6Info            # the route it came from (rt->from)
    dev: str                 # dst->dev: lo for a local or anycast route
    nexthop: int             # rt6_nexthop()
    mtu: int                 # dst6_mtu(): the path MTU
    hop_limit: int = IPV6_DEFAULT_HOPLIMIT  # ip6_dst_hoplimit(): idev->cnf.hop_limit
    saddr: int = 0           # the source address chosen for the flow (0: not chosen yet)
    expires: float | None = None  # seconds the learned path MTU has left (RTF_CACHE + RTF_EXPIRES)
    flow_saddr: int = 0      # the source the flow asked for: `ip -6 route get ... from`

    @property
    def type(self) -> str:
        return self.f6i.type

    @property
    def fib_dev(self) -> str:
        """fib6_info_nh_dev(): the route's own device, where the source address is chosen."""
        return self.f6i.dev

    @property
    def is_local(self) -> bool:
        """RTF_LOCAL or RTF_ANYCAST: delivered to this host through lo (dst.input = ip6_input)."""
        return self.f6i.type in (RTN_LOCAL, RTN_ANYCAST)

    def __str__(self) -> str:
        """As `ip -6 route get` prints it (rt6_fill_node for the dst)."""
        words = [] if self.type == RTN_UNICAST else [self.type]
        words += [ip6_to_str(self.daddr), "from", ip6_to_str(self.flow_saddr)]
        if self.f6i.gateway:
            words += ["via", ip6_to_str(self.f6i.gateway)]
        words += ["dev", self.dev]
        if self.f6i.table != RT6_TABLE_MAIN:
            words += ["table", self.f6i.table]
        if self.f6i.protocol != "boot":
            words += ["proto", self.f6i.protocol]
        if self.saddr:
            words += ["src", ip6_to_str(self.saddr)]
        words += ["metric", str(self.f6i.metric)]
        if self.expires is not None:
            words += ["expires", f"{int(self.expires)}sec", "mtu", str(self.mtu)]
        words += ["pref", self.f6i.pref]
        return " ".join(words)


class Route6:
    """A host's IPv6 route lookups (ip6_route_output, ip6_route_input) over its Addrconf, with
    the route exceptions Packet Too Big messages leave (ip6_update_pmtu)."""

    def __init__(self, addrconf, mtus: dict[str, int], *, clock=time.monotonic,
                 mtu_expires: float = IP6_RT_MTU_EXPIRES) -> None:
        """mtus: each device's MTU (idev->cnf.mtu6 follows dev->mtu); lo's is LOOPBACK_MTU."""
        self.addrconf = addrconf
        self.mtus = mtus
        self.mtu_expires = mtu_expires
        self._clock = clock
        self._lock = threading.Lock()
        self._pmtu: dict[int, tuple[int, float]] = {}  # daddr -> (mtu, expires): the RTF_CACHE exceptions

    def dev_mtu(self, dev: str) -> int:
        """idev->cnf.mtu6, at least IPV6_MIN_MTU (a device below it has no inet6_dev at all)."""
        return max(self.mtus.get(dev, LOOPBACK_MTU), IPV6_MIN_MTU)

    def learned_pmtu(self, daddr: int) -> tuple[int, float] | None:
        """The exception for daddr: (mtu, seconds left), None if none or expired (rt6_check_expired;
        the kernel's garbage collector frees it later, pktpath at once)."""
        with self._lock:
            entry = self._pmtu.get(daddr)
            if entry is None:
                return None
            left = entry[1] - self._clock()
            if left <= 0:
                del self._pmtu[daddr]
                return None
            return entry[0], left

    def path_mtu(self, daddr: int, dev: str) -> int:
        """The device's MTU, or the smaller one learned for daddr (dst6_mtu of a route without
        an MTU metric: Rt6Info.mtu is the whole answer)."""
        mtu = self.dev_mtu(dev)
        learned = self.learned_pmtu(daddr)
        return min(mtu, learned[0], IP6_MAX_MTU) if learned else min(mtu, IP6_MAX_MTU)

    def _dst(self, f6i: Fib6Info, daddr: int, flow_saddr: int = 0) -> Rt6Info:
        """ip6_rt_cache_alloc / ip6_create_rt_rcu: the dst of a route for daddr."""
        if f6i.type in (RTN_LOCAL, RTN_ANYCAST):
            return Rt6Info(daddr, f6i, LOOPBACK_DEV, daddr, self.dev_mtu(LOOPBACK_DEV), flow_saddr=flow_saddr)
        learned = self.learned_pmtu(daddr)
        mtu = min(f6i.mtu or self.dev_mtu(f6i.dev), IP6_MAX_MTU)  # the route's RTAX_MTU (an RA's), else mtu6
        hop_limit = f6i.hoplimit or IPV6_DEFAULT_HOPLIMIT  # ip6_dst_hoplimit(): RTAX_HOPLIMIT, else cnf.hop_limit
        if learned is not None and learned[0] < mtu:
            return Rt6Info(daddr, f6i, f6i.dev, rt6_nexthop(f6i, daddr), learned[0], hop_limit, expires=learned[1],
                           flow_saddr=flow_saddr)
        return Rt6Info(daddr, f6i, f6i.dev, rt6_nexthop(f6i, daddr), mtu, hop_limit, flow_saddr=flow_saddr)

    def ip6_route_output(self, daddr: int, oif: str = "", saddr: int = 0) -> Rt6Info | None:
        """ip6_route_output_flags(): the dst for a locally generated packet. Tied to oif
        (RT6_LOOKUP_F_IFACE) when the destination needs a device (rt6_need_strict) or the flow
        names one (ip6_dst_lookup_tail asks again with the chosen source and the flag set).
        None: no route (the caller counts Ip6OutNoRoutes, ENETUNREACH)."""
        f6i = fib6_lookup(self.addrconf, daddr, oif, strict=bool(oif) or rt6_need_strict(daddr))
        return None if f6i is None else self._dst(f6i, daddr, saddr)

    def ip6_route_input(self, daddr: int, iif: str) -> Rt6Info | None:
        """ip6_route_input(): the dst for a packet that came in on iif: a link-local, multicast
        or loopback destination only through iif itself (a router sends a link-local one back
        out of the link it came from, with a redirect). None: no route (ip6_pkt_discard)."""
        f6i = fib6_lookup(self.addrconf, daddr, iif, strict=rt6_need_strict(daddr))
        return None if f6i is None else self._dst(f6i, daddr)

    def ip6_update_pmtu(self, daddr: int, mtu: int, oif: str = "") -> bool:
        """ip6_update_pmtu() → __ip6_rt_update_pmtu(): what a Packet Too Big about a packet to
        daddr teaches. Nothing below IPV6_MIN_MTU, nothing not below the path MTU already known
        (so never above the device's), nothing for a local route; otherwise the exception
        (rt6_do_update_pmtu: RTAX_MTU, expiring mtu_expires from now, a later one restarting the
        time). Returns whether it learned."""
        rt = self.ip6_route_output(daddr, oif)
        if rt is None or rt.is_local or mtu < IPV6_MIN_MTU or mtu >= rt.mtu:
            return False
        with self._lock:
            self._pmtu[daddr] = (mtu, self._clock() + self.mtu_expires)
        return True

    def rt6_flush_exceptions(self) -> None:
        """rt6_flush_exceptions(): forget every learned path MTU (`ip -6 route flush cache`)."""
        with self._lock:
            self._pmtu.clear()
