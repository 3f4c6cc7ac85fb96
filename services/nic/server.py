"""The NIC service: every interface of one host, its rings in shared memory, its link.

Servicer for pktpath.v1.Nic. LinkXmit and Inject are frames arriving from the
wire; a link is a hop to the peer NIC's LinkXmit, one stream of bursts, and an
interface attached to a TAP device or an AF_PACKET socket has the Linux kernel
at the other end (services/nic/kernel_wire.py). The interrupt line to the driver (softirq) is a Unix socket per device
(services/nic/irq.py); EnableIrq and NdoStartXmit do over gRPC what the
driver's unmask and doorbell bytes do on that line, for tools.
"""

import dataclasses

import grpc
from google.protobuf import empty_pb2

from pktpath.pb import nic_pb2, skbuff_pb2
from pktpath.rpc import checked, nic_pb2_grpc
from pktpath.config import irq_path, shm_name
from pktpath.counters import Mib
from pktpath.hop import Hop, Refused, batches
from pktpath.seams import LINK
from pktpath.skbuff import disposition
from pktpath import validate
from pktpath.validate import shown
from pktpath.ring import MAX_RING_SIZE, NicRings
from pktpath.services.nic.device import LinkImpairment, NetDevice
from pktpath.services.nic.irq import IrqLine
from pktpath.services.nic.kernel_wire import KernelWire, attach
from pktpath.trace import frame_flow, sampler


MAX_DELAY_MS = 10_000.0  # netem's delay here holds the sending thread: ten seconds at the most


class NicServicer(nic_pb2_grpc.NicServicer):
    def __init__(self, ctx) -> None:
        self.ctx = ctx
        self.mib = Mib()
        self.devices: dict[str, NetDevice] = {}
        self.irq_lines: dict[str, IrqLine] = {}
        self._links: list[Hop] = []
        self.kernel_wires: dict[str, KernelWire] = {}
        try:
            self._make_devices(ctx.topology.host(ctx.host))
        except BaseException:
            self.close()  # the rings made so far, their threads, any wire
            raise

    def _make_devices(self, host) -> None:
        ctx = self.ctx
        for iface in host.interfaces:
            rings = NicRings.create(shm_name(ctx.run_id, ctx.host, iface.name), iface.rx_ring, iface.tx_ring)
            transmit, impairment = None, None
            peer = ctx.topology.peer(ctx.host, iface.name)
            if peer is not None:
                end, link = peer
                transmit = self._link_to(end.host, end.dev)
                impairment = LinkImpairment(link.loss, link.corrupt, link.duplicate, link.reorder, link.delay_ms)
            elif iface.attach:
                transmit = lambda frames, dev=iface.name: self.kernel_wires[dev].transmit(frames)
            line: list[IrqLine] = []  # made once the device exists; an IRQ needs a driver anyway
            device = self.devices[iface.name] = NetDevice(
                ctx.host, iface.name, iface.mac, rings, raise_irq=lambda cause, line=line: line[0].raise_irq(cause),
                transmit=transmit, impairment=impairment, mib=self.mib)
            line.append(IrqLine(irq_path(ctx.run_id, ctx.host, iface.name), on_connect=device.enable_irq,
                                on_unmask=device.enable_irq, on_doorbell=device.doorbell))
            self.irq_lines[iface.name] = line[0]
            if iface.attach:
                self.kernel_wires[iface.name] = self._attach(iface.attach, device)

    def _attach(self, spec: str, device: NetDevice) -> KernelWire:
        """The kernel's end of device's wire: what it sends is DMA'd into the RX ring, each
        frame traced as the process's sampler says (a share, the first few a second, the
        flows `pktpath trace` names)."""
        def receive(frames: list[bytes]) -> None:
            sample = sampler()
            device.receive([skbuff_pb2.Frame(data=f, sampled=sample(frame_flow(f) if sample.flows else None))
                            for f in frames])

        try:
            return attach(spec, receive)
        except OSError as exc:
            raise RuntimeError(f"{self.ctx.host}:{device.name}: cannot attach to {spec}: {exc.strerror or exc} "
                               f"(a TAP device needs /dev/net/tun and CAP_NET_ADMIN, an AF_PACKET socket "
                               f"CAP_NET_RAW and an existing interface)") from None

    def _link_to(self, host: str, dev: str):
        """The cable to the peer NIC's interface `dev`: a hop to its LinkXmit."""
        link = self.ctx.hop(LINK, self.mib, host=host, name=f"link-{host}-{dev}",
                            encode=lambda frames: skbuff_pb2.FrameBatch(dev=dev, frames=frames))
        self._links.append(link)
        return link.put

    def _device(self, dev: str, context=None) -> NetDevice:
        """The interface `dev`; NOT_FOUND for a call, a refused batch (no context: a hop) otherwise."""
        device = self.devices.get(dev)
        if device is None:
            message = f"{self.ctx.host} has no interface {shown(dev)}"
            if context is None:
                raise Refused(grpc.StatusCode.NOT_FOUND, message)
            context.abort(grpc.StatusCode.NOT_FOUND, message)
        return device

    @batches(skbuff_pb2.FrameBatch)
    def LinkXmit(self, request, context):
        """Frames arriving over the link from the peer NIC: DMA into the RX ring."""
        accepted, dropped = self._device(request.dev).receive(request.frames)
        return disposition(accepted, dropped, skbuff_pb2.SKB_DROP_REASON_FULL_RING)

    def Inject(self, request, context):
        """A client puts frames on the wire of this interface."""
        accepted, dropped = self._device(request.dev, context).receive(request.frames, injected=True)
        return disposition(accepted, dropped, skbuff_pb2.SKB_DROP_REASON_FULL_RING)

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

    def GetNetem(self, request, context):
        return self._netem(self._device(request.dev, context))

    @checked
    def SetNetem(self, request, context):
        """tc qdisc change dev DEV root netem ...: the impairment from now on, for every frame sent."""
        device = self._device(request.dev, context)
        chances = {name: validate.finite(getattr(request, name), name, 0.0, 1.0)
                   for name in ("loss", "corrupt", "duplicate", "reorder")}
        delay = validate.finite(request.delay_ms, "delay_ms", 0.0, MAX_DELAY_MS)
        device.impairment = dataclasses.replace(device.impairment, **chances, delay_ms=delay)
        self.mib.inc("Link", "NetemChanges")
        return self._netem(device)

    @staticmethod
    def _netem(device) -> nic_pb2.Netem:
        i = device.impairment
        return nic_pb2.Netem(dev=device.name, loss=i.loss, corrupt=i.corrupt, duplicate=i.duplicate,
                             reorder=i.reorder, delay_ms=i.delay_ms)

    def GetCounters(self, request, context):
        counters = self.mib.to_proto()
        for dev, wire in self.kernel_wires.items():  # frames the kernel's end would not take or give
            counters.groups.add(name=f"KernelWire {dev}", values={"TxErrors": wire.tx_errors,
                                                                   "RxErrors": wire.rx_errors})
        return counters

    def netdev_stats(self) -> dict[str, dict[str, int]]:
        """Each device's /proc/net/dev counters, for /metrics."""
        return {name: dataclasses.asdict(device.stats) for name, device in self.devices.items()}

    def close(self) -> None:
        for line in self.irq_lines.values():
            line.close()
        for device in self.devices.values():
            device.close()
            device.rings.close()
        for link in self._links:
            link.close()
        for wire in self.kernel_wires.values():
            wire.close()  # a TAP device goes with its fd


def build(ctx) -> NicServicer:
    return NicServicer(ctx)
