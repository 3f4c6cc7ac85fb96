"""IPv4 options on receive (ip_rcv_options → ip_options_compile), in replies (ip_options_echo,
ip_options_build) and when forwarding (ip_forward_options).

Each expectation is what Linux 6.18 did with the same bytes sent into a network
namespace: the reply's header, the ICMP parameter problem's pointer, the counters in
/proc/net/snmp and the drop reason the kfree_skb tracepoint gave.
"""

import pytest

from pktpath.pb import skbuff_pb2 as pb
from pktpath.services.l3.input import IpOptions, ip_options_build, ip_options_compile, ip_options_echo
from pktpath.wire import IcmpHdr, IpHdr
from pktpath.wire.addr import ip_from_str as ip
from pktpath.wire.checksum import verifies
from pktpath.wire.icmp import ICMP_ECHOREPLY, ICMP_PARAMETERPROB, quoted
from pktpath.wire.ipv4 import IPPROTO_ICMP, IPPROTO_UDP

from test_l3_ipv4 import A, A1, B1, PEER, R1, host_a, icmp_of, router, rx, udp_body

NOW = (1_700_000_000 % 86400 * 1000 + 250).to_bytes(4, "big")  # the stacks' wall clock, ms since midnight UTC
A_, PEER_ = A.to_bytes(4, "big"), PEER.to_bytes(4, "big")


def with_options(opts: bytes, *, saddr: int = PEER, daddr: int = A, proto: int = IPPROTO_ICMP,
                 body: bytes | None = None, ttl: int = 64) -> bytes:
    """A packet whose header carries `opts` (padded with END to a word)."""
    if body is None:
        body = IcmpHdr.echo(7, 1).to_bytes(b"abcdefgh") + b"abcdefgh"
    return IpHdr(saddr, daddr, proto, ttl=ttl, id=9, options=opts).to_bytes(len(body)) + body


def reply_options(h) -> bytes:
    (out,) = h.l2
    iph, icmph, _ = icmp_of(out)
    assert icmph.type == ICMP_ECHOREPLY and iph.saddr == A and iph.daddr == PEER
    return iph.options


# -- malformed options -------------------------------------------------------------------

@pytest.mark.parametrize("opts, pointer", [
    (bytes([7, 11, 3]) + bytes(8), 22),                  # record route pointer < 4
    (bytes([7, 2, 1, 1]), 21),                           # record route shorter than 3
    (bytes([7, 12, 4]) + bytes(5), 20),                  # longer than what is left of the header
    (bytes([7, 9, 8]) + bytes(6), 22),                   # pointer + 3 past its end
    (bytes([7, 7, 4]) + bytes(4) + bytes([7, 7, 4]) + bytes(4), 27),  # a second record route
    (bytes([68, 3, 5, 0]), 21),                          # timestamp shorter than 4
    (bytes([68, 12, 4, 0]) + bytes(8), 22),              # timestamp pointer < 5
    (bytes([68, 12, 13, 0xF0]) + bytes(8), 23),          # full, and its overflow count is at 15
    (bytes([68, 8, 5, 1]) + bytes(4), 22),               # address and time, no room for both
    (bytes([148, 3, 0, 0]), 21),                         # router alert shorter than 4
    (bytes([0x99, 1, 0, 0]), 20),                        # an option length below 2
    (bytes([1, 1, 1, 0x99]), 23),                        # an option with no room for its length
    (bytes([131, 7, 3, 10, 0, 0, 9, 1]), 22),            # loose source route pointer < 4
    (bytes([134, 10, 0, 0, 0, 1, 1, 4, 0, 0]), 22),      # CIPSO: no such DOI (no NetLabel configured)
    (bytes([134, 6, 0, 0, 0, 1]), 21),                   # CIPSO shorter than 8
])
def test_a_malformed_option_gets_parameter_problem_pointing_at_the_fault(opts, pointer):
    h = host_a()
    raw = with_options(opts)
    assert h.ip.ip_rcv(rx(raw)) == pb.SKB_DROP_REASON_IP_INHDR
    assert h.mib.get("Ip", "InHdrErrors") == 1 and h.drops(pb.SKB_DROP_REASON_IP_INHDR) == 1
    assert h.mib.get("Ip", "InDelivers") == 0 and h.mib.get("Icmp", "InMsgs") == 0 and h.l4 == []
    (out,) = h.l2
    iph, icmph, body = icmp_of(out)
    assert (icmph.type, icmph.code, icmph.un) == (ICMP_PARAMETERPROB, 0, pointer << 24)
    assert (iph.saddr, iph.daddr, iph.tos) == (A, PEER, 0xC0)
    quoted_options = quoted(icmph.to_bytes(body) + body)[0].options
    assert quoted_options[pointer - 20:] == IpHdr.from_bytes(raw).options[pointer - 20:]
    assert h.mib.get("Icmp", "OutParmProbs") == 1 and h.mib.get("IcmpMsg", "OutType12") == 1


def test_the_error_quotes_what_was_compiled_before_the_fault():
    """Two record routes: the first got our address before the second was refused, and the
    quoted header shows it, as Linux's did (07 07 08 0a4d0002 07 07 04 ...)."""
    h = host_a()
    h.ip.ip_rcv(rx(with_options(bytes([7, 7, 4]) + bytes(4) + bytes([7, 7, 4]) + bytes(4))))
    (out,) = h.l2
    _, icmph, body = icmp_of(out)
    assert quoted(icmph.to_bytes(body) + body)[0].options == bytes([7, 7, 8]) + A_ + bytes([7, 7, 4]) + bytes(6)


def test_a_udp_datagram_with_a_malformed_option_is_not_delivered():
    h = host_a()
    raw = with_options(bytes([7, 11, 3]) + bytes(8), proto=IPPROTO_UDP, body=udp_body(PEER, A))
    assert h.ip.ip_rcv(rx(raw)) == pb.SKB_DROP_REASON_IP_INHDR
    (out,) = h.l2
    _, icmph, body = icmp_of(out)
    inner, rest = quoted(icmph.to_bytes(body) + body)
    assert inner.protocol == IPPROTO_UDP and rest[:8] == udp_body(PEER, A)[:8] and h.l4 == []


def test_options_are_checked_before_a_host_refuses_what_is_not_for_it():
    """Linux routes a packet for someone else to ip_error, which runs after ip_rcv_options."""
    h = host_a()
    bad = with_options(bytes([7, 11, 3]) + bytes(8), daddr=ip("10.0.0.99"))
    assert h.ip.ip_rcv(rx(bad)) == pb.SKB_DROP_REASON_IP_INHDR
    assert h.mib.get("Ip", "InHdrErrors") == 1 and h.mib.get("Ip", "InAddrErrors") == 0
    (out,) = h.l2
    assert icmp_of(out)[1].type == ICMP_PARAMETERPROB and IpHdr.from_bytes(out.payload()).saddr == A
    good = with_options(bytes([7, 11, 4]) + bytes(8), daddr=ip("10.0.0.99"))
    assert h.ip.ip_rcv(rx(good)) == pb.SKB_DROP_REASON_IP_INADDRERRORS
    assert h.mib.get("Ip", "InAddrErrors") == 1 and len(h.l2) == 1


def test_a_malformed_option_to_a_broadcast_is_dropped_without_an_error_or_a_broadcast_count():
    h = host_a()
    raw = with_options(bytes([7, 11, 3]) + bytes(8), daddr=ip("10.0.0.255"))
    assert h.ip.ip_rcv(rx(raw, pkt_type=pb.PACKET_BROADCAST)) == pb.SKB_DROP_REASON_IP_INHDR
    assert h.mib.get("Ip", "InHdrErrors") == 1 and h.mib.get("IpExt", "InBcastPkts") == 0 and h.l2 == []


def test_a_martian_source_is_refused_before_its_options_are_read():
    h = host_a()
    raw = with_options(bytes([7, 11, 3]) + bytes(8), saddr=ip("127.0.0.1"))
    assert h.ip.ip_rcv(rx(raw)) == pb.SKB_DROP_REASON_IP_LOCALNET
    assert h.mib.get("Ip", "InHdrErrors") == 0 and h.l2 == []


# -- source routes ------------------------------------------------------------------------

@pytest.mark.parametrize("opts", [
    bytes([131, 7, 4, 10, 0, 0, 9, 1]),   # loose
    bytes([137, 7, 4, 10, 0, 0, 9, 1]),   # strict
    bytes([131, 7, 8, 10, 0, 0, 9, 1]),   # loose, its route already used up
])
@pytest.mark.parametrize("daddr", [A, ip("10.0.0.99")])
def test_a_source_routed_packet_is_dropped_without_a_reason_or_a_counter(opts, daddr):
    """accept_source_route is 0: Linux 6.18 frees it in ip_rcv_finish_core as NOT_SPECIFIED
    and counts nothing but InReceives; no ICMP."""
    h = host_a()
    assert h.ip.ip_rcv(rx(with_options(opts, daddr=daddr))) == pb.SKB_DROP_REASON_NOT_SPECIFIED
    assert h.drops(pb.SKB_DROP_REASON_NOT_SPECIFIED) == 1
    assert {g: c for g, c in h.mib.snapshot().items() if g in ("Ip", "Icmp")} == {
        "Ip": {"Forwarding": 2, "DefaultTTL": 64, "InReceives": 1}}
    assert h.l2 == [] and h.l4 == []


# -- accepted options and the reply's -----------------------------------------------------

@pytest.mark.parametrize("opts", [
    bytes([148, 4, 0, 0]),              # router alert
    bytes([0x99, 4, 0, 0]),             # an unknown option
    bytes([130, 11]) + bytes(9),        # security
    bytes([0, 0x99, 7, 7]),             # END, then bytes that are not looked at
])
def test_options_that_are_not_echoed_are_accepted_and_the_reply_has_none(opts):
    h = host_a()
    assert h.ip.ip_rcv(rx(with_options(opts))) == 0
    assert reply_options(h) == b"" and h.mib.get("Icmp", "OutEchoReps") == 1


def test_bytes_after_end_become_end_in_the_received_header():
    buf = bytearray(with_options(bytes([0, 0x99, 7, 7])))
    opt, pointer = ip_options_compile(buf, 0, 24, spec_dst=lambda: A, unicast=lambda a: True, now_ms=lambda: 0)
    assert pointer == 0 and opt.is_changed and buf[20:24] == bytes(4)


def test_record_route_is_written_on_receive_and_again_in_the_reply():
    """ping -R: the request records the address it came to, the reply ours again."""
    h = host_a()
    assert h.ip.ip_rcv(rx(with_options(bytes([7, 39, 4]) + bytes(36)))) == 0
    assert reply_options(h) == bytes([7, 39, 12]) + A_ + A_ + bytes(28) + bytes(1)


def test_a_one_slot_record_route_comes_back_with_the_address_written_on_receive():
    h = host_a()
    assert h.ip.ip_rcv(rx(with_options(bytes([1, 7, 7, 4]) + bytes(4)))) == 0
    assert reply_options(h) == bytes([7, 7, 8]) + A_ + bytes(1)   # the NOOP is not echoed


def test_a_full_record_route_is_echoed_unchanged():
    h = host_a()
    assert h.ip.ip_rcv(rx(with_options(bytes([7, 11, 12]) + bytes(8)))) == 0
    assert reply_options(h) == bytes([7, 11, 12]) + bytes(8) + bytes(1)


def test_no_reply_when_the_record_route_has_room_for_the_request_only():
    """__ip_options_echo's -EINVAL: icmp_reply sends nothing and counts nothing."""
    h = host_a()
    assert h.ip.ip_rcv(rx(with_options(bytes([7, 9, 4]) + bytes(6)))) == 0
    assert h.l2 == [] and h.mib.get("Icmp", "InEchos") == 1 and h.mib.get("Icmp", "OutMsgs") == 0


def test_timestamps_are_written_on_receive_and_in_the_reply():
    h = host_a()
    assert h.ip.ip_rcv(rx(with_options(bytes([68, 12, 5, 0]) + bytes(8)))) == 0
    assert reply_options(h) == bytes([68, 12, 13, 0]) + NOW + NOW


def test_timestamp_with_addresses_records_ours_with_each_time():
    h = host_a()
    assert h.ip.ip_rcv(rx(with_options(bytes([68, 20, 5, 1]) + bytes(16)))) == 0
    assert reply_options(h) == bytes([68, 20, 21, 1]) + A_ + NOW + A_ + NOW


def test_a_prespecified_timestamp_is_filled_for_our_address_only():
    h = host_a()
    assert h.ip.ip_rcv(rx(with_options(bytes([68, 12, 5, 3]) + A_ + bytes(4)))) == 0
    assert reply_options(h) == bytes([68, 12, 13, 3]) + A_ + NOW
    h = host_a()
    assert h.ip.ip_rcv(rx(with_options(bytes([68, 12, 5, 3]) + PEER_ + bytes(4)))) == 0
    assert reply_options(h) == bytes([68, 12, 5, 3]) + PEER_ + bytes(4)


def test_a_full_timestamp_counts_an_overflow():
    h = host_a()
    assert h.ip.ip_rcv(rx(with_options(bytes([68, 12, 13, 0x20]) + bytes(8)))) == 0
    assert reply_options(h) == bytes([68, 12, 13, 0x30]) + bytes(8)


def test_an_unknown_timestamp_flag_is_left_alone():
    h = host_a()
    assert h.ip.ip_rcv(rx(with_options(bytes([68, 12, 5, 5]) + bytes(8)))) == 0
    assert reply_options(h) == bytes([68, 12, 5, 5]) + bytes(8)


def test_record_route_and_timestamp_together():
    h = host_a()
    assert h.ip.ip_rcv(rx(with_options(bytes([7, 11, 4]) + bytes(8) + bytes([68, 20, 5, 1]) + bytes(16)))) == 0
    assert reply_options(h) == bytes([7, 11, 12]) + A_ + A_ + bytes([68, 20, 21, 1]) + A_ + NOW + A_ + NOW + bytes(1)


def test_the_delivered_header_still_verifies_after_the_options_changed_it():
    h = host_a()
    raw = with_options(bytes([7, 11, 4]) + bytes(8), proto=IPPROTO_UDP, body=udp_body(PEER, A))
    assert h.ip.ip_rcv(rx(raw)) == 0
    ((kind, skb),) = h.l4
    header = bytes(skb.buf[skb.network_header:skb.network_header + 32])
    assert kind == "udp" and verifies(header) and header[20:27] == bytes([7, 11, 8]) + A_


def test_echo_and_build_as_the_kernel_lays_them_out():
    header = bytes(20) + bytes([7, 11, 8]) + PEER_ + bytes(4) + bytes(1)
    dopt, opts = ip_options_echo(header, IpOptions(optlen=12, rr=20, rr_needaddr=True), unicast=lambda a: True)
    assert (dopt.rr, dopt.rr_needaddr, dopt.optlen) == (20, True, 12)
    built = bytearray(opts)
    ip_options_build(built, dopt, A, 0)
    assert bytes(built) == bytes([7, 11, 12]) + PEER_ + A_ + bytes(1)


# -- forwarding ----------------------------------------------------------------------------

def test_a_router_records_its_outgoing_address():
    """ip_forward_options: the slot compiled with the incoming side's address gets the
    outgoing route's source, and the header is checksummed again."""
    r = router()
    raw = with_options(bytes([7, 11, 4]) + bytes(8), saddr=A1, daddr=B1, proto=IPPROTO_UDP, body=udp_body(A1, B1))
    assert r.ip.ip_rcv(rx(raw)) == 0
    (out,) = r.l2
    iph = IpHdr.from_bytes(out.payload())  # verifies the checksum
    assert iph.ttl == 63 and iph.options == bytes([7, 11, 8]) + R1.to_bytes(4, "big") + bytes(5)
    assert out.dev == "eth1" and r.mib.get("Ip", "ForwDatagrams") == 1
