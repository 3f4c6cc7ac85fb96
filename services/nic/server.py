"""The NIC service: every interface of one host, its rings in shared memory, its link.

Servicer for pktpath.v1.Nic. LinkXmit and Inject are frames arriving from the
wire; a link is a hop to the peer NIC's LinkXmit, one stream of bursts, unless
its other host is on another machine: then it is a VXLAN tunnel between the two
machines (services/nic/vxlan.py). An interface attached to a TAP device, an
AF_PACKET socket or a VXLAN tunnel has the Linux kernel at the other end
(services/nic/kernel_wire.py). The interrupt line to the driver (softirq) is a Unix socket per device
(services/nic/irq.py); EnableIrq and NdoStartXmit do over gRPC what the
driver's unmask and doorbell bytes do on that line, for tools.
"""

import dataclasses
import os
import socket

import grpc
from google.protobuf import empty_pb2
from google.protobuf.message import DecodeError

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
from pktpath.services.nic.vxlan import Tunnel, VxlanSocket
from pktpath.wire.vxlan import IANA_VXLAN_UDP_PORT
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
        self.tunnels: dict[str, Tunnel] = {}
        self.vxlan: VxlanSocket | None = None  # the UDP socket of every tunnel, once one needs it
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
            tunnel = None  # (VNI, remote, the two ends' MACs if a pktpath NIC is the other) of a VXLAN tunnel
            if peer is not None:
                end, link = peer
                if ctx.addrs.tunneled(ctx.host, end.host):  # its other end is on another machine
                    tunnel = link.vni, ctx.addrs.at(end.host), (iface.mac, ctx.topology.host(end.host).interface(
                        end.dev).mac)
                else:
                    transmit = self._link_to(end.host, end.dev)
                impairment = LinkImpairment(link.loss, link.corrupt, link.duplicate, link.reorder, link.delay_ms)
            elif iface.attach.startswith("vxlan:"):
                tunnel = iface.vni, iface.attach.partition(":")[2], None
            elif iface.attach:
                transmit = lambda frames, dev=iface.name: self.kernel_wires[dev].transmit(frames)
            if tunnel is not None:
                transmit = lambda frames, dev=iface.name: self.tunnels[dev].transmit(frames)
            line: list[IrqLine] = []  # made once the device exists; an IRQ needs a driver anyway
            device = self.devices[iface.name] = NetDevice(
                ctx.host, iface.name, iface.mac, rings, raise_irq=lambda cause, line=line: line[0].raise_irq(cause),
                transmit=transmit, impairment=impairment, mib=self.mib)
            line.append(IrqLine(irq_path(ctx.run_id, ctx.host, iface.name), on_connect=device.enable_irq,
                                on_unmask=device.enable_irq, on_doorbell=device.doorbell))
            self.irq_lines[iface.name] = line[0]
            if tunnel is not None:
                vni, remote, macs = tunnel
                self.tunnels[iface.name] = self._vxlan_socket().add(
                    vni, self._tunnel_receiver(device, own_sampling=macs is None), remote, macs=macs)
            elif iface.attach:
                self.kernel_wires[iface.name] = self._attach(iface.attach, device)
        if self.vxlan is not None:
            self.vxlan.start()

    def _receiver(self, device: NetDevice):
        """What frames off a wire whose other end is the kernel go through: DMA'd into the RX
        ring, each traced as the process's sampler says (a share, the first few a second, the
        flows `pktpath trace` names)."""
        receive = self._tunnel_receiver(device, own_sampling=True)
        return lambda frames: receive([(f, None) for f in frames])

    def _tunnel_receiver(self, device: NetDevice, own_sampling: bool):
        """Frames off a tunnel, each with the trace context a pktpath peer sent (as off a local
        link), or from the kernel, sampled here."""
        def receive(items) -> None:
            sample = sampler() if own_sampling else None
            frames = []
            for data, context in items:
                f = skbuff_pb2.Frame()
                if context is not None:
                    try:
                        f.ParseFromString(context)
                    except DecodeError:
                        self.mib.inc("Vxlan", "TraceContextErrors")
                        f.Clear()
                elif sample is not None:
                    f.sampled = sample(frame_flow(data) if sample.flows else None)
                f.data = data
                frames.append(f)
            device.receive(frames)
        return receive

    def _vxlan_socket(self) -> VxlanSocket:
        """The host's tunnel endpoint: UDP 4789 on its machine's address (every address in a
        container, or when the host has no `at`)."""
        if self.vxlan is None:
            at = self.ctx.addrs.at(self.ctx.host)
            local = "0.0.0.0" if not at or os.environ.get("PKTPATH_LISTEN_ALL") else at
            try:
                self.vxlan = VxlanSocket((socket.gethostbyname(local), IANA_VXLAN_UDP_PORT), self.mib)
            except OSError as exc:
                raise RuntimeError(f"{self.ctx.host}: cannot open its VXLAN endpoint {local}:{IANA_VXLAN_UDP_PORT}: "
                                   f"{exc.strerror or exc}") from None
        return self.vxlan

    def _attach(self, spec: str, device: NetDevice) -> KernelWire:
        """The kernel's end of device's wire, reading already."""
        try:
            return attach(spec, self._receiver(device))
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
        if self.vxlan is not None:
            counters.groups.add(name="VxlanSocket", values={"TxErrors": self.vxlan.tx_errors,
                                                             "RxErrors": self.vxlan.rx_errors})
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
        if self.vxlan is not None:
            self.vxlan.close()


def build(ctx) -> NicServicer:
    return NicServicer(ctx)
