"""IPv6 in topology files: addr6 and IPv6 routes load as written, and what Linux's
`ip -6 addr add` / `ip -6 route add` refuse is a clear TopologyError naming the key."""

import ipaddress

import pytest

from pktpath.topology import TopologyError, load, parse

from test_topology import iface

V6 = ipaddress.IPv6Interface


def test_default_and_lossy_hosts_are_dual_stack_on_one_documentation_prefix():
    for name in ("default", "lossy"):
        topo = load(name)
        assert topo.host("A").interface("eth0").addr6 == (V6("2001:db8::1/64"),)
        assert topo.host("B").interface("eth0").addr6 == (V6("2001:db8::2/64"),)
        assert topo.host("A").routes6 == ()


def test_router_hosts_have_ipv6_default_routes_via_r_on_both_links():
    topo = load("router")
    (route,) = topo.host("A").routes6
    assert (str(route.dst), str(route.via), route.dev, route.metric) == ("::/0", "2001:db8:1::fe", "eth0", 1024)
    (route,) = topo.host("B").routes6
    assert (str(route.dst), str(route.via), route.dev) == ("::/0", "2001:db8:2::fe", "eth0")
    assert topo.host("R").interface("eth0").addr6 == (V6("2001:db8:1::fe/64"),)
    assert topo.host("R").interface("eth1").addr6 == (V6("2001:db8:2::fe/64"),)
    assert topo.host("R").interface("eth1").mtu == 1280  # IPv6's minimum: the smallest link it runs on
    (route4,) = topo.host("A").routes  # the IPv4 routes stay where they were
    assert route4.dst == ipaddress.IPv4Network("0.0.0.0/0")


def one_host(*, routes=(), **over):
    return {"host": [{"name": "A", "interface": [iface(**over)], "route": list(routes)}]}


def test_addresses_keep_their_order_and_an_address_without_a_length_is_a_128():
    topo = parse(one_host(addr6=["2001:db8::1/64", "2001:db8:1::1", "fe80::1/64"]))
    assert topo.host("A").interface("eth0").addr6 == (V6("2001:db8::1/64"), V6("2001:db8:1::1/128"),
                                                      V6("fe80::1/64"))


def test_an_ipv6_routes_metric_is_1024_unless_given_and_via_may_be_link_local():
    topo = parse(one_host(addr6=["2001:db8::1/64"], routes=[
        {"dst": "::/0", "via": "fe80::1", "dev": "eth0"},
        {"dst": "2001:db8:9::/48", "via": "2001:db8::fe", "dev": "eth0", "metric": 10},
        {"dst": "2001:db8:a::/48", "dev": "eth0", "metric": 0}]))
    assert [r.metric for r in topo.host("A").routes6] == [1024, 10, 1024]  # 0 is ip6_route_info_create's 1024


def test_a_gateway_inside_an_on_link_route_is_reachable():
    topo = parse(one_host(routes=[{"dst": "2001:db8:7::/64", "dev": "eth0"},
                                  {"dst": "::/0", "via": "2001:db8:7::1", "dev": "eth0"}]))
    assert len(topo.host("A").routes6) == 2


def test_link_local_addresses_may_repeat_on_different_links():
    r = {"name": "R", "interface": [iface(addr6=["fe80::1/64"]), iface(name="eth1", addr6=["fe80::1/64"])]}
    assert parse({"host": [r]}).host("R").interface("eth1").addr6 == (V6("fe80::1/64"),)


@pytest.mark.parametrize("doc, message", [
    (one_host(addr6="2001:db8::1/64"), "'addr6' must be a list of addresses"),
    (one_host(addr6=["2001:db8::g/64"]), "addr6 '2001:db8::g/64' is not an IPv6 address"),
    (one_host(addr6=["10.0.0.1/24"]), "addr6 '10.0.0.1/24' is not an IPv6 address"),
    (one_host(addr6=["2001:db8::1/129"]), "addr6 '2001:db8::1/129' is not an IPv6 address"),
    (one_host(addr6=["2001:db8::1/0"]), "prefix length 0"),
    (one_host(addr6=["::/64"]), "the unspecified address"),
    (one_host(addr6=["::1/128"]), "the loopback address"),
    (one_host(addr6=["ff02::1/64"]), "a multicast address"),
    (one_host(addr6=["::ffff:10.0.0.1/120"]), "IPv4-mapped"),
    (one_host(addr6=["2001:db8::/64"]), "the subnet-router anycast address"),
    (one_host(addr6=["2001:db8::1/64", "2001:db8::1/80"]), "addr6 2001:db8::1 is listed twice"),
    (one_host(addr6=["2001:db8::1/64"], mtu=1000), "addr6 needs an mtu of at least 1280 (IPV6_MIN_MTU), not 1000"),
    ({"host": [{"name": "A", "interface": [iface(addr6=["2001:db8::1/64"])]},
               {"name": "B", "interface": [iface(addr6=["2001:db8::1/64"])]}]}, "addr6 2001:db8::1 is also A:eth0's"),
    (one_host(routes=[{"dst": "::/0", "via": "10.0.0.254", "dev": "eth0"}]),
     "via 10.0.0.254 is not an IPv6 address"),
    (one_host(routes=[{"dst": "0.0.0.0/0", "via": "fe80::1", "dev": "eth0"}]), "via fe80::1 is not an IPv4 address"),
    (one_host(routes=[{"dst": "2001:db8::1/64", "dev": "eth0"}]), "has host bits set"),
    (one_host(routes=[{"dst": "::/0", "via": "ff02::2", "dev": "eth0"}]), "Invalid gateway address"),
    (one_host(routes=[{"dst": "::/0", "via": "::", "dev": "eth0"}]), "Invalid gateway address"),
    (one_host(addr6=["2001:db8::1/64"], routes=[{"dst": "::/0", "via": "2001:db8::1", "dev": "eth0"}]),
     "Gateway can not be a local address"),
    (one_host(routes=[{"dst": "::/0", "via": "::1", "dev": "eth0"}]), "Gateway can not be a local address"),
    (one_host(mac="02:00:00:00:00:0a", routes=[{"dst": "::/0", "via": "fe80::ff:fe00:a", "dev": "eth0"}]),
     "Gateway can not be a local address"),  # its own link-local address, from its MAC
    (one_host(addr6=["2001:db8::1/64"], routes=[{"dst": "::/0", "via": "2001:db9::1", "dev": "eth0"}]),
     "via 2001:db9::1 is not on eth0's prefixes (2001:db8::/64)"),
    (one_host(routes=[{"dst": "::/0", "via": "2001:db9::1", "dev": "eth0"}]), "No route to host"),
    (one_host(mtu=1000, routes=[{"dst": "::/0", "via": "fe80::1", "dev": "eth0"}]), "eth0 has no IPv6"),
    (one_host(routes=[{"dst": "::/0", "via": "fe80::1", "dev": "eth0"}, {"dst": "::/0", "via": "fe80::2",
                                                                           "dev": "eth0"}]),
     "metric 1024 is taken by the route via fe80::1"),
    (one_host(addr6=["2001:db8::1/64"], routes=[{"dst": "2001:db8::/64", "dev": "eth0", "metric": 256}]),
     "metric 256 is taken by eth0's connected route"),
    (one_host(routes=[{"dst": "fe80::/64", "dev": "eth0", "metric": 256}]), "File exists"),
    (one_host(routes=[{"dst": "::/0", "via": "fe80::1", "dev": "eth9"}]), "no interface 'eth9'"),
])
def test_ipv6_mistakes_are_named(doc, message):
    with pytest.raises(TopologyError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse(doc)


def test_a_link_local_address_the_peer_on_the_link_has_is_refused():
    """B's eth0 has 02:00:00:00:00:0b, so fe80::ff:fe00:b from it; A may not take that."""
    doc = {"host": [{"name": "A", "interface": [iface(mac="02:00:00:00:00:0a", addr6=["fe80::ff:fe00:b/64"])]},
                    {"name": "B", "interface": [iface(mac="02:00:00:00:00:0b")]}],
           "link": [{"a": "A:eth0", "b": "B:eth0"}]}
    with pytest.raises(TopologyError, match="A:eth0 and B:eth0 both have the link-local address fe80::ff:fe00:b"):
        parse(doc)


def test_a_malformed_addr6_in_a_file_is_one_line_naming_the_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[[host]]\nname = "A"\n[[host.interface]]\nname = "eth0"\nmac = "02:00:00:00:00:0a"\n'
                    'addr = "10.0.0.1/24"\naddr6 = ["ff02::1/64"]\n')
    with pytest.raises(TopologyError) as exc:
        load(path)
    assert str(exc.value).startswith(f"{path}: host A interface eth0: addr6 ff02::1/64 is a multicast address")
    assert "\n" not in str(exc.value)
