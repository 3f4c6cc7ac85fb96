"""struct vlan_hdr (VlanHdr) and eth_type_vlan: the tags skb_vlan_untag() takes off one at a time,
with scapy's Dot1Q/Dot1AD as the oracle for stacked and 802.1ad tags."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.l2 import Dot1AD, Dot1Q, Ether
from scapy.packet import Raw

from pktpath.wire import SanityError, TruncatedError
from pktpath.wire.ethernet import (ETH_HLEN, ETH_P_8021AD, ETH_P_8021Q, ETH_P_ARP, ETH_P_IP, ETH_P_IPV6,
                                   VLAN_HLEN, EthHdr, VlanHdr, eth_type_vlan)
from wirekit import MAC_A, MAC_B, raises_wire

ORACLE = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_vlan_hdr_round_trips_and_splits_the_tci():
    tag = VlanHdr(0xB02A, ETH_P_IP)  # PCP 5, DEI 1, VID 42
    assert tag.to_bytes() == b"\xb0\x2a\x08\x00"
    assert VlanHdr.from_bytes(tag.to_bytes() + b"rest") == tag
    assert tag.vlan_id == 42
    assert VlanHdr(0xE000, ETH_P_IP).vlan_id == 0  # a priority tag: PCP 7, VLAN 0


def test_vlan_hdr_is_not_equal_to_a_plain_tuple():
    assert VlanHdr(42, ETH_P_IP) != (42, ETH_P_IP)


@pytest.mark.parametrize("length", [0, 1, 3])
def test_vlan_hdr_shorter_than_a_tag_is_truncated(length):
    with raises_wire(TruncatedError, "ethernet", "vlan"):
        VlanHdr.from_bytes(b"\x00\x2a\x08\x00"[:length])


def test_vlan_hdr_keeps_an_8023_length_for_the_receiver_to_judge():
    assert VlanHdr.from_bytes(b"\x00\x00\x00\x2e").h_vlan_encapsulated_proto == 0x002E


@pytest.mark.parametrize("fields", [(0x10000, ETH_P_IP), (-1, ETH_P_IP), (0, 0x10000)])
def test_vlan_hdr_fields_out_of_range_are_refused(fields):
    with raises_wire(SanityError, "ethernet", "vlan"):
        VlanHdr(*fields).to_bytes()


@pytest.mark.parametrize("ethertype, vlan", [(ETH_P_8021Q, True), (ETH_P_8021AD, True), (ETH_P_IP, False),
                                             (ETH_P_ARP, False), (ETH_P_IPV6, False), (0x9100, False)])
def test_eth_type_vlan_is_8021q_or_8021ad(ethertype, vlan):
    assert eth_type_vlan(ethertype) is vlan


def test_an_8021ad_frame_leaves_its_tag_for_vlan_hdr():
    raw = bytes(Ether(dst="02:00:00:00:00:02", src="02:00:00:00:00:01") / Dot1AD(vlan=42) / Raw(b"x" * 46))
    eth = EthHdr.from_bytes(raw)
    assert (eth.h_proto, eth.vlan_tci, eth.header_len) == (ETH_P_8021AD, None, ETH_HLEN)
    assert VlanHdr.from_bytes(raw[ETH_HLEN:]).vlan_id == 42


@ORACLE
@given(outer=st.sampled_from([Dot1Q, Dot1AD]), tags=st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=8),
       inner=st.integers(0x0600, 0xFFFF).filter(lambda t: not eth_type_vlan(t)))
def test_stacked_tags_as_scapy_builds_them(outer, tags, inner):
    pkt = Ether(dst="02:00:00:00:00:02", src="02:00:00:00:00:01")
    for i, tci in enumerate(tags):
        layer = outer if i == 0 else Dot1Q
        pkt = pkt / layer(prio=tci >> 13, dei=tci >> 12 & 1, vlan=tci & 0x0FFF)
    raw = bytes(pkt / Raw(b"x" * 4))
    raw = raw[:ETH_HLEN + VLAN_HLEN * len(tags) - 2] + inner.to_bytes(2, "big") + raw[ETH_HLEN + VLAN_HLEN * len(tags):]
    off, seen = ETH_HLEN, []
    proto = int.from_bytes(raw[12:14], "big")
    while eth_type_vlan(proto):
        tag = VlanHdr.from_bytes(raw[off:])
        seen.append(tag.h_vlan_TCI)
        proto, off = tag.h_vlan_encapsulated_proto, off + VLAN_HLEN
    assert seen == tags and proto == inner and raw[off:] == b"x" * 4


def test_pktpath_tags_parse_in_scapy():
    raw = (MAC_B + MAC_A + ETH_P_8021AD.to_bytes(2, "big") + VlanHdr(0x002A, ETH_P_8021Q).to_bytes()
           + VlanHdr(0x6007, ETH_P_IP).to_bytes() + b"x" * 20)
    s = Ether(raw)
    assert (s[Dot1AD].vlan, s[Dot1AD].type) == (42, ETH_P_8021Q)
    assert (s[Dot1Q].prio, s[Dot1Q].vlan, s[Dot1Q].type) == (3, 7, ETH_P_IP)
