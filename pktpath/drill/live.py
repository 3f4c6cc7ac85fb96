"""A pktpath host as the stack under test, live: its six layers as local processes, its
eth0 (192.168.0.1/16, the address the kernel's selftests give packetdrill's host) attached
to a TAP device whose other end is the script's wire, 192.0.2.0/24 routed through the
gateway 192.168.0.2, MTU 1500.

The wire end sits in a network namespace of its own: an AF_PACKET socket on the TAP
device writes the script's inbound packets as frames from the gateway and reads what the
host transmits, stamped by the kernel as it arrives; ARP requests for the gateway are
answered. The script's system calls are the calls of one process of the host (its socket
API, through the socket module's own interface: pktpath.interpose.sockets); its commands
are read by pktpath.drill.shell, each `sysctl` set through the layers' Sysctl RPCs.
"""

import os
import socket
import struct
import subprocess
import time
from pathlib import Path

from pktpath.drill.kernel import LOCAL_IP6, MTU6, REMOTE_IP6
from pktpath.drill.netns import Sniffer, in_netns, ip, ipv4_netns
from pktpath.drill.packets import Unsupported
from pktpath.drill.runner import RealTime
from pktpath.drill.shell import Shell
from pktpath.wire.addr import ip_from_str

LOCAL_IP, REMOTE_IP, GATEWAY_IP = "192.168.0.1", "192.0.2.1", "192.168.0.2"
GATEWAY_IP6 = "fd3d:a0b:17d6:8888::1"  # ksft_runner.sh's --gateway_ip for IPv6; the host's and remote's: kernel.py
HOST_MAC, GATEWAY_MAC = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")
ETH_P_ALL, ETH_P_IP, ETH_P_ARP, ETH_P_IPV6 = 0x0003, 0x0800, 0x0806, 0x86DD
IPPROTO_TCP = 6
WIRE_MTU = 1500
HOST = "L"

TOPOLOGY = """# pktpath drill's host: as packetdrill's, behind a gateway the runner plays
[[host]]
name = "{host}"
[[host.interface]]
name = "eth0"
mac = "{mac}"
addr = "{local}/16"
{attach}
{ipv6_iface}[[host.route]]
dst = "192.0.2.0/24"
via = "{gateway}"
dev = "eth0"
{ipv6_route}"""

# over IPv6 as ksft_runner.sh's ipv6_args: the wire's MTU 1520, so that an MSS of 1460 fits as over IPv4
IPV6_IFACE = """mtu = {mtu}
addr6 = ["{local}/48"]
"""
IPV6_ROUTE = """[[host.route]]
dst = "fd3d:fa7b:d17d::/48"
via = "{gateway}"
dev = "eth0"
"""


def drill_topology(attach: str = "", ip_version: int = 4) -> str:
    """The drill host's topology; `attach`, the line that puts its eth0 on a wire (live). Over
    IPv6, the host is dual-stack on a wire of MTU 1520, its IPv6 route through the gateway."""
    v6 = ip_version == 6
    return TOPOLOGY.format(host=HOST, mac=HOST_MAC.hex(":"), local=LOCAL_IP, gateway=GATEWAY_IP, attach=attach,
                           ipv6_iface=IPV6_IFACE.format(mtu=MTU6, local=LOCAL_IP6) if v6 else "",
                           ipv6_route=IPV6_ROUTE.format(gateway=GATEWAY_IP6) if v6 else "")


FIRST_BASE_PORT, LAYOUTS = 55000, 20  # where a drill host looks for a free port layout


class PktpathCalls:
    """What a script's calls and commands need of a pktpath host, live or in one process
    (pktpath.drill.local): its sockets are those of one process of the host, through the
    socket module's interface (`self.api`, its socket API); its commands are read by
    `self.shell`, each sysctl set by `_set_sysctl`."""

    def socket(self, type_: int, proto: int):
        from pktpath.interpose.sockets import PktSocket

        family = socket.AF_INET6 if ":" in self.local_ip else socket.AF_INET
        return PktSocket(family, type_, proto, _api=self.api)

    def fcntl(self, sock, cmd: int, arg: int) -> int:
        """F_GETFL/F_SETFL: O_NONBLOCK is the socket's blocking mode."""
        import fcntl as f

        if cmd == f.F_GETFL:
            return os.O_RDWR | (0 if sock.getblocking() else os.O_NONBLOCK)
        if cmd == f.F_SETFL:
            sock.setblocking(not arg & os.O_NONBLOCK)
            return 0
        raise Unsupported(f"fcntl command {cmd} on a pktpath socket")

    def ioctl(self, sock, request: int) -> int:
        """SIOCINQ, SIOCOUTQ and the like: the host's answer (tcp_ioctl, udp_ioctl)."""
        return sock.host_ioctl(request)

    def poll(self, polled: list, timeout_ms: int) -> list[int]:
        ready = dict(self.api.poll([(sk.host_fd, events) for sk, events in polled], timeout_ms))
        return [ready.get(sk.host_fd, 0) for sk, _ in polled]

    def epoll(self):
        raise Unsupported("epoll on a pktpath host")

    def tcp_info(self, sock) -> bytes:
        return sock.getsockopt(socket.SOL_TCP, socket.TCP_INFO, 256)

    def command(self, text: str, cwd: str) -> subprocess.CompletedProcess:
        self.shell.run(text, cwd)  # Unsupported for what a pktpath host cannot do
        return subprocess.CompletedProcess(text, 0, "", "")

    def unmodelled(self) -> dict[str, int]:
        """The host's `Unmodelled` counters (L4's and the socket layer's, summed)."""
        return self.view.counters().get("Unmodelled", {})

    def reset(self) -> None:
        """Every sysctl back to the host's default, as a fresh namespace starts."""
        from pktpath.sysctl import KNOBS

        for k in KNOBS.values():
            self._set_sysctl(k.name, k.format(k.default))
        self._set_qdisc("pfifo_fast")


class LiveHost(PktpathCalls, RealTime):
    SETTLE_S = 0.1  # the longest a TCP_INFO read or an ioctl waits for L4 to take the segments written before it

    def __init__(self, workdir: str, base_port: int | None = None, *, log_dir: str | None = None,
                 ip_version: int = 4) -> None:
        self._segments_base = self._segments_in = self._settled_in = 0
        from pktpath.supervisor import Supervisor, free_layout
        from pktpath.topology import load

        self.local_ip, self.remote_ip = (LOCAL_IP6, REMOTE_IP6) if ip_version == 6 else (LOCAL_IP, REMOTE_IP)
        self.tap = f"pd{os.getpid() % 100000}"
        self.ns = f"pktpath-drill-wire-{os.getpid()}"
        path = os.path.join(workdir, "drill.toml")
        with open(path, "w", encoding="utf-8") as f:
            f.write(drill_topology(f'attach = "tap:{self.tap}"', ip_version))
        topology = load(path)
        base = free_layout(topology, base_port or FIRST_BASE_PORT, 1 if base_port else LAYOUTS)
        if base is None:
            raise OSError(f"no free port layout from {base_port or FIRST_BASE_PORT} for the drill host")
        self.sup = Supervisor(topology, base, log_dir=Path(log_dir) if log_dir else None)
        self.sup.start(timeout=60)
        self.dev = "eth0"
        try:
            self._wire()
            self._sockets(self.sup.addrs, HOST)
            if ip_version == 6:
                self._wait_for_dad()
        except BaseException:
            self.close()
            raise
        self.shell = Shell(self._set_sysctl, self.reset, self._set_qdisc)

    # -- the wire ----------------------------------------------------------------------------
    def _wire(self) -> None:
        ipv4_netns(self.ns)
        ip("link", "set", self.tap, "netns", self.ns)  # the wire's end, away from the machine's own network
        ip("-n", self.ns, "link", "set", self.tap, "up")
        with in_netns(self.ns):
            self.raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.raw.bind((self.tap, ETH_P_ALL))
        self.sniffer = Sniffer(self.raw, self._take)

    def _take(self, frame: bytes, kind: int) -> bytes | None:
        """The host's IP packets; its ARP and neighbour solicitations for the gateway answered,
        what we wrote passed over."""
        if kind == socket.PACKET_OUTGOING:
            return None
        ethertype = struct.unpack_from("!H", frame, 12)[0]
        if ethertype == ETH_P_ARP:
            self._arp(frame)
        elif ethertype == ETH_P_IPV6:
            self._ndisc(frame)
        return frame[14:] if ethertype in (ETH_P_IP, ETH_P_IPV6) else None

    def _ndisc(self, frame: bytes) -> None:
        """Answer a neighbour solicitation for the gateway (solicited, override, with its MAC)."""
        from pktpath.wire.addr import ip6_from_str
        from pktpath.wire.icmpv6 import NDISC_NEIGHBOUR_SOLICITATION, NdNeighAdvert, NdNeighSolicit, tgt_lladdr
        from pktpath.wire.ipv6 import IPV6_HLEN, NEXTHDR_ICMP, Ipv6Hdr

        try:
            hdr = Ipv6Hdr.from_bytes(frame[14:])
            if hdr.nexthdr != NEXTHDR_ICMP or frame[14 + IPV6_HLEN] != NDISC_NEIGHBOUR_SOLICITATION:
                return
            ns = NdNeighSolicit.from_bytes(frame[14 + IPV6_HLEN:14 + IPV6_HLEN + hdr.payload_len])
        except Exception:  # not ours to judge: the host's own checks are what the scripts test
            return
        gateway = ip6_from_str(GATEWAY_IP6)
        if ns.target != gateway:
            return
        daddr = hdr.saddr  # never :: here: the host's DAD is not for the gateway's address
        na = NdNeighAdvert(gateway, solicited=True, override=True, options=(tgt_lladdr(GATEWAY_MAC),))
        body = na.to_bytes(gateway, daddr)
        packet = Ipv6Hdr(gateway, daddr, NEXTHDR_ICMP, hop_limit=255).to_bytes(len(body)) + body
        self.raw.send(frame[6:12] + GATEWAY_MAC + struct.pack("!H", ETH_P_IPV6) + packet)

    def _wait_for_dad(self, timeout: float = 10.0) -> None:
        """Until the host's IPv6 address is no longer tentative (packetdrill adds its own `nodad`)."""
        from google.protobuf import empty_pb2

        deadline = time.monotonic() + timeout
        while any(a.flags & 0x40 for i in self.view.stub["l3"].GetAddrs(empty_pb2.Empty(), timeout=5).addrs
                  for a in i.inet6):  # IFA_F_TENTATIVE
            if time.monotonic() > deadline:
                raise RuntimeError("the drill host's IPv6 address is still tentative")
            time.sleep(0.05)

    def _arp(self, frame: bytes) -> None:
        """Answer who-has for the gateway: the script's packets come from behind it."""
        op, sha, spa, _, tpa = struct.unpack_from("!6xH6s4s6s4s", frame, 14)
        if op == 1 and tpa == ip_from_str(GATEWAY_IP).to_bytes(4, "big"):
            reply = struct.pack("!HHBBH6s4s6s4s", 1, ETH_P_IP, 6, 4, 2, GATEWAY_MAC, tpa, sha, spa)
            self.raw.send(sha + GATEWAY_MAC + struct.pack("!H", ETH_P_ARP) + reply)

    def inject(self, packet: bytes) -> None:
        if len(packet) > WIRE_MTU:  # the kernel's TUN device takes any size (tcp_inq_*'s 10000 bytes), a TAP's wire not
            raise Unsupported(f"an inbound packet of {len(packet)} bytes: a live host's wire carries {WIRE_MTU}")
        v6 = packet[0] >> 4 == 6
        self.raw.send(HOST_MAC + GATEWAY_MAC + struct.pack("!H", ETH_P_IPV6 if v6 else ETH_P_IP) + packet)
        if packet[6 if v6 else 9] == IPPROTO_TCP:
            self._segments_in += 1

    def reset(self) -> None:
        super().reset()
        self._segments_base, self._segments_in = self._tcp_in_segs(), 0  # what this script writes
        self._settled_in = 0

    def _tcp_in_segs(self) -> int:
        from google.protobuf import empty_pb2

        reply = self.view.stub["l4"].GetCounters(empty_pb2.Empty(), timeout=5)
        return next((g.values.get("InSegs", 0) for g in reply.groups if g.name == "Tcp"), 0)

    def settle(self) -> None:
        """Until L4 has taken every TCP segment the script wrote to the wire (Tcp InSegs): the
        kernel takes a segment before the write to its TUN device returns, a live host a few
        hops later, and what is asked of a socket after an inbound packet must see it taken
        (the runner asks before each system call; TCP_INFO and ioctls ask too)."""
        if self._segments_in == self._settled_in:
            return
        deadline = time.monotonic() + self.SETTLE_S
        while self._tcp_in_segs() < self._segments_base + self._segments_in and time.monotonic() < deadline:
            time.sleep(0.001)
        self._settled_in = self._segments_in

    def tcp_info(self, sock) -> bytes:
        """TCP_INFO (`%{ }%`) once L4 has taken the script's segments."""
        self._settled_in = -1  # asked again: a read of the state must follow every segment
        self.settle()
        return super().tcp_info(sock)

    def ioctl(self, sock, request: int) -> int:
        """SIOCINQ and the like once L4 has taken the script's segments (L4 answers them)."""
        self._settled_in = -1
        self.settle()
        return super().ioctl(sock, request)

    def sniff(self, timeout: float) -> tuple[int, bytes] | None:
        return self.sniffer.next(timeout)

    # -- what the script's calls need --------------------------------------------------------
    def _sockets(self, addrs, host: str) -> None:
        from pktpath.interpose import sockets
        from pktpath.tools.apps import HostView

        sockets.configure(addrs.target(host, "socket"), lambda host, port, family: (host, port))
        self.api = sockets.api()
        self.view = HostView(addrs, host)

    def _set_qdisc(self, kind: str) -> None:
        from pktpath.pb import softirq_pb2

        self.view.stub["softirq"].ReplaceQdisc(softirq_pb2.Qdisc(dev=self.dev, kind=kind), timeout=5)

    def _set_sysctl(self, name: str, value: str, ignore_unknown: bool = False) -> None:
        from pktpath.sysctl import SysctlError
        from pktpath.tools.sysctl import run

        try:
            run(self.view, [f"{name}={value}"], write=True)
        except SysctlError as exc:
            if not (ignore_unknown and exc.errno_name == "ENOENT"):
                raise Unsupported(str(exc)) from None

    def close(self) -> None:
        if getattr(self, "sniffer", None) is not None:
            self.sniffer.close()  # and the socket
        elif getattr(self, "raw", None) is not None:
            self.raw.close()
        if getattr(self, "view", None) is not None:
            self.view.close()
        self.sup.stop()
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)
