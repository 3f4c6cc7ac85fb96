"""NIC, softirq and L2 of two hosts as real processes: ARP resolves over the shared-memory
rings, the link between NICs and the IRQ streams, from empty tables."""

import pytest
from google.protobuf import empty_pb2

from pktpath import skbuff as s
from pktpath.pb import l2_pb2, nic_pb2, skbuff_pb2
from pktpath.rpc import l2_pb2_grpc, l3_pb2_grpc, nic_pb2_grpc
from pktpath.wire import IpHdr
from pktpath.wire.addr import ip_from_str
from pktpath.wire.ethernet import ETH_HLEN

from e2ekit import counter, stub, wait_for

pytestmark = pytest.mark.slow


def test_arp_resolves_and_the_packet_crosses(default_topology):
    sup = default_topology
    l2_a = stub(sup, "A", "l2", l2_pb2_grpc.L2Stub)
    l2_b = stub(sup, "B", "l2", l2_pb2_grpc.L2Stub)
    assert l2_a.GetNeighbours(empty_pb2.Empty()).entries == []
    # an IPv4 packet from A's L3 for B: no neighbour yet
    payload = b"across the link"
    skb = s.alloc_skb(s.MAX_HEADER + 20 + len(payload))
    s.skb_reserve(skb, s.MAX_HEADER)
    s.skb_put_data(skb, IpHdr(ip_from_str("10.0.0.1"), ip_from_str("10.0.0.2"), 17).to_bytes(len(payload)) + payload)
    skb.dev, skb.nexthop, skb.protocol = "eth0", ip_from_str("10.0.0.2"), 0x0800
    reply = l2_a.NeighOutput(iter([s.to_batch([skb])]), timeout=5)  # a stream of one batch
    assert reply.accepted == 1

    def neighbour(l2, ip):
        entries = [n for n in l2.GetNeighbours(empty_pb2.Empty()).entries if n.dst == ip]
        return entries[0] if entries else None

    entry = wait_for(lambda: (n := neighbour(l2_a, "10.0.0.2")) and n.state == l2_pb2.NUD_REACHABLE and n)
    assert entry and entry.lladdr == "02:00:00:00:00:0b"
    learned = neighbour(l2_b, "10.0.0.1")
    assert learned.lladdr == "02:00:00:00:00:0a" and learned.state == l2_pb2.NUD_STALE
    # the queued packet followed the reply: B's L2 passed it up to L3
    assert wait_for(lambda: counter(l2_b, "L2", "InFrames") >= 2)
    a, b = ipv4_frames(sup, "A"), ipv4_frames(sup, "B")
    assert a.tx_packets == 2 and b.rx_packets == 2  # who-has + the packet
    assert a.rx_packets == 1 and b.tx_packets == 1  # is-at
    assert b.tx_bytes == 60  # the 42-byte reply padded to ETH_ZLEN by the driver


def ipv4_frames(sup, host: str) -> nic_pb2.NetDevStats:
    """eth0's counters without the frames IPv6 sends and takes on its own at link-up, as Linux's
    (DAD's probes, router solicitations): the device's and L3's counters read until L3's did
    not move meanwhile."""
    nic, l3 = stub(sup, host, "nic", nic_pb2_grpc.NicStub), stub(sup, host, "l3", l3_pb2_grpc.L3Stub)

    def ipv6() -> tuple[int, int, int]:
        return tuple(counter(l3, "Ip6", name) for name in ("OutTransmits", "OutOctets", "InReceives"))

    while True:
        before = ipv6()
        stats = nic.GetStats(nic_pb2.DevRequest(dev="eth0"))
        out, octets, received = ipv6()
        if (out, octets, received) == before:
            break
    stats.tx_packets -= out
    stats.tx_bytes -= octets + ETH_HLEN * out  # IPv6's frames are never short enough for padding
    stats.rx_packets -= received
    return stats


def test_inject_wrong_mac_counted_as_otherhost(default_topology):
    sup = default_topology
    nic_b = stub(sup, "B", "nic", nic_pb2_grpc.NicStub)
    l2_b = stub(sup, "B", "l2", l2_pb2_grpc.L2Stub)
    before = counter(l2_b, "Drops", "SKB_DROP_REASON_OTHERHOST")
    frame = bytes.fromhex("020000000099") + bytes.fromhex("02000000000a") + b"\x08\x00" + bytes(46)
    reply = nic_b.Inject(skbuff_pb2.FrameBatch(dev="eth0", frames=[skbuff_pb2.Frame(data=frame)] * 3), timeout=5)
    assert reply.accepted == 3
    assert wait_for(lambda: counter(l2_b, "Drops", "SKB_DROP_REASON_OTHERHOST") == before + 3)
