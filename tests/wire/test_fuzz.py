"""Seeded fuzzing of every parser: the only exception any of them may raise is WireError.

Two corpora, 60,000 inputs each (120,000 in all), every input through every
parser:

* random byte strings of length 0..120;
* mutations of valid packets (bit flips, byte writes, cuts, insertions,
  extensions), half of them with the checksums repaired afterwards so that
  parsing gets past the checksum into the length and sanity checks.

Outcomes are counted per parser, and the counts must show both successes and
failures (and, for the deep parsers, each kind of failure), so the test fails
if a parser starts accepting or rejecting everything. Successful parses are
also checked for consistency: rebuilding gives the parsed bytes back, the
lenient option parser loses nothing, memoryview and bytearray inputs read as
bytes do.
"""

import random
import struct
import zlib
from collections import Counter, defaultdict

from pktpath.wire.arp import ArpHdr
from pktpath.wire.checksum import ip_compute_csum
from pktpath.wire.errors import IntegrityError, WireError
from pktpath.wire.ethernet import EthHdr, fcs, strip_fcs
from pktpath.wire.icmp import IcmpHdr, quoted
from pktpath.wire.ipv4 import IPPROTO_TCP, IPPROTO_UDP, IpHdr
from pktpath.wire.tcp import (
    TcpHdr, TcpOptEol, TcpOptMss, TcpOptNop, TcpOptRaw, TcpOptSack, TcpOptSackPerm, TcpOptTimestamp,
    TcpOptUnknown, TcpOptWindow, encode_options, parse_options,
)
from pktpath.wire.udp import UdpHdr
from wirekit import (
    DADDR, MAC_A, MAC_B, SADDR, icmp_echo, icmp_error, ip_packet, ref_checksum, ref_pseudo_header, samples,
    tcp_segment, udp_datagram,
)

N_RANDOM = 60_000
N_MUTATED = 60_000
MAX_LEN = 120


def same_but_checksum(built: bytes, data: bytes, offset: int) -> bool:
    """built == data, except that a checksum of 0x0000 and 0xFFFF (both "all ones"
    in one's complement) may stand for each other at `offset`."""
    if built == data:
        return True
    pair = {built[offset:offset + 2], data[offset:offset + 2]}
    return pair == {b"\x00\x00", b"\xff\xff"} and built[:offset] == data[:offset] and \
        built[offset + 2:] == data[offset + 2:]


# ------------------------------------------------------------ the parsers
# Each takes the input and returns the parsed value; a check_* function then
# verifies what it returned against the input.


def check_eth(data, h):
    assert h.to_bytes() == bytes(data[:h.header_len])


def check_arp(data, h):
    assert h.to_bytes() == bytes(data[:28])


def check_ipv4(data, h):
    assert same_but_checksum(h.to_bytes(), bytes(data[:h.header_len]), 10)
    assert h.header_len <= h.tot_len <= len(data)


def check_ipv4_lax(data, h):
    """quoted=True or verify_csum=False: tot_len or the checksum may be anything."""
    hlen = h.header_len
    assert hlen <= len(data) and h.options == bytes(data[20:hlen])
    if hlen <= h.tot_len:
        built = h.to_bytes()
        assert built[:10] + built[12:] == bytes(data[:10]) + bytes(data[12:hlen])


def check_icmp(data, h):
    assert same_but_checksum(h.to_bytes(bytes(data[8:])), bytes(data[:8]), 2)


def check_icmp_quoted(data, result):
    iph, rest = result
    assert bytes(data[8 + iph.header_len:]) == rest


def check_udp(data, h):
    assert 8 <= h.len <= len(data) and h.dest != 0


def check_udp_addrs(data, h):
    check_udp(data, h)
    if h.check:  # verified: the builder must produce the same header
        assert h.to_bytes(bytes(data[8:h.len]), SADDR, DADDR) == bytes(data[:8])


def check_tcp(data, h):
    assert h.source and h.dest and 20 <= h.header_len <= len(data)
    assert len(h.options) == h.header_len - 20
    opts = h.parsed_options(strict=False)  # must never raise
    assert b"".join(o.to_bytes() for o in opts) == h.options[:sum(len(o.to_bytes()) for o in opts)]
    try:
        assert h.parsed_options() == opts
    except WireError:
        assert type(opts[-1]) is TcpOptRaw


def check_tcp_addrs(data, h):
    check_tcp(data, h)
    assert same_but_checksum(h.to_bytes(bytes(data[h.header_len:]), SADDR, DADDR), bytes(data[:h.header_len]), 16)


def check_options_strict(data, opts):
    assert parse_options(data, strict=False) == opts
    assert TcpOptRaw not in {type(o) for o in opts}


def check_options_lenient(data, opts):
    raw = bytes(data)
    if len(raw) > 40:  # more than a header can hold: a SACK could have > 4 blocks
        return
    joined = b"".join(o.to_bytes() for o in opts)
    # nothing is lost but the zero padding after an EOL
    assert raw.startswith(joined) and not raw[len(joined):].strip(b"\x00")
    if raw[len(joined):]:
        assert type(opts[-1]) is TcpOptEol


def check_strip_fcs(data, body):
    assert body == bytes(data[:-4]) and fcs(body) == bytes(data[-4:])


PARSERS = {
    "ethernet": (EthHdr.from_bytes, check_eth),
    "arp": (ArpHdr.from_bytes, check_arp),
    "ipv4": (IpHdr.from_bytes, check_ipv4),
    "ipv4_quoted": (lambda d: IpHdr.from_bytes(d, quoted=True), check_ipv4_lax),
    "ipv4_no_csum": (lambda d: IpHdr.from_bytes(d, verify_csum=False), check_ipv4_lax),
    "icmp": (IcmpHdr.from_bytes, check_icmp),
    "icmp_quoted": (quoted, check_icmp_quoted),
    "udp": (UdpHdr.from_bytes, check_udp),
    "udp_addrs": (lambda d: UdpHdr.from_bytes(d, SADDR, DADDR), check_udp_addrs),
    "tcp": (TcpHdr.from_bytes, check_tcp),
    "tcp_addrs": (lambda d: TcpHdr.from_bytes(d, SADDR, DADDR), check_tcp_addrs),
    "options_strict": (parse_options, check_options_strict),
    "options_lenient": (lambda d: parse_options(d, strict=False), check_options_lenient),
    "strip_fcs": (strip_fcs, check_strip_fcs),
}
PARSER_ITEMS = list(PARSERS.items())


def run_all(data, counts, rng):
    """Every parser on `data`; anything but a WireError fails the test, with the input."""
    for name, (parse, check) in PARSER_ITEMS:
        try:
            result = parse(data)
        except WireError as exc:
            counts[name][type(exc).__name__] += 1
            if type(exc) is IntegrityError:
                counts[name]["IntegrityError(exact)"] += 1
            continue
        except Exception as exc:  # noqa: BLE001 - the point of the test
            raise AssertionError(f"{name} raised {type(exc).__name__}: {exc!r} on {bytes(data).hex()}") from exc
        counts[name]["ok"] += 1
        try:
            check(data, result)
            if rng.random() < 0.05:  # buffer views read exactly as bytes do
                assert parse(memoryview(data)) == result
                assert parse(bytearray(data)) == result
        except AssertionError as exc:
            raise AssertionError(f"{name}: inconsistent result {result!r} on {bytes(data).hex()}") from exc


# ------------------------------------------------------------ the corpora


def seeds() -> list[tuple[str, bytes]]:
    """Valid packets, each starting at the layer its kind names."""
    s = samples()
    tcp_syn = tcp_segment(b"", options=encode_options(
        TcpOptMss(1460), TcpOptSackPerm(), TcpOptTimestamp(1, 0), TcpOptNop(), TcpOptWindow(7)))
    tcp_sack = tcp_segment(b"x", options=encode_options(
        TcpOptNop(), TcpOptNop(), TcpOptSack(((1, 2), (3, 4), (5, 6), (7, 8)))))
    tcp_unknown = tcp_segment(b"yz", options=encode_options(TcpOptUnknown(30, b"\x01\x02\x03"), TcpOptEol()))
    ip_tcp = ip_packet(IPPROTO_TCP, tcp_syn)
    out = [
        ("eth", s["ethernet"]), ("eth", s["ethernet_vlan"]),
        ("eth", EthHdr(MAC_B, MAC_A, 0x0800).to_bytes() + s["ipv4"]),
        ("arp", s["arp"]), ("arp", s["arp"] + bytes(18)),
        ("ipv4", s["ipv4"]), ("ipv4", s["ipv4_options"]), ("ipv4", s["icmp_in_ip"]), ("ipv4", ip_tcp),
        ("ipv4", ip_packet(IPPROTO_UDP, udp_datagram(b""), frag_off=0x2000 | 185)),
        ("icmp", s["icmp_echo"]), ("icmp", s["icmp_error"]), ("icmp", icmp_echo(b"")),
        ("icmp", icmp_error(ip_tcp)), ("icmp", icmp_error(s["icmp_in_ip"])),
        ("udp", s["udp"]), ("udp", udp_datagram(b"")), ("udp", udp_datagram(b"abc", source=0)),
        ("tcp", s["tcp"]), ("tcp", tcp_syn), ("tcp", tcp_sack), ("tcp", tcp_unknown),
        ("tcp", tcp_segment(b"", options=b"")),
        ("options", tcp_syn[20:40]), ("options", tcp_sack[20:(tcp_sack[12] >> 4) * 4]), ("options", tcp_unknown[20:28]),
        ("options", s["tcp"][20:(s["tcp"][12] >> 4) * 4]),
        ("fcs", s["ethernet"] + fcs(s["ethernet"])), ("fcs", s["arp"] + fcs(s["arp"])),
    ]
    for kind, data in out:  # the corpus is valid to begin with
        {"eth": EthHdr.from_bytes, "arp": ArpHdr.from_bytes, "ipv4": IpHdr.from_bytes,
         "icmp": IcmpHdr.from_bytes, "udp": lambda d: UdpHdr.from_bytes(d, SADDR, DADDR),
         "tcp": lambda d: TcpHdr.from_bytes(d, SADDR, DADDR).parsed_options(),
         "options": parse_options, "fcs": strip_fcs}[kind](data)
    return out


INTERESTING = (0x00, 0x01, 0x02, 0x04, 0x05, 0x06, 0x08, 0x0A, 0x11, 0x3F, 0x40, 0x45, 0x4F, 0x50, 0x7F,
               0x80, 0x81, 0xF0, 0xFE, 0xFF)


def mutate(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        op = rng.random()
        if op < 0.30 and buf:
            pos = rng.randrange(len(buf))
            buf[pos] ^= 1 << rng.randrange(8)
        elif op < 0.55 and buf:
            buf[rng.randrange(len(buf))] = rng.choice(INTERESTING) if rng.random() < 0.6 else rng.randrange(256)
        elif op < 0.70 and buf:
            del buf[rng.randrange(len(buf) + 1):]
        elif op < 0.80:
            buf[rng.randrange(len(buf) + 1):0] = rng.randbytes(rng.randint(1, 4))
        elif op < 0.90 and buf:
            pos = rng.randrange(len(buf))
            del buf[pos:pos + rng.randint(1, 4)]
        else:
            buf += rng.randbytes(rng.randint(1, 16))
    return bytes(buf)


def _put16(buf: bytearray, offset: int, value: int) -> None:
    buf[offset:offset + 2] = struct.pack("!H", value)


def repair(kind: str, data: bytes) -> bytes:
    """Recompute whatever checksum the seed kind carries, so parsing goes deeper."""
    buf = bytearray(data)
    if kind == "ipv4" and len(buf) >= 20:
        hlen = max(20, (buf[0] & 0x0F) * 4)
        if len(buf) >= hlen:
            _put16(buf, 10, 0)
            _put16(buf, 10, ip_compute_csum(bytes(buf[:hlen])))
    elif kind == "icmp" and len(buf) >= 8:
        _put16(buf, 2, 0)
        _put16(buf, 2, ref_checksum(bytes(buf)))
    elif kind == "udp" and len(buf) >= 8:
        ulen = struct.unpack_from("!H", buf, 4)[0]
        if 8 <= ulen <= len(buf):
            _put16(buf, 6, 0)
            check = ref_checksum(ref_pseudo_header(SADDR, DADDR, IPPROTO_UDP, ulen) + bytes(buf[:ulen]))
            _put16(buf, 6, check or 0xFFFF)
    elif kind == "tcp" and len(buf) >= 20:
        _put16(buf, 16, 0)
        _put16(buf, 16, ref_checksum(ref_pseudo_header(SADDR, DADDR, IPPROTO_TCP, len(buf)) + bytes(buf)))
    elif kind == "fcs" and len(buf) >= 4:
        buf[-4:] = struct.pack("<I", zlib.crc32(bytes(buf[:-4])))
    return bytes(buf)


def report(counts) -> str:
    return "\n".join(f"{name:16} {dict(sorted(c.items()))}" for name, c in counts.items())


# ------------------------------------------------------------------ tests


def test_fuzz_random_bytes():
    rng = random.Random(0x5EED_0001)
    counts = defaultdict(Counter)
    for i in range(N_RANDOM):
        n = rng.randint(0, MAX_LEN) if i % 4 else rng.randint(0, 30)  # short lengths often: the bounds
        data = rng.randbytes(n)
        if i % 10 == 0 and n >= 1:  # a plausible first byte for IPv4
            data = bytes([0x45 if i % 20 else 0x40 | rng.randrange(16)]) + data[1:]
        run_all(data, counts, rng)
    print(report(counts))
    assert sum(counts["ethernet"].values()) == N_RANDOM
    for name in PARSERS:
        c = counts[name]
        if name != "options_lenient":
            assert sum(c.values()) - c["ok"] > 0, f"{name} never failed\n{report(counts)}"
    # Random bytes pass a checksum or ARP's fixed fields only by luck (the mutated
    # corpus below covers those); these parsers must accept some of them.
    for name in ("ethernet", "icmp_quoted", "udp", "tcp", "options_strict", "options_lenient"):
        assert counts[name]["ok"] > 0, f"{name} never succeeded on random bytes\n{report(counts)}"
    assert sum(counts["options_lenient"].values()) == counts["options_lenient"]["ok"]  # never raises
    assert counts["ethernet"]["SanityError"] and counts["ethernet"]["TruncatedError"]
    assert counts["udp"]["IntegrityError(exact)"] and counts["udp"]["TruncatedError"]
    assert counts["tcp"]["SanityError"] and counts["tcp"]["TruncatedError"]
    assert counts["tcp_addrs"]["ChecksumError"]
    assert counts["strip_fcs"]["ChecksumError"]


def test_fuzz_mutated_packets():
    rng = random.Random(0x5EED_0002)
    corpus = seeds()
    counts = defaultdict(Counter)
    for i in range(N_MUTATED):
        kind, data = corpus[i % len(corpus)]
        data = mutate(rng, data)
        if i % 2:
            data = repair(kind, data)
        run_all(data, counts, rng)
    print(report(counts))
    assert sum(counts["ethernet"].values()) == N_MUTATED
    for name in PARSERS:
        c = counts[name]
        assert c["ok"] > 0, f"{name} never succeeded on mutated packets\n{report(counts)}"
        if name != "options_lenient":
            assert sum(c.values()) - c["ok"] > 0, f"{name} never failed\n{report(counts)}"
    # the mutations reach every kind of check in the deep parsers
    for name, kinds in {
        "ipv4": ("TruncatedError", "ChecksumError", "SanityError", "IntegrityError(exact)"),
        "icmp": ("TruncatedError", "ChecksumError", "SanityError"),
        "udp_addrs": ("TruncatedError", "ChecksumError", "SanityError", "IntegrityError(exact)"),
        "tcp_addrs": ("TruncatedError", "ChecksumError", "SanityError"),
        "options_strict": ("IntegrityError(exact)", "SanityError"),
        "arp": ("TruncatedError", "SanityError"),
        "strip_fcs": ("TruncatedError", "ChecksumError"),
        "icmp_quoted": ("TruncatedError", "SanityError"),
    }.items():
        for k in kinds:
            assert counts[name][k] > 0, f"{name} never raised {k}\n{report(counts)}"
    assert counts["options_lenient"]["ok"] == N_MUTATED


def test_fuzz_covers_at_least_100k_inputs():
    assert N_RANDOM + N_MUTATED >= 100_000
    assert len(PARSERS) == 14
