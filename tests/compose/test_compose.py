"""`docker compose up`, for real: the committed docker-compose.yml on a real Docker engine,
the image built offline from a wheelhouse, every layer of hosts A and B a container.
Driven from this machine through the published socket APIs, as a user would: a ping, a
UDP datagram and a TCP transfer from A to B; the orchestrator's traces of them read from
the published dashboard; one layer killed and the pipeline recovering; `down` leaving
nothing behind. Jaeger is not started (no image can be pulled here): the stack must not
need it, and the spans it could not take are counted.

Needs a Docker engine (`.ci/run` starts one with `.ci/docker-engine`, and passes the
Debian base image it imports as PKTPATH_DOCKER_BASE; elsewhere the Dockerfile's default
base is pulled). Without an engine: a failure in CI, a skip elsewhere."""

import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from pktpath.client import IPPROTO_ICMP, SHUT_WR, SocketApi
from pktpath.tools.compose import service_name
from pktpath.config import LAYERS
from pktpath.topology import load

from e2ekit import read_all, tcp_connection

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
PROJECT = "pktpathtest"
SERVICES = [service_name(h.name, layer) for h in load("default").hosts for layer in LAYERS] + ["orchestrator"]
PUBLISHED = {50015, 50025, 50500}  # A's and B's socket API, the dashboard
A_API, B_API, DASHBOARD = "127.0.0.1:50015", "127.0.0.1:50025", "http://127.0.0.1:50500"


def engine():
    import docker

    try:
        client = docker.from_env()
        client.ping()
        return client
    except Exception as exc:  # docker.errors.DockerException: no socket, no daemon
        why = f"no Docker engine answers ({exc}); .ci/docker-engine starts one"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)


def compose_command() -> list[str]:
    if shutil.which("docker-compose"):
        return ["docker-compose"]  # Compose v1, Debian's
    return ["docker", "compose"]


def compose(*args: str, timeout: float = 300) -> str:
    out = subprocess.run([*compose_command(), "-f", str(ROOT / "docker-compose.yml"), "-p", PROJECT, *args],
                         capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout + out.stderr


def project_containers(client, all_: bool = False) -> dict:
    found = client.containers.list(all=all_, filters={"label": f"com.docker.compose.project={PROJECT}"})
    return {c.labels["com.docker.compose.service"]: c for c in found}


def wait_healthy(client, names, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        running = project_containers(client)
        states = {n: running[n].attrs["State"].get("Health", {}).get("Status") if n in running else "absent"
                  for n in names}
        if all(s == "healthy" for s in states.values()):
            return running
        if time.monotonic() > deadline:
            logs = {n: running[n].logs(tail=20).decode(errors="replace") for n, s in states.items()
                    if s != "healthy" and n in running}
            raise AssertionError(f"not healthy after {timeout} s: {states}\n{logs}")
        time.sleep(1)
        for c in running.values():
            c.reload()


def get_json(path: str):
    with urllib.request.urlopen(DASHBOARD + path, timeout=10) as reply:
        return json.loads(reply.read())


def eventually(predicate, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except (OSError, AssertionError):  # a service on its way back up
            value = None
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.5)


@pytest.fixture(scope="module")
def stack():
    client = engine()
    for port in PUBLISHED:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                pytest.fail(f"127.0.0.1:{port} is taken (a `pktpath up` running?): the stack publishes there")
    # the offline build: every wheel the image needs, pktpath's own included
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check", "-w",
                    str(ROOT / "wheelhouse"), str(ROOT)], check=True, timeout=600)
    base = os.environ.get("PKTPATH_DOCKER_BASE")
    client.images.build(path=str(ROOT), tag="pktpath:latest", buildargs={"BASE": base} if base else {}, rm=True)
    compose("down", "-v", "--remove-orphans")  # what an earlier run may have left
    try:
        compose("up", "-d", "--no-build", *SERVICES)  # everything but Jaeger
        yield client, wait_healthy(client, SERVICES)
    finally:
        compose("down", "-v", "--remove-orphans")
        left = project_containers(client, all_=True)
        volumes = client.volumes.list(filters={"label": f"com.docker.compose.project={PROJECT}"})
        networks = client.networks.list(filters={"label": f"com.docker.compose.project={PROJECT}"})
        assert not left and not volumes and not networks, (left, volumes, networks)


def test_only_the_dashboard_and_the_socket_apis_are_published_on_loopback(stack):
    _, running = stack
    published = {(b["HostIp"], int(b["HostPort"])) for c in running.values()
                 for bindings in (c.attrs["NetworkSettings"]["Ports"] or {}).values() for b in bindings or ()}
    assert published == {("127.0.0.1", p) for p in PUBLISHED}
    shm = {name: [m["Name"] for m in running[name].attrs["Mounts"] if m["Destination"] == "/dev/shm"]
           for name in ("a-nic", "a-softirq", "a-l2")}
    assert shm["a-nic"] == shm["a-softirq"] == [f"{PROJECT}_a-shm"] and shm["a-l2"] == []  # the rings' tmpfs
    assert all(c.attrs["Config"]["User"] == "pktpath" for c in running.values())


def ping(a: SocketApi, seq: int) -> bytes:
    with a.socket(protocol=IPPROTO_ICMP) as s:
        s.sendto(struct.pack("!BBHHH", 8, 0, 0, 0, seq) + b"compose", ("10.0.0.2", 0))
        return s.recvmsg(timeout=10).data


def test_ping_udp_and_tcp_from_a_to_b_through_the_published_socket_apis(stack):
    with SocketApi(A_API) as a, SocketApi(B_API) as b:
        assert ping(a, 1)[:1] == b"\x00" and ping(a, 1).endswith(b"compose")  # echo replies
        with b.socket() as rx, a.socket() as tx:
            rx.bind(("0.0.0.0", 7700))
            tx.sendto(b"u" * 3000, ("10.0.0.2", 7700))  # fragmented on the way
            assert rx.recvfrom(4000, timeout=10)[0] == b"u" * 3000
        data, got = bytes(i % 251 for i in range(100_000)), bytearray()
        with tcp_connection(a, b, "10.0.0.2", 7701) as (_, cli, conn):
            cli.sendall(data)
            cli.shutdown(SHUT_WR)
            read_all(conn, got)
        assert bytes(got) == data


def test_the_orchestrator_collected_their_traces(stack):
    def found(query: str) -> list:
        return [p for p in get_json(f"/api/packets?{query}")["packets"] if p["outcome"] == "delivered"]

    assert eventually(lambda: found("protocol=icmp&addr=10.0.0.2"))
    udp = eventually(lambda: found("protocol=udp&port=7700"))
    assert udp and udp[0]["hosts"] == ["A", "B"]
    tcp = eventually(lambda: found("protocol=tcp&port=7701"))  # the first of every second, at least
    origin = tcp[0]["origin_host"]  # a segment of A's, or an ACK of B's
    journey = get_json(f"/api/packet?host={origin}&id={tcp[0]['id']}")
    receiver = "B" if origin == "A" else "A"
    assert {(v["host"], v["layer"]) for v in journey["visits"]} >= {
        (origin, "nic"), *((receiver, layer) for layer in ("nic", "softirq", "l2", "l3", "l4"))}


@pytest.mark.parametrize("layer", ["b-l3", "b-nic", "b-softirq"])
def test_a_layer_that_dies_is_restarted_and_the_pipeline_recovers(stack, layer):
    """The NIC makes new rings when it starts again, and its driver maps them anew; a
    driver that starts again takes up the rings where the NIC has them."""
    client, running = stack
    victim = client.containers.get(running[layer].id)
    victim.reload()
    restarts = victim.attrs["RestartCount"]
    os.kill(victim.attrs["State"]["Pid"], signal.SIGKILL)  # a crash, not a `docker stop`
    victim = eventually(lambda: (c := client.containers.get(victim.id)).attrs["RestartCount"] > restarts and c)
    assert victim, f"{layer} was not restarted"
    wait_healthy(client, [layer], timeout=60)

    def datagram_arrives() -> bool:
        with SocketApi(A_API) as a, SocketApi(B_API) as b, b.socket() as rx, a.socket() as tx:
            rx.bind(("0.0.0.0", 7702))
            tx.sendto(b"after", ("10.0.0.2", 7702))
            return rx.recvfrom(100, timeout=2)[0] == b"after"

    assert eventually(datagram_arrives, timeout=60)


def test_without_jaeger_the_spans_it_could_not_take_are_counted(stack):
    def failed() -> int:
        groups = get_json("/api/counters")["orchestrator"]
        return groups.get("Export", {}).get("SpansFailed", 0)

    assert eventually(failed, timeout=60) > 0
    assert project_containers(stack[0]).keys() == set(SERVICES)  # and nothing fell over for it
