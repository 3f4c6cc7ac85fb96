"""SLAAC from a pktpath router: R advertises its link's prefix as radvd does (`advertise = true`),
H, with no IPv6 address of its own but its link-local one, solicits after DAD, gets R's answer
at once (radvd answers an RS unicast), forms its EUI-64 address in R's prefix and a default
route via R's link-local address, as a Linux host did from radvd in a namespace
(services/l3/ndisc.py, tests/services/test_l3_ra_send.py), and then pings R's global address."""

import subprocess
import sys

import pytest

from pktpath.client import AF_INET6, IPPROTO_ICMPV6
from pktpath.wire.icmpv6 import ICMPV6_ECHO_REPLY, ICMPV6_ECHO_REQUEST

from conftest import running
from e2ekit import ipv6_ready, wait_for, with_sockets

pytestmark = pytest.mark.slow

R6, LL_R, SLAAC_H = "2001:db8:9::fe", "fe80::ff:fe00:9fe", "2001:db8:9::ff:fe00:901"

TOPOLOGY = """
[[host]]
name = "R"
forwarding = true
[[host.interface]]
name = "eth0"
mac = "02:00:00:00:09:fe"
addr = "10.0.9.254/24"
addr6 = ["2001:db8:9::fe/64"]
advertise = true

[[host]]
name = "H"
[[host.interface]]
name = "eth0"
mac = "02:00:00:00:09:01"
addr = "10.0.9.1/24"

[[link]]
a = "R:eth0"
b = "H:eth0"
"""


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    path = tmp_path_factory.mktemp("topo") / "slaac.toml"
    path.write_text(TOPOLOGY)
    for sup in running(str(path), tmp_path_factory):
        yield from with_sockets(sup, "H")


def ip(sup, host: str, *words: str) -> str:
    out = subprocess.run([sys.executable, "-m", "pktpath.cli", "ip", "-6", *words, "--on", host, "--topology",
                          sup.topology.source, "--base-port", str(sup.base_port)],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_the_host_takes_an_address_in_the_routers_prefix_and_a_default_route_via_its_link_local_address(net):
    sup, _ = net
    assert wait_for(lambda: SLAAC_H in ip(sup, "H", "addr"), timeout=15), ip(sup, "H", "addr")
    assert ipv6_ready(sup, "R", "H", timeout=10), "duplicate address detection did not finish"
    addr = ip(sup, "H", "addr", "show", "dev", "eth0")
    assert f"inet6 {SLAAC_H}/64 scope global dynamic mngtmpaddr" in addr, addr
    routes = ip(sup, "H", "route").splitlines()
    assert "2001:db8:9::/64 dev eth0 proto kernel metric 256" in "\n".join(routes), routes
    # Linux: `default via fe80::... dev eth0 proto ra metric 1024 expires 1797sec hoplimit 64 pref medium`
    assert any(r.startswith(f"default via {LL_R} dev eth0 proto ra metric 1024 ") and r.endswith(" pref medium")
               for r in routes), routes
    # and R, as Linux's with radvd, learned itself as a router from its own RA looped back
    assert f"{LL_R} dev eth0 lladdr 02:00:00:00:09:fe router STALE" in ip(sup, "R", "neigh")


def test_then_the_host_pings_the_routers_global_address(net):
    sup, h = net
    assert wait_for(lambda: SLAAC_H in ip(sup, "H", "addr") and ipv6_ready(sup, "H", timeout=0.1), timeout=15)
    with h.socket(protocol=IPPROTO_ICMPV6, family=AF_INET6) as ping:
        ping.sendto(bytes([ICMPV6_ECHO_REQUEST, 0, 0, 0, 0, 0, 0, 1]) + b"pktpath!" * 7, (R6, 0))
        reply = ping.recvmsg(timeout=10)
    assert reply.data[0] == ICMPV6_ECHO_REPLY and reply.addr.addr == R6
