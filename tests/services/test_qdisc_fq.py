"""fq (services/softirq/qdisc.py, sch_fq.c): a queue per socket served in turn by quanta of
bytes, each flow held to the departure times its skbs carry, its limits dropped with their
reasons (on a device: tests/services/test_nic_softirq_logic.py)."""

from pktpath import skbuff as s
from pktpath.pb import skbuff_pb2 as pb
from pktpath.services.softirq.qdisc import Fq

MS = 1_000_000


def skb(sk: int, tstamp: int = 0, size: int = 1514):
    out = s.alloc_skb(size)
    s.skb_put_data(out, bytes(size))
    out.sk, out.tstamp = sk, tstamp
    return out


def drain(fq: Fq, now: int) -> list[int]:
    out = []
    while (x := fq.dequeue(now)) is not None:
        out.append(x.sk)
    return out


def test_flows_take_turns_a_new_one_ten_mtus_first_then_two_each():
    fq = Fq()
    for _ in range(14):
        assert fq.enqueue(skb(1), 0) == 0
    for _ in range(14):
        assert fq.enqueue(skb(2), 0) == 0
    # initial_quantum 15140 = 10 frames of 1514 for each new flow, then quantum 3028 = 2 a turn
    assert drain(fq, 0) == [1] * 10 + [2] * 10 + [1] * 2 + [2] * 2 + [1] * 2 + [2] * 2


def test_a_flow_waits_for_the_departure_time_on_its_skb_while_others_go():
    fq = Fq()
    fq.enqueue(skb(1, tstamp=5 * MS), 0)
    fq.enqueue(skb(2), 0)
    assert drain(fq, 0) == [2]  # flow 1 is throttled, not in the way
    assert fq.next_event_ns() == 5 * MS and len(fq) == 1
    assert drain(fq, 5 * MS - 1) == []
    assert drain(fq, 5 * MS) == [1] and fq.next_event_ns() is None


def test_a_departure_beyond_the_horizon_and_a_flow_past_its_limit_are_dropped_with_their_reasons():
    fq = Fq()
    assert fq.enqueue(skb(1, tstamp=11_000 * MS), 0) == pb.SKB_DROP_REASON_FQ_HORIZON_LIMIT  # horizon 10 s
    for _ in range(100):
        assert fq.enqueue(skb(2), 0) == 0
    assert fq.enqueue(skb(2), 0) == pb.SKB_DROP_REASON_FQ_FLOW_LIMIT  # flow_limit 100
    assert fq.enqueue(skb(3), 0) == 0  # another socket's flow has room


def test_the_topology_offers_the_qdiscs_the_softirq_layer_has():
    from pktpath.services.softirq.qdisc import QDISCS
    from pktpath.topology import QDISC_KINDS

    assert set(QDISC_KINDS) == set(QDISCS)
