"""UDP and TCP over a link that is a VXLAN tunnel between machines, next to today's local
link, in the same run; and what the tunnel costs per frame.

    sudo python benchmarks/tunnel.py [--seconds 5] [--megabytes 10] [--runs 2]

The router topology (A - R - B) twice: as local processes, its links Unix-socket hops
between the NICs ("local"), and each host in a network and mount namespace of its own
(pktpath.machines), its links VXLAN tunnels over a bridge ("vxlan"). Root only.

UDP: datagrams from A's address to B's port, injected at R's eth0 (Inject, 256 frames a
call, at most 2048 in flight), forwarded by R out of eth1 over the link to B, and read by
a busy reader on B (recvmmsg of up to 256): R's forwarding and transmit, the link, and B's
whole receive path. Figures: datagrams/s received under saturation, and the CPU µs per
datagram of R's and B's NIC services, the two ends of the link: their difference between
the runs is the tunnel's cost per frame (encapsulation, a UDP send through R's kernel and a
receive through B's, the demultiplexing by VNI). TCP: A sends --megabytes to B through R,
goodput over --runs transfers. 1 % of packets traced, as by default.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from rx_path import BATCH, READ_WAIT_S, RMEM_MAX, saturate
from tcp_bulk import goodput

from pktpath.client import SO_RCVBUF, SOL_SOCKET, SocketApi
from pktpath.machines import Machines
from pktpath.pb import skbuff_pb2
from pktpath.rpc import nic_pb2_grpc
from pktpath.supervisor import Supervisor
from pktpath.topology import load
from pktpath.wire import EthHdr, IpHdr, UdpHdr
from pktpath.wire.addr import ip_from_str, mac_from_str

PORT = 9998
B_ADDR = "10.0.2.1"


def forwarded_frame(payload: bytes = b"x" * 64) -> bytes:
    """A datagram from A (10.0.1.1) to B's PORT, as it reaches R's eth0 from A's."""
    eth = EthHdr(mac_from_str("02:00:00:00:01:fe"), mac_from_str("02:00:00:00:01:01"), 0x0800)
    src, dst = ip_from_str("10.0.1.1"), ip_from_str(B_ADDR)
    udp = UdpHdr(40000, PORT).to_bytes(payload, src, dst) + payload
    return eth.to_bytes() + IpHdr(src, dst, 17, ttl=64).to_bytes(len(udp)) + udp


def measure(addrs, pids: dict[str, int], seconds: float, megabytes: float, runs: int) -> dict:
    a, b = SocketApi(addrs.target("A", "socket")), SocketApi(addrs.target("B", "socket"))
    rx = b.socket()
    rx.bind(("0.0.0.0", PORT))
    rx.setsockopt(SOL_SOCKET, SO_RCVBUF, RMEM_MAX)
    nic = nic_pb2_grpc.NicStub(addrs.channel("R", "nic"))
    batch = skbuff_pb2.FrameBatch(dev="eth0", frames=[skbuff_pb2.Frame(data=forwarded_frame())] * BATCH)
    # the first datagram through: R learns B's MAC, and it is not part of the figures
    nic.Inject(skbuff_pb2.FrameBatch(dev="eth0", frames=batch.frames[:1]), timeout=10)
    rx.recvfrom(100, timeout=10)
    cpu: dict[str, float] = {}
    pps = saturate(lambda msg: nic.Inject(msg, timeout=10).accepted,
                   lambda: len(rx.recvmmsg(BATCH, timeout=READ_WAIT_S, flags=0)), lambda: batch, seconds, pids=pids,
                   cpu_us=cpu)
    rx.close()
    time.sleep(1)  # what the flood left queued drains
    rates = [goodput(a, b, int(megabytes * 1e6), 0, B_ADDR) for _ in range(runs)]
    a.close()
    b.close()
    return {"pps": pps, "tcp": rates, "cpu": cpu}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0, help="UDP saturation time (default 5)")
    ap.add_argument("--megabytes", type=float, default=10.0, help="each TCP transfer (default 10)")
    ap.add_argument("--runs", type=int, default=2, help="TCP transfers for each link (default 2)")
    ap.add_argument("--base-port", type=int, default=47000)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("tunnel.py: the tunnelled run makes network namespaces: run it as root", file=sys.stderr)
        return 2
    topology = load("router")
    results = {}
    with tempfile.TemporaryDirectory(prefix="pktpath-bench-") as tmp:
        print("local: the router topology as local processes, links as Unix-socket hops", flush=True)
        sup = Supervisor(topology, args.base_port, log_dir=Path(tmp) / "logs")
        sup.start(timeout=60)
        try:
            pids = {f"{s.host}/{s.layer}": s.proc.pid for s in sup.services if s.layer == "nic" and s.host in "RB"}
            results["local"] = measure(sup.addrs, pids, args.seconds, args.megabytes, args.runs)
        finally:
            sup.stop()
        print("vxlan: each host in namespaces of its own, links as VXLAN tunnels over a bridge", flush=True)
        m = Machines("router", 3, args.base_port + 1000, Path(tmp))
        with m.as_client():
            try:
                m.start()
                pids = {f"{host}/nic": m.pids(host)["nic"] for host in ("R", "B")}
                results["vxlan"] = measure(m.orchestrator.addrs, pids, args.seconds, args.megabytes, args.runs)
            finally:
                m.stop()
    local, vxlan = results["local"], results["vxlan"]
    print(f"\n{'':24}{'local':>12}{'vxlan':>12}{'vxlan/local':>13}")
    print(f"{'UDP datagrams/s':24}{local['pps']:>12.0f}{vxlan['pps']:>12.0f}{vxlan['pps'] / local['pps']:>13.2f}")
    lt, vt = statistics.median(local["tcp"]), statistics.median(vxlan["tcp"])
    print(f"{'TCP MB/s (median)':24}{lt:>12.2f}{vt:>12.2f}{vt / lt:>13.2f}")
    for nic in ("R/nic", "B/nic"):
        lc, vc = local["cpu"][nic], vxlan["cpu"][nic]
        print(f"{nic + ' CPU µs/datagram':24}{lc:>12.1f}{vc:>12.1f}{vc / lc:>13.2f}")
    added = sum(vxlan["cpu"][n] - local["cpu"][n] for n in ("R/nic", "B/nic"))
    print(f"the tunnel's cost per frame: {added:.1f} µs of CPU at its two ends (R's NIC sends, B's receives), "
          f"{(1 / vxlan['pps'] - 1 / local['pps']) * 1e6:+.1f} µs of the path's time per datagram at saturation")
    return 0


if __name__ == "__main__":
    sys.exit(main())
