"""NET_RX and NET_TX softirq work for one device: NAPI polling and the qdisc.

RX models net_rx_action → napi_poll → the driver's poll (net/core/dev.c,
e.g. e1000e_poll): a poll takes at most `weight` (64) frames from the RX ring,
builds an sk_buff per frame and hands the poll's skbs on as one batch
(netif_receive_skb_list). A round of polls stops at netdev_budget (300)
packets or netdev_budget_usecs (2 ms), counting time_squeeze, and keeps the
interrupt masked; only a poll that ends under its weight calls
napi_complete_done, which unmasks the device's interrupt.

TX models __dev_queue_xmit → the device's root qdisc (pfifo_fast, txqueuelen
1000, QDISC_DROP when full; or fq: services/softirq/qdisc.py) →
net_tx_action/qdisc_run → the driver's xmit, which
writes the TX ring and rings the doorbell; completed descriptors are cleaned
in the poll (e1000_clean_tx_irq), freeing their skbs (whose destructor gives
TCP its bytes back: TCP Small Queues). Byte queue limits (pktpath/dql.py)
stop the queue while the ring holds more bytes than it needs not to run dry,
so that what waits, waits in the qdisc.

Pure logic: the ring is shared memory; the next layer, the doorbell and the
interrupt unmask are callables.
"""

import threading
import time
from collections import deque
from typing import Callable

from pktpath import skbuff as s
from pktpath.counters import Mib
from pktpath.dql import DQL_MAX_LIMIT, Dql
from pktpath.sysctl import left_out
from pktpath.offload import napi_gro_receive, skb_gso_segment
from pktpath.pb import skbuff_pb2
from pktpath.metrics import observe_latency
from pktpath.ring import NicRings
from pktpath.services.softirq.qdisc import QDISCS, TX_QUEUE_LEN, PfifoFast
from pktpath.wire.ethernet import pad

pb = skbuff_pb2
NAPI_POLL_WEIGHT = 64
NETDEV_BUDGET = 300
NETDEV_BUDGET_USECS = 2000
SOFTNET = "Softnet"


class Napi:
    def __init__(self, host: str, dev: str, rings: NicRings, *, deliver: Callable[[list], object],
                 enable_irq: Callable[[], None], doorbell: Callable[[], None], mib: Mib,
                 weight: int = NAPI_POLL_WEIGHT, budget: int = NETDEV_BUDGET,
                 budget_usecs: int = NETDEV_BUDGET_USECS, txqueuelen: int = TX_QUEUE_LEN, gro: bool = True) -> None:
        self.host = host
        self.dev = dev
        self.rings = rings
        self.mib = mib
        self.weight = weight
        self.budget = budget
        self.budget_usecs = budget_usecs
        self.txqueuelen = txqueuelen
        self.gro = gro  # ethtool -K <dev> gro on|off
        self._deliver = deliver
        self._enable_irq = enable_irq
        self._doorbell = doorbell
        self.qdisc = PfifoFast(txqueuelen)  # the root qdisc; tc qdisc replace: replace_qdisc
        self._requeued: deque = deque()  # dequeued, not yet on the ring (q->gso_skb: dev_requeue_skb)
        self._tx_lock = threading.Lock()  # the qdisc root lock + the TX ring's producer side
        self._watchdog = threading.Condition(self._tx_lock)
        self._watchdog_at: int | None = None  # ns when the qdisc holds a packet back till
        self._watchdog_thread: threading.Thread | None = None
        self._in_flight: deque = deque()  # (ring position, skb, bytes) until the device completes it
        # the TX queue's byte queue limits (e1000e reports to BQL); without BQL the ring's size is the limit
        self.dql = Dql(min_limit=DQL_MAX_LIMIT) if left_out("bql") else Dql()
        self._rx_lock = threading.Lock()  # one poll at a time (NAPI_STATE_SCHED)
        self.closed = False

    # -- NET_RX -------------------------------------------------------------
    def net_rx_action(self) -> int:
        """One softirq run after a hard IRQ; returns the packets processed."""
        with self._rx_lock:
            self.mib.inc(SOFTNET, "softirqs")
            done = 0
            deadline = time.monotonic_ns() + self.budget_usecs * 1000
            while True:
                work = self.poll(self.weight)
                done += work
                if work < self.weight:
                    self._enable_irq()  # napi_complete_done
                    if not self.rings.rx.ready():
                        return done
                    continue  # a frame slipped in between the last poll and the unmask
                if done >= self.budget or time.monotonic_ns() >= deadline:
                    self.mib.inc(SOFTNET, "time_squeeze")
                    done = 0  # the next round, still masked: the kernel re-raises NET_RX_SOFTIRQ
                    deadline = time.monotonic_ns() + self.budget_usecs * 1000
                    time.sleep(0)  # let the other threads of this process run, as ksoftirqd yields

    def poll(self, weight: int) -> int:
        """The driver's NAPI poll: clean TX completions, then up to `weight` RX frames."""
        self.clean_tx()
        rx = self.rings.rx
        skbs = []
        now = time.monotonic_ns()
        while len(skbs) < weight:
            item = rx.consume(headroom=s.NET_SKB_PAD)
            if item is None:
                break
            buf, raw_meta = item
            meta = pb.Frame.FromString(raw_meta) if raw_meta else pb.Frame()
            skb = s.SkBuff(buf, s.NET_SKB_PAD, len(buf), len(buf), id=meta.id, origin_host=meta.origin_host,
                           sampled=meta.sampled)
            skb.traceparent = meta.traceparent
            skb.tstamp = meta.tstamp
            skb.dev = self.dev
            if meta.sampled:
                skb.clone_of, skb.copy_of = meta.clone_of, meta.copy_of
                skb.prior_events = meta.events
                skb.events.append((s.ENTER, pb.LAYER_SOFTIRQ, self.host, "net_rx_action", s.event_time_ns(), skb.len,
                                   0, "", "", *skb.head_snapshot(pb.LAYER_SOFTIRQ)))
            s.entered(skb, pb.LAYER_SOFTIRQ, "net_rx_action")
            skbs.append(skb)
        n = len(skbs)
        if skbs:
            self.mib.inc(SOFTNET, "processed", n)
            if self.gro and n > 1:
                skbs = napi_gro_receive(skbs, self.mib, pb.LAYER_SOFTIRQ, self.host)
            if not self._deliver(skbs):
                self.mib.inc(SOFTNET, "dropped", len(skbs))
                self.mib.drop(pb.SKB_DROP_REASON_CPU_BACKLOG, len(skbs))
            observe_latency((time.monotonic_ns() - now) / 1e9, n)  # the poll's time, for each frame
        return n

    # -- NET_TX -------------------------------------------------------------
    def close(self) -> None:
        """Unmap the rings once no poll and no transmit is using them; what the qdisc still
        held is dropped and counted, as qdisc_reset() does when a device goes down."""
        with self._rx_lock, self._tx_lock:
            self._reset_qdisc("qdisc_reset")
            self.rings.close()
            self.closed = True
            self._watchdog.notify_all()

    def _reset_qdisc(self, func: str) -> None:
        for skb in [*self._requeued, *self.qdisc.reset()]:
            s.kfree_skb_reason(skb, pb.SKB_DROP_REASON_QDISC_DROP, pb.LAYER_SOFTIRQ, self.host, func)
            self.mib.drop(pb.SKB_DROP_REASON_QDISC_DROP)
            self.mib.inc("Qdisc", "drops")
        self._requeued.clear()

    def replace_qdisc(self, kind: str) -> None:
        """tc qdisc replace dev DEV root KIND: the new qdisc takes over; what the old one held is dropped."""
        with self._tx_lock:
            self._reset_qdisc("qdisc_graft")
            self.qdisc = PfifoFast(self.txqueuelen) if kind == PfifoFast.kind else QDISCS[kind]()
            if self.qdisc.paces and self._watchdog_thread is None:
                self._watchdog_thread = threading.Thread(target=self._watchdog_loop, name=f"qdisc-{self.dev}",
                                                         daemon=True)
                self._watchdog_thread.start()

    def dev_queue_xmit(self, skbs: list) -> tuple[int, int]:
        """Enqueue on the root qdisc and run it. Returns (queued, dropped)."""
        queued = dropped = 0
        now = time.monotonic_ns()
        with self._tx_lock:
            for skb in skbs:
                s.entered(skb, pb.LAYER_SOFTIRQ, "__dev_queue_xmit")
                reason = self.qdisc.enqueue(skb, now)
                if reason:
                    s.kfree_skb_reason(skb, reason, pb.LAYER_SOFTIRQ, self.host, "__dev_queue_xmit")
                    self.mib.drop(reason)
                    self.mib.inc("Qdisc", "drops")
                    dropped += 1
                else:
                    queued += 1
            self.mib.inc("Qdisc", "sent_enqueued", queued)
        self.qdisc_run()
        return queued, dropped

    def qdisc_run(self) -> int:
        """qdisc_restart() until the qdisc has nothing due or the queue is stopped (the TX
        ring full, or byte queue limits): dequeue, segment a GSO skb (validate_xmit_skb),
        write the ring; what could not go waits at the head (dev_requeue_skb). Rings the
        doorbell once; arms the watchdog for a packet the qdisc holds back (fq's pacing)."""
        moved = 0
        with self._tx_lock:
            tx = self.rings.tx
            while self.dql.avail() >= 0:  # else __QUEUE_STATE_STACK_XOFF: BQL stopped the queue till completions
                skb = self._requeued.popleft() if self._requeued else self.qdisc.dequeue(time.monotonic_ns())
                if skb is None:
                    break
                if skb.gso_size:  # validate_xmit_skb(): the device cannot segment, so software does
                    segs = skb_gso_segment(skb, pb.LAYER_SOFTIRQ, self.host)
                    self.mib.inc("Gso", "Packets")
                    self.mib.inc("Gso", "Segments", len(segs))
                    self._requeued.extendleft(reversed(segs))
                    continue
                frame = pad(bytes(skb.payload()))  # the driver's skb_put_padto(skb, ETH_ZLEN)
                meta = pb.Frame(id=skb.id, origin_host=skb.origin_host, traceparent=skb.traceparent,
                                sampled=skb.sampled)
                if skb.sampled:
                    meta.clone_of, meta.copy_of = skb.clone_of, skb.copy_of
                    skb.record(s.EXIT, pb.LAYER_SOFTIRQ, self.host, "net_tx_action")
                    s.export_events(skb, meta.events, heads=False)
                    if len(frame) + meta.ByteSize() > tx.capacity:
                        del meta.events[:]  # the trace loses this packet's events, the packet survives
                        self.mib.inc("Trace", "EventsTruncated")
                if len(frame) + meta.ByteSize() > tx.capacity:
                    s.kfree_skb_reason(skb, pb.SKB_DROP_REASON_PKT_TOO_BIG, pb.LAYER_SOFTIRQ, self.host,
                                       "dev_hard_start_xmit")
                    self.mib.drop(pb.SKB_DROP_REASON_PKT_TOO_BIG)
                    continue
                pos = tx.head
                if not tx.produce(frame, meta.SerializeToString()):
                    self._requeued.appendleft(skb)
                    self.mib.inc("Qdisc", "requeues")  # ring full: netif_stop_queue until completions
                    break
                self._in_flight.append((pos, skb, len(frame)))
                self.dql.queued(len(frame))  # netdev_tx_sent_queue()
                moved += 1
            due = self.qdisc.next_event_ns()
            if due is not None and (self._watchdog_at is None or due < self._watchdog_at):
                self._watchdog_at = due  # qdisc_watchdog_schedule_ns()
                self._watchdog.notify_all()
        if moved:
            self._doorbell()
        return moved

    def _watchdog_loop(self) -> None:
        """The qdisc watchdog (an hrtimer in Linux): run the queue when a held-back packet is due."""
        with self._tx_lock:
            while not self.closed:
                if self._watchdog_at is None:
                    self._watchdog.wait()
                    continue
                delay = (self._watchdog_at - time.monotonic_ns()) / 1e9
                if delay > 0:
                    self._watchdog.wait(delay)
                    continue
                self._watchdog_at = None
                self._tx_lock.release()
                try:
                    self.qdisc_run()
                finally:
                    self._tx_lock.acquire()

    def clean_tx(self) -> int:
        """Free the skbs whose TX descriptors the device completed, then refill the ring."""
        freed = nbytes = 0
        with self._tx_lock:
            tx = self.rings.tx
            while self._in_flight and tx.completed(self._in_flight[0][0]):
                _, skb, size = self._in_flight.popleft()
                s.consume_skb(skb, pb.LAYER_SOFTIRQ, self.host, "napi_consume_skb")
                freed += 1
                nbytes += size
            if freed:
                self.dql.completed(nbytes, time.monotonic())  # netdev_tx_completed_queue()
            pending = bool(self._requeued or len(self.qdisc))
        if pending:
            self.qdisc_run()
        return freed

    def backlog(self) -> int:
        with self._tx_lock:
            return len(self._requeued) + len(self.qdisc)
