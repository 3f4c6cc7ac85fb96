"""IPv4, ICMP and their Ethernet framing held against the Linux kernel itself: each crafted
packet or frame goes to the kernel in a network namespace (over a veth) and to a pktpath host (the
drill's, in one process: the same L2, L3 and L4 the services run), both 192.168.0.1/16
behind the gateway 192.168.0.2, and what each answers, and the counters it moves, must be
the same (issue 18's section 3)."""

import os
import socket
import subprocess
import time

import pytest
from scapy.layers.inet import ICMP, IP

from pktpath.drill.live import GATEWAY_IP, GATEWAY_MAC, HOST_MAC, LOCAL_IP, REMOTE_IP
from pktpath.drill.local import LocalHost
from pktpath.drill.netns import in_netns, ip, ipv4_netns

pytestmark = pytest.mark.slow
ETH_P_ALL, ETH_P_IP = 0x0003, 0x0800
BROADCAST = "192.168.255.255"
KERNEL_WAIT_S = 0.3  # the kernel answers in microseconds; nothing more comes after this


def echo(code: int = 0, **ip_fields) -> bytes:
    return bytes(IP(src=REMOTE_IP, dst=LOCAL_IP, **ip_fields) / ICMP(type=8, code=code, id=7, seq=1) / (b"x" * 8))


def igmp_report() -> bytes:
    """An IGMPv2 membership report for 224.1.1.1, sent to our unicast address."""
    body = bytearray(b"\x16\x00\x00\x00" + bytes([224, 1, 1, 1]))
    csum = sum(int.from_bytes(body[i:i + 2], "big") for i in range(0, 8, 2))
    csum = ~((csum & 0xFFFF) + (csum >> 16)) & 0xFFFF
    body[2:4] = csum.to_bytes(2, "big")
    return bytes(IP(src=REMOTE_IP, dst=LOCAL_IP, proto=2, ttl=1) / bytes(body))


# what each case sends, what Linux 6.18 answers (protocol, ICMP type, code, a parameter
# problem's pointer: measured), and the counters it is held to besides the answer
CASES = {
    "an echo request's code is copied into its reply": (echo(code=5), [(1, 0, 5, None)], [("Icmp", "OutEchoReps")]),
    "a timestamp request gets a timestamp reply": (
        bytes(IP(src=REMOTE_IP, dst=LOCAL_IP) / ICMP(type=13, id=7, seq=1) / bytes(12)), [(1, 14, 0, None)],
        [("Icmp", "InTimestamps")]),
    "a record-route option with a bad pointer gets a parameter problem at its byte": (
        echo(options=b"\x07\x07\x03\x00\x00\x00\x00\x00"), [(1, 12, 0, 22)],
        [("Ip", "InHdrErrors"), ("Icmp", "OutParmProbs")]),
    "a source-routed packet is dropped unanswered": (
        echo(options=b"\x83\x07\x04\x00\x00\x00\x00\x01"), [], [("Icmp", "InEchos")]),
    "an IGMP report is taken, never answered with protocol unreachable": (
        igmp_report(), [], [("Ip", "InDelivers"), ("Icmp", "OutDestUnreachs")]),
    "an unknown protocol gets protocol unreachable": (
        bytes(IP(src=REMOTE_IP, dst=LOCAL_IP, proto=253) / (b"y" * 8)), [(1, 3, 2, None)],
        [("Ip", "InUnknownProtos")]),
    "a broadcast echo is counted and not answered": (
        bytes(IP(src=REMOTE_IP, dst=BROADCAST) / ICMP(type=8, id=7, seq=1)), [],
        [("Icmp", "InErrors"), ("IpExt", "InBcastPkts"), ("Icmp", "OutEchoReps")]),
    "a packet from a loopback address is dropped unanswered": (
        bytes(IP(src="127.0.0.1", dst=LOCAL_IP) / ICMP(type=8, id=7, seq=1)), [], [("Icmp", "InEchos")]),
}


def answers(packets: list[bytes]) -> list[tuple]:
    """What matters of each answer: protocol, ICMP type and code, a parameter problem's pointer."""
    out = []
    for raw in packets:
        pkt = IP(raw)
        if pkt.proto == 1:
            out.append((1, pkt[ICMP].type, pkt[ICMP].code, pkt[ICMP].ptr if pkt[ICMP].type == 12 else None))
        else:
            out.append((pkt.proto,))
    return out


def snmp(ns: str) -> dict[tuple[str, str], int]:
    """/proc/net/snmp and /proc/net/netstat of the namespace: (group, name) -> value."""
    text = subprocess.run(["ip", "netns", "exec", ns, "cat", "/proc/net/snmp", "/proc/net/netstat"],
                          capture_output=True, text=True, check=True).stdout.splitlines()
    out = {}
    for names, values in zip(text[::2], text[1::2]):
        group = names.split(":")[0]
        for name, value in zip(names.split()[1:], values.split()[1:]):
            out[group, name] = int(value)
    return out


class Kernel:
    """192.168.0.1/16 on a veth in a namespace of its own; the other end in a second one,
    where an AF_PACKET socket plays the gateway."""

    def __init__(self) -> None:
        self.ns, self.wire = f"pktpath-ipv4-k{os.getpid()}", f"pktpath-ipv4-w{os.getpid()}"
        ipv4_netns(self.ns)
        ipv4_netns(self.wire)
        ip("link", "add", "pkv0", "type", "veth", "peer", "name", "pkv1")
        ip("link", "set", "pkv0", "netns", self.ns)
        ip("link", "set", "pkv1", "netns", self.wire)
        for args in (("link", "set", "lo", "up"), ("link", "set", "pkv0", "address", HOST_MAC.hex(":")),
                     ("addr", "add", f"{LOCAL_IP}/16", "dev", "pkv0"), ("link", "set", "pkv0", "up"),
                     ("neigh", "add", GATEWAY_IP, "lladdr", GATEWAY_MAC.hex(":"), "dev", "pkv0", "nud", "permanent"),
                     ("route", "add", "192.0.2.0/24", "via", GATEWAY_IP)):
            ip("-n", self.ns, *args)
        ip("-n", self.wire, "link", "set", "pkv1", "up")
        with in_netns(self.wire):
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            self.sock.bind(("pkv1", 0))
        self.sock.settimeout(0.05)

    def send(self, packet: bytes) -> list[bytes]:
        return self.send_frame(HOST_MAC + GATEWAY_MAC + ETH_P_IP.to_bytes(2, "big") + packet)

    def send_frame(self, frame: bytes) -> list[bytes]:
        """The IPv4 packets the kernel sends in answer to `frame`, untagged, to the gateway."""
        while self._read():  # whatever came before (the link coming up) is not an answer
            pass
        self.sock.send(frame)
        got, end = [], time.monotonic() + KERNEL_WAIT_S
        while time.monotonic() < end:
            frame = self._read()
            if frame and frame[6:12] == HOST_MAC and frame[12:14] == ETH_P_IP.to_bytes(2, "big"):
                got.append(frame[14:])
        return got

    def _read(self) -> bytes | None:
        try:
            return self.sock.recv(65536)
        except TimeoutError:
            return None

    def close(self) -> None:
        self.sock.close()
        for ns in (self.ns, self.wire):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


@pytest.fixture(scope="module")
def kernel():
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    k = Kernel()
    yield k
    k.close()


@pytest.fixture(scope="module")
def pktpath_host():
    host = LocalHost()
    yield host
    host.close()


def pktpath_counters(host: LocalHost) -> dict[tuple[str, str], int]:
    return {(g, n): v for g, values in host.l3.mib.snapshot().items() for n, v in values.items()}


@pytest.mark.parametrize("case", CASES)
def test_pktpath_answers_and_counts_as_the_kernel_does(case, kernel, pktpath_host):
    packet, linux, counters = CASES[case]
    k_before = snmp(kernel.ns)
    k_answers = answers(kernel.send(packet))
    k_after = snmp(kernel.ns)
    assert k_answers == linux  # the kernel here is the reference the case was written from
    p_before = pktpath_counters(pktpath_host)
    pktpath_host.wire.out.clear()
    pktpath_host.inject(packet)
    p_answers = answers([p for _, p in pktpath_host.wire.out])
    p_after = pktpath_counters(pktpath_host)
    assert p_answers == k_answers
    for key in counters:
        k_delta = k_after.get(key, 0) - k_before.get(key, 0)
        assert p_after.get(key, 0) - p_before.get(key, 0) == k_delta, (key, k_delta)


TAGGED = {  # Ethernet framing around an echo request to our address: 802.1Q tags, a group address
    "a frame for VLAN 42, which the host has no device for, is not answered": (HOST_MAC, b"\x81\x00\x00\x2a", []),
    "a priority-tagged frame (VLAN 0) is answered untagged": (HOST_MAC, b"\x81\x00\x00\x00", [(1, 0, 0, None)]),
    "unicast IPv4 in a multicast frame is answered": (bytes.fromhex("01005e000001"), b"", [(1, 0, 0, None)]),
}


@pytest.mark.parametrize("case", TAGGED)
def test_pktpath_takes_tagged_and_group_addressed_frames_as_the_kernel_does(case, kernel, pktpath_host):
    dst, tag, linux = TAGGED[case]
    frame = dst + GATEWAY_MAC + tag + ETH_P_IP.to_bytes(2, "big") + echo()
    assert answers(kernel.send_frame(frame)) == linux
    pktpath_host.wire.out.clear()
    pktpath_host.inject_frame(frame)
    assert answers([p for _, p in pktpath_host.wire.out]) == linux
