"""Start every layer service of every host of a topology as local processes, and stop them.

`pktpath up` and the end-to-end tests use this. Each service is
`python -m pktpath.cli serve LAYER --host H ...` in its own process group; the
supervisor waits until every one answers its gRPC health check, and on stop
sends SIGTERM (services unlink their shared memory and exit 0), then SIGKILL
to anything still there after a grace period, then removes any shared-memory
segment of this run a killed process could not unlink. Nothing is left behind.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from pktpath.config import LAYERS, Addresses, hop_dir, runtime_dir
from pktpath.topology import Topology

# Start order: the NIC owns the rings softirq maps; the rest only need each other later.
START_ORDER = LAYERS
STOP_GRACE_S = 5.0


def log_name(host: str, layer: str) -> str:
    """A service's log file: `A-l3.log`; the orchestrator, of no one host, `orchestrator.log`."""
    return f"{host}-{layer}.log" if host else f"{layer}.log"


@dataclass
class Service:
    host: str
    layer: str
    target: str
    proc: subprocess.Popen


def ports_in_use(addrs: Addresses) -> list[int]:
    """The layout's gRPC and HTTP ports something already holds on its address."""
    busy = []
    services = [("", "orchestrator")] + [(h.name, layer) for h in addrs.topology.hosts for layer in LAYERS]
    for host, layer in services:
        for host_port in (addrs.listen(host, layer), addrs.http(host, layer)):
            address, port = host_port.rsplit(":", 1)
            with socket.socket() as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is no one's
                try:
                    probe.bind((address, int(port)))
                except OSError:
                    busy.append(int(port))
    return busy


class Supervisor:
    def __init__(self, topology: Topology, base_port: int, *, run_id: str | None = None,
                 log_dir: Path | None = None, env: dict | None = None) -> None:
        self.topology = topology
        self.addrs = Addresses(topology, base_port)
        self.base_port = base_port
        self.run_id = run_id or str(base_port)
        self.log_dir = log_dir
        self.env = env
        self.services: list[Service] = []
        self._claimed = False  # the ports were free and the runtime directory is ours: ours to clean

    def start(self, timeout: float = 30.0) -> None:
        """Start every service, once nothing of another run is in the way: its ports are
        free and its runtime directory is this user's own. Raises RuntimeError (and
        touches nothing) if not."""
        busy = ports_in_use(self.addrs)
        if busy:
            raise RuntimeError(f"port {busy[0]} is in use ({len(busy)} of this layout's ports are): another "
                               f"pktpath runs here, or another program; stop it, or choose another --base-port")
        runtime_dir(self.run_id)  # RuntimeDirError, a RuntimeError, if another user's
        self._claimed = True
        try:
            for layer in START_ORDER:
                for host in self.topology.hosts:
                    self._spawn(host.name, layer)
            self._spawn("", "orchestrator")  # one for the topology: it collects from every host
            self.wait_healthy(timeout)
        except BaseException:
            self.stop()
            raise

    def _spawn(self, host: str, layer: str) -> None:
        cmd = [sys.executable, "-m", "pktpath.cli", "serve", layer, *(["--host", host] if host else []),
               "--topology", self.topology.source or self.topology.name, "--base-port", str(self.base_port),
               "--run-id", self.run_id]
        out = subprocess.DEVNULL
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            out = open(self.log_dir / log_name(host, layer), "ab")  # noqa: SIM115 (the child owns it)
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=self.env,
                                start_new_session=True)  # Ctrl-C reaches the supervisor, not each child
        self.services.append(Service(host, layer, self.addrs.target(host, layer), proc))

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for svc in self.services:
            with grpc.insecure_channel(svc.target) as channel:
                stub = health_pb2_grpc.HealthStub(channel)
                while True:
                    if svc.proc.poll() is not None:
                        raise RuntimeError(f"{svc.host}/{svc.layer} exited with {svc.proc.returncode}"
                                           + self._log_hint(svc))
                    try:
                        reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                        if reply.status == health_pb2.HealthCheckResponse.SERVING:
                            break
                    except grpc.RpcError:
                        pass
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{svc.host}/{svc.layer} at {svc.target} not healthy after {timeout} s"
                                           + self._log_hint(svc))
                    time.sleep(0.05)

    def _log_hint(self, svc: Service) -> str:
        if self.log_dir is None:
            return ""
        return f" (see {self.log_dir / log_name(svc.host, svc.layer)})"

    def stop(self) -> list[tuple[str, str, int]]:
        """SIGTERM everything, wait, SIGKILL stragglers, clean shared memory.
        Returns (host, layer, exit status) for each service."""
        for svc in reversed(self.services):
            if svc.proc.poll() is None:
                svc.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for svc in self.services:
            try:
                svc.proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(svc.proc.pid, signal.SIGKILL)
                svc.proc.wait()
        if self._claimed:  # what this run made, never another's
            for leftover in Path("/dev/shm").glob(f"pktpath-{self.run_id}-*"):
                leftover.unlink(missing_ok=True)
            shutil.rmtree(hop_dir(self.run_id), ignore_errors=True)  # the hop listeners' sockets
            self._claimed = False
        statuses = [(svc.host, svc.layer, svc.proc.returncode) for svc in self.services]
        self.services = []
        return statuses

    def table(self) -> list[str]:
        rows = [f"{'host':<6}{'layer':<9}{'pid':>8}  address"]
        rows += [f"{svc.host:<6}{svc.layer:<9}{svc.proc.pid:>8}  {svc.target}" for svc in self.services]
        return rows
