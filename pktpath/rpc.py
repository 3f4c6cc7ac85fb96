"""The gRPC side of pktpath: the generated stubs and servicers, and socket errors as
gRPC statuses, what a client of pktpath's socket API sees.

Kept apart from pktpath.pb (the messages) so that the layers' logic, and the stack
that wires it in one process (pktpath.drill.local), never load gRPC.

Each socket failure keeps its errno: the status code is the closest gRPC one, the
details start with the errno's name and strerror ("ECONNREFUSED: Connection
refused"), and the trailing metadata carries `errno` (the number), so a client can
tell EMSGSIZE from EINVAL although both are INVALID_ARGUMENT, and `detail`, what the
error was about ("from 10.0.1.254: time to live exceeded").
"""

import errno
import functools

import grpc

from pktpath import validate
from pktpath.pb import skbuff_pb2
from pktpath.sockerr import SockError, describe, short_detail
from pktpath.sysctl import SysctlError
from pktpath.v1 import (  # noqa: F401  (re-exported)
    l2_pb2_grpc,
    l3_pb2_grpc,
    l4_pb2_grpc,
    nic_pb2_grpc,
    orchestrator_pb2_grpc,
    socket_pb2_grpc,
    softirq_pb2_grpc,
    trace_pb2_grpc,
)

# errno -> the closest gRPC status
STATUS = {
    errno.EBADF: grpc.StatusCode.NOT_FOUND,
    errno.ENOTSOCK: grpc.StatusCode.NOT_FOUND,
    errno.EINVAL: grpc.StatusCode.INVALID_ARGUMENT,
    errno.EMSGSIZE: grpc.StatusCode.INVALID_ARGUMENT,
    errno.EAFNOSUPPORT: grpc.StatusCode.INVALID_ARGUMENT,
    errno.EPROTONOSUPPORT: grpc.StatusCode.INVALID_ARGUMENT,
    errno.ESOCKTNOSUPPORT: grpc.StatusCode.INVALID_ARGUMENT,
    errno.EADDRNOTAVAIL: grpc.StatusCode.INVALID_ARGUMENT,
    errno.EDESTADDRREQ: grpc.StatusCode.FAILED_PRECONDITION,
    errno.ENOTCONN: grpc.StatusCode.FAILED_PRECONDITION,
    errno.EISCONN: grpc.StatusCode.FAILED_PRECONDITION,
    errno.EPROTO: grpc.StatusCode.FAILED_PRECONDITION,
    errno.EADDRINUSE: grpc.StatusCode.ALREADY_EXISTS,
    errno.EAGAIN: grpc.StatusCode.DEADLINE_EXCEEDED,
    errno.ETIMEDOUT: grpc.StatusCode.DEADLINE_EXCEEDED,
    errno.ECONNREFUSED: grpc.StatusCode.UNAVAILABLE,
    errno.EHOSTUNREACH: grpc.StatusCode.UNAVAILABLE,
    errno.ENETUNREACH: grpc.StatusCode.UNAVAILABLE,
    errno.EHOSTDOWN: grpc.StatusCode.UNAVAILABLE,
    errno.ENONET: grpc.StatusCode.UNAVAILABLE,
    errno.EPERM: grpc.StatusCode.PERMISSION_DENIED,
    errno.EACCES: grpc.StatusCode.PERMISSION_DENIED,
    errno.EOPNOTSUPP: grpc.StatusCode.UNIMPLEMENTED,
    errno.ENOPROTOOPT: grpc.StatusCode.UNIMPLEMENTED,
    errno.ENOBUFS: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errno.EMFILE: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errno.ENFILE: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errno.ESRCH: grpc.StatusCode.FAILED_PRECONDITION,
    errno.EINPROGRESS: grpc.StatusCode.FAILED_PRECONDITION,
    errno.EALREADY: grpc.StatusCode.FAILED_PRECONDITION,
    errno.EPIPE: grpc.StatusCode.FAILED_PRECONDITION,
    errno.ECONNRESET: grpc.StatusCode.UNAVAILABLE,
    errno.ECONNABORTED: grpc.StatusCode.ABORTED,
    errno.ENETDOWN: grpc.StatusCode.UNAVAILABLE,
    errno.EIO: grpc.StatusCode.UNAVAILABLE,
    errno.ENOMEM: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errno.EFAULT: grpc.StatusCode.INVALID_ARGUMENT,
}
# Any other errno: the call failed for the state things are in, and says which errno.
OTHER_STATUS = grpc.StatusCode.FAILED_PRECONDITION


def abort(context, err: int, detail: str = ""):
    """End an RPC with the errno's status; never returns."""
    detail = short_detail(detail)
    context.set_trailing_metadata((("errno", str(err)), ("detail", detail)))
    context.abort(STATUS.get(err, OTHER_STATUS), describe(err, detail))


async def abort_async(context, err: int, detail: str = ""):
    """abort() for a coroutine handler of grpc.aio."""
    detail = short_detail(detail)
    context.set_trailing_metadata((("errno", str(err)), ("detail", detail)))
    await context.abort(STATUS.get(err, OTHER_STATUS), describe(err, detail))


def errno_of(exc: grpc.RpcError) -> int | None:
    """The errno a failed socket call carried, None if it carried none."""
    value = _metadata(exc, "errno")
    return int(value) if value else None


def detail_of(exc: grpc.RpcError) -> str:
    return _metadata(exc, "detail")


def _metadata(exc: grpc.RpcError, name: str) -> str:
    for key, value in exc.trailing_metadata() or ():
        if key == name:
            return value
    return ""


def checked(handler):
    """A gRPC handler whose Invalid ends its call with INVALID_ARGUMENT and that message."""
    @functools.wraps(handler)
    def rpc(self, request, context):
        try:
            return handler(self, request, context)
        except validate.Invalid as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
    return rpc


SYSCTL_STATUS = {"ENOENT": grpc.StatusCode.NOT_FOUND, "EINVAL": grpc.StatusCode.INVALID_ARGUMENT,
                 "EOPNOTSUPP": grpc.StatusCode.UNIMPLEMENTED}


def sysctl_rpc(sysctls, request, context, mib):
    """A layer's Sysctl RPC: read when no value is given, else set; a name pktpath has not,
    a value the knob does not take, or one of a mechanism pktpath lacks ends the call with
    NOT_FOUND, INVALID_ARGUMENT or UNIMPLEMENTED and is counted (Sysctl Refused)."""
    try:
        value = sysctls.set(request.name, request.value) if request.value else sysctls.get(request.name)
    except SysctlError as exc:
        mib.inc("Sysctl", "Refused")
        context.abort(SYSCTL_STATUS[exc.errno_name], str(exc))
    if request.value:
        mib.inc("Sysctl", "Set")
    return skbuff_pb2.SysctlValue(name=request.name.replace("/", "."), value=value)


def errno_status(method):
    """A layer's method as an RPC: the SockError it raises ends the call with its errno."""
    @functools.wraps(method)
    def call(self, request, context):
        try:
            return method(self, request, context)
        except SockError as exc:
            abort(context, exc.errno, exc.detail)
    return call


class ErrnoStub:
    """A stub to a layer whose calls fail as the layer's own methods do: with SockError (the
    errno the status carried, else EIO), so a layer cannot tell a remote peer from one in
    its own process (pktpath/drill/local.py)."""

    def __init__(self, stub) -> None:
        self._stub = stub

    def __getattr__(self, name: str):
        method = getattr(self._stub, name)

        def call(*args, **kwargs):
            try:
                return method(*args, **kwargs)
            except grpc.RpcError as exc:
                raise SockError(errno_of(exc) or errno.EIO, exc.details() or "") from None
        return call
