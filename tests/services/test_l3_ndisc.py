"""Neighbour discovery and Duplicate Address Detection (services/l3/ndisc.py) behind Ipv6's receive path.

The expectations are what Linux 6.18 did in two network namespaces joined by a veth pair (A
02:00:00:00:00:0a with 2001:db8::1/64, B 02:00:00:00:00:0b), NDP messages sent with scapy from B,
A's answers captured, `ip -6 addr`, `ip -6 neigh`, `ip -6 route`, the skb:kfree_skb tracepoint for
drop reasons and dmesg for the log lines. What Ndisc sends is decoded with scapy."""

import logging

import pytest
from scapy.layers.inet6 import (
    ICMPv6ND_NA, ICMPv6ND_NS, ICMPv6ND_RA, ICMPv6ND_Redirect, ICMPv6ND_RS, ICMPv6NDOptDstLLAddr, ICMPv6NDOptMTU,
    ICMPv6NDOptPrefixInfo, ICMPv6NDOptRedirectedHdr, ICMPv6NDOptSrcLLAddr, IPv6,
)
from scapy.layers.l2 import Ether
from scapy.layers.inet import UDP

from pktpath import skbuff as s
from pktpath.counters import Mib
from pktpath.pb import l2_pb2
from pktpath.pb import skbuff_pb2 as pb
from pktpath.services.l3.addrconf import (
    IFA_F_DADFAILED, IFA_F_DEPRECATED, IFA_F_MANAGETEMPADDR, IFA_F_NODAD, IFA_F_PERMANENT, IFA_F_TENTATIVE, Addrconf,
)
from pktpath.services.l3.ipv6 import Ipv6
from pktpath.services.l3.ndisc import INET6_IFADDR_STATE_POSTDAD, Ndisc
from pktpath.wire.addr import ip6_from_str, ip6_to_str
from pktpath.wire.ipv6 import Ipv6Hdr

from fakes import Clock

MAC_A, MAC_B = bytes.fromhex("02000000000a"), bytes.fromhex("02000000000b")
A, LL_A = ip6_from_str("2001:db8::1"), ip6_from_str("fe80::ff:fe00:a")
LL_B = ip6_from_str("fe80::ff:fe00:b")
OVERRIDE, WEAK = l2_pb2.NEIGH_UPDATE_F_OVERRIDE, l2_pb2.NEIGH_UPDATE_F_WEAK_OVERRIDE
ISROUTER, OVERRIDE_ISROUTER = l2_pb2.NEIGH_UPDATE_F_ISROUTER, l2_pb2.NEIGH_UPDATE_F_OVERRIDE_ISROUTER
T0 = 100.0


def nsma(addr: str) -> str:
    """The solicited-node group of addr."""
    return ip6_to_str(0xFF02 << 112 | 1 << 32 | 0xFF << 24 | ip6_from_str(addr) & 0xFFFFFF)


class Stack:
    """Host A: its Addrconf, Ipv6 (whose ndisc_rcv is Ndisc's) and Ndisc, with L2's nd_tbl faked:
    neigh_update calls recorded, entries known once created; what goes out recorded."""

    def __init__(self, *, forwarding: bool = False, dad: bool = True, rand: float = 0.5) -> None:
        self.clock = Clock(T0)
        self.mib = Mib()
        self.addrconf = Addrconf(forwarding=forwarding, dad=dad)
        self.addrconf.addrconf_add_dev("eth0")
        self.addrconf.inet6_addr_add("eth0", A, 64)
        self.addrconf.addrconf_addr_gen("eth0", MAC_A)
        self.known: set[int] = set()
        self.updates: list[tuple] = []
        self.sent: list[tuple[s.SkBuff, str]] = []
        self.rand = rand
        self.nd = Ndisc("A", self.addrconf, {"eth0": MAC_A}, neigh_update=self.neigh_update,
                        ip6_local_out=self.ip6_local_out, mib=self.mib, clock=self.clock, rand=lambda: self.rand)
        self.ip = Ipv6("A", self.addrconf, to_l4=lambda kind, items: True, ip6_output=lambda skb, flow: None,
                       mib=self.mib, ndisc_rcv=self.nd.ndisc_rcv, clock=self.clock)

    def neigh_update(self, dev, ip, lladdr, state, flags, create):
        self.updates.append((dev, ip6_to_str(ip), lladdr, state, flags, create))
        if create:
            self.known.add(ip)
        return ip in self.known

    def ip6_local_out(self, skb, dev) -> int:
        self.sent.append((skb, dev))
        return 0

    def rcv(self, pkt, *, src_mac: bytes = MAC_B, direct: bool = False) -> int:
        """The frame as L2 hands it up (mac header kept, data at the IPv6 header); Ipv6's verdict,
        or with `direct` Ndisc's (data pulled to the ICMPv6 header, as Ipv6 hands it over)."""
        dst = pkt[IPv6].dst
        multicast = dst.startswith("ff")
        raw = bytes(Ether(src=src_mac, dst="33:33:00:00:00:01" if multicast else MAC_A) / pkt)
        skb = s.alloc_skb(s.NET_SKB_PAD + len(raw))
        s.skb_reserve(skb, s.NET_SKB_PAD)
        s.skb_put_data(skb, raw)
        s.skb_reset_mac_header(skb)
        s.skb_pull(skb, 14)
        s.skb_reset_network_header(skb)
        skb.dev, skb.protocol = "eth0", 0x86DD
        skb.pkt_type = pb.PACKET_MULTICAST if multicast else pb.PACKET_HOST
        if direct:
            s.skb_pull(skb, 40)
            return self.nd.ndisc_rcv(skb, Ipv6Hdr.from_bytes(s.skb_network_header(skb)))
        return self.ip.ipv6_rcv(skb)

    def out(self) -> list:
        """What went out since the last call, as scapy reads it (checksums verified)."""
        pkts = []
        for skb, dev in self.sent:
            assert dev == "eth0" and skb.data == skb.network_header and skb.nexthop == ip6_from_str(
                IPv6(bytes(skb.payload())).dst)
            p = IPv6(bytes(skb.payload()))
            rebuilt = p.copy()
            rebuilt.payload.cksum = None
            assert bytes(rebuilt) == bytes(p)  # scapy computes the same checksum
            pkts.append(p)
        self.sent.clear()
        return pkts

    def at(self, t: float):
        self.clock.t = T0 + t
        return self.nd.tick()

    def flags(self, addr: int) -> int:
        return self.addrconf.ipv6_get_ifaddr(addr, "eth0").flags

    def icmp6(self, name: str) -> int:
        return self.mib.get("Icmp6", name)


def valid(st: Stack) -> Stack:
    """DAD run to its end on both of A's addresses."""
    st.nd.start()
    st.at(0.5)
    st.at(1.5)
    st.out()
    st.updates.clear()
    return st


def ns(src: str, dst: str, target: str, *, sll: bytes | None = MAC_B, opts=None):
    p = IPv6(src=src, dst=dst, hlim=255) / ICMPv6ND_NS(tgt=target)
    if sll:
        p = p / ICMPv6NDOptSrcLLAddr(lladdr=sll)
    return p / opts if opts is not None else p


def na(src: str, dst: str, target: str, *, R=0, S=0, O=1, tll: bytes | None = MAC_B):
    p = IPv6(src=src, dst=dst, hlim=255) / ICMPv6ND_NA(tgt=target, R=R, S=S, O=O)
    return p / ICMPv6NDOptDstLLAddr(lladdr=tll) if tll else p


def local_routes(st: Stack) -> list[str]:
    return [str(r) for r in st.addrconf.routes("local") if r.type != "multicast"]


# -- the addresses' state -----------------------------------------------------------------

def test_addresses_come_up_tentative_not_ours_and_without_their_local_routes_lo_excepted():
    """ip -6 addr while DAD ran: `tentative` on both; ip -6 route show table all: the prefix
    routes but no local route for either."""
    st = Stack()
    assert st.flags(A) == st.flags(LL_A) == IFA_F_PERMANENT | IFA_F_TENTATIVE
    assert not st.addrconf.ipv6_chk_addr(A) and not st.addrconf.ipv6_chk_addr(LL_A, "eth0")
    assert st.addrconf.addr_list("lo")[0].flags == IFA_F_PERMANENT
    assert local_routes(st) == ["local ::1 dev lo table local proto kernel metric 0 pref medium"]
    assert [str(r) for r in st.addrconf.routes()] == ["2001:db8::/64 dev eth0 proto kernel metric 256 pref medium",
                                                      "fe80::/64 dev eth0 proto kernel metric 256 pref medium"]


def test_an_address_added_nodad_is_usable_at_once_and_keeps_the_flag():
    """ip -6 addr add 2001:db8:6::6/64 dev hAv1 nodad: `scope global nodad`, never tentative."""
    st = Stack()
    st.addrconf.inet6_addr_add("eth0", ip6_from_str("2001:db8:6::6"), 64, IFA_F_NODAD)
    assert st.flags(ip6_from_str("2001:db8:6::6")) == IFA_F_PERMANENT | IFA_F_NODAD
    assert st.addrconf.ipv6_chk_addr(ip6_from_str("2001:db8:6::6"))
    assert "local 2001:db8:6::6 dev eth0 table local proto kernel metric 0 pref medium" in local_routes(st)
    st.nd.start()
    st.at(0.5)
    assert sorted(p[ICMPv6ND_NS].tgt for p in st.out()) == ["2001:db8::1", "fe80::ff:fe00:a"]


def test_dad_sends_one_ns_from_the_unspecified_address_after_a_random_delay_below_a_second():
    """Linux's: `:: > ff02::1:ff00:1 ... who has 2001:db8::1, unknown option (14), length 8`, no
    source link-layer address, 0.76 s after the link came up (a random delay below 1 s)."""
    st = Stack(rand=0.25)
    st.nd.start()
    assert st.at(0) == T0 + 0.25 and st.out() == []
    assert st.at(0.2499) == T0 + 0.25 and st.out() == []
    assert st.at(0.25) == T0 + 1.25
    probes = st.out()
    assert sorted(p[ICMPv6ND_NS].tgt for p in probes) == ["2001:db8::1", "fe80::ff:fe00:a"]
    for p in probes:
        target = p[ICMPv6ND_NS].tgt
        assert (p.src, p.dst, p.hlim, p.nh) == ("::", nsma(target), 255, 58)
        assert ICMPv6NDOptSrcLLAddr not in p
        nonce = bytes(p[ICMPv6ND_NS].payload)
        assert nonce[:2] == b"\x0e\x01" and len(nonce) == 8 and any(nonce[2:])  # ND_OPT_NONCE, 6 bytes
    assert st.icmp6("OutNeighborSolicits") == st.icmp6("OutType135") == 2 and st.icmp6("OutMsgs") == 2


def test_retrans_time_after_the_probe_without_an_answer_the_address_is_valid_with_its_local_route():
    """Linux's: tentative cleared 1.03 s after the probe; the local route appears then."""
    st = Stack(rand=0.25)
    st.nd.start()
    st.at(0.25)
    st.at(1.2499)
    assert st.flags(A) & IFA_F_TENTATIVE
    st.at(1.25)
    assert st.flags(A) == st.flags(LL_A) == IFA_F_PERMANENT
    assert st.addrconf.ipv6_chk_addr(A) and st.nd.dad_state("eth0", A) == INET6_IFADDR_STATE_POSTDAD
    assert "local 2001:db8::1 dev eth0 table local proto kernel metric 0 pref medium" in local_routes(st)


def test_after_its_link_local_address_passes_dad_a_host_solicits_routers_with_backoff_until_an_ra():
    """Linux's: `fe80::ff:fe00:a > ff02::2: router solicitation` with the source link-layer
    address at once when DAD ends, again 4 s later (RFC 7559: 4 s times 0.9 .. 1.1, doubling)."""
    st = Stack(rand=0.5)
    st.nd.start()
    st.at(0.5)
    st.out()
    nxt = st.at(1.5)
    [rs] = st.out()
    assert (rs.src, rs.dst, rs.hlim) == ("fe80::ff:fe00:a", "ff02::2", 255)
    assert rs[ICMPv6ND_RS] and rs[ICMPv6NDOptSrcLLAddr].lladdr == "02:00:00:00:00:0a"
    assert nxt == pytest.approx(T0 + 1.5 + 4.0)
    nxt = st.at(5.5)
    assert [p.dst for p in st.out()] == ["ff02::2"] and nxt == pytest.approx(T0 + 5.5 + 8.0)
    ra = IPv6(src="fe80::ff:fe00:b", dst="ff02::1", hlim=255) / ICMPv6ND_RA(routerlifetime=0)
    assert st.rcv(ra) == 0
    st.at(13.5)
    assert st.out() == [] and st.icmp6("OutRouterSolicits") == 2


def test_a_router_sends_no_router_solicitation():
    st = Stack(forwarding=True)
    st.nd.start()
    st.at(0.5)
    st.at(1.5)
    assert all(ICMPv6ND_NS in p for p in st.out()) and st.at(60) is None


# -- DAD conflicts ----------------------------------------------------------------------------

def test_a_dad_probe_for_a_tentative_address_fails_its_dad_as_linux_logs_and_it_never_becomes_valid(caplog):
    """Linux's: `IPv6: hAv1: IPv6 duplicate address 2001:db8::5 used by 02:00:00:00:00:0b
    detected!`, `dadfailed tentative`, no local route; the probe dropped NOT_SPECIFIED."""
    st = Stack()
    st.nd.start()
    st.at(0.5)
    st.out()
    with caplog.at_level(logging.INFO, logger="pktpath.services.l3.ndisc"):
        assert st.rcv(ns("::", nsma("2001:db8::1"), "2001:db8::1", sll=None)) == pb.SKB_DROP_REASON_NOT_SPECIFIED
    assert caplog.messages == ["IPv6: eth0: IPv6 duplicate address 2001:db8::1 used by 02:00:00:00:00:0b detected!"]
    assert st.flags(A) == IFA_F_PERMANENT | IFA_F_TENTATIVE | IFA_F_DADFAILED
    st.at(1.5)
    st.at(30)
    assert st.flags(A) == IFA_F_PERMANENT | IFA_F_TENTATIVE | IFA_F_DADFAILED and st.flags(LL_A) == IFA_F_PERMANENT
    assert not st.addrconf.ipv6_chk_addr(A) and all("2001:db8::1 " not in r for r in local_routes(st))
    assert st.updates == [] and not any(ICMPv6ND_NA in p for p in st.out())


def test_our_own_dad_probe_looped_back_with_its_nonce_is_not_a_conflict():
    """RFC 7527 (enhanced_dad 1): an NS from :: carrying our probe's nonce is ours."""
    st = Stack()
    st.nd.start()
    st.at(0.5)
    [probe] = [p for p in st.out() if p[ICMPv6ND_NS].tgt == "2001:db8::1"]
    assert st.rcv(probe) == pb.SKB_DROP_REASON_NOT_SPECIFIED
    st.at(1.5)
    assert st.flags(A) == IFA_F_PERMANENT


def test_an_na_for_a_tentative_address_fails_its_dad():
    """Linux's: an unsolicited NA for the tentative 2001:db8::8 made it `dadfailed tentative`."""
    st = Stack()
    st.nd.start()
    assert st.rcv(na("2001:db8::1", "ff02::1", "2001:db8::1")) == pb.SKB_DROP_REASON_NOT_SPECIFIED
    assert st.flags(A) & IFA_F_DADFAILED and st.updates == []


def test_an_ordinary_ns_for_a_tentative_address_is_ignored():
    """Linux's: no NA, the sender's entry left alone, dropped NOT_SPECIFIED (RFC 4862 5.4.3)."""
    st = Stack()
    st.nd.start()
    assert st.rcv(ns("2001:db8::2", nsma("2001:db8::1"), "2001:db8::1")) == pb.SKB_DROP_REASON_NOT_SPECIFIED
    assert st.updates == [] and st.flags(A) == IFA_F_PERMANENT | IFA_F_TENTATIVE
    assert not any(ICMPv6ND_NA in p for p in st.out())


def test_a_dad_probe_for_our_valid_address_is_answered_to_all_nodes_with_override_alone():
    """Linux's: `2001:db8::1 > ff02::1: neighbor advertisement, tgt is 2001:db8::1, Flags
    [override]` with the target link-layer address; the probe itself dropped NOT_SPECIFIED."""
    st = valid(Stack())
    assert st.rcv(ns("::", nsma("2001:db8::1"), "2001:db8::1", sll=None)) == pb.SKB_DROP_REASON_NOT_SPECIFIED
    [adv] = st.out()
    assert (adv.src, adv.dst, adv.hlim) == ("2001:db8::1", "ff02::1", 255)
    assert (adv[ICMPv6ND_NA].R, adv[ICMPv6ND_NA].S, adv[ICMPv6ND_NA].O) == (0, 0, 1)
    assert adv[ICMPv6NDOptDstLLAddr].lladdr == "02:00:00:00:00:0a" and st.updates == []


# -- neighbour solicitations and advertisements -----------------------------------------------

def test_a_multicast_ns_makes_the_sender_stale_and_gets_a_solicited_override_na_with_our_address():
    """Linux's: NA 2001:db8::1 > 2001:db8::2, S=1 O=1 R=0, target link-layer 02:..:0a; the
    entry 2001:db8::2 lladdr 02:..:0b (STALE, DELAY once the NA used it)."""
    st = valid(Stack())
    assert st.rcv(ns("2001:db8::2", nsma("2001:db8::1"), "2001:db8::1")) == 0
    assert st.updates == [("eth0", "2001:db8::2", MAC_B, l2_pb2.NUD_STALE, OVERRIDE | WEAK, True)]
    [adv] = st.out()
    assert (adv.src, adv.dst, adv.hlim) == ("2001:db8::1", "2001:db8::2", 255)
    assert (adv[ICMPv6ND_NA].R, adv[ICMPv6ND_NA].S, adv[ICMPv6ND_NA].O, adv[ICMPv6ND_NA].tgt) == (
        0, 1, 1, "2001:db8::1")
    assert adv[ICMPv6NDOptDstLLAddr].lladdr == "02:00:00:00:00:0a"
    assert st.icmp6("InNeighborSolicits") == 1 and st.icmp6("OutNeighborAdvertisements") == 1


def test_a_unicast_ns_gets_an_na_with_the_solicited_flag_alone_and_no_link_layer_address():
    """Linux's answer to a unicast NS: `Flags [solicited]`, 24 bytes: override and the option
    only answer a multicast one (ndisc_recv_ns: override = ifp && inc, inc_opt = inc)."""
    st = valid(Stack())
    assert st.rcv(ns("2001:db8::3", "2001:db8::1", "2001:db8::1")) == 0
    [adv] = st.out()
    assert (adv[ICMPv6ND_NA].S, adv[ICMPv6ND_NA].O, adv.plen) == (1, 0, 24)


def test_a_unicast_ns_without_a_link_layer_address_still_creates_the_entry_and_is_answered():
    """Linux created 2001:db8::4 (no address: INCOMPLETE) and resolved it to send the NA."""
    st = valid(Stack())
    assert st.rcv(ns("2001:db8::4", "2001:db8::1", "2001:db8::1", sll=None)) == 0
    assert st.updates == [("eth0", "2001:db8::4", None, l2_pb2.NUD_STALE, OVERRIDE | WEAK, True)]
    assert [p.dst for p in st.out()] == ["2001:db8::4"]


def test_a_multicast_ns_without_a_link_layer_address_from_an_unknown_neighbour_is_not_answered():
    """Linux's: no entry, no NA, NOT_SPECIFIED (__neigh_lookup without creat found none)."""
    st = valid(Stack())
    reason = st.rcv(ns("2001:db8::6", nsma("2001:db8::1"), "2001:db8::1", sll=None))
    assert reason == pb.SKB_DROP_REASON_NOT_SPECIFIED
    assert st.updates == [("eth0", "2001:db8::6", None, l2_pb2.NUD_STALE, OVERRIDE | WEAK, False)]
    assert st.out() == []


def test_an_ns_for_an_address_not_ours_is_dropped_ns_otherhost():
    """Linux's tracepoint: `icmpv6_rcv ... reason: IPV6_NDISC_NS_OTHERHOST`."""
    st = valid(Stack())
    assert st.rcv(ns("2001:db8::2", "2001:db8::1", "2001:db8::99")) == pb.SKB_DROP_REASON_IPV6_NDISC_NS_OTHERHOST
    assert st.updates == [] and st.out() == [] and st.mib.get("Drops", "SKB_DROP_REASON_IPV6_NDISC_NS_OTHERHOST") == 1


def test_a_router_sets_the_router_flag_in_both_answers():
    """Linux with forwarding 1: R=1 S=1 O=1 to an NS, R=1 S=0 O=1 to a DAD probe."""
    st = valid(Stack(forwarding=True))
    st.rcv(ns("2001:db8::2", nsma("2001:db8::1"), "2001:db8::1"))
    st.rcv(ns("::", nsma("2001:db8::1"), "2001:db8::1", sll=None))
    assert [(p[ICMPv6ND_NA].R, p[ICMPv6ND_NA].S, p[ICMPv6ND_NA].O) for p in st.out()] == [(1, 1, 1), (1, 0, 1)]


def test_a_router_answers_its_subnet_anycast_address_later_and_without_override():
    """Linux with forwarding 1: an NS to ff02::1:ff00:0 for 2001:db8:: answered 0.73 s later
    (below proxy_delay, 0.8 s), from 2001:db8::1, S=1 O=0 with the option; the NS dropped
    NOT_SPECIFIED. A unicast one is answered at once, without the option. (Straight to Ndisc:
    Ipv6 does not know the anycast address's solicited-node group yet.)"""
    st = valid(Stack(forwarding=True, rand=0.5))
    reason = st.rcv(ns("2001:db8::2", nsma("2001:db8::"), "2001:db8::"), direct=True)
    assert reason == pb.SKB_DROP_REASON_NOT_SPECIFIED
    assert st.out() == [] and st.updates == []
    st.at(1.5 + 0.39)
    assert st.out() == []
    st.at(1.5 + 0.4)
    [adv] = st.out()
    assert (adv.src, adv.dst, adv[ICMPv6ND_NA].tgt) == ("2001:db8::1", "2001:db8::2", "2001:db8::")
    assert (adv[ICMPv6ND_NA].R, adv[ICMPv6ND_NA].S, adv[ICMPv6ND_NA].O) == (1, 1, 0) and ICMPv6NDOptDstLLAddr in adv
    assert st.rcv(ns("2001:db8::2", "2001:db8::1", "2001:db8::")) == 0
    [adv] = st.out()
    assert (adv[ICMPv6ND_NA].O, ICMPv6NDOptDstLLAddr in adv) == (0, False)


def test_a_host_has_no_anycast_address_to_answer():
    st = valid(Stack())
    assert st.rcv(ns("2001:db8::2", "2001:db8::1", "2001:db8::")) == pb.SKB_DROP_REASON_IPV6_NDISC_NS_OTHERHOST


def test_a_solicited_na_confirms_a_known_entry_with_its_flags():
    """Linux's: a solicited NA R=1 O=1 made the INCOMPLETE 2001:db8::2 `router REACHABLE`."""
    st = valid(Stack())
    st.known.add(ip6_from_str("2001:db8::2"))
    assert st.rcv(na("2001:db8::2", "2001:db8::1", "2001:db8::2", R=1, S=1, O=1)) == 0
    assert st.updates == [("eth0", "2001:db8::2", MAC_B, l2_pb2.NUD_REACHABLE,
                           WEAK | OVERRIDE | OVERRIDE_ISROUTER | ISROUTER, False)]


def test_an_unsolicited_na_without_override_asks_for_stale_and_a_weak_override_only():
    st = valid(Stack())
    st.known.add(ip6_from_str("2001:db8::2"))
    assert st.rcv(na("2001:db8::2", "ff02::1", "2001:db8::2", O=0)) == 0
    assert st.updates == [("eth0", "2001:db8::2", MAC_B, l2_pb2.NUD_STALE, WEAK | OVERRIDE_ISROUTER, False)]


def test_an_na_about_a_neighbour_not_in_the_table_is_dropped_not_specified():
    """Linux's: no entry created by an NA on a host (solicited or not), NOT_SPECIFIED."""
    st = valid(Stack())
    assert st.rcv(na("2001:db8::77", "ff02::1", "2001:db8::77")) == pb.SKB_DROP_REASON_NOT_SPECIFIED
    assert st.rcv(na("2001:db8::77", "2001:db8::1", "2001:db8::77", S=1)) == pb.SKB_DROP_REASON_NOT_SPECIFIED
    assert [u[-1] for u in st.updates] == [False, False] and st.out() == []


def test_an_na_for_our_valid_address_is_ignored_with_linuxs_warning(caplog):
    """dmesg: `ICMPv6: NA: 02:00:00:00:00:0b advertised our address 2001:db8::1 on hAv1!`."""
    st = valid(Stack())
    with caplog.at_level(logging.INFO, logger="pktpath.services.l3.ndisc"):
        assert st.rcv(na("2001:db8::1", "ff02::1", "2001:db8::1")) == pb.SKB_DROP_REASON_NOT_SPECIFIED
    assert caplog.messages == ["ICMPv6: NA: 02:00:00:00:00:0b advertised our address 2001:db8::1 on eth0!"]
    assert st.updates == [] and st.flags(A) == IFA_F_PERMANENT


def test_a_solicited_na_to_a_group_never_reaches_ndisc():
    st = valid(Stack())
    st.known.add(ip6_from_str("2001:db8::2"))
    assert st.rcv(na("2001:db8::2", "ff02::1", "2001:db8::2", S=1)) == pb.SKB_DROP_REASON_NOT_SPECIFIED
    assert st.updates == []


# -- ndisc_solicit, for L2's table ----------------------------------------------------------

def test_resolving_sends_an_ns_to_the_solicited_node_group_from_the_waiting_packets_source():
    """Linux's: `2001:db8::1 > ff02::1:ff00:4: neighbor solicitation, who has 2001:db8::4` with
    the source link-layer address, when the NA to 2001:db8::4 waited."""
    st = valid(Stack())
    before = st.icmp6("OutNeighborSolicits")
    st.nd.ndisc_solicit("eth0", ip6_from_str("2001:db8::4"), None, A)
    [p] = st.out()
    assert (p.src, p.dst, p.hlim, p[ICMPv6ND_NS].tgt) == ("2001:db8::1", "ff02::1:ff00:4", 255, "2001:db8::4")
    assert p[ICMPv6NDOptSrcLLAddr].lladdr == "02:00:00:00:00:0a"
    assert st.icmp6("OutNeighborSolicits") == before + 1


def test_a_unicast_probe_goes_to_the_target_from_the_link_local_address():
    """Linux's PROBE state: `fe80::ff:fe00:a > 2001:db8::2: neighbor solicitation, who has
    2001:db8::2` with the source link-layer address (no packet waits, so no source to reuse)."""
    st = valid(Stack())
    st.nd.ndisc_solicit("eth0", ip6_from_str("2001:db8::2"), MAC_B, 0)
    [p] = st.out()
    assert (p.src, p.dst, p[ICMPv6ND_NS].tgt) == ("fe80::ff:fe00:a", "2001:db8::2", "2001:db8::2")
    assert ICMPv6NDOptSrcLLAddr in p


def test_a_waiting_packets_source_that_is_not_ours_is_not_used():
    st = valid(Stack())
    st.nd.ndisc_solicit("eth0", ip6_from_str("fe80::ff:fe00:99"), None, ip6_from_str("2001:db8::77"))
    [p] = st.out()
    assert (p.src, p.dst) == ("fe80::ff:fe00:a", "ff02::1:ff00:99")


def test_without_a_usable_link_local_address_nothing_is_solicited():
    st = Stack()  # both addresses still tentative
    st.nd.ndisc_solicit("eth0", ip6_from_str("2001:db8::2"), None, A)
    assert st.out() == []


# -- routers ------------------------------------------------------------------------------

def rs(src: str = "fe80::ff:fe00:b", dst: str = "fe80::ff:fe00:a"):
    return IPv6(src=src, dst=dst, hlim=255) / ICMPv6ND_RS() / ICMPv6NDOptSrcLLAddr(lladdr=MAC_B)


def test_a_host_drops_a_router_solicitation_not_specified():
    st = valid(Stack())
    assert st.rcv(rs()) == pb.SKB_DROP_REASON_NOT_SPECIFIED and st.updates == []


def test_a_router_learns_the_soliciting_host_stale_and_not_a_router():
    """Linux with forwarding 1: `fe80::ff:fe00:b lladdr 02:00:00:00:00:0b STALE`, consumed."""
    st = valid(Stack(forwarding=True))
    assert st.rcv(rs(dst="ff02::2")) == 0
    assert st.updates == [("eth0", "fe80::ff:fe00:b", MAC_B, l2_pb2.NUD_STALE,
                           WEAK | OVERRIDE | OVERRIDE_ISROUTER, True)]


def ra(lifetime: int = 1800, *, prf: int = 1, mtu: int | None = 1400, prefix: str | None = "2001:db8:aa::",
       valid_lft: int = 86400, preferred_lft: int = 14400, autoconf: int = 1):
    p = IPv6(src="fe80::ff:fe00:b", dst="ff02::1", hlim=255) / ICMPv6ND_RA(
        chlim=64, routerlifetime=lifetime, prf=prf) / ICMPv6NDOptSrcLLAddr(lladdr=MAC_B)
    if mtu:
        p = p / ICMPv6NDOptMTU(mtu=mtu)
    if prefix:
        p = p / ICMPv6NDOptPrefixInfo(prefixlen=64, L=1, A=autoconf, validlifetime=valid_lft,
                                      preferredlifetime=preferred_lft, prefix=prefix)
    return p


def test_an_ra_gives_a_host_a_default_route_its_prefix_a_slaac_address_and_an_mtu():
    """Linux's after this RA: `default via fe80::ff:fe00:b dev hAv1 proto ra metric 1024 expires
    1799sec mtu 1400 hoplimit 64 pref high`, `2001:db8:aa::/64 dev hAv1 proto kernel metric 256
    expires 86399sec`, `2001:db8:aa::ff:fe00:a/64 scope global tentative dynamic mngtmpaddr` then
    valid after DAD, net.ipv6.conf.hAv1.mtu = 1400, `fe80::ff:fe00:b ... router STALE`."""
    st = valid(Stack())
    assert st.rcv(ra()) == 0
    assert [str(r) for r in st.addrconf.routes()] == [
        "2001:db8::/64 dev eth0 proto kernel metric 256 pref medium",
        "2001:db8:aa::/64 dev eth0 proto kernel metric 256 pref medium",
        "fe80::/64 dev eth0 proto kernel metric 256 pref medium",
        "default via fe80::ff:fe00:b dev eth0 proto ra metric 1024 mtu 1400 hoplimit 64 pref high"]
    slaac = ip6_from_str("2001:db8:aa::ff:fe00:a")
    ifa = st.addrconf.ipv6_get_ifaddr(slaac, "eth0")
    assert ifa.flags == IFA_F_TENTATIVE | IFA_F_MANAGETEMPADDR and (ifa.valid_lft, ifa.prefered_lft) == (86400, 14400)
    assert st.updates == [("eth0", "fe80::ff:fe00:b", MAC_B, l2_pb2.NUD_STALE,
                           WEAK | OVERRIDE | OVERRIDE_ISROUTER | ISROUTER, True)]
    assert st.nd.mtu6["eth0"] == 1400 and st.nd.ra["eth0"].hop_limit == 64
    st.at(1.5 + 0.5)
    assert [p[ICMPv6ND_NS].tgt for p in st.out()] == ["2001:db8:aa::ff:fe00:a"]
    st.at(1.5 + 1.5)
    assert ifa.flags == IFA_F_MANAGETEMPADDR and st.addrconf.ipv6_chk_addr(slaac)


def test_the_ra_routes_and_address_run_out_with_their_lifetimes():
    """The routes go at the fib6 gc's first run after their expiry (every 30 s), the address at
    its end (addrconf_verify)."""
    st = valid(Stack())
    st.rcv(ra(lifetime=600, valid_lft=3600, preferred_lft=1800))
    slaac = ip6_from_str("2001:db8:aa::ff:fe00:a")
    st.at(1.5 + 600 + 30)
    assert [r.protocol for r in st.addrconf.routes()] == ["kernel"] * 3
    st.at(1.5 + 1800)
    assert st.flags(slaac) & IFA_F_DEPRECATED
    st.at(1.5 + 3600)
    assert st.addrconf.ipv6_get_ifaddr(slaac, "eth0") is None
    st.at(1.5 + 3600 + 30)
    assert [str(r.dst_len) for r in st.addrconf.routes()] == ["64", "64"]


def test_a_router_lifetime_of_zero_removes_the_default_route():
    st = valid(Stack())
    st.rcv(ra())
    st.rcv(ra(lifetime=0, mtu=None, prefix=None))
    assert all(r.dst_len for r in st.addrconf.routes())


def test_an_ra_cannot_cut_an_addresss_valid_lifetime_below_two_hours_but_cuts_its_prefix_routes():
    """Linux's after a second RA with valid 60, preferred 30: `valid_lft 7200sec preferred_lft
    30sec`, `2001:db8:cc::/64 ... expires 59sec`."""
    st = valid(Stack())
    st.rcv(ra(valid_lft=86400, preferred_lft=14400))
    st.rcv(ra(valid_lft=60, preferred_lft=30))
    ifa = st.addrconf.ipv6_get_ifaddr(ip6_from_str("2001:db8:aa::ff:fe00:a"), "eth0")
    assert (ifa.valid_lft, ifa.prefered_lft) == (7200, 30)
    st.at(1.5 + 60 + 30)  # the fib6 gc's first run after the prefix route expired
    assert "2001:db8:aa::/64" not in " ".join(str(r) for r in st.addrconf.routes())
    assert st.addrconf.ipv6_get_ifaddr(ifa.addr, "eth0") is ifa and ifa.flags & IFA_F_DEPRECATED


def test_an_ra_mtu_above_the_links_is_ignored_without_a_word(caplog):
    """ND_PRINTK(2, warn, "RA: invalid mtu") is below ND_DEBUG 1: Linux prints nothing."""
    st = valid(Stack())
    with caplog.at_level(logging.INFO, logger="pktpath.services.l3.ndisc"):
        assert st.rcv(ra(mtu=9000, prefix=None)) == 0
    assert caplog.messages == [] and "eth0" not in st.nd.mtu6 and st.nd.ra["eth0"].ra_mtu == 9000


def test_a_router_only_learns_the_advertising_router():
    """Linux with forwarding 1: `fe80::ff:fe00:b ... router STALE`, no route, no address."""
    st = valid(Stack(forwarding=True))
    assert st.rcv(ra(prefix="2001:db8:bb::")) == 0
    assert st.updates == [("eth0", "fe80::ff:fe00:b", MAC_B, l2_pb2.NUD_STALE,
                           WEAK | OVERRIDE | OVERRIDE_ISROUTER | ISROUTER, True)]
    assert [r.dst_len for r in st.addrconf.routes()] == [64, 64] and len(st.addrconf.addr_list("eth0")) == 2


def test_a_redirect_without_the_redirected_header_is_dropped_and_one_with_it_consumed():
    """Linux's tracepoint: the first NOT_SPECIFIED (ip6_redirect_no_header)."""
    st = valid(Stack())
    rd = IPv6(src="fe80::ff:fe00:b", dst="2001:db8::1", hlim=255) / ICMPv6ND_Redirect(
        tgt="fe80::ff:fe00:c", dst="2001:db9::1") / ICMPv6NDOptDstLLAddr(lladdr="02:00:00:00:00:0c")
    assert st.rcv(rd) == pb.SKB_DROP_REASON_NOT_SPECIFIED
    quoted = bytes(IPv6(src="2001:db8::1", dst="2001:db9::1") / UDP(sport=1, dport=2) / (b"x" * 8))
    assert st.rcv(rd / ICMPv6NDOptRedirectedHdr(pkt=quoted)) == 0
    assert st.rcv(rd / ICMPv6NDOptRedirectedHdr(pkt=quoted[:40])) == pb.SKB_DROP_REASON_PKT_TOO_SMALL
