"""IPv6 multicast listeners between the default topology's hosts (A 02:00:00:00:00:0a, 2001:db8::1;
B ...:0b, 2001:db8::2), every layer its own process: the MLDv2 reports each host sends for its
solicited-node groups once it is up and for a group a program joins (IPV6_JOIN_GROUP under
`pktpath run`), a general query's answer on the wire, a datagram to the joined group delivered
and one to a group nobody joined dropped at ip6_mc_input, and `pktpath ip -6 maddr`. The
reports' bytes are Linux 6.18's between two namespaces with the same MACs and addresses
(tests/services/test_mcast6.py)."""

import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
from scapy.layers.inet6 import ICMPv6MLQuery2, IPv6, IPv6ExtHdrHopByHop, RouterAlert
from scapy.layers.l2 import Ether
from scapy.utils import rdpcap

from pktpath.client import AF_INET6
from pktpath.pb import skbuff_pb2
from pktpath.rpc import l3_pb2_grpc, nic_pb2_grpc

from e2ekit import counters, ipv6_ready, stub, wait_for, with_sockets

pytestmark = pytest.mark.slow
PKTPATH = str(Path(sys.executable).parent / "pktpath")
MAC_A = bytes.fromhex("02000000000a")

# Linux 6.18's reports from fe80::ff:fe00:a, from the IPv6 header on (see tests/services/test_mcast6.py)
QUERY_ANSWER = bytes.fromhex(
    "6000000000380001fe80000000000000000000fffe00000aff020000000000000000000000000016"
    "3a00050200000100" "8f0073da00000002" "02000000ff0200000000000000000001ff00000a"
    "02000000ff0200000000000000000001ff000001")
JOIN_REPORT = bytes.fromhex(
    "6000000000240001fe80000000000000000000fffe00000aff020000000000000000000000000016"
    "3a00050200000100" "8f005ebd00000001" "04000000ff120000000000000000000000001234")
LEAVE_REPORT = bytes.fromhex(
    "6000000000240001fe80000000000000000000fffe00000aff020000000000000000000000000016"
    "3a00050200000100" "8f005fbd00000001" "03000000ff120000000000000000000000001234")

PROGRAM = """\
import socket, struct
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.bind(("::", 5000))
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP,
             socket.inet_pton(socket.AF_INET6, "ff12::1234") + struct.pack("@I", 0))
print("joined", flush=True)
s.settimeout(20)
data, addr = s.recvfrom(100)
print(data.decode(), addr[0], flush=True)
"""


@pytest.fixture(scope="module")
def net(default_topology):
    sup = default_topology
    assert ipv6_ready(sup, "A", "B", timeout=20), "duplicate address detection did not finish"
    yield from with_sockets(sup, "B")


def cli(sup, *words: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pktpath.cli", *words, "--base-port", str(sup.base_port)],
                          capture_output=True, text=True, timeout=60, **kw)


def l3(sup, host: str) -> dict:
    return counters(stub(sup, host, "l3", l3_pb2_grpc.L3Stub))


@contextmanager
def capture(sup, point: str, path: Path):
    """`pktpath tcpdump -i POINT -w PATH` while the block runs; then the MLD reports A sent in it
    (its IPv6 packets whose first header is hop-by-hop), from the IPv6 header on."""
    dump = subprocess.Popen([sys.executable, "-m", "pktpath.cli", "tcpdump", "-i", point, "-w", str(path),
                             "--base-port", str(sup.base_port), "--timeout", "60"], stderr=subprocess.PIPE, text=True)
    assert "listening on" in dump.stderr.readline()
    reports: list[bytes] = []
    try:
        yield reports
    finally:
        dump.send_signal(signal.SIGINT)
        assert dump.wait(20) == 0, dump.stderr.read()
    frames = [bytes(p) for p in rdpcap(str(path))]
    reports += [f[14:] for f in frames if f[6:12] == MAC_A and f[12:14] == b"\x86\xdd" and f[14 + 6] == 0]


def test_each_host_reported_its_groups_after_start_and_answers_a_general_query_with_them_on_the_wire(net, tmp_path):
    """Linux: two reports from :: while the link-local address is tentative, two from it once it
    is not; a general query answered within its Maximum Response Delay with MODE_IS_EXCLUDE for
    both solicited-node groups (ff02::1 is never reported)."""
    sup, _ = net
    for host in ("A", "B"):
        assert wait_for(lambda: l3(sup, host)["Icmp6"].get("OutMLDv2Reports") == 4, timeout=5), l3(sup, host)
    query = Ether(src="02:00:00:00:00:0b", dst="33:33:00:00:00:01") / IPv6(
        src="fe80::ff:fe00:b", dst="ff02::1", hlim=1) / IPv6ExtHdrHopByHop(options=[RouterAlert(value=0)]) / \
        ICMPv6MLQuery2(mrd=1000, QRV=2, QQIC=125)
    nic_a = stub(sup, "A", "nic", nic_pb2_grpc.NicStub)
    with capture(sup, "A:eth0", tmp_path / "query.pcap") as reports:
        nic_a.Inject(skbuff_pb2.FrameBatch(dev="eth0", frames=[skbuff_pb2.Frame(data=bytes(query))]), timeout=5)
        assert wait_for(lambda: l3(sup, "A")["Icmp6"].get("OutMLDv2Reports") == 5, timeout=5)
    assert reports == [QUERY_ANSWER]
    assert l3(sup, "A")["Icmp6"]["InGroupMembQueries"] == 1


def test_ip_6_maddr_lists_each_devices_groups_as_iproute2_does(net):
    out = cli(net[0], "ip", "-6", "maddr", "show", "dev", "eth0", "--on", "A")
    assert out.returncode == 0, out.stderr
    # Linux (whose veth is interface 2, lo 1): the same lines
    assert out.stdout == "1:\teth0\n\tinet6 ff02::1:ff00:a\n\tinet6 ff02::1:ff00:1\n\tinet6 ff02::1\n\tinet6 ff01::1\n"


def test_a_program_that_joins_a_group_reports_it_and_gets_what_is_sent_there_not_what_goes_to_another(net, tmp_path):
    sup, b = net
    sent = l3(sup, "A")["Icmp6"]["OutMLDv2Reports"]
    drops = subprocess.Popen([sys.executable, "-m", "pktpath.cli", "drops", "ip6", "and", "udp", "dst", "port", "5000",
                              "-c", "1", "--timeout", "30", "--on", "A", "--base-port", str(sup.base_port)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert drops.stdout.readline().startswith("Initializing"), drops.stderr.read()
    with capture(sup, "A:eth0", tmp_path / "join.pcap") as reports:
        prog = subprocess.Popen([PKTPATH, "run", "--on", "A", "--base-port", str(sup.base_port), "--",
                                 sys.executable, "-c", PROGRAM], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        assert prog.stdout.readline() == "joined\n", prog.stderr.read()
        maddr = cli(sup, "ip", "-6", "maddr", "--on", "A").stdout
        assert maddr.splitlines()[:2] == ["1:\teth0", "\tinet6 ff12::1234"], maddr
        with b.socket(family=AF_INET6) as tx:
            tx.sendto(b"to nobody", ("ff12::5555", 5000))
            out, err = drops.communicate(timeout=40)
            assert drops.returncode == 0, err
            # Linux 6.18's skb:kfree_skb: location=ip6_mc_input reason: NOT_SPECIFIED (Ip6InMcastPkts only)
            assert out.lstrip("\n").startswith("1 drops at A/l3 (SKB_DROP_REASON_NOT_SPECIFIED) in ip6_mc_input: "), out
            assert "ff12::5555" in out, out
            tx.sendto(b"to the group", ("ff12::1234", 5000))
        out, err = prog.communicate(timeout=30)
        assert prog.returncode == 0, err
        assert out == "to the group fe80::ff:fe00:b\n"  # the link-scoped group's source: B's link-local address
        # closing the socket leaves the group: CHANGE_TO_INCLUDE, twice
        assert wait_for(lambda: l3(sup, "A")["Icmp6"]["OutMLDv2Reports"] == sent + 4, timeout=5)
    assert reports == [JOIN_REPORT, JOIN_REPORT, LEAVE_REPORT, LEAVE_REPORT]
    assert "ff12::1234" not in cli(sup, "ip", "-6", "maddr", "--on", "A").stdout

