"""The committed docker-compose.yml is `pktpath compose default`'s output (no drift between
`docker compose up` and `pktpath up`), and what it says, read by a YAML parser."""

from pathlib import Path

import yaml

from pktpath.tools.compose import render
from pktpath.config import LAYERS
from pktpath.topology import load

ROOT = Path(__file__).resolve().parents[1]


def test_the_committed_file_is_what_pktpath_compose_writes():
    committed = (ROOT / "docker-compose.yml").read_text()
    assert committed == render(load("default")), \
        "docker-compose.yml is stale: run `pktpath compose -o docker-compose.yml`"


def test_every_layer_a_healthchecked_container_in_order_and_nothing_needs_jaeger():
    doc = yaml.safe_load(render(load("default")))
    services = doc["services"]
    assert set(services) == {f"{h}-{layer}" for h in "ab" for layer in LAYERS} | {"orchestrator", "jaeger"}
    for name, svc in services.items():
        if name == "jaeger":
            continue
        assert svc["image"] == "pktpath:latest" and svc["restart"] == "unless-stopped"
        assert svc["healthcheck"]["test"][:3] == ["CMD", "pktpath", "health"]
        assert "jaeger" not in svc.get("depends_on", {})
    assert "b-shm:/dev/shm" in services["b-softirq"]["volumes"] and "b-shm:/dev/shm" in services["b-nic"]["volumes"]
    assert services["b-l2"]["volumes"] == ["hops:/run/pktpath"]  # the anchor's: only NIC and driver share rings
    assert doc["volumes"]["b-shm"]["driver_opts"]["type"] == "tmpfs"
    assert services["b-l3"]["depends_on"] == {"b-l2": {"condition": "service_healthy"}}
    assert services["a-l2"]["environment"]["PKTPATH_TARGET_B_L3"] == "b-l3:50023"
    published = {port for svc in services.values() for port in svc.get("ports", [])}
    assert published == {"127.0.0.1:50015:50015", "127.0.0.1:50025:50025", "127.0.0.1:50500:9100",
                         "127.0.0.1:16686:16686"}


def test_a_topology_file_is_mounted_into_every_container(tmp_path):
    topo = tmp_path / "mine.toml"
    topo.write_text((ROOT / "pktpath" / "topologies" / "router.toml").read_text())
    doc = yaml.safe_load(render(load(topo), base_port=51000))
    r_l3 = doc["services"]["r-l3"]
    assert f"{topo}:/etc/pktpath/topology.toml:ro" in r_l3["volumes"]
    assert r_l3["command"] == ["serve", "l3", "--host", "R", "--topology", "/etc/pktpath/topology.toml",
                               "--base-port", "51000"]
    assert "127.0.0.1:51500:9100" in doc["services"]["orchestrator"]["ports"]


def test_with_tls_every_container_mounts_the_certificates_and_is_told_where_they_are(tmp_path):
    doc = yaml.safe_load(render(load("default"), tls_dir=str(tmp_path)))
    for name, svc in doc["services"].items():
        if name == "jaeger":
            continue
        assert f"{tmp_path}:/etc/pktpath/tls:ro" in svc["volumes"], name
        assert svc["environment"]["PKTPATH_TLS_DIR"] == "/etc/pktpath/tls", name
    assert "PKTPATH_TLS_DIR" not in render(load("default"))  # plaintext unless asked


def test_with_tunnels_the_hosts_share_no_volume_and_their_nics_are_their_machines():
    doc = yaml.safe_load(render(load("default"), tunnels=True))
    services = doc["services"]
    mounts = {name: {v.split(":")[0] for v in svc.get("volumes", [])} for name, svc in services.items()}
    assert mounts["a-l3"] == {"a-hops"} and mounts["b-nic"] == {"b-hops", "b-shm"}
    a_side = set().union(*(m for n, m in mounts.items() if n.startswith("a-")))
    b_side = set().union(*(m for n, m in mounts.items() if n.startswith("b-")))
    assert not a_side & b_side and mounts["orchestrator"] == set()
    env = services["a-l2"]["environment"]
    assert (env["PKTPATH_AT_A"], env["PKTPATH_AT_B"]) == ("a-nic", "b-nic")  # a link A-B is then a tunnel
    assert env["PKTPATH_TOKEN_FILE"] == "/run/secrets/pktpath_token"
    assert all(svc["secrets"] == ["pktpath_token"] for name, svc in services.items() if name != "jaeger")
    assert doc["secrets"] == {"pktpath_token": {"file": "./pktpath.token"}}
    assert "hops" not in doc["volumes"] and {"a-hops", "b-hops"} <= set(doc["volumes"])
    published = {port for svc in services.values() for port in svc.get("ports", [])}
    assert published == {"127.0.0.1:50015:50015", "127.0.0.1:50025:50025", "127.0.0.1:50500:9100",
                         "127.0.0.1:16686:16686"}  # as without tunnels
