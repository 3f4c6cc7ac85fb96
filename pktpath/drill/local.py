"""A pktpath host in this process on a virtual clock: `pktpath drill --local`, the
deterministic mode.

The same layers the services run (L2, L3, L4 and the socket layer: services/*/layer.py,
and the socket API's calls, services/socket/syscalls.py) wired by the same edges
(pktpath/seams.py): each hand-off is a message of the same type to the same handler,
queued and run in order on one thread, where the services write it to a socket; each
synchronous call is a method call where the services make an RPC. No gRPC is loaded.

Time is virtual: it stands still while the stack works and moves only when the runner
waits (for a script's next event, or for a packet): then it jumps to the next timer that
is due (TCP's RTO, delayed ACK, TLP, TIME_WAIT; a blocked call's timeout), runs it, and
so on. Timers fire at their exact time and a script runs in milliseconds whatever the
machine's load, so the tolerance is zero.

One thread runs the stack at a time, as on one CPU: whoever holds `Sim.cpu`. The runner
holds it, and hands it to a system call's thread until the call returns or sleeps (a
blocking call waiting on its socket's queue); a call woken by what the runner did runs
before the runner goes on.

Below L2 is the wire, not the NIC and softirq services (their rings and interrupts move
frames, not TCP's behaviour): inbound frames enter at netif_receive_skb as a poll's
frames, and what L2 queues for transmission is the captured packet, a GSO packet
segmented first as validate_xmit_skb does. GRO is the live mode's (softirq), not this one's.
"""

import math
import threading
import tomllib
from collections import deque

from pktpath import skbuff as s
from pktpath.drill.live import (
    GATEWAY_IP, GATEWAY_IP6, GATEWAY_MAC, HOST, HOST_MAC, LOCAL_IP, LOCAL_IP6, REMOTE_IP, REMOTE_IP6, PktpathCalls,
    drill_topology,
)
from pktpath.drill.packets import Unsupported
from pktpath.drill.shell import Shell
from pktpath.offload import skb_gso_segment
from pktpath.counters import Mib
from pktpath.hop import batches
from pktpath.pb import skbuff_pb2, socket_pb2
from pktpath.seams import EDGES, Edge, open_tcp_wfree
from pktpath.services.l2.layer import L2
from pktpath.services.l3.layer import L3
from pktpath.services.l4.layer import L4
from pktpath.services.socket.files import Tasks
from pktpath.services.socket.layer import Socket
from pktpath.services.socket.syscalls import Syscalls, Wait
from pktpath.services.socket.wait import POLL_ANY, Waiter
from pktpath.services.softirq.qdisc import Fq
from pktpath.sockerr import SockError
from pktpath.topology import parse
from pktpath.services.l3.addrconf import IFA_F_TENTATIVE
from pktpath.wire.addr import ip6_from_str, ip_from_str
from pktpath.wire.ethernet import ETH_HLEN, ETH_P_IP, ETH_P_IPV6

FILE_MAX = 1 << 16


class Sim:
    """The virtual clock, the queue of hand-offs, and the one CPU."""

    def __init__(self) -> None:
        self.now_ns = 0
        self.cpu = threading.RLock()  # the stack runs only on the thread holding it
        self.cpu.acquire()            # the runner's, from the start
        self._state = threading.Condition()
        self._parked: dict[int, "Park"] = {}   # thread ident → its sleep, while it sleeps
        self._busy: set[int] = set()           # threads running a call
        self.pending: deque = deque()
        self._draining = False
        self.timers: list = []                  # () → next deadline in seconds (0: none), firing what is due

    def clock(self) -> float:
        return self.now_ns / 1e9

    # -- hand-offs ---------------------------------------------------------------------
    def post(self, work) -> None:
        self.pending.append(work)

    def drain(self) -> None:
        """Run every queued hand-off, in order, and what they queue in turn."""
        if self._draining:
            return
        self._draining = True
        try:
            while self.pending:
                self.pending.popleft()()
        finally:
            self._draining = False

    # -- time ----------------------------------------------------------------------------
    def run_due(self) -> int | None:
        """Fire what is due now; the next deadline (ns) after that."""
        deadlines = []
        for run_timers in self.timers:
            d = run_timers()
            if d:
                deadlines.append(_ns_at_or_after(d))
        self.drain()
        with self._state:
            for park in self._parked.values():
                if park.deadline_ns is not None:
                    if park.deadline_ns <= self.now_ns:
                        park.waiter.wake(POLL_ANY)  # its time is up
                    else:
                        deadlines.append(park.deadline_ns)
        self.settle()
        return min(deadlines) if deadlines else None

    def advance_to(self, t_ns: int) -> None:
        """Let time pass until t_ns, firing each timer at its time."""
        while True:
            nxt = self.run_due()
            if nxt is None or nxt > t_ns:
                break
            self.now_ns = max(self.now_ns + 1, nxt)  # a timer due now has run: time moves on
        if t_ns > self.now_ns:
            self.now_ns = t_ns
            self.run_due()

    # -- threads -------------------------------------------------------------------------
    def settle(self) -> None:
        """Let each call woken by what just happened run until it returns or sleeps again."""
        while True:
            with self._state:
                woken = next((t for t, p in self._parked.items() if p.waiter.woken), None)
            if woken is None:
                return
            self._yield_until(lambda: woken not in self._busy or (
                woken in self._parked and not self._parked[woken].waiter.woken))

    def _yield_until(self, done) -> None:
        """Give the CPU up until done() (checked under the state's lock)."""
        self.cpu.release()
        try:
            with self._state:
                self._state.wait_for(done)
        finally:
            self.cpu.acquire()

    def wait_call(self, thread: threading.Thread, timeout: float | None = None) -> None:
        """The runner waits for a call's thread until it sleeps or ends; with a timeout, as
        joining it would, `timeout` seconds pass (virtual ones) while it sleeps."""
        self._until_asleep_or_done(thread)
        if timeout is None:
            return
        end = self.now_ns + int(timeout * 1e9)
        while thread.is_alive() and self.now_ns < end:
            nxt = self.run_due()
            self._until_asleep_or_done(thread)
            if not thread.is_alive():
                break
            self.now_ns = end if nxt is None or nxt > end else max(self.now_ns + 1, nxt)
        self.run_due()
        self._until_asleep_or_done(thread)

    def _until_asleep_or_done(self, thread: threading.Thread) -> None:
        ident = thread.ident
        self.cpu.release()
        try:
            with self._state:  # a thread's exit notifies nobody: looked for every 0.2 ms
                while thread.is_alive() and ident not in self._parked:
                    self._state.wait(0.0002)
        finally:
            self.cpu.acquire()
        if not thread.is_alive():
            thread.join()

    def call(self, fn):
        """A system call on this thread: with the CPU, the hand-offs it makes run before it returns."""
        me = threading.get_ident()
        with self._state:
            self._busy.add(me)
        self.cpu.acquire()
        try:
            return fn()
        finally:
            self.drain()
            self.cpu.release()
            with self._state:
                self._busy.discard(me)
                self._state.notify_all()

    def block(self, wait: Wait):
        """Run a call that may block (wait.py's wait_sync, on the virtual clock): sleep on
        its queues, the CPU given up, until woken or its time is up."""
        waiter = Waiter()
        for q in wait.queues:
            q.add(waiter)
        deadline = None if wait.timeout is None else self.now_ns + int(wait.timeout * 1e9)
        call = wait.call
        try:
            events = next(call)
            while True:
                waiter.events = events
                if deadline is not None and self.now_ns >= deadline:
                    events = call.send(True)
                    continue
                self._sleep(waiter, deadline)
                waiter.clear()
                events = call.send(False)
        except StopIteration as done:
            return done.value
        finally:
            for q in wait.queues:
                q.remove(waiter)
            call.close()

    def _sleep(self, waiter: Waiter, deadline: int | None) -> None:
        me = threading.get_ident()
        self.drain()
        with self._state:
            self._parked[me] = Park(waiter, deadline)
            self._state.notify_all()
        depth = _release_all(self.cpu)
        waiter.wait(None)
        _acquire(self.cpu, depth)
        with self._state:
            del self._parked[me]
            self._state.notify_all()


def _ns_at_or_after(seconds: float) -> int:
    """The first whole nanosecond at which a timer armed for `seconds` is due (a float's
    product can round below it: 0.20400000000000001 s is not due at 204000000 ns)."""
    ns = math.ceil(seconds * 1e9)
    while ns / 1e9 < seconds:
        ns += 1
    return ns


class Park:
    __slots__ = ("waiter", "deadline_ns")

    def __init__(self, waiter: Waiter, deadline_ns: int | None) -> None:
        self.waiter, self.deadline_ns = waiter, deadline_ns


def _release_all(lock: threading.RLock) -> int:
    depth = 0
    while lock._is_owned():  # noqa: SLF001 (RLock has no public depth)
        lock.release()
        depth += 1
    return depth


def _acquire(lock: threading.RLock, depth: int) -> None:
    for _ in range(depth):
        lock.acquire()


class LocalHop:
    """An edge in one process: the items as the message the next layer's handler takes,
    queued for it (a Hop writes the same message to the layer's socket)."""

    def __init__(self, sim: Sim, edge: Edge, target) -> None:
        self.name = edge.name
        self._sim, self._edge, self._target = sim, edge, target

    def put(self, items: list, timeout: float | None = None) -> bool:
        if items:
            request = self._edge.encode(items)
            self._sim.post(lambda: self._deliver(request))
        return True

    def _deliver(self, request) -> None:
        layer = self._target()
        getattr(type(layer), self._edge.method).hop_batch(layer, request)

    def close(self) -> None:
        pass


class Direct:
    """A layer's RPCs as a stub's methods, called in this process (ErrnoStub's twin)."""

    def __init__(self, layer) -> None:
        self._layer = layer

    def __getattr__(self, name: str):
        method = getattr(self._layer, name)
        return lambda request, timeout=None, **_: method(request, None)


class Wire:
    """What L2 queues for its device: the packets on the wire, each with its time. It plays
    the softirq layer: the device's root qdisc (fq held to the virtual clock; pfifo_fast, a
    TUN device's, sends at once), and the skbs' frees (tcp_wfree) as the device sends them."""

    def __init__(self, sim: Sim) -> None:
        self.sim = sim
        self.mib = Mib()
        self.out: deque = deque()  # (ns, IP packet): the script's family's, as the kernel's runner has no other
        self.ethertype = ETH_P_IP
        self.qdisc = None  # pfifo_fast: nothing waits, the TUN device takes each packet at once
        self.wfree = None

    def open_tcp_wfree(self, hop) -> None:
        """The destructor of the host's charged skbs (after L2 and L3 set theirs: the last one counts)."""
        self.wfree = open_tcp_wfree("softirq", HOST, hop, self.mib, paced=lambda skb: self.qdisc is not None)

    def replace_qdisc(self, kind: str) -> None:
        self.qdisc = Fq() if kind == "fq" else None

    @batches(skbuff_pb2.SkBuffBatch)
    def DevQueueXmit(self, request, context):
        skbs, dropped = s.from_protos(request.skbs, self.mib), 0
        if self.qdisc is None:
            for skb in skbs:
                self._xmit(skb)
            return s.disposition(len(skbs), 0)
        for skb in skbs:
            reason = self.qdisc.enqueue(skb, self.sim.now_ns)
            if reason:
                s.kfree_skb_reason(skb, reason, skbuff_pb2.LAYER_SOFTIRQ, HOST, "__dev_queue_xmit")
                dropped += 1
        self.run_timers()
        return s.disposition(len(skbs) - dropped, dropped)

    def run_timers(self) -> float:
        """The qdisc watchdog: send what is due; the next time (s) something is (0: none)."""
        if self.qdisc is None:
            return 0
        while (skb := self.qdisc.dequeue(self.sim.now_ns)) is not None:
            self._xmit(skb)
        due = self.qdisc.next_event_ns()
        return due / 1e9 if due is not None else 0

    def _xmit(self, skb) -> None:
        for seg in skb_gso_segment(skb, skbuff_pb2.LAYER_SOFTIRQ, HOST) if skb.gso_size else [skb]:
            frame = bytes(seg.payload())
            if int.from_bytes(frame[12:14], "big") == self.ethertype:
                self.out.append((self.sim.now_ns, frame[ETH_HLEN:]))
            s.consume_skb(seg, skbuff_pb2.LAYER_SOFTIRQ, HOST, "dev_hard_start_xmit")


class LocalApi:
    """The socket API of one process of the host, as pktpath.client.SocketApi offers it."""

    def __init__(self, sim: Sim, syscalls: Syscalls, tasks: Tasks) -> None:
        self._sim, self._sys = sim, syscalls
        self._task = tasks.attach(1, "packetdrill")

    def call(self, rpc: str, request, timeout: float | None = None):
        def run():
            result = getattr(self._sys, rpc)(self._task, request)
            if not isinstance(result, Wait):
                return result
            try:
                return result.reply(self._sim.block(result))
            except BaseException:
                if result.undo is not None:
                    result.undo()
                raise
        try:
            return self._sim.call(run)
        except SockError as exc:
            raise OSError(exc.errno, exc.detail or None) from None

    def socket(self, type_: int, protocol: int = 0, family: int = 2):
        """socket(2): AF_INET (2) unless family says AF_INET6 (10)."""
        return self.call("Socket", socket_pb2.SocketRequest(family=family, type=type_, protocol=protocol))

    def poll(self, fds: list[tuple[int, int]], timeout_ms: int = -1) -> list[tuple[int, int]]:
        request = socket_pb2.PollRequest(timeout_ms=timeout_ms)
        for fd, events in fds:
            request.fds.add(fd=fd, events=events)
        return [(p.fd, p.revents) for p in self.call("Poll", request).fds]


class LocalHost(PktpathCalls):
    """The drill's host in one process: the same addresses as the live one."""

    def __init__(self, ip_version: int = 4) -> None:
        v6 = ip_version == 6
        self.local_ip, self.remote_ip = (LOCAL_IP6, REMOTE_IP6) if v6 else (LOCAL_IP, REMOTE_IP)
        self._frame_head = HOST_MAC + GATEWAY_MAC
        config = parse(tomllib.loads(drill_topology(ip_version=ip_version)), "drill").host(HOST)
        self.sim = sim = Sim()
        self.wire = Wire(sim)
        self.wire.ethertype = ETH_P_IPV6 if v6 else ETH_P_IP
        layers: dict = {"softirq": self.wire}

        def hop(edge: Edge, mib):
            return LocalHop(sim, edge, lambda: layers[edge.dst])

        assert {e.dst for e in EDGES} <= {"softirq", "l2", "l3", "l4", "socket"}
        layers["l2"] = self.l2 = L2(HOST, config, hop)
        layers["l3"] = self.l3 = L3(HOST, config, hop, Direct(self.l2), clock=sim.clock)
        layers["l4"] = self.l4 = L4(HOST, config, hop, Direct(self.l3), clock=sim.clock)
        layers["socket"] = self.socket_layer = Socket(HOST, hop, Direct(self.l4), sample=lambda flow=None: False,
                                                      devs=[i.name for i in config.interfaces])
        self.socket_layer.layer.l3 = Direct(self.l3)  # IPV6_JOIN_GROUP's device side (seams.py's Ipv6DevMc)
        self.l2.link.neigh.add("eth0", ip_from_str(GATEWAY_IP), GATEWAY_MAC)  # the gateway the runner plays
        self.l2.link.nd.add("eth0", ip6_from_str(GATEWAY_IP6), GATEWAY_MAC)
        sim.timers.append(self.l4.tcp.run_timers)
        sim.timers.append(self.l3.ipv6_timers)
        self.tasks = Tasks(FILE_MAX)
        self.api = LocalApi(sim, Syscalls(self.socket_layer, self.tasks), self.tasks)
        self.wire.open_tcp_wfree(hop)
        sim.timers.append(self.wire.run_timers)
        self.shell = Shell(self._set_sysctl, self.reset, self._set_qdisc)
        if v6:  # virtual time passes until duplicate address detection is done (packetdrill's: `nodad`)
            while any(ifa.flags & IFA_F_TENTATIVE for ifa in self.l3.addrconf.addr_list("eth0")):
                nxt = sim.run_due()
                if nxt is None:
                    raise RuntimeError("the drill host's IPv6 address is tentative with nothing to finish it")
                sim.advance_to(nxt)
            self.wire.out.clear()  # the host's own DAD and router solicitations are no script's

    # -- the runner's clock ---------------------------------------------------------------
    def monotonic_ns(self) -> int:
        return self.sim.now_ns

    def sleep_until_ns(self, t_ns: int) -> None:
        self.sim.advance_to(t_ns)

    def wait_call(self, thread: threading.Thread, timeout: float | None) -> None:
        self.sim.wait_call(thread, timeout)

    def wait_blocked(self, thread: threading.Thread) -> None:
        self.sim.wait_call(thread)

    def unmodelled(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for mib in (self.l4.mib, self.socket_layer.mib):
            for k, n in mib.snapshot().get("Unmodelled", {}).items():
                out[k] = out.get(k, 0) + n
        return out

    # -- the wire -------------------------------------------------------------------------
    def inject(self, packet: bytes) -> None:
        """An IP packet from the gateway."""
        ethertype = ETH_P_IPV6 if packet[0] >> 4 == 6 else ETH_P_IP
        self.inject_frame(self._frame_head + ethertype.to_bytes(2, "big") + packet)

    def inject_frame(self, frame: bytes) -> None:
        """Any Ethernet frame on eth0's wire."""
        skb = s.alloc_skb(s.NET_SKB_PAD + len(frame), sampled=False)  # as the driver's poll builds it
        s.skb_reserve(skb, s.NET_SKB_PAD)
        s.skb_put_data(skb, frame)
        skb.dev, skb.tstamp = "eth0", self.sim.now_ns
        self.sim.post(lambda: self.l2.NetifReceiveSkb.hop_batch(self.l2, s.to_batch([skb])))
        self.sim.drain()
        self.sim.settle()

    def sniff(self, timeout: float) -> tuple[int, bytes] | None:
        """The next packet on the wire; time passes (timers fire) until one is, or timeout."""
        limit = self.sim.now_ns + int(timeout * 1e9)
        while not self.wire.out:
            nxt = self.sim.run_due()
            if self.wire.out:
                break
            if nxt is None or nxt > limit:
                self.sim.advance_to(limit)
                if not self.wire.out:
                    return None
                break
            self.sim.advance_to(nxt)
        return self.wire.out.popleft()

    # -- what the script's commands need ----------------------------------------------------
    def _set_qdisc(self, kind: str) -> None:
        self.wire.replace_qdisc(kind)

    def _set_sysctl(self, name: str, value: str, ignore_unknown: bool = False) -> None:
        from pktpath.sysctl import SysctlError, knob

        layers = {"l4": self.l4.tcp.sysctls, "socket": self.socket_layer.layer.sysctls}
        try:
            k = knob(name)
            for layer in k.layers:
                layers[layer].set(k.name, value)
        except SysctlError as exc:
            if not (ignore_unknown and exc.errno_name == "ENOENT"):
                raise Unsupported(str(exc)) from None

    def close(self) -> None:
        for layer in (self.socket_layer, self.l4, self.l3, self.l2):
            layer.close()
