"""The shared-memory descriptor rings: order, fullness, wrap-around, two processes."""

import os
import struct
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from pktpath.ring import NicRings, RingError


@pytest.fixture
def rings():
    r = NicRings.create(f"pktpath-test-{uuid.uuid4().hex[:8]}", rx_slots=8, tx_slots=4, slot_size=256)
    yield r
    r.close()


def test_fifo_order_with_metadata(rings):
    for i in range(5):
        assert rings.rx.produce(bytes([i]) * (i + 1), meta=b"m%d" % i if i % 2 else b"")
    got = [rings.rx.consume() for _ in range(5)]
    assert got == [(bytes([i]) * (i + 1), b"m%d" % i if i % 2 else b"") for i in range(5)]
    assert rings.rx.consume() is None and not rings.rx.ready()


def test_full_ring_refuses_until_consumer_releases(rings):
    assert all(rings.tx.produce(b"f%d" % i) for i in range(4))
    assert rings.tx.produce(b"overflow") is False
    assert rings.tx.free_slots_seen_by_producer() == 0
    assert rings.tx.consume() == (b"f0", b"")
    assert rings.tx.free_slots_seen_by_producer() == 1
    assert rings.tx.produce(b"f4")
    assert [rings.tx.consume()[0] for _ in range(4)] == [b"f1", b"f2", b"f3", b"f4"]


def test_rx_and_tx_are_independent(rings):
    rings.rx.produce(b"rx")
    rings.tx.produce(b"tx")
    assert rings.tx.consume() == (b"tx", b"") and rings.rx.consume() == (b"rx", b"")


def test_many_laps_wrap_around(rings):
    for i in range(1000):
        assert rings.rx.produce(struct.pack("<I", i))
        assert rings.rx.consume() == (struct.pack("<I", i), b"")


def test_oversized_frame_is_an_error(rings):
    with pytest.raises(RingError):
        rings.rx.produce(bytes(rings.rx.capacity + 1))
    assert rings.rx.consume() is None


def test_bad_sizes_and_foreign_segment_rejected():
    with pytest.raises(RingError):
        NicRings.create("pktpath-test-bad", rx_slots=0)
    from multiprocessing import shared_memory
    name = f"pktpath-test-{uuid.uuid4().hex[:8]}"
    shm = shared_memory.SharedMemory(name=name, create=True, size=4096)
    try:
        with pytest.raises(RingError):
            NicRings.attach(name)
    finally:
        shm.close()
        shm.unlink()


PRODUCER = """
import struct, sys
from pktpath.ring import NicRings
rings = NicRings.attach(sys.argv[1])
n = int(sys.argv[2])
i = 0
while i < n:
    if rings.rx.produce(struct.pack("<I", i) * 16, meta=b"x" if i % 7 == 0 else b""):
        i += 1
rings.close()
"""


def test_two_processes_lose_nothing_and_keep_order():
    name = f"pktpath-test-{uuid.uuid4().hex[:8]}"
    rings = NicRings.create(name, rx_slots=64, tx_slots=1, slot_size=256)
    n = 50_000
    try:
        child = subprocess.Popen([sys.executable, "-c", PRODUCER, name, str(n)])
        expected = 0
        while expected < n:
            item = rings.rx.consume()
            if item is None:
                assert child.poll() in (None, 0), "producer died"
                continue
            frame, meta = item
            assert frame == struct.pack("<I", expected) * 16
            assert meta == (b"x" if expected % 7 == 0 else b"")
            expected += 1
        assert child.wait(timeout=30) == 0
        # the child attached and exited: the segment must still be there (only the owner unlinks)
        assert Path("/dev/shm", name).exists()
    finally:
        rings.close()
    assert not Path("/dev/shm", name).exists()


def test_create_replaces_a_stale_segment():
    name = f"pktpath-test-{uuid.uuid4().hex[:8]}"
    stale = NicRings.create(name, rx_slots=2, tx_slots=2)
    stale.rx.produce(b"old")
    # a killed NIC never unlinked: a new one with the same name starts clean
    fresh = NicRings.create(name, rx_slots=4, tx_slots=4)
    try:
        assert fresh.rx.slots == 4 and fresh.rx.consume() is None
    finally:
        fresh.close()
        stale.owner = False
        stale.close()
    assert not os.path.exists(f"/dev/shm/{name}")


def test_consume_with_headroom(rings):
    rings.rx.produce(b"frame")
    frame, _ = rings.rx.consume(headroom=64)
    assert type(frame) is bytearray and len(frame) == 69 and frame[64:] == b"frame" and not any(frame[:64])


def test_producer_sees_completion(rings):
    rings.tx.produce(b"a")
    rings.tx.produce(b"b")
    assert not rings.tx.completed(0) and not rings.tx.completed(1)
    rings.tx.consume()
    assert rings.tx.completed(0) and not rings.tx.completed(1)


def test_producer_knows_when_a_frame_waits_even_after_many_laps(rings):
    """The NIC's unmask re-raises the IRQ only if a frame waits: the producer must see that
    from its side of the ring (it does not know the consumer's position)."""
    rx = rings.rx
    assert not rx.pending()
    for lap in range(3 * rx.slots + 5):
        assert rx.produce(b"frame")
        assert rx.pending()
        assert rx.consume() is not None
        assert not rx.pending(), lap


@pytest.mark.parametrize("laps, waiting", [(0, 0), (0, 3), (5, 0), (5, 2), (9, 8)])
def test_a_driver_that_attaches_again_takes_up_the_rings_where_the_device_has_them(rings, laps, waiting):
    """softirq restarted while the NIC ran on: it resumes consuming at the first frame
    waiting (none lost, none twice) and producing TX at the first free slot."""
    n = 0
    for _ in range(laps * rings.rx.slots + 3):  # the old driver's frames, consumed
        assert rings.rx.produce(b"%d" % n)
        assert rings.rx.consume()[0] == b"%d" % n
        n += 1
    for _ in range(waiting):  # frames the device put while no driver ran
        assert rings.rx.produce(b"%d" % n)
        n += 1
    assert rings.tx.produce(b"t0")  # the old driver's TX, not yet sent by the device
    again = NicRings.attach(rings.name)
    try:
        got = [again.rx.consume()[0] for _ in range(waiting)]
        assert got == [b"%d" % i for i in range(n - waiting, n)] and again.rx.consume() is None
        assert rings.rx.produce(b"next") and again.rx.consume()[0] == b"next"
        assert again.tx.produce(b"t1")  # after the old driver's, not over it
        assert [rings.tx.consume()[0] for _ in range(2)] == [b"t0", b"t1"]
    finally:
        again.close()
