"""The L2 service of one host: Ethernet, ARP and the neighbour table (services/l2/layer.py)
over gRPC.

Servicer for pktpath.v1.L2: NetifReceiveSkb is softirq's way up (one message
per NAPI poll), NeighOutput is L3's way down, NeighUpdate what L3's neighbour
discovery learned; the neighbour tables (ip neigh: ARP's and IPv6's) and captures.
"""

import threading

import grpc
from google.protobuf import empty_pb2

from pktpath.pb import l2_pb2
from pktpath.rpc import l2_pb2_grpc
from pktpath.services.l2.layer import L2
from pktpath.taps import stream
from pktpath.wire.addr import ip6_from_str, ip6_to_str, ip_from_str, ip_to_str, mac_from_str, mac_to_str
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
            self.link.nd.tick()

    def GetNeighbours(self, request, context):
        """Both tables, ARP's then IPv6's (ip neigh: -4 and -6 pick one)."""
        table = l2_pb2.NeighTable()
        for neigh, to_str in ((self.link.neigh, ip_to_str), (self.link.nd, ip6_to_str)):
            for n in sorted(neigh.entries(), key=lambda n: (n.dev, n.ip)):
                table.entries.add(dev=n.dev, dst=to_str(n.ip), lladdr=mac_to_str(n.lladdr) if n.lladdr else "",
                                  state=n.state, router=n.router)
        return table

    def _neighbour_args(self, request, context):
        """(the table, dev, address) an ip neigh add/del names: IPv6's for an IPv6 address."""
        if request.dev not in self.link.ifaces:
            context.abort(grpc.StatusCode.NOT_FOUND, f"{self.ctx.host} has no interface {request.dev!r}")
        try:
            if ":" in request.dst:
                return self.link.nd, request.dev, ip6_from_str(request.dst)
            return self.link.neigh, request.dev, ip_from_str(request.dst)
        except SanityError as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))

    def NeighAdd(self, request, context):
        table, dev, ip = self._neighbour_args(request, context)
        try:
            lladdr = mac_from_str(request.lladdr)
        except SanityError as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        table.add(dev, ip, lladdr)
        return empty_pb2.Empty()

    def NeighDel(self, request, context):
        table, dev, ip = self._neighbour_args(request, context)
        if not table.delete(dev, ip):
            context.abort(grpc.StatusCode.NOT_FOUND, f"no neighbour {request.dst} on {dev}")
        return empty_pb2.Empty()

    def NeighUpdate(self, request, context):
        """L3's neigh_update, its fields checked first (INVALID_ARGUMENT, NOT_FOUND)."""
        if request.dev not in self.link.ifaces:
            context.abort(grpc.StatusCode.NOT_FOUND, f"{self.ctx.host} has no interface {request.dev!r}")
        if len(request.dst) != 16 or len(request.lladdr) not in (0, 6) or \
                request.state not in (l2_pb2.NUD_REACHABLE, l2_pb2.NUD_STALE):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "NeighUpdate wants a 16-byte dst, a 6-byte lladdr or "
                          "none, and the state NUD_REACHABLE or NUD_STALE")
        return super().NeighUpdate(request, context)

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
        counters.groups.add(name="ndisc_cache", values=self.link.nd.stats)
        return counters

    def close(self) -> None:
        self._stop.set()
        super().close()


def build(ctx) -> L2Servicer:
    return L2Servicer(ctx)
