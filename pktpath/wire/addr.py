"""Address helpers: MACs are 6-byte `bytes`, IPv4 addresses are ints (a __be32 read as a number).

Ints keep the data path cheap (masks and compares, no objects); these helpers
convert at the edges (config, CLI, repr).
"""

import functools
import socket
import struct

from pktpath.wire.errors import SanityError

_BE32 = struct.Struct("!I")

ETH_ALEN = 6
BROADCAST_MAC = b"\xff" * ETH_ALEN
ZERO_MAC = b"\x00" * ETH_ALEN


def mac_to_str(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)


_HEX = frozenset("0123456789abcdefABCDEF")


def mac_from_str(text: str) -> bytes:
    parts = text.split(":")
    if len(parts) != ETH_ALEN or any(not 1 <= len(p) <= 2 or not _HEX.issuperset(p) for p in parts):
        raise SanityError("mac", "address", f"not a MAC address: {text!r}")
    return bytes(int(p, 16) for p in parts)


@functools.lru_cache(maxsize=4096)  # called for every datagram a socket reads
def ip_to_str(addr: int) -> str:
    return socket.inet_ntoa(_BE32.pack(addr))


def ip_from_str(text: str) -> int:
    try:
        packed = socket.inet_pton(socket.AF_INET, text)
    except (OSError, TypeError, ValueError) as exc:  # ValueError: an embedded NUL
        raise SanityError("ipv4", "address", f"not an IPv4 address: {ascii(text)[:48]}") from exc
    return _BE32.unpack(packed)[0]


def is_multicast_mac(mac: bytes) -> bool:
    """The group bit: the low bit of the first octet (is_multicast_ether_addr)."""
    return bool(mac[0] & 1)
