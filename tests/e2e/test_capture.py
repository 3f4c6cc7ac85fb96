"""Captures an independent tool reads: `pktpath tcpdump` on a device (the wire's view,
pcap) and at layer boundaries (pcapng), over ARP, ICMP, UDP with fragments and TCP,
opened by tshark with every checksum check on: nothing malformed, no bad checksum,
and each packet where it should be at each boundary."""

import os
import shutil
import signal
import subprocess
import sys

import pytest
from google.protobuf import empty_pb2

from pktpath.client import IPPROTO_ICMP, SHUT_WR, SOCK_STREAM
from pktpath.pb import l2_pb2
from pktpath.rpc import l2_pb2_grpc

from e2ekit import cli_here, stub, wait_for, with_sockets

pytestmark = pytest.mark.slow
A_IP, B_IP = "10.0.0.1", "10.0.0.2"
POINTS = {"A:eth0": "a-eth0.pcap", "A:nic": "a-nic.pcapng", "A:l3": "a-l3.pcapng", "A:l4": "a-l4.pcapng",
          "B:softirq": "b-softirq.pcapng", "B:l3": "b-l3.pcapng", "B:l4": "b-l4.pcapng"}
CHECKS = ["-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE"]
BAD = ("_ws.malformed or _ws.expert.severity >= 8388608"  # PI_ERROR: what Wireshark paints red
       " or ip.checksum.status == 0 or tcp.checksum.status == 0 or udp.checksum.status == 0"
       " or icmp.checksum.status == 0")


def tshark(path, *args: str) -> list[str]:
    tool = shutil.which("tshark")
    if tool is None:
        if os.environ.get("CI"):
            pytest.fail("tshark is not installed (.ci/run installs Debian's tshark)")
        pytest.skip("tshark is not installed (apt-get install tshark)")
    out = subprocess.run([tool, "-r", str(path), *CHECKS, *args], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return [line for line in out.stdout.splitlines() if line]


def fields(path, *names: str, display: str = "") -> list[list[str]]:
    args = ["-T", "fields", "-E", "separator=|"] + [a for n in names for a in ("-e", n)]
    return [line.split("|") for line in tshark(path, *args, *(["-Y", display] if display else []))]


@pytest.fixture(scope="module")
def net(default_topology):
    yield from with_sockets(default_topology, "A", "B")


@pytest.fixture(scope="module")
def captures(net, tmp_path_factory):
    """One exchange of every kind, captured at every point of POINTS at once."""
    sup, a, b = net
    l2_a = stub(sup, "A", "l2", l2_pb2_grpc.L2Stub)
    if any(n.dst == B_IP for n in l2_a.GetNeighbours(empty_pb2.Empty()).entries):
        l2_a.NeighDel(l2_pb2.Neighbour(dev="eth0", dst=B_IP))  # so the capture starts with ARP
    out = tmp_path_factory.mktemp("captures")
    dumps = {}
    for point, name in POINTS.items():
        dumps[point] = subprocess.Popen(
            [sys.executable, "-m", "pktpath.cli", "tcpdump", "-i", point, "-w", str(out / name),
             "--base-port", str(sup.base_port), "--timeout", "60"], stderr=subprocess.PIPE, text=True)
    for point, dump in dumps.items():
        assert "listening on" in dump.stderr.readline(), point
    with b.socket() as rx, a.socket() as tx, a.socket(protocol=IPPROTO_ICMP) as ping:
        rx.bind(("0.0.0.0", 7100))
        ping.sendto(bytes.fromhex("0800000000070001") + b"captured", (B_IP, 0))
        ping.recvmsg(timeout=10)
        tx.sendto(b"u" * 100, (B_IP, 7100))
        tx.sendto(b"f" * 3000, (B_IP, 7100))  # two fragments on the wire
        assert [len(rx.recvfrom(4000, timeout=10)[0]) for _ in range(2)] == [100, 3000]
    with b.socket(SOCK_STREAM) as srv, a.socket(SOCK_STREAM) as cli:
        srv.bind(("0.0.0.0", 7101))
        srv.listen(1)
        cli.connect((B_IP, 7101), timeout=10)
        conn, _ = srv.accept(timeout=10)
        cli.sendall(b"t" * 1000)
        assert conn.recv(2000, timeout=10) == b"t" * 1000
        conn.sendall(b"r" * 500)
        assert cli.recv(2000, timeout=10) == b"r" * 500
        cli.shutdown(SHUT_WR)
        assert conn.recv(10, timeout=10) == b""
        conn.close()
        wait_for(lambda: cli.recv(10, timeout=1) == b"")
    for dump in dumps.values():
        dump.send_signal(signal.SIGINT)  # tcpdump's Ctrl-C: the file is closed whole
    for point, dump in dumps.items():
        assert dump.wait(20) == 0, (point, dump.stderr.read())
    return {point: out / name for point, name in POINTS.items()}


@pytest.mark.parametrize("point", POINTS)
def test_tshark_finds_nothing_malformed_and_no_bad_checksum(captures, point):
    assert len(tshark(captures[point])) > 5, point
    assert tshark(captures[point], "-Y", BAD) == []


def test_the_wire_capture_has_arp_icmp_udp_fragments_and_tcp_with_good_checksums(captures):
    # not the hosts' own IPv6 (DAD, MLD, router solicitations): a topology just started may still send it
    protocols = [p.split(":") for (p,) in fields(captures["A:eth0"], "frame.protocols") if ":ipv6:" not in p]
    assert {"arp", "icmp", "udp", "tcp"} <= {name for p in protocols for name in p}
    assert ["arp"] == protocols[0][-1:], "the capture starts with A resolving B"
    frags = fields(captures["A:eth0"], "ip.flags.mf", display="ip.flags.mf == 1 or ip.frag_offset > 0")
    assert sorted(frags) == [["0"], ["1"], ["1"]]  # 3008 bytes of UDP in 1480 + 1480 + 48
    good = fields(captures["A:eth0"], "ip.checksum.status", "tcp.checksum.status", display="tcp")
    assert len(good) >= 6 and all(row == ["1", "1"] for row in good), good  # verified, not merely unverified


def test_a_layer_capture_says_each_packets_direction_and_entry_point(captures):
    # IPv4's: the hosts' own IPv6 (router solicitations, MLD reports) comes and goes at its times
    rows = fields(captures["B:l3"], "frame.packet_flags_direction", "frame.comment", "ip.flags.mf", "ip.frag_offset",
                  display="not ipv6")
    assert {(d, c) for d, c, _, _ in rows} == {("0x00000001", "ip_rcv"), ("0x00000002", "ip_queue_xmit")}
    assert sum(1 for *_, mf, off in rows if mf == "1" or off not in ("", "0")) == 3  # the fragments, reassembled above
    down = fields(captures["B:l3"], "exported_pdu.prot_name", display="frame.packet_flags_direction == 2")
    assert {p for (p,) in down} == {"tcp"}  # B's L4 sends only TCP; its ICMP replies are born in L3
    up = fields(captures["B:l4"], "frame.comment", "udp.length", display="udp")
    assert ("udp_rcv", str(8 + 3000)) in {tuple(r) for r in up}  # one datagram, whole
    assert fields(captures["B:l4"], "ip.id", display="ip.flags.mf == 1") == []


def test_above_l3_on_the_way_down_a_packet_has_no_ip_header_yet(captures):
    down = fields(captures["A:l3"], "frame.comment", "exported_pdu.prot_name", "eth.type",
                  display="frame.packet_flags_direction == 2")
    assert {c for c, _, _ in down} == {"ip_queue_xmit"}
    assert {p for _, p, _ in down} == {"icmp", "udp", "tcp"} and {e for *_, e in down} == {""}
    tcp = fields(captures["A:l3"], "tcp.checksum.status", "tcp.len", display="exported_pdu and tcp.len == 1000")
    assert tcp == [["1", "1000"]]  # checked with the addresses the flow carries
    payloads = fields(captures["A:l4"], "frame.comment", "frame.len", display="frame.packet_flags_direction == 2")
    assert ("udp_sendmsg", ) in {(c,) for c, _ in payloads}


def test_the_nic_and_softirq_see_whole_frames_both_ways(captures):
    for point in ("A:nic", "B:softirq"):
        rows = fields(captures[point], "frame.packet_flags_direction", "eth.type")
        assert {d for d, _ in rows} == {"0x00000001", "0x00000002"}, point
        assert all(e in ("0x0800", "0x0806", "0x86dd") for _, e in rows), (point, rows)  # IPv6: the hosts' own
        assert {e for _, e in rows} >= {"0x0800", "0x0806"}, (point, rows)


FILTERS = ["", "arp", "icmp", "udp", "tcp", "host 10.0.0.2 and (tcp port 7101 or icmp)", "ip[6:2] & 0x1fff != 0",
           "udp and not port 7100", "tcp[tcpflags] & (tcp-syn|tcp-fin) != 0", "ether broadcast", "greater 1000"]


# Each pcap-filter expression as a Wireshark display filter that means the same. ip.proto#1
# is the outer header's (an ICMP error's quoted header has one too); reassembly is off, so a
# later fragment is in "udp" as pcap-filter's "ip proto 17" has it, with no ports to match.
DISPLAY = {"": "", "arp": "arp", "icmp": "ip.proto#1 == 1", "udp": "ip.proto#1 == 17", "tcp": "ip.proto#1 == 6",
           "host 10.0.0.2 and (tcp port 7101 or icmp)":
               "(ip.src#1 == 10.0.0.2 or ip.dst#1 == 10.0.0.2 or arp.src.proto_ipv4 == 10.0.0.2 or "
               "arp.dst.proto_ipv4 == 10.0.0.2) and ((ip.proto#1 == 6 and tcp.port#1 == 7101) or ip.proto#1 == 1)",
           "ip[6:2] & 0x1fff != 0": "ip.frag_offset#1 > 0",
           "udp and not port 7100": "ip.proto#1 == 17 and not (udp.port#1 == 7100)",
           "tcp[tcpflags] & (tcp-syn|tcp-fin) != 0":
               "ip.proto#1 == 6 and (tcp.flags.syn#1 == 1 or tcp.flags.fin#1 == 1)",
           "ether broadcast": "eth.dst == ff:ff:ff:ff:ff:ff", "greater 1000": "frame.len >= 1000"}


def test_each_filter_chooses_the_frames_tshark_chooses_by_the_same_meaning(captures):
    """An independent reading: Wireshark's own dissectors and display filters, not libpcap."""
    from pktpath.tools.capture import clock

    path = str(captures["A:eth0"])
    assert set(DISPLAY) == set(FILTERS)
    for expression, display in DISPLAY.items():
        times = tshark(path, "-o", "ip.defragment:FALSE", "-T", "fields", "-e", "frame.time_epoch",
                       *(["-Y", display] if display else []))
        theirs = [clock(int(t.replace(".", ""))) for t in times]
        ours = cli_here("tcpdump", "-r", path, *([expression] if expression else []))
        assert ours.returncode == 0, ours.stderr
        assert [line.split()[0] for line in ours.stdout.splitlines() if line[:1].isdigit()] == theirs, expression
        assert theirs or expression == "greater 1000", expression


def _without_time(text: str) -> list[str]:
    return [line.split(" ", 1)[1] if line[:1].isdigit() else line for line in text.splitlines()]


@pytest.mark.parametrize("flags", [[], ["-S"], ["-v"], ["-e", "-S"], ["-XX"]], ids=["plain", "-S", "-v", "-e", "-XX"])
def test_pktpath_tcpdump_reads_and_filters_a_capture_line_for_line_as_tcpdump_does(captures, flags):
    """The wire capture of every kind of exchange, read back by `pktpath tcpdump -r` and by
    tcpdump itself, with the same pcap-filter expressions: the same packets chosen, each printed
    the same (TCP's sequence numbers relative to each connection's first, or with -S absolute)."""
    tool = shutil.which("tcpdump")
    if tool is None:
        if os.environ.get("CI"):
            pytest.fail("tcpdump is not installed (.ci/run installs Debian's tcpdump)")
        pytest.skip("tcpdump is not installed (apt-get install tcpdump)")
    path = str(captures["A:eth0"])
    for expression in FILTERS:
        theirs = subprocess.run([tool, "-n", *flags, "-r", path, *([expression] if expression else [])],
                                capture_output=True, text=True, timeout=60)
        ours = cli_here("tcpdump", *flags, "-r", path, *([expression] if expression else []))
        assert ours.returncode == theirs.returncode == 0, (expression, ours.stderr, theirs.stderr)
        assert _without_time(ours.stdout) == _without_time(theirs.stdout), expression
        assert _without_time(ours.stdout) or expression == "greater 1000" and flags, expression
