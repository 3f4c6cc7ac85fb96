"""The L2 service of one host: Ethernet, ARP and the neighbour table (services/l2/layer.py)
over gRPC.

Servicer for pktpath.v1.L2: NetifReceiveSkb is softirq's way up (one message
per NAPI poll), NeighOutput is L3's way down; the neighbour table and captures.
"""

import threading

import grpc
from google.protobuf import empty_pb2

from pktpath.pb import l2_pb2
from pktpath.rpc import l2_pb2_grpc
from pktpath.services.l2.layer import L2
from pktpath.taps import stream
from pktpath.wire.addr import ip_from_str, ip_to_str, mac_from_str, mac_to_str
from pktpath.wire.errors import SanityError

NEIGH_TICK_S = 0.1


class L2Servicer(L2, l2_pb2_grpc.L2Servicer):
    def __init__(self, ctx) -> None:
        self.ctx = ctx
        super().__init__(ctx.host, ctx.topology.host(ctx.host), ctx.hop)
        self._stop = threading.Event()
        self._timer = threading.Thread(target=self._neigh_timer, name="neigh-timer", daemon=True)
        self._timer.start()

    def _neigh_timer(self) -> None:
        while not self._stop.wait(NEIGH_TICK_S):
            self.link.neigh.tick()

    def GetNeighbours(self, request, context):
        table = l2_pb2.NeighTable()
        for n in sorted(self.link.neigh.entries(), key=lambda n: (n.dev, n.ip)):
            table.entries.add(dev=n.dev, dst=ip_to_str(n.ip), lladdr=mac_to_str(n.lladdr) if n.lladdr else "",
                              state=n.state)
        return table

    def _neighbour_args(self, request, context) -> tuple[str, int]:
        if request.dev not in self.link.ifaces:
            context.abort(grpc.StatusCode.NOT_FOUND, f"{self.ctx.host} has no interface {request.dev!r}")
        try:
            return request.dev, ip_from_str(request.dst)
        except SanityError as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))

    def NeighAdd(self, request, context):
        dev, ip = self._neighbour_args(request, context)
        try:
            lladdr = mac_from_str(request.lladdr)
        except SanityError as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        self.link.neigh.add(dev, ip, lladdr)
        return empty_pb2.Empty()

    def NeighDel(self, request, context):
        dev, ip = self._neighbour_args(request, context)
        if not self.link.neigh.delete(dev, ip):
            context.abort(grpc.StatusCode.NOT_FOUND, f"no neighbour {request.dst} on {dev}")
        return empty_pb2.Empty()

    def Capture(self, request, context):
        """An AF_PACKET socket's view: batches of frames until the caller cancels."""
        if request.dev and request.dev not in self.link.ifaces:
            context.abort(grpc.StatusCode.NOT_FOUND, f"{self.ctx.host} has no interface {request.dev!r}")
        cap = self.taps.open(request.dev, request.snaplen)
        try:
            yield from stream(cap, lambda: context.is_active() and not self._stop.is_set())
        finally:
            self.taps.close(cap)

    def GetCounters(self, request, context):
        counters = self.mib.to_proto()
        counters.groups.add(name="arp_cache", values=self.link.neigh.stats)
        return counters

    def close(self) -> None:
        self._stop.set()
        super().close()


def build(ctx) -> L2Servicer:
    return L2Servicer(ctx)
