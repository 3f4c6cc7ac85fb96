"""Router advertisements sent by a pktpath router host playing radvd (services/l3/ndisc.py), and
received by a pktpath host, over a wire between the two (each with its Addrconf, Ipv6, Ip6Output
and Ndisc; L2's nd_tbl faked).

The expectations are what radvd 2.19 and Linux 6.18 did in two network namespaces joined by a
veth pair: R (02:00:00:00:01:fe, 2001:db8:1::fe/64, forwarding 1) running radvd with
`interface hjraR { AdvSendAdvert on; prefix 2001:db8:1::/64 { }; };`, H (02:00:00:00:01:01)
with Linux's defaults, tcpdump on H, crafted RSs from H with scapy; then `ip -6 addr`,
`ip -6 route` and `ip -6 neigh` in both. The RA bytes below are radvd's, as captured."""

import pytest
from scapy.layers.inet6 import (
    ICMPv6ND_RA, ICMPv6ND_RS, ICMPv6NDOptMTU, ICMPv6NDOptPrefixInfo, ICMPv6NDOptSrcLLAddr, IPv6,
)
from scapy.layers.l2 import Ether

from pktpath import skbuff as s
from pktpath.counters import Mib
from pktpath.pb import l2_pb2
from pktpath.pb import skbuff_pb2 as pb
from pktpath.services.l3.addrconf import IFA_F_MANAGETEMPADDR, IFA_F_TENTATIVE, Addrconf
from pktpath.services.l3.ip6_output import Ip6Output
from pktpath.services.l3.ipv6 import Ipv6
from pktpath.services.l3.ndisc import RADVD_ICMP6_FILTER, AdvInterface, Ndisc, radvd_conf
from pktpath.topology import TopologyError, parse
from pktpath.wire.addr import ip6_from_str, ip6_to_str

from fakes import Clock

MAC_R, MAC_H = bytes.fromhex("0200000001fe"), bytes.fromhex("020000000101")
LL_R, LL_H = "fe80::ff:fe00:1fe", "fe80::ff:fe00:101"
PREFIX, R6, SLAAC_H = "2001:db8:1::", "2001:db8:1::fe", "2001:db8:1::ff:fe00:101"
ISROUTER = l2_pb2.NEIGH_UPDATE_F_ISROUTER
T0 = 100.0

# radvd's first RA on the wire (ICMPv6 message, from fe80::ff:fe00:1fe to ff02::1)
RADVD_RA = bytes.fromhex("860033c3400007080000000000000000"
                         "030440c000015180000038400000000020010db8000100000000000000000000"
                         "01010200000001fe")
# with AdvLinkMTU 1400 and a second prefix, 2001:db8:2::/64; and its last, on SIGTERM (cease_adv)
RADVD_RA_MTU = bytes.fromhex("86002de1400007080000000000000000"
                             "030440c000015180000038400000000020010db8000100000000000000000000"
                             "030440c000015180000038400000000020010db8000200000000000000000000"
                             "0501000000000578" "01010200000001fe")
RADVD_RA_CEASE = bytes.fromhex("860034e9400000000000000000000000"
                               "030440c000015180000038400000000020010db8000100000000000000000000"
                               "030440c000015180000038400000000020010db8000200000000000000000000"
                               "0501000000000578" "01010200000001fe")


class Node:
    """One host's IPv6: Addrconf, Ipv6, Ip6Output (the wire is to_l2) and Ndisc; neigh_update
    recorded (every entry known)."""

    def __init__(self, name: str, mac: bytes, clock: Clock, wire: "Wire", *, forwarding: bool, addr6=(),
                 advertise: dict | None = None, dad: bool = True, rand: float = 0.5) -> None:
        self.name, self.mac, self.clock, self.wire = name, mac, clock, wire
        self.mib = Mib()
        self.addrconf = Addrconf(forwarding=forwarding, dad=dad)
        self.addrconf.addrconf_add_dev("eth0")
        for a in addr6:
            self.addrconf.inet6_addr_add("eth0", ip6_from_str(a), 64)
        self.addrconf.addrconf_addr_gen("eth0", mac)
        self.updates: list[tuple] = []
        self.rand = rand
        self.ip = Ipv6(name, self.addrconf, to_l4=lambda kind, items: True,
                       ip6_output=lambda skb, flow: self.out.ip6_output(skb, flow), mib=self.mib,
                       ndisc_rcv=lambda skb, hdr: self.nd.ndisc_rcv(skb, hdr), clock=clock,
                       raw6_rcv=(lambda skb, hdr: self.nd.radvd_rcv(skb, hdr)) if advertise else None,
                       raw6_filter=RADVD_ICMP6_FILTER)
        self.out = Ip6Output(name, self.addrconf, {"eth0": 1500}, to_l2=self.to_l2, loopback_rcv=self.ip.ipv6_rcv,
                             get_saddr=self.ip.ipv6_dev_get_saddr, mib=self.mib, clock=clock,
                             mc_joined=self.ip.ipv6_chk_mcast_addr)
        self.nd = Ndisc(name, self.addrconf, {"eth0": mac}, neigh_update=self.neigh_update,
                        ip6_local_out=self.out.ip6_local_out, mib=self.mib, clock=clock, rand=lambda: self.rand,
                        advertise=advertise, ra_output=self.out.ip6_output)

    def neigh_update(self, dev, ip, lladdr, state, flags, create):
        self.updates.append((dev, ip6_to_str(ip), lladdr, state, flags, create))
        return True

    def to_l2(self, skbs) -> bool:
        for skb in skbs:
            self.wire.sent.append((round(self.clock.t - T0, 6), self, bytes(skb.payload())))
        return True

    def rcv(self, packet: bytes, src_mac: bytes) -> int:
        """A frame off the wire as L2 hands it up (mac header kept, data at the IPv6 header)."""
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

    def routes(self) -> list[str]:
        return [str(r) for r in self.addrconf.routes()]

    def router_neighbours(self) -> list[str]:
        return [ip for dev, ip, lladdr, state, flags, create in self.updates if flags & ISROUTER]


class Wire:
    """R and H on one link: what each sends is kept (seconds since T0, sender, IPv6 packet) and
    delivered to the other by run()."""

    def __init__(self, *, r_rand: float = 0.5, h_rand: float = 0.5, advertise: AdvInterface | None = None,
                 forwarding: bool = True, r_dad: bool = True) -> None:
        self.clock = Clock(T0)
        self.sent: list[tuple[float, Node, bytes]] = []
        self.seen: list[tuple[float, str, IPv6]] = []
        conf = {"eth0": advertise or AdvInterface(((ip6_from_str(PREFIX), 64),))}
        self.r = Node("R", MAC_R, self.clock, self, forwarding=forwarding, addr6=(R6,), advertise=conf, dad=r_dad,
                      rand=r_rand)
        self.h = Node("H", MAC_H, self.clock, self, forwarding=False, rand=h_rand)

    def start(self, *nodes: Node) -> None:
        for node in nodes or (self.r, self.h):
            node.nd.start()

    def run(self, until: float, step: float = 0.05) -> None:
        """Time goes on to `until` seconds after T0: each node's timers run and frames cross until
        nothing more happens at that time."""
        t, until = round(self.clock.t - T0, 6), round(until, 6)
        while True:
            while True:
                for node in (self.r, self.h):
                    node.nd.tick()
                if not self.sent:
                    break
                self.deliver()
            if t >= until:
                break
            t = round(min(until, t + step), 6)
            self.clock.t = T0 + t

    def deliver(self) -> None:
        while self.sent:
            at, sender, packet = self.sent.pop(0)
            self.seen.append((at, sender.name, IPv6(packet)))
            (self.h if sender is self.r else self.r).rcv(packet, sender.mac)

    def ras(self) -> list[tuple[float, IPv6]]:
        """The RAs R sent so far, with when."""
        return [(at, p) for at, who, p in self.seen if who == "R" and ICMPv6ND_RA in p]

    def rss(self) -> list[tuple[float, IPv6]]:
        return [(at, p) for at, who, p in self.seen if who == "H" and ICMPv6ND_RS in p]


def rs_from(wire: Wire, src: str, *, sll: bool = True, hlim: int = 255) -> int:
    """An RS from H's side of the wire, crafted (as scapy sent them into the namespace): what R's
    receive path says. One from :: the kernel drops (ndisc_validate) but radvd's raw socket
    still gets (raw6_local_deliver, before icmpv6_rcv)."""
    p = IPv6(src=src, dst="ff02::2", hlim=hlim) / ICMPv6ND_RS()
    if sll:
        p = p / ICMPv6NDOptSrcLLAddr(lladdr=MAC_H)
    return wire.r.rcv(bytes(p), MAC_H)


def checked(p: IPv6) -> IPv6:
    """The packet, its ICMPv6 checksum as scapy computes it."""
    rebuilt = p.copy()
    rebuilt[ICMPv6ND_RA].cksum = None
    assert bytes(rebuilt) == bytes(p)
    return p


# -- what the router sends -------------------------------------------------------------------

def test_the_router_says_nothing_until_its_link_local_address_passed_dad_then_advertises_to_all_nodes():
    """radvd 2.19's first RA from R, byte for byte: hop limit 64, no flags, router lifetime 1800,
    the prefix on-link and autonomous with valid 86400 and preferred 14400, then R's MAC."""
    w = Wire()
    w.start(w.r)
    w.run(1.4)  # DAD: a random delay below a second (0.5), the probe, a second without an answer
    assert w.ras() == []
    w.run(1.6)
    [(at, p)] = w.ras()
    assert 1.5 <= at <= 1.55
    assert (p.src, p.dst, p.hlim, p.tc) == (LL_R, "ff02::1", 255, 0)
    ra = checked(p)[ICMPv6ND_RA]
    assert (ra.chlim, ra.M, ra.O, ra.H, ra.prf, ra.routerlifetime, ra.reachabletime, ra.retranstimer) == \
        (64, 0, 0, 0, 0, 1800, 0, 0)
    pi = ra[ICMPv6NDOptPrefixInfo]
    assert (pi.prefixlen, pi.L, pi.A, pi.validlifetime, pi.preferredlifetime, pi.prefix) == \
        (64, 1, 1, 86400, 14400, PREFIX)
    assert ra[ICMPv6NDOptSrcLLAddr].lladdr == "02:00:00:00:01:fe" and ICMPv6NDOptMTU not in ra
    assert bytes(p.payload) == RADVD_RA
    assert w.r.mib.get("Icmp6", "OutRouterAdvertisements") == 1
    assert w.r.mib.get("Ip6", "OutMcastPkts") == w.r.mib.get("Icmp6", "OutMsgs") == 3  # 2 DAD probes, the RA


def test_the_first_three_go_16_seconds_apart_then_one_every_198_to_600_seconds():
    """radvd: kickoff_adverts, then reschedule_iface's MAX_INITIAL_RTR_ADVERT_INTERVAL while
    racount < 3 (tcpdump: 12:41:12.23, 12:41:28.25), then rand_between(198, 600)."""
    w = Wire(r_rand=0.25)
    w.start(w.r)
    w.run(1.25 + 16 * 2 + 198 + 402 * 0.25 + 1, step=0.25)
    assert [at for at, _ in w.ras()] == [1.25, 17.25, 33.25, 33.25 + 198 + 100.5]


def test_an_rs_from_the_hosts_link_local_address_is_answered_at_once_with_a_unicast_ra():
    """AdvRASolicitedUnicast (on): tcpdump showed the answer to fe80::ff:fe00:101 0.8 ms after the
    RS, not rate-limited, and counted among the first three (racount)."""
    w = Wire()
    w.start(w.r)
    w.run(4.0)
    rs_from(w, LL_H)
    w.run(4.05)
    [(_, first), (at, answer)] = w.ras()
    assert at == 4.0 and (answer.src, answer.dst, answer.hlim) == (LL_R, LL_H, 255)
    assert bytes(checked(answer).payload)[4:] == bytes(first.payload)[4:]  # the same RA but its checksum
    w.run(1.5 + 16 + 0.1)
    w.run(1.5 + 16 + 198 + 201)  # racount reached 3 with the answer: the next is rand_between's
    assert [at for at, _ in w.ras()] == [1.5, 4.0, 17.5, 17.5 + 198 + 201]


def test_an_rs_from_the_unspecified_address_gets_the_multicast_ra_at_once_and_the_next_one_rate_limited():
    """An RS from :: 12.9 s after the last multicast RA got one at once; another 1 s later got the
    next 3 s after that RA plus a random delay below 0.5 s (tcpdump: 41.194, then 44.421)."""
    w = Wire(r_rand=0.5)
    w.start(w.r)
    w.run(40.0)
    assert [at for at, _ in w.ras()] == [1.5, 17.5, 33.5]
    rs_from(w, "::", sll=False)
    w.run(40.05)
    rs_from(w, "::", sll=False)
    w.run(41.05)
    rs_from(w, "::", sll=False)  # the later RS moves the same timer
    w.run(45.0)
    assert [(at, p.dst) for at, p in w.ras()[3:]] == [(40.0, "ff02::1"), (43.25, "ff02::1")]


def test_while_the_first_three_go_out_a_rate_limited_rs_waits_the_initial_interval():
    """reschedule_iface() makes any next RA 16 s away while racount < 3, a rate-limited one too
    (tcpdump: radvd's first RA at 56.60, an RS from :: at 57.61, the next RA at 73.63, not 72.60);
    an RS from :: 3.1 s after the first got one at once, and the next came 16 s after that."""
    w = Wire()
    w.start(w.r)
    w.run(2.5)
    rs_from(w, "::", sll=False)
    w.run(2.5 + 16 + 0.1)
    assert [at for at, _ in w.ras()] == [1.5, 18.5]
    w = Wire()
    w.start(w.r)
    w.run(4.6)
    rs_from(w, "::", sll=False)
    w.run(4.6 + 16 + 0.1)
    assert [at for at, _ in w.ras()] == [1.5, 4.6, 20.6]


def test_an_rs_from_the_unspecified_address_with_a_link_layer_address_gets_nothing(caplog):
    w = Wire()
    w.start(w.r)
    w.run(10.0)
    rs_from(w, "::", sll=True)
    w.run(12.0)
    assert [at for at, _ in w.ras()] == [1.5]
    assert "received icmpv6 RS packet with unspecified source address and there is a lladdr option" in caplog.text


def test_the_mtu_option_comes_only_with_adv_link_mtu_after_the_prefixes_and_before_the_link_layer_address():
    w = Wire(advertise=AdvInterface(((ip6_from_str(PREFIX), 64), (ip6_from_str("2001:db8:2::"), 64)), 1400))
    w.start(w.r)
    w.run(1.6)
    [(_, p)] = w.ras()
    assert bytes(p.payload) == RADVD_RA_MTU and checked(p)[ICMPv6NDOptMTU].mtu == 1400


def test_stopping_sends_a_last_ra_with_a_router_lifetime_of_zero():
    """radvd on SIGTERM: stop_adverts, cease_adv (tcpdump: the same RA, router lifetime 0)."""
    w = Wire(advertise=AdvInterface(((ip6_from_str(PREFIX), 64), (ip6_from_str("2001:db8:2::"), 64)), 1400))
    w.start(w.r)
    w.run(1.6)
    w.r.nd.radvd_stop_adverts()
    w.run(1.65)
    assert bytes(w.ras()[-1][1].payload) == RADVD_RA_CEASE
    rs_from(w, LL_H)
    w.run(600)
    assert len(w.ras()) == 2  # and no more, solicited or not


def test_a_router_not_forwarding_advertises_a_router_lifetime_of_zero():
    """radvd's add_ra_header: check_ip6_forwarding() off sends lifetime 0 (the topology refuses it)."""
    w = Wire(forwarding=False)
    w.start(w.r)
    w.run(1.6)
    assert checked(w.ras()[0][1])[ICMPv6ND_RA].routerlifetime == 0


def test_without_dad_the_router_advertises_as_it_starts():
    w = Wire(r_dad=False)
    w.start(w.r)
    w.run(0.0)
    assert [at for at, _ in w.ras()] == [0.0]


def test_the_router_learns_itself_as_a_router_from_its_own_ra_looped_back():
    """Linux's `ip -6 neigh` on R after radvd started: `fe80::ff:fe00:1fe dev hjraR lladdr
    02:00:00:00:01:fe router STALE`; nstat: Icmp6InRouterAdvertisements as many as it sent."""
    w = Wire()
    w.start(w.r)
    w.run(1.6)
    assert w.r.router_neighbours() == [LL_R]
    assert w.r.mib.get("Icmp6", "InRouterAdvertisements") == 1
    assert w.r.addrconf.routes() == Wire().r.addrconf.routes()  # a forwarding host takes nothing else from it


# -- what the host makes of it ----------------------------------------------------------------

def test_the_host_solicits_after_dad_and_takes_its_slaac_address_and_default_route_from_the_answer():
    """Linux's H after radvd answered its RS: `2001:db8:1::ff:fe00:101/64 scope global dynamic
    mngtmpaddr valid_lft 86398sec preferred_lft 14398sec`, `2001:db8:1::/64 dev hjraH proto kernel
    metric 256 expires 86397sec pref medium`, `default via fe80::ff:fe00:1fe dev hjraH proto ra
    metric 1024 expires 1797sec hoplimit 64 pref medium`, `fe80::ff:fe00:1fe ... router STALE`."""
    w = Wire(r_rand=0.2, h_rand=0.6)  # R's link-local passes DAD first (1.2 s), H's RS comes at 1.6 s
    w.start()
    w.run(1.65)
    [(at_rs, rs)] = w.rss()
    assert at_rs == 1.6 and (rs.src, rs.dst) == (LL_H, "ff02::2")
    assert [(at, p.dst) for at, p in w.ras()] == [(1.2, "ff02::1"), (1.6, LL_H)]
    assert w.h.routes() == [
        "2001:db8:1::/64 dev eth0 proto kernel metric 256 pref medium",
        "fe80::/64 dev eth0 proto kernel metric 256 pref medium",
        "default via fe80::ff:fe00:1fe dev eth0 proto ra metric 1024 hoplimit 64 pref medium"]
    slaac = w.h.addrconf.ipv6_get_ifaddr(ip6_from_str(SLAAC_H), "eth0")
    assert slaac.flags == IFA_F_TENTATIVE | IFA_F_MANAGETEMPADDR
    assert (slaac.valid_lft, slaac.prefered_lft) == (86400, 14400)
    assert w.h.router_neighbours()[0] == LL_R
    w.run(4.0)
    assert slaac.flags == IFA_F_MANAGETEMPADDR and w.h.addrconf.ipv6_chk_addr(slaac.addr)
    assert len(w.rss()) == 1  # the RA stopped the solicitations


def test_a_host_that_came_up_first_gets_the_routers_first_unsolicited_ra():
    w = Wire(r_rand=0.5, h_rand=0.1)
    w.start(w.h)
    w.run(3.0)
    assert w.h.routes()[-1].startswith("fe80::/64")  # its RS had no answer: no router yet
    w.start(w.r)
    w.run(5.0)
    assert w.h.routes()[-1] == "default via fe80::ff:fe00:1fe dev eth0 proto ra metric 1024 hoplimit 64 pref medium"


# -- the topology --------------------------------------------------------------------------

def topology(r_extra: str = "", forwarding: str = "true") -> dict:
    import tomllib
    return tomllib.loads(f"""
[[host]]
name = "R"
forwarding = {forwarding}
[[host.interface]]
name = "eth0"
mac = "02:00:00:00:01:fe"
addr = "10.0.9.254/24"
addr6 = ["2001:db8:1::fe/64", "2001:db8:1::fd/64", "fe80::1/64", "fd00:9::1/48"]
advertise = true
{r_extra}
""")


def test_an_advertising_interface_advertises_each_prefix_of_its_addr6_once_but_link_local_ones():
    iface = parse(topology("adv_link_mtu = 1400")).host("R").interface("eth0")
    assert iface.advertise and iface.adv_link_mtu == 1400
    assert radvd_conf([iface]) == {"eth0": AdvInterface(
        ((ip6_from_str("2001:db8:1::"), 64), (ip6_from_str("fd00:9::"), 48)), 1400)}


@pytest.mark.parametrize("changes, words", [
    ({"forwarding": False}, "host R interface eth0: advertise needs forwarding = true on the host"),
    ({"advertise": False, "adv_link_mtu": 1280}, "adv_link_mtu is what router advertisements carry"),
    ({"adv_link_mtu": 1200}, r"AdvLinkMTU for eth0 \(1200\) must be zero or between 1280 and 1500"),
    ({"adv_link_mtu": 1501}, r"AdvLinkMTU for eth0 \(1501\) must be zero or between 1280 and 1500"),
    ({"advertise": "yes"}, "'advertise' must be bool"),
    ({"mtu": 1200, "addr6": []}, "advertise needs an mtu of at least 1280"),
])
def test_the_topology_refuses_what_radvd_would_not_run_with(changes, words):
    doc = topology()
    host, iface = doc["host"][0], doc["host"][0]["interface"][0]
    for key, value in changes.items():
        (host if key == "forwarding" else iface)[key] = value
    with pytest.raises(TopologyError, match=words):
        parse(doc)
