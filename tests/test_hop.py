"""The Hop over a real in-process gRPC server: batches in order, one in flight,
back-pressure, and a broken stream's losses counted, then a fresh stream."""

import threading
import time
from concurrent import futures

import grpc
import pytest

from pktpath.counters import Mib
from pktpath.hop import Hop, batches
from pktpath.pb import skbuff_pb2
from pktpath.service import channel

SERVICE, METHOD = "pktpath.test.Next", "Take"


class Next:
    """The next layer: records each batch (a list of ints carried as SkBuff ids)."""

    def __init__(self, delay: float = 0.0) -> None:
        self.mib = Mib()
        self.batches: list[list[int]] = []
        self.delay = delay
        self.arrived = threading.Condition()

    @batches
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

    def wait(self, n_items: int, timeout: float = 5.0) -> bool:
        with self.arrived:
            return self.arrived.wait_for(lambda: sum(map(len, self.batches)) >= n_items, timeout)


def serve(impl: Next, port: int = 0):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    handler = grpc.stream_unary_rpc_method_handler(
        impl.Take, request_deserializer=skbuff_pb2.SkBuffBatch.FromString,
        response_serializer=skbuff_pb2.Disposition.SerializeToString)
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(SERVICE, {METHOD: handler})])
    port = server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    return server, port


def encode(ids: list[int]) -> skbuff_pb2.SkBuffBatch:
    batch = skbuff_pb2.SkBuffBatch()
    for i in ids:
        batch.skbs.add(id=i)
    return batch


def make_hop(port: int, mib: Mib, **kw) -> Hop:
    rpc = channel(f"127.0.0.1:{port}").stream_unary(
        f"/{SERVICE}/{METHOD}", request_serializer=skbuff_pb2.SkBuffBatch.SerializeToString,
        response_deserializer=skbuff_pb2.Disposition.FromString)
    return Hop("next", rpc, encode, mib, **kw)


@pytest.fixture
def next_layer():
    impl = Next()
    server, port = serve(impl)
    yield impl, port
    server.stop(0)


def test_items_arrive_in_order_as_batches(next_layer):
    impl, port = next_layer
    hop = make_hop(port, Mib())
    for i in range(1000, 2000, 10):
        assert hop.put(list(range(i, i + 10)))
    assert impl.wait(1000)
    assert [x for b in impl.batches for x in b] == list(range(1000, 2000))
    assert max(map(len, impl.batches)) <= 256
    hop.close()


def test_a_lone_item_is_sent_at_once():
    """Never wait to fill a batch: one item crosses as one batch, promptly."""
    impl = Next()
    server, port = serve(impl)
    try:
        hop = make_hop(port, Mib())
        hop.put([1])  # opens the stream
        assert impl.wait(1)
        t0 = time.perf_counter()
        hop.put([2])
        assert impl.wait(2)
        assert time.perf_counter() - t0 < 0.5
        assert impl.batches == [[1], [2]]
        hop.close()
    finally:
        server.stop(0)


def test_batches_merge_while_one_is_in_flight():
    impl = Next(delay=0.05)
    server, port = serve(impl)
    try:
        hop = make_hop(port, Mib())
        for i in range(50):
            hop.put([i])
        assert impl.wait(50)
        assert len(impl.batches) < 50  # the queue merged while the slow layer worked
        hop.close()
    finally:
        server.stop(0)


def test_put_blocks_while_the_next_layer_is_down():
    """Back-pressure: nothing is written to a layer that is not up, the queue fills,
    put blocks; when the layer comes up, everything queued arrives."""
    impl = Next()
    server, port = serve(impl)
    server.stop(0).wait()
    hop = make_hop(port, Mib(), max_queued=3)
    assert hop.put([1, 2, 3])
    time.sleep(0.2)  # taken as one batch, whose write waits for the layer
    assert hop.put([4, 5, 6])
    assert hop.put([7], timeout=0.3) is False  # full: the caller would drop it
    server2, _ = serve(impl, port)
    try:
        assert hop.put([7], timeout=10)
        assert impl.wait(7, timeout=10)
        assert [x for b in impl.batches for x in b] == [1, 2, 3, 4, 5, 6, 7]
        hop.close()
    finally:
        server2.stop(0)


def test_a_handler_error_costs_only_its_batch(next_layer):
    impl, port = next_layer
    hop = make_hop(port, Mib())
    hop.put([666])
    time.sleep(0.2)
    hop.put([7])
    assert impl.wait(1)
    assert impl.batches == [[7]]
    assert impl.mib.get("Drops", "SKB_DROP_REASON_NOT_SPECIFIED") == 1
    hop.close()


def test_a_broken_stream_counts_what_it_carried_and_a_new_one_opens():
    impl = Next()
    server, port = serve(impl)
    mib = Mib()
    hop = make_hop(port, mib)
    hop.put([1, 2, 3])
    assert impl.wait(3)
    server.stop(0).wait()  # the next layer dies with the stream open
    deadline = time.monotonic() + 5
    while not mib.get("Hop", "nextErrors") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert mib.get("Hop", "nextErrors") == 1
    assert mib.get("Hop", "nextUnconfirmed") == 3  # written to the stream that broke
    impl2 = Next()
    server2, _ = serve(impl2, port)
    try:
        hop.put([4])
        assert impl2.wait(1, timeout=10)
        assert impl2.batches == [[4]]
        hop.close()
    finally:
        server2.stop(0)


def test_close_sends_what_is_queued(next_layer):
    impl, port = next_layer
    hop = make_hop(port, Mib())
    hop.put(list(range(300)))
    hop.close()
    assert impl.wait(300, timeout=2)
    assert hop.put([1]) is False  # closed
