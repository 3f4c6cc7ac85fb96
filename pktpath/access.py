"""Who may call what: administrative calls need the run's admin token, as Linux's need
CAP_NET_ADMIN (or CAP_NET_RAW to capture).

Every service of a run listens on loopback, where any local user can reach it. What a
program may do on Linux without privilege stays open: the socket API (pktpath.v1.Socket's
calls, as socket(2) and friends are) and read-only queries (routes, addresses, neighbours,
counters, socket lists, the orchestrator's packets, health), as `ip route`, `ss` and
/proc/net are. Everything else needs the token: the hops between layers (a frame put on
the wire, an skb handed to IP), `Inject`, netfilter rules, routes, neighbours, sampling,
captures. A method not named in OPEN needs it too, so a new RPC is closed until someone
decides otherwise.

The token is made at the run's start, 0600 in its private runtime directory
(pktpath.config.ensure_token); the run's owner's commands read it from there and send it
as `authorization: Bearer <token>`; compose's containers share it on the volume only they
mount. A call without it is PERMISSION_DENIED, and counted.
"""

import hmac

import grpc

from pktpath.config import AUTHORIZATION
from pktpath.counters import PROCESS

OPEN = frozenset(
    [f"/pktpath.v1.Socket/{m}" for m in (
        "Attach", "Prlimit", "Poll", "Socket", "Bind", "Connect", "Listen", "Accept", "Sendto", "Recvfrom",
        "Recvmmsg", "Shutdown", "Close", "Getsockname", "Getpeername", "Setsockopt", "Getsockopt", "Ioctl",
        "ListSockets", "GetCounters")]
    + [f"/pktpath.v1.Nic/{m}" for m in ("GetRingParam", "GetStats", "GetNetem", "GetCounters")]
    + [f"/pktpath.v1.Softirq/{m}" for m in ("GetSoftnetStat", "GetFeatures", "GetQdisc", "GetCounters")]
    + [f"/pktpath.v1.L2/{m}" for m in ("GetNeighbours", "GetCounters")]
    + [f"/pktpath.v1.L3/{m}" for m in ("IpRouteOutput", "GetRoutes", "GetAddrs", "GetRules", "GetCounters")]
    + [f"/pktpath.v1.L4/{m}" for m in ("GetTcpSockets", "TcpGetInfo", "GetCounters")]
    + [f"/pktpath.v1.Orchestrator/{m}" for m in (
        "GetTopology", "QueryPackets", "WatchEvents", "GetSampling", "GetCounters")]
    + ["/pktpath.v1.Trace/GetFinished"]
    + [f"/grpc.health.v1.Health/{m}" for m in ("Check", "Watch")]
)


def is_open(method: str) -> bool:
    return method in OPEN or method.startswith("/grpc.reflection.")


def _denial(method: str) -> str:
    name = method.rsplit("/", 1)[-1]
    return (f"{name} is an administrative call: it needs the run's admin token, which only the user who "
            f"started the run can read (sent as '{AUTHORIZATION}: Bearer <token>')")


class _Check:
    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}".encode()

    def allowed(self, details: grpc.HandlerCallDetails) -> bool:
        if is_open(details.method):
            return True
        for key, value in details.invocation_metadata or ():
            if key == AUTHORIZATION:
                given = value.encode() if isinstance(value, str) else value
                return hmac.compare_digest(given, self._expected)
        return False


_HANDLER_KINDS = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


def _refusing(handler, behaviour):
    """A handler of the same kind as `handler` (unary or streaming either way) whose behaviour refuses."""
    make = _HANDLER_KINDS[(handler.request_streaming, handler.response_streaming)]
    return make(behaviour, request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)


class AdminInterceptor(grpc.ServerInterceptor, _Check):
    """For a grpc.server: administrative calls without the token are PERMISSION_DENIED."""

    def intercept_service(self, continuation, details):
        handler = continuation(details)
        if handler is None or self.allowed(details):
            return handler
        PROCESS.inc("Access", "AdminDenied")
        message = _denial(details.method)

        def refuse(request, context):
            context.abort(grpc.StatusCode.PERMISSION_DENIED, message)

        return _refusing(handler, refuse)


class AioAdminInterceptor(grpc.aio.ServerInterceptor, _Check):
    """The same for a grpc.aio server."""

    async def intercept_service(self, continuation, details):
        handler = await continuation(details)
        if handler is None or self.allowed(details):
            return handler
        PROCESS.inc("Access", "AdminDenied")
        message = _denial(details.method)

        async def refuse(request, context):
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, message)

        return _refusing(handler, refuse)
