"""VXLAN (RFC 7348): struct vxlanhdr (include/net/vxlan.h) as vxlan_rcv reads it.

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |R|R|R|R|I|R|R|R|            Reserved                           |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                VXLAN Network Identifier (VNI) |   Reserved    |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

The header rides in a UDP datagram to port 4789 (IANA's; Linux's `dstport`
default is 8472, its pre-standard one, unless `ip link add ... dstport 4789`
says otherwise) and is followed by the inner Ethernet frame, without its FCS.
The I flag says the VNI is valid. Linux drops a datagram whose I flag is clear,
or with any other flag or reserved bit set that no extension it was configured
with (GBP, GPE, RCO) claims, as SKB_DROP_REASON_VXLAN_INVALID_HDR: so does
from_bytes, with a SanityError.
"""

import struct
from typing import NamedTuple

from pktpath.wire.errors import SanityError, need
from pktpath.wire.header import new_header as _new
from pktpath.wire.header import wire_header

IANA_VXLAN_UDP_PORT = 4789
VXLAN_HLEN = 8
VXLAN_HF_VNI = 0x08000000  # the I flag, in the first 32-bit word
VXLAN_N_VID = 1 << 24      # VNIs are 24 bits
# outer IPv4 + UDP + VXLAN + the inner Ethernet header: what a VXLAN device's MTU is below its
# underlay's (VXLAN_HEADROOM in include/net/vxlan.h)
VXLAN_HEADROOM = 20 + 8 + VXLAN_HLEN + 14

_VXLANH = struct.Struct("!II")


@wire_header
class VxlanHdr(NamedTuple):
    vni: int

    header_len = VXLAN_HLEN

    @classmethod
    def from_bytes(cls, data) -> "VxlanHdr":
        """The header at the start of `data` (the UDP payload); the frame follows it."""
        need("vxlan", "header", len(data), VXLAN_HLEN)
        flags, word = _VXLANH.unpack_from(data)
        if flags != VXLAN_HF_VNI:
            raise SanityError("vxlan", "flags", f"flags 0x{flags:08x}: the I flag alone is valid")
        if word & 0xFF:
            raise SanityError("vxlan", "reserved", f"reserved byte 0x{word & 0xFF:02x} is not zero")
        return _new(cls, (word >> 8,))

    def to_bytes(self) -> bytes:
        if not 0 <= self.vni < VXLAN_N_VID:
            raise SanityError("vxlan", "vni", f"VNI {self.vni} is not a 24-bit number")
        return _VXLANH.pack(VXLAN_HF_VNI, self.vni << 8)
