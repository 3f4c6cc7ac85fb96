"""sk_buff helpers: geometry, bounds, clone vs copy, events, protobuf round trip."""

import pytest

from pktpath import skbuff as s
from pktpath.pb import skbuff_pb2 as pb

HOST = "A"


def make(payload: bytes = b"payload", headroom: int = 64, tailroom: int = 16) -> s.SkBuff:
    skb = s.alloc_skb(headroom + len(payload) + tailroom, origin_host=HOST)
    s.skb_reserve(skb, headroom)
    s.skb_put_data(skb, payload)
    return skb


def test_alloc_reserve_put_geometry():
    skb = make(b"abc", headroom=10, tailroom=5)
    assert (skb.headroom(), skb.len, skb.tailroom()) == (10, 3, 5)
    assert bytes(skb.payload()) == b"abc"


def test_push_writes_header_in_headroom_without_moving_data():
    skb = make(b"data", headroom=8)
    before = skb.buf
    s.skb_push_data(skb, b"HDR")
    assert bytes(skb.payload()) == b"HDRdata"
    assert skb.buf is before  # no reallocation: the header went into headroom
    assert skb.headroom() == 5


def test_push_past_headroom_is_an_error_not_corruption():
    skb = make(b"data", headroom=4)
    with pytest.raises(s.SkbError, match="skb_under_panic"):
        s.skb_push(skb, 5)
    assert (skb.headroom(), bytes(skb.payload())) == (4, b"data")  # untouched
    s.skb_push(skb, 4)
    assert skb.headroom() == 0


def test_put_past_tailroom_is_an_error():
    skb = make(b"x", tailroom=2)
    with pytest.raises(s.SkbError, match="skb_over_panic"):
        s.skb_put_data(skb, b"abc")
    assert skb.len == 1


def test_pull_strips_without_copy_and_checks_length():
    skb = make(b"ETHHDRpayload")
    buf = skb.buf
    s.skb_pull(skb, 6)
    assert bytes(skb.payload()) == b"payload" and skb.buf is buf
    with pytest.raises(s.SkbError):
        s.skb_pull(skb, 8)
    assert skb.len == 7
    assert s.pskb_may_pull(skb, 7) and not s.pskb_may_pull(skb, 8)


def test_reserve_only_on_empty_skb():
    skb = make(b"x")
    with pytest.raises(s.SkbError):
        s.skb_reserve(skb, 1)


def test_trim_drops_padding():
    skb = make(b"ip-packet\x00\x00\x00")
    s.skb_trim(skb, 9)
    assert bytes(skb.payload()) == b"ip-packet"
    s.skb_trim(skb, 100)  # never grows
    assert skb.len == 9


def test_header_offsets():
    skb = make(b"E" * 14 + b"I" * 20 + b"U" * 8)
    s.skb_reset_mac_header(skb)
    s.skb_set_network_header(skb, 14)
    s.skb_set_transport_header(skb, 34)
    assert bytes(s.skb_network_header(skb)[:1]) == b"I"
    assert bytes(s.skb_transport_header(skb)[:1]) == b"U"
    assert bytes(s.skb_mac_header(skb)[:1]) == b"E"
    with pytest.raises(s.SkbError):
        s.skb_set_network_header(skb, 100)


def test_clone_shares_data_and_records_clone():
    skb = make(b"shared")
    clone = s.skb_clone(skb, pb.LAYER_L4, HOST, "tcp_transmit_skb")
    assert clone.buf is skb.buf and clone.id != skb.id and clone.clone_of == skb.id
    assert skb.cloned() and clone.cloned()
    kinds = [e[0] for e in clone.events]
    assert kinds == [s.CLONE] and clone.events[0][5] == s.SKB_HEADER_SIZE
    # the header is the clone's own: pulling it does not move the original
    s.skb_pull(clone, 2)
    assert bytes(skb.payload()) == b"shared" and bytes(clone.payload()) == b"ared"
    # writing into shared tailroom is refused
    with pytest.raises(s.SkbError, match="cloned"):
        s.skb_put_data(clone, b"!")


def test_copy_does_not_share_and_records_copy_bytes():
    skb = make(b"private", headroom=32)
    copy = s.skb_copy(skb, pb.LAYER_L3, HOST, "ip_fragment")
    assert copy.buf is not skb.buf and copy.copy_of == skb.id and not skb.cloned()
    copy.buf[copy.data] = ord("P")
    assert bytes(skb.payload()) == b"private" and bytes(copy.payload()) == b"Private"
    (event,) = copy.events
    assert event[0] == s.COPY and event[5] == 32 + 7  # headroom + data, as the kernel copies


def test_drop_records_reason_and_free_counts_references():
    skb = make(b"x")
    clone = s.skb_clone(skb, pb.LAYER_L4, HOST)
    s.consume_skb(clone, pb.LAYER_NIC, HOST)
    assert clone.events[-1][0] == s.FREE and clone.events[-1][5] == 0  # data still referenced
    s.kfree_skb_reason(skb, pb.SKB_DROP_REASON_NO_SOCKET, pb.LAYER_L4, HOST, "udp_rcv")
    drop, free = skb.events[-2:]
    assert drop[0] == s.DROP and drop[6] == pb.SKB_DROP_REASON_NO_SOCKET and drop[3] == "udp_rcv"
    assert free[0] == s.FREE and free[5] == skb.end  # last reference: the buffer goes
    with pytest.raises(s.SkbError):
        s.kfree_skb_reason(make(), pb.SKB_CONSUMED, pb.LAYER_L4, HOST, "x")


def test_unsampled_packets_record_no_events():
    skb = s.alloc_skb(10, sampled=False)
    skb.record(s.ENTER, pb.LAYER_L2, HOST, "netif_receive_skb")
    s.skb_clone(skb, pb.LAYER_L2, HOST)
    assert skb.events == [] and skb.all_events() == []


def test_proto_round_trip_keeps_geometry_lineage_and_events():
    skb = make(b"\x01\x02\x03", headroom=20, tailroom=9)
    skb.protocol, skb.dev, skb.mark, skb.sk, skb.cb = 0x0800, "eth0", 7, 42, b"\x09"
    skb.traceparent = "00-" + "1" * 32 + "-" + "2" * 16 + "-01"
    s.skb_reset_network_header(skb)
    skb.record(s.ENTER, pb.LAYER_L3, HOST, "ip_rcv", skb.len)
    msg = s.to_proto(skb)
    assert len(msg.buf) == skb.tail  # tailroom is not sent
    wire = msg.SerializeToString()
    back = s.from_proto(pb.SkBuff.FromString(wire))
    assert bytes(back.payload()) == b"\x01\x02\x03"
    assert (back.headroom(), back.tailroom(), back.end) == (20, 9, skb.end)
    for field in ("id", "origin_host", "protocol", "dev", "mark", "sk", "cb", "traceparent", "network_header"):
        assert getattr(back, field) == getattr(skb, field), field
    assert [e[:4] for e in back.all_events()] == [(s.ENTER, pb.LAYER_L3, HOST, "ip_rcv")]
    # a later hop appends to the earlier hops' events
    back.record(s.EXIT, pb.LAYER_L3, "B", "ip_local_deliver")
    again = s.from_proto(s.to_proto(back))
    assert [e[0] for e in again.all_events()] == [s.ENTER, s.EXIT]
    # the received buffer is read-only until a layer writes: then it becomes private
    assert type(again.buf) is bytes
    s.skb_push_data(again, b"\xaa")
    assert bytes(again.payload()) == b"\xaa\x01\x02\x03" and again.tailroom() == 9


def test_from_proto_rejects_inconsistent_geometry():
    msg = pb.SkBuff(buf=b"abc", data=2, tail=1, end=5)
    with pytest.raises(s.SkbError):
        s.from_proto(msg)


@pytest.mark.parametrize("lie", [
    {"end": 0xFFFFFFFF},                 # 4 GiB of tailroom for writable() to allocate
    {"end": s.SKB_MAX_END + 1},
    {"network_header": 11},              # a header past tail
    {"transport_header": 0xFFFE},
    {"gso_size": 1},                     # 60 kB in 1-byte segments: 60,000 frames
    {"gso_size": 1 << 31},
    {"gso_segs": 100_000},
])
def test_an_skb_that_lies_about_its_buffer_is_refused_where_it_enters(lie):
    fields = {"buf": b"0123456789", "data": 4, "tail": 10, "end": 64, "mac_header": s.UNSET, "network_header": 4,
              "transport_header": s.UNSET}
    s.from_proto(pb.SkBuff(**fields))  # what it would be without the lie
    msg = pb.SkBuff(**{**fields, **lie})
    with pytest.raises(s.SkbError):
        s.from_proto(msg)


def test_one_bad_skb_of_a_batch_is_dropped_alone_and_counted():
    from pktpath.counters import Mib

    good = s.to_proto(make(b"fine"))
    bad = s.to_proto(make(b"liar"))
    bad.end = 0xFFFFFFFF
    mib = Mib()
    skbs = s.from_protos([good, bad, good], mib)
    assert [bytes(k.payload()) for k in skbs] == [b"fine", b"fine"]
    assert mib.get("Drops", "PKTPATH_DROP_REASON_BAD_SKB") == 1


def test_packet_ids_unique_and_tagged_by_layer():
    ids = s.PacketIds(pb.LAYER_NIC)
    got = {ids() for _ in range(1000)}
    assert len(got) == 1000 and all(i >> 56 == pb.LAYER_NIC for i in got)


def test_proto_round_trip_carries_every_field():
    """to_proto leaves defaults unset and from_proto sets slots directly: neither may forget one."""
    skb = make(b"payload", headroom=30, tailroom=5)
    values = dict(origin_host="A", clone_of=3, copy_of=4, mac_header=30, network_header=31, transport_header=32,
                  protocol=0x0806, dev="eth1", pkt_type=pb.PACKET_BROADCAST, mark=5, priority=6, sk=7, truesize=8,
                  cb=b"cb",
                  nexthop=0x0A000001, tstamp=1_764_000_000_123_456_789, ip_summed=1, gso_size=1448, gso_segs=3,
                  traceparent="00-" + "3" * 32 + "-" + "4" * 16 + "-01", sampled=True)
    skipped = {"buf", "events", "prior_events", "shinfo"}
    geometry = {"id", "data", "tail", "end"}  # set by make()
    assert set(s.SkBuff.__slots__) == set(values) | skipped | geometry, "give a new field a value here"
    for name, value in values.items():
        setattr(skb, name, value)
    back = s.from_proto(pb.SkBuff.FromString(s.to_proto(skb).SerializeToString()))
    for name in s.SkBuff.__slots__:
        if name not in skipped:
            assert getattr(back, name) == getattr(skb, name), name
    assert bytes(back.payload()) == b"payload" and not back.cloned()


def test_a_sampled_skb_freed_reaches_the_finish_hook_with_its_events():
    finished = []
    s.set_finish_hook(finished.append)
    try:
        sampled, unsampled = make(b"x"), make(b"y")
        unsampled.sampled = False
        s.consume_skb(sampled, pb.LAYER_SOCKET, HOST, "skb_consume_udp")
        s.kfree_skb_reason(unsampled, pb.SKB_DROP_REASON_NO_SOCKET, pb.LAYER_L4, HOST, "udp_rcv")
    finally:
        s.set_finish_hook(None)
    assert finished == [sampled] and finished[0].events[-1][0] == s.FREE
