"""Bootstrap shared by every layer service: gRPC server, health, clean shutdown.

A service process serves its layer's gRPC API and the standard gRPC health
service (grpc.health.v1), prints one line `<layer> listening on <host>:<port>`
once it accepts calls (port 0 picks a free port; a supervisor reads the line),
reports SERVING once its servicer is ready (wait_ready(), if it has one),
and on SIGTERM or SIGINT reports NOT_SERVING, lets calls in flight finish
within a grace period, and exits 0.
"""

import asyncio
import contextlib
import importlib
import os
import signal
import sys
import threading
from concurrent import futures
from dataclasses import dataclass
from typing import Callable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from pktpath import skbuff, taps
from pktpath.access import AdminInterceptor, AioAdminInterceptor
from pktpath.config import (  # noqa: F401 — channel: re-exported
    CHANNEL_OPTIONS, Addresses, RuntimeDirError, TlsError, channel, ensure_token, hop_path, runtime_dir,
    server_credentials,
)
from pktpath.counters import PROCESS
from pktpath.hop import Hop, HopListener, hop_handlers
from pktpath.metrics import MetricsServer, render
from pktpath.seams import Edge
from pktpath.topology import Topology
from pktpath.trace import FinishedPackets, sampler
from pktpath.pb import require_upb
from pktpath.rpc import (
    l2_pb2_grpc, l3_pb2_grpc, l4_pb2_grpc, nic_pb2_grpc, orchestrator_pb2_grpc, socket_pb2_grpc, softirq_pb2_grpc,
    trace_pb2_grpc,
)

SHUTDOWN_GRACE_S = 2.0
READY_TIMEOUT_S = 60.0



# A service whose clients are processes (the socket API) notices a client that vanished
# without closing its connection (a dead peer, a cut network) by pinging it.
CLIENT_KEEPALIVE = [
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
]


class AioServer:
    """A grpc.aio server on an event loop of its own thread, driven like grpc.server.

    For a servicer whose calls wait (the socket layer's recv, accept, poll): its
    coroutine handlers wait on the loop without holding a thread, its plain methods
    run on the pool (grpc.aio's migration_thread_pool), as does every other
    servicer added (health, Trace)."""

    def __init__(self, pool: futures.ThreadPoolExecutor, options=(), interceptors=()) -> None:
        self.loop = asyncio.new_event_loop()
        self.loop.set_default_executor(pool)
        self._thread = threading.Thread(target=self.loop.run_forever, name="aio", daemon=True)
        self._thread.start()

        async def make():
            return grpc.aio.server(migration_thread_pool=pool, options=list(options),
                                   interceptors=list(interceptors))

        self._server = self._run(make())

    def _run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def __getattr__(self, name):  # add_generic_rpc_handlers, add_insecure_port, ...
        return getattr(self._server, name)

    def start(self) -> None:
        self._run(self._server.start())

    def stop(self, grace: float) -> threading.Event:
        self._run(self._server.stop(grace))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        done = threading.Event()
        done.set()
        return done


class Terminate(Exception):
    """SIGTERM or SIGINT arrived."""


_terminating: list[int] = []  # not an Event: its set() takes a lock the interrupted thread may hold


def _raise_terminate(signum, frame):
    # Once: a second signal (the supervisor's SIGTERM on top of a Ctrl-C) must not raise again
    # inside the clean-up the first one started.
    if not _terminating:
        _terminating.append(signum)
        raise Terminate(signum)


@contextlib.contextmanager
def terminate_on_signal():
    """SIGTERM and SIGINT raise Terminate in the main thread for the duration of the
    block, and are ignored after it (a second Ctrl-C must not break the clean-up).

    Raising beats the usual handler that sets a threading.Event: the handler runs
    on the main thread, and when the signal lands while that thread holds the
    Event's lock on its way into wait(), set() blocks forever on the same lock."""
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _raise_terminate)
    try:
        yield
    except Terminate:
        pass
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, signal.SIG_IGN)


def sleep_until_terminated() -> None:
    """Block until a signal raises Terminate (inside terminate_on_signal()).

    The kernel may deliver the signal to any thread of the process (gRPC's among
    them), which does not interrupt a sleep in the main thread; Python would run
    the handler only when that sleep ended. signal.set_wakeup_fd makes the C-level
    handler, whichever thread it runs on, write to a pipe the main thread reads."""
    r, w = os.pipe()
    os.set_blocking(w, False)
    old = signal.set_wakeup_fd(w, warn_on_full_buffer=False)
    try:
        while True:
            os.read(r, 512)  # returns when a signal arrives; its handler raises right after
    finally:
        signal.set_wakeup_fd(old)
        os.close(r)
        os.close(w)



# layer -> (proto service name, add_*_to_server, draft servicer). The drafts are
# the generated bases: every RPC answers UNIMPLEMENTED. A layer's own servicer
# comes from pktpath.services.<layer>.server.build(ctx).
LAYERS: dict[str, tuple[str, Callable, type]] = {
    "nic": ("pktpath.v1.Nic", nic_pb2_grpc.add_NicServicer_to_server, nic_pb2_grpc.NicServicer),
    "softirq": ("pktpath.v1.Softirq", softirq_pb2_grpc.add_SoftirqServicer_to_server,
                softirq_pb2_grpc.SoftirqServicer),
    "l2": ("pktpath.v1.L2", l2_pb2_grpc.add_L2Servicer_to_server, l2_pb2_grpc.L2Servicer),
    "l3": ("pktpath.v1.L3", l3_pb2_grpc.add_L3Servicer_to_server, l3_pb2_grpc.L3Servicer),
    "l4": ("pktpath.v1.L4", l4_pb2_grpc.add_L4Servicer_to_server, l4_pb2_grpc.L4Servicer),
    "socket": ("pktpath.v1.Socket", socket_pb2_grpc.add_SocketServicer_to_server,
               socket_pb2_grpc.SocketServicer),
    "orchestrator": ("pktpath.v1.Orchestrator", orchestrator_pb2_grpc.add_OrchestratorServicer_to_server,
                     orchestrator_pb2_grpc.OrchestratorServicer),
}


class TraceServicer(trace_pb2_grpc.TraceServicer):
    """pktpath.v1.Trace, which every layer serves: its finished sampled packets, the
    sampler's settings, and the tap at its entry."""

    def __init__(self, finished: FinishedPackets) -> None:
        self.finished = finished

    def GetFinished(self, request, context):
        return self.finished.after(request.after_seq)

    def SetSampler(self, request, context):
        try:
            sampler().set(request)
        except ValueError as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        return sampler().to_proto()

    def Capture(self, request, context):
        """The tap at this process's layer entry (pktpath/taps.py), until the caller cancels."""
        cap = taps.open_layer_capture(request.snaplen)
        try:
            yield from taps.stream(cap, context.is_active)
        finally:
            taps.close_layer_capture(cap)


@dataclass(frozen=True)
class ServiceContext:
    """What a layer service of one host needs to know about the world."""

    host: str
    topology: Topology
    addrs: Addresses
    run_id: str

    def hop(self, edge: Edge, mib, *, host: str | None = None, name: str | None = None, encode=None) -> Hop:
        """The Hop for `edge` out of this host's layer (pktpath/seams.py): to this host's
        next layer, or for the link, to `host`'s NIC."""
        return Hop(name or edge.name, hop_path(self.run_id, host or self.host, edge.dst), edge.method,
                   encode or edge.encode, mib, bypass=not edge.coalesce)


def build_servicer(layer: str, ctx: ServiceContext | None):
    """The layer's own servicer (pktpath.services.<layer>.server.build) when it has
    one and a host context is given; the generated draft otherwise."""
    if ctx is not None:
        try:
            module = importlib.import_module(f"pktpath.services.{layer}.server")
        except ModuleNotFoundError as exc:
            if exc.name != f"pktpath.services.{layer}.server":
                raise
        else:
            return module.build(ctx)
    return LAYERS[layer][2]()


def _metrics(host: str, layer: str, servicer) -> str:
    mib = getattr(servicer, "mib", None)
    netdevs = getattr(servicer, "netdev_stats", lambda: {})()
    return render(host, layer, mib.snapshot() if mib is not None else PROCESS.snapshot(), netdevs)


PR_SET_PDEATHSIG = 1


def end_with_supervisor() -> None:
    """A service `pktpath up` (or a test's Supervisor) started gets SIGTERM when that
    process dies, however it dies (prctl PR_SET_PDEATHSIG): the services run in sessions
    of their own, and a supervisor killed with -9 would otherwise leave them running."""
    supervisor = os.environ.get("PKTPATH_SUPERVISOR_PID")
    if not supervisor or not sys.platform.startswith("linux"):
        return
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != int(supervisor):  # it died before the prctl: nobody will signal us
        os.kill(os.getpid(), signal.SIGTERM)


def serve(layer: str, listen: str = "127.0.0.1:0", ctx: ServiceContext | None = None, *, workers: int = 16) -> int:
    """Run `layer`'s service until SIGTERM/SIGINT; returns the exit status."""
    require_upb()
    end_with_supervisor()
    token = None  # a service of no run (a draft) has no administrative calls to guard
    if ctx is not None:
        try:
            runtime_dir(ctx.run_id)  # made private, or refused if someone else's
            token = ensure_token(ctx.run_id)
        except (RuntimeDirError, OSError) as exc:
            print(f"{layer}: {exc}", file=sys.stderr, flush=True)
            return 1
    service_name, add_to_server, _ = LAYERS[layer]
    servicer = build_servicer(layer, ctx)
    hops = None
    if ctx is not None and hop_handlers(servicer):
        hops = HopListener(hop_path(ctx.run_id, ctx.host, layer), servicer)  # the data path in
    pool = futures.ThreadPoolExecutor(max_workers=getattr(servicer, "workers", workers), thread_name_prefix=layer)
    # no SO_REUSEPORT: a second service on the same port must fail, not share it unnoticed
    options = [("grpc.so_reuseport", 0)]
    aio = getattr(servicer, "aio", False)
    guard = [(AioAdminInterceptor if aio else AdminInterceptor)(token)] if token else []
    server = (AioServer(pool, CLIENT_KEEPALIVE + options, guard) if aio
              else grpc.server(pool, options=options, interceptors=guard))
    add_to_server(servicer, server)
    finished = FinishedPackets()  # every layer keeps its sampled packets' last records
    skbuff.set_finish_hook(finished.add)
    metrics = None
    if ctx is not None:
        mib = getattr(servicer, "mib", None)
        if mib is not None:
            mib.attach(PROCESS)  # the movements and latency of all its packets, in GetCounters too
        metrics = MetricsServer(ctx.addrs.http(ctx.host, layer), lambda: _metrics(ctx.host, layer, servicer),
                                getattr(servicer, "http_routes", None))
    trace_pb2_grpc.add_TraceServicer_to_server(TraceServicer(finished), server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    try:
        credentials = server_credentials()
    except TlsError as exc:
        print(f"{layer}: {exc}", file=sys.stderr, flush=True)
        return 1
    port = server.add_secure_port(listen, credentials) if credentials else server.add_insecure_port(listen)
    if port == 0:
        print(f"{layer}: cannot listen on {listen}", file=sys.stderr)
        return 1
    server.start()

    def report_serving() -> None:
        # A servicer that needs its peers first (softirq maps the NIC's rings) says
        # when it is ready: until then health answers NOT_SERVING.
        wait_ready = getattr(servicer, "wait_ready", None)
        if wait_ready is not None and not wait_ready(READY_TIMEOUT_S):
            print(f"{layer}: not ready after {READY_TIMEOUT_S:.0f} s", file=sys.stderr, flush=True)
            return
        for name in ("", service_name):
            health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)

    for name in ("", service_name):
        health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    threading.Thread(target=report_serving, name="ready", daemon=True).start()

    host = listen.rsplit(":", 1)[0]
    with terminate_on_signal():
        print(f"{layer} listening on {host}:{port}", flush=True)
        sleep_until_terminated()
    health_servicer.enter_graceful_shutdown()
    stopping = getattr(servicer, "stopping", None)
    if stopping is not None:
        stopping()  # e.g. L4: the calls that end now end because it stops, not because a peer died
    server.stop(SHUTDOWN_GRACE_S).wait()
    if hops is not None:
        hops.close()
    if metrics is not None:
        metrics.close()
    close = getattr(servicer, "close", None)
    if close is not None:
        close()  # e.g. the NIC unlinks its shared memory
    return 0
