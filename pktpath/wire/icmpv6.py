"""ICMPv6 (RFC 4443), Neighbour Discovery (RFC 4861) and MLD (RFC 2710, RFC 3810).

struct icmp6hdr (include/uapi/linux/icmpv6.h) as icmpv6_rcv (net/ipv6/icmp.c) reads it:

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |     type      |     code      |           checksum            |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |  icmp6_dataun: echo identifier/sequence, MTU, pointer, unused, |
    |  NA R/S/O flags, RA hop limit/M/O/lifetime, MLD max delay ...  |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |  message body: echo data, the invoking packet, ND target ...   |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

The checksum covers the IPv6 pseudo-header (saddr, daddr, the upper-layer length, next
header 58) and the whole message. Addresses are 128-bit ints.

Parse order, as the kernel's:
- icmpv6_rcv: the checksum first (skb_checksum_validate), then the 8-byte header
  (pskb_pull): Icmp6Hdr.from_bytes. Type < 128 is an error message: icmpv6_notify wants the
  invoking packet's IPv6 header (quoted()); ICMPV6_PKT_TOOBIG pulls it already in icmpv6_rcv.
- ndisc_rcv (net/ipv6/ndisc.c): hop limit 255 and code 0, then per type the fixed part
  (struct rs_msg, ra_msg, nd_msg, rd_msg) and ndisc_parse_options. The NdRouterSolicit ...
  classes parse the fixed part and the options; ndisc_validate() applies the checks that
  need the IPv6 header too, in the kernel's order, and names the drop reason.
- MLD (net/ipv6/mcast.c): a query is MLDv1 if it is exactly 24 bytes, MLDv2 from 28
  (__mld_query_work); a host ignores MLDv2 reports (icmpv6_rcv), it only sends them
  (mld_newpack, add_grec, mld_sendpack).
"""

import struct
from typing import NamedTuple

from pktpath.wire.addr import (
    ETH_ALEN, IPV6_ADDR_LINKLOCAL, IPV6_ADDR_UNICAST, ip6_to_str, ipv6_addr_is_multicast,
    ipv6_addr_is_solict_mult, ipv6_addr_type,
)
from pktpath.wire.checksum import csum_tcpudp, pseudo_header_sum, verifies
from pktpath.wire.errors import ChecksumError, IntegrityError, SanityError, TruncatedError
from pktpath.wire.header import new_header as _new
from pktpath.wire.header import wire_header
from pktpath.wire.ipv6 import (  # noqa: F401 (the Parameter Problem codes are this module's too)
    ICMPV6_HDR_FIELD, ICMPV6_HDR_INCOMP, ICMPV6_UNK_NEXTHDR, ICMPV6_UNK_OPTION, IPPROTO_ICMPV6, IPV6_HLEN,
    IPV6_MIN_MTU,
)

# Types (include/uapi/linux/icmpv6.h, include/net/ndisc.h)
ICMPV6_DEST_UNREACH = 1
ICMPV6_PKT_TOOBIG = 2
ICMPV6_TIME_EXCEED = 3
ICMPV6_PARAMPROB = 4
ICMPV6_ERRMSG_MAX = 127
ICMPV6_INFOMSG_MASK = 0x80
ICMPV6_ECHO_REQUEST = 128
ICMPV6_ECHO_REPLY = 129
ICMPV6_MGM_QUERY = 130
ICMPV6_MGM_REPORT = 131
ICMPV6_MGM_REDUCTION = 132
NDISC_ROUTER_SOLICITATION = 133
NDISC_ROUTER_ADVERTISEMENT = 134
NDISC_NEIGHBOUR_SOLICITATION = 135
NDISC_NEIGHBOUR_ADVERTISEMENT = 136
NDISC_REDIRECT = 137
ICMPV6_NI_QUERY = 139
ICMPV6_NI_REPLY = 140
ICMPV6_MLD2_REPORT = 143
ICMPV6_EXT_ECHO_REQUEST = 160
ICMPV6_EXT_ECHO_REPLY = 161
ICMPV6_MSG_MAX = 255

# ICMPV6_DEST_UNREACH codes
ICMPV6_NOROUTE = 0
ICMPV6_ADM_PROHIBITED = 1
ICMPV6_NOT_NEIGHBOUR = 2
ICMPV6_ADDR_UNREACH = 3
ICMPV6_PORT_UNREACH = 4
ICMPV6_POLICY_FAIL = 5
ICMPV6_REJECT_ROUTE = 6
# ICMPV6_TIME_EXCEED codes
ICMPV6_EXC_HOPLIMIT = 0
ICMPV6_EXC_FRAGTIME = 1
# ICMPV6_PARAMPROB codes: ICMPV6_HDR_FIELD, ICMPV6_UNK_NEXTHDR, ICMPV6_UNK_OPTION, ICMPV6_HDR_INCOMP
# (pktpath.wire.ipv6's, whose extension-header errors carry them)

# An RA's router preference (RFC 4191), the 2 bits icmp6_router_pref
ICMPV6_ROUTER_PREF_LOW = 0x3
ICMPV6_ROUTER_PREF_MEDIUM = 0x0
ICMPV6_ROUTER_PREF_HIGH = 0x1
ICMPV6_ROUTER_PREF_INVALID = 0x2

# ND option types (include/net/ndisc.h)
ND_OPT_SOURCE_LL_ADDR = 1
ND_OPT_TARGET_LL_ADDR = 2
ND_OPT_PREFIX_INFO = 3
ND_OPT_REDIRECT_HDR = 4
ND_OPT_MTU = 5
ND_OPT_NONCE = 14
ND_OPT_ROUTE_INFO = 24
ND_OPT_RDNSS = 25
ND_OPT_DNSSL = 31
ND_OPT_6CO = 34
ND_OPT_CAPTIVE_PORTAL = 37
ND_OPT_PREF64 = 38
# ndisc_is_useropt(): the options an RA hands to user space (RTM_NEWNDUSEROPT)
ND_USEROPT_TYPES = frozenset({
    ND_OPT_PREFIX_INFO, ND_OPT_RDNSS, ND_OPT_DNSSL, ND_OPT_6CO, ND_OPT_CAPTIVE_PORTAL, ND_OPT_PREF64,
})
# struct prefix_info's flag bits (the kernel has bitfields; the names are <netinet/icmp6.h>'s)
ND_OPT_PI_FLAG_ONLINK = 0x80
ND_OPT_PI_FLAG_AUTO = 0x40
ND_OPT_PI_FLAG_RADDR = 0x20
ND_OPT_PI_FLAG_PREFERPD = 0x10  # struct prefix_info's preferpd (RFC 9762)

# MLDv2 record types (include/uapi/linux/icmpv6.h)
MLD2_MODE_IS_INCLUDE = 1
MLD2_MODE_IS_EXCLUDE = 2
MLD2_CHANGE_TO_INCLUDE = 3
MLD2_CHANGE_TO_EXCLUDE = 4
MLD2_ALLOW_NEW_SOURCES = 5
MLD2_BLOCK_OLD_SOURCES = 6
MLD2_ALL_MCR = 0xFF02 << 112 | 0x16  # MLD2_ALL_MCR_INIT, ff02::16: where reports go
MLD_V1_QUERY_LEN = 24      # net/ipv6/mcast.c
MLD_V2_QUERY_LEN_MIN = 28
MLD_EXP_MIN_LIMIT = 32768  # include/net/mld.h

ICMPV6_HLEN = 8                # sizeof(struct icmp6hdr)
# icmp6_send() quotes at most this much of the invoking packet: the error fits IPV6_MIN_MTU.
ICMPV6_ERROR_MAX_QUOTE = IPV6_MIN_MTU - IPV6_HLEN - ICMPV6_HLEN
NDISC_HOP_LIMIT = 255          # ndisc_init: the ndisc socket's hop limit, and what ndisc_rcv demands
MLD_HOP_LIMIT = 1              # igmp6_net_init: the igmp socket's hop limit; __mld_query_work demands it
ND_OPT_MAX_LEN = 255 * 8       # nd_opt_len counts 8-byte units in one byte

# The fixed parts before the options: struct rs_msg, ra_msg, nd_msg, rd_msg.
RS_MSG_LEN = ICMPV6_HLEN
RA_MSG_LEN = ICMPV6_HLEN + 8
ND_MSG_LEN = ICMPV6_HLEN + 16
RD_MSG_LEN = ICMPV6_HLEN + 32

# The kernel's drop reasons (enum skb_drop_reason) ndisc_validate() returns.
DROP_NOT_SPECIFIED = "SKB_DROP_REASON_NOT_SPECIFIED"
DROP_PKT_TOO_SMALL = "SKB_DROP_REASON_PKT_TOO_SMALL"
DROP_NDISC_HOP_LIMIT = "SKB_DROP_REASON_IPV6_NDISC_HOP_LIMIT"
DROP_NDISC_BAD_CODE = "SKB_DROP_REASON_IPV6_NDISC_BAD_CODE"
DROP_NDISC_BAD_OPTIONS = "SKB_DROP_REASON_IPV6_NDISC_BAD_OPTIONS"

_ICMP6H = struct.Struct("!BBHI")
_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
_U32X2 = struct.Struct("!II")
_HH = struct.Struct("!HH")
_HI = struct.Struct("!HI")
_BBH = struct.Struct("!BBH")
_PI = struct.Struct("!BBIII")  # prefix_len, flags, valid, prefered, reserved2 (the prefix follows)
_GREC = _BBH  # grec_type, grec_auxwords, grec_nsrcs
_from_bytes = int.from_bytes


def NDISC_OPT_SPACE(length: int) -> int:
    """NDISC_OPT_SPACE() (include/net/ndisc.h): the bytes an option of `length` data bytes
    takes, its 2-byte header included, rounded up to 8."""
    return (length + 2 + 7) & ~7


def _addr(data, offset: int) -> int:
    return _from_bytes(data[offset:offset + 16], "big")


def _a16(addr: int, proto: str, field: str) -> bytes:
    try:
        return addr.to_bytes(16, "big")
    except (OverflowError, AttributeError, TypeError) as exc:
        raise SanityError(proto, field, f"not a 128-bit address: {addr!r}") from exc


def _pack(proto: str, fmt, *values) -> bytes:
    try:
        return fmt.pack(*values)
    except struct.error as exc:
        raise SanityError(proto, "field", str(exc)) from exc


def _finish(proto: str, saddr: int, daddr: int, msg_type: int, code: int, un: int, body: bytes) -> bytes:
    """The whole message: the icmp6hdr with its checksum, then `body`."""
    header = _pack(proto, _ICMP6H, msg_type, code, 0, un)
    check = csum_tcpudp(saddr, daddr, IPPROTO_ICMPV6, header, body)
    return header[:2] + check.to_bytes(2, "big") + header[4:] + body


# ------------------------------------------------------------------------ icmp6hdr


@wire_header
class Icmp6Hdr(NamedTuple):
    """struct icmp6hdr. `un` is the union icmp6_dataun as one 32-bit word; the properties
    read it as the kernel's icmp6_* macros do."""

    type: int
    code: int = 0
    un: int = 0        # icmp6_dataun
    checksum: int = 0  # computed by to_bytes

    header_len = ICMPV6_HLEN

    @property
    def is_error(self) -> bool:
        """Types 0..127 are errors (RFC 4443 2.1): !(type & ICMPV6_INFOMSG_MASK)."""
        return not self.type & ICMPV6_INFOMSG_MASK

    @property
    def identifier(self) -> int:  # icmp6_identifier
        return self.un >> 16

    @property
    def sequence(self) -> int:  # icmp6_sequence
        return self.un & 0xFFFF

    @property
    def mtu(self) -> int:  # icmp6_mtu
        return self.un

    @property
    def pointer(self) -> int:  # icmp6_pointer
        return self.un

    @property
    def maxdelay(self) -> int:  # icmp6_maxdelay: MLDv1's maximum response delay, MLDv2's code
        return self.un >> 16

    @classmethod
    def echo(cls, identifier: int, sequence: int, *, reply: bool = False) -> "Icmp6Hdr":
        return cls(ICMPV6_ECHO_REPLY if reply else ICMPV6_ECHO_REQUEST, 0,
                   (identifier & 0xFFFF) << 16 | sequence & 0xFFFF)

    @classmethod
    def dest_unreach(cls, code: int) -> "Icmp6Hdr":
        return cls(ICMPV6_DEST_UNREACH, code, 0)

    @classmethod
    def pkt_toobig(cls, mtu: int) -> "Icmp6Hdr":
        return cls(ICMPV6_PKT_TOOBIG, 0, mtu)

    @classmethod
    def time_exceed(cls, code: int = ICMPV6_EXC_HOPLIMIT) -> "Icmp6Hdr":
        return cls(ICMPV6_TIME_EXCEED, code, 0)

    @classmethod
    def param_prob(cls, code: int, pointer: int) -> "Icmp6Hdr":
        return cls(ICMPV6_PARAMPROB, code, pointer)

    @classmethod
    def from_bytes(cls, data, saddr: int, daddr: int, *, verify_csum: bool = True) -> "Icmp6Hdr":
        """Parse the header of `data`, the whole message (the IPv6 payload from the ICMPv6
        header on, trimmed to its length), sent from saddr to daddr.

        icmpv6_rcv's order: the checksum over everything there is, then the 8-byte header.
        """
        n = len(data)
        if verify_csum and not verifies(data, pseudo_header_sum(saddr, daddr, IPPROTO_ICMPV6, n)):
            check = _U16.unpack_from(data, 2)[0] if n >= 4 else None
            raise ChecksumError("icmpv6", "checksum", f"checksum {check!r} does not verify over {n} bytes")
        if n < ICMPV6_HLEN:
            raise TruncatedError("icmpv6", "header", f"need {ICMPV6_HLEN} bytes, have {n}")
        type_, code, checksum, un = _ICMP6H.unpack_from(data)
        return _new(cls, (type_, code, un, checksum))

    def to_bytes(self, saddr: int, daddr: int, payload=b"") -> bytes:
        """The 8-byte header for `payload`, checksum computed over pseudo-header, header and payload."""
        header = _pack("icmpv6", _ICMP6H, self.type, self.code, 0, self.un)
        check = csum_tcpudp(saddr, daddr, IPPROTO_ICMPV6, header, payload)
        return header[:2] + check.to_bytes(2, "big") + header[4:]


def quote(packet) -> bytes:
    """The part of the invoking `packet` (from its IPv6 header) an error carries: as much as
    keeps the error within IPV6_MIN_MTU, 1232 bytes, as icmp6_send() does."""
    return bytes(packet[:ICMPV6_ERROR_MAX_QUOTE])


def quoted(data) -> bytes:
    """The invoking packet an error message (`data`, the whole message) carries, from its IPv6
    header on. icmpv6_notify first makes sure the IPv6 header is there (PKT_TOO_SMALL); skipping
    its extension headers and the 8 bytes of the upper-layer header after them is the IPv6
    codec's part."""
    inner = data[ICMPV6_HLEN:]
    if len(inner) < IPV6_HLEN:
        raise TruncatedError("icmpv6", "quoted", f"need the invoking IPv6 header ({IPV6_HLEN} bytes), "
                             f"have {len(inner)}")
    return bytes(inner)


# ------------------------------------------------------------------------ ND options


@wire_header
class NdOptLLAddr(NamedTuple):
    """ND_OPT_SOURCE_LL_ADDR or ND_OPT_TARGET_LL_ADDR: the link-layer address, as
    __ndisc_fill_addr_option() writes it (zero-padded to 8 bytes)."""

    type: int
    lladdr: bytes  # everything after the type and length bytes: the address and any padding

    def addr_data(self, addr_len: int = ETH_ALEN, pad: int = 0) -> bytes | None:
        """__ndisc_opt_addr_data(): the address if the option is exactly as long as one of
        `addr_len` bytes needs (8 for Ethernet), else None (the kernel then drops the message)."""
        if 2 + len(self.lladdr) != NDISC_OPT_SPACE(addr_len + pad):
            return None
        return self.lladdr[pad:pad + addr_len]

    def to_bytes(self) -> bytes:
        return _option(self.type, self.lladdr)


def src_lladdr(mac: bytes) -> NdOptLLAddr:
    return NdOptLLAddr(ND_OPT_SOURCE_LL_ADDR, bytes(mac))


def tgt_lladdr(mac: bytes) -> NdOptLLAddr:
    return NdOptLLAddr(ND_OPT_TARGET_LL_ADDR, bytes(mac))


@wire_header
class NdOptPrefixInfo(NamedTuple):
    """ND_OPT_PREFIX_INFO: struct prefix_info (include/net/addrconf.h), 32 bytes."""

    prefix_len: int
    flags: int      # ND_OPT_PI_FLAG_*: L (onlink), A (autoconf), R, preferpd
    valid: int      # valid lifetime, seconds (0xffffffff: infinite)
    prefered: int   # preferred lifetime, seconds (the kernel's spelling)
    prefix: int
    reserved2: int = 0
    extra: bytes = b""  # an option longer than 32 bytes: the rest, which addrconf_prefix_rcv ignores

    type = ND_OPT_PREFIX_INFO

    @property
    def onlink(self) -> bool:
        return bool(self.flags & ND_OPT_PI_FLAG_ONLINK)

    @property
    def autoconf(self) -> bool:
        return bool(self.flags & ND_OPT_PI_FLAG_AUTO)

    def to_bytes(self) -> bytes:
        body = _pack("ndisc", _PI, self.prefix_len, self.flags, self.valid, self.prefered, self.reserved2)
        return _option(ND_OPT_PREFIX_INFO, body + _a16(self.prefix, "ndisc", "prefix") + self.extra)


@wire_header
class NdOptRedirectHdr(NamedTuple):
    """ND_OPT_REDIRECT_HDR: 6 reserved bytes, then the start of the packet that was redirected."""

    data: bytes
    reserved: int = 0  # 48 bits

    type = ND_OPT_REDIRECT_HDR

    @classmethod
    def quote(cls, packet, optlen: int = 0) -> "NdOptRedirectHdr":
        """As ndisc_send_redirect() fills it: the option (8 bytes of header and the packet) at
        most what keeps the redirect within IPV6_MIN_MTU after `optlen` bytes of other options,
        a multiple of 8 bytes, the packet cut to fit (never padded)."""
        rd_len = min(IPV6_MIN_MTU - IPV6_HLEN - RD_MSG_LEN - optlen, len(packet) + 8) & ~7
        return cls(bytes(packet[:max(rd_len - 8, 0)]))

    def to_bytes(self) -> bytes:
        if not 0 <= self.reserved < 1 << 48:
            raise SanityError("ndisc", "options", f"redirected header reserved {self.reserved!r} is not 48 bits")
        return _option(ND_OPT_REDIRECT_HDR, self.reserved.to_bytes(6, "big") + self.data)


@wire_header
class NdOptMtu(NamedTuple):
    """ND_OPT_MTU: 2 reserved bytes and the link MTU (ndisc_router_discovery reads bytes 4..7)."""

    mtu: int
    reserved: int = 0
    extra: bytes = b""  # an option longer than 8 bytes: the rest

    type = ND_OPT_MTU

    def to_bytes(self) -> bytes:
        return _option(ND_OPT_MTU, _pack("ndisc", _HI, self.reserved, self.mtu) + self.extra)


@wire_header
class NdOptNonce(NamedTuple):
    """ND_OPT_NONCE (RFC 7527): the enhanced-DAD nonce, 6 bytes as ndisc_ns_create() writes it."""

    nonce: bytes

    type = ND_OPT_NONCE

    def to_bytes(self) -> bytes:
        return _option(ND_OPT_NONCE, self.nonce)


@wire_header
class NdOptRaw(NamedTuple):
    """An option kept as its bytes: a type this module does not read (ndisc_parse_options skips
    them, RA user options go to user space as they are), or a prefix information option too
    short for struct prefix_info (addrconf_prefix_rcv ignores it)."""

    type: int
    data: bytes

    def to_bytes(self) -> bytes:
        return _option(self.type, self.data)


def _option(opt_type: int, data: bytes) -> bytes:
    """Type, length in 8-byte units, data, zero padding to the length."""
    space = NDISC_OPT_SPACE(len(data))
    if space > ND_OPT_MAX_LEN:
        raise SanityError("ndisc", "options", f"option of {space} bytes > {ND_OPT_MAX_LEN}")
    if not isinstance(opt_type, int) or not 0 <= opt_type <= 0xFF:
        raise SanityError("ndisc", "options", f"option type {opt_type!r} is not a byte")
    return bytes((opt_type, space >> 3)) + data + bytes(space - 2 - len(data))


def _parse_option(opt_type: int, body: bytes):
    if opt_type == ND_OPT_SOURCE_LL_ADDR or opt_type == ND_OPT_TARGET_LL_ADDR:
        return _new(NdOptLLAddr, (opt_type, body))
    if opt_type == ND_OPT_PREFIX_INFO:
        if len(body) < 30:  # sizeof(struct prefix_info) - 2
            return _new(NdOptRaw, (opt_type, body))
        plen, flags, valid, prefered, reserved2 = _PI.unpack_from(body)
        return _new(NdOptPrefixInfo, (plen, flags, valid, prefered, _addr(body, 14), reserved2, body[30:]))
    if opt_type == ND_OPT_MTU:  # any option is at least 8 bytes
        reserved, mtu = _HI.unpack_from(body)
        return _new(NdOptMtu, (mtu, reserved, body[6:]))
    if opt_type == ND_OPT_REDIRECT_HDR:
        return _new(NdOptRedirectHdr, (body[6:], _from_bytes(body[:6], "big")))
    if opt_type == ND_OPT_NONCE:
        return _new(NdOptNonce, (body,))
    return _new(NdOptRaw, (opt_type, body))


def parse_options(data, offset: int = 0) -> tuple:
    """The options from `offset` to the end of `data`, in order, as ndisc_parse_options() walks
    them: an option of length 0 or one that runs past the end makes the whole message invalid
    (IntegrityError: the kernel's SKB_DROP_REASON_IPV6_NDISC_BAD_OPTIONS); unknown types are
    kept as NdOptRaw for the caller to skip."""
    opts = []
    i, n = offset, len(data)
    while i < n:
        if n - i < 2:
            raise IntegrityError("ndisc", "options", f"{n - i} byte left at offset {i}: no room for an option")
        opt_type = data[i]
        length = data[i + 1] << 3
        if length == 0:
            raise IntegrityError("ndisc", "options", f"option type {opt_type} at offset {i} has length 0")
        if i + length > n:
            raise IntegrityError("ndisc", "options",
                                 f"option type {opt_type} of {length} bytes at offset {i} overruns {n} bytes")
        opts.append(_parse_option(opt_type, bytes(data[i + 2:i + length])))
        i += length
    return tuple(opts)


def encode_options(options) -> bytes:
    return b"".join(opt.to_bytes() for opt in options)


class NdiscOptions(NamedTuple):
    """struct ndisc_options as ndisc_parse_options() fills it: the first source/target
    link-layer address, MTU, nonce and redirected header option (a duplicate is ignored), every
    prefix information and route information option, and the RA user options (ndisc_is_useropt)."""

    src_lladdr: object = None  # nd_opts_src_lladdr
    tgt_lladdr: object = None  # nd_opts_tgt_lladdr
    pi: tuple = ()             # nd_opts_pi .. nd_opts_pi_end
    rh: object = None          # nd_opts_rh
    mtu: object = None         # nd_opts_mtu
    nonce: object = None       # nd_opts_nonce
    ri: tuple = ()             # nd_opts_ri .. nd_opts_ri_end (CONFIG_IPV6_ROUTE_INFO)
    useropts: tuple = ()       # nd_useropts .. nd_useropts_end

    @classmethod
    def from_options(cls, options) -> "NdiscOptions":
        first = {}
        pi, ri, user = [], [], []
        for opt in options:
            t = opt.type
            if t in _FIRST_WINS:
                first.setdefault(t, opt)
            elif t == ND_OPT_PREFIX_INFO:
                pi.append(opt)
            elif t == ND_OPT_ROUTE_INFO:
                ri.append(opt)
            if t in ND_USEROPT_TYPES:
                user.append(opt)
        return cls(first.get(ND_OPT_SOURCE_LL_ADDR), first.get(ND_OPT_TARGET_LL_ADDR), tuple(pi),
                   first.get(ND_OPT_REDIRECT_HDR), first.get(ND_OPT_MTU), first.get(ND_OPT_NONCE),
                   tuple(ri), tuple(user))


_FIRST_WINS = frozenset({ND_OPT_SOURCE_LL_ADDR, ND_OPT_TARGET_LL_ADDR, ND_OPT_MTU, ND_OPT_NONCE, ND_OPT_REDIRECT_HDR})


# ------------------------------------------------------------------------ ND messages
# Each from_bytes() takes the whole message (icmp6hdr included, its checksum already verified
# by Icmp6Hdr.from_bytes) and each to_bytes() gives the whole message, checksum computed.


def _need(data, want: int, what: str) -> None:
    if len(data) < want:
        raise TruncatedError("ndisc", what, f"need {want} bytes, have {len(data)}")


@wire_header
class NdRouterSolicit(NamedTuple):
    """NDISC_ROUTER_SOLICITATION: struct rs_msg, 4 reserved bytes, options."""

    options: tuple = ()
    reserved: int = 0

    type = NDISC_ROUTER_SOLICITATION

    @classmethod
    def from_bytes(cls, data) -> "NdRouterSolicit":
        _need(data, RS_MSG_LEN, "rs_msg")
        return _new(cls, (parse_options(data, RS_MSG_LEN), _U32.unpack_from(data, 4)[0]))

    def to_bytes(self, saddr: int, daddr: int, *, code: int = 0) -> bytes:
        return _finish("ndisc", saddr, daddr, self.type, code, self.reserved, encode_options(self.options))


@wire_header
class NdRouterAdvert(NamedTuple):
    """NDISC_ROUTER_ADVERTISEMENT: struct ra_msg; the hop limit, M/O/H flags, preference and
    router lifetime live in the icmp6hdr (u_nd_ra), reachable time and retrans timer after it."""

    cur_hop_limit: int = 0
    managed: bool = False       # M: addresses from DHCPv6
    other: bool = False         # O: other configuration from DHCPv6
    router_lifetime: int = 0    # seconds; 0: not a default router
    reachable_time: int = 0     # milliseconds; 0: unspecified
    retrans_timer: int = 0      # milliseconds; 0: unspecified
    options: tuple = ()
    home_agent: bool = False
    router_pref: int = ICMPV6_ROUTER_PREF_MEDIUM
    reserved: int = 0           # the flags byte's low 3 bits

    type = NDISC_ROUTER_ADVERTISEMENT

    @classmethod
    def from_bytes(cls, data) -> "NdRouterAdvert":
        _need(data, RA_MSG_LEN, "ra_msg")
        hop, flags, lifetime = _BBH.unpack_from(data, 4)
        reachable, retrans = _U32X2.unpack_from(data, 8)
        return _new(cls, (hop, bool(flags & 0x80), bool(flags & 0x40), lifetime, reachable, retrans,
                          parse_options(data, RA_MSG_LEN), bool(flags & 0x20), flags >> 3 & 3, flags & 7))

    def to_bytes(self, saddr: int, daddr: int, *, code: int = 0) -> bytes:
        if not 0 <= self.router_pref <= 3 or not 0 <= self.reserved <= 7:
            raise SanityError("ndisc", "field", f"router_pref {self.router_pref!r} / reserved {self.reserved!r}")
        flags = (self.managed << 7 | self.other << 6 | self.home_agent << 5 | self.router_pref << 3
                 | self.reserved)
        un = _from_bytes(_pack("ndisc", _BBH, self.cur_hop_limit, flags, self.router_lifetime),
                         "big")
        body = _pack("ndisc", _U32X2, self.reachable_time, self.retrans_timer) + encode_options(self.options)
        return _finish("ndisc", saddr, daddr, self.type, code, un, body)


@wire_header
class NdNeighSolicit(NamedTuple):
    """NDISC_NEIGHBOUR_SOLICITATION: struct nd_msg, 4 reserved bytes, the target, options."""

    target: int
    options: tuple = ()
    reserved: int = 0

    type = NDISC_NEIGHBOUR_SOLICITATION

    @classmethod
    def from_bytes(cls, data) -> "NdNeighSolicit":
        _need(data, ND_MSG_LEN, "nd_msg")
        return _new(cls, (_addr(data, 8), parse_options(data, ND_MSG_LEN), _U32.unpack_from(data, 4)[0]))

    def to_bytes(self, saddr: int, daddr: int, *, code: int = 0) -> bytes:
        body = _a16(self.target, "ndisc", "target") + encode_options(self.options)
        return _finish("ndisc", saddr, daddr, self.type, code, self.reserved, body)

    def __repr__(self) -> str:
        return f"NdNeighSolicit(target={ip6_to_str(self.target)}, options={self.options!r})"


ND_NA_FLAG_ROUTER = 0x80000000     # icmp6_router
ND_NA_FLAG_SOLICITED = 0x40000000  # icmp6_solicited
ND_NA_FLAG_OVERRIDE = 0x20000000   # icmp6_override


@wire_header
class NdNeighAdvert(NamedTuple):
    """NDISC_NEIGHBOUR_ADVERTISEMENT: struct nd_msg; the R/S/O flags in the icmp6hdr (u_nd_advt)."""

    target: int
    router: bool = False
    solicited: bool = False
    override: bool = False
    options: tuple = ()
    reserved: int = 0  # the 29 bits after the flags

    type = NDISC_NEIGHBOUR_ADVERTISEMENT

    @classmethod
    def from_bytes(cls, data) -> "NdNeighAdvert":
        _need(data, ND_MSG_LEN, "nd_msg")
        un = _U32.unpack_from(data, 4)[0]
        return _new(cls, (_addr(data, 8), bool(un & ND_NA_FLAG_ROUTER), bool(un & ND_NA_FLAG_SOLICITED),
                          bool(un & ND_NA_FLAG_OVERRIDE), parse_options(data, ND_MSG_LEN), un & 0x1FFFFFFF))

    def to_bytes(self, saddr: int, daddr: int, *, code: int = 0) -> bytes:
        if not 0 <= self.reserved <= 0x1FFFFFFF:
            raise SanityError("ndisc", "field", f"reserved {self.reserved!r} is not 29 bits")
        un = (self.router and ND_NA_FLAG_ROUTER) | (self.solicited and ND_NA_FLAG_SOLICITED) \
            | (self.override and ND_NA_FLAG_OVERRIDE) | self.reserved
        body = _a16(self.target, "ndisc", "target") + encode_options(self.options)
        return _finish("ndisc", saddr, daddr, self.type, code, un, body)

    def __repr__(self) -> str:
        return (f"NdNeighAdvert(target={ip6_to_str(self.target)}, router={self.router}, "
                f"solicited={self.solicited}, override={self.override}, options={self.options!r})")


@wire_header
class NdRedirect(NamedTuple):
    """NDISC_REDIRECT: struct rd_msg, 4 reserved bytes, the target (the better first hop) and
    the destination being redirected, options."""

    target: int
    dest: int
    options: tuple = ()
    reserved: int = 0

    type = NDISC_REDIRECT

    @classmethod
    def from_bytes(cls, data) -> "NdRedirect":
        _need(data, RD_MSG_LEN, "rd_msg")
        return _new(cls, (_addr(data, 8), _addr(data, 24), parse_options(data, RD_MSG_LEN),
                          _U32.unpack_from(data, 4)[0]))

    def to_bytes(self, saddr: int, daddr: int, *, code: int = 0) -> bytes:
        body = (_a16(self.target, "ndisc", "target") + _a16(self.dest, "ndisc", "dest")
                + encode_options(self.options))
        return _finish("ndisc", saddr, daddr, self.type, code, self.reserved, body)

    def __repr__(self) -> str:
        return (f"NdRedirect(target={ip6_to_str(self.target)}, dest={ip6_to_str(self.dest)}, "
                f"options={self.options!r})")


NDISC_MESSAGES = {
    NDISC_ROUTER_SOLICITATION: NdRouterSolicit,
    NDISC_ROUTER_ADVERTISEMENT: NdRouterAdvert,
    NDISC_NEIGHBOUR_SOLICITATION: NdNeighSolicit,
    NDISC_NEIGHBOUR_ADVERTISEMENT: NdNeighAdvert,
    NDISC_REDIRECT: NdRedirect,
}


def _is_linklocal(addr: int) -> bool:
    """ipv6_addr_type(addr) & IPV6_ADDR_LINKLOCAL: fe80::/10, or a link-scope multicast address."""
    return bool(ipv6_addr_type(addr) & IPV6_ADDR_LINKLOCAL)


def ndisc_validate(data, *, hop_limit: int, saddr: int, daddr: int, addr_len: int = ETH_ALEN) -> str | None:
    """The drop reason (an SKB_DROP_REASON_* name) for an ND message (`data`, the whole message,
    its checksum verified), or None: RFC 4861's validity rules (6.1.1, 6.1.2, 7.1.1, 7.1.2, 8.1)
    as ndisc_rcv() and the ndisc_recv_* functions apply them, in their order, before they look
    at any state.

    - all: the IPv6 hop limit is 255 (IPV6_NDISC_HOP_LIMIT), the code 0 (IPV6_NDISC_BAD_CODE).
    - NS, NA: at least 24 bytes (PKT_TOO_SMALL); the target not multicast. NS from :: (DAD) goes to
      a solicited-node group and carries no source link-layer address; NA to a multicast
      destination is not solicited. The options parse (IPV6_NDISC_BAD_OPTIONS), and a link-layer
      address option, if any, is addr_len long (ndisc_opt_addr_data).
    - RS: the kernel ignores an RS from :: (nothing to learn), whatever RFC 4861 allows; the
      options parse and a source link-layer address is addr_len long.
    - RA: the source is link-local, at least 16 bytes, the options parse.
    - Redirect: the source is link-local, the options parse (a message shorter than struct rd_msg
      leaves a negative option length: IPV6_NDISC_BAD_OPTIONS, as in the kernel).

    Left to the caller, because the kernel applies them later or against state: drop_unsolicited_na,
    an RS when not forwarding, an RA's link-layer address length (checked after the default
    router is updated), a Redirect's destination and target (rt6_do_redirect, after the message
    is consumed), and whether the Redirect comes from the current first hop.
    """
    if hop_limit != NDISC_HOP_LIMIT:
        return DROP_NDISC_HOP_LIMIT
    if len(data) < ICMPV6_HLEN:
        return DROP_PKT_TOO_SMALL
    if data[1] != 0:
        return DROP_NDISC_BAD_CODE
    msg_type = data[0]
    n = len(data)
    if msg_type in (NDISC_NEIGHBOUR_SOLICITATION, NDISC_NEIGHBOUR_ADVERTISEMENT):
        if n < ND_MSG_LEN:
            return DROP_PKT_TOO_SMALL
        if ipv6_addr_is_multicast(_addr(data, 8)):
            return DROP_NOT_SPECIFIED
        if msg_type == NDISC_NEIGHBOUR_SOLICITATION:
            dad = saddr == 0
            if dad and not ipv6_addr_is_solict_mult(daddr):
                return DROP_NOT_SPECIFIED
        elif ipv6_addr_is_multicast(daddr) and data[4] & 0x40:
            return DROP_NOT_SPECIFIED
        try:
            opts = NdiscOptions.from_options(parse_options(data, ND_MSG_LEN))
        except IntegrityError:
            return DROP_NDISC_BAD_OPTIONS
        lladdr = opts.src_lladdr if msg_type == NDISC_NEIGHBOUR_SOLICITATION else opts.tgt_lladdr
        if lladdr is not None:
            if lladdr.addr_data(addr_len) is None:
                return DROP_NOT_SPECIFIED
            if msg_type == NDISC_NEIGHBOUR_SOLICITATION and dad:
                return DROP_NOT_SPECIFIED
        return None
    if msg_type == NDISC_ROUTER_SOLICITATION:
        if saddr == 0:
            return DROP_NOT_SPECIFIED
        try:
            sll = NdiscOptions.from_options(parse_options(data, RS_MSG_LEN)).src_lladdr
        except IntegrityError:
            return DROP_NDISC_BAD_OPTIONS
        return DROP_NOT_SPECIFIED if sll is not None and sll.addr_data(addr_len) is None else None
    if msg_type == NDISC_ROUTER_ADVERTISEMENT:
        if not _is_linklocal(saddr):
            return DROP_NOT_SPECIFIED
        if n < RA_MSG_LEN:
            return DROP_PKT_TOO_SMALL
        return _options_reason(data, RA_MSG_LEN)
    if msg_type == NDISC_REDIRECT:
        if not _is_linklocal(saddr):
            return DROP_NOT_SPECIFIED
        if n < RD_MSG_LEN:
            return DROP_NDISC_BAD_OPTIONS
        return _options_reason(data, RD_MSG_LEN)
    return None


def _options_reason(data, offset: int) -> str | None:
    try:
        parse_options(data, offset)
    except IntegrityError:
        return DROP_NDISC_BAD_OPTIONS
    return None


def redirect_target_ok(msg: NdRedirect) -> bool:
    """rt6_do_redirect()'s checks (RFC 4861 8.1): the destination is not multicast, and the
    target is either the destination itself (it is on-link) or a link-local unicast address."""
    if ipv6_addr_is_multicast(msg.dest):
        return False
    return msg.target == msg.dest or ipv6_addr_type(msg.target) == IPV6_ADDR_UNICAST | IPV6_ADDR_LINKLOCAL


# ------------------------------------------------------------------------ MLD


@wire_header
class MldMsg(NamedTuple):
    """struct mld_msg (include/net/mld.h): an MLDv1 query, report or done, exactly 24 bytes in
    a query (RFC 2710 3.7)."""

    type: int
    mca: int
    maxdelay: int = 0  # milliseconds
    reserved: int = 0

    @classmethod
    def from_bytes(cls, data) -> "MldMsg":
        if len(data) < MLD_V1_QUERY_LEN:
            raise TruncatedError("mld", "mld_msg", f"need {MLD_V1_QUERY_LEN} bytes, have {len(data)}")
        maxdelay, reserved = _HH.unpack_from(data, 4)
        return _new(cls, (data[0], _addr(data, 8), maxdelay, reserved))

    def to_bytes(self, saddr: int, daddr: int, *, code: int = 0) -> bytes:
        un = (self.maxdelay & 0xFFFF) << 16 | self.reserved & 0xFFFF
        return _finish("mld", saddr, daddr, self.type, code, un, _a16(self.mca, "mld", "mca"))


@wire_header
class Mld2Query(NamedTuple):
    """struct mld2_query: an MLDv2 query (RFC 3810 5.1), 28 bytes and the sources."""

    mrc: int             # mld2q_mrc, the maximum response code (mldv2_mrc() decodes it)
    mca: int             # :: in a general query
    suppress: bool = False
    qrv: int = 0
    qqic: int = 0
    sources: tuple = ()
    resv1: int = 0
    resv2: int = 0       # the 4 bits above S

    type = ICMPV6_MGM_QUERY

    @classmethod
    def from_bytes(cls, data) -> "Mld2Query":
        n = len(data)
        if n < MLD_V2_QUERY_LEN_MIN:
            raise TruncatedError("mld", "mld2_query", f"need {MLD_V2_QUERY_LEN_MIN} bytes, have {n}")
        mrc, resv1 = _HH.unpack_from(data, 4)
        bits, qqic, nsrcs = _BBH.unpack_from(data, 24)
        end = MLD_V2_QUERY_LEN_MIN + 16 * nsrcs
        if end > n:
            raise TruncatedError("mld", "mld2q_nsrcs", f"{nsrcs} sources need {end} bytes, have {n}")
        sources = tuple(_addr(data, i) for i in range(MLD_V2_QUERY_LEN_MIN, end, 16))
        return _new(cls, (mrc, _addr(data, 8), bool(bits & 8), bits & 7, qqic, sources, resv1, bits >> 4))

    def to_bytes(self, saddr: int, daddr: int, *, code: int = 0) -> bytes:
        if not 0 <= self.qrv <= 7 or not 0 <= self.resv2 <= 15:
            raise SanityError("mld", "field", f"qrv {self.qrv!r} / resv2 {self.resv2!r}")
        un = _from_bytes(_pack("mld", _HH, self.mrc, self.resv1), "big")
        bits = self.resv2 << 4 | self.suppress << 3 | self.qrv
        body = (_a16(self.mca, "mld", "mca") + _pack("mld", _BBH, bits, self.qqic, len(self.sources))
                + b"".join(_a16(s, "mld", "sources") for s in self.sources))
        return _finish("mld", saddr, daddr, self.type, code, un, body)


def parse_mld_query(data):
    """An ICMPV6_MGM_QUERY as __mld_query_work tells them apart by length: exactly 24 bytes is
    MLDv1 (MldMsg), 28 or more MLDv2 (Mld2Query); anything else it ignores (TruncatedError)."""
    if len(data) == MLD_V1_QUERY_LEN:
        return MldMsg.from_bytes(data)
    if len(data) < MLD_V2_QUERY_LEN_MIN:
        raise TruncatedError("mld", "query", f"{len(data)} bytes: neither an MLDv1 ({MLD_V1_QUERY_LEN}) "
                             f"nor an MLDv2 (>= {MLD_V2_QUERY_LEN_MIN}) query")
    return Mld2Query.from_bytes(data)


def mldv2_mrc(mrc: int) -> int:
    """mldv2_mrc() (include/net/mld.h): the maximum response delay in milliseconds (RFC 3810 5.1.3)."""
    if mrc < MLD_EXP_MIN_LIMIT:
        return mrc
    return (mrc & 0x0FFF | 0x1000) << ((mrc >> 12 & 7) + 3)


def mldv2_qqi(qqic: int) -> int:
    """mld_update_qi(): the querier's query interval in seconds (RFC 3810 5.1.9)."""
    if qqic < 128:
        return qqic
    return (qqic & 0x0F | 0x10) << ((qqic >> 4 & 7) + 3)


@wire_header
class Mld2Grec(NamedTuple):
    """struct mld2_grec: one multicast address record of a report (grec_type, grec_auxwords,
    grec_nsrcs, grec_mca, grec_src[]), then auxwords * 4 bytes of auxiliary data."""

    type: int            # MLD2_*
    mca: int
    sources: tuple = ()
    aux: bytes = b""

    def to_bytes(self) -> bytes:
        if len(self.aux) % 4:
            raise SanityError("mld", "aux", f"{len(self.aux)} bytes of auxiliary data: not whole 32-bit words")
        head = _pack("mld", _GREC, self.type, len(self.aux) // 4, len(self.sources))
        return (head + _a16(self.mca, "mld", "mca") + b"".join(_a16(s, "mld", "sources") for s in self.sources)
                + self.aux)

    def __repr__(self) -> str:
        srcs = ", ".join(ip6_to_str(s) for s in self.sources)
        return f"Mld2Grec(type={self.type}, mca={ip6_to_str(self.mca)}, sources=({srcs}), aux={self.aux!r})"


@wire_header
class Mld2Report(NamedTuple):
    """ICMPV6_MLD2_REPORT: struct mld2_report, mld2r_resv2, mld2r_ngrec, the records (RFC 3810
    5.2). mld_newpack() sends it from the link-local address (:: while that is tentative) to
    ff02::16 with hop limit 1 and a router alert; add_grec() never reports ff02::1 (MAF_NOREPORT)."""

    records: tuple = ()
    resv2: int = 0

    type = ICMPV6_MLD2_REPORT

    @classmethod
    def from_bytes(cls, data) -> "Mld2Report":
        n = len(data)
        if n < ICMPV6_HLEN:
            raise TruncatedError("mld", "mld2_report", f"need {ICMPV6_HLEN} bytes, have {n}")
        resv2, ngrec = _HH.unpack_from(data, 4)
        records = []
        i = ICMPV6_HLEN
        for k in range(ngrec):
            if i + 20 > n:
                raise TruncatedError("mld", "grec", f"record {k} of {ngrec} at offset {i} overruns {n} bytes")
            rtype, auxwords, nsrcs = _GREC.unpack_from(data, i)
            end = i + 20 + 16 * nsrcs + 4 * auxwords
            if end > n:
                raise TruncatedError("mld", "grec_nsrcs",
                                     f"record {k} ({nsrcs} sources, {auxwords} aux words) overruns {n} bytes")
            srcs_end = i + 20 + 16 * nsrcs
            sources = tuple(_addr(data, j) for j in range(i + 20, srcs_end, 16))
            records.append(_new(Mld2Grec, (rtype, _addr(data, i + 4), sources, bytes(data[srcs_end:end]))))
            i = end
        return _new(cls, (tuple(records), resv2))

    def to_bytes(self, saddr: int, daddr: int = MLD2_ALL_MCR, *, code: int = 0) -> bytes:
        if len(self.records) > 0xFFFF:
            raise SanityError("mld", "mld2r_ngrec", f"{len(self.records)} records")
        un = (self.resv2 & 0xFFFF) << 16 | len(self.records)
        return _finish("mld", saddr, daddr, self.type, code, un, b"".join(r.to_bytes() for r in self.records))


# ------------------------------------------------------------------------ any message


def parse_message(data, saddr: int, daddr: int, *, verify_csum: bool = True):
    """The header and the body of a whole ICMPv6 message, the body read per type: the ND
    message classes, Mld2Report, MldMsg or Mld2Query; for errors the invoking packet (quoted());
    for anything else (echo data included) the bytes after the header."""
    hdr = Icmp6Hdr.from_bytes(data, saddr, daddr, verify_csum=verify_csum)
    msg_type = hdr.type
    cls = NDISC_MESSAGES.get(msg_type)
    if cls is not None:
        return hdr, cls.from_bytes(data)
    if msg_type == ICMPV6_MLD2_REPORT:
        return hdr, Mld2Report.from_bytes(data)
    if msg_type == ICMPV6_MGM_QUERY:
        return hdr, parse_mld_query(data)
    if msg_type in (ICMPV6_MGM_REPORT, ICMPV6_MGM_REDUCTION):
        return hdr, MldMsg.from_bytes(data)
    if hdr.is_error:
        return hdr, quoted(data)
    return hdr, bytes(data[ICMPV6_HLEN:])
