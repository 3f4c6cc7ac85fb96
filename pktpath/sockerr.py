"""Socket errors as gRPC statuses: what a client of pktpath's socket API sees.

Each failure keeps its errno: the status code is the closest gRPC one, the
details start with the errno's name and strerror ("ECONNREFUSED: Connection
refused"), and the trailing metadata carries `errno` (the number), so a
client can tell EMSGSIZE from EINVAL although both are INVALID_ARGUMENT, and
`detail`, what the error was about ("from 10.0.1.254: time to live exceeded").
"""

import errno
import os

import grpc

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
MAX_ERRNO = 4095  # include/linux/err.h: an errno is 1..MAX_ERRNO


class SockError(Exception):
    """A syscall's failure inside a service: an errno and what it was about."""

    def __init__(self, err: int, detail: str = "") -> None:
        super().__init__(describe(err, detail))
        self.errno = err
        self.detail = detail


MAX_DETAIL = 200  # characters: a detail never carries a large input back (metadata is capped at 8 kB)


def describe(err: int, detail: str = "") -> str:
    text = f"{errno.errorcode.get(err, str(err))}: {os.strerror(err)}"
    return f"{text} ({detail})" if detail else text


def _short(detail: str) -> str:
    """What metadata can carry: ASCII, and not much of it."""
    detail = detail.encode("ascii", "backslashreplace").decode()
    return detail if len(detail) <= MAX_DETAIL else detail[:MAX_DETAIL] + "..."


def abort(context, err: int, detail: str = ""):
    """End an RPC with the errno's status; never returns."""
    detail = _short(detail)
    context.set_trailing_metadata((("errno", str(err)), ("detail", detail)))
    context.abort(STATUS.get(err, OTHER_STATUS), describe(err, detail))


async def abort_async(context, err: int, detail: str = ""):
    """abort() for a coroutine handler of grpc.aio."""
    detail = _short(detail)
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
