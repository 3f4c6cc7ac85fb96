"""The IPv4 layer of one host without gRPC: receive, local delivery, ICMP, forwarding, output."""

import errno

import pytest

from pktpath import skbuff as s
from pktpath.counters import Mib
from pktpath.flow import IP_PMTUDISC_DO, IP_PMTUDISC_DONT, IP_PMTUDISC_WANT, Flowi4
from pktpath.pb import skbuff_pb2 as pb
from pktpath.services.l3 import netfilter as nf
from pktpath.services.l3.fragment import IpDefrag
from pktpath.services.l3.icmp import IcmpRateLimit
from pktpath.services.l3.ipv4 import Ipv4
from pktpath.services.l3.route import Fib, FibRoute
from pktpath.wire import IcmpHdr, IpHdr, TcpHdr, UdpHdr
from pktpath.wire.addr import ip_from_str as ip
from pktpath.wire.icmp import quoted
from pktpath.wire.ipv4 import IP_DF, IP_MF, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP
from pktpath.wire.tcp import TCPHDR_ACK

from fakes import Clock

# Host A: 10.0.0.1/24 on eth0, default route via 10.0.0.254 (unless told otherwise).
A, PEER, GW = ip("10.0.0.1"), ip("10.0.0.2"), ip("10.0.0.254")
# Router R: eth0 10.0.1.254/24 (towards A1), eth1 10.0.2.254/24 with MTU 1000 (towards B1).
R0, R1, A1, B1 = ip("10.0.1.254"), ip("10.0.2.254"), ip("10.0.1.1"), ip("10.0.2.1")


class Stack:
    """One host's Ipv4 with the layers around it recorded."""

    def __init__(self, name: str, ifaces, *, forwarding: bool = False, routes=(), rules=()) -> None:
        self.clock = Clock(5000.0)
        self.wall = Clock(1_700_000_000.25)  # the time of day: 22:13:20.250 UTC
        self.mib = Mib()
        self.fib = Fib()
        for dev, addr, plen, _ in ifaces:
            self.fib.add_address(dev, addr, plen)
        for r in routes:
            self.fib.add(r)
        self.l2, self.l4 = [], []
        self.nf = nf.Netfilter(list(rules))
        self.defrag = IpDefrag(name, self.mib, clock=self.clock)
        self.ip = Ipv4(name, self.fib, {dev: mtu for dev, _, _, mtu in ifaces}, forwarding=forwarding,
                       to_l2=lambda skbs: self.l2.extend(skbs) or True,
                       to_l4=lambda kind, items: self.l4.extend((kind, i) for i in items) or True,
                       mib=self.mib, netfilter=self.nf, defrag=self.defrag,
                       ratelimit=IcmpRateLimit(clock=self.clock), clock=self.clock, wallclock=self.wall)
        # Ipv4 drops an empty injected IpDefrag (see test_injected_defrag_is_used): put it back.
        self.ip.defrag = self.defrag

    def drops(self, reason: int) -> int:
        return self.mib.get("Drops", pb.DropReason.Name(reason))


def host_a(*, default_route: bool = True, rules=()) -> Stack:
    routes = [FibRoute(0, 0, "eth0", gateway=GW)] if default_route else []
    return Stack("A", [("eth0", A, 24, 1500)], routes=routes, rules=rules)


def router(rules=()) -> Stack:
    return Stack("R", [("eth0", R0, 24, 1500), ("eth1", R1, 24, 1000)], forwarding=True, rules=rules)


def udp_body(saddr: int, daddr: int, data: bytes = b"hello", sport: int = 40000, dport: int = 53) -> bytes:
    return UdpHdr(sport, dport).to_bytes(data, saddr, daddr) + data


def packet(saddr: int, daddr: int, proto: int = IPPROTO_UDP, body: bytes | None = None, *, ttl: int = 64,
           frag_off: int = 0, ident: int = 1, tos: int = 0) -> bytes:
    if body is None:
        body = udp_body(saddr, daddr)
    return IpHdr(saddr, daddr, proto, ttl=ttl, id=ident, frag_off=frag_off, tos=tos).to_bytes(len(body)) + body


def rx(raw: bytes, *, dev: str = "eth0", pkt_type: int = pb.PACKET_HOST) -> s.SkBuff:
    """A packet as L2 hands it up: data (and the network header) at the IP header."""
    skb = s.alloc_skb(s.NET_SKB_PAD + len(raw))
    s.skb_reserve(skb, s.NET_SKB_PAD)
    s.skb_put_data(skb, raw)
    s.skb_reset_network_header(skb)
    skb.dev, skb.protocol, skb.pkt_type = dev, 0x0800, pkt_type
    return skb


def l4_skb(daddr: int, size: int = 100, *, pmtudisc: int = IP_PMTUDISC_WANT, dport: int = 53,
           saddr: int = 0, proto: int = IPPROTO_UDP) -> s.SkBuff:
    """What L4 hands to ip_queue_xmit: data at a UDP header, the flow in skb->cb."""
    data = bytes(i % 256 for i in range(size))
    src = saddr or A
    body = UdpHdr(40000, dport).to_bytes(data, src, daddr) + data
    skb = s.alloc_skb(s.MAX_HEADER + len(body))
    s.skb_reserve(skb, s.MAX_HEADER)
    s.skb_put_data(skb, body)
    skb.cb = Flowi4(daddr, saddr, dport, 40000, proto, pmtudisc=pmtudisc).pack()
    return skb


def icmp_of(skb) -> tuple[IpHdr, IcmpHdr, bytes]:
    """Parse (and verify) an ICMP packet handed to L2."""
    data = skb.payload()
    iph = IpHdr.from_bytes(data)
    icmph = IcmpHdr.from_bytes(data[iph.header_len:iph.tot_len])
    assert iph.protocol == IPPROTO_ICMP
    return iph, icmph, bytes(data[iph.header_len + 8:iph.tot_len])


def copy_events(skb, func: str) -> list:
    return [e for e in skb.events if e[0] == s.COPY and e[3] == func]


# -- local delivery -------------------------------------------------------------------

def test_udp_for_us_goes_up_to_l4_at_the_udp_header():
    h = host_a()
    raw = packet(PEER, A)
    assert h.ip.ip_rcv(rx(raw)) == 0
    ((kind, skb),) = h.l4
    assert kind == "udp"
    assert bytes(skb.payload()) == raw[20:]
    assert skb.transport_header == skb.data and skb.network_header == skb.data - 20
    assert h.mib.get("Ip", "InReceives") == 1 and h.mib.get("Ip", "InDelivers") == 1
    assert h.l2 == []


def test_ip_list_rcv_counts_accepted_and_dropped():
    h = host_a()
    good, bad = rx(packet(PEER, A)), rx(packet(ip("127.0.0.1"), A))
    assert h.ip.ip_list_rcv([good, bad]) == (1, 1)


def test_fragments_for_us_are_reassembled_before_l4():
    h = host_a()
    body = udp_body(PEER, A, bytes(range(256)) * 8)
    first = IpHdr(PEER, A, IPPROTO_UDP, id=5, frag_off=IP_MF).to_bytes(1480) + body[:1480]
    last = IpHdr(PEER, A, IPPROTO_UDP, id=5, frag_off=1480 // 8).to_bytes(len(body) - 1480) + body[1480:]
    assert h.ip.ip_rcv(rx(last)) == 0
    assert h.l4 == []
    assert h.ip.ip_rcv(rx(first)) == 0
    ((kind, skb),) = h.l4
    assert kind == "udp" and bytes(skb.payload()) == body
    assert h.mib.get("Ip", "ReasmOKs") == 1


def test_broadcast_udp_is_delivered_locally():
    h = host_a()
    assert h.ip.ip_rcv(rx(packet(PEER, ip("10.0.0.255")), pkt_type=pb.PACKET_BROADCAST)) == 0
    assert [k for k, _ in h.l4] == ["udp"]


# -- ICMP in ---------------------------------------------------------------------------

def test_echo_request_is_answered_with_a_reply_from_the_address_asked():
    h = host_a()
    data = b"abcdefgh" * 7
    request = IcmpHdr.echo(0x1234, 7).to_bytes(data) + data
    assert h.ip.ip_rcv(rx(packet(PEER, A, IPPROTO_ICMP, request, tos=0x10))) == 0
    (out,) = h.l2
    iph, icmph, echoed = icmp_of(out)
    assert (iph.saddr, iph.daddr, iph.tos) == (A, PEER, 0x10)
    assert (icmph.type, icmph.code, icmph.echo_id, icmph.echo_sequence) == (0, 0, 0x1234, 7)
    assert echoed == data
    assert (out.dev, out.nexthop) == ("eth0", PEER)
    (copy,) = copy_events(out, "icmp_reply")
    assert copy[5] == len(data) and copy[7:9] == ("skb", "skb")
    assert h.mib.get("Icmp", "InEchos") == 1 and h.mib.get("Icmp", "OutEchoReps") == 1
    assert h.l4 == []


def test_echo_request_to_broadcast_is_ignored():
    h = host_a()
    request = IcmpHdr.echo(1, 1).to_bytes()
    h.ip.ip_rcv(rx(packet(PEER, ip("10.0.0.255"), IPPROTO_ICMP, request), pkt_type=pb.PACKET_BROADCAST))
    assert h.l2 == []
    assert h.drops(pb.SKB_DROP_REASON_INVALID_PROTO) == 1


def test_echo_reply_goes_to_ping_sockets():
    h = host_a()
    reply = IcmpHdr.echo(9, 1, reply=True).to_bytes(b"x")
    h.ip.ip_rcv(rx(packet(PEER, A, IPPROTO_ICMP, reply + b"x")))
    assert [k for k, _ in h.l4] == ["ping"]


def test_bad_icmp_checksum_is_dropped():
    h = host_a()
    bad = bytearray(IcmpHdr.echo(1, 1).to_bytes(b"data") + b"data")
    bad[-1] ^= 0xFF
    h.ip.ip_rcv(rx(packet(PEER, A, IPPROTO_ICMP, bytes(bad))))
    assert h.l2 == [] and h.mib.get("Icmp", "InCsumErrors") == 1
    assert h.drops(pb.SKB_DROP_REASON_ICMP_CSUM) == 1


def test_frag_needed_goes_to_l4_and_lowers_the_path_mtu_for_ten_minutes():
    h = host_a()
    far = ip("10.9.9.9")
    quote = packet(A, far)[:28]
    err = IcmpHdr.dest_unreach(4, 1000).to_bytes(quote) + quote
    h.ip.ip_rcv(rx(packet(GW, A, IPPROTO_ICMP, err)))
    ((kind, (skb, type_, code, info)),) = h.l4
    assert (kind, type_, code, info) == ("err", 3, 4, 1000)
    assert h.ip.path_mtu(far, "eth0") == 1000
    # The learned MTU fragments what A sends there next.
    assert h.ip.ip_queue_xmit([l4_skb(far, 1200)]) == (1, 0, 0)
    assert len(h.l2) == 2 and all(f.len <= 1000 for f in h.l2)
    h.clock.t += 601
    assert h.ip.path_mtu(far, "eth0") == 1500


def test_frag_needed_below_min_pmtu_is_clamped_to_552():
    h = host_a()
    far = ip("10.9.9.9")
    quote = packet(A, far)[:28]
    err = IcmpHdr.dest_unreach(4, 68).to_bytes(quote) + quote
    h.ip.ip_rcv(rx(packet(GW, A, IPPROTO_ICMP, err)))
    assert h.ip.path_mtu(far, "eth0") == 552


# -- errors on receive ---------------------------------------------------------------------

def test_unknown_protocol_gets_protocol_unreachable():
    h = host_a()
    raw = packet(PEER, A, 99, b"whatever-payload")
    assert h.ip.ip_rcv(rx(raw)) == pb.SKB_DROP_REASON_IP_NOPROTO
    (out,) = h.l2
    iph, icmph, body = icmp_of(out)
    assert (iph.saddr, iph.daddr) == (A, PEER)
    assert (icmph.type, icmph.code) == (3, 2)
    inner, _ = quoted(out.payload()[iph.header_len:])
    assert (inner.saddr, inner.daddr, inner.protocol) == (PEER, A, 99)
    assert body == raw  # the whole offending datagram fits in 576 bytes
    (copy,) = copy_events(out, "__icmp_send")
    assert copy[5] == len(raw)
    assert h.mib.get("Ip", "InUnknownProtos") == 1
    assert h.drops(pb.SKB_DROP_REASON_IP_NOPROTO) == 1
    assert h.mib.get("Icmp", "OutDestUnreachs") == 1 and h.l4 == []


def test_non_forwarding_host_drops_what_is_not_for_it_silently():
    h = host_a()
    assert h.ip.ip_rcv(rx(packet(PEER, ip("10.0.0.77")))) == pb.SKB_DROP_REASON_IP_INADDRERRORS
    assert h.mib.get("Ip", "InAddrErrors") == 1
    assert h.drops(pb.SKB_DROP_REASON_IP_INADDRERRORS) == 1
    assert h.l2 == [] and h.l4 == []


@pytest.mark.parametrize("source, reason", [
    ("0.0.0.0", pb.SKB_DROP_REASON_IP_INVALID_SOURCE), ("224.0.0.5", pb.SKB_DROP_REASON_IP_INVALID_SOURCE),
    ("255.255.255.255", pb.SKB_DROP_REASON_IP_INVALID_SOURCE),
    ("127.0.0.1", pb.SKB_DROP_REASON_IP_LOCALNET), ("127.1.2.3", pb.SKB_DROP_REASON_IP_LOCALNET),
])
def test_martian_source_is_dropped(source, reason):
    """ip_route_input_slow's martian sources, with Linux 6.18's reasons: a loopback source
    from the wire is IP_LOCALNET (route_localnet 0), the others IP_INVALID_SOURCE."""
    h = host_a()
    assert h.ip.ip_rcv(rx(packet(ip(source), A))) == reason
    assert h.mib.get("RtCache", "in_martian_src") == 1 and h.drops(reason) == 1
    assert h.mib.get("Ip", "InReceives") == 1 and h.mib.get("Ip", "InDelivers") == 0
    assert h.l2 == [] and h.l4 == []


@pytest.mark.parametrize("daddr, reason", [("0.0.0.0", pb.SKB_DROP_REASON_IP_INVALID_DEST),
                                           ("127.0.0.1", pb.SKB_DROP_REASON_IP_LOCALNET)])
def test_martian_destination_is_dropped(daddr, reason):
    h = host_a()
    assert h.ip.ip_rcv(rx(packet(PEER, ip(daddr)))) == reason
    assert h.mib.get("RtCache", "in_martian_dst") == 1 and h.mib.get("Ip", "InAddrErrors") == 0
    assert h.l2 == [] and h.l4 == []


def test_a_source_in_0_slash_8_other_than_0_0_0_0_is_accepted():
    """Since Linux 5.3 only 0.0.0.0 is the zero net (ipv4_is_zeronet)."""
    h = host_a()
    assert h.ip.ip_rcv(rx(packet(ip("0.1.2.3"), A))) == 0
    assert [kind for kind, _ in h.l4] == ["udp"]


def test_zero_source_to_the_limited_broadcast_is_accepted():
    """A DHCP client's DISCOVER: 0.0.0.0 → 255.255.255.255 (ip_route_input_slow's brd_input)."""
    h = host_a()
    assert h.ip.ip_rcv(rx(packet(0, ip("255.255.255.255")), pkt_type=pb.PACKET_BROADCAST)) == 0
    assert [kind for kind, _ in h.l4] == ["udp"]


def test_own_address_as_source_is_dropped():
    h = host_a()
    assert h.ip.ip_rcv(rx(packet(A, A))) == pb.SKB_DROP_REASON_IP_LOCAL_SOURCE
    assert h.drops(pb.SKB_DROP_REASON_IP_LOCAL_SOURCE) == 1
    assert h.l2 == [] and h.l4 == []


def test_bad_header_checksum_is_dropped_by_ip_rcv_core():
    h = host_a()
    raw = bytearray(packet(PEER, A))
    raw[10] ^= 0x55
    assert h.ip.ip_rcv(rx(bytes(raw))) == pb.SKB_DROP_REASON_IP_CSUM
    assert h.l4 == []


# -- forwarding ----------------------------------------------------------------------------

@pytest.mark.parametrize("ttl", [2, 64, 255])
def test_forwarding_decrements_ttl_with_a_checksum_that_verifies(ttl):
    r = router()
    for ident in range(0, 65536, 997):  # many checksums, some hitting the end-around carry
        r.ip.ip_rcv(rx(packet(A1, B1, ttl=ttl, ident=ident)))
    assert len(r.l2) == len(range(0, 65536, 997))
    for out in r.l2:
        iph = IpHdr.from_bytes(out.payload())  # raises if the incremental update broke the checksum
        assert iph.ttl == ttl - 1
        assert (out.dev, out.nexthop) == ("eth1", B1)
        assert not copy_events(out, "ip_do_fragment")
    assert r.mib.get("Ip", "ForwDatagrams") == len(r.l2)


def test_forwarding_via_a_gateway_sets_the_next_hop():
    r = router()
    r.fib.add(FibRoute(ip("192.168.0.0"), 16, "eth1", gateway=ip("10.0.2.9")))
    r.ip.ip_rcv(rx(packet(A1, ip("192.168.3.3"))))
    (out,) = r.l2
    assert (out.dev, out.nexthop) == ("eth1", ip("10.0.2.9"))


def test_ttl_1_gets_time_exceeded_to_the_sender_and_is_dropped():
    r = router()
    raw = packet(A1, B1, ttl=1)
    assert r.ip.ip_rcv(rx(raw)) == pb.SKB_DROP_REASON_IP_INHDR
    (out,) = r.l2
    iph, icmph, body = icmp_of(out)
    assert (iph.saddr, iph.daddr) == (R0, A1)
    assert (icmph.type, icmph.code) == (11, 0)
    assert body == raw
    assert out.dev == "eth0"
    assert r.mib.get("Ip", "InHdrErrors") == 1 and r.mib.get("Icmp", "OutTimeExcds") == 1
    assert r.mib.get("Ip", "ForwDatagrams") == 0


def test_df_and_too_big_gets_frag_needed_with_the_mtu():
    r = router()
    raw = packet(A1, B1, body=udp_body(A1, B1, bytes(1172)), frag_off=IP_DF)
    assert len(raw) == 1200
    assert r.ip.ip_rcv(rx(raw)) == pb.SKB_DROP_REASON_PKT_TOO_BIG
    (out,) = r.l2
    iph, icmph, _ = icmp_of(out)
    assert iph.daddr == A1
    assert (icmph.type, icmph.code, icmph.mtu) == (3, 4, 1000)
    assert r.mib.get("Ip", "FragFails") == 1
    assert r.drops(pb.SKB_DROP_REASON_PKT_TOO_BIG) == 1


def test_forwarded_packet_too_big_without_df_is_fragmented_with_copies():
    r = router()
    raw = packet(A1, B1, body=udp_body(A1, B1, bytes(1972)))
    r.ip.ip_rcv(rx(raw))
    assert len(r.l2) == 3
    headers = [IpHdr.from_bytes(f.payload()) for f in r.l2]
    assert all(h.ttl == 63 and f.len <= 1000 for h, f in zip(headers, r.l2))
    assert b"".join(bytes(f.payload()[20:]) for f in r.l2) == raw[20:]
    assert all(len(copy_events(f, "ip_do_fragment")) == 1 for f in r.l2)
    assert r.mib.get("Ip", "FragOKs") == 1 and r.mib.get("Ip", "FragCreates") == 3


def gro_packet(mss: int, segs: int, *, df: bool) -> s.SkBuff:
    """What GRO hands up: `segs` TCP segments of `mss` bytes merged into one skb."""
    data = bytes(i % 251 for i in range(mss * segs))
    th = TcpHdr(40000, 5201, 1000, 1, 0, TCPHDR_ACK, 512).to_bytes(data, A1, B1)
    skb = rx(packet(A1, B1, IPPROTO_TCP, th + data, frag_off=IP_DF if df else 0))
    skb.gso_size, skb.gso_segs = mss, segs
    return skb


def test_a_gro_packet_whose_segments_fit_is_forwarded_whole():
    r = router()
    r.ip.ip_rcv(gro_packet(900, 4, df=True))  # 3600 bytes of data, each segment 940 <= MTU 1000
    (out,) = r.l2
    assert out.len == 20 + 20 + 3600 and out.gso_size == 900
    assert r.mib.get("Ip", "ForwDatagrams") == 1 and r.mib.get("Ip", "FragFails") == 0


def test_a_gro_packet_whose_segments_do_not_fit_gets_frag_needed_with_df():
    r = router()
    assert r.ip.ip_rcv(gro_packet(1400, 3, df=True)) == pb.SKB_DROP_REASON_PKT_TOO_BIG
    (out,) = r.l2
    _, icmph, _ = icmp_of(out)
    assert (icmph.type, icmph.code, icmph.mtu) == (3, 4, 1000)


def test_a_gro_packet_without_df_is_segmented_then_fragmented():
    r = router()
    r.ip.ip_rcv(gro_packet(1400, 3, df=False))  # ip_finish_output_gso's slow path
    assert len(r.l2) == 6 and all(f.len <= 1000 for f in r.l2)
    headers = [IpHdr.from_bytes(f.payload()) for f in r.l2]
    assert [h.mf for h in headers] == [True, False] * 3 and all(h.ttl == 63 for h in headers)
    segments = [TcpHdr.from_bytes(r.l2[i].payload()[20:], None, None) for i in (0, 2, 4)]
    assert [t.seq for t in segments] == [1000, 2400, 3800]


def test_forwarding_without_a_route_sends_net_unreachable():
    r = router()
    r.ip.ip_rcv(rx(packet(A1, ip("172.16.0.1"))))
    (out,) = r.l2
    _, icmph, _ = icmp_of(out)
    assert (icmph.type, icmph.code) == (3, 0)
    assert r.mib.get("IpExt", "InNoRoutes") == 1


# -- netfilter -----------------------------------------------------------------------------

@pytest.mark.parametrize("hook", [nf.NF_INET_PRE_ROUTING, nf.NF_INET_LOCAL_IN])
def test_netfilter_drop_on_receive_hooks(hook):
    rule = nf.NfRule(hook, nf.NF_DROP, dport=53)
    h = host_a(rules=[rule])
    assert h.ip.ip_rcv(rx(packet(PEER, A))) == pb.SKB_DROP_REASON_NETFILTER_DROP
    assert h.l4 == [] and rule.pkts == 1
    assert h.drops(pb.SKB_DROP_REASON_NETFILTER_DROP) == 1
    h.ip.ip_rcv(rx(packet(PEER, A, body=udp_body(PEER, A, dport=54))))
    assert len(h.l4) == 1


def test_netfilter_drop_on_forward():
    rule = nf.NfRule(nf.NF_INET_FORWARD, nf.NF_DROP, src=(A1, 32))
    r = router(rules=[rule])
    assert r.ip.ip_rcv(rx(packet(A1, B1))) == pb.SKB_DROP_REASON_NETFILTER_DROP
    assert r.l2 == [] and rule.pkts == 1
    assert r.mib.get("Ip", "ForwDatagrams") == 0


@pytest.mark.parametrize("hook", [nf.NF_INET_LOCAL_OUT, nf.NF_INET_POST_ROUTING])
def test_netfilter_drop_on_output_hooks_fails_the_send_with_eperm(hook):
    rule = nf.NfRule(hook, nf.NF_DROP, dst=(PEER, 32))
    h = host_a(rules=[rule])
    assert h.ip.ip_queue_xmit([l4_skb(PEER)]) == (0, 1, errno.EPERM)
    assert h.l2 == [] and rule.pkts == 1
    assert h.ip.ip_queue_xmit([l4_skb(ip("10.0.0.3"))]) == (1, 0, 0)


def test_netfilter_post_routing_sees_forwarded_packets():
    rule = nf.NfRule(nf.NF_INET_POST_ROUTING, nf.NF_DROP)
    r = router(rules=[rule])
    r.ip.ip_rcv(rx(packet(A1, B1)))
    assert r.l2 == [] and rule.pkts == 1


# -- output ---------------------------------------------------------------------------------

def test_ip_queue_xmit_builds_the_header_and_hands_it_to_l2():
    h = host_a()
    skb = l4_skb(PEER, 100)
    udp = bytes(skb.payload())
    assert h.ip.ip_queue_xmit([skb]) == (1, 0, 0)
    (out,) = h.l2
    iph = IpHdr.from_bytes(out.payload())
    assert (iph.saddr, iph.daddr, iph.protocol, iph.ttl, iph.tot_len) == (A, PEER, IPPROTO_UDP, 64, 128)
    assert iph.df  # IP_PMTUDISC_WANT and it fits: DF
    assert bytes(out.payload()[20:]) == udp
    assert (out.dev, out.nexthop, out.protocol) == ("eth0", PEER, 0x0800)
    assert out.network_header == out.data and out.transport_header == out.data + 20
    assert h.mib.get("Ip", "OutRequests") == 1


def test_ip_queue_xmit_uses_the_gateway_as_next_hop():
    h = host_a()
    h.ip.ip_queue_xmit([l4_skb(ip("8.8.8.8"))])
    (out,) = h.l2
    assert out.nexthop == GW and IpHdr.from_bytes(out.payload()).daddr == ip("8.8.8.8")


def test_ip_ids_differ_between_datagrams_of_a_flow():
    h = host_a()
    h.ip.ip_queue_xmit([l4_skb(PEER), l4_skb(PEER)])
    ids = [IpHdr.from_bytes(o.payload()).id for o in h.l2]
    assert ids[1] == (ids[0] + 1) & 0xFFFF


def test_a_tcp_gso_packet_goes_to_l2_whole_with_df_and_an_id_per_segment():
    """ip_select_ident_segs; the MTU is held against a segment (skb_gso_validate_network_len)."""
    h = host_a()
    data = bytes(i % 251 for i in range(1448 * 10))
    gso = s.alloc_skb(s.MAX_HEADER + 32 + len(data))
    s.skb_reserve(gso, s.MAX_HEADER)
    s.skb_put_data(gso, TcpHdr(40000, 80, 1, 1, 0, TCPHDR_ACK, 512, options=bytes(12)).to_bytes(data, A, PEER,
                                                                                                partial=True) + data)
    gso.gso_size, gso.gso_segs, gso.sk = 1448, 10, 7
    gso.cb = Flowi4(PEER, 0, 80, 40000, IPPROTO_TCP).pack()
    after = l4_skb(PEER, dport=80, proto=IPPROTO_TCP)
    after.sk = 7  # the same connected socket
    assert h.ip.ip_queue_xmit([gso, after]) == (2, 0, 0)
    first, after = h.l2
    iph = IpHdr.from_bytes(first.payload())
    assert first.gso_size == 1448 and iph.tot_len == 20 + 32 + len(data) and iph.df
    assert IpHdr.from_bytes(after.payload()).id == (iph.id + 10) & 0xFFFF
    assert h.mib.get("Ip", "FragOKs") == 0


def test_ip_queue_xmit_without_a_route_is_enetunreach():
    h = host_a(default_route=False)
    assert h.ip.ip_queue_xmit([l4_skb(ip("192.168.1.1"))]) == (0, 1, errno.ENETUNREACH)
    assert h.mib.get("Ip", "OutNoRoutes") == 1 and h.l2 == []


def test_pmtudisc_do_over_the_mtu_is_emsgsize():
    h = host_a()
    assert h.ip.ip_queue_xmit([l4_skb(PEER, 1473, pmtudisc=IP_PMTUDISC_DO)]) == (0, 1, errno.EMSGSIZE)
    assert h.l2 == []
    assert h.ip.ip_queue_xmit([l4_skb(PEER, 1472, pmtudisc=IP_PMTUDISC_DO)]) == (1, 0, 0)  # 1500 exactly
    assert IpHdr.from_bytes(h.l2[0].payload()).df


def test_pmtudisc_want_fragments_large_datagrams_without_copies():
    h = host_a()
    skb = l4_skb(PEER, 4000)
    udp = bytes(skb.payload())
    assert h.ip.ip_queue_xmit([skb]) == (1, 0, 0)
    assert len(h.l2) == 3
    headers = [IpHdr.from_bytes(f.payload()) for f in h.l2]
    assert not any(hd.df for hd in headers)
    assert [hd.mf for hd in headers] == [True, True, False]
    assert len({hd.id for hd in headers}) == 1
    assert b"".join(bytes(f.payload()[20:]) for f in h.l2) == udp
    assert all(f.len <= 1500 for f in h.l2)
    assert all(not copy_events(f, "ip_do_fragment") for f in h.l2)  # the fast path: no copy here
    assert h.mib.get("Ip", "FragOKs") == 1 and h.mib.get("Ip", "FragCreates") == 3


def test_pmtudisc_dont_never_sets_df():
    h = host_a()
    h.ip.ip_queue_xmit([l4_skb(PEER, 10, pmtudisc=IP_PMTUDISC_DONT)])
    assert not IpHdr.from_bytes(h.l2[0].payload()).df


def test_datagram_over_65535_bytes_is_emsgsize():
    h = host_a()
    assert h.ip.ip_queue_xmit([l4_skb(PEER, 65535 - 28 + 1)])[1:] == (1, errno.EMSGSIZE)


def test_ip_queue_xmit_without_a_flow_in_cb_is_einval():
    h = host_a()
    skb = l4_skb(PEER)
    skb.cb = b"junk"
    assert h.ip.ip_queue_xmit([skb]) == (0, 1, errno.EINVAL)


def test_datagram_to_our_own_address_loops_back_up():
    h = host_a()
    assert h.ip.ip_queue_xmit([l4_skb(A, 3000)]) == (1, 0, 0)
    assert h.l2 == []
    ((kind, skb),) = h.l4
    assert kind == "udp" and skb.dev == "lo" and skb.len == 3008  # no fragmentation on lo


def test_reassembly_timeout_sends_time_exceeded_for_the_first_fragment():
    h = host_a()
    body = udp_body(PEER, A, bytes(2000))
    first = IpHdr(PEER, A, IPPROTO_UDP, id=5, frag_off=IP_MF).to_bytes(1480) + body[:1480]
    h.ip.ip_rcv(rx(first))
    h.clock.t += 29
    assert h.ip.frag_expire() == 0 and h.l2 == []
    h.clock.t += 1
    assert h.ip.frag_expire() == 1
    (out,) = h.l2
    iph, icmph, quote = icmp_of(out)
    assert iph.daddr == PEER and (icmph.type, icmph.code) == (11, 1)
    assert IpHdr.from_bytes(quote, verify_csum=True, quoted=True).frag_off == IP_MF
    assert h.mib.get("Ip", "ReasmTimeout") == 1


def test_injected_defrag_is_used():
    mib = Mib()
    defrag = IpDefrag("A", mib, clock=Clock())
    ipv4 = Ipv4("A", Fib(), {}, forwarding=False, to_l2=lambda skbs: True, to_l4=lambda kind, items: True,
                mib=mib, defrag=defrag)
    assert ipv4.defrag is defrag


# -- icmp_send's rules ------------------------------------------------------------------------

def offending(raw: bytes, pkt_type: int = pb.PACKET_HOST):
    skb = rx(raw, pkt_type=pkt_type)
    return skb, IpHdr.from_bytes(skb.payload())


def test_no_icmp_error_about_an_icmp_error():
    h = host_a()
    inner = packet(A, PEER)[:28]
    err = IcmpHdr.dest_unreach(3).to_bytes(inner) + inner
    assert not h.ip.icmp_send(*offending(packet(PEER, A, IPPROTO_ICMP, err)), 3, 3)
    assert not h.ip.icmp_send(*offending(packet(PEER, A, IPPROTO_ICMP, bytes([30]) + bytes(7))), 3, 3)
    assert h.l2 == []
    # An echo request is not an error: it may be answered with one.
    echo = IcmpHdr.echo(1, 1).to_bytes()
    assert h.ip.icmp_send(*offending(packet(PEER, A, IPPROTO_ICMP, echo)), 3, 3)
    assert len(h.l2) == 1


def test_ttl_expiry_of_an_icmp_error_in_transit_is_silent():
    r = router()
    inner = packet(B1, A1)[:28]
    err = IcmpHdr.time_exceeded().to_bytes(inner) + inner
    assert r.ip.ip_rcv(rx(packet(A1, B1, IPPROTO_ICMP, err, ttl=1))) == pb.SKB_DROP_REASON_IP_INHDR
    assert r.l2 == []


def test_no_icmp_error_about_a_non_first_fragment():
    h = host_a()
    assert not h.ip.icmp_send(*offending(packet(PEER, A, 99, bytes(16), frag_off=185)), 3, 2)
    assert not h.ip.icmp_send(*offending(packet(PEER, A, 99, bytes(16), frag_off=IP_MF | 185)), 3, 2)
    assert h.l2 == []
    assert h.ip.icmp_send(*offending(packet(PEER, A, 99, bytes(16), frag_off=IP_MF)), 3, 2)


@pytest.mark.parametrize("saddr, daddr, pkt_type", [
    ("10.0.0.2", "10.0.0.255", pb.PACKET_HOST),        # subnet broadcast
    ("10.0.0.2", "255.255.255.255", pb.PACKET_HOST),   # limited broadcast
    ("10.0.0.2", "224.0.0.5", pb.PACKET_HOST),         # multicast
    ("10.0.0.2", "10.0.0.1", pb.PACKET_BROADCAST),     # link-layer broadcast
    ("10.0.0.2", "10.0.0.1", pb.PACKET_MULTICAST),
    ("0.0.0.0", "10.0.0.1", pb.PACKET_HOST),           # nobody to answer
])
def test_no_icmp_error_about_broadcast_multicast_or_zero_source(saddr, daddr, pkt_type):
    h = host_a()
    assert not h.ip.icmp_send(*offending(packet(ip(saddr), ip(daddr), 99, bytes(8)), pkt_type), 3, 2)
    assert h.l2 == [] and h.mib.get("Icmp", "OutMsgs") == 0


def test_protocol_unreachable_for_a_broadcast_is_not_sent():
    h = host_a()
    h.ip.ip_rcv(rx(packet(PEER, ip("10.0.0.255"), 99, bytes(8)), pkt_type=pb.PACKET_BROADCAST))
    assert h.l2 == [] and h.mib.get("Ip", "InUnknownProtos") == 1


def test_error_quotes_at_most_576_bytes_in_all():
    h = host_a()
    assert h.ip.icmp_send(*offending(packet(PEER, A, 99, bytes(2000))), 3, 2)
    (out,) = h.l2
    assert out.len == 576


def test_port_unreachable_rate_limited_per_host_after_a_burst_of_6():
    h = host_a()
    sent = [h.ip.icmp_send(*offending(packet(PEER, A)), 3, 3) for _ in range(8)]
    assert sent == [True] * 6 + [False] * 2
    assert h.mib.get("Icmp", "OutRateLimitHost") == 2
    assert len(h.l2) == 6
    # Another host has its own bucket; a second later one more token is back for the first.
    assert h.ip.icmp_send(*offending(packet(ip("10.0.0.3"), A)), 3, 3)
    h.clock.t += 1.0
    assert h.ip.icmp_send(*offending(packet(PEER, A)), 3, 3)
    assert not h.ip.icmp_send(*offending(packet(PEER, A)), 3, 3)
    assert h.mib.get("Icmp", "OutRateLimitHost") == 3


def test_frag_needed_is_not_rate_limited():
    h = host_a()
    sent = [h.ip.icmp_send(*offending(packet(PEER, A)), 3, 4, 1400) for _ in range(10)]
    assert all(sent) and h.mib.get("Icmp", "OutRateLimitHost") == 0
    _, icmph, _ = icmp_of(h.l2[0])
    assert icmph.mtu == 1400


def test_global_rate_limit_after_its_burst():
    h = host_a()
    sent = sum(h.ip.icmp_send(*offending(packet(ip("10.0.0.%d" % (i + 2)), A)), 3, 3) for i in range(60))
    assert sent == 50
    assert h.mib.get("Icmp", "OutRateLimitGlobal") == 10


def test_errors_to_ourselves_over_loopback_are_not_rate_limited_per_host():
    h = host_a()
    sent = [h.ip.icmp_send(*offending(packet(A, A), pb.PACKET_LOOPBACK), 3, 3) for _ in range(8)]
    assert sent == [True] * 8
    assert h.mib.get("Icmp", "OutRateLimitHost") == 0
