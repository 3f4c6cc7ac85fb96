"""Transactions per second between a program on A and one on B, against the kernel's loopback.

    python benchmarks/socket_rr.py [--seconds 5] [--base-port 47000]

The same unchanged programs (benchmarks/programs/: netperf-like UDP_RR and TCP_RR of one
byte each way, http.server fetched by urllib.request) run twice in one go: on this
machine's own stack over loopback (the anchor), and under `pktpath run` on hosts A and B
of the default topology, their packets crossing both stacks (twelve layer services),
1 % of them traced. It prints transactions per second for each, the ratio, the cost of
one socket call through the API (a call that does nothing: getsockname; and socket() +
close()), and how a transaction's time divides between the socket calls and the path.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc

from pktpath.client import SOCK_DGRAM, SocketApi
from pktpath.supervisor import Supervisor
from pktpath.topology import load
from pktpath.trace import SAMPLER_ARG

PROGRAMS = Path(__file__).parent / "programs"
PKTPATH = str(Path(sys.executable).parent / "pktpath")


class Runner:
    """Starts a program on the kernel's stack, or on a pktpath host."""

    def __init__(self, sup: Supervisor | None) -> None:
        self.sup = sup

    def argv(self, host: str, *command: str) -> list[str]:
        if self.sup is None:
            return [sys.executable, *command]
        return [PKTPATH, "run", "--on", host, "--base-port", str(self.sup.base_port), "--", "python", *command]

    def server(self, host: str, *command: str, ready: str) -> subprocess.Popen:
        proc = subprocess.Popen(self.argv(host, *command), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        line = proc.stdout.readline()
        if ready not in line:
            proc.kill()
            raise RuntimeError(f"{' '.join(command)} did not start: {line!r}")
        return proc

    def measure(self, host: str, *command: str) -> float:
        """Runs a client program; its rate (count / seconds)."""
        out = subprocess.run(self.argv(host, *command), capture_output=True, text=True, timeout=300, check=True)
        n, seconds = out.stdout.split()
        return int(n) / float(seconds)


def rates(runner: Runner, server_addr: str, seconds: float, web_root: str, port: int) -> dict[str, float]:
    out = {}
    for kind in ("udp", "tcp"):
        server = runner.server("B", str(PROGRAMS / "rr.py"), f"{kind}-server", str(port), ready="ready")
        try:
            out[f"{kind.upper()}_RR"] = runner.measure("A", str(PROGRAMS / "rr.py"), f"{kind}-client", server_addr,
                                                       str(port), str(seconds))
        finally:
            server.kill()
            server.wait()
        port += 1
    server = runner.server("B", "-m", "http.server", str(port), "--directory", web_root, ready="Serving HTTP")
    try:
        out["http.server GET"] = runner.measure("A", str(PROGRAMS / "http_get.py"),
                                                f"http://{server_addr}:{port}/small.txt", str(seconds))
    finally:
        server.kill()
        server.wait()
    return out


def call_costs(api: SocketApi, n: int = 2000) -> dict[str, float]:
    """µs per call through the socket API, and the kernel's for the same calls."""
    sock = api.socket(SOCK_DGRAM)
    t0 = time.perf_counter()
    for _ in range(n):
        sock.getsockname()
    null = (time.perf_counter() - t0) / n * 1e6
    t0 = time.perf_counter()
    for _ in range(n // 4):
        api.socket(SOCK_DGRAM).close()
    create = (time.perf_counter() - t0) / (n // 4) * 1e6
    import socket

    real = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    t0 = time.perf_counter()
    for _ in range(n):
        real.getsockname()
    kernel_null = (time.perf_counter() - t0) / n * 1e6
    t0 = time.perf_counter()
    for _ in range(n):
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM).close()
    kernel_create = (time.perf_counter() - t0) / n * 1e6
    return {"getsockname": null, "socket+close": create, "kernel getsockname": kernel_null,
            "kernel socket+close": kernel_create}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0, help="per measurement (default 5)")
    ap.add_argument("--sample", type=float, default=0.01, help="the share of packets traced (default 0.01)")
    ap.add_argument("--base-port", type=int, default=47000)
    args = ap.parse_args()
    print(f"cpus: {os.cpu_count()}, python {sys.version.split()[0]}, grpcio {grpc.__version__}")
    with tempfile.TemporaryDirectory(prefix="pktpath-rr-") as tmp:
        web_root = Path(tmp) / "www"
        web_root.mkdir()
        (web_root / "small.txt").write_text("hello\n")
        kernel = rates(Runner(None), "127.0.0.1", args.seconds, str(web_root), 46100)
        env = {**os.environ, SAMPLER_ARG: str(args.sample)}
        sup = Supervisor(load("default"), args.base_port, log_dir=Path(tmp) / "logs", env=env)
        sup.start(timeout=60)
        try:
            ours = rates(Runner(sup), "B", args.seconds, str(web_root), 46200)
            with SocketApi(sup.addrs.target("A", "socket")) as api:
                costs = call_costs(api)
        finally:
            sup.stop()
    print(f"\n{'':<18}{'kernel loopback':>16}{'pktpath A -> B':>16}{'ratio':>8}   (transactions/s)")
    for name, k in kernel.items():
        print(f"{name:<18}{k:>16,.0f}{ours[name]:>16,.0f}{ours[name] / k:>8.4f}")
    print(f"\none socket call through the API: getsockname {costs['getsockname']:.0f} µs "
          f"(the kernel's: {costs['kernel getsockname']:.2f} µs), socket()+close() {costs['socket+close']:.0f} µs "
          f"(the kernel's: {costs['kernel socket+close']:.1f} µs)")
    for name in ("UDP_RR", "TCP_RR"):
        per = 1e6 / ours[name]
        calls = 4 * costs["getsockname"]  # send and recv on each side
        print(f"{name}: {per:,.0f} µs a transaction = about {calls:,.0f} µs in four socket calls "
              f"+ {per - calls:,.0f} µs for two trips through both stacks ({(per - calls) / 2:,.0f} µs one way)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
