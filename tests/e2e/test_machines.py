"""One topology over several "machines": each host of the default and the router topology
runs in a network namespace and a mount namespace of its own (a private /tmp and
/dev/shm: its rings, its hops, its runtime directory are its own; nothing is shared but
the network), started there by `pktpath up TOPOLOGY --only HOST` as it would be on a
machine of its own. The namespaces sit on one bridge, an underlay at MTU 1550, and find
each other at the addresses PKTPATH_AT_<HOST> gives; their links are VXLAN tunnels
between those addresses. The orchestrator runs here and collects over the network, with
a copy of the run's admin token as each machine has. Ping, UDP that needs fragments, TCP
10 MB byte-exact, one packet's trace across every host, and a host killed and started
again. Needs root and `ip netns`; skips with the reason elsewhere."""

import hashlib
import os
import secrets
import signal
import subprocess
import sys
import threading
import time

import pytest

from pktpath.client import SHUT_WR, SOCK_STREAM, SocketApi
from pktpath.config import TOKEN_FILE_ENV
from pktpath.supervisor import Supervisor
from pktpath.topology import load
from pktpath.trace import SAMPLER_ARG

from e2ekit import cli_here, free_base_port, read_all, wait_for
from test_dashboard import api
from test_kernel_peer import run, unavailable

pytestmark = pytest.mark.slow
UNDER = "10.99.{}.{}"  # a topology's underlay: 10.99.N.i for its i-th host, 10.99.N.254 this namespace
TEN_MB = 10_000_000
# Each machine's /tmp and /dev/shm are a tmpfs of its own; its copy of the token is put there.
ON_A_MACHINE = ('mount -t tmpfs tmpfs /tmp && mount -t tmpfs tmpfs /dev/shm && '
                'umask 077 && printf %s "$TOKEN" > /tmp/pktpath.token && unset TOKEN && exec "$@"')


class Machines:
    """The namespaces, their `pktpath up --only HOST`, and the orchestrator here."""

    def __init__(self, topology: str, net: int, tmp) -> None:
        self.topology = load(topology)
        self.tag = secrets.token_hex(2)
        self.bridge = f"pkb{self.tag}"
        self.hosts = [h.name for h in self.topology.hosts]
        self.at = {h: UNDER.format(net, i + 1) for i, h in enumerate(self.hosts)}
        self.base = free_base_port(len(self.hosts))
        self.token = secrets.token_hex(32)
        token_file = tmp / "pktpath.token"
        token_file.write_text(self.token)
        token_file.chmod(0o600)
        self.env = {**os.environ, SAMPLER_ARG: "1", TOKEN_FILE_ENV: str(token_file),
                    **{f"PKTPATH_AT_{h}": addr for h, addr in self.at.items()}}
        self.ups: dict[str, subprocess.Popen] = {}
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
        env = {**self.env, "TOKEN": self.token, TOKEN_FILE_ENV: "/tmp/pktpath.token"}
        env.pop("XDG_RUNTIME_DIR", None)  # its runtime directory in its own /tmp
        proc = subprocess.Popen(
            # setpriv: it ends with this test's process, however that ends (one killed left its machines running)
            ["setpriv", "--pdeathsig", "TERM", "ip", "netns", "exec", self.ns(host),
             "unshare", "--mount", "--propagation", "private", "sh", "-c", ON_A_MACHINE, "sh",
             sys.executable, "-m", "pktpath.cli", "up", self.topology.name, "--only", host,
             "--base-port", str(self.base)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True)
        self.ups[host] = proc
        lines = []
        while "all healthy" not in (line := proc.stdout.readline()):
            lines.append(line)
            assert line, f"{host}'s pktpath up ended: {''.join(lines)}"

    def kill(self, host: str) -> None:
        """The machine goes down at once: its supervisor killed, its services end with it."""
        proc = self.ups.pop(host)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)

    def stop(self) -> None:
        if self.orchestrator is not None:
            self.orchestrator.stop()
        for proc in self.ups.values():
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.ups.values():
            try:
                assert proc.wait(20) == 0, proc.stdout.read()
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                raise
        for host in self.hosts:
            run("ip", "netns", "del", self.ns(host), check=False)
        run("ip", "link", "del", self.bridge, check=False)

    def socket_api(self, host: str) -> SocketApi:
        return SocketApi(self.orchestrator.addrs.target(host, "socket"))


@pytest.fixture(scope="module", params=[("default", 1), ("router", 2)], ids=["default", "router"])
def machines(request, tmp_path_factory):
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    name, net = request.param
    m = Machines(name, net, tmp_path_factory.mktemp(f"machines-{name}"))
    saved = dict(os.environ)
    os.environ.update({k: v for k, v in m.env.items() if k.startswith("PKTPATH_")})  # this test is a client too
    try:
        m.make()
        for host in m.hosts:
            m.up(host)
        m.orchestrator = Supervisor(m.topology, m.base, only=["orchestrator"], env=m.env)
        m.orchestrator.start(timeout=30)
        yield m
    finally:
        m.stop()
        os.environ.clear()
        os.environ.update(saved)


def last_host_addr(m) -> str:
    """B's address, where A's packets go across every machine."""
    return str(m.topology.host("B").interfaces[0].addr.ip)


def pktpath(m, *words) -> subprocess.CompletedProcess:
    return cli_here(*words, "--topology", m.topology.name, "--base-port", str(m.base))


def test_each_machine_runs_only_its_own_host_and_listens_on_its_own_address(machines):
    for host in machines.hosts:
        ours = subprocess.run(["ip", "netns", "exec", machines.ns(host), "ss", "-Hltn"], capture_output=True,
                              text=True, timeout=10).stdout
        # gRPC's listener is an IPv6 socket on the v4-mapped address
        listening = {line.split()[3].replace("[::ffff:", "").replace("]", "") for line in ours.splitlines()}
        assert machines.orchestrator.addrs.target(host, "socket") in listening, sorted(listening)
        others = [h for h in machines.hosts if h != host]
        assert not any(machines.at[o] in address for o in others for address in listening)


def test_a_ping_crosses_every_machine_and_is_answered(machines):
    out = pktpath(machines, "ping", last_host_addr(machines), "-c", "3", "-i", "0.2", "-W", "5", "--on", "A")
    assert out.returncode == 0 and "3 received" in out.stdout, out.stdout + out.stderr


def test_a_datagram_that_needs_fragments_arrives_whole(machines):
    payload = bytes(range(256)) * 16  # 4096 bytes: three fragments at MTU 1500
    with machines.socket_api("A") as a, machines.socket_api("B") as b, b.socket() as rx, a.socket() as tx:
        rx.bind(("0.0.0.0", 7000))
        tx.sendto(payload, (last_host_addr(machines), 7000))
        got, _ = rx.recvfrom(65535, timeout=10)
    assert got == payload


def test_tcp_moves_10_mb_byte_exact_through_the_tunnels(machines):
    data = os.urandom(TEN_MB)
    with machines.socket_api("A") as a, machines.socket_api("B") as b:
        with b.socket(SOCK_STREAM) as srv:
            srv.bind(("0.0.0.0", 7001))
            srv.listen(1)
            with a.socket(SOCK_STREAM) as cli:
                cli.connect((last_host_addr(machines), 7001), timeout=30)
                conn, _ = srv.accept(timeout=30)
                with conn:
                    got = bytearray()
                    reader = threading.Thread(target=read_all, args=(conn, got), kwargs={"timeout": 60})
                    reader.start()  # B reads while A writes: 10 MB is more than the buffers between them
                    cli.sendall(data)
                    cli.shutdown(SHUT_WR)
                    reader.join(120)
    assert len(got) == TEN_MB and hashlib.sha256(got).digest() == hashlib.sha256(data).digest()


def test_one_packets_trace_crosses_every_machine_in_the_dashboard(machines):
    """A datagram A -> B is traced on every host it crosses, from A's socket to B's, one journey
    put together by the orchestrator from records it collected from each machine."""
    port = 7002
    with machines.socket_api("A") as a, machines.socket_api("B") as b, b.socket() as rx, a.socket() as tx:
        rx.bind(("0.0.0.0", port))
        tx.sendto(b"across machines", (last_host_addr(machines), port))
        assert rx.recvfrom(100, timeout=10)[0] == b"across machines"

    def journey():
        found = api(machines.orchestrator, f"/api/packets?protocol=udp&dport={port}")["packets"]
        if not found:
            return None
        j = api(machines.orchestrator, f"/api/packet?host={found[0]['origin_host']}&id={found[0]['id']}")
        hosts = {v["host"] for v in j["visits"]}
        return j if hosts == set(machines.hosts) and j["outcome"] == "delivered" else None

    j = wait_for(journey, timeout=20)
    assert j, api(machines.orchestrator, f"/api/packets?protocol=udp&dport={port}")
    layers = [(v["host"], v["layer"]) for v in j["visits"]]
    assert layers[0] == ("A", "socket") and layers[-1] == ("B", "socket"), layers


def test_a_host_killed_and_started_again_carries_traffic_again(machines):
    """The machine in the middle (B of default, R of router) goes down at once: A's pings go
    unanswered; started again (new rings, new sockets, the same addresses), they are answered."""
    host = machines.hosts[-1] if len(machines.hosts) == 2 else "R"
    machines.kill(host)
    lost = pktpath(machines, "ping", last_host_addr(machines), "-c", "2", "-i", "0.2", "-W", "1", "--on", "A")
    assert lost.returncode == 1, lost.stdout
    started = time.monotonic()
    machines.up(host)
    out = pktpath(machines, "ping", last_host_addr(machines), "-c", "3", "-i", "0.2", "-W", "5", "--on", "A")
    assert out.returncode == 0 and "3 received" in out.stdout, out.stdout + out.stderr
    assert time.monotonic() - started < 30
