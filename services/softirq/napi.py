"""NET_RX and NET_TX softirq work for one device: NAPI polling and the qdisc.

RX models net_rx_action → napi_poll → the driver's poll (net/core/dev.c,
e.g. e1000e_poll): a poll takes at most `weight` (64) frames from the RX ring,
builds an sk_buff per frame and hands the poll's skbs on as one batch
(netif_receive_skb_list). A round of polls stops at netdev_budget (300)
packets or netdev_budget_usecs (2 ms), counting time_squeeze, and keeps the
interrupt masked; only a poll that ends under its weight calls
napi_complete_done, which unmasks the device's interrupt.

TX models __dev_queue_xmit → the device's pfifo qdisc (txqueuelen 1000,
QDISC_DROP when full) → net_tx_action/qdisc_run → the driver's xmit, which
writes the TX ring and rings the doorbell; completed descriptors are cleaned
in the poll (e1000_clean_tx_irq), freeing their skbs.

Pure logic: the ring is shared memory; the next layer, the doorbell and the
interrupt unmask are callables.
"""

import threading
import time
from collections import deque
from typing import Callable

from pktpath import skbuff as s
from pktpath.counters import Mib
from pktpath.offload import napi_gro_receive, skb_gso_segment
from pktpath.pb import skbuff_pb2
from pktpath.metrics import observe_latency
from pktpath.ring import NicRings
from pktpath.wire.ethernet import pad

pb = skbuff_pb2
NAPI_POLL_WEIGHT = 64
NETDEV_BUDGET = 300
NETDEV_BUDGET_USECS = 2000
TX_QUEUE_LEN = 1000
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
        self._qdisc: deque = deque()
        self._tx_lock = threading.Lock()  # the qdisc root lock + the TX ring's producer side
        self._in_flight: deque = deque()  # (ring position, skb) until the device completes it
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
                skb.events.append((s.ENTER, pb.LAYER_SOFTIRQ, self.host, "net_rx_action", now, skb.len, 0, "", "",
                                   *skb.head_snapshot(pb.LAYER_SOFTIRQ)))
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
            while self._qdisc:
                s.kfree_skb_reason(self._qdisc.popleft(), pb.SKB_DROP_REASON_QDISC_DROP, pb.LAYER_SOFTIRQ, self.host,
                                   "qdisc_reset")
                self.mib.drop(pb.SKB_DROP_REASON_QDISC_DROP)
                self.mib.inc("Qdisc", "drops")
            self.rings.close()
            self.closed = True

    def dev_queue_xmit(self, skbs: list) -> tuple[int, int]:
        """Enqueue on the pfifo qdisc and run it. Returns (queued, dropped)."""
        queued = dropped = 0
        with self._tx_lock:
            for skb in skbs:
                s.entered(skb, pb.LAYER_SOFTIRQ, "__dev_queue_xmit")
                if len(self._qdisc) >= self.txqueuelen:
                    s.kfree_skb_reason(skb, pb.SKB_DROP_REASON_QDISC_DROP, pb.LAYER_SOFTIRQ, self.host,
                                       "__dev_queue_xmit")
                    self.mib.drop(pb.SKB_DROP_REASON_QDISC_DROP)
                    self.mib.inc("Qdisc", "drops")
                    dropped += 1
                else:
                    self._qdisc.append(skb)
                    queued += 1
            self.mib.inc("Qdisc", "sent_enqueued", queued)
        self.qdisc_run()
        return queued, dropped

    def qdisc_run(self) -> int:
        """Move queued skbs into the TX ring while it has room; ring the doorbell once."""
        moved = 0
        with self._tx_lock:
            tx = self.rings.tx
            while self._qdisc:
                skb = self._qdisc[0]
                if skb.gso_size:  # validate_xmit_skb(): the device cannot segment, so software does
                    self._qdisc.popleft()
                    segs = skb_gso_segment(skb, pb.LAYER_SOFTIRQ, self.host)
                    self.mib.inc("Gso", "Packets")
                    self.mib.inc("Gso", "Segments", len(segs))
                    self._qdisc.extendleft(reversed(segs))
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
                    self._qdisc.popleft()
                    s.kfree_skb_reason(skb, pb.SKB_DROP_REASON_PKT_TOO_BIG, pb.LAYER_SOFTIRQ, self.host,
                                       "dev_hard_start_xmit")
                    self.mib.drop(pb.SKB_DROP_REASON_PKT_TOO_BIG)
                    continue
                pos = tx.head
                if not tx.produce(frame, meta.SerializeToString()):
                    self.mib.inc("Qdisc", "requeues")  # ring full: netif_stop_queue until completions
                    break
                self._qdisc.popleft()
                self._in_flight.append((pos, skb))
                moved += 1
        if moved:
            self._doorbell()
        return moved

    def clean_tx(self) -> int:
        """Free the skbs whose TX descriptors the device completed, then refill the ring."""
        freed = 0
        with self._tx_lock:
            tx = self.rings.tx
            while self._in_flight and tx.completed(self._in_flight[0][0]):
                _, skb = self._in_flight.popleft()
                s.consume_skb(skb, pb.LAYER_SOFTIRQ, self.host, "napi_consume_skb")
                freed += 1
            pending = bool(self._qdisc)
        if pending:
            self.qdisc_run()
        return freed

    def backlog(self) -> int:
        with self._tx_lock:
            return len(self._qdisc)
