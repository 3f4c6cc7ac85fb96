"""A NIC's RX and TX descriptor rings in POSIX shared memory.

Models the descriptor rings a NAPI driver shares with its device (e.g. e1000e's
struct e1000_ring and the DD "descriptor done" status bit): the device fills
RX descriptors and marks them done, the driver's poll consumes them and hands
them back; on TX the roles swap. Here the NIC service is the device, the
softirq service the driver, and both map the same segment.

Each ring is single-producer single-consumer with a sequence number per slot
(Vyukov's bounded queue): slot i of lap L is free for the producer when its
seq is L*size + i, and holds a frame for the consumer when seq is that + 1.
Each side keeps its own index; the only shared words are the per-slot seqs,
written last by the producer (after the frame) and by the consumer (after
reading it). Python has no memory fence, but the two stores are separate C
calls in program order and x86 keeps stores in order (TSO), so a consumer
that sees the seq sees the frame.

Segment layout (little-endian):
    header: magic u32, version u16, pad u16, rx_slots u32, tx_slots u32, slot_size u32
    rx ring: rx_slots x slot, then tx ring: tx_slots x slot
    slot:   seq u64 | len u32 | meta_len u32 | frame (len) ... meta (meta_len)

`meta` is opaque to the ring: the NIC stores a sampled frame's trace context and
events there, nothing for an unsampled one.
"""

import struct
from multiprocessing import resource_tracker, shared_memory

MAGIC = 0x50505448  # "PPTH"
_created: set[str] = set()  # segments this process created
VERSION = 1
DEFAULT_RING_SIZE = 256  # ethtool -g default
DEFAULT_SLOT_SIZE = 2048  # one page half, as drivers' RX buffers: a 1518-byte frame + metadata
MAX_RING_SIZE = 4096

_HDR = struct.Struct("<IHHIII")
_SLOT_HDR = struct.Struct("<QII")
SLOT_HDR_LEN = _SLOT_HDR.size
_SEQ = struct.Struct("<Q")


class RingError(Exception):
    pass


class Ring:
    """One direction of the descriptor ring. A process uses a given Ring either
    as producer or as consumer, never both."""

    def __init__(self, buf: memoryview, offset: int, slots: int, slot_size: int) -> None:
        self.buf = buf
        self.base = offset
        self.slots = slots
        self.slot_size = slot_size
        self.capacity = slot_size - SLOT_HDR_LEN  # frame + meta bytes per slot
        self.head = 0  # the producer's next position (producer side only)
        self.tail = 0  # the consumer's next position (consumer side only)

    def init_slots(self) -> None:
        for i in range(self.slots):
            _SEQ.pack_into(self.buf, self.base + i * self.slot_size, i)

    def resync(self) -> None:
        """Take up the ring where the other side has it, from the slots' seqs alone: a
        driver that restarted while its device ran on. Slot i is free for the producer
        at position s when its seq is s (s = i mod size), or holds the frame of position
        p for the consumer when its seq is p + 1. The producer goes on at the lowest
        free position, the consumer at the lowest full one (none: where the producer is)."""
        free, full = [], []
        for i in range(self.slots):
            seq = _SEQ.unpack_from(self.buf, self.base + i * self.slot_size)[0]
            if (seq - i) % self.slots == 0:
                free.append(seq)
            else:
                full.append(seq - 1)
        self.head = min(free) if free else max(full) + 1
        self.tail = min(full) if full else self.head

    def _slot(self, pos: int) -> int:
        return self.base + (pos % self.slots) * self.slot_size

    def produce(self, frame, meta=b"") -> bool:
        """Put one frame in the next slot; False when the ring is full."""
        if len(frame) + len(meta) > self.capacity:
            raise RingError(f"{len(frame)} + {len(meta)} bytes do not fit a {self.capacity}-byte slot")
        off = self._slot(self.head)
        if _SEQ.unpack_from(self.buf, off)[0] != self.head:
            return False  # the consumer has not released this slot yet
        start = off + SLOT_HDR_LEN
        self.buf[start:start + len(frame)] = frame
        if meta:
            self.buf[start + len(frame):start + len(frame) + len(meta)] = meta
        # len and meta_len first, seq last: the seq publishes the slot.
        struct.pack_into("<II", self.buf, off + 8, len(frame), len(meta))
        _SEQ.pack_into(self.buf, off, self.head + 1)
        self.head += 1
        return True

    def ready(self) -> bool:
        """Is there a frame for the consumer (the descriptor-done bit)?"""
        return _SEQ.unpack_from(self.buf, self._slot(self.tail))[0] == self.tail + 1

    def consume(self, headroom: int = 0) -> tuple[bytes, bytes] | None:
        """Take the next frame and its metadata, or None when the ring is empty.

        With headroom > 0 the frame comes as a bytearray with that many bytes
        free in front of it (an RX skb's NET_SKB_PAD), copied out once.
        """
        off = self._slot(self.tail)
        seq, length, meta_len = _SLOT_HDR.unpack_from(self.buf, off)
        if seq != self.tail + 1:
            return None
        start = off + SLOT_HDR_LEN
        if headroom:
            frame = bytearray(headroom + length)
            frame[headroom:] = self.buf[start:start + length]
        else:
            frame = bytes(self.buf[start:start + length])
        meta = bytes(self.buf[start + length:start + length + meta_len]) if meta_len else b""
        _SEQ.pack_into(self.buf, off, self.tail + self.slots)  # hand the slot back
        self.tail += 1
        return frame, meta

    def pending(self) -> bool:
        """Producer side: is a frame still waiting for the consumer? Consumption is in
        order, so it is enough that the last frame put has not been released.
        (ready() is the consumer's question: it reads the consumer's position.)"""
        return self.head > 0 and not self.completed(self.head - 1)

    def completed(self, pos: int) -> bool:
        """Producer side: has the consumer released the frame put at `pos`? (TX completion)"""
        return _SEQ.unpack_from(self.buf, self._slot(pos))[0] >= pos + self.slots

    def free_slots_seen_by_producer(self) -> int:
        """How many slots the producer could fill now (for ethtool-style reporting)."""
        free = 0
        for pos in range(self.head, self.head + self.slots):
            if _SEQ.unpack_from(self.buf, self._slot(pos))[0] != pos:
                break
            free += 1
        return free


class NicRings:
    """The shared-memory segment of one NIC interface: its RX ring and TX ring."""

    def __init__(self, shm: shared_memory.SharedMemory, owner: bool) -> None:
        self.shm = shm
        self.owner = owner
        magic, version, _, rx_slots, tx_slots, slot_size = _HDR.unpack_from(shm.buf, 0)
        if magic != MAGIC or version != VERSION:
            raise RingError(f"shared memory {shm.name!r} is not a pktpath v{VERSION} ring")
        self.slot_size = slot_size
        self.rx = Ring(shm.buf, _HDR.size, rx_slots, slot_size)
        self.tx = Ring(shm.buf, _HDR.size + rx_slots * slot_size, tx_slots, slot_size)

    @property
    def name(self) -> str:
        return self.shm.name

    @classmethod
    def create(cls, name: str, rx_slots: int = DEFAULT_RING_SIZE, tx_slots: int = DEFAULT_RING_SIZE,
               slot_size: int = DEFAULT_SLOT_SIZE) -> "NicRings":
        """Create the segment (the NIC does, at probe time). A stale one of the same
        name, left by a process that was killed, is replaced."""
        for n in (rx_slots, tx_slots):
            if not 1 <= n <= MAX_RING_SIZE:
                raise RingError(f"ring size {n} outside 1..{MAX_RING_SIZE}")
        if slot_size <= SLOT_HDR_LEN + 64:
            raise RingError(f"slot size {slot_size} too small")
        size = _HDR.size + (rx_slots + tx_slots) * slot_size
        try:
            shm = shared_memory.SharedMemory(name=name, create=True, size=size)
        except FileExistsError:
            stale = shared_memory.SharedMemory(name=name)
            stale.close()
            stale.unlink()
            shm = shared_memory.SharedMemory(name=name, create=True, size=size)
        _HDR.pack_into(shm.buf, 0, MAGIC, VERSION, 0, rx_slots, tx_slots, slot_size)
        _created.add(name)
        rings = cls(shm, owner=True)
        rings.rx.init_slots()
        rings.tx.init_slots()
        return rings

    @classmethod
    def attach(cls, name: str) -> "NicRings":
        """Map an existing segment (softirq does, when it binds to the NIC)."""
        shm = shared_memory.SharedMemory(name=name)
        # Before Python 3.13 attaching registers the segment with this process's
        # resource tracker, which would unlink it when we exit: only the owner may.
        # (A process that created the segment itself, as tests do, keeps its one
        # registration: the tracker would complain when the owner unlinks.)
        if name not in _created:
            resource_tracker.unregister(shm._name, "shared_memory")  # noqa: SLF001
        rings = cls(shm, owner=False)
        rings.rx.resync()  # the device may have run on without a driver
        rings.tx.resync()
        return rings

    def close(self) -> None:
        """Unmap; the owner also unlinks, so nothing is left in /dev/shm."""
        self.rx.buf = self.tx.buf = None
        try:
            self.shm.close()
        except BufferError:
            pass  # a memoryview still exported; the mapping goes with the process
        if self.owner:
            try:
                self.shm.unlink()
            except FileNotFoundError:
                pass
