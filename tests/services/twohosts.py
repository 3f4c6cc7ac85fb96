"""Two hosts of the default topology (A 10.0.0.1 / 2001:db8::1, B 10.0.0.2 / 2001:db8::2) in
this process, on one virtual clock: each host's L2, L3, L4 and socket layer wired by the same
edges the services use (pktpath/seams.py), as pktpath/drill/local.py wires one host, and a
cable between their L2s in place of the NICs. The socket API is each host's, as a process of
it calls it (pktpath.client's shape: OSError with the errno).

A test drives it from its own thread: calls that would block are made non-blocking
(MSG_DONTWAIT), and time moves only when the test says (`run(seconds)`)."""

from pktpath import skbuff as s
from pktpath.counters import Mib
from pktpath.drill.local import Direct, LocalApi, LocalHop, Sim
from pktpath.hop import batches
from pktpath.offload import skb_gso_segment
from pktpath.pb import skbuff_pb2, socket_pb2
from pktpath.services.l2.layer import L2
from pktpath.services.l3.layer import L3
from pktpath.services.l4.layer import L4
from pktpath.services.socket.files import Tasks
from pktpath.services.socket.layer import Socket
from pktpath.services.socket.syscalls import Syscalls
from pktpath.topology import load

MSG_DONTWAIT = 0x40


class Cable:
    """What a host's L2 queues for its device, handed to the other host's L2 as received
    frames (the NIC, its rings and the driver's poll left out; a GSO skb cut into its segments
    first, as the softirq layer's qdisc does). `frames` keeps what passed."""

    def __init__(self, sim: Sim) -> None:
        self.sim = sim
        self.mib = Mib()
        self.peer = None  # the other host's L2
        self.frames: list[bytes] = []
        self.cut = False  # drop everything (a test's broken link)

    @batches(skbuff_pb2.SkBuffBatch)
    def DevQueueXmit(self, request, context):
        skbs = s.from_protos(request.skbs, self.mib)
        segs = [seg for skb in skbs
                for seg in (skb_gso_segment(skb, skbuff_pb2.LAYER_SOFTIRQ, skb.origin_host or "?") if skb.gso_size
                            else [skb])]
        for skb in segs:
            frame = bytes(skb.payload())
            s.consume_skb(skb, skbuff_pb2.LAYER_SOFTIRQ, skb.origin_host or "?", "dev_hard_start_xmit")
            if self.cut:
                continue
            self.frames.append(frame)
            rx = s.alloc_skb(s.NET_SKB_PAD + len(frame), sampled=False)
            s.skb_reserve(rx, s.NET_SKB_PAD)
            s.skb_put_data(rx, frame)
            rx.dev, rx.tstamp = "eth0", self.sim.now_ns
            peer = self.peer
            self.sim.post(lambda rx=rx: peer.NetifReceiveSkb.hop_batch(peer, s.to_batch([rx])))
        return s.disposition(len(skbs), 0)



class Host:
    def __init__(self, sim: Sim, config) -> None:
        self.name = config.name
        self.cable = Cable(sim)
        layers: dict = {"softirq": self.cable}

        def hop(edge, mib):
            return LocalHop(sim, edge, lambda: layers[edge.dst])

        layers["l2"] = self.l2 = L2(self.name, config, hop)
        layers["l3"] = self.l3 = L3(self.name, config, hop, Direct(self.l2), clock=sim.clock)
        layers["l4"] = self.l4 = L4(self.name, config, hop, Direct(self.l3), clock=sim.clock)
        layers["socket"] = self.socket = Socket(self.name, hop, Direct(self.l4), sample=lambda flow=None: False,
                                                devs=[i.name for i in config.interfaces])
        self.socket.layer.l3 = Direct(self.l3)  # IPV6_JOIN_GROUP's device side (seams.py's Ipv6DevMc)
        sim.timers.append(self.l3.ipv6_timers)
        sim.timers.append(self.l4.tcp.run_timers)
        tasks = Tasks(1 << 16)
        self.api = HostApi(sim, Syscalls(self.socket, tasks), tasks)

    def counters(self) -> dict[str, dict[str, int]]:
        """The host's counter groups, summed over its layers (as `pktpath netstat` sums them)."""
        out: dict[str, dict[str, int]] = {}
        for mib in (self.l2.mib, self.l3.mib, self.l4.mib, self.socket.mib):
            for group, values in mib.snapshot().items():
                g = out.setdefault(group, {})
                for k, v in values.items():
                    g[k] = g.get(k, 0) + v
        return out

    def close(self) -> None:
        for layer in (self.socket, self.l4, self.l3, self.l2):
            layer.close()


class HostApi(LocalApi):
    """One process of a host; socket() returns a small socket object over its calls."""

    def socket(self, type_: int = 2, protocol: int = 0, family: int = 2) -> "Sock":
        return Sock(self, super().socket(type_, protocol, family).fd, family)


class Sock:
    """pktpath.client.Socket's shape over a HostApi."""

    def __init__(self, api: HostApi, fd: int, family: int) -> None:
        self.api, self.fd, self.family = api, fd, family

    def _addr(self, a) -> tuple:
        return (a.addr, a.port, a.flowinfo, a.scope_id) if self.family == 10 else (a.addr, a.port)

    @staticmethod
    def _sockaddr(addr: tuple) -> socket_pb2.Sockaddr:
        host, port, *rest = addr
        return socket_pb2.Sockaddr(addr=host, port=port, scope_id=rest[1] if len(rest) > 1 else 0)

    def bind(self, addr: tuple) -> None:
        self.api.call("Bind", socket_pb2.SockaddrRequest(fd=self.fd, addr=self._sockaddr(addr)))

    def connect(self, addr: tuple, *, nonblocking: bool = False) -> None:
        """connect(); a TCP socket's nonblocking: EINPROGRESS (BlockingIOError) while the handshake goes on."""
        self.api.call("Connect", socket_pb2.SockaddrRequest(fd=self.fd, addr=self._sockaddr(addr),
                                                            nonblocking=nonblocking))

    def listen(self, backlog: int = 128) -> None:
        self.api.call("Listen", socket_pb2.ListenRequest(fd=self.fd, backlog=backlog))

    def accept(self) -> tuple["Sock", tuple]:
        """The next connection now, or BlockingIOError."""
        reply = self.api.call("Accept", socket_pb2.AcceptRequest(fd=self.fd, nonblocking=True))
        return Sock(self.api, reply.fd, self.family), self._addr(reply.peer)

    def sendto(self, data: bytes, addr: tuple | None = None, flags: int = 0) -> int:
        req = socket_pb2.SendtoRequest(fd=self.fd, data=data, flags=flags)
        if addr is not None:
            req.addr.CopyFrom(self._sockaddr(addr))
        return self.api.call("Sendto", req).sent

    def send(self, data: bytes) -> int:
        """What the send buffer takes now (a TCP socket's: MSG_DONTWAIT)."""
        return self.sendto(data, flags=MSG_DONTWAIT)

    def recv(self, bufsize: int = 65536) -> bytes:
        """A TCP socket's bytes queued now (BlockingIOError if none, b"" at the end)."""
        return self.recvmsg(bufsize).data

    def shutdown(self, how: int) -> None:
        self.api.call("Shutdown", socket_pb2.ShutdownRequest(fd=self.fd, how=how))

    def recvmsg(self, bufsize: int = 65535):
        """What is queued now (MSG_DONTWAIT): BlockingIOError/TimeoutError when nothing is."""
        return self.api.call("Recvfrom", socket_pb2.RecvfromRequest(fd=self.fd, bufsize=bufsize, flags=MSG_DONTWAIT))

    def recvfrom(self, bufsize: int = 65535) -> tuple[bytes, tuple]:
        reply = self.recvmsg(bufsize)
        return reply.data, self._addr(reply.addr)

    def setsockopt(self, level: int, optname: int, value: int) -> None:
        self.api.call("Setsockopt", socket_pb2.SockoptRequest(fd=self.fd, level=level, optname=optname, value=value))

    def getsockopt(self, level: int, optname: int) -> int:
        return self.api.call("Getsockopt", socket_pb2.SockoptRequest(fd=self.fd, level=level, optname=optname)).value

    def getsockname(self) -> tuple:
        return self._addr(self.api.call("Getsockname", socket_pb2.FdRequest(fd=self.fd)))

    def getpeername(self) -> tuple:
        return self._addr(self.api.call("Getpeername", socket_pb2.FdRequest(fd=self.fd)))

    def close(self) -> None:
        self.api.call("Close", socket_pb2.FdRequest(fd=self.fd))


class TwoHosts:
    def __init__(self, topology: str = "default") -> None:
        topo = load(topology)
        self.sim = Sim()
        self.a, self.b = (Host(self.sim, topo.host(name)) for name in ("A", "B"))
        self.a.cable.peer, self.b.cable.peer = self.b.l2, self.a.l2

    def run(self, seconds: float) -> None:
        """Let `seconds` of virtual time pass, every timer firing when due."""
        self.sim.advance_to(self.sim.now_ns + int(seconds * 1e9))

    def settle(self) -> None:
        """Run what is queued (a hop's batches, and what they queue in turn)."""
        self.sim.drain()

    def close(self) -> None:
        self.a.close()
        self.b.close()
