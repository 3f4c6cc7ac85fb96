"""Ethernet II with at most one IEEE 802.1Q tag, and the frame check sequence.

Models struct ethhdr / struct vlan_ethhdr (include/uapi/linux/if_ether.h,
include/linux/if_vlan.h) and eth_type_trans (net/ethernet/eth.c).

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                    h_dest (6 octets)                          |
    +                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                               |                               |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+        h_source (6 octets)    +
    |                                                               |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |  h_proto (or 0x8100 TPID)     |  [802.1Q: PCP|DEI|VID (TCI)]  |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    | [802.1Q: encapsulated proto]  |  payload ...
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

EthHdr takes one 802.1Q tag; any further tag (stacked tags, or an 802.1ad
outer tag, which EthHdr leaves as its h_proto) is a VlanHdr, struct vlan_hdr,
as skb_vlan_untag() (net/core/skbuff.c) takes them one at a time.

Ethertypes below 0x0600 are IEEE 802.3 length fields, which pktpath does not
speak: a SanityError. Frames on pktpath links carry no FCS unless a link says so
(as the kernel sees frames after the NIC strips it); fcs() and strip_fcs()
handle one when it is there.
"""

import struct
import zlib
from typing import NamedTuple

from pktpath.wire.addr import mac_to_str
from pktpath.wire.header import new_header as _new
from pktpath.wire.header import wire_header
from pktpath.wire.errors import ChecksumError, SanityError, TruncatedError

ETH_HLEN = 14
VLAN_HLEN = 4
ETH_FCS_LEN = 4
ETH_ZLEN = 60  # minimum frame length without FCS; drivers pad short frames
ETH_DATA_LEN = 1500

ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
ETH_P_8021Q = 0x8100
ETH_P_8021AD = 0x88A8
ETH_P_IPV6 = 0x86DD
ETH_P_802_3_MIN = 0x0600

VLAN_VID_MASK = 0x0FFF
VLAN_MAX_DEPTH = 8  # include/linux/if_vlan.h: nested tags parsed (and priority tags stripped) at most

_ETH = struct.Struct("!6s6sH")
_VLAN = struct.Struct("!HH")


@wire_header
class EthHdr(NamedTuple):
    h_dest: bytes
    h_source: bytes
    h_proto: int  # the encapsulated ethertype (after the tag, if any)
    vlan_tci: int | None = None  # 802.1Q tag control: PCP(3) DEI(1) VID(12)

    @property
    def header_len(self) -> int:
        return ETH_HLEN if self.vlan_tci is None else ETH_HLEN + VLAN_HLEN

    @property
    def vlan_id(self) -> int | None:
        return None if self.vlan_tci is None else self.vlan_tci & VLAN_VID_MASK

    @classmethod
    def from_bytes(cls, data) -> "EthHdr":
        if len(data) < ETH_HLEN:
            raise TruncatedError("ethernet", "header", f"need {ETH_HLEN} bytes, have {len(data)}")
        h_dest, h_source, proto = _ETH.unpack_from(data)
        tci = None
        if proto == ETH_P_8021Q:
            if len(data) < ETH_HLEN + VLAN_HLEN:
                raise TruncatedError("ethernet", "vlan", f"need {ETH_HLEN + VLAN_HLEN} bytes, have {len(data)}")
            tci, proto = _VLAN.unpack_from(data, ETH_HLEN)
        if proto < ETH_P_802_3_MIN:
            raise SanityError("ethernet", "h_proto", f"0x{proto:04x} is an 802.3 length, not an ethertype")
        return _new(cls, (h_dest, h_source, proto, tci))

    def to_bytes(self) -> bytes:
        if len(self.h_dest) != 6 or len(self.h_source) != 6:
            raise SanityError("ethernet", "address", "MAC addresses are 6 bytes")
        if not ETH_P_802_3_MIN <= self.h_proto <= 0xFFFF:
            raise SanityError("ethernet", "h_proto", f"not an ethertype: {self.h_proto!r}")
        if self.vlan_tci is None:
            if self.h_proto == ETH_P_8021Q:
                raise SanityError("ethernet", "h_proto", "0x8100 is the 802.1Q tag: give vlan_tci instead")
            return _ETH.pack(self.h_dest, self.h_source, self.h_proto)
        if not 0 <= self.vlan_tci <= 0xFFFF:
            raise SanityError("ethernet", "vlan_tci", f"out of range: {self.vlan_tci!r}")
        return _ETH.pack(self.h_dest, self.h_source, ETH_P_8021Q) + _VLAN.pack(self.vlan_tci, self.h_proto)

    def __repr__(self) -> str:
        vlan = "" if self.vlan_tci is None else f", vlan_tci=0x{self.vlan_tci:04x}"
        return (
            f"EthHdr(h_dest={mac_to_str(self.h_dest)}, h_source={mac_to_str(self.h_source)}, "
            f"h_proto=0x{self.h_proto:04x}{vlan})"
        )


def eth_type_vlan(ethertype: int) -> bool:
    """eth_type_vlan() (include/linux/if_vlan.h): an 802.1Q or 802.1ad tag protocol identifier."""
    return ethertype == ETH_P_8021Q or ethertype == ETH_P_8021AD


@wire_header
class VlanHdr(NamedTuple):
    """struct vlan_hdr: the tag after a TPID (0x8100 or 0x88a8) and the type it encapsulates.

    The encapsulated type is not checked: below 0x0600 it is an 802.3 length, as
    vlan_set_encap_proto() finds it, and what to do with it is the receiver's business."""

    h_vlan_TCI: int
    h_vlan_encapsulated_proto: int

    @property
    def vlan_id(self) -> int:
        return self.h_vlan_TCI & VLAN_VID_MASK

    @classmethod
    def from_bytes(cls, data) -> "VlanHdr":
        if len(data) < VLAN_HLEN:
            raise TruncatedError("ethernet", "vlan", f"need {VLAN_HLEN} bytes, have {len(data)}")
        return _new(cls, _VLAN.unpack_from(data))

    def to_bytes(self) -> bytes:
        if not 0 <= self.h_vlan_TCI <= 0xFFFF or not 0 <= self.h_vlan_encapsulated_proto <= 0xFFFF:
            raise SanityError("ethernet", "vlan", f"fields are 16 bits: {tuple(self)!r}")
        return _VLAN.pack(self.h_vlan_TCI, self.h_vlan_encapsulated_proto)


def fcs(frame) -> bytes:
    """The 802.3 FCS of `frame` (without FCS), as it appears on the wire: CRC-32, little-endian."""
    return struct.pack("<I", zlib.crc32(frame))


def strip_fcs(frame) -> bytes:
    """Verify and remove a trailing FCS; a mismatch is a ChecksumError (rx_crc_errors)."""
    if len(frame) < ETH_HLEN + ETH_FCS_LEN:
        raise TruncatedError("ethernet", "fcs", f"need {ETH_HLEN + ETH_FCS_LEN} bytes, have {len(frame)}")
    body, trailer = frame[:-ETH_FCS_LEN], frame[-ETH_FCS_LEN:]
    if fcs(body) != bytes(trailer):
        raise ChecksumError("ethernet", "fcs", "frame check sequence mismatch")
    return bytes(body)


def pad(frame: bytes) -> bytes:
    """Pad a short frame to ETH_ZLEN with zeros, as a driver does before transmit."""
    return frame if len(frame) >= ETH_ZLEN else frame + bytes(ETH_ZLEN - len(frame))
