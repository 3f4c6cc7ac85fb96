"""The port tables of UDP and ping sockets: bind, connect, lookup.

Models udp_lib_get_port / inet_autobind (net/ipv4/udp.c, af_inet.c) and the
lookup with compute_score (__udp4_lib_lookup): among the sockets on the
destination port, one bound to the exact local address scores above a
wildcard one, and a connected socket matching the remote address and port
above both; a socket whose bound or connected address differs does not
match. Ping sockets (net/ipv4/ping.c) are keyed the same way by their ICMP
echo identifier, which is their "port".

Pure logic: no gRPC.
"""

import errno
import random
import threading
from dataclasses import dataclass

from pktpath.sockerr import SockError

IP_LOCAL_PORT_RANGE = (32768, 60999)  # net.ipv4.ip_local_port_range
PING_IDENT_RANGE = (1, 65535)


@dataclass
class SockEntry:
    sk: int
    protocol: int
    saddr: int = 0   # inet_rcv_saddr: 0 is INADDR_ANY
    sport: int = 0
    daddr: int = 0   # set by connect()
    dport: int = 0


class PortTable:
    def __init__(self, protocol: int, local_addrs, *, port_range=IP_LOCAL_PORT_RANGE) -> None:
        self.protocol = protocol
        self.local_addrs = set(local_addrs)
        self.port_range = port_range
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
        return any(e.sk != sk and (not e.saddr or not saddr or e.saddr == saddr)
                   for e in self._by_port.get(sport, ()))

    def hash(self, sk: int, saddr: int, sport: int, daddr: int = 0, dport: int = 0) -> SockEntry:
        """bind() (sport 0: an ephemeral port, as inet_autobind), or connect() of a bound
        socket (same sk: the address and port stay, the peer is set)."""
        if saddr and saddr not in self.local_addrs and saddr != 0xFFFFFFFF:
            raise SockError(errno.EADDRNOTAVAIL, f"{saddr:#x} is not an address of this host")
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
                sport = self._pick_port(saddr, sk)
            elif self._conflicts(saddr, sport, sk):
                raise SockError(errno.EADDRINUSE, f"port {sport}")
            entry = SockEntry(sk, self.protocol, saddr, sport, daddr, dport)
            self._by_port.setdefault(sport, []).append(entry)
            self._by_sk[sk] = entry
            return entry

    def _pick_port(self, saddr: int, sk: int) -> int:
        low, high = self.port_range
        start = random.randint(low, high)
        for i in range(high - low + 1):
            port = low + (start - low + i) % (high - low + 1)
            if not self._conflicts(saddr, port, sk):
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

    def lookup(self, saddr: int, sport: int, daddr: int, dport: int) -> SockEntry | None:
        """__udp4_lib_lookup(): the socket a packet from saddr:sport to daddr:dport is for."""
        best, best_score = None, -1
        for e in self._by_port.get(dport, ()):
            score = 0
            if e.saddr:
                if e.saddr != daddr:
                    continue
                score += 4
            if e.daddr:
                if e.daddr != saddr:
                    continue
                score += 4
            if e.dport:
                if e.dport != sport:
                    continue
                score += 4
            if score > best_score:
                best, best_score = e, score
        return best

    def lookup_all(self, saddr: int, sport: int, daddr: int, dport: int) -> list[SockEntry]:
        """__udp4_lib_mcast_deliver() with __udp_is_mcast_sock(): every socket on the port
        a broadcast from saddr:sport may reach (bound to it or the wildcard, and not
        connected to another peer)."""
        return [e for e in self._by_port.get(dport, ())
                if (not e.saddr or e.saddr == daddr) and (not e.daddr or e.daddr == saddr)
                and (not e.dport or e.dport == sport)]
