"""Packet taps: what AF_PACKET sockets (tcpdump) see, at a device or at a layer's entry.

Models the ptype_all list of net/core/dev.c: __netif_receive_skb_core hands
every received frame to each tap (deliver_skb) before the protocol handlers,
and dev_queue_xmit_nit every transmitted one; af_packet's packet_rcv copies
up to snaplen bytes of it into the socket's buffer, and a socket that falls
behind loses frames, counted (tp_drops in PACKET_STATISTICS). L2 keeps such
taps for its devices (the wire's view, as Linux's tcpdump -i eth0 has it).

The kernel has no tap between its layers; pktpath adds one at every layer's
entry (LAYER_TAPS, one per process, since each layer is its own process): the
packets the layer below hands up (In) and the layer above hands down (Out), as
they are at that boundary. A packet is taken from its outermost header still
in the buffer: a received one keeps its Ethernet header in the headroom after
skb_pull, so it is the whole frame; one on its way down above L2 is an IP
packet, and above L3 a bare segment or payload with no IP header yet (its
addresses are in the flow skb->cb carries). The link type says which.

With nobody capturing, a tap costs one check per packet.

Pure logic: no gRPC.
"""

import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

from pktpath import skbuff as s
from pktpath.flow import Flowi4, Flowi6
from pktpath.pb import skbuff_pb2, trace_pb2
from pktpath.wire.addr import ip6_to_str, ip_to_str

CAPTURE_WAIT_S = 0.5   # how often a capture stream looks whether its reader is still there
DEFAULT_SNAPLEN = 262144
CAPTURE_QUEUE = 10000  # frames a capture may fall behind before it loses some

# pcap link types (www.tcpdump.org/linktypes.html)
LINKTYPE_ETHERNET = 1
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_WIRESHARK_UPPER_PDU = 252  # a PDU above IP, tagged with its protocol and addresses

# The layer entries on the way down (every other ENTER is on the way up).
TX_ENTRIES = frozenset({"tcp_sendmsg", "udp_sendmsg", "ping_v4_sendmsg", "udpv6_sendmsg", "ping_v6_sendmsg",
                        "ip_queue_xmit", "ip6_make_skb", "inet6_csk_xmit", "neigh_output", "__dev_queue_xmit"})
# L3's IPv6 entries on the way down: L4's datagrams (their flow beside the skb, not in skb->cb) and
# TCP's segments (skb->cb a Flowi6 with the connection's addresses).
_IPV6_TX_ENTRIES = {"ip6_make_skb": "data", "inet6_csk_xmit": "tcp"}
_FRAME_LAYERS = (skbuff_pb2.LAYER_NIC, skbuff_pb2.LAYER_SOFTIRQ, skbuff_pb2.LAYER_L2)  # __netif_receive_skb_core's too
_UPPER_NAMES = {6: "tcp", 17: "udp", 1: "icmp"}


@dataclass(frozen=True)
class Captured:
    ts_ns: int
    dev: str
    outgoing: bool
    length: int        # the packet's whole length at the tap
    data: bytes        # its first snaplen bytes
    linktype: int = LINKTYPE_ETHERNET
    func: str = ""     # the kernel function at the tap (a layer tap's entry point)
    upper: str = ""    # with LINKTYPE_WIRESHARK_UPPER_PDU: the protocol ("tcp", "udp", "icmp", "data")
    saddr: int = 0     # ... and the addresses the flow says (0: not chosen yet)
    daddr: int = 0
    family: int = 4    # ... of the family (6: an AF_INET6 socket's flow, pktpath.flow's Flowi6)


@dataclass
class Capture:
    dev: str          # "" for every device
    snaplen: int
    frames: deque = field(default_factory=deque)
    dropped: int = 0
    cond: threading.Condition = field(default_factory=threading.Condition)

    def take(self, timeout: float) -> list[Captured]:
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

    @property
    def active(self) -> bool:
        return bool(self._captures)

    def __call__(self, direction: str, skb) -> None:
        """A frame at a device tap: skb's mac header is set, the frame as on the wire."""
        if self._captures:
            self.add(skb.dev, direction == "tx", s.skb_mac_header(skb))

    def add(self, dev: str, outgoing: bool, data, linktype: int = LINKTYPE_ETHERNET, func: str = "",
            **upper) -> None:
        """One packet to every open capture (that wants dev): packet_rcv's copy of snaplen bytes."""
        now = time.time_ns()
        for cap in self._captures:
            if cap.dev and cap.dev != dev:
                continue
            with cap.cond:
                if len(cap.frames) >= CAPTURE_QUEUE:
                    cap.dropped += 1
                    continue
                cap.frames.append(Captured(now, dev, outgoing, len(data), bytes(data[:cap.snaplen]), linktype, func,
                                           **upper))
                cap.cond.notify_all()


def at_boundary(skb, layer: int, func: str = "") -> tuple[memoryview, int, dict]:
    """The packet as it stands at a layer's entry through func: (bytes from its outermost
    header, link type, upper-PDU tags)."""
    buf = memoryview(skb.buf)
    if skb.mac_header != s.UNSET and skb.mac_header <= skb.data:
        return buf[skb.mac_header:skb.tail], LINKTYPE_ETHERNET, {}
    if skb.network_header != s.UNSET and skb.network_header <= skb.data:
        ipv6 = skb.network_header < skb.tail and buf[skb.network_header] >> 4 == 6
        return buf[skb.network_header:skb.tail], LINKTYPE_IPV6 if ipv6 else LINKTYPE_IPV4, {}
    if layer in _FRAME_LAYERS:  # a frame no layer has parsed yet
        return buf[skb.data:skb.tail], LINKTYPE_ETHERNET, {}
    if func in _IPV6_TX_ENTRIES:
        try:  # TCP's segment: the connection's addresses; L4's datagram: none here (its flow is beside it)
            flow6 = Flowi6.unpack(skb.cb)
        except ValueError:
            flow6 = Flowi6(0)
        upper = _IPV6_TX_ENTRIES[func] if skb.transport_header == skb.data else "data"
        return buf[skb.data:skb.tail], LINKTYPE_WIRESHARK_UPPER_PDU, {"upper": upper, "saddr": flow6.saddr,
                                                                     "daddr": flow6.daddr, "family": 6}
    try:
        flow = Flowi4.unpack(skb.cb)
    except ValueError:
        try:  # an AF_INET6 socket's datagram on its way to L4: its destination, not yet its source
            flow6 = Flowi6.unpack(skb.cb)
        except ValueError:
            flow = Flowi4(0)
        else:
            return buf[skb.data:skb.tail], LINKTYPE_WIRESHARK_UPPER_PDU, {"upper": "data", "daddr": flow6.daddr,
                                                                         "family": 6}
    at_transport = skb.transport_header == skb.data
    upper = _UPPER_NAMES.get(flow.protocol, "data") if at_transport else "data"
    return buf[skb.data:skb.tail], LINKTYPE_WIRESHARK_UPPER_PDU, {
        "upper": upper, "saddr": flow.saddr, "daddr": flow.daddr}


# This process's layer taps: `pktpath tcpdump -i HOST:LAYER` opens one through Trace.Capture.
LAYER_TAPS = Taps()


def open_layer_capture(snaplen: int = 0) -> Capture:
    """A capture at this process's layer entry; the skbuff hook is set while any is open."""
    cap = LAYER_TAPS.open("", snaplen)
    s.set_enter_hook(layer_entry)
    return cap


def close_layer_capture(cap: Capture) -> None:
    LAYER_TAPS.close(cap)
    if not LAYER_TAPS.active:
        s.set_enter_hook(None)


def layer_entry(skb, layer: int, func: str) -> None:
    """skb enters this process's layer through func (skbuff calls it on ENTER while a
    capture is open)."""
    data, linktype, upper = at_boundary(skb, layer, func)
    LAYER_TAPS.add(skb.dev, func in TX_ENTRIES, data, linktype, func, **upper)


def stream(cap: Capture, active) -> "Iterator[trace_pb2.CapturedFrames]":
    """A Capture RPC's replies: first an empty one (the tap is open: the caller may start
    its traffic), then batches of what the tap took, while active() says the caller is there."""
    yield trace_pb2.CapturedFrames()
    while active():
        frames = cap.take(CAPTURE_WAIT_S)
        if not frames:
            continue
        reply = trace_pb2.CapturedFrames(dropped=cap.dropped)
        for f in frames:
            to_str = ip6_to_str if f.family == 6 else ip_to_str
            reply.frames.add(ts_ns=f.ts_ns, dev=f.dev, outgoing=f.outgoing, len=f.length, data=f.data,
                             linktype=f.linktype, func=f.func, upper=f.upper,
                             saddr=to_str(f.saddr) if f.saddr else "", daddr=to_str(f.daddr) if f.daddr else "")
        yield reply
