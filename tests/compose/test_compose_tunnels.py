"""`pktpath compose --tunnels` on a real Docker engine: hosts A and B share no volume, and the
link between them is a VXLAN tunnel between their NIC containers, as between two machines;
the admin token is a compose secret. A ping, a fragmented UDP datagram and a TCP transfer
from A to B through the published socket APIs, the tunnel's counters on both NICs, one
datagram's journey across both hosts, and `down` leaving nothing behind. Uses the image
test_compose.py builds (built here when it is not there)."""

import secrets

import pytest

from pktpath.tools.compose import render
from pktpath.topology import load

from composekit import (SERVICES, build_image, compose, engine, eventually, get_json, ping_udp_and_tcp_from_a_to_b,
                        port_free, project_containers, wait_healthy)

pytestmark = pytest.mark.slow
PROJECT = "pktpathtunnels"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    client = engine()
    port_free()
    if not client.images.list(name="pktpath:latest"):
        build_image(client)
    where = tmp_path_factory.mktemp("compose-tunnels")
    (where / "docker-compose.yml").write_text(render(load("default"), tunnels=True))
    token = where / "pktpath.token"
    token.write_text(secrets.token_hex(32) + "\n")
    token.chmod(0o644)  # a secret from a file is that file, bind-mounted: the services' user reads it

    file = where / "docker-compose.yml"
    compose("down", "-v", "--remove-orphans", file=file, project=PROJECT)
    try:
        compose("up", "-d", "--no-build", *SERVICES, file=file, project=PROJECT)
        yield client, wait_healthy(client, SERVICES, project=PROJECT)
    finally:
        compose("kill", file=file, project=PROJECT)  # test_compose.py shows a graceful `down`; here, time matters
        compose("down", "-v", "--remove-orphans", file=file, project=PROJECT)
        left = project_containers(client, all_=True, project=PROJECT)
        volumes = client.volumes.list(filters={"label": f"com.docker.compose.project={PROJECT}"})
        assert not left and not volumes, (left, volumes)


def test_the_hosts_share_no_volume(stack):
    _, running = stack
    volumes = {name: {m["Name"] for m in c.attrs["Mounts"] if m["Type"] == "volume"} for name, c in running.items()}
    a = set().union(*(v for n, v in volumes.items() if n.startswith("a-")))
    b = set().union(*(v for n, v in volumes.items() if n.startswith("b-")))
    assert a and b and not a & b, volumes


def test_ping_udp_and_tcp_cross_the_tunnel_and_are_traced(stack):
    ping_udp_and_tcp_from_a_to_b(7800, 7801)
    udp = eventually(lambda: [p for p in get_json("/api/packets?protocol=udp&port=7800")["packets"]
                              if p["outcome"] == "delivered"])
    assert udp and udp[0]["hosts"] == ["A", "B"]  # one journey across the tunnel

    def tunnel() -> dict:
        hosts = {h["name"]: h for h in get_json("/api/counters")["hosts"]}
        return {name: hosts[name]["layers"]["nic"]["groups"].get("Vxlan", {}) for name in ("A", "B")}

    # every frame each NIC put in the tunnel came out at the other end: 100 kB of TCP is 70 segments
    t = eventually(lambda: (t := tunnel())["A"]["OutPackets"] == t["B"]["InPackets"] and
                   t["B"]["OutPackets"] == t["A"]["InPackets"] and t)
    assert t and t["A"]["OutPackets"] > 70 and t["A"]["TraceContextsSent"] > 0, tunnel()
