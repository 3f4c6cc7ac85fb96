"""`pktpath iptables`: iptables(8) over a running host — -L (with -v, -n, -x,
--line-numbers, -t), -A, -I, -D, -F, -Z, -P — in iptables' own words and columns
(iptables/iptables.c print_firewall, libxtables xtables_print_num).

pktpath has one chain per netfilter hook, whatever table names it: the filter table
shows INPUT, FORWARD and OUTPUT, mangle all five hooks, raw PREROUTING and OUTPUT, each
the same chain. There is no nat table, and targets are ACCEPT and DROP.
"""

import socket
from dataclasses import dataclass, field

from google.protobuf import empty_pb2

from pktpath.pb import l3_pb2

CHAINS = {"PREROUTING": l3_pb2.NF_INET_PRE_ROUTING, "INPUT": l3_pb2.NF_INET_LOCAL_IN,
          "FORWARD": l3_pb2.NF_INET_FORWARD, "OUTPUT": l3_pb2.NF_INET_LOCAL_OUT,
          "POSTROUTING": l3_pb2.NF_INET_POST_ROUTING}
TABLES = {"filter": ("INPUT", "FORWARD", "OUTPUT"), "mangle": tuple(CHAINS), "raw": ("PREROUTING", "OUTPUT")}
TARGETS = {"ACCEPT": l3_pb2.NF_ACCEPT, "DROP": l3_pb2.NF_DROP}
TARGET_NAMES = {v: k for k, v in TARGETS.items()}
PROTOCOLS = {"all": 0, "icmp": 1, "tcp": 6, "udp": 17}
PROTOCOL_NAMES = {v: k for k, v in PROTOCOLS.items()}
COMMANDS = {"-L": "list", "--list": "list", "-A": "append", "--append": "append", "-I": "insert",
            "--insert": "insert", "-D": "delete", "--delete": "delete", "-F": "flush", "--flush": "flush",
            "-Z": "zero", "--zero": "zero", "-P": "policy", "--policy": "policy"}


class IptablesError(ValueError):
    """What iptables would say, and exit 1 (2 for a bad command line)."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Command:
    action: str = ""
    chain: str = ""
    position: int = 0
    target: str = ""
    table: str = "filter"
    rule: l3_pb2.Rule = field(default_factory=l3_pb2.Rule)
    verbose: bool = False
    numeric: bool = False
    exact: bool = False
    line_numbers: bool = False


def _words(argv: list[str]) -> list[str]:
    """-nvL is -n -v -L, as iptables' getopt takes it."""
    out = []
    for w in argv:
        if w.startswith("-") and not w.startswith("--") and len(w) > 2 and w[1:].isalpha():
            out += [f"-{c}" for c in w[1:]]
        else:
            out.append(w)
    return out


def parse(argv: list[str]) -> Command:
    words, cmd = _words(argv), Command()
    i = 0

    def value(what: str) -> str:
        nonlocal i
        i += 1
        if i >= len(words):
            raise IptablesError(f"iptables v1.8.9 (pktpath): option \"{words[i - 1]}\" requires an argument ({what})",
                                2)
        return words[i]

    while i < len(words):
        w = words[i]
        if w in COMMANDS:
            if cmd.action:
                raise IptablesError("iptables v1.8.9 (pktpath): Cannot use two commands at once", 2)
            cmd.action = COMMANDS[w]
            if i + 1 < len(words) and not words[i + 1].startswith("-"):
                cmd.chain = value("chain")
                if cmd.action in ("insert", "delete") and i + 1 < len(words) and words[i + 1].isdigit():
                    cmd.position = int(value("rule number"))
                elif cmd.action == "policy":
                    cmd.target = value("target")
        elif w in ("-t", "--table"):
            cmd.table = value("table")
        elif w in ("-v", "--verbose"):
            cmd.verbose = True
        elif w in ("-n", "--numeric"):
            cmd.numeric = True
        elif w in ("-x", "--exact"):
            cmd.exact = True
        elif w == "--line-numbers":
            cmd.line_numbers = True
        elif w in ("-s", "--source", "--src"):
            cmd.rule.src = _prefix(value("address"))
        elif w in ("-d", "--destination", "--dst"):
            cmd.rule.dst = _prefix(value("address"))
        elif w in ("-p", "--protocol"):
            proto = value("protocol")
            cmd.rule.protocol = PROTOCOLS[proto] if proto in PROTOCOLS else _number(proto, "protocol", 255)
        elif w in ("--sport", "--source-port"):
            cmd.rule.sport = _number(value("port"), "port", 65535)
        elif w in ("--dport", "--destination-port"):
            cmd.rule.dport = _number(value("port"), "port", 65535)
        elif w in ("-j", "--jump"):
            cmd.target = value("target")
        elif w in ("-m", "--match"):
            value("match")  # -m tcp / -m udp: the protocol's own ports, which -p already brings
        else:
            raise IptablesError(f"iptables v1.8.9 (pktpath): unknown option \"{w}\"", 2)
        i += 1
    if not cmd.action:
        raise IptablesError("iptables v1.8.9 (pktpath): no command specified", 2)
    if cmd.table not in TABLES:
        raise IptablesError(f"iptables v1.8.9 (pktpath): can't initialize iptables table `{cmd.table}': "
                            f"Table does not exist (pktpath models {', '.join(TABLES)})", 3)
    if cmd.chain and cmd.chain not in TABLES[cmd.table]:
        raise IptablesError("iptables: No chain/target/match by that name.")
    if cmd.action in ("append", "insert", "delete", "policy") and not cmd.chain:
        raise IptablesError(f"iptables v1.8.9 (pktpath): -{cmd.action[0].upper()} needs a chain", 2)
    if (cmd.action in ("append", "insert", "policy") or (cmd.action == "delete" and not cmd.position)) \
            and cmd.target not in TARGETS:
        raise IptablesError("iptables v1.8.9 (pktpath): a target is needed: -j ACCEPT or -j DROP"
                            if not cmd.target else f"iptables: No chain/target/match by that name ({cmd.target}).", 2)
    if (cmd.rule.sport or cmd.rule.dport) and cmd.rule.protocol not in (6, 17):
        raise IptablesError("iptables v1.8.9 (pktpath): unknown option \"--dport\": a port needs -p tcp or -p udp", 2)
    if cmd.chain:
        cmd.rule.hook = CHAINS[cmd.chain]
    cmd.rule.target = TARGETS.get(cmd.target, 0)
    cmd.rule.position = cmd.position
    return cmd


def _number(text: str, what: str, top: int) -> int:
    if not text.isdigit() or int(text) > top:
        raise IptablesError(f"iptables v1.8.9 (pktpath): invalid {what} \"{text}\"", 2)
    return int(text)


def _prefix(text: str) -> str:
    return text if "/" in text else f"{text}/32"


# -- listing ------------------------------------------------------------------------------------
def _num(n: int, exact: bool) -> str:
    """xtables_print_num(): exact with -x, else 5 digits then K, M, G, T."""
    if exact:
        return f"{n:>8}"
    if n <= 99999:
        return f"{n:>5}"
    for unit in "KMGT":
        n = (n + 500) // 1000
        if n <= 9999 or unit == "T":
            return f"{n:>4}{unit}"
    raise AssertionError("unreachable")


def _plain(n: int) -> str:
    """The chain line's counts: the same units, no padding."""
    return _num(n, False).strip() if n > 99999 else str(n)


def _addr(prefix: str, numeric: bool) -> str:
    if not prefix or prefix == "0.0.0.0/0":
        return "0.0.0.0/0" if numeric else "anywhere"
    return prefix.removesuffix("/32")


def _port(port: int, proto: str, numeric: bool) -> str:
    if numeric:
        return str(port)
    try:
        return socket.getservbyport(port, proto)
    except OSError:
        return str(port)


def rule_line(r, cmd: Command, number: int) -> str:
    line = f"{number:<4} " if cmd.line_numbers else ""
    if cmd.verbose:
        line += f"{_num(r.pkts, cmd.exact)} {_num(r.bytes, cmd.exact)} "
    proto = str(r.protocol) if cmd.numeric else PROTOCOL_NAMES.get(r.protocol, str(r.protocol))
    line += f"{TARGET_NAMES.get(r.target, str(r.target)):<10} {proto:<4} {'--':<3} "
    if cmd.verbose:
        line += f"{'*':<6} {'*':<7} "
    line += f"{_addr(r.src, cmd.numeric):<20} {_addr(r.dst, cmd.numeric):<19} "
    if r.sport or r.dport:
        name = PROTOCOL_NAMES[r.protocol]
        ports = [f"{k}:{_port(v, name, cmd.numeric)}" for k, v in (("spt", r.sport), ("dpt", r.dport)) if v]
        line += f" {name} {' '.join(ports)}"
    return line


def header(cmd: Command) -> str:
    line = "num  " if cmd.line_numbers else ""
    if cmd.verbose:
        line += "    pkts      bytes " if cmd.exact else " pkts bytes "
    line += "target     prot opt "
    if cmd.verbose:
        line += "in     out     "
    return line + "source               destination         "


def listing(table: l3_pb2.RuleTable, cmd: Command) -> list[str]:
    """iptables -L [CHAIN]: each chain of the table, its policy and its rules."""
    policies = {p.hook: p for p in table.policies if p.family != l3_pb2.NFPROTO_IPV6}  # ip6tables' are apart
    out: list[str] = []
    for chain in [cmd.chain] if cmd.chain else TABLES[cmd.table]:
        hook = CHAINS[chain]
        p = policies.get(hook)
        policy = TARGET_NAMES.get(p.policy, "ACCEPT") if p else "ACCEPT"
        counts = f" {_plain(p.pkts if p else 0)} packets, {_plain(p.bytes if p else 0)} bytes" if cmd.verbose else ""
        if out:
            out.append("")
        out += [f"Chain {chain} (policy {policy}{counts})", header(cmd).rstrip()]
        rules = (r for r in table.rules if r.hook == hook and r.family != l3_pb2.NFPROTO_IPV6)
        out += [rule_line(r, cmd, n).rstrip() for n, r in enumerate(rules, 1)]
    return out


def run(view, argv: list[str]) -> list[str]:
    """Carry out one iptables command on the host; the lines it prints."""
    cmd = parse(argv)
    l3 = view.stub["l3"]
    if cmd.action == "list":
        return listing(l3.GetRules(empty_pb2.Empty(), timeout=5), cmd)
    chain = l3_pb2.Chain(hook=CHAINS[cmd.chain]) if cmd.chain else l3_pb2.Chain()
    chains = [CHAINS[c] for c in TABLES[cmd.table]]
    if cmd.action in ("append", "insert"):
        if cmd.action == "insert" and not cmd.rule.position:
            cmd.rule.position = 1  # -I CHAIN: at the head
        l3.RuleAdd(cmd.rule, timeout=5)
    elif cmd.action == "delete":
        l3.RuleDel(cmd.rule, timeout=5)
    elif cmd.action == "policy":
        l3.SetPolicy(l3_pb2.ChainPolicy(hook=cmd.rule.hook, policy=TARGETS[cmd.target]), timeout=5)
    elif cmd.action in ("flush", "zero"):
        call = l3.RuleFlush if cmd.action == "flush" else l3.ZeroCounters
        for hook in [chain.hook] if cmd.chain else chains:  # the table's chains, not every hook
            call(l3_pb2.Chain(hook=hook), timeout=5)
    return []
