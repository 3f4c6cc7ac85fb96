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

import os
import signal

import pytest

from pktpath.client import SocketApi

from composekit import (A_API, B_API, PROJECT, PUBLISHED, SERVICES, build_image, compose, engine, eventually, get_json,
                        ping_udp_and_tcp_from_a_to_b, port_free, project_containers, wait_healthy)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stack():
    client = engine()
    port_free()
    build_image(client)
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


def test_ping_udp_and_tcp_from_a_to_b_through_the_published_socket_apis(stack):
    ping_udp_and_tcp_from_a_to_b(7700, 7701)


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
