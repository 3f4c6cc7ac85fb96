"""The FIB: longest-prefix match, local and broadcast addresses, metrics, no route."""

import pytest

from pktpath.services.l3.route import RTN_BROADCAST, RTN_LOCAL, RTN_UNICAST, Fib, FibRoute
from pktpath.wire.addr import ip_from_str as ip


@pytest.fixture
def fib():
    f = Fib()
    f.add_address("eth0", ip("10.0.1.254"), 24)
    f.add_address("eth1", ip("10.0.2.254"), 24)
    f.add(FibRoute(ip("192.168.0.0"), 16, "eth0", gateway=ip("10.0.1.1")))
    f.add(FibRoute(ip("192.168.7.0"), 24, "eth1", gateway=ip("10.0.2.1")))
    f.add(FibRoute(0, 0, "eth0", gateway=ip("10.0.1.9")))
    return f


def test_local_address_is_delivered_here(fib):
    r = fib.lookup(ip("10.0.2.254"))
    assert (r.type, r.dev) == (RTN_LOCAL, "eth1")


def test_connected_route_resolves_the_destination_itself(fib):
    r = fib.lookup(ip("10.0.2.77"))
    assert (r.type, r.dev, r.nexthop, r.prefsrc) == (RTN_UNICAST, "eth1", ip("10.0.2.77"), ip("10.0.2.254"))
    assert r.route.proto == "kernel" and r.route.scope == "link"


def test_longest_prefix_wins_over_shorter_and_default(fib):
    assert fib.lookup(ip("192.168.7.5")).nexthop == ip("10.0.2.1")   # /24
    assert fib.lookup(ip("192.168.8.5")).nexthop == ip("10.0.1.1")   # /16
    assert fib.lookup(ip("8.8.8.8")).nexthop == ip("10.0.1.9")       # default
    assert fib.lookup(ip("8.8.8.8")).prefsrc == ip("10.0.1.254")


def test_broadcast(fib):
    assert fib.lookup(ip("10.0.1.255")).type == RTN_BROADCAST
    assert fib.lookup(ip("255.255.255.255")).type == RTN_BROADCAST


def test_no_route_without_default():
    f = Fib()
    f.add_address("eth0", ip("10.0.0.1"), 24)
    assert f.lookup(ip("10.9.9.9")) is None
    assert f.lookup(ip("10.0.0.9")).dev == "eth0"


def test_metric_breaks_ties_and_delete(fib):
    fib.add(FibRoute(ip("172.16.0.0"), 12, "eth0", gateway=ip("10.0.1.2"), metric=100))
    fib.add(FibRoute(ip("172.16.0.0"), 12, "eth1", gateway=ip("10.0.2.2"), metric=10))
    assert fib.lookup(ip("172.16.1.1")).dev == "eth1"
    with pytest.raises(FileExistsError):
        fib.add(FibRoute(ip("172.16.0.0"), 12, "eth0", metric=10))
    with pytest.raises(ValueError, match="host bits"):
        fib.add(FibRoute(ip("172.16.0.1"), 12, "eth0"))
    removed = fib.delete(ip("192.168.7.0"), 24)
    assert removed.dev == "eth1" and fib.lookup(ip("192.168.7.5")).nexthop == ip("10.0.1.1")
    with pytest.raises(LookupError):
        fib.delete(ip("192.168.7.0"), 24)


def test_route_prints_like_ip_route(fib):
    lines = [str(r) for r in fib.routes()]
    assert "192.168.7.0/24 via 10.0.2.1 dev eth1 proto static scope global" in lines
    assert "10.0.1.0/24 dev eth0 proto kernel scope link src 10.0.1.254" in lines
    assert lines[-1] == "default via 10.0.1.9 dev eth0 proto static scope global"
