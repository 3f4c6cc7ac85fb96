"""A token bucket: `rate` tokens a second, at most `burst` held; take() spends one.

The kernel's icmp_global_allow() keeps one (net/ipv4/icmp.c) and pktpath's trace
sampler another (the first packets of every second). Not thread-safe by itself:
a caller that shares it between threads holds its own lock.
"""

from typing import Callable


class TokenBucket:
    def __init__(self, rate: float, burst: float, clock: Callable[[], float]) -> None:
        self.rate, self.burst, self._clock = rate, burst, clock
        self._tokens, self._stamp = float(burst), clock()

    def take(self) -> bool:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False

    def set(self, rate: float, burst: float) -> None:
        """A new rate and burst; what is held now stays, up to the new burst."""
        self.rate, self.burst = rate, burst
        self._tokens = min(self._tokens, burst)
