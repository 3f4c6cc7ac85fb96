"""IPv4 (RFC 791): struct iphdr (include/uapi/linux/ip.h) as ip_rcv_core reads it.

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |version|  ihl  |      tos      |            tot_len            |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |              id               |CE|DF|MF|  fragment offset     |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |      ttl      |   protocol    |             check             |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                             saddr                             |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                             daddr                             |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                    options (kept as bytes)                    |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

As in the kernel, `frag_off` is the whole 16-bit field: flags and the offset in
8-byte units. The parser checks in ip_rcv_core's order: version and IHL
(sanity), header length, checksum, then tot_len against the buffer. Bytes past
tot_len are link padding for the caller to trim (pskb_trim_rcsum).
"""

import struct
from typing import NamedTuple

from pktpath.wire.addr import ip_to_str
from pktpath.wire.checksum import ip_compute_csum
from pktpath.wire.header import new_header as _new
from pktpath.wire.header import wire_header
from pktpath.wire.errors import ChecksumError, IntegrityError, SanityError, TruncatedError

IPPROTO_ICMP = 1
IPPROTO_IGMP = 2
IPPROTO_TCP = 6
IPPROTO_UDP = 17

IP_CE = 0x8000  # "congestion", the reserved bit
IP_DF = 0x4000
IP_MF = 0x2000
IP_OFFSET = 0x1FFF

# Option types (include/uapi/linux/ip.h): the copied flag, class and number in one byte.
IPOPT_COPY = 0x80
IPOPT_END = 0
IPOPT_NOOP = 1
IPOPT_RR = 7
IPOPT_TIMESTAMP = 68
IPOPT_SEC = 130
IPOPT_LSRR = 131
IPOPT_CIPSO = 134
IPOPT_SID = 136
IPOPT_SSRR = 137
IPOPT_RA = 148
# IPOPT_TIMESTAMP flags (the low nibble of its fourth byte; the high one counts overflows)
IPOPT_TS_TSONLY = 0
IPOPT_TS_TSANDADDR = 1
IPOPT_TS_PRESPEC = 3

IPV4_MIN_HLEN = 20
IPV4_MAX_OPTLEN = 40
IP_MAX_PACKET = 0xFFFF
IPDEFTTL = 64

_IPH = struct.Struct("!BBHHHBBHII")
_from_bytes = int.from_bytes


@wire_header
class IpHdr(NamedTuple):
    saddr: int
    daddr: int
    protocol: int
    ttl: int = IPDEFTTL
    tos: int = 0
    id: int = 0
    frag_off: int = 0
    tot_len: int = 0  # computed by to_bytes(payload_len)
    check: int = 0    # computed by to_bytes
    options: bytes = b""

    version = 4

    @property
    def ihl(self) -> int:
        return (IPV4_MIN_HLEN + len(self.options) + 3) // 4

    @property
    def header_len(self) -> int:
        return (IPV4_MIN_HLEN + len(self.options) + 3) & ~3  # ihl * 4, without a second property call

    @property
    def df(self) -> bool:
        return bool(self.frag_off & IP_DF)

    @property
    def mf(self) -> bool:
        return bool(self.frag_off & IP_MF)

    @property
    def frag_offset(self) -> int:
        """Offset of this fragment's data in the original datagram, in bytes."""
        return (self.frag_off & IP_OFFSET) * 8

    @property
    def is_fragment(self) -> bool:
        """ip_is_fragment(): MF set or a non-zero offset."""
        return bool(self.frag_off & (IP_MF | IP_OFFSET))

    @classmethod
    def from_bytes(cls, data, *, verify_csum: bool = True, quoted: bool = False) -> "IpHdr":
        """Parse and verify the header at the start of `data`.

        quoted=True reads a header quoted inside an ICMP error: its tot_len
        describes the original datagram, not the bytes that follow here.
        """
        n = len(data)
        if n < IPV4_MIN_HLEN:
            raise TruncatedError("ipv4", "header", f"need {IPV4_MIN_HLEN} bytes, have {n}")
        vihl, tos, tot_len, id_, frag_off, ttl, protocol, check, saddr, daddr = _IPH.unpack_from(data)
        if vihl == 0x45:  # the common case: version 4, no options
            hlen = IPV4_MIN_HLEN
            options = b""
        else:
            if vihl >> 4 != 4:
                raise SanityError("ipv4", "version", f"version {vihl >> 4}, not 4")
            hlen = (vihl & 0x0F) * 4
            if hlen < IPV4_MIN_HLEN:
                raise SanityError("ipv4", "ihl", f"ihl {vihl & 0x0F} < 5")
            if n < hlen:
                raise TruncatedError("ipv4", "options", f"need {hlen} bytes, have {n}")
            options = bytes(data[IPV4_MIN_HLEN:hlen])
        # verifies() inlined: hlen is even and the version nibble makes the sum non-zero.
        if verify_csum and _from_bytes(data[:hlen], "big") % 0xFFFF:
            raise ChecksumError("ipv4", "check", f"header checksum 0x{check:04x} does not verify")
        if not quoted:
            if tot_len > n:
                raise TruncatedError("ipv4", "tot_len", f"tot_len {tot_len} > {n} bytes received")
            if tot_len < hlen:
                raise IntegrityError("ipv4", "tot_len", f"tot_len {tot_len} < header length {hlen}")
        return _new(cls, (saddr, daddr, protocol, ttl, tos, id_, frag_off, tot_len, check, options))

    def to_bytes(self, payload_len: int | None = None) -> bytes:
        """The header with its checksum computed; tot_len from payload_len if given."""
        options = self.options
        if len(options) > IPV4_MAX_OPTLEN:
            raise SanityError("ipv4", "options", f"{len(options)} bytes of options > {IPV4_MAX_OPTLEN}")
        if len(options) % 4:
            options = options + bytes(4 - len(options) % 4)  # IPOPT_END padding
        hlen = IPV4_MIN_HLEN + len(options)
        tot_len = self.tot_len if payload_len is None else hlen + payload_len
        if not hlen <= tot_len <= IP_MAX_PACKET:
            raise SanityError("ipv4", "tot_len", f"tot_len {tot_len} outside {hlen}..{IP_MAX_PACKET}")
        try:
            header = _IPH.pack(
                0x40 | hlen // 4, self.tos, tot_len, self.id, self.frag_off,
                self.ttl, self.protocol, 0, self.saddr, self.daddr,
            ) + options
        except struct.error as exc:
            raise SanityError("ipv4", "field", str(exc)) from exc
        check = ip_compute_csum(header)
        return header[:10] + check.to_bytes(2, "big") + header[12:]

    def __repr__(self) -> str:
        return (
            f"IpHdr(saddr={ip_to_str(self.saddr)}, daddr={ip_to_str(self.daddr)}, protocol={self.protocol}, "
            f"ttl={self.ttl}, tos=0x{self.tos:02x}, id={self.id}, frag_off=0x{self.frag_off:04x}, "
            f"tot_len={self.tot_len}, check=0x{self.check:04x}, options={self.options!r})"
        )
