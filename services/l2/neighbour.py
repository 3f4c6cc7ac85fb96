"""A neighbour table: next hop -> MAC, with NUD states, timers and a queue. A host has
two, as Linux has: ARP's for IPv4 (arp_tbl) and neighbour discovery's for IPv6 (nd_tbl).

Models net/core/neighbour.c (__neigh_event_send, __neigh_update, neigh_timer_handler)
with ARP's parameters (net/ipv4/arp.c arp_tbl; nd_tbl's in net/ipv6/ndisc.c are the
same): an unknown next hop gets an
INCOMPLETE entry, a broadcast solicitation every retrans_time up to
mcast_solicit times, and up to unres_qlen queued skbs (the oldest dropped with
NEIGH_QUEUEFULL); a reply makes it REACHABLE and releases the queue; no reply
makes it FAILED and drops the queue with NEIGH_FAILED. REACHABLE decays to
STALE after reachable_time; a STALE entry still sends, moves to DELAY, then
PROBE with unicast solicitations, and back to REACHABLE on a reply. An entry
answers to neigh_update's override rules (a different address replaces the
known one only with NEIGH_UPDATE_F_OVERRIDE; WEAK_OVERRIDE makes a connected
entry STALE instead) and keeps NTF_ROUTER for IPv6 neighbours.

Pure logic: the clock, solicitation, output and drop are callables.
"""

import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

from pktpath.pb import l2_pb2, skbuff_pb2

NUD_NONE = l2_pb2.NUD_NONE
NUD_INCOMPLETE = l2_pb2.NUD_INCOMPLETE
NUD_REACHABLE = l2_pb2.NUD_REACHABLE
NUD_STALE = l2_pb2.NUD_STALE
NUD_DELAY = l2_pb2.NUD_DELAY
NUD_PROBE = l2_pb2.NUD_PROBE
NUD_FAILED = l2_pb2.NUD_FAILED
NUD_PERMANENT = l2_pb2.NUD_PERMANENT
NUD_VALID = {NUD_REACHABLE, NUD_STALE, NUD_DELAY, NUD_PROBE, NUD_PERMANENT}
NUD_CONNECTED = {NUD_REACHABLE, NUD_PERMANENT}
NEIGH_UPDATE_F_OVERRIDE = l2_pb2.NEIGH_UPDATE_F_OVERRIDE
NEIGH_UPDATE_F_WEAK_OVERRIDE = l2_pb2.NEIGH_UPDATE_F_WEAK_OVERRIDE
NEIGH_UPDATE_F_OVERRIDE_ISROUTER = l2_pb2.NEIGH_UPDATE_F_OVERRIDE_ISROUTER
NEIGH_UPDATE_F_ISROUTER = l2_pb2.NEIGH_UPDATE_F_ISROUTER


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
    router: bool = False  # NTF_ROUTER
    queue: deque = field(default_factory=deque)


class NeighTable:
    def __init__(self, parms: NeighParms, *, solicit: Callable[[str, int, bytes | None, object], None],
                 output: Callable[[object, bytes], None], drop: Callable[[object, int], None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.parms = parms
        self._solicit = solicit  # (dev, ip, unicast lladdr or None for broadcast, the skb waiting or None)
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
                send.append((dev, nexthop, None, skb))
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
        """ARP's neigh_update() (arp_process): a reply to us (solicited) confirms, a request
        we answer (not solicited) makes STALE; the sender's address overrides. Only creates
        an entry when `create`. True if known."""
        return self.neigh_update(dev, ip, lladdr, NUD_REACHABLE if solicited else NUD_STALE,
                                 NEIGH_UPDATE_F_OVERRIDE, create=create)

    def neigh_update(self, dev: str, ip: int, lladdr: bytes | None, new: int, flags: int, *,
                     create: bool) -> bool:
        """__neigh_update() to state `new` (NUD_REACHABLE or NUD_STALE) with NEIGH_UPDATE_F_*
        `flags`: a PERMANENT entry is left alone; no lladdr keeps the known one (none known:
        nothing to do); a different lladdr on a valid entry replaces it only with OVERRIDE,
        with WEAK_OVERRIDE makes a connected entry STALE, else nothing changes; the same
        lladdr does not take an entry back to STALE. An entry becoming valid sends its queue.
        Only creates an entry when `create` (__neigh_lookup's creat). True if known."""
        with self._lock:
            n = self._entries.get((dev, ip))
            if n is None:
                if not create:
                    return False
                n = self._entries[dev, ip] = Neighbour(dev, ip, state=NUD_NONE)
                self.stats["allocs"] += 1
            old = n.state
            if old == NUD_PERMANENT:
                return True
            valid = old in NUD_VALID
            if lladdr is None:
                if not valid:
                    return True  # -EINVAL: nothing to resolve with
                lladdr = n.lladdr
            update_isrouter = bool(flags & NEIGH_UPDATE_F_OVERRIDE_ISROUTER)
            if valid and lladdr != n.lladdr:
                if not flags & NEIGH_UPDATE_F_OVERRIDE:
                    if not (flags & NEIGH_UPDATE_F_WEAK_OVERRIDE and old in NUD_CONNECTED):
                        return True
                    lladdr, new, update_isrouter = n.lladdr, NUD_STALE, False
            elif valid and lladdr == n.lladdr and new == NUD_STALE:
                new = old
            now = self._clock()
            if new in NUD_CONNECTED:
                n.confirmed = now
            if new != old or new == NUD_REACHABLE:  # a confirmation restarts reachable_time
                n.deadline = now + self.parms.reachable_time() if new == NUD_REACHABLE else 0.0
                n.state = new
            n.lladdr = lladdr
            if update_isrouter:
                n.router = bool(flags & NEIGH_UPDATE_F_ISROUTER)
            if new == old or new not in NUD_VALID:
                return True
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
                        send.append((n.dev, n.ip, n.lladdr, None))
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
                        send.append((n.dev, n.ip, n.lladdr if n.state == NUD_PROBE else None,
                                     n.queue[0] if n.queue else None))
        for args in send:
            self._solicit(*args)
        for skb in dropped:
            self._drop(skb, skbuff_pb2.SKB_DROP_REASON_NEIGH_FAILED)

    def state_of(self, dev: str, ip: int) -> int | None:
        """neigh_lookup()'s entry's nud_state, None if there is none."""
        with self._lock:
            n = self._entries.get((dev, ip))
            return None if n is None else n.state

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
            return [Neighbour(n.dev, n.ip, n.lladdr, n.state, n.probes, n.deadline, n.confirmed, n.router)
                    for n in self._entries.values()]
