"""What IPv4 and IPv6 reassembly share: struct inet_frag_queue and struct fqdir with the functions
of net/ipv4/inet_fragment.c that work on them (Linux 6.18).

- InetFragQueue is one datagram being reassembled: its flags (INET_FRAG_FIRST_IN, _LAST_IN,
  _COMPLETE, _DROP), len, meat, max_size, and its fragments as the kernel's rb-tree of runs:
  inet_frag_queue_insert appends a fragment that continues the last run (fragments_tail) to it,
  starts a new run for one past it, and files any other fragment as a run of its own. A fragment
  wholly inside one run is a duplicate (IPFRAG_DUP: only it is dropped); any other overlap is
  IPFRAG_OVERLAP (RFC 5722, and Linux applies it to IPv4 too). Runs are not merged: [0, 8) and
  [16, 24), then [8, 16) filed between them, make three runs, and [0, 16) then overlaps, as
  on Linux (seen on 6.18 for IPv4 and IPv6 alike).
- FragDir is struct fqdir with struct inet_frags' qsize: one protocol's queues by key, the memory
  they hold (frag_mem_limit: each queue's qsize plus its fragments' truesize) against
  high_thresh, and their timeout. inet_frag_find refuses every fragment while the memory is over
  high_thresh (low_thresh no longer drives an evictor since Linux 4.17: it only bounds the sysctl).
  inet_frag_kill takes a queue out of the table, so a later fragment of the same datagram starts
  a new queue; freeing its fragments is inet_frag_destroy's (SKB_CONSUMED unless INET_FRAG_DROP)
  or inet_frag_queue_flush's.
- ip_frag_ecn_table: RFC 3168 5.3's rules for the ECN fields of the fragments.

Pure logic: no gRPC.
"""

import bisect
import time
from dataclasses import dataclass, field
from typing import Iterator

from pktpath import skbuff as s
from pktpath.counters import Mib
from pktpath.pb import skbuff_pb2

pb = skbuff_pb2
L3 = pb.LAYER_L3

# enum inet_frag_flags (include/net/inet_frag.h)
INET_FRAG_FIRST_IN = 1
INET_FRAG_LAST_IN = 2
INET_FRAG_COMPLETE = 4
INET_FRAG_HASH_DEAD = 8
INET_FRAG_DROP = 16

# inet_frag_queue_insert()'s results
IPFRAG_OK, IPFRAG_DUP, IPFRAG_OVERLAP = 0, 1, 2

# include/net/inet_ecn.h: one bit per ECN codepoint seen among the fragments (1 << (tos & 3))
IPFRAG_ECN_NOT_ECT, IPFRAG_ECN_ECT_1, IPFRAG_ECN_ECT_0, IPFRAG_ECN_CE = 1, 2, 4, 8
INET_ECN_CE = 3
_ECN_DROP = 0xFF


def _ecn_table() -> tuple[int, ...]:
    """ip_frag_ecn_table[]: CE with ECT fragments makes the datagram CE; Not-ECT mixed with
    any ECN-capable fragment is invalid (0xff: drop); anything else changes nothing (0)."""
    table = [0] * 16
    for bits in range(16):
        if bits & IPFRAG_ECN_NOT_ECT and bits & ~IPFRAG_ECN_NOT_ECT:
            table[bits] = _ECN_DROP
        elif bits & IPFRAG_ECN_CE and bits & (IPFRAG_ECN_ECT_0 | IPFRAG_ECN_ECT_1):
            table[bits] = INET_ECN_CE
    return tuple(table)


ip_frag_ecn_table = _ecn_table()


def ip_frag_ecn(dsfield: int) -> int:
    """ip4_frag_ecn() / ip6_frag_ecn(): the fragment's IPFRAG_ECN_* bit."""
    return 1 << (dsfield & 3)


@dataclass(eq=False)
class Frag:
    """One queued fragment: its place in the datagram's payload, its skb, its payload bytes
    (FRAG_CB's ip_defrag_offset, and skb->len once ip_frag_queue pulled the headers)."""
    offset: int
    end: int
    skb: "s.SkBuff"
    data: bytes


@dataclass(eq=False)
class InetFragQueue:
    """struct inet_frag_queue: one datagram being reassembled."""

    key: tuple
    created: float      # when the timer started (inet_frag_create: it is never pushed back)
    flags: int = 0      # INET_FRAG_*
    len: int = 0        # the payload length, as far as known
    meat: int = 0       # payload bytes received
    max_size: int = 0   # the largest fragment, from its network header (IPCB/IP6CB frag_max_size)
    runs: list[list[Frag]] = field(default_factory=list)  # rb_fragments: runs of adjacent fragments
    fragments_tail: Frag | None = None
    last_run_head: list[Frag] | None = None
    mem: int = 0        # what the queue holds against its FragDir

    def insert(self, frag: Frag) -> int:
        """inet_frag_queue_insert(): file frag among the runs, or say why not (IPFRAG_*)."""
        offset, end = frag.offset, frag.end
        last = self.fragments_tail
        if last is None:
            self._run_create(frag)
        elif last.end < end:  # the common case: it goes at the end
            if offset < last.end:
                return IPFRAG_OVERLAP
            if offset == last.end:
                self.last_run_head.append(frag)  # fragrun_append_to_last
                self.fragments_tail = frag
            else:
                self._run_create(frag)
        else:  # the rb-tree's binary search: the runs are disjoint, so at most one holds frag
            for run in self.runs:
                run_off = run[0].offset
                run_end = run_off + sum(f.end - f.offset for f in run)
                if end <= run_off or offset >= run_end:
                    continue
                return IPFRAG_DUP if run_off <= offset and end <= run_end else IPFRAG_OVERLAP
            # a run of its own, not joined to its neighbours; fragments_tail stays
            bisect.insort(self.runs, [frag], key=lambda run: run[0].offset)
        return IPFRAG_OK

    def _run_create(self, frag: Frag) -> None:
        """fragrun_create(): a new run at the end."""
        run = [frag]
        self.runs.append(run)
        self.fragments_tail = frag
        self.last_run_head = run

    def fragments(self) -> Iterator[Frag]:
        """The fragments in offset order, as inet_frag_reasm_finish walks the tree."""
        for run in self.runs:
            yield from run

    @property
    def head(self) -> Frag | None:
        """skb_rb_first(): the fragment at offset 0 once INET_FRAG_FIRST_IN is set."""
        return self.runs[0][0] if self.runs and self.flags & INET_FRAG_FIRST_IN else None

    def complete(self) -> bool:
        """Every byte is here: first and last fragments in, the queue not killed, meat == len."""
        return self.flags == INET_FRAG_FIRST_IN | INET_FRAG_LAST_IN and self.meat == self.len


class FragDir:
    """struct fqdir: one protocol's reassembly queues in one namespace. Subclasses set QSIZE
    (struct inet_frags' qsize: what each queue costs) and may charge a fragment another size
    than its truesize (truesize())."""

    QSIZE = 0
    FUNC = "inet_frag_find"

    def __init__(self, host: str, mib: Mib, *, timeout_s: float, high_thresh: int, low_thresh: int = 0,
                 clock=time.monotonic) -> None:
        self.host = host
        self.mib = mib
        self.timeout_s = timeout_s
        self.high_thresh = high_thresh
        self.low_thresh = low_thresh  # net.ipv*.ip*frag_low_thresh: kept for the sysctl, nothing evicts
        self._clock = clock
        self.queues: dict[tuple, InetFragQueue] = {}
        self.mem = 0  # frag_mem_limit()

    def truesize(self, skb) -> int:
        return s.skb_truesize(skb.end)

    def drop(self, skb, reason: int, func: str) -> None:
        s.kfree_skb_reason(skb, reason, L3, self.host, func)
        self.mib.drop(reason)

    def inet_frag_find(self, key: tuple, new_queue) -> InetFragQueue | None:
        """inet_frag_find(): the queue for key, made by new_queue(key, now) if there is none;
        None while the queues hold more than high_thresh (or it is 0)."""
        if not self.high_thresh or self.mem > self.high_thresh:
            return None
        q = self.queues.get(key)
        if q is None:
            q = self.queues[key] = new_queue(key, self._clock())
            q.mem = self.QSIZE
            self.mem += self.QSIZE
        return q

    def add_frag(self, q: InetFragQueue, frag: Frag) -> None:
        """add_frag_mem_limit() for a fragment the queue took."""
        size = self.truesize(frag.skb)
        q.mem += size
        self.mem += size

    def inet_frag_kill(self, q: InetFragQueue) -> None:
        """inet_frag_kill(): out of the table (a later fragment of the datagram starts a new
        queue), INET_FRAG_COMPLETE; its fragments stay until it is freed."""
        q.flags |= INET_FRAG_COMPLETE
        if self.queues.get(q.key) is q:
            del self.queues[q.key]

    def inet_frag_destroy(self, q: InetFragQueue, reason: int, func: str, *, counted: bool) -> None:
        """inet_frag_destroy() / inet_frag_queue_flush(): free what the killed queue still holds.
        With INET_FRAG_DROP each fragment is dropped `reason`, counted. Without it the kernel
        consumes them (no drop counter sees them); pktpath still ends their record with a DROP
        naming `reason`, the datagram's fate, but counts it nowhere (counted=False)."""
        for frag in q.fragments():
            if counted:
                self.drop(frag.skb, reason, func)
            else:
                s.kfree_skb_reason(frag.skb, reason, L3, self.host, func)
        q.runs.clear()
        q.fragments_tail = q.last_run_head = None
        self.mem -= q.mem
        q.mem = 0

    def inet_frag_pull_head(self, q: InetFragQueue) -> Frag | None:
        """inet_frag_pull_head(): take the first fragment out of the queue (its memory with it)."""
        if not q.runs:
            return None
        run = q.runs[0]
        head = run.pop(0)
        if not run:
            q.runs.pop(0)
        size = self.truesize(head.skb)
        q.mem -= size
        self.mem -= size
        return head

    def inet_frag_reasm(self, q: InetFragQueue, keep, func: str) -> bytes:
        """inet_frag_reasm_prepare() + inet_frag_reasm_finish(): the payload in offset order;
        every fragment's skb but `keep` (the one that carries the datagram on) is consumed and
        the queue's memory given back. The kernel chains the fragments on keep's frag_list, no
        copy; pktpath's one linear buffer is a Python artifact: no COPY event."""
        payload = b"".join(frag.data for frag in q.fragments())
        for frag in q.fragments():
            if frag.skb is not keep:
                s.consume_skb(frag.skb, L3, self.host, func)
        q.runs.clear()
        q.fragments_tail = q.last_run_head = None
        self.mem -= q.mem
        q.mem = 0
        return payload

    def expired(self) -> list[InetFragQueue]:
        """The queues whose timer (timeout_s from their creation) has run out."""
        now = self._clock()
        return [q for q in self.queues.values() if now - q.created >= self.timeout_s]

    def __len__(self) -> int:
        return len(self.queues)
