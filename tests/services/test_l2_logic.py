"""Ethernet and ARP logic of two hosts wired back to back, without gRPC or processes."""

import pytest

from pktpath import skbuff as s
from pktpath.counters import Mib
from pktpath.pb import skbuff_pb2 as pb
from pktpath.services.l2.link import L2Iface, Link
from pktpath.services.l2.neighbour import (NUD_DELAY, NUD_FAILED, NUD_PROBE, NUD_REACHABLE, NUD_STALE,
                                           NeighParms)
from pktpath.wire import ArpHdr, EthHdr, IpHdr
from pktpath.wire.addr import ip_from_str, mac_from_str
from pktpath.wire.ethernet import ETH_P_ARP, ETH_P_IP

from fakes import Clock

IP_A, IP_B, IP_C = ip_from_str("10.0.0.1"), ip_from_str("10.0.0.2"), ip_from_str("10.0.0.3")
MAC_A, MAC_B = mac_from_str("02:00:00:00:00:0a"), mac_from_str("02:00:00:00:00:0b")


class Host:
    """One host's L2 with its wire, its L3 and its drops recorded."""

    def __init__(self, name, mac, ip, clock, parms=None):
        self.wire, self.up, self.mib = [], [], Mib()
        self.link = Link(name, [L2Iface("eth0", mac, ip, 24, 1500)], mib=self.mib,
                         to_l3=lambda skbs: self.up.extend(skbs) or True,
                         to_dev=lambda skbs: self.wire.extend(bytes(k.payload()) for k in skbs) or True,
                         parms=parms or NeighParms(base_reachable_time=30))
        self.link.neigh._clock = clock

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
    (MAC_B + MAC_A + b"\x86\xdd" + bytes(46), "SKB_DROP_REASON_UNHANDLED_PROTO"),   # IPv6: not here
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
