"""One network interface as its device sees it: rings, an interrupt line, a link.

The device half of a NAPI driver pair (e.g. e1000e): on RX it "DMAs" each
arriving frame into the next free RX descriptor and, unless its interrupt is
masked, raises a hard IRQ and masks itself (the driver's IRQ handler does the
masking in the kernel; here the device does it on the driver's behalf, since
the two sides are separate processes). napi_complete_done's unmask comes back
as enable_irq(), which raises again at once if frames arrived meanwhile, so no
wake-up is ever lost. On TX it takes frames from the TX ring when the driver
rings the doorbell, puts them on the link, and raises a TX-completion IRQ.

Pure logic: the link and the IRQ line are callables the server supplies.
"""

import random
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from pktpath.counters import Mib
from pktpath.pb import nic_pb2, skbuff_pb2
from pktpath.ring import NicRings
from pktpath.skbuff import PacketIds, count_move, event_time_ns
from pktpath.taps import LAYER_TAPS

pb = skbuff_pb2
DMA = pb.DMA


@dataclass
class NetDevStats:
    """struct rtnl_link_stats64, the columns of /proc/net/dev."""

    rx_bytes: int = 0
    rx_packets: int = 0
    rx_errors: int = 0
    rx_dropped: int = 0
    rx_missed_errors: int = 0
    rx_fifo_errors: int = 0
    rx_length_errors: int = 0
    rx_crc_errors: int = 0
    tx_bytes: int = 0
    tx_packets: int = 0
    tx_errors: int = 0
    tx_dropped: int = 0
    tx_fifo_errors: int = 0
    tx_carrier_errors: int = 0
    multicast: int = 0
    collisions: int = 0


@dataclass
class LinkImpairment:
    """netem on the link, applied where frames leave this device."""

    loss: float = 0.0
    corrupt: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    delay_ms: float = 0.0
    rng: random.Random = field(default_factory=random.Random)

    def apply(self, frames: list, mib: Mib) -> list:
        if not (self.loss or self.corrupt or self.duplicate or self.reorder):
            return frames
        out = []
        for f in frames:
            if self.loss and self.rng.random() < self.loss:
                mib.inc("Link", "Loss")
                continue
            if self.corrupt and self.rng.random() < self.corrupt and f.data:
                data = bytearray(f.data)
                bit = self.rng.randrange(len(data) * 8)
                data[bit // 8] ^= 1 << bit % 8
                f.data = bytes(data)
                mib.inc("Link", "Corrupt")
            out.append(f)
            if self.duplicate and self.rng.random() < self.duplicate:
                dup = pb.Frame()
                dup.CopyFrom(f)
                out.append(dup)
                mib.inc("Link", "Duplicate")
        if self.reorder and len(out) > 1:
            for i in range(len(out) - 1):
                if self.rng.random() < self.reorder:
                    out[i], out[i + 1] = out[i + 1], out[i]
                    mib.inc("Link", "Reorder")
        return out


class NetDevice:
    def __init__(self, host: str, name: str, mac: str, rings: NicRings, *,
                 raise_irq: Callable[[int], None], transmit: Callable[[list], None] | None,
                 impairment: LinkImpairment | None = None, mib: Mib | None = None) -> None:
        self.host = host
        self.name = name
        self.mac = mac
        self.rings = rings
        self.stats = NetDevStats()
        self.mib = mib or Mib()
        self.impairment = impairment or LinkImpairment()
        self._raise_irq = raise_irq
        self._transmit = transmit
        self._ids = PacketIds(pb.LAYER_NIC)
        self._rx_lock = threading.Lock()   # one producer on the RX ring at a time
        self._rx_meta = pb.Frame()         # each frame's ring metadata, built in one reused message
        self._irq_lock = threading.Lock()
        self.irq_enabled = True
        self._tx_done_latched = False  # a TX completion while masked, raised at the unmask
        self._doorbell = threading.Event()
        self._stopping = False
        self._tx_thread = threading.Thread(target=self._tx_loop, name=f"nic-tx-{name}", daemon=True)
        self._tx_thread.start()

    # -- RX: frames from the link or a client ------------------------------
    def receive(self, frames, *, injected: bool = False) -> tuple[int, int]:
        """DMA frames into the RX ring. Returns (accepted, dropped on a full ring)."""
        accepted = dropped = 0
        tstamp = now = event_time_ns()  # the receive timestamp every frame gets, as with HWTSTAMP_FILTER_ALL
        with self._rx_lock:
            rx = self.rings.rx
            meta = self._rx_meta
            for f in frames:
                data = f.data
                meta.Clear()
                meta.id = f.id or self._ids()
                meta.origin_host = f.origin_host or self.host
                meta.tstamp = tstamp
                if f.traceparent:
                    meta.traceparent = f.traceparent
                if f.sampled:
                    meta.sampled = True
                    meta.clone_of, meta.copy_of = f.clone_of, f.copy_of
                    meta.events.extend(f.events)
                    meta.events.add(kind=DMA, layer=pb.LAYER_NIC, host=self.host, func="napi_gro_receive"
                                    if not injected else "tun_get_user", ts_ns=now, bytes=len(data))
                raw_meta = meta.SerializeToString()
                if len(data) + len(raw_meta) > rx.capacity and f.sampled:
                    del meta.events[:]  # the trace loses this packet's events, the packet survives
                    raw_meta = meta.SerializeToString()
                    self.mib.inc("Trace", "EventsTruncated")
                if not data or len(data) + len(raw_meta) > rx.capacity:
                    self.stats.rx_length_errors += 1
                    self.stats.rx_errors += 1
                    self.mib.drop(pb.SKB_DROP_REASON_PKT_TOO_BIG if data else pb.SKB_DROP_REASON_PKT_TOO_SMALL)
                    dropped += 1
                    continue
                if LAYER_TAPS.active:  # the frame as it came off the wire, before the ring
                    LAYER_TAPS.add(self.name, False, data, func="tun_get_user" if injected else "napi_gro_receive")
                if rx.produce(data, raw_meta):
                    accepted += 1
                    self.stats.rx_packets += 1
                    self.stats.rx_bytes += len(data)
                    count_move(DMA, "napi_gro_receive" if not injected else "tun_get_user", len(data))
                    if data[0] & 1:
                        self.stats.multicast += 1
                else:
                    dropped += 1
                    self.stats.rx_missed_errors += 1
                    self.mib.drop(pb.SKB_DROP_REASON_FULL_RING)
        if accepted:
            self._maybe_interrupt(nic_pb2.IRQ_RX)
        return accepted, dropped

    def _maybe_interrupt(self, cause: int) -> None:
        with self._irq_lock:
            if not self.irq_enabled:
                # masked: the driver is polling. It sees RX frames in the ring; a TX completion it may
                # have looked for already, so the cause is latched (as e1000e's ICR) for the unmask
                self._tx_done_latched = self._tx_done_latched or cause == nic_pb2.IRQ_TX_DONE
                return
            self.irq_enabled = False
        self.mib.inc("Irq", "HardIrqs")
        self._raise_irq(cause)

    def enable_irq(self) -> None:
        """The driver's napi_complete_done() unmasked us. Raise at once if work is pending."""
        with self._irq_lock:
            self.irq_enabled = True
            tx_done, self._tx_done_latched = self._tx_done_latched, False
        if self.rings.rx.pending():
            self._maybe_interrupt(nic_pb2.IRQ_RX)
        elif tx_done:  # completions came in while the poll ran: their skbs wait to be freed
            self._maybe_interrupt(nic_pb2.IRQ_TX_DONE)

    # -- TX: the driver rang the doorbell ----------------------------------
    def doorbell(self) -> None:
        self._doorbell.set()

    def _tx_loop(self) -> None:
        while not self._stopping:
            self._doorbell.wait(0.5)
            self._doorbell.clear()
            if self._stopping:
                return
            sent = self.transmit_pending()
            if sent:
                self._maybe_interrupt(nic_pb2.IRQ_TX_DONE)

    def transmit_pending(self) -> int:
        """Take every frame in the TX ring and put it on the link; returns how many."""
        frames = []
        tx = self.rings.tx
        while (item := tx.consume()) is not None:
            data, meta = item
            f = pb.Frame.FromString(meta) if meta else pb.Frame()
            f.data = data
            if f.sampled:
                f.events.add(kind=DMA, layer=pb.LAYER_NIC, host=self.host, func="ndo_start_xmit",
                             ts_ns=event_time_ns(), bytes=len(data))
            if LAYER_TAPS.active:
                LAYER_TAPS.add(self.name, True, data, func="ndo_start_xmit")
            frames.append(f)
            self.stats.tx_packets += 1
            self.stats.tx_bytes += len(data)
        if not frames:
            return 0
        count_move(DMA, "ndo_start_xmit", sum(len(f.data) for f in frames), len(frames))
        if self._transmit is None:  # no link: nothing carries the frames
            self.stats.tx_carrier_errors += len(frames)
            self.stats.tx_dropped += len(frames)
            self.mib.inc("Link", "NoCarrier", len(frames))
            return len(frames)
        on_wire = self.impairment.apply(frames, self.mib)
        if self.impairment.delay_ms:
            time.sleep(self.impairment.delay_ms / 1000)
        if on_wire and self._transmit(on_wire) is False:  # the link is gone: lost on the wire, counted
            self.stats.tx_errors += len(on_wire)
            self.stats.tx_carrier_errors += len(on_wire)
            self.mib.inc("Link", "PeerUnreachable", len(on_wire))
        return len(frames)

    def stats_proto(self) -> nic_pb2.NetDevStats:
        return nic_pb2.NetDevStats(dev=self.name, **vars(self.stats))

    def close(self) -> None:
        self._stopping = True
        self._doorbell.set()
        self._tx_thread.join(2)
