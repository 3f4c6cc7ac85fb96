"""UDP and ping without gRPC: the port tables (bind, connect, lookup) and Datagram's
receive, ICMP error and send paths."""

import errno

import pytest

from pktpath import skbuff as s
from pktpath.counters import Mib
from pktpath.flow import IP_PMTUDISC_DO, Flowi4
from pktpath.pb import skbuff_pb2 as pb
from pktpath.services.l4.table import IP_LOCAL_PORT_RANGE, PortTable
from pktpath.services.l4.udp import Datagram
from pktpath.sockerr import SockError
from pktpath.wire import IcmpHdr, IpHdr, UdpHdr
from pktpath.wire.addr import ip_from_str as ip
from pktpath.wire.ipv4 import IPPROTO_ICMP, IPPROTO_UDP

A, A2, PEER, OTHER, R = ip("10.0.0.1"), ip("10.0.1.1"), ip("10.0.0.2"), ip("10.0.0.3"), ip("10.0.0.254")
BCAST = ip("255.255.255.255")


def reuse(monkeypatch, table: PortTable) -> None:
    """As if every socket had SO_REUSEADDR: several sockets on one port, to see lookup choose."""
    monkeypatch.setattr(table, "_conflicts", lambda saddr, sport, sk: False)


# -- PortTable --------------------------------------------------------------------------

def test_bind_a_specific_port():
    t = PortTable(IPPROTO_UDP, [A])
    e = t.hash(1, A, 5000)
    assert (e.sk, e.protocol, e.saddr, e.sport, e.daddr, e.dport) == (1, IPPROTO_UDP, A, 5000, 0, 0)
    assert t.get(1) is e and t.entries() == [e]


def test_ephemeral_ports_come_from_the_local_port_range():
    t = PortTable(IPPROTO_UDP, [A])
    ports = [t.hash(sk, 0, 0).sport for sk in range(1, 201)]
    low, high = IP_LOCAL_PORT_RANGE
    assert all(low <= p <= high for p in ports)
    assert len(set(ports)) == 200


def test_ephemeral_ports_exhausted_is_eagain():
    t = PortTable(IPPROTO_UDP, [A], port_range=(40000, 40003))
    assert sorted(t.hash(sk, 0, 0).sport for sk in range(1, 5)) == [40000, 40001, 40002, 40003]
    with pytest.raises(SockError) as exc:
        t.hash(5, 0, 0)
    assert exc.value.errno == errno.EAGAIN


def test_ephemeral_port_skips_ports_in_use():
    t = PortTable(IPPROTO_UDP, [A], port_range=(40000, 40001))
    t.hash(1, 0, 40000)
    assert t.hash(2, 0, 0).sport == 40001


@pytest.mark.parametrize("first, second", [(0, A), (A, 0), (A, A), (0, 0)])
def test_wildcard_and_specific_binds_conflict(first, second):
    t = PortTable(IPPROTO_UDP, [A, A2])
    t.hash(1, first, 5000)
    with pytest.raises(SockError) as exc:
        t.hash(2, second, 5000)
    assert exc.value.errno == errno.EADDRINUSE
    assert t.get(2) is None


def test_different_specific_addresses_share_a_port():
    t = PortTable(IPPROTO_UDP, [A, A2])
    t.hash(1, A, 5000)
    t.hash(2, A2, 5000)
    assert t.lookup(PEER, 1234, A, 5000).sk == 1
    assert t.lookup(PEER, 1234, A2, 5000).sk == 2


def test_bind_to_an_address_not_ours_is_eaddrnotavail():
    t = PortTable(IPPROTO_UDP, [A])
    with pytest.raises(SockError) as exc:
        t.hash(1, ip("10.9.9.9"), 5000)
    assert exc.value.errno == errno.EADDRNOTAVAIL
    assert t.hash(2, BCAST, 5001).saddr == BCAST  # the broadcast address may be bound


def test_binding_a_bound_socket_to_another_port_is_einval():
    t = PortTable(IPPROTO_UDP, [A])
    t.hash(1, 0, 5000)
    with pytest.raises(SockError) as exc:
        t.hash(1, 0, 5001)
    assert exc.value.errno == errno.EINVAL


def test_connect_keeps_the_port_and_fills_a_wildcard_source():
    t = PortTable(IPPROTO_UDP, [A])
    bound = t.hash(1, 0, 0)
    port = bound.sport
    connected = t.hash(1, A, 0, PEER, 53)
    assert connected is bound
    assert (connected.saddr, connected.sport, connected.daddr, connected.dport) == (A, port, PEER, 53)
    # Connecting again, elsewhere: still the same port.
    again = t.hash(1, A, port, OTHER, 54)
    assert (again.sport, again.daddr, again.dport) == (port, OTHER, 54)


def test_connect_keeps_a_specific_bound_address():
    t = PortTable(IPPROTO_UDP, [A, A2])
    t.hash(1, A2, 6000)
    e = t.hash(1, A, 0, PEER, 53)
    assert (e.saddr, e.sport) == (A2, 6000)


def test_lookup_prefers_connected_over_bound_over_wildcard(monkeypatch):
    t = PortTable(IPPROTO_UDP, [A])
    reuse(monkeypatch, t)
    t.hash(1, 0, 5000)                  # *:5000
    t.hash(2, A, 5000)                  # A:5000
    t.hash(3, A, 5000, PEER, 53)        # A:5000 <-> PEER:53
    assert t.lookup(PEER, 53, A, 5000).sk == 3
    assert t.lookup(PEER, 54, A, 5000).sk == 2          # not the connected peer's port
    assert t.lookup(OTHER, 53, A, 5000).sk == 2         # not the connected peer
    assert t.lookup(PEER, 53, BCAST, 5000).sk == 1      # only the wildcard matches another address
    assert t.lookup(PEER, 53, A, 5001) is None


def test_lookup_scoring_does_not_depend_on_bind_order(monkeypatch):
    t = PortTable(IPPROTO_UDP, [A])
    reuse(monkeypatch, t)
    t.hash(3, A, 5000, PEER, 53)
    t.hash(2, A, 5000)
    t.hash(1, 0, 5000)
    assert t.lookup(PEER, 53, A, 5000).sk == 3
    assert t.lookup(OTHER, 53, A, 5000).sk == 2


def test_connected_wildcard_socket_beats_bound_unconnected(monkeypatch):
    t = PortTable(IPPROTO_UDP, [A])
    reuse(monkeypatch, t)
    t.hash(1, A, 5000)
    t.hash(2, 0, 5000)
    t.hash(2, 0, 5000, PEER, 53)  # connect without filling the source: daddr and dport score 8
    assert t.lookup(PEER, 53, A, 5000).sk == 2


def test_socket_whose_addresses_differ_does_not_match():
    t = PortTable(IPPROTO_UDP, [A, A2])
    t.hash(1, A, 5000, PEER, 53)
    assert t.lookup(PEER, 53, A2, 5000) is None      # bound address differs
    assert t.lookup(OTHER, 53, A, 5000) is None      # connected peer differs
    assert t.lookup(PEER, 99, A, 5000) is None       # connected port differs


def test_unhash_frees_the_port():
    t = PortTable(IPPROTO_UDP, [A])
    t.hash(1, A, 5000)
    assert t.unhash(1) is True
    assert t.lookup(PEER, 1, A, 5000) is None and t.get(1) is None and t.entries() == []
    assert t.unhash(1) is False
    assert t.hash(2, 0, 5000).sk == 2


def test_lookup_all_for_broadcast(monkeypatch):
    t = PortTable(IPPROTO_UDP, [A, A2])
    reuse(monkeypatch, t)
    t.hash(1, 0, 7000)
    t.hash(2, A, 7000)
    t.hash(3, A2, 7000)
    assert sorted(e.sk for e in t.lookup_all(PEER, 40000, BCAST, 7000)) == [1]
    assert sorted(e.sk for e in t.lookup_all(PEER, 40000, A, 7000)) == [1, 2]
    assert t.lookup_all(PEER, 40000, BCAST, 7001) == []


# -- Datagram ----------------------------------------------------------------------------

class L4:
    """A Datagram with the socket layer, ICMP and IPv4 below recorded."""

    def __init__(self, *, sock_ok: bool = True, xmit_errno: int = 0, route=(0, A)) -> None:
        self.mib = Mib()
        self.up, self.errs, self.icmp, self.sent, self.routed = [], [], [], [], []
        self.xmit_errno = xmit_errno
        self.route = route
        self.sock_ok = sock_ok
        self.dg = Datagram("A", [A, A2], mib=self.mib, to_sock=self._to_sock, sk_err=self.errs.extend,
                           icmp_send=lambda skb, type_, code: self.icmp.append((skb, type_, code)),
                           route_output=self._route_output, ip_queue_xmit=self._xmit)

    def _to_sock(self, skbs):
        self.up.extend(skbs)
        return self.sock_ok

    def _route_output(self, daddr):
        self.routed.append(daddr)
        return self.route

    def _xmit(self, skbs):
        self.sent.extend(skbs)
        return self.xmit_errno

    def drops(self, reason: int) -> int:
        return self.mib.get("Drops", pb.DropReason.Name(reason))


def rx(saddr: int, daddr: int, transport: bytes, proto: int = IPPROTO_UDP, *, pkt_type: int = pb.PACKET_HOST,
       padding: bytes = b"") -> s.SkBuff:
    """A packet as IPv4 hands it up: data at the transport header, the IP header before it."""
    raw = IpHdr(saddr, daddr, proto).to_bytes(len(transport)) + transport + padding
    skb = s.alloc_skb(s.NET_SKB_PAD + len(raw))
    s.skb_reserve(skb, s.NET_SKB_PAD)
    s.skb_put_data(skb, raw)
    s.skb_reset_network_header(skb)
    s.skb_pull(skb, 20)
    s.skb_reset_transport_header(skb)
    skb.pkt_type = pkt_type
    return skb


def udp(saddr: int, daddr: int, data: bytes = b"payload", sport: int = 4000, dport: int = 5000) -> bytes:
    return UdpHdr(sport, dport).to_bytes(data, saddr, daddr) + data


def test_udp_rcv_delivers_the_payload_to_the_socket():
    l4 = L4()
    l4.dg.udp.hash(9, 0, 5000)
    skb = rx(PEER, A, udp(PEER, A, b"hello"))
    assert l4.dg.udp_rcv([skb]) == (1, 0)
    assert l4.up == [skb]
    assert skb.sk == 9 and bytes(skb.payload()) == b"hello"
    assert l4.icmp == []


def test_udp_rcv_trims_padding_to_the_udp_length():
    l4 = L4()
    l4.dg.udp.hash(9, 0, 5000)
    skb = rx(PEER, A, udp(PEER, A, b"abc"), padding=bytes(6))
    l4.dg.udp_rcv([skb])
    assert bytes(skb.payload()) == b"abc"


def test_udp_rcv_accepts_a_zero_checksum_as_none():
    l4 = L4()
    l4.dg.udp.hash(9, 0, 5000)
    raw = bytearray(udp(PEER, A, b"data"))
    raw[6:8] = b"\x00\x00"
    assert l4.dg.udp_rcv([rx(PEER, A, bytes(raw))]) == (1, 0)


def test_udp_rcv_bad_checksum_is_dropped_and_counted():
    l4 = L4()
    l4.dg.udp.hash(9, 0, 5000)
    raw = bytearray(udp(PEER, A, b"data"))
    raw[-1] ^= 0x01
    assert l4.dg.udp_rcv([rx(PEER, A, bytes(raw))]) == (0, 1)
    assert l4.up == [] and l4.icmp == []
    assert l4.mib.get("Udp", "InCsumErrors") == 1 and l4.mib.get("Udp", "InErrors") == 1
    assert l4.drops(pb.SKB_DROP_REASON_UDP_CSUM) == 1


def test_udp_rcv_checksum_covers_the_pseudo_header():
    """A datagram checksummed for another destination does not verify here."""
    l4 = L4()
    l4.dg.udp.hash(9, 0, 5000)
    assert l4.dg.udp_rcv([rx(PEER, A, udp(PEER, A2, b"data"))]) == (0, 1)
    assert l4.mib.get("Udp", "InCsumErrors") == 1


def test_udp_rcv_truncated_header_is_an_error():
    l4 = L4()
    assert l4.dg.udp_rcv([rx(PEER, A, b"\x0f\xa0\x13")]) == (0, 1)
    assert l4.mib.get("Udp", "InErrors") == 1
    assert l4.drops(pb.SKB_DROP_REASON_PKT_TOO_SMALL) == 1


def test_no_socket_counts_noports_and_asks_for_port_unreachable():
    l4 = L4()
    skb = rx(PEER, A, udp(PEER, A))
    assert l4.dg.udp_rcv([skb]) == (0, 1)
    assert l4.icmp == [(skb, 3, 3)]
    assert l4.mib.get("Udp", "NoPorts") == 1
    assert l4.drops(pb.SKB_DROP_REASON_NO_SOCKET) == 1
    assert l4.up == []


def test_socket_layer_refusing_the_batch_drops_it():
    l4 = L4(sock_ok=False)
    l4.dg.udp.hash(9, 0, 5000)
    accepted, _ = l4.dg.udp_rcv([rx(PEER, A, udp(PEER, A))])
    assert accepted == 0
    assert l4.drops(pb.SKB_DROP_REASON_CPU_BACKLOG) == 1


def test_socket_layer_refusing_the_batch_counts_the_drops():
    l4 = L4(sock_ok=False)
    l4.dg.udp.hash(9, 0, 5000)
    assert l4.dg.udp_rcv([rx(PEER, A, udp(PEER, A))]) == (0, 1)


@pytest.mark.parametrize("daddr, pkt_type", [(BCAST, pb.PACKET_BROADCAST), (ip("10.0.0.255"), pb.PACKET_BROADCAST),
                                             (BCAST, pb.PACKET_HOST)])
def test_broadcast_is_delivered_to_every_socket_on_the_port_with_clones(monkeypatch, daddr, pkt_type):
    l4 = L4()
    reuse(monkeypatch, l4.dg.udp)
    l4.dg.udp.hash(1, 0, 5000)
    l4.dg.udp.hash(2, 0, 5000)
    l4.dg.udp.hash(3, 0, 5001)   # another port
    skb = rx(PEER, daddr, udp(PEER, daddr, b"to all"), pkt_type=pkt_type)
    assert l4.dg.udp_rcv([skb]) == (1, 0)
    assert sorted(k.sk for k in l4.up) == [1, 2]
    assert skb in l4.up
    (clone,) = [k for k in l4.up if k is not skb]
    assert clone.clone_of == skb.id and clone.buf is skb.buf
    assert bytes(clone.payload()) == b"to all"
    assert [e[0] for e in clone.events] == [s.CLONE]
    assert l4.icmp == []


def test_broadcast_with_no_socket_sends_no_icmp_and_is_freed_without_a_reason_as_on_linux():
    l4 = L4()
    assert l4.dg.udp_rcv([rx(PEER, BCAST, udp(PEER, BCAST), pkt_type=pb.PACKET_BROADCAST)]) == (0, 1)
    assert l4.icmp == []
    assert l4.drops(pb.SKB_DROP_REASON_NOT_SPECIFIED) == 1 and l4.drops(pb.SKB_DROP_REASON_NO_SOCKET) == 0


def test_broadcast_with_no_socket_counts_ignoredmulti_not_noports():
    l4 = L4()
    l4.dg.udp_rcv([rx(PEER, BCAST, udp(PEER, BCAST), pkt_type=pb.PACKET_BROADCAST)])
    assert l4.mib.get("Udp", "IgnoredMulti") == 1
    assert l4.mib.get("Udp", "NoPorts") == 0


def test_broadcast_skips_a_socket_connected_to_another_peer(monkeypatch):
    l4 = L4()
    reuse(monkeypatch, l4.dg.udp)
    l4.dg.udp.hash(1, 0, 5000)
    l4.dg.udp.hash(2, 0, 5000, OTHER, 4000)   # connected to OTHER:4000
    l4.dg.udp_rcv([rx(PEER, BCAST, udp(PEER, BCAST, sport=4000), pkt_type=pb.PACKET_BROADCAST)])
    assert [k.sk for k in l4.up] == [1]


def echo(ident: int, seq: int = 1, data: bytes = b"ping", *, reply: bool = True) -> bytes:
    return IcmpHdr.echo(ident, seq, reply=reply).to_bytes(data) + data


def test_ping_rcv_finds_the_socket_by_echo_id():
    l4 = L4()
    l4.dg.ping.hash(4, 0, 0x4242)
    l4.dg.ping.hash(5, 0, 0x4343)
    mine = rx(PEER, A, echo(0x4343), IPPROTO_ICMP)
    stray = rx(PEER, A, echo(0x9999), IPPROTO_ICMP)
    assert l4.dg.ping_rcv([mine, stray]) == (1, 1)
    assert l4.up == [mine] and mine.sk == 5
    assert l4.drops(pb.SKB_DROP_REASON_NO_SOCKET) == 1


def test_ping_ident_comes_from_the_whole_range():
    t = L4().dg.ping
    assert t.port_range == (1, 65535)
    assert 1 <= t.hash(1, 0, 0).sport <= 65535


def icmp_error(type_: int, code: int, inner: bytes, *, mtu: int = 0, src: int = R) -> s.SkBuff:
    """An ICMP error from src to A quoting `inner` (our datagram's IP header and 8 bytes)."""
    un = mtu if (type_, code) == (3, 4) else 0
    return rx(src, A, IcmpHdr(type_, code, un).to_bytes(inner) + inner, IPPROTO_ICMP)


def quoted_udp(sport: int = 40000, dport: int = 53, dst: int = PEER) -> bytes:
    return (IpHdr(A, dst, IPPROTO_UDP).to_bytes(8 + 4) + UdpHdr(sport, dport).to_bytes(b"abcd", A, dst))[:28]


@pytest.mark.parametrize("type_, code, mtu, err, fatal", [
    (3, 3, 0, errno.ECONNREFUSED, True),
    (3, 1, 0, errno.EHOSTUNREACH, False),
    (3, 2, 0, errno.ENOPROTOOPT, True),
    (3, 4, 1400, errno.EMSGSIZE, True),
    (3, 13, 0, errno.EHOSTUNREACH, True),
    (11, 0, 0, errno.EHOSTUNREACH, False),
    (12, 0, 0, errno.EPROTO, True),
])
def test_icmp_err_reaches_the_socket_that_sent_the_quoted_datagram(type_, code, mtu, err, fatal):
    l4 = L4()
    l4.dg.udp.hash(3, A, 40000, PEER, 53)
    skb = icmp_error(type_, code, quoted_udp())
    assert l4.dg.icmp_err([(skb, type_, code, mtu)]) == (1, 0)
    assert l4.errs == [(3, err, fatal, R, type_, code, mtu)]


def test_icmp_err_for_an_unbound_socket_wildcard_lookup():
    l4 = L4()
    l4.dg.udp.hash(8, 0, 40000)
    assert l4.dg.icmp_err([(icmp_error(3, 3, quoted_udp()), 3, 3, 0)]) == (1, 0)
    assert l4.errs[0][0] == 8


def test_icmp_err_with_no_matching_socket_counts_icmp_inerrors():
    l4 = L4()
    l4.dg.udp.hash(3, A, 40000, PEER, 53)
    skb = icmp_error(3, 3, quoted_udp(dport=54))  # we are connected to port 53, not 54
    assert l4.dg.icmp_err([(skb, 3, 3, 0)]) == (0, 1)
    assert l4.errs == [] and l4.mib.get("Icmp", "InErrors") == 1


def test_icmp_err_about_an_echo_request_reaches_the_ping_socket():
    l4 = L4()
    l4.dg.ping.hash(6, 0, 0x0707)
    req = echo(0x0707, reply=False)
    inner = (IpHdr(A, PEER, IPPROTO_ICMP).to_bytes(len(req)) + req)[:28]
    assert l4.dg.icmp_err([(icmp_error(11, 0, inner), 11, 0, 0)]) == (1, 0)
    assert l4.errs == [(6, errno.EHOSTUNREACH, False, R, 11, 0, 0)]


def udp_send_skb(sk: int, data: bytes, flow: Flowi4) -> s.SkBuff:
    skb = s.alloc_skb(s.MAX_HEADER + len(data))
    s.skb_reserve(skb, s.MAX_HEADER)
    s.skb_put_data(skb, data)
    skb.sk = sk
    skb.cb = flow.pack()
    return skb


def test_udp_sendmsg_builds_a_verifying_header_and_passes_the_flow():
    l4 = L4()
    sport = l4.dg.udp.hash(3, 0, 0).sport
    skb = udp_send_skb(3, b"query", Flowi4(PEER, dport=53, ttl=9, pmtudisc=IP_PMTUDISC_DO))
    assert l4.dg.udp_sendmsg(skb) == 0
    assert l4.sent == [skb] and l4.routed == [PEER]
    uh = UdpHdr.from_bytes(skb.payload(), A, PEER)  # raises if the checksum does not verify
    assert (uh.source, uh.dest, uh.len) == (sport, 53, 13)
    assert bytes(skb.payload()[8:]) == b"query"
    assert skb.transport_header == skb.data
    flow = Flowi4.unpack(skb.cb)
    assert flow == Flowi4(PEER, A, 53, sport, IPPROTO_UDP, 9, 0, IP_PMTUDISC_DO)
    assert l4.mib.get("Udp", "OutDatagrams") == 1


def test_udp_sendmsg_from_a_bound_address_needs_no_route_lookup():
    l4 = L4()
    l4.dg.udp.hash(3, A2, 6000)
    skb = udp_send_skb(3, b"x", Flowi4(PEER, dport=53))
    assert l4.dg.udp_sendmsg(skb) == 0
    assert l4.routed == []
    UdpHdr.from_bytes(skb.payload(), A2, PEER)
    assert Flowi4.unpack(skb.cb).saddr == A2


def test_udp_sendmsg_errors():
    l4 = L4()
    assert l4.dg.udp_sendmsg(udp_send_skb(3, b"x", Flowi4(PEER, dport=53))) == errno.EINVAL  # unbound
    l4.dg.udp.hash(3, 0, 0)
    bad = udp_send_skb(3, b"x", Flowi4(PEER, dport=53))
    bad.cb = b"short"
    assert l4.dg.udp_sendmsg(bad) == errno.EINVAL
    l4.route = (errno.ENETUNREACH, 0)
    assert l4.dg.udp_sendmsg(udp_send_skb(3, b"x", Flowi4(PEER, dport=53))) == errno.ENETUNREACH
    assert l4.sent == [] and l4.mib.get("Udp", "OutDatagrams") == 0


def test_udp_sendmsg_passes_on_the_ip_errno_and_counts_enobufs():
    l4 = L4(xmit_errno=errno.ENOBUFS)
    l4.dg.udp.hash(3, 0, 0)
    assert l4.dg.udp_sendmsg(udp_send_skb(3, b"x", Flowi4(PEER, dport=53))) == errno.ENOBUFS
    assert l4.mib.get("Udp", "SndbufErrors") == 1 and l4.mib.get("Udp", "OutDatagrams") == 0
    l4.xmit_errno = errno.EMSGSIZE
    assert l4.dg.udp_sendmsg(udp_send_skb(3, b"x", Flowi4(PEER, dport=53))) == errno.EMSGSIZE


def test_ping_sendmsg_stamps_the_socket_ident_and_checksums():
    l4 = L4()
    l4.dg.ping.hash(4, 0, 0x2222)
    user = IcmpHdr.echo(0x1111, 5).to_bytes(b"data") + b"data"  # the user's own id is replaced
    skb = udp_send_skb(4, user, Flowi4(PEER))
    assert l4.dg.ping_sendmsg(skb) == 0
    icmph = IcmpHdr.from_bytes(skb.payload())  # verifies the checksum
    assert (icmph.type, icmph.code, icmph.echo_id, icmph.echo_sequence) == (8, 0, 0x2222, 5)
    assert bytes(skb.payload()[8:]) == b"data"
    assert Flowi4.unpack(skb.cb).protocol == IPPROTO_ICMP
    assert l4.mib.get("Icmp", "OutEchos") == 1 and l4.mib.get("Icmp", "OutMsgs") == 1


@pytest.mark.parametrize("user", [
    IcmpHdr(13).to_bytes(bytes(12)) + bytes(12),        # timestamp request
    IcmpHdr.echo(1, 1, reply=True).to_bytes(),           # echo reply
    IcmpHdr(8, 1).to_bytes(),                            # echo with code 1
    bytes([8, 0, 0, 0]),                                 # shorter than an ICMP header
])
def test_ping_sendmsg_accepts_only_echo_requests(user):
    l4 = L4()
    l4.dg.ping.hash(4, 0, 0x2222)
    assert l4.dg.ping_sendmsg(udp_send_skb(4, user, Flowi4(PEER))) == errno.EINVAL
    assert l4.sent == []


def test_table_by_protocol():
    dg = L4().dg
    assert dg.table(IPPROTO_UDP) is dg.udp and dg.table(IPPROTO_ICMP) is dg.ping
    with pytest.raises(SockError) as exc:
        dg.table(6)
    assert exc.value.errno == errno.EPROTONOSUPPORT
