"""NIC device and NAPI logic without gRPC: real shared-memory rings, fake neighbours."""

import time
import uuid

import pytest

from pktpath import skbuff as s
from pktpath.counters import Mib
from pktpath.dql import Dql
from pktpath.pb import nic_pb2, skbuff_pb2 as pb
from pktpath.ring import NicRings
from pktpath.services.nic.device import LinkImpairment, NetDevice
from pktpath.services.softirq.napi import Napi
from pktpath.services.softirq.qdisc import PfifoFast

from tcpframes import stream


@pytest.fixture
def pair():
    """A device and its driver over one set of rings; the link and IRQ line recorded."""
    rings = NicRings.create(f"pktpath-test-{uuid.uuid4().hex[:8]}", rx_slots=8, tx_slots=4)
    driver_rings = NicRings.attach(rings.name)
    wire, irqs, delivered = [], [], []
    mib = Mib()
    device = NetDevice("B", "eth0", "02:00:00:00:00:0b", rings, raise_irq=irqs.append,
                       transmit=wire.extend, mib=mib)
    napi = Napi("B", "eth0", driver_rings, deliver=lambda skbs: delivered.append(skbs) or True,
                enable_irq=device.enable_irq, doorbell=device.transmit_pending, mib=mib, weight=3, budget=6)
    napi.dql = Dql(min_limit=1 << 20)  # byte_queue_limits/limit_min: BQL out of the way, the ring's size stops TX
    yield device, napi, wire, irqs, delivered, mib
    device.close()
    driver_rings.close()
    rings.close()


def frames(n, sampled=False):
    return [pb.Frame(data=bytes([i]) * 60, id=i + 1, origin_host="A", sampled=sampled) for i in range(n)]


def test_irq_masked_after_raise_and_no_wakeup_lost(pair):
    device, napi, _, irqs, delivered, _ = pair
    assert device.receive(frames(2)) == (2, 0)
    assert irqs == [nic_pb2.IRQ_RX] and not device.irq_enabled
    device.receive(frames(1))
    assert len(irqs) == 1  # masked: no second interrupt while the driver polls
    assert napi.net_rx_action() == 3
    assert device.irq_enabled  # napi_complete_done unmasked it
    assert [len(b) for b in delivered] == [3]  # the first poll hit its weight: 3, then 0


def test_poll_respects_weight_and_batches_per_poll(pair):
    device, napi, _, _, delivered, _ = pair
    device.receive(frames(7))
    napi.net_rx_action()
    assert [len(b) for b in delivered] == [3, 3, 1]
    skb = delivered[0][0]
    assert skb.headroom() == s.NET_SKB_PAD and skb.len == 60 and skb.id == 1 and skb.origin_host == "A"


def test_budget_exhaustion_counts_time_squeeze(pair):
    device, napi, _, _, delivered, mib = pair
    device.receive(frames(8))
    napi.rings.rx  # 8 slots full
    napi.net_rx_action()
    assert sum(len(b) for b in delivered) == 8
    assert mib.get("Softnet", "time_squeeze") == 1  # 3+3 reached the budget of 6
    assert mib.get("Softnet", "processed") == 8


def test_full_ring_drops_with_reason(pair):
    device, _, _, _, _, mib = pair
    assert device.receive(frames(10)) == (8, 2)
    assert device.stats.rx_missed_errors == 2
    assert mib.get("Drops", "SKB_DROP_REASON_FULL_RING") == 2


def test_enable_irq_with_pending_work_raises_again(pair):
    device, _, _, irqs, _, _ = pair
    device.receive(frames(1))
    device.enable_irq()
    assert irqs == [nic_pb2.IRQ_RX, nic_pb2.IRQ_RX]


def test_sampled_frames_carry_dma_event_into_the_skb(pair):
    device, napi, _, _, delivered, _ = pair
    device.receive(frames(1, sampled=True))
    napi.net_rx_action()
    events = delivered[0][0].all_events()
    assert [(e[0], e[3]) for e in events] == [(s.DMA, "napi_gro_receive"), (s.ENTER, "net_rx_action")]


def test_tx_qdisc_ring_link_and_completion(pair):
    device, napi, wire, _, _, mib = pair
    skbs = []
    for i in range(6):
        skb = s.alloc_skb(100)
        s.skb_put_data(skb, bytes([i]) * 60)
        skbs.append(skb)
    # transmit_pending is the doorbell here: frames go on the wire synchronously
    assert napi.dev_queue_xmit(skbs) == (6, 0)
    assert [f.data[0] for f in wire] == [0, 1, 2, 3]  # the ring holds 4: the rest waits
    assert napi.backlog() == 2
    assert napi.clean_tx() == 4  # completions free the skbs and let the queue drain
    assert [f.data[0] for f in wire] == [0, 1, 2, 3, 4, 5]
    assert device.stats.tx_packets == 6 and mib.get("Qdisc", "requeues") >= 1


@pytest.mark.parametrize("gro", [True, False])
def test_a_poll_merges_a_flows_segments_unless_gro_is_off(pair, gro):
    device, napi, _, _, delivered, mib = pair
    napi.gro = gro  # ethtool -K eth0 gro off
    tcp, data = stream(3)
    device.receive([pb.Frame(data=f) for f in tcp])
    napi.net_rx_action()
    (batch,) = delivered
    assert [skb.gso_segs for skb in batch] == ([3] if gro else [0, 0, 0])
    assert mib.get("Softnet", "processed") == 3  # frames, before GRO
    assert b"".join(bytes(skb.payload())[66:] for skb in batch) == data  # 66: Ethernet, IP, TCP with timestamps


def test_a_gso_packet_leaves_the_qdisc_as_the_segments_it_was_made_of(pair):
    device, napi, wire, _, delivered, mib = pair
    tcp, _ = stream(3)
    device.receive([pb.Frame(data=f) for f in tcp])
    napi.net_rx_action()
    (merged,) = delivered[0]
    merged.network_header = merged.data + 14
    assert napi.dev_queue_xmit([merged]) == (1, 0)  # one packet on the qdisc, as the kernel counts it
    assert [f.data for f in wire] == tcp
    assert mib.get("Gso", "Packets") == 1 and mib.get("Gso", "Segments") == 3


def test_qdisc_overflow_drops(pair):
    _, napi, _, _, _, mib = pair
    napi.qdisc = PfifoFast(2)  # txqueuelen 2
    napi.rings.tx.produce(b"x")  # a stuck ring: nothing drains
    for _ in range(3):
        napi.rings.tx.produce(b"x")
    skbs = [s.alloc_skb(10) for _ in range(3)]
    for skb in skbs:
        s.skb_put_data(skb, b"y" * 10)
    assert napi.dev_queue_xmit(skbs) == (2, 1)
    assert mib.get("Drops", "SKB_DROP_REASON_QDISC_DROP") == 1


def test_link_impairments_are_counted():
    mib = Mib()
    imp = LinkImpairment(loss=0.5, corrupt=0.5, duplicate=0.5, reorder=0.5)
    imp.rng.seed(1)
    sent = [pb.Frame(data=bytes(60), id=i) for i in range(200)]
    out = imp.apply(sent, mib)
    counts = mib.snapshot()["Link"]
    assert counts["Loss"] > 50 and counts["Corrupt"] > 20 and counts["Duplicate"] > 20 and counts["Reorder"] > 10
    assert len(out) == 200 - counts["Loss"] + counts["Duplicate"]
    assert sum(1 for f in out if any(f.data)) >= counts["Corrupt"] - counts["Duplicate"]


def test_byte_queue_limits_start_at_one_packet_and_grow_when_the_ring_runs_dry(pair):
    device, napi, wire, _, _, _ = pair
    napi.dql = Dql()  # as the device starts
    skbs = []
    for i in range(6):
        skb = s.alloc_skb(100)
        s.skb_put_data(skb, bytes([i]) * 60)
        skbs.append(skb)
    napi.dev_queue_xmit(skbs)
    assert len(wire) == 1 and napi.backlog() == 5  # limit 0: the first frame stops the queue
    napi.clean_tx()  # it completed with the ring empty and over the limit: starved, the limit grows
    assert napi.dql.limit == 60 and len(wire) == 3  # room for one more frame past the limit
    napi.clean_tx()
    assert napi.dql.limit > 60 and len(wire) == 6 and napi.backlog() == 0
    assert napi.dql.inflight == sum(len(f.data) for f in wire[3:])


def test_a_charged_skb_gives_its_socket_its_truesize_back_when_the_device_completes_it(pair):
    _, napi, wire, _, _, _ = pair
    freed = []
    s.set_destructor(napi.host, lambda skb: freed.append((skb.sk, skb.truesize)))
    try:
        skb = s.alloc_skb(100)
        s.skb_put_data(skb, b"x" * 60)
        skb.sk, skb.truesize = 7, s.skb_truesize(60)
        napi.dev_queue_xmit([skb])
        assert freed == [] and len(wire) == 1  # on the ring, not yet completed: still charged
        napi.clean_tx()
        assert freed == [(7, s.skb_truesize(60))]
    finally:
        s.set_destructor(napi.host, None)


def paced_skb(tstamp: int):
    skb = s.alloc_skb(100)
    s.skb_put_data(skb, b"p" * 60)
    skb.sk, skb.tstamp = 1, tstamp  # a TCP socket's, with its departure time
    return skb


def test_a_device_with_fq_sends_a_paced_packet_when_its_time_comes(pair):
    _, napi, wire, _, _, _ = pair
    napi.replace_qdisc("fq")
    due = time.monotonic_ns() + 50 * 1_000_000
    assert napi.dev_queue_xmit([paced_skb(due)]) == (1, 0)
    assert wire == [] and napi.backlog() == 1  # held back by fq, not on the ring
    deadline = time.monotonic() + 5
    while not wire and time.monotonic() < deadline:
        time.sleep(0.005)
    assert len(wire) == 1 and time.monotonic_ns() >= due  # the qdisc watchdog ran the queue


def test_a_tx_completion_while_the_driver_polls_raises_the_irq_at_the_unmask(pair):
    device, napi, _, irqs, _, _ = pair
    device.receive(frames(1))  # an RX IRQ: masked until the poll is done
    napi.poll(3)  # the poll: TX cleaned (nothing yet), the RX frame taken
    skb = s.alloc_skb(100)
    s.skb_put_data(skb, b"t" * 60)
    napi.dev_queue_xmit([skb])  # sent and completed while masked
    device._maybe_interrupt(nic_pb2.IRQ_TX_DONE)  # the TX loop's completion interrupt: masked, latched
    assert irqs == [nic_pb2.IRQ_RX]
    device.enable_irq()  # napi_complete_done, with the ring empty of RX: the latched completion raises
    assert irqs == [nic_pb2.IRQ_RX, nic_pb2.IRQ_TX_DONE]
