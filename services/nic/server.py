"""The NIC service: every interface of one host, its rings in shared memory, its link.

Servicer for pktpath.v1.Nic. RPCs model the driver/device boundary:
LinkXmit and Inject are frames arriving from the wire, RequestIrq is the
interrupt line (request_irq), EnableIrq is the unmask at napi_complete_done,
NdoStartXmit the TX doorbell (ndo_start_xmit's tail-register write).
"""

import queue
import time

import grpc
from google.protobuf import empty_pb2

from pktpath.pb import nic_pb2, nic_pb2_grpc, skbuff_pb2
from pktpath.config import shm_name
from pktpath.counters import Mib
from pktpath.skbuff import disposition
from pktpath.service import channel
from pktpath.ring import MAX_RING_SIZE, NicRings
from pktpath.services.nic.device import LinkImpairment, NetDevice

IRQ_POLL_S = 0.5  # how often an idle IRQ stream checks that its reader is still there


class NicServicer(nic_pb2_grpc.NicServicer):
    def __init__(self, ctx) -> None:
        self.ctx = ctx
        self.mib = Mib()
        self.devices: dict[str, NetDevice] = {}
        self._irq_queues: dict[str, queue.SimpleQueue] = {}
        self._channels = []
        host = ctx.topology.host(ctx.host)
        for iface in host.interfaces:
            rings = NicRings.create(shm_name(ctx.run_id, ctx.host, iface.name), iface.rx_ring, iface.tx_ring)
            irqs = self._irq_queues[iface.name] = queue.SimpleQueue()
            transmit, impairment = None, None
            peer = ctx.topology.peer(ctx.host, iface.name)
            if peer is not None:
                end, link = peer
                transmit = self._link_to(end.host, end.dev)
                impairment = LinkImpairment(link.loss, link.corrupt, link.duplicate, link.reorder, link.delay_ms)
            self.devices[iface.name] = NetDevice(
                ctx.host, iface.name, iface.mac, rings,
                raise_irq=lambda cause, dev=iface.name, q=irqs: q.put(
                    nic_pb2.Irq(dev=dev, cause=cause, ts_ns=time.monotonic_ns())),
                transmit=transmit, impairment=impairment, mib=self.mib)

    def _link_to(self, host: str, dev: str):
        peer = channel(self.ctx.addrs.target(host, "nic"))
        self._channels.append(peer)
        stub = nic_pb2_grpc.NicStub(peer)

        def transmit(frames) -> None:
            stub.LinkXmit(skbuff_pb2.FrameBatch(dev=dev, frames=frames), timeout=5)

        return transmit

    def _device(self, dev: str, context) -> NetDevice:
        device = self.devices.get(dev)
        if device is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"{self.ctx.host} has no interface {dev!r}")
        return device

    def LinkXmit(self, request, context):
        """Frames arriving over the link from the peer NIC: DMA into the RX ring."""
        accepted, dropped = self._device(request.dev, context).receive(request.frames)
        return disposition(accepted, dropped, skbuff_pb2.SKB_DROP_REASON_FULL_RING)

    def Inject(self, request, context):
        """A client puts frames on the wire of this interface."""
        accepted, dropped = self._device(request.dev, context).receive(request.frames, injected=True)
        return disposition(accepted, dropped, skbuff_pb2.SKB_DROP_REASON_FULL_RING)

    def RequestIrq(self, request, context):
        """The interrupt line: one Irq per hard interrupt, for as long as the driver listens."""
        device = self._device(request.dev, context)
        irqs = self._irq_queues[request.dev]
        device.enable_irq()  # a (re)attached driver starts with the line unmasked
        while context.is_active():
            try:
                irq = irqs.get(timeout=IRQ_POLL_S)
            except queue.Empty:
                continue
            yield irq

    def EnableIrq(self, request, context):
        self._device(request.dev, context).enable_irq()
        return empty_pb2.Empty()

    def NdoStartXmit(self, request, context):
        self._device(request.dev, context).doorbell()
        return empty_pb2.Empty()

    def GetRingParam(self, request, context):
        device = self._device(request.dev, context)
        rings = device.rings
        return nic_pb2.RingParam(dev=device.name, rx_max_pending=MAX_RING_SIZE, tx_max_pending=MAX_RING_SIZE,
                                 rx_pending=rings.rx.slots, tx_pending=rings.tx.slots,
                                 slot_size=rings.slot_size, shm_name=rings.name)

    def GetStats(self, request, context):
        return self._device(request.dev, context).stats_proto()

    def GetCounters(self, request, context):
        return self.mib.to_proto()

    def close(self) -> None:
        for device in self.devices.values():
            device.close()
            device.rings.close()
        for peer in self._channels:
            peer.close()


def build(ctx) -> NicServicer:
    return NicServicer(ctx)
