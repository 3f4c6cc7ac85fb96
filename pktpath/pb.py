"""The generated protobuf message modules, and the guard on protobuf's backend.

The modules are compiled from protos/pktpath/v1 by the install (setup.py). Only the
messages: the layers' logic and the one-process stack (pktpath.drill) load no gRPC;
the stubs and servicers are pktpath.rpc's.
pktpath moves every packet through protobuf, and the pure-Python backend is
15-50x slower than upb: a service on it would be too slow to mean anything, so
start-up refuses it (require_upb) instead of silently crawling.
"""

from google.protobuf.internal import api_implementation

from pktpath.v1 import (  # noqa: F401  (re-exported)
    l2_pb2,
    l3_pb2,
    l4_pb2,
    nic_pb2,
    orchestrator_pb2,
    skbuff_pb2,
    socket_pb2,
    softirq_pb2,
    trace_pb2,
)


class SlowProtobufBackend(RuntimeError):
    pass


def name_of(enum, value: int) -> str:
    """An enum value's name, or its number when this build does not know it (a record from
    a newer peer, or a bad one): shown, never fatal."""
    try:
        return enum.Name(value)
    except ValueError:
        return str(value)


def require_upb() -> None:
    """Refuse to run on anything but protobuf's upb backend."""
    backend = api_implementation.Type()
    if backend != "upb":
        raise SlowProtobufBackend(
            f"protobuf is using its {backend!r} backend; pktpath needs 'upb', which is "
            "15-50x faster per message. Unset PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION and "
            "install a protobuf wheel built for this platform (pip install --force-reinstall "
            "--only-binary=:all: protobuf)."
        )
