"""Topology files: the built-ins load, and every mistake is a clear TopologyError."""

import ipaddress
import itertools

import pytest

from pktpath.topology import Endpoint, TopologyError, load, parse


def test_default_is_two_hosts_on_one_link():
    topo = load()
    assert [h.name for h in topo.hosts] == ["A", "B"]
    peer, link = topo.peer("A", "eth0")
    assert peer == Endpoint("B", "eth0") and link.loss == 0.0
    assert topo.host("B").interface("eth0").addr == ipaddress.IPv4Interface("10.0.0.2/24")


def test_router_has_a_smaller_mtu_towards_b_and_default_routes():
    topo = load("router")
    r = topo.host("R")
    assert r.forwarding and r.interface("eth1").mtu == 1280
    (route,) = topo.host("A").routes
    assert route.dst == ipaddress.IPv4Network("0.0.0.0/0") and str(route.via) == "10.0.1.254"
    assert topo.peer("R", "eth1")[0] == Endpoint("B", "eth0")


def test_load_from_path(tmp_path):
    f = tmp_path / "lab.toml"
    f.write_text('[[host]]\nname = "X"\n[[host.interface]]\nname = "eth0"\nmac = "02:00:00:00:00:01"\n'
                 'addr = "192.0.2.1/24"\n[[host.rule]]\nhook = "local_in"\nproto = "udp"\ndport = 9\n'
                 'target = "drop"\n')
    topo = load(f)
    (rule,) = topo.host("X").rules
    assert (rule.hook, rule.proto, rule.dport, rule.target) == ("LOCAL_IN", 17, 9, "DROP")
    assert topo.peer("X", "eth0") is None


def test_ring_sizes_and_gro_default_as_linux_and_can_be_set():
    topo = parse({"host": [{"name": "A", "interface": [iface(),
                                                       iface(name="eth1", rx_ring=1024, tx_ring=64, gro=False)]}]})
    eth0, eth1 = topo.host("A").interfaces
    assert (eth0.rx_ring, eth0.tx_ring, eth0.gro) == (256, 256, True)
    assert (eth1.rx_ring, eth1.tx_ring, eth1.gro) == (1024, 64, False)


def test_tcp_settings_default_to_linuxs_and_can_be_set():
    topo = parse({"host": [{"name": "A", "interface": [iface()]},
                           {"name": "B", "interface": [iface()], "tcp_congestion_control": "reno", "tcp_timewait": 2}]})
    assert (topo.host("A").tcp_congestion_control, topo.host("A").tcp_timewait) == ("cubic", 60.0)
    assert (topo.host("B").tcp_congestion_control, topo.host("B").tcp_timewait) == ("reno", 2.0)


def test_file_max_defaults_to_the_kernels_sizing_and_can_be_set():
    topo = parse({"host": [{"name": "A", "interface": [iface()]},
                           {"name": "B", "interface": [iface()], "file_max": 500}]})
    assert (topo.host("A").file_max, topo.host("B").file_max) == (0, 500)  # 0: files_maxfiles_init()


_NEXT = itertools.count(1)


def iface(**over):
    """An interface table; each call's address and MAC its own, as a valid topology's are."""
    n = next(_NEXT)
    t = {"name": "eth0", "mac": f"02:00:00:00:{n >> 8:02x}:{n & 0xFF:02x}", "addr": f"10.0.{n >> 8}.{n & 0xFF}/16"}
    t.update(over)
    return t


@pytest.mark.parametrize("doc, message", [
    ({}, "no hosts"),
    ({"host": [{"name": "A"}]}, "no interfaces"),
    ({"host": [{"name": "A", "interface": [iface(mac="zz")]}]}, "not a MAC"),
    ({"host": [{"name": "A", "interface": [iface(addr="10.0.0.300/24")]}]}, "10.0.0.300"),
    ({"host": [{"name": "A", "interface": [iface(mtu=20)]}]}, "mtu 20"),
    ({"host": [{"name": "A", "interface": [iface(), iface()]}]}, "duplicate interface"),
    ({"host": [{"name": "A", "interface": [iface()]}, {"name": "A", "interface": [iface()]}]}, "duplicate host"),
    ({"host": [{"name": "A", "interface": [iface()], "route": [{"dst": "0.0.0.0/0", "dev": "eth9"}]}]},
     "no interface 'eth9'"),
    ({"host": [{"name": "A", "interface": [iface()], "rule": [{"hook": "INPUT", "target": "DROP"}]}]},
     "hook 'INPUT'"),
    ({"host": [{"name": "A", "interface": [iface()]}], "link": [{"a": "A:eth0", "b": "B:eth0"}]}, "no host 'B'"),
    ({"host": [{"name": "A", "interface": [iface()]}], "link": [{"a": "A:eth0", "b": "A:eth0"}]},
     "already on a link"),
    ({"host": [{"name": "A", "interface": [iface(), iface(name="eth1")]}],
      "link": [{"a": "A:eth0", "b": "A:eth1", "loss": 1.5}]}, "fractions"),
    ({"host": [{"name": "A", "interface": [iface(mtu="big")]}]}, "must be int"),
    ({"host": [{"name": "A", "interface": [iface(rx_ring=0)]}]}, "rx_ring and tx_ring are 1..4096"),
    ({"host": [{"name": "A", "interface": [iface(tx_ring=8192)]}]}, "rx_ring and tx_ring are 1..4096"),
    ({"host": [{"name": "A", "interface": [iface(gro="on")]}]}, "'gro' must be bool"),
    ({"host": [{"name": "A", "interface": [iface()], "tcp_congestion_control": "bbr"}]}, "not one of cubic, reno"),
    ({"host": [{"name": "A", "interface": [iface()], "tcp_timewait": 0}]}, "tcp_timewait 0"),
    ({"host": [{"name": "A", "interface": [iface()], "file_max": -1}]}, "file_max -1"),
    ({"host": [{"name": "A", "interface": [iface(attach="tun:pkt0")]}]}, "not tap:NAME or packet:NAME"),
    ({"host": [{"name": "A", "interface": [iface(attach="tap:a-name-too-long0")]}]}, "at most 15 characters"),
    ({"host": [{"name": "A", "interface": [iface(attach="tap:pkt0"), iface(name="eth1")]}],
      "link": [{"a": "A:eth0", "b": "A:eth1"}]}, "attached to a Linux interface, not to a link"),
    ({"host": [{"name": "A", "interface": [iface(attach="vxlan:no_such host")]}]}, "neither an IP address nor a DNS"),
    ({"host": [{"name": "A", "interface": [iface(attach="vxlan:192.0.2.7", vni=1 << 24)]}]}, "vni 16777216 is not"),
    ({"host": [{"name": "A", "interface": [iface(attach="tap:pkt0", vni=5)]}]}, "vni is a VXLAN tunnel's"),
    ({"host": [{"name": "A", "interface": [iface()], "at": "-bad-.example"}]}, "at: '-bad-.example' is neither"),
    ({"host": [{"name": "A", "interface": [iface(), iface(name="eth1"), iface(name="eth2"), iface(name="eth3")]}],
      "link": [{"a": "A:eth0", "b": "A:eth1", "vni": 7}, {"a": "A:eth2", "b": "A:eth3", "vni": 7}]},
     "vni 7 is also another link's"),
    ({"host": [{"name": "A", "interface": [iface(), iface(name="eth1")]}],
      "link": [{"a": "A:eth0", "b": "A:eth1", "vni": 0}]}, "vni 0 is not 1..16777215"),
])
def test_mistakes_are_named(doc, message):
    with pytest.raises(TopologyError, match=message):
        parse(doc)


def test_unknown_name_and_bad_toml(tmp_path):
    with pytest.raises(TopologyError, match="no topology file"):
        load("nosuch")
    bad = tmp_path / "bad.toml"
    bad.write_text("[[host]\n")
    with pytest.raises(TopologyError, match="bad"):
        load(bad)


def test_an_interface_attached_to_the_kernel():
    topo = parse({"host": [{"name": "B", "interface": [iface(attach="tap:pkt0"), iface(name="eth1",
                                                                                     attach="packet:veth1")]}]})
    assert [i.attach for i in topo.host("B").interfaces] == ["tap:pkt0", "packet:veth1"]
    assert topo.peer("B", "eth0") is None  # no pktpath NIC at the other end


def test_hosts_on_other_machines_and_a_tunnel_to_the_kernel():
    """`at` places a host; a link's VNI is its number unless it says; attach vxlan:REMOTE with a vni."""
    topo = parse({"host": [{"name": "A", "at": "10.99.0.1", "interface": [iface()]},
                           {"name": "B", "at": "b.pktpath.svc.cluster.local", "interface": [
                               iface(), iface(name="eth1", attach="vxlan:192.0.2.7", vni=42)]}],
                  "link": [{"a": "A:eth0", "b": "B:eth0"}]})
    assert [h.at for h in topo.hosts] == ["10.99.0.1", "b.pktpath.svc.cluster.local"]
    assert topo.links[0].vni == 1
    assert (topo.host("B").interface("eth1").attach, topo.host("B").interface("eth1").vni) == ("vxlan:192.0.2.7", 42)
    assert load("default").hosts[0].at == ""  # this machine


TWO_HOSTS = """
[[host]]
name = "A"
[[host.interface]]
name = "eth0"
mac = "02:00:00:00:00:0a"
addr = "10.0.0.1/24"
[[host]]
name = "B"
[[host.interface]]
name = "eth0"
mac = "02:00:00:00:00:0b"
addr = "10.0.0.2/24"
[[link]]
a = "A:eth0"
b = "B:eth0"
"""


def test_the_file_the_mistakes_are_made_in_is_valid(tmp_path):
    (tmp_path / "good.toml").write_text(TWO_HOSTS)
    assert [h.name for h in load(tmp_path / "good.toml").hosts] == ["A", "B"]


@pytest.mark.parametrize("change, message", [
    (("", '[host]\nname = "A"\n[[host.interface]]\nname = "eth0"\nmac = "02:00:00:00:00:0a"\naddr = "10.0.0.1/24"\n'),
     "write [[host]] tables"),
    (("10.0.0.2/24", "10.0.0.1/24"), "addr 10.0.0.1 is also A:eth0's"),
    (("02:00:00:00:00:0b", "02:00:00:00:00:0a"), "mac 02:00:00:00:00:0a is also A:eth0's"),
    (("10.0.0.2/24", "10.0.0.0/24"), "the network's own address"),
    (("10.0.0.2/24", "10.0.0.255/24"), "the network's own broadcast"),
    (("b = \"B:eth0\"", "b = \"B:eth0\"\nlose = 0.1"), "unknown key 'lose' (did you mean 'loss'?)"),
    (("addr = \"10.0.0.2/24\"", "addr = \"10.0.0.2/24\"\nmtuu = 1400"), "unknown key 'mtuu' (did you mean 'mtu'?)"),
    (("[[link]]", "[[lnk]]"), "unknown key 'lnk' (did you mean 'link'?)"),
    (("name = \"eth0\"\nmac = \"02:00:00:00:00:0b\"", "name = \"eth/0\"\nmac = \"02:00:00:00:00:0b\""),
     "without /, : or spaces"),
    (("b = \"B:eth0\"", "b = \"B:eth0\"\n[[host.route]]\ndst = \"10.9.0.0/16\"\nvia = \"10.7.0.1\"\ndev = \"eth0\""),
     "via 10.7.0.1 is not on eth0's subnet 10.0.0.0/24"),
    (("b = \"B:eth0\"", "b = \"B:eth0\"\n[[host.route]]\ndst = \"10.9.0.0/16\"\ndev = \"eth0\"\nmetric = -1"),
     "metric -1"),
    (("b = \"B:eth0\"", "b = \"B:eth0\"\n[[host.rule]]\nhook = \"LOCAL_IN\"\ndport = 70000\ntarget = \"DROP\""),
     "ports are 0..65535"),
])
def test_a_malformed_file_gets_one_line_naming_the_file_and_the_key(tmp_path, change, message):
    path = tmp_path / "bad.toml"
    path.write_text(TWO_HOSTS.replace(*change) if change[0] else change[1])
    with pytest.raises(TopologyError) as exc:
        load(path)
    assert str(exc.value).startswith(f"{path}: ") and message in str(exc.value) and "\n" not in str(exc.value)


def test_a_file_that_is_not_utf8_is_named_not_a_traceback(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes(TWO_HOSTS.replace('"A"', '"\xc4"').encode("latin-1"))
    with pytest.raises(TopologyError, match=r"latin1.toml: not UTF-8 text \(byte \d+\)"):
        load(path)
