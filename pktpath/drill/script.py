"""A packetdrill script, parsed: what each line says, before anything runs.

The shapes follow packetdrill's script.h and packet.h: an event has a time (absolute,
relative to the previous event, a range, or any time) and one action: a packet in or out,
a system call with its expected result, a shell command, or Python over tcpi_* values.
Sequence numbers stay as the script writes them (relative to the ISNs, absolute on a
SYN, as tcpdump prints them); the runner maps them onto the wire.
"""

from dataclasses import dataclass, field

ABSOLUTE, RELATIVE, ANY, ABSOLUTE_RANGE, RELATIVE_RANGE = "absolute", "relative", "any", "absolute~", "relative~"


@dataclass
class Time:
    kind: str                   # ABSOLUTE, RELATIVE, ANY, ABSOLUTE_RANGE, RELATIVE_RANGE
    usecs: int = 0              # the time, or a range's start
    end_usecs: int = 0          # a range's end
    blocking_end_usecs: int | None = None  # `t...end name(...)`: a blocking call returns at end


@dataclass
class TcpOption:
    kind: str                   # nop eol mss wscale sackOK sack TS md5 FO FOEXP
    value: int = 0              # mss, wscale
    blocks: tuple = ()          # sack: ((left, right), ...)
    val: int = 0                # TS
    ecr: int = 0
    data: bytes = b""           # md5 digest, FO cookie

    @property
    def size(self) -> int:
        """Bytes on the wire (tcp_options.c)."""
        return {"nop": 1, "eol": 1, "mss": 4, "wscale": 3, "sackOK": 2, "TS": 10, "md5": 18}.get(
            self.kind, 2 + 8 * len(self.blocks) if self.kind == "sack" else 2 + len(self.data)
            + (2 if self.kind == "FOEXP" else 0))


@dataclass
class Packet:
    direction: str              # "<" in (injected), ">" out (expected from the stack)
    protocol: str               # "tcp", "udp", "icmp"
    flags: str = ""             # TCP: "S", "S.", "P.", "F.", "R", "." ...
    seq: int = 0                # start:end(len)
    length: int = 0
    ack: int = 0
    win: int | None = None      # None: not checked (outbound only)
    urg: int = 0
    options: list[TcpOption] | None = field(default_factory=list)  # None: `<...>`, not checked
    sport: int | None = None    # `1234>8080`: ports given by the script
    dport: int | None = None
    ecn: str | None = None      # noecn ect0 ect1 ce ect01
    tos: int | None = None
    ttl: int | None = None
    icmp_type: str = ""         # icmp: echo_request, unreachable ...
    icmp_code: str = ""
    mtu: int | None = None
    echoed: "Packet | None" = None  # icmp: the TCP or UDP header it quotes


@dataclass
class Syscall:
    name: str
    args: list                  # expressions (parse_expression's tuples)
    result: int
    errno: str | None = None    # `= -1 EAGAIN (...)`


@dataclass
class Command:
    text: str                   # a shell command, run with /bin/sh


@dataclass
class Code:
    text: str                   # Python, over tcpi_* at this moment


@dataclass
class Event:
    line: int
    time: Time
    action: Packet | Syscall | Command | Code


@dataclass
class Script:
    path: str
    events: list[Event]
    options: dict[str, str] = field(default_factory=dict)  # `--tolerance_usecs=10000` lines
    init_command: str | None = None      # an untimed `command` before the first event
    cleanup_command: str | None = None   # ... and after the last
