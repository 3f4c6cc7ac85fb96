"""IPv6 route lookups and path MTU (services/l3/route6.py), against what Linux 6.18 answered.

The expectations come from network namespaces on Linux 6.18: `ip -6 route get` on a host with a
default route and on a router with two links (one of MTU 1300), and Packet Too Big messages sent
to a host with scapy, after which `ip -6 route get` showed what it had learned.
"""

import pytest

from pktpath.services.l3.addrconf import RT6_TABLE_LOCAL, Addrconf, Fib6Info
from pktpath.services.l3.route6 import (
    IP6_RT_MTU_EXPIRES, LOOPBACK_MTU, RTN_LOCAL, RTN_MULTICAST, RTN_UNICAST, Route6, fib6_lookup, rt6_need_strict,
    rt6_nexthop,
)
from pktpath.wire.addr import ip6_from_str

from fakes import Clock


def ip6(text: str) -> int:
    return ip6_from_str(text)


A0, A1 = ip6("2001:db8:1::1"), ip6("2001:db8:3::1")
A0LL, A1LL = ip6("fe80::ff:fe00:a"), ip6("fe80::ff:fe00:a1")
GW0, GW1 = ip6("2001:db8:1::2"), ip6("2001:db8:3::2")
FAR = ip6("2001:db8:2::1")


def host(*, forwarding: bool = False) -> Addrconf:
    """Host A: a0 (2001:db8:1::1/64, MTU 1500) and a1 (2001:db8:3::1/64, MTU 1400), a default
    route via 2001:db8:1::2 as `ip -6 route add default via` makes it (metric 1024, proto boot) and
    2001:db8:9::/48 via 2001:db8:3::2."""
    ac = Addrconf(forwarding=forwarding, dad=False)
    for dev, mac, addr in (("a0", "02:00:00:00:00:0a", A0), ("a1", "02:00:00:00:00:a1", A1)):
        ac.addrconf_add_dev(dev)
        ac.inet6_addr_add(dev, addr, 64)
        ac.addrconf_addr_gen(dev, bytes.fromhex(mac.replace(":", "")))
    ac.ip6_route_add(Fib6Info(0, 0, "a0", gateway=GW0, metric=1024, protocol="boot"))
    ac.ip6_route_add(Fib6Info(ip6("2001:db8:9::"), 48, "a1", gateway=GW1, metric=1024, protocol="static"))
    return ac


@pytest.fixture
def clock():
    return Clock(100.0)


@pytest.fixture
def rt6(clock):
    return Route6(host(), {"a0": 1500, "a1": 1400}, clock=clock)


def test_link_local_multicast_and_loopback_destinations_need_a_device():
    assert rt6_need_strict(ip6("fe80::1")) and rt6_need_strict(ip6("ff02::1")) and rt6_need_strict(ip6("::1"))
    assert rt6_need_strict(ip6("ff0e::1"))  # any multicast scope
    assert not rt6_need_strict(FAR) and not rt6_need_strict(ip6("fd00::1"))


def test_an_own_address_is_local_and_goes_out_of_lo(rt6):
    rt = rt6.ip6_route_output(A1)
    assert (rt.type, rt.dev, rt.fib_dev, rt.nexthop, rt.mtu) == (RTN_LOCAL, "lo", "a1", A1, LOOPBACK_MTU)
    assert rt.is_local and rt.f6i.table == RT6_TABLE_LOCAL
    # ip -6 route get 2001:db8:1::1 on Linux 6.18 (with src, as ip6_route_get_saddr fills it)
    assert str(rt6.ip6_route_output(A0)) == "local 2001:db8:1::1 from :: dev lo table local proto kernel metric 0 " \
                                            "pref medium"


def test_an_on_link_destination_is_its_own_next_hop(rt6):
    rt = rt6.ip6_route_output(ip6("2001:db8:1::77"))
    assert (rt.type, rt.dev, rt.nexthop, rt.mtu, rt.hop_limit) == (RTN_UNICAST, "a0", ip6("2001:db8:1::77"), 1500, 64)
    assert (rt.f6i.dst_len, rt.f6i.metric, rt.f6i.protocol) == (64, 256, "kernel")


def test_the_default_route_reaches_the_rest_through_its_gateway(rt6):
    rt = rt6.ip6_route_output(FAR)
    assert (rt.dev, rt.nexthop, rt.f6i.dst_len) == ("a0", GW0, 0)
    assert rt6_nexthop(rt.f6i, FAR) == GW0
    assert str(rt) == "2001:db8:2::1 from :: via 2001:db8:1::2 dev a0 metric 1024 pref medium"


def test_the_longest_prefix_wins_then_the_lowest_metric(rt6):
    assert rt6.ip6_route_output(ip6("2001:db8:9::5")).nexthop == GW1  # /48 over ::/0
    ac = rt6.addrconf
    ac.ip6_route_add(Fib6Info(ip6("2001:db8:9:1::"), 64, "a0", gateway=GW0, metric=2000, protocol="static"))
    ac.ip6_route_add(Fib6Info(ip6("2001:db8:9:1::"), 64, "a1", gateway=GW1, metric=100, protocol="static"))
    assert rt6.ip6_route_output(ip6("2001:db8:9:1::5")).dev == "a1"  # the lower metric of the /64s
    assert rt6.ip6_route_output(ip6("2001:db8:9:1::5"), oif="a0").dev == "a0"  # tied to a0: its own


def test_of_equal_routes_the_first_added_wins_unless_one_is_on_the_device_asked_for(rt6):
    """The same prefix on two links: two connected routes, metric 256 both."""
    ac = rt6.addrconf
    ac.inet6_addr_add("a1", ip6("2001:db8:5::a1"), 64)
    ac.inet6_addr_add("a0", ip6("2001:db8:5::a0"), 64)
    assert rt6.ip6_route_output(ip6("2001:db8:5::9")).dev == "a1"
    assert rt6.ip6_route_input(ip6("2001:db8:5::9"), "a0").dev == "a0"  # rt6_check_dev's score
    assert fib6_lookup(ac, ip6("2001:db8:5::9"), "a0").dev == "a0"


def test_a_routes_own_mtu_and_hop_limit_are_its_dsts(rt6):
    """An RA's default route carries RTAX_MTU and RTAX_HOPLIMIT (ndisc_router_discovery)."""
    rt6.addrconf.ip6_route_add(Fib6Info(ip6("2001:db8:8::"), 48, "a0", gateway=GW0, metric=1024, protocol="ra",
                                        mtu=1400, hoplimit=32))
    rt = rt6.ip6_route_output(ip6("2001:db8:8::1"))
    assert (rt.mtu, rt.hop_limit) == (1400, 32)
    assert not rt6.ip6_update_pmtu(ip6("2001:db8:8::1"), 1450)  # not below the route's 1400
    assert rt6.ip6_update_pmtu(ip6("2001:db8:8::1"), 1300) and rt6.ip6_route_output(ip6("2001:db8:8::1")).mtu == 1300


def test_a_link_local_destination_goes_out_of_the_device_asked_for(rt6):
    assert rt6.ip6_route_output(ip6("fe80::1"), oif="a1").dev == "a1"
    # without one (a socket would refuse it: no scope id), the first fe80::/64 route
    assert rt6.ip6_route_output(ip6("fe80::1")).dev == "a0"


def test_an_oif_ties_every_output_lookup_to_its_device(rt6):
    """Linux 6.18: `ip -6 route get 2001:db8:7::1 oif r1` with the default route out of r0:
    Network is unreachable; with oif r0 the default route."""
    assert rt6.ip6_route_output(FAR, oif="a1") is None
    assert rt6.ip6_route_output(FAR, oif="a0").nexthop == GW0
    assert rt6.ip6_route_output(A0, oif="a1") is None  # the local route is a0's, and so is 2001:db8:1::/64


def test_a_multicast_destination_takes_its_devices_ff00_route(rt6):
    rt = rt6.ip6_route_output(ip6("ff02::1"), oif="a1")
    assert (rt.type, rt.dev, rt.nexthop, rt.f6i.table) == (RTN_MULTICAST, "a1", ip6("ff02::1"), RT6_TABLE_LOCAL)
    assert str(rt).startswith("multicast ff02::1 from :: dev a1 table local proto kernel metric 256")


def test_no_route_without_a_default():
    ac = Addrconf(dad=False)
    ac.addrconf_add_dev("a0")
    ac.inet6_addr_add("a0", A0, 64)
    assert fib6_lookup(ac, FAR) is None
    assert Route6(ac, {"a0": 1500}).ip6_route_output(FAR) is None
    assert fib6_lookup(ac, ip6("2001:db8:1::9")).dev == "a0"


def test_input_lookups_send_a_link_local_destination_back_out_of_its_link(rt6):
    """A router finds fe80::5 coming in on r1 only on r1 (Linux forwards it back, with a redirect)."""
    assert rt6.ip6_route_input(ip6("fe80::5"), "a1").dev == "a1"
    assert rt6.ip6_route_input(ip6("fe80::5"), "a0").dev == "a0"
    assert rt6.ip6_route_input(ip6("2001:db8:1::5"), "a1").dev == "a0"
    assert rt6.ip6_route_input(A1LL, "a1").type == RTN_LOCAL
    assert rt6.ip6_route_input(A1LL, "a0").type == RTN_UNICAST  # a1's link-local address is not a0's


def test_a_packet_too_big_lowers_the_path_mtu_of_its_destination_for_ten_minutes(rt6, clock):
    assert rt6.ip6_update_pmtu(FAR, 1300)
    rt = rt6.ip6_route_output(FAR)
    assert (rt.mtu, rt.expires) == (1300, IP6_RT_MTU_EXPIRES)
    assert str(rt) == "2001:db8:2::1 from :: via 2001:db8:1::2 dev a0 metric 1024 expires 600sec mtu 1300 " \
                      "pref medium"
    assert rt6.ip6_route_output(ip6("2001:db8:2::2")).mtu == 1500  # per destination, not per gateway
    clock.t += 3.4
    assert str(rt6.ip6_route_output(FAR)).endswith("expires 596sec mtu 1300 pref medium")
    clock.t = 100.0 + IP6_RT_MTU_EXPIRES - 0.1
    assert rt6.path_mtu(FAR, "a0") == 1300
    clock.t = 100.0 + IP6_RT_MTU_EXPIRES
    assert rt6.path_mtu(FAR, "a0") == 1500 and rt6.learned_pmtu(FAR) is None
    assert rt6.ip6_route_output(FAR).expires is None


def test_linux_ignores_a_packet_too_big_below_1280_or_not_below_the_path_mtu(rt6):
    """Linux 6.18: PTBs of 1000 and 1279 taught nothing, 1280 and 1400 were learned, 1600 on a
    1500-byte link was not (RFC 8201 asks for 1280 at least; Linux drops the lower ones)."""
    assert not rt6.ip6_update_pmtu(FAR, 1000)
    assert not rt6.ip6_update_pmtu(FAR, 1279)
    assert not rt6.ip6_update_pmtu(FAR, 1600) and not rt6.ip6_update_pmtu(FAR, 1500)
    assert rt6.ip6_route_output(FAR).mtu == 1500
    assert rt6.ip6_update_pmtu(FAR, 1280)
    assert rt6.ip6_route_output(FAR).mtu == 1280


def test_a_smaller_mtu_restarts_the_time_a_larger_one_changes_nothing(rt6, clock):
    rt6.ip6_update_pmtu(FAR, 1400)
    clock.t += 100
    assert not rt6.ip6_update_pmtu(FAR, 1450)
    assert rt6.learned_pmtu(FAR) == (1400, IP6_RT_MTU_EXPIRES - 100)
    assert rt6.ip6_update_pmtu(FAR, 1350)
    assert rt6.learned_pmtu(FAR) == (1350, IP6_RT_MTU_EXPIRES)


def test_the_path_mtu_never_exceeds_the_devices(rt6):
    assert not rt6.ip6_update_pmtu(ip6("2001:db8:9::5"), 1400)  # a1's MTU is 1400 already
    assert rt6.ip6_update_pmtu(ip6("2001:db8:9::5"), 1300)
    rt6.mtus["a1"] = 1290  # the device's MTU went down under what was learned
    assert rt6.ip6_route_output(ip6("2001:db8:9::5")).mtu == 1290


def test_nothing_is_learned_for_our_own_addresses_or_without_a_route(rt6):
    assert not rt6.ip6_update_pmtu(A0, 1300)
    ac = Addrconf()
    assert not Route6(ac, {}).ip6_update_pmtu(FAR, 1300)


def test_flushing_forgets_every_learned_mtu(rt6):
    rt6.ip6_update_pmtu(FAR, 1300)
    rt6.rt6_flush_exceptions()
    assert rt6.ip6_route_output(FAR).mtu == 1500
