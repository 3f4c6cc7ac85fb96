"""Netfilter's five IPv4 hooks with iptables-style rules and their counters.

Models nf_hook_slow (net/netfilter/core.c) walking one chain per hook, as
ipt_do_table (net/ipv4/netfilter/ip_tables.c) does for the filter table: the
first rule that matches decides, and counts the packet and its bytes (what
`iptables -L -v` shows); no match means the chain's policy. A rule
matches source and destination prefixes, the protocol, and for TCP and UDP
the ports. As with iptables' -p udp --dport, a port rule never matches a
non-first fragment: its ports are in the first one. Each chain has a policy (-P,
ACCEPT at first) for what no rule decides, and counts what it decided, as the
policy line of `iptables -L -v` does (from 0 again at each -P, as iptables-nft's).

Pure logic: no gRPC.
"""

import struct
import threading
from dataclasses import dataclass
from typing import ClassVar

from pktpath.counters import Mib
from pktpath.wire.ipv4 import IPPROTO_TCP, IPPROTO_UDP, IpHdr

NF_INET_PRE_ROUTING, NF_INET_LOCAL_IN, NF_INET_FORWARD, NF_INET_LOCAL_OUT, NF_INET_POST_ROUTING = range(5)
HOOK_NAMES = ("PRE_ROUTING", "LOCAL_IN", "FORWARD", "LOCAL_OUT", "POST_ROUTING")
NF_DROP, NF_ACCEPT = 0, 1
_PORTS = struct.Struct("!HH")


@dataclass
class NfRule:
    ADDR_BITS: ClassVar[int] = 32  # an IPv4 address; netfilter6's NfRule6 has 128
    hook: int
    verdict: int
    src: tuple[int, int] = (0, 0)  # (network, prefixlen); prefixlen 0 matches any
    dst: tuple[int, int] = (0, 0)
    protocol: int = 0
    sport: int = 0
    dport: int = 0
    pkts: int = 0
    bytes: int = 0

    def spec(self) -> tuple:
        """What the rule is, without its counters."""
        return self.hook, self.verdict, self.src, self.dst, self.protocol, self.sport, self.dport

    def matches(self, iph: IpHdr, ports: tuple[int, int] | None) -> bool:
        for (net, plen), addr in ((self.src, iph.saddr), (self.dst, iph.daddr)):
            if plen and (addr ^ net) >> (self.ADDR_BITS - plen):
                return False
        if self.protocol and self.protocol != iph.protocol:
            return False
        if self.sport or self.dport:
            if ports is None:
                return False
            if (self.sport and self.sport != ports[0]) or (self.dport and self.dport != ports[1]):
                return False
        return True


class Netfilter:
    def __init__(self, rules: list[NfRule] = ()) -> None:
        self._lock = threading.Lock()
        self._chains: list[list[NfRule]] = [[] for _ in HOOK_NAMES]
        self.policies = [NF_ACCEPT] * len(HOOK_NAMES)
        self._decided = Mib()  # per hook: the packets and bytes the policy decided (per-thread counts)
        self._zeroed = [(0, 0)] * len(HOOK_NAMES)
        for rule in rules:
            self.add(rule)

    def add(self, rule: NfRule, position: int = 0) -> None:
        """iptables -A (position 0: append) or -I CHAIN POSITION (1 is the first)."""
        with self._lock:
            chain = self._chains[rule.hook]
            if position > len(chain) + 1:
                raise IndexError(f"index of insertion too big: {position} (the chain has {len(chain)} rules)")
            chain.insert(position - 1 if position else len(chain), rule)

    def delete(self, rule: NfRule, position: int = 0) -> bool:
        """iptables -D: the chain's rule at position, or (0) its first of the same match and verdict."""
        spec = rule.spec()
        with self._lock:
            chain = self._chains[rule.hook]
            if position:
                if position > len(chain):
                    return False
                del chain[position - 1]
                return True
            for i, r in enumerate(chain):
                if r.spec() == spec:
                    del chain[i]
                    return True
        return False

    def flush(self, hook: int | None = None) -> None:
        """iptables -F [CHAIN]."""
        with self._lock:
            for h in range(len(HOOK_NAMES)) if hook is None else (hook,):
                self._chains[h].clear()

    def zero(self, hook: int | None = None) -> None:
        """iptables -Z [CHAIN]: the rules' counters and the policy's from 0."""
        with self._lock:
            for h in range(len(HOOK_NAMES)) if hook is None else (hook,):
                for r in self._chains[h]:
                    r.pkts = r.bytes = 0
                self._zeroed[h] = self._totals(h)  # the per-thread counts only grow: remember where 0 is

    def set_policy(self, hook: int, verdict: int) -> None:
        """iptables -P CHAIN TARGET: iptables-nft updates the base chain with its counters at 0
        (seen on Linux 6.18: 4 packets under INPUT's policy, -P INPUT DROP, 0 packets; OUTPUT's kept)."""
        with self._lock:
            self.policies[hook] = verdict
            self._zeroed[hook] = self._totals(hook)

    def _totals(self, hook: int) -> tuple[int, int]:
        return self._decided.get(HOOK_NAMES[hook], "pkts"), self._decided.get(HOOK_NAMES[hook], "bytes")

    def policy_counts(self, hook: int) -> tuple[int, int]:
        """(packets, bytes) the chain's policy decided since it was last zeroed."""
        (pkts, nbytes), (pkts0, bytes0) = self._totals(hook), self._zeroed[hook]
        return pkts - pkts0, nbytes - bytes0

    def rules(self) -> list[NfRule]:
        with self._lock:
            return [r for chain in self._chains for r in chain]

    def active(self, hook: int) -> bool:
        """Does this hook have rules, or a policy that is not ACCEPT? (nf_hook's static-key check.)"""
        return bool(self._chains[hook]) or self.policies[hook] != NF_ACCEPT

    def passed(self, hook: int, length: int) -> None:
        """A packet through a hook with nothing on it: the ACCEPT policy decided it."""
        self._decided.inc(HOOK_NAMES[hook], "pkts")
        self._decided.inc(HOOK_NAMES[hook], "bytes", length)

    def hook(self, hook: int, iph: IpHdr, transport, length: int) -> int:
        """nf_hook(): the verdict for a packet with header iph, `transport` the bytes
        after the IP header and `length` its total length."""
        chain = self._chains[hook]
        if not chain:  # the common case: nothing registered on this hook
            self.passed(hook, length)
            return self.policies[hook]
        ports = None
        if iph.protocol in (IPPROTO_TCP, IPPROTO_UDP) and not iph.frag_offset and len(transport) >= 4:
            ports = _PORTS.unpack_from(transport)
        return self.verdict(hook, iph, ports, length)

    def verdict(self, hook: int, match, ports, length: int) -> int:
        """nft_do_chain(): the first rule of the hook's chain that matches (addresses and
        protocol in `match`, TCP/UDP ports or None) decides and counts the packet; no match
        leaves it to the chain's policy, which counts it too."""
        with self._lock:
            for rule in self._chains[hook]:
                if rule.matches(match, ports):
                    rule.pkts += 1
                    rule.bytes += length
                    return rule.verdict
        self.passed(hook, length)
        return self.policies[hook]


def rules_from_topology(rules, rule_class=NfRule) -> list[NfRule]:
    """A topology host's rule tables ([[host.rule]]: Host.rules; IPv6's: Host.rules6, with
    NfRule6) as rule_class, in file order."""
    def prefix(net):
        return (int(net.network_address), net.prefixlen) if net is not None else (0, 0)
    return [rule_class(HOOK_NAMES.index(r.hook), NF_ACCEPT if r.target == "ACCEPT" else NF_DROP,
                       prefix(r.src), prefix(r.dst), r.proto, r.sport, r.dport) for r in rules]
