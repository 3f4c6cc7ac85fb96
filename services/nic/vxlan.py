"""A NIC's wire as a VXLAN tunnel (RFC 7348): its Ethernet frames in UDP datagrams to
another machine, where another pktpath host's NIC, or the Linux kernel's vxlan device
(drivers/net/vxlan/vxlan_core.c), takes them off.

One UDP socket per NIC service, bound to port 4789 of its machine, carries every
tunnel of its host; the VNI says which interface a datagram is for, as one
vxlan_sock serves every vxlan device on a port (vxlan_sock_add, vxlan_vs_find_vni).
TX is vxlan_xmit_one without the FDB: each interface has one remote (a link's
other host, or `attach = "vxlan:REMOTE"`), so every frame goes there, unicast,
broadcast or multicast alike, as to a vxlan device's default destination (`remote`).
A remote given by name (a Kubernetes Service) is looked up again every 5 s, off the
TX path, so that a peer whose Pod started again on another address is found.
The outer header leaves DF clear (the kernel's `df unset` default): a frame that
does not fit the underlay's MTU is fragmented there, not dropped.

**Trace context** (pktpath's own): a link between two pktpath hosts keeps each sampled
packet's identity and history across the tunnel, as its metadata rides a local link's
hop beside the frame. Just before such a frame, the tunnel sends one more VXLAN
datagram on the same VNI: an Ethernet frame from the sending interface to the
receiving one with EtherType 0x88B5 (IEEE 802's Local Experimental Ethertype 1,
which no stack takes), holding MAGIC, the CRC-32 of the frame it describes and the
frame's metadata (a pktpath.v1.Frame without its data). The receiving socket holds it
for the next frame of that VNI and gives the two to the NIC together if the CRC
matches (else the context is counted as unmatched and the frame goes on untraced).
Every datagram stays plain RFC 7348 that tshark decodes; a kernel peer is never sent
one. Like VXLAN itself, the context is not authenticated: the underlay is trusted.

Departures: the outer UDP source port is always 4789 (the socket's), where the
kernel hashes the inner flow into its local port range (udp_flow_src_port) to
spread flows over an underlay's paths; and no FDB learning: the remote is fixed.
"""

import logging
import socket
import struct
import threading
import zlib
from typing import Callable

from pktpath.client import IP_MTU_DISCOVER
from pktpath.counters import Mib
from pktpath.flow import IP_PMTUDISC_DONT
from pktpath.pb import skbuff_pb2
from pktpath.wire.errors import WireError
from pktpath.wire.vxlan import IANA_VXLAN_UDP_PORT, VXLAN_HLEN, VxlanHdr
from pktpath.services.nic.kernel_wire import MAX_FRAME, KernelWire

log = logging.getLogger(__name__)
pb = skbuff_pb2
GROUP = "Vxlan"
RESOLVE_EVERY_S = 5.0  # a remote given by name is looked up again this often (a Pod started again moves)
ETH_P_802_EX1 = b"\x88\xb5"  # IEEE 802 Local Experimental Ethertype 1: the trace context's
MAGIC = b"pktpath-trace-1\0"
CONTEXT_HLEN = 14 + len(MAGIC) + 4  # Ethernet header, MAGIC, the described frame's CRC-32
MAX_CONTEXT = 60_000  # a UDP datagram's room, less headers: a longer history goes without its events
_CRC = struct.Struct("!I")
SO_SNDBUFFORCE, SO_RCVBUFFORCE = 32, 33  # include/uapi/asm-generic/socket.h
SOCKET_BUFFER = 4 << 20
Received = tuple[bytes, bytes | None]  # a frame and the trace context that came with it, if any


class VxlanSocket(KernelWire):
    """The UDP socket of a NIC's tunnels: receive(vni, frames) per VNI a link claims."""

    kind = "vxlan"

    def __init__(self, local: tuple[str, int], mib: Mib) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            for force, buf in ((SO_RCVBUFFORCE, socket.SO_RCVBUF), (SO_SNDBUFFORCE, socket.SO_SNDBUF)):
                try:  # past net.core.rmem_max (208 kB), which bursts of TCP segments overflow
                    sock.setsockopt(socket.SOL_SOCKET, force, SOCKET_BUFFER)
                except PermissionError:  # without CAP_NET_ADMIN: as much as rmem_max/wmem_max allow
                    sock.setsockopt(socket.SOL_SOCKET, buf, SOCKET_BUFFER)
            sock.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DONT)  # DF clear
            sock.bind(local)  # blocking: a send waits for room, as a qdisc would hold the frame; reads don't wait
        except OSError:
            sock.close()
            raise
        self.sock = sock
        self.mib = mib
        self._links: dict[int, Callable[[list[Received]], None]] = {}
        self._context: dict[int, tuple[int, bytes]] = {}  # VNI -> (CRC, metadata) awaiting its frame
        self._tunnels: list[Tunnel] = []
        self._stop = threading.Event()
        self._resolver = threading.Thread(target=self._resolve_names, name="vxlan-resolver", daemon=True)
        super().__init__(f"{local[0]}:{local[1]}", self._demux)

    def start(self) -> "VxlanSocket":
        self._resolver.start()
        return super().start()

    def close(self) -> None:
        self._stop.set()
        if self._resolver.ident is not None:
            self._resolver.join(2)
        super().close()

    def _resolve_names(self) -> None:
        """Off the TX path, since a lookup can take seconds: each named remote again and again."""
        while not self._stop.wait(RESOLVE_EVERY_S):
            for tunnel in self._tunnels:
                tunnel.resolve()

    def add(self, vni: int, receive: Callable[[list[Received]], None], remote: str,
            port: int = IANA_VXLAN_UDP_PORT, *, macs: tuple[str, str] | None = None) -> "Tunnel":
        """The tunnel with VNI `vni` to `remote`: its frames in go to receive([(frame, context)]).
        macs (this end's and the other's) when the other end is a pktpath NIC: sampled frames
        go with their trace context."""
        self._links[vni] = receive
        tunnel = Tunnel(self, vni, remote, port, macs)
        self._tunnels.append(tunnel)
        return tunnel

    # -- KernelWire's parts ------------------------------------------------------------
    def _fd(self) -> int:
        return self.sock.fileno()

    def _read(self) -> bytes | None:
        try:
            return self.sock.recv(MAX_FRAME, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return None

    def _write(self, frame: bytes) -> None:
        raise NotImplementedError("a tunnel sends (Tunnel.transmit)")

    def _close_fd(self) -> None:
        self.sock.close()

    def _demux(self, datagrams: list[bytes]) -> None:
        """vxlan_rcv: each datagram's header checked, its frame handed to its VNI's interface."""
        by_vni: dict[int, list[Received]] = {}
        for d in datagrams:
            try:
                vni = VxlanHdr.from_bytes(d).vni
            except WireError:
                self.mib.inc(GROUP, "InInvalidHdr")
                self.mib.drop(pb.SKB_DROP_REASON_VXLAN_INVALID_HDR)
                continue
            if vni not in self._links:
                self.mib.inc(GROUP, "InVniNotFound")
                self.mib.drop(pb.SKB_DROP_REASON_VXLAN_VNI_NOT_FOUND)
                continue
            frame = d[VXLAN_HLEN:]
            if frame[12:14] == ETH_P_802_EX1 and frame[14:14 + len(MAGIC)] == MAGIC:
                if vni in self._context:
                    self.mib.inc(GROUP, "TraceContextUnmatched")
                self._context[vni] = _CRC.unpack_from(frame, CONTEXT_HLEN - 4)[0], frame[CONTEXT_HLEN:]
                continue
            context = self._context.pop(vni, None)
            if context is not None and context[0] != zlib.crc32(frame):
                self.mib.inc(GROUP, "TraceContextUnmatched")
                context = None
            by_vni.setdefault(vni, []).append((frame, context and context[1]))
        for vni, frames in by_vni.items():
            self.mib.inc(GROUP, "InPackets", len(frames))
            self._links[vni](frames)


class Tunnel:
    """One interface's tunnel: its frames to its remote, under its VNI."""

    def __init__(self, vsock: VxlanSocket, vni: int, remote: str, port: int,
                 macs: tuple[str, str] | None) -> None:
        self.vsock = vsock
        self.vni = vni
        self.remote = remote
        self.port = port
        self._header = VxlanHdr(vni).to_bytes()
        self._to: tuple[str, int] | None = None
        self.resolve()
        # the trace context's Ethernet header, to the other end's interface from ours
        self._context = (bytes.fromhex(macs[1].replace(":", "")) + bytes.fromhex(macs[0].replace(":", ""))
                         + ETH_P_802_EX1 + MAGIC) if macs else None

    def resolve(self) -> None:
        """The remote's address now (a name is looked up; one that fails keeps the last one)."""
        try:
            self._to = (socket.gethostbyname(self.remote), self.port)
        except OSError as exc:
            self.vsock.mib.inc(GROUP, "ResolveFailures")
            log.warning("vxlan %d: cannot resolve %s: %s", self.vni, self.remote, exc)

    def transmit(self, frames) -> bool:
        """The NIC's TX: each frame (pb.Frame) in a datagram; False when none could go."""
        to = self._to
        vsock = self.vsock
        if to is None:
            vsock.mib.inc(GROUP, "OutNoRemote", len(frames))
            return False
        header, send, sent, context = self._header, vsock.sock.sendto, 0, self._context
        for f in frames:
            try:
                if context is not None and f.sampled:
                    send(header + context + self._metadata(f), to)
                send(header + f.data, to)
                sent += 1
            except OSError as exc:  # ENETUNREACH, EHOSTUNREACH, ECONNREFUSED from an earlier ICMP error
                vsock.tx_errors += 1
                if vsock.tx_errors == 1 or vsock.tx_errors % 1000 == 0:
                    log.warning("vxlan %d to %s: a frame could not be sent (%d so far): %s", self.vni, to,
                                vsock.tx_errors, exc)
        vsock.mib.inc(GROUP, "OutPackets", sent)
        return sent > 0 or not frames

    def _metadata(self, f) -> bytes:
        """The CRC of f's data and f's metadata: its identity, lineage and events so far."""
        meta = pb.Frame()
        meta.CopyFrom(f)
        meta.ClearField("data")
        raw = meta.SerializeToString()
        if len(raw) > MAX_CONTEXT:  # the packet goes on traced, its earlier events stay in the sender's record
            del meta.events[:]
            raw = meta.SerializeToString()
            self.vsock.mib.inc("Trace", "EventsTruncated")
        self.vsock.mib.inc(GROUP, "TraceContextsSent")
        return _CRC.pack(zlib.crc32(f.data)) + raw
