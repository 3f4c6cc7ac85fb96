"""The Hop and its listener over real Unix sockets: batches in order, sent at once,
merged under load, back-pressure, a broken connection's losses counted, a new one."""

import threading
import time

import pytest

from pktpath.counters import Mib
from pktpath.hop import Hop, HopListener, batches
from pktpath.pb import skbuff_pb2


class Next:
    """The next layer: records each batch (ints carried as SkBuff ids)."""

    def __init__(self, delay: float = 0.0) -> None:
        self.mib = Mib()
        self.batches: list[list[int]] = []
        self.delay = delay
        self.arrived = threading.Condition()

    @batches(skbuff_pb2.SkBuffBatch)
    def Take(self, request, context):
        if self.delay:
            time.sleep(self.delay)
        ids = [m.id for m in request.skbs]
        if 666 in ids:
            raise RuntimeError("a handler bug")
        with self.arrived:
            self.batches.append(ids)
            self.arrived.notify_all()
        return skbuff_pb2.Disposition(accepted=len(ids))

    def items(self) -> list[int]:
        return [x for b in self.batches for x in b]

    def wait(self, n_items: int, timeout: float = 5.0) -> bool:
        with self.arrived:
            return self.arrived.wait_for(lambda: len(self.items()) >= n_items, timeout)


def encode(ids: list[int]) -> skbuff_pb2.SkBuffBatch:
    batch = skbuff_pb2.SkBuffBatch()
    for i in ids:
        batch.skbs.add(id=i)
    return batch


@pytest.fixture
def path(tmp_path):
    return str(tmp_path / "next.hop")


def test_items_arrive_in_order_as_batches(path):
    impl = Next()
    listener = HopListener(path, impl)
    hop = Hop("next", path, "Take", encode, Mib())
    for i in range(1000, 2000, 10):
        assert hop.put(list(range(i, i + 10)))
    assert impl.wait(1000)
    assert impl.items() == list(range(1000, 2000))
    assert max(map(len, impl.batches)) <= 256
    hop.close()
    listener.close()


def test_a_lone_item_is_sent_at_once(path):
    """Never wait to fill a batch: one item crosses as one batch, promptly."""
    impl = Next()
    listener = HopListener(path, impl)
    hop = Hop("next", path, "Take", encode, Mib())
    hop.put([1])
    assert impl.wait(1)
    t0 = time.perf_counter()
    hop.put([2])
    assert impl.wait(2)
    assert time.perf_counter() - t0 < 0.2
    assert impl.batches == [[1], [2]]
    hop.close()
    listener.close()


def test_batches_merge_while_the_next_layer_is_busy(path):
    impl = Next(delay=0.02)
    listener = HopListener(path, impl)
    mib = Mib()
    hop = Hop("next", path, "Take", encode, mib, max_in_flight=1)
    for i in range(100):
        hop.put([i])
    assert impl.wait(100)
    assert impl.items() == list(range(100))
    assert len(impl.batches) < 50  # the queue merged while the slow layer worked
    assert mib.get("Hop", "nextItems") == 100 and mib.get("Hop", "nextBatches") == len(impl.batches)
    hop.close()
    listener.close()


def test_put_blocks_while_the_next_layer_is_down_then_everything_arrives(path):
    impl = Next()
    hop = Hop("next", path, "Take", encode, Mib(), max_queued=3)
    assert hop.put([1, 2, 3])
    assert hop.put([4], timeout=0.3) is False  # full, nothing to write to: the caller would drop it
    listener = HopListener(path, impl)
    assert hop.put([4], timeout=10)
    assert impl.wait(4, timeout=10)
    assert impl.items() == [1, 2, 3, 4]
    hop.close()
    listener.close()


def test_a_handler_error_costs_only_its_batch(path):
    impl = Next()
    listener = HopListener(path, impl)
    hop = Hop("next", path, "Take", encode, Mib())
    hop.put([666])
    time.sleep(0.2)
    hop.put([7])
    assert impl.wait(1)
    assert impl.batches == [[7]]
    assert impl.mib.get("Drops", "SKB_DROP_REASON_NOT_SPECIFIED") == 1
    hop.close()
    listener.close()


def test_a_broken_connection_counts_what_it_carried_and_a_new_one_opens(path):
    impl = Next(delay=0.5)
    listener = HopListener(path, impl)
    mib = Mib()
    hop = Hop("next", path, "Take", encode, mib, max_in_flight=4)
    hop.put([1])
    time.sleep(0.1)  # batch [1] is being handled (0.5 s)
    hop.put([2])
    time.sleep(0.1)
    listener.close()  # the next layer goes away with both batches unacknowledged
    impl2 = Next()
    listener2 = HopListener(path, impl2)
    hop.put([3])  # the write finds the connection broken: counted, then a new one
    assert impl2.wait(1, timeout=10)
    assert impl2.batches == [[3]]
    assert mib.get("Hop", "nextErrors") == 1
    assert mib.get("Hop", "nextUnconfirmed") == 2
    hop.close()
    listener2.close()


def test_close_sends_what_is_queued(path):
    impl = Next()
    listener = HopListener(path, impl)
    hop = Hop("next", path, "Take", encode, Mib())
    hop.put(list(range(300)))
    hop.close()
    assert impl.wait(300, timeout=2)
    assert hop.put([1]) is False  # closed
    listener.close()


def test_the_same_handler_serves_the_grpc_stream():
    """One-off callers use the RPC: a stream of batches, answered with the tally."""
    impl = Next()
    tally = impl.Take(iter([encode([1, 2]), encode([666]), encode([3])]), None)
    assert (tally.accepted, tally.dropped) == (3, 1)
    assert impl.items() == [1, 2, 3]
