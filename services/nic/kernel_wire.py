"""The Linux kernel at the other end of a NIC's wire: a TAP device, or an existing
interface through an AF_PACKET socket.

A TAP device (drivers/net/tun.c) is an Ethernet interface whose "wire" is a file
descriptor: what the kernel transmits on it (tun_net_xmit) is read from the fd
(tun_put_user), and what is written to the fd the kernel receives as if off the
wire (tun_get_user → netif_rx). Opened with IFF_TAP | IFF_NO_PI: plain Ethernet
frames, no packet-information prefix, and no virtio-net header, so the kernel
never hands over a frame with its checksum left to offload (CHECKSUM_PARTIAL)
or bigger than the MTU (TSO): it completes and segments them first, as it must
for a device without those features.

An AF_PACKET socket (net/packet/af_packet.c) bound to an existing interface
(one end of a veth pair, say) sees every frame that interface receives
(packet_rcv) and sends raw frames out of it (packet_sendmsg). Its own
transmissions and the interface's other outgoing frames (PACKET_OUTGOING) are
not frames from the wire and are skipped. The peer must not offload checksums
or segmentation (`ethtool -K PEER tx off tso off gso off`): a veth passes such
frames on unfinished.

Either way one reader thread takes frames as they come, in bursts of what is
already waiting, and hands them to the NIC's receive (the RX ring's DMA); the
NIC's transmit writes each frame to the fd. Pure I/O: no gRPC.
"""

import fcntl
import logging
import os
import select
import socket
import struct
import threading
from typing import Callable

log = logging.getLogger(__name__)

TUNSETIFF = 0x400454CA
IFF_TAP, IFF_NO_PI = 0x0002, 0x1000
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
MAX_FRAME = 65536
BURST = 64  # frames taken per wake-up at most, as a NAPI weight bounds a poll


class KernelWire:
    """One end of a wire whose other end is the kernel. receive(frames) gets what
    arrives; transmit(frames) sends; errors are counted, never raised to the NIC."""

    kind = ""

    def __init__(self, ifname: str, receive: Callable[[list[bytes]], None]) -> None:
        self.ifname = ifname
        self._receive = receive
        self.tx_errors = 0
        self.rx_errors = 0
        self._closed = False
        self._wake_r, self._wake_w = os.pipe()  # close() wakes the reader
        self._thread = threading.Thread(target=self._reader, name=f"{self.kind}-{ifname}", daemon=True)

    def start(self) -> "KernelWire":
        self._thread.start()
        return self

    # -- the two directions -------------------------------------------------------
    def transmit(self, frames) -> None:
        """The NIC's TX: every frame onto the wire (pb.Frame messages)."""
        for f in frames:
            try:
                self._write(f.data)
            except OSError as exc:  # EIO: the TAP is down; ENETDOWN, ENXIO: the interface went away
                self.tx_errors += 1
                if self.tx_errors == 1 or self.tx_errors % 1000 == 0:
                    log.warning("%s %s: a frame could not be sent (%d so far): %s", self.kind, self.ifname,
                                self.tx_errors, exc)

    def _reader(self) -> None:
        poller = select.poll()
        poller.register(self._fd(), select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        while not self._closed:
            try:
                poller.poll()
                frames = []
                while len(frames) < BURST:
                    frame = self._read()
                    if frame is None:
                        break
                    if frame:
                        frames.append(frame)
            except OSError as exc:
                if self._closed:
                    return
                self.rx_errors += 1
                log.warning("%s %s: read failed: %s", self.kind, self.ifname, exc)
                continue
            if frames:
                self._receive(frames)

    def close(self) -> None:
        self._closed = True
        os.write(self._wake_w, b"x")
        if self._thread.ident is not None:  # started
            self._thread.join(2)
        self._close_fd()
        os.close(self._wake_r)
        os.close(self._wake_w)

    # -- what a kind provides ------------------------------------------------------
    def _fd(self) -> int:
        raise NotImplementedError

    def _read(self) -> bytes | None:
        """One frame, b"" for one to skip, None when nothing more is waiting."""
        raise NotImplementedError

    def _write(self, frame: bytes) -> None:
        raise NotImplementedError

    def _close_fd(self) -> None:
        raise NotImplementedError


class TapWire(KernelWire):
    """A TAP device created here (tun_set_iff); the kernel removes it when the fd closes."""

    kind = "tap"

    def __init__(self, ifname: str, receive) -> None:
        fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)  # PermissionError/FileNotFoundError: no TAP here
        try:
            fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", ifname.encode(), IFF_TAP | IFF_NO_PI))
        except OSError:
            os.close(fd)
            raise
        self.fd = fd
        super().__init__(ifname, receive)

    def _fd(self) -> int:
        return self.fd

    def _read(self) -> bytes | None:
        try:
            return os.read(self.fd, MAX_FRAME)
        except BlockingIOError:
            return None

    def _write(self, frame: bytes) -> None:
        os.write(self.fd, frame)

    def _close_fd(self) -> None:
        os.close(self.fd)


class PacketWire(KernelWire):
    """An AF_PACKET socket bound to an existing interface (packet_bind)."""

    kind = "packet"

    def __init__(self, ifname: str, receive) -> None:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        try:
            sock.bind((ifname, 0))
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self.sock = sock
        super().__init__(ifname, receive)

    def _fd(self) -> int:
        return self.sock.fileno()

    def _read(self) -> bytes | None:
        try:
            frame, addr = self.sock.recvfrom(MAX_FRAME)
        except BlockingIOError:
            return None
        return b"" if addr[2] == PACKET_OUTGOING else frame  # sll_pkttype: not one from the wire

    def _write(self, frame: bytes) -> None:
        self.sock.send(frame)

    def _close_fd(self) -> None:
        self.sock.close()


WIRES = {"tap": TapWire, "packet": PacketWire}


def attach(spec: str, receive: Callable[[list[bytes]], None]) -> KernelWire:
    """The wire a topology's `attach = "tap:NAME"` or `"packet:NAME"` says, reading already."""
    kind, _, ifname = spec.partition(":")
    return WIRES[kind](ifname, receive).start()
