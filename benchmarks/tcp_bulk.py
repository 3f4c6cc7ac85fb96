"""Bulk TCP goodput from A to B through both stacks, and connection set-up time.

    python benchmarks/tcp_bulk.py [--megabytes 10] [--runs 3] [--connects 20] [--sndbuf 0] [--topology default]

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

Before and after, in the same run: --runs transfers on a topology started
without TCP Small Queues and byte queue limits (PKTPATH_WITHOUT=tsq,bql: how
pktpath was before it had them; not a Linux setting), then --runs on one with
them, as Linux has them, then --runs with fq as A's root qdisc (tc qdisc replace
dev eth0 root fq), pacing TCP at its pacing rate; then --runs as "after" over IPv6 (B's first IPv6
address, once both hosts passed DAD). Each transfer prints its goodput, A's OutSegs and
RetransSegs, the drops on both hosts by reason (the loss: a receiver's RX ring
overflowing is SKB_DROP_REASON_FULL_RING) and the services' CPU seconds.
"""

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc
from rx_path import cpu_seconds, wait_for_dad

from pktpath.client import AF_INET, AF_INET6, SHUT_WR, SO_SNDBUF, SOCK_STREAM, SOL_SOCKET, SocketApi
from pktpath.pb import softirq_pb2
from pktpath.supervisor import Supervisor
from pktpath.sysctl import MECHANISMS, WITHOUT
from pktpath.tools.apps import HostView
from pktpath.topology import load
from pktpath.trace import SAMPLER_ARG

PORT = 5201  # iperf3's


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def goodput(a: SocketApi, b: SocketApi, nbytes: int, sndbuf: int, dst: str, family: int = AF_INET) -> float:
    data = os.urandom(nbytes)
    got = [0]
    with b.socket(SOCK_STREAM, family=family) as srv, a.socket(SOCK_STREAM, family=family) as cli:
        srv.bind(("::" if family == AF_INET6 else "0.0.0.0", PORT))
        srv.listen(1)
        if sndbuf:
            cli.setsockopt(SOL_SOCKET, SO_SNDBUF, sndbuf)
        cli.connect((dst, PORT), timeout=10)
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


def connect_times(a: SocketApi, b: SocketApi, n: int, dst: str, family: int = AF_INET) -> list[float]:
    times = []
    with b.socket(SOCK_STREAM, family=family) as srv:
        srv.bind(("::" if family == AF_INET6 else "0.0.0.0", PORT + 1))
        srv.listen(n)
        for _ in range(n):
            with a.socket(SOCK_STREAM, family=family) as cli:
                t0 = time.perf_counter()
                cli.connect((dst, PORT + 1), timeout=10)
                times.append((time.perf_counter() - t0) * 1e3)
                conn, _ = srv.accept(timeout=10)
                conn.close()
    return times


def counted(view: HostView, group: str) -> dict[str, int]:
    return view.counters().get(group, {})


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: n - before.get(k, 0) for k, n in after.items() if n - before.get(k, 0)}


def transfers(args, env: dict, without: str, qdisc: str, family: int = AF_INET) -> list[dict]:
    """One topology with PKTPATH_WITHOUT=`without` and `qdisc` at A's eth0, --runs transfers
    on it over IPv4 or IPv6 (to B's first address of the family); each one's figures."""
    logs = tempfile.TemporaryDirectory(prefix="pktpath-bench-")
    topology = load(args.topology)
    iface = topology.host("B").interfaces[0]
    dst = str(iface.addr6[0].ip if family == AF_INET6 else iface.addr.ip)
    sup = Supervisor(topology, args.base_port, log_dir=Path(logs.name), env={**env, WITHOUT: without})
    sup.start(timeout=60)
    try:
        if family == AF_INET6:
            wait_for_dad(sup, "A")
            wait_for_dad(sup, "B")
        a, b = (SocketApi(sup.addrs.target(h, "socket")) for h in ("A", "B"))
        views = [HostView(sup.addrs, h) for h in ("A", "B")]
        views[0].stub["softirq"].ReplaceQdisc(softirq_pb2.Qdisc(dev="eth0", kind=qdisc), timeout=5)
        out = []
        if args.connects:
            setup = connect_times(a, b, args.connects, dst, family)
            print(f"  connection set-up (connect() on A), {args.connects} in a row: "
                  f"p50 {percentile(setup, 0.5):.1f} ms, p99 {percentile(setup, 0.99):.1f} ms")
        pids = {f"{svc.host}/{svc.layer}" if svc.host else svc.layer: svc.proc.pid for svc in sup.services}
        for _ in range(args.runs):
            cpu0 = {name: cpu_seconds(pid) for name, pid in pids.items()}
            tcp0, drops0 = counted(views[0], "Tcp"), [counted(v, "Drops") for v in views]
            mbps = goodput(a, b, int(args.megabytes * 1e6), args.sndbuf, dst, family)
            tcp = delta(counted(views[0], "Tcp"), tcp0)
            drops = {f"{v.host} {k.removeprefix('SKB_DROP_REASON_')}": n
                     for v, d0 in zip(views, drops0) for k, n in delta(counted(v, "Drops"), d0).items()}
            cpu = sum(cpu_seconds(pid) - cpu0[name] for name, pid in pids.items())
            out.append(dict(mbps=mbps, out=tcp.get("OutSegs", 0), retrans=tcp.get("RetransSegs", 0), drops=drops,
                            cpu=cpu))
            print(f"  {mbps:6.2f} MB/s, OutSegs {out[-1]['out']}, RetransSegs {out[-1]['retrans']}, "
                  f"dropped {drops or 'none'}, CPU {cpu:.2f} s")
        return out
    finally:
        sup.stop()
        logs.cleanup()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--megabytes", type=float, default=10.0)
    ap.add_argument("--runs", type=int, default=3, help="transfers for each of before and after (default 3)")
    ap.add_argument("--connects", type=int, default=20)
    ap.add_argument("--sndbuf", type=int, default=0, help="SO_SNDBUF for the sender (0: the default)")
    ap.add_argument("--sample", type=float, default=0.01, help="the share of packets traced (default 0.01)")
    ap.add_argument("--topology", default="default", help="a built-in topology or a file (default: default)")
    ap.add_argument("--base-port", type=int, default=48000)
    args = ap.parse_args()
    if args.runs < 1 or args.megabytes <= 0:
        ap.error("--runs must be at least 1 and --megabytes more than 0")
    print(f"cpus: {os.cpu_count()}, python {sys.version.split()[0]}, grpcio {grpc.__version__}")
    print(f"bulk TCP A -> B over {args.topology}, {args.megabytes:g} MB a transfer, "
          f"SO_SNDBUF {args.sndbuf or 'default'}, {args.sample:.0%} traced")
    # trace 1 % of the packets, as a deployment would (every one, the default, costs more)
    env = {**os.environ, SAMPLER_ARG: str(args.sample)}
    results = {}
    for label, without, qdisc, family in (
            ("before: no TCP Small Queues, no byte queue limits", ",".join(MECHANISMS), "pfifo_fast", AF_INET),
            ("after: TCP Small Queues and byte queue limits, as Linux", "", "pfifo_fast", AF_INET),
            ("fq: the same, and fq at A's eth0 pacing TCP", "", "fq", AF_INET),
            ("IPv6: as after, over IPv6", "", "pfifo_fast", AF_INET6)):
        print(label)
        results[label] = transfers(args, env, without, qdisc, family)
    print("summary (median of the runs; loss: segments dropped on the way over segments sent)")
    for label, runs in results.items():
        mbps = statistics.median(r["mbps"] for r in runs)
        loss = statistics.median(100 * sum(r["drops"].values()) / max(r["out"], 1) for r in runs)
        retrans = statistics.median(r["retrans"] for r in runs)
        print(f"  {label.split(':')[0]:6}  {mbps:6.2f} MB/s  loss {loss:5.2f} %  RetransSegs {retrans:g}")
    before, after, fq, ipv6 = (statistics.median(r["mbps"] for r in runs) for runs in results.values())
    print(f"goodput after / before: {after / before:.2f}x, fq / before: {fq / before:.2f}x, "
          f"IPv6 / IPv4 (after): {ipv6 / after:.2f}x")
    print("target (issue #5): >= 10 MB/s now, 50 MB/s the goal")
    return 0


if __name__ == "__main__":
    sys.exit(main())
