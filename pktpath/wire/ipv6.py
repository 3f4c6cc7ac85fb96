"""IPv6 (RFC 8200): struct ipv6hdr (include/uapi/linux/ipv6.h) as ip6_rcv_core reads it, and the
extension headers as net/ipv6/exthdrs.c, reassembly.c and exthdrs_core.c walk them.

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |version| traffic class |              flow label               |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |          payload_len          |    nexthdr    |   hop_limit   |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                     saddr (128 bits)                          |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                     daddr (128 bits)                          |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

Ipv6Hdr.from_bytes checks what ip6_rcv_core checks of the bytes alone, in its order: the
buffer holds 40 bytes, the version is 6, payload_len fits the buffer. A payload_len of 0
before a hop-by-hop header announces a jumbogram (RFC 2675): pktpath refuses it. What
ip6_rcv_core says about the addresses (loopback, multicast source, multicast scope 0 or 1)
belongs to L3. Bytes past 40 + payload_len are link padding for the caller to trim.

The extension headers (RFC 8200 4):

    hop-by-hop (0), destination (60)    routing (43)                    fragment (44)
    +--------+--------+--------...      +--------+--------+----+----+   +--------+--------+------------+
    |nexthdr | hdrlen | options         |nexthdr | hdrlen |type|left|   |nexthdr |reserved|frag_off |M |
    +--------+--------+--------...      +--------+--------+----+----+   +--------+--------+------------+
    (hdrlen + 1) * 8 bytes: TLV options | type-specific data ...    |   |        identification        |

ipv6_parse_exthdrs walks them from the fixed header to the upper-layer header as the
receive path does (ipv6_parse_hopopts, then ip6_protocol_deliver_rcu's loop over
ipv6_rthdr_rcv, ipv6_frag_rcv and ipv6_destopt_rcv), raising an Ipv6ParamProb error that
carries the offset the kernel would point at and the ICMPv6 Parameter Problem code it would
send (None: dropped silently). ipv6_skip_exthdr is the kernel's lenient skip, for ICMPv6.
"""

import struct
from typing import NamedTuple

from pktpath.wire.addr import ip6_to_str, ipv6_addr_is_multicast
from pktpath.wire.errors import IntegrityError, SanityError, TruncatedError, WireError
from pktpath.wire.header import new_header as _new
from pktpath.wire.header import wire_header

# include/net/ipv6.h: the next-header values, named as the kernel names them.
NEXTHDR_HOP = 0  # hop-by-hop options header
NEXTHDR_IPV4 = 4
NEXTHDR_TCP = 6
NEXTHDR_UDP = 17
NEXTHDR_IPV6 = 41
NEXTHDR_ROUTING = 43
NEXTHDR_FRAGMENT = 44
NEXTHDR_GRE = 47
NEXTHDR_ESP = 50
NEXTHDR_AUTH = 51
NEXTHDR_ICMP = 58
NEXTHDR_NONE = 59
NEXTHDR_DEST = 60
NEXTHDR_SCTP = 132
NEXTHDR_MOBILITY = 135
NEXTHDR_MAX = 255
# include/uapi/linux/in6.h
IPPROTO_ICMPV6 = 58

IPV6_HLEN = 40  # sizeof(struct ipv6hdr)
IPV6_MAXPLEN = 65535
IPV6_MIN_MTU = 1280
IPV6_DEFAULT_HOPLIMIT = 64
IPV6_DEFAULT_MCASTHOPS = 1

# struct frag_hdr's frag_off: the offset in bytes (a multiple of 8), two reserved bits, M.
IP6_MF = 0x0001
IP6_OFFSET = 0xFFF8

# TLV option types (include/uapi/linux/in6.h). The top two bits say what to do with an
# unknown one (RFC 8200 4.2), the third whether it may change en route.
IPV6_TLV_PAD1 = 0
IPV6_TLV_PADN = 1
IPV6_TLV_ROUTERALERT = 5
IPV6_TLV_CALIPSO = 7
IPV6_TLV_IOAM = 49
IPV6_TLV_JUMBO = 194
IPV6_TLV_HAO = 201
IPV6_OPT_ROUTERALERT_MLD = 0x0000  # the Router Alert value MLD uses (RFC 2710)
# RFC 8200 4.2's actions for an unknown option, by its type's top two bits (ip6_tlvopt_unknown).
IPV6_TLV_ACT_SKIP = 0          # skip it, go on
IPV6_TLV_ACT_DISCARD = 1       # discard the packet
IPV6_TLV_ACT_ICMP = 2          # discard, send Parameter Problem code 2
IPV6_TLV_ACT_ICMP_UCAST = 3    # discard, send Parameter Problem code 2 unless daddr is multicast

# Routing header types (include/uapi/linux/ipv6.h).
IPV6_SRCRT_TYPE_0 = 0  # deprecated (RFC 5095)
IPV6_SRCRT_TYPE_2 = 2  # Mobile IPv6
IPV6_SRCRT_TYPE_3 = 3  # RPL
IPV6_SRCRT_TYPE_4 = 4  # segment routing

# The net.ipv6 sysctls that bound option headers (include/net/ipv6.h defaults). A negative
# count also drops every unknown option, whatever its action bits.
IP6_DEFAULT_MAX_DST_OPTS_CNT = 8
IP6_DEFAULT_MAX_HBH_OPTS_CNT = 8
IP6_DEFAULT_MAX_DST_OPTS_LEN = 0x7FFFFFFF  # INT_MAX: no limit
IP6_DEFAULT_MAX_HBH_OPTS_LEN = 0x7FFFFFFF

# ICMPv6 Parameter Problem codes (include/uapi/linux/icmpv6.h), carried by Ipv6ParamProb errors.
ICMPV6_HDR_FIELD = 0
ICMPV6_UNK_NEXTHDR = 1
ICMPV6_UNK_OPTION = 2
ICMPV6_HDR_INCOMP = 3

_IP6H = struct.Struct("!IHBBQQQQ")
_FRAGH = struct.Struct("!BBHI")
_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")


# -- errors ------------------------------------------------------------------------------


class Ipv6ParamProb(WireError):
    """A problem in the extension headers, where the kernel finds it.

    offset: from the IPv6 header's first byte, the byte at fault (the Parameter Problem
    pointer when code is not None). code: the ICMPv6 Parameter Problem code the kernel
    sends (ICMPV6_*), None when it drops the packet without a word. Every subclass is also
    a TruncatedError, IntegrityError or SanityError. The kernel counts each in
    Ip6InHdrErrors (except where a docstring says otherwise).
    """

    def __init__(self, field: str, message: str, offset: int, code: int | None = None) -> None:
        super().__init__("ipv6", field, f"{message} (offset {offset})")
        self.offset = offset
        self.code = code


class ExtHdrTruncated(Ipv6ParamProb, TruncatedError):
    """The packet ends inside an extension header (pskb_may_pull fails), or a first fragment
    ends before the upper-layer header: the kernel drops it with SKB_DROP_REASON_NOT_SPECIFIED."""


class ExtHdrInvalid(Ipv6ParamProb, IntegrityError):
    """Options the kernel rejects (ip6_parse_tlv's `bad`, ipv6_hop_ra, ipv6_hop_jumbo,
    ipv6_hop_ioam, ipv6_hop_calipso): SKB_DROP_REASON_IP_INHDR."""


class ExtHdrRefused(Ipv6ParamProb, SanityError):
    """An options header longer than max_*_opts_len (kfree_skb; for a destination options
    header not even counted), a fragment header after another (ipv6_frag_rcv's fail_hdr):
    SKB_DROP_REASON_NOT_SPECIFIED; a jumbogram, which pktpath does not support."""


class Ipv6UnknownOption(ExtHdrRefused):
    """ip6_tlvopt_unknown() dropped the packet for an option it does not know
    (SKB_DROP_REASON_UNHANDLED_PROTO). action: the IPV6_TLV_ACT_* of the type's top bits;
    code is ICMPV6_UNK_OPTION when the kernel answers, pointing at the option's type byte."""

    def __init__(self, message: str, offset: int, code: int | None, action: int) -> None:
        super().__init__("option", message, offset, code)
        self.action = action


# -- the fixed header --------------------------------------------------------------------


@wire_header
class Ipv6Hdr(NamedTuple):
    saddr: int
    daddr: int
    nexthdr: int
    hop_limit: int = IPV6_DEFAULT_HOPLIMIT
    tclass: int = 0       # traffic class: DSCP << 2 | ECN (ipv6_get_dsfield)
    flow_lbl: int = 0     # 20 bits
    payload_len: int = 0  # computed by to_bytes(payload_len)

    version = 6
    header_len = IPV6_HLEN

    @classmethod
    def from_bytes(cls, data, *, quoted: bool = False) -> "Ipv6Hdr":
        """Parse the header at the start of `data`, in ip6_rcv_core's order.

        quoted=True reads a header quoted inside an ICMPv6 error: its payload_len describes
        the original packet, not the bytes that follow here.
        """
        n = len(data)
        if n < IPV6_HLEN:
            raise TruncatedError("ipv6", "header", f"need {IPV6_HLEN} bytes, have {n}")
        word, plen, nexthdr, hop_limit, s_hi, s_lo, d_hi, d_lo = _IP6H.unpack_from(data)
        if word >> 28 != 6:
            raise SanityError("ipv6", "version", f"version {word >> 28}, not 6")
        if not quoted:
            if plen or nexthdr != NEXTHDR_HOP:
                if plen + IPV6_HLEN > n:
                    raise TruncatedError("ipv6", "payload_len", f"payload_len {plen} > {n - IPV6_HLEN} bytes received")
            else:
                raise SanityError(
                    "ipv6", "payload_len", "payload_len 0 before a hop-by-hop header: a jumbogram (RFC 2675), "
                    "not supported")
        return _new(cls, (s_hi << 64 | s_lo, d_hi << 64 | d_lo, nexthdr, hop_limit, word >> 20 & 0xFF,
                          word & 0xFFFFF, plen))

    def to_bytes(self, payload_len: int | None = None) -> bytes:
        """The 40-byte header; payload_len (extension headers included) from the argument if given."""
        plen = self.payload_len if payload_len is None else payload_len
        if not 0 <= plen <= IPV6_MAXPLEN:
            raise SanityError("ipv6", "payload_len", f"payload_len {plen} outside 0..{IPV6_MAXPLEN}")
        if not 0 <= self.tclass <= 0xFF or not 0 <= self.flow_lbl <= 0xFFFFF:
            raise SanityError("ipv6", "flowinfo", f"tclass {self.tclass} or flow_lbl {self.flow_lbl} out of range")
        try:
            return _IP6H.pack(
                6 << 28 | self.tclass << 20 | self.flow_lbl, plen, self.nexthdr, self.hop_limit,
                self.saddr >> 64, self.saddr & 0xFFFFFFFFFFFFFFFF, self.daddr >> 64, self.daddr & 0xFFFFFFFFFFFFFFFF,
            )
        except struct.error as exc:
            raise SanityError("ipv6", "field", str(exc)) from exc

    def __repr__(self) -> str:
        return (
            f"Ipv6Hdr(saddr={ip6_to_str(self.saddr)}, daddr={ip6_to_str(self.daddr)}, nexthdr={self.nexthdr}, "
            f"hop_limit={self.hop_limit}, tclass=0x{self.tclass:02x}, flow_lbl=0x{self.flow_lbl:05x}, "
            f"payload_len={self.payload_len})"
        )


# -- TLV options (hop-by-hop and destination options headers) --------------------------


@wire_header
class Ipv6OptPad1(NamedTuple):
    type = IPV6_TLV_PAD1

    def to_bytes(self) -> bytes:
        return b"\x00"


@wire_header
class Ipv6OptPadN(NamedTuple):
    datalen: int  # the zero bytes after type and length: PadN pads datalen + 2

    type = IPV6_TLV_PADN

    def to_bytes(self) -> bytes:
        if not 0 <= self.datalen <= 0xFF:
            raise SanityError("ipv6", "option", f"PadN of {self.datalen} bytes")
        return bytes((IPV6_TLV_PADN, self.datalen)) + bytes(self.datalen)


@wire_header
class Ipv6OptRouterAlert(NamedTuple):
    value: int = IPV6_OPT_ROUTERALERT_MLD  # RFC 2711: 0 MLD, 1 RSVP, 2 active networks

    type = IPV6_TLV_ROUTERALERT

    def to_bytes(self) -> bytes:
        if not 0 <= self.value <= 0xFFFF:
            raise SanityError("ipv6", "option", f"router alert value {self.value}")
        return bytes((IPV6_TLV_ROUTERALERT, 2)) + _U16.pack(self.value)


@wire_header
class Ipv6OptJumbo(NamedTuple):
    jumbo_payload_len: int  # struct hop_jumbo_hdr

    type = IPV6_TLV_JUMBO

    def to_bytes(self) -> bytes:
        if not 0 <= self.jumbo_payload_len <= 0xFFFFFFFF:
            raise SanityError("ipv6", "option", f"jumbo payload length {self.jumbo_payload_len}")
        return bytes((IPV6_TLV_JUMBO, 4)) + _U32.pack(self.jumbo_payload_len)


@wire_header
class Ipv6OptUnknown(NamedTuple):
    """Any other option, kept as bytes: one the receiver skipped (its action bits 00), or one
    to send. (The kernel's IOAM option, 49, is skipped as ioam6_enabled=0 has it.)"""

    type: int
    data: bytes = b""

    @property
    def action(self) -> int:
        """IPV6_TLV_ACT_*: what a receiver that does not know the option does (RFC 8200 4.2)."""
        return self.type >> 6

    def to_bytes(self) -> bytes:
        if not 0 <= self.type <= 0xFF or len(self.data) > 0xFF or self.type == IPV6_TLV_PAD1:
            raise SanityError("ipv6", "option", f"option type {self.type} with {len(self.data)} bytes")
        return bytes((self.type, len(self.data))) + bytes(self.data)


Ipv6Opt = Ipv6OptPad1 | Ipv6OptPadN | Ipv6OptRouterAlert | Ipv6OptJumbo | Ipv6OptUnknown


def ip6_tlvopt_unknown(opttype: int, optoff: int, daddr: int | None, disallow_unknowns: bool = False) -> None:
    """ip6_tlvopt_unknown() (net/ipv6/exthdrs.c): return if an unknown option is to be skipped,
    raise Ipv6UnknownOption if the packet is to be dropped, with the ICMPv6 code to send if any.

    daddr None counts as unicast. disallow_unknowns (a negative max_*_opts_cnt sysctl) drops
    silently whatever the action bits say.
    """
    action = opttype >> 6
    if disallow_unknowns:
        raise Ipv6UnknownOption(f"unknown option {opttype} (unknown options disallowed)", optoff, None, action)
    if action == IPV6_TLV_ACT_SKIP:
        return
    code = None if action == IPV6_TLV_ACT_DISCARD else ICMPV6_UNK_OPTION
    if action == IPV6_TLV_ACT_ICMP_UCAST and daddr is not None and ipv6_addr_is_multicast(daddr):
        code = None
    raise Ipv6UnknownOption(f"unknown option {opttype}, action {action}", optoff, code, action)


def ip6_parse_tlv(hopbyhop: bool, data, off: int, *, daddr: int | None = None, payload_len: int = 1,
                  max_count: int = IP6_DEFAULT_MAX_HBH_OPTS_CNT) -> tuple:
    """ip6_parse_tlv() (net/ipv6/exthdrs.c): the options of the hop-by-hop (hopbyhop) or
    destination options header at data[off:], which starts at the IPv6 header; the caller has
    checked the header's length fits. Returns the options in wire order, padding included.

    In the kernel's order: at most 7 bytes of padding in a row, PadN all zeros, each option
    inside the header, at most max_count non-padding options. In a hop-by-hop header a Router
    Alert must hold 2 bytes, IOAM be 4n-aligned (then ignored: ioam6_enabled=0), CALIPSO is
    dropped (no DOI is configured) and a Jumbo option ends in an error (pktpath refuses
    jumbograms; the kernel's checks pick the pointer); everything else, and in a destination
    header every option (the kernel here has no CONFIG_IPV6_MIP6), is unknown.
    """
    hlen = (data[off + 1] + 1) << 3
    disallow_unknowns = max_count < 0
    max_count = abs(max_count)
    pos = off + 2
    end = off + hlen
    options = []
    padlen = tlv_count = 0
    while pos < end:
        opttype = data[pos]
        if opttype == IPV6_TLV_PAD1:
            padlen += 1
            if padlen > 7:
                raise ExtHdrInvalid("option", "more than 7 bytes of padding in a row", pos)
            options.append(_PAD1)
            pos += 1
            continue
        if end - pos < 2:
            raise ExtHdrInvalid("option", f"option {opttype} has no length byte", pos)
        optlen = data[pos + 1] + 2
        if optlen > end - pos:
            raise ExtHdrInvalid("option", f"option {opttype} of {optlen} bytes overruns the header", pos)
        if opttype == IPV6_TLV_PADN:
            padlen += optlen
            if padlen > 7:
                raise ExtHdrInvalid("option", "more than 7 bytes of padding in a row", pos)
            if any(data[pos + 2:pos + optlen]):
                raise ExtHdrInvalid("option", "PadN with non-zero bytes (RFC 4942 2.1.9.5)", pos)
            options.append(Ipv6OptPadN(optlen - 2))
        else:
            tlv_count += 1
            if tlv_count > max_count:
                raise ExtHdrInvalid("option", f"more than {max_count} options", pos)
            optdata = bytes(data[pos + 2:pos + optlen])
            if hopbyhop and opttype == IPV6_TLV_ROUTERALERT:  # ipv6_hop_ra
                if optlen != 4:
                    raise ExtHdrInvalid("option", f"router alert of {optlen - 2} bytes, not 2", pos)
                options.append(Ipv6OptRouterAlert(_U16.unpack(optdata)[0]))
            elif hopbyhop and opttype == IPV6_TLV_JUMBO:  # ipv6_hop_jumbo
                if optlen != 6 or pos & 3 != 2:
                    raise ExtHdrInvalid("option", "jumbo option of the wrong length or alignment", pos)
                if _U32.unpack(optdata)[0] <= IPV6_MAXPLEN:
                    raise ExtHdrInvalid("option", "jumbo payload length <= 65535", pos + 2, ICMPV6_HDR_FIELD)
                if payload_len:
                    raise ExtHdrInvalid("option", "jumbo option with a non-zero payload_len", pos, ICMPV6_HDR_FIELD)
                raise ExtHdrRefused("option", "jumbogram (RFC 2675): not supported", pos)
            elif hopbyhop and opttype == IPV6_TLV_CALIPSO:  # ipv6_hop_calipso: calipso_validate finds no DOI
                raise ExtHdrInvalid("option", "CALIPSO option (no CALIPSO DOI configured)", pos)
            elif hopbyhop and opttype == IPV6_TLV_IOAM:  # ipv6_hop_ioam
                if pos & 3:
                    raise ExtHdrInvalid("option", "IOAM option not 4n-aligned", pos)
                options.append(Ipv6OptUnknown(opttype, optdata))
            else:
                ip6_tlvopt_unknown(opttype, pos, daddr, disallow_unknowns)
                options.append(Ipv6OptUnknown(opttype, optdata))
            padlen = 0
        pos += optlen
    return tuple(options)


_PAD1 = Ipv6OptPad1()


def encode_tlv_options(options) -> bytes:
    """The options, padded (Pad1 or PadN at the end) so that with the 2-byte nexthdr/hdrlen
    the header is a multiple of 8 bytes. Options are kept where they are: an option with an
    alignment rule (Router Alert 2n, Jumbo 4n+2) is aligned when it comes first."""
    raw = b"".join(opt.to_bytes() for opt in options)
    pad = -(2 + len(raw)) % 8
    if pad == 1:
        raw += b"\x00"
    elif pad:
        raw += bytes((IPV6_TLV_PADN, pad - 2)) + bytes(pad - 2)
    return raw


# -- extension headers -----------------------------------------------------------------


def _ext_len(data, off: int, field: str) -> int:
    """The length of the extension header at data[off:] ((hdrlen + 1) * 8), once it is all there
    (the pskb_may_pull of 8 bytes, then of the whole header, that every *_rcv starts with)."""
    have = len(data) - off
    if have < 8:
        raise ExtHdrTruncated(field, f"need 8 bytes, have {have}", off)
    hlen = (data[off + 1] + 1) << 3
    if have < hlen:
        raise ExtHdrTruncated(field, f"need {hlen} bytes, have {have}", off)
    return hlen


class _OptHdr(NamedTuple):
    """struct ipv6_opt_hdr: a hop-by-hop or destination options header."""

    nexthdr: int
    options: tuple = ()  # Ipv6Opt* in wire order; to_bytes pads the end

    @property
    def header_len(self) -> int:
        return 2 + len(encode_tlv_options(self.options))

    @classmethod
    def from_bytes(cls, data, off: int = 0, *, daddr: int | None = None, payload_len: int = 1,
                   max_count: int | None = None, max_len: int | None = None):
        """Parse the header at data[off:] (data starting at the IPv6 header, so that offsets
        are the kernel's pointers), as ipv6_parse_hopopts / ipv6_destopt_rcv do."""
        hop = cls.NEXTHDR == NEXTHDR_HOP
        field = "hopopts" if hop else "destopts"
        hlen = _ext_len(data, off, field)
        if max_len is None:
            max_len = IP6_DEFAULT_MAX_HBH_OPTS_LEN if hop else IP6_DEFAULT_MAX_DST_OPTS_LEN
        if hlen > max_len:
            raise ExtHdrRefused(field, f"{hlen} bytes > max_{'hbh' if hop else 'dst'}_opts_len {max_len}", off)
        if max_count is None:
            max_count = IP6_DEFAULT_MAX_HBH_OPTS_CNT if hop else IP6_DEFAULT_MAX_DST_OPTS_CNT
        options = ip6_parse_tlv(hop, data, off, daddr=daddr, payload_len=payload_len, max_count=max_count)
        return _new(cls, (data[off], options))

    def to_bytes(self) -> bytes:
        raw = encode_tlv_options(self.options)
        hdrlen = (2 + len(raw)) // 8 - 1
        if hdrlen > 0xFF or not 0 <= self.nexthdr <= 0xFF:
            raise SanityError("ipv6", "options", f"{2 + len(raw)} bytes of options header, nexthdr {self.nexthdr}")
        return bytes((self.nexthdr, hdrlen)) + raw


@wire_header
class Ipv6HopOptHdr(_OptHdr):
    """struct ipv6_hopopt_hdr: hop-by-hop options (next header 0); only right after the fixed header."""

    __slots__ = ()
    NEXTHDR = NEXTHDR_HOP


@wire_header
class Ipv6DestOptHdr(_OptHdr):
    """struct ipv6_destopt_hdr: destination options (next header 60)."""

    __slots__ = ()
    NEXTHDR = NEXTHDR_DEST


@wire_header
class Ipv6RtHdr(NamedTuple):
    """struct ipv6_rt_hdr: a routing header (next header 43), its type-specific data kept as bytes."""

    nexthdr: int
    type: int
    segments_left: int
    data: bytes = bytes(4)  # after the first 4 bytes: len(data) + 4 is a multiple of 8

    NEXTHDR = NEXTHDR_ROUTING

    @property
    def header_len(self) -> int:
        return 4 + len(self.data)

    @property
    def hdrlen(self) -> int:
        return (4 + len(self.data)) // 8 - 1

    @classmethod
    def from_bytes(cls, data, off: int = 0) -> "Ipv6RtHdr":
        """Parse the header at data[off:]: ipv6_rthdr_rcv's length checks. What the type and
        segments_left mean (and that daddr must not be multicast) is for the caller."""
        hlen = _ext_len(data, off, "rthdr")
        return _new(cls, (data[off], data[off + 2], data[off + 3], bytes(data[off + 4:off + hlen])))

    def to_bytes(self) -> bytes:
        size = 4 + len(self.data)
        if size % 8 or size > 2048:
            raise SanityError("ipv6", "rthdr", f"routing header of {size} bytes: not a multiple of 8 up to 2048")
        try:
            return struct.pack("!BBBB", self.nexthdr, size // 8 - 1, self.type, self.segments_left) + bytes(self.data)
        except struct.error as exc:
            raise SanityError("ipv6", "rthdr", str(exc)) from exc


@wire_header
class Ipv6FragHdr(NamedTuple):
    """struct frag_hdr: the fragment header (next header 44)."""

    nexthdr: int
    frag_off: int  # the whole 16-bit field: offset in bytes | reserved bits | IP6_MF
    identification: int
    reserved: int = 0

    NEXTHDR = NEXTHDR_FRAGMENT
    header_len = 8

    @property
    def frag_offset(self) -> int:
        """Offset of this fragment's data in the original packet, in bytes."""
        return self.frag_off & IP6_OFFSET

    @property
    def mf(self) -> bool:
        return bool(self.frag_off & IP6_MF)

    @property
    def is_fragment(self) -> bool:
        """A real fragment: an offset or M set. Otherwise an atomic fragment (RFC 6946)."""
        return bool(self.frag_off & (IP6_OFFSET | IP6_MF))

    @classmethod
    def from_bytes(cls, data, off: int = 0) -> "Ipv6FragHdr":
        """Parse the header at data[off:]. ipv6_frag_rcv answers a short one with a Parameter
        Problem pointing at it."""
        have = len(data) - off
        if have < 8:
            raise ExtHdrTruncated("frag", f"need 8 bytes, have {have}", off, ICMPV6_HDR_FIELD)
        nexthdr, reserved, frag_off, ident = _FRAGH.unpack_from(data, off)
        return _new(cls, (nexthdr, frag_off, ident, reserved))

    def to_bytes(self) -> bytes:
        try:
            return _FRAGH.pack(self.nexthdr, self.reserved, self.frag_off, self.identification)
        except struct.error as exc:
            raise SanityError("ipv6", "frag", str(exc)) from exc


Ipv6ExtHdr = Ipv6HopOptHdr | Ipv6DestOptHdr | Ipv6RtHdr | Ipv6FragHdr


def ipv6_ext_hdr(nexthdr: int) -> bool:
    """ipv6_ext_hdr() (net/ipv6/exthdrs_core.c): an extension header, not a protocol."""
    return nexthdr in _EXT_HDRS


_EXT_HDRS = frozenset((NEXTHDR_HOP, NEXTHDR_ROUTING, NEXTHDR_FRAGMENT, NEXTHDR_AUTH, NEXTHDR_NONE, NEXTHDR_DEST))


def ipv6_skip_exthdr(data, start: int, nexthdr: int) -> tuple[int, int, int]:
    """ipv6_skip_exthdr() (net/ipv6/exthdrs_core.c): skip the extension headers of any kind
    and order from data[start:] (data starting at the IPv6 header), checking nothing but bounds.

    Returns (offset, nexthdr, frag_off): the offset of the first header it does not skip and
    its type, and the frag_off of the last fragment header seen. It stops at a fragment header
    with a non-zero offset (offset, NEXTHDR_FRAGMENT). The offset is -1 (nexthdr as given) if
    the chain ends in NEXTHDR_NONE or is cut short; it may point past the end of data.
    """
    first = nexthdr
    frag_off = 0
    n = len(data)
    while nexthdr in _EXT_HDRS:
        if nexthdr == NEXTHDR_NONE or start + 2 > n:
            return -1, first, frag_off
        if nexthdr == NEXTHDR_FRAGMENT:
            if start + 4 > n:
                return -1, first, frag_off
            frag_off = _U16.unpack_from(data, start + 2)[0]
            if frag_off & ~0x7:
                break
            hdrlen = 8
        elif nexthdr == NEXTHDR_AUTH:
            hdrlen = (data[start + 1] + 2) << 2  # ipv6_authlen
        else:
            hdrlen = (data[start + 1] + 1) << 3  # ipv6_optlen
        nexthdr = data[start]
        start += hdrlen
    return start, nexthdr, frag_off


def ipv6frag_thdr_truncated(data, start: int, nexthdr: int) -> bool:
    """ipv6frag_thdr_truncated() (include/net/ipv6_frag.h): a first fragment that does not hold
    the headers through the upper-layer header's first bytes (RFC 8200 4.5)."""
    offset, nexthdr, frag_off = ipv6_skip_exthdr(data, start, nexthdr)
    if offset < 0 or frag_off & IP6_OFFSET:
        return False
    offset += {NEXTHDR_TCP: 20, NEXTHDR_UDP: 8, NEXTHDR_ICMP: 4}.get(nexthdr, 1)
    return offset > len(data)


_WALKED = frozenset((NEXTHDR_HOP, NEXTHDR_ROUTING, NEXTHDR_FRAGMENT, NEXTHDR_DEST))


class Ipv6ExtChain(NamedTuple):
    """Where ipv6_parse_exthdrs stopped.

    nexthdr is the upper-layer protocol, NEXTHDR_NONE, or anything the receive path has no
    extension-header handler for (ESP, AH, a hop-by-hop header not first: the kernel answers
    those as unknown protocols). NEXTHDR_FRAGMENT means a real fragment: headers[-1] is its
    header, offset points at it, and the rest waits for reassembly.
    """

    headers: tuple   # the extension headers, in order
    offsets: tuple   # where each starts, from the IPv6 header's first byte
    nexthdr: int
    offset: int      # where nexthdr's header starts (skb_transport_offset)
    nhoff: int       # the byte that holds nexthdr (IP6CB(skb)->nhoff): the ICMPV6_UNK_NEXTHDR pointer


def ipv6_parse_exthdrs(hdr: Ipv6Hdr, data, *, max_hbh_opts_cnt: int = IP6_DEFAULT_MAX_HBH_OPTS_CNT,
                       max_dst_opts_cnt: int = IP6_DEFAULT_MAX_DST_OPTS_CNT,
                       max_hbh_opts_len: int = IP6_DEFAULT_MAX_HBH_OPTS_LEN,
                       max_dst_opts_len: int = IP6_DEFAULT_MAX_DST_OPTS_LEN) -> Ipv6ExtChain:
    """Walk the extension headers of the packet `data` (from its IPv6 header `hdr` on) as the
    receive path does: ipv6_parse_hopopts for a hop-by-hop header right after the fixed
    header, then ip6_protocol_deliver_rcu's loop through ipv6_rthdr_rcv, ipv6_frag_rcv and
    ipv6_destopt_rcv. Raises an Ipv6ParamProb error (or ExtHdr* subclass) at the first problem.

    Checked here, from the bytes and daddr alone: lengths, options (ip6_parse_tlv, with the
    unknown options' actions), a second fragment header after an atomic one, a first fragment
    too short for the headers (ICMPV6_HDR_INCOMP, pointer 0). Left to L3, in the kernel's
    order: a routing header's meaning (multicast daddr, type, segments_left) and reassembly.
    Bytes past 40 + payload_len are not looked at.
    """
    if hdr.nexthdr not in _WALKED:  # the common case: the upper-layer header right away
        return Ipv6ExtChain((), (), hdr.nexthdr, IPV6_HLEN, 6)
    end = IPV6_HLEN + hdr.payload_len
    if len(data) > end:
        data = memoryview(data)[:end]
    nexthdr = hdr.nexthdr
    off = IPV6_HLEN
    nhoff = 6  # offsetof(struct ipv6hdr, nexthdr)
    headers, offsets = [], []
    fragmented = False  # IP6SKB_FRAGMENTED
    while True:
        if nexthdr == NEXTHDR_HOP and off == IPV6_HLEN:
            ext = Ipv6HopOptHdr.from_bytes(data, off, daddr=hdr.daddr, payload_len=hdr.payload_len,
                                           max_count=max_hbh_opts_cnt, max_len=max_hbh_opts_len)
        elif nexthdr == NEXTHDR_DEST:
            ext = Ipv6DestOptHdr.from_bytes(data, off, daddr=hdr.daddr, max_count=max_dst_opts_cnt,
                                            max_len=max_dst_opts_len)
        elif nexthdr == NEXTHDR_ROUTING:
            ext = Ipv6RtHdr.from_bytes(data, off)
        elif nexthdr == NEXTHDR_FRAGMENT:
            if fragmented or not hdr.payload_len:  # jumbo payload inhibits frag. header
                why = "a second fragment header" if fragmented else "a fragment header with payload_len 0"
                raise ExtHdrRefused("frag", why, off, ICMPV6_HDR_FIELD)
            ext = Ipv6FragHdr.from_bytes(data, off)
            if ext.is_fragment:
                if not ext.frag_offset and ipv6frag_thdr_truncated(data, IPV6_HLEN, hdr.nexthdr):
                    raise ExtHdrTruncated("frag", "first fragment without the upper-layer header", 0,
                                          ICMPV6_HDR_INCOMP)
                headers.append(ext)
                offsets.append(off)
                return Ipv6ExtChain(tuple(headers), tuple(offsets), NEXTHDR_FRAGMENT, off, nhoff)
            fragmented = True
        else:
            return Ipv6ExtChain(tuple(headers), tuple(offsets), nexthdr, off, nhoff)
        headers.append(ext)
        offsets.append(off)
        nhoff = off  # every extension header starts with its nexthdr byte
        nexthdr = ext.nexthdr
        off += 8 if type(ext) is Ipv6FragHdr else (data[off + 1] + 1) << 3
