"""`pktpath ip` with IPv6 (-6, -4 and both) against what iproute2 6.1 printed on Linux 6.18
for the same host: a namespace with a veth eth0 set up as the default topology's A
(02:00:00:00:00:0a, 10.0.0.1/24 brd +, 2001:db8::1/64), read once DAD was done. The
kernel's text is kept as it printed it; `kernel()` takes off what only a veth in a
namespace says (its peer's index and namespace, its noqueue qdisc, lo before it)."""

import json
import re

import pytest

from pktpath.cli import _ip, parser
from pktpath.pb import l3_pb2
from pktpath.services.l3.layer import L3
from pktpath.services.l3.server import L3Servicer
from pktpath.tools import iproute
from pktpath.topology import load

ADDR = """\
2: eth0@if2: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP group default qlen 1000
    link/ether 02:00:00:00:00:0a brd ff:ff:ff:ff:ff:ff link-netns h19ac_b
    inet 10.0.0.1/24 brd 10.0.0.255 scope global eth0
       valid_lft forever preferred_lft forever
    inet6 2001:db8::1/64 scope global 
       valid_lft forever preferred_lft forever
    inet6 fe80::ff:fe00:a/64 scope link 
       valid_lft forever preferred_lft forever
"""  # ip ends an inet6 line with a blank: kept
ADDR6 = """\
2: eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 state UP qlen 1000
    inet6 2001:db8::1/64 scope global 
       valid_lft forever preferred_lft forever
    inet6 fe80::ff:fe00:a/64 scope link 
       valid_lft forever preferred_lft forever
"""
ADDR6_DEV = """\
2: eth0@if2: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP group default qlen 1000 \
link-netns h19ac_b
    inet6 2001:db8::1/64 scope global 
       valid_lft forever preferred_lft forever
    inet6 fe80::ff:fe00:a/64 scope link 
       valid_lft forever preferred_lft forever
"""
ADDR4 = """\
2: eth0@if2: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP group default qlen 1000 \
link-netns h19ac_b
    inet 10.0.0.1/24 brd 10.0.0.255 scope global eth0
       valid_lft forever preferred_lft forever
"""
ROUTE6 = """\
2001:db8::/64 dev eth0 proto kernel metric 256 pref medium
fe80::/64 dev eth0 proto kernel metric 256 pref medium
"""
ROUTE6_DEV = """\
2001:db8::/64 proto kernel metric 256 pref medium
fe80::/64 proto kernel metric 256 pref medium
"""
ADDR6_JSON = ('[{"ifindex":2,"ifname":"eth0","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1500,'
              '"operstate":"UP","txqlen":1000,"addr_info":[{"family":"inet6","local":"2001:db8::1","prefixlen":64,'
              '"scope":"global","valid_life_time":4294967295,"preferred_life_time":4294967295},{"family":"inet6",'
              '"local":"fe80::ff:fe00:a","prefixlen":64,"scope":"link","valid_life_time":4294967295,'
              '"preferred_life_time":4294967295}]}]')
ADDR_JSON = ('[{"ifindex":2,"link_index":2,"ifname":"eth0","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],'
             '"mtu":1500,"qdisc":"noqueue","operstate":"UP","group":"default","txqlen":1000,"link_type":"ether",'
             '"address":"02:00:00:00:00:0a","broadcast":"ff:ff:ff:ff:ff:ff","link_netnsid":0,"addr_info":[{'
             '"family":"inet","local":"10.0.0.1","prefixlen":24,"broadcast":"10.0.0.255","scope":"global",'
             '"label":"eth0","valid_life_time":4294967295,"preferred_life_time":4294967295},{"family":"inet6",'
             '"local":"2001:db8::1","prefixlen":64,"scope":"global","valid_life_time":4294967295,'
             '"preferred_life_time":4294967295},{"family":"inet6","local":"fe80::ff:fe00:a","prefixlen":64,'
             '"scope":"link","valid_life_time":4294967295,"preferred_life_time":4294967295}]}]')
ADDR4_JSON = ('[{"ifindex":2,"link_index":2,"ifname":"eth0","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],'
              '"mtu":1500,"qdisc":"noqueue","operstate":"UP","group":"default","txqlen":1000,"link_netnsid":0,'
              '"addr_info":[{"family":"inet","local":"10.0.0.1","prefixlen":24,"broadcast":"10.0.0.255",'
              '"scope":"global","label":"eth0","valid_life_time":4294967295,"preferred_life_time":4294967295}]}]')
ROUTE6_JSON = ('[{"dst":"2001:db8::/64","dev":"eth0","protocol":"kernel","metric":256,"flags":[],"pref":"medium"},'
               '{"dst":"fe80::/64","dev":"eth0","protocol":"kernel","metric":256,"flags":[],"pref":"medium"}]')
# The router topology's A, its default route added with `ip -6 route add default via 2001:db8:1::fe dev eth0
# proto static`.
ROUTER_A_ROUTE6 = """\
2001:db8:1::/64 dev eth0 proto kernel metric 256 pref medium
fe80::/64 dev eth0 proto kernel metric 256 pref medium
default via 2001:db8:1::fe dev eth0 proto static metric 1024 pref medium
"""
ROUTER_A_ROUTE6_JSON = (
    '[{"dst":"2001:db8:1::/64","dev":"eth0","protocol":"kernel","metric":256,"flags":[],"pref":"medium"},'
    '{"dst":"fe80::/64","dev":"eth0","protocol":"kernel","metric":256,"flags":[],"pref":"medium"},'
    '{"dst":"default","gateway":"2001:db8:1::fe","dev":"eth0","protocol":"static","metric":1024,"flags":[],'
    '"pref":"medium"}]')


def kernel(text: str) -> str:
    """pktpath has no lo, so its eth0 is device 1; a veth's peer and qdisc are not a NIC's."""
    text = re.sub(r"^2: eth0(@if2)?:", "1: eth0:", text, flags=re.M)
    return text.replace(" link-netns h19ac_b", "").replace("qdisc noqueue", "qdisc pfifo_fast")


def kernel_json(text: str) -> list:
    recs = json.loads(text)
    for rec in recs:
        for key in ("link_index", "link_netnsid"):
            rec.pop(key, None)
        if "ifindex" in rec:
            rec["ifindex"] -= 1
        if rec.get("qdisc") == "noqueue":
            rec["qdisc"] = "pfifo_fast"
    return recs


class _Hop:
    def put(self, items) -> bool:
        return True

    def close(self) -> None:
        pass


class _L3Stub:
    """The L3 service's answers, from its own servicer methods over a layer made of the topology."""

    def __init__(self, layer: L3) -> None:
        self.layer = layer

    def GetAddrs(self, request, timeout=None):
        return L3Servicer.GetAddrs(self.layer, request, None)

    def GetRoutes(self, request, timeout=None):
        return L3Servicer.GetRoutes(self.layer, request, None)


class View:
    def __init__(self, layer: L3) -> None:
        self.stub = {"l3": _L3Stub(layer)}


@pytest.fixture
def view():
    """A running host's view, for a topology's host: view("router", "A")."""
    layers = []

    def make(topology: str = "default", host: str = "A") -> View:
        layers.append(L3(host, load(topology).host(host), lambda edge, mib: _Hop()))
        conf = layers[-1].addrconf  # the kernel's text was read once DAD was done
        for dev in conf.idev:
            for ifa in conf.addr_list(dev):
                conf.addrconf_dad_completed(dev, ifa)
        return View(layers[-1])

    yield make
    for layer in layers:
        layer.close()


def ip(view, capsys, *words: str) -> str:
    assert _ip(parser().parse_args(["ip", *words]), view) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("words, theirs", [
    (("addr",), ADDR), (("-6", "addr"), ADDR6), (("-4", "a"), ADDR4),
    (("-6", "addr", "show", "dev", "eth0"), ADDR6_DEV),
    (("-6", "route"), ROUTE6), (("-6", "r", "show", "dev", "eth0"), ROUTE6_DEV),
])
def test_ip_prints_the_ipv6_addresses_and_routes_as_iproute2_does(view, capsys, words, theirs):
    assert ip(view(), capsys, *words) == kernel(theirs)


@pytest.mark.parametrize("words, theirs", [
    (("-j", "addr"), ADDR_JSON), (("-j", "-6", "addr"), ADDR6_JSON), (("-j", "-4", "addr"), ADDR4_JSON),
    (("-j", "-6", "route"), ROUTE6_JSON),
])
def test_ip_j_says_it_in_iproute2s_json_fields_and_order(view, capsys, words, theirs):
    ours = json.loads(ip(view(), capsys, *words))
    assert ours == kernel_json(theirs)
    assert [list(rec) for rec in ours] == [list(rec) for rec in kernel_json(theirs)]  # the keys' order too


def test_ip_6_route_shows_a_static_default_route_and_ip_route_stays_ipv4(view, capsys):
    a = view("router", "A")
    assert ip(a, capsys, "-6", "route") == ROUTER_A_ROUTE6
    assert json.loads(ip(a, capsys, "-j", "-6", "route")) == json.loads(ROUTER_A_ROUTE6_JSON)
    assert sorted(ip(a, capsys, "route").splitlines()) == ["10.0.1.0/24 dev eth0 proto kernel scope link src 10.0.1.1",
                                                           "default via 10.0.1.254 dev eth0 proto static"]


def test_an_interface_without_ipv6_has_no_inet6_lines_and_ip_6_addr_leaves_it_out(view, capsys, tmp_path):
    """An eth1 with an MTU of 1000, too small for IPv6."""
    topology = tmp_path / "small.toml"
    topology.write_text("""[[host]]
name = "R"
forwarding = true
[[host.interface]]
name = "eth0"
mac = "02:00:00:00:01:fe"
addr = "10.0.1.254/24"
addr6 = ["2001:db8:1::fe/64"]
[[host.interface]]
name = "eth1"
mac = "02:00:00:00:02:fe"
addr = "10.0.2.254/24"
mtu = 1000
""")
    r = view(str(topology), "R")
    assert [line.split()[1] for line in ip(r, capsys, "-6", "addr").splitlines() if line[0].isdigit()] == ["eth0:"]
    eth1 = ip(r, capsys, "addr", "show", "dev", "eth1")
    assert "inet 10.0.2.254/24" in eth1 and "inet6" not in eth1


def test_flags_are_printed_as_iproute2_prints_them_dynamic_for_a_non_permanent_address():
    """What ip printed for 2001:db8:8::1/64 valid_lft 100 preferred_lft 50 while tentative, and
    2001:db8:9::1/64 nodad noprefixroute."""
    rec = {"ifindex": 1, "ifname": "eth0", "flags": ["UP"], "mtu": 1500, "operstate": "UP", "txqlen": 1000,
           "addr_info": [iproute._inet6(l3_pb2.Inet6Addr(local="2001:db8:8::1/64", scope="global", flags=0x40,
                                                         valid_lft=100, preferred_lft=50)),
                         iproute._inet6(l3_pb2.Inet6Addr(local="2001:db8:9::1/64", scope="global",
                                                         flags=0x80 | 0x02 | 0x200, valid_lft=4294967295,
                                                         preferred_lft=4294967295))]}
    assert iproute.link_text(rec)[1:] == ["    inet6 2001:db8:8::1/64 scope global tentative dynamic ",
                                          "       valid_lft 100sec preferred_lft 50sec",
                                          "    inet6 2001:db8:9::1/64 scope global nodad noprefixroute ",
                                          "       valid_lft forever preferred_lft forever"]
    assert rec["addr_info"][0] == {"family": "inet6", "local": "2001:db8:8::1", "prefixlen": 64, "scope": "global",
                                   "tentative": True, "dynamic": True, "valid_life_time": 100,
                                   "preferred_life_time": 50}
