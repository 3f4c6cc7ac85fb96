"""ICMP replies and counters (icmp_rcv, icmp_echo, icmp_timestamp) and IGMP (igmp_rcv) as Linux
6.18 answered the same packets sent into a network namespace (replies captured, counters
read from /proc/net/snmp and /proc/net/netstat, drop reasons from the kfree_skb tracepoint)."""

import pytest

from pktpath.pb import skbuff_pb2 as pb
from pktpath.wire import IcmpHdr, IpHdr
from pktpath.wire.addr import ip_from_str as ip
from pktpath.wire.checksum import ip_compute_csum
from pktpath.wire.icmp import ICMP_ECHOREPLY, ICMP_TIMESTAMPREPLY
from pktpath.wire.ipv4 import IPPROTO_ICMP, IPPROTO_IGMP, IPPROTO_UDP

from test_l3_ipv4 import A, PEER, host_a, icmp_of, packet, rx, udp_body

NOW = (1_700_000_000 % 86400 * 1000 + 250).to_bytes(4, "big")  # 22:13:20.250 UTC, the stacks' wall clock
SUBNET_BCAST, LIMITED_BCAST = ip("10.0.0.255"), ip("255.255.255.255")


def icmp(type_: int, code: int = 0, un: int = 0, data: bytes = b"") -> bytes:
    return IcmpHdr(type_, code, un).to_bytes(data) + data


def checksummed(msg: bytes) -> bytes:
    """An IGMP (or ICMP) message with its checksum filled in."""
    msg = msg[:2] + b"\0\0" + msg[4:]
    return msg[:2] + ip_compute_csum(msg).to_bytes(2, "big") + msg[4:]


def counts(h, *groups) -> dict:
    snap = h.mib.snapshot()
    out = {g: dict(snap.get(g, {})) for g in groups}
    out.get("Ip", {}).pop("Forwarding", None)
    out.get("Ip", {}).pop("DefaultTTL", None)
    return out


# -- echo ------------------------------------------------------------------------------------

def test_an_echo_reply_copies_the_requests_code_identifier_sequence_and_data():
    h = host_a()
    assert h.ip.ip_rcv(rx(packet(PEER, A, IPPROTO_ICMP, icmp(8, 5, 0x0009_0003, b"hello!!!")))) == 0
    (out,) = h.l2
    iph, icmph, data = icmp_of(out)
    assert (icmph.type, icmph.code, icmph.echo_id, icmph.echo_sequence, data) == (ICMP_ECHOREPLY, 5, 9, 3, b"hello!!!")
    assert not iph.df  # the ICMP socket never sets DF: its id comes from the counter
    assert h.mib.get("Icmp", "OutEchoReps") == 1 and h.mib.get("IcmpMsg", "OutType0") == 1


def test_an_echo_to_our_address_in_a_link_layer_broadcast_is_answered():
    """The route decides (RTCF_BROADCAST), not the frame: Linux answered it."""
    h = host_a()
    assert h.ip.ip_rcv(rx(packet(PEER, A, IPPROTO_ICMP, icmp(8, 0, 1, b"xxxx")), pkt_type=pb.PACKET_BROADCAST)) == 0
    (out,) = h.l2
    assert icmp_of(out)[1].type == ICMP_ECHOREPLY
    assert h.mib.get("IpExt", "InBcastPkts") == 0


# -- timestamp -------------------------------------------------------------------------------

def test_a_timestamp_request_gets_a_timestamp_reply_in_ms_since_midnight_utc():
    """icmp_timestamp: type 14, code 0 whatever the request's; its id, sequence and originate
    time, then receive and transmit times both now; the rest of the request is not copied.
    Linux counts the reply as an echo reply (icmp_reply's fl4_icmp_type is 0)."""
    h = host_a()
    request = icmp(13, 3, 0x0009_0004, (1234).to_bytes(4, "big") + bytes(8) + b"extra")
    assert h.ip.ip_rcv(rx(packet(PEER, A, IPPROTO_ICMP, request))) == 0
    (out,) = h.l2
    iph, icmph, data = icmp_of(out)
    assert (icmph.type, icmph.code, icmph.echo_id, icmph.echo_sequence) == (ICMP_TIMESTAMPREPLY, 0, 9, 4)
    assert data == (1234).to_bytes(4, "big") + NOW + NOW and iph.tot_len == 20 + 20
    assert (iph.saddr, iph.daddr) == (A, PEER)
    assert counts(h, "Icmp", "IcmpMsg") == {
        "Icmp": {"InMsgs": 1, "InTimestamps": 1, "OutMsgs": 1, "OutEchoReps": 1},
        "IcmpMsg": {"InType13": 1, "OutType0": 1}}


def test_a_timestamp_request_shorter_than_its_originate_time_is_dropped():
    h = host_a()
    assert h.ip.ip_rcv(rx(packet(PEER, A, IPPROTO_ICMP, icmp(13, 0, 0x0009_0005, b"\1\2\3")))) == \
        pb.SKB_DROP_REASON_PKT_TOO_SMALL
    assert h.mib.get("Icmp", "InErrors") == 1 and h.mib.get("Icmp", "InTimestamps") == 1 and h.l2 == []


@pytest.mark.parametrize("type_, counter", [(14, "InTimestampReps"), (17, "InAddrMasks")])
def test_timestamp_replies_and_address_mask_requests_are_consumed_unanswered(type_, counter):
    h = host_a()
    assert h.ip.ip_rcv(rx(packet(PEER, A, IPPROTO_ICMP, icmp(type_, 0, 0, bytes(12))))) == 0
    assert h.mib.get("Icmp", counter) == 1 and h.mib.get("Icmp", "InErrors") == 0 and h.l2 == [] and h.l4 == []


# -- broadcast ----------------------------------------------------------------------------

@pytest.mark.parametrize("daddr", [SUBNET_BCAST, LIMITED_BCAST])
def test_a_broadcast_echo_counts_inerrors_and_inbcastpkts_and_is_not_answered(daddr):
    """icmp_echo_ignore_broadcasts = 1: Linux counted InMsgs, InEchos (InType8), InErrors,
    InDelivers, InBcastPkts and InBcastOctets, and dropped it as INVALID_PROTO."""
    h = host_a()
    raw = packet(PEER, daddr, IPPROTO_ICMP, icmp(8, 0, 0x0001_0001, b"xxxx"))
    assert h.ip.ip_rcv(rx(raw, pkt_type=pb.PACKET_BROADCAST)) == pb.SKB_DROP_REASON_INVALID_PROTO
    assert counts(h, "Ip", "IpExt", "Icmp", "IcmpMsg") == {
        "Ip": {"InReceives": 1, "InDelivers": 1},
        "IpExt": {"InOctets": 32, "InBcastPkts": 1, "InBcastOctets": 32},
        "Icmp": {"InMsgs": 1, "InEchos": 1, "InErrors": 1},
        "IcmpMsg": {"InType8": 1}}
    assert h.drops(pb.SKB_DROP_REASON_INVALID_PROTO) == 1 and h.l2 == []


@pytest.mark.parametrize("type_, counter", [(13, "InTimestamps"), (0, "InEchoReps")])
def test_other_broadcast_icmp_is_an_error_too(type_, counter):
    h = host_a()
    raw = packet(PEER, SUBNET_BCAST, IPPROTO_ICMP, icmp(type_, 0, 0x0001_0001, bytes(12)))
    assert h.ip.ip_rcv(rx(raw, pkt_type=pb.PACKET_BROADCAST)) == pb.SKB_DROP_REASON_INVALID_PROTO
    assert h.mib.get("Icmp", counter) == 1 and h.mib.get("Icmp", "InErrors") == 1
    assert h.l2 == [] and h.l4 == []


def test_a_broadcast_address_mask_request_is_taken():
    h = host_a()
    raw = packet(PEER, SUBNET_BCAST, IPPROTO_ICMP, icmp(17, 0, 0, bytes(4)))
    assert h.ip.ip_rcv(rx(raw, pkt_type=pb.PACKET_BROADCAST)) == 0
    assert h.mib.get("Icmp", "InAddrMasks") == 1 and h.mib.get("Icmp", "InErrors") == 0
    assert h.mib.get("IpExt", "InBcastPkts") == 1 and h.mib.get("IpExt", "InBcastOctets") == 32


def test_a_broadcast_udp_datagram_counts_inbcastpkts():
    h = host_a()
    raw = packet(PEER, LIMITED_BCAST, IPPROTO_UDP, udp_body(PEER, LIMITED_BCAST))
    assert h.ip.ip_rcv(rx(raw, pkt_type=pb.PACKET_BROADCAST)) == 0
    assert h.mib.get("IpExt", "InBcastPkts") == 1 and h.mib.get("IpExt", "InBcastOctets") == len(raw)


# -- unknown types ---------------------------------------------------------------------------

def test_an_unknown_icmp_type_counts_its_type_and_inerrors():
    h = host_a()
    assert h.ip.ip_rcv(rx(packet(PEER, A, IPPROTO_ICMP, icmp(40)))) == pb.SKB_DROP_REASON_UNHANDLED_PROTO
    assert counts(h, "Icmp", "IcmpMsg") == {"Icmp": {"InMsgs": 1, "InErrors": 1}, "IcmpMsg": {"InType40": 1}}


def test_a_probe_is_refused_silently_while_icmp_echo_enable_probe_is_off():
    h = host_a()
    assert h.ip.ip_rcv(rx(packet(PEER, A, IPPROTO_ICMP, icmp(42, 0, 0x0001_0100, bytes(8))))) == 0
    assert h.mib.get("IcmpMsg", "InType42") == 1 and h.mib.get("Icmp", "InErrors") == 0 and h.l2 == []


# -- IGMP ------------------------------------------------------------------------------------

def igmp(type_: int, max_resp: int = 0, group: str = "0.0.0.0", extra: bytes = b"") -> bytes:
    return checksummed(bytes([type_, max_resp, 0, 0]) + ip(group).to_bytes(4, "big") + extra)


def test_igmp_is_not_answered_with_protocol_unreachable():
    """IGMP has a handler (igmp_rcv): a unicast report is freed with no reason and no counter
    besides InDelivers; no InUnknownProtos, no ICMP."""
    h = host_a()
    assert h.ip.ip_rcv(rx(packet(PEER, A, IPPROTO_IGMP, igmp(0x16, 0, "224.1.2.3")))) == \
        pb.SKB_DROP_REASON_NOT_SPECIFIED
    assert counts(h, "Ip", "Icmp") == {"Ip": {"InReceives": 1, "InDelivers": 1}, "Icmp": {}}
    assert h.l2 == [] and h.l4 == []


@pytest.mark.parametrize("message, pkt_type", [
    (igmp(0x11, 100), pb.PACKET_HOST),                                 # an IGMPv2 general query
    (igmp(0x16, 0, "224.1.2.3"), pb.PACKET_BROADCAST),                # a report heard on the link
    (igmp(0x11, 100, extra=bytes(4)), pb.PACKET_HOST),                # an IGMPv3 general query
])
def test_igmp_a_host_hears_is_consumed(message, pkt_type):
    h = host_a()
    daddr = A if pkt_type == pb.PACKET_HOST else SUBNET_BCAST
    assert h.ip.ip_rcv(rx(packet(PEER, daddr, IPPROTO_IGMP, message), pkt_type=pkt_type)) == 0
    assert h.drops(pb.SKB_DROP_REASON_NOT_SPECIFIED) == 0 and h.mib.get("Ip", "InDelivers") == 1


@pytest.mark.parametrize("message", [
    igmp(0x99, 0, "224.1.2.3"),                             # a type igmp_rcv does not handle
    igmp(0x11, 100)[:2] + b"\xff\xff" + bytes(4),            # a bad checksum
    checksummed(bytes([0x16, 0, 0, 0])),                    # shorter than an IGMP header
    igmp(0x11, 100, extra=b"\0"),                           # a 9-byte query: bogus
    igmp(0x11, 100, extra=bytes([0, 0, 0, 1]) + bytes(4)),  # an IGMPv3 general query naming a source
])
def test_igmp_it_does_not_hear_is_freed_without_a_reason(message):
    h = host_a()
    assert h.ip.ip_rcv(rx(packet(PEER, A, IPPROTO_IGMP, message))) == pb.SKB_DROP_REASON_NOT_SPECIFIED
    assert h.mib.get("Ip", "InUnknownProtos") == 0 and h.l2 == []


def test_an_unknown_protocol_still_gets_protocol_unreachable():
    h = host_a()
    assert h.ip.ip_rcv(rx(packet(PEER, A, 99, b"xxxxxxxx"))) == pb.SKB_DROP_REASON_IP_NOPROTO
    (out,) = h.l2
    assert icmp_of(out)[1].code == 2 and IpHdr.from_bytes(out.payload()).tos == 0xC0
