"""IPV6_UNICAST_HOPS and IPV6_TCLASS on TCP, UDP and ping sockets over IPv6, between two hosts
of the default topology in one process (tests/services/twohosts.py), the frames read by scapy.

Seen on Linux 6.18 first, between two namespaces over a veth (python sockets, tcpdump -v):
- a client with hops 5 and IPV6_TCLASS 0xb9 reads back 0xb8 (a stream's ECN field is TCP's:
  do_ipv6_setsockopt keeps np->tclass & INET_ECN_MASK) and sends its SYN, ACKs and data
  `class 0xb8, hlim 5`; a listener with hops 7 and 0x29 answers SYN-ACK `class 0x28, hlim 7`,
  and the connection it accepts reads back 7 and 0x28 and sends with them;
- hops set to -1 after connect: the next segments go hlim 64, getsockopt says 64 (the route's);
- -2 and 256 are EINVAL for both; IPV6_TCLASS -1 reads back 0;
- with net.ipv4.tcp_ecn 1 the data goes `class 0xba` (ECT(0)), the ACKs 0xb8, and getsockopt
  after sending data reads 0xba (INET_ECN_xmit set np->tclass's ECN field);
- the side that closes first answers the peer's FIN from its timewait sock (an orphan's
  FIN_WAIT2 is one): `class 0x28, hlim 64`, the host's hop limit, the DSCP without ECN;
- UDP keeps all 8 bits (0xb9 reads back 0xb9, the datagram goes `class 0xb9, hlim 9`), a
  ping socket's echo request goes with its class 0x2a; an AF_INET socket has no IPv6 option:
  setsockopt ENOPROTOOPT, getsockopt EOPNOTSUPP.
"""

import errno

import pytest
from scapy.layers.inet import TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6
from scapy.layers.l2 import Ether

from twohosts import TwoHosts

AF_INET, AF_INET6, SOCK_STREAM, SOCK_DGRAM = 2, 10, 1, 2
IPPROTO_ICMPV6, SOL_IPV6, IPV6_UNICAST_HOPS, IPV6_TCLASS = 58, 41, 16, 67
A6, B6 = "2001:db8::1", "2001:db8::2"


@pytest.fixture
def net():
    h = TwoHosts()
    h.run(3)  # duplicate address detection: the addresses are tentative for about a second
    yield h
    h.close()


def tcp_frames(host, since: int = 0) -> list:
    return [f for f in (Ether(b) for b in host.cable.frames[since:]) if TCP in f and IPv6 in f]


def marks(frames) -> set:
    """(traffic class, hop limit) of each frame."""
    return {(f[IPv6].tc, f[IPv6].hlim) for f in frames}


def with_options(sock, hops: int, tclass: int):
    sock.setsockopt(SOL_IPV6, IPV6_UNICAST_HOPS, hops)
    sock.setsockopt(SOL_IPV6, IPV6_TCLASS, tclass)
    return sock


def established(net, *, client=(5, 0xB9), server=(7, 0x29), port: int = 5000):
    """A -> B over IPv6, each side's options set before connect() and listen()."""
    srv = with_options(net.b.api.socket(SOCK_STREAM, 0, AF_INET6), *server)
    srv.bind(("::", port))
    srv.listen()
    c = with_options(net.a.api.socket(SOCK_STREAM, 0, AF_INET6), *client)
    with pytest.raises(BlockingIOError):
        c.connect((B6, port), nonblocking=True)
    net.run(0.05)
    conn, _ = srv.accept()
    return srv, c, conn


def exchange(net, tx, rx, data: bytes) -> bytes:
    tx.send(data)
    net.run(0.3)
    return rx.recv()


def test_a_tcp_sockets_segments_carry_its_hop_limit_and_traffic_class_without_the_ecn_field(net):
    srv, c, conn = established(net)
    assert (c.getsockopt(SOL_IPV6, IPV6_UNICAST_HOPS), c.getsockopt(SOL_IPV6, IPV6_TCLASS)) == (5, 0xB8)
    assert (srv.getsockopt(SOL_IPV6, IPV6_UNICAST_HOPS), srv.getsockopt(SOL_IPV6, IPV6_TCLASS)) == (7, 0x28)
    assert exchange(net, c, conn, b"x" * 100) == b"x" * 100 and exchange(net, conn, c, b"y" * 100) == b"y" * 100
    a_sent, b_sent = tcp_frames(net.a), tcp_frames(net.b)
    assert a_sent[0][TCP].flags == "S" and marks(a_sent) == {(0xB8, 5)}
    synack = next(f for f in b_sent if f[TCP].flags == "SA")
    assert (synack[IPv6].tc, synack[IPv6].hlim) == (0x28, 7)  # the listener's (tcp_v6_send_synack)
    assert marks(b_sent) == {(0x28, 7)}


def test_the_accepted_connection_inherits_the_listeners_hop_limit_and_traffic_class(net):
    _, _, conn = established(net)
    assert (conn.getsockopt(SOL_IPV6, IPV6_UNICAST_HOPS), conn.getsockopt(SOL_IPV6, IPV6_TCLASS)) == (7, 0x28)


def test_options_set_after_connect_hold_from_the_next_segment_and_minus_one_is_the_routes(net):
    _, c, conn = established(net)
    c.setsockopt(SOL_IPV6, IPV6_UNICAST_HOPS, -1)
    c.setsockopt(SOL_IPV6, IPV6_TCLASS, 0x48)
    assert c.getsockopt(SOL_IPV6, IPV6_UNICAST_HOPS) == 64
    since = len(net.a.cable.frames)
    assert exchange(net, c, conn, b"z" * 10) == b"z" * 10
    assert marks(tcp_frames(net.a, since)) == {(0x48, 64)}


@pytest.mark.parametrize("optname", [IPV6_UNICAST_HOPS, IPV6_TCLASS])
@pytest.mark.parametrize("kind", [SOCK_STREAM, SOCK_DGRAM])
def test_values_outside_minus_one_to_255_are_einval(net, optname, kind):
    sock = net.a.api.socket(kind, 0, AF_INET6)
    for bad in (-2, 256):
        with pytest.raises(OSError) as exc:
            sock.setsockopt(SOL_IPV6, optname, bad)
        assert exc.value.errno == errno.EINVAL
    sock.setsockopt(SOL_IPV6, optname, -1)
    assert sock.getsockopt(SOL_IPV6, optname) == (64 if optname == IPV6_UNICAST_HOPS else 0)


def test_with_ecn_new_data_goes_ect0_over_the_dscp_and_getsockopt_shows_the_last_segments_field(net):
    net.a.l4.tcp.sysctls.set("net.ipv4.tcp_ecn", "1")
    _, c, conn = established(net, client=(5, 0xB8))
    since = len(net.a.cable.frames)
    assert exchange(net, c, conn, b"d" * 500) == b"d" * 500
    data = [f for f in tcp_frames(net.a, since) if len(f[TCP].payload)]
    assert data and marks(data) == {(0xBA, 5)}
    assert c.getsockopt(SOL_IPV6, IPV6_TCLASS) == 0xBA  # INET_ECN_xmit: the data was the last segment
    assert conn.getsockopt(SOL_IPV6, IPV6_TCLASS) == 0x28  # B sent only ACKs: INET_ECN_dontxmit


def test_the_timewait_socks_ack_has_the_hosts_hop_limit_and_the_dscp(net):
    _, c, conn = established(net, client=(5, 0xB9))
    c.close()  # A closes first: its orphan, in FIN_WAIT2 once B acknowledges, is a timewait sock
    net.run(0.05)
    since = len(net.a.cable.frames)
    conn.close()
    net.run(0.05)
    last = tcp_frames(net.a, since)
    assert last and last[-1][TCP].flags == "A" and marks(last) == {(0xB8, 64)}


def test_a_datagram_sockets_traffic_class_keeps_all_eight_bits(net):
    u = with_options(net.a.api.socket(SOCK_DGRAM, 0, AF_INET6), 9, 0xB9)
    assert u.getsockopt(SOL_IPV6, IPV6_TCLASS) == 0xB9
    u.sendto(b"hi", (B6, 9999))
    ping = net.a.api.socket(SOCK_DGRAM, IPPROTO_ICMPV6, AF_INET6)
    ping.setsockopt(SOL_IPV6, IPV6_TCLASS, 0x2A)
    ping.sendto(bytes(ICMPv6EchoRequest(id=1, seq=1, data=b"abc")), (B6, 0))
    net.run(0.1)
    sent = [Ether(b) for b in net.a.cable.frames]
    udp = next(f for f in sent if UDP in f and IPv6 in f and f[UDP].dport == 9999)
    echo = next(f for f in sent if ICMPv6EchoRequest in f)
    assert (udp[IPv6].tc, udp[IPv6].hlim) == (0xB9, 9) and echo[IPv6].tc == 0x2A


@pytest.mark.parametrize("kind", [SOCK_STREAM, SOCK_DGRAM])
def test_an_af_inet_socket_has_no_ipv6_traffic_class(net, kind):
    sock = net.a.api.socket(kind, 0, AF_INET)
    with pytest.raises(OSError) as exc:
        sock.setsockopt(SOL_IPV6, IPV6_TCLASS, 0x20)
    assert exc.value.errno == errno.ENOPROTOOPT
    with pytest.raises(OSError) as exc:
        sock.getsockopt(SOL_IPV6, IPV6_TCLASS)
    assert exc.value.errno == errno.EOPNOTSUPP
