"""UDP through one host's receive path, against the floors of bare relay chains.

    python benchmarks/rx_path.py [--seconds 5] [--samples 200]

Over IPv4 and IPv6, each on a topology of its own, in the same run.

pktpath: the default topology as local processes; frames are injected at B's
NIC (Inject, 256 per call, at most 2048 packets in flight) and read by a socket
on B, a busy reader (SO_RCVBUF at rmem_max, recvmmsg of up to 256 without
MSG_WAITFORONE): NIC → softirq → L2 → L3 → L4 → socket, every hop a process.

Floors: six bare relay processes with the same batching, each only parsing and
re-serializing the SkBuffBatch, and the same kind of reader; "gRPC" joins them
with a gRPC client stream per hop (the issue's floor), "unix" with pktpath's
own Hop (a Unix stream socket per hop: the layers' work alone makes the gap).

Figures: packets/s received over --seconds under saturation, and idle
latency (one frame at a time, a reader already blocked in recvfrom; --samples
of them), p50 and p99: from the frame's receive timestamp (the NIC's, via
SO_TIMESTAMPNS; a floor's first relay stamps it) to the reader's return, and
from the injecting call to the reader's return.
"""

import argparse
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from concurrent import futures
from pathlib import Path

import grpc

from pktpath import skbuff as s
from pktpath.client import AF_INET6, SO_RCVBUF, SO_TIMESTAMPNS, SOL_SOCKET, SocketApi
from pktpath.counters import Mib
from pktpath.hop import Hop, HopListener, batches
from pktpath.pb import skbuff_pb2
from pktpath.services.l3.addrconf import IFA_F_TENTATIVE
from pktpath.rpc import nic_pb2_grpc
from pktpath.service import channel
from pktpath.supervisor import Supervisor
from pktpath.topology import load
from pktpath.wire import EthHdr, IpHdr, UdpHdr
from pktpath.wire.addr import ip6_from_str, ip_from_str, mac_from_str
from pktpath.wire.ipv6 import Ipv6Hdr

PORT = 9999
BATCH = 256
WINDOW = 2048
RELAY_HOPS = 6  # nic, softirq, l2, l3, l4, socket
READ_WAIT_S = 0.05  # a saturated reader waits up to this for a whole batch (recvmmsg without MSG_WAITFORONE)
RMEM_MAX = 212992   # net.core.rmem_max


def udp_frame(payload: bytes = b"x" * 64, family: int = 4) -> bytes:
    """A datagram from A to B's PORT, over IPv4 or IPv6 (2001:db8::1 to 2001:db8::2)."""
    ethertype = 0x0800 if family == 4 else 0x86DD
    eth = EthHdr(mac_from_str("02:00:00:00:00:0b"), mac_from_str("02:00:00:00:00:0a"), ethertype)
    if family == 6:
        src, dst = ip6_from_str("2001:db8::1"), ip6_from_str("2001:db8::2")
        udp = UdpHdr(40000, PORT).to_bytes(payload, src, dst, ipv6=True) + payload
        return eth.to_bytes() + Ipv6Hdr(src, dst, 17).to_bytes(len(udp)) + udp
    src, dst = ip_from_str("10.0.0.1"), ip_from_str("10.0.0.2")
    udp = UdpHdr(40000, PORT).to_bytes(payload, src, dst) + payload
    return eth.to_bytes() + IpHdr(src, dst, 17).to_bytes(len(udp)) + udp


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


# -- the floors: chains of bare relays -------------------------------------------

_SERVICE = "pktpath.bench.Relay"
_RECV, _RECV_BATCH, _PASS = f"/{_SERVICE}/Recv", f"/{_SERVICE}/RecvBatch", f"/{_SERVICE}/Pass"
TRANSPORTS = ("unix", "grpc")


class StreamHop:
    """The issue's floor transport: one long-lived gRPC client stream per hop (as
    pktpath's hops were before the Unix sockets), one message per batch handed in."""

    def __init__(self, target: str) -> None:
        self._queue = queue.SimpleQueue()
        self._call = channel(target).stream_unary(_PASS, request_serializer=skbuff_pb2.SkBuffBatch.SerializeToString,
                                                  response_deserializer=skbuff_pb2.Disposition.FromString)
        self._future = self._call.future(iter(self._queue.get, None), wait_for_ready=True)

    def put(self, skbs) -> None:
        self._queue.put(s.to_batch(skbs))

    def close(self) -> None:
        self._queue.put(None)


def relay_stage(transport: str, port: int, next_port: int, stamp: bool) -> None:
    """One relay process: parse each batch, hand it to the next stage (over a Unix
    socket Hop or a gRPC client stream); the first stage stamps each skb's tstamp as
    pktpath's NIC does; the last queues them for a reader (a gRPC Recv call, as the
    socket layer's recvmmsg)."""
    queue_, cond = [], threading.Condition()
    hop = None
    if next_port and transport == "unix":
        hop = Hop("next", relay_path(next_port), "Pass", s.to_batch, Mib())
    elif next_port:
        hop = StreamHop(f"127.0.0.1:{next_port}")

    class Relay:
        mib = Mib()

        @batches(skbuff_pb2.SkBuffBatch)
        def Pass(self, request, context):
            skbs = [s.from_proto(m) for m in request.skbs]
            if stamp:
                now = time.time_ns()
                for skb in skbs:
                    skb.tstamp = now
            if hop is not None:
                hop.put(skbs)
            else:
                with cond:
                    queue_.extend(skbs)
                    cond.notify_all()
            return skbuff_pb2.Disposition(accepted=len(skbs))

    relay = Relay()
    listener = HopListener(relay_path(port), relay) if transport == "unix" else None

    def take(enough: int, timeout: float):
        with cond:
            cond.wait_for(lambda: len(queue_) >= enough, timeout=timeout)
            taken = queue_[:BATCH]
            del queue_[:BATCH]
        return s.to_batch(taken)

    def unary(handler):
        return grpc.unary_unary_rpc_method_handler(handler, request_deserializer=skbuff_pb2.SkBuffBatch.FromString,
                                                   response_serializer=skbuff_pb2.SkBuffBatch.SerializeToString)

    handlers = {"Recv": unary(lambda request, context: take(1, 0.5)),  # as MSG_WAITFORONE
                "RecvBatch": unary(lambda request, context: take(BATCH, READ_WAIT_S)),  # as the busy reader
        "Pass": grpc.stream_unary_rpc_method_handler(
        relay.Pass, request_deserializer=skbuff_pb2.SkBuffBatch.FromString,
        response_serializer=skbuff_pb2.Disposition.SerializeToString)}
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(_SERVICE, handlers)])
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    print("ready", flush=True)
    try:
        server.wait_for_termination()
    finally:
        if listener is not None:
            listener.close()


def relay_path(port: int) -> str:
    return os.path.join(tempfile.gettempdir(), f"pktpath-bench-relay-{port}.hop")


def measure_floor(transport: str, base_port: int, seconds: float, samples: int) -> tuple[float, list, list]:
    ports = [base_port + i for i in range(RELAY_HOPS)]
    procs = []
    try:
        for i, port in enumerate(ports):
            nxt = ports[i + 1] if i + 1 < len(ports) else 0
            procs.append(subprocess.Popen([sys.executable, __file__, "--relay-stage", transport, str(port), str(nxt),
                                           str(int(i == 0))], stdout=subprocess.PIPE, text=True))
        for p in procs:
            if p.stdout.readline() != "ready\n":
                raise RuntimeError(f"a {transport} relay stage did not start")
        first = (Hop("first", relay_path(ports[0]), "Pass", s.to_batch, Mib()) if transport == "unix"
                 else StreamHop(f"127.0.0.1:{ports[0]}"))
        out = channel(f"127.0.0.1:{ports[-1]}")
        last, last_batch = (out.unary_unary(method, request_serializer=skbuff_pb2.SkBuffBatch.SerializeToString,
                                            response_deserializer=skbuff_pb2.SkBuffBatch.FromString)
                            for method in (_RECV, _RECV_BATCH))
        frame = udp_frame()

        def batch(n: int) -> list:
            return [s.SkBuff(frame, 0, len(frame), len(frame), sampled=False) for _ in range(n)]

        def inject(skbs) -> int:
            first.put(skbs)
            return len(skbs)

        def receive() -> list:
            return last(skbuff_pb2.SkBuffBatch(), timeout=10).skbs

        pps = saturate(inject, lambda: len(last_batch(skbuff_pb2.SkBuffBatch(), timeout=10).skbs), lambda: batch(BATCH),
                       seconds)
        while receive():  # drain what the flood left queued
            pass
        one = batch(1)
        total, stack = idle_latency(lambda: inject(one), lambda: receive()[0].tstamp, samples)
        first.close()
        return pps, total, stack
    finally:
        for p in procs:
            p.kill()
            p.wait()
        for port in ports:
            Path(relay_path(port)).unlink(missing_ok=True)


# -- pktpath -------------------------------------------------------------------

def cpu_seconds(pid: int) -> float:
    """utime + stime of a process so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def saturate(inject, receive, make_batch, seconds: float, window: int = WINDOW, pids=None,
             cpu_us: dict | None = None) -> float:
    """Inject from one thread, read from another; packets/s received. The injector keeps
    at most `window` packets in flight (a sender that paces itself to the receiver,
    not a flood whose excess the NIC would drop at the ring and the figure would hide).
    With pids ({name: pid}), each one's CPU µs per packet is printed, and put in cpu_us."""
    msg = make_batch()
    stop = threading.Event()
    received, calls = [0], [0]
    cond = threading.Condition()

    def reader():
        while not stop.is_set():
            try:
                n = receive()
            except (grpc.RpcError, OSError):
                continue
            with cond:
                received[0] += n
                calls[0] += 1
                cond.notify_all()

    def injector():
        accepted = 0
        while not stop.is_set():
            with cond:
                cond.wait_for(lambda: accepted - received[0] < window or stop.is_set(), timeout=1)
            accepted += inject(msg)

    threads = [threading.Thread(target=reader, daemon=True), threading.Thread(target=injector, daemon=True)]
    for t in threads:
        t.start()
    time.sleep(1.0)  # warm up: ARP-free path, caches, thread pools
    cpu0 = {name: cpu_seconds(pid) for name, pid in (pids or {}).items()}
    n0, c0, t0 = received[0], calls[0], time.perf_counter()
    time.sleep(seconds)
    n1, c1, t1 = received[0], calls[0], time.perf_counter()
    if pids:  # CPU per packet, by process: where the two cores go
        used = {name: cpu_seconds(pid) - cpu0[name] for name, pid in pids.items()}
        if cpu_us is not None:
            cpu_us.update({name: s / max(1, n1 - n0) * 1e6 for name, s in used.items()})
        print("CPU µs per packet: " + ", ".join(f"{name} {s / max(1, n1 - n0) * 1e6:.1f}"
                                                for name, s in used.items()))
        print(f"packets per receive call: {(n1 - n0) / max(1, c1 - c0):.1f}")
    stop.set()
    for t in threads:
        t.join(5)
    return (n1 - n0) / (t1 - t0)


def idle_latency(inject_one, receive, samples: int) -> tuple[list[float], list[float]]:
    """One packet at a time into an idle path, the reader already blocked in its call.
    Two figures per packet, in µs: from the injecting call to the reader's return
    (what a client sees, both gRPC calls included), and from the packet's receive
    timestamp (its tstamp: `receive` returns it) to the reader's return (the path
    through the layers, without the injecting call)."""
    got = threading.Event()
    go = threading.Event()
    done = threading.Event()
    total, stack = [], []

    def reader():
        while not done.is_set():
            go.wait()
            go.clear()
            if done.is_set():
                return
            tstamp = receive()
            stack.append((time.time_ns() - tstamp) / 1e3)
            got.set()

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    time.sleep(0.2)
    for _ in range(samples):
        got.clear()
        go.set()
        time.sleep(0.005)  # the reader is blocked in its receive call again
        t0 = time.perf_counter()
        inject_one()
        got.wait(5)
        total.append((time.perf_counter() - t0) * 1e6)
        time.sleep(0.005)
    done.set()
    go.set()
    return total, stack


def wait_for_dad(sup, host: str, timeout: float = 10) -> None:
    """Until the host's IPv6 addresses are no longer tentative: a packet to a tentative one is not ours."""
    from google.protobuf import empty_pb2

    from pktpath.rpc import l3_pb2_grpc

    l3 = l3_pb2_grpc.L3Stub(sup.addrs.channel(host, "l3"))
    deadline = time.monotonic() + timeout
    while any(a.flags & IFA_F_TENTATIVE for i in l3.GetAddrs(empty_pb2.Empty(), timeout=5).addrs for a in i.inet6):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{host}'s IPv6 addresses are still tentative")
        time.sleep(0.1)


def measure_pktpath(base_port: int, seconds: float, samples: int, family: int = 4) -> tuple[float, list, list, dict]:
    logs = tempfile.TemporaryDirectory(prefix="pktpath-bench-")
    sup = Supervisor(load("default"), base_port, log_dir=Path(logs.name))
    sup.start(timeout=60)
    try:
        api = SocketApi(sup.addrs.target("B", "socket"))
        if family == 6:
            wait_for_dad(sup, "B")
            sock = api.socket(family=AF_INET6)
            sock.bind(("::", PORT))
        else:
            sock = api.socket()
            sock.bind(("0.0.0.0", PORT))
        nic = nic_pb2_grpc.NicStub(sup.addrs.channel("B", "nic"))
        frame = udp_frame(family=family)

        def batch(n: int) -> skbuff_pb2.FrameBatch:
            return skbuff_pb2.FrameBatch(dev="eth0", frames=[skbuff_pb2.Frame(data=frame)] * n)

        drops = {}

        def inject(msg) -> int:
            d = nic.Inject(msg, timeout=10)
            for dc in d.drops:
                name = skbuff_pb2.DropReason.Name(dc.reason)
                drops[name] = drops.get(name, 0) + dc.count
            return d.accepted

        pids = {svc.layer: svc.proc.pid for svc in sup.services if svc.host == "B"}
        pids["client"] = os.getpid()
        # a busy reader: the largest buffer, and recvmmsg waiting for a whole batch
        sock.setsockopt(SOL_SOCKET, SO_RCVBUF, RMEM_MAX)
        pps = saturate(inject, lambda: len(sock.recvmmsg(BATCH, timeout=READ_WAIT_S, flags=0)), lambda: batch(BATCH),
                       seconds, pids=pids)
        # drain what the flood left queued, then measure idle latency
        while True:
            try:
                sock.recvmmsg(BATCH, timeout=0.5)
            except TimeoutError:
                break
        one = batch(1)
        sock.setsockopt(SOL_SOCKET, SO_TIMESTAMPNS, 1)
        total, stack = idle_latency(lambda: inject(one), lambda: sock.recvmsg(timeout=5).tstamp_ns, samples)
        print(f"IPv{family}: packets per batch, by hop (whole run): " + ", ".join(hop_batching(sup, "B", family)))
        return pps, total, stack, drops
    finally:
        sup.stop()
        logs.cleanup()


def hop_batching(sup, host: str, family: int = 4) -> list[str]:
    from google.protobuf import empty_pb2

    from pktpath.rpc import l2_pb2_grpc, l3_pb2_grpc, l4_pb2_grpc, softirq_pb2_grpc

    out = []
    for layer, stub_cls, hop in (("softirq", softirq_pb2_grpc.SoftirqStub, "l2"),
                                 ("l2", l2_pb2_grpc.L2Stub, "l3" if family == 4 else "ipv6"),
                                 ("l3", l3_pb2_grpc.L3Stub, "udp" if family == 4 else "udp6"),
                                 ("l4", l4_pb2_grpc.L4Stub, "socket")):
        stub = stub_cls(sup.addrs.channel(host, layer))
        groups = {g.name: dict(g.values) for g in stub.GetCounters(empty_pb2.Empty(), timeout=5).groups}
        hops = groups.get("Hop", {})
        batches = hops.get(f"{hop}Batches", 0)
        out.append(f"{layer}->{hop} {hops.get(f'{hop}Items', 0) / batches:.1f}" if batches else f"{layer}->{hop} -")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--base-port", type=int, default=47000)
    ap.add_argument("--relay-stage", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.relay_stage:
        transport, port, next_port, stamp = args.relay_stage
        relay_stage(transport, int(port), int(next_port), stamp == "1")
        return 0
    print(f"cpus: {os.cpu_count()}, python {sys.version.split()[0]}, grpcio {grpc.__version__}")
    runs = {family: measure_pktpath(args.base_port + 500 * (family == 6), args.seconds, args.samples, family)
            for family in (4, 6)}
    floors = {transport: measure_floor(transport, args.base_port + 900 + 10 * i, args.seconds, args.samples)
              for i, transport in enumerate(TRANSPORTS)}
    print(f"{'':38}{'pktpath':>9}{'floor: unix':>13}{'ratio':>7}{'floor: gRPC':>13}{'ratio':>7}")
    for family, (pps, total, stack, _) in runs.items():
        row = f"{f'IPv{family} UDP RX packets/s':38}{pps:9.0f}"
        for floor_pps, _, _ in floors.values():
            row += f"{floor_pps:13.0f}{pps / floor_pps:7.0%}"
        print(row)
        for label, ours, index in (("NIC → reader", stack, 2), ("inject call → reader", total, 1)):
            for q in (0.5, 0.99):
                a = percentile(ours, q)
                row = f"{f'IPv{family} idle {label} p{int(q * 100)} µs':38}{a:9.0f}"
                for floor in floors.values():
                    b = percentile(floor[index], q)
                    row += f"{b:13.0f}{a / b:7.2f}"
                print(row)
    ratio = runs[6][0] / runs[4][0] if runs[4][0] else 0
    print(f"IPv6 / IPv4 packets/s: {ratio:.2f}")
    for family, (_, _, _, drops) in runs.items():
        print(f"IPv{family} drops while saturated (at the NIC, by reason): {drops or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
