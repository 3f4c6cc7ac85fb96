"""The IPv4 routing table (FIB): longest-prefix match over local, connected, static and default routes.

Models the parts of net/ipv4/fib_trie.c and route.c pktpath needs:
fib_table_lookup's longest-prefix match (ties broken by metric, then by the
order routes were added), the local table (our own addresses: RTN_LOCAL,
scope host), connected routes added with each address (proto kernel, scope
link) and static ones (proto static, with a gateway). The result names what
ip_route_input/ip_route_output would: deliver locally, send to a next hop out
of a device, or no route (ENETUNREACH / ICMP net unreachable).

A linear scan sorted by prefix length stands in for the LC-trie: routing
tables here have a handful of entries.
"""

import threading
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

RTN_UNICAST = "unicast"
RTN_LOCAL = "local"
RTN_BROADCAST = "broadcast"


@dataclass(frozen=True)
class FibRoute:
    dst: int          # network address
    prefixlen: int
    dev: str
    gateway: int = 0  # 0: directly connected
    metric: int = 0
    proto: str = "static"  # "kernel" for connected routes
    scope: str = "global"
    prefsrc: int = 0

    @property
    def mask(self) -> int:
        return (0xFFFFFFFF << (32 - self.prefixlen)) & 0xFFFFFFFF

    def matches(self, daddr: int) -> bool:
        return daddr & self.mask == self.dst

    def __str__(self) -> str:
        net = "default" if self.prefixlen == 0 else str(IPv4Network((self.dst, self.prefixlen)))
        via = f" via {IPv4Address(self.gateway)}" if self.gateway else ""
        src = f" src {IPv4Address(self.prefsrc)}" if self.prefsrc else ""
        metric = f" metric {self.metric}" if self.metric else ""
        return f"{net}{via} dev {self.dev} proto {self.proto} scope {self.scope}{src}{metric}"


@dataclass(frozen=True)
class FibResult:
    type: str         # RTN_LOCAL, RTN_BROADCAST or RTN_UNICAST
    dev: str
    nexthop: int      # the neighbour to resolve: the gateway, or the destination itself
    prefsrc: int      # the source address to use for locally generated packets
    route: FibRoute | None = None


class Fib:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._routes: list[FibRoute] = []
        self._local: dict[int, str] = {}      # our addresses -> their device
        self._local_results: dict[int, FibResult] = {}  # the local table's answers, made once
        self._broadcast: dict[int, str] = {}  # subnet broadcast addresses -> device

    def add_address(self, dev: str, addr: int, prefixlen: int) -> None:
        """What `ip addr add` does: the local route and the connected (proto kernel) route."""
        mask = (0xFFFFFFFF << (32 - prefixlen)) & 0xFFFFFFFF
        with self._lock:
            self._local[addr] = dev
            self._local_results[addr] = FibResult(RTN_LOCAL, dev, addr, addr)
            if prefixlen < 31:
                self._broadcast[(addr & mask) | (~mask & 0xFFFFFFFF)] = dev
        self.add(FibRoute(addr & mask, prefixlen, dev, proto="kernel", scope="link", prefsrc=addr))

    def add(self, route: FibRoute) -> None:
        if route.dst & ~route.mask & 0xFFFFFFFF:
            raise ValueError(f"{IPv4Address(route.dst)}/{route.prefixlen}: host bits set")
        with self._lock:
            if any(r.dst == route.dst and r.prefixlen == route.prefixlen and r.metric == route.metric
                   for r in self._routes):
                raise FileExistsError(f"route {route} exists")  # RTNETLINK answers: File exists
            self._routes.append(route)
            # longest prefix first, then lower metric; a stable sort keeps insertion order
            self._routes.sort(key=lambda r: (-r.prefixlen, r.metric))

    def delete(self, dst: int, prefixlen: int) -> FibRoute:
        with self._lock:
            for r in self._routes:
                if r.dst == dst and r.prefixlen == prefixlen:
                    self._routes.remove(r)
                    return r
        raise LookupError(f"no route to {IPv4Address(dst)}/{prefixlen}")

    def routes(self) -> list[FibRoute]:
        with self._lock:
            return list(self._routes)

    def is_local(self, addr: int) -> bool:
        return addr in self._local

    def lookup(self, daddr: int) -> FibResult | None:
        """fib_lookup(): where does a packet for daddr go? None: no route."""
        local = self._local_results.get(daddr)
        if local is not None:
            return local
        if daddr in self._broadcast or daddr == 0xFFFFFFFF:
            dev = self._broadcast.get(daddr, "")
            return FibResult(RTN_BROADCAST, dev, daddr, 0)
        with self._lock:
            for r in self._routes:
                if r.matches(daddr):
                    return FibResult(RTN_UNICAST, r.dev, r.gateway or daddr, r.prefsrc or self._src_for(r.dev), r)
        return None

    def _src_for(self, dev: str) -> int:
        """inet_select_addr(): the first address of the outgoing device."""
        for addr, d in self._local.items():
            if d == dev:
                return addr
        return 0
