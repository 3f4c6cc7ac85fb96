"""A host's IPv6 addresses and routes (services/l3/addrconf.py) as Linux's addrconf gives them.

The expected text is what Linux 6.18 listed (iproute2 6.1) for the same set-up in a network
namespace: veths with the topology's MACs, `ip addr add` before `ip link set up`, read once
DAD was done."""

import pytest

from pktpath.services.l3.addrconf import (
    IFA_F_PERMANENT, IFA_F_TENTATIVE, INFINITY_LIFE_TIME, Addrconf, Fib6Info, ipv6_addr_prefix)
from pktpath.topology import load, parse
from pktpath.wire.addr import ip6_from_str as ip6


def host(topology: str, name: str) -> Addrconf:
    config = load(topology).host(name)
    return Addrconf(config.interfaces, config.routes6, forwarding=config.forwarding, dad=False)


def shown(conf: Addrconf, dev: str) -> list[tuple[str, str, int]]:
    return [(str(a), a.scope_name, a.flags) for a in conf.addr_list(dev)]


def table_all(conf: Addrconf) -> list[str]:
    """ip -6 route show table all: the main table, then the local one."""
    return [str(r) for r in conf.routes()] + [str(r) for r in conf.routes("local")]


def test_an_interface_has_its_address_and_the_link_local_one_from_its_mac_both_permanent():
    a = host("default", "A")
    assert shown(a, "eth0") == [("2001:db8::1/64", "global", IFA_F_PERMANENT),
                                ("fe80::ff:fe00:a/64", "link", IFA_F_PERMANENT)]  # 02:..:0a, its U/L bit flipped
    assert all(x.valid_lft == x.prefered_lft == INFINITY_LIFE_TIME for x in a.addr_list("eth0"))


def test_lo_has_the_loopback_address_scope_host():
    assert shown(host("default", "B"), "lo") == [("::1/128", "host", IFA_F_PERMANENT)]


def test_addresses_are_usable_at_once_without_dad_so_none_is_tentative():
    a = host("default", "A")
    assert not any(x.flags & IFA_F_TENTATIVE for x in a.addr_list("eth0"))
    assert a.ipv6_chk_addr(ip6("2001:db8::1")) and a.ipv6_chk_addr(ip6("fe80::ff:fe00:a"), "eth0")
    assert not a.ipv6_chk_addr(ip6("2001:db8::2")) and not a.ipv6_chk_addr(ip6("::1"), "eth0")


def test_each_prefix_and_fe80_64_are_connected_routes_as_ip_6_route_lists_them():
    assert [str(r) for r in host("default", "A").routes()] == [
        "2001:db8::/64 dev eth0 proto kernel metric 256 pref medium",
        "fe80::/64 dev eth0 proto kernel metric 256 pref medium"]


def test_router_topology_hosts_tables_are_the_kernels():
    """A's `ip -6 route show table all` (its default route added with proto static)."""
    assert table_all(host("router", "A")) == [
        "2001:db8:1::/64 dev eth0 proto kernel metric 256 pref medium",
        "fe80::/64 dev eth0 proto kernel metric 256 pref medium",
        "default via 2001:db8:1::fe dev eth0 proto static metric 1024 pref medium",
        "local ::1 dev lo table local proto kernel metric 0 pref medium",
        "local 2001:db8:1::1 dev eth0 table local proto kernel metric 0 pref medium",
        "local fe80::ff:fe00:101 dev eth0 table local proto kernel metric 0 pref medium",
        "multicast ff00::/8 dev eth0 table local proto kernel metric 256 pref medium"]


def test_a_forwarding_host_has_its_prefixes_and_subnet_router_anycast_addresses_as_the_kernels():
    """R (net.ipv6.conf.all.forwarding=1): the same table Linux 6.18 shows for the same two links."""
    r = host("router", "R")
    assert table_all(r) == [
        "2001:db8:1::/64 dev eth0 proto kernel metric 256 pref medium",
        "2001:db8:2::/64 dev eth1 proto kernel metric 256 pref medium",
        "fe80::/64 dev eth0 proto kernel metric 256 pref medium",
        "fe80::/64 dev eth1 proto kernel metric 256 pref medium",
        "local ::1 dev lo table local proto kernel metric 0 pref medium",
        "anycast 2001:db8:1:: dev eth0 table local proto kernel metric 0 pref medium",
        "local 2001:db8:1::fe dev eth0 table local proto kernel metric 0 pref medium",
        "anycast 2001:db8:2:: dev eth1 table local proto kernel metric 0 pref medium",
        "local 2001:db8:2::fe dev eth1 table local proto kernel metric 0 pref medium",
        "anycast fe80:: dev eth0 table local proto kernel metric 0 pref medium",
        "anycast fe80:: dev eth1 table local proto kernel metric 0 pref medium",
        "local fe80::ff:fe00:1fe dev eth0 table local proto kernel metric 0 pref medium",
        "local fe80::ff:fe00:2fe dev eth1 table local proto kernel metric 0 pref medium",
        "multicast ff00::/8 dev eth0 table local proto kernel metric 256 pref medium",
        "multicast ff00::/8 dev eth1 table local proto kernel metric 256 pref medium"]


def test_an_interface_below_1280_has_no_ipv6_at_all():
    """ipv6_add_dev refuses it an inet6_dev: no link-local address, no routes."""
    config = parse({"host": [{"name": "R", "interface": [
        {"name": "eth0", "mac": "02:00:00:00:00:01", "addr": "10.0.0.1/24", "addr6": ["2001:db8::1/64"]},
        {"name": "eth1", "mac": "02:00:00:00:00:02", "addr": "10.0.1.1/24", "mtu": 1000}]}]}, "t").host("R")
    r = Addrconf(config.interfaces, config.routes6, dad=False)
    assert r.addr_list("eth1") == [] and "eth1" not in r.idev
    assert not any(route.dev == "eth1" for route in r.routes()) and r.addr_list("eth0")


def test_addresses_are_listed_by_scope_the_newest_of_each_first():
    """ipv6_link_dev_addr(): what Linux listed after adding 2001:db8:5::1/64, 2001:db8:3::1/48
    and fe80::99/64 to A's eth0, in that order, once it was up."""
    a = host("default", "A")
    for text, plen in (("2001:db8:5::1", 64), ("2001:db8:3::1", 48), ("fe80::99", 64)):
        a.inet6_addr_add("eth0", ip6(text), plen)
    assert [str(x) for x in a.addr_list("eth0")] == ["2001:db8:3::1/48", "2001:db8:5::1/64", "2001:db8::1/64",
                                                     "fe80::99/64", "fe80::ff:fe00:a/64"]
    assert [str(r) for r in a.routes()] == [  # fe80::99 is in fe80::/64: no second route for it
        "2001:db8::/64 dev eth0 proto kernel metric 256 pref medium",
        "2001:db8:3::/48 dev eth0 proto kernel metric 256 pref medium",
        "2001:db8:5::/64 dev eth0 proto kernel metric 256 pref medium",
        "fe80::/64 dev eth0 proto kernel metric 256 pref medium"]


def test_routes_are_in_fib6_walk_order_a_prefix_after_the_longer_ones_in_it():
    """What Linux listed for these `ip -6 route add`s (proto boot unless said), in any order."""
    a = host("default", "A")
    a.inet6_addr_add("eth0", ip6("2001:db8:5::1"), 64)
    a.inet6_addr_add("eth0", ip6("2001:db8:3::1"), 48)
    for dst, plen, gw, metric, proto in (("::", 0, "2001:db8::2", 1024, "boot"),
                                         ("2001:db8::", 32, "2001:db8::2", 1024, "static"),
                                         ("2001:db8:0:8000::", 49, "fe80::ff:fe00:b", 5, "boot"),
                                         ("3000::", 16, "2001:db8::2", 1024, "boot"),
                                         ("::", 0, "2001:db8::3", 7, "boot")):
        a.ip6_route_add(Fib6Info(ip6(dst), plen, "eth0", gateway=ip6(gw), metric=metric, protocol=proto))
    assert [str(r) for r in a.routes()] == [
        "2001:db8::/64 dev eth0 proto kernel metric 256 pref medium",
        "2001:db8:0:8000::/49 via fe80::ff:fe00:b dev eth0 metric 5 pref medium",
        "2001:db8:3::/48 dev eth0 proto kernel metric 256 pref medium",
        "2001:db8:5::/64 dev eth0 proto kernel metric 256 pref medium",
        "2001:db8::/32 via 2001:db8::2 dev eth0 proto static metric 1024 pref medium",
        "3000::/16 via 2001:db8::2 dev eth0 metric 1024 pref medium",
        "fe80::/64 dev eth0 proto kernel metric 256 pref medium",
        "default via 2001:db8::3 dev eth0 metric 7 pref medium",
        "default via 2001:db8::2 dev eth0 metric 1024 pref medium"]


def test_a_second_route_to_a_prefix_at_one_metric_is_refused_as_ip_says():
    a = host("default", "A")
    a.ip6_route_add(Fib6Info(0, 0, "eth0", gateway=ip6("2001:db8::2"), metric=1024, protocol="boot"))
    with pytest.raises(FileExistsError):  # RTNETLINK answers: File exists
        a.ip6_route_add(Fib6Info(0, 0, "eth0", gateway=ip6("2001:db8::3"), metric=1024, protocol="boot"))
    with pytest.raises(FileExistsError):  # the connected route's metric
        a.ip6_route_add(Fib6Info(ip6("2001:db8::"), 64, "eth0", metric=256, protocol="boot"))
    with pytest.raises(ValueError, match="host bits"):
        a.ip6_route_add(Fib6Info(ip6("2001:db8::1"), 64, "eth0"))


def test_each_device_has_its_own_connected_route_to_a_shared_prefix():
    topo = parse({"host": [{"name": "R", "interface": [
        {"name": "eth0", "mac": "02:00:00:00:00:01", "addr": "10.0.0.1/24", "addr6": ["fe80::1/64"]},
        {"name": "eth1", "mac": "02:00:00:00:00:02", "addr": "10.0.1.1/24", "addr6": ["fe80::1/64"]}]}]})
    r = Addrconf(topo.host("R").interfaces)
    assert [str(x) for x in r.routes()] == ["fe80::/64 dev eth0 proto kernel metric 256 pref medium",
                                            "fe80::/64 dev eth1 proto kernel metric 256 pref medium"]
    assert [str(x) for x in r.addr_list("eth1")] == ["fe80::ff:fe00:2/64", "fe80::1/64"]  # made at link-up: newer


@pytest.mark.parametrize("text, dev, error, message", [
    ("::", "eth0", ValueError, "Invalid address"),
    ("ff02::1", "eth0", ValueError, "Cannot assign multicast address"),
    ("::1", "eth0", ValueError, "Cannot assign loopback address on this device"),
    ("2001:db8::1", "eth0", FileExistsError, "address already assigned"),
])
def test_ipv6_add_addr_refuses_what_the_kernel_does_in_its_words(text, dev, error, message):
    with pytest.raises(error, match=message):
        host("default", "A").inet6_addr_add(dev, ip6(text), 64)


def test_ipv6_addr_prefix_keeps_the_first_bits():
    assert ipv6_addr_prefix(ip6("2001:db8:1:2:3:4:5:6"), 64) == ip6("2001:db8:1:2::")
    assert ipv6_addr_prefix(ip6("2001:db8::1"), 0) == 0 and ipv6_addr_prefix(ip6("::1"), 128) == 1
