"""The real Linux kernel as the stack under test (`pktpath drill --kernel`), set up as the
kernel's own selftests run packetdrill (ksft_runner.sh): local 192.168.0.1/16 on tun0 in a
network namespace of its own, the remote 192.0.2.1 behind it, MTU 1500; with
--ip-version 6, its ipv6_args: local fd3d:a0b:17d6::1, remote fd3d:fa7b:d17d::1, MTU 1520
(so that an MSS of 1460 fits as over IPv4). A script's sockets are made inside the
namespace, of the family asked for; its packets are written to and read from tun0.
"""

import fcntl
import os
import select
import socket
import struct
import subprocess
import threading

from pktpath.drill.netns import Sniffer, TunNamespace, in_netns
from pktpath.drill.runner import RealTime

LOCAL_IP, REMOTE_IP = "192.168.0.1", "192.0.2.1"
LOCAL_IP6, REMOTE_IP6 = "fd3d:a0b:17d6::1", "fd3d:fa7b:d17d::1"  # ksft_runner.sh's, as inet_ntop writes them
MTU6 = 1520
ETH_P_ALL = 0x0003
ALLOWED_CC = "/proc/sys/net/ipv4/tcp_allowed_congestion_control"


def allow_cubic() -> str | None:
    """A namespace other than the first may only make default a congestion control the
    machine allows (tcp_set_default_congestion_control: EPERM otherwise), and the scripts'
    defaults.sh makes cubic, Linux's own default, the default: allowed while drills run.
    Returns the list to put back, None if cubic was allowed already."""
    with open(ALLOWED_CC) as f:
        allowed = f.read().split()
    if "cubic" in allowed:
        return None
    with open(ALLOWED_CC, "w") as f:
        f.write(" ".join(allowed + ["cubic"]))
    return " ".join(allowed)


class KernelHost(RealTime):
    def __init__(self, name: str | None = None, ip_version: int = 4) -> None:
        self.name = name or f"pktpath-drill-{os.getpid()}"
        self.family = socket.AF_INET6 if ip_version == 6 else socket.AF_INET
        self._allowed = allow_cubic()
        if ip_version == 6:
            self.local_ip, self.remote_ip = LOCAL_IP6, REMOTE_IP6
            self.tun = TunNamespace(self.name, LOCAL_IP6, 48, "fd3d:fa7b:d17d::/48", mtu=MTU6)
        else:
            self.local_ip, self.remote_ip = LOCAL_IP, REMOTE_IP
            self.tun = TunNamespace(self.name, LOCAL_IP, 16, "192.0.2.0/24")
        with in_netns(self.name):  # what tun0 transmits, as packetdrill's sniffer takes it
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_ALL))
        sock.bind(("tun0", ETH_P_ALL))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2 << 20)
        self.sniffer = Sniffer(sock, lambda packet, kind: packet if kind == socket.PACKET_OUTGOING else None)
        self._stop = threading.Event()
        self._drain = threading.Thread(target=self._drain_tun, name="tun0", daemon=True)
        self._drain.start()

    def _drain_tun(self) -> None:
        """Take each packet off tun0 at once: until then its skb counts against the socket's
        TCP Small Queues budget, and a slow reader would hold the kernel's next send back."""
        while not self._stop.is_set():
            try:
                if select.select([self.tun.fd], [], [], 0.1)[0]:
                    self.tun.read()
            except OSError:
                return

    # -- the wire ----------------------------------------------------------------------------
    def inject(self, packet: bytes) -> None:
        self.tun.write(packet)

    def sniff(self, timeout: float) -> tuple[int, bytes] | None:
        """The next packet the kernel sent: (monotonic ns, IP packet), or None."""
        return self.sniffer.next(timeout)

    # -- what the script's calls need --------------------------------------------------------
    def socket(self, type_: int, proto: int) -> socket.socket:
        with in_netns(self.name):
            return socket.socket(self.family, type_, proto)

    def fcntl(self, sock, cmd: int, arg: int) -> int:
        return fcntl.fcntl(sock.fileno(), cmd, arg)

    def ioctl(self, sock, request: int) -> int:
        return struct.unpack("i", fcntl.ioctl(sock.fileno(), request, bytes(4)))[0]

    def poll(self, polled: list, timeout_ms: int) -> list[int]:
        poller = select.poll()
        for sock, events in polled:
            poller.register(sock.fileno(), events)
        ready = dict(poller.poll(timeout_ms))
        return [ready.get(sock.fileno(), 0) for sock, _ in polled]

    def epoll(self) -> "Epoll":
        return Epoll()

    def tcp_info(self, sock) -> bytes:
        return sock.getsockopt(socket.SOL_TCP, socket.TCP_INFO, 256)

    def command(self, text: str, cwd: str) -> subprocess.CompletedProcess:
        """A script's shell command, inside the namespace, in the script's folder (so
        `./defaults.sh` and sysctl -w set this namespace's knobs)."""
        return subprocess.run(["ip", "netns", "exec", self.name, "/bin/sh", "-c", text], cwd=cwd,
                              capture_output=True, text=True, env={**os.environ, "PACKETDRILL_PID": str(os.getpid())})

    def close(self) -> None:
        self._stop.set()
        self._drain.join(timeout=1)
        self.sniffer.close()
        self.tun.close()
        if self._allowed is not None:
            restore_allowed(self._allowed)


def restore_allowed(allowed: str) -> None:
    """Put back what allow_cubic() found."""
    with open(ALLOWED_CC, "w") as f:
        f.write(allowed)


class Epoll:
    """An epoll instance over kernel sockets, reporting the script's fds."""

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._script_fd: dict[int, int] = {}

    def ctl(self, op: int, sock, events: int, script_fd: int) -> None:
        fileno = sock.fileno()
        if op == 1:
            self._epoll.register(fileno, events)
            self._script_fd[fileno] = script_fd
        elif op == 3:
            self._epoll.modify(fileno, events)
        else:
            self._epoll.unregister(fileno)

    def wait(self, maxevents: int, timeout_ms: int) -> list[tuple[int, int]]:
        return [(self._script_fd.get(fileno, fileno), events)
                for fileno, events in self._epoll.poll(timeout_ms / 1000 if timeout_ms >= 0 else -1, maxevents)]

    def close(self) -> None:
        self._epoll.close()
