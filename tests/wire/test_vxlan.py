"""struct vxlanhdr (VxlanHdr) as vxlan_rcv checks it, with scapy's VXLAN as the oracle."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN

from pktpath.wire import SanityError, TruncatedError
from pktpath.wire.vxlan import VXLAN_HLEN, VXLAN_N_VID, VxlanHdr
from wirekit import raises_wire

ORACLE = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_vxlan_hdr_is_the_i_flag_and_the_vni_with_the_reserved_bits_zero():
    assert VxlanHdr(42).to_bytes() == bytes.fromhex("08000000 00002a00")
    assert VxlanHdr.from_bytes(bytes.fromhex("08000000 00002a00") + b"frame") == VxlanHdr(42)
    assert VxlanHdr(42) != (42,)


@given(vni=st.integers(0, VXLAN_N_VID - 1))
@ORACLE
def test_vxlan_hdr_agrees_with_scapy_both_ways(vni):
    inner = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / (b"x" * 20)
    theirs = bytes(VXLAN(vni=vni, flags=0x08) / inner)
    assert theirs[:VXLAN_HLEN] == VxlanHdr(vni).to_bytes()
    assert VxlanHdr.from_bytes(theirs).vni == vni
    assert VXLAN(VxlanHdr(vni).to_bytes() + bytes(inner)).vni == vni


@pytest.mark.parametrize("header, field", [
    ("00000000 00002a00", "flags"),   # the I flag clear
    ("0c000000 00002a00", "flags"),   # another flag (GBP's G, not configured here)
    ("08000001 00002a00", "flags"),   # a reserved bit of the first word
    ("08000000 00002a01", "reserved"),  # the last byte
])
def test_what_vxlan_rcv_would_drop_as_an_invalid_header_is_a_sanity_error(header, field):
    with raises_wire(SanityError, "vxlan", field):
        VxlanHdr.from_bytes(bytes.fromhex(header))


def test_a_datagram_shorter_than_the_header_is_truncated():
    with raises_wire(TruncatedError, "vxlan", "header"):
        VxlanHdr.from_bytes(bytes(7))


@pytest.mark.parametrize("vni", [-1, VXLAN_N_VID])
def test_a_vni_beyond_24_bits_is_refused(vni):
    with raises_wire(SanityError, "vxlan", "vni"):
        VxlanHdr(vni).to_bytes()
