"""The neighbour table: IPv4 next hop -> MAC, with NUD states, timers and a queue.

Models net/core/neighbour.c (__neigh_event_send, neigh_update, neigh_timer_handler)
with ARP's parameters (net/ipv4/arp.c arp_tbl): an unknown next hop gets an
INCOMPLETE entry, a broadcast solicitation every retrans_time up to
mcast_solicit times, and up to unres_qlen queued skbs (the oldest dropped with
NEIGH_QUEUEFULL); a reply makes it REACHABLE and releases the queue; no reply
makes it FAILED and drops the queue with NEIGH_FAILED. REACHABLE decays to
STALE after reachable_time; a STALE entry still sends, moves to DELAY, then
PROBE with unicast solicitations, and back to REACHABLE on a reply.

Pure logic: the clock, solicitation, output and drop are callables.
"""

import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

from pktpath.pb import l2_pb2, skbuff_pb2

NUD_INCOMPLETE = l2_pb2.NUD_INCOMPLETE
NUD_REACHABLE = l2_pb2.NUD_REACHABLE
NUD_STALE = l2_pb2.NUD_STALE
NUD_DELAY = l2_pb2.NUD_DELAY
NUD_PROBE = l2_pb2.NUD_PROBE
NUD_FAILED = l2_pb2.NUD_FAILED
NUD_PERMANENT = l2_pb2.NUD_PERMANENT
NUD_VALID = {NUD_REACHABLE, NUD_STALE, NUD_DELAY, NUD_PROBE, NUD_PERMANENT}


@dataclass
class NeighParms:
    """/proc/sys/net/ipv4/neigh/default/* (seconds)."""

    retrans_time: float = 1.0
    mcast_solicit: int = 3
    ucast_solicit: int = 3
    base_reachable_time: float = 30.0
    delay_first_probe_time: float = 5.0
    unres_qlen: int = 101

    def reachable_time(self) -> float:
        """neigh_rand_reach_time(): uniform in [base/2, 3*base/2)."""
        return random.uniform(self.base_reachable_time / 2, 3 * self.base_reachable_time / 2)


@dataclass
class Neighbour:
    dev: str
    ip: int
    lladdr: bytes | None = None
    state: int = NUD_INCOMPLETE
    probes: int = 0
    deadline: float = 0.0
    confirmed: float = 0.0
    queue: deque = field(default_factory=deque)


class NeighTable:
    def __init__(self, parms: NeighParms, *, solicit: Callable[[str, int, bytes | None], None],
                 output: Callable[[object, bytes], None], drop: Callable[[object, int], None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.parms = parms
        self._solicit = solicit  # (dev, ip, unicast lladdr or None for broadcast)
        self._output = output    # (skb, lladdr): push the Ethernet header, hand to the device
        self._drop = drop        # (skb, reason)
        self._clock = clock
        self._lock = threading.RLock()
        self._entries: dict[tuple[str, int], Neighbour] = {}
        self.stats = {"lookups": 0, "hits": 0, "res_failed": 0, "unresolved_discards": 0,
                      "allocs": 0, "destroys": 0}

    def output(self, skb, dev: str, nexthop: int) -> None:
        """neigh_output()/neigh_resolve_output(): send now, or queue and resolve."""
        send = []
        with self._lock:
            self.stats["lookups"] += 1
            n = self._entries.get((dev, nexthop))
            now = self._clock()
            if n is None or n.state == NUD_FAILED:
                if n is None:
                    n = self._entries[dev, nexthop] = Neighbour(dev, nexthop)
                    self.stats["allocs"] += 1
                n.state, n.probes, n.deadline = NUD_INCOMPLETE, 1, now + self.parms.retrans_time
                send.append((dev, nexthop, None))
            if n.state in NUD_VALID:
                self.stats["hits"] += 1
                if n.state == NUD_STALE:
                    n.state, n.deadline = NUD_DELAY, now + self.parms.delay_first_probe_time
                lladdr = n.lladdr
            else:
                lladdr = None
                if len(n.queue) >= self.parms.unres_qlen:
                    self.stats["unresolved_discards"] += 1
                    self._drop(n.queue.popleft(), skbuff_pb2.SKB_DROP_REASON_NEIGH_QUEUEFULL)
                n.queue.append(skb)
        for args in send:
            self._solicit(*args)
        if lladdr is not None:
            self._output(skb, lladdr)

    def update(self, dev: str, ip: int, lladdr: bytes, *, solicited: bool, create: bool) -> bool:
        """neigh_update(): an ARP reply (solicited) confirms, a request we answer (not
        solicited) makes STALE. Only creates an entry when `create`. True if known."""
        with self._lock:
            n = self._entries.get((dev, ip))
            if n is None:
                if not create:
                    return False
                n = self._entries[dev, ip] = Neighbour(dev, ip, state=NUD_STALE)
                self.stats["allocs"] += 1
            if n.state == NUD_PERMANENT:
                return True
            now = self._clock()
            changed = n.lladdr != lladdr
            n.lladdr = lladdr
            if solicited:
                n.state, n.confirmed, n.deadline = NUD_REACHABLE, now, now + self.parms.reachable_time()
            elif n.state not in NUD_VALID or changed:
                n.state, n.deadline = NUD_STALE, 0.0
            n.probes = 0
            queued, n.queue = list(n.queue), deque()
            if queued and n.state == NUD_STALE:  # the queue leaves by neigh_resolve_output, as output() sends
                n.state, n.deadline = NUD_DELAY, now + self.parms.delay_first_probe_time
        for skb in queued:
            self._output(skb, lladdr)
        return True

    def tick(self) -> None:
        """neigh_timer_handler() for every entry whose timer is due."""
        send, dropped = [], []
        with self._lock:
            now = self._clock()
            for n in self._entries.values():
                if not n.deadline or n.deadline > now:
                    continue
                if n.state == NUD_REACHABLE:
                    n.state, n.deadline = NUD_STALE, 0.0
                elif n.state == NUD_DELAY:
                    if n.confirmed + self.parms.delay_first_probe_time > now:
                        n.state, n.deadline = NUD_REACHABLE, n.confirmed + self.parms.reachable_time()
                    else:
                        n.state, n.probes, n.deadline = NUD_PROBE, 1, now + self.parms.retrans_time
                        send.append((n.dev, n.ip, n.lladdr))
                elif n.state in (NUD_INCOMPLETE, NUD_PROBE):
                    limit = self.parms.mcast_solicit if n.state == NUD_INCOMPLETE else self.parms.ucast_solicit
                    if n.probes >= limit:
                        n.state, n.deadline = NUD_FAILED, 0.0
                        self.stats["res_failed"] += 1
                        dropped.extend(n.queue)
                        n.queue.clear()
                    else:
                        n.probes += 1
                        n.deadline = now + self.parms.retrans_time
                        send.append((n.dev, n.ip, n.lladdr if n.state == NUD_PROBE else None))
        for args in send:
            self._solicit(*args)
        for skb in dropped:
            self._drop(skb, skbuff_pb2.SKB_DROP_REASON_NEIGH_FAILED)

    def add(self, dev: str, ip: int, lladdr: bytes) -> None:
        """ip neigh add ... nud permanent."""
        with self._lock:
            self._entries[dev, ip] = Neighbour(dev, ip, lladdr, NUD_PERMANENT)

    def delete(self, dev: str, ip: int) -> bool:
        with self._lock:
            n = self._entries.pop((dev, ip), None)
            if n is not None:
                self.stats["destroys"] += 1
                queued = list(n.queue)
        if n is None:
            return False
        for skb in queued:
            self._drop(skb, skbuff_pb2.SKB_DROP_REASON_NEIGH_DEAD)
        return True

    def entries(self) -> list[Neighbour]:
        with self._lock:
            return [Neighbour(n.dev, n.ip, n.lladdr, n.state, n.probes, n.deadline, n.confirmed)
                    for n in self._entries.values()]
