"""pktpath.tools.netstat against net-tools' `netstat -s`: hand-built counters, and a network namespace's real ones
printed by the real netstat."""

import os
import shutil
import subprocess
import sys
import time

import pytest

from pktpath.tools.netstat import netstat_s


def test_opt_number_counters_print_only_when_nonzero_and_number_counters_always():
    assert netstat_s({"Ip": {"Forwarding": 0, "DefaultTTL": 64, "InReceives": 7, "InHdrErrors": 0,
                             "InAddrErrors": 2}}) == [
        "Ip:",
        "    7 total packets received",
        "    2 with invalid addresses",
        "    0 forwarded",
        "    0 incoming packets discarded",
        "    0 incoming packets delivered",
        "    0 requests sent out",
    ]


def test_fields_statistics_c_does_not_find_print_as_name_value_when_nonzero():
    # TCPTimeouts has prose, but bsearch misses it in statistics.c's unsorted table; TW it finds
    assert netstat_s({"TcpExt": {"Novel": 5, "TCPTimeouts": 4, "TW": 3, "TCPLossProbes": 0, "Quiet": 0},
                      "UdpLite": {"InDatagrams": 2}}) == [
        "UdpLite:",
        "    InDatagrams: 2",
        "TcpExt:",
        "    3 TCP sockets finished time wait in fast timer",
        "    0 packet headers predicted",
        "    TCPTimeouts: 4",
        "    Novel: 5",
    ]


def test_icmp_histograms_have_titles_and_entries_eight_deep_and_what_follows_keeps_their_indent():
    assert netstat_s({"IcmpMsg": {"OutType0": 3, "InType8": 3, "OutType3": 1, "InType3": 1},
                      "Icmp": {"InMsgs": 4, "InDestUnreachs": 1, "InEchos": 3, "OutMsgs": 4, "OutEchoReps": 3,
                               "OutDestUnreachs": 1}}) == [
        "Icmp:",
        "    4 ICMP messages received",
        "    0 input ICMP message failed",
        "    ICMP input histogram:",
        "        destination unreachable: 1",
        "        echo requests: 3",
        "    4 ICMP messages sent",
        "    0 ICMP messages failed",
        "    ICMP output histogram:",
        "        destination unreachable: 1",
        "        echo replies: 3",
        "IcmpMsg:",
        "        InType3: 1",
        "        InType8: 3",
        "        OutType0: 3",
        "        OutType3: 1",
    ]


def test_icmpmsg_types_come_sixteen_to_a_title_as_the_kernel_lines_them():
    assert netstat_s({"IcmpMsg": {f"InType{t}": 1 for t in range(20, 3, -1)}}) == (
        ["IcmpMsg:"] + [f"    InType{t}: 1" for t in range(4, 20)] + ["IcmpMsg:", "    InType20: 1"])


def test_groups_come_in_the_kernels_order_unknown_ones_last_and_an_all_zero_icmpmsg_not_at_all():
    assert netstat_s({"Novel": {"B": 2, "A": 0}, "IcmpMsg": {"InType8": 0}, "UdpLite": {}}) == [
        "UdpLite:", "Novel:", "    B: 2"]


# Run inside the namespace: a UDP datagram and a TCP SYN to closed ports (NoPorts, port unreachables, a RST), a
# TCP exchange, and raw ICMP of ten types, whose and whose answers' counters are more than one IcmpMsg line holds.
TRAFFIC = r"""
import socket, struct

def checksum(data):
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total & 0xffff) + (total >> 16)
    return ~(total + (total >> 16)) & 0xffff

with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
    udp.sendto(b"x", ("127.0.0.1", 9))
with socket.socket() as tcp:
    try:
        tcp.connect(("127.0.0.1", 9))
    except ConnectionRefusedError:
        pass
with socket.create_server(("127.0.0.1", 0)) as server:
    with socket.create_connection(server.getsockname()) as client:
        conn, _ = server.accept()
        client.sendall(b"hello" * 2000)
        got = 0
        while got < 10000:
            got += len(conn.recv(65536))
        conn.sendall(b"bye")
        client.recv(3)
        conn.close()
with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as raw:
    for kind in (0, 4, 5, 11, 12, 13, 15, 17, 30, 40):
        msg = struct.pack("!BBHI", kind, 0, 0, 0) + bytes(28)
        raw.sendto(msg[:2] + struct.pack("!H", checksum(msg)) + msg[4:], ("127.0.0.1", 0))
"""


def parse_proc(text):
    """/proc/net/snmp and /proc/net/netstat (header line, value line, ...) as netstat_s's groups."""
    groups = {}
    lines = text.splitlines()
    for header, values in zip(lines[::2], lines[1::2]):
        group, names = header.split(":", 1)
        groups.setdefault(group, {}).update(zip(names.split(), map(int, values.split(":", 1)[1].split())))
    return groups


@pytest.fixture
def netns():
    if os.geteuid() != 0:
        pytest.skip("needs root to create a network namespace")
    if not shutil.which("netstat"):
        pytest.skip("net-tools' netstat is not installed")
    name = f"pktpath-netstat-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=True)


def test_netstat_s_prints_the_kernels_counters_as_net_tools_does(netns):
    def inside(*argv):
        return subprocess.run(["ip", "netns", "exec", netns, *argv], check=True, capture_output=True, text=True,
                              env={**os.environ, "LC_ALL": "C"}).stdout

    inside("ping", "-c", "3", "-i", "0.2", "-q", "127.0.0.1")
    inside(sys.executable, "-c", TRAFFIC)
    for _ in range(50):  # a late ACK or timer may tick a counter: take a netstat the counters agree with
        before = inside("cat", "/proc/net/snmp", "/proc/net/netstat")
        printed = inside("netstat", "-s").splitlines()
        if inside("cat", "/proc/net/snmp", "/proc/net/netstat") == before:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the namespace's counters kept changing")
    groups = parse_proc(before)
    assert groups["Icmp"]["InEchos"] >= 3 and groups["Udp"]["NoPorts"] >= 1
    assert groups["Tcp"]["OutRsts"] >= 1 and groups["Tcp"]["PassiveOpens"] >= 1
    assert printed.count("IcmpMsg:") == 2  # more than 16 types: the kernel's second line pair
    assert netstat_s(groups) == printed
