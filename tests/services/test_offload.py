"""GRO and GSO (pktpath/offload.py) on frames built by pktpath's codecs and checked by scapy:
what merges, what must not, and that segmenting a merged packet gives back the wire's frames."""

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from pktpath import offload
from pktpath import skbuff as s
from pktpath.counters import Mib
from pktpath.pb import skbuff_pb2 as pb
from pktpath.wire.tcp import TCPHDR_ACK, TCPHDR_CWR

from tcpframes import MSS, frame, rx, stream

SOFTIRQ = pb.LAYER_SOFTIRQ

def gro(frames: list[bytes]) -> tuple[list, Mib]:
    mib = Mib()
    return offload.napi_gro_receive(rx(frames), mib, SOFTIRQ, "B"), mib


def test_in_order_segments_of_a_flow_become_one_packet_that_scapy_reads_whole():
    frames, data = stream(5)
    out, mib = gro(frames)
    assert len(out) == 1
    skb = out[0]
    assert (skb.gso_size, skb.gso_segs, skb.ip_summed) == (MSS, 5, offload.CHECKSUM_UNNECESSARY)
    assert mib.get(offload.GRO, "Packets") == 1 and mib.get(offload.GRO, "Segments") == 5
    pkt = Ether(bytes(skb.payload()))
    assert pkt[IP].len == 20 + 32 + len(data) and bytes(pkt[TCP].payload) == data
    rebuilt = IP(bytes(pkt[IP]))
    del rebuilt.chksum
    assert IP(bytes(rebuilt)).chksum == pkt[IP].chksum  # inet_gro_complete rewrote a valid header checksum
    assert pkt[TCP].seq == 1000 and pkt[TCP].flags == "PA"  # the last segment's PSH, the first's header


def test_segments_that_cannot_join_stay_apart_and_in_order():
    frames, _ = stream(4, last_psh=False)
    gap = frames[:2] + frames[3:]                              # a hole: the third segment is missing
    out, _ = gro(gap)
    assert [k.gso_segs for k in out] == [2, 0]
    other_ts = stream(2, last_psh=False, tsval=2000)[0]        # options differ from the held flow's
    out, _ = gro(frames[:2] + other_ts[1:])
    assert len(out) == 2
    bad = bytearray(frames[1])
    bad[-1] ^= 0xFF                                            # a TCP checksum that fails
    out, _ = gro([frames[0], bytes(bad), frames[2]])
    assert len(out) == 3 and out[1].ip_summed == offload.CHECKSUM_NONE  # tcp_v4_rcv will count it
    cwr = frame(1000 + MSS, frames[1][66:], flags=TCPHDR_ACK | TCPHDR_CWR, ip_id=8)
    assert len(gro([frames[0], cwr])[0]) == 2


def test_an_ack_flushes_its_flow_and_other_flows_merge_on_their_own():
    a, _ = stream(3, last_psh=False)
    other, _ = stream(3, last_psh=False, sport=40001)
    ack = frame(999, b"", sport=40000, ip_id=50)               # no payload: never merged (len - 1 >= mss)
    mixed = [a[0], other[0], a[1], other[1], ack, a[2], other[2]]
    out, _ = gro(mixed)
    segs = [(TCP in (p := Ether(bytes(k.payload()))) and p[TCP].sport, k.gso_segs) for k in out]
    assert segs == [(40000, 2), (40001, 3), (40000, 0), (40000, 0)]  # each flow where it began; the ACK after


def test_without_df_the_ip_ids_must_count_up():
    frames, _ = stream(3, last_psh=False, df=False)
    assert len(gro(frames)[0]) == 1
    skipped = stream(3, last_psh=False, df=False)[0]
    skipped[2] = frame(1000 + 2 * MSS, skipped[2][66:], ip_id=100, df=False)
    assert [k.gso_segs for k in gro(skipped)[0]] == [2, 0]


@pytest.mark.parametrize("n", [1, 2, 7])
def test_gso_gives_back_the_frames_gro_merged(n):
    frames, _ = stream(n)
    merged = gro(frames)[0][0]
    merged.network_header = merged.data + offload.ETH_HLEN
    if n == 1:
        merged.gso_size = MSS  # a single segment is left as it was; make it a GSO packet of one
    segs = offload.skb_gso_segment(merged, SOFTIRQ, "B")
    assert [bytes(k.payload()) for k in segs] == frames  # headers, ids, flags and checksums, byte for byte
    for k in segs:
        pkt = Ether(bytes(k.payload()))
        check = pkt[TCP].chksum
        del pkt[TCP].chksum
        assert Ether(bytes(pkt))[TCP].chksum == check


def test_gso_records_a_header_copy_per_segment_and_frees_the_gso_skb():
    frames, _ = stream(3)
    merged = gro(frames)[0][0]
    merged.network_header = merged.data + offload.ETH_HLEN
    merged.sampled = True
    segs = offload.skb_gso_segment(merged, SOFTIRQ, "A")
    copies = [e for k in segs for e in k.events if e[0] == s.COPY]
    assert [e[5] for e in copies] == [66, 66, 66] and all(k.copy_of == merged.id for k in segs)
    assert merged.events[-1][0] == s.FREE
