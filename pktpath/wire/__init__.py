"""Wire codecs: one pure module per header (no I/O, no gRPC, no logging).

Each module has an RFC header diagram, a frozen dataclass with the kernel's
field names, `from_bytes()` that parses and verifies, and `to_bytes()` that
builds with lengths and checksums computed. Every failure is a WireError:
IntegrityError (bounds, lengths, checksums) or SanityError (meaning).
"""

from pktpath.wire.arp import ArpHdr
from pktpath.wire.errors import ChecksumError, IntegrityError, SanityError, TruncatedError, WireError
from pktpath.wire.ethernet import EthHdr
from pktpath.wire.icmp import IcmpHdr
from pktpath.wire.ipv4 import IpHdr
from pktpath.wire.ipv6 import Ipv6Hdr
from pktpath.wire.tcp import TcpHdr
from pktpath.wire.udp import UdpHdr

__all__ = [
    "ArpHdr", "ChecksumError", "EthHdr", "IcmpHdr", "IntegrityError", "IpHdr", "Ipv6Hdr",
    "SanityError", "TcpHdr", "TruncatedError", "UdpHdr", "WireError",
]
