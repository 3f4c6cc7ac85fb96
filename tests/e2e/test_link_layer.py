"""NIC, softirq and L2 of two hosts as real processes: ARP resolves over the shared-memory
rings, the link between NICs and the IRQ streams, from empty tables."""

import pytest
from google.protobuf import empty_pb2

from pktpath import skbuff as s
from pktpath.pb import l2_pb2, nic_pb2, skbuff_pb2
from pktpath.rpc import l2_pb2_grpc, nic_pb2_grpc
from pktpath.wire import IpHdr
from pktpath.wire.addr import ip_from_str

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
    nic_a = stub(sup, "A", "nic", nic_pb2_grpc.NicStub)
    nic_b = stub(sup, "B", "nic", nic_pb2_grpc.NicStub)
    a_stats = nic_a.GetStats(nic_pb2.DevRequest(dev="eth0"))
    b_stats = nic_b.GetStats(nic_pb2.DevRequest(dev="eth0"))
    assert a_stats.tx_packets == 2 and b_stats.rx_packets == 2  # who-has + the packet
    assert a_stats.rx_packets == 1 and b_stats.tx_packets == 1  # is-at
    assert b_stats.tx_bytes == 60  # the 42-byte reply padded to ETH_ZLEN by the driver


def test_inject_wrong_mac_counted_as_otherhost(default_topology):
    sup = default_topology
    nic_b = stub(sup, "B", "nic", nic_pb2_grpc.NicStub)
    l2_b = stub(sup, "B", "l2", l2_pb2_grpc.L2Stub)
    before = counter(l2_b, "Drops", "SKB_DROP_REASON_OTHERHOST")
    frame = bytes.fromhex("020000000099") + bytes.fromhex("02000000000a") + b"\x08\x00" + bytes(46)
    reply = nic_b.Inject(skbuff_pb2.FrameBatch(dev="eth0", frames=[skbuff_pb2.Frame(data=frame)] * 3), timeout=5)
    assert reply.accepted == 3
    assert wait_for(lambda: counter(l2_b, "Drops", "SKB_DROP_REASON_OTHERHOST") == before + 3)
