"""Netfilter's five IPv4 hooks with iptables-style rules and their counters.

Models nf_hook_slow (net/netfilter/core.c) walking one chain per hook, as
ipt_do_table (net/ipv4/netfilter/ip_tables.c) does for the filter table: the
first rule that matches decides, and counts the packet and its bytes (what
`iptables -L -v` shows); no match means the chain's policy, ACCEPT. A rule
matches source and destination prefixes, the protocol, and for TCP and UDP
the ports. As with iptables' -p udp --dport, a port rule never matches a
non-first fragment: its ports are in the first one.

Pure logic: no gRPC.
"""

import struct
import threading
from dataclasses import dataclass

from pktpath.wire.ipv4 import IPPROTO_TCP, IPPROTO_UDP, IpHdr

NF_INET_PRE_ROUTING, NF_INET_LOCAL_IN, NF_INET_FORWARD, NF_INET_LOCAL_OUT, NF_INET_POST_ROUTING = range(5)
HOOK_NAMES = ("PRE_ROUTING", "LOCAL_IN", "FORWARD", "LOCAL_OUT", "POST_ROUTING")
NF_DROP, NF_ACCEPT = 0, 1
_PORTS = struct.Struct("!HH")


@dataclass
class NfRule:
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
            if plen and (addr ^ net) >> (32 - plen):
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
        for rule in rules:
            self.add(rule)

    def add(self, rule: NfRule) -> None:
        """iptables -A: append to the hook's chain."""
        with self._lock:
            self._chains[rule.hook].append(rule)

    def delete(self, rule: NfRule) -> bool:
        """iptables -D: remove the chain's first rule of the same match and verdict."""
        spec = rule.spec()
        with self._lock:
            chain = self._chains[rule.hook]
            for i, r in enumerate(chain):
                if r.spec() == spec:
                    del chain[i]
                    return True
        return False

    def rules(self) -> list[NfRule]:
        with self._lock:
            return [r for chain in self._chains for r in chain]

    def active(self, hook: int) -> bool:
        """Is anything registered on this hook? (nf_hook's static-key check.)"""
        return bool(self._chains[hook])

    def hook(self, hook: int, iph: IpHdr, transport, length: int) -> int:
        """nf_hook(): the verdict for a packet with header iph, `transport` the bytes
        after the IP header and `length` its total length."""
        chain = self._chains[hook]
        if not chain:  # the common case: nothing registered on this hook
            return NF_ACCEPT
        ports = None
        if iph.protocol in (IPPROTO_TCP, IPPROTO_UDP) and not iph.frag_offset and len(transport) >= 4:
            ports = _PORTS.unpack_from(transport)
        with self._lock:
            for rule in chain:
                if rule.matches(iph, ports):
                    rule.pkts += 1
                    rule.bytes += length
                    return rule.verdict
        return NF_ACCEPT


def rules_from_topology(host) -> list[NfRule]:
    """The topology's [[host.rule]] tables as NfRules, in file order."""
    def prefix(net):
        return (int(net.network_address), net.prefixlen) if net is not None else (0, 0)
    return [NfRule(HOOK_NAMES.index(r.hook), NF_ACCEPT if r.target == "ACCEPT" else NF_DROP,
                   prefix(r.src), prefix(r.dst), r.proto, r.sport, r.dport) for r in host.rules]
