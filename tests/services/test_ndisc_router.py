"""Neighbour discovery's router side and IPv6 route views (services/l3/ndisc.py, route6.py,
ipv6.py's raw socket tap, pktpath/tools/iproute.py), held to what Linux 6.18 did.

The expectations come from network namespaces on Linux 6.18 (iproute2 6.1, radvd 2.19):

- radvd on R (`interface X { AdvSendAdvert on; prefix 2001:db8:9::/64 { }; };`), RSs crafted with
  scapy from H: one from :: was answered at once with the multicast RA, one from H's link-local
  address with a unicast RA;
- an RA crafted with scapy into H (router lifetime 1800, MTU 1400, prefix 2001:db8:9::/64 valid
  86400 preferred 14400), then `ip -6 route` and `ip -6 addr` (text and -j) 3 s later; another
  (router lifetime 4, prefix 2001:db8:a::/64 valid 8 preferred 3) watched until it was gone;
- a router R with one link to H1 (2001:db8:1::1, its route to 2001:db8:77::/64 via R's
  fe80::ff:fe00:1fe) and a route to 2001:db8:77::/64 via fe80::ff:fe00:102 (a permanent
  neighbour): H1's ping to 2001:db8:77::1 got a Redirect, captured byte for byte below, after
  which `ip -6 route get` showed the new first hop, Icmp6InRedirects 1 on H1, Icmp6OutRedirects
  1 on R; the exception was gone 29 s later, though pings kept using it.
"""

import tomllib

import pytest
from google.protobuf import empty_pb2
from scapy.layers.inet import UDP
from scapy.layers.inet6 import (
    ICMPv6EchoRequest, ICMPv6ND_RA, ICMPv6ND_Redirect, ICMPv6ND_RS, ICMPv6NDOptDstLLAddr,
    ICMPv6NDOptPrefixInfo, ICMPv6NDOptRedirectedHdr, ICMPv6NDOptSrcLLAddr, IPv6,
)
from scapy.layers.l2 import Ether

from pktpath import skbuff as s
from pktpath.counters import Mib
from pktpath.drill.local import Sim
from pktpath.pb import l2_pb2
from pktpath.pb import skbuff_pb2 as pb
from pktpath.services.l3.addrconf import Addrconf, Fib6Info
from pktpath.services.l3.icmp import IcmpRateLimit
from pktpath.services.l3.ip6_output import Ip6Output
from pktpath.services.l3.ipv6 import Flowi6, Ipv6
from pktpath.services.l3.ndisc import RADVD_ICMP6_FILTER, AdvInterface, Ndisc
from pktpath.services.l3.route6 import rta_expires
from pktpath.services.l3.server import L3Servicer
from pktpath.tools import iproute
from pktpath.topology import parse
from pktpath.wire.addr import ip6_from_str, ip6_to_str

from fakes import Clock
from twohosts import Host

OVERRIDE, WEAK = l2_pb2.NEIGH_UPDATE_F_OVERRIDE, l2_pb2.NEIGH_UPDATE_F_WEAK_OVERRIDE
ISROUTER, OVERRIDE_ISROUTER = l2_pb2.NEIGH_UPDATE_F_ISROUTER, l2_pb2.NEIGH_UPDATE_F_OVERRIDE_ISROUTER

# Linux's: H1's echo request as R got it, and R's Redirect about it (IPv6 packets, as captured)
ECHO = bytes.fromhex(
    "6004ddfb00403a4020010db800010000000000000000000120010db80077000000000000000000018000ec9849c700016cc6166b0000"
    "00009f330c0000000000101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637")
REDIRECT = bytes.fromhex(
    "6000000000a03afffe80000000000000000000fffe0001fe20010db800010000000000000000000189009b1f00000000fe800000000000"
    "00000000fffe00010220010db80077000000000000000000010201020000000102040e0000000000006004ddfb00403a4020010db80001"
    "0000000000000000000120010db80077000000000000000000018000ec9849c700016cc6166b000000009f330c000000000010111213"
    "1415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637")
MAC_R, MAC_H1, MAC_T = bytes.fromhex("0200000001fe"), bytes.fromhex("020000000101"), bytes.fromhex("020000000102")
LL_R, LL_T, H1 = "fe80::ff:fe00:1fe", "fe80::ff:fe00:102", "2001:db8:1::1"
FAR = "2001:db8:77::1"


def ip6(text: str) -> int:
    return ip6_from_str(text)


class Node:
    """One host's IPv6 (Addrconf, Ipv6, Ip6Output, Ndisc wired as services/l3/layer.py wires
    them) on eth0, dad off; L2 faked: what goes down is kept, neigh_update recorded, the nd_tbl
    entries neigh_lookup finds NUD_VALID are `valid`."""

    def __init__(self, mac: bytes, addr6: str, *, forwarding: bool, clock: Clock, routes=(),
                 advertise: dict | None = None) -> None:
        self.clock, self.mac = clock, mac
        self.mib = Mib()
        self.addrconf = Addrconf(forwarding=forwarding, dad=False)
        self.addrconf.addrconf_add_dev("eth0")
        self.addrconf.inet6_addr_add("eth0", ip6(addr6), 64)
        self.addrconf.addrconf_addr_gen("eth0", mac)
        for dst, gw in routes:
            self.addrconf.ip6_route_add(Fib6Info(ip6(dst), 64, "eth0", gateway=ip6(gw), metric=1024, protocol="boot"))
        self.updates: list[tuple] = []
        self.valid: dict[int, bytes] = {}
        self.down: list = []
        ratelimit = IcmpRateLimit(clock=clock)
        self.ip = Ipv6("X", self.addrconf, to_l4=lambda kind, items: True, mib=self.mib, clock=clock,
                       ratelimit=ratelimit, ip6_output=lambda skb, flow: self.out.ip6_output(skb, flow),
                       ndisc_rcv=lambda skb, hdr: self.nd.ndisc_rcv(skb, hdr),
                       route_input=lambda daddr, iif: self.out.ip6_route_input(daddr, iif),
                       forward=lambda *args: self.out.ip6_forward(*args),
                       raw6_rcv=(lambda skb, hdr: self.nd.radvd_rcv(skb, hdr)) if advertise else None,
                       raw6_filter=RADVD_ICMP6_FILTER)
        self.out = Ip6Output("X", self.addrconf, {"eth0": 1500}, to_l2=self.to_l2, loopback_rcv=self.ip.ipv6_rcv,
                             get_saddr=self.ip.ipv6_dev_get_saddr, mib=self.mib, clock=clock,
                             mc_joined=self.ip.ipv6_chk_mcast_addr, ratelimit=ratelimit,
                             ndisc_send_redirect=lambda skb, hdr, target: self.nd.ndisc_send_redirect(skb, hdr, target))
        self.nd = Ndisc("X", self.addrconf, {"eth0": mac}, neigh_update=self.neigh_update,
                        ip6_local_out=self.out.ip6_local_out, mib=self.mib, clock=clock, rand=lambda: 0.5,
                        advertise=advertise, ra_output=self.out.ip6_output, route6=self.out.route6,
                        ratelimit=ratelimit, neigh_lookup=lambda dev, ip: self.valid.get(ip))

    def neigh_update(self, dev, ip, lladdr, state, flags, create):
        self.updates.append((dev, ip6_to_str(ip), lladdr, state, flags, create))
        return True

    def to_l2(self, skbs) -> bool:
        self.down += [bytes(skb.payload()) for skb in skbs]
        return True

    def rcv(self, packet: bytes, src_mac: bytes = MAC_R) -> int:
        """An IPv6 packet off the wire, as L2 hands it up; Ipv6's verdict."""
        multicast = packet[24] == 0xFF
        raw = bytes(Ether(src=src_mac, dst="33:33:00:00:00:01" if multicast else self.mac) / IPv6(packet))
        skb = s.alloc_skb(s.NET_SKB_PAD + len(raw))
        s.skb_reserve(skb, s.NET_SKB_PAD)
        s.skb_put_data(skb, raw)
        s.skb_reset_mac_header(skb)
        s.skb_pull(skb, 14)
        s.skb_reset_network_header(skb)
        skb.dev, skb.protocol = "eth0", 0x86DD
        skb.pkt_type = pb.PACKET_MULTICAST if multicast else pb.PACKET_HOST
        return self.ip.ipv6_rcv(skb)

    def sent(self) -> list[IPv6]:
        pkts = [IPv6(p) for p in self.down]
        self.down.clear()
        return pkts

    def route_get(self, daddr: str) -> str:
        return str(self.out.ip6_route_output(Flowi6(ip6(daddr))))

    def icmp6(self, name: str) -> int:
        return self.mib.get("Icmp6", name)


# -- radvd's raw socket ------------------------------------------------------------------------

def radvd_router() -> Node:
    """R advertising 2001:db8:9::/64, its first RAs long gone (past MIN_DELAY_BETWEEN_RAS)."""
    clock = Clock(100.0)
    r = Node(bytes.fromhex("0200000009fe"), "2001:db8:9::fe", forwarding=True, clock=clock,
             advertise={"eth0": AdvInterface(((ip6("2001:db8:9::"), 64),))})
    r.nd.radvd_kickoff_adverts("eth0")
    clock.t += 10
    r.nd.tick()
    r.sent()
    return r


def rs(src: str, *, cksum: int | None = None) -> bytes:
    p = IPv6(src=src, dst="ff02::2", hlim=255) / ICMPv6ND_RS()
    if src != "::":
        p = p / ICMPv6NDOptSrcLLAddr(lladdr="02:00:00:00:09:01")
    if cksum is not None:
        p[ICMPv6ND_RS].cksum = cksum
    return bytes(p)


def test_an_rs_from_the_unspecified_address_reaches_radvd_and_gets_the_multicast_ra_though_the_kernel_drops_it():
    """radvd reads RSs on its raw ICMPv6 socket, a clone handed over before icmpv6_rcv; the
    kernel's own ndisc drops one from :: (NOT_SPECIFIED). Linux's radvd answered it with the
    multicast RA at once."""
    r = radvd_router()
    assert r.rcv(rs("::"), bytes.fromhex("020000000905")) == pb.SKB_DROP_REASON_NOT_SPECIFIED
    r.nd.tick()
    [ra] = r.sent()
    assert (ra.src, ra.dst, ra.hlim) == ("fe80::ff:fe00:9fe", "ff02::1", 255) and ICMPv6ND_RA in ra
    assert r.icmp6("InRouterSolicits") == 1 and r.icmp6("OutRouterAdvertisements") == 2


def test_an_rs_from_an_address_is_answered_with_a_unicast_ra_and_the_kernel_learns_the_host():
    r = radvd_router()
    assert r.rcv(rs("fe80::ff:fe00:901"), bytes.fromhex("020000000901")) == 0  # ndisc_recv_rs consumed it
    r.nd.tick()
    assert [(p.dst, ICMPv6ND_RA in p) for p in r.sent()] == [("fe80::ff:fe00:901", True)]
    assert r.updates[-1][:2] == ("eth0", "fe80::ff:fe00:901")


def test_radvd_never_sees_an_rs_with_a_bad_checksum():
    """rawv6_recvmsg checks it as radvd reads: the clone is freed, radvd reads nothing;
    icmpv6_rcv counts the original."""
    r = radvd_router()
    assert r.rcv(rs("::", cksum=0x1234), bytes.fromhex("020000000905")) == pb.SKB_DROP_REASON_ICMP_CSUM
    r.nd.tick()
    assert r.sent() == [] and r.icmp6("InCsumErrors") == 1


def test_a_router_that_advertises_nothing_has_no_raw_socket_and_an_rs_from_the_unspecified_address_gets_nothing():
    r = Node(bytes.fromhex("0200000009fe"), "2001:db8:9::fe", forwarding=True, clock=Clock(100.0))
    assert r.rcv(rs("::"), bytes.fromhex("020000000905")) == pb.SKB_DROP_REASON_NOT_SPECIFIED
    r.nd.tick()
    assert r.sent() == []


# -- redirects sent ------------------------------------------------------------------------------

def redirecting_router(routes=()) -> Node:
    """Linux's R: 2001:db8:1::fe/64, forwarding, 2001:db8:77::/64 via fe80::ff:fe00:102, which L2
    holds NUD_VALID (Linux's `nud permanent` entry)."""
    r = Node(MAC_R, "2001:db8:1::fe", forwarding=True, clock=Clock(100.0), routes=[("2001:db8:77::", LL_T), *routes])
    r.valid[ip6(LL_T)] = MAC_T
    return r


def test_a_router_forwarding_back_out_of_the_link_sends_linuxs_redirect_byte_for_byte_then_the_packet():
    r = redirecting_router()
    assert r.rcv(ECHO, MAC_H1) == 0
    assert r.down == [REDIRECT, ECHO[:7] + bytes([63]) + ECHO[8:]]  # the redirect, then the echo (hop limit 63)
    assert r.icmp6("OutRedirects") == 1 and r.mib.get("Ip6", "OutForwDatagrams") == 1


def test_without_a_valid_neighbour_for_the_target_the_redirect_has_no_target_link_layer_address():
    r = redirecting_router()
    r.valid.clear()
    r.rcv(ECHO, MAC_H1)
    rd = r.sent()[0]
    assert ICMPv6NDOptDstLLAddr not in rd and rd.plen == 152
    assert bytes(rd[ICMPv6NDOptRedirectedHdr].pkt) == ECHO and rd[ICMPv6NDOptRedirectedHdr].len == 14


def test_redirects_are_limited_to_a_burst_of_six_then_one_a_second_per_destination_and_per_source():
    """inet_peer_xrlim_allow(peer, 1 s) on the destination's peer (ip6_forward) and the source's
    (ndisc_send_redirect): every packet is forwarded."""
    r = redirecting_router()
    for _ in range(8):
        r.rcv(ECHO, MAC_H1)
    assert r.icmp6("OutRedirects") == 6 and r.mib.get("Ip6", "OutForwDatagrams") == 8
    r.clock.t += 1.0
    r.rcv(ECHO, MAC_H1)
    r.rcv(ECHO, MAC_H1)
    assert r.icmp6("OutRedirects") == 7
    other = redirecting_router()  # one source, many destinations: the source's peer runs out
    for n in range(8):
        other.rcv(bytes(IPv6(src=H1, dst=f"2001:db8:77::{n + 1:x}", hlim=64) / ICMPv6EchoRequest()), MAC_H1)
    assert other.icmp6("OutRedirects") == 6


def test_no_redirect_to_a_source_off_link_nor_towards_a_target_that_is_not_link_local():
    """ndisc_send_redirect: "destination is not a neighbour" (the source's route has a gateway)
    and "target address is not link-local unicast"; the packet goes on."""
    r = redirecting_router(routes=[("2001:db8:5::", "2001:db8:1::5")])
    r.rcv(bytes(IPv6(src="2001:db8:5::9", dst=FAR, hlim=64) / ICMPv6EchoRequest()), MAC_H1)
    assert r.icmp6("OutRedirects") == 0 and [p.hlim for p in r.sent()] == [63]
    r.addrconf.ip6_route_add(Fib6Info(ip6("2001:db8:78::"), 64, "eth0", gateway=ip6("2001:db8:1::7"), metric=1024))
    r.rcv(bytes(IPv6(src=H1, dst="2001:db8:78::1", hlim=64) / ICMPv6EchoRequest()), MAC_H1)
    assert r.icmp6("OutRedirects") == 0 and [p.dst for p in r.sent()] == ["2001:db8:78::1"]


def test_a_destination_on_the_link_is_redirected_to_itself():
    r = redirecting_router()
    r.rcv(bytes(IPv6(src=H1, dst="2001:db8:1::9", hlim=64) / ICMPv6EchoRequest()), MAC_H1)
    rd = r.sent()[0][ICMPv6ND_Redirect]
    assert (rd.tgt, rd.dst) == ("2001:db8:1::9", "2001:db8:1::9")


# -- redirects received --------------------------------------------------------------------------

def host() -> Node:
    """Linux's H1: 2001:db8:1::1/64, 2001:db8:77::/64 via R's fe80::ff:fe00:1fe, accept_redirects 1."""
    return Node(MAC_H1, H1, forwarding=False, clock=Clock(100.0), routes=[("2001:db8:77::", LL_R)])


def redirect(*, src: str = LL_R, tgt: str = LL_T, dst: str = FAR, tlla: str | None = "02:00:00:00:01:02",
             quoted: bytes | None = ECHO) -> bytes:
    p = IPv6(src=src, dst=H1, hlim=255) / ICMPv6ND_Redirect(tgt=tgt, dst=dst)
    if tlla:
        p = p / ICMPv6NDOptDstLLAddr(lladdr=tlla)
    if quoted is not None:
        p = p / ICMPv6NDOptRedirectedHdr(pkt=quoted)
    return bytes(p)


def test_a_host_takes_linuxs_redirect_from_its_first_hop_and_route_get_shows_the_new_one():
    """Linux's H1 after it: `2001:db8:77::1 from :: via fe80::ff:fe00:102 dev eth0 src
    2001:db8:1::1 metric 1024 pref medium`, `fe80::ff:fe00:102 ... router STALE`."""
    h = host()
    assert h.route_get(FAR) == "2001:db8:77::1 from :: via fe80::ff:fe00:1fe dev eth0 src 2001:db8:1::1 metric 1024 " \
                               "pref medium"
    assert h.rcv(REDIRECT) == 0
    assert h.route_get(FAR) == "2001:db8:77::1 from :: via fe80::ff:fe00:102 dev eth0 src 2001:db8:1::1 metric 1024 " \
                               "pref medium"
    assert h.out.ip6_route_output(Flowi6(ip6(FAR))).nexthop == ip6(LL_T)
    assert h.updates == [("eth0", LL_T, MAC_T, l2_pb2.NUD_STALE, WEAK | OVERRIDE | OVERRIDE_ISROUTER | ISROUTER, True)]
    assert h.icmp6("InRedirects") == 1
    assert h.route_get("2001:db8:77::2") == "2001:db8:77::2 from :: via fe80::ff:fe00:1fe dev eth0 src " \
                                            "2001:db8:1::1 metric 1024 pref medium"  # per destination


def test_the_redirect_exception_goes_at_the_gcs_first_run_30_s_after_it_came_used_or_not():
    h = host()
    h.rcv(REDIRECT)
    h.nd.tick()
    h.clock.t += 29.9
    h.nd.tick()
    assert "via fe80::ff:fe00:102" in h.route_get(FAR)
    h.clock.t += 0.1
    h.nd.tick()
    assert "via fe80::ff:fe00:1fe" in h.route_get(FAR)


def long_tlla() -> bytes:
    """A redirect whose target link-layer address option is 16 bytes: ndisc_opt_addr_data refuses it."""
    return bytes(IPv6(src=LL_R, dst=H1, hlim=255) / ICMPv6ND_Redirect(tgt=LL_T, dst=FAR)
                 / ICMPv6NDOptDstLLAddr(lladdr="02:00:00:00:01:02", len=2) / ICMPv6NDOptRedirectedHdr(pkt=ECHO))


@pytest.mark.parametrize("why, raw", [
    ("not from the current first hop", lambda: redirect(src="fe80::ff:fe00:1ff")),
    ("a target neither link-local nor the destination", lambda: redirect(tgt="2001:db8:1::2")),
    ("a multicast destination", lambda: redirect(dst="ff0e::1")),
    ("a target link-layer address of the wrong length", long_tlla),
])
def test_a_host_ignores_an_invalid_redirect_but_counts_it(why, raw):
    h = host()
    h.rcv(raw())
    assert "via fe80::ff:fe00:1fe" in h.route_get(FAR), why
    assert h.updates == [] and h.icmp6("InRedirects") == 1


def test_a_host_with_accept_redirects_0_or_forwarding_keeps_its_route():
    h = host()
    h.nd.devconf("eth0").accept_redirects = False
    h.rcv(REDIRECT)
    assert "via fe80::ff:fe00:1fe" in h.route_get(FAR)
    h = host()
    h.addrconf.forwarding = True
    h.rcv(REDIRECT)
    assert "via fe80::ff:fe00:1fe" in h.route_get(FAR)


def test_a_redirect_to_the_destination_itself_makes_it_on_link_and_not_a_router():
    h = host()
    h.rcv(redirect(tgt=FAR, tlla="02:00:00:00:77:01"))
    assert h.route_get(FAR) == "2001:db8:77::1 from :: dev eth0 src 2001:db8:1::1 metric 1024 pref medium"
    assert h.out.ip6_route_output(Flowi6(ip6(FAR))).nexthop == ip6(FAR)
    assert h.updates[0][1:] == (FAR, bytes.fromhex("020000007701"), l2_pb2.NUD_STALE, WEAK | OVERRIDE, True)


def test_a_redirect_without_its_header_still_redirects_and_is_dropped_one_about_a_protocol_without_handler_not():
    """ip6_redirect_no_header changes the route as ip6_redirect does (the tracepoint: NOT_SPECIFIED);
    a quoted packet whose protocol has no error handler changes nothing (icmpv6_notify)."""
    h = host()
    assert h.rcv(redirect(quoted=None)) == pb.SKB_DROP_REASON_NOT_SPECIFIED
    assert "via fe80::ff:fe00:102" in h.route_get(FAR)
    h = host()
    assert h.rcv(redirect(quoted=bytes(IPv6(src=H1, dst=FAR, nh=253, hlim=64) / bytes(8)))) == 0
    assert "via fe80::ff:fe00:1fe" in h.route_get(FAR)
    h = host()
    assert h.rcv(redirect(quoted=bytes(IPv6(src=H1, dst=FAR, hlim=64) / UDP(sport=1, dport=2) / b"x"))) == 0
    assert "via fe80::ff:fe00:102" in h.route_get(FAR)


def test_a_router_and_a_host_of_pktpath_redirect_end_to_end():
    """R's Redirect, as the host's receive path takes it: the host's next packet goes to the target."""
    r = redirecting_router()
    h = host()
    h.out.ip6_output(s_echo(), Flowi6(ip6(FAR), proto=58, icmp_type=128))
    [echo] = h.down
    h.down.clear()
    r.rcv(echo, MAC_H1)
    rd, fwd = r.down
    assert h.rcv(rd) == 0 and h.out.ip6_route_output(Flowi6(ip6(FAR))).nexthop == ip6(LL_T)


def s_echo():
    skb = s.alloc_skb(s.MAX_HEADER + 64)
    s.skb_reserve(skb, s.MAX_HEADER)
    s.skb_put_data(skb, bytes(ICMPv6EchoRequest(id=7, seq=1)))
    return skb


# -- route and address views (the whole stack of two hosts, on a virtual clock) --------------------

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

[[host]]
name = "H"
[[host.interface]]
name = "eth0"
mac = "02:00:00:00:09:01"
addr = "10.0.9.1/24"
"""


class View:
    """pktpath ip's view of a host, its L3 answering in this process (the servicer's methods)."""

    def __init__(self, l3) -> None:
        self.stub = {"l3": self}
        self.l3 = l3

    def GetRoutes(self, request, timeout=None):
        return L3Servicer.GetRoutes(self.l3, request, None)

    def GetAddrs(self, request, timeout=None):
        return L3Servicer.GetAddrs(self.l3, request, None)

    def Ip6RouteOutput(self, request, timeout=None):
        return self.l3.Ip6RouteOutput(request, None)

    def route(self) -> list[str]:
        return [line for rec in iproute.routes(self, 6) for line in iproute.route_text(rec)]

    def addr(self) -> list[str]:
        return [line for rec in iproute.addresses(self, 6) for line in iproute.link_text(rec)][1:]

    def route_get(self, dest: str) -> str:
        [line] = iproute.route_text(iproute.route_get(self, dest)[0])
        return line


@pytest.fixture
def pair():
    topo = parse(tomllib.loads(TOPOLOGY))
    sim = Sim()
    r, h = Host(sim, topo.host("R")), Host(sim, topo.host("H"))
    r.cable.peer, h.cable.peer = h.l2, r.l2
    sim.advance_to(int(4e9))  # DAD on both, R's first RA, H's RS and R's unicast answer
    yield sim, r, h, View(h.l3)
    r.close()
    h.close()


def at(sim: Sim, t: float) -> None:
    sim.advance_to(int(t * 1e9))


def ra_time(h) -> float:
    """When H took its last RA from R: its default route expires 1800 s after."""
    return next(r.expires for r in h.l3.addrconf.routes() if r.dst_len == 0) - 1800


def test_ip_6_route_and_addr_show_the_ra_routes_and_slaac_lifetimes_as_linux_3_s_after_the_ra(pair):
    sim, r, h, view = pair
    at(sim, ra_time(h) + 3.5)
    assert view.route() == [
        "2001:db8:9::/64 dev eth0 proto kernel metric 256 expires 86396sec pref medium",
        "fe80::/64 dev eth0 proto kernel metric 256 pref medium",
        "default via fe80::ff:fe00:9fe dev eth0 proto ra metric 1024 expires 1796sec mtu 1400 hoplimit 64 pref medium"]
    assert view.addr() == [
        "    inet6 2001:db8:9::ff:fe00:901/64 scope global dynamic mngtmpaddr ",
        "       valid_lft 86397sec preferred_lft 14397sec",
        "    inet6 fe80::ff:fe00:901/64 scope link ",
        "       valid_lft forever preferred_lft forever"]


def test_ip_j_6_route_has_linuxs_fields_in_linuxs_order(pair):
    """Linux's `ip -j -6 route`: ... "flags":[],"expires":1796,"metrics":[{"mtu":1400,"hoplimit":64}],"pref"..."""
    sim, r, h, view = pair
    at(sim, ra_time(h) + 3.5)
    recs = iproute.routes(view, 6)
    assert recs[0] == {"dst": "2001:db8:9::/64", "dev": "eth0", "protocol": "kernel", "metric": 256, "flags": [],
                       "expires": 86396, "pref": "medium"}
    assert list(recs[-1].items()) == [
        ("dst", "default"), ("gateway", "fe80::ff:fe00:9fe"), ("dev", "eth0"), ("protocol", "ra"), ("metric", 1024),
        ("flags", []), ("expires", 1796), ("metrics", [{"mtu": 1400, "hoplimit": 64}]), ("pref", "medium")]
    addr = iproute.addresses(view, 6)[0]["addr_info"][0]
    assert (addr["dynamic"], addr["mngtmpaddr"], addr["valid_life_time"], addr["preferred_life_time"]) == \
        (True, True, 86397, 14397)


def test_ip_6_route_get_through_the_ra_route_shows_its_metrics_without_expires(pair):
    """Linux: `2001:db8:77::1 from :: via fe80::ff:fe00:9fe dev D proto ra src 2001:db8:9::ff:fe00:901
    metric 1024 mtu 1400 hoplimit 64 pref medium`; a prefix of the link: `proto kernel`, no metrics."""
    sim, r, h, view = pair
    assert view.route_get(FAR) == "2001:db8:77::1 from :: via fe80::ff:fe00:9fe dev eth0 proto ra src " \
                                  "2001:db8:9::ff:fe00:901 metric 1024 mtu 1400 hoplimit 64 pref medium"
    assert view.route_get("2001:db8:9::5") == "2001:db8:9::5 from :: dev eth0 proto kernel src " \
                                              "2001:db8:9::ff:fe00:901 metric 256 pref medium"


def inject(sim: Sim, host, frame: bytes) -> None:
    """A frame onto host's wire from elsewhere (as the cable hands frames over)."""
    rx = s.alloc_skb(s.NET_SKB_PAD + len(frame), sampled=False)
    s.skb_reserve(rx, s.NET_SKB_PAD)
    s.skb_put_data(rx, frame)
    rx.dev, rx.tstamp = "eth0", sim.now_ns
    sim.post(lambda: host.l2.NetifReceiveSkb.hop_batch(host.l2, s.to_batch([rx])))
    sim.drain()


def test_a_short_lived_ra_deprecates_then_removes_its_address_its_routes_showing_below_zero_until_the_gc(pair):
    """Linux after an RA of router lifetime 4, prefix valid 8, preferred 3: at 3.5 s `deprecated`,
    `valid_lft 5sec preferred_lft 0sec`, the default route `expires 0sec`; at 8.5 s the address gone,
    the routes at `expires -4sec` and `expires 0sec`, until the fib6 gc removed them."""
    sim, r, h, view = pair
    t = sim.clock()
    ra = Ether(src="02:00:00:00:09:aa", dst="33:33:00:00:00:01") / IPv6(src="fe80::ff:fe00:9aa", dst="ff02::1",
                                                                      hlim=255) / ICMPv6ND_RA(
        chlim=64, routerlifetime=4, prf=0) / ICMPv6NDOptPrefixInfo(
        prefixlen=64, L=1, A=1, validlifetime=8, preferredlifetime=3, prefix="2001:db8:a::") / ICMPv6NDOptSrcLLAddr(
        lladdr="02:00:00:00:09:aa")
    inject(sim, h, bytes(ra))
    at(sim, t + 0.2)
    assert "default via fe80::ff:fe00:9aa dev eth0 proto ra metric 1024 expires 3sec hoplimit 64 pref medium" \
        in view.route()
    assert "2001:db8:a::/64 dev eth0 proto kernel metric 256 expires 7sec pref medium" in view.route()
    at(sim, t + 3.5)
    addr = view.addr()
    assert addr[:2] == ["    inet6 2001:db8:a::ff:fe00:901/64 scope global deprecated dynamic mngtmpaddr ",
                        "       valid_lft 5sec preferred_lft 0sec"]
    assert "default via fe80::ff:fe00:9aa dev eth0 proto ra metric 1024 expires 0sec hoplimit 64 pref medium" \
        in view.route()
    at(sim, t + 8.5)
    assert "2001:db8:a::" not in "".join(view.addr())
    shown = view.route()
    assert "default via fe80::ff:fe00:9aa dev eth0 proto ra metric 1024 expires -4sec hoplimit 64 pref medium" in shown
    assert "2001:db8:a::/64 dev eth0 proto kernel metric 256 expires 0sec pref medium" in shown
    assert "via fe80::ff:fe00:9fe" in view.route_get(FAR)  # an expired route is never chosen (fib6_check_expired)
    at(sim, t + 8.5 + 30)
    assert not any("9aa" in line or "2001:db8:a::" in line for line in view.route())


def test_expires_is_what_is_left_truncated_toward_zero():
    assert (rta_expires(None, 5.0), rta_expires(105.0, 5.5), rta_expires(5.0, 9.5), rta_expires(5.0, 5.4)) == \
        (None, 99, -4, 0)


def test_the_route_table_rpc_carries_no_expiry_for_a_permanent_route(pair):
    sim, r, h, view = pair
    table = view.GetRoutes(empty_pb2.Empty())
    link_local = next(x for x in table.routes if x.dst == "fe80::/64")
    assert not link_local.HasField("expires") and (link_local.mtu, link_local.hoplimit) == (0, 0)


def test_in_the_layer_an_rs_from_the_unspecified_address_gets_radvds_multicast_ra(pair):
    """L3 as the service runs it: the RS reaches radvd on its raw socket (services/l3/layer.py's tap)."""
    sim, r, h, view = pair
    at(sim, 10.0)  # past MIN_DELAY_BETWEEN_RAS since R's last multicast RA
    before = len(r.cable.frames)
    rs_frame = Ether(src="02:00:00:00:09:05", dst="33:33:00:00:00:02") / IPv6(src="::", dst="ff02::2", hlim=255) \
        / ICMPv6ND_RS()
    inject(sim, r, bytes(rs_frame))
    at(sim, 10.1)
    ras = [p for p in map(Ether, r.cable.frames[before:]) if ICMPv6ND_RA in p]
    assert [(p[IPv6].src, p[IPv6].dst) for p in ras] == [("fe80::ff:fe00:9fe", "ff02::1")]
