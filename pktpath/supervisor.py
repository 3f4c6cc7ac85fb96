"""Start every layer service of every host of a topology as local processes, and stop them.

`pktpath up` and the end-to-end tests use this. Each service is
`pktpath serve LAYER --host H ...` in its own session, forked from a process that
imported every layer once (pktpath.forkserver); the
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
import time
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from pktpath.config import (
    LAYERS, RUN_DIR_PREFIX, Addresses, channel, ensure_token, hop_dir, runtime_base, runtime_dir,
)
from pktpath.forkserver import ForkedProcess, Forkserver, alive
from pktpath.topology import Topology

# Start order: the NIC owns the rings softirq maps; the rest only need each other later.
START_ORDER = LAYERS
STOP_GRACE_S = 5.0
# systemd's Restart=on-failure: RestartSec 100 ms (doubled for each restart in a row, to
# 10 s), and at most StartLimitBurst 5 starts in StartLimitIntervalSec 10 s, then it gives up.
RESTART_SEC, RESTART_MAX_SEC, START_LIMIT_BURST, START_LIMIT_INTERVAL_S = 0.1, 10.0, 5, 10.0
SUPERVISOR_ENV = "PKTPATH_SUPERVISOR_PID"  # a service ends with the supervisor that started it
STATE_FILE = "state.json"  # in the run's directory: what pktpath status and down read


def log_name(host: str, layer: str) -> str:
    """A service's log file: `A-l3.log`; the orchestrator, of no one host, `orchestrator.log`."""
    return f"{host}-{layer}.log" if host else f"{layer}.log"


@dataclass
class Service:
    host: str
    layer: str
    target: str
    proc: ForkedProcess
    started: float = field(default_factory=time.time)
    restarts: int = 0
    failed: bool = False                             # restarted too often: given up
    starts: list = field(default_factory=list)       # monotonic times of its recent starts

    @property
    def name(self) -> str:
        return f"{self.host}/{self.layer}" if self.host else self.layer


@dataclass(frozen=True)
class Run:
    """A topology some supervisor of this user runs (what its state.json says)."""
    topology: str   # a built-in name or a file's path
    base_port: int
    supervisor_pid: int
    state: dict


def runs() -> list[Run]:
    """This user's running topologies, by base port: every run directory whose state.json
    names a supervisor still alive (one killed with -9 leaves its directory behind)."""
    found = []
    for path in Path(runtime_base()).glob(f"{RUN_DIR_PREFIX}*/{STATE_FILE}"):
        try:
            state = json.loads(path.read_text())
            run = Run(str(state["topology"]), int(state["base_port"]), int(state["supervisor_pid"]), state)
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if alive(run.supervisor_pid):
            found.append(run)
    return sorted(found, key=lambda r: r.base_port)


ORCHESTRATOR = "orchestrator"


def services_of(topology: Topology, only=()) -> list[tuple[str, str]]:
    """(host, layer) of every service to run, the orchestrator as ("", "orchestrator"): all
    of them, or those of the hosts `only` names and the orchestrator if it names it."""
    unknown = set(only) - {h.name for h in topology.hosts} - {ORCHESTRATOR}
    if unknown:
        raise ValueError(f"{', '.join(sorted(unknown))}: not a host of topology {topology.name} "
                         f"({', '.join(h.name for h in topology.hosts)}) nor {ORCHESTRATOR}")
    return [(h.name, layer) for layer in START_ORDER for h in topology.hosts if not only or h.name in only] + (
        [("", ORCHESTRATOR)] if not only or ORCHESTRATOR in only else [])


def ports_in_use(addrs: Addresses, only=()) -> list[int]:
    """The layout's gRPC and HTTP ports something already holds on its address."""
    busy = []
    for host, layer in services_of(addrs.topology, only):
        for host_port in (addrs.listen(host, layer), addrs.http(host, layer)):
            address, port = host_port.rsplit(":", 1)
            with socket.socket() as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is no one's
                try:
                    probe.bind((address, int(port)))
                except OSError:
                    busy.append(int(port))
    return sorted(busy)


LAYOUT_STEP = 1000  # layouts of one machine sit this many ports apart


def free_layout(topology, first: int, tries: int) -> int | None:
    """The first base port from `first` up, LAYOUT_STEP apart, whose whole layout is free."""
    for base in range(first, first + LAYOUT_STEP * tries, LAYOUT_STEP):
        if not ports_in_use(Addresses(topology, base)):
            return base
    return None


class Supervisor:
    def __init__(self, topology: Topology, base_port: int, *, run_id: str | None = None,
                 log_dir: Path | None = None, env: dict | None = None, only=()) -> None:
        """only: the hosts to run here and "orchestrator" (default: every one), for a topology
        whose hosts are on several machines (their `at`)."""
        self.topology = topology
        self.only = tuple(only)
        services_of(topology, self.only)  # ValueError for a name the topology has not
        self.addrs = Addresses(topology, base_port, run_id=run_id or "")
        self.base_port = base_port
        self.run_id = self.addrs.run
        self.log_dir = log_dir
        self.env = env
        self.services: list[Service] = []
        self._claimed = False  # the ports were free and the runtime directory is ours: ours to clean
        self._watching = threading.Event()
        self._watcher: threading.Thread | None = None
        self.deaths = 0  # services that died while running, restarted or not
        self._forkserver: Forkserver | None = None

    def start(self, timeout: float = 30.0) -> None:
        """Start every service, once nothing of another run is in the way: its ports are
        free and its runtime directory is this user's own. Raises RuntimeError (and
        touches nothing) if not."""
        busy = ports_in_use(self.addrs, self.only)
        if busy:
            raise RuntimeError(f"port {busy[0]} is in use ({len(busy)} of this layout's ports are): another "
                               f"pktpath runs here, or another program; stop it, or choose another --base-port")
        runtime = Path(runtime_dir(self.run_id))  # RuntimeDirError, a RuntimeError, if another user's
        self._claimed = True
        ensure_token(self.run_id)  # before any service: theirs is the run's
        if self.log_dir is None:  # the last lines of a service that dies are reported: keep them
            self.log_dir = runtime / "logs"
        try:
            for host, layer in services_of(self.topology, self.only):  # the orchestrator last: it reads them all
                self._spawn(host, layer)
            self.wait_healthy(timeout)
        except BaseException:
            self.stop()
            raise
        self.write_state()

    def _spawn(self, host: str, layer: str) -> None:
        self.services.append(Service(host, layer, self.addrs.target(host, layer), self._popen(host, layer),
                                     starts=[time.monotonic()]))

    def _popen(self, host: str, layer: str) -> ForkedProcess:
        argv = ["serve", layer, *(["--host", host] if host else []),
                "--topology", self.topology.source or self.topology.name, "--base-port", str(self.base_port),
                "--run-id", self.run_id]
        log = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            log = str(self.log_dir / log_name(host, layer))
        env = self.env if self.env is not None else os.environ
        if self._forkserver is None:
            self._forkserver = Forkserver(dict(env), SUPERVISOR_ENV)
        # a service ends with its parent, the forkserver, which ends with this process
        return self._forkserver.spawn(argv, {**env, SUPERVISOR_ENV: str(self._forkserver.pid)}, log)

    # -- watching ----------------------------------------------------------------------
    def watch(self, report) -> None:
        """Watch every service from a thread until stop(): one that dies is reported at once
        (which, how, its last log lines) and started again with systemd's backoff."""
        self._watching.clear()
        watcher = threading.Thread(target=self._watch, args=(report,), name="watcher", daemon=True)
        watcher.start()
        self._watcher = watcher  # only once started: a stop() that a signal brings in between joins nothing

    def _watch(self, report) -> None:
        # The services this thread restarts end when it does (PR_SET_PDEATHSIG follows the
        # thread that forked them), so it ends only at stop() and survives its own faults.
        while not self._watching.wait(0.2):
            try:
                self._watch_once(report)
            except Exception as exc:  # noqa: BLE001 — reported; the watch goes on
                report(f"watcher: {type(exc).__name__}: {exc}")

    def _watch_once(self, report) -> None:
        for svc in self.services:
            if svc.failed or svc.proc.poll() is None or self._watching.is_set():
                continue
            self.deaths += 1
            recent = [t for t in svc.starts if time.monotonic() - t < START_LIMIT_INTERVAL_S]
            if len(recent) >= START_LIMIT_BURST:
                svc.failed = True
                report(f"{svc.name} {self.how(svc.proc.returncode)}: started {len(recent)} times in "
                       f"{START_LIMIT_INTERVAL_S:.0f} s, not again (start-limit-hit){self.last_lines(svc)}")
                continue
            delay = min(RESTART_SEC * 2 ** (len(recent) - 1), RESTART_MAX_SEC)
            report(f"{svc.name} {self.how(svc.proc.returncode)}; restarting in {delay:.1f} s"
                   f"{self.last_lines(svc)}")
            if self._watching.wait(delay):
                return
            svc.proc = self._popen(svc.host, svc.layer)
            svc.restarts, svc.started = svc.restarts + 1, time.time()
            svc.starts = recent + [time.monotonic()]
            self.write_state()

    @staticmethod
    def how(rc: int) -> str:
        if rc < 0:
            return f"was killed by {signal.Signals(-rc).name}"
        return f"exited with status {rc}"

    def last_lines(self, svc: Service, n: int = 5) -> str:
        try:
            lines = (self.log_dir / log_name(svc.host, svc.layer)).read_text(errors="replace").splitlines()[-n:]
        except OSError:
            return ""
        return "".join(f"\n    | {line}" for line in lines)

    def write_state(self) -> None:
        """What pktpath status and pktpath down read: the run, each service's pid and restarts."""
        state = {"topology": self.topology.source or self.topology.name, "base_port": self.base_port,
                 "supervisor_pid": os.getpid(), "services": [
                     {"host": s.host, "layer": s.layer, "target": s.target, "pid": s.proc.pid,
                      "started": s.started, "restarts": s.restarts, "failed": s.failed} for s in self.services]}
        path = Path(hop_dir(self.run_id)) / STATE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        tmp.replace(path)

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for svc in self.services:
            with channel(svc.target) as ch:
                stub = health_pb2_grpc.HealthStub(ch)
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
        self._watching.set()
        if self._watcher is not None and self._watcher.is_alive():
            self._watcher.join(5)
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
        if self._forkserver is not None:
            self._forkserver.close()
            self._forkserver = None
        self.services = []
        return statuses

    def table(self) -> list[str]:
        rows = [f"{'host':<6}{'layer':<9}{'pid':>8}  address"]
        rows += [f"{svc.host:<6}{svc.layer:<9}{svc.proc.pid:>8}  {svc.target}" for svc in self.services]
        return rows
