"""Helpers shared by the wire codec tests (made importable by conftest.py).

Everything here is deliberately independent of pktpath's own algorithms where
it serves as an oracle: the one's-complement sum is a plain 16-bit word loop
with end-around carry (RFC 1071 section 4.1), the CRC-32 is a bit-at-a-time
loop over the reflected polynomial, and addresses are converted with the
standard library rather than pktpath.wire.addr.
"""

import ipaddress
import struct
from contextlib import contextmanager

import pytest

from pktpath.wire.arp import ArpHdr
from pktpath.wire.errors import WireError
from pktpath.wire.ethernet import EthHdr
from pktpath.wire.icmp import IcmpHdr, quote
from pktpath.wire.ipv4 import IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, IpHdr
from pktpath.wire.tcp import (
    TCPHDR_ACK, TCPHDR_PSH, TcpHdr, TcpOptNop, TcpOptSack, TcpOptTimestamp, encode_options,
)
from pktpath.wire.udp import UdpHdr

# ---------------------------------------------------------------- references


def ref_ones_sum(data, initial: int = 0) -> int:
    """The 16-bit one's-complement sum of `data` (odd length: a zero byte appended)
    plus `initial`, word by word with end-around carry. Never folds a non-zero
    sum to 0: it yields 0xFFFF ("negative zero") instead, as the hardware does."""
    data = bytes(data)
    if len(data) % 2:
        data += b"\x00"
    s = 0
    while initial:  # feed `initial` in as 16-bit words too
        s += initial & 0xFFFF
        s = (s & 0xFFFF) + (s >> 16)
        initial >>= 16
    for i in range(0, len(data), 2):
        s += (data[i] << 8) | data[i + 1]
        s = (s & 0xFFFF) + (s >> 16)  # end-around carry
    return s


def ref_checksum(data, initial: int = 0) -> int:
    """The Internet checksum field value for `data` (its checksum field zeroed)."""
    return ~ref_ones_sum(data, initial) & 0xFFFF


def ref_pseudo_header(saddr: int, daddr: int, protocol: int, length: int) -> bytes:
    """The RFC 768 / RFC 9293 IPv4 pseudo-header, as bytes."""
    return struct.pack("!IIBBH", saddr, daddr, 0, protocol, length)


def ref_crc32(data) -> int:
    """CRC-32 (IEEE 802.3), one bit at a time over the reflected polynomial."""
    crc = 0xFFFFFFFF
    for byte in bytes(data):
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0xEDB88320 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def mac_str(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)


def ip_str(addr: int) -> str:
    return str(ipaddress.IPv4Address(addr))


def ip_int(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


# --------------------------------------------------------------- assertions


@contextmanager
def raises_wire(cls, proto: str, field: str | None = None, *, exact: bool = False):
    """Like pytest.raises(cls), and also check the error's .proto (and .field).

    exact=True requires the class itself, not a subclass (an IntegrityError
    that must not be a TruncatedError or ChecksumError, say).
    """
    with pytest.raises(cls) as info:
        yield info
    err = info.value
    assert isinstance(err, WireError)
    if exact:
        assert type(err) is cls, f"expected exactly {cls.__name__}, got {type(err).__name__}: {err}"
    assert err.proto == proto, f"proto {err.proto!r} != {proto!r} ({err})"
    if field is not None:
        assert err.field == field, f"field {err.field!r} != {field!r} ({err})"


# ------------------------------------------------------------ sample packets

SADDR = ip_int("10.0.0.1")
DADDR = ip_int("10.0.0.2")
MAC_A = bytes.fromhex("020000000001")
MAC_B = bytes.fromhex("020000000002")

# Non-zero, not ending in zero, odd length: truncation always changes a checksum.
PAYLOAD = bytes(range(1, 40)) + b"Z"


def ip_packet(protocol: int, l4: bytes, *, options: bytes = b"", saddr=SADDR, daddr=DADDR, **fields) -> bytes:
    return IpHdr(saddr, daddr, protocol, options=options, **fields).to_bytes(len(l4)) + l4


def udp_datagram(payload=PAYLOAD, *, source=40000, dest=53, saddr=SADDR, daddr=DADDR) -> bytes:
    return UdpHdr(source, dest).to_bytes(payload, saddr, daddr) + payload


def tcp_segment(payload=PAYLOAD, *, source=40000, dest=80, saddr=SADDR, daddr=DADDR, options=None) -> bytes:
    if options is None:
        options = encode_options(
            TcpOptNop(), TcpOptNop(), TcpOptTimestamp(0x01020304, 0x05060708),
            TcpOptNop(), TcpOptNop(), TcpOptSack(((1000, 2000),)),
        )
    hdr = TcpHdr(source, dest, seq=0x11223344, ack_seq=0x55667788, flags=TCPHDR_ACK | TCPHDR_PSH,
                 window=5000, options=options)
    return hdr.to_bytes(payload, saddr, daddr) + payload


def icmp_echo(payload=PAYLOAD) -> bytes:
    return IcmpHdr.echo(0x1234, 7).to_bytes(payload) + payload


def icmp_error(inner=None) -> bytes:
    if inner is None:
        inner = ip_packet(IPPROTO_UDP, udp_datagram(b"hi there!"), options=b"\x94\x04\x00\x00")
    body = quote(inner)
    return IcmpHdr.dest_unreach(3).to_bytes(body) + body


def samples() -> dict[str, bytes]:
    """One valid packet per protocol, each starting with the header the name says."""
    return {
        "ethernet": EthHdr(MAC_B, MAC_A, 0x0800).to_bytes() + PAYLOAD,
        "ethernet_vlan": EthHdr(MAC_B, MAC_A, 0x0806, vlan_tci=0x2064).to_bytes() + PAYLOAD,
        "arp": ArpHdr(1, MAC_A, SADDR, bytes(6), DADDR).to_bytes(),
        "ipv4": ip_packet(IPPROTO_UDP, udp_datagram()),
        "ipv4_options": ip_packet(IPPROTO_TCP, tcp_segment(), options=b"\x07\x07\x04" + bytes(4)),
        "icmp_echo": icmp_echo(),
        "icmp_error": icmp_error(),
        "udp": udp_datagram(),
        "tcp": tcp_segment(),
        "icmp_in_ip": ip_packet(IPPROTO_ICMP, icmp_echo()),
    }
