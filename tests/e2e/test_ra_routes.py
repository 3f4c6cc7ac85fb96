"""What an RA and a Redirect leave on a pktpath host, as `pktpath ip -6` shows it, held to Linux 6.18's
`ip -6 route`, `ip -6 addr` and `ip -6 route get` (iproute2 6.1) after the same messages in a
network namespace (services/l3/ndisc.py, route6.py; tests/services/test_ndisc_router.py has the
details and the captured bytes).

R advertises 2001:db8:9::/64 with an MTU of 1400 (radvd's defaults otherwise) to H over a pktpath
link; H's eth1 is one end of a veth pair whose other end is in a network namespace this test
makes, from where scapy sends H a Redirect as if from H's first hop on that link. R also
redirects H itself: H's route to 2001:db8:66::/64 goes through R, R's back out of the same link.
Needs root and `ip netns`; skips with the reason elsewhere."""

import json
import os
import re
import secrets
import subprocess
import sys
import time

import pytest

from google.protobuf import empty_pb2

from pktpath.client import AF_INET6, IPPROTO_ICMPV6, SocketApi
from pktpath.rpc import l3_pb2_grpc
from pktpath.supervisor import Supervisor
from pktpath.machines import run
from pktpath.topology import load

from e2ekit import counter, free_base_port, stub, wait_for

pytestmark = pytest.mark.slow
IFA_F_TENTATIVE = 0x40

SLAAC_H, LL_R = "2001:db8:9::ff:fe00:901", "fe80::ff:fe00:9fe"
FIRST_HOP, BETTER_HOP, LL_H1 = "fe80::ff:fe00:7701", "fe80::ff:fe00:7703", "fe80::ff:fe00:7802"
FAR, VIA_R = "2001:db8:77::1", "2001:db8:66::1"

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
adv_link_mtu = 1400
[[host.route]]
dst = "2001:db8:66::/64"
via = "fe80::ff:fe00:902"
dev = "eth0"

[[host]]
name = "H"
[[host.interface]]
name = "eth0"
mac = "02:00:00:00:09:01"
addr = "10.0.9.1/24"
[[host.interface]]
name = "eth1"
mac = "02:00:00:00:78:02"
addr = "10.0.78.2/24"
attach = "packet:{veth}"
[[host.route]]
dst = "2001:db8:77::/64"
via = "fe80::ff:fe00:7701"
dev = "eth1"
[[host.route]]
dst = "2001:db8:66::/64"
via = "fe80::ff:fe00:9fe"
dev = "eth0"

[[link]]
a = "R:eth0"
b = "H:eth0"
"""


def redirect_frame() -> bytes:
    """A Redirect from H's first hop on eth1 about an echo request H sent to FAR (scapy-made)."""
    from scapy.layers.inet6 import (
        ICMPv6EchoRequest, ICMPv6ND_Redirect, ICMPv6NDOptDstLLAddr, ICMPv6NDOptRedirectedHdr, IPv6,
    )
    from scapy.layers.l2 import Ether
    echo = IPv6(src=SLAAC_H, dst=FAR, hlim=64) / ICMPv6EchoRequest(id=7, seq=1, data=bytes(56))
    return bytes(Ether(src="02:00:00:00:77:01", dst="02:00:00:00:78:02") / IPv6(src=FIRST_HOP, dst=LL_H1, hlim=255)
                 / ICMPv6ND_Redirect(tgt=BETTER_HOP, dst=FAR) / ICMPv6NDOptDstLLAddr(lladdr="02:00:00:00:77:03")
                 / ICMPv6NDOptRedirectedHdr(pkt=bytes(echo)))


# sends argv[2] (hex) out of device argv[1] as it is (AF_PACKET), in the namespace
SEND = "import socket, sys; s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); s.bind((sys.argv[1], 0)); " \
       "s.send(bytes.fromhex(sys.argv[2]))"


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("needs root (a veth pair and a network namespace)")
    tag = secrets.token_hex(3)
    ns, veth, veth_peer = f"pktpath-ra-{tag}", f"pkr{tag}", f"pkq{tag}"
    tmp = tmp_path_factory.mktemp("ra-routes")
    topology = tmp / "ra.toml"
    topology.write_text(TOPOLOGY.format(veth=veth))
    if run("ip", "netns", "add", ns, check=False).returncode:
        pytest.skip("ip netns add is not permitted here")
    sup = None
    try:
        run("ip", "link", "add", veth, "type", "veth", "peer", "name", veth_peer)
        run("sysctl", "-qw", f"net.ipv6.conf.{veth}.disable_ipv6=1")  # pktpath's end: no IPv6 of the kernel's
        run("ip", "link", "set", veth, "up")
        run("ip", "link", "set", veth_peer, "netns", ns)
        run("ip", "netns", "exec", ns, "sysctl", "-qw", f"net.ipv6.conf.{veth_peer}.disable_ipv6=1")  # scapy's only
        run("ip", "-n", ns, "link", "set", veth_peer, "up")
        sup = Supervisor(load(topology), free_base_port(2), log_dir=tmp / "logs")
        sup.start(timeout=60)
        with SocketApi(sup.addrs.target("H", "socket")) as h:
            yield sup, h, ns, veth_peer, topology
    finally:
        if sup is not None:
            statuses = sup.stop()
            assert all(rc == 0 for _, _, rc in statuses), statuses
        run("ip", "netns", "del", ns, check=False)
        run("ip", "link", "del", veth, check=False)


def ip(net, *words: str, on: str = "H") -> str:
    sup, topology = net[0], net[4]
    out = subprocess.run([sys.executable, "-m", "pktpath.cli", "ip", *words, "--on", on, "--topology", str(topology),
                          "--base-port", str(sup.base_port)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout


def ready(net) -> bool:
    """H has its SLAAC address, and its link-local addresses, past DAD (asked of its L3 directly:
    quicker than pktpath ip)."""
    want = {SLAAC_H, "fe80::ff:fe00:901", LL_H1}
    addrs = stub(net[0], "H", "l3", l3_pb2_grpc.L3Stub).GetAddrs(empty_pb2.Empty(), timeout=5).addrs
    usable = {a.local.partition("/")[0] for i in addrs for a in i.inet6 if not a.flags & IFA_F_TENTATIVE}
    return want <= usable


def slaac(net) -> bool:
    return bool(wait_for(lambda: ready(net), timeout=15))


def test_ip_6_route_shows_the_ra_routes_as_linux_and_their_expiry_counts_down(net):
    assert slaac(net), ip(net, "-6", "addr")
    default = re.compile(rf"^default via {LL_R} dev eth0 proto ra metric 1024 expires (\d+)sec mtu 1400 hoplimit 64 "
                         r"pref medium$", re.M)
    prefix = re.compile(r"^2001:db8:9::/64 dev eth0 proto kernel metric 256 expires (\d+)sec pref medium$", re.M)
    first = ip(net, "-6", "route")
    (d1,), (p1,) = default.findall(first), prefix.findall(first)
    assert 1790 <= int(d1) <= 1799 and 86390 <= int(p1) <= 86399, first
    assert "fe80::/64 dev eth0 proto kernel metric 256 pref medium" in first
    time.sleep(1.2)
    again = ip(net, "-6", "route")
    assert int(default.findall(again)[0]) < int(d1) and int(prefix.findall(again)[0]) < int(p1), (first, again)
    [rec] = [r for r in json.loads(ip(net, "-j", "-6", "route")) if r["dst"] == "default"]
    assert list(rec) == ["dst", "gateway", "dev", "protocol", "metric", "flags", "expires", "metrics", "pref"]
    assert rec["metrics"] == [{"mtu": 1400, "hoplimit": 64}]


def test_ip_6_addr_counts_the_slaac_lifetimes_down_and_a_static_address_is_forever(net):
    assert slaac(net)
    lft = re.compile(rf"inet6 {SLAAC_H}/64 scope global dynamic mngtmpaddr \n"
                     r"       valid_lft (\d+)sec preferred_lft (\d+)sec\n")
    shown = ip(net, "-6", "addr", "show", "dev", "eth0")
    [(valid, preferred)] = lft.findall(shown)
    assert 86390 <= int(valid) <= 86400 and 14390 <= int(preferred) <= 14400, shown
    assert "inet6 fe80::ff:fe00:901/64 scope link \n       valid_lft forever preferred_lft forever" in shown
    time.sleep(1.2)
    [(valid2, preferred2)] = lft.findall(ip(net, "-6", "addr", "show", "dev", "eth0"))
    assert int(valid2) < int(valid) and int(preferred2) < int(preferred)


def test_a_redirect_from_the_first_hop_gives_the_host_a_better_one_that_route_get_shows(net):
    """Linux's host after the same Redirect: `... via <target> dev ... metric 1024 pref medium`, the
    target a router neighbour, STALE, with the option's address, and Icmp6InRedirects 1."""
    sup, ns, dev = net[0], net[2], net[3]
    assert slaac(net)
    assert ip(net, "-6", "route", "get", FAR).strip() == \
        f"{FAR} from :: via {FIRST_HOP} dev eth1 proto static src {SLAAC_H} metric 1024 pref medium"
    run("ip", "netns", "exec", ns, sys.executable, "-c", SEND, dev, redirect_frame().hex())
    better = f"{FAR} from :: via {BETTER_HOP} dev eth1 proto static src {SLAAC_H} metric 1024 pref medium\n"
    assert wait_for(lambda: ip(net, "-6", "route", "get", FAR) == better, timeout=5), ip(net, "-6", "route", "get", FAR)
    assert f"{BETTER_HOP} dev eth1 lladdr 02:00:00:00:77:03 router STALE" in ip(net, "-6", "neigh")
    assert counter(stub(sup, "H", "l3", l3_pb2_grpc.L3Stub), "Icmp6", "InRedirects") == 1
    assert f"{FAR} " not in ip(net, "-6", "route")  # the exception is no route of the main table


def test_a_pktpath_router_forwarding_back_out_of_the_link_redirects_the_host(net):
    sup, h = net[0], net[1]
    assert slaac(net)
    with h.socket(protocol=IPPROTO_ICMPV6, family=AF_INET6) as ping:
        ping.sendto(bytes([128, 0, 0, 0, 0, 9, 0, 1]) + bytes(56), (VIA_R, 0))
    redirected = f"{VIA_R} from :: via fe80::ff:fe00:902 dev eth0 proto static src {SLAAC_H} metric 1024 pref medium\n"
    assert wait_for(lambda: ip(net, "-6", "route", "get", VIA_R) == redirected, timeout=5), \
        ip(net, "-6", "route", "get", VIA_R)
    assert counter(stub(sup, "R", "l3", l3_pb2_grpc.L3Stub), "Icmp6", "OutRedirects") == 1
    assert counter(stub(sup, "R", "l3", l3_pb2_grpc.L3Stub), "Ip6", "OutForwDatagrams") >= 1
