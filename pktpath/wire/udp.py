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

Over IPv6 (ipv6=True, addresses as 128-bit ints) the checksum covers the IPv6
pseudo-header (RFC 8200 8.1), which sums the same way, and is not optional: a
zero checksum is a ChecksumError. __udp6_lib_rcv drops it once it has looked up
the socket (unless the socket set UDP_NO_CHECK6_RX), counting Udp6InCsumErrors and
Udp6InErrors, with SKB_DROP_REASON_UDP_CSUM -- NO_SOCKET when no socket matched,
and then no port unreachable. to_bytes never sends one.
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
    def from_bytes(cls, data, saddr: int | None = None, daddr: int | None = None, *,
                   ipv6: bool = False) -> "UdpHdr":
        """Parse the header at the start of `data` (the datagram from the UDP header on).

        With saddr and daddr the checksum is verified (unless it is 0: none sent). With
        ipv6=True a zero checksum is a ChecksumError, addresses given or not, and a len of 0
        means all of `data` (RFC 2675's jumbo UDP, which Linux takes in any IPv6 packet): the
        header returned has that length, and `data` must end where the IPv6 payload does.
        """
        n = len(data)
        if n < UDP_HLEN:
            raise TruncatedError("udp", "header", f"need {UDP_HLEN} bytes, have {n}")
        hdr = _new(cls, _UDPH.unpack_from(data))  # the fields are in wire order
        ulen = hdr[2]
        if ulen > n:
            raise TruncatedError("udp", "len", f"len {ulen} > {n} bytes received")
        if not ulen and ipv6:  # __udp6_lib_rcv: "check for jumbo payload", on any packet
            ulen = n
            hdr = _new(cls, (hdr[0], hdr[1], n, hdr[3]))
        if ulen < UDP_HLEN:
            raise IntegrityError("udp", "len", f"len {ulen} < {UDP_HLEN}")
        if not hdr[3] and ipv6:
            raise ChecksumError("udp", "check", "zero checksum over IPv6 (RFC 8200 8.1)")
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

    def to_bytes(self, payload, saddr: int, daddr: int, *, no_check: bool = False, ipv6: bool = False) -> bytes:
        """The header for `payload` between saddr and daddr, len and check computed.

        no_check=True (SO_NO_CHECK) sends 0, "no checksum": IPv4 only.
        """
        if no_check and ipv6:
            raise SanityError("udp", "check", "no checksum over IPv6 (RFC 8200 8.1)")
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
