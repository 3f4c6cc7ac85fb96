"""A host's sysctls: the net.ipv4 knobs of its TCP, as /proc/sys names and prints them.

Each layer that reads a knob keeps its own copy (the socket layer reads tcp_rmem[1] and
tcp_wmem[1] for a new socket's buffers, L4 the rest) and answers `Sysctl` for it; `pktpath
sysctl` and a drill script's `sysctl -w` set every layer that keeps it. A knob pktpath
models takes any value Linux takes. A knob whose mechanism pktpath does not have is listed
with the value pktpath behaves as (no SYN cookies: tcp_syncookies 0) and takes only that
one: a script that sets another is told it is not modelled, never run as if it were.

Some such knobs take Linux's values anyway (`engaged`), because the mechanism acts only in
a moment pktpath can tell: F-RTO on an ACK after an RTO, a SYN cookie when the SYN queue
overflows, Fast Open when a SYN or a call asks for it. There pktpath counts it (`Unmodelled
<knob>`: `pktpath netstat`, and `pktpath drill` calls a script that got there unsupported),
so that the difference is never silent and a script that never gets there runs.
"""

import os
from dataclasses import dataclass
from typing import Callable

CONGESTION_CONTROLS = ("cubic", "reno")


class SysctlError(ValueError):
    """A name pktpath does not have, or a value the knob does not take; errno says which
    (ENOENT, as for a file /proc/sys does not have; EINVAL; EOPNOTSUPP: not modelled)."""

    def __init__(self, errno_name: str, text: str) -> None:
        super().__init__(text)
        self.errno_name = errno_name


def _ints(n: int, low: int = 0, high: int = 2**31 - 1) -> Callable[[str], tuple[int, ...] | int]:
    def parse(text: str):
        words = text.split()
        try:  # as proc_dointvec reads them: decimal, or hex with 0x
            values = tuple(int(w, 16) if w.lower().startswith("0x") else int(w) for w in words)
        except ValueError:
            values = ()
        if len(words) != n or len(values) != n:
            raise ValueError(f"{n} integer{'s' if n > 1 else ''}")
        if not all(low <= v <= high for v in values):
            raise ValueError(f"between {low} and {high}")
        return values if n > 1 else values[0]
    return parse


def _choice(*names: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text.strip() not in names:
            raise ValueError(f"one of {', '.join(names)}")
        return text.strip()
    return parse


class _All(frozenset):
    """Every value."""

    def __contains__(self, value) -> bool:
        return True


_ALL = _All()


def _fastopen_key(text: str) -> str:
    """tcp_fastopen_key: a primary (and a backup) 128-bit key as four 32-bit hex words each."""
    keys = text.strip().split(",")
    for key in keys:
        words = key.split("-")
        if len(keys) > 2 or len(words) != 4 or not all(len(w) <= 8 and all(c in "0123456789abcdefABCDEF" for c in w)
                                                      and w for w in words):
            raise ValueError("a key of four 32-bit hex words joined by '-' (a backup key after a ',')")
    return ",".join("-".join(f"{int(w, 16):08x}" for w in key.split("-")) for key in keys)


@dataclass(frozen=True)
class Knob:
    name: str                      # net.ipv4.tcp_rmem
    linux: object                  # Linux's default
    parse: Callable[[str], object]
    layers: tuple[str, ...] = ("l4",)
    behaves_as: object = None      # not modelled: the value pktpath behaves as (None: modelled), or
    why: str = ""                  # a frozenset of values it is the same under; and why
    engaged: frozenset = frozenset()  # not modelled, but taken: the mechanism's moment is counted...
    moment: str = ""                  # ...which is this

    @property
    def modelled(self) -> bool:
        return self.behaves_as is None

    @property
    def default(self) -> object:
        if (self.modelled or self.linux in self.engaged
                or isinstance(self.behaves_as, frozenset) and self.linux in self.behaves_as):
            return self.linux
        return self.behaves_as

    def takes(self, value) -> bool:
        """A value of a mechanism pktpath lacks that it takes, counting when it is reached."""
        return value in self.engaged

    def format(self, value) -> str:
        """As /proc/sys prints it: vectors tab-separated."""
        return "\t".join(str(v) for v in value) if isinstance(value, tuple) else str(value)

    def check(self, text: str):
        """The value `text` sets, or SysctlError."""
        try:
            value = self.parse(text)
        except ValueError as exc:
            raise SysctlError("EINVAL", f"{self.name}: {_shown(text)} is not {exc}") from None
        same = self.behaves_as if isinstance(self.behaves_as, frozenset) else {self.behaves_as}
        if not self.modelled and value not in same and not self.takes(value):
            said = " or ".join(self.format(v) for v in sorted(same))
            raise SysctlError("EOPNOTSUPP", f"{self.name} = {self.format(value)} is not modelled: pktpath behaves "
                                            f"as {said} ({self.why})")
        return value


def _knobs(*knobs: Knob) -> dict[str, Knob]:
    return {k.name: k for k in knobs}


BOOL = _ints(1, 0, 1)
KNOBS = _knobs(
    # tcp_rmem[2] is 32 MB since Linux 6.18 ("tcp: increase tcp_rmem[2] to 32 MB"; 6 MB before)
    Knob("net.ipv4.tcp_rmem", (4096, 131072, 33554432), _ints(3, 1), ("socket", "l4")),
    Knob("net.ipv4.tcp_wmem", (4096, 16384, 4194304), _ints(3, 1), ("socket", "l4")),
    Knob("net.ipv4.tcp_timestamps", 1, _ints(1, 0, 2)),
    Knob("net.ipv4.tcp_sack", 1, BOOL),
    Knob("net.ipv4.tcp_window_scaling", 1, BOOL),
    Knob("net.ipv4.tcp_syn_retries", 6, _ints(1, 1, 127)),
    Knob("net.ipv4.tcp_synack_retries", 5, _ints(1, 0, 255)),
    Knob("net.ipv4.tcp_retries2", 15, _ints(1, 0, 255)),
    Knob("net.ipv4.tcp_fin_timeout", 60, _ints(1, 1, 2**31 // 1000)),
    # the keepalive timer's idle time and interval (seconds) and probes, where a socket's TCP_KEEPIDLE,
    # TCP_KEEPINTVL and TCP_KEEPCNT are unset; the socket layer reads them for getsockopt
    Knob("net.ipv4.tcp_keepalive_time", 7200, _ints(1, 0, 2**31 // 1000), ("socket", "l4")),
    Knob("net.ipv4.tcp_keepalive_intvl", 75, _ints(1, 0, 2**31 // 1000), ("socket", "l4")),
    Knob("net.ipv4.tcp_keepalive_probes", 9, _ints(1, 0, 255), ("socket", "l4")),
    Knob("net.ipv4.tcp_congestion_control", "cubic", _choice(*CONGESTION_CONTROLS)),
    # RFC 3168 ECN: 1 asks for it in SYNs and accepts it, 2 only accepts it (Linux 6.18 takes no more than 2);
    # tcp_ecn_fallback: a retransmitted SYN asks no more (RFC 3168 6.1.1.1)
    Knob("net.ipv4.tcp_ecn", 2, _ints(1, 0, 2)),
    Knob("net.ipv4.tcp_ecn_fallback", 1, BOOL),
    # tcp_tso_should_defer: wait for an ACK rather than send less than 1/divisor of the window
    # (0: less than 3 MSS); a u8 (proc_dou8vec_minmax)
    Knob("net.ipv4.tcp_tso_win_divisor", 3, _ints(1, 0, 255)),
    # tcp_tso_autosize: the fewest segments a TSO packet holds (a u8, at least 1)
    Knob("net.ipv4.tcp_min_tso_segs", 2, _ints(1, 1, 255)),
    # RFC 2861 (RFC 5681 4.1): cwnd restarts after an idle RTO, and decays while the application
    # leaves it unused (a u8: any non-zero value is on)
    Knob("net.ipv4.tcp_slow_start_after_idle", 1, _ints(1, 0, 255)),
    # What pktpath's TCP does not have: the value it behaves as, and those it takes though
    Knob("net.ipv4.tcp_frto", 2, _ints(1, 0, 2), behaves_as=0, why="no F-RTO (RFC 5682)",
         engaged=frozenset({1, 2}), moment="an ACK after an RTO, where F-RTO decides whether it was spurious"),
    Knob("net.ipv4.tcp_dsack", 1, BOOL, behaves_as=0, why="no D-SACK (RFC 2883)",
         engaged=frozenset({1}), moment="a D-SACK block"),
    Knob("net.ipv4.tcp_fastopen", 1, _ints(1), behaves_as=0, why="no TCP Fast Open (RFC 7413)", engaged=_ALL,
         moment="a call or a SYN that asks for Fast Open"),
    Knob("net.ipv4.tcp_fastopen_key", "00000000-00000000-00000000-00000000", _fastopen_key),
    Knob("net.ipv4.tcp_syncookies", 1, _ints(1, 0, 2), behaves_as=0, why="no SYN cookies",
         engaged=frozenset({1}), moment="a full SYN queue, where a SYN cookie answers"),
    Knob("net.ipv4.tcp_recovery", 1, _ints(1), behaves_as=1, why="RACK always on"),
    Knob("net.ipv4.tcp_syn_linear_timeouts", 4, _ints(1, 0, 20), behaves_as=0,
         why="a SYN's retries back off from the first, as before Linux 6.18"),
    Knob("net.ipv4.tcp_early_retrans", 3, _ints(1, 0, 4), behaves_as=frozenset({3, 4}),
         why="Tail Loss Probes always on; early retransmit itself left Linux for RACK in 4.13"),
    Knob("net.ipv4.tcp_reordering", 3, _ints(1, 1), behaves_as=3, why="the initial reordering degree is fixed"),
    Knob("net.ipv4.tcp_notsent_lowat", 2**32 - 1, _ints(1, 0, 2**32 - 1), behaves_as=2**32 - 1,
         why="no not-sent low-water mark"),
    # FACK: gone from Linux since 4.15, any value taken as Linux takes any; the pacing ratios
    # size TSO packets (tcp_tso_autosize) through the pacing rate, as in Linux
    Knob("net.ipv4.tcp_fack", 0, BOOL),
    Knob("net.ipv4.tcp_pacing_ss_ratio", 200, _ints(1, 0, 1000)),
    Knob("net.ipv4.tcp_pacing_ca_ratio", 120, _ints(1, 0, 1000)),
    # TCP Small Queues: the most bytes of a socket's skbs below TCP (qdisc, device) unless paced
    # (tcp_small_queue_check); 4 MiB since Linux 6.7
    Knob("net.ipv4.tcp_limit_output_bytes", 4 * 1024 * 1024, _ints(1)),
)


# Moments of a mechanism pktpath lacks that no knob turns on (Linux acts on them always)
MOMENTS = {
    "dsack_received": "a D-SACK block arrived, on which Linux may undo a recovery (tcp_try_undo_dsack) and "
                      "widens RACK's reordering window (tcp_rack_update_reo_wnd): pktpath does neither",
}


def unmodelled_reason(key: str) -> str:
    """Why what followed a moment counted as `Unmodelled <key>` is not Linux's behaviour."""
    k = KNOBS.get(f"net.ipv4.{key}")
    if k is not None and k.moment:
        return f"{k.name} on met {k.moment}: pktpath has {k.why}"
    if key.startswith("sockopt "):
        return f"{key.removeprefix('sockopt ')}: a socket option Linux has and pktpath has not"
    return MOMENTS.get(key, f"{key}: a mechanism pktpath lacks")


def knob(name: str) -> Knob:
    """The knob by its name, with dots or slashes (sysctl takes both); SysctlError if none."""
    name = name.strip().replace("/", ".")
    if name not in KNOBS:
        raise SysctlError("ENOENT", f"{_shown(name)} is not a sysctl pktpath has (`pktpath sysctl -a` lists them)")
    return KNOBS[name]


def _shown(text: str, most: int = 48) -> str:
    """A caller's text in a message: quoted, and cut short if long."""
    return repr(text) if len(text) <= most else repr(text[:most]) + "..."


class Sysctls:
    """One layer's copies of the knobs it reads, as Linux's defaults (or what pktpath
    behaves as); read as attributes by their last word: `sysctls.tcp_rmem[1]`."""

    def __init__(self, layer: str) -> None:
        self.layer = layer
        self._values = {k.name: k.default for k in KNOBS.values() if layer in k.layers}

    def __getattr__(self, short: str):
        try:
            return self.__dict__["_values"][f"net.ipv4.{short}"]
        except KeyError:
            raise AttributeError(short) from None

    def get(self, name: str) -> str:
        k = knob(name)
        return k.format(self._values.get(k.name, k.default))

    def set(self, name: str, text: str) -> str:
        """Sets it (SysctlError if the value is not taken); returns it as /proc/sys prints it."""
        k = knob(name)
        value = k.check(text)
        if k.name in self._values:
            self._values[k.name] = value
        return k.format(value)


WITHOUT = "PKTPATH_WITHOUT"
MECHANISMS = ("tsq", "bql")  # TCP Small Queues, byte queue limits


def left_out(mechanism: str) -> bool:
    """Whether the services run without one of the kernel's mechanisms (PKTPATH_WITHOUT=tsq,bql
    in their environment): not Linux, only there to measure what the mechanism does
    (benchmarks/tcp_bulk.py's "before")."""
    if mechanism not in MECHANISMS:
        raise ValueError(f"unknown mechanism {mechanism!r}")
    return mechanism in os.environ.get(WITHOUT, "").replace(" ", "").split(",")
