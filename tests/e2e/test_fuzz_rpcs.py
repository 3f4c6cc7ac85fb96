"""Every RPC of every service, fed what hypothesis makes of every field of its request
(issue #16), against a running topology: each answer is a status a client can act on —
never UNKNOWN or INTERNAL (a handler that raised), never a long or echoed detail — and
afterwards every service still serves, logged no traceback, and holds bounded memory.

The requests are built from the protos' descriptors, so a new RPC or field is fuzzed
without a line here. Values lean to the edges a boundary must check: 0, -1, the type's
limits, 65535/65536, NaN and infinities, NUL and non-ASCII text, 70 kB strings, enum
numbers no build knows, skbs whose offsets lie. Calls carry the run's admin token (the
guard is tested elsewhere) and, for the socket API, a process's key with a UDP and a TCP
socket open on fds 3 and 4.
"""

import collections
import os
from pathlib import Path

import grpc
import pytest
from conftest import start_topology
from e2ekit import stub
from google.protobuf import message_factory
from google.protobuf.descriptor import FieldDescriptor as F
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pktpath.pb import l2_pb2, l3_pb2, l4_pb2, nic_pb2, orchestrator_pb2, socket_pb2, softirq_pb2, trace_pb2
from pktpath.services.socket.server import TASK_KEY
from pktpath.rpc import errno_of

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("PKTPATH_FUZZ_EXAMPLES", "40"))  # per RPC
CALL_TIMEOUT_S = 2.0
WAITING_TIMEOUT_S = 0.3  # a call that waits by design is cut short sooner: it answers or waits, both fine
MAX_DETAIL = 300
# What no bad request may get: a handler that raised (UNKNOWN), a broken invariant
# (INTERNAL, DATA_LOSS), or a method nobody wrote (UNIMPLEMENTED without an errno: a socket
# call's EOPNOTSUPP is UNIMPLEMENTED too, and says so).
FORBIDDEN = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL, grpc.StatusCode.DATA_LOSS}
MODULES = (nic_pb2, softirq_pb2, l2_pb2, l3_pb2, l4_pb2, socket_pb2, orchestrator_pb2, trace_pb2)
LAYER_OF = {"Nic": "nic", "Softirq": "softirq", "L2": "l2", "L3": "l3", "L4": "l4", "Socket": "socket",
            "Orchestrator": "orchestrator", "Trace": "l3"}  # Trace: every layer serves it; L3's is fuzzed

# The calls that wait by design (for data, a connection, an event): only they may run out of time.
WAITING = {"/pktpath.v1.Socket/Poll", "/pktpath.v1.Socket/Recvfrom", "/pktpath.v1.Socket/Recvmmsg",
           "/pktpath.v1.Socket/Accept", "/pktpath.v1.Socket/Connect", "/pktpath.v1.Socket/Sendto",
           "/pktpath.v1.Orchestrator/WatchEvents", "/pktpath.v1.Trace/Capture", "/pktpath.v1.L2/Capture"}

METHODS = [(service.name, method) for module in MODULES for service in module.DESCRIPTOR.services_by_name.values()
           for method in service.methods]

_INT_RANGES = {
    F.TYPE_INT32: (-2**31, 2**31 - 1), F.TYPE_SINT32: (-2**31, 2**31 - 1), F.TYPE_SFIXED32: (-2**31, 2**31 - 1),
    F.TYPE_UINT32: (0, 2**32 - 1), F.TYPE_FIXED32: (0, 2**32 - 1),
    F.TYPE_INT64: (-2**63, 2**63 - 1), F.TYPE_SINT64: (-2**63, 2**63 - 1), F.TYPE_SFIXED64: (-2**63, 2**63 - 1),
    F.TYPE_UINT64: (0, 2**64 - 1), F.TYPE_FIXED64: (0, 2**64 - 1),
}
_EDGES = [0, 1, -1, 3, 4, 7, 60, 1500, 65535, 65536, 2**16 + 3, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**63 - 1, -2**31]
_TEXT = ["", "10.0.0.1", "10.0.0.2", "0.0.0.0", "255.255.255.255", "10.0.0.0/24", "10.9.0.0/16", "eth0",
         "A", "B", "l3", "lo", "10.0.0.2\x00", "١٠.0.0.2", "é" * 20, "x" * 70_000, "%s%n", "../../etc"]


def _int(lo: int, hi: int):
    return st.one_of(st.integers(0, 16), st.sampled_from([v for v in _EDGES if lo <= v <= hi]), st.integers(lo, hi))


# Fields whose useful values are few: drawn from them more often than chance would.
_HINTS = {"fd": [3, 4, -1, 0, 1023, 2**31 - 1], "dev": ["eth0", "lo", "", "eth9", "x" * 70_000],
          "host": ["A", "B", "", "Z"]}


def _scalar(field):
    t = field.type
    hint = _HINTS.get(field.name)
    if hint is not None:
        fits = [v for v in hint if isinstance(v, str) == (t == F.TYPE_STRING)
                and (t == F.TYPE_STRING or _INT_RANGES[t][0] <= v <= _INT_RANGES[t][1])]
        if fits:
            return st.one_of(st.sampled_from(fits), _plain(field))
    return _plain(field)


def _plain(field):
    t = field.type
    if t in _INT_RANGES:
        return _int(*_INT_RANGES[t])
    if t == F.TYPE_BOOL:
        return st.booleans()
    if t in (F.TYPE_DOUBLE, F.TYPE_FLOAT):
        return st.floats(allow_nan=True, allow_infinity=True, width=64 if t == F.TYPE_DOUBLE else 32)
    if t == F.TYPE_STRING:
        return st.one_of(st.sampled_from(_TEXT), st.text(max_size=40))
    if t == F.TYPE_BYTES:
        return st.one_of(st.binary(max_size=80), st.binary(min_size=1400, max_size=1600),
                         st.just(b"\xff" * 70_000))
    if t == F.TYPE_ENUM:
        return st.one_of(st.sampled_from([v.number for v in field.enum_type.values]),
                         st.integers(-2**31, 2**31 - 1))
    raise AssertionError(f"field type {t} of {field.full_name}")


def _value(field, depth: int):
    return _message(field.message_type, depth + 1) if field.type == F.TYPE_MESSAGE else _scalar(field)


@st.composite
def _built(draw, desc, depth: int):
    cls = message_factory.GetMessageClass(desc)
    msg = cls()
    for field in desc.fields:
        if depth > 3 and field.type == F.TYPE_MESSAGE:
            continue  # SkBuff in a batch in a request is deep enough
        if not draw(st.booleans()):
            continue  # absent: the proto default
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            key_f, val_f = field.message_type.fields_by_name["key"], field.message_type.fields_by_name["value"]
            entries = draw(st.dictionaries(_scalar(key_f), _value(val_f, depth), max_size=3))
            target = getattr(msg, field.name)
            for k, v in entries.items():
                if val_f.type == F.TYPE_MESSAGE:
                    target[k].CopyFrom(v)
                else:
                    target[k] = v
        elif field.is_repeated:
            items = draw(st.lists(_value(field, depth), max_size=3))
            target = getattr(msg, field.name)
            if field.type == F.TYPE_MESSAGE:
                for item in items:
                    target.add().CopyFrom(item)
            else:
                target.extend(items)
        elif field.type == F.TYPE_MESSAGE:
            getattr(msg, field.name).CopyFrom(draw(_value(field, depth)))
        else:
            setattr(msg, field.name, draw(_scalar(field)))
    return msg


def _message(desc, depth: int = 0):
    return _built(desc, depth)


# -- the running topology -------------------------------------------------------------------
@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory):
    """The default topology; a process of B's socket layer with a UDP and a TCP socket; the
    tally of answers; each service's memory before."""
    sup = start_topology("default", tmp_path_factory)
    sock = stub(sup, "B", "socket", lambda ch: ch)  # B's socket layer's channel, with the token
    attach = sock.unary_stream("/pktpath.v1.Socket/Attach",
                               request_serializer=socket_pb2.AttachRequest.SerializeToString,
                               response_deserializer=socket_pb2.AttachReply.FromString)(
        socket_pb2.AttachRequest(pid=os.getpid(), comm="fuzz"))
    task = ((TASK_KEY, next(attach).key),)
    for type_ in (2, 1):  # SOCK_DGRAM on fd 3, SOCK_STREAM on fd 4
        sock.unary_unary("/pktpath.v1.Socket/Socket", request_serializer=socket_pb2.SocketRequest.SerializeToString,
                         response_deserializer=socket_pb2.SocketReply.FromString)(
            socket_pb2.SocketRequest(family=2, type=type_), metadata=task, timeout=5)
    rss = {svc.proc.pid: rss_kib(svc.proc.pid) for svc in sup.services}
    tally: collections.Counter = collections.Counter()
    yield sup, task, tally, rss
    attach.cancel()
    print(f"\nfuzzed {sum(tally.values())} requests over {len(METHODS)} RPCs: "
          + ", ".join(f"{code} {n}" for code, n in tally.most_common()))
    statuses = sup.stop()
    assert all(rc == 0 for _, _, rc in statuses), statuses


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _invoke(sup, task, service: str, method, request) -> grpc.StatusCode:
    """Call the method with the request (a stream of it twice, where the method takes a
    stream); a streamed answer is read for its first message. Returns the status."""
    host = "" if service == "Orchestrator" else "B"
    ch = stub(sup, host, LAYER_OF[service], lambda c: c)
    path = f"/{method.containing_service.full_name}/{method.name}"
    metadata = task if service == "Socket" else None
    kind = {(False, False): ch.unary_unary, (False, True): ch.unary_stream,
            (True, False): ch.stream_unary, (True, True): ch.stream_stream}[
        (method.client_streaming, method.server_streaming)]
    call = kind(path, request_serializer=lambda m: m.SerializeToString())
    argument = iter([request, request]) if method.client_streaming else request
    timeout = WAITING_TIMEOUT_S if path in WAITING else CALL_TIMEOUT_S
    try:
        if method.server_streaming:
            replies = call(argument, timeout=timeout, metadata=metadata)
            try:
                next(replies, None)
            finally:
                replies.cancel()
        else:
            call(argument, timeout=timeout, metadata=metadata)
    except grpc.RpcError as exc:
        code, details = exc.code(), exc.details() or ""
        if os.environ.get("PKTPATH_FUZZ_SHOW"):
            print(f"{path} {code.name} {details[:100]!r}")
        assert code != grpc.StatusCode.DEADLINE_EXCEEDED or path in WAITING, (path, "hung", request)
        if code not in (grpc.StatusCode.CANCELLED, grpc.StatusCode.DEADLINE_EXCEEDED):
            assert code not in FORBIDDEN, (path, code, details[:500], request)
            assert code != grpc.StatusCode.UNIMPLEMENTED or errno_of(exc), (path, details[:500])
            assert len(details) <= MAX_DETAIL and "Traceback" not in details, (path, code, details[:500])
        return code
    return grpc.StatusCode.OK


@pytest.mark.parametrize("service, method", METHODS, ids=[f"{s}.{m.name}" for s, m in METHODS])
def test_no_request_gets_unknown_or_internal(fuzzed, service, method):
    sup, task, tally, _ = fuzzed

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.function_scoped_fixture])
    @given(request=_message(method.input_type))
    def fuzz(request):
        tally[_invoke(sup, task, service, method, request).name] += 1

    fuzz()


def test_after_all_of_it_every_service_serves_logged_no_traceback_and_kept_its_memory(fuzzed):
    sup, _, tally, rss = fuzzed
    assert sum(tally.values()) >= len(METHODS)  # (a request with no field can be drawn only once)
    for svc in sup.services:
        assert svc.proc.poll() is None, f"{svc.name} died"
        reply = stub(sup, svc.host, svc.layer, health_pb2_grpc.HealthStub).Check(
            health_pb2.HealthCheckRequest(), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING, svc.name
        grew = rss_kib(svc.proc.pid) - rss[svc.proc.pid]
        assert grew < 150_000, f"{svc.name} grew by {grew} KiB"  # nothing like the 4 GiB one request once cost
    for log in sup.log_dir.iterdir():
        text = log.read_text(errors="replace")
        assert "Traceback" not in text, f"{log.name}:\n{text[-3000:]}"
