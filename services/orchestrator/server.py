"""The orchestrator service: collects every layer's finished packets, keeps the recent
journeys, exports one trace per packet, answers `pktpath trace` and queries, and
sets what every layer samples.

Collection is a poll of each layer's Trace.GetFinished for what is newer than
last time (a batch per layer per round, `interval` apart), as a reader of the
kernel's trace ring buffer would; a layer that is not up yet, or restarted (its
sequence numbers start again), is simply read again from the start. Records a
layer's full buffer let go before a poll took them are counted (Lost). The
sampling set by SetSampling is pushed to every layer at once and again every
few seconds, so that a layer that restarted gets it back.
"""

import logging
import threading
import time

import grpc
from google.protobuf import empty_pb2

from pktpath.config import LAYERS
from pktpath.counters import Mib
from pktpath.pb import orchestrator_pb2, skbuff_pb2, trace_pb2
from pktpath.rpc import orchestrator_pb2_grpc, trace_pb2_grpc
from pktpath.service import LAYERS as SERVICES
from pktpath.services.orchestrator.dashboard import Dashboard
from pktpath.services.orchestrator.spans import SpanSink, exporter_from_env, trace_id
from pktpath.services.orchestrator.store import PacketStore, Query, to_packet
from pktpath.trace import MAX_RECORD_BYTES, Sampler

log = logging.getLogger(__name__)
POLL_INTERVAL_S = 0.2
MAX_REPLIES_PER_ROUND = 8  # per layer: a busy one cannot starve the others' collection
RESYNC_SAMPLING_S = 5.0
GROUP = "Orchestrator"


class Orchestrator(orchestrator_pb2_grpc.OrchestratorServicer):
    def __init__(self, topology, addrs, *, interval: float = POLL_INTERVAL_S, exporter=None,
                 store: PacketStore | None = None) -> None:
        self.topology = topology
        self.addrs = addrs
        self.mib = Mib()
        self.store = store or PacketStore()
        self.sink = SpanSink(exporter if exporter is not None else exporter_from_env())
        self.interval = interval
        self._stubs = {(h.name, layer): trace_pb2_grpc.TraceStub(addrs.channel(h.name, layer))
                       for h in topology.hosts for layer in LAYERS}
        # Every layer service has GetCounters(Empty) -> Counters under its own service name.
        self._counter_calls = {
            (h.name, layer): addrs.channel(h.name, layer).unary_unary(
                f"/{SERVICES[layer][0]}/GetCounters", request_serializer=empty_pb2.Empty.SerializeToString,
                response_deserializer=skbuff_pb2.Counters.FromString)
            for h in topology.hosts for layer in LAYERS}
        self._marks: dict[tuple[str, str], int] = {}
        self._lost: dict[tuple[str, str], int] = {}
        self.sampling = Sampler().to_proto()  # what every layer started with (the same environment)
        self._sampling_set = False
        self._next_resync = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="collector", daemon=True)
        self._thread.start()
        # The web dashboard, served by the service's HTTP server beside /metrics.
        self.http_routes = Dashboard(
            topology, addrs, self.store, self.layer_counters,
            own_counters=lambda: {g.name: dict(g.values) for g in self.GetCounters(None, None).groups},
            sampling=self._sampling_json).routes()

    # -- collection ----------------------------------------------------------------------
    def _run(self) -> None:
        """The collector, supervised: a round that fails is counted and the next one runs,
        so collection never stops while health says SERVING."""
        while not self._stop.wait(self.interval):
            try:
                self.collect()
                self.export_settled()
                if self._sampling_set and time.monotonic() >= self._next_resync:
                    self._push_sampling()
            except Exception:  # a fault of pktpath's own, not of its input: say where, go on
                self.mib.inc(GROUP, "CollectorFaults")
                log.exception("collector round failed; the next one runs")

    def collect(self) -> int:
        """One round: what every layer finished since the last. Returns the records taken."""
        n = 0
        for key, stub in self._stubs.items():
            for _ in range(MAX_REPLIES_PER_ROUND):  # a reply holds at most 1024: read on while there are more
                try:
                    reply = stub.GetFinished(trace_pb2.FinishedQuery(after_seq=self._marks.get(key, 0)), timeout=2)
                except grpc.RpcError as exc:
                    # not up (yet, or any more): read it again next round; anything else is a fault, counted
                    if exc.code() != grpc.StatusCode.UNAVAILABLE:
                        self.mib.inc(GROUP, "CollectErrors")
                        log.warning("collecting from %s/%s: %s", *key, exc.details())
                    break
                if reply.last_seq < self._marks.get(key, 0):  # the layer restarted: its numbering too
                    self._marks[key] = 0
                    self._lost[key] = 0
                    break
                for record in reply.skbs:
                    if record.ByteSize() > MAX_RECORD_BYTES:  # a layer trims its own: not one of ours
                        self.mib.inc(GROUP, "RecordsRefused")
                        continue
                    self.store.add(record)
                n += len(reply.skbs)
                self._marks[key] = reply.last_seq
                if reply.lost > self._lost.get(key, 0):
                    self.mib.inc(GROUP, "RecordsLost", reply.lost - self._lost.get(key, 0))
                    self._lost[key] = reply.lost
                if not reply.more:
                    break
        self.mib.inc(GROUP, "RecordsCollected", n)
        return n

    def export_settled(self) -> None:
        for j in self.store.settle():
            self.mib.inc(GROUP, "SpansExported", self.sink.export(j))
            self.mib.inc(GROUP, "PacketsSettled")

    def _push_sampling(self) -> list[str]:
        """Every layer's sampler set as self.sampling says; returns those not reached."""
        missed = []
        for (host, layer), stub in self._stubs.items():
            try:
                stub.SetSampler(self.sampling, timeout=2)
            except grpc.RpcError:
                missed.append(f"{host}/{layer}")
        self._next_resync = time.monotonic() + RESYNC_SAMPLING_S
        return missed

    def layer_counters(self, timeout: float = 1.0) -> dict[tuple[str, str], dict | None]:
        """Every layer's counter groups, asked of all at once: {(host, layer): {group: {name: n}}},
        None for a layer that did not answer in time."""
        calls = {key: call.future(empty_pb2.Empty(), timeout=timeout) for key, call in self._counter_calls.items()}
        out: dict[tuple[str, str], dict | None] = {}
        for key, future in calls.items():
            try:
                out[key] = {g.name: dict(g.values) for g in future.result().groups}
            except grpc.RpcError:
                out[key] = None
        return out

    def _sampling_json(self) -> dict:
        s = self.sampling
        out = {f.name: v for f, v in s.ListFields() if f.name not in ("flows", "keep_rate")}
        return {"rate": s.rate, **out, "flows": [{f.name: v for f, v in flow.ListFields()} for flow in s.flows]}

    # -- the API ---------------------------------------------------------------------------
    def ReportPackets(self, request, context):
        for record in request.skbs:
            self.store.add(record)
        self.mib.inc(GROUP, "RecordsReported", len(request.skbs))
        return empty_pb2.Empty()

    def GetTopology(self, request, context):
        return orchestrator_pb2.Topology(endpoints=[
            orchestrator_pb2.Endpoint(host=h.name, layer=layer, target=self.addrs.target(h.name, layer))
            for h in self.topology.hosts for layer in LAYERS])

    def _query(self, request, context) -> Query:
        try:
            return Query(request)
        except ValueError as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))

    def QueryPackets(self, request, context):
        query = self._query(request, context)
        journeys = self.store.query(query)
        return orchestrator_pb2.PacketList(
            packets=[to_packet(j, f"{trace_id(j.origin_host, j.id):032x}") for j in journeys], stored=len(self.store))

    def WatchEvents(self, request, context):
        watch = self.store.watch(self._query(request, context))
        try:
            yield orchestrator_pb2.TraceLine()  # in place: the caller may start its traffic
            while context.is_active() and not self._stop.is_set():
                try:
                    yield watch.lines.get(timeout=0.5)
                except Exception:  # queue.Empty: look again whether the caller is still there
                    continue
        finally:
            self.store.unwatch(watch)

    def SetSampling(self, request, context):
        try:
            Sampler(0.0).set(request)  # checked here first, so no layer gets a bad one
        except ValueError as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        kept = self.sampling if request.keep_rate else request
        sampling = trace_pb2.Sampling(rate=kept.rate, per_second=kept.per_second, flows=request.flows)
        self.sampling, self._sampling_set = sampling, True
        missed = self._push_sampling()
        if missed:
            log.warning("sampling not set on %s (down?): set when they are back", ", ".join(missed))
        return self.sampling

    def GetSampling(self, request, context):
        return self.sampling

    def GetCounters(self, request, context):
        counters = self.mib.to_proto()
        group = counters.groups.add(name="Store")
        group.values["Journeys"] = len(self.store)
        group.values["Evicted"] = self.store.evicted
        if self.sink.exporter is not None:  # what the collector took, or did not
            export = counters.groups.add(name="Export")
            export.values["SpansDelivered"] = self.sink.exporter.delivered
            export.values["SpansFailed"] = self.sink.exporter.failed
        return counters

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.collect()
        self.store.settle_s = 0
        self.export_settled()
        self.sink.close()


def build(ctx) -> Orchestrator:
    return Orchestrator(ctx.topology, ctx.addrs)
