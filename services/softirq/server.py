"""The softirq service (ksoftirqd) of one host: NAPI for every interface, and the qdiscs.

It is the driver side of each NIC: it maps the NIC's rings, connects to the
NIC's interrupt line (request_irq; services/nic/irq.py), polls on each hard
IRQ, and hands each poll's skbs to L2 in one message. DevQueueXmit is L2's way
down.
"""

import logging
import socket
import threading
import time

import grpc

from pktpath import skbuff as s
from pktpath.counters import Mib
from pktpath.hop import batches
from pktpath.config import irq_path
from pktpath.seams import edge, open_tcp_wfree
from pktpath.pb import nic_pb2, skbuff_pb2, softirq_pb2
from pktpath.rpc import nic_pb2_grpc, softirq_pb2_grpc
from pktpath.validate import shown
from pktpath.ring import NicRings
from pktpath.services.nic.irq import DOORBELL, UNMASK
from pktpath.services.softirq.napi import SOFTNET, Napi
from pktpath.services.softirq.qdisc import QDISCS

log = logging.getLogger(__name__)
RETRY_S = 0.2


class SoftirqServicer(softirq_pb2_grpc.SoftirqServicer):
    def __init__(self, ctx) -> None:
        self.ctx = ctx
        self.mib = Mib()
        self._stop = threading.Event()
        self._nic_channel = ctx.addrs.channel(ctx.host, "nic")
        self._nic = nic_pb2_grpc.NicStub(self._nic_channel)
        self.to_l2 = ctx.hop(edge("softirq", "l2"), self.mib)
        self.napis: dict[str, Napi] = {}
        # the qdisc of each device: the topology's at first, kept across a NIC's restart
        self._qdisc = {i.name: i.qdisc for i in ctx.topology.host(ctx.host).interfaces}
        self.to_l4_wfree = open_tcp_wfree("softirq", ctx.host, ctx.hop, self.mib, paced=self._paces)
        # ethtool -K's GRO per device: the topology's at first, kept across a NIC's restart
        self._gro = {i.name: i.gro for i in ctx.topology.host(ctx.host).interfaces}
        self._irq_lines: dict[str, socket.socket] = {}
        self._ready = {}
        for iface in ctx.topology.host(ctx.host).interfaces:
            self._ready[iface.name] = threading.Event()
            threading.Thread(target=self._irq_thread, args=(iface.name,), name=f"irq-{iface.name}",
                             daemon=True).start()

    def _attach(self, dev: str) -> Napi:
        """Map the NIC's rings (probe): retried until the NIC answers."""
        while not self._stop.is_set():
            try:
                param = self._nic.GetRingParam(nic_pb2.DevRequest(dev=dev), timeout=2, wait_for_ready=True)
                rings = NicRings.attach(param.shm_name)
                break
            except (grpc.RpcError, FileNotFoundError) as exc:
                log.info("waiting for the NIC's %s rings: %s", dev, exc)
                time.sleep(RETRY_S)
        else:
            raise RuntimeError("stopped")
        napi = Napi(self.ctx.host, dev, rings, deliver=self.to_l2.put, gro=self._gro[dev],
                    enable_irq=lambda: self._signal(dev, UNMASK), doorbell=lambda: self._signal(dev, DOORBELL),
                    mib=self.mib)
        if self._qdisc[dev] != napi.qdisc.kind:
            napi.replace_qdisc(self._qdisc[dev])
        return napi

    def _signal(self, dev: str, what: bytes) -> None:
        """Write the unmask or the doorbell on the device's interrupt line."""
        line = self._irq_lines.get(dev)
        if line is not None:
            try:
                line.sendall(what)
            except OSError:
                pass  # the NIC is gone; the IRQ thread reconnects, and the NIC unmasks on connect

    def _connect_irq(self, dev: str) -> socket.socket | None:
        """request_irq(): connect to the device's interrupt line, retrying until it is up."""
        path = irq_path(self.ctx.run_id, self.ctx.host, dev)
        while not self._stop.is_set():
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(path)
                return sock
            except OSError:
                sock.close()
                self._stop.wait(RETRY_S)
        return None

    def _irq_thread(self, dev: str) -> None:
        """The hard-IRQ handler: each interrupt schedules this device's NAPI poll. When the
        line closes, the NIC went away (a restart makes new rings): the driver lets go of
        the old rings and probes again, as a driver does after a device reset."""
        while not self._stop.is_set():
            try:
                napi = self.napis[dev] = self._attach(dev)
            except RuntimeError:
                return
            line = self._irq_lines[dev] = self._connect_irq(dev)
            if line is None:
                return
            self._ready[dev].set()
            while True:
                try:
                    irqs = line.recv(256)
                except OSError:
                    irqs = b""
                if not irqs or self._stop.is_set():
                    break
                self.mib.inc(SOFTNET, "irqs", len(irqs))
                napi.net_rx_action()  # any cause: the poll cleans TX and takes RX
            self._irq_lines.pop(dev, None)
            line.close()
            if not self._stop.is_set():
                log.warning("interrupt line of %s closed (the NIC went away): probing it again", dev)
                napi.close()
                self.mib.inc(SOFTNET, "resets")

    def wait_ready(self, timeout: float) -> bool:
        """Ready once every interface's rings are mapped and its interrupt line connected."""
        deadline = time.monotonic() + timeout
        return all(event.wait(max(0.0, deadline - time.monotonic())) for event in self._ready.values())

    def _napi(self, dev: str) -> Napi | None:
        """The device's NAPI context, once its rings are mapped; None for no such device."""
        if dev not in self._ready or not self._ready[dev].wait(5):
            return None
        napi = self.napis.get(dev)
        return None if napi is None or napi.closed else napi

    def _paces(self, skb) -> bool:
        """Whether the qdisc skb went through paces its socket (fq_classify: SK_PACING_FQ)."""
        napi = self.napis.get(skb.dev)
        return napi is not None and napi.qdisc.paces

    def GetQdisc(self, request, context):
        if request.dev not in self._qdisc:
            context.abort(grpc.StatusCode.NOT_FOUND, f"{self.ctx.host} has no interface {shown(request.dev)}")
        napi = self.napis.get(request.dev)
        if napi is None:  # not up yet: what it will have
            qdisc = QDISCS[self._qdisc[request.dev]]()
            return softirq_pb2.Qdisc(dev=request.dev, kind=qdisc.kind, line=qdisc.describe())
        qdisc = napi.qdisc
        return softirq_pb2.Qdisc(dev=request.dev, kind=qdisc.kind, line=qdisc.describe(),
                                 backlog=napi.backlog(), throttled=getattr(qdisc, "stats", {}).get("throttled", 0))

    def ReplaceQdisc(self, request, context):
        """tc qdisc replace dev DEV root KIND: what the old qdisc held is dropped (qdisc_graft)."""
        if request.dev not in self._qdisc:
            context.abort(grpc.StatusCode.NOT_FOUND, f"{self.ctx.host} has no interface {shown(request.dev)}")
        if request.kind not in QDISCS:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f"no qdisc {shown(request.kind)}: pktpath has {', '.join(QDISCS)}")
        self._qdisc[request.dev] = request.kind
        napi = self.napis.get(request.dev)
        if napi is not None:
            napi.replace_qdisc(request.kind)
        return self.GetQdisc(softirq_pb2.Qdisc(dev=request.dev), context)

    def GetFeatures(self, request, context):
        if request.dev not in self._gro:
            context.abort(grpc.StatusCode.NOT_FOUND, f"{self.ctx.host} has no interface {shown(request.dev)}")
        return softirq_pb2.Features(dev=request.dev, gro=self._gro[request.dev])

    def SetFeatures(self, request, context):
        """ethtool -K DEV gro on|off: napi_gro_receive merges a poll's segments, or not, from now on."""
        if request.dev not in self._gro:
            context.abort(grpc.StatusCode.NOT_FOUND, f"{self.ctx.host} has no interface {shown(request.dev)}")
        if request.HasField("gro"):
            self._gro[request.dev] = request.gro
            napi = self.napis.get(request.dev)
            if napi is not None:
                napi.gro = request.gro
        return self.GetFeatures(request, context)

    @batches(skbuff_pb2.SkBuffBatch)
    def DevQueueXmit(self, request, context):
        """__dev_queue_xmit(): queue L2's frames on their device's qdisc and run it."""
        queued = dropped = 0
        by_dev: dict[str, list] = {}
        for skb in s.from_protos(request.skbs, self.mib):
            by_dev.setdefault(skb.dev, []).append(skb)
        for dev, skbs in by_dev.items():
            napi = self._napi(dev)
            if napi is None:  # no such device, or it is not up: dev_queue_xmit drops
                for skb in skbs:
                    s.kfree_skb_reason(skb, skbuff_pb2.SKB_DROP_REASON_DEV_READY, skbuff_pb2.LAYER_SOFTIRQ,
                                       self.ctx.host, "__dev_queue_xmit")
                self.mib.drop(skbuff_pb2.SKB_DROP_REASON_DEV_READY, len(skbs))
                dropped += len(skbs)
                continue
            q, d = napi.dev_queue_xmit(skbs)
            queued, dropped = queued + q, dropped + d
        return s.disposition(queued, dropped)

    def GetSoftnetStat(self, request, context):
        m = self.mib
        return softirq_pb2.SoftnetStat(processed=m.get(SOFTNET, "processed"), dropped=m.get(SOFTNET, "dropped"),
                                       time_squeeze=m.get(SOFTNET, "time_squeeze"))

    def GetCounters(self, request, context):
        return self.mib.to_proto()

    def close(self) -> None:
        self._stop.set()
        for line in list(self._irq_lines.values()):
            try:
                line.shutdown(socket.SHUT_RDWR)  # wakes the IRQ thread out of its recv
            except OSError:
                pass
        self.to_l2.close()
        s.set_destructor(self.ctx.host, None)
        self.to_l4_wfree.close()
        self._nic_channel.close()
        for napi in self.napis.values():
            napi.close()  # waits for a poll in progress: the rings stay mapped while it reads them


def build(ctx) -> SoftirqServicer:
    return SoftirqServicer(ctx)
