"""The IPv6 codec (pktpath.wire.ipv6) and UDP over IPv6 (pktpath.wire.udp with ipv6=True).

scapy (scapy.layers.inet6) is the oracle in both directions; golden bytes are written out by
hand; the extension-header walk is held to what Linux 6.18 did with the same packets, sent
from one network namespace to another over a veth (the ICMPv6 Parameter Problem code and
pointer it answered with, or that it delivered the datagram to a UDP socket).
"""

import ipaddress
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet6 import (
    UDP, HBHOptUnknown, IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, IPv6ExtHdrRouting, Jumbo,
    Pad1, PadN, RouterAlert, in6_chksum,
)
from scapy.packet import Raw, raw

from pktpath.wire.addr import ip6_from_str
from pktpath.wire.errors import ChecksumError, IntegrityError, SanityError, TruncatedError, WireError
from pktpath.wire.ipv6 import (
    ICMPV6_HDR_FIELD, ICMPV6_HDR_INCOMP, ICMPV6_UNK_OPTION, IP6_MF, IPV6_TLV_ACT_DISCARD, IPV6_TLV_ACT_ICMP,
    IPV6_TLV_ACT_ICMP_UCAST, IPV6_TLV_ACT_SKIP, NEXTHDR_AUTH, NEXTHDR_DEST, NEXTHDR_FRAGMENT, NEXTHDR_HOP,
    NEXTHDR_ICMP, NEXTHDR_NONE, NEXTHDR_ROUTING, NEXTHDR_TCP, NEXTHDR_UDP, ExtHdrInvalid, ExtHdrRefused,
    ExtHdrTruncated, Ipv6DestOptHdr, Ipv6FragHdr, Ipv6Hdr, Ipv6HopOptHdr, Ipv6OptJumbo, Ipv6OptPad1, Ipv6OptPadN,
    Ipv6OptRouterAlert, Ipv6OptUnknown, Ipv6ParamProb, Ipv6RtHdr, Ipv6UnknownOption, encode_tlv_options,
    ip6_parse_tlv, ip6_tlvopt_unknown, ipv6_ext_hdr, ipv6_parse_exthdrs, ipv6_skip_exthdr, ipv6frag_thdr_truncated,
)
from pktpath.wire.udp import UdpHdr
from wirekit import raises_wire, ref_checksum

ORACLE = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FUZZ = settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])

SRC, DST = "2001:db8::1", "2001:db8::2"
SADDR, DADDR = ip6_from_str(SRC), ip6_from_str(DST)
ALLNODES = ip6_from_str("ff02::1")

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
addrs = st.integers(0, (1 << 128) - 1)
ports = st.integers(1, 0xFFFF)
payloads = st.binary(max_size=64)
# option types a receiver skips (action bits 00) that mean nothing to the kernel's parser
skip_types = st.integers(2, 63).filter(lambda t: t not in (5, 7, 49))


def a6(addr: int) -> str:
    return str(ipaddress.IPv6Address(addr))


def i6(text: str) -> int:
    return int(ipaddress.IPv6Address(text))


def walk(pkt: bytes):
    """What the receive path sees: the fixed header, then the walk."""
    hdr = Ipv6Hdr.from_bytes(pkt)
    return hdr, ipv6_parse_exthdrs(hdr, pkt)


def linux(pkt) -> bytes:
    """A scapy packet as bytes, from the IPv6 header."""
    return raw(pkt)


def udp6(dport=9000):
    return UDP(sport=1234, dport=dport) / Raw(b"hello")


def ip6(dst=DST, **kw):
    return IPv6(src=SRC, dst=dst, **kw)


# -- golden bytes ----------------------------------------------------------------------

GOLDEN_IP6 = bytes.fromhex(
    "6b812345"                              # version 6, tclass 0xb8 (EF), flow label 0x12345
    "000d" "11" "40"                        # payload_len 13, nexthdr UDP, hop_limit 64
    "20010db8000000000000000000000001"      # saddr
    "20010db8000000000000000000000002")     # daddr
GOLDEN_UDP6 = bytes.fromhex("04d2" "2328" "000d" "3893") + b"hello"  # checksum worked out below


def test_golden_fixed_header_parses_to_its_fields():
    hdr = Ipv6Hdr.from_bytes(GOLDEN_IP6 + GOLDEN_UDP6)
    assert hdr == Ipv6Hdr(SADDR, DADDR, NEXTHDR_UDP, 64, 0xB8, 0x12345, 13)
    assert hdr.version == 6 and hdr.header_len == 40


def test_golden_fixed_header_is_built_byte_for_byte():
    assert Ipv6Hdr(SADDR, DADDR, NEXTHDR_UDP, 64, 0xB8, 0x12345).to_bytes(13) == GOLDEN_IP6


def test_golden_udp_over_ipv6_checksum_covers_the_ipv6_pseudo_header():
    pseudo = SADDR.to_bytes(16, "big") + DADDR.to_bytes(16, "big") + struct.pack("!IxxxB", 13, 17)  # RFC 8200 8.1
    assert ref_checksum(pseudo + GOLDEN_UDP6[:6] + b"\0\0" + GOLDEN_UDP6[8:]) == 0x3893
    assert UdpHdr(1234, 9000).to_bytes(b"hello", SADDR, DADDR, ipv6=True) == GOLDEN_UDP6[:8]
    assert UdpHdr.from_bytes(GOLDEN_UDP6, SADDR, DADDR, ipv6=True) == UdpHdr(1234, 9000, 13, 0x3893)


# The kernel's own MLD hop-by-hop header (net/ipv6/mcast.c, mld_newpack's ra[]).
GOLDEN_MLD_HBH = bytes((58, 0, 5, 2, 0, 0, 1, 0))


def test_golden_mld_router_alert_header():
    assert Ipv6HopOptHdr(NEXTHDR_ICMP, (Ipv6OptRouterAlert(0),)).to_bytes() == GOLDEN_MLD_HBH
    assert Ipv6HopOptHdr.from_bytes(GOLDEN_MLD_HBH) == Ipv6HopOptHdr(
        NEXTHDR_ICMP, (Ipv6OptRouterAlert(0), Ipv6OptPadN(0)))


def test_golden_destination_options_routing_and_fragment_headers():
    dest = bytes.fromhex("2b00" "1e026162" "0100")        # unknown 0x1e "ab", PadN(0); next: routing
    rt = bytes.fromhex("2c02" "00" "00" "00000000") + bytes(15) + b"\x01"  # type 0, left 0, ::1; next: frag
    frag = bytes.fromhex("11" "00" "05c9" "deadbeef")     # offset 1480, M; id 0xdeadbeef; next: UDP
    assert Ipv6DestOptHdr(NEXTHDR_ROUTING, (Ipv6OptUnknown(0x1E, b"ab"),)).to_bytes() == dest
    assert Ipv6RtHdr(NEXTHDR_FRAGMENT, 0, 0, bytes(4) + (1).to_bytes(16, "big")).to_bytes() == rt
    assert Ipv6FragHdr(NEXTHDR_UDP, 1480 | IP6_MF, 0xDEADBEEF).to_bytes() == frag
    fh = Ipv6FragHdr.from_bytes(frag)
    assert (fh.frag_offset, fh.mf, fh.identification, fh.is_fragment) == (1480, True, 0xDEADBEEF, True)
    assert Ipv6RtHdr.from_bytes(rt).hdrlen == 2
    pkt = Ipv6Hdr(SADDR, DADDR, NEXTHDR_DEST).to_bytes(len(dest + rt + frag) + 8) + dest + rt + frag + bytes(8)
    _, chain = walk(pkt)
    assert [type(h) for h in chain.headers] == [Ipv6DestOptHdr, Ipv6RtHdr, Ipv6FragHdr]
    assert chain.offsets == (40, 48, 72)
    assert (chain.nexthdr, chain.offset, chain.nhoff) == (NEXTHDR_FRAGMENT, 72, 48)  # a fragment: reassemble


# -- the scapy oracle ------------------------------------------------------------------


@st.composite
def tlv_options(draw, hop: bool):
    """Options a receiver keeps, with padding (never more than 7 bytes in a row) between them."""
    options = []
    for _ in range(draw(st.integers(0, 4))):
        pad = draw(st.integers(0, 3))
        if pad == 1:
            options.append(Ipv6OptPad1())
        elif pad:
            options.append(Ipv6OptPadN(pad - 2))
        if hop and draw(st.booleans()):
            options.append(Ipv6OptRouterAlert(draw(u16)))
        else:
            options.append(Ipv6OptUnknown(draw(skip_types), draw(st.binary(max_size=10))))
    return tuple(options)


@st.composite
def ext_chains(draw):
    """A chain the receive path walks to its end: hop-by-hop first if at all, then destination
    options, routing headers with nothing left to do, at most one atomic fragment header."""
    chain = []
    if draw(st.booleans()):
        chain.append(Ipv6HopOptHdr(0, draw(tlv_options(True))))
    fragment = False
    for kind in draw(st.lists(st.sampled_from(["dest", "rt", "frag"]), max_size=3)):
        if kind == "dest":
            chain.append(Ipv6DestOptHdr(0, draw(tlv_options(False))))
        elif kind == "rt":
            hops = draw(st.lists(addrs, max_size=2))
            data = draw(u32).to_bytes(4, "big") + b"".join(h.to_bytes(16, "big") for h in hops)
            chain.append(Ipv6RtHdr(0, 0, 0, data))
        elif not fragment:
            fragment = True
            chain.append(Ipv6FragHdr(0, draw(st.integers(0, 3)) << 1, draw(u32), draw(u8)))
    return chain


def linked(chain, last: int) -> list:
    """The chain with each header's nexthdr naming the one after it."""
    nexts = [h.NEXTHDR for h in chain[1:]] + [last]
    return [h._replace(nexthdr=n) for h, n in zip(chain, nexts)]


def to_scapy(h):
    if isinstance(h, (Ipv6HopOptHdr, Ipv6DestOptHdr)):
        cls = IPv6ExtHdrHopByHop if isinstance(h, Ipv6HopOptHdr) else IPv6ExtHdrDestOpt
        return cls(options=[scapy_option(o) for o in h.options])
    if isinstance(h, Ipv6RtHdr):
        hops = [a6(int.from_bytes(h.data[i:i + 16], "big")) for i in range(4, len(h.data), 16)]
        return IPv6ExtHdrRouting(type=h.type, segleft=h.segments_left, reserved=int.from_bytes(h.data[:4], "big"),
                                 addresses=hops)
    return IPv6ExtHdrFragment(res1=h.reserved, offset=h.frag_off >> 3, res2=h.frag_off >> 1 & 3, m=h.frag_off & 1,
                              id=h.identification)


def scapy_option(o):
    if isinstance(o, Ipv6OptPad1):
        return Pad1()
    if isinstance(o, Ipv6OptPadN):
        return PadN(optdata=bytes(o.datalen))
    if isinstance(o, Ipv6OptRouterAlert):
        return RouterAlert(value=o.value)
    return HBHOptUnknown(otype=o.type, optdata=o.data)


def no_padding(options) -> list:
    return [o for o in options if not isinstance(o, (Ipv6OptPad1, Ipv6OptPadN))]


fixed_fields = st.fixed_dictionaries({
    "saddr": addrs, "daddr": addrs.filter(lambda a: a >> 120 != 0xFF), "hop_limit": u8, "tclass": u8,
    "flow_lbl": st.integers(0, 0xFFFFF),
})


@ORACLE
@given(fixed_fields, ext_chains(), ports, ports, payloads)
def test_scapy_built_packets_parse_to_the_fields_scapy_was_given(f, chain, sport, dport, payload):
    layers = ip6(dst=a6(f["daddr"]))
    layers.src, layers.hlim, layers.tc, layers.fl = a6(f["saddr"]), f["hop_limit"], f["tclass"], f["flow_lbl"]
    for h in chain:
        layers = layers / to_scapy(h)
    data = raw(layers / UDP(sport=sport, dport=dport) / Raw(payload))

    hdr, walked = walk(data)
    assert hdr == Ipv6Hdr(f["saddr"], f["daddr"], chain[0].NEXTHDR if chain else NEXTHDR_UDP, f["hop_limit"],
                          f["tclass"], f["flow_lbl"], len(data) - 40)
    assert [type(h) for h in walked.headers] == [type(h) for h in chain]
    assert (walked.nexthdr, walked.offset) == (NEXTHDR_UDP, len(data) - 8 - len(payload))
    for ours, given_ in zip(walked.headers, linked(chain, NEXTHDR_UDP)):
        if isinstance(ours, (Ipv6HopOptHdr, Ipv6DestOptHdr)):
            assert no_padding(ours.options) == no_padding(given_.options)
            assert ours.nexthdr == given_.nexthdr
        else:
            assert ours == given_
    # what we build from what we parsed is what scapy built
    assert hdr.to_bytes() + b"".join(h.to_bytes() for h in walked.headers) == data[:walked.offset]
    uh = UdpHdr.from_bytes(data[walked.offset:], hdr.saddr, hdr.daddr, ipv6=True)  # the checksum verifies
    assert (uh.source, uh.dest, uh.len) == (sport, dport, 8 + len(payload))


@ORACLE
@given(fixed_fields, ext_chains(), ports, ports, payloads)
def test_packets_pktpath_builds_parse_in_scapy_to_the_same_fields(f, chain, sport, dport, payload):
    chain = linked(chain, NEXTHDR_UDP)
    udp = UdpHdr(sport, dport).to_bytes(payload, f["saddr"], f["daddr"], ipv6=True) + payload
    exts = b"".join(h.to_bytes() for h in chain)
    nexthdr = chain[0].NEXTHDR if chain else NEXTHDR_UDP
    data = Ipv6Hdr(nexthdr=nexthdr, **f).to_bytes(len(exts) + len(udp)) + exts + udp

    p = IPv6(data)
    assert (p.version, i6(p.src), i6(p.dst), p.hlim, p.tc, p.fl, p.plen, p.nh) == (
        6, f["saddr"], f["daddr"], f["hop_limit"], f["tclass"], f["flow_lbl"], len(data) - 40, nexthdr)
    layer = p.payload
    for h in chain:
        assert layer.nh == h.nexthdr
        if isinstance(h, (Ipv6HopOptHdr, Ipv6DestOptHdr)):
            assert isinstance(layer, IPv6ExtHdrHopByHop if isinstance(h, Ipv6HopOptHdr) else IPv6ExtHdrDestOpt)
            assert b"".join(raw(o) for o in layer.options) == encode_tlv_options(h.options)
            assert (layer.len + 1) * 8 == len(h.to_bytes())
        elif isinstance(h, Ipv6RtHdr):
            assert isinstance(layer, IPv6ExtHdrRouting)
            assert (layer.type, layer.segleft, layer.reserved) == (0, 0, int.from_bytes(h.data[:4], "big"))
            assert [i6(x) for x in layer.addresses] == [
                int.from_bytes(h.data[i:i + 16], "big") for i in range(4, len(h.data), 16)]
        else:
            assert isinstance(layer, IPv6ExtHdrFragment)
            assert (layer.offset, layer.m, layer.res1, layer.res2, layer.id) == (
                0, 0, h.reserved, h.frag_off >> 1 & 3, h.identification)
        layer = layer.payload
    assert isinstance(layer, UDP)
    assert (layer.sport, layer.dport, layer.len) == (sport, dport, len(udp))
    udp_zeroed = udp[:6] + b"\0\0" + udp[8:]
    assert layer.chksum == (in6_chksum(17, layer, udp_zeroed) or 0xFFFF)


@pytest.mark.parametrize("datalen", range(0, 13))
def test_options_headers_are_padded_to_8_bytes_as_scapy_pads_them(datalen):
    option = Ipv6OptUnknown(0x1E, b"a" * datalen)
    ours = Ipv6HopOptHdr(NEXTHDR_UDP, (option,)).to_bytes()
    assert len(ours) % 8 == 0
    assert ours == raw(IPv6ExtHdrHopByHop(nh=17, options=[HBHOptUnknown(otype=0x1E, optdata=b"a" * datalen)]))
    assert no_padding(Ipv6HopOptHdr.from_bytes(ours).options) == [option]


def test_router_alert_and_jumbo_options_build_as_scapy_builds_them():
    assert Ipv6HopOptHdr(NEXTHDR_UDP, (Ipv6OptRouterAlert(2),)).to_bytes() == raw(
        IPv6ExtHdrHopByHop(nh=17, options=[RouterAlert(value=2)]))
    assert Ipv6HopOptHdr(NEXTHDR_UDP, (Ipv6OptJumbo(70000),)).to_bytes() == raw(
        IPv6ExtHdrHopByHop(nh=17, options=[Jumbo(jumboplen=70000)]))


# -- the walk, held to what Linux did ----------------------------------------------------


def udp_after(*layers, dst=DST) -> bytes:
    p = ip6(dst=dst)
    for layer in layers:
        p = p / layer
    return linux(p / udp6())


def hbh(*options):
    return IPv6ExtHdrHopByHop(options=list(options))


def unknown(otype, data=b"ab"):
    return HBHOptUnknown(otype=otype, optdata=data)


# (name, packet, expected): expected is (error class, offset, ICMPv6 code) for a drop, or the
# upper-layer protocol and where it starts for a packet Linux delivered (or handed on).
LINUX = [
    ("hop-by-hop PadN, delivered", udp_after(hbh(PadN(optdata=bytes(4)))), (NEXTHDR_UDP, 48)),
    ("PadN with a non-zero byte: silent drop", udp_after(hbh(PadN(optdata=b"\0\1\0\0"))),
     (ExtHdrInvalid, 42, None)),
    ("14 Pad1 in a row: silent drop at the 8th", linux(ip6(nh=0) / Raw(bytes([17, 1]) + bytes(14)) / udp6()),
     (ExtHdrInvalid, 49, None)),
    ("unknown option, action 00: skipped, delivered", udp_after(hbh(unknown(0x1E))), (NEXTHDR_UDP, 48)),
    ("unknown option, action 01: silent drop", udp_after(hbh(unknown(0x5E))), (Ipv6UnknownOption, 42, None)),
    ("unknown option, action 10: Parameter Problem 2, pointer 42", udp_after(hbh(unknown(0x9E))),
     (Ipv6UnknownOption, 42, ICMPV6_UNK_OPTION)),
    ("unknown option, action 11, unicast: Parameter Problem 2", udp_after(hbh(unknown(0xDE))),
     (Ipv6UnknownOption, 42, ICMPV6_UNK_OPTION)),
    ("unknown option, action 11, to ff02::1: silent drop", udp_after(hbh(unknown(0xDE)), dst="ff02::1"),
     (Ipv6UnknownOption, 42, None)),
    ("unknown option, action 10, to ff02::1: Parameter Problem 2 still",
     udp_after(hbh(unknown(0x9E)), dst="ff02::1"), (Ipv6UnknownOption, 42, ICMPV6_UNK_OPTION)),
    ("unknown destination option after a PadN: pointer 44",
     udp_after(IPv6ExtHdrDestOpt(options=[PadN(optdata=b""), unknown(0x9E)])),
     (Ipv6UnknownOption, 44, ICMPV6_UNK_OPTION)),
    ("Router Alert of 3 bytes: silent drop", udp_after(hbh(unknown(5, b"abc"))), (ExtHdrInvalid, 42, None)),
    ("Router Alert, delivered", udp_after(hbh(RouterAlert(value=0))), (NEXTHDR_UDP, 48)),
    ("CALIPSO (no DOI configured): silent drop", udp_after(hbh(unknown(7, bytes(8)))), (ExtHdrInvalid, 42, None)),
    ("Jumbo with a payload_len: Parameter Problem 0 at the option",
     udp_after(hbh(Jumbo(jumboplen=70000))), (ExtHdrInvalid, 42, ICMPV6_HDR_FIELD)),
    ("Jumbo of <= 65535: Parameter Problem 0 at its length", udp_after(hbh(Jumbo(jumboplen=700))),
     (ExtHdrInvalid, 44, ICMPV6_HDR_FIELD)),
    ("9 options (max_hbh_opts_cnt 8): silent drop", udp_after(hbh(*[unknown(0x1E, b"")] * 9)),
     (ExtHdrInvalid, 58, None)),
    ("an option overrunning its header: silent drop",
     linux(ip6(nh=0) / Raw(bytes([17, 0, 0x1E, 5, 0, 0, 0, 0])) / udp6()), (ExtHdrInvalid, 42, None)),
    ("hop-by-hop after a destination header: an unknown protocol (Linux: Parameter Problem 1, pointer 40)",
     udp_after(IPv6ExtHdrDestOpt(), hbh()), (NEXTHDR_HOP, 48)),
    ("hop-by-hop cut short: silent drop", linux(ip6(nh=0, plen=4) / Raw(bytes([17, 0, 1, 2]))),
     (ExtHdrTruncated, 40, None)),
    ("routing type 0 with no segments left, delivered",
     udp_after(IPv6ExtHdrRouting(type=0, segleft=0, addresses=["::1"])), (NEXTHDR_UDP, 64)),
    ("atomic fragment, delivered", udp_after(IPv6ExtHdrFragment(offset=0, m=0, id=1)), (NEXTHDR_UDP, 48)),
    ("two atomic fragment headers: Parameter Problem 0 at the second",
     udp_after(IPv6ExtHdrFragment(offset=0, m=0, id=1), IPv6ExtHdrFragment(offset=0, m=0, id=2)),
     (ExtHdrRefused, 48, ICMPV6_HDR_FIELD)),
    ("a first fragment without the UDP header: Parameter Problem 3, pointer 0",
     linux(ip6() / IPv6ExtHdrDestOpt() / IPv6ExtHdrFragment(offset=0, m=1, id=3, nh=17) / Raw(b"abcd")),
     (ExtHdrTruncated, 0, ICMPV6_HDR_INCOMP)),
    ("a first fragment whose destination header claims more than it holds: Parameter Problem 3",
     linux(ip6() / IPv6ExtHdrFragment(offset=0, m=1, id=5, nh=60) / Raw(b"\x11\x05")),
     (ExtHdrTruncated, 0, ICMPV6_HDR_INCOMP)),
    ("6 Pad1 then a PadN: 8 bytes of padding, silent drop",
     linux(ip6(nh=0) / Raw(bytes([17, 1]) + bytes(6) + bytes([1, 0]) + bytes(6)) / udp6()),
     (ExtHdrInvalid, 48, None)),
    ("a fragment header cut short: Parameter Problem 0 pointing at it",
     linux(ip6(nh=44, plen=4) / Raw(b"\x11\0\0\0")), (ExtHdrTruncated, 40, ICMPV6_HDR_FIELD)),
    ("no next header: nothing to deliver", linux(ip6(nh=59) / Raw(b"junk")), (NEXTHDR_NONE, 40)),
    ("protocol 253 (Linux: Parameter Problem 1, pointer 6)", linux(ip6(nh=253) / Raw(b"junk")), (253, 40)),
]


@pytest.mark.parametrize("name, pkt, expected", LINUX, ids=[case[0] for case in LINUX])
def test_the_walk_stops_where_linux_stops(name, pkt, expected):
    if isinstance(expected[0], type):
        cls, offset, code = expected
        with pytest.raises(cls) as info:
            walk(pkt)
        assert (info.value.offset, info.value.code) == (offset, code), str(info.value)
        assert isinstance(info.value, Ipv6ParamProb) and info.value.proto == "ipv6"
    else:
        _, chain = walk(pkt)
        assert (chain.nexthdr, chain.offset) == expected


def test_the_unknown_protocol_pointer_is_the_byte_that_named_it():
    """Linux answered 'hop-by-hop after a destination header' with pointer 40, protocol 253 with 6."""
    assert walk(udp_after(IPv6ExtHdrDestOpt(), hbh()))[1].nhoff == 40
    assert walk(linux(ip6(nh=253) / Raw(b"junk")))[1].nhoff == 6


def test_a_routing_header_with_segments_left_is_for_l3_to_judge():
    """Linux sent Parameter Problem 0 pointing at the type (42) of a type 0 header with a segment
    left, and dropped one to a multicast address (Ip6InAddrErrors): the walk hands it over intact."""
    _, chain = walk(udp_after(IPv6ExtHdrRouting(type=0, segleft=1, addresses=["::1"])))
    (rt,) = chain.headers
    assert (rt.type, rt.segments_left, chain.offsets[0] + 2) == (0, 1, 42)


def test_a_later_fragment_stops_the_walk_for_reassembly():
    pkt = linux(ip6() / hbh() / IPv6ExtHdrFragment(offset=185, m=1, id=9, nh=17) / Raw(bytes(16)))
    _, chain = walk(pkt)
    assert (chain.nexthdr, chain.offset, chain.nhoff) == (NEXTHDR_FRAGMENT, 48, 40)
    assert chain.headers[-1] == Ipv6FragHdr(NEXTHDR_UDP, 185 << 3 | IP6_MF, 9)


def test_a_first_fragment_holding_the_udp_header_is_handed_on():
    pkt = linux(ip6() / IPv6ExtHdrFragment(offset=0, m=1, id=3, nh=17) / Raw(bytes(8)))
    _, chain = walk(pkt)
    assert (chain.nexthdr, chain.headers[-1].frag_offset, chain.headers[-1].mf) == (NEXTHDR_FRAGMENT, 0, True)


def test_payload_len_0_before_hop_by_hop_is_refused_as_a_jumbogram():
    """Linux delivers this (payload_len 0, no Jumbo option: it takes the whole frame); pktpath
    does not support jumbograms and says so."""
    with raises_wire(SanityError, "ipv6", "payload_len"):
        Ipv6Hdr.from_bytes(linux(ip6(plen=0) / hbh() / udp6()))


def test_a_jumbo_option_in_a_packet_with_payload_len_0_is_refused():
    data = bytes(40) + Ipv6HopOptHdr(NEXTHDR_UDP, (Ipv6OptJumbo(70000),)).to_bytes()
    with pytest.raises(ExtHdrRefused) as info:
        ip6_parse_tlv(True, data, 40, payload_len=0)
    assert (info.value.offset, info.value.code) == (42, None)


def test_the_option_limits_are_the_sysctls():
    pkt = udp_after(hbh(*[unknown(0x1E, b"")] * 3))
    hdr = Ipv6Hdr.from_bytes(pkt)
    assert len(ipv6_parse_exthdrs(hdr, pkt, max_hbh_opts_cnt=3).headers) == 1
    with pytest.raises(ExtHdrInvalid):
        ipv6_parse_exthdrs(hdr, pkt, max_hbh_opts_cnt=2)
    with pytest.raises(Ipv6UnknownOption) as info:  # negative: unknown options disallowed
        ipv6_parse_exthdrs(hdr, pkt, max_hbh_opts_cnt=-8)
    assert info.value.code is None and info.value.action == IPV6_TLV_ACT_SKIP
    with pytest.raises(ExtHdrRefused):
        ipv6_parse_exthdrs(hdr, pkt, max_hbh_opts_len=7)
    dest = udp_after(IPv6ExtHdrDestOpt(options=[unknown(0x1E, bytes(10))]))
    with pytest.raises(ExtHdrRefused):
        ipv6_parse_exthdrs(Ipv6Hdr.from_bytes(dest), dest, max_dst_opts_len=8)


def test_an_ioam_option_is_ignored_when_aligned_and_dropped_when_not():
    ok = udp_after(hbh(PadN(optdata=b""), unknown(49, bytes(6))))  # at 44: 4n
    (h,) = walk(ok)[1].headers
    assert Ipv6OptUnknown(49, bytes(6)) in h.options
    with pytest.raises(ExtHdrInvalid):
        walk(udp_after(hbh(unknown(49, bytes(6)))))  # at 42


def test_a_router_alert_is_only_a_hop_by_hop_option():
    _, chain = walk(udp_after(IPv6ExtHdrDestOpt(options=[unknown(5, b"abc")])))
    assert Ipv6OptUnknown(5, b"abc") in chain.headers[0].options


@pytest.mark.parametrize("opttype, action, code, mcast_code", [
    (0x1E, IPV6_TLV_ACT_SKIP, "skip", "skip"),
    (0x5E, IPV6_TLV_ACT_DISCARD, None, None),
    (0x9E, IPV6_TLV_ACT_ICMP, ICMPV6_UNK_OPTION, ICMPV6_UNK_OPTION),
    (0xDE, IPV6_TLV_ACT_ICMP_UCAST, ICMPV6_UNK_OPTION, None),
])
def test_ip6_tlvopt_unknown_acts_on_the_top_two_bits(opttype, action, code, mcast_code):
    assert Ipv6OptUnknown(opttype).action == action
    for daddr, want in ((DADDR, code), (ALLNODES, mcast_code)):
        if want == "skip":
            assert ip6_tlvopt_unknown(opttype, 42, daddr) is None
            continue
        with pytest.raises(Ipv6UnknownOption) as info:
            ip6_tlvopt_unknown(opttype, 42, daddr)
        assert (info.value.offset, info.value.code, info.value.action) == (42, want, action)


# -- ipv6_skip_exthdr --------------------------------------------------------------------


def test_skip_exthdr_skips_every_kind_including_ah_and_a_late_hop_by_hop():
    ah = bytes((NEXTHDR_UDP, 4)) + bytes(22)  # (4 + 2) * 4 = 24 bytes
    data = linux(ip6() / IPv6ExtHdrDestOpt() / hbh() / IPv6ExtHdrFragment(offset=0, m=1, nh=51)) + ah + bytes(8)
    assert ipv6_skip_exthdr(data, 40, NEXTHDR_DEST) == (64 + 24, NEXTHDR_UDP, IP6_MF)


def test_skip_exthdr_stops_at_a_later_fragment_and_gives_up_on_none_or_a_short_packet():
    later = linux(ip6() / hbh() / IPv6ExtHdrFragment(offset=2, m=0, nh=17) / Raw(bytes(8)))
    assert ipv6_skip_exthdr(later, 40, NEXTHDR_HOP) == (48, NEXTHDR_FRAGMENT, 16)
    none = linux(ip6() / IPv6ExtHdrDestOpt(nh=59))
    assert ipv6_skip_exthdr(none, 40, NEXTHDR_DEST) == (-1, NEXTHDR_DEST, 0)
    assert ipv6_skip_exthdr(none[:41], 40, NEXTHDR_DEST) == (-1, NEXTHDR_DEST, 0)
    assert ipv6_skip_exthdr(none, 40, NEXTHDR_TCP) == (40, NEXTHDR_TCP, 0)
    assert ipv6_ext_hdr(NEXTHDR_AUTH) and ipv6_ext_hdr(NEXTHDR_NONE) and not ipv6_ext_hdr(NEXTHDR_ICMP)


def test_a_first_fragment_is_truncated_unless_it_holds_the_upper_layer_header():
    head = linux(ip6() / IPv6ExtHdrFragment(offset=0, m=1, nh=6))
    assert ipv6frag_thdr_truncated(head + bytes(19), 40, NEXTHDR_FRAGMENT)
    assert not ipv6frag_thdr_truncated(head + bytes(20), 40, NEXTHDR_FRAGMENT)
    later = linux(ip6() / IPv6ExtHdrFragment(offset=8, m=1, nh=6))
    assert not ipv6frag_thdr_truncated(later, 40, NEXTHDR_FRAGMENT)


# -- malformed input and what cannot be built ------------------------------------------


@pytest.mark.parametrize("cut", [0, 1, 39])
def test_a_buffer_shorter_than_40_bytes_is_truncated(cut):
    with raises_wire(TruncatedError, "ipv6", "header"):
        Ipv6Hdr.from_bytes(GOLDEN_IP6[:cut])


@pytest.mark.parametrize("version", [0, 4, 7, 15])
def test_a_version_other_than_6_is_a_sanity_error(version):
    """Linux counted Ip6InHdrErrors for version 4 under the IPv6 ethertype."""
    data = bytes([version << 4 | GOLDEN_IP6[0] & 0x0F]) + GOLDEN_IP6[1:] + GOLDEN_UDP6
    with raises_wire(SanityError, "ipv6", "version"):
        Ipv6Hdr.from_bytes(data)


def test_payload_len_beyond_the_buffer_is_truncated_but_padding_after_it_is_not():
    """Linux counted Ip6InTruncatedPkts for payload_len 100 over 13 bytes."""
    with raises_wire(TruncatedError, "ipv6", "payload_len"):
        Ipv6Hdr.from_bytes(GOLDEN_IP6 + GOLDEN_UDP6[:-1])
    assert Ipv6Hdr.from_bytes(GOLDEN_IP6 + GOLDEN_UDP6 + bytes(20)).payload_len == 13


def test_a_quoted_header_may_describe_more_than_follows():
    assert Ipv6Hdr.from_bytes(GOLDEN_IP6, quoted=True).payload_len == 13
    zero_hbh = Ipv6Hdr(SADDR, DADDR, NEXTHDR_HOP).to_bytes(0)
    assert Ipv6Hdr.from_bytes(zero_hbh, quoted=True).payload_len == 0


@pytest.mark.parametrize("fields, payload_len", [
    ({"tclass": 256}, 0), ({"flow_lbl": 1 << 20}, 0), ({"flow_lbl": -1}, 0), ({"hop_limit": 256}, 0),
    ({"saddr": 1 << 128}, 0), ({"daddr": -1}, 0), ({"nexthdr": 256}, 0), ({}, 65536), ({}, -1),
])
def test_fields_out_of_range_cannot_be_built(fields, payload_len):
    base = {"saddr": SADDR, "daddr": DADDR, "nexthdr": NEXTHDR_UDP}
    with raises_wire(SanityError, "ipv6"):
        Ipv6Hdr(**{**base, **fields}).to_bytes(payload_len)


def test_extension_headers_that_cannot_be_built():
    with pytest.raises(SanityError):
        Ipv6RtHdr(NEXTHDR_UDP, 0, 0, bytes(8)).to_bytes()  # 12 bytes
    with pytest.raises(SanityError):
        Ipv6HopOptHdr(NEXTHDR_UDP, (Ipv6OptUnknown(0x1E, bytes(255)),) * 9).to_bytes()  # > 2048 bytes
    with pytest.raises(SanityError):
        Ipv6OptUnknown(0, b"").to_bytes()  # type 0 is Pad1, which has no length
    with pytest.raises(SanityError):
        Ipv6FragHdr(NEXTHDR_UDP, 1 << 16, 0).to_bytes()


@pytest.mark.parametrize("cls, cut", [(Ipv6HopOptHdr, 7), (Ipv6DestOptHdr, 15), (Ipv6RtHdr, 23), (Ipv6FragHdr, 7)])
def test_each_extension_header_cut_short_is_truncated(cls, cut):
    data = {
        Ipv6HopOptHdr: Ipv6HopOptHdr(NEXTHDR_UDP).to_bytes(),
        Ipv6DestOptHdr: Ipv6DestOptHdr(NEXTHDR_UDP, (Ipv6OptUnknown(0x1E, bytes(8)),)).to_bytes(),
        Ipv6RtHdr: Ipv6RtHdr(NEXTHDR_UDP, 0, 0, bytes(20)).to_bytes(),
        Ipv6FragHdr: Ipv6FragHdr(NEXTHDR_UDP, 0, 1).to_bytes(),
    }[cls]
    assert cls.from_bytes(data).to_bytes() == data
    with pytest.raises(ExtHdrTruncated):
        cls.from_bytes(data[:cut])


# -- fuzz: nothing but WireError -----------------------------------------------------


def check_chain(data: bytes) -> None:
    """Walk `data`; a success rebuilds to the bytes it walked, a failure points inside the packet."""
    try:
        hdr = Ipv6Hdr.from_bytes(data)
    except WireError:
        return
    try:
        chain = ipv6_parse_exthdrs(hdr, data)
    except Ipv6ParamProb as exc:  # a header that has no byte at all is missing where it would start: the end
        assert 0 <= exc.offset < 40 + hdr.payload_len or type(exc) is ExtHdrTruncated and \
            exc.offset == 40 + hdr.payload_len
        assert exc.code in (None, 0, 1, 2, 3)
        return
    end = chain.offset + (8 if chain.nexthdr == NEXTHDR_FRAGMENT else 0)
    assert b"".join(h.to_bytes() for h in chain.headers) == data[40:end]
    assert chain.offsets == tuple(sorted(set(chain.offsets)))
    assert chain.offset <= 40 + hdr.payload_len


@FUZZ
@given(st.binary(max_size=120))
def test_random_bytes_raise_nothing_but_wire_errors(data):
    for quoted in (False, True):
        try:
            Ipv6Hdr.from_bytes(data, quoted=quoted)
        except WireError:
            pass
    for cls in (Ipv6HopOptHdr, Ipv6DestOptHdr, Ipv6RtHdr, Ipv6FragHdr):
        try:
            cls.from_bytes(data)
        except WireError:
            pass
    try:
        UdpHdr.from_bytes(data, SADDR, DADDR, ipv6=True)
    except WireError:
        pass
    offset, nexthdr, frag_off = ipv6_skip_exthdr(data, 0, data[0] if data else NEXTHDR_HOP)
    assert isinstance(offset, int) and 0 <= nexthdr <= 255 and 0 <= frag_off <= 0xFFFF


@FUZZ
@given(st.sampled_from([NEXTHDR_HOP, NEXTHDR_DEST, NEXTHDR_ROUTING, NEXTHDR_FRAGMENT, NEXTHDR_UDP]),
       st.binary(max_size=96), st.integers(0, 12))
def test_random_extension_headers_raise_nothing_but_wire_errors(nexthdr, tail, slack):
    plen = max(len(tail) - slack, 1)
    check_chain(Ipv6Hdr(SADDR, DADDR, nexthdr).to_bytes(plen) + tail)


@FUZZ
@given(ext_chains(), st.lists(st.tuples(st.integers(0, 255), u8), min_size=1, max_size=4), st.booleans())
def test_mutated_chains_raise_nothing_but_wire_errors(chain, flips, cut):
    chain = linked(chain, NEXTHDR_UDP)
    body = b"".join(h.to_bytes() for h in chain) + UdpHdr(1, 2).to_bytes(b"", SADDR, DADDR, ipv6=True)
    nexthdr = chain[0].NEXTHDR if chain else NEXTHDR_UDP
    data = bytearray(Ipv6Hdr(SADDR, DADDR, nexthdr).to_bytes(len(body)) + body)
    for pos, value in flips:
        data[40 + pos % (len(data) - 40)] = value
    if cut:
        data = data[:-flips[0][1] % len(data)]
    check_chain(bytes(data))


# -- UDP over IPv6 ---------------------------------------------------------------------


@ORACLE
@given(addrs, addrs, ports, ports, payloads)
def test_scapy_udp_over_ipv6_verifies_and_pktpath_computes_scapys_checksum(saddr, daddr, sport, dport, payload):
    data = raw(IPv6(src=a6(saddr), dst=a6(daddr)) / UDP(sport=sport, dport=dport) / Raw(payload))[40:]
    assert UdpHdr.from_bytes(data, saddr, daddr, ipv6=True) == UdpHdr.from_bytes(data)
    ours = UdpHdr(sport, dport).to_bytes(payload, saddr, daddr, ipv6=True)
    assert ours == data[:8]


@pytest.mark.parametrize("addresses", [True, False])
def test_a_zero_udp_checksum_over_ipv6_is_a_checksum_error(addresses):
    """Linux dropped one, socket or none, counting Udp6InCsumErrors and Udp6InErrors."""
    data = GOLDEN_UDP6[:6] + b"\0\0" + GOLDEN_UDP6[8:]
    args = (SADDR, DADDR) if addresses else ()
    with raises_wire(ChecksumError, "udp", "check"):
        UdpHdr.from_bytes(data, *args, ipv6=True)
    assert UdpHdr.from_bytes(data, *args).check == 0  # over IPv4, "no checksum"


def test_a_bad_udp_checksum_over_ipv6_is_a_checksum_error():
    data = GOLDEN_UDP6[:-1] + b"O"
    with raises_wire(ChecksumError, "udp", "check"):
        UdpHdr.from_bytes(data, SADDR, DADDR, ipv6=True)


def test_a_checksum_that_computes_to_zero_is_sent_as_ffff_and_verifies():
    base = b"payload!"
    header = UdpHdr(1234, 9000).to_bytes(base + b"\0\0", SADDR, DADDR, ipv6=True)
    filler = struct.pack("!H", int.from_bytes(header[6:], "big"))  # makes the data sum to all ones
    header = UdpHdr(1234, 9000).to_bytes(base + filler, SADDR, DADDR, ipv6=True)
    assert header[6:] == b"\xff\xff"
    datagram = header + base + filler
    assert UdpHdr.from_bytes(datagram, SADDR, DADDR, ipv6=True).check == 0xFFFF
    p = IPv6(src=SRC, dst=DST) / UDP(datagram)
    assert in6_chksum(17, p[UDP], datagram) == 0  # scapy: the whole datagram sums to all ones


def test_no_checksum_cannot_be_sent_over_ipv6_but_still_can_over_ipv4():
    with raises_wire(SanityError, "udp", "check"):
        UdpHdr(1234, 9000).to_bytes(b"hello", SADDR, DADDR, no_check=True, ipv6=True)
    assert UdpHdr(1234, 9000).to_bytes(b"hello", 1, 2, no_check=True)[6:] == b"\0\0"


def test_udp_len_0_over_ipv6_is_the_whole_datagram():
    """Linux delivered a UDP datagram with len 0 and a checksum over its real length."""
    body = struct.pack("!HHHH", 1234, 9000, 0, 0) + b"hello"
    pseudo = SADDR.to_bytes(16, "big") + DADDR.to_bytes(16, "big") + struct.pack("!IxxxB", len(body), 17)
    data = body[:6] + struct.pack("!H", ref_checksum(pseudo + body) or 0xFFFF) + body[8:]
    assert UdpHdr.from_bytes(data, SADDR, DADDR, ipv6=True).len == 13
    with raises_wire(IntegrityError, "udp", "len"):
        UdpHdr.from_bytes(data, SADDR, DADDR)  # IPv4 unchanged
