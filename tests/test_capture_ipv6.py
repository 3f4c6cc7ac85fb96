"""`pktpath tcpdump` over IPv6 against tcpdump 4.99 itself: pcaps scapy writes (NDP, router
discovery, MLD, every ICMPv6 error, UDP and TCP, extension headers, fragments, packets cut short
and malformed, raw-IP link types), read back by `tcpdump -n -r` and `pktpath tcpdump -r` with the
same flags and pcap-filter expressions, line for line; and what pktpath's own captures write with
IPv6 in them (raw IPv6, PDUs above IPv6) read clean by tshark, checksums verified."""

import os
import random
import shutil
import struct
import subprocess
from types import SimpleNamespace

import pytest
from scapy.all import Ether, Raw, fuzz, raw, wrpcap
from scapy.layers.inet import IP, TCP
from scapy.layers.inet import UDP as UDP4
from scapy.layers.inet6 import (
    UDP, ICMPv6DestUnreach, ICMPv6EchoReply, ICMPv6EchoRequest, ICMPv6HAADRequest, ICMPv6MLDMultAddrRec,
    ICMPv6MLDone, ICMPv6MLQuery, ICMPv6MLQuery2, ICMPv6MLReport, ICMPv6MLReport2, ICMPv6MPSol, ICMPv6ND_NA,
    ICMPv6ND_NS, ICMPv6ND_RA, ICMPv6ND_Redirect, ICMPv6ND_RS, ICMPv6NDOptAdvInterval, ICMPv6NDOptDNSSL,
    ICMPv6NDOptDstLLAddr, ICMPv6NDOptHAInfo, ICMPv6NDOptMTU, ICMPv6NDOptPrefixInfo, ICMPv6NDOptRDNSS,
    ICMPv6NDOptRedirectedHdr, ICMPv6NDOptRouteInfo, ICMPv6NDOptSrcLLAddr, ICMPv6NDOptUnknown, ICMPv6PacketTooBig,
    ICMPv6ParamProblem, ICMPv6TimeExceeded, ICMPv6Unknown, IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop, IPv6ExtHdrRouting, IPv6ExtHdrSegmentRouting, HBHOptUnknown, Jumbo, Pad1, PadN, RouterAlert,
    fragment6,
)

from pktpath import skbuff as s
from pktpath import taps
from pktpath.flow import Flowi6
from pktpath.pb import skbuff_pb2 as pb
from pktpath.pb import trace_pb2
from pktpath.tools.capture import PcapFilter, PcapngWriter, TcpSeqHash, describe, summary_ip6
from pktpath.wire.addr import ip6_from_str

from clikit import cli_here

A, B, LA, LB = "2001:db8::1", "2001:db8::2", "fe80::1", "fe80::2"
MA, MB = "02:00:00:00:00:01", "02:00:00:00:00:02"


def eth(src=MA, dst=MB):
    return Ether(src=src, dst=dst)


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed (.ci/run installs Debian's {name})")
        pytest.skip(f"{name} is not installed (apt-get install {name})")
    return path


def exchange() -> list:
    """What two IPv6 hosts say to each other: NDP both ways, router discovery, MLDv2, ping, every
    ICMPv6 error, UDP and TCP (a handshake, data, a SACK), extension headers and fragments."""
    c, s_ = 1000, 5000

    def tcp(src, dst, sport, dport, flags, seq, ack=0, data=b"", options=()):
        return eth() / IPv6(src=src, dst=dst) / TCP(sport=sport, dport=dport, flags=flags, seq=seq, ack=ack,
                                                   options=list(options)) / data

    quoted = IPv6(src=A, dst=B) / UDP(sport=40000, dport=9) / b"hello"
    return [
        eth() / IPv6(src=A, dst=B) / ICMPv6EchoRequest(id=7, seq=1, data=b"x" * 56),
        eth(MB, MA) / IPv6(src=B, dst=A, fl=0x12345, tc=0x10) / ICMPv6EchoReply(id=7, seq=1, data=b"x" * 56),
        eth(MA, "33:33:ff:00:00:02") / IPv6(src="::", dst="ff02::1:ff00:2", hlim=255) / ICMPv6ND_NS(tgt=B),
        eth(MA, "33:33:ff:00:00:02") / IPv6(src=A, dst="ff02::1:ff00:2", hlim=255) / ICMPv6ND_NS(tgt=B)
        / ICMPv6NDOptSrcLLAddr(lladdr=MA),
        eth(MB, MA) / IPv6(src=B, dst=A, hlim=255) / ICMPv6ND_NA(tgt=B, R=0, S=1, O=1)
        / ICMPv6NDOptDstLLAddr(lladdr=MB),
        eth(MB, "33:33:00:00:00:01") / IPv6(src=LB, dst="ff02::1", hlim=255) / ICMPv6ND_NA(tgt=LB, R=1, S=0, O=1),
        eth() / IPv6(src=B, dst=A, hlim=255) / ICMPv6ND_NA(tgt=B, R=0, S=0, O=0),
        eth(MA, "33:33:00:00:00:02") / IPv6(src=LA, dst="ff02::2", hlim=255) / ICMPv6ND_RS()
        / ICMPv6NDOptSrcLLAddr(lladdr=MA),
        eth(MA, "33:33:00:00:00:02") / IPv6(src="::", dst="ff02::2", hlim=255) / ICMPv6ND_RS(),
        eth(MB, "33:33:00:00:00:01") / IPv6(src=LB, dst="ff02::1", hlim=255)
        / ICMPv6ND_RA(chlim=64, M=0, O=1, routerlifetime=1800) / ICMPv6NDOptSrcLLAddr(lladdr=MB)
        / ICMPv6NDOptMTU(mtu=1500) / ICMPv6NDOptPrefixInfo(prefix="2001:db8::", prefixlen=64, L=1, A=1,
                                                          validlifetime=2592000, preferredlifetime=604800),
        eth(MB, "33:33:00:00:00:01") / IPv6(src=LB, dst="ff02::1", hlim=255)
        / ICMPv6ND_RA(chlim=0, M=1, H=1, prf=3, routerlifetime=0, reachabletime=30000, retranstimer=1000)
        / ICMPv6NDOptRDNSS(lifetime=600, dns=["2001:db8::53", "2001:db8::54"])
        / ICMPv6NDOptDNSSL(lifetime=600, searchlist=["example.com.", "pktpath.test."])
        / ICMPv6NDOptRouteInfo(plen=48, prefix="2001:db8:5::", prf=1, rtlifetime=0xFFFFFFFF)
        / ICMPv6NDOptAdvInterval(advint=60000) / ICMPv6NDOptHAInfo(pref=5, lifetime=100)
        / ICMPv6NDOptPrefixInfo(prefix="2001:db8:1::", prefixlen=64, L=0, A=0, R=1, validlifetime=0xFFFFFFFF,
                                preferredlifetime=0xFFFFFFFF),
        eth(MB, "33:33:00:00:00:01") / IPv6(src=LB, dst="ff02::1", hlim=255) / ICMPv6ND_RA(prf=2)
        / ICMPv6NDOptUnknown(type=99, len=1, data=b"abcdef") / ICMPv6NDOptMTU(mtu=9000),
        eth(MB, "33:33:00:00:00:01") / IPv6(src=LB, dst="ff02::1", hlim=255) / ICMPv6ND_RA()
        / ICMPv6NDOptRouteInfo(plen=0, prefix="::", len=1)
        / ICMPv6NDOptRouteInfo(plen=64, prefix="2001:db8:6::", len=2),
        eth(MB, MA) / IPv6(src=LB, dst=LA, hlim=255) / ICMPv6ND_Redirect(tgt="fe80::3", dst="2001:db8:9::1")
        / ICMPv6NDOptDstLLAddr(lladdr="02:00:00:00:00:03")
        / ICMPv6NDOptRedirectedHdr(pkt=raw(IPv6(src=A, dst="2001:db8:9::1") / UDP(sport=5, dport=6))),
        eth() / IPv6(src=A, dst=B, hlim=255) / ICMPv6ND_NS(tgt=B) / Raw(b"\x01\x00" + bytes(6)),  # option length 0
        eth(MA, "33:33:00:00:00:16") / IPv6(src=LA, dst="ff02::16", hlim=1)
        / IPv6ExtHdrHopByHop(options=[RouterAlert(value=0), PadN(optdata=b"")])
        / ICMPv6MLReport2(records=[ICMPv6MLDMultAddrRec(rtype=4, dst="ff02::1:ff00:1"),
                                   ICMPv6MLDMultAddrRec(rtype=3, dst="ff02::fb", sources=["2001:db8::9"]),
                                   ICMPv6MLDMultAddrRec(rtype=9, dst="ff02::1:3")]),
        eth() / IPv6(src=LA, dst="ff02::1", hlim=1) / IPv6ExtHdrHopByHop(options=[RouterAlert()])
        / ICMPv6MLQuery(mrd=10000, mladdr="::"),
        eth() / IPv6(src=LA, dst="ff02::fb", hlim=1) / ICMPv6MLReport(mladdr="ff02::fb"),
        eth() / IPv6(src=LA, dst="ff02::2", hlim=1) / ICMPv6MLDone(mladdr="ff02::fb"),
        eth() / IPv6(src=LA, dst="ff02::1", hlim=1)
        / ICMPv6MLQuery2(mrd=40000, mladdr="ff02::fb", S=1, QRV=2, QQIC=200, sources=["2001:db8::7", "2001:db8::8"]),
        eth(MB, MA) / IPv6(src=B, dst=A) / ICMPv6DestUnreach(code=4) / quoted,
        eth(MB, MA) / IPv6(src=B, dst=A) / ICMPv6DestUnreach(code=4) / IPv6(src=A, dst=B) / TCP(sport=4000, dport=80),
        eth(MB, MA) / IPv6(src=B, dst=A) / ICMPv6DestUnreach(code=4) / IPv6(src=A, dst=B) / IPv6ExtHdrDestOpt()
        / IPv6ExtHdrFragment(m=1) / UDP(dport=5353),
        *(eth(MB, MA) / IPv6(src=B, dst=A) / ICMPv6DestUnreach(code=code) / IPv6(src=A, dst="2001:db8:1::5")
          / UDP(sport=40000, dport=9) for code in (0, 1, 2, 3, 5, 7)),
        eth(MB, MA) / IPv6(src=B, dst=A) / ICMPv6DestUnreach(code=0) / Raw(b"\x60\0\0\0"),
        eth(MB, MA) / IPv6(src=B, dst=A) / ICMPv6PacketTooBig(mtu=1280) / IPv6(src=A, dst=B) / UDP() / (b"z" * 100),
        eth(MB, MA) / IPv6(src=B, dst=A) / ICMPv6TimeExceeded(code=0)
        / IPv6(src=A, dst="2001:db8:2::1", hlim=1) / UDP(sport=40000, dport=33434),
        eth(MB, MA) / IPv6(src=B, dst=A) / ICMPv6TimeExceeded(code=1) / IPv6(src=A, dst=B) / IPv6ExtHdrFragment(m=1),
        eth(MB, MA) / IPv6(src=B, dst=A) / ICMPv6TimeExceeded(code=5) / quoted,
        *(eth(MB, MA) / IPv6(src=B, dst=A) / ICMPv6ParamProblem(code=code, ptr=40) / quoted
          for code in (0, 1, 2, 3, 9)),
        eth() / IPv6(src=A, dst=B) / ICMPv6Unknown(type=99, code=1, msgbody=b"hello world!"),
        eth() / IPv6(src=A, dst=B) / ICMPv6Unknown(type=201, code=0, msgbody=b"mtrace"),
        eth() / IPv6(src=A, dst=B) / ICMPv6HAADRequest(id=0x1234),
        eth() / IPv6(src=A, dst=B) / ICMPv6MPSol(id=7),
        eth() / IPv6(src=A, dst=B) / UDP(sport=40000, dport=7100) / (b"u" * 100),
        eth() / IPv6(src=A, dst=B) / UDP(sport=1000, dport=2000, chksum=0x1234) / b"x",
        eth() / IPv6(src=A, dst=B) / UDP(sport=1000, dport=2000, chksum=0) / b"x",
        eth() / IPv6(src=A, dst=B) / ICMPv6EchoRequest(id=1, seq=2, cksum=0x1234),
        eth() / IPv6(src=A, dst=B) / IPv6ExtHdrHopByHop(options=[Pad1(), Pad1(), PadN(optdata=b"\0\0")])
        / IPv6ExtHdrDestOpt(options=[HBHOptUnknown(otype=0x3E, optdata=b"ab")]) / UDP(sport=9, dport=10),
        eth() / IPv6(src=A, dst=B) / IPv6ExtHdrHopByHop(options=[Jumbo(jumboplen=70000)]) / UDP(sport=9, dport=10),
        eth() / IPv6(src=A, dst=B) / IPv6ExtHdrHopByHop(options=[HBHOptUnknown(otype=5, optdata=b"abc")])
        / UDP(sport=9, dport=10),
        eth() / IPv6(src=A, dst=B) / IPv6ExtHdrDestOpt(options=[PadN(optdata=b"\0\0\0\0")]) / UDP(sport=1, dport=2),
        eth() / IPv6(src=A, dst=B) / IPv6ExtHdrRouting(type=0, addresses=["2001:db8::3"], segleft=1)
        / UDP(sport=40000, dport=7100) / (b"r" * 10),
        eth() / IPv6(src=A, dst=B) / IPv6ExtHdrRouting(type=0, addresses=["2001:db8::4", "2001:db8::7"], segleft=2,
                                                       reserved=5) / TCP(sport=5, dport=6, flags="SA", ack=1),
        eth() / IPv6(src=A, dst=B) / IPv6ExtHdrRouting(type=2, addresses=["2001:db8::4"], segleft=1)
        / TCP(sport=5, dport=6, flags="S"),
        eth() / IPv6(src=A, dst=B) / IPv6ExtHdrSegmentRouting(addresses=["2001:db8::5", "2001:db8::6"], tag=0xAB,
                                                              lastentry=0) / UDP(sport=7, dport=8),
        eth() / IPv6(src=A, dst=B) / IPv6ExtHdrRouting(type=3, addresses=["2001:db8::4"], segleft=1) / UDP(),
        eth() / IPv6(src=A, dst=B) / IPv6ExtHdrRouting(type=0, addresses=["2001:db8::5"], len=3) / UDP(),
        eth() / IPv6(src=A, dst=B) / IPv6ExtHdrFragment(offset=0, m=1, id=77) / TCP(sport=5, dport=6, flags="S"),
        eth() / IPv6(src=A, dst=B) / IPv6ExtHdrFragment(offset=0, m=1, id=78) / ICMPv6EchoRequest(id=3, seq=4)
        / (b"e" * 40),
        eth() / IPv6(src=A, dst=B) / IPv6ExtHdrFragment(offset=0, m=0, id=79),
        *fragment6(eth() / IPv6(src=A, dst=B) / IPv6ExtHdrFragment(id=0xABCD) / UDP(sport=40000, dport=7100)
                   / (b"f" * 3000), 1500),
        eth() / IPv6(src=A, dst=B, nh=59),
        eth() / IPv6(src=A, dst=B, nh=253) / b"abcdefgh",
        eth() / IPv6(src="::ffff:1.2.3.4", dst="::1.2.3.4", tc=0xB8, fl=1) / UDP(sport=1, dport=2),
        eth() / IPv6(src="1:0:1:1:1:1:1:1", dst="ff02::1:0:0:0:1", nh=50) / bytes(16),
        eth() / IPv6(src=A, dst=B) / IPv6(src="2001:db8:1::1", dst="2001:db8:1::2") / UDP(sport=3, dport=4),
        eth() / IPv6(src=A, dst=B) / IP(src="10.0.0.1", dst="10.0.0.2") / UDP4(sport=3, dport=4),
        # lengths that do not add up
        eth() / IPv6(src=A, dst=B, plen=200) / UDP(sport=1, dport=2) / b"short",
        eth() / IPv6(src=A, dst=B, plen=0) / UDP(sport=1, dport=2) / b"zero plen",
        eth() / IPv6(src=A, dst=B, plen=0) / IPv6ExtHdrDestOpt() / UDP(sport=1, dport=2),
        eth() / IPv6(src=A, dst=B) / UDP(sport=1, dport=2, len=50) / b"bad len",
        eth() / IPv6(src=A, dst=B) / UDP(sport=1, dport=2, len=4) / b"tiny len",
        eth() / IPv6(src=A, dst=B, nh=6) / Raw(b"\x00\x01\x00\x02"),
        eth() / IPv6(src=A, dst=B, nh=58),
        eth() / IPv6(src=A, dst=B, nh=58) / Raw(b"\x80"),
        eth() / IPv6(src=A, dst=B, nh=0) / Raw(b"\x11\x05"),
        Ether(src=MA, dst=MB, type=0x86DD) / IP(src="1.2.3.4", dst="5.6.7.8") / UDP4(sport=1, dport=2),
        Ether(src=MA, dst=MB, type=0x86DD) / Raw(b"\x60" + bytes(20)),
        # a TCP conversation, relative sequence numbers
        tcp(A, B, 40001, 7101, "S", c, options=[("MSS", 1440), ("SAckOK", b""), ("Timestamp", (1, 0)), ("NOP", None),
                                                ("WScale", 7)]),
        tcp(B, A, 7101, 40001, "SA", s_, c + 1, options=[("MSS", 1440), ("SAckOK", b"")]),
        tcp(A, B, 40001, 7101, "A", c + 1, s_ + 1),
        tcp(A, B, 40001, 7101, "PA", c + 1, s_ + 1, b"t" * 100),
        tcp(B, A, 7101, 40001, "A", s_ + 1, c + 101,
            options=[("NOP", None), ("NOP", None), ("SAck", (c + 51, c + 101))]),
        tcp(A, B, 40001, 7101, "FA", c + 101, s_ + 1),
        tcp(A, B, 40002, 7101, "FSPUEC", 9, 0),
        *(tcp(A, B, 4000, 5000, "S", 0, options=opts) for opts in (
            [(27, b"abcdef")], [(254, b"\xf9\x89abcd")], [(254, b"\x12\x34")], [(20, b"ab")],
            [(19, b"0123456789abcdef")],
            [(6, b"abcd"), (7, b"abcd"), (11, b"abcd"), (12, b"abcd"), (13, b"abcd")], [(29, b"\x01\x02abcd")],
            [(34, b"")], [(34, b"abcdef")], [(34, b"abc")], [(4, b"x")], [(2, b"\x05")], [(5, b"abcdefg")],
            [(3, b"\x07\x08")], [(28, b"\x6e\x49")])),
        # hop-by-hop and destination options tcpdump reports
        *(eth() / IPv6(src=A, dst=B) / header(options=[option]) / UDP(sport=1, dport=2) for header, option in (
            (IPv6ExtHdrDestOpt, Jumbo(jumboplen=70000)), (IPv6ExtHdrHopByHop, Jumbo(jumboplen=7000)),
            (IPv6ExtHdrHopByHop, HBHOptUnknown(otype=0xC2, optdata=b"ab")),
            (IPv6ExtHdrDestOpt, HBHOptUnknown(otype=0xC9, optdata=b"a" * 16 + b"\x00\x01\x00\x07\x01xyz")),
            (IPv6ExtHdrDestOpt, HBHOptUnknown(otype=0xC9, optdata=b"a" * 10)),
            (IPv6ExtHdrDestOpt, HBHOptUnknown(otype=0x8B, optdata=b"abcdef")))),
        eth() / IPv6(src=A, dst=B) / IPv6ExtHdrHopByHop(options=[Jumbo(jumboplen=70000), Jumbo(jumboplen=80000)])
        / UDP(sport=1, dport=2),
    ]


def snapped(packets: list, snaplen: int) -> bytes:
    """A classic pcap of packets captured with -s snaplen: each record's bytes cut, its length not."""
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, 1))
    for i, p in enumerate(packets):
        data = raw(p)
        out += struct.pack("<IIII", 1_700_000_000, i, min(len(data), snaplen), len(data)) + data[:snaplen]
    return bytes(out)


@pytest.fixture(scope="module")
def pcaps(tmp_path_factory):
    d = tmp_path_factory.mktemp("pcaps6")
    packets = exchange()
    wrpcap(str(d / "exchange.pcap"), packets)
    (d / "snapped.pcap").write_bytes(snapped(packets, 70))
    random.seed(20250519)  # scapy's fuzz() draws from random: the same packets every run
    stacks = [
        lambda: IPv6(src=A, dst=B) / fuzz(ICMPv6ND_RA()) / fuzz(ICMPv6NDOptPrefixInfo()) / fuzz(ICMPv6NDOptMTU()),
        lambda: IPv6(src=A, dst=B) / fuzz(ICMPv6ND_NA()) / fuzz(ICMPv6NDOptDstLLAddr()),
        lambda: IPv6(src=A, dst=B) / fuzz(ICMPv6DestUnreach()) / IPv6(src=B, dst=A) / fuzz(UDP()),
        lambda: IPv6(src=A, dst=B) / fuzz(ICMPv6MLReport2()),
        lambda: IPv6(src=A, dst=B) / fuzz(ICMPv6MLQuery2()),
        lambda: IPv6(src=A, dst=B) / fuzz(IPv6ExtHdrHopByHop()) / fuzz(UDP()),
        lambda: IPv6(src=A, dst=B) / fuzz(IPv6ExtHdrDestOpt()) / fuzz(TCP()),
        lambda: IPv6(src=A, dst=B) / fuzz(IPv6ExtHdrRouting()) / fuzz(UDP()),
        lambda: IPv6(src=A, dst=B) / fuzz(IPv6ExtHdrFragment()) / fuzz(UDP()),
        lambda: IPv6(src=A, dst=B) / fuzz(TCP()),
        lambda: IPv6(src=A, dst=B, nh=58) / Raw(bytes(random.randrange(256) for _ in range(random.randint(0, 60)))),
        lambda: IPv6(src=A, dst=B, nh=random.choice([0, 43, 44, 60]))
        / Raw(bytes(random.randrange(256) for _ in range(random.randint(0, 60)))),
    ]
    fuzzed = []
    for _ in range(600):
        data = raw(eth() / random.choice(stacks)())
        if random.random() < 0.2:  # some cut short on the wire
            data = data[:random.randint(14, len(data))]
        fuzzed.append(Ether(data))
    wrpcap(str(d / "fuzzed.pcap"), fuzzed)
    ip_packets = [raw(p.payload) for p in packets] + [raw(IP(src="10.0.0.1", dst="10.0.0.2")
                                                      / UDP4(sport=1234, dport=5678) / b"v4")]
    wrpcap(str(d / "raw.pcap"), ip_packets, linktype=101)  # LINKTYPE_RAW: IPv4 and IPv6 by version
    wrpcap(str(d / "ipv6.pcap"), ip_packets[:-1], linktype=229)  # LINKTYPE_IPV6
    return d


def lines(out: str) -> list[str]:
    """The output without each packet's time."""
    return [line.split(" ", 1)[1] if line[:2].isdigit() else line for line in out.splitlines()]


def both(path, *args: str) -> tuple[list[str], list[str]]:
    theirs = subprocess.run([tool("tcpdump"), "-n", *args, "-r", str(path)], capture_output=True, text=True,
                            timeout=60)
    ours = cli_here("tcpdump", *args, "-r", str(path))
    assert theirs.returncode == ours.returncode == 0, ours.stderr
    return lines(theirs.stdout), lines(ours.stdout)


FLAGS = [[], ["-v"], ["-e"], ["-S"], ["-X"], ["-XX", "-v"], ["-e", "-v"]]


@pytest.mark.parametrize("flags", FLAGS, ids=" ".join)
def test_every_kind_of_ipv6_packet_prints_line_for_line_as_tcpdump_prints_it(pcaps, flags):
    theirs, ours = both(pcaps / "exchange.pcap", *flags)
    assert ours == theirs
    assert sum(1 for line in ours if not line.startswith(("\t", "    "))) == len(exchange())  # a line each


def test_the_lines_say_what_tcpdump_says_of_ndp_fragments_and_extension_headers(pcaps):
    """Spelled out, so that a change in both printers at once cannot pass unseen."""
    _, ours = both(pcaps / "exchange.pcap", "-v")
    text = "\n".join(ours)
    assert (f"ICMP6, neighbor solicitation, length 32, who has {B}\n"
            f"\t  source link-address option (1), length 8 (1): {MA}") in text
    assert f"ICMP6, neighbor advertisement, length 32, tgt is {B}, Flags [solicited, override]" in text
    assert "hop limit 64, Flags [other stateful], pref high, router lifetime 1800s" in text
    assert "HBH (rtalert: 0x0000) (padn) [icmp6 sum ok] ICMP6, multicast listener report v2, 3 group record(s)" in text
    assert "frag (0x0000abcd:0|1432) 40000 > 7100: UDP, length 3000" in text
    assert "RT6 (len=2, type=0 [Deprecated], segleft=1, rsv=0x0, [0]2001:db8::3) 40000 > 7100: [udp sum ok]" in text
    assert "(class 0x10, flowlabel 0x12345, hlim 64, next-header ICMPv6 (58) payload length: 64)" in text
    assert "[bad udp cksum 0x1234 -> " in text
    _, plain = both(pcaps / "exchange.pcap")
    assert f"IP6 {A} > {B}: frag (1432|1432)" in plain
    assert f"IP6 {A}.40001 > {B}.7101: Flags [P.], seq 1:101, ack 1, win 8192, length 100" in plain


@pytest.mark.parametrize("flags", [[], ["-v"], ["-X"], ["-e"]], ids=" ".join)
def test_packets_captured_short_by_snaplen_end_where_tcpdumps_end(pcaps, flags):
    """Cut at 70 bytes: the wire length still counts, what is missing ends " [|proto]", and -X shows
    the whole frame when tcpdump's printer gave up mid-way."""
    theirs, ours = both(pcaps / "snapped.pcap", *flags)
    assert ours == theirs
    assert any(line.endswith("[|icmp6]") for line in ours) and any("[|tcp]" in line for line in ours)


@pytest.mark.parametrize("flags", [[], ["-v"], ["-X"]], ids=" ".join)
def test_fuzzed_ipv6_prints_as_tcpdump_prints_it(pcaps, flags):
    """600 packets scapy's fuzz() fills with random fields, a fifth of them cut short."""
    theirs, ours = both(pcaps / "fuzzed.pcap", *flags)
    assert len(ours) >= 600 and ours == theirs


@pytest.mark.parametrize("name", ["raw.pcap", "ipv6.pcap"])
@pytest.mark.parametrize("flags", [[], ["-v"], ["-e"], ["-X"]], ids=" ".join)
def test_raw_ip_link_types_print_each_packet_by_its_version(pcaps, name, flags):
    theirs, ours = both(pcaps / name, *flags)
    assert ours == theirs and ours


FILTERS = ["ip6", "icmp6", "ip6 host 2001:db8::2", "udp and ip6", "ip6 and tcp", "icmp6 and ip6[40] == 135",
           "ip6 multicast", "ip6 proto 58", "ip6 protochain 17", "src net fe80::/10", "ip6[6] == 44",
           "udp port 7100 and ip6", "not ip6", "ip"]


@pytest.mark.parametrize("name", ["exchange.pcap", "raw.pcap"])
def test_ipv6_filters_choose_the_packets_tcpdump_chooses(pcaps, name):
    chosen = {}
    for expression in FILTERS:
        theirs, ours = both(pcaps / name, expression)
        assert ours == theirs, expression
        chosen[expression] = len(ours)
    assert chosen["ip6"] >= chosen["icmp6"] > chosen["icmp6 and ip6[40] == 135"] > 0
    assert sum(1 for n in chosen.values() if n) >= len(FILTERS) - 4, chosen


def frame(data: bytes, linktype: int = 1, **kw) -> SimpleNamespace:
    fields = {"ts_ns": 0, "len": len(data), "dev": "", "func": "", "outgoing": False, "upper": "", "saddr": "",
              "daddr": ""}
    return SimpleNamespace(data=data, linktype=linktype, **{**fields, **kw})


def test_relative_sequence_numbers_are_kept_apart_for_ipv4_and_ipv6_as_tcpdumps_two_tables(tmp_path):
    """tcp_seq_hash4 and tcp_seq_hash6: the same ports over IPv4 and IPv6 are two conversations."""
    def seg(ip, flags, seq, ack=0):
        return eth() / ip / TCP(sport=40000, dport=80, flags=flags, seq=seq, ack=ack)

    v4, v6 = IP(src="10.0.0.1", dst="10.0.0.2"), IPv6(src="::a00:1", dst="::a00:2")  # the same address ints
    packets = [seg(v4, "SA", 100, 1), seg(v6, "SA", 900, 1), seg(v4, "A", 150, 1), seg(v6, "A", 950, 1)]
    wrpcap(str(tmp_path / "mixed.pcap"), packets)
    theirs, ours = both(tmp_path / "mixed.pcap")
    assert ours == theirs
    seqs = TcpSeqHash()
    texts = [describe(frame(raw(p)), seqs=seqs) for p in packets]
    assert "ack 1," in texts[2] and "ack 1," in texts[3] and texts[3].startswith("IP6 ::10.0.0.1.40000")


def test_a_truncated_packet_tells_the_hex_dump_to_start_at_the_link_header():
    data = raw(IPv6(src=A, dst=B) / ICMPv6DestUnreach(code=0) / Raw(b"\x60\0\0\0"))
    status: dict = {}
    assert summary_ip6(data, status=status).endswith("unreachable route [|icmp6]") and status == {"whole": True}
    status = {}
    assert summary_ip6(raw(IPv6(src=A, dst=B, nh=6) / Raw(b"\0\1\0\2")), status=status).endswith(" [|tcp]")
    assert status == {}  # tcp_print's own check: nd_print_trunc, no longjmp


CHECKS = ["-o", "udp.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE"]


def tshark_fields(path, *names: str) -> list[list[str]]:
    args = [a for n in names for a in ("-e", n)]
    out = subprocess.run([tool("tshark"), "-r", str(path), *CHECKS, "-T", "fields", "-E", "separator=|", *args],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return [line.split("|") for line in out.stdout.splitlines()]


def test_a_layer_capture_with_raw_ipv6_and_pdus_above_ipv6_reads_clean_in_tshark(tmp_path):
    """Raw IPv6 (LINKTYPE_IPV6) as L2's entry sees it from L3, and exported PDUs above IPv6 tagged
    with IPv6 addresses (EXP_PDU_TAG_IPV6_SRC/DST), which tshark needs to verify a UDP checksum."""
    ip6 = raw(IPv6(src=A, dst=B) / UDP(sport=40000, dport=7100) / b"hello six")
    seg = ip6[40:]
    bad = seg[:6] + b"\x12\x34" + seg[8:]
    path = tmp_path / "l3.pcapng"
    with open(path, "wb") as f:
        w = PcapngWriter(f, "A:l3")
        w.write(trace_pb2.CapturedFrame(ts_ns=1, len=len(seg), data=seg, linktype=252, upper="udp", saddr=A, daddr=B,
                                        outgoing=True, func="udpv6_sendmsg"))
        w.write(trace_pb2.CapturedFrame(ts_ns=2, len=len(bad), data=bad, linktype=252, upper="udp", saddr=A,
                                        daddr=B))
        w.write(trace_pb2.CapturedFrame(ts_ns=3, len=5, data=b"hello", linktype=252, upper="data", daddr=B))
        w.write(trace_pb2.CapturedFrame(ts_ns=4, len=len(ip6), data=ip6, linktype=229, outgoing=True,
                                        func="neigh_output"))
    rows = tshark_fields(path, "exported_pdu.ipv6_src", "exported_pdu.ipv6_dst", "udp.checksum.status",
                         "frame.protocols", "_ws.malformed")
    assert rows == [[A, B, "1", "exported_pdu:udp:data", ""], [A, B, "0", "exported_pdu:udp:data", ""],
                    ["", B, "", "exported_pdu:data", ""], ["", "", "1", "ipv6:udp:data", ""]]


def test_filters_match_raw_ipv6_frames_and_pdus_above_ipv6_by_their_flow():
    ip6 = raw(IPv6(src=A, dst=B) / UDP(sport=40000, dport=7100) / b"x")
    pdu = frame(ip6[40:], 252, upper="udp", saddr=A, daddr=B)
    for expression, want in [("ip6", True), ("udp and ip6 host 2001:db8::2", True), ("udp port 7100", True),
                             ("ip", False), ("icmp6", False), ("ip6 dst host 2001:db8::1", False)]:
        flt = PcapFilter(expression)
        assert flt.match(frame(ip6, 229)) is want and flt.match(pdu) is want, expression
    assert PcapFilter("udp and ip").match(frame(raw(IP() / UDP4()), 228))  # raw IPv4 still IPv4


def test_a_layer_tap_names_raw_ipv6_as_ipv6_and_an_ipv6_sockets_flow_by_its_destination():
    packet = raw(IPv6(src=A, dst=B) / UDP(sport=1, dport=2))
    skb = s.alloc_skb(128)
    s.skb_reserve(skb, 64)
    s.skb_put_data(skb, packet)
    s.skb_reset_network_header(skb)
    assert taps.at_boundary(skb, pb.LAYER_L2)[1] == taps.LINKTYPE_IPV6
    payload = s.alloc_skb(64)
    s.skb_put_data(payload, b"data")
    payload.cb = Flowi6(ip6_from_str(B), 7100).pack()
    data, linktype, upper = taps.at_boundary(payload, pb.LAYER_L4)
    assert (bytes(data), linktype) == (b"data", taps.LINKTYPE_WIRESHARK_UPPER_PDU)
    assert upper == {"upper": "data", "daddr": ip6_from_str(B), "family": 6}
    received = s.alloc_skb(128)
    s.skb_put_data(received, raw(eth() / IPv6(src=A, dst=B)))
    assert taps.at_boundary(received, pb.LAYER_L2)[1] == taps.LINKTYPE_ETHERNET  # __netif_receive_skb_core's


def test_describe_prints_a_pdu_above_ipv6_with_its_flow():
    line = describe(frame(b"hello", 252, upper="data", daddr=B))
    assert line == f"(src not chosen yet) > {B}: payload, length 5 (no transport header yet)"
    assert describe(frame(raw(IPv6(src=A, dst=B) / UDP(sport=1, dport=2)), 229), link=True) == \
        f"ip: {A}.1 > {B}.2: UDP, length 0"
