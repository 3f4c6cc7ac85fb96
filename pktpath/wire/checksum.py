"""The Internet checksum (RFC 1071) and the IPv4 pseudo-header (RFC 768, RFC 9293).

Models csum_partial/csum_fold/csum_tcpudp_magic (include/net/checksum.h).

The one's-complement sum of 16-bit words is congruent, modulo 0xFFFF, to the
whole buffer read as one big-endian integer (2**16 is 1 modulo 0xFFFF), which
CPython computes in C -- far faster than summing words in a Python loop. For the
same reason a partial sum may stay unfolded: any non-negative integer congruent
to the sum will do, which makes the pseudo-header a few integer additions.
"""

_from_bytes = int.from_bytes


def _value(data) -> int:
    """`data` as one big-endian integer, zero-padded to an even length."""
    n = _from_bytes(data, "big")
    return n << 8 if len(data) & 1 else n


def csum_partial(data, initial: int = 0) -> int:
    """One's-complement sum of `data` (bytes-like) plus `initial`, folded to 16 bits.

    Returns 0..0xFFFF; a non-zero sum that folds to a multiple of 0xFFFF is
    0xFFFF ("negative zero"), as end-around-carry addition gives.
    """
    total = _value(data) + initial
    folded = total % 0xFFFF
    return 0xFFFF if folded == 0 and total else folded


def csum_fold(partial: int) -> int:
    """The checksum field value for a partial sum: the complement of its fold."""
    folded = partial % 0xFFFF
    if folded == 0 and partial:
        folded = 0xFFFF
    return ~folded & 0xFFFF


def ip_compute_csum(*parts) -> int:
    """The checksum to store in a message whose checksum field is zero.

    The message may come in parts (all but the last of even length), summed
    without joining them.
    """
    return csum_fold(sum(_value(part) for part in parts))


def pseudo_header_sum(saddr: int, daddr: int, protocol: int, length: int) -> int:
    """Partial (unfolded) sum of the IPv4 pseudo-header: saddr, daddr, zero, protocol, length.

    saddr is hi*2**16 + lo, congruent to hi + lo: the words need no splitting.
    """
    return saddr + daddr + protocol + length


def csum_tcpudp(saddr: int, daddr: int, protocol: int, header: bytes, payload=b"") -> int:
    """The TCP/UDP checksum of header (even length, checksum field zero) + payload.

    Summed in two parts so the payload is never copied to be joined to the header.
    """
    partial = pseudo_header_sum(saddr, daddr, protocol, len(header) + len(payload))
    return csum_fold(partial + _value(header) + _value(payload))


def csum_tcpudp_magic_partial(saddr: int, daddr: int, protocol: int, length: int) -> int:
    """What CHECKSUM_PARTIAL leaves in a TCP/UDP header (~tcp_v4_check(len, saddr, daddr, 0)):
    the folded pseudo-header sum, for whoever finishes the checksum (GSO, a device) to add
    the segment's own bytes to."""
    return ~csum_fold(pseudo_header_sum(saddr, daddr, protocol, length)) & 0xFFFF


def verifies(data, initial: int = 0) -> bool:
    """True if `data`, checksum field included, plus `initial` sums to all ones."""
    total = _value(data) + initial
    return total % 0xFFFF == 0 and total != 0
