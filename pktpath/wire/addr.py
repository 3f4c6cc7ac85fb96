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


# -- IPv6 --------------------------------------------------------------------------------
# An IPv6 address is a 128-bit int: struct in6_addr's 16 bytes read big-endian.

IN6ADDR_ANY = 0                                 # IN6ADDR_ANY_INIT (include/linux/in6.h)
IN6ADDR_LOOPBACK = 1                            # IN6ADDR_LOOPBACK_INIT, ::1
IN6ADDR_LINKLOCAL_ALLNODES = 0xFF02 << 112 | 1  # IN6ADDR_LINKLOCAL_ALLNODES_INIT, ff02::1
IN6ADDR_LINKLOCAL_ALLROUTERS = 0xFF02 << 112 | 2  # IN6ADDR_LINKLOCAL_ALLROUTERS_INIT, ff02::2
IN6ADDR_ALLNODES = IN6ADDR_LINKLOCAL_ALLNODES      # short names for the two above
IN6ADDR_ALLROUTERS = IN6ADDR_LINKLOCAL_ALLROUTERS

# Address classes (include/net/ipv6.h): __ipv6_addr_type()'s low 16 bits; the scope is in the high 16.
IPV6_ADDR_ANY = 0x0000
IPV6_ADDR_UNICAST = 0x0001
IPV6_ADDR_MULTICAST = 0x0002
IPV6_ADDR_LOOPBACK = 0x0010
IPV6_ADDR_LINKLOCAL = 0x0020
IPV6_ADDR_SITELOCAL = 0x0040
IPV6_ADDR_COMPATv4 = 0x0080
IPV6_ADDR_SCOPE_MASK = 0x00F0
IPV6_ADDR_MAPPED = 0x1000
# Scopes: a multicast address's scope nibble, and what __ipv6_addr_type gives unicast ones.
IPV6_ADDR_SCOPE_INVALID = -1  # __IPV6_ADDR_SCOPE_INVALID: what the unspecified address has
IPV6_ADDR_SCOPE_NODELOCAL = 0x01
IPV6_ADDR_SCOPE_LINKLOCAL = 0x02
IPV6_ADDR_SCOPE_SITELOCAL = 0x05
IPV6_ADDR_SCOPE_ORGLOCAL = 0x08
IPV6_ADDR_SCOPE_GLOBAL = 0x0E

_MASK128 = (1 << 128) - 1


@functools.lru_cache(maxsize=4096)
def ip6_to_str(addr: int) -> str:
    """The RFC 5952 text of a 128-bit address (inet_ntop: ::ffff:a.b.c.d for a v4-mapped one)."""
    return socket.inet_ntop(socket.AF_INET6, addr.to_bytes(16, "big"))


def ip6_from_str(text: str) -> int:
    try:
        packed = socket.inet_pton(socket.AF_INET6, text)
    except (OSError, TypeError, ValueError) as exc:  # ValueError: an embedded NUL
        raise SanityError("ipv6", "address", f"not an IPv6 address: {ascii(text)[:64]}") from exc
    return int.from_bytes(packed, "big")


def IPV6_ADDR_MC_SCOPE(addr: int) -> int:
    """IPV6_ADDR_MC_SCOPE() (include/net/ipv6.h, a macro): a multicast address's scope, the low
    nibble of its second byte."""
    return addr >> 112 & 0x0F


def _ipv6_addr_scope2type(scope: int) -> int:
    """ipv6_addr_scope2type() (net/ipv6/addrconf_core.c): a multicast scope as type bits."""
    if scope == IPV6_ADDR_SCOPE_NODELOCAL:
        return scope << 16 | IPV6_ADDR_LOOPBACK
    if scope == IPV6_ADDR_SCOPE_LINKLOCAL:
        return scope << 16 | IPV6_ADDR_LINKLOCAL
    if scope == IPV6_ADDR_SCOPE_SITELOCAL:
        return scope << 16 | IPV6_ADDR_SITELOCAL
    return scope << 16


@functools.lru_cache(maxsize=4096)
def __ipv6_addr_type(addr: int) -> int:
    """__ipv6_addr_type() (net/ipv6/addrconf_core.c): the IPV6_ADDR_* class bits, the scope << 16.

    In the kernel's order: anything outside 000/111 is global unicast; ff00::/8 multicast with
    its scope nibble; fe80::/10 link-local; fec0::/10 site-local; fc00::/7 (ULA) global; then
    the ::/96 family (any, loopback, v4-compatible), ::ffff:0:0/96 v4-mapped, the rest global.
    """
    st = addr >> 96
    top3 = st & 0xE0000000
    if top3 and top3 != 0xE0000000:
        return IPV6_ADDR_UNICAST | IPV6_ADDR_SCOPE_GLOBAL << 16
    if st & 0xFF000000 == 0xFF000000:
        return IPV6_ADDR_MULTICAST | _ipv6_addr_scope2type(addr >> 112 & 0x0F)
    if st & 0xFFC00000 == 0xFE800000:
        return IPV6_ADDR_LINKLOCAL | IPV6_ADDR_UNICAST | IPV6_ADDR_SCOPE_LINKLOCAL << 16
    if st & 0xFFC00000 == 0xFEC00000:
        return IPV6_ADDR_SITELOCAL | IPV6_ADDR_UNICAST | IPV6_ADDR_SCOPE_SITELOCAL << 16
    if st & 0xFE000000 == 0xFC000000:
        return IPV6_ADDR_UNICAST | IPV6_ADDR_SCOPE_GLOBAL << 16
    if not addr >> 64:
        if not addr >> 32:
            if addr == 0:
                return IPV6_ADDR_ANY
            if addr == 1:
                return IPV6_ADDR_LOOPBACK | IPV6_ADDR_UNICAST | IPV6_ADDR_SCOPE_LINKLOCAL << 16
            return IPV6_ADDR_COMPATv4 | IPV6_ADDR_UNICAST | IPV6_ADDR_SCOPE_GLOBAL << 16
        if addr >> 32 == 0xFFFF:
            return IPV6_ADDR_MAPPED | IPV6_ADDR_SCOPE_GLOBAL << 16
    return IPV6_ADDR_UNICAST | IPV6_ADDR_SCOPE_GLOBAL << 16


# Python would mangle a double-underscore name used inside a class body: this is the name to import.
ipv6_addr_type_full = __ipv6_addr_type


def ipv6_addr_type(addr: int) -> int:
    """ipv6_addr_type() (include/net/ipv6.h): the IPV6_ADDR_* class bits of `addr`."""
    return __ipv6_addr_type(addr) & 0xFFFF


def ipv6_addr_scope(addr: int) -> int:
    """ipv6_addr_scope(): the IPV6_ADDR_SCOPE_MASK bits (loopback, link-local, site-local, v4-compat)."""
    return __ipv6_addr_type(addr) & IPV6_ADDR_SCOPE_MASK


def ipv6_addr_src_scope(addr: int) -> int:
    """ipv6_addr_src_scope(): the IPV6_ADDR_SCOPE_* value (source address selection), -1 for ::."""
    type_ = __ipv6_addr_type(addr)
    return IPV6_ADDR_SCOPE_INVALID if type_ == IPV6_ADDR_ANY else type_ >> 16


def ipv6_addr_any(addr: int) -> bool:
    return addr == 0


def ipv6_addr_loopback(addr: int) -> bool:
    return addr == 1


def ipv6_addr_is_multicast(addr: int) -> bool:
    """ff00::/8."""
    return addr >> 120 == 0xFF


def ipv6_addr_v4mapped(addr: int) -> bool:
    """::ffff:0:0/96."""
    return addr >> 32 == 0xFFFF


def ipv6_addr_set_v4mapped(addr4: int) -> int:
    """::ffff:a.b.c.d for the IPv4 address `addr4`."""
    return 0xFFFF << 32 | addr4


def ipv6_addr_is_ll_all_nodes(addr: int) -> bool:
    return addr == IN6ADDR_LINKLOCAL_ALLNODES


def ipv6_addr_is_ll_all_routers(addr: int) -> bool:
    return addr == IN6ADDR_LINKLOCAL_ALLROUTERS


_SOLICT_PREFIX = 0xFF02 << 112 | 1 << 32 | 0xFF << 24  # ff02::1:ff00:0/104


def addrconf_addr_solict_mult(addr: int) -> int:
    """addrconf_addr_solict_mult() (include/net/addrconf.h): the solicited-node multicast
    address of `addr`, ff02::1:ff00:0/104 with its low 24 bits (RFC 4291 2.7.1)."""
    return _SOLICT_PREFIX | addr & 0xFFFFFF


def ipv6_addr_is_solict_mult(addr: int) -> bool:
    return addr >> 24 == _SOLICT_PREFIX >> 24


def ipv6_eth_mc_map(addr: int) -> bytes:
    """ipv6_eth_mc_map() (include/net/if_inet6.h): the Ethernet group address of a multicast
    address, 33:33 and its low 32 bits (RFC 2464 7)."""
    return b"\x33\x33" + (addr & 0xFFFFFFFF).to_bytes(4, "big")


def addrconf_ifid_eui48(mac: bytes, dev_id: int = 0) -> bytes:
    """addrconf_ifid_eui48() (include/net/addrconf.h): the 8-byte modified EUI-64 interface id
    of a 6-byte MAC: ff:fe in the middle and the universal/local bit flipped (RFC 4291 2.5.1),
    or, for a device with a dev_id, that id in place of ff:fe and the bit left alone."""
    if len(mac) != ETH_ALEN:
        raise SanityError("mac", "address", f"{len(mac)} bytes, not {ETH_ALEN}: no EUI-48 interface id")
    eui = bytearray(mac[:3] + b"\xff\xfe" + mac[3:])  # addrconf_addr_eui48_base
    if dev_id:
        eui[3:5] = (dev_id & 0xFFFF).to_bytes(2, "big")
    else:
        eui[0] ^= 2
    return bytes(eui)


def addrconf_addr_gen_eui64(mac: bytes, dev_id: int = 0) -> int:
    """The link-local address addrconf_addr_gen() makes in IN6_ADDR_GEN_MODE_EUI64 (the default):
    fe80::/64 with the MAC's EUI-64 interface id."""
    return 0xFE80 << 112 | int.from_bytes(addrconf_ifid_eui48(mac, dev_id), "big")
