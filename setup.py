"""Build hook: compile protos/ into the pktpath.v1 package with grpcio-tools.

The generated modules are never committed or hand-edited; every install (wheel,
sdist or editable) regenerates them from protos/, the single source of truth.
Everything else about the distribution is declared in pyproject.toml.
"""

import os
import tempfile
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
PROTO_ROOT = ROOT / "protos"
GENERATED = ROOT / "pktpath" / "v1"  # mirrors the proto package pktpath.v1


def compile_protos() -> None:
    import grpc_tools
    from grpc_tools import protoc

    sources = sorted(str(p.relative_to(PROTO_ROOT)) for p in (PROTO_ROOT / "pktpath" / "v1").glob("*.proto"))
    if not sources:
        raise SystemExit(f"no .proto files under {PROTO_ROOT}")
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    # Generate beside the target and move each file into place (os.replace is atomic),
    # so a process importing pktpath.v1 during a reinstall never sees it half-written.
    with tempfile.TemporaryDirectory(dir=GENERATED.parent) as tmp:
        args = [
            "grpc_tools.protoc",
            f"-I{PROTO_ROOT}",
            f"-I{well_known}",
            f"--python_out={tmp}",
            f"--pyi_out={tmp}",
            f"--grpc_python_out={tmp}",
            *sources,
        ]
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed on " + " ".join(sources))
        fresh = {p.name: p for p in (Path(tmp) / "pktpath" / "v1").iterdir()}
        for stale in GENERATED.glob("*_pb2*.py*"):
            if stale.name not in fresh:
                stale.unlink()
        for name, path in fresh.items():
            os.replace(path, GENERATED / name)


class BuildPyWithProtos(build_py):
    def run(self) -> None:
        compile_protos()
        super().run()


def ensure_generated_package() -> None:
    # setuptools checks every listed package directory before build_py runs.
    GENERATED.mkdir(parents=True, exist_ok=True)
    (GENERATED / "__init__.py").write_text('"""Generated from protos/pktpath/v1 at install time; do not edit."""\n')


def packages() -> list[str]:
    lib = ["pktpath", *(f"pktpath.{p}" for p in find_packages("pktpath")), "pktpath.v1"]
    services = ["pktpath.services", *(f"pktpath.services.{p}" for p in find_packages("services"))]
    return sorted(set(lib + services))


ensure_generated_package()
setup(packages=packages(), cmdclass={"build_py": BuildPyWithProtos})
