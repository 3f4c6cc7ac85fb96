"""Congestion control: Reno (net/ipv4/tcp_cong.c) and CUBIC (net/ipv4/tcp_cubic.c),
CUBIC the default as in Linux (net.ipv4.tcp_congestion_control).

Each is a struct tcp_congestion_ops: `ssthresh` on a loss, `cong_avoid` on an ACK
that acknowledges new data, `on_loss` when the retransmission timer fires,
`pkts_acked` with an RTT sample, and `cwnd_event` for the events of tcp_ca_event
(tcp_ca_event(): CA_EVENT_TX_START, CA_EVENT_CWND_RESTART; the ECN and CWR ones
pktpath does not send, neither Reno nor CUBIC acts on them). cwnd counts segments,
as the kernel's does.
CUBIC is the kernel's algorithm in floating point instead of its fixed-point
arithmetic, without HyStart (slow start ends at ssthresh or on a loss).
"""

from pktpath.services.l4.tcp.sock import TcpSock

# enum tcp_ca_event (include/net/tcp.h), the two pktpath sends
CA_EVENT_TX_START = 0      # data goes out with nothing in flight (tcp_event_data_sent)
CA_EVENT_CWND_RESTART = 1  # cwnd restarts after an idle time (tcp_cwnd_restart)


def tcp_slow_start(tp: TcpSock, acked: int) -> int:
    """tcp_slow_start(): cwnd grows by the segments acknowledged, up to ssthresh;
    returns the acknowledged segments left over for congestion avoidance."""
    cwnd = min(tp.cwnd + acked, tp.ssthresh)
    acked -= cwnd - tp.cwnd
    tp.cwnd = cwnd
    return acked


def tcp_cong_avoid_ai(tp: TcpSock, w: int, acked: int) -> None:
    """tcp_cong_avoid_ai(): one more segment of cwnd per w segments acknowledged."""
    w = max(1, int(w))
    if tp.cwnd_cnt >= w:
        tp.cwnd_cnt = 0
        tp.cwnd += 1
    tp.cwnd_cnt += acked
    if tp.cwnd_cnt >= w:
        delta = tp.cwnd_cnt // w
        tp.cwnd_cnt -= delta * w
        tp.cwnd += delta


class Reno:
    name = "reno"

    def ssthresh(self, tp: TcpSock) -> int:
        return max(tp.cwnd >> 1, 2)

    def cong_avoid(self, tp: TcpSock, acked: int, now: float) -> None:
        if tp.cwnd < tp.ssthresh:
            acked = tcp_slow_start(tp, acked)
            if not acked:
                return
        tcp_cong_avoid_ai(tp, tp.cwnd, acked)

    def on_loss(self, tp: TcpSock) -> None:
        pass

    def pkts_acked(self, tp: TcpSock, rtt: float) -> None:
        pass

    def cwnd_event(self, tp: TcpSock, event: int, now: float) -> None:
        pass  # tcp_reno_congestion_ops has no cwnd_event


BETA = 717 / 1024          # cwnd after a loss: 0.7 of what it was
CUBIC_C = 41 * 10 / 1024   # bic_scale 41 → C = 0.4
# The Reno-friendly estimate grows one segment per this many cwnds acknowledged
# (bictcp's beta_scale: 8 * (1024 + 717) / 3 / (1024 - 717), over 8).
RENO_ACKS_PER_SEGMENT = 8 * (1024 + 717) / 3 / (1024 - 717) / 8


class Cubic:
    """bictcp: the window follows W(t) = C (t - K)^3 + W_max from the last loss."""

    name = "cubic"

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """bictcp_reset()."""
        self.last_max_cwnd = 0.0
        self.epoch_start = 0.0
        self.origin_point = 0.0
        self.k = 0.0
        self.delay_min = 0.0
        self.ack_cnt = 0.0
        self.tcp_cwnd = 0.0

    def ssthresh(self, tp: TcpSock) -> int:
        """bictcp_recalc_ssthresh(), with fast convergence."""
        self.epoch_start = 0.0
        if tp.cwnd < self.last_max_cwnd:
            self.last_max_cwnd = tp.cwnd * (1 + BETA) / 2
        else:
            self.last_max_cwnd = tp.cwnd
        return max(int(tp.cwnd * BETA), 2)

    def _update(self, tp: TcpSock, acked: int, now: float) -> float:
        """bictcp_update(): how many acknowledged segments buy one more of cwnd."""
        cwnd = tp.cwnd
        self.ack_cnt += acked
        if self.epoch_start == 0.0:
            self.epoch_start = now
            self.ack_cnt = acked
            self.tcp_cwnd = cwnd
            if self.last_max_cwnd <= cwnd:
                self.k, self.origin_point = 0.0, cwnd
            else:
                self.k = ((self.last_max_cwnd - cwnd) / CUBIC_C) ** (1 / 3)
                self.origin_point = self.last_max_cwnd
        t = now - self.epoch_start + self.delay_min
        target = self.origin_point + CUBIC_C * (t - self.k) ** 3
        cnt = cwnd / (target - cwnd) if target > cwnd else 100.0 * cwnd
        if self.last_max_cwnd == 0 and cnt > 20:
            cnt = 20.0  # no loss yet: grow at least 5 % per RTT
        # TCP friendliness: never slower than Reno would be
        per_segment = cwnd * RENO_ACKS_PER_SEGMENT
        while self.ack_cnt > per_segment:
            self.ack_cnt -= per_segment
            self.tcp_cwnd += 1
        if self.tcp_cwnd > cwnd:
            cnt = min(cnt, cwnd / (self.tcp_cwnd - cwnd))
        return max(cnt, 2.0)

    def cong_avoid(self, tp: TcpSock, acked: int, now: float) -> None:
        if tp.cwnd < tp.ssthresh:
            acked = tcp_slow_start(tp, acked)
            if not acked:
                return
        tcp_cong_avoid_ai(tp, self._update(tp, acked, now), acked)

    def on_loss(self, tp: TcpSock) -> None:
        self.reset()  # bictcp_state(TCP_CA_Loss)

    def pkts_acked(self, tp: TcpSock, rtt: float) -> None:
        if rtt > 0 and (self.delay_min == 0.0 or rtt < self.delay_min):
            self.delay_min = rtt

    def cwnd_event(self, tp: TcpSock, event: int, now: float) -> None:
        """cubictcp_cwnd_event(): on CA_EVENT_TX_START, after the application let nothing be in
        flight, the epoch starts later by the idle time since the last data went out (lsndtime,
        not yet moved), never past now: the cubic curve does not grow over time nothing was sent."""
        if event == CA_EVENT_TX_START:
            delta = now - tp.lsndtime
            if self.epoch_start and delta > 0:
                self.epoch_start = min(self.epoch_start + delta, now)


CONGESTION_CONTROL = {"reno": Reno, "cubic": Cubic}
DEFAULT_CONGESTION_CONTROL = "cubic"
