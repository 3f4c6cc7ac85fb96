"""ip_rcv_core: each kind of bad header gets the kernel's drop reason and counters."""

import pytest

from pktpath import skbuff as s
from pktpath.counters import Mib
from pktpath.pb import skbuff_pb2 as pb
from pktpath.services.l3.input import ip_rcv_core
from pktpath.wire import IpHdr
from pktpath.wire.addr import ip_from_str

GOOD = IpHdr(ip_from_str("10.0.0.1"), ip_from_str("10.0.0.2"), 17, id=9).to_bytes(8) + bytes(8)


def skb_of(data: bytes) -> s.SkBuff:
    skb = s.alloc_skb(64 + len(data))
    s.skb_reserve(skb, 64)
    s.skb_put_data(skb, data)
    return skb


def corrupt(offset: int, value: int, data: bytes = GOOD) -> bytes:
    b = bytearray(data)
    b[offset] = value
    return bytes(b)


def test_good_packet_trimmed_and_transport_header_set():
    mib = Mib()
    skb = skb_of(GOOD + bytes(18))  # Ethernet padding after tot_len
    iph = ip_rcv_core(skb, mib)
    assert isinstance(iph, IpHdr) and iph.id == 9
    assert skb.len == 28 and skb.transport_header == skb.network_header + 20
    assert mib.snapshot() == {"Ip": {"InReceives": 1}}


@pytest.mark.parametrize("data, reason, counters", [
    (corrupt(11, 0x00), pb.SKB_DROP_REASON_IP_CSUM, {"Ip": {"InHdrErrors": 1}, "IpExt": {"InCsumErrors": 1}}),
    (GOOD[:27], pb.SKB_DROP_REASON_PKT_TOO_SMALL, {"IpExt": {"InTruncatedPkts": 1}}),
    (GOOD[:12], pb.SKB_DROP_REASON_IP_INHDR, {"Ip": {"InHdrErrors": 1}}),
    (corrupt(0, 0x65), pb.SKB_DROP_REASON_IP_INHDR, {"Ip": {"InHdrErrors": 1}}),   # version 6
    (corrupt(0, 0x44), pb.SKB_DROP_REASON_IP_INHDR, {"Ip": {"InHdrErrors": 1}}),   # IHL 4
])
def test_bad_headers(data, reason, counters):
    mib = Mib()
    assert ip_rcv_core(skb_of(data), mib) == reason
    expected = {"Ip": {"InReceives": 1}}
    for group, values in counters.items():
        expected.setdefault(group, {}).update(values)
    assert mib.snapshot() == expected


def test_tot_len_below_header_length_is_a_header_error():
    bad = IpHdr(1, 2, 17, tot_len=20).to_bytes()  # valid checksum, then tot_len forced to 19
    b = bytearray(bad)
    b[2:4] = (19).to_bytes(2, "big")
    b[10:12] = b"\x00\x00"
    from pktpath.wire.checksum import ip_compute_csum
    b[10:12] = ip_compute_csum(bytes(b)).to_bytes(2, "big")
    mib = Mib()
    assert ip_rcv_core(skb_of(bytes(b)), mib) == pb.SKB_DROP_REASON_IP_INHDR
    assert mib.get("Ip", "InHdrErrors") == 1


def test_otherhost_dropped():
    skb = skb_of(GOOD)
    skb.pkt_type = pb.PACKET_OTHERHOST
    assert ip_rcv_core(skb, Mib()) == pb.SKB_DROP_REASON_OTHERHOST
