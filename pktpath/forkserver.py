"""Services forked from one process that has imported them already.

A service is a Python process that imports gRPC, protobuf and its layer before it
serves: about 0.4 s of CPU each. Thirteen of them (the default topology and its
orchestrator) starting at once on two cores took 4-5 s before the last answered its
health check. A forkserver imports all of it once and forks each service from
there (a few ms each), as multiprocessing's "forkserver" start method and Android's
zygote do: the same topology answers in ~0.6 s.

The forkserver is single-threaded and never opens a channel or starts a server, so
what a child inherits is fork-safe (gRPC's core starts in the child, at its first
server). It takes requests on a SEQPACKET socket from the supervisor that started
it (`{"argv", "env", "log"}`; answered `{"pid"}` or `{"error"}`), reaps its
children and reports each exit (`{"exit": pid, "status": returncode}`, negative for
a signal, as Popen's). It ends when that socket closes, and with its supervisor
(PR_SET_PDEATHSIG); each child ends with it in turn (pktpath.service.end_with_supervisor).

Supervisor side: `Forkserver.spawn()` gives a `ForkedProcess`, which answers what the
supervisor asks of a subprocess.Popen (pid, poll, wait, send_signal, returncode).
"""

import importlib
import json
import os
import select
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback

from setproctitle import setproctitle

MAX_MESSAGE = 1 << 20
# What every service imports; each one the forkserver has imported is one a child need not.
PRELOAD = ("grpc", "grpc_health.v1.health", "pktpath.cli", "pktpath.service",
           *(f"pktpath.services.{layer}.server"
             for layer in ("nic", "softirq", "l2", "l3", "l4", "socket", "orchestrator")))


# -- the forkserver ------------------------------------------------------------------
def _preload() -> None:
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 — the child imports it again and says what is wrong
            pass


def _child(request: dict, keep: list[int]) -> None:
    """In the forked child: become the service the request names; never returns."""
    status = 1
    try:
        os.setsid()  # its own session, as Popen(start_new_session=True): Ctrl-C reaches the supervisor only
        for fd in keep:
            os.close(fd)
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        out = os.open(request.get("log") or os.devnull, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.close(out)
        setproctitle(shlex.join(["pktpath", *request["argv"]]))  # what ps shows: the service, not the forkserver
        os.environ.clear()  # after: setproctitle moves the environment away to make room
        os.environ.update(request["env"])
        from pktpath.cli import main

        status = main(request["argv"]) or 0
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 — the log says what; the exit status says that it failed
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(status)


def _reap(sock: socket.socket) -> None:
    while True:
        try:
            pid, raw = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        sock.send(json.dumps({"exit": pid, "status": os.waitstatus_to_exitcode(raw)}).encode())


def serve(fd: int) -> int:
    """The forkserver's loop on the supervisor's socket `fd`."""
    from pktpath.service import end_with_supervisor

    end_with_supervisor()
    sock = socket.socket(fileno=fd)
    _preload()
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so that the wakeup fd hears it
    signal.set_wakeup_fd(wake_w)
    while True:
        ready, _, _ = select.select([sock, wake_r], [], [])
        if wake_r in ready:
            while os.read(wake_r, 512) == 512:
                pass
        _reap(sock)
        if sock not in ready:
            continue
        message = sock.recv(MAX_MESSAGE)
        if not message:  # the supervisor closed it, or died
            return 0
        try:
            request = json.loads(message)
            argv, env = list(map(str, request["argv"])), {str(k): str(v) for k, v in request["env"].items()}
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            sock.send(json.dumps({"error": f"bad request: {exc}"}).encode())
            continue
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            pid = os.fork()
        except OSError as exc:
            sock.send(json.dumps({"error": f"fork: {exc.strerror}"}).encode())
            continue
        if pid == 0:
            _child({**request, "argv": argv, "env": env}, [sock.fileno(), wake_r, wake_w])
        sock.send(json.dumps({"pid": pid}).encode())


# -- the supervisor's side -------------------------------------------------------------
class ForkserverGone(RuntimeError):
    """The forkserver exited: no service can be started."""


class Forkserver:
    """A forkserver of this process's, started with `env` (what its children import with)."""

    def __init__(self, env: dict[str, str], supervisor_env: str) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with theirs:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "pktpath.forkserver", str(theirs.fileno())], pass_fds=(theirs.fileno(),),
                env={**env, supervisor_env: str(os.getpid())}, stdin=subprocess.DEVNULL, start_new_session=True)
        self._sock = ours
        self._lock = threading.Lock()
        self._exits: dict[int, int] = {}
        self._gone = False

    @property
    def pid(self) -> int:
        return self.proc.pid

    def spawn(self, argv: list[str], env: dict[str, str], log: str | None) -> "ForkedProcess":
        with self._lock:
            if self._gone:
                raise ForkserverGone(f"the forkserver (pid {self.pid}) has exited")
            self._sock.send(json.dumps({"argv": argv, "env": env, "log": log}).encode())
            while True:
                reply = self._receive(None)
                if reply is None:
                    raise ForkserverGone(f"the forkserver (pid {self.pid}) exited: {self.proc.poll()}")
                if "pid" in reply:
                    return ForkedProcess(self, reply["pid"])
                if "error" in reply:
                    raise RuntimeError(f"the forkserver could not start {argv[1:3]}: {reply['error']}")

    def _receive(self, timeout: float | None) -> dict | None:
        """One message (an exit is recorded as it passes); None when none came or it is gone."""
        if self._gone or not select.select([self._sock], [], [], timeout)[0]:
            return None
        message = self._sock.recv(MAX_MESSAGE)
        if not message:
            self._gone = True
            return None
        reply = json.loads(message)
        if "exit" in reply:
            self._exits[reply["exit"]] = reply["status"]
        return reply

    def status(self, pid: int, timeout: float = 0.0) -> int | None:
        """pid's exit status once the forkserver reported it, waiting up to `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            with self._lock:
                if pid in self._exits:
                    return self._exits[pid]
                if self._gone:  # its children end with it (SIGTERM), and someone else reaps them
                    if not alive(pid):
                        return -signal.SIGTERM
                    if left <= 0:
                        return None
                elif self._receive(max(0.0, min(left, 0.05))) is None and left <= 0 and not self._gone:
                    return None
            if self._gone:
                time.sleep(min(max(left, 0.0), 0.05))

    def close(self) -> None:
        self._sock.close()
        try:
            self.proc.wait(2)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def alive(pid: int) -> bool:
    """The process exists and has not exited (an orphan's zombie that init has not reaped has)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


class ForkedProcess:
    """A service the forkserver forked, as the supervisor uses a subprocess.Popen."""

    def __init__(self, server: Forkserver, pid: int) -> None:
        self.server = server
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self.server.status(self.pid)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            self.returncode = self.server.status(self.pid, 1e9 if timeout is None else timeout)
            if self.returncode is None:
                raise subprocess.TimeoutExpired(f"pid {self.pid}", timeout)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            try:
                os.kill(self.pid, signum)
            except ProcessLookupError:
                pass


if __name__ == "__main__":
    sys.exit(serve(int(sys.argv[1])))
