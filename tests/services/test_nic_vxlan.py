"""Two tunnel endpoints on loopback (services/nic/vxlan.py): frames cross as VXLAN
datagrams, each to its VNI's receiver; a pktpath peer's sampled frames bring their trace
context, matched to them by CRC; what is not a tunnel's is counted by its reason."""

import socket
import threading

import pytest

from pktpath.counters import Mib
from pktpath.pb import skbuff_pb2
from pktpath.services.nic.vxlan import VxlanSocket
from pktpath.wire.vxlan import VxlanHdr

pb = skbuff_pb2
MAC_A, MAC_B = "02:00:00:00:00:0a", "02:00:00:00:00:0b"


class Inbox:
    def __init__(self) -> None:
        self.items: list = []
        self.ready = threading.Event()
        self.want = 0

    def __call__(self, items) -> None:
        self.items += items
        if len(self.items) >= self.want:
            self.ready.set()

    def wait(self, n: int) -> list:
        self.want = n
        if len(self.items) < n:
            self.ready.clear()
            assert self.ready.wait(5), self.items
        return self.items


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def ends():
    ports = free_udp_port(), free_udp_port()
    a, b = (VxlanSocket(("127.0.0.1", p), Mib()) for p in ports)
    yield a, b, ports
    a.close()
    b.close()


def frame(n: int) -> bytes:
    return bytes.fromhex("02000000000b02000000000a0800") + bytes([n]) * 50


def test_frames_cross_to_the_receiver_of_their_vni_and_no_other(ends):
    a, b, (_, port_b) = ends
    one, two = Inbox(), Inbox()
    to_b1 = a.add(1, Inbox(), "127.0.0.1", port_b)
    to_b2 = a.add(2, Inbox(), "127.0.0.1", port_b)
    b.add(1, one, "127.0.0.1")
    b.add(2, two, "127.0.0.1")
    a.start(), b.start()
    assert to_b1.transmit([pb.Frame(data=frame(1)), pb.Frame(data=frame(2))])
    assert to_b2.transmit([pb.Frame(data=frame(3))])
    assert one.wait(2) == [(frame(1), None), (frame(2), None)]
    assert two.wait(1) == [(frame(3), None)]
    assert b.mib.get("Vxlan", "InPackets") == 3 and a.mib.get("Vxlan", "OutPackets") == 3


def test_a_sampled_frame_to_a_pktpath_peer_brings_its_identity_and_events(ends):
    a, b, (_, port_b) = ends
    inbox = Inbox()
    tunnel = a.add(7, Inbox(), "127.0.0.1", port_b, macs=(MAC_A, MAC_B))
    b.add(7, inbox, "127.0.0.1")
    a.start(), b.start()
    sampled = pb.Frame(data=frame(9), id=1234, origin_host="A", sampled=True, traceparent="00-ab-cd-01")
    sampled.events.add(kind=pb.DMA, layer=pb.LAYER_NIC, host="A", func="ndo_start_xmit", ts_ns=5)
    tunnel.transmit([sampled, pb.Frame(data=frame(10), id=1235, origin_host="A")])
    (data, context), (plain, none) = inbox.wait(2)
    got = pb.Frame.FromString(context)
    assert data == frame(9) and (got.id, got.origin_host, got.sampled, got.traceparent) == (1234, "A", True,
                                                                                              "00-ab-cd-01")
    assert [e.func for e in got.events] == ["ndo_start_xmit"] and not got.data
    assert plain == frame(10) and none is None  # only sampled frames carry one
    assert a.mib.get("Vxlan", "TraceContextsSent") == 1


def test_a_context_whose_frame_did_not_follow_is_counted_and_not_given_to_another(ends):
    a, b, (_, port_b) = ends
    inbox = Inbox()
    tunnel = a.add(7, Inbox(), "127.0.0.1", port_b, macs=(MAC_A, MAC_B))
    b.add(7, inbox, "127.0.0.1")
    b.start()
    context = tunnel._context + tunnel._metadata(pb.Frame(data=frame(1), id=1, sampled=True))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:  # the frame it describes was lost
        s.sendto(VxlanHdr(7).to_bytes() + context, ("127.0.0.1", port_b))
        s.sendto(VxlanHdr(7).to_bytes() + frame(2), ("127.0.0.1", port_b))
    assert inbox.wait(1) == [(frame(2), None)]
    assert b.mib.get("Vxlan", "TraceContextUnmatched") == 1


def test_a_kernel_peer_is_never_sent_a_context(ends):
    a, b, (_, port_b) = ends
    inbox = Inbox()
    tunnel = a.add(3, Inbox(), "127.0.0.1", port_b)  # no macs: the other end is the kernel
    b.add(3, inbox, "127.0.0.1")
    b.start()
    tunnel.transmit([pb.Frame(data=frame(1), sampled=True)])
    assert inbox.wait(1) == [(frame(1), None)] and a.mib.get("Vxlan", "TraceContextsSent") == 0


def test_datagrams_of_an_unknown_vni_or_a_bad_header_are_dropped_by_their_reason(ends):
    _, b, (_, port_b) = ends
    inbox = Inbox()
    b.add(1, inbox, "127.0.0.1")
    b.start()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(VxlanHdr(2).to_bytes() + frame(1), ("127.0.0.1", port_b))
        s.sendto(bytes(8) + frame(1), ("127.0.0.1", port_b))
        s.sendto(b"short", ("127.0.0.1", port_b))
        s.sendto(VxlanHdr(1).to_bytes() + frame(4), ("127.0.0.1", port_b))
    assert inbox.wait(1) == [(frame(4), None)]
    drops = b.mib.snapshot()["Drops"]
    assert drops == {"SKB_DROP_REASON_VXLAN_VNI_NOT_FOUND": 1, "SKB_DROP_REASON_VXLAN_INVALID_HDR": 2}


def test_a_remote_whose_name_does_not_resolve_counts_its_frames_and_sends_none(ends):
    a, _, _ = ends
    tunnel = a.add(1, Inbox(), "no-such-host.invalid")
    assert tunnel.transmit([pb.Frame(data=frame(1))]) is False
    assert a.mib.get("Vxlan", "OutNoRemote") == 1
