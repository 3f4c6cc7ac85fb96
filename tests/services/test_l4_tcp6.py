"""TCP over IPv6 (net/ipv6/tcp_ipv6.c) between two hosts of the default topology in one process
(tests/services/twohosts.py: every layer wired by the seams, a virtual clock), and what it does
seen in the frames on the wire (scapy reads them). Each behaviour was seen on Linux 6.18 first,
between two namespaces with the same addresses (python sockets, tcpdump, nstat): the numbers
asserted here (MSS 1440, windows 64800 and 64260, 1428-byte segments, 1208 after a Packet Too
Big of 1280, the RST's fields, the errnos) are what Linux sent and said."""

import errno

import pytest
from scapy.layers.inet import TCP
from scapy.layers.inet6 import IPv6, ICMPv6DestUnreach, ICMPv6PacketTooBig
from scapy.layers.l2 import Ether

from pktpath import skbuff as s
from pktpath.counters import Mib
from pktpath.offload import CHECKSUM_PARTIAL, napi_gro_receive, skb_gso_segment
from pktpath.services.l4.tcp.ecn import TCP_ECN_OK, TCP_ECN_SEEN, ip_dsfield
from pktpath.services.l4.tcp.ipv6 import tcp_mtu_to_mss
from pktpath.services.l4.tcp.sock import TcpSock
from pktpath.tools.ss import Sock as SsSock, table
from pktpath.wire.addr import ip6_from_str as ip6
from pktpath.wire.checksum import csum_tcpudp_magic_partial

from twohosts import TwoHosts

AF_INET, AF_INET6, SOCK_STREAM = 2, 10, 1
IPPROTO_TCP, SOL_IPV6, IPV6_V6ONLY, IPV6_RECVERR = 6, 41, 26, 25
SOL_SOCKET, SO_ERROR, TCP_MAXSEG = 1, 4, 2
A6, B6 = "2001:db8::1", "2001:db8::2"
MAC_A, MAC_B = "02:00:00:00:00:0a", "02:00:00:00:00:0b"


@pytest.fixture
def net():
    h = TwoHosts()
    h.run(3)  # duplicate address detection: the addresses are tentative for about a second
    yield h
    h.close()


def errno_of(call) -> int:
    with pytest.raises(OSError) as exc:
        call()
    return exc.value.errno


def counters(host, group: str) -> dict[str, int]:
    return host.counters().get(group, {})


def tcp6(host, family: int = AF_INET6):
    return host.api.socket(SOCK_STREAM, 0, family)


def listen(host, addr=("::", 5000), family: int = AF_INET6, v6only: bool = False):
    srv = tcp6(host, family)
    if v6only:
        srv.setsockopt(SOL_IPV6, IPV6_V6ONLY, 1)
    srv.bind(addr)
    srv.listen()
    return srv


def connect(net, sock, addr) -> None:
    """A non-blocking connect, then the handshake's time."""
    with pytest.raises(BlockingIOError):
        sock.connect(addr, nonblocking=True)
    net.run(0.05)


def pair(net, port: int = 5000):
    """An established connection A -> B over IPv6: (A's socket, B's accepted one)."""
    srv = listen(net.b, ("::", port))
    c = tcp6(net.a)
    connect(net, c, (B6, port))
    conn, _ = srv.accept()
    return c, conn


def move(net, tx, rx, data: bytes, *, step: float = 0.001, limit: int = 20000) -> bytes:
    """Write all of data on tx as its buffer takes it, read rx as it comes: what rx got."""
    sent, got = 0, bytearray()
    for _ in range(limit):
        if sent < len(data):
            try:
                sent += tx.send(data[sent:])
            except BlockingIOError:
                pass
        net.run(step)
        while True:
            try:
                chunk = rx.recv()
            except BlockingIOError:
                break
            if not chunk:
                return bytes(got)
            got += chunk
        if len(got) >= len(data):
            break
    return bytes(got)


def pattern(n: int) -> bytes:
    return bytes((i * 7 + n) % 251 for i in range(n))


def wire(host, since: int = 0) -> list:
    """The frames a host sent, from the `since`-th on, as scapy reads them."""
    return [Ether(f) for f in host.cable.frames[since:]]


def tcp_frames(host, since: int = 0, v6: bool = True) -> list:
    return [f for f in wire(host, since) if TCP in f and (IPv6 in f) == v6]


def inject(net, host, pkt) -> None:
    """A frame on host's wire (its L2 takes it as received), then time to handle it."""
    frame = bytes(pkt)
    rx = s.alloc_skb(s.NET_SKB_PAD + len(frame), sampled=False)
    s.skb_reserve(rx, s.NET_SKB_PAD)
    s.skb_put_data(rx, frame)
    rx.dev = "eth0"
    net.sim.post(lambda: host.l2.NetifReceiveSkb.hop_batch(host.l2, s.to_batch([rx])))
    net.run(0.001)


def to_b(ip_layer):
    return Ether(dst=MAC_B, src=MAC_A) / ip_layer


def to_a(ip_layer):
    return Ether(dst=MAC_A, src=MAC_B) / ip_layer


# -- the handshake and the data ---------------------------------------------------------------

def test_a_connection_over_ipv6_announces_mss_1440_and_carries_1428_byte_segments(net):
    """Linux 6.18 at MTU 1500: SYN mss 1440 win 64800, SYN-ACK mss 1440 win 64260, data 1428 a segment."""
    c, conn = pair(net)
    assert c.getsockname()[0] == A6 and c.getpeername() == (B6, 5000, 0, 0)
    assert conn.getpeername() == c.getsockname() and conn.getsockname() == (B6, 5000, 0, 0)
    syn = next(f for f in tcp_frames(net.a) if f[TCP].flags == "S")
    synack = next(f for f in tcp_frames(net.b) if f[TCP].flags == "SA")
    assert dict(syn[TCP].options)["MSS"] == 1440 and syn[TCP].window == 64800
    assert dict(synack[TCP].options)["MSS"] == 1440 and synack[TCP].window == 64260
    assert syn[IPv6].src == A6 and syn[IPv6].dst == B6 and syn[IPv6].hlim == 64
    assert c.getsockopt(IPPROTO_TCP, TCP_MAXSEG) == 1428
    since = len(net.a.cable.frames)
    data = pattern(200_000)
    assert move(net, c, conn, data) == data
    sizes = {len(f[TCP].payload) for f in tcp_frames(net.a, since) if len(f[TCP].payload)}
    assert max(sizes) == 1428
    # every segment's checksum, over IPv6's pseudo-header, is right (scapy computes it again)
    for f in tcp_frames(net.a, since)[:50]:
        check = f[TCP].chksum
        del f[TCP].chksum
        assert IPv6(bytes(f[IPv6]))[TCP].chksum == check
    back = pattern(50_000)[::-1]
    assert move(net, conn, c, back) == back


def test_the_connection_labels_its_flow_and_the_segments_count_in_tcp_and_ip6(net):
    before_tcp, before_ip6 = counters(net.a, "Tcp"), counters(net.a, "Ip6")
    c, conn = pair(net)
    move(net, c, conn, pattern(10_000))
    labels = {f[IPv6].fl for f in tcp_frames(net.a)}
    assert len(labels) == 1 and labels != {0}  # auto_flowlabels: one label for the connection
    tcp, ip6 = counters(net.a, "Tcp"), counters(net.a, "Ip6")
    assert tcp["ActiveOpens"] - before_tcp.get("ActiveOpens", 0) == 1 and tcp["CurrEstab"] == 1
    sent = len(tcp_frames(net.a))
    assert tcp["OutSegs"] - before_tcp.get("OutSegs", 0) <= sent  # a GSO packet counts its segments
    assert ip6["OutRequests"] - before_ip6.get("OutRequests", 0) >= 1


def test_tcp_small_queues_gets_every_ipv6_skbs_memory_back(net):
    """tcp_wfree for IPv6's skbs: once all is sent and freed below, sk_wmem_alloc is 0 again."""
    c, conn = pair(net)
    move(net, c, conn, pattern(300_000))
    net.run(0.5)
    tp = net.a.l4.tcp.sock(c.fd) or next(t for t in net.a.l4.tcp.sockets() if t.dport == 5000)
    assert tp.v6 and tp.wmem_alloc == 0


def test_connect_to_the_unspecified_address_is_to_the_loopback_address(net):
    srv = listen(net.a, ("::", 5001))
    c = tcp6(net.a)
    connect(net, c, ("::", 5001))
    conn, peer = srv.accept()
    assert c.getpeername() == ("::1", 5001, 0, 0) and peer == ("::1", c.getsockname()[1], 0, 0)
    assert move(net, c, conn, b"to myself") == b"to myself"


def test_what_tcp_v6_connect_refuses_before_anything_is_sent(net):
    only = tcp6(net.a)
    only.setsockopt(SOL_IPV6, IPV6_V6ONLY, 1)
    assert errno_of(lambda: only.connect(("::ffff:10.0.0.2", 80), nonblocking=True)) == errno.ENETUNREACH
    assert errno_of(lambda: tcp6(net.a).connect(("ff02::1", 80), nonblocking=True)) == errno.ENETUNREACH
    assert errno_of(lambda: tcp6(net.a).connect(("fe80::2", 80), nonblocking=True)) == errno.EINVAL


def test_binding_a_specific_ipv6_address_makes_the_socket_ipv6_only(net):
    """__inet6_bind sets sk_ipv6only for an address that is neither :: nor v4-mapped (Linux 6.18: 1, 0, 0)."""
    socks = {addr: tcp6(net.b) for addr in (B6, "::", "::ffff:10.0.0.2")}
    for addr, sock in socks.items():
        sock.bind((addr, 0))
    assert {addr: sock.getsockopt(SOL_IPV6, IPV6_V6ONLY) for addr, sock in socks.items()} == {
        B6: 1, "::": 0, "::ffff:10.0.0.2": 0}


# -- both families on one listener --------------------------------------------------------------

def test_a_dual_stack_listener_takes_an_ipv4_client_as_v4_mapped_over_ipv4(net):
    srv = listen(net.b, ("::", 5002))
    four = tcp6(net.a, AF_INET)
    connect(net, four, ("10.0.0.2", 5002))
    conn, peer = srv.accept()
    assert peer == ("::ffff:10.0.0.1", four.getsockname()[1], 0, 0)
    assert conn.getsockname() == ("::ffff:10.0.0.2", 5002, 0, 0)
    synack = next(f for f in tcp_frames(net.b, v6=False) if f[TCP].flags == "SA")
    assert dict(synack[TCP].options)["MSS"] == 1460  # over IPv4: tcp_v4_conn_request's
    data = pattern(100_000)
    assert move(net, four, conn, data) == data and move(net, conn, four, data[::-1]) == data[::-1]
    assert not tcp_frames(net.b, v6=True)  # not one segment of it went over IPv6
    tp = next(t for t in net.b.l4.tcp.sockets() if t.sport == 5002 and t.dport)
    assert (tp.family, tp.v6) == (AF_INET6, False)


def test_a_v6only_listener_leaves_ipv4_to_an_ipv4_listener_on_the_same_port(net):
    listen(net.b, ("::", 5003), v6only=True)
    four = tcp6(net.a, AF_INET)
    with pytest.raises(BlockingIOError):
        four.connect(("10.0.0.2", 5003), nonblocking=True)
    net.run(0.05)
    assert four.getsockopt(SOL_SOCKET, SO_ERROR) == errno.ECONNREFUSED  # nobody took it: a reset
    beside = listen(net.b, ("0.0.0.0", 5003), family=AF_INET)
    again = tcp6(net.a, AF_INET)
    connect(net, again, ("10.0.0.2", 5003))
    assert beside.accept()[1] == ("10.0.0.1", again.getsockname()[1])


def test_an_ipv6_client_of_a_dual_stack_socket_may_reach_an_ipv4_server_as_v4_mapped(net):
    srv = listen(net.b, ("0.0.0.0", 5004), family=AF_INET)
    six = tcp6(net.a)
    connect(net, six, ("::ffff:10.0.0.2", 5004))
    conn, peer = srv.accept()
    assert six.getsockname() == ("::ffff:10.0.0.1", peer[1], 0, 0) and six.getpeername()[0] == "::ffff:10.0.0.2"
    assert move(net, six, conn, b"mapped") == b"mapped"


# -- resets and the receive path's checks ------------------------------------------------------------

def test_a_syn_to_a_closed_port_is_answered_rst_ack_with_its_traffic_class_less_ecn(net):
    """Linux 6.18: class 0x28 in the SYN, RST|ACK seq 0 ack isn+1 class 0x28 back; TcpOutSegs, TcpOutRsts."""
    before = counters(net.b, "Tcp")
    since = len(net.b.cable.frames)
    inject(net, net.b, to_b(IPv6(src=A6, dst=B6, tc=0x2A) / TCP(sport=4444, dport=5999, flags="S", seq=1000)))
    rst = tcp_frames(net.b, since)[-1]
    assert rst[TCP].flags == "RA" and rst[TCP].seq == 0 and rst[TCP].ack == 1001
    assert (rst[TCP].sport, rst[TCP].dport) == (5999, 4444) and rst[IPv6].dst == A6 and rst[IPv6].tc == 0x28
    tcp = counters(net.b, "Tcp")
    assert tcp["OutRsts"] - before.get("OutRsts", 0) == 1 and tcp["InSegs"] - before.get("InSegs", 0) == 1
    assert counters(net.b, "Drops").get("SKB_DROP_REASON_NO_SOCKET", 0) >= 1


def test_a_connect_to_a_closed_port_is_refused(net):
    c = tcp6(net.a)
    with pytest.raises(BlockingIOError):
        c.connect((B6, 5998), nonblocking=True)
    net.run(0.05)
    assert c.getsockopt(SOL_SOCKET, SO_ERROR) == errno.ECONNREFUSED
    assert counters(net.a, "Tcp")["AttemptFails"] == 1


def test_a_segment_whose_checksum_fails_over_the_ipv6_pseudo_header_is_dropped_tcp_csum(net):
    listen(net.b, ("::", 5005))
    seg = TCP(sport=4444, dport=5005, flags="S", seq=1)
    seg.chksum = (bytes(IPv6(src=A6, dst=B6) / seg)[40 + 16] << 8 | 0x55) ^ 0xFFFF
    before = counters(net.b, "Tcp")
    inject(net, net.b, to_b(IPv6(src=A6, dst=B6) / seg))
    tcp = counters(net.b, "Tcp")
    assert tcp["InCsumErrors"] - before.get("InCsumErrors", 0) == 1 and tcp["InErrs"] - before.get("InErrs", 0) == 1
    assert counters(net.b, "Drops")["SKB_DROP_REASON_TCP_CSUM"] == 1


def test_a_syn_from_a_v4_mapped_ipv6_source_is_no_ipv6_peers_and_counts_ip6_in_hdr_errors(net):
    """tcp_v6_conn_request: such a SYN is consumed unanswered, Ip6InHdrErrors."""
    listen(net.b, ("::", 5006))
    since = len(net.b.cable.frames)
    before = counters(net.b, "Ip6").get("InHdrErrors", 0)
    inject(net, net.b, to_b(IPv6(src="::ffff:10.0.0.9", dst=B6) / TCP(sport=4444, dport=5006, flags="S")))
    assert counters(net.b, "Ip6")["InHdrErrors"] - before == 1
    assert not tcp_frames(net.b, since)


# -- ICMPv6 errors (tcp_v6_err) ---------------------------------------------------------------------

def quoting(frame, icmp, src: str = B6):
    """An ICMPv6 error to A about one of A's segments (as much of it as fits 1280 bytes)."""
    return to_a(IPv6(src=src, dst=A6) / icmp / bytes(frame[IPv6])[:1232])


def test_packet_too_big_lowers_the_mss_to_1208_and_sends_again_at_that_size(net):
    """Linux 6.18 behind a 1280-byte link: mss 1208 after the router's Packet Too Big, pmtu 1280,
    what was sent too big retransmitted, the route keeping the MTU."""
    c, conn = pair(net)
    net.b.cable.cut = True  # B's ACKs are lost: what A sent stays in flight
    since = len(net.a.cable.frames)
    c.send(pattern(20_000))
    net.run(0.001)
    big = next(f for f in tcp_frames(net.a, since) if len(f[TCP].payload) == 1428)
    before = counters(net.a, "Tcp").get("RetransSegs", 0)
    since = len(net.a.cable.frames)
    inject(net, net.a, quoting(big, ICMPv6PacketTooBig(mtu=1280), src="2001:db8::fe"))
    assert c.getsockopt(IPPROTO_TCP, TCP_MAXSEG) == 1208
    tp = next(t for t in net.a.l4.tcp.sockets() if t.dport == 5000)
    assert tp.pmtu == 1280
    resent = tcp_frames(net.a, since)
    assert resent and max(len(f[IPv6]) for f in resent) <= 1280
    assert counters(net.a, "Tcp")["RetransSegs"] > before
    assert net.a.l3.ip6out.ip6_route_output(type("F", (), {"daddr": ip6(B6), "oif": "", "saddr": 0})).mtu == 1280
    net.b.cable.cut = False
    net.run(2)  # the RTO sends the rest again, now the ACKs come back
    got = bytearray()
    while True:
        try:
            got += conn.recv()
        except BlockingIOError:
            break
    assert bytes(got) == pattern(20_000)


def test_a_packet_too_big_that_would_not_lower_the_mss_or_under_1280_changes_nothing(net):
    c, conn = pair(net)
    net.b.cable.cut = True
    since = len(net.a.cable.frames)
    c.send(pattern(3000))
    net.run(0.001)
    seg = next(f for f in tcp_frames(net.a, since) if len(f[TCP].payload))
    inject(net, net.a, quoting(seg, ICMPv6PacketTooBig(mtu=1500)))
    inject(net, net.a, quoting(seg, ICMPv6PacketTooBig(mtu=1000)))
    assert c.getsockopt(IPPROTO_TCP, TCP_MAXSEG) == 1428


def test_destination_unreachable_for_the_syn_ends_the_connect_as_linux_maps_it(net):
    """Linux 6.18: administratively prohibited EACCES, no route ENETUNREACH; TcpAttemptFails."""
    pair(net, 4999)  # the neighbours know each other
    for code, err in ((1, errno.EACCES), (0, errno.ENETUNREACH)):
        net.b.cable.cut = True  # no answer from B: the SYN waits
        c = tcp6(net.a)
        since = len(net.a.cable.frames)
        with pytest.raises(BlockingIOError):
            c.connect((B6, 5010 + code), nonblocking=True)
        net.run(0.001)
        syn = tcp_frames(net.a, since)[-1]
        inject(net, net.a, quoting(syn, ICMPv6DestUnreach(code=code)))
        assert c.getsockopt(SOL_SOCKET, SO_ERROR) == err
    assert counters(net.a, "Tcp")["AttemptFails"] == 2


def test_no_route_on_an_established_connection_is_soft_and_so_error_shows_it_once(net):
    """Linux 6.18: the connection goes on, SO_ERROR says ENETUNREACH once, then 0."""
    c, conn = pair(net)
    net.b.cable.cut = True
    since = len(net.a.cable.frames)
    c.send(b"x" * 100)
    net.run(0.001)
    seg = tcp_frames(net.a, since)[-1]
    inject(net, net.a, quoting(seg, ICMPv6DestUnreach(code=0)))
    assert c.getsockopt(SOL_SOCKET, SO_ERROR) == errno.ENETUNREACH
    assert c.getsockopt(SOL_SOCKET, SO_ERROR) == 0
    net.b.cable.cut = False
    net.run(1.5)  # the RTO sends it again
    assert conn.recv() == b"x" * 100


def test_with_ipv6_recverr_the_soft_error_fails_the_next_call(net):
    c, conn = pair(net)
    c.setsockopt(SOL_IPV6, IPV6_RECVERR, 1)
    net.b.cable.cut = True
    since = len(net.a.cable.frames)
    c.send(b"y" * 10)
    net.run(0.001)
    inject(net, net.a, quoting(tcp_frames(net.a, since)[-1], ICMPv6DestUnreach(code=3)))
    assert errno_of(lambda: c.send(b"z")) == errno.EHOSTUNREACH


def test_an_error_quoting_a_sequence_outside_the_window_is_counted_out_of_window(net):
    c, conn = pair(net)
    seg = tcp_frames(net.a)[-1]
    seg[TCP].seq = (seg[TCP].seq + 1_000_000) % (1 << 32)
    before = counters(net.a, "TcpExt").get("OutOfWindowIcmps", 0)
    inject(net, net.a, quoting(seg, ICMPv6DestUnreach(code=1)))
    assert counters(net.a, "TcpExt")["OutOfWindowIcmps"] - before == 1
    assert c.getsockopt(SOL_SOCKET, SO_ERROR) == 0


def test_an_error_no_connection_matches_counts_icmp6_in_errors(net):
    fake = IPv6(src=A6, dst=B6) / TCP(sport=1111, dport=2222, seq=5)
    before = counters(net.a, "Icmp6").get("InErrors", 0)
    inject(net, net.a, to_a(IPv6(src=B6, dst=A6) / ICMPv6DestUnreach(code=4) / bytes(fake)))
    assert counters(net.a, "Icmp6")["InErrors"] - before == 1


# -- ECN from the traffic class --------------------------------------------------------------------

def test_ecn_over_ipv6_marks_new_data_ect0_in_the_traffic_class(net):
    net.a.l4.tcp.sysctls.set("net.ipv4.tcp_ecn", "1")
    c, conn = pair(net)
    since = len(net.a.cable.frames)
    move(net, c, conn, pattern(5000))
    data = [f for f in tcp_frames(net.a, since) if len(f[TCP].payload)]
    assert data and {f[IPv6].tc & 3 for f in data} == {2}  # ECT(0)
    tb = next(t for t in net.b.l4.tcp.sockets() if t.sport == 5000 and t.dport)
    assert tb.ecn_flags & TCP_ECN_OK and tb.ecn_flags & TCP_ECN_SEEN  # B read it from the traffic class


def test_ip_dsfield_reads_the_traffic_class_of_an_ipv6_header():
    raw = bytes(IPv6(src=A6, dst=B6, tc=0xB7) / TCP())
    skb = s.alloc_skb(s.NET_SKB_PAD + len(raw), sampled=False)
    s.skb_reserve(skb, s.NET_SKB_PAD)
    s.skb_put_data(skb, raw)
    s.skb_reset_network_header(skb)
    assert ip_dsfield(skb) == 0xB7


# -- pieces ------------------------------------------------------------------------------------------

def test_tcp_mtu_to_mss_takes_the_family_s_header_and_the_timestamps():
    v6 = TcpSock(1, v6=True, rx_opt_mss=1440, tstamp_ok=True)
    assert tcp_mtu_to_mss(v6, 1280) == 1208 and tcp_mtu_to_mss(v6, 1500) == 1428
    v4 = TcpSock(2, rx_opt_mss=1460)
    assert tcp_mtu_to_mss(v4, 1500) == 1460 and tcp_mtu_to_mss(v4, 1400) == 1360


def test_gso_cuts_an_ipv6_tcp_packet_into_segments_with_their_own_length_and_checksum():
    payload = pattern(3 * 1000 + 10)
    raw = bytes(Ether(dst=MAC_B, src=MAC_A) / IPv6(src=A6, dst=B6, fl=7) / TCP(sport=1, dport=2, seq=100,
                                                                               flags="PA") / payload)
    skb = s.alloc_skb(len(raw), sampled=False)
    s.skb_put_data(skb, raw)
    skb.network_header, skb.gso_size, skb.ip_summed = 14, 1000, CHECKSUM_PARTIAL
    segs = [Ether(bytes(seg.payload())) for seg in skb_gso_segment(skb, 0, "A")]
    assert [len(f[TCP].payload) for f in segs] == [1000, 1000, 1000, 10]
    assert [f[TCP].seq for f in segs] == [100, 1100, 2100, 3100] and [str(f[TCP].flags) for f in segs] == [
        "A", "A", "A", "PA"]
    for f in segs:
        assert f[IPv6].plen == 20 + len(f[TCP].payload) and f[IPv6].fl == 7
        check = f[TCP].chksum
        del f[TCP].chksum
        assert IPv6(bytes(f[IPv6]))[TCP].chksum == check


def test_ss_writes_ipv6_addresses_as_linux_s_ss_does():
    """ss on Linux 6.18: *:5002 *:* (dual stack), [::]:5003 [::]:* (IPV6_V6ONLY), brackets otherwise."""
    socks = [SsSock("tcp", "LISTEN", 0, 128, "::", 5002, "::", 0, 1, family=AF_INET6),
             SsSock("tcp", "LISTEN", 0, 128, "::", 5003, "::", 0, 2, family=AF_INET6, v6only=True),
             SsSock("tcp", "LISTEN", 0, 128, B6, 5004, "::", 0, 3, family=AF_INET6, v6only=True),
             SsSock("tcp", "ESTAB", 0, 0, "::ffff:10.0.0.2", 5002, "::ffff:10.0.0.1", 35736, 4, family=AF_INET6),
             SsSock("tcp", "LISTEN", 0, 128, "0.0.0.0", 80, "0.0.0.0", 0, 5)]
    lines = [" ".join(line.split()) for line in table(socks, netid=False)]
    assert lines[1:] == ["LISTEN 0 128 *:5002 *:*", "LISTEN 0 128 [::]:5003 [::]:*",
                         "LISTEN 0 128 [2001:db8::2]:5004 [::]:*",
                         "ESTAB 0 0 [::ffff:10.0.0.2]:5002 [::ffff:10.0.0.1]:35736",
                         "LISTEN 0 128 0.0.0.0:80 0.0.0.0:*"]


def frame6(seq: int, payload: bytes, *, flags: str = "A", tc: int = 0, fl: int = 0x12345, hlim: int = 64,
           sport: int = 40000) -> bytes:
    return bytes(Ether(dst=MAC_B, src=MAC_A) / IPv6(src=A6, dst=B6, tc=tc, fl=fl, hlim=hlim)
                 / TCP(sport=sport, dport=5201, seq=seq, ack=5000, flags=flags, window=512,
                       options=[("NOP", None), ("NOP", None), ("Timestamp", (1000, 99))]) / payload)


def rx6(frames: list[bytes]) -> list:
    return [s.SkBuff(bytes(s.NET_SKB_PAD) + f, s.NET_SKB_PAD, s.NET_SKB_PAD + len(f), s.NET_SKB_PAD + len(f))
            for f in frames]


def test_gro_merges_an_ipv6_flows_in_order_segments_and_gso_gives_them_back():
    """ipv6_gro_receive / tcp6_gro_receive: one packet, its payload length and pseudo-header check
    rewritten; GSO (tcp6_gso_segment) cuts it back into the frames that came."""
    mss, data = 1428, pattern(5 * 1428)
    frames = [frame6(1000 + i * mss, data[i * mss:(i + 1) * mss], flags="PA" if i == 4 else "A") for i in range(5)]
    mib = Mib()
    out = napi_gro_receive(rx6(frames), mib, 0, "B")
    assert len(out) == 1 and (out[0].gso_size, out[0].gso_segs) == (mss, 5) and mib.get("Gro", "Segments") == 5
    pkt = Ether(bytes(out[0].payload()))
    assert pkt[IPv6].plen == 32 + len(data) and bytes(pkt[TCP].payload) == data and pkt[TCP].flags == "PA"
    assert pkt[TCP].chksum == csum_tcpudp_magic_partial(ip6(A6), ip6(B6), IPPROTO_TCP, 32 + len(data))
    out[0].network_header = out[0].data + 14
    again = [bytes(seg.payload()) for seg in skb_gso_segment(out[0], 0, "B")]
    assert again == frames


def test_gro_keeps_apart_what_another_flow_label_traffic_class_or_hop_limit_sends():
    mss, data = 1428, pattern(3 * 1428)
    seg = [data[i * mss:(i + 1) * mss] for i in range(3)]
    for odd in (dict(fl=0x54321), dict(tc=0x20), dict(hlim=63)):
        frames = [frame6(1000, seg[0]), frame6(1000 + mss, seg[1], **odd), frame6(1000 + 2 * mss, seg[2])]
        assert len(napi_gro_receive(rx6(frames), Mib(), 0, "B")) >= 2, odd
    bad = bytearray(frame6(1000 + mss, seg[1]))
    bad[-1] ^= 0xFF  # its TCP checksum fails: left alone, for tcp_v6_rcv to count
    out = napi_gro_receive(rx6([frame6(1000, seg[0]), bytes(bad)]), Mib(), 0, "B")
    assert len(out) == 2 and out[1].ip_summed == 0


def test_time_wait_answers_the_peers_fin_again_over_ipv6(net):
    c, conn = pair(net)
    c.close()
    net.run(0.05)
    conn.close()
    net.run(0.05)
    tw = next(t for t in net.a.l4.tcp.sockets() if t.dport == 5000)
    assert tw.state.name == "TIME_WAIT" and tw.v6
    fin = next(f for f in reversed(tcp_frames(net.b)) if "F" in str(f[TCP].flags))
    since = len(net.a.cable.frames)
    inject(net, net.a, fin)
    ack = tcp_frames(net.a, since)[-1]
    assert ack[TCP].flags == "A" and ack[TCP].ack == fin[TCP].seq + 1 and ack[IPv6].dst == B6


def test_a_syn_ack_nobody_answers_goes_again_over_ipv6(net):
    pair(net, 4999)  # the neighbours know each other
    listen(net.b, ("::", 5007))
    net.a.cable.cut = True  # A would reset a SYN-ACK for nothing it sent
    since = len(net.b.cable.frames)
    inject(net, net.b, to_b(IPv6(src=A6, dst=B6) / TCP(sport=4444, dport=5007, flags="S", seq=77,
                                                        options=[("MSS", 1440)])))
    net.run(1.1)  # the SYN-ACK's timer (TCP_TIMEOUT_INIT)
    synacks = [f for f in tcp_frames(net.b, since) if f[TCP].flags == "SA"]
    assert len(synacks) == 2 and {f[TCP].ack for f in synacks} == {78} and synacks[0][IPv6].dst == A6
    assert dict(synacks[0][TCP].options)["MSS"] == 1440


def test_the_listener_an_ipv4_segment_finds_by_the_kernels_scores():
    """__inet_lookup_listener / inet6_lookup_listener: an exact address first, then AF_INET before
    AF_INET6 on equal terms; an IPv6-only or IPv6-bound listener takes no IPv4, a v4-mapped one no IPv6."""
    from pktpath.services.l4.tcp.ipv4 import Tcp

    tcp = Tcp("B", mib=Mib(), ip_queue_xmit=lambda skbs: None, to_sock=lambda ev: None,
              route_output=lambda daddr: (0, daddr, 1500))
    v4, b4 = 0x0A000002, 0x0A000009
    tcp.listen(1, 0, 80, 8, family=AF_INET6)
    tcp.listen(2, 0, 80, 8)
    tcp.listen(3, ip6("::ffff:10.0.0.2"), 80, 8, family=AF_INET6)
    tcp.listen(4, ip6(B6), 81, 8, family=AF_INET6)
    tcp.listen(5, 0, 82, 8, family=AF_INET6, ipv6only=True)
    assert tcp._listener(v4, 80).sk == 3 and tcp._listener(b4, 80).sk == 2
    assert tcp._listener(ip6(B6), 80, True).sk == 1
    assert tcp._listener(v4, 81) is None and tcp._listener(ip6(B6), 81, True).sk == 4
    assert tcp._listener(v4, 82) is None and tcp._listener(ip6(A6), 82, True).sk == 5
