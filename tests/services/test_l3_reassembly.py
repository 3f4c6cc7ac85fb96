"""IPv6 reassembly (Ipv6Defrag) without gRPC, fragments made by scapy's fragment6.

The expectations are what Linux 6.18 did with the same fragments, sent with scapy from one
network namespace over a veth to another: the receiver's /proc/net/snmp6, /proc/net/sockstat6's
FRAG6 line, the skb:kfree_skb tracepoint's reasons, and the ICMPv6 messages that came back.
Ip6ReasmReqds is the caller's (Ipv6.ipv6_frag_rcv counts it before it calls queue), so no test
here expects it.
"""

import random

from scapy.layers.inet import UDP
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, PadN, fragment6
from scapy.packet import Raw, raw

from pktpath import skbuff as s
from pktpath.counters import Mib
from pktpath.pb import skbuff_pb2 as pb
from pktpath.services.l3.fragment import IpDefrag
from pktpath.services.l3.inet_fragment import IPFRAG_DUP, IPFRAG_OK, IPFRAG_OVERLAP, Frag, InetFragQueue
from pktpath.services.l3.reassembly import (
    FRAG_QUEUE_SIZE, IPV6_FRAG_TIMEOUT_S, FragParamProb, Ipv6Defrag, Ipv6Reasm,
)
from pktpath.wire import IpHdr
from pktpath.wire.ipv4 import IP_MF
from pktpath.wire.ipv6 import ICMPV6_HDR_FIELD, IPV6_HLEN, NEXTHDR_FRAGMENT, Ipv6Hdr, ipv6_parse_exthdrs

from fakes import Clock

A, B = "2001:db8:1::a", "2001:db8:1::b"
ALL, BLL = "fe80::a", "fe80::b"
DATA = bytes(i * 7 % 251 for i in range(3000))


def datagram(ident: int = 77, *, data: bytes = DATA, dst: str = B, destopt: bool = False, tc: int = 0):
    """(the packet as sent, its fragments as fragment6 cut them for a 1280-byte MTU)."""
    ip = IPv6(src=A, dst=dst, tc=tc)
    unfrag = ip / IPv6ExtHdrDestOpt() if destopt else ip
    upper = UDP(sport=5000, dport=7) / Raw(data)
    whole = raw(unfrag / upper)
    frags = [raw(f) for f in fragment6(unfrag / IPv6ExtHdrFragment(id=ident) / upper, 1280)]
    return whole, frags


def crafted(offset: int, data: bytes, *, mf: bool, ident: int = 77, dst: str = B, tc: int = 0,
            destopt: bool = False) -> bytes:
    """One fragment of our own making (offsets and lengths fragment6 would not choose)."""
    ip = IPv6(src=A, dst=dst, tc=tc)
    if destopt:
        ip = ip / IPv6ExtHdrDestOpt(options=[PadN(optdata=b"\0" * 4)])
    return raw(ip / IPv6ExtHdrFragment(nh=17, offset=offset // 8, m=int(mf), id=ident) / Raw(data))


def rx(raw_frag: bytes, dev: str = "b0"):
    """A received fragment as Ipv6.ipv6_frag_rcv has it: network header at the IPv6 header, data
    pulled to the fragment header. Returns the arguments of Ipv6Defrag.queue."""
    skb = s.alloc_skb(s.NET_SKB_PAD + len(raw_frag))
    s.skb_reserve(skb, s.NET_SKB_PAD)
    s.skb_put_data(skb, raw_frag)
    s.skb_reset_network_header(skb)
    skb.dev = dev
    hdr = Ipv6Hdr.from_bytes(skb.payload())
    chain = ipv6_parse_exthdrs(hdr, skb.payload())
    assert chain.nexthdr == NEXTHDR_FRAGMENT
    skb.transport_header = skb.network_header + chain.offset
    s.skb_pull(skb, chain.offset)
    return skb, hdr, chain.headers[-1], chain.offset, chain.nhoff


def feed(d: Ipv6Defrag, frags, dev: str = "b0") -> list:
    return [d.queue(*rx(f, dev)) for f in frags]


def drops(mib: Mib, reason: int) -> int:
    return mib.get("Drops", pb.DropReason.Name(reason))


def dropped_as(skb) -> list[tuple[str, int]]:
    """The (func, reason) of the skb's DROP events."""
    return [(e[3], e[6]) for e in skb.events if e[0] == s.DROP]


def ip6(mib: Mib, name: str) -> int:
    return mib.get("Ip6", name)


# -- reassembly ----------------------------------------------------------------------


def test_fragments_in_order_reassemble_into_the_original_packet():
    """The last fragment completes it: the packet as sent, fragment header gone, payload_len whole."""
    mib = Mib()
    d = Ipv6Defrag("B", mib)
    whole, frags = datagram()
    assert len(frags) == 3
    results = feed(d, frags)
    assert results[:2] == [None, None]
    r = results[2]
    assert type(r) is Ipv6Reasm
    assert bytes(r.skb.payload()) == whole
    assert r.hdr.payload_len == len(whole) - IPV6_HLEN and r.hdr.nexthdr == 17
    assert ip6(mib, "ReasmOKs") == 1 and ip6(mib, "ReasmFails") == 0
    assert len(d) == 0 and d.mem == 0


def test_reassembled_skb_is_the_completing_one_with_the_headers_set_for_the_resubmit():
    """ip6_frag_reasm morphs the completing skb: data and network header at the IPv6 header, the
    transport header where the fragment header was, nhoff the byte that named it, frag_max_size
    the largest fragment; the other fragments are consumed, not dropped."""
    mib = Mib()
    d = Ipv6Defrag("B", mib)
    _, frags = datagram()
    args = [rx(f) for f in frags]
    for a in args[:2]:
        assert d.queue(*a) is None
    last = args[2][0]
    r = d.queue(*args[2])
    assert r.skb is last
    assert r.skb.data == r.skb.network_header == s.NET_SKB_PAD
    assert r.skb.transport_header == r.skb.network_header + IPV6_HLEN
    assert bytes(s.skb_transport_header(r.skb)[:4]) == (5000).to_bytes(2, "big") + (7).to_bytes(2, "big")
    assert (r.nhoff, r.frag_max_size) == (6, 1280)
    for skb, *_ in args[:2]:
        assert dropped_as(skb) == [] and skb.events[-1][0] == s.FREE
    assert mib.snapshot().get("Drops", {}) == {}


def test_reversed_fragments_reassemble_on_the_first():
    d = Ipv6Defrag("B", Mib())
    whole, frags = datagram()
    results = feed(d, reversed(frags))
    assert results[:2] == [None, None]
    assert bytes(results[2].skb.payload()) == whole


def test_shuffled_fragments_of_a_large_datagram_reassemble():
    """60000 bytes in 49 fragments, in a random order."""
    mib = Mib()
    d = Ipv6Defrag("B", mib)
    whole, frags = datagram(data=bytes(random.Random(5).randbytes(60000)))
    assert len(frags) == 49
    random.Random(19).shuffle(frags)
    results = feed(d, frags)
    assert results[:-1] == [None] * 48
    assert bytes(results[-1].skb.payload()) == whole
    assert ip6(mib, "ReasmOKs") == 1 and d.mem == 0


def test_unfragmentable_headers_stay_and_the_one_before_names_the_upper_layer():
    """A destination options header before the fragment header is in every fragment; the
    reassembled packet keeps the first fragment's, its next header now UDP; nhoff points at it."""
    d = Ipv6Defrag("B", Mib())
    whole, frags = datagram(destopt=True)
    r = feed(d, frags)[-1]
    assert bytes(r.skb.payload()) == whole
    assert r.nhoff == IPV6_HLEN and r.skb.payload()[IPV6_HLEN] == 17
    assert r.skb.transport_header == r.skb.network_header + IPV6_HLEN + 8
    assert r.hdr.nexthdr == 60 and r.frag_max_size == 1280


def test_icmpv6_echo_request_reassembles_with_its_checksum_intact():
    d = Ipv6Defrag("B", Mib())
    whole = raw(IPv6(src=A, dst=B) / ICMPv6EchoRequest(id=1, seq=1, data=DATA))
    frags = [raw(f) for f in fragment6(IPv6(src=A, dst=B) / IPv6ExtHdrFragment(id=9) /
                                       ICMPv6EchoRequest(id=1, seq=1, data=DATA), 1280)]
    assert bytes(feed(d, frags)[-1].skb.payload()) == whole


def test_fragments_of_different_datagrams_do_not_mix():
    d = Ipv6Defrag("B", Mib())
    whole1, frags1 = datagram(1)
    whole2, frags2 = datagram(2, data=DATA[::-1])
    got = feed(d, [frags1[0], frags2[0], frags1[1], frags2[2], frags2[1]])
    assert got[:4] == [None] * 4 and bytes(got[4].skb.payload()) == whole2
    assert len(d) == 1
    assert bytes(d.queue(*rx(frags1[2])).skb.payload()) == whole1


def test_the_device_keys_the_queue_only_for_a_link_local_or_multicast_destination():
    """fq_find: a global destination's fragments meet whatever device they came by; a
    link-local destination's only on the same device."""
    d = Ipv6Defrag("B", Mib())
    _, frags = datagram(dst=B)
    assert d.queue(*rx(frags[0], "b0")) is None
    assert d.queue(*rx(frags[1], "b1")) is None
    assert type(d.queue(*rx(frags[2], "b0"))) is Ipv6Reasm
    _, frags = datagram(dst=BLL)
    assert d.queue(*rx(frags[0], "b0")) is None
    assert d.queue(*rx(frags[1], "b1")) is None
    assert d.queue(*rx(frags[2], "b0")) is None
    assert len(d) == 2


# -- overlaps and duplicates (RFC 5722) ----------------------------------------------


def test_fragment_overlapping_the_first_ones_upper_layer_header_discards_the_datagram():
    """A 16-byte first fragment, then one from offset 8 that would rewrite its UDP header (Linux
    6.18: Ip6ReasmFails 1, it freed NOT_SPECIFIED in ipv6_frag_rcv, the first consumed)."""
    mib = Mib()
    d = Ipv6Defrag("B", mib)
    whole, _ = datagram()
    payload = whole[IPV6_HLEN:]
    first = rx(crafted(0, payload[:16], mf=True))
    assert d.queue(*first) is None
    attack = rx(crafted(8, b"\xff" * 8 + payload[16:1232], mf=True))
    assert d.queue(*attack) is None
    assert ip6(mib, "ReasmFails") == 1 and ip6(mib, "ReasmOKs") == 0
    assert len(d) == 0 and d.mem == 0
    assert dropped_as(attack[0]) == [("ipv6_frag_rcv", pb.SKB_DROP_REASON_NOT_SPECIFIED)]
    assert first[0].events[-1][0] == s.FREE and dropped_as(first[0])  # its record says how it ended
    assert mib.snapshot()["Drops"] == {"SKB_DROP_REASON_NOT_SPECIFIED": 1}


def test_fragment_overlapping_the_end_of_a_queued_one_discards_the_datagram():
    """Linux 6.18: [0, 1232) then [1224, 1240) → Ip6ReasmFails 1; the rest never completes."""
    mib = Mib()
    d = Ipv6Defrag("B", mib)
    _, frags = datagram()
    assert feed(d, [frags[0], crafted(1224, b"Z" * 16, mf=True)]) == [None, None]
    assert ip6(mib, "ReasmFails") == 1 and len(d) == 0
    assert feed(d, frags[1:]) == [None, None]
    assert ip6(mib, "ReasmOKs") == 0 and len(d) == 1


def test_fragment_inside_a_queued_one_is_only_a_duplicate():
    """[8, 72) inside the queued [0, 1232), whatever its bytes: DUP_FRAG, the datagram completes
    with the first fragment's bytes."""
    mib = Mib()
    d = Ipv6Defrag("B", mib)
    whole, frags = datagram()
    assert feed(d, [frags[0], crafted(8, b"\xff" * 64, mf=True)]) == [None, None]
    assert drops(mib, pb.SKB_DROP_REASON_DUP_FRAG) == 1 and ip6(mib, "ReasmFails") == 0
    assert bytes(feed(d, frags[1:])[-1].skb.payload()) == whole


def test_after_an_overlap_the_rest_of_the_datagram_starts_a_new_queue():
    """Linux 6.18: the killed queue leaves the table; the other fragments make a new one that
    cannot complete, and the whole datagram sent again reassembles."""
    mib = Mib()
    d = Ipv6Defrag("B", mib)
    whole, frags = datagram()
    assert feed(d, [frags[0], crafted(1224, b"Z" * 16, mf=True)]) == [None, None]
    assert feed(d, frags[1:]) == [None, None]
    assert len(d) == 1 and ip6(mib, "ReasmFails") == 1
    results = feed(d, frags)  # the first completes the new queue; the other two start another
    assert bytes(results[0].skb.payload()) == whole and results[1:] == [None, None]
    assert ip6(mib, "ReasmOKs") == 1 and len(d) == 1


def test_duplicate_fragment_is_dropped_alone_and_the_datagram_still_completes():
    """Linux 6.18: DUP_FRAG, no Ip6ReasmFails."""
    mib = Mib()
    d = Ipv6Defrag("B", mib)
    whole, frags = datagram()
    dup = rx(frags[0])
    assert feed(d, frags[:1]) == [None] and d.queue(*dup) is None
    assert dropped_as(dup[0]) == [("ipv6_frag_rcv", pb.SKB_DROP_REASON_DUP_FRAG)]
    assert ip6(mib, "ReasmFails") == 0 and drops(mib, pb.SKB_DROP_REASON_DUP_FRAG) == 1
    assert bytes(feed(d, frags[1:])[-1].skb.payload()) == whole


def test_fragment_covering_a_run_of_adjacent_fragments_is_a_duplicate():
    """[0, 8) then [8, 16) make one run; [0, 16) again is a duplicate (Linux 6.18: DUP_FRAG)."""
    mib = Mib()
    d = Ipv6Defrag("B", mib)
    assert feed(d, [crafted(0, DATA[:8], mf=True), crafted(8, DATA[8:16], mf=True),
                    crafted(0, DATA[:16], mf=True)]) == [None] * 3
    assert drops(mib, pb.SKB_DROP_REASON_DUP_FRAG) == 1 and ip6(mib, "ReasmFails") == 0 and len(d) == 1


def test_fragment_covering_two_runs_overlaps_even_if_they_touch():
    """[0, 8), [16, 24), then [8, 16) filed between as a run of its own: [0, 16) spans two runs,
    an overlap (Linux 6.18: Ip6ReasmFails 1), though every byte of it is queued already."""
    mib = Mib()
    d = Ipv6Defrag("B", mib)
    feed(d, [crafted(0, DATA[:8], mf=True), crafted(16, DATA[16:24], mf=True), crafted(8, DATA[8:16], mf=True),
             crafted(0, DATA[:16], mf=True)])
    assert ip6(mib, "ReasmFails") == 1 and drops(mib, pb.SKB_DROP_REASON_DUP_FRAG) == 0 and len(d) == 0


def test_ipv4_shares_the_runs():
    """The same four fragments over IPv4 (inet_frag_queue_insert is shared; Linux 6.18 counted
    IpExtReasmOverlaps 1 and IpReasmFails 1)."""
    mib = Mib()
    d = IpDefrag("B", mib)
    for offset, end in ((0, 8), (16, 24), (8, 16), (0, 16)):
        iph = IpHdr(0x0A000001, 0x0A000002, 17, id=1, frag_off=IP_MF | offset // 8)
        raw4 = iph.to_bytes(end - offset) + DATA[offset:end]
        skb = s.alloc_skb(len(raw4))
        s.skb_put_data(skb, raw4)
        d.defrag(skb, IpHdr.from_bytes(skb.payload()))
    assert mib.get("IpExt", "ReasmOverlaps") == 1 and mib.get("Ip", "ReasmFails") == 1


def test_inet_frag_queue_insert_files_runs_as_the_kernel():
    q = InetFragQueue((), 0.0)

    def ins(offset, end):
        return q.insert(Frag(offset, end, None, b""))

    assert [ins(16, 24), ins(24, 32), ins(0, 8)] == [IPFRAG_OK] * 3
    assert [[(f.offset, f.end) for f in run] for run in q.runs] == [[(0, 8)], [(16, 24), (24, 32)]]
    assert ins(16, 32) == IPFRAG_DUP and ins(20, 28) == IPFRAG_DUP
    assert ins(4, 12) == IPFRAG_OVERLAP and ins(28, 40) == IPFRAG_OVERLAP
    assert ins(8, 16) == IPFRAG_OK and [(f.offset, f.end) for f in q.fragments()] == [
        (0, 8), (8, 16), (16, 24), (24, 32)]


# -- malformed fragments ---------------------------------------------------------------


def test_non_last_fragment_not_a_multiple_of_8_asks_for_a_parameter_problem_at_payload_len():
    """Linux 6.18: Parameter Problem code 0, pointer 4; Ip6InHdrErrors (the caller's), no
    Ip6ReasmFails. The skb is the caller's to free (icmpv6_param_prob)."""
    mib = Mib()
    d = Ipv6Defrag("B", mib)
    skb, *rest = rx(crafted(0, DATA[:1229], mf=True))
    assert d.queue(skb, *rest) == FragParamProb(4, ICMPV6_HDR_FIELD)
    assert skb.events == [] and mib.snapshot() == {}


def test_fragment_past_65535_bytes_asks_for_a_parameter_problem_at_its_offset_field():
    """Linux 6.18: offset 65528 with 16 bytes → Parameter Problem code 0, pointer 42."""
    mib = Mib()
    d = Ipv6Defrag("B", mib)
    assert d.queue(*rx(crafted(65528, b"q" * 16, mf=False))) == FragParamProb(IPV6_HLEN + 2)
    r = d.queue(*rx(crafted(65528, b"q" * 24, mf=False, destopt=True)))
    assert r == FragParamProb(IPV6_HLEN + 8 + 2)
    assert mib.snapshot() == {}


def test_the_queue_a_refused_fragment_made_stays_empty_and_times_out():
    """Linux 6.18: ip6frag_time later Ip6ReasmTimeout 1 and Ip6ReasmFails 1, no ICMPv6."""
    clock = Clock()
    mib = Mib()
    d = Ipv6Defrag("B", mib, clock=clock)
    assert type(d.queue(*rx(crafted(0, DATA[:1229], mf=True)))) is FragParamProb
    assert len(d) == 1 and d.mem == FRAG_QUEUE_SIZE
    clock.t += IPV6_FRAG_TIMEOUT_S
    sent = []
    assert d.expire(sent.append) == 1
    assert sent == [] and ip6(mib, "ReasmTimeout") == 1 and ip6(mib, "ReasmFails") == 1 and d.mem == 0


def test_empty_fragment_discards_the_datagram():
    """Linux 6.18: a zero-length middle fragment → Ip6ReasmFails 1, NOT_SPECIFIED."""
    mib = Mib()
    d = Ipv6Defrag("B", mib)
    _, frags = datagram()
    assert feed(d, [frags[0], crafted(1232, b"", mf=True)]) == [None, None]
    assert ip6(mib, "ReasmFails") == 1 and len(d) == 0
    assert drops(mib, pb.SKB_DROP_REASON_NOT_SPECIFIED) == 1


def test_two_last_fragments_with_different_ends_discard_the_datagram():
    mib = Mib()
    d = Ipv6Defrag("B", mib)
    _, frags = datagram()
    feed(d, [frags[2], crafted(2464, DATA[:8], mf=False)])
    assert ip6(mib, "ReasmFails") == 1 and len(d) == 0


def test_data_beyond_the_last_fragment_discards_the_datagram():
    mib = Mib()
    d = Ipv6Defrag("B", mib)
    feed(d, [crafted(2464, DATA[:16], mf=False), crafted(2472, DATA[:32], mf=True)])
    assert ip6(mib, "ReasmFails") == 1 and len(d) == 0


def test_reassembled_packet_over_65535_bytes_counts_one_failure_and_drops_nothing():
    """Linux 6.18: 65535 bytes of fragmentable part after an 8-byte destination options header
    → Ip6ReasmFails 1, nothing else, no ICMPv6; pktpath names PKT_TOO_BIG in each record."""
    mib = Mib()
    d = Ipv6Defrag("B", mib)
    frags = [crafted(0, DATA[:1224], mf=True, destopt=True)]
    frags += [crafted(o, bytes(min(1232, 65528 - o)), mf=True, destopt=True) for o in range(1224, 65528, 1232)]
    frags.append(crafted(65528, b"w" * 7, mf=False, destopt=True))
    args = [rx(f) for f in frags]
    assert [d.queue(*a) for a in args] == [None] * len(frags)
    assert ip6(mib, "ReasmFails") == 1 and ip6(mib, "ReasmOKs") == 0
    assert mib.snapshot().get("Drops", {}) == {} and len(d) == 0 and d.mem == 0
    assert all(dropped_as(a[0]) == [("ip6_frag_reasm", pb.SKB_DROP_REASON_PKT_TOO_BIG)] for a in args)


def test_largest_legal_datagram_reassembles():
    """65535 bytes of payload after the IPv6 header: 65527 of UDP behind the fragment header's place."""
    d = Ipv6Defrag("B", Mib())
    whole = raw(IPv6(src=A, dst=B) / UDP(sport=5000, dport=7) / Raw(bytes(65535 - 8)))
    payload = whole[IPV6_HLEN:]
    frags = [crafted(o, payload[o:o + 1232], mf=o + 1232 < len(payload)) for o in range(0, len(payload), 1232)]
    r = feed(d, frags)[-1]
    assert r.hdr.payload_len == 65535 and bytes(r.skb.payload()) == whole


# -- ECN (RFC 3168 5.3) ------------------------------------------------------------------


def test_not_ect_fragment_among_ect_ones_discards_the_datagram():
    """Linux 6.18: Not-ECT, ECT(0), ECT(0) → Ip6ReasmFails 1, no drop traced."""
    mib = Mib()
    d = Ipv6Defrag("B", mib)
    _, frags = datagram(tc=2)
    _, plain = datagram()
    assert feed(d, [plain[0], frags[1], frags[2]]) == [None] * 3
    assert ip6(mib, "ReasmFails") == 1 and ip6(mib, "ReasmOKs") == 0
    assert mib.snapshot().get("Drops", {}) == {}


def test_ce_fragment_among_ect_ones_marks_the_datagram_ce():
    """Linux 6.18: ECT(0), CE, ECT(0) reassemble (Ip6ReasmOKs 1) into a CE packet."""
    d = Ipv6Defrag("B", Mib())
    _, ect = datagram(tc=0xB8 | 2)
    _, ce = datagram(tc=0xB8 | 3)
    r = feed(d, [ect[0], ce[1], ect[2]])[-1]
    assert r.hdr.tclass == 0xB8 | 3


# -- timeout ---------------------------------------------------------------------------


def test_expire_reports_the_first_fragment_and_drops_every_fragment():
    """Linux 6.18 with ip6frag_time: Ip6ReasmTimeout 1, Ip6ReasmFails 1, Time Exceeded code 1
    quoting the first fragment, the first dropped FRAG_REASM_TIMEOUT in ip6_frag_expire and
    the rest in inet_frag_rbtree_purge."""
    clock = Clock()
    mib = Mib()
    d = Ipv6Defrag("B", mib, clock=clock)
    _, frags = datagram()
    first, last = rx(frags[0], "b0"), rx(frags[2], "b1")
    assert d.queue(*first) is None and d.queue(*last) is None
    sent = []
    clock.t += IPV6_FRAG_TIMEOUT_S - 1
    assert d.expire(sent.append) == 0 and len(d) == 1
    clock.t += 1
    assert d.expire(lambda skb: sent.append((skb, skb.dev, bytes(s.skb_network_header(skb))))) == 1
    assert sent == [(first[0], "b1", frags[0])]  # the device of the latest fragment
    assert ip6(mib, "ReasmTimeout") == 1 and ip6(mib, "ReasmFails") == 1
    assert dropped_as(first[0]) == [("ip6_frag_expire", pb.SKB_DROP_REASON_FRAG_REASM_TIMEOUT)]
    assert dropped_as(last[0]) == [("inet_frag_rbtree_purge", pb.SKB_DROP_REASON_FRAG_REASM_TIMEOUT)]
    assert drops(mib, pb.SKB_DROP_REASON_FRAG_REASM_TIMEOUT) == 2
    assert len(d) == 0 and d.mem == 0


def test_expire_without_the_first_fragment_sends_nothing():
    clock = Clock()
    mib = Mib()
    d = Ipv6Defrag("B", mib, clock=clock)
    _, frags = datagram()
    d.queue(*rx(frags[1]))
    clock.t += IPV6_FRAG_TIMEOUT_S
    sent = []
    assert d.expire(sent.append) == 1
    assert sent == [] and ip6(mib, "ReasmTimeout") == 1 and ip6(mib, "ReasmFails") == 1
    assert drops(mib, pb.SKB_DROP_REASON_FRAG_REASM_TIMEOUT) == 1


def test_timeout_counts_from_the_queues_creation():
    """The timer is set when fq_find makes the queue; later fragments do not push it back."""
    clock = Clock()
    d = Ipv6Defrag("B", Mib(), clock=clock, timeout_s=2.0)
    _, frags = datagram()
    d.queue(*rx(frags[0]))
    clock.t += 1.5
    d.queue(*rx(frags[1]))
    clock.t += 0.5
    assert d.expire(lambda skb: None) == 1


# -- memory ----------------------------------------------------------------------------


def test_each_queue_and_fragment_counts_against_high_thresh():
    """Linux 6.18 (high_thresh 3000): the first two fragments are taken (FRAG6 memory 184 + 2304
    each), every one after is refused: Ip6ReasmFails, NOT_SPECIFIED, new datagrams too."""
    mib = Mib()
    d = Ipv6Defrag("B", mib, high_thresh=3000, low_thresh=0)
    _, frags = datagram(1)
    _, other = datagram(2)
    first = rx(frags[0])
    assert d.queue(*first) is None
    assert d.mem == FRAG_QUEUE_SIZE + s.skb_truesize(first[0].end)
    assert feed(d, [frags[1], frags[2], other[0]]) == [None] * 3
    assert ip6(mib, "ReasmFails") == 2 and drops(mib, pb.SKB_DROP_REASON_NOT_SPECIFIED) == 2
    assert len(d) == 1


def test_memory_is_given_back_when_a_datagram_completes():
    d = Ipv6Defrag("B", Mib())
    _, frags = datagram()
    feed(d, frags)
    assert d.mem == 0 and len(d) == 0
