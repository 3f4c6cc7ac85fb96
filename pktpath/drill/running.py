"""`pktpath drill --on HOST`: the scripts against a host of a running topology (`pktpath up`),
whatever else it carries meanwhile.

The host keeps its addresses: the script's local address is its interface's, and the remote
(192.0.2.1, or ksft_runner.sh's fd3d:fa7b:d17d::1) is routed for the run through a gateway
address on the interface's subnet that no host of the topology has, with a permanent
neighbour entry for it. The script's inbound packets are put on the interface's wire as
frames from that gateway (the NIC's Inject, as a peer's DMA would), its outbound packets read
off the interface's tap at L2 (dev_queue_xmit_nit: where packetdrill's AF_PACKET socket reads
them on a TUN device). Frames the host sends towards the gateway also cross the real link,
where the peer drops them as not its own (OTHERHOST).

Each script starts from the kernel's default sysctls and qdisc, as in a fresh namespace; at
the end the host gets back its route table, neighbours, sysctls and qdisc as they were.
"""

import ipaddress
import queue
import threading
import time

from pktpath.drill.kernel import MTU6, REMOTE_IP6
from pktpath.drill.live import ETH_P_IP, ETH_P_IPV6, GATEWAY_MAC, REMOTE_IP, LiveHost
from pktpath.drill.shell import Shell

REMOTE_NET, REMOTE_NET6 = "192.0.2.0/24", "fd3d:fa7b:d17d::/48"
AF_INET6 = 10


class RunningHostError(Exception):
    """The host cannot be the stack under test as it is (what it lacks, in words)."""


def free_gateway(topology, iface, ip_version: int) -> str:
    """An address of iface's subnet that no interface of the topology has: the highest."""
    taken = {str(i.addr.ip) for h in topology.hosts for i in h.interfaces}
    taken |= {str(a.ip) for h in topology.hosts for i in h.interfaces for a in i.addr6}
    network = iface.addr6[0].network if ip_version == 6 else iface.addr.network
    # nobody's: IPv4's broadcast, IPv6's reserved subnet anycast addresses (RFC 2526: the top 128)
    last = network.num_addresses - (129 if ip_version == 6 else 2)
    for n in range(last, 0, -1):
        candidate = str(network[n])
        if candidate not in taken:
            return candidate
    raise RunningHostError(f"{iface.name}'s subnet {network} has no address free for the script's gateway")


class RunningHost(LiveHost):
    """A running topology's host as packetdrill's stack under test (module docstring)."""

    def __init__(self, addrs, topology, host: str, ip_version: int = 4) -> None:
        from google.protobuf import empty_pb2

        from pktpath.pb import l2_pb2, l3_pb2, trace_pb2

        self._segments_base = self._segments_in = self._settled_in = 0
        self._undo: list = []
        v6 = ip_version == 6
        iface = next((i for i in topology.host(host).interfaces if i.addr6 or not v6), None)
        if iface is None:
            raise RunningHostError(f"{host} has no IPv6 address to run scripts over IPv6 from")
        if v6 and iface.mtu != MTU6:  # the scripts' SYNs say mss 1460: 1520 less IPv6's 60
            raise RunningHostError(f"over IPv6 the scripts need an MTU of {MTU6}, as ksft_runner.sh gives its "
                                   f"tun0, for their MSS of 1460; {host}'s {iface.name} has {iface.mtu}")
        self.dev, self.host_mac = iface.name, bytes.fromhex(iface.mac.replace(":", ""))
        self.local_ip = str(iface.addr6[0].ip if v6 else iface.addr.ip)
        self.remote_ip, remote_net = (REMOTE_IP6, REMOTE_NET6) if v6 else (REMOTE_IP, REMOTE_NET)
        self._remote = ipaddress.ip_address(self.remote_ip).packed
        gateway = free_gateway(topology, iface, ip_version)
        self._sockets(addrs, host)
        try:
            l3, l2 = self.view.stub["l3"], self.view.stub["l2"]
            if any(r.dst == remote_net for r in l3.GetRoutes(empty_pb2.Empty(), timeout=5).routes):
                raise RunningHostError(f"{host} routes {remote_net} already: the script's remote must be nobody's")
            self._undo.append(self._snapshot())
            neighbour = l2_pb2.Neighbour(dev=self.dev, dst=gateway, lladdr=GATEWAY_MAC.hex(":"),
                                         state=l2_pb2.NUD_PERMANENT)
            l2.NeighAdd(neighbour, timeout=5)
            self._undo.append(lambda: l2.NeighDel(neighbour, timeout=5))
            # the route goes first at the end: a segment sent after would make the gateway's entry anew
            route = l3_pb2.Route(dst=remote_net, gateway=gateway, dev=self.dev, proto="static",
                                 family=AF_INET6 if v6 else 0)
            l3.RouteAdd(route, timeout=5)
            self._undo.append(lambda: l3.RouteDel(route, timeout=5))
            self._tap_open = threading.Event()
            self._out: queue.Queue = queue.Queue()
            self._capture = l2.Capture(trace_pb2.CaptureRequest(dev=self.dev))
            threading.Thread(target=self._read, name="tap", daemon=True).start()
            if not self._tap_open.wait(10):
                raise RunningHostError(f"{host}:{self.dev}'s tap did not open")
        except BaseException:
            self.close()
            raise
        self.shell = Shell(self._set_sysctl, self.reset, self._set_qdisc)

    def _snapshot(self):
        """The host's sysctls and qdisc now, and what puts them back."""
        from pktpath.pb import softirq_pb2
        from pktpath.sysctl import KNOBS
        from pktpath.tools.sysctl import run

        values = [line for k in KNOBS.values() for line in run(self.view, [k.name])]
        qdisc = self.view.stub["softirq"].GetQdisc(softirq_pb2.Qdisc(dev=self.dev), timeout=5).kind

        def restore() -> None:
            run(self.view, [line.replace(" = ", "=", 1) for line in values], write=True)
            self._set_qdisc(qdisc)
        return restore

    def _read(self) -> None:
        """What the host transmits towards the script's remote, stamped where the tap took it."""
        offset = time.time_ns() - time.monotonic_ns()
        try:
            for batch in self._capture:
                self._tap_open.set()
                for f in batch.frames:
                    packet = self._towards_remote(f)
                    if packet is not None:
                        self._out.put((f.ts_ns - offset, packet))
        except Exception:  # noqa: BLE001 — the capture cancelled at close, or the host gone: no more packets
            return

    def _towards_remote(self, f) -> bytes | None:
        if not f.outgoing or len(f.data) < 14:
            return None
        ethertype = int.from_bytes(f.data[12:14], "big")
        packet = f.data[14:]
        if ethertype == ETH_P_IP and packet[16:20] == self._remote:
            return packet
        if ethertype == ETH_P_IPV6 and packet[24:40] == self._remote:
            return packet
        return None

    def inject(self, packet: bytes) -> None:
        from pktpath.pb import skbuff_pb2

        v6 = packet[0] >> 4 == 6
        frame = self.host_mac + GATEWAY_MAC + (ETH_P_IPV6 if v6 else ETH_P_IP).to_bytes(2, "big") + packet
        self.view.stub["nic"].Inject(skbuff_pb2.FrameBatch(dev=self.dev, frames=[skbuff_pb2.Frame(data=frame)]),
                                     timeout=5)
        if packet[6 if v6 else 9] == 6:  # IPPROTO_TCP: L4 takes it a few hops later (settle)
            self._segments_in += 1

    def sniff(self, timeout: float) -> tuple[int, bytes] | None:
        try:
            return self._out.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        capture = getattr(self, "_capture", None)
        if capture is not None:
            capture.cancel()
        for undo in reversed(self._undo):
            try:
                undo()
            except Exception:  # noqa: BLE001 — put back what can be; the rest is the host's as the script left it
                pass
        if getattr(self, "view", None) is not None:
            self.view.close()
