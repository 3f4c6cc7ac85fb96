"""UDP (RFC 768): struct udphdr (include/uapi/linux/udp.h) as __udp4_lib_rcv reads it.

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |            source             |             dest              |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |              len              |             check             |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

The checksum covers the IPv4 pseudo-header; 0 on the wire means "none" and a
computed 0 is sent as 0xFFFF (CSUM_MANGLED_0). Bytes past `len` are padding for
the caller to trim, as udp_rcv does with pskb_trim_rcsum.
"""

import struct
from typing import NamedTuple

from pktpath.wire.checksum import csum_tcpudp
from pktpath.wire.header import new_header as _new
from pktpath.wire.header import wire_header
from pktpath.wire.errors import ChecksumError, IntegrityError, SanityError, TruncatedError

IPPROTO_UDP = 17
UDP_HLEN = 8
UDP_MAX_LEN = 0xFFFF

_UDPH = struct.Struct("!HHHH")
_from_bytes = int.from_bytes


@wire_header
class UdpHdr(NamedTuple):
    source: int
    dest: int
    len: int = 0    # computed by to_bytes
    check: int = 0  # computed by to_bytes

    header_len = UDP_HLEN

    @classmethod
    def from_bytes(cls, data, saddr: int | None = None, daddr: int | None = None) -> "UdpHdr":
        """Parse the header at the start of `data` (the datagram from the UDP header on).

        With saddr and daddr the checksum is verified (unless it is 0: none sent).
        """
        n = len(data)
        if n < UDP_HLEN:
            raise TruncatedError("udp", "header", f"need {UDP_HLEN} bytes, have {n}")
        hdr = _new(cls, _UDPH.unpack_from(data))  # the fields are in wire order
        ulen = hdr[2]
        if ulen > n:
            raise TruncatedError("udp", "len", f"len {ulen} > {n} bytes received")
        if ulen < UDP_HLEN:
            raise IntegrityError("udp", "len", f"len {ulen} < {UDP_HLEN}")
        if hdr[3] and saddr is not None and daddr is not None:
            # verifies() inlined, pseudo-header included (see checksum.py); ulen
            # makes the total non-zero.
            total = _from_bytes(data[:ulen] if ulen < n else data, "big")
            if ulen & 1:
                total <<= 8
            if (total + saddr + daddr + IPPROTO_UDP + ulen) % 0xFFFF:
                raise ChecksumError("udp", "check", f"checksum 0x{hdr[3]:04x} does not verify")
        if not hdr[1]:
            raise SanityError("udp", "dest", "destination port 0 is reserved")
        return hdr

    def to_bytes(self, payload, saddr: int, daddr: int, *, no_check: bool = False) -> bytes:
        """The header for `payload` between saddr and daddr, len and check computed."""
        ulen = UDP_HLEN + len(payload)
        if ulen > UDP_MAX_LEN:
            raise SanityError("udp", "len", f"datagram of {ulen} bytes > {UDP_MAX_LEN}")
        try:
            header = _UDPH.pack(self.source, self.dest, ulen, 0)
        except struct.error as exc:
            raise SanityError("udp", "port", str(exc)) from exc
        if no_check:
            return header
        check = csum_tcpudp(saddr, daddr, IPPROTO_UDP, header, payload) or 0xFFFF
        return header[:6] + check.to_bytes(2, "big")
