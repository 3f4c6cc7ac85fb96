"""Counters kept the way the kernel keeps its MIBs: named groups of named counts.

Group and counter names are the kernel's (/proc/net/snmp "Ip: InReceives",
/proc/net/softnet_stat, /proc/net/dev). Every drop is also counted under its
SKB_DROP_REASON_* name in the "Drops" group, so `pktpath drops` sees all of them.

Like the kernel's per-CPU MIBs (SNMP_INC_STATS → this_cpu_inc), each thread
counts into its own table without a lock, and a reader sums the tables: the
data path pays a dict update per count, not a lock.
"""

import threading
from collections import defaultdict

from pktpath.pb import skbuff_pb2

DROPS = "Drops"


class Mib:
    def __init__(self) -> None:
        self._lock = threading.Lock()  # guards the list of tables, not the counts
        self._tables: list[defaultdict] = []
        self._local = threading.local()
        self._attached: list["Mib"] = []

    def attach(self, other: "Mib") -> None:
        """Report other's groups with ours (a service's counts and its process's PROCESS)."""
        self._attached.append(other)

    def _table(self) -> defaultdict:
        """This thread's table, made on its first count (and kept when the thread ends)."""
        table = self._local.table = defaultdict(int)
        with self._lock:
            self._tables.append(table)
        return table

    def inc(self, group: str, name: str, n: int = 1) -> None:
        try:
            self._local.table[group, name] += n
        except AttributeError:
            self._table()[group, name] += n

    def drop(self, reason: int, n: int = 1) -> None:
        self.inc(DROPS, skbuff_pb2.DropReason.Name(reason), n)

    def get(self, group: str, name: str) -> int:
        with self._lock:
            tables = list(self._tables)
        return sum(t.get((group, name), 0) for t in tables)

    def snapshot(self) -> dict[str, dict[str, int]]:
        """Every group's counts, summed over the threads' tables."""
        with self._lock:
            tables = [dict(t) for t in self._tables]  # dict() of a dict is one step under the GIL
        out: dict[str, dict[str, int]] = {}
        for table in tables:
            for (group, name), n in table.items():
                counts = out.setdefault(group, {})
                counts[name] = counts.get(name, 0) + n
        for other in self._attached:
            for group, values in other.snapshot().items():
                counts = out.setdefault(group, {})
                for name, n in values.items():
                    counts[name] = counts.get(name, 0) + n
        return out

    def to_proto(self) -> skbuff_pb2.Counters:
        out = skbuff_pb2.Counters()
        for group, values in sorted(self.snapshot().items()):
            out.groups.add(name=group, values=values)
        return out


# What every service process counts besides its servicer's own: the data movements of
# all its packets, sampled or not (skbuff.record), and each layer's latency (metrics.py).
PROCESS = Mib()
MOVES, MOVE_BYTES = "Moves", "MoveBytes"
