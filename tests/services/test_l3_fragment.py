"""IPv4 reassembly (ip_defrag) and fragmentation (ip_do_fragment), without gRPC."""

from pktpath import skbuff as s
from pktpath.counters import Mib
from pktpath.pb import skbuff_pb2 as pb
from pktpath.services.l3.fragment import IPFRAG_TIME_S, IpDefrag, ip_fragment
from pktpath.wire import IpHdr
from pktpath.wire.addr import ip_from_str
from pktpath.wire.ipv4 import IP_DF, IP_MF, IP_OFFSET

from fakes import Clock

SRC, DST = ip_from_str("10.0.1.1"), ip_from_str("10.0.2.1")
DATA = bytes(i * 7 % 251 for i in range(3000))


def frag(offset: int, data: bytes, *, mf: bool, ident: int = 77, proto: int = 17, options: bytes = b""):
    """A received fragment: data at its IP header."""
    iph = IpHdr(SRC, DST, proto, id=ident, frag_off=(IP_MF if mf else 0) | offset // 8, options=options)
    raw = iph.to_bytes(len(data)) + data
    skb = s.alloc_skb(s.NET_SKB_PAD + len(raw))
    s.skb_reserve(skb, s.NET_SKB_PAD)
    s.skb_put_data(skb, raw)
    s.skb_reset_network_header(skb)
    return skb, IpHdr.from_bytes(skb.payload())


def pieces(data: bytes = DATA, size: int = 1480):
    """(offset, bytes, mf) of data cut into size-byte fragments."""
    out = []
    for off in range(0, len(data), size):
        chunk = data[off:off + size]
        out.append((off, chunk, off + len(chunk) < len(data)))
    return out


def drops(mib: Mib, reason: int) -> int:
    return mib.get("Drops", pb.DropReason.Name(reason))


def defrag_all(d: IpDefrag, parts, ident: int = 77):
    results = []
    for off, chunk, mf in parts:
        skb, iph = frag(off, chunk, mf=mf, ident=ident)
        results.append(d.defrag(skb, iph))
    return results


# -- reassembly -------------------------------------------------------------------

def test_in_order_fragments_reassemble_into_the_original_datagram():
    """The last fragment completes: one header (no MF, offset 0, tot_len whole) over all the payload."""
    mib = Mib()
    d = IpDefrag("B", mib)
    results = defrag_all(d, pieces())
    assert results[:-1] == [None, None]
    whole = results[-1]
    iph = IpHdr.from_bytes(whole.payload())  # verifies the rebuilt header checksum
    assert (iph.frag_off, iph.tot_len, iph.id, iph.saddr, iph.daddr) == (0, 20 + len(DATA), 77, SRC, DST)
    assert bytes(whole.payload()[20:]) == DATA
    assert whole.network_header == whole.data and whole.transport_header == whole.data + 20
    assert len(d) == 0 and d.mem == 0
    assert mib.get("Ip", "ReasmReqds") == 3 and mib.get("Ip", "ReasmOKs") == 1
    assert mib.get("Ip", "ReasmFails") == 0


def test_out_of_order_fragments_complete_on_the_missing_one():
    """Last, then first, then the middle one: the middle completes and the first's skb carries the datagram."""
    mib = Mib()
    d = IpDefrag("B", mib)
    parts = pieces()
    (first_skb, first_iph) = frag(*parts[0][:2], mf=True)
    last = frag(*parts[2][:2], mf=False)
    middle = frag(*parts[1][:2], mf=True)
    assert d.defrag(*last) is None
    assert d.defrag(first_skb, first_iph) is None
    whole = d.defrag(*middle)
    assert whole is first_skb
    assert bytes(whole.payload()[20:]) == DATA
    assert IpHdr.from_bytes(whole.payload()).tot_len == 3020
    assert mib.get("Ip", "ReasmOKs") == 1 and len(d) == 0


def test_fragments_of_different_datagrams_do_not_mix():
    """Queues are keyed by (saddr, daddr, id, protocol)."""
    d = IpDefrag("B", Mib())
    a = pieces()
    b = pieces(bytes(reversed(DATA)))
    assert d.defrag(*frag(*a[0][:2], mf=True, ident=1)) is None
    assert d.defrag(*frag(*b[0][:2], mf=True, ident=2)) is None
    assert d.defrag(*frag(*a[1][:2], mf=True, ident=1)) is None
    assert len(d) == 2
    whole_a = d.defrag(*frag(*a[2][:2], mf=False, ident=1))
    assert bytes(whole_a.payload()[20:]) == DATA and len(d) == 1


def test_exact_duplicate_is_dropped_and_the_queue_survives():
    """A fragment that repeats a queued one: only it goes (DUP_FRAG), reassembly still completes."""
    mib = Mib()
    d = IpDefrag("B", mib)
    parts = pieces()
    assert d.defrag(*frag(*parts[0][:2], mf=True)) is None
    assert d.defrag(*frag(*parts[0][:2], mf=True)) is None
    assert drops(mib, pb.SKB_DROP_REASON_DUP_FRAG) == 1
    assert len(d) == 1 and mib.get("Ip", "ReasmFails") == 0
    results = defrag_all(d, parts[1:])
    assert bytes(results[-1].payload()[20:]) == DATA
    assert mib.get("Ip", "ReasmOKs") == 1 and mib.get("IpExt", "ReasmOverlaps") == 0


def test_fragment_inside_a_queued_one_is_a_duplicate():
    """Wholly inside one queued fragment (same offset, shorter): DUP_FRAG, no overlap counted."""
    mib = Mib()
    d = IpDefrag("B", mib)
    assert d.defrag(*frag(0, DATA[:1480], mf=True)) is None
    assert d.defrag(*frag(8, DATA[8:16], mf=True)) is None
    assert drops(mib, pb.SKB_DROP_REASON_DUP_FRAG) == 1
    assert len(d) == 1 and mib.get("IpExt", "ReasmOverlaps") == 0


def test_partial_overlap_discards_the_whole_datagram():
    """RFC 5722: any other overlap poisons the datagram; every queued fragment goes with it."""
    mib = Mib()
    d = IpDefrag("B", mib)
    assert d.defrag(*frag(0, DATA[:1480], mf=True)) is None
    assert d.defrag(*frag(1480, DATA[1480:2960], mf=True)) is None
    assert d.defrag(*frag(2952, DATA[2952:2968], mf=True)) is None   # straddles the end of the run
    assert len(d) == 0 and d.mem == 0
    assert mib.get("IpExt", "ReasmOverlaps") == 1
    assert mib.get("Ip", "ReasmFails") == 1
    assert drops(mib, pb.SKB_DROP_REASON_DUP_FRAG) == 0
    # The rest of the datagram now starts a new queue that can never complete from what is left.
    assert d.defrag(*frag(2960, DATA[2960:], mf=False)) is None
    assert mib.get("Ip", "ReasmOKs") == 0 and len(d) == 1


def test_fragment_covering_a_contiguous_run_is_a_duplicate():
    """In order 0-8 and 8-16 form one run [0, 16): a resent [0, 16) is a duplicate, the queue survives."""
    mib = Mib()
    d = IpDefrag("B", mib)
    assert d.defrag(*frag(0, DATA[:8], mf=True)) is None
    assert d.defrag(*frag(8, DATA[8:16], mf=True)) is None
    assert d.defrag(*frag(0, DATA[:16], mf=True)) is None
    assert mib.get("IpExt", "ReasmOverlaps") == 0
    assert drops(mib, pb.SKB_DROP_REASON_DUP_FRAG) == 1
    assert len(d) == 1


def test_conflicting_last_fragments_discard_the_datagram():
    """Two different ends (ip_frag_queue: LAST_IN and end != len) is corruption: discard_qp."""
    mib = Mib()
    d = IpDefrag("B", mib)
    assert d.defrag(*frag(1480, DATA[1480:2000], mf=False)) is None
    assert d.defrag(*frag(2960, DATA[2960:], mf=False)) is None
    assert len(d) == 0 and mib.get("Ip", "ReasmFails") == 1


def test_datagram_over_65535_bytes_is_discarded():
    """ip_frag_reasm's out_oversize: header + payload > 65535 fails the whole datagram."""
    mib = Mib()
    d = IpDefrag("B", mib)
    half = bytes(32768)
    assert d.defrag(*frag(0, half, mf=True)) is None
    assert d.defrag(*frag(32768, half, mf=False)) is None   # 20 + 65536 bytes
    assert len(d) == 0 and d.mem == 0
    assert mib.get("Ip", "ReasmFails") == 1 and mib.get("Ip", "ReasmOKs") == 0


def test_an_oversized_datagram_counts_one_reasmfails_and_names_each_fragment_pkt_too_big():
    """Linux 6.18, 45 fragments of a 65540-byte datagram: ReasmReqds 45, ReasmFails 1 and
    no drop (inet_frag_destroy consumes them). pktpath counts the same; each fragment's
    record still ends with a DROP naming PKT_TOO_BIG, in ip_frag_reasm."""
    mib = Mib()
    d = IpDefrag("B", mib)
    payload = bytes(65520)
    skbs = []
    for off, chunk, mf in pieces(payload):
        skb, iph = frag(off, chunk, mf=mf)
        skbs.append(skb)
        assert d.defrag(skb, iph) is None
    assert len(skbs) == 45 and len(d) == 0 and d.mem == 0
    assert mib.snapshot() == {"Ip": {"ReasmReqds": 45, "ReasmFails": 1}}
    for skb in skbs:
        (drop,) = [e for e in skb.events if e[0] == s.DROP]
        assert (drop[3], drop[6]) == ("ip_frag_reasm", pb.SKB_DROP_REASON_PKT_TOO_BIG)
        assert skb.events[-1][0] == s.FREE and skb.shinfo.dataref == 0


def test_largest_legal_datagram_reassembles():
    """Exactly 65535 bytes is still fine."""
    d = IpDefrag("B", Mib())
    payload = bytes(range(256)) * 255 + bytes(65515 - 256 * 255)
    assert d.defrag(*frag(0, payload[:32768], mf=True)) is None
    whole = d.defrag(*frag(32768, payload[32768:], mf=False))
    assert IpHdr.from_bytes(whole.payload()).tot_len == 65535
    assert bytes(whole.payload()[20:]) == payload


def test_expire_after_the_timeout_counts_and_reports_the_first_fragment_only():
    """ip_expire: ReasmTimeout and ReasmFails per queue; time exceeded only when offset 0 came."""
    clock = Clock()
    mib = Mib()
    d = IpDefrag("B", mib, clock=clock)
    first_skb, first_iph = frag(0, DATA[:1480], mf=True, ident=1)
    assert d.defrag(first_skb, first_iph) is None
    assert d.defrag(*frag(1480, DATA[1480:2960], mf=True, ident=2)) is None   # no first fragment
    called = []
    clock.t += IPFRAG_TIME_S - 1
    assert d.expire(called.append) == 0 and len(d) == 2 and called == []
    clock.t += 1
    assert d.expire(called.append) == 2
    assert called == [first_skb]
    assert len(d) == 0 and d.mem == 0
    assert mib.get("Ip", "ReasmTimeout") == 2 and mib.get("Ip", "ReasmFails") == 2
    assert drops(mib, pb.SKB_DROP_REASON_FRAG_REASM_TIMEOUT) == 2


def test_expire_uses_the_configured_timeout():
    clock = Clock()
    d = IpDefrag("B", Mib(), timeout_s=5.0, clock=clock)
    d.defrag(*frag(0, DATA[:1480], mf=True))
    clock.t += 4
    assert d.expire(lambda skb: None) == 0
    clock.t += 1
    assert d.expire(lambda skb: None) == 1


def test_high_thresh_refuses_a_new_queue():
    """Over ipfrag_high_thresh, inet_frag_find gives no queue: ReasmFails, NOMEM drop."""
    mib = Mib()
    d = IpDefrag("B", mib, high_thresh=1000)
    assert d.defrag(*frag(0, DATA[:1480], mf=True, ident=1)) is None
    assert d.mem > 1000
    assert d.defrag(*frag(0, DATA[:1480], mf=True, ident=2)) is None
    assert len(d) == 1
    assert mib.get("Ip", "ReasmFails") == 1
    assert drops(mib, pb.SKB_DROP_REASON_NOMEM) == 1


def test_high_thresh_refuses_fragments_of_existing_queues_too():
    mib = Mib()
    d = IpDefrag("B", mib, high_thresh=1000)
    parts = pieces()
    assert d.defrag(*frag(*parts[0][:2], mf=True)) is None
    assert d.mem > 1000
    assert d.defrag(*frag(*parts[1][:2], mf=True)) is None
    assert drops(mib, pb.SKB_DROP_REASON_NOMEM) == 1
    assert mib.get("Ip", "ReasmFails") == 1


def test_memory_is_released_after_reassembly():
    d = IpDefrag("B", Mib(), high_thresh=2000)
    defrag_all(d, pieces(DATA[:1000], 504))
    assert d.mem == 0
    assert d.defrag(*frag(0, DATA[:1480], mf=True, ident=9)) is None
    assert len(d) == 1  # a new queue was allowed again


# -- fragmentation ------------------------------------------------------------------

def datagram(payload: bytes = DATA, *, frag_off: int = 0, options: bytes = b"", sampled: bool = True):
    iph = IpHdr(SRC, DST, 17, id=4242, frag_off=frag_off, options=options)
    raw = iph.to_bytes(len(payload)) + payload
    skb = s.alloc_skb(s.MAX_HEADER + len(raw), sampled=sampled)
    s.skb_reserve(skb, s.MAX_HEADER)
    s.skb_put_data(skb, raw)
    s.skb_reset_network_header(skb)
    skb.dev, skb.nexthop, skb.mark = "eth1", DST, 5
    return skb, IpHdr.from_bytes(skb.payload())


def copies(skb) -> list:
    return [e for e in skb.events if e[0] == s.COPY]


def test_fragment_sizes_flags_and_offsets():
    """(mtu - ihl) & ~7 bytes each, MF on all but the last, offsets in 8-byte units, same id."""
    mib = Mib()
    skb, iph = datagram()
    frags = ip_fragment(skb, iph, 1000, "R", mib, slow_path=True)
    headers = [IpHdr.from_bytes(f.payload()) for f in frags]  # each checksum verifies
    sizes = [h.tot_len - 20 for h in headers]
    assert sizes == [976, 976, 976, 72]
    assert [h.frag_off & IP_OFFSET for h in headers] == [0, 122, 244, 366]
    assert [h.mf for h in headers] == [True, True, True, False]
    assert all(h.id == 4242 and h.saddr == SRC and h.daddr == DST and not h.df for h in headers)
    assert all(f.len <= 1000 for f in frags)
    assert mib.get("Ip", "FragOKs") == 1 and mib.get("Ip", "FragCreates") == 4


def test_fragments_concatenate_to_the_original_and_keep_metadata():
    skb, iph = datagram()
    original_id = skb.id
    frags = ip_fragment(skb, iph, 576, "R", Mib(), slow_path=False)
    assert b"".join(bytes(f.payload()[20:]) for f in frags) == DATA
    for f in frags:
        assert f.network_header == f.data and f.transport_header == f.data + 20
        assert (f.dev, f.nexthop, f.mark, f.copy_of) == ("eth1", DST, 5, original_id)


def test_fragments_reassemble_through_ip_defrag():
    """What ip_fragment makes, ip_defrag puts back together."""
    skb, iph = datagram()
    d = IpDefrag("B", Mib())
    results = [d.defrag(f, IpHdr.from_bytes(f.payload())) for f in ip_fragment(skb, iph, 700, "R", Mib(),
                                                                                slow_path=True)]
    assert all(r is None for r in results[:-1])
    assert bytes(results[-1].payload()[20:]) == DATA


def test_copy_events_only_on_the_slow_path():
    """Forwarded packets are copied into each fragment (COPY skb->skb); locally built ones are not."""
    skb, iph = datagram()
    slow = ip_fragment(skb, iph, 1000, "R", Mib(), slow_path=True)
    for f in slow:
        (copy,) = copies(f)
        assert copy[3] == "ip_do_fragment" and copy[5] == f.len and copy[7:9] == ("skb", "skb")
    skb, iph = datagram()
    fast = ip_fragment(skb, iph, 1000, "A", Mib(), slow_path=False)
    assert all(copies(f) == [] for f in fast)


def test_original_skb_is_consumed_not_dropped():
    skb, iph = datagram()
    ip_fragment(skb, iph, 1000, "R", Mib(), slow_path=True)
    kinds = [e[0] for e in skb.events]
    assert s.FREE in kinds and s.DROP not in kinds


def test_refragmenting_a_middle_fragment_keeps_its_offset_and_mf():
    """A fragment that is itself not the last: every piece has MF, offsets start at its own."""
    skb, iph = datagram(DATA[:1600], frag_off=IP_MF | 100)
    headers = [IpHdr.from_bytes(f.payload()) for f in ip_fragment(skb, iph, 1000, "R", Mib(), slow_path=True)]
    assert [h.frag_off & IP_OFFSET for h in headers] == [100, 222]
    assert all(h.mf for h in headers)
    assert [h.tot_len - 20 for h in headers] == [976, 624]


def test_refragmenting_the_last_fragment_clears_mf_on_its_last_piece():
    skb, iph = datagram(DATA[:1600], frag_off=100)
    headers = [IpHdr.from_bytes(f.payload()) for f in ip_fragment(skb, iph, 1000, "R", Mib(), slow_path=True)]
    assert [h.frag_off & IP_OFFSET for h in headers] == [100, 222]
    assert [h.mf for h in headers] == [True, False]


def test_copied_options_are_repeated_in_every_fragment():
    """Router alert has the copied flag: every fragment carries it, sizes follow the longer header."""
    ra = bytes([0x94, 4, 0, 0])
    skb, iph = datagram(DATA[:2000], options=ra)
    headers = [IpHdr.from_bytes(f.payload()) for f in ip_fragment(skb, iph, 1000, "R", Mib(), slow_path=True)]
    assert all(h.options == ra and h.header_len == 24 for h in headers)
    assert [h.tot_len - 24 for h in headers] == [976, 976, 48]


def test_fragmentation_clears_df_on_fragments():
    skb, iph = datagram(frag_off=0)
    assert not any(IpHdr.from_bytes(f.payload()).frag_off & IP_DF
                   for f in ip_fragment(skb, iph, 1000, "R", Mib(), slow_path=True))


def test_last_fragment_is_not_rounded_down_to_eight_bytes():
    """1956 bytes at MTU 1000: 976 + 980 (the last fills the MTU exactly), not 976 + 976 + 4."""
    skb, iph = datagram(DATA[:1956])
    headers = [IpHdr.from_bytes(f.payload()) for f in ip_fragment(skb, iph, 1000, "R", Mib(), slow_path=True)]
    assert [h.tot_len - 20 for h in headers] == [976, 980]


def test_non_copied_options_become_noops_in_later_fragments():
    """Record route (not copied): later fragments keep a 28-byte header, its option bytes NOOPs."""
    rr = bytes([7, 7, 4, 0, 0, 0, 0, 0])
    skb, iph = datagram(DATA[:2000], options=rr)
    headers = [IpHdr.from_bytes(f.payload()) for f in ip_fragment(skb, iph, 1000, "R", Mib(), slow_path=True)]
    assert headers[0].options == rr
    assert all(h.header_len == 28 for h in headers)
    assert all(h.options[:7] == bytes([1] * 7) for h in headers[1:])
