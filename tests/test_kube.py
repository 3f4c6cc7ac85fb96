"""The committed kubernetes/ is `pktpath kube default`'s output; kubectl's kustomize builds it
and kubernetes-validate checks what it builds against a current Kubernetes schema (strict:
no field the API would not know). No cluster runs here: this is what can be checked offline.
What the manifests say is read back as YAML: a Pod per host, its six layers probed on their
gRPC health, the shared memory and the hop sockets in emptyDirs, the tunnel on a Service."""

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pktpath.config import LAYERS
from pktpath.tools.kube import Resources, render, write
from pktpath.topology import load

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "kubernetes"


def kubectl() -> str:
    found = shutil.which("kubectl")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("kubectl is not installed (.ci/run installs Debian's kubernetes-client)")
        pytest.skip("kubectl is not installed")
    return found


def build(directory: Path) -> list[dict]:
    out = subprocess.run([kubectl(), "kustomize", str(directory)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def validate(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kubernetes_validate", "--strict", "--quiet", str(path)],
                          capture_output=True, text=True, timeout=120)


def test_the_committed_directory_is_what_pktpath_kube_writes():
    files = render(load("default"))
    assert sorted(p.name for p in COMMITTED.iterdir()) == sorted(files), "kubernetes/ is stale"
    for name, text in files.items():
        assert (COMMITTED / name).read_text() == text, \
            f"kubernetes/{name} is stale: run `pktpath kube -o kubernetes`"


def test_kustomize_builds_it_and_every_resource_passes_a_current_kubernetes_schema(tmp_path):
    built = tmp_path / "built.yaml"
    docs = build(COMMITTED)
    built.write_text(yaml.safe_dump_all(docs))
    assert sorted(f"{d['kind']}/{d['metadata']['name']}" for d in docs if d["kind"] != "ConfigMap") == [
        "Deployment/host-a", "Deployment/host-b", "Deployment/orchestrator", "Namespace/pktpath",
        "Service/a", "Service/b", "Service/orchestrator"]
    out = validate(built)
    assert out.returncode == 0, out.stdout + out.stderr
    # the same check refuses what a cluster would: a field the Pod spec has not
    broken = [dict(d) for d in docs]
    pod = next(d for d in broken if d["kind"] == "Deployment")["spec"]["template"]["spec"]
    pod["containers"][0]["restartPolicyy"] = "Always"
    bad = tmp_path / "broken.yaml"
    bad.write_text(yaml.safe_dump_all(broken))
    assert validate(bad).returncode != 0


def test_a_pod_per_host_with_its_six_layers_probed_on_grpc_health_and_sharing_its_rings_and_hops():
    docs = build(COMMITTED)
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    host_a = deployments["host-a"]["spec"]
    assert host_a["replicas"] == 1 and host_a["strategy"]["type"] == "Recreate"
    pod = host_a["template"]["spec"]
    assert [c["name"] for c in pod["containers"]] == list(LAYERS)
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["shm"]["emptyDir"]["medium"] == "Memory" and volumes["hops"]["emptyDir"] == {}
    assert volumes["token"]["secret"]["secretName"] == "pktpath-admin-token"
    ports = [p["name"] for c in pod["containers"] for p in c["ports"]]
    assert len(ports) == len(set(ports)) and max(map(len, ports)) <= 15  # unique in the Pod, IANA_SVC_NAME
    for c in pod["containers"]:
        assert c["args"][:4] == ["serve", c["name"], "--host", "A"]
        grpc_port = c["ports"][0]["containerPort"]
        assert c["readinessProbe"]["grpc"] == {"port": grpc_port} == c["livenessProbe"]["grpc"]
        assert {m["mountPath"] for m in c["volumeMounts"]} >= {"/dev/shm", "/run/pktpath"}
        env = {e["name"]: e["value"] for e in c["env"]}
        assert env["PKTPATH_AT_A"] == "127.0.0.1" and env["PKTPATH_AT_B"] == "b"  # itself by localhost
        assert c["image"] == "pktpath:latest"
    nic = pod["containers"][0]
    assert {"name": "vxlan", "containerPort": 4789, "protocol": "UDP"} in nic["ports"]
    service = next(d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == "a")["spec"]
    assert service["clusterIP"] == "None" and service["publishNotReadyAddresses"] is True
    assert {(p["name"], p["port"], p["protocol"]) for p in service["ports"]} >= {
        ("vxlan", 4789, "UDP"), ("socket", 50015, "TCP"), ("l3", 50013, "TCP")}
    orchestrator = deployments["orchestrator"]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in orchestrator["env"]}
    assert env["PKTPATH_AT_A"] == "a" and env["PKTPATH_AT_B"] == "b"


def test_the_image_and_the_resources_are_parameters_and_a_router_gets_a_pod_too(tmp_path):
    files = render(load("router"), 51000, Resources("registry.example/pktpath:1.2", "100m", "128Mi", "2", "1Gi"))
    write(files, tmp_path)
    docs = build(tmp_path)
    r = next(d for d in docs if d.get("metadata", {}).get("name") == "host-r")["spec"]["template"]["spec"]
    assert {c["image"] for c in r["containers"]} == {"registry.example/pktpath:1.2"}
    assert r["containers"][3]["resources"] == {"requests": {"cpu": "100m", "memory": "128Mi"},
                                               "limits": {"cpu": "2", "memory": "1Gi"}}
    assert r["containers"][0]["args"][-1] == "51000"
    assert (tmp_path / "topology.toml").read_text() == (ROOT / "pktpath/topologies/router.toml").read_text()


@pytest.mark.slow
def test_the_20_host_chain_of_the_docs_builds_with_a_pod_and_a_service_each(tmp_path):
    """docs/kubernetes.md's example: 20 hosts in a line, 19 of them routers."""
    out = tmp_path / "k"
    write(render(load(ROOT / "docs" / "examples" / "chain20.toml")), out)
    docs = build(out)
    assert sum(d["kind"] == "Deployment" for d in docs) == 21 and sum(d["kind"] == "Service" for d in docs) == 21
    h5 = next(d for d in docs if d["metadata"]["name"] == "host-h5")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in h5["env"]}
    assert env["PKTPATH_AT_H5"] == "127.0.0.1" and env["PKTPATH_AT_H6"] == "h6" and len(env) == 4 + 20
    # its resources are the default's, 20 times over: the schema check of kubernetes/ covers their shape


def test_a_host_whose_name_is_no_dns_label_is_refused_by_name():
    topo = load("default")
    bad = dataclasses.replace(topo, hosts=(dataclasses.replace(topo.hosts[0], name="_a"), topo.hosts[1]))
    with pytest.raises(ValueError, match="'-a' is no Service name"):
        render(bad)
