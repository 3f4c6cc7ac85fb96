"""The README's run command (`make run` is `pktpath demo`): the walk through the sk_buff
model, then the live demo on its own processes, ending clean."""

import subprocess
import sys

import pytest

from e2ekit import free_base_port

pytestmark = pytest.mark.slow


def test_the_demo_runs_end_to_end():
    out = subprocess.run([sys.executable, "-m", "pktpath.cli", "demo", "--base-port", str(free_base_port(2))],
                         capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    text = out.stdout
    assert "3 packets transmitted, 3 received" in text
    assert text.count("byte-exact") >= 2  # the fragmented datagram and the TCP stream
    assert "read 100000 bytes to the FIN" in text
    assert "ECONNREFUSED" in text
    assert "Tcp: ActiveOpens=1" in text and "PassiveOpens=1" in text
    assert text.rstrip().endswith("all services stopped cleanly")
