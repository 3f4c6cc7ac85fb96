"""The distribution: one namespace, generated code built from protos/ by the install."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("nic", "softirq", "l2", "l3", "l4", "socket", "orchestrator")


def test_generated_code_is_not_committed():
    tracked = subprocess.run(["git", "ls-files", "pktpath/v1"], cwd=ROOT, capture_output=True, text=True)
    if tracked.returncode != 0:
        pytest.fail(f"git ls-files failed: {tracked.stderr}")
    assert tracked.stdout == ""


def test_every_proto_is_compiled_and_importable():
    import importlib

    protos = sorted(p.stem for p in (ROOT / "protos" / "pktpath" / "v1").glob("*.proto"))
    assert set(LAYERS) <= set(protos) and "skbuff" in protos
    for name in protos:
        module = importlib.import_module(f"pktpath.v1.{name}_pb2")
        assert module.DESCRIPTOR.name == f"pktpath/v1/{name}.proto"


@pytest.mark.slow
def test_wheel_has_one_namespace_and_generated_code(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
                   check=True, capture_output=True, timeout=600)
    (wheel,) = tmp_path.glob("pktpath-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"pktpath"}, tops  # nothing installed as a top-level "services"
    for layer in LAYERS:
        assert f"pktpath/services/{layer}/__init__.py" in names
    for stem in ("skbuff_pb2.py", "l3_pb2_grpc.py", "nic_pb2.pyi"):
        assert f"pktpath/v1/{stem}" in names
    assert "pktpath/wire/ipv4.py" in names
