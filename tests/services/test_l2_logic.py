"""Ethernet and ARP logic of two hosts wired back to back, without gRPC or processes."""

import pytest

from pktpath import skbuff as s
from pktpath.counters import Mib
from pktpath.pb import skbuff_pb2 as pb
from pktpath.services.l2.link import L2Iface, Link
from pktpath.services.l2.neighbour import (NEIGH_UPDATE_F_ISROUTER, NEIGH_UPDATE_F_OVERRIDE,
                                           NEIGH_UPDATE_F_OVERRIDE_ISROUTER, NEIGH_UPDATE_F_WEAK_OVERRIDE,
                                           NUD_DELAY, NUD_FAILED, NUD_PROBE, NUD_REACHABLE, NUD_STALE, NeighParms)
from pktpath.wire import ArpHdr, EthHdr, IpHdr
from pktpath.wire.addr import ZERO_MAC, ip6_from_str, ip_from_str, mac_from_str
from pktpath.wire.arp import ARPOP_REPLY, ARPOP_REQUEST
from pktpath.wire.ethernet import ETH_P_8021AD, ETH_P_8021Q, ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, VlanHdr
from pktpath.wire.ipv6 import Ipv6Hdr

from fakes import Clock

IP_A, IP_B, IP_C = ip_from_str("10.0.0.1"), ip_from_str("10.0.0.2"), ip_from_str("10.0.0.3")
MAC_A, MAC_B = mac_from_str("02:00:00:00:00:0a"), mac_from_str("02:00:00:00:00:0b")
MAC_MCAST, MAC_OTHER = mac_from_str("01:00:5e:00:00:01"), mac_from_str("02:00:00:00:00:99")


class Host:
    """One host's L2 with its wire, its L3 and its drops recorded."""

    def __init__(self, name, mac, ip, clock, parms=None):
        self.wire, self.up, self.up6, self.solicits, self.mib = [], [], [], [], Mib()
        self.link = Link(name, [L2Iface("eth0", mac, ip, 24, 1500)], mib=self.mib,
                         to_l3=lambda skbs: self.up.extend(skbs) or True,
                         to_dev=lambda skbs: self.wire.extend(bytes(k.payload()) for k in skbs) or True,
                         parms=parms or NeighParms(base_reachable_time=30),
                         to_l3_ipv6=lambda skbs: self.up6.extend(skbs) or True,
                         ndisc_solicit=lambda items: self.solicits.extend(items) or True)
        self.link.neigh._clock = self.link.nd._clock = clock

    def receive(self, frames):
        skbs = []
        for frame in frames:
            skb = s.alloc_skb(s.NET_SKB_PAD + len(frame))
            s.skb_reserve(skb, s.NET_SKB_PAD)
            s.skb_put_data(skb, frame)
            skb.dev = "eth0"
            skbs.append(skb)
        return self.link.netif_receive_skb_list(skbs)


def deliver(src: Host, dst: Host):
    frames, src.wire[:] = list(src.wire), []
    return dst.receive(frames)


def ip_packet(dst: int, payload=b"hello") -> s.SkBuff:
    skb = s.alloc_skb(s.MAX_HEADER + 20 + len(payload))
    s.skb_reserve(skb, s.MAX_HEADER)
    s.skb_put_data(skb, IpHdr(IP_A, dst, 17).to_bytes(len(payload)) + payload)
    skb.dev, skb.nexthop, skb.protocol = "eth0", dst, ETH_P_IP
    return skb


@pytest.fixture
def hosts():
    clock = Clock()
    return Host("A", MAC_A, IP_A, clock), Host("B", MAC_B, IP_B, clock), clock


def test_arp_from_empty_tables_queues_then_releases(hosts):
    a, b, _ = hosts
    a.link.neigh_output([ip_packet(IP_B), ip_packet(IP_B)])
    (request,) = a.wire  # one who-has, both packets queued
    eth = EthHdr.from_bytes(request)
    arp = ArpHdr.from_bytes(request[14:])
    assert eth.h_dest == b"\xff" * 6 and eth.h_proto == ETH_P_ARP
    assert (arp.ar_op, arp.ar_sip, arp.ar_tip, arp.ar_sha) == (1, IP_A, IP_B, MAC_A)
    assert len(request) == 42  # padding to ETH_ZLEN is the driver's job
    deliver(a, b)
    (reply,) = b.wire
    assert EthHdr.from_bytes(reply).h_dest == MAC_A
    assert ArpHdr.from_bytes(reply[14:])[:3] == (2, MAC_B, IP_B)
    assert [(n.ip, n.lladdr, n.state) for n in b.link.neigh.entries()] == [(IP_A, MAC_A, NUD_STALE)]
    deliver(b, a)
    assert [(n.lladdr, n.state) for n in a.link.neigh.entries()] == [(MAC_B, NUD_REACHABLE)]
    assert len(a.wire) == 2  # the queue was released, addressed to B
    for frame in a.wire:
        eth = EthHdr.from_bytes(frame)
        assert (eth.h_dest, eth.h_source, eth.h_proto) == (MAC_B, MAC_A, ETH_P_IP)
        assert frame[14 + 20:] == b"hello"
    assert a.mib.get("Arp", "OutRequests") == 1 and b.mib.get("Arp", "OutReplies") == 1
    # and B passes them up to L3 with the IP header at data
    deliver(a, b)
    assert len(b.up) == 2 and IpHdr.from_bytes(b.up[0].payload()).daddr == IP_B
    assert b.up[0].pkt_type == pb.PACKET_HOST and b.up[0].protocol == ETH_P_IP


def test_unanswered_resolution_fails_and_drops_queue(hosts):
    a, _, clock = hosts
    a.link.neigh_output([ip_packet(IP_C)])
    for _ in range(5):
        clock.t += 1.01
        a.link.neigh.tick()
    assert len(a.wire) == 3  # mcast_solicit
    (n,) = a.link.neigh.entries()
    assert n.state == NUD_FAILED
    assert a.mib.get("Drops", "SKB_DROP_REASON_NEIGH_FAILED") == 1
    assert a.link.neigh.stats["res_failed"] == 1


def test_queue_overflow_drops_oldest(hosts):
    clock = hosts[2]
    a = Host("A", MAC_A, IP_A, clock, NeighParms(unres_qlen=2))
    a.link.neigh_output([ip_packet(IP_C) for _ in range(5)])
    assert a.mib.get("Drops", "SKB_DROP_REASON_NEIGH_QUEUEFULL") == 3
    assert a.link.neigh.stats["unresolved_discards"] == 3


def test_reachable_decays_to_stale_then_probes(hosts):
    a, b, clock = hosts
    a.link.neigh_output([ip_packet(IP_B)])
    deliver(a, b)
    deliver(b, a)
    a.wire.clear()
    clock.t += 50  # past any reachable_time (15..45 s)
    a.link.neigh.tick()
    assert a.link.neigh.entries()[0].state == NUD_STALE
    a.link.neigh_output([ip_packet(IP_B)])  # a STALE entry still sends at once
    assert len(a.wire) == 1 and a.link.neigh.entries()[0].state == NUD_DELAY
    clock.t += 5.1
    a.link.neigh.tick()
    assert a.link.neigh.entries()[0].state == NUD_PROBE
    probe = a.wire[-1]
    assert EthHdr.from_bytes(probe).h_dest == MAC_B  # unicast re-probe
    a.wire[:] = [probe]
    deliver(a, b)
    deliver(b, a)
    assert a.link.neigh.entries()[0].state == NUD_REACHABLE


@pytest.mark.parametrize("frame, reason", [
    (b"\x02" * 10, "SKB_DROP_REASON_PKT_TOO_SMALL"),
    (MAC_A + MAC_B + b"\x00\x2e" + bytes(46), "SKB_DROP_REASON_UNHANDLED_PROTO"),   # 802.3 length
    (b"\x02\x00\x00\x00\x00\x99" + MAC_A + b"\x08\x00" + bytes(46), "SKB_DROP_REASON_OTHERHOST"),
    (MAC_OTHER + MAC_A + b"\x86\xdd" + bytes(46), "SKB_DROP_REASON_OTHERHOST"),      # ip6_rcv_core's first check
    (MAC_B + MAC_A + b"\x08\x06" + bytes(10), "SKB_DROP_REASON_PKT_TOO_SMALL"),     # short ARP
])
def test_bad_frames_dropped_with_reason(hosts, frame, reason):
    _, b, _ = hosts
    assert b.receive([frame]) == (0, 1)
    assert b.mib.get("Drops", reason) == 1 and b.up == []


def test_arp_for_another_address_is_not_answered(hosts):
    a, b, _ = hosts
    a.link.arp_solicit("eth0", IP_C, None)
    deliver(a, b)
    assert b.wire == [] and b.link.neigh.entries() == []  # arp_accept=0: no entry from others' traffic


# -- VLAN tags and multicast frames, as Linux 6.18 treats them on a host without VLAN devices --------
# (measured: scapy frames into a veth in a network namespace without eth0.42; the counters are
# /proc/net/snmp and `ip -s -s link` rx dropped / otherhost, the reasons from the kfree_skb tracepoint)

UDP_TO_B = IpHdr(IP_A, IP_B, 17).to_bytes(8 + 5) + b"\x15\xb3\x10\x92\x00\x0d\x00\x00hello"
ARP_FOR_B = ArpHdr(ARPOP_REQUEST, MAC_A, IP_A, ZERO_MAC, IP_B).to_bytes()
Q, AD = ETH_P_8021Q, ETH_P_8021AD


def tagged(tags, inner=ETH_P_IP, body=UDP_TO_B, dst=MAC_B) -> bytes:
    """A frame with the given (TPID, TCI) tags, outermost first."""
    types = [tpid for tpid, _ in tags] + [inner]
    frame = dst + MAC_A + types[0].to_bytes(2, "big")
    for (_, tci), next_type in zip(tags, types[1:]):
        frame += VlanHdr(tci, next_type).to_bytes()
    return frame + body


@pytest.mark.parametrize("frame, reason, stat", [
    pytest.param(tagged([(Q, 42)]), "OTHERHOST", "rx_otherhost_dropped", id="vlan42"),  # no eth0.42
    pytest.param(tagged([(Q, 0xA02A)]), "OTHERHOST", "rx_otherhost_dropped", id="vlan42-pcp5"),
    pytest.param(tagged([(AD, 42)]), "OTHERHOST", "rx_otherhost_dropped", id="8021ad-vlan42"),
    pytest.param(tagged([(Q, 0), (Q, 42)]), "OTHERHOST", "rx_otherhost_dropped", id="priority-over-vlan42"),
    pytest.param(tagged([(Q, 0), (AD, 42)]), "OTHERHOST", "rx_otherhost_dropped", id="priority-over-8021ad"),
    pytest.param(tagged([(Q, 42)], dst=MAC_OTHER), "OTHERHOST", "rx_otherhost_dropped", id="vlan42-other-mac"),
    pytest.param(tagged([(Q, 42)], dst=MAC_MCAST), "OTHERHOST", "rx_otherhost_dropped", id="vlan42-mcast-mac"),
    pytest.param(MAC_OTHER + MAC_A + b"\x08\x00" + UDP_TO_B, "OTHERHOST", "rx_otherhost_dropped",
                 id="untagged-other-mac"),
    pytest.param(tagged([(Q, 42)], inner=0x88B5), "UNHANDLED_PROTO", "rx_dropped", id="vlan42-no-handler"),
    pytest.param(tagged([(Q, 0)], inner=0x88B5), "UNHANDLED_PROTO", "rx_dropped", id="priority-no-handler"),
    pytest.param(MAC_OTHER + MAC_A + b"\x88\xb5" + bytes(46), "UNHANDLED_PROTO", "rx_dropped",
                 id="other-mac-no-handler"),
    pytest.param(tagged([(Q, 42), (Q, 0)]), "UNHANDLED_PROTO", "rx_dropped", id="vlan42-over-tag"),  # 0x8100 left
    pytest.param(tagged([(Q, 42), (Q, 42)]), "UNHANDLED_PROTO", "rx_dropped", id="vlan42-over-vlan42"),
    pytest.param(tagged([(Q, 0)] * 9), "UNHANDLED_PROTO", "rx_dropped", id="nine-priority-tags"),  # > VLAN_MAX_DEPTH
    pytest.param(tagged([(Q, 0)], inner=0x002E, body=bytes(46)), "UNHANDLED_PROTO", "rx_dropped",
                 id="priority-over-8023"),  # as Linux without the llc module (with it: llc_rcv frees it)
    pytest.param(MAC_B + MAC_A + b"\x81\x00\x00", "NOT_SPECIFIED", None, id="truncated-tag"),  # skb_vlan_untag
    pytest.param(tagged([(Q, 0), (Q, 0)])[:20], "NOT_SPECIFIED", None, id="truncated-second-tag"),
])
def test_frames_are_dropped_with_linux_reason_and_device_counter(hosts, frame, reason, stat):
    _, b, _ = hosts
    assert b.receive([frame]) == (0, 1)
    assert b.mib.snapshot()["Drops"] == {f"SKB_DROP_REASON_{reason}": 1}
    counted = {k: v for k, v in b.mib.snapshot().get("core_stats eth0", {}).items() if v}
    assert counted == ({stat: 1} if stat else {})
    assert b.up == [] and b.wire == []


def test_arp_request_on_a_foreign_vlan_is_ignored_without_a_drop(hosts):
    _, b, _ = hosts
    assert b.receive([tagged([(Q, 42)], inner=ETH_P_ARP, body=ARP_FOR_B)]) == (1, 0)  # arp_rcv: consume_skb
    assert b.wire == [] and b.link.neigh.entries() == []
    assert "Drops" not in b.mib.snapshot() and b.mib.get("Arp", "InRequests") == 0


def test_arp_request_to_another_mac_is_ignored_without_a_drop(hosts):
    _, b, _ = hosts
    assert b.receive([MAC_OTHER + MAC_A + b"\x08\x06" + ARP_FOR_B]) == (1, 0)
    assert b.wire == [] and "Drops" not in b.mib.snapshot()


@pytest.mark.parametrize("tags", [
    [(Q, 0)], [(Q, 0xA000)], [(AD, 0)], [(Q, 0), (Q, 0)], [(Q, 0)] * 8,
], ids=["priority", "priority-pcp5", "8021ad-priority", "two-priority", "eight-priority"])
def test_priority_tagged_datagram_goes_up_as_if_untagged(hosts, tags):
    _, b, _ = hosts
    assert b.receive([tagged(tags)]) == (1, 0)
    (skb,) = b.up
    assert bytes(skb.payload()) == UDP_TO_B  # the network header follows the last tag
    assert (skb.protocol, skb.pkt_type) == (ETH_P_IP, pb.PACKET_HOST)
    assert "Drops" not in b.mib.snapshot()


def test_priority_tagged_arp_request_is_answered_untagged(hosts):
    _, b, _ = hosts
    assert b.receive([tagged([(Q, 0)], inner=ETH_P_ARP, body=ARP_FOR_B)]) == (1, 0)
    (reply,) = b.wire
    eth = EthHdr.from_bytes(reply)
    assert (eth.h_dest, eth.h_proto, eth.vlan_tci) == (MAC_A, ETH_P_ARP, None)
    assert ArpHdr.from_bytes(reply[14:])[:3] == (ARPOP_REPLY, MAC_B, IP_B)


def test_taps_see_a_foreign_vlan_frame_before_it_is_dropped():
    seen = []
    link = Link("B", [L2Iface("eth0", MAC_B, IP_B, 24, 1500)], mib=Mib(), to_l3=lambda skbs: True,
                to_dev=lambda skbs: True, tap=lambda way, skb: seen.append((way, bytes(s.skb_mac_header(skb)))))
    frame = tagged([(Q, 42)])
    skb = s.alloc_skb(s.NET_SKB_PAD + len(frame))
    s.skb_reserve(skb, s.NET_SKB_PAD)
    s.skb_put_data(skb, frame)
    skb.dev = "eth0"
    assert link.netif_receive_skb_list([skb]) == (0, 1)
    assert seen == [("rx", frame)]  # tag and all, as tcpdump shows it


@pytest.mark.parametrize("dst, pkt_type", [
    (MAC_MCAST, pb.PACKET_MULTICAST),
    (mac_from_str("03:00:00:00:00:01"), pb.PACKET_MULTICAST),  # any group bit
    (b"\xff" * 6, pb.PACKET_BROADCAST),
], ids=["01:00:5e:00:00:01", "03:00:00:00:00:01", "broadcast"])
def test_unicast_ipv4_in_a_group_addressed_frame_goes_up_with_its_pkt_type(hosts, dst, pkt_type):
    _, b, _ = hosts
    assert b.receive([dst + MAC_A + b"\x08\x00" + UDP_TO_B]) == (1, 0)
    (skb,) = b.up
    assert bytes(skb.payload()) == UDP_TO_B and skb.pkt_type == pkt_type
    assert "Drops" not in b.mib.snapshot()


def test_arp_request_in_a_multicast_frame_is_answered(hosts):
    _, b, _ = hosts
    b.receive([MAC_MCAST + MAC_A + b"\x08\x06" + ARP_FOR_B])
    (reply,) = b.wire
    assert EthHdr.from_bytes(reply).h_dest == MAC_A


@pytest.mark.parametrize("dst, state", [(MAC_A, NUD_REACHABLE), (b"\xff" * 6, NUD_DELAY), (MAC_MCAST, NUD_DELAY)],
                         ids=["unicast", "broadcast", "multicast"])
def test_only_an_arp_reply_to_our_mac_confirms_reachability(hosts, dst, state):
    a, _, _ = hosts
    a.link.neigh_output([ip_packet(IP_B)])  # INCOMPLETE, one packet queued
    a.wire[:] = []
    reply = dst + MAC_B + b"\x08\x06" + ArpHdr(ARPOP_REPLY, MAC_B, IP_B, MAC_A, IP_A).to_bytes()
    a.receive([reply])
    # A broadcast reply makes it STALE; the queued packet leaving through it makes that DELAY.
    assert [(n.lladdr, n.state) for n in a.link.neigh.entries()] == [(MAC_B, state)]
    assert [EthHdr.from_bytes(f).h_dest for f in a.wire] == [MAC_B]


# -- IPv6: its own way up, and its neighbours resolved by L3's neighbour discovery --------------------

IP6_A, IP6_B = ip6_from_str("2001:db8::a"), ip6_from_str("2001:db8::b")


def ip6_packet(dst: int, src: int = IP6_A) -> s.SkBuff:
    skb = s.alloc_skb(s.MAX_HEADER + 48)
    s.skb_reserve(skb, s.MAX_HEADER)
    s.skb_put_data(skb, Ipv6Hdr(src, dst, nexthdr=59, payload_len=8).to_bytes() + bytes(8))
    s.skb_reset_network_header(skb)
    skb.dev, skb.nexthop, skb.protocol = "eth0", dst, ETH_P_IPV6
    return skb


def test_ipv6_frames_go_up_in_a_list_of_their_own_with_the_header_at_data(hosts):
    _, b, _ = hosts
    v6 = MAC_B + MAC_A + b"\x86\xdd" + Ipv6Hdr(IP6_A, IP6_B, nexthdr=59).to_bytes()
    v4 = MAC_B + MAC_A + b"\x08\x00" + UDP_TO_B
    assert b.receive([v6, v4, v6]) == (3, 0)
    assert len(b.up) == 1 and len(b.up6) == 2
    assert all(k.protocol == ETH_P_IPV6 and Ipv6Hdr.from_bytes(k.payload()).daddr == IP6_B for k in b.up6)


def test_an_ipv6_multicast_next_hop_is_sent_to_its_33_33_group_without_resolution(hosts):
    a, _, _ = hosts
    group = ip6_from_str("ff02::1:ff00:b")
    a.link.neigh_output([ip6_packet(group)])
    (frame,) = a.wire
    assert EthHdr.from_bytes(frame)[:3] == (mac_from_str("33:33:ff:00:00:0b"), MAC_A, ETH_P_IPV6)
    assert a.solicits == [] and a.link.nd.entries() == []


def test_an_ipv6_next_hop_waits_for_ndisc_which_l3_does_then_the_queue_leaves(hosts):
    a, _, _ = hosts
    a.link.neigh_output([ip6_packet(IP6_B), ip6_packet(IP6_B)])
    assert a.wire == [] and a.solicits == [("eth0", IP6_B, None, IP6_A)]  # from the waiting packet's source
    assert a.link.neigh.entries() == []  # ARP's table is not IPv6's
    a.link.nd.neigh_update("eth0", IP6_B, MAC_B, NUD_REACHABLE, NEIGH_UPDATE_F_OVERRIDE, create=False)
    assert [EthHdr.from_bytes(f)[:3] for f in a.wire] == [(MAC_B, MAC_A, ETH_P_IPV6)] * 2


def test_ndisc_resolution_gives_up_after_three_solicitations(hosts):
    a, _, clock = hosts
    a.link.neigh_output([ip6_packet(IP6_B)])
    for _ in range(4):
        clock.t += 1.01
        a.link.nd.tick()
    assert len(a.solicits) == 3 and a.link.nd.entries()[0].state == NUD_FAILED
    assert a.mib.get("Drops", "SKB_DROP_REASON_NEIGH_FAILED") == 1


def test_neigh_update_overrides_as_linux(hosts):
    """__neigh_update: an NA without the O flag (WEAK_OVERRIDE only) cannot change a known address;
    it makes a REACHABLE entry STALE, and leaves a STALE one as it is. With OVERRIDE it replaces it."""
    a, _, _ = hosts
    nd, weak = a.link.nd, NEIGH_UPDATE_F_WEAK_OVERRIDE
    nd.neigh_update("eth0", IP6_B, MAC_B, NUD_STALE, weak | NEIGH_UPDATE_F_OVERRIDE, create=True)
    assert [(n.lladdr, n.state) for n in nd.entries()] == [(MAC_B, NUD_STALE)]
    nd.neigh_update("eth0", IP6_B, MAC_OTHER, NUD_REACHABLE, weak, create=False)
    assert [(n.lladdr, n.state) for n in nd.entries()] == [(MAC_B, NUD_STALE)]
    nd.neigh_update("eth0", IP6_B, MAC_B, NUD_REACHABLE, weak, create=False)
    assert [(n.lladdr, n.state) for n in nd.entries()] == [(MAC_B, NUD_REACHABLE)]
    nd.neigh_update("eth0", IP6_B, MAC_B, NUD_STALE, weak | NEIGH_UPDATE_F_OVERRIDE, create=False)
    assert nd.entries()[0].state == NUD_REACHABLE  # the same address does not make it STALE
    nd.neigh_update("eth0", IP6_B, MAC_OTHER, NUD_STALE, weak, create=False)
    assert [(n.lladdr, n.state) for n in nd.entries()] == [(MAC_B, NUD_STALE)]
    flags = NEIGH_UPDATE_F_OVERRIDE | NEIGH_UPDATE_F_OVERRIDE_ISROUTER | NEIGH_UPDATE_F_ISROUTER
    nd.neigh_update("eth0", IP6_B, MAC_OTHER, NUD_REACHABLE, flags, create=False)
    assert [(n.lladdr, n.state, n.router) for n in nd.entries()] == [(MAC_OTHER, NUD_REACHABLE, True)]
    assert not nd.neigh_update("eth0", IP6_A, MAC_A, NUD_STALE, flags, create=False)  # no entry made
