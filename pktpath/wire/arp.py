"""ARP for Ethernet and IPv4 (RFC 826).

Models struct arphdr plus its Ethernet/IPv4 body (include/uapi/linux/if_arp.h)
as arp_rcv/arp_process (net/ipv4/arp.c) read it.

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |        ar_hrd (1)             |        ar_pro (0x0800)        |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |  ar_hln (6)   |  ar_pln (4)   |            ar_op              |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |  ar_sha (6) | ar_sip (4) | ar_tha (6) | ar_tip (4)            |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

Anything but Ethernet/IPv4 request or reply is a SanityError: pktpath, like
arp_process for this device type, has nothing to do with it. Bytes after the
28-byte body (Ethernet padding) are ignored.
"""

import struct
from typing import NamedTuple

from pktpath.wire.addr import ip_to_str, mac_to_str
from pktpath.wire.header import new_header as _new
from pktpath.wire.header import wire_header
from pktpath.wire.errors import SanityError, TruncatedError

ARPHRD_ETHER = 1
ETH_P_IP = 0x0800
ARPOP_REQUEST = 1
ARPOP_REPLY = 2
ARP_HLEN = 28

_ARP = struct.Struct("!HHBBH6sI6sI")


@wire_header
class ArpHdr(NamedTuple):
    ar_op: int
    ar_sha: bytes
    ar_sip: int
    ar_tha: bytes
    ar_tip: int
    ar_hrd: int = ARPHRD_ETHER
    ar_pro: int = ETH_P_IP
    ar_hln: int = 6
    ar_pln: int = 4

    header_len = ARP_HLEN

    @classmethod
    def from_bytes(cls, data) -> "ArpHdr":
        if len(data) < ARP_HLEN:
            raise TruncatedError("arp", "header", f"need {ARP_HLEN} bytes, have {len(data)}")
        hrd, pro, hln, pln, op, sha, sip, tha, tip = _ARP.unpack_from(data)
        if hrd != ARPHRD_ETHER or pro != ETH_P_IP:
            raise SanityError("arp", "ar_hrd", f"unsupported hardware/protocol {hrd}/0x{pro:04x}")
        if hln != 6 or pln != 4:
            raise SanityError("arp", "ar_hln", f"address lengths {hln}/{pln}, not 6/4")
        if op not in (ARPOP_REQUEST, ARPOP_REPLY):
            raise SanityError("arp", "ar_op", f"unsupported operation {op}")
        return _new(cls, (op, sha, sip, tha, tip, ARPHRD_ETHER, ETH_P_IP, 6, 4))

    def to_bytes(self) -> bytes:
        if len(self.ar_sha) != 6 or len(self.ar_tha) != 6:
            raise SanityError("arp", "address", "hardware addresses are 6 bytes")
        try:
            return _ARP.pack(
                self.ar_hrd, self.ar_pro, self.ar_hln, self.ar_pln, self.ar_op,
                self.ar_sha, self.ar_sip, self.ar_tha, self.ar_tip,
            )
        except struct.error as exc:
            raise SanityError("arp", "field", str(exc)) from exc

    def __repr__(self) -> str:
        op = {ARPOP_REQUEST: "request", ARPOP_REPLY: "reply"}.get(self.ar_op, str(self.ar_op))
        return (
            f"ArpHdr({op}, ar_sha={mac_to_str(self.ar_sha)}, ar_sip={ip_to_str(self.ar_sip)}, "
            f"ar_tha={mac_to_str(self.ar_tha)}, ar_tip={ip_to_str(self.ar_tip)})"
        )
