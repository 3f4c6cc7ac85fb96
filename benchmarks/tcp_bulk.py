"""Bulk TCP goodput from A to B through both stacks, and connection set-up time.

    python benchmarks/tcp_bulk.py [--megabytes 10] [--connects 20] [--sndbuf 0] [--topology default]

The default topology as local processes: a sender on A writes --megabytes
through its socket API (sendall), a reader on B drains its accepted socket;
the bytes cross A's socket, L4, L3, L2, softirq and NIC, the link, and B's six
layers (twelve layer services). Goodput is the bytes the reader got over the
time from the first send to the last byte read, with 1 % of the packets traced
(--sample; OTEL_TRACES_SAMPLER_ARG for the services). Set-up time is connect()
returning on A for --connects connections made one after another (the
handshake through both stacks plus the client's gRPC call). --sndbuf sets
SO_SNDBUF on the sender (0: the default, tcp_wmem[1] = 16 KiB, which pktpath
does not autotune).
"""

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc
from google.protobuf import empty_pb2

from pktpath.client import SHUT_WR, SO_SNDBUF, SOCK_STREAM, SOL_SOCKET, SocketApi
from pktpath.rpc import l4_pb2_grpc
from pktpath.supervisor import Supervisor
from pktpath.topology import load
from pktpath.trace import SAMPLER_ARG

from rx_path import cpu_seconds

PORT = 5201  # iperf3's


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def goodput(a: SocketApi, b: SocketApi, nbytes: int, sndbuf: int) -> float:
    data = os.urandom(nbytes)
    got = [0]
    with b.socket(SOCK_STREAM) as srv, a.socket(SOCK_STREAM) as cli:
        srv.bind(("0.0.0.0", PORT))
        srv.listen(1)
        if sndbuf:
            cli.setsockopt(SOL_SOCKET, SO_SNDBUF, sndbuf)
        cli.connect(("10.0.0.2", PORT), timeout=10)
        conn, _ = srv.accept(timeout=10)
        done = threading.Event()

        def read():
            while chunk := conn.recv(1 << 20, timeout=60):
                got[0] += len(chunk)
            done.set()

        threading.Thread(target=read, daemon=True).start()
        t0 = time.perf_counter()
        cli.sendall(data)
        cli.shutdown(SHUT_WR)
        done.wait(600)
        elapsed = time.perf_counter() - t0
        conn.close()
    if got[0] != nbytes:
        raise RuntimeError(f"the reader got {got[0]} of {nbytes} bytes")
    return nbytes / elapsed / 1e6


def connect_times(a: SocketApi, b: SocketApi, n: int) -> list[float]:
    times = []
    with b.socket(SOCK_STREAM) as srv:
        srv.bind(("0.0.0.0", PORT + 1))
        srv.listen(n)
        for _ in range(n):
            with a.socket(SOCK_STREAM) as cli:
                t0 = time.perf_counter()
                cli.connect(("10.0.0.2", PORT + 1), timeout=10)
                times.append((time.perf_counter() - t0) * 1e3)
                conn, _ = srv.accept(timeout=10)
                conn.close()
    return times


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--megabytes", type=float, default=10.0)
    ap.add_argument("--connects", type=int, default=20)
    ap.add_argument("--sndbuf", type=int, default=0, help="SO_SNDBUF for the sender (0: the default)")
    ap.add_argument("--sample", type=float, default=0.01, help="the share of packets traced (default 0.01)")
    ap.add_argument("--topology", default="default", help="a built-in topology or a file (default: default)")
    ap.add_argument("--base-port", type=int, default=48000)
    args = ap.parse_args()
    print(f"cpus: {os.cpu_count()}, python {sys.version.split()[0]}, grpcio {grpc.__version__}")
    logs = tempfile.TemporaryDirectory(prefix="pktpath-bench-")
    # trace 1 % of the packets, as a deployment would (every one, the default, costs more)
    env = {**os.environ, SAMPLER_ARG: str(args.sample)}
    sup = Supervisor(load(args.topology), args.base_port, log_dir=Path(logs.name), env=env)
    sup.start(timeout=60)
    try:
        a, b = (SocketApi(sup.addrs.target(h, "socket")) for h in ("A", "B"))
        setup = connect_times(a, b, args.connects)
        pids = {f"{svc.host}/{svc.layer}" if svc.host else svc.layer: svc.proc.pid for svc in sup.services}
        cpu0 = {name: cpu_seconds(pid) for name, pid in pids.items()}
        mbps = goodput(a, b, int(args.megabytes * 1e6), args.sndbuf)
        cpu = {name: cpu_seconds(pid) - cpu0[name] for name, pid in pids.items()}
        l4 = l4_pb2_grpc.L4Stub(sup.addrs.channel("A", "l4"))
        tcp = {g.name: dict(g.values) for g in l4.GetCounters(empty_pb2.Empty(), timeout=5).groups}.get("Tcp", {})
        print(f"connection set-up (connect() on A), {args.connects} in a row: p50 {percentile(setup, 0.5):.1f} ms, "
              f"p99 {percentile(setup, 0.99):.1f} ms")
        print(f"bulk TCP A -> B over {args.topology}, {args.megabytes:g} MB, SO_SNDBUF {args.sndbuf or 'default'}, "
              f"{args.sample:.0%} traced: {mbps:.2f} MB/s "
              f"(A: OutSegs {tcp.get('OutSegs', 0)}, RetransSegs {tcp.get('RetransSegs', 0)})")
        print("CPU seconds during the transfer: " + ", ".join(f"{name} {s:.2f}" for name, s in cpu.items()))
        print("target (issue #5): >= 10 MB/s now, 50 MB/s the goal")
    finally:
        sup.stop()
        logs.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
