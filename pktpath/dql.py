"""Byte queue limits: how many bytes a device's TX ring may hold (lib/dynamic_queue_limits.c).

BQL keeps the ring just full enough that it never runs dry between two completions,
and no fuller: what is not in the ring waits in the qdisc, where a scheduler (fq) can
still order and pace it. The driver reports bytes queued (netdev_tx_sent_queue) and
bytes completed (netdev_tx_completed_queue); the stack stops the queue while
dql_avail() < 0. At each completion the limit grows by what was sent and completed
if the ring went empty while over the limit (starved), and shrinks by the smallest
slack seen over slack_hold_time when the ring stayed busy.

Pure logic: time is the caller's clock, in seconds; the stall detector is not modelled.
"""

from dataclasses import dataclass

DQL_MAX_OBJECT = 0xFFFFFFFF // 16
DQL_MAX_LIMIT = 0xFFFFFFFF // 2 - DQL_MAX_OBJECT
UINT_MAX = 0xFFFFFFFF


def _posdiff(a: int, b: int) -> int:
    return a - b if a - b > 0 else 0


@dataclass
class Dql:
    """struct dql, with the knobs of /sys/class/net/DEV/queues/tx-N/byte_queue_limits/."""

    min_limit: int = 0              # limit_min
    max_limit: int = DQL_MAX_LIMIT  # limit_max
    slack_hold_time: float = 1.0    # hold_time (HZ jiffies)
    limit: int = 0
    num_queued: int = 0
    num_completed: int = 0
    adj_limit: int = 0
    last_obj_cnt: int = 0
    prev_num_queued: int = 0
    prev_last_obj_cnt: int = 0
    prev_ovlimit: int = 0
    lowest_slack: int = UINT_MAX
    slack_start_time: float = 0.0

    def __post_init__(self) -> None:
        self.reset()

    def reset(self, now: float = 0.0) -> None:
        """dql_reset() (dql_init: the limit starts at limit_min)."""
        self.limit = self.min_limit
        self.num_queued = self.num_completed = 0
        self.last_obj_cnt = self.prev_num_queued = self.prev_last_obj_cnt = self.prev_ovlimit = 0
        self.lowest_slack = UINT_MAX
        self.slack_start_time = now
        self.adj_limit = self.limit

    @property
    def inflight(self) -> int:
        """Bytes queued to the ring and not yet completed (byte_queue_limits/inflight)."""
        return self.num_queued - self.num_completed

    def avail(self) -> int:
        """dql_avail(): bytes that may still be queued; negative: stop the queue."""
        return self.adj_limit - self.num_queued

    def queued(self, count: int) -> None:
        """dql_queued(): `count` bytes went into the ring."""
        if count > DQL_MAX_OBJECT:
            raise ValueError(f"one object of {count} bytes is more than BQL counts")
        self.last_obj_cnt = count
        self.num_queued += count

    def completed(self, count: int, now: float) -> None:
        """dql_completed(): the device is done with `count` more bytes."""
        if count > self.num_queued - self.num_completed:
            raise ValueError(f"{count} bytes completed, {self.inflight} in flight")
        completed = self.num_completed + count
        limit = self.limit
        ovlimit = _posdiff(self.num_queued - self.num_completed, limit)
        inprogress = self.num_queued - completed
        prev_inprogress = self.prev_num_queued - self.num_completed
        all_prev_completed = completed >= self.prev_num_queued
        if (ovlimit and not inprogress) or (self.prev_ovlimit and all_prev_completed):
            # starved: over the limit and the ring ran dry; grow by what went through, and the old excess
            limit += _posdiff(completed, self.prev_num_queued) + self.prev_ovlimit
            self.slack_start_time = now
            self.lowest_slack = UINT_MAX
        elif inprogress and prev_inprogress and not all_prev_completed:
            # busy the whole interval: the excess over twice what completed is slack
            slack = _posdiff(limit + self.prev_ovlimit, 2 * (completed - self.num_completed))
            slack_last_objs = _posdiff(self.prev_last_obj_cnt, self.prev_ovlimit) if self.prev_ovlimit else 0
            self.lowest_slack = min(self.lowest_slack, max(slack, slack_last_objs))
            if now > self.slack_start_time + self.slack_hold_time:
                limit = _posdiff(limit, self.lowest_slack)
                self.slack_start_time = now
                self.lowest_slack = UINT_MAX
        limit = min(max(limit, self.min_limit), self.max_limit)
        if limit != self.limit:
            self.limit = limit
            ovlimit = 0
        self.adj_limit = limit + completed
        self.prev_ovlimit = ovlimit
        self.prev_last_obj_cnt = self.last_obj_cnt
        self.num_completed = completed
        self.prev_num_queued = self.num_queued
