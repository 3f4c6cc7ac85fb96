"""TCP without gRPC: two hosts' engines joined by a simulated wire (delay, loss,
reordering, duplication) under a simulated clock, each with a recording socket
layer. Every segment crosses as the bytes of an IPv4 packet, which scapy reads
in the option tests."""

import errno
import hashlib
import random

import pytest
from scapy.layers.inet import IP, TCP

from pktpath import skbuff as s
from pktpath.counters import Mib
from pktpath.flow import Flowi4
from pktpath.offload import skb_gso_segment, tcp_xmit_size_goal
from pktpath.pb import skbuff_pb2 as pb
from pktpath.services.l4.tcp.cong import BETA, Cubic, Reno
from pktpath.services.l4.tcp.ipv4 import Tcp
from pktpath.services.l4.tcp.sock import TCP_RTO_MIN, TcpSock, TcpState
from pktpath.wire import IpHdr, TcpHdr
from pktpath.wire.addr import ip_from_str as ip
from pktpath.wire.tcp import TCPHDR_ACK, TCPHDR_PSH, TCPHDR_RST, TCPHDR_SYN

from fakes import Clock
from tcpframes import ip_skb

A, B = ip("10.0.0.1"), ip("10.0.0.2")
MTU = 1500
MSS = MTU - 40 - 12  # timestamps on


class Host:
    """One engine and the socket layer above it, recorded."""

    def __init__(self, net: "Net", name: str, addr: int, **kw) -> None:
        self.net, self.name, self.addr = net, name, addr
        self.mib = Mib()
        self.tcp = Tcp(name, mib=self.mib, clock=net.clock, ip_queue_xmit=lambda skbs: net.send(self, skbs),
                       to_sock=self._events, route_output=lambda daddr: (0, addr, MTU),
                       isn=lambda: net.rng.getrandbits(32), **kw)
        self.data: dict[int, bytearray] = {}
        self.eof: set[int] = set()
        self.errors: dict[int, int] = {}
        self.established: dict[int, int] = {}
        self.accepted: list = []
        self.closed: set[int] = set()
        self.acked: dict[int, int] = {}
        self.sndbuf: dict[int, int] = {}
        self.reading = True  # the application reads whatever arrives at once
        self.skbs: list = []

    def _events(self, events) -> None:
        for ev in events:
            if ev.kind == "data":
                self.skbs.append(ev.skb)
                self.data.setdefault(ev.sk, bytearray()).extend(ev.skb.payload())
            elif ev.kind == "eof":
                self.eof.add(ev.sk)
            elif ev.kind == "error":
                self.errors[ev.sk] = ev.value
            elif ev.kind == "established":
                self.established[ev.sk] = ev.value
            elif ev.kind == "accept":
                self.accepted.append(ev.child)
            elif ev.kind == "closed":
                self.closed.add(ev.sk)
            elif ev.kind == "acked":
                self.acked[ev.sk] = self.acked.get(ev.sk, 0) + ev.value
            elif ev.kind == "sndbuf":
                self.sndbuf[ev.sk] = ev.value
        if self.reading:
            self.net.later(0, self.read_all)

    def read_all(self) -> None:
        for sk, buf in self.data.items():
            unread = len(buf) - self.consumed.get(sk, 0)
            if unread:
                self.consumed[sk] = len(buf)
                self.tcp.recvd(sk, unread)

    consumed: dict

    def state(self, sk: int) -> TcpState | None:
        tp = self.tcp.sock(sk)
        return tp.state if tp else None

    def count(self, group: str, name: str) -> int:
        return self.mib.get(group, name)

    def send(self, sk: int, data: bytes, mss: int = MSS) -> int:
        skbs = []
        for i in range(0, len(data), mss):
            chunk = data[i:i + mss]
            skb = s.alloc_skb(s.MAX_HEADER + len(chunk), origin_host=self.name, sampled=self.net.sampled)
            s.skb_reserve(skb, s.MAX_HEADER)
            s.skb_put_data(skb, chunk)
            skb.sk = sk
            skbs.append(skb)
        return self.tcp.sendmsg(sk, skbs)


class Net:
    """A link between two hosts: each segment arrives `delay` later, unless lost."""

    def __init__(self, *, delay: float = 0.005, seed: int = 1, sampled: bool = False, **kw) -> None:
        self.clock = Clock()
        self.rng = random.Random(seed)
        self.delay = delay
        self.sampled = sampled
        self.queue: list = []   # (time, order, callable)
        self._order = 0
        self.a = Host(self, "A", A, **kw)
        self.b = Host(self, "B", B, **kw)
        for h in (self.a, self.b):
            h.consumed = {}
        self.loss = 0.0
        self.dup = 0.0
        self.reorder = 0.0
        self.drop_if = None     # (host, TcpHdr, payload) -> bool: drop this one
        self.wire: list = []    # (time, from, bytes)

    def later(self, dt: float, fn) -> None:
        self._order += 1
        self.queue.append((self.clock.t + dt, self._order, fn))

    def send(self, src: Host, skbs) -> None:
        """IPv4 and the qdisc's GSO as the real ones do them: a GSO skb crosses as segments."""
        dst = self.b if src is self.a else self.a
        packets = []
        for skb in skbs:
            flow = Flowi4.unpack(skb.cb)
            s.skb_push_data(skb, IpHdr(flow.saddr, flow.daddr, 6).to_bytes(skb.len))
            s.skb_reset_network_header(skb)
            packets += skb_gso_segment(skb, pb.LAYER_SOFTIRQ, src.name) if skb.gso_size else [skb]
        for skb in packets:
            raw = bytes(skb.payload())
            seg = raw[20:]
            self.wire.append((self.clock.t, src.name, raw))
            th = TcpHdr.from_bytes(seg)
            if self.drop_if and self.drop_if(src, th, seg[th.header_len:]):
                continue
            if self.rng.random() < self.loss:
                continue
            copies = 2 if self.rng.random() < self.dup else 1
            for _ in range(copies):
                delay = self.delay * (1 + 3 * self.rng.random()) if self.rng.random() < self.reorder else self.delay
                self.later(delay, lambda raw=raw: self._arrive(dst, raw))

    ip_skb = staticmethod(ip_skb)

    @staticmethod
    def _arrive(dst: Host, raw: bytes) -> None:
        dst.tcp.tcp_v4_rcv([Net.ip_skb(raw)])

    def run(self, seconds: float = 5.0, until=None) -> None:
        """Deliver segments and fire timers in time order for up to `seconds`."""
        end = self.clock.t + seconds
        while self.clock.t < end and not (until and until()):
            deadlines = [d for d in (self.a.tcp.run_timers(), self.b.tcp.run_timers()) if d]
            next_t = min([q[0] for q in self.queue] + deadlines + [end])
            due = sorted(q for q in self.queue if q[0] <= next_t)
            self.clock.t = max(self.clock.t, next_t)
            if due:
                self.queue = [q for q in self.queue if q[0] > next_t]
                for _, _, fn in due:
                    fn()
                    self.check_scoreboards()

    def check_scoreboards(self) -> None:
        """After every event: each socket's segment counts are its retransmit queue's."""
        for tp in self.a.tcp.established() + self.b.tcp.established():
            q = tp.rtx_queue
            assert tp.packets_out == sum(seg.pcount for seg in q)
            assert tp.lost_out == sum(seg.pcount for seg in q if seg.lost)
            assert tp.sacked_out == sum(seg.pcount for seg in q if seg.sacked)
            assert all(seg.pcount == max(1, -(-seg.len // tp.mss_cache)) for seg in q)
            assert all(a.end_seq == b.seq for a, b in zip(q, list(q)[1:]))

    def segments(self, src: str | None = None) -> list[TcpHdr]:
        return [TcpHdr.from_bytes(raw[20:]) for _, name, raw in self.wire if src in (None, name)]


def connect(net: Net, *, sport: int = 40000, dport: int = 80, backlog: int = 16, **opts):
    """A listening on B's port, A connecting: returns (client sk, server child sk)."""
    rcvbuf = opts.pop("rcvbuf", 131072)  # 0: autotuned
    net.b.tcp.listen(100, 0, dport, backlog, rcvbuf=rcvbuf)
    assert net.a.tcp.connect(1, 0, sport, B, dport, rcvbuf=rcvbuf, **opts) == (0, A)
    net.run(1.0, until=lambda: net.b.accepted and 1 in net.a.established)
    child = net.b.accepted[-1]
    net.b.tcp.accepted(100, child.sk)
    return 1, child.sk


def send_all(net: Net, c: int, srv: int, data: bytes) -> None:
    """A sends data; the wire runs until B has all of it, which must be byte-exact."""
    net.a.send(c, data)
    net.run(10.0, until=lambda: len(net.b.data.get(srv, b"")) == len(data))
    assert bytes(net.b.data[srv]) == data


def pattern(n: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


# -- the handshake -----------------------------------------------------------------

def test_three_way_handshake_establishes_both_ends_and_counts_opens():
    net = Net()
    c, srv = connect(net)
    assert net.a.state(c) == TcpState.ESTABLISHED and net.b.state(srv) == TcpState.ESTABLISHED
    flags = [(h.flags & (TCPHDR_SYN | TCPHDR_ACK)) for h in net.segments()[:3]]
    assert flags == [TCPHDR_SYN, TCPHDR_SYN | TCPHDR_ACK, TCPHDR_ACK]
    assert net.a.count("Tcp", "ActiveOpens") == 1 and net.b.count("Tcp", "PassiveOpens") == 1
    assert net.a.count("Tcp", "CurrEstab") == 1 and net.b.count("Tcp", "CurrEstab") == 1
    assert net.a.established[c] == MSS and net.b.accepted[0].mss == MSS
    child = net.b.accepted[0]
    assert (child.saddr, child.sport, child.daddr, child.dport) == (B, 80, A, 40000)


def test_syn_options_are_linuxs_and_scapy_reads_them():
    net = Net()
    connect(net, rcvbuf=0)  # no SO_RCVBUF: the window scale is for tcp_rmem[2]
    syn = IP(net.wire[0][2])
    assert syn[TCP].flags == "S"
    assert [name for name, _ in syn[TCP].options] == ["MSS", "SAckOK", "Timestamp", "NOP", "WScale"]
    opts = dict(syn[TCP].options)
    assert opts["MSS"] == 1460 and opts["WScale"] == 10 and opts["Timestamp"][1] == 0  # tcp_rmem[2] 32 MB
    synack = IP(net.wire[1][2])
    assert synack[TCP].flags == "SA" and dict(synack[TCP].options)["Timestamp"][1] == opts["Timestamp"][0]
    for _, _, raw in net.wire:  # scapy recomputes each checksum: ours must match
        pkt = IP(raw)
        want = pkt[TCP].chksum
        del pkt[TCP].chksum
        assert IP(bytes(pkt))[TCP].chksum == want


@pytest.mark.parametrize("sack, ts, ws, layout", [
    (1, 1, 1, ["MSS", "SAckOK", "Timestamp", "NOP", "WScale"]),
    (0, 1, 1, ["MSS", "NOP", "NOP", "Timestamp", "NOP", "WScale"]),
    (1, 0, 1, ["MSS", "NOP", "NOP", "SAckOK", "NOP", "WScale"]),
    (0, 0, 1, ["MSS", "NOP", "WScale"]),
    (1, 1, 0, ["MSS", "SAckOK", "Timestamp"]),
    (0, 0, 0, ["MSS"]),
])
def test_a_syn_offers_what_the_sysctls_allow_laid_out_as_tcp_options_write(sack, ts, ws, layout):
    net = Net()
    for name, value in (("tcp_sack", sack), ("tcp_timestamps", ts), ("tcp_window_scaling", ws)):
        net.a.tcp.sysctls.set(f"net.ipv4.{name}", str(value))
    connect(net)
    assert [name for name, _ in IP(net.wire[0][2])[TCP].options] == layout
    synack = IP(net.wire[1][2])[TCP]  # B offers back only what both have
    assert ("SAckOK" in dict(synack.options)) == bool(sack) and ("WScale" in dict(synack.options)) == bool(ws)


def test_options_off_when_the_peer_does_not_offer_them():
    """A SYN with only an MSS: no window scaling, SACK or timestamps, and MSS 536 rules."""
    net = Net()
    net.b.tcp.listen(100, 0, 80, 8, rcvbuf=131072)
    syn = TcpHdr(40000, 80, 1000, 0, 0, TCPHDR_SYN, 8192, options=bytes([2, 4, 0x02, 0x18])).to_bytes(b"", A, B)
    Net._arrive(net.b, IpHdr(A, B, 6).to_bytes(len(syn)) + syn)
    synack = TcpHdr.from_bytes(bytes(net.wire[-1][2][20:]))
    assert synack.flags == TCPHDR_SYN | TCPHDR_ACK and synack.ack_seq == 1001
    assert synack.parsed_options() == TcpHdr.from_bytes(
        TcpHdr(1, 1, options=bytes([2, 4, 0x05, 0xB4])).to_bytes(b"", A, B)).parsed_options()


def test_connect_to_a_closed_port_is_refused_by_a_reset():
    net = Net()
    assert net.a.tcp.connect(1, 0, 40000, B, 81, rcvbuf=131072)[0] == 0
    net.run(1.0, until=lambda: 1 in net.a.errors)
    assert net.a.errors[1] == errno.ECONNREFUSED and 1 in net.a.closed
    rst = net.segments("B")[0]
    assert rst.flags == TCPHDR_RST | TCPHDR_ACK and rst.seq == 0
    assert net.b.count("Tcp", "OutRsts") == 1 and net.b.count("Drops", "SKB_DROP_REASON_NO_SOCKET") == 1
    assert net.a.count("Tcp", "AttemptFails") == 1 and net.a.state(1) is None


def test_simultaneous_open():
    net = Net()
    assert net.a.tcp.connect(1, 0, 5000, B, 6000, rcvbuf=131072)[0] == 0
    assert net.b.tcp.connect(2, 0, 6000, A, 5000, rcvbuf=131072)[0] == 0
    net.run(1.0, until=lambda: 1 in net.a.established and 2 in net.b.established)
    assert net.a.state(1) == TcpState.ESTABLISHED and net.b.state(2) == TcpState.ESTABLISHED
    assert net.a.send(1, b"ping") == 0
    net.run(0.5)
    assert bytes(net.b.data[2]) == b"ping"


# -- data --------------------------------------------------------------------------

def test_bulk_data_both_ways_byte_exact_and_originals_freed_on_ack():
    net = Net(sampled=True)
    c, srv = connect(net)
    up, down = pattern(300_000, 1), pattern(120_000, 2)
    net.a.send(c, up)
    net.b.send(srv, down)
    net.run(20.0, until=lambda: len(net.b.data.get(srv, b"")) == len(up) and len(net.a.data.get(c, b"")) == len(down))
    net.run(1.0)  # the last ACKs
    assert hashlib.sha256(net.b.data[srv]).digest() == hashlib.sha256(up).digest()
    assert bytes(net.a.data[c]) == down
    assert net.a.acked[c] == len(up) and net.b.acked[srv] == len(down)
    assert net.a.count("Tcp", "RetransSegs") == 0
    tp = net.a.tcp.sock(c)
    assert not tp.rtx_queue and not tp.write_queue and tp.snd_una == tp.snd_nxt
    assert tp.cwnd > 10  # slow start grew it


def test_cwnd_does_not_grow_while_the_application_is_what_limits_the_sender():
    net = Net()
    c, srv = connect(net, nodelay=True)
    for i in range(200):  # one small write at a time, each acknowledged before the next
        net.a.send(c, b"x")
        net.run(0.1)
    assert len(net.b.data[srv]) == 200
    assert net.a.tcp.sock(c).cwnd <= 2 * 10  # slow start's limit: twice what was ever in flight


def test_every_transmission_is_a_clone_of_the_queued_original():
    net = Net(sampled=True)
    c, srv = connect(net)
    sent = []
    net.a.tcp._ip_queue_xmit = lambda skbs, orig=net.a.tcp._ip_queue_xmit: (sent.extend(skbs), orig(skbs))
    net.a.send(c, b"x" * 100)
    original = net.a.tcp.sock(c).rtx_queue[0].skb
    net.run(1.0)
    data = [k for k in sent if k.len > 52]
    assert data and data[0].clone_of == original.id
    assert [(e[0], e[3], e[5]) for e in data[0].events if e[0] == s.CLONE] == [(s.CLONE, "__tcp_transmit_skb", 232)]
    frees = [e for e in original.events if e[0] == s.FREE]
    assert [(e[3], e[5]) for e in frees] == [("tcp_clean_rtx_queue", original.end)]


def test_bulk_data_leaves_tcp_as_gso_skbs_that_reach_the_wire_as_segments():
    """An skb of many segments goes down the stack once (gso_size the MSS, the checksum
    left partial); GSO's segments are what the wire sees, and scapy accepts each one."""
    net = Net(sampled=True)
    c, srv = connect(net)
    sent = []  # (gso_size, gso_segs, payload length, skb) of what TCP hands to IPv4
    net.a.tcp._ip_queue_xmit = lambda skbs, orig=net.a.tcp._ip_queue_xmit: (
        sent.extend((k.gso_size, k.gso_segs, k.len - 32, k) for k in skbs), orig(skbs))
    data = pattern(200 * MSS + 7, 15)
    send_all(net, c, srv, data)
    gso = [(size, segs, n) for size, segs, n, _ in sent if size]
    assert gso and all(size == MSS and segs == -(-n // MSS) > 1 for size, segs, n in gso)
    assert 10 < max(segs for _, segs, _ in gso) <= tcp_xmit_size_goal(MSS) // MSS  # as cwnd allows
    wire = [raw for _, name, raw in net.wire if name == "A" and len(raw) - 20 > TcpHdr.from_bytes(raw[20:]).header_len]
    assert all(len(raw) <= MTU and IP(raw)[TCP].chksum == IP(bytes(IP(raw)))[TCP].chksum for raw in wire)
    # each byte once (a short segment where the peer's window ended, as Linux sends one when it does not defer)
    assert sum(len(raw) - 20 - TcpHdr.from_bytes(raw[20:]).header_len for raw in wire) == len(data)
    assert net.a.count("Tcp", "OutSegs") == len([raw for _, name, raw in net.wire if name == "A"])
    assert all([e[0] for e in k.events].count(s.CLONE) == 1 for size, _, _, k in sent if size)


def test_lossy_reordering_duplicating_link_is_still_byte_exact():
    net = Net(seed=7)
    c, srv = connect(net)
    net.loss, net.reorder, net.dup = 0.05, 0.05, 0.05
    data = pattern(400_000, 3)
    net.a.send(c, data)
    net.run(120.0, until=lambda: len(net.b.data.get(srv, b"")) >= len(data))
    assert bytes(net.b.data[srv]) == data
    assert net.a.count("Tcp", "RetransSegs") > 0
    assert net.b.count("TcpExt", "TCPOFOQueue") > 0


def lose_data_segments(net: Net, *ordinals: int) -> None:
    """Drop A's ordinals-th data segments (from 1) on the wire, the first time they go."""
    sent = []

    def lose(host, th, payload):
        if host is net.a and payload:
            sent.append(th.seq)
            return len(sent) in ordinals
        return False

    net.drop_if = lose


def test_one_lost_segment_is_fast_retransmitted_after_three_duplicate_acks():
    net = Net()
    c, srv = connect(net)
    lose_data_segments(net, 3)
    data = pattern(40 * MSS, 4)
    send_all(net, c, srv, data)
    assert net.a.count("TcpExt", "TCPFastRetrans") == 1
    assert net.a.count("TcpExt", "TCPTimeouts") == 0 and net.a.count("Tcp", "RetransSegs") == 1
    tp = net.a.tcp.sock(c)
    assert not tp.in_recovery and tp.ssthresh == max(int(tp.ssthresh), 2)


def test_sack_repairs_several_losses_in_one_window_without_a_timeout():
    """Three segments lost from one window: the duplicate ACKs carry SACK blocks (scapy
    reads them), the scoreboard marks each hole lost, and each is resent once."""
    net = Net()
    c, srv = connect(net)
    lose_data_segments(net, 3, 6, 9)
    data = pattern(40 * MSS, 10)
    send_all(net, c, srv, data)
    assert net.a.count("TcpExt", "TCPSackRecovery") == 1 and net.a.count("TcpExt", "TCPTimeouts") == 0
    assert net.a.count("Tcp", "RetransSegs") == 3
    sacks = [dict(IP(raw)[TCP].options).get("SAck") for _, name, raw in net.wire if name == "B"]
    blocks = [s_ for s_ in sacks if s_]
    assert blocks and all(len(b_) % 2 == 0 for b_ in blocks)
    assert net.a.tcp.sock(c).sacked_out == 0 and not net.a.tcp.sock(c).in_recovery


def test_a_lost_retransmission_is_resent_without_waiting_for_the_rto():
    """RACK: once segments sent after the retransmission are SACKed, it is lost too."""
    net = Net()
    c, srv = connect(net)
    sent = []  # the seq of every data segment A sends, retransmissions too

    def lose_third_twice(host, th, payload):
        if host is not net.a or not payload:
            return False
        sent.append(th.seq)
        firsts = list(dict.fromkeys(sent))
        return len(firsts) >= 3 and th.seq == firsts[2] and sent.count(th.seq) <= 2

    net.drop_if = lose_third_twice
    data = pattern(60 * MSS, 11)
    send_all(net, c, srv, data)
    assert net.a.count("TcpExt", "TCPTimeouts") == 0 and net.a.count("Tcp", "RetransSegs") == 2
    assert net.a.count("TcpExt", "TCPSackRecovery") == 1


def test_a_lost_last_segment_is_repaired_by_a_tail_loss_probe_not_the_rto():
    net = Net()
    c, srv = connect(net)
    lose_data_segments(net, 8)
    data = pattern(8 * MSS, 14)
    send_all(net, c, srv, data)
    assert net.a.count("TcpExt", "TCPLossProbes") == 1 and net.a.count("TcpExt", "TCPTimeouts") == 0
    assert net.a.count("Tcp", "RetransSegs") == 1


def test_rto_backs_off_exponentially_and_gives_up_with_etimedout():
    net = Net()
    c, srv = connect(net)
    net.drop_if = lambda host, th, payload: host is net.a and bool(payload)
    net.a.send(c, b"lost")
    net.run(2000.0, until=lambda: c in net.a.errors)
    times = [t for t, name, raw in net.wire if name == "A" and len(raw) > 20 + TcpHdr.from_bytes(raw[20:]).header_len]
    gaps = [round(b - a, 3) for a, b in zip(times, times[1:])]
    # the first transmission, a tail loss probe when the RTO was due (no backoff), then
    # tcp_retries2 (15) retransmissions by the RTO, each twice as late as the one before
    assert len(times) == 17 and gaps[0] == pytest.approx(gaps[1], rel=0.01)
    for g1, g2 in zip(gaps[1:], gaps[2:]):
        assert g2 == pytest.approx(min(2 * g1, 120.0), rel=0.01)
    assert gaps[0] >= TCP_RTO_MIN and net.a.count("TcpExt", "TCPLossProbes") == 1
    assert net.a.errors[c] == errno.ETIMEDOUT and net.a.count("TcpExt", "TCPAbortOnTimeout") == 1
    assert net.a.count("TcpExt", "TCPTimeouts") == 15 and net.a.count("Tcp", "RetransSegs") == 16


def test_karn_no_rtt_sample_from_a_retransmitted_segments_send_time():
    """The ACK could be for either transmission: its time says nothing (Karn). The echoed
    timestamp does (RFC 7323), and measures from the retransmission: srtt stays the path's."""
    net = Net()
    c, srv = connect(net)
    tp = net.a.tcp.sock(c)
    srtt = tp.srtt
    first = []
    net.drop_if = lambda host, th, payload: host is net.a and bool(payload) and not first.append(1) and len(first) == 1
    net.a.send(c, b"once")
    net.run(5.0, until=lambda: net.b.data.get(srv))
    assert net.a.count("Tcp", "RetransSegs") == 1 and bytes(net.b.data[srv]) == b"once"
    assert tp.srtt == pytest.approx(srtt, abs=0.002)  # not the RTO the first transmission waited


# -- windows -------------------------------------------------------------------------

def test_a_slow_reader_closes_the_window_the_sender_probes_and_nothing_is_lost():
    net = Net()
    c, srv = connect(net)
    net.b.reading = False
    data = pattern(200_000, 5)
    net.a.send(c, data)
    net.run(10.0)
    got = len(net.b.data.get(srv, b""))
    assert 0 < got < len(data)
    assert net.b.tcp.sock(srv).rcv_wnd == 0 or got >= 131072 // 2 - MSS
    net.run(30.0)
    assert net.a.count("TcpExt", "TCPWinProbe") > 0
    assert len(net.b.data.get(srv, b"")) == got  # nothing more while nobody reads
    net.b.reading = True
    net.b.read_all()
    net.run(30.0, until=lambda: len(net.b.data.get(srv, b"")) == len(data))
    assert bytes(net.b.data[srv]) == data


def test_the_receive_buffer_grows_while_the_reader_keeps_up():
    """tcp_rcv_space_adjust(): an unlocked buffer follows what the reader takes per RTT."""
    net = Net()
    c, srv = connect(net, rcvbuf=0)
    tp = net.b.tcp.sock(srv)
    assert (tp.rcvbuf, tp.rcvbuf_locked) == (131072, False)
    net.a.send(c, pattern(3_000_000, 7))
    net.run(60.0, until=lambda: len(net.b.data.get(srv, b"")) == 3_000_000)
    assert tp.rcvbuf > 131072 and tp.rcv_wnd > 131072 // 2
    assert tp.rcv_rtt >= 2 * net.delay  # a window's worth takes at least a round trip to come


def test_a_locked_receive_buffer_stays_and_the_send_buffer_follows_cwnd():
    net = Net()
    c, srv = connect(net)
    assert net.b.tcp.sock(srv).rcvbuf_locked
    first = net.a.sndbuf[c]
    assert first == 2 * 10 * 4096  # two initial windows of segments, truesize rounded up
    net.a.send(c, pattern(1_000_000, 8))
    net.run(30.0, until=lambda: len(net.b.data.get(srv, b"")) == 1_000_000)
    assert net.a.sndbuf[c] > first and net.b.tcp.sock(srv).rcvbuf == 131072


def test_window_scale_applies_to_the_advertised_window():
    net = Net()
    c, srv = connect(net, rcvbuf=0)
    net.a.send(c, b"x")
    net.run(1.0)
    ack = [h for h in net.segments("B") if h.flags == TCPHDR_ACK][-1]
    assert ack.window << 10 == net.b.tcp.sock(srv).rcv_wnd  # wscale 10: tcp_rmem[2] is 32 MB
    assert 60000 < ack.window << 10 <= 131072 // 2


# -- Nagle and delayed ACKs ------------------------------------------------------------

@pytest.mark.parametrize("nodelay", [False, True])
def test_nagle_holds_a_small_segment_while_one_is_unacknowledged(nodelay):
    net = Net(delay=0.05)
    c, srv = connect(net, nodelay=nodelay)

    def data_segments():
        return [raw for _, name, raw in net.wire
                if name == "A" and len(raw) > 20 + TcpHdr.from_bytes(raw[20:]).header_len]

    net.a.send(c, b"a")
    net.a.send(c, b"b")
    assert len(data_segments()) == (2 if nodelay else 1)  # Nagle: "b" waits for the ACK of "a"
    net.run(1.0)
    assert bytes(net.b.data[srv]) == b"ab" and len(data_segments()) == 2


def test_a_write_fills_the_short_unsent_tail_of_the_one_before():
    """No short segment in the middle of a bulk transfer for Nagle to stall on: a write
    ending in 100 bytes that cwnd holds back is topped up by the next write."""
    net = Net()
    c, srv = connect(net)
    first, second = pattern(20 * MSS + 100, 12), pattern(5 * MSS, 13)
    net.a.send(c, first)   # IW10: half of it waits in the write queue, its last skb 100 bytes
    net.a.send(c, second)
    net.run(10.0, until=lambda: len(net.b.data.get(srv, b"")) == len(first) + len(second))
    assert bytes(net.b.data[srv]) == first + second
    data = [(len(raw) - 20 - th.header_len, th.psh) for _, name, raw in net.wire
            if name == "A" and len(raw) - 20 > (th := TcpHdr.from_bytes(raw[20:])).header_len]
    assert [n for n, _ in data] == [MSS] * 25 + [100]
    # The first write's PSH went with the skb the second topped up; GSO puts it on the
    # skb's last segment, as Linux's does: the end of the second write. (Every GSO packet's
    # last segment has PSH besides: __tcp_transmit_skb sets it for GRO's sake.)
    assert data[-1][1]


def test_a_batch_of_segments_is_acknowledged_once():
    """The segments of one poll get one ACK at the end, as GRO's merged segment does."""
    net = Net()
    c, srv = connect(net, nodelay=True)
    held = []
    net.drop_if = lambda host, th, payload: host is net.a and bool(payload) and not held.append((th, payload))
    net.a.send(c, pattern(8 * MSS, 6))
    assert len(held) == 8
    acks_before = len(net.segments("B"))
    segs = [th.to_bytes(payload, A, B) + payload for th, payload in held]
    net.b.tcp.tcp_v4_rcv([Net.ip_skb(IpHdr(A, B, 6).to_bytes(len(seg)) + seg) for seg in segs])
    acks = net.segments("B")[acks_before:]
    assert len(acks) == 1 and acks[0].ack_seq == net.b.tcp.sock(srv).rcv_nxt
    assert len(net.b.data[srv]) == 8 * MSS


def test_each_out_of_order_segment_of_a_batch_gets_its_duplicate_ack():
    """GRO never merges across a gap: every segment after a hole is acknowledged at once,
    so that the sender can count three duplicate ACKs."""
    net = Net()
    c, srv = connect(net, nodelay=True)
    held = []
    net.drop_if = lambda host, th, payload: host is net.a and bool(payload) and not held.append((th, payload))
    net.a.send(c, pattern(8 * MSS, 9))
    acks_before = len(net.segments("B"))
    segs = [th.to_bytes(payload, A, B) + payload for th, payload in held[:1] + held[2:]]  # the second is lost
    net.b.tcp.tcp_v4_rcv([Net.ip_skb(IpHdr(A, B, 6).to_bytes(len(seg)) + seg) for seg in segs])
    acks = net.segments("B")[acks_before:]
    assert [h.ack_seq for h in acks].count(held[1][0].seq) == 6


def test_delayed_ack_after_the_quickack_segments():
    net = Net()
    c, srv = connect(net)
    net.b.reading = False  # a read that empties the queue of a short segment would send its ACK
    for i in range(20):
        net.a.send(c, b"%d" % i)
        net.run(0.5)
    assert net.b.count("TcpExt", "DelayedACKs") > 0


# -- closing -------------------------------------------------------------------------

def test_orderly_close_walks_the_states_and_time_wait_ends():
    net = Net(timewait_len=2.0)
    c, srv = connect(net)
    net.a.tcp.close(c)
    assert net.a.state(c) == TcpState.FIN_WAIT1
    net.run(0.5)
    assert net.a.state(c) == TcpState.FIN_WAIT2 and net.b.state(srv) == TcpState.CLOSE_WAIT
    assert srv in net.b.eof
    net.b.tcp.close(srv)
    assert net.b.state(srv) == TcpState.LAST_ACK
    net.run(0.5)
    assert net.b.state(srv) is None and srv in net.b.closed
    assert net.a.state(c) == TcpState.TIME_WAIT and c in net.a.closed
    net.run(3.0)
    assert net.a.state(c) is None
    assert net.a.count("Tcp", "CurrEstab") == 0 and net.b.count("Tcp", "CurrEstab") == 0
    assert net.a.count("Tcp", "EstabResets") == 0


def test_half_close_lets_the_other_side_keep_sending():
    net = Net()
    c, srv = connect(net)
    net.a.tcp.shutdown(c, 1)  # SHUT_WR
    net.run(0.5)
    assert srv in net.b.eof and net.b.state(srv) == TcpState.CLOSE_WAIT
    net.b.send(srv, b"still talking")
    net.run(0.5)
    assert bytes(net.a.data[c]) == b"still talking"


def test_simultaneous_close_goes_through_closing():
    net = Net(timewait_len=1.0)
    c, srv = connect(net)
    net.a.tcp.close(c)
    net.b.tcp.close(srv)
    assert net.a.state(c) == net.b.state(srv) == TcpState.FIN_WAIT1
    net.run(0.5)
    assert net.a.state(c) == TcpState.TIME_WAIT and net.b.state(srv) == TcpState.TIME_WAIT
    net.run(2.0)
    assert net.a.state(c) is None and net.b.state(srv) is None


def test_close_with_unread_data_resets_the_connection():
    net = Net()
    c, srv = connect(net)
    net.b.reading = False
    net.a.send(c, b"never read")
    net.run(0.5)
    net.b.tcp.close(srv)
    net.run(0.5)
    assert net.b.count("TcpExt", "TCPAbortOnClose") == 1
    assert net.a.errors[c] == errno.ECONNRESET and net.a.count("Tcp", "EstabResets") == 1


# -- RFC 5961 ------------------------------------------------------------------------

def _inject(net: Net, dst: Host, th: TcpHdr, payload: bytes = b"") -> None:
    saddr, daddr = (A, B) if dst is net.b else (B, A)
    seg = th.to_bytes(payload, saddr, daddr) + payload
    Net._arrive(dst, IpHdr(saddr, daddr, 6).to_bytes(len(seg)) + seg)


def test_an_in_window_reset_gets_a_challenge_ack_and_an_exact_one_resets():
    net = Net()
    c, srv = connect(net)
    tp = net.b.tcp.sock(srv)
    _inject(net, net.b, TcpHdr(40000, 80, (tp.rcv_nxt + 100) % 2**32, 0, 0, TCPHDR_RST))
    assert net.b.count("TcpExt", "TCPChallengeACK") == 1 and net.b.state(srv) == TcpState.ESTABLISHED
    _inject(net, net.b, TcpHdr(40000, 80, (tp.rcv_nxt + 10**6) % 2**32, 0, 0, TCPHDR_RST))
    assert net.b.count("TcpExt", "TCPChallengeACK") == 1  # out of the window: dropped silently
    _inject(net, net.b, TcpHdr(40000, 80, tp.rcv_nxt, 0, 0, TCPHDR_RST))
    assert net.b.errors[srv] == errno.ECONNRESET and net.b.state(srv) is None


def test_a_syn_on_an_established_connection_gets_a_challenge_ack():
    net = Net()
    c, srv = connect(net)
    tp = net.b.tcp.sock(srv)
    _inject(net, net.b, TcpHdr(40000, 80, tp.rcv_nxt, 0, 0, TCPHDR_SYN, 1000))
    assert net.b.count("TcpExt", "TCPSYNChallenge") == 1 and net.b.state(srv) == TcpState.ESTABLISHED
    assert net.segments("B")[-1].flags == TCPHDR_ACK


def test_an_ack_for_data_never_sent_is_answered_and_dropped():
    net = Net()
    c, srv = connect(net)
    tp = net.b.tcp.sock(srv)
    _inject(net, net.b, TcpHdr(40000, 80, tp.rcv_nxt, (tp.snd_nxt + 5000) % 2**32, 0, TCPHDR_ACK, 1000))
    assert net.b.count("Drops", "SKB_DROP_REASON_TCP_ACK_UNSENT_DATA") == 1
    assert net.b.state(srv) == TcpState.ESTABLISHED


# -- listen queues ---------------------------------------------------------------------

def test_accept_queue_overflow_is_counted_as_linux_counts_it():
    """backlog 1: the SYN queue holds one request (no syncookies) and the accept queue
    two connections (sk_acceptq_is_full is "more than backlog"); the rest are dropped
    and counted, and get in on their SYN retries once accept() makes room."""
    net = Net()
    net.b.tcp.listen(100, 0, 80, 1, rcvbuf=131072)
    for i in range(4):
        net.a.tcp.connect(10 + i, 0, 41000 + i, B, 80, rcvbuf=131072)
    net.run(10.0)
    assert len(net.b.accepted) == 2
    assert net.b.count("TcpExt", "TCPReqQFullDrop") > 0 and net.b.count("TcpExt", "ListenOverflows") > 0
    assert net.b.count("TcpExt", "ListenDrops") == (net.b.count("TcpExt", "ListenOverflows")
                                                    + net.b.count("TcpExt", "TCPReqQFullDrop"))
    for child in net.b.accepted:
        net.b.tcp.accepted(100, child.sk)
    net.run(60.0)
    assert len(net.b.accepted) == 4
    assert all(net.a.state(sk) == TcpState.ESTABLISHED for sk in range(10, 14))


def test_closing_a_listener_resets_connections_not_yet_accepted():
    net = Net()
    net.b.tcp.listen(100, 0, 80, 8, rcvbuf=131072)
    net.a.tcp.connect(1, 0, 40000, B, 80, rcvbuf=131072)
    net.run(0.5)
    net.b.tcp.close(100)
    net.run(0.5)
    assert net.a.errors[1] == errno.ECONNRESET


# -- congestion control ------------------------------------------------------------------

def test_reno_halves_and_cubic_keeps_seven_tenths():
    tp = TcpSock(1, cwnd=100)
    assert Reno().ssthresh(tp) == 50
    assert Cubic().ssthresh(tp) == int(100 * BETA) == 70


def test_cubic_grows_back_towards_the_last_maximum_then_past_it():
    """W(t) = C (t - K)^3 + W_max: concave up to the last maximum, flat around it at
    t = K, convex beyond (a window where Reno's estimate stays below the cubic)."""
    cubic, tp = Cubic(), TcpSock(1, cwnd=1000)
    tp.ssthresh = cubic.ssthresh(tp)
    tp.cwnd = tp.ssthresh
    cubic.pkts_acked(tp, 0.1)
    t, sizes = 0.0, []
    for _ in range(250):  # a window of ACKs every 100 ms RTT
        t += 0.1
        cubic.cong_avoid(tp, tp.cwnd, t)
        sizes.append(tp.cwnd)
    k = ((1000 - 700) / 0.4) ** (1 / 3)  # 9.1 s back to W_max
    assert sizes == sorted(sizes)
    assert sizes[int(k / 0.1) // 2] > 700 + (1000 - 700) / 2  # concave: more than half the way by K/2
    assert 950 <= sizes[int(k / 0.1)] <= 1010                # the plateau at W_max
    assert sizes[-1] > 2000                                   # the convex probe beyond


def test_reno_congestion_avoidance_adds_one_segment_per_window():
    tp = TcpSock(1, cwnd=20)
    tp.ssthresh = 10
    reno = Reno()
    reno.cong_avoid(tp, 20, 0.0)
    assert tp.cwnd == 21


def test_unknown_segments_without_a_socket_are_counted_not_crashing():
    net = Net()
    _inject(net, net.b, TcpHdr(40000, 9, 5, 0, 0, TCPHDR_ACK, 100), b"junk")
    assert net.b.count("Tcp", "OutRsts") == 1
    rst = net.segments("B")[-1]
    assert rst.flags == TCPHDR_RST and rst.seq == 0  # seq = the ACK field of what it answers
    bad = bytearray(TcpHdr(40000, 80, 5, 0, 0, TCPHDR_SYN).to_bytes(b"", A, B))
    bad[16] ^= 0xFF
    Net._arrive(net.b, IpHdr(A, B, 6).to_bytes(len(bad)) + bytes(bad))
    assert net.b.count("Tcp", "InCsumErrors") == 1 and net.b.count("Drops", pb.DropReason.Name(
        pb.SKB_DROP_REASON_TCP_CSUM)) == 1


def test_tcp_info_says_what_the_connection_agreed_and_moved_as_tcp_get_info_fills_it():
    from pktpath.services.l4.tcp.info import tcp_get_info
    from pktpath.wire.tcp_info import unpack

    net = Net()
    c, srv = connect(net, rcvbuf=0)  # no SO_RCVBUF: the window scale is for tcp_rmem[2]
    send_all(net, c, srv, b"x" * 3000)
    net.run(1.0)
    client, server = (unpack(tcp_get_info(h.tcp.sock(sk), h.tcp.delack)) for h, sk in ((net.a, c), (net.b, srv)))
    assert client["tcpi_state"] == server["tcpi_state"] == TcpState.ESTABLISHED
    assert client["tcpi_options"] == 1 | 2 | 4  # timestamps, SACK, window scaling: both offered them
    assert (client["tcpi_snd_wscale"], client["tcpi_rcv_wscale"]) == (10, 10)
    assert client["tcpi_bytes_acked"] == 3000 and server["tcpi_bytes_received"] == 3000
    assert client["tcpi_snd_mss"] == MSS and client["tcpi_snd_cwnd"] >= 10 and client["tcpi_rtt"] > 0
    assert client["tcpi_rto"] >= 200_000 and client["tcpi_snd_ssthresh"] == 0x7FFFFFFF
    listener = unpack(tcp_get_info(net.b.tcp.sock(100), net.b.tcp.delack))
    assert listener["tcpi_state"] == TcpState.LISTEN and listener["tcpi_sacked"] == 16  # the backlog


def test_tsval_has_a_keyed_offset_per_address_pair_unless_tcp_timestamps_is_2():
    """secure_tcp_ts_off(): the TSval clock plus an offset from the addresses and a secret,
    so a peer cannot read the host's uptime; RTTs from echoed TSvals still come out right."""
    net = Net()
    c, srv = connect(net)
    syn = IP(net.wire[0][2])
    tsval = dict(syn[TCP].options)["Timestamp"][0]
    clock_ms = int(net.clock() * 1000) & 0xFFFFFFFF
    assert net.a.tcp.sock(c).ts_off == net.a.tcp.ts_off(A, B) != 0
    assert abs(((tsval - net.a.tcp.sock(c).ts_off) & 0xFFFFFFFF) - clock_ms) <= 1000
    assert net.b.tcp.sock(srv).ts_off == net.b.tcp.ts_off(B, A) != net.a.tcp.sock(c).ts_off  # each host its own
    send_all(net, c, srv, b"y" * 20000)
    assert 0 < net.a.tcp.sock(c).srtt < 1.0  # measured through the offset, not across it
    other = Net()
    other.a.tcp.sysctls.set("net.ipv4.tcp_timestamps", "2")
    connect(other)
    assert other.a.tcp.ts_off(A, B) == 0


# -- what the drill scripts (tests/drill/) showed Linux doing ----------------------------------

def _sack(left: int, right: int) -> bytes:
    """NOP, NOP and one SACK block: an ACK's options without timestamps."""
    return bytes([1, 1, 5, 10]) + left.to_bytes(4, "big") + right.to_bytes(4, "big")


def _no_timestamps() -> dict:
    from pktpath.sysctl import Sysctls

    sysctls = Sysctls("l4")
    sysctls.set("net.ipv4.tcp_timestamps", "0")
    return {"sysctls": sysctls}


def test_sack_blocks_are_read_from_an_ack_without_timestamps():
    """tcp-sack-fast-retransmit.pkt: NOP, NOP and one block are as long as the timestamps
    option, and the scoreboard must still see them."""
    net = Net(**_no_timestamps())
    c, srv = connect(net)
    tp = net.a.tcp.sock(c)
    net.drop_if = lambda host, th, payload: host is net.a and bool(payload)
    net.a.send(c, bytes(10 * tp.mss_cache), mss=tp.mss_cache)
    una, mss, window = tp.snd_una, tp.mss_cache, tp.snd_wnd >> tp.snd_wscale
    for k in (2, 3, 4):  # three duplicate ACKs, SACKing segments 2, 2-3, 2-4
        _inject(net, net.a, TcpHdr(80, 40000, tp.rcv_nxt, una, 0, TCPHDR_ACK, window, 0, 0,
                                   _sack((una + mss) % 2**32, (una + k * mss) % 2**32)))
    assert tp.sacked_out == 3 and tp.in_recovery
    firsts = [th for _, name, raw in net.wire
              if name == "A" and len(raw) - 20 > (th := TcpHdr.from_bytes(raw[20:])).header_len and th.seq == una]
    assert len(firsts) == 2  # the first transmission and the fast retransmit, at once


def test_an_ack_older_than_any_window_gets_a_challenge_ack_at_most_every_half_second():
    """ack-too-old-challenge-ack.pkt, ack-unsent-data.pkt, challenge-ack-rate-limit.pkt:
    RFC 5961 5.2's challenge ACK, and its per-socket rate limit (tcp_invalid_ratelimit)."""
    net = Net()
    c, srv = connect(net)
    tp = net.b.tcp.sock(srv)
    old = TcpHdr(40000, 80, tp.rcv_nxt, (tp.snd_una + 3_000_000_000) % 2**32, 0, TCPHDR_ACK, 1000)
    sent = len(net.segments("B"))
    _inject(net, net.b, old)
    assert net.b.count("TcpExt", "TCPChallengeACK") == 1 and len(net.segments("B")) == sent + 1
    assert net.b.count("Drops", "SKB_DROP_REASON_TCP_TOO_OLD_ACK") == 1
    unsent = old._replace(ack_seq=(tp.snd_nxt + 5000) % 2**32)
    _inject(net, net.b, unsent)  # within 500 ms: not answered
    assert net.b.count("TcpExt", "TCPACKSkippedChallenge") == 1 and len(net.segments("B")) == sent + 1
    net.clock.t += 0.5
    _inject(net, net.b, unsent)
    assert net.b.count("TcpExt", "TCPChallengeACK") == 2 and len(net.segments("B")) == sent + 2
    assert net.b.state(srv) == TcpState.ESTABLISHED


def test_out_of_window_segments_get_a_dupack_but_pure_acks_only_every_half_second():
    """out-of-window-dupacks.pkt: tcp_oow_rate_limited spares segments with data."""
    net = Net()
    c, srv = connect(net)
    tp = net.b.tcp.sock(srv)
    far = TcpHdr(40000, 80, (tp.rcv_nxt + 10**8) % 2**32, tp.snd_nxt, 0, TCPHDR_ACK, 1000)
    sent = len(net.segments("B"))
    _inject(net, net.b, far, b"data")
    _inject(net, net.b, far, b"data")
    _inject(net, net.b, far)
    _inject(net, net.b, far)
    assert len(net.segments("B")) == sent + 3 and net.b.count("TcpExt", "TCPACKSkippedSeq") == 1


def test_a_simultaneous_opens_repeated_syn_is_acknowledged():
    """simultaneous-open.pkt: in SYN_RECV the peer's SYN-ACK establishes the connection and,
    its SYN being old by then, is acknowledged at once."""
    net = Net()
    net.a.tcp.connect(1, 0, 5000, B, 6000, rcvbuf=131072)
    net.b.tcp.connect(2, 0, 6000, A, 5000, rcvbuf=131072)
    net.run(1.0, until=lambda: 1 in net.a.established and 2 in net.b.established)
    for name in ("A", "B"):
        assert [th.flags for th in net.segments(name)] == [TCPHDR_SYN, TCPHDR_SYN | TCPHDR_ACK, TCPHDR_ACK]


def test_a_syn_ack_for_something_else_is_reset_and_the_syn_sent_again_soon():
    """syn-sent-bad-ack-resets.pkt, syn-sent-bad-rst-ignored.pkt: the reset answers the
    bad SYN-ACK, and the SYN goes again after TCP_TIMEOUT_MIN, not after the RTO."""
    net = Net()
    net.drop_if = lambda host, th, payload: host is net.a and th.flags == TCPHDR_SYN
    net.a.tcp.connect(1, 0, 40000, B, 81, rcvbuf=131072)
    tp = net.a.tcp.sock(1)
    bad = (tp.iss + 100) % 2**32
    _inject(net, net.a, TcpHdr(81, 40000, 7, bad, 0, TCPHDR_SYN | TCPHDR_ACK, 1000))
    rst = net.segments("A")[-1]
    assert rst.flags == TCPHDR_RST and rst.seq == bad
    net.run(0.01)
    assert [th.flags for th in net.segments("A")] == [TCPHDR_SYN, TCPHDR_RST, TCPHDR_SYN]
    assert net.a.state(1) == TcpState.SYN_SENT


def test_the_ack_of_a_fin_after_data_is_delayed_but_of_a_fin_alone_is_not():
    """fin-with-data.pkt, close-peer-first.pkt: tcp_fin enters ping-pong mode, so the ACK
    waits for the delayed-ACK timer, which is 0 until data has arrived."""
    def fin_acked_after(data: bytes) -> float:
        net = Net(delay=0.001)
        c, srv = connect(net)
        if data:
            net.b.send(srv, data)
            net.run(0.1)
        net.b.tcp.close(srv)
        net.run(0.5)
        fin_at = next(t for t, name, raw in net.wire if name == "B" and TcpHdr.from_bytes(raw[20:]).fin)
        ack_at = next(t for t, name, raw in net.wire if name == "A" and t > fin_at)
        return ack_at - fin_at
    assert fin_acked_after(b"") == pytest.approx(0.001)
    assert fin_acked_after(b"request") == pytest.approx(0.001 + 0.04)


def test_data_for_a_closed_socket_is_answered_by_a_reset_from_its_ack():
    """close-then-data-resets.pkt: RFC 1122 4.2.2.13's reset, as tcp_v4_send_reset sends it
    for the segment (seq its ACK, no ACK flag), not tcp_send_active_reset's."""
    net = Net()
    c, srv = connect(net)
    net.a.tcp.close(c)
    net.run(0.1)
    tp = net.a.tcp.sock(c)
    assert tp.state == TcpState.FIN_WAIT2
    _inject(net, net.a, TcpHdr(80, 40000, tp.rcv_nxt, tp.snd_nxt, 0, TCPHDR_ACK, 1000), b"late data")
    rst = net.segments("A")[-1]
    assert rst.flags == TCPHDR_RST and rst.seq == tp.snd_nxt
    assert net.a.count("TcpExt", "TCPAbortOnData") == 1 and net.a.state(c) is None


def test_slow_start_grows_cwnd_by_all_a_cwnd_limited_window_acknowledges():
    """tlp-probes-the-tail.pkt: the window that filled cwnd lets every one of its ACKs grow
    cwnd (tcp_cwnd_validate's is_cwnd_limited), not only while twice the segments still out
    exceed it."""
    net = Net()
    c, srv = connect(net)
    tp = net.a.tcp.sock(c)
    send_all(net, c, srv, bytes(10 * tp.mss_cache))
    net.run(0.5)
    assert tp.cwnd == 20 and not tp.rtx_queue


def test_every_gso_packet_carries_psh():
    """nagle-full-segments-go.pkt: __tcp_transmit_skb sets PSH on any skb of more than one
    segment, the last of its segments on the wire, though the write goes on after it."""
    net = Net(delay=0.05)
    c, srv = connect(net)
    net.a.send(c, b"x")
    net.a.send(c, bytes(2 * MSS + 500))  # Nagle holds the 500-byte rest while "x" is unacknowledged
    data = [(len(raw) - 20 - th.header_len, th.psh) for _, name, raw in net.wire
            if name == "A" and len(raw) - 20 > (th := TcpHdr.from_bytes(raw[20:])).header_len]
    assert data == [(1, True), (MSS, False), (MSS, True)]


def test_so_rcvbuf_clamps_the_window_scale_to_the_buffer():
    """so-rcvbuf-initial-window.pkt: a window clamped to half of a 20000-byte buffer needs no
    scaling; tcp_rmem[2]'s 32 MB would take 10."""
    for rcvbuf, wscale in ((20000, 0), (0, 10)):
        net = Net()
        connect(net, rcvbuf=rcvbuf)
        assert dict(IP(net.wire[0][2])[TCP].options)["WScale"] == wscale


def test_a_new_syn_on_a_time_wait_connection_reopens_it_with_a_later_isn():
    """time-wait-new-syn-reopens.pkt: TCP_TW_SYN, the new ISN the old snd_nxt + 65537."""
    net = Net(timewait_len=60.0)
    c, srv = connect(net)
    net.b.tcp.close(srv)
    net.run(0.1)
    net.a.tcp.close(c)
    net.run(0.1)
    tw = net.b.tcp.sock(srv)
    assert tw.state == TcpState.TIME_WAIT
    _inject(net, net.b, TcpHdr(40000, 80, (tw.rcv_nxt + 1000) % 2**32, 0, 0, TCPHDR_SYN, 1000))
    synack = net.segments("B")[-1]
    assert synack.flags == TCPHDR_SYN | TCPHDR_ACK and synack.seq == (tw.snd_nxt + 65537) % 2**32
    assert net.b.tcp.sock(srv) is None and len(net.b.tcp.sock(100).syn_queue) == 1


def test_tcp_info_of_a_socket_in_time_wait_says_close():
    """close-simultaneous.pkt: the user's socket is CLOSE once a timewait sock holds the
    4-tuple (tcp_time_wait → tcp_done)."""
    from pktpath.services.l4.tcp.info import tcp_get_info
    from pktpath.wire.tcp_info import unpack

    net = Net(timewait_len=60.0)
    c, srv = connect(net)
    net.a.tcp.shutdown(c, 1)
    net.run(0.1)
    net.b.tcp.close(srv)
    net.run(0.1)
    assert net.a.state(c) == TcpState.TIME_WAIT
    assert unpack(tcp_get_info(net.a.tcp.sock(c), net.a.tcp.delack))["tcpi_state"] == TcpState.CLOSE


def test_a_read_that_empties_the_queue_of_the_end_of_a_write_sends_the_pending_ack():
    """read-acks-the-end-of-a-write.pkt: once the quick ACKs are spent, a full segment with
    PSH, or a short one, is acknowledged when the reader takes it all (tcp_cleanup_rbuf with
    ICSK_ACK_PUSHED); a full segment without PSH waits for the delayed-ACK timer."""
    net = Net()
    c, srv = connect(net)
    net.b.reading = False
    tp = net.b.tcp.sock(srv)
    tp.quickack = 0
    mss = net.a.tcp.sock(c).mss_cache

    def arrives(length: int, flags: int) -> int:
        th = TcpHdr(40000, 80, tp.rcv_nxt, tp.snd_nxt, 0, flags, 1000)
        _inject(net, net.b, th, bytes(length))
        sent = len(net.segments("B"))
        net.b.read_all()
        return len(net.segments("B")) - sent

    assert arrives(mss, TCPHDR_ACK | TCPHDR_PSH) == 1
    assert arrives(100, TCPHDR_ACK) == 1
    assert arrives(mss, TCPHDR_ACK) == 0 and tp.delack_at
