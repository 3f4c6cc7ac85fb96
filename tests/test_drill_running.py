"""pktpath drill --on: the gateway a running host's scripts are routed through is an address
of the host's subnet that no host of the topology has."""

import tomllib

import pytest

from pktpath.drill.running import RunningHostError, free_gateway
from pktpath.topology import load, parse


def loads(text: str):
    return parse(tomllib.loads(text))


def test_the_gateway_is_the_highest_address_nobody_has():
    topo = load("default")
    a = topo.host("A").interfaces[0]
    assert free_gateway(topo, a, 4) == "10.0.0.254"
    assert free_gateway(topo, a, 6) == "2001:db8::ffff:ffff:ffff:ff7f"


def test_a_taken_address_is_passed_over_and_a_full_subnet_refused():
    topo = loads("""
[[host]]
name = "A"
[[host.interface]]
name = "eth0"
mac = "02:00:00:00:00:0a"
addr = "10.1.0.1/30"
[[host]]
name = "B"
[[host.interface]]
name = "eth0"
mac = "02:00:00:00:00:0b"
addr = "10.1.0.2/30"
[[link]]
a = "A:eth0"
b = "B:eth0"
""")
    with pytest.raises(RunningHostError, match="no address free"):
        free_gateway(topo, topo.host("A").interfaces[0], 4)
    topo = loads("""
[[host]]
name = "A"
[[host.interface]]
name = "eth0"
mac = "02:00:00:00:00:0a"
addr = "10.1.0.1/29"
[[host]]
name = "B"
[[host.interface]]
name = "eth0"
mac = "02:00:00:00:00:0b"
addr = "10.1.0.6/29"
[[link]]
a = "A:eth0"
b = "B:eth0"
""")
    assert free_gateway(topo, topo.host("A").interfaces[0], 4) == "10.1.0.5"
