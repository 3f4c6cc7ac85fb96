"""UDP through one host's receive path, against the floor of a bare gRPC relay chain.

    python benchmarks/rx_path.py [--seconds 5] [--samples 200]

pktpath: the default topology as local processes; frames are injected at B's
NIC (Inject, batches of 64, at most 1024 packets in flight) and read by a
socket on B with recvmmsg (up to 256 per call): NIC → softirq → L2 → L3 → L4
→ socket, every hop a process.

Floor: six bare relay processes with the same hops and the same batching
(pktpath.hop: a Unix stream socket per hop, batches merged up to 256), each
only parsing and re-serializing the SkBuffBatch, and the same reader. The NIC →
softirq hop of pktpath is a shared-memory ring plus an IRQ stream; the floor's
first hop is a socket like the others.

Figures: packets/s received over --seconds under saturation, and idle
one-way latency (inject one frame, a reader already blocked in recvfrom;
--samples of them): p50 and p99. Each latency includes the client's Inject
request and the Recvfrom reply, on both sides.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent import futures
from pathlib import Path

import grpc

from pktpath import skbuff as s
from pktpath.client import SocketApi
from pktpath.counters import Mib
from pktpath.hop import Hop, HopListener, batches
from pktpath.pb import nic_pb2_grpc, skbuff_pb2
from pktpath.service import channel
from pktpath.supervisor import Supervisor
from pktpath.topology import load
from pktpath.wire import EthHdr, IpHdr, UdpHdr
from pktpath.wire.addr import ip_from_str, mac_from_str

PORT = 9999
BATCH = 256
WINDOW = 2048
RELAY_HOPS = 6  # nic, softirq, l2, l3, l4, socket


def udp_frame(payload: bytes = b"x" * 64) -> bytes:
    src, dst = ip_from_str("10.0.0.1"), ip_from_str("10.0.0.2")
    udp = UdpHdr(40000, PORT).to_bytes(payload, src, dst) + payload
    return (EthHdr(mac_from_str("02:00:00:00:00:0b"), mac_from_str("02:00:00:00:00:0a"), 0x0800).to_bytes()
            + IpHdr(src, dst, 17).to_bytes(len(udp)) + udp)


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


# -- the floor: a chain of bare relays ------------------------------------------

_RECV = "/pktpath.bench.Relay/Recv"


def relay_stage(port: int, next_port: int) -> None:
    """One relay process: parse each batch from its hop listener, hand it to a Hop
    towards the next stage; the last stage queues packets for a reader (a gRPC Recv
    call, as the socket layer's recvmmsg), which is all its gRPC server does."""
    queue, cond = [], threading.Condition()
    hop = Hop("next", relay_path(next_port), "Pass", s.to_batch, Mib()) if next_port else None

    class Relay:
        mib = Mib()

        @batches(skbuff_pb2.SkBuffBatch)
        def Pass(self, request, context):
            skbs = [s.from_proto(m) for m in request.skbs]
            if hop is not None:
                hop.put(skbs)
            else:
                with cond:
                    queue.extend(skbs)
                    cond.notify_all()
            return skbuff_pb2.Disposition(accepted=len(skbs))

    listener = HopListener(relay_path(port), Relay())

    def recv(request, context):
        with cond:
            cond.wait_for(lambda: queue, timeout=0.5)
            taken = queue[:256]
            del queue[:256]
        return s.to_batch(taken)

    handlers = {"Recv": grpc.unary_unary_rpc_method_handler(
        recv, request_deserializer=skbuff_pb2.SkBuffBatch.FromString,
        response_serializer=skbuff_pb2.SkBuffBatch.SerializeToString)}
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("pktpath.bench.Relay", handlers)])
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    print("ready", flush=True)
    try:
        server.wait_for_termination()
    finally:
        listener.close()


def relay_path(port: int) -> str:
    return os.path.join(tempfile.gettempdir(), f"pktpath-bench-relay-{port}.hop")


def measure_floor(base_port: int, seconds: float, samples: int) -> tuple[float, list[float]]:
    ports = [base_port + i for i in range(RELAY_HOPS)]
    procs = []
    try:
        for i, port in enumerate(ports):
            nxt = ports[i + 1] if i + 1 < len(ports) else 0
            procs.append(subprocess.Popen([sys.executable, __file__, "--relay-stage", str(port), str(nxt)],
                                          stdout=subprocess.PIPE, text=True))
        for p in procs:
            p.stdout.readline()
        first = Hop("first", relay_path(ports[0]), "Pass", s.to_batch, Mib())
        last = channel(f"127.0.0.1:{ports[-1]}").unary_unary(
            _RECV, request_serializer=skbuff_pb2.SkBuffBatch.SerializeToString,
            response_deserializer=skbuff_pb2.SkBuffBatch.FromString)
        frame = udp_frame()

        def batch(n: int) -> list:
            return [s.SkBuff(frame, 0, len(frame), len(frame), sampled=False) for _ in range(n)]

        def inject(skbs) -> int:
            first.put(skbs)
            return len(skbs)

        def receive() -> int:
            return len(last(skbuff_pb2.SkBuffBatch(), timeout=10).skbs)

        pps = saturate(inject, receive, lambda: batch(BATCH), seconds)
        while receive():  # drain what the flood left queued
            pass
        one = batch(1)
        lat = idle_latency(lambda: inject(one), receive, samples)
        first.close()
        return pps, lat
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


def saturate(inject, receive, make_batch, seconds: float, window: int = WINDOW, pids=None) -> float:
    """Inject from one thread, read from another; packets/s received. The injector keeps
    at most `window` packets in flight (a sender that paces itself to the receiver,
    not a flood whose excess the NIC would drop at the ring and the figure would hide)."""
    msg = make_batch()
    stop = threading.Event()
    received = [0]
    cond = threading.Condition()

    def reader():
        while not stop.is_set():
            try:
                n = receive()
            except (grpc.RpcError, OSError):
                continue
            with cond:
                received[0] += n
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
    n0, t0 = received[0], time.perf_counter()
    time.sleep(seconds)
    n1, t1 = received[0], time.perf_counter()
    if pids:  # CPU per packet, by process: where the two cores go
        used = {name: cpu_seconds(pid) - cpu0[name] for name, pid in pids.items()}
        print("CPU µs per packet: " + ", ".join(f"{name} {s / max(1, n1 - n0) * 1e6:.1f}"
                                                for name, s in used.items()))
    stop.set()
    for t in threads:
        t.join(5)
    return (n1 - n0) / (t1 - t0)


def idle_latency(inject_one, receive, samples: int) -> list[float]:
    """One packet at a time into an idle path: µs from inject to the reader's return."""
    got = threading.Event()
    go = threading.Event()
    done = threading.Event()
    lat = []

    def reader():
        while not done.is_set():
            go.wait()
            go.clear()
            if done.is_set():
                return
            receive()
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
        lat.append((time.perf_counter() - t0) * 1e6)
        time.sleep(0.005)
    done.set()
    go.set()
    return lat


def measure_pktpath(base_port: int, seconds: float, samples: int) -> tuple[float, list[float], dict]:
    logs = tempfile.TemporaryDirectory(prefix="pktpath-bench-")
    sup = Supervisor(load("default"), base_port, log_dir=Path(logs.name))
    sup.start(timeout=60)
    try:
        api = SocketApi(sup.addrs.target("B", "socket"))
        sock = api.socket()
        sock.bind(("0.0.0.0", PORT))
        nic = nic_pb2_grpc.NicStub(channel(sup.addrs.target("B", "nic")))
        frame = udp_frame()

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
        pps = saturate(inject, lambda: len(sock.recvmmsg(256, timeout=2)), lambda: batch(BATCH), seconds, pids=pids)
        # drain what the flood left queued, then measure idle latency
        while True:
            try:
                sock.recvmmsg(BATCH, timeout=0.5)
            except TimeoutError:
                break
        one = batch(1)
        lat = idle_latency(lambda: inject(one), lambda: sock.recvfrom(timeout=5), samples)
        print("packets per batch, by hop (whole run): " + ", ".join(hop_batching(sup, "B")))
        return pps, lat, drops
    finally:
        sup.stop()
        logs.cleanup()


def hop_batching(sup, host: str) -> list[str]:
    from google.protobuf import empty_pb2

    from pktpath.pb import l2_pb2_grpc, l3_pb2_grpc, l4_pb2_grpc, softirq_pb2_grpc

    out = []
    for layer, stub_cls, hop in (("softirq", softirq_pb2_grpc.SoftirqStub, "l2"), ("l2", l2_pb2_grpc.L2Stub, "l3"),
                                 ("l3", l3_pb2_grpc.L3Stub, "udp"), ("l4", l4_pb2_grpc.L4Stub, "socket")):
        stub = stub_cls(channel(sup.addrs.target(host, layer)))
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
    ap.add_argument("--relay-stage", nargs=2, type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.relay_stage:
        relay_stage(*args.relay_stage)
        return 0
    print(f"cpus: {os.cpu_count()}, python {sys.version.split()[0]}, grpcio {grpc.__version__}")
    pps, lat, drops = measure_pktpath(args.base_port, args.seconds, args.samples)
    floor_pps, floor_lat = measure_floor(args.base_port + 900, args.seconds, args.samples)
    print(f"{'':28}{'pktpath':>12}{'relay floor':>14}{'ratio':>8}")
    print(f"{'UDP RX packets/s':28}{pps:12.0f}{floor_pps:14.0f}{pps / floor_pps:8.0%}")
    for q in (0.5, 0.99):
        a, b = percentile(lat, q), percentile(floor_lat, q)
        print(f"{f'idle one-way latency p{int(q * 100)} µs':28}{a:12.0f}{b:14.0f}{a / b:8.2f}")
    print(f"drops while saturated (at the NIC, by reason): {drops or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
