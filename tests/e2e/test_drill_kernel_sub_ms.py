"""The drill scripts of tests/drill/sub-ms/ (TSO deferral: an ACK within 1 ms of the burst it
answers) against the Linux kernel, as test_drill_kernel.py proves tests/drill/'s: each one
passes. pktpath runs them on its virtual clock (tests/services/test_l4_tcp_tso_defer.py);
a live pktpath host cannot keep their sub-millisecond timing."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", autouse=True)
def root():
    if os.geteuid() != 0:
        pytest.skip("network namespaces and TUN devices need root")


def test_the_sub_ms_scripts_pass_against_the_kernel():
    scripts = sorted(str(p) for p in (ROOT / "tests" / "drill" / "sub-ms").glob("*.pkt"))
    assert len(scripts) >= 8
    out = subprocess.run([sys.executable, "-m", "pktpath.cli", "drill", "--kernel", *scripts], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count(": pass (") == len(scripts)
