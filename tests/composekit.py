"""What the compose tests share: the engine, compose itself, the image's offline build, the
stack's containers and health, and the dashboard and socket APIs it publishes."""

import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from e2ekit import read_all, tcp_connection

from pktpath.client import IPPROTO_ICMP, SHUT_WR, SocketApi
from pktpath.config import LAYERS
from pktpath.tools.compose import service_name
from pktpath.topology import load

ROOT = Path(__file__).resolve().parents[1]
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


def compose(*args: str, timeout: float = 300, file: Path = ROOT / "docker-compose.yml", project: str = PROJECT) -> str:
    """docker compose on `file` (the committed one by default), as project `project`."""
    out = subprocess.run([*compose_command(), "-f", str(file), "-p", project, *args],
                         capture_output=True, text=True, timeout=timeout, cwd=file.parent)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout + out.stderr


def project_containers(client, all_: bool = False, project: str = PROJECT) -> dict:
    found = client.containers.list(all=all_, filters={"label": f"com.docker.compose.project={project}"})
    return {c.labels["com.docker.compose.service"]: c for c in found}


def wait_healthy(client, names, timeout: float = 180, project: str = PROJECT) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        running = project_containers(client, project=project)
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


def port_free() -> None:
    for port in PUBLISHED:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                pytest.fail(f"127.0.0.1:{port} is taken (a `pktpath up` running?): the stack publishes there")


def build_image(client) -> None:
    """The offline build: every wheel the image needs, pktpath's own included, then the image."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check", "-w",
                    str(ROOT / "wheelhouse"), str(ROOT)], check=True, timeout=600)
    base = os.environ.get("PKTPATH_DOCKER_BASE")
    client.images.build(path=str(ROOT), tag="pktpath:latest", buildargs={"BASE": base} if base else {}, rm=True)


def ping(a: SocketApi, seq: int) -> bytes:
    with a.socket(protocol=IPPROTO_ICMP) as s:
        s.sendto(struct.pack("!BBHHH", 8, 0, 0, 0, seq) + b"compose", ("10.0.0.2", 0))
        return s.recvmsg(timeout=10).data


def ping_udp_and_tcp_from_a_to_b(udp_port: int, tcp_port: int) -> None:
    """Through the published socket APIs: an echo answered, a 3000-byte datagram (fragments on
    the way) and 100 kB of TCP arriving whole."""
    with SocketApi(A_API) as a, SocketApi(B_API) as b:
        assert ping(a, 1)[:1] == b"\x00" and ping(a, 1).endswith(b"compose")  # echo replies
        with b.socket() as rx, a.socket() as tx:
            rx.bind(("0.0.0.0", udp_port))
            tx.sendto(b"u" * 3000, ("10.0.0.2", udp_port))
            assert rx.recvfrom(4000, timeout=10)[0] == b"u" * 3000
        data, got = bytes(i % 251 for i in range(100_000)), bytearray()
        with tcp_connection(a, b, "10.0.0.2", tcp_port) as (_, cli, conn):
            cli.sendall(data)
            cli.shutdown(SHUT_WR)
            read_all(conn, got)
        assert bytes(got) == data
