"""The port tables of UDP and ping sockets: bind, connect, lookup.

Models udp_lib_get_port / inet_autobind (net/ipv4/udp.c, af_inet.c) and the
lookup with compute_score (__udp4_lib_lookup): among the sockets on the
destination port, one bound to the exact local address scores above a
wildcard one, and a connected socket matching the remote address and port
above both; a socket whose bound or connected address differs does not
match. Ping sockets (net/ipv4/ping.c) are keyed the same way by their ICMP
echo identifier, which is their "port".

One table holds both families, as Linux's: an AF_INET6 entry keeps 128-bit
addresses (an IPv4 one as ::ffff:a.b.c.d). An IPv4 packet may reach an AF_INET6
socket bound to :: or to a v4-mapped address unless it is IPV6_V6ONLY, an AF_INET
socket scoring above it on equal terms (compute_score: 2 for PF_INET, 1 for
PF_INET6); an IPv6 packet reaches AF_INET6 sockets only, and none bound to a
v4-mapped address. Bind conflicts are inet_rcv_saddr_equal's as Linux 6.18 reports
them (EADDRINUSE), seen in a namespace: each socket has an IPv4 side (an AF_INET
socket's address, a v4-mapped one's, or :: when not IPV6_V6ONLY: the wildcard) and an
IPv6 side (an AF_INET6 socket's address unless v4-mapped), and two sockets collide on
a side both have, with the same address or either the wildcard. So [2001:db8::1]:p and
0.0.0.0:p live side by side, [::]:p and 0.0.0.0:p do not, and a V6ONLY [::]:p leaves
IPv4's p free. Ping sockets (the ping table, `strict_family`) see only their own family's
echo replies (ping_lookup), and an AF_INET6 one shares its identifier with any other
(inet6_create gives ping sockets sk_reuse: INET_PROTOSW_REUSE).

Pure logic: no gRPC.
"""

import errno
import random
import threading
from dataclasses import dataclass

from pktpath.sockerr import SockError
from pktpath.wire.addr import ipv6_addr_v4mapped

AF_INET, AF_INET6 = 2, 10
IP_LOCAL_PORT_RANGE = (32768, 60999)  # net.ipv4.ip_local_port_range
PING_IDENT_RANGE = (1, 65535)


_V4_MASK = 0xFFFFFFFF


@dataclass
class SockEntry:
    sk: int
    protocol: int
    saddr: int = 0   # inet_rcv_saddr: 0 is INADDR_ANY (an AF_INET6 socket's sk_v6_rcv_saddr: ::)
    sport: int = 0
    daddr: int = 0   # set by connect()
    dport: int = 0
    family: int = AF_INET
    ipv6only: bool = False  # IPV6_V6ONLY
    dev: str = ""           # the device a link-local address is on (sk_bound_dev_if)

    def v4_side(self) -> int | None:
        """The IPv4 address this socket takes packets for (0: any), None if it takes no IPv4."""
        if self.family == AF_INET:
            return self.saddr
        if ipv6_addr_v4mapped(self.saddr):
            return self.saddr & _V4_MASK
        return None if self.saddr or self.ipv6only else 0

    def v6_side(self) -> int | None:
        """The IPv6 address this socket takes packets for (0: any), None if it takes no IPv6."""
        if self.family == AF_INET or ipv6_addr_v4mapped(self.saddr):
            return None
        return self.saddr

    def v4_peer(self) -> int | None:
        """The IPv4 peer a connected socket takes packets from: 0 if not connected, None if it
        is connected to an IPv6 peer."""
        if self.family == AF_INET or not self.daddr:
            return self.daddr
        return self.daddr & _V4_MASK if ipv6_addr_v4mapped(self.daddr) else None


def _sides_collide(a: int | None, b: int | None) -> bool:
    return a is not None and b is not None and (not a or not b or a == b)


class PortTable:
    def __init__(self, protocol: int, local_addrs, *, port_range=IP_LOCAL_PORT_RANGE, strict_family: bool = False,
                 chk_addr6=None) -> None:
        """local_addrs: the host's IPv4 addresses; chk_addr6(addr, dev) -> bool says whether an
        IPv6 address is one of the host's (L3's ipv6_chk_addr), None to take any."""
        self.protocol = protocol
        self.local_addrs = set(local_addrs)
        self.port_range = port_range
        self.strict_family = strict_family
        self.chk_addr6 = chk_addr6
        self._lock = threading.Lock()
        self._by_port: dict[int, list[SockEntry]] = {}
        self._by_sk: dict[int, SockEntry] = {}

    def get(self, sk: int) -> SockEntry | None:
        return self._by_sk.get(sk)

    def entries(self) -> list[SockEntry]:
        with self._lock:
            return list(self._by_sk.values())

    def _conflicts(self, saddr: int, sport: int, sk: int) -> bool:
        """Two sockets may share a port only on different specific addresses (no SO_REUSEADDR)."""
        return self._conflicts_family(saddr, sport, sk, AF_INET, False)

    def _collides(self, saddr: int, sport: int, sk: int, family: int, ipv6only: bool) -> bool:
        return self._conflicts(saddr, sport, sk) if family == AF_INET else \
            self._conflicts_family(saddr, sport, sk, family, ipv6only)

    def _conflicts_family(self, saddr: int, sport: int, sk: int, family: int, ipv6only: bool) -> bool:
        """_conflicts for a socket of either family (see the module's docstring); ping sockets
        of AF_INET6 never collide."""
        new = SockEntry(sk, self.protocol, saddr, sport, family=family, ipv6only=ipv6only)
        for e in self._by_port.get(sport, ()):
            if e.sk == sk:
                continue
            if self.strict_family and AF_INET6 in (e.family, family):
                continue  # sk_reuse on both (INET_PROTOSW_REUSE): ping_get_port lets them share
            if family == AF_INET and e.family == AF_INET:
                if not e.saddr or not saddr or e.saddr == saddr:
                    return True
            elif _sides_collide(new.v4_side(), e.v4_side()) or _sides_collide(new.v6_side(), e.v6_side()):
                return True
        return False

    def _check_local(self, saddr: int, family: int, dev: str) -> None:
        """inet_bind's and inet6_bind's EADDRNOTAVAIL: an address not the host's."""
        v4 = saddr if family == AF_INET else saddr & _V4_MASK if ipv6_addr_v4mapped(saddr) else None
        if v4 is not None:
            if v4 and v4 not in self.local_addrs and v4 != 0xFFFFFFFF:
                raise SockError(errno.EADDRNOTAVAIL, f"{v4:#x} is not an address of this host")
        elif saddr and self.chk_addr6 is not None and not self.chk_addr6(saddr, dev):
            raise SockError(errno.EADDRNOTAVAIL, f"{saddr:#x} is not an address of this host (or is tentative)")

    def hash(self, sk: int, saddr: int, sport: int, daddr: int = 0, dport: int = 0, *, family: int = AF_INET,
             ipv6only: bool = False, dev: str = "", check_local: bool = True) -> SockEntry:
        """bind() (sport 0: an ephemeral port, as inet_autobind), or connect() of a bound
        socket (same sk: the address and port stay, the peer is set). An AF_INET6 socket's
        addresses are 128-bit (check_local False: the caller checked saddr, a route's source)."""
        if check_local:
            self._check_local(saddr, family, dev)
        with self._lock:
            current = self._by_sk.get(sk)
            if current is not None and (sport in (0, current.sport)):
                # connect() on a bound socket: keep its port; a wildcard bind takes the route's source
                current.daddr, current.dport = daddr, dport
                if saddr and not current.saddr:
                    current.saddr = saddr
                return current
            if current is not None:
                raise SockError(errno.EINVAL, "the socket is already bound")
            if sport == 0:
                sport = self._pick_port(saddr, sk, family, ipv6only)
            elif self._collides(saddr, sport, sk, family, ipv6only):
                raise SockError(errno.EADDRINUSE, f"port {sport}")
            entry = SockEntry(sk, self.protocol, saddr, sport, daddr, dport, family, ipv6only, dev)
            self._by_port.setdefault(sport, []).append(entry)
            self._by_sk[sk] = entry
            return entry

    def _pick_port(self, saddr: int, sk: int, family: int = AF_INET, ipv6only: bool = False) -> int:
        low, high = self.port_range
        start = random.randint(low, high)
        for i in range(high - low + 1):
            port = low + (start - low + i) % (high - low + 1)
            if not self._collides(saddr, port, sk, family, ipv6only):
                return port
        raise SockError(errno.EAGAIN, "no free local port")  # what inet_autobind returns

    def unhash(self, sk: int) -> bool:
        with self._lock:
            entry = self._by_sk.pop(sk, None)
            if entry is None:
                return False
            bucket = self._by_port[entry.sport]
            bucket.remove(entry)
            if not bucket:
                del self._by_port[entry.sport]
            return True

    def clear(self) -> int:
        """Unhash every socket (their owner is gone); returns how many there were."""
        with self._lock:
            n = len(self._by_sk)
            self._by_sk.clear()
            self._by_port.clear()
            return n

    def _sides(self, e: SockEntry, family: int) -> tuple[int | None, int | None]:
        """(bound, peer) of e as a packet of `family` sees them; bound None: e takes none."""
        if family == AF_INET6:
            if e.family != AF_INET6:
                return None, None
            return e.v6_side(), e.daddr
        if self.strict_family and e.family != AF_INET:
            return None, None
        return e.v4_side(), e.v4_peer()

    def lookup(self, saddr: int, sport: int, daddr: int, dport: int, family: int = AF_INET) -> SockEntry | None:
        """__udp4_lib_lookup() (__udp6_lib_lookup() for family AF_INET6, 128-bit addresses):
        the socket a packet from saddr:sport to daddr:dport is for."""
        best, best_score = None, -1
        for e in self._by_port.get(dport, ()):
            bound, peer = self._sides(e, family)
            if bound is None or peer is None:
                continue
            score = 2 if e.family == AF_INET else 1
            if bound:
                if bound != daddr:
                    continue
                score += 4
            if peer:
                if peer != saddr:
                    continue
                score += 4
            if e.dport:
                if e.dport != sport:
                    continue
                score += 4
            if score > best_score:
                best, best_score = e, score
        return best

    def lookup_all(self, saddr: int, sport: int, daddr: int, dport: int, family: int = AF_INET) -> list[SockEntry]:
        """__udp4_lib_mcast_deliver() with __udp_is_mcast_sock() (__udp6_lib_mcast_deliver()
        with __udp_v6_is_mcast_sock() for AF_INET6): every socket on the port a broadcast or
        multicast from saddr:sport may reach (bound to it or the wildcard, and not connected
        to another peer). No socket joins groups here: a socket's IPV6_MULTICAST_ALL (on by
        default) lets it see every group the host has joined."""
        out = []
        for e in self._by_port.get(dport, ()):
            bound, peer = self._sides(e, family)
            if bound is None or peer is None:
                continue
            if (not bound or bound == daddr) and (not peer or peer == saddr) and (not e.dport or e.dport == sport):
                out.append(e)
        return out
