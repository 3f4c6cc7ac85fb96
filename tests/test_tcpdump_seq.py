"""pktpath tcpdump's relative TCP sequence numbers (print-tcp.c's tcp_seq_hash) against
tcpdump's, on a conversation scapy writes: the handshake, data both ways, a SACK, a second
connection on the same ports after the first, and sequence numbers that wrap."""

import shutil
import subprocess
import sys

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

A, B = "10.0.0.1", "10.0.0.2"


def segment(src, dst, sport, dport, flags, seq, ack=0, data=b"", options=()):
    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    return eth / IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, flags=flags, seq=seq, ack=ack,
                                            options=list(options)) / data


def conversation(client_isn: int, server_isn: int, sport: int) -> list:
    c, s = client_isn, server_isn
    m = 0xFFFFFFFF
    return [
        segment(A, B, sport, 5555, "S", c, options=[("MSS", 1460), ("SAckOK", b"")]),
        segment(B, A, 5555, sport, "SA", s, (c + 1) & m, options=[("MSS", 1460), ("SAckOK", b"")]),
        segment(A, B, sport, 5555, "A", (c + 1) & m, (s + 1) & m),
        segment(A, B, sport, 5555, "PA", (c + 1) & m, (s + 1) & m, b"x" * 100),
        segment(B, A, 5555, sport, "A", (s + 1) & m, (c + 1) & m,
                options=[("NOP", None), ("NOP", None), ("SAck", ((c + 51) & m, (c + 101) & m))]),
        segment(B, A, 5555, sport, "PA", (s + 1) & m, (c + 101) & m, b"y" * 30),
        segment(A, B, sport, 5555, "FA", (c + 101) & m, (s + 31) & m),
    ]


def test_relative_sequence_numbers_are_tcpdumps(tmp_path):
    tool = shutil.which("tcpdump")
    if tool is None:
        pytest.skip("tcpdump is not installed (.ci/run installs it)")
    path = tmp_path / "seq.pcap"
    wrpcap(str(path), conversation(1000, 5000, 40000) + conversation(0xFFFFFFF0, 0xFFFFFF00, 40000)
           + conversation(7, 9, 5555))  # equal ports: the addresses choose the entry's direction
    theirs = subprocess.run([tool, "-n", "-r", path], capture_output=True, text=True, timeout=60)
    ours = subprocess.run([sys.executable, "-m", "pktpath.cli", "tcpdump", "-r", str(path)], capture_output=True,
                          text=True, timeout=60)
    strip = lambda text: [line.split(" ", 1)[1] for line in text.splitlines()]  # noqa: E731 (the time)
    assert ours.returncode == theirs.returncode == 0, ours.stderr
    assert strip(ours.stdout) == strip(theirs.stdout)
    assert "seq 1:101, ack 1," in ours.stdout and "sack 1 {51:101}" in ours.stdout  # relative, so tested
