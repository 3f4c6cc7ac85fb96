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
- Route exceptions (struct rt6_exception, RTF_CACHE: rt6_insert_exception, rt6_find_cached_rt):
  one per destination under the route a lookup chose, found only when the lookup chooses that
  route again; a Packet Too Big's (an MTU, RTF_EXPIRES) and a Redirect's (rt6_do_redirect: the
  target as gateway, RTF_GATEWAY unless it is the destination itself; a new one replaces the
  destination's old one, learned MTU included, as Linux's does). ip6_route_redirect() finds the
  route a Redirect may change: one through its sender on the device it came in on.
- Expiry and the fib6 garbage collector (ip6_fib.c): a route with RTF_EXPIRES (Fib6Info.expires:
  an RA's default and prefix routes) is skipped by lookups once past (fib6_check_expired) but
  stays in the table, `ip -6 route` showing a negative `expires`, until fib6_run_gc() removes it;
  the gc timer (net.ipv6.route.gc_interval, 30 s) starts when such a route or an exception is
  added (fib6_start_gc, fib6_force_start_gc) and runs again while any is left. It also removes
  expired exceptions and those without RTF_EXPIRES made gc_interval ago or more (rt6_age_exceptions:
  a redirect's; their lastuse is not renewed by lookups). Checked on Linux 6.18: an RA default
  route of lifetime 4 showed `expires 0sec`, then `-4sec`, and was gone within 30 s; a redirect's
  exception went 29 s after it came, though pings used it every second.

Not here: policy routing beyond the default rules, source-specific routes (subtrees), ECMP,
router preference and neighbour reachability in rt6_select (RT6_LOOKUP_F_REACHABLE), the gc's
purge of a redirect whose gateway is no router neighbour any more (that is L2's table),
unreachable/blackhole/prohibit/throw routes (Addrconf makes none), lwtunnel headroom, locked
MTU metrics. A route's own MTU and hop limit metrics (RTAX_MTU, RTAX_HOPLIMIT: an RA sets them on
its default route, Fib6Info.mtu and .hoplimit) are its dst's, the device's (mtu6, 64) otherwise.

Pure logic: no gRPC. Addresses are 128-bit ints.
"""

import math
import threading
import time
from dataclasses import dataclass
from typing import Callable

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
IP6_RT_GC_INTERVAL = 30.0   # net.ipv6.route.gc_interval: the fib6 garbage collector's period
LOOPBACK_MTU = 65536        # lo's MTU, what a dst to one of our own addresses has
IP6_MAX_MTU = 0xFFFF + 40   # sizeof(struct ipv6hdr) + IPV6_MAXPLEN: what dst6_mtu never exceeds


def rt6_need_strict(daddr: int) -> bool:
    """rt6_need_strict() (include/net/ip6_route.h): a multicast, link-local or loopback
    destination can only be reached through the device the lookup names."""
    return bool(ipv6_addr_type(daddr) & (IPV6_ADDR_MULTICAST | IPV6_ADDR_LINKLOCAL | IPV6_ADDR_LOOPBACK))


def _prefix_match(addr: int, prefix: int, plen: int) -> bool:
    return not plen or (addr ^ prefix) >> (128 - plen) == 0


def fib6_check_expired(f6i: Fib6Info, now: float | None) -> bool:
    """fib6_check_expired(): RTF_EXPIRES and past (a lookup without `now` sees every route)."""
    return f6i.expires is not None and now is not None and now > f6i.expires


def fib6_table_lookup(routes: list[Fib6Info], daddr: int, oif: str = "", *, strict: bool = False,
                      now: float | None = None) -> Fib6Info | None:
    """fib6_table_lookup() over one table's routes (in fib6_walk's order, so a prefix's equal
    routes in the order they were added): the longest prefix holding daddr, then the lowest
    metric; `strict` (RT6_LOOKUP_F_IFACE) with an oif skips routes out of other devices, so
    the lookup backtracks to shorter prefixes; without it an oif only breaks ties. A route
    expired at `now` is skipped (fib6_check_expired in __find_rr_leaf)."""
    best, best_key = None, None
    for n, rt in enumerate(routes):
        if not _prefix_match(daddr, rt.dst, rt.dst_len) or fib6_check_expired(rt, now):
            continue
        on_oif = bool(oif) and rt.dev == oif
        if strict and oif and not on_oif:
            continue
        key = (rt.dst_len, -rt.metric, on_oif, -n)
        if best_key is None or key > best_key:
            best, best_key = rt, key
    return best


def fib6_lookup(addrconf, daddr: int, oif: str = "", *, strict: bool = False,
                now: float | None = None) -> Fib6Info | None:
    """fib6_rule_lookup() with the default rules: the local table, then main. None: no route
    (ip6_null_entry, -ENETUNREACH)."""
    for table in (RT6_TABLE_LOCAL, RT6_TABLE_MAIN):
        rt = fib6_table_lookup(addrconf.routes(table), daddr, oif, strict=strict, now=now)
        if rt is not None:
            return rt
    return None


def rt6_nexthop(f6i: Fib6Info, daddr: int) -> int:
    """rt6_nexthop(): the neighbour L2 resolves: the route's gateway (RTF_GATEWAY), else the
    destination itself (on-link, local, multicast)."""
    return f6i.gateway or daddr


def fib6_key(f6i: Fib6Info) -> tuple:
    """What names a route whatever its metrics and expiry (rt->from: an exception's route)."""
    return f6i.table, f6i.dst, f6i.dst_len, f6i.dev, f6i.gateway, f6i.metric


@dataclass
class Rt6Exception:
    """An RTF_CACHE rt6_info in its route's exception table: what a Packet Too Big (an MTU, with
    RTF_EXPIRES) or a Redirect (a gateway) taught about one destination."""
    from_key: tuple               # fib6_key() of the route it hangs under (rt->from)
    gateway: int = 0              # a redirect's target (rt6i_gateway); 0: the route's own next hop
    on_link: bool = False         # a redirect to the destination itself: no RTF_GATEWAY
    mtu: int = 0                  # RTAX_MTU a Packet Too Big taught; 0: the route's
    expires: float | None = None  # RTF_EXPIRES: when the learned MTU runs out
    lastuse: float = 0.0          # dst.lastuse: when it was made (ip6_rt_copy_init)


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
    gateway: int = 0         # rt6i_gateway under RTF_GATEWAY: the route's, or a redirect's target

    @property
    def rt_mtu(self) -> int:
        """The RTAX_MTU metric rt6_fill_node shows: a learned path MTU, else the route's (0: none)."""
        return self.mtu if self.expires is not None else self.f6i.mtu

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
        if self.gateway:
            words += ["via", ip6_to_str(self.gateway)]
        words += ["dev", self.dev]
        if self.f6i.table != RT6_TABLE_MAIN:
            words += ["table", self.f6i.table]
        if self.f6i.protocol != "boot":
            words += ["proto", self.f6i.protocol]
        if self.saddr:
            words += ["src", ip6_to_str(self.saddr)]
        words += ["metric", str(self.f6i.metric)]
        if self.expires is not None:
            words += ["expires", f"{int(self.expires)}sec"]
        if self.rt_mtu:
            words += ["mtu", str(self.rt_mtu)]
        if self.f6i.hoplimit:
            words += ["hoplimit", str(self.f6i.hoplimit)]
        words += ["pref", self.f6i.pref]
        return " ".join(words)


class Route6:
    """A host's IPv6 route lookups (ip6_route_output, ip6_route_input) over its Addrconf, with
    the route exceptions Packet Too Big messages and Redirects leave, and the fib6 garbage
    collector (fib6_run_gc) that removes expired routes and exceptions."""

    def __init__(self, addrconf, mtus: dict[str, int], *, clock=time.monotonic,
                 mtu_expires: float = IP6_RT_MTU_EXPIRES, gc_interval: float = IP6_RT_GC_INTERVAL) -> None:
        """mtus: each device's MTU (idev->cnf.mtu6 follows dev->mtu); lo's is LOOPBACK_MTU."""
        self.addrconf = addrconf
        self.mtus = mtus
        self.mtu_expires = mtu_expires
        self.gc_interval = gc_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._exceptions: dict[int, Rt6Exception] = {}  # daddr -> its RTF_CACHE route
        self._gc_due: float | None = None               # net->ipv6.ip6_fib_timer
        self.on_gc_timer: Callable[[float], None] | None = None  # told when the gc timer is armed

    def dev_mtu(self, dev: str) -> int:
        """idev->cnf.mtu6, at least IPV6_MIN_MTU (a device below it has no inet6_dev at all)."""
        return max(self.mtus.get(dev, LOOPBACK_MTU), IPV6_MIN_MTU)

    def learned_pmtu(self, daddr: int) -> tuple[int, float] | None:
        """The path MTU learned for daddr: (mtu, seconds left), None if none or expired
        (rt6_check_expired; the gc frees it later, pktpath at once)."""
        with self._lock:
            ex = self._exceptions.get(daddr)
            if ex is None or ex.expires is None or not ex.mtu:
                return None
            left = ex.expires - self._clock()
            if left <= 0:
                del self._exceptions[daddr]
                return None
            return ex.mtu, left

    def path_mtu(self, daddr: int, dev: str) -> int:
        """The device's MTU, or the smaller one learned for daddr (dst6_mtu of a route without
        an MTU metric: Rt6Info.mtu is the whole answer)."""
        mtu = self.dev_mtu(dev)
        learned = self.learned_pmtu(daddr)
        return min(mtu, learned[0], IP6_MAX_MTU) if learned else min(mtu, IP6_MAX_MTU)

    def rt6_find_cached_rt(self, f6i: Fib6Info, daddr: int) -> Rt6Exception | None:
        """rt6_find_cached_rt(): daddr's exception under f6i, not expired (rt6_check_expired:
        an expired one is dropped here, the kernel's gc drops it later). A lookup leaves its
        lastuse as it was (ip6_pol_route: only ip6_pol_route_lookup calls dst_use_noref), so a
        redirect's goes at the gc's first run gc_interval after it came, used or not."""
        now = self._clock()
        with self._lock:
            ex = self._exceptions.get(daddr)
            if ex is None or ex.from_key != fib6_key(f6i):
                return None
            if ex.expires is not None and now >= ex.expires:
                del self._exceptions[daddr]
                return None
            return ex

    def _dst(self, f6i: Fib6Info, daddr: int, flow_saddr: int = 0) -> Rt6Info:
        """ip6_pol_route: the exception for daddr under f6i if there is one (rt6_find_cached_rt),
        else the route's own dst (ip6_rt_cache_alloc / ip6_create_rt_rcu)."""
        if f6i.type in (RTN_LOCAL, RTN_ANYCAST):
            return Rt6Info(daddr, f6i, LOOPBACK_DEV, daddr, self.dev_mtu(LOOPBACK_DEV), flow_saddr=flow_saddr)
        mtu = min(f6i.mtu or self.dev_mtu(f6i.dev), IP6_MAX_MTU)  # the route's RTAX_MTU (an RA's), else mtu6
        hop_limit = f6i.hoplimit or IPV6_DEFAULT_HOPLIMIT  # ip6_dst_hoplimit(): RTAX_HOPLIMIT, else cnf.hop_limit
        gateway, nexthop, expires = f6i.gateway, rt6_nexthop(f6i, daddr), None
        ex = self.rt6_find_cached_rt(f6i, daddr)
        if ex is not None:
            if ex.gateway:
                gateway, nexthop = (0 if ex.on_link else ex.gateway), ex.gateway
            if ex.mtu and ex.mtu < mtu:
                mtu, expires = ex.mtu, ex.expires - self._clock()
        return Rt6Info(daddr, f6i, f6i.dev, nexthop, mtu, hop_limit, expires=expires, flow_saddr=flow_saddr,
                       gateway=gateway)

    def ip6_route_output(self, daddr: int, oif: str = "", saddr: int = 0) -> Rt6Info | None:
        """ip6_route_output_flags(): the dst for a locally generated packet. Tied to oif
        (RT6_LOOKUP_F_IFACE) when the destination needs a device (rt6_need_strict) or the flow
        names one (ip6_dst_lookup_tail asks again with the chosen source and the flag set).
        None: no route (the caller counts Ip6OutNoRoutes, ENETUNREACH)."""
        f6i = fib6_lookup(self.addrconf, daddr, oif, strict=bool(oif) or rt6_need_strict(daddr), now=self._clock())
        return None if f6i is None else self._dst(f6i, daddr, saddr)

    def ip6_route_input(self, daddr: int, iif: str) -> Rt6Info | None:
        """ip6_route_input(): the dst for a packet that came in on iif: a link-local, multicast
        or loopback destination only through iif itself (a router sends a link-local one back
        out of the link it came from, with a redirect). None: no route (ip6_pkt_discard)."""
        f6i = fib6_lookup(self.addrconf, daddr, iif, strict=rt6_need_strict(daddr), now=self._clock())
        return None if f6i is None else self._dst(f6i, daddr)

    def ip6_update_pmtu(self, daddr: int, mtu: int, oif: str = "") -> bool:
        """ip6_update_pmtu() → __ip6_rt_update_pmtu(): what a Packet Too Big about a packet to
        daddr teaches. Nothing below IPV6_MIN_MTU, nothing not below the path MTU already known
        (so never above the device's), nothing for a local route; otherwise RTAX_MTU expiring
        mtu_expires from now (rt6_do_update_pmtu) on daddr's exception (a redirect's keeps its
        gateway), or a new one (rt6_insert_exception). Returns whether it learned."""
        rt = self.ip6_route_output(daddr, oif)
        if rt is None or rt.is_local or mtu < IPV6_MIN_MTU or mtu >= rt.mtu:
            return False
        key, expires = fib6_key(rt.f6i), self._clock() + self.mtu_expires
        with self._lock:
            ex = self._exceptions.get(daddr)
            if ex is not None and ex.from_key == key:
                ex.mtu, ex.expires = mtu, expires
            else:
                self._exceptions[daddr] = Rt6Exception(key, mtu=mtu, expires=expires, lastuse=self._clock())
        self.fib6_start_gc()
        return True

    def ip6_route_redirect(self, daddr: int, oif: str, gateway: int) -> Fib6Info | None:
        """ip6_route_redirect() → __ip6_route_redirect(): the route to daddr a Redirect from
        `gateway` on oif may change (RFC 4861 8.1: it must come from the current first hop): from
        the longest prefix down (fib6_backtrack), in each table (local, then main), the first
        unexpired route through `gateway` out of oif, or whose exception for daddr already goes
        through it (ip6_redirect_nh_match). None: the null entry (RTF_REJECT)."""
        now = self._clock()
        for table in (RT6_TABLE_LOCAL, RT6_TABLE_MAIN):
            candidates = [r for r in self.addrconf.routes(table)
                          if _prefix_match(daddr, r.dst, r.dst_len) and not fib6_check_expired(r, now)]
            for rt in sorted(candidates, key=lambda r: (-r.dst_len, r.metric)):  # a node's routes by metric
                if not rt.gateway or rt.dev != oif:
                    continue
                if rt.gateway == gateway:
                    return rt
                with self._lock:
                    ex = self._exceptions.get(daddr)
                    if ex is not None and ex.from_key == fib6_key(rt) and ex.gateway == gateway:
                        return rt
        return None

    def rt6_insert_exception(self, daddr: int, f6i: Fib6Info, target: int, on_link: bool) -> None:
        """rt6_do_redirect()'s exception: daddr through `target` (RTF_GATEWAY | RTF_DYNAMIC |
        RTF_CACHE, no RTF_GATEWAY when on-link) under f6i, replacing daddr's old one; the gc
        timer started (fib6_force_start_gc)."""
        with self._lock:
            self._exceptions[daddr] = Rt6Exception(fib6_key(f6i), gateway=target, on_link=on_link,
                                                   lastuse=self._clock())
        self.fib6_start_gc()

    def rt6_flush_exceptions(self) -> None:
        """rt6_flush_exceptions(): forget every exception (`ip -6 route flush cache`)."""
        with self._lock:
            self._exceptions.clear()

    # -- the fib6 garbage collector (ip6_fib.c) ----------------------------------------------
    def fib6_start_gc(self) -> None:
        """fib6_start_gc() / fib6_force_start_gc(): the gc timer, gc_interval from now unless
        it is pending already."""
        with self._lock:
            if self._gc_due is not None:
                return
            due = self._gc_due = self._clock() + self.gc_interval
        if self.on_gc_timer is not None:
            self.on_gc_timer(due)

    def fib6_gc_timer(self) -> float | None:
        """fib6_gc_timer_cb() when due: fib6_run_gc, then again gc_interval later while anything
        is left to age, else the timer stopped. Returns when it runs next (None: stopped)."""
        now = self._clock()
        with self._lock:
            due = self._gc_due
        if due is None or due > now:
            return due
        more = self.fib6_run_gc()
        with self._lock:
            self._gc_due = now + self.gc_interval if more else None
            return self._gc_due

    def fib6_run_gc(self) -> bool:
        """fib6_run_gc() → fib6_age(): routes past their RTF_EXPIRES deleted; exceptions past
        theirs, or without one and unused for gc_interval (rt6_age_examine_exception), removed.
        Returns whether any route or exception is left to age (gc_args.more)."""
        now = self._clock()
        more = 0
        for table in (RT6_TABLE_LOCAL, RT6_TABLE_MAIN):
            for rt in self.addrconf.routes(table):
                if rt.expires is None:
                    continue
                if now > rt.expires:
                    self.addrconf.ip6_del_rt(rt)
                else:
                    more += 1
        with self._lock:
            for daddr, ex in list(self._exceptions.items()):
                if ex.expires is None and now >= ex.lastuse + self.gc_interval or \
                        ex.expires is not None and now > ex.expires:
                    del self._exceptions[daddr]
                else:
                    more += 1
        return bool(more)


def rta_expires(expires: float | None, now: float) -> int | None:
    """rt6_fill_node's RTA_CACHEINFO rta_expires as ip prints it: the seconds left, truncated
    toward zero (negative once past, until the gc removes the route); None without RTF_EXPIRES."""
    return None if expires is None else math.trunc(expires - now)
