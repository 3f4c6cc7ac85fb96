"""Netfilter hooks with iptables-style rules: matching, verdicts, counters, topology rules."""

import ipaddress
import struct

from pktpath.services.l3 import netfilter as nf
from pktpath.services.l3.netfilter import NF_ACCEPT, NF_DROP, Netfilter, NfRule, rules_from_topology
from pktpath.topology import Host, Interface, Rule
from pktpath.wire import IpHdr
from pktpath.wire.addr import ip_from_str as ip
from pktpath.wire.ipv4 import IP_MF, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP

A, B, C = ip("10.0.1.1"), ip("10.0.2.1"), ip("192.168.5.5")


def hdr(saddr=A, daddr=B, proto=IPPROTO_UDP, frag_off=0) -> IpHdr:
    return IpHdr(saddr, daddr, proto, frag_off=frag_off)


def ports(sport: int, dport: int) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8, 0)


def verdict(n: Netfilter, iph: IpHdr, transport: bytes = ports(1000, 53), length: int = 100,
            hook: int = nf.NF_INET_LOCAL_IN) -> int:
    return n.hook(hook, iph, transport, length)


def test_no_rules_accepts():
    n = Netfilter()
    for hook in range(5):
        assert verdict(n, hdr(), hook=hook) == NF_ACCEPT


def test_first_matching_rule_decides_and_counts_packets_and_bytes():
    accept = NfRule(nf.NF_INET_LOCAL_IN, NF_ACCEPT, src=(A, 32))
    drop = NfRule(nf.NF_INET_LOCAL_IN, NF_DROP)
    n = Netfilter([accept, drop])
    assert verdict(n, hdr(), length=120) == NF_ACCEPT
    assert verdict(n, hdr(), length=80) == NF_ACCEPT
    assert verdict(n, hdr(saddr=C), length=50) == NF_DROP
    assert (accept.pkts, accept.bytes) == (2, 200)
    assert (drop.pkts, drop.bytes) == (1, 50)


def test_rules_apply_only_on_their_hook():
    n = Netfilter([NfRule(nf.NF_INET_FORWARD, NF_DROP)])
    assert verdict(n, hdr(), hook=nf.NF_INET_FORWARD) == NF_DROP
    assert verdict(n, hdr(), hook=nf.NF_INET_LOCAL_IN) == NF_ACCEPT
    assert verdict(n, hdr(), hook=nf.NF_INET_PRE_ROUTING) == NF_ACCEPT


def test_no_match_falls_to_the_accept_policy_uncounted():
    rule = NfRule(nf.NF_INET_LOCAL_IN, NF_DROP, dst=(C, 32))
    n = Netfilter([rule])
    assert verdict(n, hdr()) == NF_ACCEPT
    assert (rule.pkts, rule.bytes) == (0, 0)


def test_prefixes_match_by_length():
    net24 = NfRule(nf.NF_INET_LOCAL_IN, NF_DROP, src=(ip("10.0.1.0"), 24))
    assert net24.matches(hdr(saddr=ip("10.0.1.200")), None)
    assert not net24.matches(hdr(saddr=ip("10.0.2.1")), None)
    host = NfRule(nf.NF_INET_LOCAL_IN, NF_DROP, dst=(B, 32))
    assert host.matches(hdr(daddr=B), None)
    assert not host.matches(hdr(daddr=B + 1), None)
    net8 = NfRule(nf.NF_INET_LOCAL_IN, NF_DROP, dst=(ip("10.0.0.0"), 8))
    assert net8.matches(hdr(daddr=ip("10.255.255.255")), None)
    assert not net8.matches(hdr(daddr=ip("11.0.0.0")), None)
    anything = NfRule(nf.NF_INET_LOCAL_IN, NF_DROP)
    assert anything.matches(hdr(saddr=C, daddr=ip("1.2.3.4")), None)


def test_protocol_match():
    n = Netfilter([NfRule(nf.NF_INET_LOCAL_IN, NF_DROP, protocol=IPPROTO_ICMP)])
    assert verdict(n, hdr(proto=IPPROTO_ICMP), bytes(8)) == NF_DROP
    assert verdict(n, hdr(proto=IPPROTO_UDP)) == NF_ACCEPT
    assert verdict(n, hdr(proto=IPPROTO_TCP)) == NF_ACCEPT


def test_ports_match_for_udp_and_tcp():
    n = Netfilter([NfRule(nf.NF_INET_LOCAL_IN, NF_DROP, dport=53),
                   NfRule(nf.NF_INET_LOCAL_IN, NF_DROP, sport=7777)])
    assert verdict(n, hdr(), ports(1000, 53)) == NF_DROP
    assert verdict(n, hdr(proto=IPPROTO_TCP), ports(1000, 53) + bytes(12)) == NF_DROP
    assert verdict(n, hdr(), ports(7777, 9)) == NF_DROP
    assert verdict(n, hdr(), ports(1000, 54)) == NF_ACCEPT


def test_sport_and_dport_must_both_match():
    rule = NfRule(nf.NF_INET_LOCAL_IN, NF_DROP, sport=1000, dport=53)
    assert rule.matches(hdr(), (1000, 53))
    assert not rule.matches(hdr(), (1001, 53))
    assert not rule.matches(hdr(), (1000, 54))


def test_port_rule_never_matches_other_protocols():
    """ICMP has no ports: a --dport rule does not see the bytes that would be ports."""
    n = Netfilter([NfRule(nf.NF_INET_LOCAL_IN, NF_DROP, dport=53)])
    assert verdict(n, hdr(proto=IPPROTO_ICMP), ports(1000, 53)) == NF_ACCEPT


def test_port_rule_never_matches_a_non_first_fragment():
    """xt_udp: fragoff != 0 never matches, even when the bytes look like the port."""
    rule = NfRule(nf.NF_INET_LOCAL_IN, NF_DROP, dport=53)
    n = Netfilter([rule])
    assert verdict(n, hdr(frag_off=IP_MF | 185), ports(1000, 53)) == NF_ACCEPT
    assert verdict(n, hdr(frag_off=185), ports(1000, 53)) == NF_ACCEPT
    assert rule.pkts == 0
    # The first fragment carries the ports and matches.
    assert verdict(n, hdr(frag_off=IP_MF), ports(1000, 53)) == NF_DROP
    assert rule.pkts == 1


def test_address_rule_still_matches_non_first_fragments():
    n = Netfilter([NfRule(nf.NF_INET_LOCAL_IN, NF_DROP, src=(A, 32))])
    assert verdict(n, hdr(frag_off=185), b"\x00\x35") == NF_DROP


def test_truncated_transport_gives_no_ports():
    n = Netfilter([NfRule(nf.NF_INET_LOCAL_IN, NF_DROP, dport=53)])
    assert verdict(n, hdr(), b"\x03") == NF_ACCEPT


def test_add_appends_and_rules_lists_in_hook_order():
    n = Netfilter()
    first = NfRule(nf.NF_INET_LOCAL_IN, NF_ACCEPT, dport=53)
    later = NfRule(nf.NF_INET_LOCAL_IN, NF_DROP)
    pre = NfRule(nf.NF_INET_PRE_ROUTING, NF_DROP, src=(C, 32))
    n.add(first)
    n.add(later)
    n.add(pre)
    assert n.rules() == [pre, first, later]
    assert verdict(n, hdr()) == NF_ACCEPT       # first rule wins over the later DROP
    assert verdict(n, hdr(), ports(1, 2)) == NF_DROP


def test_rules_from_topology_in_file_order():
    rules = (
        Rule("FORWARD", "DROP", src=ipaddress.IPv4Network("10.0.1.0/24"), proto=IPPROTO_UDP, dport=9),
        Rule("LOCAL_IN", "ACCEPT", dst=ipaddress.IPv4Network("10.0.2.1/32"), sport=7),
        Rule("POST_ROUTING", "DROP"),
    )
    host = Host("R", (Interface("eth0", "02:00:00:00:00:01", ipaddress.IPv4Interface("10.0.1.254/24")),),
                rules=rules)
    out = rules_from_topology(host.rules)
    assert out == [
        NfRule(nf.NF_INET_FORWARD, NF_DROP, (ip("10.0.1.0"), 24), (0, 0), IPPROTO_UDP, 0, 9),
        NfRule(nf.NF_INET_LOCAL_IN, NF_ACCEPT, (0, 0), (ip("10.0.2.1"), 32), 0, 7, 0),
        NfRule(nf.NF_INET_POST_ROUTING, NF_DROP),
    ]
    n = Netfilter(out)
    assert verdict(n, hdr(saddr=ip("10.0.1.9")), ports(5, 9), hook=nf.NF_INET_FORWARD) == NF_DROP
    assert verdict(n, hdr(saddr=ip("10.0.1.9")), ports(5, 10), hook=nf.NF_INET_FORWARD) == NF_ACCEPT


def test_a_chains_policy_decides_what_no_rule_did_and_counts_it_until_zeroed():
    n = Netfilter()
    n.set_policy(nf.NF_INET_LOCAL_IN, NF_DROP)
    assert n.active(nf.NF_INET_LOCAL_IN) and not n.active(nf.NF_INET_FORWARD)
    assert verdict(n, hdr(), length=100) == NF_DROP
    n.add(NfRule(nf.NF_INET_LOCAL_IN, NF_ACCEPT, protocol=IPPROTO_TCP))
    assert verdict(n, hdr(proto=IPPROTO_TCP), length=60) == NF_ACCEPT  # a rule decided: not the policy's
    assert verdict(n, hdr(), length=40) == NF_DROP
    assert n.policy_counts(nf.NF_INET_LOCAL_IN) == (2, 140)
    n.passed(nf.NF_INET_FORWARD, 99)  # an empty ACCEPT chain counts what it let by, as iptables -L -v shows
    assert n.policy_counts(nf.NF_INET_FORWARD) == (1, 99)
    n.zero(nf.NF_INET_LOCAL_IN)
    assert n.policy_counts(nf.NF_INET_LOCAL_IN) == (0, 0) and n.rules()[0].pkts == 0
    assert n.policy_counts(nf.NF_INET_FORWARD) == (1, 99)  # only the chain named


def test_insert_at_a_place_delete_by_number_and_flush_as_iptables_does():
    n = Netfilter()
    first, second, third = (NfRule(nf.NF_INET_LOCAL_IN, NF_DROP, dport=p, protocol=IPPROTO_UDP) for p in (1, 2, 3))
    n.add(second)
    n.add(third)
    n.add(first, position=1)  # iptables -I INPUT 1
    assert [r.dport for r in n.rules()] == [1, 2, 3]
    import pytest

    with pytest.raises(IndexError, match="too big"):
        n.add(first, position=5)
    assert n.delete(first, position=2) and [r.dport for r in n.rules()] == [1, 3]
    assert not n.delete(first, position=3)
    n.add(NfRule(nf.NF_INET_LOCAL_OUT, NF_DROP))
    n.flush(nf.NF_INET_LOCAL_IN)
    assert [r.hook for r in n.rules()] == [nf.NF_INET_LOCAL_OUT]
    n.flush()
    assert n.rules() == []
