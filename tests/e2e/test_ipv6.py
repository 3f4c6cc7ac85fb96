"""IPv6 above L3 between two hosts of the default topology (A 2001:db8::1, B 2001:db8::2), every
layer its own process: neighbour discovery from empty tables and ping -6, UDP over IPv6 through
the socket API at both ends (fragmented at the source past 1452 bytes), a dual-stack socket
taking IPv4 as ::ffff:a.b.c.d, and port unreachable reaching the sender; TCP over IPv6 (10 MB
byte-exact, MSS 1440), a dual-stack listener taking an IPv4 client, and `pktpath ss` showing
both families' sockets as ss does. Each behaviour was seen on Linux 6.18 between two namespaces
with the same addresses first."""

import errno
import hashlib
import os
import subprocess
import sys
import threading

import pytest
from google.protobuf import empty_pb2

from pktpath.client import AF_INET, AF_INET6, IPPROTO_ICMPV6, IPPROTO_IPV6, IPPROTO_TCP, IPV6_V6ONLY, SHUT_WR, \
    SOCK_STREAM
from pktpath.rpc import l3_pb2_grpc, l4_pb2_grpc, socket_pb2_grpc, softirq_pb2_grpc

from e2ekit import counters, read_all, stub, wait_for, with_sockets

TCP_MAXSEG = 2

pytestmark = pytest.mark.slow

A6, B6 = "2001:db8::1", "2001:db8::2"


def pktpath(sup, *words: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pktpath.cli", *words, "--base-port", str(sup.base_port)],
                           capture_output=True, text=True, timeout=timeout)


def addresses_ready(sup, host: str) -> bool:
    out = pktpath(sup, "ip", "-6", "addr", "show", "--on", host)
    return out.returncode == 0 and "2001:db8::" in out.stdout and "tentative" not in out.stdout


@pytest.fixture(scope="module")
def net(default_topology):
    # duplicate address detection holds the addresses tentative for a second or two
    assert wait_for(lambda: addresses_ready(default_topology, "A") and addresses_ready(default_topology, "B"),
                    timeout=20)
    yield from with_sockets(default_topology, "A", "B")


def pattern(n: int) -> bytes:
    return bytes((i * 7 + n) % 251 for i in range(n))


def neighbours(sup, host: str) -> str:
    out = pktpath(sup, "ip", "-6", "neigh", "show", "--on", host)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_neighbour_discovery_from_empty_tables_then_ping_6_gets_replies(net):
    """First in the module: no IPv6 neighbour is known yet; A's echo request waits for its Neighbour
    Solicitation's answer, B learns A from the solicitation, and the replies come back."""
    sup, _, _ = net
    assert B6 not in neighbours(sup, "A") and A6 not in neighbours(sup, "B")
    out = pktpath(sup, "ping", "-6", "-c", "3", "-i", "0.2", "-W", "5", B6, "--on", "A")
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == f"PING {B6}({B6}) 56 data bytes"
    assert lines[1].startswith(f"64 bytes from {B6}: icmp_seq=1 ttl=64 time=")
    assert "3 packets transmitted, 3 received, 0% packet loss" in out.stdout
    assert wait_for(lambda: B6 in neighbours(sup, "A") and A6 in neighbours(sup, "B"))
    assert "02:00:00:00:00:0b" in neighbours(sup, "A")


def test_ping_of_an_ipv6_literal_chooses_ipv6_by_itself_and_4_refuses_it(net):
    sup, _, _ = net
    out = pktpath(sup, "ping", "-c", "1", "-W", "5", A6, "--on", "B")
    assert out.returncode == 0 and f"64 bytes from {A6}: icmp_seq=1" in out.stdout, out.stdout + out.stderr
    refused = pktpath(sup, "ping", "-4", "-c", "1", A6, "--on", "B")
    assert refused.returncode == 2 and "Address family for hostname not supported" in refused.stderr


@pytest.mark.parametrize("size", [1, 1452, 1453, 65527])
def test_udp_over_ipv6_arrives_byte_exact(net, size):
    """1452 bytes + 8 + 40 fill a 1500-byte frame; 1453 and up leave A in fragments (ip6_fragment)
    that B reassembles; 65527 is the most one IPv6 payload holds."""
    sup, a, b = net
    port = 7600 + size % 1000
    frags = counters(stub(sup, "A", "l3", l3_pb2_grpc.L3Stub)).get("Ip6", {}).get("FragCreates", 0)
    with b.socket(family=AF_INET6) as rx, a.socket(family=AF_INET6) as tx:
        rx.bind(("::", port))
        data = pattern(size)
        assert tx.sendto(data, (B6, port)) == size
        got, (src, sport, flowinfo, scope_id) = rx.recvfrom(65535, timeout=10)
        assert got == data
        assert (src, sport, flowinfo, scope_id) == (A6, tx.getsockname()[1], 0, 0)
    made = counters(stub(sup, "A", "l3", l3_pb2_grpc.L3Stub)).get("Ip6", {}).get("FragCreates", 0) - frags
    assert made == {1: 0, 1452: 0, 1453: 2, 65527: 46}[size]


def test_a_dual_stack_socket_takes_ipv4_as_v4_mapped_and_answers_over_ipv4(net):
    sup, a, b = net
    with b.socket(family=AF_INET6) as six, a.socket(family=AF_INET) as four:
        assert six.getsockopt(IPPROTO_IPV6, IPV6_V6ONLY) == 0
        six.bind(("::", 7700))
        four.sendto(b"over IPv4", ("10.0.0.2", 7700))
        data, peer = six.recvfrom(65535, timeout=10)
        assert data == b"over IPv4" and peer == ("::ffff:10.0.0.1", four.getsockname()[1], 0, 0)
        six.sendto(b"back over IPv4", peer)
        assert four.recvfrom(65535, timeout=10) == (b"back over IPv4", ("10.0.0.2", 7700))
    with b.socket(family=AF_INET6) as only, a.socket(family=AF_INET) as four:
        only.setsockopt(IPPROTO_IPV6, IPV6_V6ONLY, 1)
        only.bind(("::", 7701))
        with b.socket(family=AF_INET) as beside:
            beside.bind(("0.0.0.0", 7701))  # the IPv6-only socket leaves IPv4's port free
            four.sendto(b"to IPv4's", ("10.0.0.2", 7701))
            assert beside.recvfrom(65535, timeout=10)[0] == b"to IPv4's"
        with pytest.raises(OSError) as exc:
            only.sendto(b"x", ("::ffff:10.0.0.1", 9))
        assert exc.value.errno == errno.ENETUNREACH


def test_binding_a_port_a_dual_stack_socket_holds_from_ipv4_is_eaddrinuse(net):
    _, _, b = net
    with b.socket(family=AF_INET6) as six, b.socket(family=AF_INET) as four:
        six.bind(("::", 7702))
        with pytest.raises(OSError) as exc:
            four.bind(("10.0.0.2", 7702))
        assert exc.value.errno == errno.EADDRINUSE


def test_port_unreachable_reaches_the_sender_as_econnrefused(net):
    sup, a, _ = net
    no_ports = counters(stub(sup, "B", "l4", l4_pb2_grpc.L4Stub)).get("Udp6", {}).get("NoPorts", 0)
    with a.socket(family=AF_INET6) as tx:
        tx.connect((B6, 9))
        assert tx.getsockname()[0] == A6 and tx.getpeername() == (B6, 9, 0, 0)
        tx.send(b"anyone?")
        with pytest.raises(ConnectionRefusedError) as exc:
            tx.recvfrom(65535, timeout=10)
        assert exc.value.errno == errno.ECONNREFUSED
        assert "destination unreachable: Port unreachable" in exc.value.detail
    assert counters(stub(sup, "B", "l4", l4_pb2_grpc.L4Stub))["Udp6"]["NoPorts"] == no_ports + 1


def test_a_ping6_socket_and_the_udp6_counters_as_snmp6_names_them(net):
    sup, a, b = net
    with a.socket(protocol=IPPROTO_ICMPV6, family=AF_INET6) as p:
        p.sendto(b"\x80\x00\x00\x00\x00\x00\x00\x07abc", (B6, 0))
        data, peer = p.recvfrom(65535, timeout=10)
        assert data[0] == 129 and data[6:] == b"\x00\x07abc" and peer == (B6, 0, 0, 0)
    a_counts = counters(stub(sup, "A", "l4", l4_pb2_grpc.L4Stub)).get("Udp6", {})
    b_counts = counters(stub(sup, "B", "socket", socket_pb2_grpc.SocketStub)).get("Udp6", {})
    assert a_counts.get("OutDatagrams", 0) >= 5 and b_counts.get("InDatagrams", 0) >= 4


def test_pktpath_send_and_recv_take_ipv6(net):
    sup, _, _ = net
    recv = subprocess.Popen([sys.executable, "-m", "pktpath.cli", "recv", "-6", "7800", "--on", "B", "-c", "1",
                             "--timeout", "20", "--base-port", str(sup.base_port)], stdout=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: "7800" in pktpath(sup, "ss", "-uan", "--on", "B").stdout, timeout=20)
        sent = pktpath(sup, "send", B6, "7800", "--data", "hello six", "--on", "A")
        assert sent.returncode == 0 and f"to [{B6}]:7800" in sent.stdout, sent.stdout + sent.stderr
        out, _ = recv.communicate(timeout=30)
    finally:
        recv.kill()
    assert out.splitlines()[0].startswith(f"9 bytes from [{A6}]:") and "hello six" in out


# -- TCP over IPv6 -----------------------------------------------------------------------------------

def listener6(api, port: int, *, v6only: bool = False, addr: str = "::"):
    srv = api.socket(SOCK_STREAM, family=AF_INET6)
    if v6only:
        srv.setsockopt(IPPROTO_IPV6, IPV6_V6ONLY, 1)
    srv.bind((addr, port))
    srv.listen(16)
    return srv


def test_tcp_over_ipv6_moves_ten_megabytes_byte_exact(net):
    """tcp_v6_connect and tcp_v6_rcv end to end: MSS 1440 announced, 1428 a segment with timestamps
    (as Linux 6.18 between two namespaces), every skb's memory back to the socket at the end."""
    sup, a, b = net
    l4_a = stub(sup, "A", "l4", l4_pb2_grpc.L4Stub)
    softirq_b = stub(sup, "B", "softirq", softirq_pb2_grpc.SoftirqStub)
    merged = counters(softirq_b).get("Gro", {}).get("Segments", 0)
    with listener6(b, 5601) as srv, a.socket(SOCK_STREAM, family=AF_INET6) as cli:
        cli.connect((B6, 5601), timeout=10)
        conn, peer = srv.accept(timeout=10)
        sport = cli.getsockname()[1]
        assert peer == (A6, sport, 0, 0) and cli.getpeername() == (B6, 5601, 0, 0)
        assert conn.getsockname() == (B6, 5601, 0, 0)
        assert cli.getsockopt(IPPROTO_TCP, TCP_MAXSEG) == 1428
        data = os.urandom(10_000_000)
        got = bytearray()
        reader = threading.Thread(target=read_all, args=(conn, got, 60))
        reader.start()
        cli.sendall(data)
        cli.shutdown(SHUT_WR)
        reader.join(120)
        assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
        assert wait_for(lambda: next(t.wmem_alloc for t in l4_a.GetTcpSockets(empty_pb2.Empty(), timeout=5).socks
                                     if t.sport == sport) == 0, 10)
        conn.close()
    # A's GSO cut its packets into 1428-byte segments; B's GRO (tcp6_gro_receive) merged them again
    assert counters(softirq_b)["Gro"]["Segments"] - merged > 10_000_000 // 1428 // 2


def test_a_dual_stack_listener_takes_an_ipv4_client_as_v4_mapped_and_an_ipv6_one(net):
    sup, a, b = net
    with listener6(b, 5602) as srv:
        with a.socket(SOCK_STREAM, family=AF_INET) as four:
            four.connect(("10.0.0.2", 5602), timeout=10)
            conn, peer = srv.accept(timeout=10)
            with conn:
                assert peer == ("::ffff:10.0.0.1", four.getsockname()[1], 0, 0)
                assert conn.getsockname() == ("::ffff:10.0.0.2", 5602, 0, 0)
                four.sendall(b"over IPv4")
                assert conn.recv(100, timeout=10) == b"over IPv4"
                conn.sendall(b"back over IPv4")
                assert four.recv(100, timeout=10) == b"back over IPv4"
        with a.socket(SOCK_STREAM, family=AF_INET6) as six:
            six.connect((B6, 5602), timeout=10)
            conn, peer = srv.accept(timeout=10)
            with conn:
                assert peer == (A6, six.getsockname()[1], 0, 0)
    with listener6(b, 5603, v6only=True), a.socket(SOCK_STREAM, family=AF_INET) as four:
        with pytest.raises(ConnectionRefusedError):
            four.connect(("10.0.0.2", 5603), timeout=10)


def test_pktpath_ss_lists_ipv6_tcp_and_udp_sockets_as_ss_does(net):
    """ss on Linux 6.18 for the same sockets: *:P for a dual-stack wildcard, [::]:P for an
    IPV6_V6ONLY one, [addr]:P otherwise, an IPv4 peer of an AF_INET6 socket [::ffff:a.b.c.d]:P."""
    sup, a, b = net
    with listener6(b, 5604), listener6(b, 5605, v6only=True), listener6(b, 5606, addr=B6), \
            b.socket(family=AF_INET6) as udp, a.socket(SOCK_STREAM, family=AF_INET6) as six, \
            a.socket(SOCK_STREAM, family=AF_INET) as four:
        udp.bind(("::", 5607))
        six.connect((B6, 5604), timeout=10)
        four.connect(("10.0.0.2", 5604), timeout=10)
        out = pktpath(sup, "ss", "-tuan", "--on", "B")
        assert out.returncode == 0, out.stderr
        lines = [" ".join(line.split()) for line in out.stdout.splitlines()]
        six_port, four_port = six.getsockname()[1], four.getsockname()[1]
        for row in ("udp UNCONN 0 0 *:5607 *:*", "tcp LISTEN 2 16 *:5604 *:*", "tcp LISTEN 0 16 [::]:5605 [::]:*",
                    "tcp LISTEN 0 16 [2001:db8::2]:5606 [::]:*",
                    f"tcp ESTAB 0 0 [2001:db8::2]:5604 [2001:db8::1]:{six_port}",
                    f"tcp ESTAB 0 0 [::ffff:10.0.0.2]:5604 [::ffff:10.0.0.1]:{four_port}"):
            assert row in lines, out.stdout
        mine = pktpath(sup, "ss", "-tn", "--on", "A", "dst", f"[{B6}]:5604")
        assert f"[2001:db8::1]:{six_port}" in mine.stdout and "10.0.0" not in mine.stdout, mine.stdout


def test_a_static_ipv6_route_added_by_rpc_is_listed_and_chosen_then_goes_again(net):
    """L3's RouteAdd/RouteDel with family AF_INET6 (as `ip -6 route add|del`: metric 1024,
    proto boot, which ip does not print): a prefix on no link, through B, then no longer."""
    from pktpath.pb import l3_pb2

    sup = net[0]
    l3_a = stub(sup, "A", "l3", l3_pb2_grpc.L3Stub)
    route = l3_pb2.Route(dst="2001:db8:77::/64", gateway="2001:db8::2", dev="eth0", family=10)
    l3_a.RouteAdd(route, timeout=5)
    try:
        shown = pktpath(sup, "ip", "-6", "route", "--on", "A").stdout
        assert "2001:db8:77::/64 via 2001:db8::2 dev eth0 metric 1024 pref medium" in shown, shown
        got = pktpath(sup, "ip", "-6", "route", "get", "2001:db8:77::9", "--on", "A").stdout
        assert "via 2001:db8::2 dev eth0" in got, got
    finally:
        l3_a.RouteDel(route, timeout=5)
    assert "2001:db8:77::" not in pktpath(sup, "ip", "-6", "route", "--on", "A").stdout
