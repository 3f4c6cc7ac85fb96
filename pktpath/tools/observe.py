"""`pktpath trace` (pwru's habits) and `pktpath drops` (dropwatch's), over gRPC.

trace asks the orchestrator to trace every packet a filter matches (on top of
the sampled share), prints one line per event of each such packet as the
orchestrator collects it, and takes the filter away again when it stops. drops
reads every layer's drop counters (kept for every packet, sampled or not) each
interval and prints what changed, by reason and where; given a filter, it watches
the matching packets' events as trace does and prints each drop among them.
"""

import time
from collections import Counter
from contextlib import closing
from typing import Callable, Iterable, Iterator

import grpc
from google.protobuf import empty_pb2

from pktpath.pb import orchestrator_pb2, trace_pb2
from pktpath.rpc import orchestrator_pb2_grpc

DROPWATCH_HEADER = "Initializing null lookup method\ndropwatch> start\nWaiting for drops... (Ctrl-C stops)"
TRACE_HEADER = f"{'SKB':<18} {'HOST':<5} {'LAYER':<8} {'EVENT':<6} {'FUNC':<28} {'DELTA':>10} {'LEN':>6}  TUPLE"


def trace_line(line: "orchestrator_pb2.TraceLine") -> str:
    delta = f"+{line.delta_ns / 1000:.1f}us" if line.delta_ns else "0"
    detail = f"  ({line.detail})" if line.detail else ""
    return (f"{line.id:#018x} {line.host:<5} {line.layer:<8} {line.kind:<6} {line.func:<28} {delta:>10} "
            f"{line.len:>6}  {line.tuple}{detail}")


def watched(orch: orchestrator_pb2_grpc.OrchestratorStub, flt: "trace_pb2.PacketFilter",
            timeout: float | None = None) -> Iterator["orchestrator_pb2.TraceLine"]:
    """Every event of the packets flt matches, as the orchestrator collects them, until the
    timeout or Ctrl-C. flt is one of the sampling's flow filters (every such packet is
    traced, on top of the sampled share) from the return, once the watch is in place,
    until the iterator ends or is closed."""
    before = orch.GetSampling(empty_pb2.Empty(), timeout=5)
    stream = orch.WatchEvents(orchestrator_pb2.PacketQuery(filter=flt), timeout=timeout)
    next(stream)  # the watch is in place before any packet is traced for it
    orch.SetSampling(trace_pb2.Sampling(keep_rate=True, flows=list(before.flows) + [flt]), timeout=5)

    def events():
        try:
            yield from stream
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
                raise
        except KeyboardInterrupt:
            pass
        finally:
            stream.cancel()
            orch.SetSampling(trace_pb2.Sampling(keep_rate=True, flows=before.flows), timeout=5)

    return events()


def _print(events: Iterator, fmt: Callable, out: Callable[[str], None], count: int,
           keep: Callable = lambda event: True) -> int:
    n = 0
    with closing(events):  # its finally (the sampling put back) runs when we stop early
        for event in events:
            if keep(event):
                out(fmt(event))
                n += 1
                if count and n >= count:
                    break
    return n


def trace(orch: orchestrator_pb2_grpc.OrchestratorStub, flt: "trace_pb2.PacketFilter",
          out: Callable[[str], None], *, count: int = 0, timeout: float | None = None) -> int:
    """Print the events of the packets flt matches until count lines (0: no end), the
    timeout or Ctrl-C; returns the lines printed."""
    events = watched(orch, flt, timeout)
    out(TRACE_HEADER)
    return _print(events, trace_line, out, count)


def drop_line(line: "orchestrator_pb2.TraceLine") -> str:
    return f"1 drops at {line.host}/{line.layer} ({line.detail}) in {line.func}: {line.tuple}"


def filtered_drops(orch: orchestrator_pb2_grpc.OrchestratorStub, flt: "trace_pb2.PacketFilter",
                   out: Callable[[str], None], *, count: int = 0, timeout: float | None = None,
                   host: str | None = None) -> int:
    """dropwatch for the packets flt matches: a line per dropped packet, with its reason,
    place, kernel function and tuple (only host's, if given); returns the drops printed."""
    events = watched(orch, flt, timeout)
    out(DROPWATCH_HEADER)
    return _print(events, drop_line, out, count,
                  keep=lambda event: event.kind == "DROP" and (host is None or event.host == host))


def drop_counts(views: Iterable) -> Counter:
    """(host, layer, reason) -> drops so far, from every layer of every host."""
    counts: Counter = Counter()
    for view in views:
        for layer, groups in view.layer_counters().items():
            for reason, n in groups.get("Drops", {}).items():
                counts[view.host, layer, reason] += n
    return counts


def drops(views: list, out: Callable[[str], None], *, interval: float = 1.0, rounds: int = 0) -> Counter:
    """dropwatch: every interval, the drops since the last look, by reason and place;
    rounds (0: until Ctrl-C). Returns the drops seen in all."""
    last = drop_counts(views)
    seen: Counter = Counter()
    out(DROPWATCH_HEADER)
    done = 0
    try:
        while not rounds or done < rounds:
            time.sleep(interval)
            now = drop_counts(views)
            for (host, layer, reason), n in sorted((now - last).items()):
                out(f"{n} drops at {host}/{layer} ({reason})")
            seen += now - last
            last, done = now, done + 1
    except KeyboardInterrupt:
        pass
    return seen
