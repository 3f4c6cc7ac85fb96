"""Packet taps: what AF_PACKET sockets (tcpdump) see of a device.

Models the ptype_all list of net/core/dev.c: __netif_receive_skb_core hands
every received frame to each tap (deliver_skb) before the protocol handlers,
and dev_queue_xmit_nit every transmitted one; af_packet's packet_rcv copies
up to snaplen bytes of it into the socket's buffer, and a socket that falls
behind loses frames, counted (tp_drops in PACKET_STATISTICS). With nobody
capturing, a tap costs one check per frame.

Pure logic: no gRPC.
"""

import threading
import time
from collections import deque
from dataclasses import dataclass, field

from pktpath import skbuff as s

DEFAULT_SNAPLEN = 262144
CAPTURE_QUEUE = 10000  # frames a capture may fall behind before it loses some


@dataclass
class Capture:
    dev: str          # "" for every device
    snaplen: int
    frames: deque = field(default_factory=deque)
    dropped: int = 0
    cond: threading.Condition = field(default_factory=threading.Condition)

    def take(self, timeout: float) -> list[tuple]:
        """The frames captured so far, waiting up to timeout for the first one."""
        with self.cond:
            self.cond.wait_for(lambda: self.frames, timeout)
            taken = list(self.frames)
            self.frames.clear()
            return taken


class Taps:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._captures: tuple[Capture, ...] = ()

    def open(self, dev: str = "", snaplen: int = 0) -> Capture:
        cap = Capture(dev, snaplen or DEFAULT_SNAPLEN)
        with self._lock:
            self._captures += (cap,)
        return cap

    def close(self, cap: Capture) -> None:
        with self._lock:
            self._captures = tuple(c for c in self._captures if c is not cap)

    def __call__(self, direction: str, skb) -> None:
        """A frame at the tap point: skb's mac header is set, the frame as on the wire."""
        captures = self._captures
        if not captures:
            return
        frame = s.skb_mac_header(skb)
        now = time.time_ns()
        for cap in captures:
            if cap.dev and cap.dev != skb.dev:
                continue
            with cap.cond:
                if len(cap.frames) >= CAPTURE_QUEUE:
                    cap.dropped += 1
                    continue
                cap.frames.append((now, skb.dev, direction == "tx", len(frame), bytes(frame[:cap.snaplen])))
                cap.cond.notify_all()
