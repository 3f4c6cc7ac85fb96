"""VLAN tags and group-addressed frames injected at B's NIC, every layer its own process, as
Linux 6.18 treats them on a host without VLAN devices (measured on a veth in a network
namespace): a datagram tagged for VLAN 42 is dropped (OTHERHOST, the device's
rx_otherhost_dropped), a priority-tagged one (VLAN 0) and a unicast one in a multicast
frame reach the socket."""

import pytest

from pktpath.pb import skbuff_pb2
from pktpath.rpc import l2_pb2_grpc, nic_pb2_grpc
from pktpath.wire import IpHdr, UdpHdr
from pktpath.wire.addr import ip_from_str, mac_from_str
from pktpath.wire.ethernet import ETH_P_8021Q, ETH_P_IP, VlanHdr

from e2ekit import counter, stub, wait_for, with_sockets

pytestmark = pytest.mark.slow

A_IP, B_IP = "10.0.0.1", "10.0.0.2"
A_MAC, B_MAC = mac_from_str("02:00:00:00:00:0a"), mac_from_str("02:00:00:00:00:0b")
PORT = 7600


@pytest.fixture(scope="module")
def net(default_topology):
    yield from with_sockets(default_topology, "A", "B")


def datagram(payload: bytes, *, dst=B_MAC, vlan_tci=None) -> bytes:
    udp = UdpHdr(40000, PORT).to_bytes(payload, ip_from_str(A_IP), ip_from_str(B_IP)) + payload
    ip = IpHdr(ip_from_str(A_IP), ip_from_str(B_IP), 17).to_bytes(len(udp)) + udp
    if vlan_tci is None:
        return dst + A_MAC + ETH_P_IP.to_bytes(2, "big") + ip
    return dst + A_MAC + ETH_P_8021Q.to_bytes(2, "big") + VlanHdr(vlan_tci, ETH_P_IP).to_bytes() + ip


def inject(sup, frame: bytes) -> None:
    nic_b = stub(sup, "B", "nic", nic_pb2_grpc.NicStub)
    reply = nic_b.Inject(skbuff_pb2.FrameBatch(dev="eth0", frames=[skbuff_pb2.Frame(data=frame)]), timeout=5)
    assert reply.accepted == 1


def test_datagram_for_a_vlan_without_a_device_is_dropped_as_otherhost(net):
    sup, _, b = net
    l2_b = stub(sup, "B", "l2", l2_pb2_grpc.L2Stub)
    drops = counter(l2_b, "Drops", "SKB_DROP_REASON_OTHERHOST")
    otherhost = counter(l2_b, "core_stats eth0", "rx_otherhost_dropped")
    with b.socket() as rx:
        rx.bind(("0.0.0.0", PORT))
        inject(sup, datagram(b"vlan 42", vlan_tci=42))
        assert wait_for(lambda: counter(l2_b, "Drops", "SKB_DROP_REASON_OTHERHOST") == drops + 1)
        assert counter(l2_b, "core_stats eth0", "rx_otherhost_dropped") == otherhost + 1
        inject(sup, datagram(b"untagged"))
        assert rx.recvfrom(timeout=10)[0] == b"untagged"  # the tagged one never came


@pytest.mark.parametrize("frame", [
    pytest.param(datagram(b"priority tag", vlan_tci=0xA000), id="priority-tagged"),
    pytest.param(datagram(b"multicast frame", dst=mac_from_str("01:00:5e:00:00:01")), id="multicast-mac"),
])
def test_datagram_reaches_the_socket(net, frame):
    sup, _, b = net
    with b.socket() as rx:
        rx.bind(("0.0.0.0", PORT))
        inject(sup, frame)
        got, (src, sport) = rx.recvfrom(timeout=10)
        assert frame.endswith(got) and (src, sport) == (A_IP, 40000)
