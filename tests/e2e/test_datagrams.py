"""UDP and ping between two hosts on one link, every layer its own process: through
the socket API at both ends, and bad frames injected at the NIC."""

import errno
import struct
import time

import pytest
from google.protobuf import empty_pb2

from pktpath.client import IP_RECVERR, IPPROTO_ICMP, IPPROTO_IP, SO_RCVBUF, SO_TIMESTAMPNS, SOL_SOCKET
from pktpath.pb import l3_pb2, nic_pb2, skbuff_pb2, socket_pb2
from pktpath.rpc import l2_pb2_grpc, l3_pb2_grpc, l4_pb2_grpc, nic_pb2_grpc, socket_pb2_grpc
from pktpath.wire import EthHdr, IcmpHdr, IpHdr, UdpHdr
from pktpath.wire.addr import ip_from_str, mac_from_str

from e2ekit import counter, stub, wait_for, with_sockets

pytestmark = pytest.mark.slow

A_IP, B_IP = "10.0.0.1", "10.0.0.2"
A_MAC, B_MAC = "02:00:00:00:00:0a", "02:00:00:00:00:0b"


@pytest.fixture(scope="module")
def net(default_topology):
    yield from with_sockets(default_topology, "A", "B")


def pattern(n: int) -> bytes:
    return bytes((i * 7 + n) % 256 for i in range(n))


@pytest.mark.parametrize("size", [1, 1472, 1473, 8000, 65507])
def test_udp_payload_arrives_byte_exact(net, size):
    """1472 is the most one 1500-byte frame carries; 1473 and up are fragmented and reassembled."""
    sup, a, b = net
    with b.socket() as rx, a.socket() as tx:
        rx.bind(("0.0.0.0", 7000 + size % 1000))
        data = pattern(size)
        assert tx.sendto(data, (B_IP, 7000 + size % 1000)) == size
        got, (src, sport) = rx.recvfrom(65535, timeout=10)
        assert got == data
        assert src == A_IP and sport == tx.getsockname()[1]


def test_so_timestampns_is_when_the_receiving_nic_took_the_frame(net):
    """The NIC stamps every frame it receives (skb->tstamp); SO_TIMESTAMPNS hands it to the reader."""
    sup, a, b = net
    with b.socket() as rx, a.socket() as tx:
        rx.bind(("0.0.0.0", 7200))
        rx.setsockopt(SOL_SOCKET, SO_TIMESTAMPNS, 1)
        sent = time.time_ns()
        tx.sendto(b"when?", (B_IP, 7200))
        time.sleep(0.5)  # queued long before it is read: the stamp is not the read's time
        asked = time.time_ns()
        reply = rx.recvmsg(timeout=10)
        assert reply.data == b"when?"
        assert sent < reply.tstamp_ns < asked


def test_fragments_counted_at_both_ends(net):
    sup, a, b = net
    l3_a, l3_b = stub(sup, "A", "l3", l3_pb2_grpc.L3Stub), stub(sup, "B", "l3", l3_pb2_grpc.L3Stub)
    creates, oks = counter(l3_a, "Ip", "FragCreates"), counter(l3_b, "Ip", "ReasmOKs")
    with b.socket() as rx, a.socket() as tx:
        rx.bind(("0.0.0.0", 7100))
        tx.sendto(pattern(3000), (B_IP, 7100))  # 3008 bytes of UDP: 1480 + 1480 + 48
        assert rx.recvfrom(timeout=10)[0] == pattern(3000)
    assert counter(l3_a, "Ip", "FragCreates") == creates + 3
    assert counter(l3_b, "Ip", "ReasmOKs") == oks + 1


def test_ping(net):
    sup, a, _ = net
    with a.socket(protocol=IPPROTO_ICMP) as ping:
        request = IcmpHdr.echo(0, 1).to_bytes(b"abcdefgh" * 7)
        ping.sendto(request + b"abcdefgh" * 7, (B_IP, 0))
        reply = ping.recvmsg(timeout=10)
        icmph = IcmpHdr.from_bytes(reply.data)
        assert icmph.type == 0 and icmph.echo_sequence == 1
        assert icmph.echo_id == ping.getsockname()[1]  # the kernel stamps the socket's identifier
        assert reply.data[8:] == b"abcdefgh" * 7 and reply.addr.addr == B_IP and reply.ttl == 64


def test_port_unreachable_reaches_a_connected_sender(net):
    sup, a, b = net
    l4_b = stub(sup, "B", "l4", l4_pb2_grpc.L4Stub)
    noports = counter(l4_b, "Udp", "NoPorts")
    with a.socket() as tx:
        tx.connect((B_IP, 9))
        tx.send(b"anyone?")
        with pytest.raises(ConnectionRefusedError, match="port unreachable"):
            tx.recvfrom(timeout=10)
    assert counter(l4_b, "Udp", "NoPorts") == noports + 1
    assert counter(l4_b, "Drops", "SKB_DROP_REASON_NO_SOCKET") >= 1


def test_unconnected_sender_sees_the_error_only_with_ip_recverr(net):
    sup, a, _ = net
    with a.socket() as quiet, a.socket() as told:
        told.setsockopt(IPPROTO_IP, IP_RECVERR, 1)
        quiet.sendto(b"x", (B_IP, 10))
        told.sendto(b"x", (B_IP, 11))
        with pytest.raises(ConnectionRefusedError):
            told.recvfrom(timeout=10)
        with pytest.raises(TimeoutError):
            quiet.recvfrom(timeout=0.5)


def test_receive_buffer_full_drops_with_rcvbuff(net):
    sup, a, b = net
    sock_b = stub(sup, "B", "socket", socket_pb2_grpc.SocketStub)
    with b.socket() as rx, a.socket() as tx:
        rx.setsockopt(SOL_SOCKET, SO_RCVBUF, 4096)
        assert rx.getsockopt(SOL_SOCKET, SO_RCVBUF) == 8192  # doubled, as the kernel does
        rx.bind(("0.0.0.0", 7200))
        dropped = counter(sock_b, "Udp", "RcvbufErrors")
        for i in range(20):
            tx.sendto(pattern(1000), (B_IP, 7200))
        # Each datagram is charged its truesize, 1000 + 106 bytes of headers and headroom + 576
        # of sk_buff overhead = 1682; the queue takes one while sk_rmem_alloc <= 8192: five.
        assert wait_for(lambda: counter(sock_b, "Udp", "RcvbufErrors") == dropped + 15)
        assert counter(sock_b, "Drops", "SKB_DROP_REASON_SOCKET_RCVBUFF") >= 15
        received = 0
        while True:
            try:
                rx.recvfrom(timeout=0.3)
            except TimeoutError:
                break
            received += 1
        assert received == 5


def test_socket_errors_are_clear(net):
    sup, a, _ = net
    with pytest.raises(OSError) as bad_fd:
        a.call("Close", socket_pb2.FdRequest(fd=999))
    assert bad_fd.value.errno == errno.EBADF
    with a.socket() as tx:
        with pytest.raises(OSError) as big:
            tx.sendto(bytes(65508), (B_IP, 7000))
        assert big.value.errno == errno.EMSGSIZE
        with pytest.raises(OSError) as nodest:
            tx.send(b"x")
        assert nodest.value.errno == errno.EDESTADDRREQ
        with pytest.raises(OSError) as unreach:
            tx.sendto(b"x", ("192.168.7.7", 7))
        assert unreach.value.errno == errno.ENETUNREACH
        with pytest.raises(TimeoutError):
            tx.recvfrom(timeout=0.2)
    with a.socket() as s1, a.socket() as s2:
        s1.bind(("0.0.0.0", 7300))
        with pytest.raises(OSError) as inuse:
            s2.bind(("0.0.0.0", 7300))
        assert inuse.value.errno == errno.EADDRINUSE
        with pytest.raises(OSError) as notmine:
            s2.bind(("10.9.9.9", 7301))
        assert notmine.value.errno == errno.EADDRNOTAVAIL


def test_netfilter_drop_counted_on_its_rule(net):
    sup, a, b = net
    l3_b = stub(sup, "B", "l3", l3_pb2_grpc.L3Stub)
    l3_b.RuleAdd(l3_pb2.Rule(hook=l3_pb2.NF_INET_LOCAL_IN, protocol=17, dport=7400, target=l3_pb2.NF_DROP))
    with b.socket() as rx, a.socket() as tx:
        rx.bind(("0.0.0.0", 7400))
        for _ in range(3):
            tx.sendto(b"filtered", (B_IP, 7400))
        rule = wait_for(lambda: [r for r in l3_b.GetRules(empty_pb2.Empty()).rules if r.dport == 7400
                                 and r.pkts == 3])
        assert rule and rule[0].bytes == 3 * (20 + 8 + 8)
        with pytest.raises(TimeoutError):
            rx.recvfrom(timeout=0.5)
    assert counter(l3_b, "Drops", "SKB_DROP_REASON_NETFILTER_DROP") >= 3


def frame(payload: bytes, *, dst=B_MAC, ip_check=None, udp_check=None) -> bytes:
    """Ether/IPv4/UDP from A to B port 7500, optionally with a wrong checksum."""
    udp = bytearray(UdpHdr(40000, 7500).to_bytes(payload, ip_from_str(A_IP), ip_from_str(B_IP)) + payload)
    if udp_check is not None:
        udp[6:8] = udp_check.to_bytes(2, "big")
    ip = bytearray(IpHdr(ip_from_str(A_IP), ip_from_str(B_IP), 17).to_bytes(len(udp)))
    if ip_check is not None:
        ip[10:12] = ip_check.to_bytes(2, "big")
    return EthHdr(mac_from_str(dst), mac_from_str(A_MAC), 0x0800).to_bytes() + bytes(ip) + bytes(udp)


def test_malformed_frames_dropped_with_their_reasons(net):
    sup, _, b = net
    nic_b = stub(sup, "B", "nic", nic_pb2_grpc.NicStub)
    services = {layer: stub(sup, "B", layer, cls) for layer, cls in
                (("l2", l2_pb2_grpc.L2Stub),
                 ("l3", l3_pb2_grpc.L3Stub), ("l4", l4_pb2_grpc.L4Stub))}
    cases = [  # (frame, layer, drop reason, (group, counter))
        (frame(b"wrong mac", dst="02:00:00:00:00:99"), "l2", "SKB_DROP_REASON_OTHERHOST", None),
        (frame(b"bad ip checksum", ip_check=0x1234), "l3", "SKB_DROP_REASON_IP_CSUM", ("IpExt", "InCsumErrors")),
        (frame(b"bad udp checksum", udp_check=0x1234), "l4", "SKB_DROP_REASON_UDP_CSUM", ("Udp", "InCsumErrors")),
        (frame(b"truncated")[:14 + 20 + 4], "l3", "SKB_DROP_REASON_PKT_TOO_SMALL", ("IpExt", "InTruncatedPkts")),
    ]
    with b.socket() as rx:
        rx.bind(("0.0.0.0", 7500))
        for data, layer, reason, mib in cases:
            before = counter(services[layer], "Drops", reason)
            mib_before = counter(services[layer], *mib) if mib else 0
            reply = nic_b.Inject(skbuff_pb2.FrameBatch(dev="eth0", frames=[skbuff_pb2.Frame(data=data)]), timeout=5)
            assert reply.accepted == 1
            assert wait_for(lambda: counter(services[layer], "Drops", reason) == before + 1), reason
            if mib:
                assert counter(services[layer], *mib) == mib_before + 1
        # and a good one still arrives: nothing crashed
        nic_b.Inject(skbuff_pb2.FrameBatch(dev="eth0", frames=[skbuff_pb2.Frame(data=frame(b"fine"))]), timeout=5)
        assert rx.recvfrom(timeout=10)[0] == b"fine"


def test_rx_ring_overflow_counted_as_full_ring(net):
    sup, _, b = net
    nic_b = stub(sup, "B", "nic", nic_pb2_grpc.NicStub)
    ring = nic_b.GetRingParam(nic_pb2.DevRequest(dev="eth0"))
    burst = [skbuff_pb2.Frame(data=frame(b"flood", dst="02:00:00:00:00:99"))] * (ring.rx_pending * 4)
    reply = nic_b.Inject(skbuff_pb2.FrameBatch(dev="eth0", frames=burst), timeout=10)
    assert reply.dropped > 0 and reply.accepted + reply.dropped == len(burst)
    assert {d.reason for d in reply.drops} == {skbuff_pb2.SKB_DROP_REASON_FULL_RING}
    stats = nic_b.GetStats(nic_pb2.DevRequest(dev="eth0"))
    assert stats.rx_missed_errors >= reply.dropped
    # the host still works
    test_ping_b_to_a(net)


def test_ping_b_to_a(net):
    sup, _, b = net
    with b.socket(protocol=IPPROTO_ICMP) as ping:
        ping.sendto(struct.pack("!BBHHH", 8, 0, 0, 0, 7) + b"after", (A_IP, 0))
        assert IcmpHdr.from_bytes(ping.recvmsg(timeout=10).data).echo_sequence == 7


def test_tcpdump_writes_a_pcap_that_scapy_reads(net, tmp_path):
    """The L2 taps see a ping both ways; the pcap file `pktpath tcpdump -w` writes is
    one an independent tool reads, and the frames in it are the ping's."""
    import subprocess
    import sys

    from scapy.layers.inet import ICMP, IP
    from scapy.utils import rdpcap

    sup, a, _ = net
    pcap = tmp_path / "a.pcap"
    dump = subprocess.Popen([sys.executable, "-m", "pktpath.cli", "tcpdump", "--on", "A", "-i", "eth0",
                             "-w", str(pcap), "--base-port", str(sup.base_port), "--timeout", "2"],
                            stderr=subprocess.PIPE, text=True)
    assert "listening on A:eth0" in dump.stderr.readline()
    with a.socket(protocol=IPPROTO_ICMP) as ping:
        ping.sendto(struct.pack("!BBHHH", 8, 0, 0, 0, 42) + b"captured", (B_IP, 0))
        ping.recvmsg(timeout=10)
    assert dump.wait(20) == 0, dump.stderr.read()
    frames = [f for f in rdpcap(str(pcap)) if ICMP in f]  # an ARP re-probe may be there too
    assert [(f[IP].src, f[IP].dst, f[ICMP].type, f[ICMP].seq) for f in frames] == [
        (A_IP, B_IP, 8, 42), (B_IP, A_IP, 0, 42)]
    assert bytes(frames[0][ICMP].payload) == b"captured"
