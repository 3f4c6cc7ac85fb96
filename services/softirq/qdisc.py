"""The root qdiscs a device's TX queue can have (net/sched/): pfifo_fast, what Linux gives a
device by default (net.core.default_qdisc), and fq, the fair queue that paces each socket.

fq (sch_fq.c) keeps a queue per socket (a flow), serves the flows round robin, a quantum
of bytes each turn (new flows first), and holds a flow back until the departure time on
its next skb (skb->tstamp: TCP stamps it at its pacing rate once it knows fq is there,
tcp_update_skb_after_send). A flow held back is throttled: the qdisc's watchdog runs the
queue again when the earliest one is due. Seeing a socket's skbs, fq marks the socket as
paced by it (sk_pacing_status = SK_PACING_FQ, fq_classify), which is what makes TCP stamp them.

Pure logic: time is the caller's (ns of CLOCK_MONOTONIC, TCP's clock too).
"""

import heapq
from collections import deque
from dataclasses import dataclass, field
from itertools import count

from pktpath.pb import skbuff_pb2

pb = skbuff_pb2
NSEC_PER_SEC = 1_000_000_000
TX_QUEUE_LEN = 1000


class PfifoFast:
    """pfifo_fast: first in, first out, up to the device's txqueuelen (QDISC_DROP past it).
    Its three bands do not show: every pktpath skb has priority 0 (band 1)."""

    kind = "pfifo_fast"
    paces = False

    def __init__(self, limit: int = TX_QUEUE_LEN) -> None:
        self.limit = limit
        self._q: deque = deque()

    def __len__(self) -> int:
        return len(self._q)

    def enqueue(self, skb, now_ns: int) -> int:
        """pfifo_fast_enqueue(): 0, or the reason it was dropped."""
        if len(self._q) >= self.limit:
            return pb.SKB_DROP_REASON_QDISC_DROP
        self._q.append(skb)
        return 0

    def dequeue(self, now_ns: int):
        return self._q.popleft() if self._q else None

    def next_event_ns(self) -> int | None:
        """When a held-back packet is due (the watchdog's time); None: nothing is held back."""
        return None

    def reset(self) -> list:
        """qdisc_reset(): what it held, for the caller to free."""
        out = list(self._q)
        self._q.clear()
        return out

    @staticmethod
    def describe(where: str = "") -> str:
        """As `tc qdisc show` prints it; where: "dev X " when it lists every device."""
        return f"qdisc pfifo_fast 0: {where}root refcnt 2 bands 3 priomap 1 2 2 2 1 2 0 0 1 1 1 1 1 1 1 1"


@dataclass(eq=False)
class _Flow:
    """struct fq_flow: one socket's queue (or the orphans')."""

    q: deque = field(default_factory=deque)  # (skb, time_to_send ns)
    credit: int = 0
    time_next_packet: int = 0
    age: int = 0                 # when it went detached (jiffies in Linux)
    where: str = "detached"      # detached, new, old, throttled


class Fq:
    """sch_fq with its defaults (tc qdisc add dev DEV root fq): limit 10000 packets,
    flow_limit 100, quantum 2 MTUs of the device (3028 on Ethernet), initial_quantum 10
    (15140), flow_refill_delay 40 ms, horizon 10 s with horizon_drop. TCP's skbs carry their
    departure times (EDT), so no flow_max_rate is needed: fq keeps to the times."""

    kind = "fq"
    paces = True
    FQ_GC_AGE = 3 * NSEC_PER_SEC
    FQ_GC_MAX = 1024  # flows kept before detached ones get collected (fq_gc)

    def __init__(self, mtu: int = 1514, *, limit: int = 10000, flow_limit: int = 100,
                 refill_delay_ns: int = 40_000_000, horizon_ns: int = 10 * NSEC_PER_SEC,
                 horizon_drop: bool = True) -> None:
        self.limit, self.flow_limit = limit, flow_limit
        self.quantum, self.initial_quantum = 2 * mtu, 10 * mtu
        self.refill_delay_ns, self.horizon_ns, self.horizon_drop = refill_delay_ns, horizon_ns, horizon_drop
        self._flows: dict = {}
        self._new: deque = deque()
        self._old: deque = deque()
        self._throttled: list = []  # heap of (time_next_packet, seq, flow)
        self._seq = count()
        self.qlen = 0
        self.stats = {"throttled": 0, "flows_plimit": 0, "horizon_drops": 0}

    def __len__(self) -> int:
        return self.qlen

    def _classify(self, skb, now_ns: int) -> _Flow:
        """fq_classify(): the socket's flow (made on its first skb); skbs of no socket share one."""
        flow = self._flows.get(skb.sk)
        if flow is None:
            if len(self._flows) >= self.FQ_GC_MAX:  # fq_gc(): forget flows detached long enough
                for key, f in list(self._flows.items()):
                    if f.where == "detached" and not f.q and now_ns - f.age > self.FQ_GC_AGE:
                        del self._flows[key]
            flow = self._flows[skb.sk] = _Flow(credit=self.initial_quantum, age=now_ns)
        return flow

    def enqueue(self, skb, now_ns: int) -> int:
        """fq_enqueue(): 0, or the reason it was dropped."""
        if self.qlen >= self.limit:
            return pb.SKB_DROP_REASON_FQ_BAND_LIMIT
        time_to_send = now_ns
        if skb.tstamp:
            if skb.tstamp > now_ns + self.horizon_ns:  # fq_packet_beyond_horizon()
                if self.horizon_drop:
                    self.stats["horizon_drops"] += 1
                    return pb.SKB_DROP_REASON_FQ_HORIZON_LIMIT
                skb.tstamp = now_ns + self.horizon_ns
            time_to_send = skb.tstamp
        f = self._classify(skb, now_ns)
        if len(f.q) >= self.flow_limit:
            self.stats["flows_plimit"] += 1
            return pb.SKB_DROP_REASON_FQ_FLOW_LIMIT
        if f.where == "detached":
            f.where = "new"
            self._new.append(f)
            if now_ns > f.age + self.refill_delay_ns:
                f.credit = max(f.credit, self.quantum)
        f.q.append((skb, time_to_send))
        self.qlen += 1
        return 0

    def _check_throttled(self, now_ns: int) -> None:
        """fq_check_throttled(): flows whose time has come go back to the old flows."""
        while self._throttled and self._throttled[0][0] <= now_ns:
            _, _, f = heapq.heappop(self._throttled)
            f.where = "old"
            self._old.append(f)

    def dequeue(self, now_ns: int):
        """fq_dequeue(): the next skb due, by flow in turn; None when none is due yet."""
        if not self.qlen:
            return None
        self._check_throttled(now_ns)
        while True:
            head = self._new if self._new else self._old
            if not head:
                return None  # every flow with packets is throttled: the watchdog will run it
            f = head[0]
            if f.credit <= 0:
                f.credit += self.quantum
                head.popleft()
                f.where = "old"
                self._old.append(f)
                continue
            if not f.q:
                head.popleft()
                if head is self._new:  # a pass through the old flows first, against starvation
                    f.where = "old"
                    self._old.append(f)
                else:
                    f.where, f.age = "detached", now_ns
                continue
            skb, time_to_send = f.q[0]
            time_next_packet = max(time_to_send, f.time_next_packet)
            if now_ns < time_next_packet:  # fq_flow_set_throttled()
                head.popleft()
                f.time_next_packet, f.where = time_next_packet, "throttled"
                heapq.heappush(self._throttled, (time_next_packet, next(self._seq), f))
                self.stats["throttled"] += 1
                continue
            f.q.popleft()
            self.qlen -= 1
            f.credit -= skb.len
            return skb

    def next_event_ns(self) -> int | None:
        return self._throttled[0][0] if self._throttled else None

    def reset(self) -> list:
        out = [skb for f in self._flows.values() for skb, _ in f.q]
        self._flows.clear()
        self._new.clear()
        self._old.clear()
        self._throttled.clear()
        self.qlen = 0
        return out

    def describe(self, where: str = "") -> str:
        """As `tc qdisc show` prints it (tc/q_fq.c); where: "dev X " when it lists every device."""
        return (f"qdisc fq 8001: {where}root refcnt 2 limit {self.limit}p flow_limit {self.flow_limit}p "
                f"buckets 1024 orphan_mask 1023 quantum {self.quantum}b initial_quantum {self.initial_quantum}b "
                f"low_rate_threshold 550Kbit refill_delay {self.refill_delay_ns // 1_000_000}ms timer_slack 10us "
                f"horizon {self.horizon_ns // NSEC_PER_SEC}s horizon_drop")


QDISCS = {"pfifo_fast": PfifoFast, "fq": Fq}
