"""IPv6 multicast lists and MLD (services/l3/mcast6.py) behind Addrconf, neighbour discovery's DAD
and Ipv6's receive path, and the socket layer's IPV6_JOIN_GROUP / IPV6_LEAVE_GROUP.

The expectations are what Linux 6.18 did in two network namespaces joined by a veth pair (A
02:00:00:00:00:0a with 2001:db8::1/64, B the peer sending MLD queries with scapy), captured with
tcpdump on B's end: the reports' bytes (golden below, from the IPv6 header on), their times,
`ip -6 maddr` and /proc/net/igmp6, and the errnos Python's socket module got."""

import errno
import json

import pytest
from scapy.layers.inet6 import ICMPv6MLQuery, ICMPv6MLQuery2, ICMPv6MLReport, IPv6, IPv6ExtHdrHopByHop, RouterAlert

from pktpath import skbuff as s
from pktpath.cli import _ip, parser
from pktpath.counters import Mib
from pktpath.drill.local import Direct
from pktpath.pb import skbuff_pb2 as pb
from pktpath.pb import socket_pb2
from pktpath.services.l3.addrconf import Addrconf
from pktpath.services.l3.ipv6 import Ipv6
from pktpath.services.l3.layer import L3
from pktpath.services.l3.mcast6 import MAF_LOADED, MAF_NOREPORT, Mcast6
from pktpath.services.l3.ndisc import Ndisc
from pktpath.services.l3.server import L3Servicer
from pktpath.topology import load
from pktpath.wire.addr import ip6_from_str, ip6_to_str
from pktpath.wire.icmpv6 import (
    MLD2_CHANGE_TO_EXCLUDE, MLD2_CHANGE_TO_INCLUDE, MLD2_MODE_IS_EXCLUDE, Mld2Grec, Mld2Report,
)
from pktpath.wire.ipv6 import Ipv6Hdr

from fakes import Clock
from twohosts import TwoHosts

MAC_A = bytes.fromhex("02000000000a")
A, LL_A, LL_B = ip6_from_str("2001:db8::1"), ip6_from_str("fe80::ff:fe00:a"), ip6_from_str("fe80::ff:fe00:2")
SNMA_A, SNMA_LL = ip6_from_str("ff02::1:ff00:1"), ip6_from_str("ff02::1:ff00:a")
GROUP = ip6_from_str("ff12::1234")
T0 = 100.0
JIFFY = 0.004

# Linux 6.18's reports, from the IPv6 header on
UP_REPORT = bytes.fromhex(  # at `ip link set up`: both solicited-node groups, newest first, from ::
    "600000000038000100000000000000000000000000000000ff020000000000000000000000000016"
    "3a00050200000100" "8f006d6500000002" "04000000ff0200000000000000000001ff00000a"
    "04000000ff0200000000000000000001ff000001")
DAD_REPORT = bytes.fromhex(  # once the link-local address completed DAD: from it
    "6000000000380001fe80000000000000000000fffe00000aff020000000000000000000000000016"
    "3a00050200000100" "8f006fda00000002" "04000000ff0200000000000000000001ff00000a"
    "04000000ff0200000000000000000001ff000001")
JOIN_REPORT = bytes.fromhex(  # IPV6_JOIN_GROUP ff12::1234: CHANGE_TO_EXCLUDE
    "6000000000240001fe80000000000000000000fffe00000aff020000000000000000000000000016"
    "3a00050200000100" "8f005ebd00000001" "04000000ff120000000000000000000000001234")
LEAVE_REPORT = bytes.fromhex(  # IPV6_LEAVE_GROUP: CHANGE_TO_INCLUDE
    "6000000000240001fe80000000000000000000fffe00000aff020000000000000000000000000016"
    "3a00050200000100" "8f005fbd00000001" "03000000ff120000000000000000000000001234")
QUERY_ANSWER = bytes.fromhex(  # a general MLDv2 query's answer: MODE_IS_EXCLUDE for both groups
    "6000000000380001fe80000000000000000000fffe00000aff020000000000000000000000000016"
    "3a00050200000100" "8f0073da00000002" "02000000ff0200000000000000000001ff00000a"
    "02000000ff0200000000000000000001ff000001")
V1_REPORTS = (bytes.fromhex(  # in MLDv1 mode, a query's answers: each group's Report to the group itself
    "6000000000200001fe80000000000000000000fffe00000aff0200000000000000000001ff00000a"
    "3a00050200000100" "8300830400000000" "ff0200000000000000000001ff00000a"), bytes.fromhex(
    "6000000000200001fe80000000000000000000fffe00000aff0200000000000000000001ff000001"
    "3a00050200000100" "8300831600000000" "ff0200000000000000000001ff000001"))
V1_DONE = bytes.fromhex(  # in MLDv1 mode, leaving ff12::1235 (reported last by us): Done to ff02::2
    "6000000000200001fe80000000000000000000fffe00000aff020000000000000000000000000002"
    "3a00050200000100" "84006dd500000000" "ff120000000000000000000000001235")


class Host:
    """Host A: Addrconf and Mcast6, neighbour discovery's DAD, Ipv6 handing MLD to Mcast6, on a
    clock that moves only in run(); everything sent recorded (time, device, bytes)."""

    def __init__(self, *, forwarding: bool = False, rand: float = 0.5, up: bool = True) -> None:
        self.clock = Clock(T0)
        self.mib = Mib()
        self.rand = rand
        self.sent: list[tuple[float, str, bytes]] = []
        self.fail = False
        self.mc = Mcast6("A", mib=self.mib, clock=self.clock, rand=lambda: self.rand)
        self.mc.ip6_local_out = self.ip6_local_out
        self.addrconf = Addrconf(forwarding=forwarding, mcast=self.mc)
        self.addrconf.addrconf_add_dev("eth0")
        self.addrconf.inet6_addr_add("eth0", A, 64)  # as `ip addr add` before `ip link set up`
        self.addrconf.addrconf_addr_gen("eth0", MAC_A)
        self.nd = Ndisc("A", self.addrconf, {"eth0": MAC_A}, neigh_update=lambda *a: True,
                        ip6_local_out=self.ip6_local_out, mib=self.mib, clock=self.clock, rand=lambda: self.rand)
        self.ip = Ipv6("A", self.addrconf, to_l4=lambda kind, items: True, ip6_output=lambda skb, flow: None,
                       mib=self.mib, ndisc_rcv=self.nd.ndisc_rcv, mld_rcv=self.mc.igmp6_event, clock=self.clock)
        if up:
            self.up()

    def up(self) -> None:
        """NETDEV_UP, as L3 starts a host: ipv6_mc_up, then DAD."""
        for dev in self.mc.devices():
            self.mc.ipv6_mc_up(dev)
        self.nd.start()

    def ip6_local_out(self, skb, dev) -> int:
        if self.fail:
            return errno.ENOBUFS
        self.sent.append((self.clock.t, dev, bytes(skb.payload())))
        return 0

    def run(self, until: float) -> None:
        """Every timer due up to T0 + until, in order."""
        while True:
            dues = [t for t in (self.nd.tick(), self.mc.tick()) if t is not None]
            if not dues or min(dues) > T0 + until:
                self.clock.t = max(self.clock.t, T0 + until)
                return
            self.clock.t = max(self.clock.t, min(dues))

    def reports(self) -> list[tuple[float, bytes]]:
        """What MLD sent (hop-by-hop header first): (seconds after T0, bytes)."""
        return [(round(t - T0, 3), b) for t, _, b in self.sent if b[6] == 0]

    def groups(self, dev: str = "eth0") -> list[str]:
        return [ip6_to_str(g.addr) for g in self.mc.groups(dev)]

    def rcv(self, pkt, *, pkt_type: int = pb.PACKET_MULTICAST) -> int:
        raw = bytes(pkt)
        skb = s.alloc_skb(s.NET_SKB_PAD + len(raw))
        s.skb_reserve(skb, s.NET_SKB_PAD)
        s.skb_put_data(skb, raw)
        s.skb_reset_network_header(skb)
        skb.dev, skb.protocol, skb.pkt_type = "eth0", 0x86DD, pkt_type
        return self.ip.ipv6_rcv(skb)


def settled(**kw) -> Host:
    """A host a few seconds after coming up: DAD done, its start-up reports all sent."""
    h = Host(**kw)
    h.run(5)
    h.sent.clear()
    return h


def query(*, dst: str = "ff02::1", mca: str = "::", mrd: int = 1000, src: str = "fe80::ff:fe00:2", hlim: int = 1,
          ra: bool = True, v1: bool = False, qrv: int = 2, sources=()):
    """An MLD query as B sent it with scapy."""
    body = ICMPv6MLQuery(mladdr=mca, mrd=mrd) if v1 else ICMPv6MLQuery2(mladdr=mca, mrd=mrd, QRV=qrv, QQIC=125,
                                                                          sources=list(sources))
    ip = IPv6(src=src, dst=dst, hlim=hlim)
    return ip / IPv6ExtHdrHopByHop(options=[RouterAlert(value=0)]) / body if ra else ip / body


# -- the list ------------------------------------------------------------------------------------


def test_a_device_listens_to_its_solicited_node_groups_and_all_nodes_newest_first_as_ip_maddr_lists():
    """Linux's `ip -6 maddr` after `ip addr add 2001:db8::1/64` and `ip link set up`."""
    h = Host()
    assert h.groups() == ["ff02::1:ff00:a", "ff02::1:ff00:1", "ff02::1", "ff01::1"]
    assert h.groups("lo") == ["ff02::1", "ff01::1"]  # lo: no solicited-node group (IFF_LOOPBACK)
    flags = {ip6_to_str(g.addr): g.flags for g in h.mc.groups("eth0")}  # /proc/net/igmp6: 4, 4, C, 8
    assert flags == {"ff02::1:ff00:a": MAF_LOADED, "ff02::1:ff00:1": MAF_LOADED,
                     "ff02::1": MAF_LOADED | MAF_NOREPORT, "ff01::1": MAF_NOREPORT}


def test_a_router_also_listens_to_all_routers():
    assert "ff02::2" in Host(forwarding=True).groups()
    assert "ff02::2" not in Host().groups()


def test_two_users_of_a_group_keep_it_until_both_left():
    h = settled()
    assert h.mc.ipv6_dev_mc_inc("eth0", SNMA_A) == 0  # a socket joins the group an address made
    assert [g.users for g in h.mc.groups("eth0") if g.addr == SNMA_A] == [2]
    assert h.mc.ipv6_dev_mc_dec("eth0", SNMA_A) == 0
    assert h.mc.ipv6_chk_mcast_addr("eth0", SNMA_A)
    assert h.reports() == []  # a second user is no change to report
    assert h.mc.ipv6_dev_mc_dec("eth0", GROUP) == errno.ENOENT
    assert h.mc.ipv6_dev_mc_inc("eth9", GROUP) == errno.EINVAL


def test_an_address_deleted_leaves_its_solicited_node_group():
    h = settled()
    ifa = h.addrconf.ipv6_get_ifaddr(A, "eth0")
    h.addrconf.ipv6_del_addr("eth0", ifa)
    assert "ff02::1:ff00:1" not in h.groups() and not h.mc.ipv6_chk_mcast_addr("eth0", SNMA_A)
    h.run(6)
    records = [Mld2Report.from_bytes(b[48:]).records for _, b in h.reports()]
    assert records == [(Mld2Grec(MLD2_CHANGE_TO_INCLUDE, SNMA_A),)] * 2


# -- unsolicited reports ---------------------------------------------------------------------------


def test_coming_up_reports_the_solicited_node_groups_from_unspecified_twice_then_twice_from_the_link_local():
    """Linux: two reports from :: (the link-local address is tentative) 8 ms and then up to 1 s
    after `ip link set up`, DAD's probes, then once the link-local address is valid the same
    records from it, twice again (mld_send_initial_cr, mld_dad_work)."""
    h = Host(rand=0.5)
    h.run(5)
    # DAD: 0.5 s delay, a probe, 1 s retrans_time; the second reports 0.5 s + 2 jiffies after the first
    assert h.reports() == [(0.008, UP_REPORT), (0.516, UP_REPORT), (1.5, DAD_REPORT), (2.008, DAD_REPORT)]
    assert (h.mib.get("Icmp6", "OutMLDv2Reports"), h.mib.get("Icmp6", "OutType143")) == (4, 4)


def test_the_next_report_comes_a_random_time_below_the_unsolicited_report_interval_later():
    for rand, second in ((0.001, 0.016), (0.99, 1.004)):  # whole jiffies: 0 and 247 of 250
        h = Host(rand=rand)
        h.run(0.99 + 0.02)
        assert [t for t, b in h.reports() if b == UP_REPORT] == [0.008, second]


def test_a_device_that_is_not_up_reports_nothing():
    h = Host(up=False)
    h.run(5)
    assert h.reports() == []


def test_a_socket_join_reports_change_to_exclude_twice_and_its_leave_change_to_include_twice():
    h = settled()
    assert h.mc.ipv6_dev_mc_inc("eth0", GROUP) == 0
    h.run(7)
    assert h.groups()[0] == "ff12::1234"
    assert h.mc.ipv6_dev_mc_dec("eth0", GROUP) == 0
    h.run(9)
    assert h.reports() == [(5.008, JOIN_REPORT), (5.516, JOIN_REPORT), (7.008, LEAVE_REPORT), (7.516, LEAVE_REPORT)]


def test_a_group_joined_again_before_its_leave_was_reported_is_reported_joined():
    h = settled()
    h.mc.ipv6_dev_mc_inc("eth0", GROUP)
    h.run(6)
    h.sent.clear()
    h.mc.ipv6_dev_mc_dec("eth0", GROUP)
    h.mc.ipv6_dev_mc_inc("eth0", GROUP)  # mld_del_delrec: the deleted record goes
    h.run(8)
    assert [b for _, b in h.reports()] == [JOIN_REPORT, JOIN_REPORT]


def test_reports_never_name_all_nodes_nor_interface_local_groups():
    h = settled()
    h.mc.ipv6_dev_mc_inc("eth0", ip6_from_str("ff01::5"))
    h.mc.ipv6_dev_mc_inc("eth0", ip6_from_str("ff02::1"))
    h.run(7)
    assert h.reports() == []


def test_records_that_do_not_fit_the_mtu_go_in_the_next_report():
    """mld_newpack: 1500 bytes less the IPv6 header, hop-by-hop header and report header hold 72."""
    h = settled()
    groups = [ip6_from_str(f"ff12::{n:x}") for n in range(100)]
    for g in groups:
        h.mc.ipv6_dev_mc_inc("eth0", g)
    h.run(5.01)
    first, second = (Mld2Report.from_bytes(b[48:]).records for _, b in h.reports())
    assert (len(first), len(second)) == (72, 28)
    assert [r.mca for r in first + second] == groups[::-1]
    assert len(h.reports()[0][1]) == 1496


def test_a_report_ip6_local_out_refused_counts_ip6_out_discards():
    h = settled()
    h.fail = True
    h.mc.ipv6_dev_mc_inc("eth0", GROUP)
    h.run(5.01)
    assert (h.mib.get("Ip6", "OutDiscards"), h.mib.get("Icmp6", "OutMLDv2Reports")) == (1, 4)


# -- queries -----------------------------------------------------------------------------------------


def test_a_general_query_is_answered_after_a_random_delay_below_its_maximum_response_delay():
    h = settled(rand=0.25)
    assert h.rcv(query(mrd=2000)) == 0
    assert h.mib.get("Icmp6", "InGroupMembQueries") == 1
    h.run(6)
    assert h.reports() == [(5.508, QUERY_ANSWER)]  # 0.25 * 2 s + 2 jiffies


def test_a_query_without_router_alert_hop_limit_1_or_a_link_local_source_is_ignored():
    """RFC 3810 6.2, as __mld_query_work checks it; icmpv6_rcv still counts it."""
    h = settled()
    for q in (query(ra=False), query(hlim=2), query(src="2001:db8::2")):
        h.rcv(q)
    h.run(8)
    assert h.reports() == [] and h.mib.get("Icmp6", "InGroupMembQueries") == 3


def test_a_group_specific_query_is_answered_for_that_group_alone():
    h = settled()
    h.rcv(query(dst="ff02::1:ff00:a", mca="ff02::1:ff00:a"))
    h.rcv(query(mca="ff02::1:ff00:77"))  # not ours: nothing
    h.run(6)
    (t, raw), = h.reports()
    assert Mld2Report.from_bytes(raw[48:]).records == (Mld2Grec(MLD2_MODE_IS_EXCLUDE, SNMA_LL),)
    assert t == 5.5  # 0.5 * the query's 1 s, no 2 jiffies added


def test_a_source_specific_query_is_answered_as_any_source_is_listened_to():
    h = settled()
    h.rcv(query(dst="ff02::1:ff00:a", mca="ff02::1:ff00:a", sources=["2001:db8::2"]))
    h.run(6)
    assert len(h.reports()) == 1


def test_a_querier_robustness_of_3_makes_later_changes_reported_3_times():
    h = settled()
    h.rcv(query(qrv=3))
    h.run(6)
    h.sent.clear()
    h.mc.ipv6_dev_mc_inc("eth0", GROUP)
    h.run(9)
    assert [b for _, b in h.reports()] == [JOIN_REPORT] * 3


def test_an_mldv1_query_switches_to_mldv1_reports_each_to_its_group():
    h = settled(rand=0.25)
    h.rcv(query(v1=True, mrd=1000))
    h.run(6)
    assert sorted(h.reports()) == sorted((5.248, r) for r in V1_REPORTS)  # 62 of the second's 250 jiffies
    assert h.mib.get("Icmp6", "OutGroupMembResponses") == 2


def test_in_mldv1_mode_a_join_reports_at_once_and_a_leave_says_done_to_all_routers():
    h = settled()
    h.rcv(query(v1=True))
    h.run(7)
    h.sent.clear()
    group = ip6_from_str("ff12::1235")
    h.mc.ipv6_dev_mc_inc("eth0", group)
    assert [ip6_to_str(int.from_bytes(b[24:40], "big")) for _, b in h.reports()] == ["ff12::1235"]
    h.mc.ipv6_dev_mc_dec("eth0", group)
    assert h.reports()[-1][1] == V1_DONE
    assert h.mib.get("Icmp6", "OutGroupMembReductions") == 1


def test_another_hosts_mldv1_report_of_a_group_stops_our_answer():
    h = settled()
    h.rcv(query(v1=True, mrd=5000))
    report = IPv6(src="fe80::ff:fe00:2", dst="ff02::1:ff00:1", hlim=1) / IPv6ExtHdrHopByHop(
        options=[RouterAlert(value=0)]) / ICMPv6MLReport(mladdr="ff02::1:ff00:1")
    h.rcv(report)
    h.run(11)
    assert [ip6_to_str(int.from_bytes(b[24:40], "big")) for _, b in h.reports()] == ["ff02::1:ff00:a"]


def test_mldv1_mode_ends_qrv_query_intervals_and_a_response_interval_after_the_last_mldv1_query():
    h = settled()
    h.rcv(query(v1=True))
    h.run(5 + 2 * 125 + 10 + 1)
    h.sent.clear()
    h.mc.ipv6_dev_mc_inc("eth0", GROUP)
    h.run(5 + 260 + 3)
    assert [b[48] for _, b in h.reports()] == [0x8F, 0x8F]  # MLDv2 again


# -- receiving -------------------------------------------------------------------------------------------


def test_a_datagram_to_a_group_the_device_has_not_joined_is_dropped_after_counting_it():
    """Linux 6.18: Ip6InMcastPkts, then kfree_skb at ip6_mc_input, NOT_SPECIFIED (the tracepoint)."""
    h = settled()
    udp = Ipv6Hdr(LL_B, GROUP, 17, hop_limit=1).to_bytes(8) + bytes(8)
    assert h.rcv(udp) == pb.SKB_DROP_REASON_NOT_SPECIFIED
    assert (h.mib.get("Ip6", "InMcastPkts"), h.mib.get("Ip6", "InDelivers")) == (1, 0)


# -- sockets ------------------------------------------------------------------------------------------------


@pytest.fixture
def two():
    net = TwoHosts()
    for host in (net.a, net.b):
        host.socket.layer.l3 = Direct(host.l3)  # as the socket service's L3 stub
    net.run(5)  # DAD
    yield net
    net.close()


def mreq(group: str, ifindex: int = 0) -> bytes:
    return ip6_from_str(group).to_bytes(16, "big") + ifindex.to_bytes(4, "little")


def setsockopt(sock, optname: int, data: bytes | None = None, value: int = 0) -> int:
    """setsockopt(IPPROTO_IPV6, optname) as the socket module calls it: the errno, 0 for none."""
    req = socket_pb2.SockoptRequest(fd=sock.fd, level=41, optname=optname, value=value)
    if data is not None:
        req.data = data
    try:
        sock.api.call("Setsockopt", req)
    except OSError as exc:
        return exc.errno
    return 0


JOIN, LEAVE = 20, 21


def test_ipv6_join_group_refuses_what_linux_refuses(two):
    """Each errno Python's socket module got from Linux 6.18 for the same call."""
    sock = two.b.api.socket(2, 0, 10)
    sock.bind(("::", 5000))
    assert setsockopt(sock, JOIN, mreq("2001:db8::5")) == errno.EINVAL
    assert setsockopt(sock, JOIN, mreq("::")) == errno.EINVAL
    assert setsockopt(sock, JOIN, mreq("ff12::1234")[:19]) == errno.EINVAL
    assert setsockopt(sock, JOIN, value=1) == errno.EINVAL  # an int is 4 bytes of optval
    assert setsockopt(sock, JOIN, mreq("ff12::99", 77)) == errno.ENODEV
    assert setsockopt(sock, JOIN, mreq("ff12::1234")) == 0
    assert setsockopt(sock, JOIN, mreq("ff12::1234")) == errno.EADDRINUSE
    assert setsockopt(sock, JOIN, mreq("ff12::1234", 1)) == errno.EADDRINUSE
    assert setsockopt(sock, JOIN, mreq("ff12::4444") + b"more") == 0
    assert setsockopt(sock, LEAVE, mreq("ff12::99")) == errno.EADDRNOTAVAIL
    assert setsockopt(sock, LEAVE, mreq("2001:db8::5")) == errno.EINVAL
    assert setsockopt(sock, LEAVE, mreq("ff12::1234")) == 0
    assert setsockopt(sock, LEAVE, mreq("ff12::1234")) == errno.EADDRNOTAVAIL
    tcp = two.b.api.socket(1, 0, 10)
    assert setsockopt(tcp, JOIN, mreq("ff12::1234")) == errno.EPROTO
    udp4 = two.b.api.socket(2, 0, 2)
    assert setsockopt(udp4, JOIN, mreq("ff12::1234")) == errno.ENOPROTOOPT


def test_a_joined_group_is_on_the_device_until_the_socket_is_closed(two):
    sock = two.b.api.socket(2, 0, 10)
    assert setsockopt(sock, JOIN, mreq("ff12::1234")) == 0
    assert setsockopt(sock, JOIN, mreq("ff02::1")) == 0  # joined by the device already: a second user
    mcast = two.b.l3.mcast
    assert mcast.ipv6_chk_mcast_addr("eth0", GROUP)
    assert [g.users for g in mcast.groups("eth0") if ip6_to_str(g.addr) == "ff02::1"] == [2]
    sock.close()
    assert not mcast.ipv6_chk_mcast_addr("eth0", GROUP)
    assert [g.users for g in mcast.groups("eth0") if ip6_to_str(g.addr) == "ff02::1"] == [1]


def test_a_socket_that_joined_a_group_receives_what_the_other_host_sends_to_it(two):
    rx = two.b.api.socket(2, 0, 10)
    rx.bind(("::", 5000))
    before = len(two.b.cable.frames)
    assert setsockopt(rx, JOIN, mreq("ff12::1234")) == 0
    two.run(0.012)  # the first report 2 jiffies after the join, the second 2 more at the soonest
    reports = [f for f in two.b.cable.frames[before:] if f[12:14] == b"\x86\xdd" and f[14 + 6] == 0]
    assert [Mld2Report.from_bytes(f[14 + 48:]).records for f in reports] == [
        (Mld2Grec(MLD2_CHANGE_TO_EXCLUDE, GROUP),)]
    tx = two.a.api.socket(2, 0, 10)
    tx.sendto(b"to the group", ("ff12::1234", 5000))
    two.run(0.1)
    data, (src, _, _, scope_id) = rx.recvfrom()
    # from the link-local address, a link-scoped group's (Linux: ('fe80::ff:fe00:2', 49154, 0, 2))
    assert (data, src, scope_id) == (b"to the group", "fe80::ff:fe00:a", 1)
    tx.sendto(b"to nobody", ("ff12::5555", 5000))
    two.run(0.1)
    with pytest.raises(BlockingIOError):
        rx.recvfrom()


# -- ip -6 maddr ------------------------------------------------------------------------------------------


class _Hop:
    def put(self, items) -> bool:
        return True

    def close(self) -> None:
        pass


class _View:
    """`pktpath ip`'s view of host A: L3's GetAddrs from its servicer method."""

    def __init__(self, layer: L3) -> None:
        get = lambda request, timeout=None: L3Servicer.GetAddrs(layer, request, None)  # noqa: E731
        self.stub = {"l3": type("L3Stub", (), {"GetAddrs": staticmethod(get)})}


def test_pktpath_ip_maddr_prints_each_devices_groups_with_their_users_as_iproute2_does(capsys):
    """Linux's `ip -6 maddr show dev DEV` and `ip -j -6 maddr` with a socket in the group an
    address made (its veth is interface 2, after lo; pktpath numbers its devices from 1)."""
    layer = L3("A", load("default").host("A"), lambda edge, mib: _Hop())
    try:
        assert layer.mcast.ipv6_dev_mc_inc("eth0", SNMA_A) == 0
        view = _View(layer)
        assert _ip(parser().parse_args(["ip", "-6", "maddr", "show", "dev", "eth0"]), view) == 0
        assert capsys.readouterr().out == ("1:\teth0\n\tinet6 ff02::1:ff00:a\n\tinet6 ff02::1:ff00:1 users 2\n"
                                           "\tinet6 ff02::1\n\tinet6 ff01::1\n")
        assert _ip(parser().parse_args(["ip", "-j", "-6", "maddr"]), view) == 0
        assert json.loads(capsys.readouterr().out) == [{"ifindex": 1, "ifname": "eth0", "maddr": [
            {"family": "inet6", "address": "ff02::1:ff00:a"},
            {"family": "inet6", "address": "ff02::1:ff00:1", "users": 2},
            {"family": "inet6", "address": "ff02::1"}, {"family": "inet6", "address": "ff01::1"}]}]
        assert _ip(parser().parse_args(["ip", "-4", "m"]), view) == 0  # no IGMP here: nothing
        assert capsys.readouterr().out == ""
    finally:
        layer.close()
