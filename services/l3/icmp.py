"""ICMP message construction and icmp_send()'s rate limits (net/ipv4/icmp.c).

icmp_send() answers only where RFC 1122/1812 allow (never about an ICMP
error, a non-first fragment, or a broadcast/multicast/zero-sourced packet)
and is rate-limited as Linux does: a global token bucket (icmp_msgs_per_sec
1000, burst 50; icmp_global_allow) and one per destination host
(icmp_ratelimit 1000 ms with a burst of 6; inet_peer_xrlim_allow), both for
the types in icmp_ratemask (destination unreachable except
fragmentation-needed, source quench, time exceeded, parameter problem).
"""

import errno
import threading
import time

from pktpath.ratelimit import TokenBucket
from pktpath.wire.icmp import (
    ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, ICMP_PARAMETERPROB, ICMP_SOURCE_QUENCH, ICMP_TIME_EXCEEDED, NR_ICMP_TYPES,
)

ICMP_RATEMASK = (1 << ICMP_DEST_UNREACH) | (1 << ICMP_SOURCE_QUENCH) | (1 << ICMP_TIME_EXCEEDED) | (
    1 << ICMP_PARAMETERPROB)
ICMP_MSGS_PER_SEC = 1000
ICMP_MSGS_BURST = 50
ICMP_RATELIMIT_S = 1.0
XRLIM_BURST_FACTOR = 6

# The In*/Out* names of /proc/net/snmp's Icmp line, by type.
TYPE_NAMES = {
    0: "EchoReps", 3: "DestUnreachs", 4: "SrcQuenchs", 5: "Redirects", 8: "Echos", 11: "TimeExcds",
    12: "ParmProbs", 13: "Timestamps", 14: "TimestampReps", 17: "AddrMasks", 18: "AddrMaskReps",
}

# icmp_err_convert[] (net/ipv4/icmp.c): destination-unreachable code → (errno, fatal).
ICMP_ERR_CONVERT = (
    (errno.ENETUNREACH, False), (errno.EHOSTUNREACH, False), (errno.ENOPROTOOPT, True),
    (errno.ECONNREFUSED, True), (errno.EMSGSIZE, False), (errno.EOPNOTSUPP, False), (errno.ENETUNREACH, True),
    (errno.EHOSTDOWN, True), (errno.ENONET, True), (errno.ENETUNREACH, True), (errno.EHOSTUNREACH, True),
    (errno.ENETUNREACH, False), (errno.EHOSTUNREACH, False), (errno.EHOSTUNREACH, True),
    (errno.EHOSTUNREACH, True), (errno.EHOSTUNREACH, True),
)


def icmp_err_convert(type_: int, code: int) -> tuple[int, bool]:
    """The errno an ICMP error means to a socket and whether it is a hard error, as
    __udp4_lib_err and ping_err decide. Fragmentation-needed is hard (EMSGSIZE)
    unless the socket turned path-MTU discovery off, which the socket decides."""
    if type_ == ICMP_DEST_UNREACH:
        if code == ICMP_FRAG_NEEDED:
            return errno.EMSGSIZE, True
        return ICMP_ERR_CONVERT[code] if code < len(ICMP_ERR_CONVERT) else (errno.EHOSTUNREACH, False)
    if type_ == ICMP_PARAMETERPROB:
        return errno.EPROTO, True
    return errno.EHOSTUNREACH, False  # time exceeded, source quench: soft errors


class IcmpRateLimit:
    def __init__(self, *, msgs_per_sec: int = ICMP_MSGS_PER_SEC, burst: int = ICMP_MSGS_BURST,
                 ratelimit_s: float = ICMP_RATELIMIT_S, clock=time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._global = TokenBucket(msgs_per_sec, burst, clock)
        self._ratelimit = ratelimit_s
        self._peers: dict[int, tuple[float, float]] = {}  # daddr -> (tokens, last)

    @staticmethod
    def limited(type_: int, code: int) -> bool:
        if type_ > NR_ICMP_TYPES or (type_ == ICMP_DEST_UNREACH and code == ICMP_FRAG_NEEDED):
            return False
        return bool((1 << type_) & ICMP_RATEMASK)

    def global_allow(self) -> bool:
        """icmp_global_allow()."""
        with self._lock:
            return self._global.take()

    def peer_allow(self, daddr, timeout: float | None = None) -> bool:
        """inet_peer_xrlim_allow(): a burst of 6, then one per icmp_ratelimit. timeout: the
        peer's own interval instead (ICMPv6's net.ipv6.icmp.ratelimit); daddr: any key (IPv6
        callers key theirs apart from IPv4's, as the kernel keeps a peer table per family)."""
        with self._lock:
            now = self._clock()
            rate = self._ratelimit if timeout is None else timeout
            cap = XRLIM_BURST_FACTOR * rate
            tokens, last = self._peers.get(daddr, (cap, now))
            tokens = min(cap, tokens + now - last)
            allow = tokens >= rate - 1e-9  # the kernel counts whole jiffies: no float residue may refuse one
            if allow:
                tokens -= rate
            self._peers[daddr] = (tokens, now)
            return allow

