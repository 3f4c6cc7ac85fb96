"""Malformed input: every truncation, every checksum corruption, every sanity rule.

Each case asserts the error class (TruncatedError and ChecksumError are both
IntegrityErrors; SanityError is not) and the .proto (and where it is
meaningful, the .field) the error carries.
"""

import struct

import pytest

from pktpath.wire.arp import ArpHdr
from pktpath.wire.checksum import ip_compute_csum
from pktpath.wire.errors import ChecksumError, IntegrityError, SanityError, TruncatedError, WireError
from pktpath.wire.ethernet import EthHdr, fcs, strip_fcs
from pktpath.wire.icmp import NR_ICMP_TYPES, IcmpHdr, quoted
from pktpath.wire.ipv4 import IpHdr
from pktpath.wire.tcp import (
    TcpHdr, TcpOptEol, TcpOptMss, TcpOptNop, TcpOptRaw, TcpOptSack, TcpOptTimestamp, TcpOptUnknown,
    TcpOptWindow, encode_options, parse_options,
)
from pktpath.wire.udp import UdpHdr
from wirekit import (
    DADDR, MAC_A, MAC_B, PAYLOAD, SADDR, raises_wire, ref_checksum, ref_pseudo_header, samples, tcp_segment,
    udp_datagram,
)

S = samples()


def test_samples_are_valid():
    """The packets everything below damages parse cleanly to begin with."""
    EthHdr.from_bytes(S["ethernet"])
    EthHdr.from_bytes(S["ethernet_vlan"])
    ArpHdr.from_bytes(S["arp"])
    for name in ("ipv4", "ipv4_options", "icmp_in_ip"):
        assert IpHdr.from_bytes(S[name]).tot_len == len(S[name])
    IcmpHdr.from_bytes(S["icmp_echo"])
    IcmpHdr.from_bytes(S["icmp_error"])
    quoted(S["icmp_error"])
    assert UdpHdr.from_bytes(S["udp"], SADDR, DADDR).len == len(S["udp"])
    TcpHdr.from_bytes(S["tcp"], SADDR, DADDR).parsed_options()
    strip_fcs(S["ethernet"] + fcs(S["ethernet"]))


def flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 0x80 >> (bit % 8)
    return bytes(out)


def put(data: bytes, offset: int, value: bytes) -> bytes:
    return data[:offset] + value + data[offset + len(value):]


def with_ip_checksum(header: bytes) -> bytes:
    """`header` (a whole IPv4 header) with its checksum recomputed."""
    zeroed = put(header, 10, b"\0\0")
    return put(zeroed, 10, struct.pack("!H", ip_compute_csum(zeroed)))


# ================================================================ truncation


@pytest.mark.parametrize("name,hlen", [("ethernet", 14), ("ethernet_vlan", 18)])
def test_ethernet_truncation(name, hlen):
    frame = S[name]
    full = EthHdr.from_bytes(frame)
    for n in range(len(frame)):
        if n < hlen:
            with raises_wire(TruncatedError, "ethernet", "header" if n < 14 else "vlan"):
                EthHdr.from_bytes(frame[:n])
        else:
            assert EthHdr.from_bytes(frame[:n]) == full


def test_arp_truncation():
    pkt = S["arp"] + bytes(18)
    for n in range(28):
        with raises_wire(TruncatedError, "arp", "header"):
            ArpHdr.from_bytes(pkt[:n])
    for n in range(28, len(pkt) + 1):
        assert ArpHdr.from_bytes(pkt[:n]) == ArpHdr.from_bytes(S["arp"])


@pytest.mark.parametrize("name", ["ipv4", "ipv4_options"])
def test_ipv4_truncation(name):
    pkt = S[name]
    hlen = (pkt[0] & 0x0F) * 4
    for n in range(len(pkt)):
        field = "header" if n < 20 else "options" if n < hlen else "tot_len"
        with raises_wire(TruncatedError, "ipv4", field):
            IpHdr.from_bytes(pkt[:n])
        # a quoted header needs only itself, not the datagram tot_len describes
        if n < hlen:
            with raises_wire(TruncatedError, "ipv4", field):
                IpHdr.from_bytes(pkt[:n], quoted=True)
        else:
            assert IpHdr.from_bytes(pkt[:n], quoted=True) == IpHdr.from_bytes(pkt)
    # bytes past tot_len are link padding, not an error
    assert IpHdr.from_bytes(pkt + bytes(7)) == IpHdr.from_bytes(pkt)


@pytest.mark.parametrize("name", ["icmp_echo", "icmp_error"])
def test_icmp_truncation(name):
    msg = S[name]
    for n in range(len(msg)):
        if n < 8:
            with raises_wire(TruncatedError, "icmp", "header"):
                IcmpHdr.from_bytes(msg[:n])
        else:
            # no length field: the checksum over the whole message catches it
            with raises_wire(ChecksumError, "icmp", "checksum"):
                IcmpHdr.from_bytes(msg[:n])


def test_icmp_error_must_quote_an_ip_header():
    for n in range(20):
        body = S["ipv4"][:n]
        msg = IcmpHdr.dest_unreach(3).to_bytes(body) + body  # checksum right, quote too short
        with raises_wire(TruncatedError, "icmp", "quoted"):
            IcmpHdr.from_bytes(msg)
    body = S["ipv4"][:20]
    assert IcmpHdr.from_bytes(IcmpHdr.dest_unreach(3).to_bytes(body) + body).code == 3


def test_icmp_quoted_truncation():
    msg = S["icmp_error"]
    inner_hlen = (msg[8] & 0x0F) * 4
    assert inner_hlen == 24  # the sample quotes a header with options
    for n in range(8 + inner_hlen):
        with raises_wire(TruncatedError, "ipv4", "header" if n < 28 else "options"):
            quoted(msg[:n])
    iph, rest = quoted(msg[:8 + inner_hlen])
    assert rest == b"" and iph.header_len == inner_hlen


@pytest.mark.parametrize("addrs", [(), (SADDR, DADDR)], ids=["no-addrs", "addrs"])
def test_udp_truncation(addrs):
    dgram = S["udp"]
    for n in range(len(dgram)):
        with raises_wire(TruncatedError, "udp", "header" if n < 8 else "len"):
            UdpHdr.from_bytes(dgram[:n], *addrs)
    assert UdpHdr.from_bytes(dgram + b"pad", *addrs) == UdpHdr.from_bytes(dgram)


def test_tcp_truncation():
    seg = S["tcp"]
    hlen = (seg[12] >> 4) * 4
    assert hlen > 20
    full = TcpHdr.from_bytes(seg)
    for n in range(len(seg)):
        if n < hlen:
            for addrs in ((), (SADDR, DADDR)):
                with raises_wire(TruncatedError, "tcp", "header" if n < 20 else "options"):
                    TcpHdr.from_bytes(seg[:n], *addrs)
        else:
            # no length field: with addresses the checksum catches it, without it cannot
            with raises_wire(ChecksumError, "tcp", "check"):
                TcpHdr.from_bytes(seg[:n], SADDR, DADDR)
            assert TcpHdr.from_bytes(seg[:n]) == full


def test_strip_fcs_truncation():
    frame = S["ethernet"] + fcs(S["ethernet"])
    for n in range(len(frame)):
        if n < 18:
            with raises_wire(TruncatedError, "ethernet", "fcs"):
                strip_fcs(frame[:n])
        else:
            with raises_wire(ChecksumError, "ethernet", "fcs"):
                strip_fcs(frame[:n])


# ==================================================== checksum corruption


def corruptions(data: bytes, offset: int, size: int = 2):
    """Every single-bit flip and every single-byte replacement in data[offset:offset+size]."""
    for bit in range(offset * 8, (offset + size) * 8):
        yield flip(data, bit)
    for pos in range(offset, offset + size):
        for value in range(256):
            if value != data[pos]:
                yield put(data, pos, bytes([value]))


@pytest.mark.parametrize("name", ["ipv4", "ipv4_options", "icmp_in_ip"])
def test_ipv4_checksum_corruption(name):
    pkt = S[name]
    count = 0
    for bad in corruptions(pkt, 10):
        with raises_wire(ChecksumError, "ipv4", "check"):
            IpHdr.from_bytes(bad)
        assert IpHdr.from_bytes(bad, verify_csum=False).check == int.from_bytes(bad[10:12], "big")
        count += 1
    assert count == 16 + 2 * 255


@pytest.mark.parametrize("name", ["ipv4", "ipv4_options"])
def test_ipv4_any_header_bit_flip(name):
    pkt = S[name]
    hlen = (pkt[0] & 0x0F) * 4
    for bit in range(hlen * 8):
        bad = flip(pkt, bit)
        if bit < 4:  # version
            with raises_wire(SanityError, "ipv4", "version"):
                IpHdr.from_bytes(bad)
        elif bit < 8:  # IHL: too small, or a header length the checksum no longer covers right
            with pytest.raises(WireError) as info:
                IpHdr.from_bytes(bad)
            assert info.value.proto == "ipv4"
        else:  # anything else, tot_len included, is caught by the checksum first
            with raises_wire(ChecksumError, "ipv4", "check"):
                IpHdr.from_bytes(bad)


@pytest.mark.parametrize("name", ["icmp_echo", "icmp_error"])
def test_icmp_checksum_corruption(name):
    msg = S[name]
    for bad in corruptions(msg, 2):
        with raises_wire(ChecksumError, "icmp", "checksum"):
            IcmpHdr.from_bytes(bad)
        assert IcmpHdr.from_bytes(bad, verify_csum=False).checksum == int.from_bytes(bad[2:4], "big")
    for bit in range(len(msg) * 8):  # the checksum covers every bit, type included
        with raises_wire(ChecksumError, "icmp", "checksum"):
            IcmpHdr.from_bytes(flip(msg, bit))


def test_udp_checksum_corruption():
    dgram = S["udp"]
    check = int.from_bytes(dgram[6:8], "big")
    assert bin(check).count("1") > 1 and dgram[6] and dgram[7]  # no single flip reaches 0
    for bad in corruptions(dgram, 6):
        if bad[6:8] == b"\0\0":
            assert UdpHdr.from_bytes(bad, SADDR, DADDR).check == 0  # 0: no checksum sent
            continue
        with raises_wire(ChecksumError, "udp", "check"):
            UdpHdr.from_bytes(bad, SADDR, DADDR)
        assert UdpHdr.from_bytes(bad).check == int.from_bytes(bad[6:8], "big")  # unverified without addresses
    # the pseudo-header is covered too
    for saddr, daddr in ((SADDR ^ 1, DADDR), (SADDR, DADDR ^ 0x80000000), (SADDR ^ 0x100, DADDR ^ 1)):
        with raises_wire(ChecksumError, "udp", "check"):
            UdpHdr.from_bytes(dgram, saddr, daddr)


def test_udp_any_bit_flip_outside_len():
    dgram = S["udp"]
    for bit in range(len(dgram) * 8):
        if 32 <= bit < 48:  # len: checked against the buffer before the checksum
            with pytest.raises(IntegrityError) as info:
                UdpHdr.from_bytes(flip(dgram, bit), SADDR, DADDR)
            assert info.value.proto == "udp"
            continue
        with raises_wire(ChecksumError, "udp", "check"):
            UdpHdr.from_bytes(flip(dgram, bit), SADDR, DADDR)


def test_tcp_checksum_corruption():
    seg = S["tcp"]
    for bad in corruptions(seg, 16):
        with raises_wire(ChecksumError, "tcp", "check"):
            TcpHdr.from_bytes(bad, SADDR, DADDR)
        assert TcpHdr.from_bytes(bad).check == int.from_bytes(bad[16:18], "big")
    for bit in range(len(seg) * 8):
        bad = flip(seg, bit)
        if 96 <= bit < 100:  # data offset
            with pytest.raises(WireError) as info:
                TcpHdr.from_bytes(bad, SADDR, DADDR)
            assert info.value.proto == "tcp"
        else:
            with raises_wire(ChecksumError, "tcp", "check"):
                TcpHdr.from_bytes(bad, SADDR, DADDR)
    # (swapping saddr and daddr would not show: the sum is commutative)
    for saddr, daddr in ((SADDR ^ 1, DADDR), (SADDR, DADDR ^ 0x80000000), (SADDR ^ 0x100, DADDR ^ 1)):
        with raises_wire(ChecksumError, "tcp", "check"):
            TcpHdr.from_bytes(seg, saddr, daddr)


def test_strip_fcs_detects_corruption():
    frame = S["ethernet"] + fcs(S["ethernet"])
    assert strip_fcs(frame) == S["ethernet"]
    for bad in corruptions(frame, len(frame) - 4, 4):
        with raises_wire(ChecksumError, "ethernet", "fcs"):
            strip_fcs(bad)
    for bit in range((len(frame) - 4) * 8):  # any bit of the frame itself
        with raises_wire(ChecksumError, "ethernet", "fcs"):
            strip_fcs(flip(frame, bit))


# ==================================================================== sanity


def ipv4_with_first_byte(vihl: int, tot_len: int | None = None) -> bytes:
    pkt = bytearray(S["ipv4"])
    pkt[0] = vihl
    if tot_len is not None:
        pkt[2:4] = struct.pack("!H", tot_len)
    return with_ip_checksum(bytes(pkt[:20])) + bytes(pkt[20:])


@pytest.mark.parametrize("version", [v for v in range(16) if v != 4])
def test_ipv4_version_not_4(version):
    pkt = ipv4_with_first_byte(version << 4 | 5)
    for kwargs in ({}, {"quoted": True}, {"verify_csum": False}):
        with raises_wire(SanityError, "ipv4", "version"):
            IpHdr.from_bytes(pkt, **kwargs)


@pytest.mark.parametrize("ihl", range(5))
def test_ipv4_ihl_below_5(ihl):
    pkt = ipv4_with_first_byte(0x40 | ihl)
    for kwargs in ({}, {"quoted": True}, {"verify_csum": False}):
        with raises_wire(SanityError, "ipv4", "ihl"):
            IpHdr.from_bytes(pkt, **kwargs)


@pytest.mark.parametrize("name", ["ipv4", "ipv4_options"])
def test_ipv4_tot_len_below_header_length(name):
    pkt = S[name]
    hlen = (pkt[0] & 0x0F) * 4
    for tot_len in range(hlen):
        bad = with_ip_checksum(put(pkt[:hlen], 2, struct.pack("!H", tot_len))) + pkt[hlen:]
        with raises_wire(IntegrityError, "ipv4", "tot_len", exact=True):
            IpHdr.from_bytes(bad)
        assert IpHdr.from_bytes(bad, quoted=True).tot_len == tot_len  # a quote's tot_len is not checked
    good = with_ip_checksum(put(pkt[:hlen], 2, struct.pack("!H", hlen))) + pkt[hlen:]
    assert IpHdr.from_bytes(good).tot_len == hlen


def tcp_with(seg: bytes, offset: int, value: bytes) -> bytes:
    """`seg` with `value` written at `offset` and its checksum recomputed (reference algorithm)."""
    seg = put(put(seg, offset, value), 16, b"\0\0")
    check = ref_checksum(ref_pseudo_header(SADDR, DADDR, 6, len(seg)) + seg)
    return put(seg, 16, struct.pack("!H", check))


@pytest.mark.parametrize("doff", range(5))
def test_tcp_doff_below_5(doff):
    seg = tcp_with(S["tcp"], 12, bytes([doff << 4]))
    for addrs in ((), (SADDR, DADDR)):
        with raises_wire(SanityError, "tcp", "doff"):
            TcpHdr.from_bytes(seg, *addrs)


@pytest.mark.parametrize("ports", [b"\0\0\x00\x50", b"\x9c\x40\0\0", b"\0\0\0\0"], ids=["source", "dest", "both"])
def test_tcp_port_0(ports):
    seg = tcp_with(S["tcp"], 0, ports)
    for addrs in ((), (SADDR, DADDR)):
        with raises_wire(SanityError, "tcp", "port"):
            TcpHdr.from_bytes(seg, *addrs)


def test_udp_dest_port_0():
    dgram = UdpHdr(4000, 0).to_bytes(PAYLOAD, SADDR, DADDR) + PAYLOAD  # the builder does not refuse it
    for addrs in ((), (SADDR, DADDR)):
        with raises_wire(SanityError, "udp", "dest"):
            UdpHdr.from_bytes(dgram, *addrs)
    # source port 0 is allowed ("no reply expected", RFC 768)
    dgram = udp_datagram(source=0)
    assert UdpHdr.from_bytes(dgram, SADDR, DADDR).source == 0


@pytest.mark.parametrize("ulen", range(8))
def test_udp_len_below_8(ulen):
    dgram = put(S["udp"], 4, struct.pack("!H", ulen))
    for addrs in ((), (SADDR, DADDR)):
        with raises_wire(IntegrityError, "udp", "len", exact=True):
            UdpHdr.from_bytes(dgram, *addrs)


def test_icmp_type_above_nr_icmp_types():
    body = S["ipv4"]
    for type_ in range(256):
        msg = IcmpHdr(type_, 0, 0).to_bytes(body) + body
        if type_ > NR_ICMP_TYPES:
            with raises_wire(SanityError, "icmp", "type"):
                IcmpHdr.from_bytes(msg)
        else:
            assert IcmpHdr.from_bytes(msg).type == type_
    assert NR_ICMP_TYPES == 18


@pytest.mark.parametrize("offset,value,field", [
    (0, b"\x00\x06", "ar_hrd"),    # IEEE 802 networks
    (0, b"\x00\x00", "ar_hrd"),
    (0, b"\xff\xff", "ar_hrd"),
    (2, b"\x86\xdd", "ar_hrd"),    # protocol IPv6: the hrd/pro pair is checked together
    (4, b"\x08", "ar_hln"),        # hardware length 8
    (5, b"\x10", "ar_hln"),        # protocol length 16
    (6, b"\x00\x00", "ar_op"),
    (6, b"\x00\x03", "ar_op"),     # RARP request
    (6, b"\xff\xff", "ar_op"),
])
def test_arp_unsupported(offset, value, field):
    with raises_wire(SanityError, "arp", field):
        ArpHdr.from_bytes(put(S["arp"], offset, value))


@pytest.mark.parametrize("etype", [0x0000, 0x0001, 0x002E, 0x05DC, 0x05FF])
def test_ethernet_8023_length(etype):
    untagged = EthHdr(MAC_B, MAC_A, 0x0800).to_bytes()[:12] + struct.pack("!H", etype) + PAYLOAD
    tagged = EthHdr(MAC_B, MAC_A, 0x0800, vlan_tci=7).to_bytes()[:16] + struct.pack("!H", etype) + PAYLOAD
    for frame in (untagged, tagged):
        with raises_wire(SanityError, "ethernet", "h_proto"):
            EthHdr.from_bytes(frame)
    with raises_wire(SanityError, "ethernet", "h_proto"):
        EthHdr(MAC_B, MAC_A, etype).to_bytes()


def test_ethernet_0x0600_is_an_ethertype():
    frame = EthHdr(MAC_B, MAC_A, 0x0800).to_bytes()[:12] + b"\x06\x00"
    assert EthHdr.from_bytes(frame).h_proto == 0x0600


# ============================================================ TCP options

MALFORMED_OPTIONS = [
    # (raw options, length of the well-formed prefix)
    (b"\x02", 0),                                   # kind with no length byte
    (b"\x02\x04\x05", 0),                           # MSS cut short
    (b"\x02\x03\x05\xb4", 0),                       # MSS with length 3
    (b"\x02\x05\x05\xb4\x00", 0),                   # MSS with length 5
    (b"\x03\x04\x07\x00", 0),                       # window scale with length 4
    (b"\x04\x03\x00\x00", 0),                       # SACK-permitted with length 3
    (b"\x08\x08" + bytes(6), 0),                    # timestamps with length 8
    (b"\x05\x02\x00\x00", 0),                       # SACK with no blocks
    (b"\x05\x06" + bytes(4), 0),                    # SACK with half a block
    (b"\x05\x0e" + bytes(12), 0),                   # SACK with one and a half blocks
    (b"\x1e\x00\x00\x00", 0),                       # length 0
    (b"\x1e\x01\x00\x00", 0),                       # length 1
    (b"\xfe\x10\x01\x02", 0),                       # length past the end
    (b"\x01\x01\x02\x04\x05\xb4\x08\x0a\x00", 6),   # NOP NOP MSS, then timestamps cut short
    (b"\x01\x03\x03\x07\x02", 4),                   # NOP WS, then a dangling kind
]


@pytest.mark.parametrize("raw,good", MALFORMED_OPTIONS, ids=[r.hex() for r, _ in MALFORMED_OPTIONS])
def test_tcp_options_malformed(raw, good):
    with raises_wire(IntegrityError, "tcp", "options", exact=True):
        parse_options(raw)
    with raises_wire(IntegrityError, "tcp", "options", exact=True):
        parse_options(raw, strict=True)
    opts = parse_options(raw, strict=False)
    assert opts[-1] == TcpOptRaw(raw[good:])
    assert opts[:-1] == parse_options(raw[:good])  # everything before the bad option is kept
    assert b"".join(o.to_bytes() for o in opts) == raw  # nothing lost


def test_tcp_options_nonzero_after_eol():
    raw = b"\x01\x01\x00\x05"
    with raises_wire(SanityError, "tcp", "options"):
        parse_options(raw)
    opts = parse_options(raw, strict=False)
    assert opts == (TcpOptNop(), TcpOptNop(), TcpOptEol(), TcpOptRaw(b"\x05"))
    assert b"".join(o.to_bytes() for o in opts) == raw
    # zero padding after EOL is fine either way
    assert parse_options(b"\x01\x00\x00\x00") == parse_options(b"\x01\x00\x00\x00", strict=False) == (
        TcpOptNop(), TcpOptEol())


def test_tcp_header_with_malformed_options():
    """The header parses (options stay raw); reading them is strict unless asked otherwise."""
    raw_opts = b"\x02\x04\x05\xb4" b"\x03\x03\x07" b"\x01" b"\x08\x0a\x00\x00"  # timestamps cut short
    seg = tcp_segment(options=raw_opts)
    h = TcpHdr.from_bytes(seg, SADDR, DADDR)
    assert h.options == raw_opts
    with raises_wire(IntegrityError, "tcp", "options"):
        h.parsed_options()
    lenient = h.parsed_options(strict=False)
    assert lenient == (TcpOptMss(1460), TcpOptWindow(7), TcpOptNop(), TcpOptRaw(b"\x08\x0a\x00\x00"))
    assert h.option(TcpOptMss) == TcpOptMss(1460)  # option() reads leniently, as Linux does
    assert h.option(TcpOptTimestamp) is None
    assert b"".join(o.to_bytes() for o in lenient) == raw_opts


# ============================================= builders refuse bad fields


@pytest.mark.parametrize("build,proto", [
    (lambda: EthHdr(b"\x00" * 5, MAC_A, 0x0800).to_bytes(), "ethernet"),
    (lambda: EthHdr(MAC_B, MAC_A, 0x10000).to_bytes(), "ethernet"),
    (lambda: EthHdr(MAC_B, MAC_A, 0x0800, vlan_tci=0x10000).to_bytes(), "ethernet"),
    (lambda: ArpHdr(1, MAC_A, 1 << 32, MAC_B, 0).to_bytes(), "arp"),
    (lambda: ArpHdr(1, MAC_A[:4], 0, MAC_B, 0).to_bytes(), "arp"),
    (lambda: IpHdr(SADDR, DADDR, 6, ttl=256).to_bytes(0), "ipv4"),
    (lambda: IpHdr(SADDR, DADDR, 6, options=bytes(41)).to_bytes(0), "ipv4"),
    (lambda: IpHdr(SADDR, DADDR, 6).to_bytes(0xFFFF - 19), "ipv4"),
    (lambda: IpHdr(SADDR, DADDR, 6, tot_len=19).to_bytes(), "ipv4"),
    (lambda: IcmpHdr(256).to_bytes(), "icmp"),
    (lambda: IcmpHdr(8, 0, 1 << 32).to_bytes(), "icmp"),
    (lambda: UdpHdr(65536, 53).to_bytes(b"", SADDR, DADDR), "udp"),
    (lambda: UdpHdr(1, 53).to_bytes(bytes(0xFFFF - 7), SADDR, DADDR), "udp"),
    (lambda: TcpHdr(1, 2, seq=1 << 32).to_bytes(b"", SADDR, DADDR), "tcp"),
    (lambda: TcpHdr(1, 2, options=bytes(41)).to_bytes(b"", SADDR, DADDR), "tcp"),
    (lambda: TcpOptMss(1 << 16).to_bytes(), "tcp"),
    (lambda: TcpOptWindow(256).to_bytes(), "tcp"),
    (lambda: TcpOptTimestamp(1 << 32, 0).to_bytes(), "tcp"),
    (lambda: TcpOptSack(()).to_bytes(), "tcp"),
    (lambda: TcpOptSack(((1, 2),) * 5).to_bytes(), "tcp"),
    (lambda: TcpOptSack(((1, 1 << 32),)).to_bytes(), "tcp"),
    (lambda: TcpOptUnknown(30, bytes(254)).to_bytes(), "tcp"),
    (lambda: TcpOptUnknown(256, b"").to_bytes(), "tcp"),
    (lambda: TcpOptUnknown(-1, b"").to_bytes(), "tcp"),
    (lambda: encode_options(TcpOptUnknown(30, bytes(38)), TcpOptNop()), "tcp"),  # 41 bytes
])
def test_builders_refuse_out_of_range_fields(build, proto):
    with raises_wire(SanityError, proto):
        build()


def test_untagged_header_cannot_claim_the_vlan_ethertype():
    from pktpath.wire.ethernet import ETH_P_8021Q
    with pytest.raises(SanityError):
        EthHdr(b"\x02" * 6, b"\x04" * 6, ETH_P_8021Q).to_bytes()


@pytest.mark.parametrize("text", [" 1:2:3:4:5:6", "+1:2:3:4:5:6", "01:02:03:04:05", "01:02:03:04:05:06:07",
                                  "001:02:03:04:05:06", "0g:02:03:04:05:06", ""])
def test_mac_from_str_is_strict(text):
    from pktpath.wire.addr import mac_from_str
    with pytest.raises(SanityError):
        mac_from_str(text)
