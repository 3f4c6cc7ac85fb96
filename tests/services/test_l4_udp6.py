"""UDP and ICMPv6 ping sockets over IPv6 without gRPC: the dual-stack port table, and two hosts
of the default topology in one process (tests/services/twohosts.py) doing what Linux 6.18 did
between two namespaces with the same addresses (each expectation below was seen there first:
python sockets in `ip netns exec`, /proc/net/snmp6 before and after)."""

import errno
import struct

import pytest

from pktpath import skbuff as s
from pktpath.counters import Mib
from pktpath.services.l4.table import AF_INET, AF_INET6, PortTable
from pktpath.services.l4.udp6 import icmpv6_err_convert, ipv6_addr_needs_scope_id
from pktpath.sockerr import SockError
from pktpath.wire.addr import ip6_from_str as ip6
from pktpath.wire.addr import ip_from_str as ip
from pktpath.wire.ipv4 import IPPROTO_ICMP, IPPROTO_UDP
from pktpath.wire.ipv6 import IPPROTO_ICMPV6

from twohosts import TwoHosts

A4, A6 = ip("10.0.0.1"), ip6("2001:db8::1")
ANY6, MAPPED_A, MAPPED_ANY = 0, ip6("::ffff:10.0.0.1"), ip6("::ffff:0.0.0.0")
SOCK_DGRAM, SOL_IPV6 = 2, 41
IPV6_UNICAST_HOPS, IPV6_MTU_DISCOVER, IPV6_RECVERR, IPV6_V6ONLY = 16, 23, 25, 26
ECHO = b"\x80\x00\x00\x00\x00\x00\x00\x01"


def pattern(n: int) -> bytes:
    return bytes((n + i) % 251 for i in range(n))


# -- the port table both families share -----------------------------------------------------

def table(protocol: int = IPPROTO_UDP) -> PortTable:
    return PortTable(protocol, [A4], strict_family=protocol == IPPROTO_ICMP)


V4, V6 = AF_INET, AF_INET6
# (first bind, second bind) → what the second got, as Linux 6.18 answered in a namespace
BIND_CASES = [
    ((V6, ANY6, False), (V4, 0, False), errno.EADDRINUSE),
    ((V4, 0, False), (V6, ANY6, False), errno.EADDRINUSE),
    ((V6, ANY6, True), (V4, 0, False), 0),
    ((V4, 0, False), (V6, ANY6, True), 0),
    ((V6, A6, False), (V4, 0, False), 0),
    ((V4, 0, False), (V6, A6, False), 0),
    ((V4, A4, False), (V6, ANY6, False), errno.EADDRINUSE),
    ((V6, ANY6, False), (V4, A4, False), errno.EADDRINUSE),
    ((V6, MAPPED_A, False), (V4, A4, False), errno.EADDRINUSE),
    ((V6, MAPPED_A, False), (V4, 0, False), errno.EADDRINUSE),
    ((V4, A4, False), (V6, MAPPED_A, False), errno.EADDRINUSE),
    ((V6, A6, False), (V6, ANY6, False), errno.EADDRINUSE),
    ((V6, ANY6, False), (V6, A6, False), errno.EADDRINUSE),
    ((V6, ANY6, False), (V6, MAPPED_A, False), errno.EADDRINUSE),
    ((V6, ANY6, True), (V6, MAPPED_A, False), 0),
    ((V6, MAPPED_A, False), (V6, ANY6, True), 0),
    ((V6, ANY6, True), (V6, ANY6, False), errno.EADDRINUSE),
]


@pytest.mark.parametrize("first, second, expected", BIND_CASES,
                         ids=[f"{i}" for i in range(len(BIND_CASES))])
def test_binding_one_port_from_both_families_collides_as_linux_says(first, second, expected):
    t = table()
    t.hash(1, first[1], 5555, family=first[0], ipv6only=first[2])
    try:
        t.hash(2, second[1], 5555, family=second[0], ipv6only=second[2])
        got = 0
    except SockError as exc:
        got = exc.errno
    assert got == expected


def test_an_ipv4_datagram_reaches_a_dual_stack_socket_but_not_an_ipv6_only_one():
    t = table()
    t.hash(1, ANY6, 7000, family=V6)
    t.hash(2, ANY6, 7001, family=V6, ipv6only=True)
    assert t.lookup(ip("10.0.0.2"), 4000, A4, 7000).sk == 1
    assert t.lookup(ip("10.0.0.2"), 4000, A4, 7001) is None
    assert t.lookup(ip6("2001:db8::2"), 4000, A6, 7001, V6).sk == 2


def test_an_ipv6_datagram_reaches_no_ipv4_socket_nor_one_bound_to_a_v4_mapped_address():
    t = table()
    t.hash(1, 0, 7000, family=V4)
    t.hash(2, MAPPED_A, 7001, family=V6)
    assert t.lookup(ip6("2001:db8::2"), 4000, A6, 7000, V6) is None
    assert t.lookup(ip6("2001:db8::2"), 4000, A6, 7001, V6) is None
    assert t.lookup(ip("10.0.0.2"), 4000, A4, 7001).sk == 2


def test_a_connected_dual_stack_socket_takes_only_its_ipv4_peers_datagrams():
    t = table()
    t.hash(1, MAPPED_A, 7000, ip6("::ffff:10.0.0.2"), 53, family=V6)
    assert t.lookup(ip("10.0.0.2"), 53, A4, 7000).sk == 1
    assert t.lookup(ip("10.0.0.3"), 53, A4, 7000) is None


def test_an_ipv4_socket_scores_above_an_ipv6_one_on_equal_terms(monkeypatch):
    t = table()
    monkeypatch.setattr(t, "_conflicts_family", lambda *a: False)
    monkeypatch.setattr(t, "_conflicts", lambda *a: False)
    t.hash(1, ANY6, 7000, family=V6)
    t.hash(2, 0, 7000, family=V4)
    assert t.lookup(ip("10.0.0.2"), 4000, A4, 7000).sk == 2


def test_ping_sockets_see_only_their_own_familys_replies_and_ipv6_ones_share_identifiers():
    t = table(IPPROTO_ICMP)
    t.hash(1, 0, 900, family=V4)
    t.hash(2, ANY6, 900, family=V6, ipv6only=True)
    t.hash(3, A6, 900, family=V6, ipv6only=True)  # ping sockets have sk_reuse: no EADDRINUSE
    assert t.lookup(ip("10.0.0.2"), 0, A4, 900).sk == 1
    assert t.lookup(ip6("2001:db8::2"), 0, A6, 900, V6).sk == 3
    t.hash(4, ANY6, 901, family=V6, ipv6only=False)
    assert t.lookup(ip("10.0.0.2"), 0, A4, 901) is None


def test_a_bound_ipv6_address_must_be_the_hosts_and_not_tentative():
    t = table()
    t.chk_addr6 = lambda addr, dev: addr == A6
    with pytest.raises(SockError) as exc:
        t.hash(1, ip6("2001:db8::9"), 0, family=V6)
    assert exc.value.errno == errno.EADDRNOTAVAIL
    with pytest.raises(SockError) as exc:
        t.hash(2, ip6("::ffff:10.0.0.9"), 0, family=V6)
    assert exc.value.errno == errno.EADDRNOTAVAIL
    assert t.hash(3, A6, 0, family=V6).saddr == A6


@pytest.mark.parametrize("type_, code, expected", [
    (1, 0, (errno.ENETUNREACH, False)), (1, 1, (errno.EACCES, True)), (1, 3, (errno.EHOSTUNREACH, False)),
    (1, 4, (errno.ECONNREFUSED, True)), (1, 9, (errno.EPROTO, True)), (2, 0, (errno.EMSGSIZE, False)),
    (3, 0, (errno.EHOSTUNREACH, False)), (4, 1, (errno.EPROTO, True)), (100, 0, (errno.EPROTO, False)),
])
def test_icmpv6_errors_become_the_errnos_icmpv6_err_convert_gives(type_, code, expected):
    assert icmpv6_err_convert(type_, code) == expected


def test_which_destinations_need_an_interface():
    assert [ipv6_addr_needs_scope_id(ip6(a)) for a in ("fe80::1", "ff02::1", "ff01::1", "::1", "2001:db8::1",
                                                       "ff0e::1")] == [True, True, True, False, False, False]


# -- two hosts -------------------------------------------------------------------------------

@pytest.fixture
def net():
    h = TwoHosts()
    h.run(3)  # duplicate address detection: the addresses are tentative for about a second
    yield h
    h.close()


def sock6(host, protocol: int = 0):
    return host.api.socket(SOCK_DGRAM, protocol, AF_INET6)


def counters(host, group: str) -> dict[str, int]:
    return host.counters().get(group, {})


def delta(after: dict, before: dict) -> dict:
    return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}


def errno_of(call) -> int:
    with pytest.raises(OSError) as exc:
        call()
    return exc.value.errno


@pytest.mark.parametrize("size", [1, 1452, 1453, 65527])
def test_udp_over_ipv6_arrives_byte_exact_fragmented_at_the_source_past_1452_bytes(net, size):
    b = sock6(net.b)
    b.bind(("::", 7000))
    a = sock6(net.a)
    frags = counters(net.a, "Ip6").get("FragCreates", 0)
    data = pattern(size)
    assert a.sendto(data, ("2001:db8::2", 7000)) == size
    net.run(0.1)
    got, (addr, port, flowinfo, scope_id) = b.recvfrom()
    assert got == data and (addr, port, flowinfo, scope_id) == ("2001:db8::1", a.getsockname()[1], 0, 0)
    # 1452 bytes + 8 + 40 fill a 1500-byte MTU; one more is two fragments (1448 + 13 bytes of data)
    made = counters(net.a, "Ip6").get("FragCreates", 0) - frags
    assert made == {1: 0, 1452: 0, 1453: 2, 65527: 46}[size]


def test_a_round_trip_counts_what_linux_counts(net):
    b = sock6(net.b)
    b.bind(("::", 7000))
    a = sock6(net.a)
    a.sendto(b"x" * 100, ("2001:db8::2", 7000))
    net.run(0.1)  # the neighbours are resolved: what follows is the exchange alone
    a0, b0 = counters(net.a, "Udp6"), counters(net.b, "Udp6")
    a.sendto(b"x" * 100, ("2001:db8::2", 7000))
    net.run(0.1)
    for _ in range(2):
        data, addr = b.recvfrom()
        b.sendto(data, addr)
    net.run(0.1)
    a.recvfrom()
    assert delta(counters(net.a, "Udp6"), a0) == {"OutDatagrams": 1, "InDatagrams": 1}
    assert delta(counters(net.b, "Udp6"), b0) == {"InDatagrams": 2, "OutDatagrams": 2}


def test_a_dual_stack_socket_sees_an_ipv4_sender_as_v4_mapped_and_answers_it_over_ipv4(net):
    b = sock6(net.b)
    b.bind(("::", 7000))
    a4 = net.a.api.socket(SOCK_DGRAM, 0, AF_INET)
    a4.sendto(b"over IPv4", ("10.0.0.2", 7000))
    net.run(0.1)
    data, addr = b.recvfrom()
    assert data == b"over IPv4" and addr[0] == "::ffff:10.0.0.1" and addr[1] == a4.getsockname()[1]
    before = len(net.b.cable.frames)
    b.sendto(b"back", addr)
    net.run(0.1)
    assert a4.recvfrom() == (b"back", ("10.0.0.2", 7000))
    assert [f[12:14] for f in net.b.cable.frames[before:]] == [b"\x08\x00"]  # an IPv4 frame
    assert counters(net.b, "Udp") == {"InDatagrams": 1, "OutDatagrams": 1}


def test_an_ipv6_only_socket_neither_takes_nor_sends_ipv4(net):
    b = sock6(net.b)
    assert b.getsockopt(SOL_IPV6, IPV6_V6ONLY) == 0  # net.ipv6.bindv6only
    b.setsockopt(SOL_IPV6, IPV6_V6ONLY, 1)
    b.bind(("::", 7000))
    assert errno_of(lambda: b.setsockopt(SOL_IPV6, IPV6_V6ONLY, 0)) == errno.EINVAL  # it has a port
    assert errno_of(lambda: b.sendto(b"x", ("::ffff:10.0.0.1", 9))) == errno.ENETUNREACH
    assert errno_of(lambda: b.connect(("::ffff:10.0.0.1", 9))) == errno.ENETUNREACH
    a4 = net.a.api.socket(SOCK_DGRAM, 0, AF_INET)
    a4.sendto(b"x", ("10.0.0.2", 7000))
    net.run(0.1)
    assert counters(net.b, "Udp").get("NoPorts") == 1
    four = net.b.api.socket(SOCK_DGRAM, 0, AF_INET)
    four.bind(("0.0.0.0", 7000))  # IPv4's port 7000 is free


def test_bind_refuses_what_inet6_bind_refuses(net):
    s6 = sock6(net.a)
    s6.setsockopt(SOL_IPV6, IPV6_V6ONLY, 1)
    assert errno_of(lambda: s6.bind(("::ffff:10.0.0.1", 0))) == errno.EINVAL
    assert errno_of(lambda: sock6(net.a).bind(("2001:db8::9", 0))) == errno.EADDRNOTAVAIL
    assert errno_of(lambda: sock6(net.a).bind(("::ffff:10.0.0.9", 0))) == errno.EADDRNOTAVAIL
    assert errno_of(lambda: sock6(net.a).bind(("fe80::1", 0))) == errno.EINVAL  # no sin6_scope_id
    assert errno_of(lambda: sock6(net.a).bind(("10.0.0.1", 0))) == errno.EINVAL  # a sockaddr_in
    ll = sock6(net.a)
    lladdr = next(str(a).split("/")[0] for a in net.a.l3.addrconf.addr_list("eth0") if str(a).startswith("fe80"))
    ll.bind((lladdr, 0, 0, 1))
    assert ll.getsockname()[::2] == (lladdr, 0) and ll.getsockname()[3] == 1


def test_a_tentative_address_cannot_be_bound_until_dad_is_done():
    h = TwoHosts()
    try:
        assert errno_of(lambda: sock6(h.a).bind(("2001:db8::1", 7000))) == errno.EADDRNOTAVAIL
        h.run(3)
        sock6(h.a).bind(("2001:db8::1", 7000))
    finally:
        h.close()


def test_the_source_of_an_ipv6_peer_and_of_an_ipv4_one_are_as_linux_answers(net):
    c = sock6(net.a)
    c.connect(("2001:db8::2", 9))
    assert c.getsockname()[0] == "2001:db8::1" and c.getpeername() == ("2001:db8::2", 9, 0, 0)
    m = sock6(net.a)
    m.connect(("::ffff:10.0.0.2", 9))
    assert m.getsockname()[0] == "::ffff:10.0.0.1" and m.getpeername() == ("::ffff:10.0.0.2", 9, 0, 0)
    assert errno_of(lambda: m.connect(("2001:db8::2", 9))) == errno.EAFNOSUPPORT
    bound = sock6(net.a)
    bound.bind(("2001:db8::1", 0))
    assert errno_of(lambda: bound.sendto(b"x", ("::ffff:10.0.0.2", 9))) == errno.ENETUNREACH
    assert errno_of(lambda: bound.connect(("::ffff:10.0.0.2", 9))) == errno.ENETUNREACH


def test_sizes_past_what_one_datagram_holds_are_emsgsize(net):
    s6 = sock6(net.a)
    assert errno_of(lambda: s6.sendto(bytes(65528), ("2001:db8::2", 9))) == errno.EMSGSIZE
    assert errno_of(lambda: s6.sendto(bytes(65508), ("::ffff:10.0.0.2", 9))) == errno.EMSGSIZE
    assert errno_of(lambda: s6.sendto(b"x", ("2001:db8::2", 0))) == errno.EINVAL


def test_port_unreachable_reaches_a_connected_sender_as_econnrefused(net):
    c = sock6(net.a)
    c.connect(("2001:db8::2", 9))
    u = sock6(net.a)
    b0 = counters(net.b, "Icmp6").get("OutDestUnreachs", 0)
    c.send(b"x")
    u.sendto(b"x", ("2001:db8::2", 9))
    net.run(0.1)
    assert errno_of(c.recvfrom) == errno.ECONNREFUSED
    assert errno_of(u.recvfrom) == errno.EAGAIN  # an unconnected socket is not told (no IPV6_RECVERR)
    assert counters(net.b, "Udp6").get("NoPorts") == 2
    assert counters(net.b, "Icmp6").get("OutDestUnreachs", 0) - b0 == 2


def test_ipv6_recverr_tells_an_unconnected_socket_too(net):
    u = sock6(net.a)
    u.setsockopt(SOL_IPV6, IPV6_RECVERR, 1)
    u.sendto(b"x", ("2001:db8::2", 9))
    net.run(0.1)
    with pytest.raises(OSError) as exc:
        u.recvfrom()
    assert exc.value.errno == errno.ECONNREFUSED
    assert "from 2001:db8::2: destination unreachable: Port unreachable" in str(exc.value)


def udp_raw(net, dport: int, check: int, payload: bytes = b"z") -> None:
    """A datagram from A to B whose UDP checksum is `check` as it stands (0: none), as a raw
    socket sends it: a frame on B's wire."""
    from pktpath.wire.ipv6 import Ipv6Hdr

    udp = struct.pack("!HHHH", 5555, dport, 8 + len(payload), check) + payload
    hdr = Ipv6Hdr(ip6("2001:db8::1"), ip6("2001:db8::2"), IPPROTO_UDP, hop_limit=64, payload_len=len(udp))
    frame = bytes.fromhex("02000000000b02000000000a86dd") + hdr.to_bytes(len(udp)) + udp
    rx = s.alloc_skb(s.NET_SKB_PAD + len(frame), sampled=False)
    s.skb_reserve(rx, s.NET_SKB_PAD)
    s.skb_put_data(rx, frame)
    rx.dev = "eth0"
    net.sim.post(lambda: net.b.l2.NetifReceiveSkb.hop_batch(net.b.l2, s.to_batch([rx])))
    net.run(0.1)


def test_a_zero_or_wrong_udp_checksum_is_refused_and_never_answered(net):
    b = sock6(net.b)
    b.bind(("::", 7000))
    unreach = counters(net.b, "Icmp6").get("OutDestUnreachs", 0)
    udp_raw(net, 7000, 0)       # a socket is there: UDP_CSUM
    udp_raw(net, 7002, 0)       # none: NO_SOCKET, and still no port unreachable
    udp_raw(net, 7000, 0x1234)  # a checksum that does not verify
    assert errno_of(b.recvfrom) == errno.EAGAIN
    assert counters(net.b, "Udp6") == {"InCsumErrors": 3, "InErrors": 3}
    assert counters(net.b, "Icmp6").get("OutDestUnreachs", 0) == unreach
    drops = counters(net.b, "Drops")
    assert drops.get("SKB_DROP_REASON_UDP_CSUM") == 2 and drops.get("SKB_DROP_REASON_NO_SOCKET") == 1


def test_a_datagram_to_a_group_no_socket_wants_counts_ignored_multi(net):
    a = sock6(net.a)
    a.sendto(b"m", ("ff02::1", 7001, 0, 1))
    net.run(0.1)
    assert counters(net.b, "Udp6") == {"IgnoredMulti": 1}
    b = sock6(net.b)
    b.bind(("::", 7001))
    a.sendto(b"m2", ("ff02::1", 7001, 0, 1))
    net.run(0.1)
    assert b.recvfrom()[0] == b"m2"


def test_the_hop_limit_a_socket_sets_is_the_packets(net):
    b = sock6(net.b)
    b.bind(("::", 7000))
    a = sock6(net.a)
    assert a.getsockopt(SOL_IPV6, IPV6_UNICAST_HOPS) == 64
    a.setsockopt(SOL_IPV6, IPV6_UNICAST_HOPS, 7)
    assert errno_of(lambda: a.setsockopt(SOL_IPV6, IPV6_UNICAST_HOPS, 256)) == errno.EINVAL
    a.sendto(b"x", ("2001:db8::2", 7000))
    net.run(0.1)
    assert b.recvmsg().ttl == 7


def test_an_ipv4_socket_has_no_ipv6_options(net):
    four = net.a.api.socket(SOCK_DGRAM, 0, AF_INET)
    assert errno_of(lambda: four.setsockopt(SOL_IPV6, IPV6_V6ONLY, 1)) == errno.ENOPROTOOPT
    assert errno_of(lambda: four.getsockopt(SOL_IPV6, IPV6_V6ONLY)) == errno.EOPNOTSUPP
    assert errno_of(lambda: four.sendto(b"x", ("2001:db8::2", 9))) == errno.EAFNOSUPPORT


def test_a_ping6_socket_gets_its_echo_reply(net):
    p = sock6(net.a, IPPROTO_ICMPV6)
    assert p.getsockopt(SOL_IPV6, IPV6_V6ONLY) == 1  # ping_init_sock
    before = counters(net.a, "Icmp6")
    p.sendto(ECHO + b"abc", ("2001:db8::2", 0))
    net.run(0.1)
    data, addr = p.recvfrom()
    ident = p.getsockname()[1]
    assert addr == ("2001:db8::2", 0, 0, 0)
    assert data[0] == 129 and struct.unpack("!HH", data[4:8]) == (ident, 1) and data[8:] == b"abc"
    got = delta(counters(net.a, "Icmp6"), before)
    assert got["OutEchos"] == got["OutType128"] == got["InEchoReplies"] == 1


@pytest.mark.parametrize("message, dest", [
    (b"\x08\x00\x00\x00\x00\x00\x00\x01", "2001:db8::2"),   # ICMP's echo request, not ICMPv6's
    (b"\x80\x00\x00\x00\x00\x00", "2001:db8::2"),           # shorter than its header
    (ECHO, "::ffff:10.0.0.2"),                              # v4-mapped
    (ECHO, "fe80::2"),                                      # link-local without an interface
])
def test_a_ping6_socket_refuses_what_ping_v6_sendmsg_refuses(net, message, dest):
    assert errno_of(lambda: sock6(net.a, IPPROTO_ICMPV6).sendto(message, (dest, 0))) == errno.EINVAL


def test_socket_families_and_protocols_linux_refuses(net):
    api = net.a.api
    assert errno_of(lambda: api.socket(SOCK_DGRAM, IPPROTO_ICMP, AF_INET6)) == errno.EPROTONOSUPPORT
    assert errno_of(lambda: api.socket(SOCK_DGRAM, IPPROTO_ICMPV6, AF_INET)) == errno.EPROTONOSUPPORT


def test_packet_too_big_reaches_a_socket_as_emsgsize_unless_it_said_pmtudisc_dont():
    """udpv6_err: Packet Too Big is hard unless IPV6_PMTUDISC_DONT (then IPV6_RECVERR alone sees it)."""
    from pktpath.services.socket.sock import SocketLayer

    class L4:
        def hash(self, sock):
            return sock.saddr, sock.sport or 40000, sock.daddr, sock.dport

    layer = SocketLayer("A", L4(), Mib())
    want, dont = (layer.socket(AF_INET6, SOCK_DGRAM, 0) for _ in range(2))
    for sock in (want, dont):
        layer.connect(sock, ip6("2001:db8::2"), 9)
    layer.setsockopt(dont, SOL_IPV6, IPV6_MTU_DISCOVER, 0)
    assert layer.sk_error_report(want.sk, errno.EMSGSIZE, False, "", 2, 0, AF_INET6)
    assert not layer.sk_error_report(dont.sk, errno.EMSGSIZE, False, "", 2, 0, AF_INET6)
    layer.setsockopt(dont, SOL_IPV6, IPV6_RECVERR, 1)
    assert layer.sk_error_report(dont.sk, errno.EMSGSIZE, False, "", 2, 0, AF_INET6)


@pytest.mark.parametrize("level, option, sees", [(0, 11, "ipv4"), (SOL_IPV6, IPV6_RECVERR, "ipv6")],
                         ids=["IP_RECVERR", "IPV6_RECVERR"])
def test_each_familys_recverr_option_shows_a_dual_stack_socket_its_own_familys_errors(net, level, option, sees):
    """Seen on Linux 6.18: IP_RECVERR lets an unconnected AF_INET6 socket see port unreachable from
    an IPv4 peer (and not from an IPv6 one); IPV6_RECVERR the other way round."""
    seen = {}
    for family, dest in (("ipv4", "::ffff:10.0.0.2"), ("ipv6", "2001:db8::2")):
        u = sock6(net.a)
        u.setsockopt(level, option, 1)
        u.sendto(b"x", (dest, 9))
        net.run(0.1)
        with pytest.raises(OSError) as exc:
            u.recvfrom()
        seen[family] = exc.value.errno
    assert seen == {f: errno.ECONNREFUSED if f == sees else errno.EAGAIN for f in ("ipv4", "ipv6")}
