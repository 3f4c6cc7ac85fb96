"""The README's run command (`make run` is `pktpath demo`): the walk through the sk_buff
model, then the live demo on its own processes, ending clean."""

import socket
import subprocess
import sys

import pytest

from pktpath.config import DEFAULT_BASE_PORT

pytestmark = pytest.mark.slow


def test_the_demo_runs_end_to_end_on_a_free_layout_when_the_default_ports_are_taken():
    squatter = socket.socket()
    try:
        squatter.bind(("127.0.0.1", DEFAULT_BASE_PORT))  # as a running `pktpath up` holds it
        squatter.listen()
    except OSError:
        pass  # something holds it already: the demo must move all the same
    try:
        out = subprocess.run([sys.executable, "-m", "pktpath.cli", "demo"], capture_output=True, text=True,
                             timeout=180)
    finally:
        squatter.close()
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    text = out.stdout
    assert f"the ports from {DEFAULT_BASE_PORT} are in use" in text and "this demo runs on base port" in text
    assert "3 packets transmitted, 3 received" in text
    assert text.count("byte-exact") >= 2  # the fragmented datagram and the TCP stream
    assert "read 100000 bytes to the FIN" in text
    assert "ECONNREFUSED" in text
    assert "Tcp: ActiveOpens=1" in text and "PassiveOpens=1" in text
    assert text.rstrip().endswith("all services stopped cleanly")
