"""TCP (RFC 9293): struct tcphdr (include/uapi/linux/tcp.h) and its options.

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |            source             |             dest              |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                              seq                              |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                            ack_seq                            |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    | doff  | res.  |C|E|U|A|P|R|S|F|            window             |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |             check             |            urg_ptr            |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                    options (doff*4 - 20 bytes)                |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

TcpHdr keeps the options raw, as the kernel does until tcp_parse_options
(net/ipv4/tcp_input.c) walks them: EOL, NOP, MSS, window scale, SACK-permitted,
SACK blocks, timestamps; any other kind is kept as TcpOptUnknown. Where the
kernel silently stops at a malformed option, the strict parser (the default)
raises IntegrityError; the lenient one keeps the rest of the option bytes as
TcpOptRaw, so that a receiver can treat the segment as Linux does. Bytes after
EOL are padding.
"""

import struct
from typing import NamedTuple

from pktpath.wire.checksum import csum_tcpudp, csum_tcpudp_magic_partial
from pktpath.wire.header import new_header as _new
from pktpath.wire.header import wire_header
from pktpath.wire.errors import ChecksumError, IntegrityError, SanityError, TruncatedError

IPPROTO_TCP = 6
TCP_MIN_HLEN = 20
TCP_MAX_OPTLEN = 40

# Flag bits in byte 13, as the kernel's TCP_FLAG_* (tcp_flag_byte).
TCPHDR_FIN = 0x01
TCPHDR_SYN = 0x02
TCPHDR_RST = 0x04
TCPHDR_PSH = 0x08
TCPHDR_ACK = 0x10
TCPHDR_URG = 0x20
TCPHDR_ECE = 0x40
TCPHDR_CWR = 0x80

TCPOPT_EOL = 0
TCPOPT_NOP = 1
TCPOPT_MSS = 2
TCPOPT_WINDOW = 3
TCPOPT_SACK_PERM = 4
TCPOPT_SACK = 5
TCPOPT_TIMESTAMP = 8

_TCPH = struct.Struct("!HHIIBBHHH")
_from_bytes = int.from_bytes


@wire_header
class TcpOptEol(NamedTuple):
    def to_bytes(self) -> bytes:
        return b"\x00"


@wire_header
class TcpOptNop(NamedTuple):
    def to_bytes(self) -> bytes:
        return b"\x01"


@wire_header
class TcpOptMss(NamedTuple):
    mss: int

    def to_bytes(self) -> bytes:
        return _pack_checked("!BBH", TCPOPT_MSS, 4, self.mss)


@wire_header
class TcpOptWindow(NamedTuple):
    snd_wscale: int  # shift count; the kernel clamps anything above 14

    def to_bytes(self) -> bytes:
        return _pack_checked("!BBB", TCPOPT_WINDOW, 3, self.snd_wscale)


@wire_header
class TcpOptSackPerm(NamedTuple):
    def to_bytes(self) -> bytes:
        return bytes((TCPOPT_SACK_PERM, 2))


@wire_header
class TcpOptSack(NamedTuple):
    blocks: tuple  # ((start_seq, end_seq), ...), one to four blocks

    def to_bytes(self) -> bytes:
        if not 1 <= len(self.blocks) <= 4:
            raise SanityError("tcp", "options", f"{len(self.blocks)} SACK blocks, not 1..4")
        body = b"".join(_pack_checked("!II", left, right) for left, right in self.blocks)
        return bytes((TCPOPT_SACK, 2 + len(body))) + body


@wire_header
class TcpOptTimestamp(NamedTuple):
    tsval: int
    tsecr: int

    def to_bytes(self) -> bytes:
        return _pack_checked("!BBII", TCPOPT_TIMESTAMP, 10, self.tsval, self.tsecr)


@wire_header
class TcpOptUnknown(NamedTuple):
    kind: int
    data: bytes

    def to_bytes(self) -> bytes:
        if not 0 <= self.kind <= 0xFF:
            raise SanityError("tcp", "options", f"option kind {self.kind!r} is not a byte")
        if not 2 + len(self.data) <= 0xFF:
            raise SanityError("tcp", "options", f"option of {2 + len(self.data)} bytes")
        return bytes((self.kind, 2 + len(self.data))) + self.data


@wire_header
class TcpOptRaw(NamedTuple):
    """Option bytes the lenient parser could not read; kept so nothing is lost."""

    data: bytes

    def to_bytes(self) -> bytes:
        return self.data


def _pack_checked(fmt: str, *values) -> bytes:
    try:
        return struct.pack(fmt, *values)
    except struct.error as exc:
        raise SanityError("tcp", "options", str(exc)) from exc


TcpOption = (
    TcpOptEol | TcpOptNop | TcpOptMss | TcpOptWindow | TcpOptSackPerm
    | TcpOptSack | TcpOptTimestamp | TcpOptUnknown | TcpOptRaw
)

_EOL, _NOP, _SACK_PERM = TcpOptEol(), TcpOptNop(), TcpOptSackPerm()  # immutable: shared
_U16, _U32X2 = struct.Struct("!H"), struct.Struct("!II")
_FIXED_LEN = {TCPOPT_MSS: 4, TCPOPT_WINDOW: 3, TCPOPT_SACK_PERM: 2, TCPOPT_TIMESTAMP: 10}


def parse_options(raw, *, strict: bool = True) -> tuple:
    """Walk the option bytes as tcp_parse_options() does."""
    opts = []
    append = opts.append
    i, n = 0, len(raw)
    while i < n:
        kind = raw[i]
        if kind == TCPOPT_NOP:
            append(_NOP)
            i += 1
            continue
        if kind == TCPOPT_EOL:
            append(_EOL)
            rest = bytes(raw[i + 1:])
            if rest.strip(b"\x00"):
                if strict:
                    raise SanityError("tcp", "options", "non-zero bytes after EOL")
                append(TcpOptRaw(rest))
            break
        size = raw[i + 1] if i + 1 < n else 0
        if size < 2 or i + size > n or _FIXED_LEN.get(kind, size) != size or (
                kind == TCPOPT_SACK and ((size - 2) % 8 or size == 2)):
            if strict:
                raise IntegrityError("tcp", "options", f"option kind {kind}: bad length {size} at offset {i} of {n}")
            append(TcpOptRaw(bytes(raw[i:])))
            break
        if kind == TCPOPT_MSS:
            append(_new(TcpOptMss, _U16.unpack_from(raw, i + 2)))
        elif kind == TCPOPT_TIMESTAMP:
            append(_new(TcpOptTimestamp, _U32X2.unpack_from(raw, i + 2)))
        elif kind == TCPOPT_WINDOW:
            append(_new(TcpOptWindow, (raw[i + 2],)))
        elif kind == TCPOPT_SACK_PERM:
            append(_SACK_PERM)
        elif kind == TCPOPT_SACK:
            words = struct.unpack_from(f"!{(size - 2) // 4}I", raw, i + 2)
            append(_new(TcpOptSack, (tuple(zip(words[::2], words[1::2])),)))
        else:
            append(_new(TcpOptUnknown, (kind, bytes(raw[i + 2:i + size]))))
        i += size
    return tuple(opts)


def encode_options(*options: TcpOption) -> bytes:
    """Serialize options for TcpHdr.options, zero-padded (EOL) to a multiple of four bytes."""
    raw = b"".join(opt.to_bytes() for opt in options)
    if len(raw) % 4:
        raw += bytes(4 - len(raw) % 4)
    if len(raw) > TCP_MAX_OPTLEN:
        raise SanityError("tcp", "options", f"{len(raw)} bytes of options > {TCP_MAX_OPTLEN}")
    return raw


@wire_header
class TcpHdr(NamedTuple):
    source: int
    dest: int
    seq: int = 0
    ack_seq: int = 0
    doff_res: int = 0  # data offset (high nibble) and reserved bits; computed by to_bytes
    flags: int = 0     # TCPHDR_* bits: CWR ECE URG ACK PSH RST SYN FIN
    window: int = 0
    check: int = 0     # computed by to_bytes
    urg_ptr: int = 0
    options: bytes = b""  # raw, as on the wire; build with encode_options(), read with parsed_options()

    @property
    def doff(self) -> int:
        return (TCP_MIN_HLEN + len(self.options) + 3) // 4

    @property
    def header_len(self) -> int:
        return self.doff * 4

    fin = property(lambda self: bool(self.flags & TCPHDR_FIN))
    syn = property(lambda self: bool(self.flags & TCPHDR_SYN))
    rst = property(lambda self: bool(self.flags & TCPHDR_RST))
    psh = property(lambda self: bool(self.flags & TCPHDR_PSH))
    ack = property(lambda self: bool(self.flags & TCPHDR_ACK))
    urg = property(lambda self: bool(self.flags & TCPHDR_URG))
    ece = property(lambda self: bool(self.flags & TCPHDR_ECE))
    cwr = property(lambda self: bool(self.flags & TCPHDR_CWR))

    def parsed_options(self, *, strict: bool = True) -> tuple:
        """The options as objects (see parse_options)."""
        return parse_options(self.options, strict=strict) if self.options else ()

    def option(self, cls):
        """The first option of type `cls`, read leniently as Linux does, or None."""
        for opt in self.parsed_options(strict=False):
            if type(opt) is cls:
                return opt
        return None

    @classmethod
    def from_bytes(cls, data, saddr: int | None = None, daddr: int | None = None) -> "TcpHdr":
        """Parse the header at the start of `data`, the whole segment.

        With saddr and daddr the checksum over the segment and pseudo-header is
        verified (TCP has no "no checksum"). Options stay raw until asked for,
        as the kernel parses them only where it needs them (tcp_parse_options,
        tcp_fast_parse_options).
        """
        n = len(data)
        if n < TCP_MIN_HLEN:
            raise TruncatedError("tcp", "header", f"need {TCP_MIN_HLEN} bytes, have {n}")
        source, dest, seq, ack_seq, doff_res, flags, window, check, urg_ptr = _TCPH.unpack_from(data)
        hlen = (doff_res >> 4) * 4
        if hlen < TCP_MIN_HLEN:
            raise SanityError("tcp", "doff", f"data offset {doff_res >> 4} < 5")
        if n < hlen:
            raise TruncatedError("tcp", "options", f"need {hlen} bytes, have {n}")
        if saddr is not None and daddr is not None:
            # verifies() inlined, pseudo-header included; n >= 20 makes the total non-zero.
            total = _from_bytes(data, "big")
            if n & 1:
                total <<= 8
            if (total + saddr + daddr + IPPROTO_TCP + n) % 0xFFFF:
                raise ChecksumError("tcp", "check", f"checksum 0x{check:04x} does not verify")
        if not source or not dest:
            raise SanityError("tcp", "port", "port 0 is reserved")
        options = bytes(data[TCP_MIN_HLEN:hlen]) if hlen > TCP_MIN_HLEN else b""
        return _new(cls, (source, dest, seq, ack_seq, doff_res, flags, window, check, urg_ptr, options))

    def to_bytes(self, payload, saddr: int, daddr: int, *, partial: bool = False) -> bytes:
        """The header for `payload` between saddr and daddr, doff and check computed; with
        partial, check is only the pseudo-header's (CHECKSUM_PARTIAL: a GSO skb's, which
        skb_segment completes per segment, as tcp_v4_send_check leaves it)."""
        options = self.options
        if len(options) % 4:
            options += bytes(4 - len(options) % 4)
        if len(options) > TCP_MAX_OPTLEN:
            raise SanityError("tcp", "options", f"{len(options)} bytes of options > {TCP_MAX_OPTLEN}")
        try:
            header = _TCPH.pack(
                self.source, self.dest, self.seq, self.ack_seq,
                (TCP_MIN_HLEN + len(options)) // 4 << 4 | self.doff_res & 0x0F, self.flags,
                self.window, 0, self.urg_ptr,
            ) + options
        except struct.error as exc:
            raise SanityError("tcp", "field", str(exc)) from exc
        if partial:
            check = csum_tcpudp_magic_partial(saddr, daddr, IPPROTO_TCP, len(header) + len(payload))
        else:
            check = csum_tcpudp(saddr, daddr, IPPROTO_TCP, header, payload)
        return header[:16] + check.to_bytes(2, "big") + header[18:]

    def flag_str(self) -> str:
        """Flags as tcpdump prints them, in its order: F, S, R, P, ., U, E, W."""
        return "".join(name for bit, name in zip(
            (TCPHDR_FIN, TCPHDR_SYN, TCPHDR_RST, TCPHDR_PSH, TCPHDR_ACK, TCPHDR_URG, TCPHDR_ECE, TCPHDR_CWR),
            "FSRP.UEW") if self.flags & bit)
