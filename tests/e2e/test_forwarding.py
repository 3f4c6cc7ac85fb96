"""A — R — B: forwarding, TTL expiry, fragmentation onto a smaller MTU and path-MTU
discovery, over IPv4 and over IPv6 (hop limits, Packet Too Big), every layer of the three
hosts its own process."""

import errno

import pytest
from google.protobuf import empty_pb2

from pktpath.client import (AF_INET6, IP_MTU_DISCOVER, IP_RECVERR, IP_TTL, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_IP,
                            IPPROTO_IPV6, IPV6_RECVERR, IPV6_UNICAST_HOPS)
from pktpath.flow import IP_PMTUDISC_DO, IP_PMTUDISC_DONT
from pktpath.pb import nic_pb2
from pktpath.rpc import l3_pb2_grpc, nic_pb2_grpc
from pktpath.wire import IcmpHdr
from pktpath.wire.icmpv6 import ICMPV6_ECHO_REPLY, ICMPV6_ECHO_REQUEST

from e2ekit import counter, ipv6_ready, stub, wait_for, with_sockets

pytestmark = pytest.mark.slow

A_IP, R_A_IP, B_IP = "10.0.1.1", "10.0.1.254", "10.0.2.1"


@pytest.fixture(scope="module")
def net(router_topology):
    yield from with_sockets(router_topology, "A", "B")


def echo(seq: int, data: bytes = b"pktpath!" * 7) -> bytes:
    return IcmpHdr.echo(0, seq).to_bytes(data) + data


def test_ping_through_the_router(net):
    sup, a, _ = net
    l3_r = stub(sup, "R", "l3", l3_pb2_grpc.L3Stub)
    forwarded = counter(l3_r, "Ip", "ForwDatagrams")
    with a.socket(protocol=IPPROTO_ICMP) as ping:
        ping.sendto(echo(1), (B_IP, 0))
        reply = ping.recvmsg(timeout=10)
    assert IcmpHdr.from_bytes(reply.data).type == 0 and reply.addr.addr == B_IP
    assert reply.ttl == 63  # B's 64, less one at R
    assert counter(l3_r, "Ip", "ForwDatagrams") == forwarded + 2


def test_ttl_expiry_answered_with_time_exceeded(net):
    sup, a, _ = net
    l3_r = stub(sup, "R", "l3", l3_pb2_grpc.L3Stub)
    sent = counter(l3_r, "Icmp", "OutTimeExcds")
    with a.socket(protocol=IPPROTO_ICMP) as ping:
        ping.setsockopt(IPPROTO_IP, IP_TTL, 1)
        ping.setsockopt(IPPROTO_IP, IP_RECVERR, 1)  # what ping(8) sets to see soft errors
        ping.sendto(echo(2), (B_IP, 0))
        with pytest.raises(OSError, match=f"from {R_A_IP}: time to live exceeded") as exc:
            ping.recvmsg(timeout=10)
    assert exc.value.errno == errno.EHOSTUNREACH
    assert counter(l3_r, "Icmp", "OutTimeExcds") == sent + 1
    assert counter(l3_r, "Drops", "SKB_DROP_REASON_IP_INHDR") >= 1


def test_router_fragments_onto_the_smaller_mtu(net):
    """DF clear: R's slow path splits each 1500-byte packet for B's 1280-byte link."""
    sup, a, b = net
    l3_r, l3_b = stub(sup, "R", "l3", l3_pb2_grpc.L3Stub), stub(sup, "B", "l3", l3_pb2_grpc.L3Stub)
    creates, oks = counter(l3_r, "Ip", "FragCreates"), counter(l3_b, "Ip", "ReasmOKs")
    # 2056 bytes of UDP leave A as 1480 + 576; R splits the first into 1256 + 224
    data = bytes(range(256)) * 8
    with b.socket() as rx, a.socket() as tx:
        rx.bind(("0.0.0.0", 8000))
        tx.setsockopt(IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DONT)
        tx.sendto(data, (B_IP, 8000))
        assert rx.recvfrom(timeout=10)[0] == data
    assert counter(l3_r, "Ip", "FragCreates") == creates + 2
    assert counter(l3_b, "Ip", "ReasmOKs") == oks + 1


def test_df_over_the_small_mtu_gets_fragmentation_needed(net):
    sup, a, b = net
    l3_a, l3_r = stub(sup, "A", "l3", l3_pb2_grpc.L3Stub), stub(sup, "R", "l3", l3_pb2_grpc.L3Stub)
    fails = counter(l3_r, "Ip", "FragFails")
    with b.socket() as rx, a.socket() as tx:
        rx.bind(("0.0.0.0", 8100))
        tx.connect((B_IP, 8100))
        tx.setsockopt(IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO)
        tx.send(bytes(1400))
        with pytest.raises(OSError, match=r"fragmentation needed \(mtu 1280\)") as exc:
            tx.recvfrom(timeout=10)
        assert exc.value.errno == errno.EMSGSIZE
        assert counter(l3_r, "Ip", "FragFails") == fails + 1
        # A learned the path MTU: with DF forced, a send that does not fit now fails at once
        with pytest.raises(OSError) as local:
            tx.send(bytes(1400))
        assert local.value.errno == errno.EMSGSIZE
        # and the default (IP_PMTUDISC_WANT) fragments at A to fit the path
        creates = counter(l3_a, "Ip", "FragCreates")
        with a.socket() as want:
            want.sendto(bytes(1400), (B_IP, 8100))
            assert rx.recvfrom(timeout=10)[0] == bytes(1400)
        assert counter(l3_a, "Ip", "FragCreates") == creates + 2


def test_routes_and_addresses_readable(net):
    sup, _, _ = net
    l3_r = stub(sup, "R", "l3", l3_pb2_grpc.L3Stub)
    routes = {r.dst: r for r in l3_r.GetRoutes(empty_pb2.Empty()).routes}
    assert routes["10.0.2.0/24"].dev == "eth1" and routes["10.0.2.0/24"].proto == "kernel"
    addrs = {x.dev: x for x in l3_r.GetAddrs(empty_pb2.Empty()).addrs}
    assert addrs["eth1"].local == "10.0.2.254/24" and addrs["eth1"].mtu == 1280


def test_the_linux_style_commands_show_the_router(net):
    """pktpath ip / netstat / ifconfig, as a user runs them against a running topology."""
    import subprocess
    import sys

    sup, a, _ = net
    test_ping_through_the_router(net)

    def run(*args):
        out = subprocess.run([sys.executable, "-m", "pktpath.cli", *args, "--on", "R", "--topology", "router",
                              "--base-port", str(sup.base_port)], capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        return out.stdout

    assert "10.0.2.0/24 dev eth1 proto kernel scope link src 10.0.2.254" in run("ip", "route")
    assert "eth1: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1280 qdisc pfifo_fast state UP" in run("ip", "addr")
    assert "    inet 10.0.2.254/24 brd 10.0.2.255 scope global eth1" in run("ip", "a", "show", "dev", "eth1")
    assert "10.0.2.1 dev eth1 lladdr 02:00:00:00:02:01" in run("ip", "neigh")
    forwarded = counter(stub(sup, "R", "l3", l3_pb2_grpc.L3Stub), "Ip", "ForwDatagrams")
    assert f"\n    {forwarded} forwarded\n" in run("netstat", "Ip")  # net-tools' words for ForwDatagrams
    assert "eth1: rx " in run("ifconfig")
    stats = dict(line.strip().split(": ") for line in run("ethtool", "-S", "R:eth1").splitlines()[1:])
    nic_r = stub(sup, "R", "nic", nic_pb2_grpc.NicStub).GetStats(nic_pb2.DevRequest(dev="eth1"))
    assert 0 < int(stats["tx_packets"]) and nic_r.tx_packets - 2 <= int(stats["tx_packets"]) <= nic_r.tx_packets
    assert stats["rx_missed_errors"] == "0"
    assert "Current hardware settings:\nRX:\t\t\t" in run("ethtool", "-g", "R:eth1")


# -- IPv6 through R: routers never fragment; hop limits; path MTU from Packet Too Big ------------------

A6, R_A6, B6 = "2001:db8:1::1", "2001:db8:1::fe", "2001:db8:2::1"


def echo6(seq: int, data: bytes = b"pktpath!" * 7) -> bytes:
    """An echo request as a ping socket takes it: the kernel stamps the identifier and the checksum."""
    return bytes([ICMPV6_ECHO_REQUEST, 0, 0, 0, 0, 0]) + seq.to_bytes(2, "big") + data


@pytest.fixture(scope="module")
def net6(net):
    sup = net[0]
    assert ipv6_ready(sup, "A", "R", "B"), "duplicate address detection did not finish"
    return net


def test_ping6_through_the_router_is_forwarded_with_the_hop_limit_less_one(net6):
    sup, a, _ = net6
    l3_r = stub(sup, "R", "l3", l3_pb2_grpc.L3Stub)
    forwarded = counter(l3_r, "Ip6", "OutForwDatagrams")
    with a.socket(protocol=IPPROTO_ICMPV6, family=AF_INET6) as ping:
        ping.sendto(echo6(1), (B6, 0))
        reply = ping.recvmsg(timeout=10)
    assert reply.data[0] == ICMPV6_ECHO_REPLY and reply.addr.addr == B6
    assert counter(l3_r, "Ip6", "OutForwDatagrams") == forwarded + 2  # the request and the reply


def test_hop_limit_expiry_answered_by_the_router_with_time_exceeded(net6):
    sup, a, _ = net6
    l3_r = stub(sup, "R", "l3", l3_pb2_grpc.L3Stub)
    sent, hdr_errors = counter(l3_r, "Icmp6", "OutTimeExcds"), counter(l3_r, "Ip6", "InHdrErrors")
    with a.socket(protocol=IPPROTO_ICMPV6, family=AF_INET6) as ping:
        ping.setsockopt(IPPROTO_IPV6, IPV6_RECVERR, 1)
        ping.setsockopt(IPPROTO_IPV6, IPV6_UNICAST_HOPS, 1)
        ping.sendto(echo6(2), (B6, 0))
        with pytest.raises(OSError) as exc:
            ping.recvmsg(timeout=10)
    assert exc.value.errno == errno.EHOSTUNREACH and R_A6 in str(exc.value), exc.value  # icmpv6_err_convert
    assert counter(l3_r, "Icmp6", "OutTimeExcds") == sent + 1
    assert counter(l3_r, "Ip6", "InHdrErrors") == hdr_errors + 1


def test_packet_too_big_from_the_router_teaches_the_path_mtu_then_the_datagram_gets_through(net6):
    """1400 bytes of UDP are a 1448-byte packet: R, never fragmenting, answers Packet Too Big
    (mtu 1280) and drops it; A learns the path MTU, and the same datagram sent again leaves
    A in two fragments that fit and B reassembles."""
    sup, a, b = net6
    l3_a, l3_r = stub(sup, "A", "l3", l3_pb2_grpc.L3Stub), stub(sup, "R", "l3", l3_pb2_grpc.L3Stub)
    too_big, learned = counter(l3_r, "Ip6", "InTooBigErrors"), counter(l3_a, "Icmp6", "InPktTooBigs")
    creates = counter(l3_a, "Ip6", "FragCreates")
    data = bytes(range(200)) * 7
    with b.socket(family=AF_INET6) as rx, a.socket(family=AF_INET6) as tx:
        rx.bind(("::", 8200))
        tx.sendto(data, (B6, 8200))
        assert wait_for(lambda: counter(l3_a, "Icmp6", "InPktTooBigs") == learned + 1)
        with pytest.raises(TimeoutError):
            rx.recvfrom(timeout=1)  # the first one was dropped at R
        tx.sendto(data, (B6, 8200))
        got, addr = rx.recvfrom(timeout=10)
    assert got == data and addr[0] == A6
    assert counter(l3_r, "Ip6", "InTooBigErrors") == too_big + 1
    assert counter(l3_a, "Ip6", "FragCreates") == creates + 2
