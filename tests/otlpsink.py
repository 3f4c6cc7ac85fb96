"""Local OTLP receivers, HTTP and gRPC, standing in for a collector such as Jaeger:
the spans exported to them, decoded from the real OTLP protobuf, kept as plain records."""

import threading
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc


@dataclass
class Span:
    trace_id: str
    span_id: str
    parent: str
    name: str
    service: str
    start: int
    end: int
    attributes: dict
    events: list = field(default_factory=list)   # (name, attributes)
    links: list = field(default_factory=list)    # (trace_id, span_id, attributes)
    error: str = ""


def _value(v):
    return getattr(v, v.WhichOneof("value")) if v.WhichOneof("value") else None


def _attrs(kvs) -> dict:
    return {kv.key: _value(kv.value) for kv in kvs}


class Sink:
    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.requests = 0
        self.bytes = 0
        self._cond = threading.Condition()

    def take(self, request: "trace_service_pb2.ExportTraceServiceRequest") -> None:
        spans = []
        for rs in request.resource_spans:
            service = _attrs(rs.resource.attributes).get("service.name", "")
            for ss in rs.scope_spans:
                for s in ss.spans:
                    spans.append(Span(s.trace_id.hex(), s.span_id.hex(), s.parent_span_id.hex(), s.name, service,
                                      s.start_time_unix_nano, s.end_time_unix_nano, _attrs(s.attributes),
                                      [(e.name, _attrs(e.attributes)) for e in s.events],
                                      [(lk.trace_id.hex(), lk.span_id.hex(), _attrs(lk.attributes)) for lk in s.links],
                                      s.status.message if s.status.code == 2 else ""))
        with self._cond:
            self.spans += spans
            self.requests += 1
            self._cond.notify_all()

    def wait_for(self, predicate, timeout: float = 20.0) -> list[Span]:
        """The spans once predicate(spans) holds; AssertionError after timeout."""
        with self._cond:
            if not self._cond.wait_for(lambda: predicate(self.spans), timeout):
                raise AssertionError(f"no such spans after {timeout} s; have {len(self.spans)}")
            return list(self.spans)

    def trace(self, trace_id: str) -> list[Span]:
        with self._cond:
            return sorted((s for s in self.spans if s.trace_id == trace_id), key=lambda s: (s.start, s.parent != ""))


class HttpSink(Sink):
    """OTLP/HTTP: POST /v1/traces with an ExportTraceServiceRequest. count_only: take the
    requests and count them and their bytes, decoding nothing (a benchmark's collector)."""

    def __init__(self, count_only: bool = False) -> None:
        super().__init__()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path != "/v1/traces":
                    self.send_response(404)
                    self.end_headers()
                    return
                if count_only:
                    with sink._cond:
                        sink.requests += 1
                        sink.bytes += len(body)
                else:
                    sink.take(trace_service_pb2.ExportTraceServiceRequest.FromString(body))
                reply = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class GrpcSink(Sink, trace_service_pb2_grpc.TraceServiceServicer):
    """OTLP/gRPC: opentelemetry.proto.collector.trace.v1.TraceService/Export."""

    def __init__(self) -> None:
        super().__init__()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(self, self._server)
        port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()
        self.endpoint = f"http://127.0.0.1:{port}"

    def Export(self, request, context):
        self.take(request)
        return trace_service_pb2.ExportTraceServiceResponse()

    def close(self) -> None:
        self._server.stop(0)
