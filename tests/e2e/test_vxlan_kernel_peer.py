"""The Linux kernel as a VXLAN tunnel peer: pktpath's host B has eth0 on a VXLAN tunnel
(VNI 42, UDP 4789) to a network namespace this test makes, where the kernel's own vxlan
device (`ip link add vxlan0 type vxlan id 42 remote ... dstport 4789`) holds 10.80.0.1.
The underlay is a veth pair at MTU 1550, so the overlay keeps 1500 (VXLAN_HEADROOM).
The kernel pings B, and kernel sockets move 1 MB each way over TCP with B; what crossed
the underlay is read back by tshark as VXLAN; datagrams that are not B's are counted by
the reason the kernel names. Needs root and `ip netns`; skips with the reason elsewhere."""

import json
import os
import secrets
import shutil
import signal
import subprocess
import time

import pytest

from pktpath.client import SocketApi
from pktpath.machines import run
from pktpath.supervisor import Supervisor
from pktpath.topology import load

from e2ekit import cli_here, free_base_port, wait_for
from test_kernel_peer import (Peer, kernel_client_to_a_pktpath_listener, pktpath_client_to_a_kernel_server,
                              unavailable)

pytestmark = pytest.mark.slow
UNDER, OVER = "10.79.0", "10.80.0"  # underlay: .1 this namespace (pktpath's B), .2 the kernel's; overlay: the same
VNI = 42


@pytest.fixture(scope="module")
def peer(tmp_path_factory):
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    tag = secrets.token_hex(3)
    ns, here, there = f"pktpath-vx-{tag}", f"pku{tag}", f"pkw{tag}"
    tmp = tmp_path_factory.mktemp("vxlan-peer")
    topology = tmp / "vxlan.toml"
    topology.write_text(f"""
[[host]]
name = "B"
[[host.interface]]
name = "eth0"
mac = "02:00:00:00:80:02"
addr = "{OVER}.2/24"
attach = "vxlan:{UNDER}.2"
vni = {VNI}
""")
    run("ip", "netns", "add", ns)
    sup = tshark = None
    try:
        run("ip", "link", "add", here, "mtu", "1550", "type", "veth", "peer", "name", there, "mtu", "1550")
        run("sysctl", "-qw", f"net.ipv6.conf.{here}.disable_ipv6=1")
        run("ip", "addr", "add", f"{UNDER}.1/24", "dev", here)
        run("ip", "link", "set", here, "up")
        run("ip", "link", "set", there, "netns", ns)
        run("ip", "-n", ns, "addr", "add", f"{UNDER}.2/24", "dev", there)
        run("ip", "-n", ns, "link", "set", there, "up")
        run("ip", "-n", ns, "link", "set", "lo", "up")
        run("ip", "-n", ns, "link", "add", "vxlan0", "type", "vxlan", "id", str(VNI), "remote", f"{UNDER}.1",
            "local", f"{UNDER}.2", "dstport", "4789", "dev", there)
        # the inner checksums and segments finished by the kernel before they leave it, as for any
        # wire of pktpath's: a veth underlay would carry them on unfinished
        run("ip", "netns", "exec", ns, "ethtool", "-K", "vxlan0", "tx", "off", "tso", "off", "gso", "off")
        run("ip", "netns", "exec", ns, "ethtool", "-K", there, "tx", "off", "tso", "off", "gso", "off")
        run("ip", "-n", ns, "addr", "add", f"{OVER}.1/24", "dev", "vxlan0")
        run("ip", "-n", ns, "link", "set", "vxlan0", "up")
        capture = tmp / "underlay.pcapng"
        if shutil.which("tshark"):
            tshark = subprocess.Popen(["ip", "netns", "exec", ns, "tshark", "-q", "-i", there, "-f", "udp",
                                       "-w", str(capture)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                      start_new_session=True)
            assert wait_for(lambda: capture.exists(), timeout=20), "tshark did not start capturing"
        sup = Supervisor(load(topology), free_base_port(1), log_dir=tmp / "logs")
        sup.start(timeout=60)
        with SocketApi(sup.addrs.target("B", "socket")) as b:
            yield Peer(ns, "vxlan0", there, b, capture, tshark, sup, topology)
    finally:
        if tshark is not None and tshark.poll() is None:
            os.killpg(tshark.pid, signal.SIGKILL)
        if sup is not None:
            statuses = sup.stop()
            assert all(rc == 0 for _, _, rc in statuses), statuses
        run("ip", "netns", "del", ns, check=False)
        run("ip", "link", "del", here, check=False)


def test_the_kernels_ping_crosses_the_tunnel_and_is_answered(peer):
    proc = peer.ns_exec("ping", "-c", "3", "-i", "0.2", "-W", "5", f"{OVER}.2")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "3 received" in out, out + err
    counters = cli_here("netstat", "Vxlan", "--on", "B", "--base-port", str(peer.sup.base_port))
    assert counters.returncode == 0, counters.stderr
    assert "InPackets" in counters.stdout and "OutPackets" in counters.stdout, counters.stdout


def test_a_kernel_tcp_client_and_a_pktpath_listener_move_1_mb_each_way(peer):
    kernel_client_to_a_pktpath_listener(peer, f"{OVER}.2", 8000)


def test_a_pktpath_client_and_a_kernel_tcp_server_move_1_mb_each_way(peer):
    pktpath_client_to_a_kernel_server(peer, f"{OVER}.1", 8001)


def vxlan_counters(peer) -> dict[str, int]:
    out = cli_here("netstat", "Vxlan", "-j", "--on", "B", "--base-port", str(peer.sup.base_port))
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout).get("Vxlan", {})


def test_a_datagram_of_another_vni_or_with_a_bad_header_is_dropped_and_counted_by_its_reason(peer):
    """vxlan_rcv's checks: no tunnel of the VNI (VXLAN_VNI_NOT_FOUND), the I flag clear
    (VXLAN_INVALID_HDR). The frames inside would have been good ones."""
    before = vxlan_counters(peer)
    frame = bytes.fromhex("02000000800202000000800108060001080006040001") + bytes(28)
    sender = peer.ns_exec("python3", "-c", f"""
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for flags_vni in (bytes.fromhex("0800000000002b00"), bytes.fromhex("0000000000002a00")):  # VNI 43; no I flag
    s.sendto(flags_vni + bytes.fromhex("{frame.hex()}"), ("{UNDER}.1", 4789))
""")
    assert sender.wait(10) == 0, sender.stderr.read()
    assert wait_for(lambda: vxlan_counters(peer).get("InVniNotFound", 0) == before.get("InVniNotFound", 0) + 1
                    and vxlan_counters(peer).get("InInvalidHdr", 0) == before.get("InInvalidHdr", 0) + 1, 10)
    drops = cli_here("netstat", "Drops", "--on", "B", "--base-port", str(peer.sup.base_port)).stdout
    assert "VXLAN_VNI_NOT_FOUND" in drops and "VXLAN_INVALID_HDR" in drops, drops


def test_tshark_reads_the_underlay_as_vxlan_with_the_frames_inside(peer):
    """Last: every datagram on the underlay decodes as VXLAN of VNI 42 (the two crafted ones
    aside), and the ICMP echoes and TCP segments are inside."""
    if peer.tshark is None:
        if os.environ.get("CI"):
            pytest.fail("tshark is not installed (.ci/run installs Debian's tshark)")
        pytest.skip("tshark is not installed")
    time.sleep(1)
    os.killpg(peer.tshark.pid, signal.SIGINT)
    assert peer.tshark.wait(20) == 0, peer.tshark.stderr.read()
    out = subprocess.run(["tshark", "-r", str(peer.capture), "-T", "fields", "-E", "separator=|", "-e", "udp.dstport",
                          "-e", "vxlan.vni", "-e", "frame.protocols", "-o", "tcp.check_checksum:TRUE",
                          "-Y", "vxlan.vni == 42"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    rows = [line.split("|") for line in out.stdout.splitlines()]
    assert rows and {r[0] for r in rows} == {"4789"}
    protocols = {p for r in rows for p in r[2].split(":")}
    assert {"vxlan", "eth", "arp", "icmp", "tcp"} <= protocols, protocols
    bad = subprocess.run(["tshark", "-r", str(peer.capture), "-o", "tcp.check_checksum:TRUE", "-Y",
                          "vxlan.vni == 42 and (_ws.malformed or tcp.checksum.status == 0)"],
                         capture_output=True, text=True, timeout=120)
    assert bad.stdout.strip() == "", bad.stdout
