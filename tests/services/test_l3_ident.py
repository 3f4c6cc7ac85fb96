"""The IP id a host's packets carry (ip_select_ident_segs, ip_build_and_send_pkt), as Linux 6.18
chose them for packets captured from a network namespace: SYN-ACKs and RSTs DF with id 0,
a connected socket's packets numbered by the socket, unconnected UDP with DF still numbered
(IP_PMTUDISC_WANT lets the kernel fragment it: ignore_df), IP_PMTUDISC_DO/PROBE id 0."""

import pytest

from pktpath import skbuff as s
from pktpath.flow import IP_PMTUDISC_DO, IP_PMTUDISC_DONT, IP_PMTUDISC_PROBE, IP_PMTUDISC_WANT, Flowi4
from pktpath.wire import IpHdr, TcpHdr
from pktpath.wire.ipv4 import IPPROTO_TCP
from pktpath.wire.tcp import TCPHDR_ACK, TCPHDR_RST, TCPHDR_SYN

from test_l3_ipv4 import A, PEER, host_a, l4_skb


def tcp_skb(flags: int, *, sk: int = 0, sport: int = 80, dport: int = 40000) -> s.SkBuff:
    """What TCP hands to ip_queue_xmit: data at the TCP header, skb->sk its socket (0: none)."""
    header = TcpHdr(sport, dport, 1, 1, 0, flags, 512).to_bytes(b"", A, PEER)
    skb = s.alloc_skb(s.MAX_HEADER + len(header))
    s.skb_reserve(skb, s.MAX_HEADER)
    s.skb_put_data(skb, header)
    skb.cb = Flowi4(PEER, 0, dport, sport, IPPROTO_TCP).pack()
    skb.sk = sk
    return skb


def sent(h, skbs) -> list[IpHdr]:
    assert h.ip.ip_queue_xmit(skbs)[1] == 0
    return [IpHdr.from_bytes(o.payload()) for o in h.l2[-len(skbs):]]


@pytest.mark.parametrize("flags", [TCPHDR_SYN | TCPHDR_ACK, TCPHDR_RST | TCPHDR_ACK, TCPHDR_RST])
def test_syn_acks_and_resets_without_a_socket_go_df_with_id_0(flags):
    h = host_a()
    assert [(i.df, i.id) for i in sent(h, [tcp_skb(flags), tcp_skb(flags, dport=40001)])] == [(True, 0)] * 2


def test_a_connected_socket_numbers_its_own_packets():
    h = host_a()
    first = sent(h, [tcp_skb(TCPHDR_ACK, sk=5) for _ in range(3)])
    assert all(i.df for i in first)
    assert [i.id for i in first] == [(first[0].id + n) & 0xFFFF for n in range(3)]
    # Another socket to the same peer has a counter of its own; the first goes on from where it was.
    sent(h, [tcp_skb(TCPHDR_ACK, sk=6, sport=81)])
    (again,) = sent(h, [tcp_skb(TCPHDR_ACK, sk=5)])
    assert again.id == (first[0].id + 3) & 0xFFFF


@pytest.mark.parametrize("pmtudisc, df, zero", [
    (IP_PMTUDISC_WANT, True, False), (IP_PMTUDISC_DONT, False, False),
    (IP_PMTUDISC_DO, True, True), (IP_PMTUDISC_PROBE, True, True),
])
def test_an_unconnected_datagram_is_id_0_only_when_it_may_not_be_fragmented(pmtudisc, df, zero):
    h = host_a()
    ids = sent(h, [l4_skb(PEER, pmtudisc=pmtudisc), l4_skb(PEER, pmtudisc=pmtudisc)])
    assert [i.df for i in ids] == [df, df]
    if zero:
        assert [i.id for i in ids] == [0, 0]
    else:
        assert ids[1].id == (ids[0].id + 1) & 0xFFFF
