"""A topology's hosts on "machines" made of Linux namespaces on this one: each host in a
network namespace and a mount namespace of its own (a private temporary directory and
/dev/shm: its rings, its hop sockets and its runtime directory are its own, nothing is
shared but the network), started there by `pktpath up TOPOLOGY --only HOST` as it would be on a machine
of its own, with its copy of the run's admin token. The namespaces sit on one bridge, an
underlay at MTU 1550 (a VXLAN tunnel's 50 bytes over a 1500-byte overlay), and find each
other at the addresses PKTPATH_AT_<HOST> gives; their links are VXLAN tunnels between
those addresses. The orchestrator runs in this namespace and collects over the network.

For the tests and benchmarks of what crosses machines: needs root, iproute2's `ip netns`,
util-linux's unshare and setpriv.
"""

import contextlib
import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path

from pktpath.client import SocketApi
from pktpath.config import TOKEN_FILE_ENV
from pktpath.supervisor import Supervisor
from pktpath.topology import load

UNDER = "10.99.{}.{}"  # a topology's underlay: 10.99.N.i for its i-th host, 10.99.N.254 this namespace
# Each machine's temporary directory ($TMPDIR: its runtime directory, hop sockets, logs) and /dev/shm
# (its rings) are a tmpfs of its own, mounted where only its mount namespace sees them (not over /tmp:
# pktpath itself may be installed there); its copy of the token is put there.
ON_A_MACHINE = ('mount -t tmpfs tmpfs "$PRIVATE" && mount -t tmpfs tmpfs /dev/shm && export TMPDIR="$PRIVATE" && '
                'umask 077 && printf %s "$TOKEN" > "$PRIVATE/pktpath.token" && unset TOKEN PRIVATE && exec "$@"')


def run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if check and out.returncode:
        raise RuntimeError(f"{' '.join(cmd)}: {out.stderr.strip()}")
    return out


class Machines:
    """The namespaces, their `pktpath up --only HOST`, and the orchestrator here. `net` numbers
    the underlay (10.99.NET.0/24), so that runs side by side do not share one."""

    def __init__(self, topology: str, net: int, base_port: int, tmp: Path, env: dict | None = None) -> None:
        self.topology = load(topology)
        self.tag = secrets.token_hex(2)
        self.bridge = f"pkb{self.tag}"
        self.hosts = [h.name for h in self.topology.hosts]
        self.at = {h: UNDER.format(net, i + 1) for i, h in enumerate(self.hosts)}
        self.base = base_port
        self.token = secrets.token_hex(32)
        token_file = tmp / "pktpath.token"
        token_file.write_text(self.token)
        token_file.chmod(0o600)
        self.env = {**(os.environ if env is None else env), TOKEN_FILE_ENV: str(token_file),
                    **{f"PKTPATH_AT_{h}": addr for h, addr in self.at.items()}}
        self.ups: dict[str, subprocess.Popen] = {}
        self.tmp = tmp
        self.net = net
        self.orchestrator: Supervisor | None = None

    def ns(self, host: str) -> str:
        return f"pktpath-m{self.tag}-{host}"

    def make(self) -> None:
        run("ip", "link", "add", self.bridge, "mtu", "1550", "type", "bridge")
        run("ip", "addr", "add", f"{UNDER.format(self.net, 254)}/24", "dev", self.bridge)
        run("ip", "link", "set", self.bridge, "up")
        for i, host in enumerate(self.hosts):
            ns, veth = self.ns(host), f"pkm{self.tag}{i}"
            run("ip", "netns", "add", ns)
            run("ip", "link", "add", veth, "mtu", "1550", "type", "veth", "peer", "name", "under0", "mtu", "1550",
                "netns", ns)
            run("ip", "link", "set", veth, "master", self.bridge, "up")
            run("ip", "-n", ns, "addr", "add", f"{self.at[host]}/24", "dev", "under0")
            run("ip", "-n", ns, "link", "set", "under0", "up")
            run("ip", "-n", ns, "link", "set", "lo", "up")

    def up(self, host: str) -> None:
        """`pktpath up --only HOST` on host's machine; returns once it says all are healthy."""
        private = self.tmp / f"machine-{host}"  # empty here: the machine's own tmpfs is mounted over it there
        private.mkdir(exist_ok=True)
        env = {**self.env, "TOKEN": self.token, "PRIVATE": str(private), TOKEN_FILE_ENV: f"{private}/pktpath.token"}
        env.pop("XDG_RUNTIME_DIR", None)  # its runtime directory in its own temporary directory
        proc = subprocess.Popen(
            # setpriv: it ends with this process, however that ends (a test killed once left its machines running)
            ["setpriv", "--pdeathsig", "TERM", "ip", "netns", "exec", self.ns(host),
             "unshare", "--mount", "--propagation", "private", "sh", "-c", ON_A_MACHINE, "sh",
             sys.executable, "-m", "pktpath.cli", "up", self.topology.name, "--only", host,
             "--base-port", str(self.base)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True)
        self.ups[host] = proc
        lines = []
        while "all healthy" not in (line := proc.stdout.readline()):
            lines.append(line)
            if not line:
                raise RuntimeError(f"{host}'s pktpath up ended: {''.join(lines)}")

    def start(self) -> "Machines":
        """The namespaces, every host in its own, and the orchestrator here."""
        self.make()
        for host in self.hosts:
            self.up(host)
        self.orchestrator = Supervisor(self.topology, self.base, only=["orchestrator"], env=self.env)
        self.orchestrator.start(timeout=30)
        return self

    def kill(self, host: str) -> None:
        """The machine goes down at once: its supervisor killed, its services end with it."""
        proc = self.ups.pop(host)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)

    def stop(self) -> list[str]:
        """Everything stopped and removed; what each `pktpath up` said if it did not exit 0."""
        if self.orchestrator is not None:
            self.orchestrator.stop()
        for proc in self.ups.values():
            os.killpg(proc.pid, signal.SIGTERM)
        failed = []
        for host, proc in self.ups.items():
            try:
                if proc.wait(20) != 0:
                    failed.append(f"{host}: {proc.stdout.read()}")
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                failed.append(f"{host}: still running after 20 s")
        for host in self.hosts:
            run("ip", "netns", "del", self.ns(host), check=False)
        run("ip", "link", "del", self.bridge, check=False)
        return failed

    @contextlib.contextmanager
    def as_client(self):
        """This process a client of the run for the block: its PKTPATH_ variables (where each host
        is, the token file) in os.environ, as the CLI and Addresses read them."""
        saved = dict(os.environ)
        os.environ.update({k: v for k, v in self.env.items() if k.startswith("PKTPATH_")})
        try:
            yield self
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def socket_api(self, host: str) -> SocketApi:
        return SocketApi(self.orchestrator.addrs.target(host, "socket"))

    def pids(self, host: str) -> dict[str, int]:
        """layer -> pid of host's services (no PID namespace: the pids are this one's)."""
        found = {}
        for proc in Path("/proc").glob("[0-9]*"):
            try:
                argv = (proc / "cmdline").read_bytes().replace(b"\0", b" ").split()
            except OSError:
                continue
            if argv[:2] == [b"pktpath", b"serve"] and b"--host" in argv and argv[argv.index(b"--host") + 1] == \
                    host.encode() and argv[argv.index(b"--base-port") + 1] == str(self.base).encode():
                found[argv[2].decode()] = int(proc.name)
        return found


