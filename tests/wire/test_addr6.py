"""IPv6 address helpers (pktpath.wire.addr) against the standard library, the RFCs' and the
kernel's known values, and what Linux itself configured on a veth in a network namespace."""

import ipaddress
import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pktpath.wire.addr import (
    IN6ADDR_ALLNODES, IN6ADDR_ALLROUTERS, IN6ADDR_ANY, IN6ADDR_LINKLOCAL_ALLNODES, IN6ADDR_LINKLOCAL_ALLROUTERS,
    IN6ADDR_LOOPBACK, IPV6_ADDR_ANY, IPV6_ADDR_COMPATv4, IPV6_ADDR_LINKLOCAL, IPV6_ADDR_LOOPBACK, IPV6_ADDR_MAPPED,
    IPV6_ADDR_MC_SCOPE, IPV6_ADDR_MULTICAST, IPV6_ADDR_SCOPE_GLOBAL, IPV6_ADDR_SCOPE_INVALID,
    IPV6_ADDR_SCOPE_LINKLOCAL, IPV6_ADDR_SCOPE_NODELOCAL, IPV6_ADDR_SCOPE_ORGLOCAL, IPV6_ADDR_SCOPE_SITELOCAL,
    IPV6_ADDR_SITELOCAL, IPV6_ADDR_UNICAST, addrconf_addr_gen_eui64, addrconf_addr_solict_mult, addrconf_ifid_eui48,
    ip6_from_str, ip6_to_str, ipv6_addr_any, ipv6_addr_is_ll_all_nodes, ipv6_addr_is_ll_all_routers,
    ipv6_addr_is_multicast, ipv6_addr_is_solict_mult, ipv6_addr_loopback, ipv6_addr_scope, ipv6_addr_set_v4mapped,
    ipv6_addr_src_scope, ipv6_addr_type, ipv6_addr_v4mapped, ipv6_eth_mc_map, mac_from_str,
)
from pktpath.wire.errors import SanityError

A = ip6_from_str
addrs = st.one_of(
    st.integers(0, (1 << 128) - 1),
    # the prefixes __ipv6_addr_type tells apart, with random low bits
    st.tuples(st.sampled_from([0, 0xFF00, 0xFF01, 0xFF02, 0xFF05, 0xFF0E, 0xFE80, 0xFEC0, 0xFC00, 0xFD00, 0xE000]),
              st.integers(0, (1 << 112) - 1)).map(lambda t: t[0] << 112 | t[1]),
    st.integers(0, 0xFFFFFFFF),                               # ::/96
    st.integers(0, 0xFFFFFFFF).map(lambda v: 0xFFFF << 32 | v),  # ::ffff:0:0/96
)


def std(addr: int) -> ipaddress.IPv6Address:
    return ipaddress.IPv6Address(addr)


# -- text ------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(addrs)
def test_text_round_trips_through_the_standard_library(addr):
    text = ip6_to_str(addr)
    assert int(std(text)) == addr
    assert ip6_from_str(str(std(addr))) == addr
    assert ip6_from_str(std(addr).exploded) == addr
    assert text == socket.inet_ntop(socket.AF_INET6, addr.to_bytes(16, "big"))


@pytest.mark.parametrize("text, value", [
    ("::", 0),
    ("::1", 1),
    ("2001:db8::1", 0x20010DB8 << 96 | 1),
    ("fe80::211:22ff:fe33:4455", 0xFE80 << 112 | 0x021122FFFE334455),
    ("::ffff:192.0.2.1", 0xFFFF << 32 | 0xC0000201),
    ("FF02::1:FF0E:8C6C", 0xFF02 << 112 | 1 << 32 | 0xFF0E8C6C),
])
def test_known_addresses_read_and_print_in_rfc_5952_form(text, value):
    assert ip6_from_str(text) == value
    assert ip6_to_str(value) == text.lower()


@pytest.mark.parametrize("text", [
    "", "1.2.3.4", "::g", "1:2:3:4:5:6:7:8:9", "1::2::3", "fe80::1%eth0", "::\x00", " ::1", "02:00:00:00:00:01",
    None, 1, b"::1",
])
def test_anything_but_ipv6_text_is_a_sanity_error(text):
    with pytest.raises(SanityError) as info:
        ip6_from_str(text)
    assert info.value.proto == "ipv6" and info.value.field == "address"


def test_the_well_known_addresses():
    assert IN6ADDR_ANY == int(std("::"))
    assert IN6ADDR_LOOPBACK == int(std("::1"))
    assert IN6ADDR_LINKLOCAL_ALLNODES == IN6ADDR_ALLNODES == int(std("ff02::1"))
    assert IN6ADDR_LINKLOCAL_ALLROUTERS == IN6ADDR_ALLROUTERS == int(std("ff02::2"))
    assert ipv6_addr_any(IN6ADDR_ANY) and not ipv6_addr_any(IN6ADDR_LOOPBACK)
    assert ipv6_addr_loopback(IN6ADDR_LOOPBACK) and not ipv6_addr_loopback(A("::2"))
    assert ipv6_addr_is_ll_all_nodes(A("ff02::1")) and not ipv6_addr_is_ll_all_nodes(A("ff01::1"))
    assert ipv6_addr_is_ll_all_routers(A("ff02::2")) and not ipv6_addr_is_ll_all_routers(A("ff05::2"))


# -- classes and scopes (__ipv6_addr_type) ---------------------------------------------


@pytest.mark.parametrize("text, type_, src_scope", [
    ("::", IPV6_ADDR_ANY, IPV6_ADDR_SCOPE_INVALID),
    ("::1", IPV6_ADDR_LOOPBACK | IPV6_ADDR_UNICAST, IPV6_ADDR_SCOPE_LINKLOCAL),  # addr-select 3.4
    ("::2", IPV6_ADDR_COMPATv4 | IPV6_ADDR_UNICAST, IPV6_ADDR_SCOPE_GLOBAL),
    ("::192.0.2.1", IPV6_ADDR_COMPATv4 | IPV6_ADDR_UNICAST, IPV6_ADDR_SCOPE_GLOBAL),
    ("::ffff:192.0.2.1", IPV6_ADDR_MAPPED, IPV6_ADDR_SCOPE_GLOBAL),
    ("::1:0:0:0", IPV6_ADDR_UNICAST, IPV6_ADDR_SCOPE_GLOBAL),
    ("fe80::1", IPV6_ADDR_LINKLOCAL | IPV6_ADDR_UNICAST, IPV6_ADDR_SCOPE_LINKLOCAL),
    ("febf:ffff::1", IPV6_ADDR_LINKLOCAL | IPV6_ADDR_UNICAST, IPV6_ADDR_SCOPE_LINKLOCAL),
    ("fec0::1", IPV6_ADDR_SITELOCAL | IPV6_ADDR_UNICAST, IPV6_ADDR_SCOPE_SITELOCAL),
    ("fc00::1", IPV6_ADDR_UNICAST, IPV6_ADDR_SCOPE_GLOBAL),
    ("fd12:3456::1", IPV6_ADDR_UNICAST, IPV6_ADDR_SCOPE_GLOBAL),
    ("2001:db8::1", IPV6_ADDR_UNICAST, IPV6_ADDR_SCOPE_GLOBAL),
    ("e000::1", IPV6_ADDR_UNICAST, IPV6_ADDR_SCOPE_GLOBAL),
    ("fe00::1", IPV6_ADDR_UNICAST, IPV6_ADDR_SCOPE_GLOBAL),
    ("100::1", IPV6_ADDR_UNICAST, IPV6_ADDR_SCOPE_GLOBAL),
    ("ff01::1", IPV6_ADDR_MULTICAST | IPV6_ADDR_LOOPBACK, IPV6_ADDR_SCOPE_NODELOCAL),
    ("ff02::1", IPV6_ADDR_MULTICAST | IPV6_ADDR_LINKLOCAL, IPV6_ADDR_SCOPE_LINKLOCAL),
    ("ff12::1234", IPV6_ADDR_MULTICAST | IPV6_ADDR_LINKLOCAL, IPV6_ADDR_SCOPE_LINKLOCAL),
    ("ff05::2", IPV6_ADDR_MULTICAST | IPV6_ADDR_SITELOCAL, IPV6_ADDR_SCOPE_SITELOCAL),
    ("ff08::1", IPV6_ADDR_MULTICAST, IPV6_ADDR_SCOPE_ORGLOCAL),
    ("ff0e::1", IPV6_ADDR_MULTICAST, IPV6_ADDR_SCOPE_GLOBAL),
    ("ff00::1", IPV6_ADDR_MULTICAST, 0),
])
def test_ipv6_addr_type_gives_the_kernels_class_and_scope(text, type_, src_scope):
    assert ipv6_addr_type(A(text)) == type_
    assert ipv6_addr_src_scope(A(text)) == src_scope
    assert ipv6_addr_scope(A(text)) == type_ & 0xF0


@settings(max_examples=400, deadline=None)
@given(addrs)
def test_ipv6_addr_type_agrees_with_the_standard_library(addr):
    t, s = ipv6_addr_type(addr), std(addr)
    assert bool(t & IPV6_ADDR_MULTICAST) == s.is_multicast == ipv6_addr_is_multicast(addr)
    assert bool(t & IPV6_ADDR_MAPPED) == (s.ipv4_mapped is not None) == ipv6_addr_v4mapped(addr)
    assert (t == IPV6_ADDR_ANY) == s.is_unspecified
    if not s.is_multicast:
        assert bool(t & IPV6_ADDR_LINKLOCAL) == s.is_link_local
        assert bool(t & IPV6_ADDR_SITELOCAL) == s.is_site_local
        assert bool(t & IPV6_ADDR_LOOPBACK) == s.is_loopback
        assert bool(t & IPV6_ADDR_UNICAST) == (not s.is_unspecified and s.ipv4_mapped is None)
    else:
        assert IPV6_ADDR_MC_SCOPE(addr) == s.packed[1] & 0x0F
        assert ipv6_addr_src_scope(addr) == IPV6_ADDR_MC_SCOPE(addr)


def test_a_v4_mapped_address_is_made_from_an_ipv4_int():
    assert ipv6_addr_set_v4mapped(0xC0000201) == A("::ffff:192.0.2.1")
    assert ipv6_addr_v4mapped(ipv6_addr_set_v4mapped(0))


# -- what neighbour discovery and the link layer need ---------------------------------


@pytest.mark.parametrize("addr, solicited", [
    ("2001:db8::1:800:200e:8c6c", "ff02::1:ff0e:8c6c"),  # RFC 4291 2.7.1's example
    ("fe80::211:22ff:fe33:4455", "ff02::1:ff33:4455"),
    ("::1", "ff02::1:ff00:1"),
    ("2001:db8::ffff:ffff", "ff02::1:ffff:ffff"),
])
def test_the_solicited_node_address_is_ff02_1_ff_and_the_low_24_bits(addr, solicited):
    assert addrconf_addr_solict_mult(A(addr)) == A(solicited)
    assert ipv6_addr_is_solict_mult(A(solicited))
    assert std(addrconf_addr_solict_mult(A(addr))) in ipaddress.IPv6Network("ff02::1:ff00:0/104")


def test_only_ff02_1_ff00_0_104_is_solicited_node():
    assert not ipv6_addr_is_solict_mult(A("ff02::1"))
    assert not ipv6_addr_is_solict_mult(A("ff02::1:fe00:1"))
    assert not ipv6_addr_is_solict_mult(A("ff05::1:ff00:1"))


@pytest.mark.parametrize("group, mac", [
    ("ff02::1", "33:33:00:00:00:01"),
    ("ff02::1:ff0e:8c6c", "33:33:ff:0e:8c:6c"),
    ("ff05::1:3", "33:33:00:01:00:03"),
    ("ff0e::1234:5678:9abc", "33:33:56:78:9a:bc"),
])
def test_a_multicast_address_maps_to_33_33_and_its_low_32_bits(group, mac):
    assert ipv6_eth_mc_map(A(group)) == mac_from_str(mac)


@pytest.mark.parametrize("mac, link_local", [
    ("00:11:22:33:44:55", "fe80::211:22ff:fe33:4455"),
    # what Linux 6.18 itself gave a veth with this MAC (ip -6 addr in a netns)
    ("02:00:00:00:00:02", "fe80::ff:fe00:2"),
    ("ff:ff:ff:ff:ff:ff", "fe80::fdff:ffff:feff:ffff"),
])
def test_the_eui64_link_local_address_flips_the_universal_local_bit(mac, link_local):
    assert addrconf_addr_gen_eui64(mac_from_str(mac)) == A(link_local)
    assert addrconf_ifid_eui48(mac_from_str(mac)) == A(link_local).to_bytes(16, "big")[8:]


def test_a_dev_id_replaces_ff_fe_and_keeps_the_universal_local_bit():
    assert addrconf_ifid_eui48(mac_from_str("00:11:22:33:44:55"), dev_id=0x1234) == bytes.fromhex("0011221234334455")


@pytest.mark.parametrize("mac", [b"", b"\x00" * 5, b"\x00" * 8])
def test_no_eui48_interface_id_without_a_6_byte_mac(mac):
    with pytest.raises(SanityError):
        addrconf_ifid_eui48(mac)
