"""The Internet checksum (pktpath.wire.checksum) against a reference word loop.

pktpath sums the whole buffer as one big integer modulo 0xFFFF; the reference
(wirekit.ref_ones_sum) adds 16-bit words one at a time with end-around carry,
as RFC 1071 section 4.1 does it. They must agree on every input, including
the "negative zero" (0xFFFF) and true-zero cases.
"""

import random
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pktpath.wire.checksum import (
    csum_fold, csum_partial, csum_tcpudp, ip_compute_csum, pseudo_header_sum, verifies,
)
from wirekit import ref_checksum, ref_ones_sum, ref_pseudo_header

SETTINGS = settings(max_examples=300, deadline=None)

# RFC 1071 section 3, "Numerical Examples": bytes 00 01 f2 03 f4 f5 f6 f7 sum to
# 0xddf2 (byte-order independent arithmetic), so the checksum is ~0xddf2 = 0x220d.
RFC1071 = bytes.fromhex("0001f203f4f5f6f7")


def test_rfc1071_example():
    assert ref_ones_sum(RFC1071) == 0xDDF2  # the reference itself reproduces the RFC
    assert csum_partial(RFC1071) == 0xDDF2
    assert csum_fold(csum_partial(RFC1071)) == 0x220D
    assert ip_compute_csum(RFC1071) == 0x220D
    assert verifies(RFC1071 + b"\x22\x0d")
    assert not verifies(RFC1071 + b"\x22\x0c")
    # the RFC's intermediate, unfolded sum 0x2ddf0 folds to the same value
    assert csum_fold(0x2DDF0) == 0x220D


def test_ipv4_header_example():
    header = bytes.fromhex("450000730000400040110000c0a80001c0a800c7")
    assert ip_compute_csum(header) == 0xB861 == ref_checksum(header)
    assert verifies(header[:10] + b"\xb8\x61" + header[12:])


# ----------------------------------------------------------- edge cases


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 19, 20, 1500, 1501])
def test_all_zero(n):
    data = bytes(n)
    assert csum_partial(data) == 0 == ref_ones_sum(data)
    assert ip_compute_csum(data) == 0xFFFF == ref_checksum(data)
    assert not verifies(data)  # a true zero is not "all ones"


@pytest.mark.parametrize("n", [2, 4, 20, 1500])
def test_all_ones_even(n):
    data = b"\xff" * n
    assert csum_partial(data) == 0xFFFF == ref_ones_sum(data)
    assert ip_compute_csum(data) == 0 == ref_checksum(data)
    assert verifies(data)


@pytest.mark.parametrize("n", [1, 3, 21, 1501])
def test_all_ones_odd(n):
    data = b"\xff" * n  # the last word is 0xff00
    assert csum_partial(data) == ref_ones_sum(data)
    assert ip_compute_csum(data) == ref_checksum(data)
    assert not verifies(data)


def test_negative_zero_is_not_folded_to_zero():
    # 0x8000 + 0x7fff == 0xffff; 0xffff + 0x0001 wraps to 0x0001
    assert csum_partial(b"\x80\x00\x7f\xff") == 0xFFFF
    assert csum_partial(b"\xff\xff\x00\x01") == 0x0001
    assert csum_partial(b"", 0xFFFF) == 0xFFFF
    assert csum_partial(b"", 0x1FFFE) == 0xFFFF
    assert csum_partial(b"", 0) == 0
    assert csum_fold(0) == 0xFFFF
    assert csum_fold(0xFFFF) == 0
    assert csum_fold(0xFFFF * 7) == 0
    assert csum_fold(0x10000) == 0xFFFE  # 0x10000 folds to 0x0001


def test_odd_byte_is_the_high_half_of_a_word():
    assert csum_partial(b"\x12") == 0x1200
    assert csum_partial(b"\x00\x00\x12") == 0x1200
    assert ip_compute_csum(b"\x12\x34\x56") == ~(0x1234 + 0x5600) & 0xFFFF


# ------------------------------------------------------------ randomized


@SETTINGS
@given(st.binary(max_size=300), st.integers(0, 2**32 - 1))
def test_csum_partial_matches_reference(data, initial):
    assert csum_partial(data) == ref_ones_sum(data)
    assert csum_partial(data, initial) == ref_ones_sum(data, initial)


@SETTINGS
@given(st.integers(0, 2**48))
def test_csum_fold_matches_reference(partial):
    assert csum_fold(partial) == ~ref_ones_sum(b"", partial) & 0xFFFF


@SETTINGS
@given(st.lists(st.binary(max_size=64).map(lambda b: b[: len(b) & ~1]), max_size=5), st.binary(max_size=64))
def test_ip_compute_csum_parts(even_parts, last):
    parts = [*even_parts, last]
    joined = b"".join(parts)
    assert ip_compute_csum(joined) == ref_checksum(joined)
    assert ip_compute_csum(*parts) == ref_checksum(joined)


@SETTINGS
@given(st.binary(min_size=2, max_size=300), st.data())
def test_checksum_written_back_verifies(data, draw):
    off = draw.draw(st.integers(0, len(data) // 2 - 1)) * 2
    zeroed = data[:off] + b"\x00\x00" + data[off + 2:]
    check = ip_compute_csum(zeroed)
    assert check == ref_checksum(zeroed)
    message = zeroed[:off] + struct.pack("!H", check) + zeroed[off + 2:]
    assert ref_ones_sum(message) == 0xFFFF  # the reference agrees it is right
    assert verifies(message)
    # any single-bit error is detected
    bit = draw.draw(st.integers(0, len(message) * 8 - 1))
    flipped = bytearray(message)
    flipped[bit // 8] ^= 0x80 >> (bit % 8)
    assert not verifies(bytes(flipped))


@SETTINGS
@given(st.binary(max_size=300), st.integers(0, 2**17))
def test_verifies_matches_reference(data, initial):
    assert verifies(data) == (ref_ones_sum(data) == 0xFFFF)
    assert verifies(data, initial) == (ref_ones_sum(data, initial) == 0xFFFF)


@SETTINGS
@given(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.sampled_from([6, 17]),
       st.binary(max_size=60).map(lambda b: b[: len(b) & ~1]), st.binary(max_size=200))
def test_csum_tcpudp_matches_pseudo_header_reference(saddr, daddr, proto, header, payload):
    length = len(header) + len(payload)
    expect = ref_checksum(ref_pseudo_header(saddr, daddr, proto, length) + header + payload)
    assert csum_tcpudp(saddr, daddr, proto, header, payload) == expect
    assert csum_fold(pseudo_header_sum(saddr, daddr, proto, length)) == ref_checksum(
        ref_pseudo_header(saddr, daddr, proto, length))


def test_seeded_bulk_odd_and_even_lengths():
    """Many more inputs than hypothesis draws, at every length 0..257."""
    rng = random.Random(1071)
    for n in range(258):
        for _ in range(12):
            mode = rng.random()
            if mode < 0.1:
                data = bytes(n)
            elif mode < 0.2:
                data = b"\xff" * n
            elif mode < 0.3:
                data = bytes(rng.choice((0, 0xFF)) for _ in range(n))
            else:
                data = rng.randbytes(n)
            init = rng.choice((0, rng.getrandbits(16), rng.getrandbits(32)))
            assert csum_partial(data, init) == ref_ones_sum(data, init), (data.hex(), init)
            assert ip_compute_csum(data) == ref_checksum(data), data.hex()
            assert verifies(data) == (ref_ones_sum(data) == 0xFFFF), data.hex()
