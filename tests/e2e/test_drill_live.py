"""`pktpath drill` against a pktpath host: the same scripts the kernel passes
(tests/drill/, proven in test_drill_kernel.py), run live against a host of six layer
processes whose eth0 is a TAP device with the script's wire at its other end. A script
either passes or is unsupported with its reason (a sysctl or call pktpath does not have);
none may fail, for a failure is pktpath doing what Linux does not."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", autouse=True)
def root():
    if os.geteuid() != 0:
        pytest.skip("the host's TAP device and the wire's namespace need root")


def test_the_projects_scripts_pass_against_a_pktpath_host_or_say_what_it_lacks():
    scripts = sorted(str(p) for p in (ROOT / "tests" / "drill").glob("*.pkt"))
    out = subprocess.run([sys.executable, "-m", "pktpath.cli", "drill", *scripts], capture_output=True, text=True,
                         timeout=600)
    results = {}
    for line in out.stdout.splitlines()[:-1]:
        path, _, rest = line.partition(": ")
        results[Path(path.split(":")[0]).name] = rest
    assert len(results) == len(scripts), out.stdout + out.stderr
    passed = {name for name, rest in results.items() if rest.startswith("pass (")}
    assert {"rst-to-closed-port.pkt", "syn-options-without-timestamps.pkt"} <= passed, out.stdout
    others = {name: rest for name, rest in results.items() if name not in passed}
    assert all(rest.startswith("unsupported: ") for rest in others.values()), others
    summary = out.stdout.splitlines()[-1]
    assert re.fullmatch(rf"{len(passed)} passed, 0 failed, {len(others)} unsupported", summary), summary
