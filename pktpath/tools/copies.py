"""How many copies does a send make? Measured from the packets' own traces.

Each case sends data from host A to host B through the socket API of a running
topology, then reads the records of the sampled packets that finished in every
layer of every host (pktpath.v1.Trace) and lists each data movement their
events name: COPY (the CPU copies bytes), CLONE (a new sk_buff header, the data
shared) and DMA (the device moves the bytes, not the CPU), where it happened
and how many bytes. An event seen in several records (a frame's events travel
with it from host to host) counts once.

The article's answer for a send is three copies: user → sk_buff, TCP's clone
for the network layer, and IP fragmentation when a packet exceeds the MTU. The
cases show where that holds and where it does not, over IPv4 and over IPv6 (a
case whose destination is an IPv6 address sends through AF_INET6 sockets, once
duplicate address detection has let the hosts' addresses go).
"""

import time
from collections import Counter
from dataclasses import dataclass

from pktpath.client import AF_INET, AF_INET6, IP_MTU_DISCOVER, IPPROTO_IP, SHUT_WR, SOCK_STREAM, SocketApi
from pktpath.flow import IP_PMTUDISC_DONT
from pktpath.pb import skbuff_pb2, trace_pb2
from pktpath.rpc import trace_pb2_grpc
from pktpath.trace import SAMPLER_ARG

pb = skbuff_pb2
KINDS = {pb.COPY: "COPY", pb.CLONE: "CLONE", pb.DMA: "DMA"}
LAYER_NAMES = {pb.LAYER_NIC: "nic", pb.LAYER_SOFTIRQ: "softirq", pb.LAYER_L2: "l2", pb.LAYER_L3: "l3",
               pb.LAYER_L4: "l4", pb.LAYER_SOCKET: "socket"}
SETTLE_S = 0.5  # TX completions and the ACKs that free TCP's originals come after the data
DAD_WAIT_S = 10.0  # duplicate address detection holds a new IPv6 address tentative for about a second
IFA_F_TENTATIVE = 0x40


@dataclass(frozen=True)
class Case:
    name: str
    topology: str      # "default" or "router"
    protocol: str      # "udp" or "tcp"
    size: int
    dst: str           # B's address in that topology (an IPv6 one: the sockets are AF_INET6)
    fragment_on_path: bool = False  # IP_PMTUDISC_DONT: no DF, so a router splits it

    @property
    def family(self) -> int:
        return AF_INET6 if ":" in self.dst else AF_INET


CASES = (
    Case("TCP 100 B", "default", "tcp", 100, "10.0.0.2"),
    Case("TCP 10 kB", "default", "tcp", 10_000, "10.0.0.2"),
    Case("UDP 100 B", "default", "udp", 100, "10.0.0.2"),
    Case("UDP 3000 B (fragmented)", "default", "udp", 3000, "10.0.0.2"),
    Case("TCP 10 kB over IPv6", "default", "tcp", 10_000, "2001:db8::2"),
    Case("UDP 3000 B over IPv6 (fragmented)", "default", "udp", 3000, "2001:db8::2"),
    Case("UDP 1400 B forwarded by R onto MTU 1280", "router", "udp", 1400, "10.0.2.1", fragment_on_path=True),
)


@dataclass(frozen=True)
class Movement:
    kind: str
    host: str
    layer: str
    func: str
    nbytes: int
    where: str         # "user -> skb" for a COPY


class Traces:
    """The finished-packet buffers of every layer of every host of a running topology."""

    def __init__(self, addrs) -> None:
        self._stubs = {(h.name, layer): trace_pb2_grpc.TraceStub(addrs.channel(h.name, layer))
                       for h in addrs.topology.hosts for layer in LAYER_NAMES.values()}
        self._marks: dict = {}

    def mark(self) -> None:
        """From now on: what finishes after this call."""
        self._marks = {key: stub.GetFinished(trace_pb2.FinishedQuery(after_seq=2**63), timeout=5).last_seq
                       for key, stub in self._stubs.items()}

    def since_mark(self) -> list:
        records = []
        for key, stub in self._stubs.items():
            after, more = self._marks.get(key, 0), True
            while more:  # a reply holds at most MAX_PER_REPLY records
                reply = stub.GetFinished(trace_pb2.FinishedQuery(after_seq=after), timeout=5)
                records += reply.skbs
                after, more = reply.last_seq, reply.more
        return records


def movements(records) -> list[Movement]:
    """Every COPY, CLONE and DMA the records name, each once, in time order."""
    seen, out = set(), []
    for record in records:
        for e in record.events:  # one event of one packet, whichever records carry it
            key = (record.origin_host, record.id, e.kind, e.layer, e.host, e.func, e.ts_ns, e.bytes)
            if e.kind not in KINDS or key in seen:
                continue
            seen.add(key)
            where = f"{e.copy_from} -> {e.copy_to}" if e.kind == pb.COPY else ""
            out.append((e.ts_ns, Movement(KINDS[e.kind], e.host, LAYER_NAMES.get(e.layer, "?"), e.func, e.bytes,
                                          where)))
    return [m for _, m in sorted(out, key=lambda tm: tm[0])]


def run_case(case: Case, a: SocketApi, b: SocketApi, traces: Traces, port: int) -> list[Movement]:
    """Send case.size bytes from A to B, read them there, and return what moved."""
    data = bytes(i % 251 for i in range(case.size))
    family, anywhere = case.family, "::" if case.family == AF_INET6 else "0.0.0.0"
    traces.mark()
    if case.protocol == "udp":
        with b.socket(family=family) as rx, a.socket(family=family) as tx:
            rx.bind((anywhere, port))
            if case.fragment_on_path:
                tx.setsockopt(IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DONT)
            tx.sendto(data, (case.dst, port))
            got, _ = rx.recvfrom(65535, timeout=10)
    else:
        with b.socket(SOCK_STREAM, family=family) as srv, a.socket(SOCK_STREAM, family=family) as cli:
            srv.bind((anywhere, port))
            srv.listen(1)
            cli.connect((case.dst, port), timeout=10)
            conn, _ = srv.accept(timeout=10)
            cli.sendall(data)
            cli.shutdown(SHUT_WR)
            got = bytearray()
            while chunk := conn.recv(65536, timeout=10):
                got += chunk
            conn.close()
    if bytes(got) != data:
        raise RuntimeError(f"{case.name}: B received {len(got)} bytes, not the {len(data)} sent")
    time.sleep(SETTLE_S)
    return movements(traces.since_mark())


def summary(moves: list[Movement]) -> Counter:
    """COPY/CLONE/DMA counts and bytes: {"COPY": n, "COPY bytes": b, ...}."""
    out: Counter = Counter()
    for m in moves:
        out[m.kind] += 1
        out[f"{m.kind} bytes"] += m.nbytes
    return out


Table = tuple[str, list[str], list[list]]  # a title, the column heads, the rows


def tables(results: list[tuple[Case, list[Movement]]]) -> list[Table]:
    """The summary (a row per case), then each case's movements, the same at one place
    counted together, in the order they first came."""
    out: list[Table] = [("", ["case", "CPU copies (COPY)", "bytes copied", "clones (CLONE)", "device copies (DMA)"],
                         [[case.name, (c := summary(moves))["COPY"], c["COPY bytes"], c["CLONE"], c["DMA"]]
                          for case, moves in results])]
    for case, moves in results:
        groups: dict = {}
        for m in moves:
            key = (m.kind, m.host, m.layer, m.func, m.where)
            times, nbytes = groups.get(key, (0, 0))
            groups[key] = (times + 1, nbytes + m.nbytes)
        out.append((case.name, ["kind", "host", "layer", "function", "times", "bytes", "from -> to"],
                    [[kind, host, layer, func, times, nbytes, where]
                     for (kind, host, layer, func, where), (times, nbytes) in groups.items()]))
    return out


def markdown(tabs: list[Table]) -> list[str]:
    """For docs/copies.md: Markdown tables, each case's under its heading."""
    lines: list[str] = []
    for title, heads, rows in tabs:
        if title:
            lines += ["", f"### {title}", ""]
        lines += ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
        code = heads.index("function") if "function" in heads else -1
        lines += ["| " + " | ".join(f"`{v}`" if i == code else str(v) for i, v in enumerate(row)) + " |"
                  for row in rows]
    return lines


def terminal(tabs: list[Table]) -> list[str]:
    """For a terminal: aligned columns, numbers to the right, as the other tools print (rich's tables)."""
    import io

    from rich.console import Console
    from rich.table import Table as RichTable

    console = Console(file=io.StringIO(), width=200, color_system=None, highlight=False)
    for title, heads, rows in tabs:
        if title:
            console.print(f"\n{title}")
        table = RichTable(box=None, pad_edge=False, show_edge=False, header_style="")
        for i, head in enumerate(heads):
            numeric = bool(rows) and all(isinstance(row[i], int) for row in rows)
            table.add_column(head, justify="right" if numeric else "left", no_wrap=True)
        for row in rows:
            table.add_row(*(str(v) for v in row))
        console.print(table)
    return [line.rstrip() for line in console.file.getvalue().splitlines()]


def report(results: list[tuple[Case, list[Movement]]], *, as_markdown: bool = False) -> list[str]:
    """The measured cases, for a terminal or (as_markdown) for docs."""
    tabs = tables(results)
    return markdown(tabs) if as_markdown else terminal(tabs)


def running_report(addrs) -> list[str]:
    """The COPY, CLONE and DMA of every packet a running topology has moved, sampled or
    not: each service counts them (groups Moves and MoveBytes, "KIND function")."""
    from pktpath.counters import MOVE_BYTES, MOVES
    from pktpath.tools.apps import HostView

    rows = []
    for h in addrs.topology.hosts:
        view = HostView(addrs, h.name)
        try:
            for layer, groups in view.layer_counters().items():
                times, nbytes = groups.get(MOVES, {}), groups.get(MOVE_BYTES, {})
                for name in sorted(times, key=lambda n: (list(KINDS.values()).index(n.split()[0]), n)):
                    kind, func = name.split(" ", 1)
                    rows.append([kind, h.name, layer, func, times[name], nbytes.get(name, 0)])
        finally:
            view.close()
    return terminal([("", ["kind", "host", "layer", "function", "times", "bytes"], rows)])


def ipv6_ready(addrs, timeout: float = DAD_WAIT_S) -> bool:
    """Whether every host's IPv6 addresses have left duplicate address detection (a packet to
    a tentative address is not the host's; one is not a source), waiting up to timeout."""
    from google.protobuf import empty_pb2

    from pktpath.rpc import l3_pb2_grpc

    stubs = [l3_pb2_grpc.L3Stub(addrs.channel(h.name, "l3")) for h in addrs.topology.hosts]
    deadline = time.monotonic() + timeout
    while True:
        tables = [stub.GetAddrs(empty_pb2.Empty(), timeout=5) for stub in stubs]
        if not any(a.flags & IFA_F_TENTATIVE for table in tables for i in table.addrs for a in i.inet6):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


def measure(base_port: int, log_dir=None, out=print) -> list[tuple[Case, list[Movement]]]:
    """Run every case, each topology as local processes started here (ports from base_port)."""
    import os
    import tempfile
    from pathlib import Path

    from pktpath.supervisor import Supervisor
    from pktpath.topology import load

    results = []
    for i, name in enumerate(dict.fromkeys(case.topology for case in CASES)):
        logs = tempfile.TemporaryDirectory(prefix="pktpath-copies-")
        sup = Supervisor(load(name), base_port + 100 * i, log_dir=Path(log_dir or logs.name),
                         env={**os.environ, SAMPLER_ARG: "1"})  # every packet: a case's count is exact
        out(f"starting the {name} topology ...")
        sup.start(timeout=60)
        try:
            a, b = (SocketApi(sup.addrs.target(h.name, "socket")) for h in (sup.topology.hosts[0],
                                                                              sup.topology.hosts[-1]))
            traces = Traces(sup.addrs)
            if any(c.family == AF_INET6 for c in CASES if c.topology == name) and not ipv6_ready(sup.addrs):
                raise RuntimeError(f"the {name} topology's IPv6 addresses stayed tentative")
            for n, case in enumerate(c for c in CASES if c.topology == name):
                results.append((case, run_case(case, a, b, traces, 7400 + n)))
                out(f"  {case.name}: {dict(summary(results[-1][1]))}")
        finally:
            sup.stop()
            logs.cleanup()
    return sorted(results, key=lambda r: CASES.index(r[0]))
