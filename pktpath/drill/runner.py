"""Run a packetdrill script against a host (packetdrill's run.c): events at their times,
inbound packets injected, outbound ones read and checked, system calls made (a blocking
one on a thread of its own), commands run, Python assertions over tcpi_* run at the end.

Times are checked as packetdrill checks them: an event within `tolerance_usecs` of its
time, or 12.5 % of the gap since the previous event if that is more. A relative time
counts from when the previous event ended, but an inbound packet after an inbound packet
counts from the previous one's script time (adjust_relative_event_times).
"""

import os
import random
import sys
import threading
import time
import traceback
from dataclasses import dataclass

from pktpath.drill import packets
from pktpath.drill.packets import Connection, DrillMismatch, Unsupported
from pktpath.drill.script import (
    ABSOLUTE_RANGE, ANY, RELATIVE, RELATIVE_RANGE, Code, Command, Event, Packet, Script, Syscall,
)
from pktpath.drill.syscalls import Calls, SyscallError
from pktpath.sysctl import unmodelled_reason
from pktpath.wire.tcp_info import CONSTANTS, unpack

TOLERANCE_USECS = 4000        # --tolerance_usecs
TOLERANCE_PERCENT = 12.5      # --tolerance_percent
# what the kernel's ksft_runner.sh defines for IPv4 scripts and IPv6 ones (-D)
DEFINES = {"CMSG_LEVEL_IP": "SOL_IP", "CMSG_TYPE_RECVERR": "IP_RECVERR"}
DEFINES6 = {"CMSG_LEVEL_IP": "SOL_IPV6", "CMSG_TYPE_RECVERR": "IPV6_RECVERR"}
BLOCKED_WAIT_S = 1.0          # how long a call may take to block, or to end when it should not block


@dataclass
class Outcome:
    status: str      # "pass", "fail", "unsupported"
    message: str = ""


class _Failed(Exception):
    pass


class Runner:
    def __init__(self, script: Script, host, *, tolerance_usecs: int = TOLERANCE_USECS,
                 tolerance_percent: float = TOLERANCE_PERCENT, defines: dict[str, str] | None = None,
                 remote_port: int | None = None) -> None:
        self.script, self.host = script, host
        self.tolerance_usecs = int(script.options.get("tolerance_usecs", tolerance_usecs))
        self.tolerance_percent = tolerance_percent
        self.calls = Calls(host, {**(DEFINES6 if ":" in host.local_ip else DEFINES), **(defines or {})})
        self.calls.on_connect = self._connecting
        self.conn: Connection | None = None
        # the remote end's port towards a listener: an ephemeral one, as packetdrill's, fresh per script so
        # that a connection a host still holds in TIME_WAIT is not hit
        self.remote_port = remote_port or random.randrange(32768, 61000)
        self.listening = False
        self.start_ns = 0
        self.snapshots: list[tuple[int, dict, str]] = []   # (line, tcpi_*, code)
        self.blocking: threading.Thread | None = None
        self.blocking_error: BaseException | None = None
        self.ended = 0         # when the previous event ended, live: what a relative time counts from

    # -- time ------------------------------------------------------------------------------
    def now(self) -> int:
        return (self.host.monotonic_ns() - self.start_ns) // 1000

    def wait_until(self, usecs: int) -> None:
        self.host.sleep_until_ns(self.start_ns + usecs * 1000)

    def tolerance(self, usecs: int, last: int) -> int:
        return max(self.tolerance_usecs, int(self.tolerance_percent / 100 * (usecs - last)))

    def check_time(self, event: Event, live: int, last: int, what: str, end: int | None = None) -> None:
        t = event.time
        if t.kind == ANY:
            return
        expected = t.usecs if end is None else end
        tol = self.tolerance(expected, last)
        if t.kind in (ABSOLUTE_RANGE, RELATIVE_RANGE) and end is None:
            if not t.usecs - tol <= live <= t.end_usecs + tol:
                raise _Failed(f"{self.where(event)}timing error: expected {what} in time range "
                              f"{t.usecs / 1e6:.6f}~{t.end_usecs / 1e6:.6f} sec but happened at {live / 1e6:.6f} sec")
        elif abs(live - expected) > tol:
            raise _Failed(f"{self.where(event)}timing error: expected {what} at {expected / 1e6:.6f} sec but "
                          f"happened at {live / 1e6:.6f} sec; tolerance {tol / 1e6:.6f} sec")

    def where(self, event: Event) -> str:
        return f"{self.script.path}:{event.line}: "

    # -- the loop ------------------------------------------------------------------------------
    def run(self) -> Outcome:
        switch = sys.getswitchinterval()
        sys.setswitchinterval(0.0002)  # the sniffer's and the call's threads get the GIL in 0.2 ms, not 5
        unmodelled = self.host.unmodelled()
        try:
            try:
                self._init()
                self.start_ns = self.host.monotonic_ns()
                self._events()
                self._await_blocking(final=True)
                self._code()
                outcome = Outcome("pass")
            except _Failed as exc:
                outcome = Outcome("fail", str(exc))
            reached = _reached(unmodelled, self.host.unmodelled())
            if reached:  # what the stack did after that moment is not Linux's, whatever the comparison said
                return Outcome("unsupported", "; ".join(unmodelled_reason(k) for k in reached))
            return outcome
        except Unsupported as exc:
            return Outcome("unsupported", str(exc))
        finally:
            sys.setswitchinterval(switch)
            self.calls.close_all()
            if self.script.cleanup_command is not None:
                self.host.command(self.script.cleanup_command, self._folder())

    def _folder(self) -> str:
        return os.path.dirname(os.path.abspath(self.script.path))

    def _init(self) -> None:
        if self.script.init_command is not None:
            out = self.host.command(self.script.init_command, self._folder())
            if out.returncode:
                raise _Failed(f"{self.script.path}: error executing init command: non-zero status "
                              f"{out.returncode}\n{out.stderr.strip()}")

    def _events(self) -> None:
        previous: Event | None = None
        last = 0
        for i, event in enumerate(self.script.events):
            if i == 0 and not (event.time.kind == "absolute" and event.time.usecs == 0):
                raise _Failed(f"{self.where(event)}first event should be at time 0")
            self._adjust(event, previous)
            if self.blocking_error is not None:
                raise self.blocking_error
            action = event.action
            if isinstance(action, Packet) and action.direction == ">":
                self._outbound(event, last)
            else:
                if event.time.kind != ANY:
                    self.wait_until(event.time.usecs)
                if i > 0:
                    self.check_time(event, self.now(), last, _WHAT.get(type(action), "system call start")
                                    if not isinstance(action, Packet) else "inbound packet")
                if isinstance(action, Packet):
                    self._inbound(event)
                elif isinstance(action, Command):
                    self._command(event)
                elif isinstance(action, Code):
                    self._snapshot(event)
                else:
                    self._syscall(event)  # it says when it ended
                if not isinstance(action, Syscall):
                    self.ended = self.now()
            previous, last = event, event.time.usecs

    def _adjust(self, event: Event, previous: Event | None) -> None:
        t = event.time
        if t.kind not in (RELATIVE, RELATIVE_RANGE, ANY):
            return
        both_inbound = (previous is not None and _inbound(previous) and _inbound(event))
        offset = previous.time.usecs if both_inbound else self.ended
        t.usecs += offset
        t.end_usecs += offset if t.kind == RELATIVE_RANGE else 0
        if t.blocking_end_usecs is not None:
            t.blocking_end_usecs += offset

    # -- packets -----------------------------------------------------------------------------
    def _inbound(self, event: Event) -> None:
        pkt = event.action
        if "S" in pkt.flags and "." not in pkt.flags:
            # to a listener, a new connection; on a connection (the socket under test an accepted
            # or connected one), a SYN of that connection's, as packetdrill maps it
            if self.conn is None or self.listening and self.conn.local_isn is not None:
                self.conn = Connection(self.host.local_ip, self.host.remote_ip, remote_port=self.remote_port)
            self.conn.remote_isn = pkt.seq
        elif "S" in pkt.flags and self.conn is not None:  # the SYN-ACK to our connect()
            self.conn.remote_isn = pkt.seq
        if self.conn is None:
            raise _Failed(f"{self.where(event)}error handling packet: no matching socket for script packet")
        try:
            self.host.inject(packets.inbound(pkt, self.conn))
        except DrillMismatch as exc:
            raise _Failed(f"{self.where(event)}error handling packet: {exc}") from None

    def _connecting(self) -> None:
        self.conn = Connection(self.host.local_ip, self.host.remote_ip, local_port=0, remote_port=8080)

    def _outbound(self, event: Event, last: int) -> None:
        pkt = event.action
        if self.conn is None:
            raise _Failed(f"{self.where(event)}error handling packet: no matching socket for script packet")
        deadline = self.start_ns + (max(event.time.usecs, event.time.end_usecs) + 2_000_000) * 1000
        seen = None
        while seen is None or seen.payload < pkt.length:
            got = self._next_packet(deadline if event.time.kind != ANY else None)
            if got is None:
                raise _Failed(f"{self.where(event)}error handling packet: Timed out waiting for packet")
            part = packets.to_script(*got[1:], self.conn, pkt, got[0])
            seen = part if seen is None else packets.aggregate(seen, part)
        try:
            packets.verify(pkt, seen)
        except DrillMismatch as exc:
            raise _Failed(f"{self.where(event)}error handling packet: {exc}\n"
                          f"script packet: {event.time.usecs / 1e6:9.6f} {packets.script_dump(pkt)}\n"
                          f"actual packet: {seen.usecs / 1e6:9.6f} {packets.seen_dump(seen)}") from None
        self.check_time(event, seen.usecs, last, "outbound packet")
        self.ended = seen.usecs  # the next relative time counts from when this packet left

    def _next_packet(self, deadline: int | None):
        """The next packet of the connection under test: (usecs, ip, tcp, payload), before the
        host's clock reads `deadline` (ns). Others (another flow, not TCP) are passed over, as
        packetdrill's sniffer does."""
        while True:
            timeout = 60.0 if deadline is None else (deadline - self.host.monotonic_ns()) / 1e9
            if timeout <= 0:
                return None
            got = self.host.sniff(timeout)
            if got is None:
                return None
            ns, data = got
            parsed = packets.parse_outbound(data)
            if parsed is None:
                continue
            ip, tcp, payload = parsed
            saddr, sport, daddr, dport = packets.endpoints(ip, tcp)
            c = self.conn
            if (saddr, daddr, dport) != (c.local_ip, c.remote_ip, c.remote_port):
                continue
            if c.local_port == 0 and tcp.syn and not tcp.ack:  # our connect()'s SYN: learn its port and ISN
                c.local_port, c.local_isn = sport, tcp.seq
                c.script_local_isn = 0
            elif c.local_isn is None and tcp.syn:  # the SYN-ACK to the script's SYN
                c.local_isn = tcp.seq
            if sport != c.local_port:
                continue
            return (ns - self.start_ns) // 1000, ip, tcp, payload

    # -- the rest ----------------------------------------------------------------------------
    def _command(self, event: Event) -> None:
        out = self.host.command(event.action.text, self._folder())
        if out.returncode:
            raise _Failed(f"{self.where(event)}error executing `{event.action.text}` command: non-zero status "
                          f"{out.returncode}")

    def _snapshot(self, event: Event) -> None:
        fd = self.calls.under_test
        if fd is None or fd not in self.calls.fds:
            raise _Failed(f"{self.where(event)}can't find getsockopt to get TCP info")
        self.snapshots.append((event.line, unpack(self.host.tcp_info(self.calls.fds[fd])), event.action.text))

    def _syscall(self, event: Event) -> None:
        self._await_blocking()
        settle = getattr(self.host, "settle", None)
        if settle is not None:  # a live host takes inbound packets some hops after the wire: before the call
            settle()
        call = event.action
        blocking = event.time.blocking_end_usecs is not None
        error: list[BaseException] = []

        def make() -> None:
            try:
                self.calls.run(call)
                if call.name in ("listen", "accept", "connect"):
                    self.listening = call.name == "listen"
                if not blocking:  # the moment it returned, not when this loop saw it: Python's own
                    self.ended = self.now()  # delays are not the stack's
                if blocking:
                    self.check_time(event, self.now(), event.time.usecs, "system call return",
                                    end=event.time.blocking_end_usecs)
            except SyscallError as exc:
                error.append(_Failed(f"{self.where(event)}runtime error in {call.name} call: {exc}"))
            except (_Failed, Unsupported) as exc:
                error.append(exc)
            except Exception as exc:  # a bug here: say it as the script's failure, not a traceback
                error.append(_Failed(f"{self.where(event)}runtime error in {call.name} call: {exc!r}"))
            if blocking and error:
                self.blocking_error = error[0]

        thread = threading.Thread(target=make, name=f"syscall-{call.name}", daemon=True)
        thread.start()
        if blocking:
            self.blocking = thread
            self.host.wait_blocked(thread)
            self.ended = self.now()
            return
        self.host.wait_call(thread, BLOCKED_WAIT_S + self.tolerance_usecs / 1e6)
        if thread.is_alive():
            raise _Failed(f"{self.where(event)}runtime error in {call.name} call: it blocked (a call that may "
                          "block is written `t...end name(...)`)")
        if error:
            raise error[0]

    def _await_blocking(self, final: bool = False) -> None:
        if self.blocking is not None:
            self.host.wait_call(self.blocking, BLOCKED_WAIT_S if not final else 5.0)
            if self.blocking.is_alive() and final:
                raise _Failed(f"{self.script.path}: runtime error: exiting while a blocking system call is in "
                              "progress")
            if not self.blocking.is_alive():
                self.blocking = None
        if self.blocking_error is not None:
            raise self.blocking_error

    def _code(self) -> None:
        """Every %{ }% at the end, in one namespace, as packetdrill runs them in one python3."""
        namespace: dict = dict(CONSTANTS)
        for line, tcpi, code in self.snapshots:
            namespace.update(tcpi)
            try:
                exec(compile(code, f"{self.script.path}:{line}", "exec"), namespace)  # noqa: S102 (the script's)
            except Exception:
                raise _Failed(f"{self.script.path}:{line}: error in Python code\n{traceback.format_exc(limit=0)}"
                              f"{self.script.path}: error executing code: 'python3' returned non-zero status 1") \
                    from None


_WHAT = {Command: "command", Code: "data collection for code"}


def _reached(before: dict[str, int], after: dict[str, int]) -> list[str]:
    """The moments of a mechanism pktpath lacks met in between (Unmodelled counters)."""
    return sorted(k for k, n in after.items() if n > before.get(k, 0))


def _inbound(event: Event) -> bool:
    return isinstance(event.action, Packet) and event.action.direction == "<"


class RealTime:
    """The clock of a host that runs in real time (the kernel, a live pktpath host); a host
    on a virtual clock (pktpath.drill.local) has its own."""

    @staticmethod
    def monotonic_ns() -> int:
        return time.monotonic_ns()

    @staticmethod
    def sleep_until_ns(t_ns: int) -> None:
        delay = (t_ns - time.monotonic_ns()) / 1e9
        if delay > 0:
            time.sleep(delay)

    @staticmethod
    def wait_call(thread: threading.Thread, timeout: float | None) -> None:
        thread.join(timeout)

    @staticmethod
    def wait_blocked(thread: threading.Thread) -> None:
        _wait_blocked(thread)

    @staticmethod
    def unmodelled() -> dict[str, int]:
        """The moments of mechanisms the stack lacks it has met (the kernel lacks none)."""
        return {}


def _wait_blocked(thread: threading.Thread) -> None:
    """Until the call's thread sleeps in the kernel or is done (run_system_call.c checks
    /proc/PID/task/TID/stat the same way)."""
    deadline = time.monotonic() + BLOCKED_WAIT_S
    while thread.is_alive() and time.monotonic() < deadline:
        try:
            with open(f"/proc/self/task/{thread.native_id}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "S":
                    return
        except (OSError, TypeError):
            pass
        time.sleep(0.0005)
