"""A host's IPv6 addresses and the routes they bring, as net/ipv6/addrconf.c gives them.

Per device an inet6_dev: its address list (struct inet6_ifaddr, each with its prefix
length, scope and IFA_F_* flags) kept as ipv6_link_dev_addr() keeps it, scope by scope,
global before link-local, the newest of a scope first. What the host has once it is up:

- `lo`: ::1/128, scope host (init_loopback, add_addr); its route is the local table's only.
- every interface (addrconf_add_dev, addrconf_dev_config): the multicast route ff00::/8 in
  the local table, and a link-local address from its MAC: fe80::/64 with the modified
  EUI-64 interface id (addrconf_addr_gen in IN6_ADDR_GEN_MODE_EUI64, the default
  addr_gen_mode; addrconf_add_linklocal), which brings the connected route fe80::/64.
  Not one whose MTU is below 1280 (IPV6_MIN_MTU): ipv6_add_dev refuses it an inet6_dev,
  and it has no IPv6 at all.
- each configured address (inet6_addr_add, ip -6 addr add): permanent, and its prefix's
  connected route (addrconf_prefix_route: proto kernel, metric 256, IP6_RT_PRIO_ADDRCONF).
- each address's local route in the local table (addrconf_f6i_alloc), and on a forwarding
  host the subnet-router anycast address of its prefix (addrconf_join_anycast).
- the topology's static routes (ip6_route_add): proto static, as the IPv4 ones are shown.

Addresses come up tentative, as in Linux: ipv6_add_addr() sets IFA_F_TENTATIVE on every
address but one added with IFA_F_NODAD (and lo's, whose DAD addrconf_dad_begin skips), and
Duplicate Address Detection (RFC 4862 5.4: addrconf_dad_start ... addrconf_dad_work in
services/l3/ndisc.py) clears it in addrconf_dad_completed(); until then the address is not
ours (ipv6_chk_addr, source selection) and has no local route (ipv6_ifa_notify inserts it,
and on a forwarding host joins the prefix's anycast address, once DAD succeeded). A
conflict leaves a permanent address IFA_F_TENTATIVE | IFA_F_DADFAILED, its local route never
added; one from SLAAC is deleted (addrconf_dad_stop). `dad=False` makes every address
usable at once, in its state after DAD succeeded (for tests that need no DAD).
(Configured addresses get IFA_F_PERMANENT from inet6_addr_add, whose infinite lifetimes
make them so, the link-local one from addrconf_add_linklocal, ::1 from add_addr.)

Each inet6_dev's multicast list is services/l3/mcast6.py's (`mcast`): every device joins
ff01::1 and ff02::1 and a forwarding host's ff02::2 (ipv6_add_dev), each address its
solicited-node group but lo's (addrconf_join_solict, before DAD starts) and leaves it with the
address (addrconf_leave_solict); a device's only link-local address completing DAD has MLD
report every group again from it (addrconf_dad_completed's ipv6_mc_dad_complete).

An address's lifetimes (an RA's, through services/l3/ndisc.py) count from its tstamp:
Inet6Ifaddr.lifetimes() is what inet6_fill_ifaddr reports (`valid_lft 86397sec`). A route an RA
made carries its expiry (Fib6Info.expires, RTF_EXPIRES), which route6.py's lookups and fib6 gc
read.

The routes are kept as fib6 lists them (fib6_walk: a post-order walk of the radix tree,
so a prefix after the longer ones inside it and ::/0 last); `ip -6 route` shows the main
table. The table is for showing and for what is ours (ipv6_chk_addr); IPv6 lookups are
a later step.
"""

import math
import threading
from dataclasses import dataclass, field, replace

from pktpath.topology import IP6_RT_PRIO_ADDRCONF, IPV6_MIN_MTU
from pktpath.wire.addr import (
    IN6ADDR_LINKLOCAL_ALLNODES, IN6ADDR_LINKLOCAL_ALLROUTERS, IN6ADDR_LOOPBACK, IPV6_ADDR_LINKLOCAL,
    IPV6_ADDR_LOOPBACK, IPV6_ADDR_SITELOCAL, addrconf_addr_gen_eui64, addrconf_addr_solict_mult, ip6_to_str,
    ipv6_addr_is_multicast, ipv6_addr_scope, ipv6_addr_src_scope, mac_from_str)

# struct ifaddrmsg's ifa_flags (include/uapi/linux/if_addr.h)
IFA_F_SECONDARY = 0x01
IFA_F_TEMPORARY = IFA_F_SECONDARY
IFA_F_NODAD = 0x02
IFA_F_OPTIMISTIC = 0x04
IFA_F_DADFAILED = 0x08
IFA_F_HOMEADDRESS = 0x10
IFA_F_DEPRECATED = 0x20
IFA_F_TENTATIVE = 0x40
IFA_F_PERMANENT = 0x80
IFA_F_MANAGETEMPADDR = 0x100
IFA_F_NOPREFIXROUTE = 0x200
IFA_F_MCAUTOJOIN = 0x400
IFA_F_STABLE_PRIVACY = 0x800
INFINITY_LIFE_TIME = 0xFFFFFFFF  # an address's valid_lft and prefered_lft that never run out

# rt_scope(): an address's scope as netlink carries it (enum rt_scope_t), by the name ip prints
RT_SCOPE_UNIVERSE, RT_SCOPE_SITE, RT_SCOPE_LINK, RT_SCOPE_HOST = 0, 200, 253, 254
SCOPE_NAMES = {RT_SCOPE_UNIVERSE: "global", RT_SCOPE_SITE: "site", RT_SCOPE_LINK: "link", RT_SCOPE_HOST: "host"}

RT6_TABLE_MAIN, RT6_TABLE_LOCAL = "main", "local"  # RT6_TABLE_PREFIX is main
LOOPBACK_DEV = "lo"
LINK_LOCAL_PREFIX = 0xFE80 << 112  # fe80::/64
IN6ADDR_INTERFACELOCAL_ALLNODES = 0xFF01 << 112 | 1  # ff01::1


def rt_scope(ifa_scope: int) -> int:
    """rt_scope() (net/ipv6/addrconf.c): ipv6_addr_scope()'s bits as an RT_SCOPE_*."""
    if ifa_scope & IPV6_ADDR_LOOPBACK:  # IFA_HOST
        return RT_SCOPE_HOST
    if ifa_scope & IPV6_ADDR_LINKLOCAL:  # IFA_LINK
        return RT_SCOPE_LINK
    if ifa_scope & IPV6_ADDR_SITELOCAL:  # IFA_SITE
        return RT_SCOPE_SITE
    return RT_SCOPE_UNIVERSE


def ipv6_addr_prefix(addr: int, plen: int) -> int:
    """ipv6_addr_prefix(): `addr` with all but its first `plen` bits cleared."""
    return addr >> (128 - plen) << (128 - plen) if plen else 0


@dataclass
class Inet6Ifaddr:
    """struct inet6_ifaddr: one address of a device."""
    addr: int
    prefix_len: int
    flags: int = IFA_F_PERMANENT
    valid_lft: int = INFINITY_LIFE_TIME
    prefered_lft: int = INFINITY_LIFE_TIME  # sic, the kernel's spelling
    tstamp: float = 0.0                     # when the lifetimes were set (the caller's clock)

    def lifetimes(self, now: float) -> tuple[int, int]:
        """inet6_fill_ifaddr()'s IFA_CACHEINFO: (valid, preferred) seconds left at `now`, whole
        seconds gone since tstamp taken off a finite preferred lifetime and then a finite valid
        one; a permanent address of infinite preferred lifetime is forever."""
        if self.flags & IFA_F_PERMANENT and self.prefered_lft == INFINITY_LIFE_TIME:
            return INFINITY_LIFE_TIME, INFINITY_LIFE_TIME
        valid, preferred = self.valid_lft, self.prefered_lft
        if preferred != INFINITY_LIFE_TIME:
            tval = max(0, math.floor(now - self.tstamp))
            preferred = max(0, preferred - tval)
            if valid != INFINITY_LIFE_TIME:
                valid = max(0, valid - tval)
        return valid, preferred

    @property
    def scope(self) -> int:
        """ifa->scope: ipv6_addr_scope() of the address (inet6_addr_add)."""
        return ipv6_addr_scope(self.addr)

    @property
    def scope_name(self) -> str:
        return SCOPE_NAMES[rt_scope(self.scope)]

    def __str__(self) -> str:
        return f"{ip6_to_str(self.addr)}/{self.prefix_len}"


@dataclass(frozen=True)
class Fib6Info:
    """struct fib6_info: one IPv6 route, with what `ip -6 route` shows of it."""
    dst: int
    dst_len: int
    dev: str
    gateway: int = 0            # 0: on-link (no fib_nh_gw6)
    metric: int = IP6_RT_PRIO_ADDRCONF
    protocol: str = "kernel"    # RTPROT_KERNEL for addrconf's; "static" for the topology's; "boot" ip's
    type: str = "unicast"       # RTN_UNICAST, RTN_LOCAL, RTN_ANYCAST, RTN_MULTICAST
    table: str = RT6_TABLE_MAIN
    pref: str = "medium"        # the router preference (RFC 4191); ICMPV6_ROUTER_PREF_MEDIUM but for RAs'
    mtu: int = 0                # RTAX_MTU, RTAX_HOPLIMIT: the metrics an RA sets on its default route (0: none)
    hoplimit: int = 0
    # RTF_EXPIRES: when the route runs out (fib6_set_expires, on L3's clock); None: never. Not part of
    # what the route is (fib6_add_rt2 finds a duplicate whatever its expiry).
    expires: float | None = field(default=None, compare=False)

    def walk_key(self) -> tuple[str, int]:
        """Where fib6_walk() meets the route: a post-order walk of the radix tree on the
        prefix's bits (left, 0, before right), the node after its children, so a prefix
        comes after every longer one inside it; then by metric, as fib6_add_rt2 keeps a
        node's routes. As bits then "2" (past both), compared as text."""
        bits = format(self.dst >> (128 - self.dst_len), f"0{self.dst_len}b") if self.dst_len else ""
        return bits + "2", self.metric

    def __str__(self) -> str:
        """As ip -6 route prints it (with `table local` when it is that table's)."""
        dst = "default" if not self.dst_len else (
            ip6_to_str(self.dst) if self.dst_len == 128 else f"{ip6_to_str(self.dst)}/{self.dst_len}")
        words = [dst] if self.type == "unicast" else [self.type, dst]
        if self.gateway:
            words += ["via", ip6_to_str(self.gateway)]
        words += ["dev", self.dev]
        if self.table != RT6_TABLE_MAIN:
            words += ["table", self.table]
        if self.protocol != "boot":  # RTPROT_BOOT, ip -6 route add's, is not shown
            words += ["proto", self.protocol]
        words += ["metric", str(self.metric)]
        if self.mtu:  # (an RA route's `expires Nsec` comes before these: the caller knows the time)
            words += ["mtu", str(self.mtu)]
        if self.hoplimit:
            words += ["hoplimit", str(self.hoplimit)]
        words += ["pref", self.pref]
        return " ".join(words)


class Addrconf:
    """One host's inet6_devs and IPv6 routes, made from its topology entry."""

    def __init__(self, interfaces=(), routes6=(), *, forwarding: bool = False, dad: bool = True,
                 mcast=None) -> None:
        """`interfaces` and `routes6` as the topology has them (pktpath.topology.Interface,
        Route); `forwarding` is net.ipv6.conf.all.forwarding. `dad`: addresses come up
        IFA_F_TENTATIVE until Duplicate Address Detection clears them, as Linux's do; False:
        usable at once, as after DAD. `mcast`: the devices' multicast lists and MLD (an
        Mcast6; a quiet one of its own if not given: its devices never come up, so nothing
        is reported)."""
        if mcast is None:
            from pktpath.services.l3.mcast6 import Mcast6  # (it imports ipv6.py, which imports this module)
            mcast = Mcast6()
        self.mcast = mcast
        mcast.lladdr = lambda dev: self.ipv6_get_lladdr(dev, IFA_F_TENTATIVE)  # mld_newpack's source
        self._lock = threading.RLock()
        self.forwarding = forwarding
        self.dad = dad
        self.idev: dict[str, list[Inet6Ifaddr]] = {}
        self._routes: list[Fib6Info] = []
        self._anycast: set[tuple[str, int]] = set()
        self.init_loopback()
        for iface in interfaces:
            if iface.mtu < IPV6_MIN_MTU:  # ipv6_add_dev: -EINVAL, no inet6_dev
                continue
            self.addrconf_add_dev(iface.name)
            for a in iface.addr6:  # as `ip addr add` before `ip link set up`
                self.inet6_addr_add(iface.name, int(a.ip), a.network.prefixlen)
            self.addrconf_addr_gen(iface.name, mac_from_str(iface.mac))  # NETDEV_UP: the link-local one
        for r in routes6:
            self.ip6_route_add(Fib6Info(int(r.dst.network_address), r.dst.prefixlen, r.dev,
                                        gateway=int(r.via) if r.via else 0, metric=r.metric, protocol="static"))

    # -- devices and addresses ------------------------------------------------------------
    def init_loopback(self) -> None:
        """init_loopback(): lo's ::1/128, scope host (add_addr: never tentative), its
        inet6_dev's groups first (ipv6_add_dev)."""
        if LOOPBACK_DEV not in self.idev:
            self.idev[LOOPBACK_DEV] = []
            self.ipv6_add_dev(LOOPBACK_DEV)
        self.ipv6_add_addr(LOOPBACK_DEV, Inet6Ifaddr(IN6ADDR_LOOPBACK, 128))

    def addrconf_add_dev(self, dev: str) -> None:
        """addrconf_add_dev(): the device's inet6_dev (ipv6_add_dev) and its multicast route, ff00::/8."""
        if dev not in self.idev:
            self.idev[dev] = []
            self.ipv6_add_dev(dev)
        if dev != LOOPBACK_DEV:  # addrconf_add_mroute
            self.ip6_route_add(Fib6Info(0xFF << 120, 8, dev, type="multicast", table=RT6_TABLE_LOCAL))

    def ipv6_add_dev(self, dev: str) -> None:
        """ipv6_add_dev()'s groups: its multicast list (ipv6_mc_init_dev), the interface-local and
        link-local all-nodes groups, and on a forwarding host the all-routers group (not lo's:
        no IFF_MULTICAST). ff02::2 only: forwarding is on before the device exists (a device
        there when it is switched on joins ff01::2 and ff05::2 too, dev_forward_change)."""
        self.mcast.ipv6_mc_init_dev(dev, loopback=dev == LOOPBACK_DEV)
        self.mcast.ipv6_dev_mc_inc(dev, IN6ADDR_INTERFACELOCAL_ALLNODES)
        self.mcast.ipv6_dev_mc_inc(dev, IN6ADDR_LINKLOCAL_ALLNODES)
        if self.forwarding and dev != LOOPBACK_DEV:
            self.mcast.ipv6_dev_mc_inc(dev, IN6ADDR_LINKLOCAL_ALLROUTERS)

    def addrconf_addr_gen(self, dev: str, mac: bytes) -> None:
        """addrconf_addr_gen() in IN6_ADDR_GEN_MODE_EUI64: addrconf_add_linklocal() of
        fe80::/64 and the MAC's modified EUI-64 interface id, and its prefix route. An address
        the device already has stays as it is (ipv6_add_addr's -EEXIST)."""
        addr = addrconf_addr_gen_eui64(mac)
        if not any(ifa.addr == addr for ifa in self.idev[dev]):
            self.ipv6_add_addr(dev, Inet6Ifaddr(addr, 64))
        self.addrconf_prefix_route(LINK_LOCAL_PREFIX, 64, dev)

    def inet6_addr_add(self, dev: str, addr: int, plen: int, flags: int = 0) -> Inet6Ifaddr:
        """inet6_addr_add() (ip -6 addr add ADDR/PLEN dev DEV [nodad]): a permanent address (its
        lifetimes infinite) with the IFA_F_* `flags` asked for, and its prefix route. ValueError
        with the kernel's extack words for one ipv6_add_addr refuses."""
        if not 0 <= plen <= 128:
            raise ValueError("ipv6: Invalid prefix length")
        if dev not in self.idev:
            self.addrconf_add_dev(dev)
        ifa = self.ipv6_add_addr(dev, Inet6Ifaddr(addr, plen, flags | IFA_F_PERMANENT))
        self.addrconf_prefix_route(ipv6_addr_prefix(addr, plen), plen, dev)
        return ifa

    def ipv6_add_addr(self, dev: str, ifa: Inet6Ifaddr) -> Inet6Ifaddr:
        """ipv6_add_addr(): the checks, the address in the device's list (ipv6_link_dev_addr),
        IFA_F_TENTATIVE unless IFA_F_NODAD (lo's never: addrconf_dad_begin clears it at once).
        An address that needs no DAD gets its local route here (ipv6_ifa_notify); a tentative
        one once DAD succeeds (addrconf_dad_completed)."""
        addr = ifa.addr
        if addr == 0:
            raise ValueError("ipv6: Invalid address")
        if ipv6_addr_is_multicast(addr):
            raise ValueError('ipv6: Cannot assign multicast address without "IFA_F_MCAUTOJOIN" flag')
        if addr == IN6ADDR_LOOPBACK and dev != LOOPBACK_DEV:
            raise ValueError("ipv6: Cannot assign loopback address on this device")
        with self._lock:
            addr_list = self.idev[dev]
            if any(a.addr == addr for a in addr_list):  # ipv6_add_addr_hash: -EEXIST
                raise FileExistsError("ipv6: address already assigned")
            scope = ipv6_addr_src_scope(addr)  # ipv6_link_dev_addr: before the first of no wider scope
            at = next((n for n, a in enumerate(addr_list) if scope >= ipv6_addr_src_scope(a.addr)), len(addr_list))
            if self.dad and dev != LOOPBACK_DEV and not ifa.flags & IFA_F_NODAD:
                ifa.flags |= IFA_F_TENTATIVE
            addr_list.insert(at, ifa)
        if dev != LOOPBACK_DEV:  # addrconf_join_solict (addrconf_dad_begin): not IFF_LOOPBACK
            self.mcast.ipv6_dev_mc_inc(dev, addrconf_addr_solict_mult(addr))
        if not ifa.flags & IFA_F_TENTATIVE:
            self.ipv6_ifa_notify(dev, ifa)
        return ifa

    def ipv6_ifa_notify(self, dev: str, ifa: Inet6Ifaddr) -> None:
        """__ipv6_ifa_notify(RTM_NEWADDR): the address's local route (addrconf_f6i_alloc's, in
        the local table) and, on a forwarding host, its prefix's anycast address."""
        local = Fib6Info(ifa.addr, 128, dev, metric=0, type="local", table=RT6_TABLE_LOCAL)
        with self._lock:
            if local in self._routes:
                return
        self.ip6_route_add(local)
        if self.forwarding:
            self.addrconf_join_anycast(dev, ifa)

    def addrconf_dad_completed(self, dev: str, ifa: Inet6Ifaddr) -> None:
        """DAD succeeded (addrconf_dad_work) or was not needed (addrconf_dad_begin): the flags
        cleared, then addrconf_dad_completed()'s ipv6_ifa_notify(RTM_NEWADDR) and, for the
        device's only link-local address, MLD's reports from it (send_mld: ipv6_mc_dad_complete)."""
        with self._lock:
            ifa.flags &= ~(IFA_F_TENTATIVE | IFA_F_OPTIMISTIC | IFA_F_DADFAILED)
        self.ipv6_ifa_notify(dev, ifa)
        if ifa.scope == IPV6_ADDR_LINKLOCAL and self.ipv6_lonely_lladdr(dev, ifa):
            self.mcast.ipv6_mc_dad_complete(dev)

    def ipv6_lonely_lladdr(self, dev: str, ifa: Inet6Ifaddr) -> bool:
        """ipv6_lonely_lladdr(): no other link-local address of dev is permanent and usable."""
        with self._lock:
            return not any(a is not ifa and a.scope == IPV6_ADDR_LINKLOCAL and a.flags & (
                IFA_F_PERMANENT | IFA_F_TENTATIVE | IFA_F_OPTIMISTIC | IFA_F_DADFAILED) == IFA_F_PERMANENT
                for a in self.idev.get(dev, ()))

    def addrconf_dad_stop(self, dev: str, ifa: Inet6Ifaddr, dad_failed: bool) -> None:
        """addrconf_dad_stop(): a permanent address stays, IFA_F_TENTATIVE (and IFA_F_DADFAILED
        when DAD failed), never used; any other (SLAAC's) that failed is deleted."""
        with self._lock:
            if dad_failed:
                ifa.flags |= IFA_F_DADFAILED
            if ifa.flags & IFA_F_PERMANENT or not dad_failed:
                ifa.flags |= IFA_F_TENTATIVE
                if dad_failed:
                    ifa.flags &= ~IFA_F_OPTIMISTIC
                return
        self.ipv6_del_addr(dev, ifa)

    def ipv6_del_addr(self, dev: str, ifa: Inet6Ifaddr) -> None:
        """ipv6_del_addr(): the address out of the device's list, its local route, and its
        solicited-node group left (RTM_DELADDR's addrconf_leave_solict)."""
        with self._lock:
            addrs = self.idev.get(dev, [])
            if not any(a is ifa for a in addrs):
                return
            addrs[:] = [a for a in addrs if a is not ifa]
            self._routes = [r for r in self._routes
                            if not (r.table == RT6_TABLE_LOCAL and r.type == "local" and r.dst == ifa.addr
                                    and r.dst_len == 128 and r.dev == dev)]
        if dev != LOOPBACK_DEV:
            self.mcast.ipv6_dev_mc_dec(dev, addrconf_addr_solict_mult(ifa.addr))

    def ipv6_get_ifaddr(self, addr: int, dev: str) -> Inet6Ifaddr | None:
        """ipv6_get_ifaddr(net, addr, dev, strict=1): dev's address `addr` whatever its flags
        (tentative, DAD failed), or None."""
        with self._lock:
            return next((a for a in self.idev.get(dev, ()) if a.addr == addr), None)

    def ipv6_chk_addr_and_flags(self, addr: int, dev: str, banned_flags: int) -> bool:
        """ipv6_chk_addr_and_flags(net, addr, dev, false, strict=1, banned_flags): is `addr` one
        of dev's addresses without any of banned_flags?"""
        ifa = self.ipv6_get_ifaddr(addr, dev)
        return ifa is not None and not ifa.flags & banned_flags

    def ipv6_get_lladdr(self, dev: str, banned_flags: int) -> int:
        """ipv6_get_lladdr(): dev's link-local address without any of banned_flags, the one
        added first (the list is walked from its end), or 0 (-EADDRNOTAVAIL)."""
        with self._lock:
            for a in reversed(self.idev.get(dev, ())):
                if a.scope > IPV6_ADDR_LINKLOCAL:  # ifp->scope > IFA_LINK: site-local, past them
                    break
                if a.scope == IPV6_ADDR_LINKLOCAL and not a.flags & banned_flags:
                    return a.addr
        return 0

    def ipv6_chk_acast_addr(self, dev: str, addr: int) -> bool:
        """ipv6_chk_acast_addr(): has dev joined anycast address `addr` (a forwarding host's
        subnet-router anycast addresses, addrconf_join_anycast)?"""
        with self._lock:
            return (dev, addr) in self._anycast

    def addrconf_join_anycast(self, dev: str, ifa: Inet6Ifaddr) -> None:
        """addrconf_join_anycast(): a router's subnet-router anycast address (RFC 4291 2.6.1),
        one per prefix and device (__ipv6_dev_ac_inc counts the rest)."""
        prefix = ipv6_addr_prefix(ifa.addr, ifa.prefix_len)
        if ifa.prefix_len >= 127 or prefix == 0 or (dev, prefix) in self._anycast:  # RFC 6164
            return
        self._anycast.add((dev, prefix))
        self.ip6_route_add(Fib6Info(prefix, 128, dev, metric=0, type="anycast", table=RT6_TABLE_LOCAL))

    def addr_list(self, dev: str) -> list[Inet6Ifaddr]:
        """The device's addresses in the kernel's order (what ip -6 addr show dev DEV lists)."""
        with self._lock:
            return list(self.idev.get(dev, ()))

    def ipv6_chk_addr(self, addr: int, dev: str | None = None) -> bool:
        """ipv6_chk_addr(): is `addr` one of this host's (of `dev`'s, if given), and not tentative?"""
        with self._lock:
            return any(a.addr == addr and not a.flags & IFA_F_TENTATIVE
                       for d, addrs in self.idev.items() if dev is None or d == dev for a in addrs)

    # -- routes ---------------------------------------------------------------------------
    def addrconf_prefix_route(self, prefix: int, plen: int, dev: str, expires: float | None = None) -> bool:
        """addrconf_prefix_route(): the connected route of an address's prefix (or an RA's,
        expiring at `expires`), once per device (another address in it meets fib6_add_rt2's
        duplicate and adds nothing). Returns whether it added one."""
        route = Fib6Info(prefix, plen, dev, metric=IP6_RT_PRIO_ADDRCONF, expires=expires)
        with self._lock:
            if route in self._routes:
                return False
        self.ip6_route_add(route)
        return True

    def addrconf_get_prefix_route(self, prefix: int, plen: int, dev: str) -> Fib6Info | None:
        """addrconf_get_prefix_route(): dev's connected route to prefix/plen in the main table."""
        with self._lock:
            return next((r for r in self._routes if r.table == RT6_TABLE_MAIN and r.dst == prefix
                         and r.dst_len == plen and r.dev == dev and not r.gateway and r.type == "unicast"), None)

    def rt6_get_dflt_router(self, gateway: int, dev: str) -> Fib6Info | None:
        """rt6_get_dflt_router(): the default route an RA from `gateway` on dev added."""
        with self._lock:
            return next((r for r in self._routes if r.table == RT6_TABLE_MAIN and r.dst_len == 0
                         and r.protocol == "ra" and r.gateway == gateway and r.dev == dev), None)

    def rt6_add_dflt_router(self, gateway: int, dev: str, pref: str, metric: int,
                            expires: float | None = None) -> Fib6Info:
        """rt6_add_dflt_router(): `default via GATEWAY dev DEV proto ra metric METRIC pref PREF`
        (RTF_ADDRCONF | RTF_DEFAULT: one per router, beside any other default route), expiring
        at `expires` (RTF_EXPIRES)."""
        route = Fib6Info(0, 0, dev, gateway=gateway, metric=metric, protocol="ra", pref=pref, expires=expires)
        with self._lock:
            self._routes.append(route)
            self._routes.sort(key=Fib6Info.walk_key)
        return route

    def ip6_del_rt(self, route: Fib6Info) -> None:
        """ip6_del_rt(): the route out of its table."""
        with self._lock:
            self._routes = [r for r in self._routes if r is not route]

    def fib6_set_expires(self, route: Fib6Info, expires: float | None) -> Fib6Info:
        """fib6_set_expires() (RTF_EXPIRES at `expires`) or, with None, fib6_clean_expires()."""
        return self.fib6_metric_set(route, expires=expires)

    def fib6_metric_set(self, route: Fib6Info, **changes) -> Fib6Info:
        """fib6_metric_set() (mtu=, hoplimit=) or a new preference (pref=) on a route in the
        table: the route as it is now."""
        new = replace(route, **changes)
        with self._lock:
            self._routes = [new if r is route else r for r in self._routes]
        return new

    def ip6_route_add(self, route: Fib6Info) -> None:
        """ip6_route_add() / fib6_add(): FileExistsError for a second route to a prefix at
        one metric in one table (fib6_add_rt2 under NLM_F_EXCL, as ip -6 route add asks)."""
        if route.dst != ipv6_addr_prefix(route.dst, route.dst_len):
            raise ValueError(f"{ip6_to_str(route.dst)}/{route.dst_len}: host bits set")
        with self._lock:
            if any(r.table == route.table and r.dst == route.dst and r.dst_len == route.dst_len
                   and r.metric == route.metric and (r.dev == route.dev or route.protocol != "kernel")
                   for r in self._routes):
                raise FileExistsError(f"route {route} exists")  # RTNETLINK answers: File exists
            self._routes.append(route)
            self._routes.sort(key=Fib6Info.walk_key)  # stable: a node's equal metrics in the order added

    def routes(self, table: str = RT6_TABLE_MAIN) -> list[Fib6Info]:
        """A table's routes in fib6_walk()'s order (ip -6 route [show table local])."""
        with self._lock:
            return [r for r in self._routes if r.table == table]
