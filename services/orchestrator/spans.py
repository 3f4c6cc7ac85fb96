"""A packet's journey as OpenTelemetry spans, and where they are exported.

One trace per sampled packet (its id derived from the packet's origin host and
id, so a packet that crosses hosts stays one trace and a retry exports the same
ids): a root span for the whole journey (service `pktpath`) and under it one span
per layer visit, with that layer's own service.name (`pktpath-l3`, ...) and the
host as an attribute. COPY, CLONE, DMA, DROP and FREE are events on the visit's
span, with their bytes, reason, from and to. A clone or a copy (TCP's
transmission clone, a fragment, a GSO segment) links to its parent packet's
root span.

Export follows OpenTelemetry's environment variables: OTEL_TRACES_EXPORTER
("otlp", the default, or "none"), OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT (none set:
nothing is exported, everything else still works), OTEL_EXPORTER_OTLP_[TRACES_]
PROTOCOL ("http/protobuf", the default, or "grpc"), and the exporters' own
(headers, timeout, compression, certificates).
"""

import hashlib
import os

from opentelemetry import trace as otel
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, Status, StatusCode, TraceFlags

from pktpath.pb import name_of, skbuff_pb2
from pktpath.services.orchestrator.journey import Journey

pb = skbuff_pb2
SCOPE = InstrumentationScope("pktpath.orchestrator")
ROOT_SERVICE = "pktpath"
_RESOURCES: dict[str, Resource] = {}


def resource(service: str) -> Resource:
    if service not in _RESOURCES:
        _RESOURCES[service] = Resource.create({"service.name": service, "service.namespace": "pktpath"})
    return _RESOURCES[service]


def trace_id(origin_host: str, packet_id: int) -> int:
    """The packet's trace: 128 bits from its identity, the same on every host."""
    return int.from_bytes(hashlib.blake2b(f"{origin_host}/{packet_id}".encode(), digest_size=16).digest(), "big")


def _span_id(tid: int, n: int) -> int:
    return int.from_bytes(hashlib.blake2b(f"{tid}/{n}".encode(), digest_size=8).digest(), "big") or 1


def _context(tid: int, n: int) -> SpanContext:
    return SpanContext(tid, _span_id(tid, n), is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED))


def _event(e, to_epoch: int) -> Event:
    attrs = {"pktpath.func": e.func, "pktpath.bytes": e.bytes}
    if e.kind == pb.COPY:
        attrs["pktpath.copy.from"], attrs["pktpath.copy.to"] = e.copy_from, e.copy_to
    if e.kind == pb.DROP:
        attrs["pktpath.drop.reason"] = name_of(pb.DropReason, e.reason)
    return Event(name_of(pb.EventKind, e.kind), attrs, timestamp=e.ts_ns + to_epoch)


def packet_spans(j: Journey, to_epoch: int = 0) -> list[ReadableSpan]:
    """The root span and one span per visit; the events' times (since the epoch already:
    skbuff.event_time_ns) moved by to_epoch ns."""
    if not j.events:
        return []
    tid = trace_id(j.origin_host, j.id)
    root = _context(tid, 0)
    outcome, reason = j.outcome()
    flow = str(j.flow) if j.flow else ""
    attrs = {"pktpath.skb.id": f"{j.id:#x}", "pktpath.origin_host": j.origin_host, "pktpath.outcome": outcome}
    if flow:
        attrs["pktpath.flow"] = flow
    if reason:
        attrs["pktpath.drop.reason"] = reason
    links = []
    for kind, parent in (("clone_of", j.clone_of), ("copy_of", j.copy_of)):
        if parent:
            links.append(Link(_context(trace_id(j.origin_host, parent), 0), {"pktpath.link": kind}))
            attrs[f"pktpath.{kind}"] = f"{parent:#x}"
    status = Status(StatusCode.ERROR, reason) if reason else Status(StatusCode.UNSET)
    spans = [ReadableSpan(f"skb {flow or hex(j.id)}", root, None, resource(ROOT_SERVICE), attrs, (), links,
                          otel.SpanKind.INTERNAL, None, status, j.events[0].ts_ns + to_epoch,
                          j.events[-1].ts_ns + to_epoch, SCOPE)]
    for n, v in enumerate(j.visits(), start=1):
        dropped = next((e for e in v.events if e.kind == pb.DROP), None)
        attrs = {"host.name": v.host, "pktpath.layer": v.layer_name, "pktpath.skb.id": f"{j.id:#x}",
                 "pktpath.skb.len": v.length, "code.function": v.func}
        span_status = (Status(StatusCode.ERROR, name_of(pb.DropReason, dropped.reason)) if dropped
                       else Status(StatusCode.UNSET))
        spans.append(ReadableSpan(
            v.func, _context(tid, n), root, resource(f"pktpath-{v.layer_name}"), attrs,
            [_event(e, to_epoch) for e in v.events if e.kind not in (pb.ENTER, pb.EXIT)], (),
            otel.SpanKind.INTERNAL, None, span_status, v.start_ns + to_epoch, max(v.end_ns, v.start_ns + 1) + to_epoch,
            SCOPE))
    return spans


def _env(name: str) -> str:
    """OTEL_EXPORTER_OTLP_TRACES_<name>, else OTEL_EXPORTER_OTLP_<name> (the spec's order)."""
    return os.environ.get(f"OTEL_EXPORTER_OTLP_TRACES_{name}") or os.environ.get(f"OTEL_EXPORTER_OTLP_{name}", "")


def exporter_from_env() -> SpanExporter | None:
    """The OTLP exporter the environment asks for; None when none is configured."""
    if os.environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "none" or not _env("ENDPOINT"):
        return None
    protocol = _env("PROTOCOL") or "http/protobuf"
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        return GrpcExporter()
    if protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

        return HttpExporter()
    raise ValueError(f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r}: pktpath exports grpc or http/protobuf")


class CountingExporter(SpanExporter):
    """The exporter, with what became of each batch counted: delivered, or failed (a
    collector down or absent, as Jaeger may be) -- never lost without a number."""

    def __init__(self, exporter: SpanExporter) -> None:
        self.exporter = exporter
        self.delivered = self.failed = 0

    def export(self, spans) -> SpanExportResult:
        try:
            result = self.exporter.export(spans)
        except Exception:  # an exporter that raises instead of answering FAILURE
            result = SpanExportResult.FAILURE
        if result == SpanExportResult.SUCCESS:
            self.delivered += len(spans)
        else:
            self.failed += len(spans)
        return result

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.exporter.force_flush(timeout_millis)


class SpanSink:
    """Where finished journeys go: a batch processor in front of the exporter (or none).
    Spans handed over and neither delivered nor failed are in the processor's queue,
    or were dropped by it when the collector fell behind."""

    def __init__(self, exporter: SpanExporter | None) -> None:
        self.exporter = CountingExporter(exporter) if exporter is not None else None
        self._processor = BatchSpanProcessor(self.exporter) if exporter is not None else None
        self.exported = 0

    def export(self, journey: Journey) -> int:
        if self._processor is None:
            return 0
        spans = packet_spans(journey)
        for span in spans:
            self._processor.on_end(span)
        self.exported += len(spans)
        return len(spans)

    def flush(self, timeout_ms: int = 5000) -> None:
        if self._processor is not None:
            self._processor.force_flush(timeout_ms)

    def close(self) -> None:
        if self._processor is not None:
            self._processor.shutdown()
