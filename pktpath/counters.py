"""Counters kept the way the kernel keeps its MIBs: named groups of named counts.

Group and counter names are the kernel's (/proc/net/snmp "Ip: InReceives",
/proc/net/softnet_stat, /proc/net/dev). Every drop is also counted under its
SKB_DROP_REASON_* name in the "Drops" group, so `pktpath drops` sees all of them.
"""

import threading
from collections import defaultdict

from pktpath.pb import skbuff_pb2

DROPS = "Drops"


class Mib:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._groups: dict[str, defaultdict[str, int]] = defaultdict(lambda: defaultdict(int))

    def inc(self, group: str, name: str, n: int = 1) -> None:
        with self._lock:
            self._groups[group][name] += n

    def drop(self, reason: int, n: int = 1) -> None:
        self.inc(DROPS, skbuff_pb2.DropReason.Name(reason), n)

    def get(self, group: str, name: str) -> int:
        with self._lock:
            return self._groups[group].get(name, 0) if group in self._groups else 0

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {g: dict(c) for g, c in self._groups.items()}

    def to_proto(self) -> skbuff_pb2.Counters:
        out = skbuff_pb2.Counters()
        for group, values in sorted(self.snapshot().items()):
            out.groups.add(name=group, values=values)
        return out
