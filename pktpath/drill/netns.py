"""A network namespace with a TUN device, as packetdrill's netdev.c sets one up: the
kernel under test on one side (sockets made inside the namespace), the script's remote
end on the other (IPv4 packets written to and read from the TUN file descriptor).

`in_netns` switches only the calling thread (setns(2) acts per thread), and a socket keeps
the namespace it was made in, so the runner makes its sockets inside and goes on outside.
"""

import contextlib
import ctypes
import fcntl
import os
import queue
import select
import socket
import struct
import subprocess
import threading
import time
from typing import Callable

CLONE_NEWNET = 0x40000000
TUNSETIFF, TUNSETOFFLOAD = 0x400454CA, 0x400454D0
IFF_TUN, IFF_NO_PI, IFF_VNET_HDR = 0x0001, 0x1000, 0x4000
TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6, TUN_F_TSO_ECN = 0x01, 0x02, 0x04, 0x08
VNET_HDR_LEN = 10  # struct virtio_net_hdr before each packet
_libc = ctypes.CDLL(None, use_errno=True)


SO_TIMESTAMPNS = 35


class NetnsError(OSError):
    pass


class Sniffer:
    """What a stack under test sends, read off an AF_PACKET socket on a thread of its own,
    each frame with the time the kernel stamped on it (SO_TIMESTAMPNS, packetdrill's
    SIOCGSTAMP), not when this process got round to reading it. take(frame, sll_pkttype)
    says what to queue for the runner (the IPv4 packet), or None for a frame it passes over."""

    def __init__(self, sock: socket.socket, take: Callable[[bytes, int], bytes | None]) -> None:
        self.sock, self._take = sock, take
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self._realtime_offset = time.time_ns() - time.monotonic_ns()
        self._out: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="sniffer", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                if not select.select([self.sock], [], [], 0.1)[0]:
                    continue
                frame, ancillary, _, addr = self.sock.recvmsg(65536, 64)
            except OSError:
                return
            packet = self._take(frame, addr[2])
            if packet is not None:
                self._out.put((self._stamp(ancillary), packet))

    def _stamp(self, ancillary) -> int:
        """The kernel's wall-clock stamp on time.monotonic_ns()'s scale."""
        for level, kind, data in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                sec, nsec = struct.unpack("qq", data[:16])
                return sec * 1_000_000_000 + nsec - self._realtime_offset
        return time.monotonic_ns()

    def next(self, timeout: float) -> tuple[int, bytes] | None:
        """The next packet taken: (monotonic ns, IPv4 packet), or None within timeout."""
        try:
            return self._out.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1)
        self.sock.close()


def ipv4_netns(name: str) -> None:
    """A new namespace `name` (one left by a run killed before its close goes first), IPv4
    only: no router solicitations or MLD reports on the wire."""
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    ip("netns", "add", name)
    subprocess.run(["ip", "netns", "exec", name, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
                    "net.ipv6.conf.default.disable_ipv6=1"], capture_output=True, check=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise NetnsError(err, f"setns: {os.strerror(err)}")


@contextlib.contextmanager
def in_netns(name: str):
    """Run the body with this thread in namespace `name` (made by `ip netns add`)."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        _setns(target)
        try:
            yield
        finally:
            _setns(home)
    finally:
        os.close(target)
        os.close(home)


def ip(*args: str) -> None:
    out = subprocess.run(["ip", *args], capture_output=True, text=True)
    if out.returncode:
        raise NetnsError(out.returncode, f"ip {' '.join(args)}: {out.stderr.strip()}")


class TunNamespace:
    """A namespace `name` with tun0 up: local_ip/prefix on it, remote_net routed through it,
    lo up, the MTU given. `fd` reads what the kernel sends and writes what it receives, one
    IP packet per call, after a virtio_net_hdr: tun0 offers TSO, as packetdrill's does, so
    the kernel hands it whole GSO packets. close() removes the namespace and everything in it."""

    def __init__(self, name: str, local_ip: str = "192.168.0.1", prefix: int = 16,
                 remote_net: str = "192.0.2.0/24", mtu: int = 1500) -> None:
        """An IPv6 local_ip makes the namespace IPv6's: its address without DAD (`nodad`, as
        packetdrill adds it), and IPv4 is not configured."""
        self.name = name
        v6 = ":" in local_ip
        try:
            if v6:
                subprocess.run(["ip", "netns", "del", name], capture_output=True)
                ip("netns", "add", name)
            else:
                ipv4_netns(name)
            with in_netns(name):
                self.fd = os.open("/dev/net/tun", os.O_RDWR)
                fcntl.ioctl(self.fd, TUNSETIFF, struct.pack("16sH", b"tun0", IFF_TUN | IFF_NO_PI | IFF_VNET_HDR))
                fcntl.ioctl(self.fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN)
            ip("-n", name, "link", "set", "lo", "up")
            ip("-n", name, "link", "set", "tun0", "up", "mtu", str(mtu))
            ip("-n", name, "addr", "add", f"{local_ip}/{prefix}", "dev", "tun0", *(("nodad",) if v6 else ()))
            ip("-n", name, "route", "add", remote_net, "dev", "tun0")
        except BaseException:
            self.close()
            raise

    def write(self, packet: bytes) -> None:
        os.write(self.fd, bytes(VNET_HDR_LEN) + packet)

    def read(self) -> bytes:
        return os.read(self.fd, VNET_HDR_LEN + 65536)[VNET_HDR_LEN:]

    def close(self) -> None:
        if getattr(self, "fd", None) is not None:
            os.close(self.fd)
            self.fd = None
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
