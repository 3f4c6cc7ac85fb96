"""ICMPv4 (RFC 792, RFC 1191): struct icmphdr (include/uapi/linux/icmp.h) as icmp_rcv reads it.

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |     type      |     code      |           checksum            |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |  un: echo id | echo sequence, or gateway, or unused | frag mtu |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |  echo data, or the quoted IPv4 header + leading payload bytes  |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

`un` is the kernel's union of the second word; echo_id/echo_sequence, mtu and
gateway read it per type. The checksum covers the whole message. Error messages
(destination unreachable, source quench, redirect, time exceeded, parameter
problem) carry the original packet's IPv4 header and at least 8 bytes after it;
quoted() parses that header, quote() picks the bytes to carry as icmp_send does.
"""

import struct
from typing import NamedTuple

from pktpath.wire.checksum import ip_compute_csum, verifies
from pktpath.wire.header import new_header as _new
from pktpath.wire.header import wire_header
from pktpath.wire.errors import ChecksumError, SanityError, TruncatedError
from pktpath.wire.ipv4 import IpHdr

ICMP_ECHOREPLY = 0
ICMP_DEST_UNREACH = 3
ICMP_SOURCE_QUENCH = 4
ICMP_REDIRECT = 5
ICMP_ECHO = 8
ICMP_TIME_EXCEEDED = 11
ICMP_PARAMETERPROB = 12
ICMP_TIMESTAMP = 13
ICMP_TIMESTAMPREPLY = 14
ICMP_ADDRESS = 17
ICMP_ADDRESSREPLY = 18
NR_ICMP_TYPES = 18
ICMP_EXT_ECHO = 42       # RFC 8335 PROBE
ICMP_EXT_ECHOREPLY = 43

# ICMP_DEST_UNREACH codes
ICMP_NET_UNREACH = 0
ICMP_HOST_UNREACH = 1
ICMP_PROT_UNREACH = 2
ICMP_PORT_UNREACH = 3
ICMP_FRAG_NEEDED = 4
ICMP_PKT_FILTERED = 13
# ICMP_TIME_EXCEEDED codes
ICMP_EXC_TTL = 0
ICMP_EXC_FRAGTIME = 1

ICMP_HLEN = 8
ERROR_TYPES = frozenset({ICMP_DEST_UNREACH, ICMP_SOURCE_QUENCH, ICMP_REDIRECT, ICMP_TIME_EXCEEDED, ICMP_PARAMETERPROB})
# icmp_send() keeps the whole error datagram within 576 bytes (RFC 1812 4.3.2.3).
ICMP_ERROR_MAX_DATAGRAM = 576

_ICMPH = struct.Struct("!BBHI")


@wire_header
class IcmpHdr(NamedTuple):
    type: int
    code: int = 0
    un: int = 0        # the second 32-bit word, read per type below
    checksum: int = 0  # computed by to_bytes

    header_len = ICMP_HLEN

    @property
    def is_error(self) -> bool:
        return self.type in ERROR_TYPES

    @property
    def echo_id(self) -> int:
        return self.un >> 16

    @property
    def echo_sequence(self) -> int:
        return self.un & 0xFFFF

    @property
    def mtu(self) -> int:
        """Next-hop MTU of a fragmentation-needed message (RFC 1191)."""
        return self.un & 0xFFFF

    @property
    def gateway(self) -> int:
        return self.un

    @classmethod
    def echo(cls, echo_id: int, sequence: int, *, reply: bool = False) -> "IcmpHdr":
        return cls(ICMP_ECHOREPLY if reply else ICMP_ECHO, 0, (echo_id & 0xFFFF) << 16 | sequence & 0xFFFF)

    @classmethod
    def dest_unreach(cls, code: int, mtu: int = 0) -> "IcmpHdr":
        return cls(ICMP_DEST_UNREACH, code, mtu & 0xFFFF if code == ICMP_FRAG_NEEDED else 0)

    @classmethod
    def time_exceeded(cls, code: int = ICMP_EXC_TTL) -> "IcmpHdr":
        return cls(ICMP_TIME_EXCEEDED, code, 0)

    @classmethod
    def from_bytes(cls, data, *, verify_csum: bool = True) -> "IcmpHdr":
        """Parse the header at the start of `data`, the whole ICMP message."""
        if len(data) < ICMP_HLEN:
            raise TruncatedError("icmp", "header", f"need {ICMP_HLEN} bytes, have {len(data)}")
        type_, code, checksum, un = _ICMPH.unpack_from(data)
        if verify_csum and not verifies(data):
            raise ChecksumError("icmp", "checksum", f"checksum 0x{checksum:04x} does not verify")
        if type_ > NR_ICMP_TYPES:
            raise SanityError("icmp", "type", f"type {type_} > NR_ICMP_TYPES ({NR_ICMP_TYPES})")
        if type_ in ERROR_TYPES and len(data) < ICMP_HLEN + 20:
            raise TruncatedError("icmp", "quoted", "an error message must quote the original IPv4 header")
        return _new(cls, (type_, code, un, checksum))

    def to_bytes(self, payload=b"") -> bytes:
        """The header for `payload`, checksum computed over both."""
        try:
            header = _ICMPH.pack(self.type, self.code, 0, self.un)
        except struct.error as exc:
            raise SanityError("icmp", "field", str(exc)) from exc
        check = ip_compute_csum(header, payload)
        return header[:2] + check.to_bytes(2, "big") + header[4:]


def quoted(data) -> tuple[IpHdr, bytes]:
    """The original IPv4 header an error message (`data`, the whole ICMP message) quotes,
    and the bytes after it (at least the transport ports)."""
    inner = data[ICMP_HLEN:]
    iph = IpHdr.from_bytes(inner, verify_csum=False, quoted=True)
    return iph, bytes(inner[iph.header_len:])


def quote(packet, *, ip_options_len: int = 0) -> bytes:
    """The part of the offending `packet` (from its IPv4 header) an error carries:
    as much as keeps the error datagram within 576 bytes, as icmp_send() does."""
    room = ICMP_ERROR_MAX_DATAGRAM - 20 - ip_options_len - ICMP_HLEN
    return bytes(packet[:room])
