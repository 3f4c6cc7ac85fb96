"""`pktpath ip6tables`: ip6tables(8) over a running host — -L (with -v, -n, -x,
--line-numbers, -t), -A, -I, -D, -F, -Z, -P — in the words and columns of Debian's
ip6tables v1.8.9 (nf_tables): iptables/xshared.c's print_rule_details and command
checks, libxtables' xtables_print_num, xtables_parse_protocol and xtables_parse_port,
checked line by line against it.

The IPv6 family's table (services/l3/netfilter6.py): its rules, policies and counters
are apart from `pktpath iptables`' as ip6_tables' are from ip_tables' in Linux. One
chain per netfilter hook, whatever table names it: filter shows INPUT, FORWARD and
OUTPUT, mangle all five hooks, raw PREROUTING and OUTPUT, each the same chain. No nat
table; targets ACCEPT and DROP (no REJECT, no rule without a target); matches -s and -d
(IPv6 prefixes, a length or a contiguous mask, host bits masked away as ip6tables
does), -p (a number, or a name from /etc/protocols or libxtables' list: icmpv6,
ipv6-icmp: the upper-layer protocol after the extension headers) and, with -p tcp or
-p udp, --sport and --dport (one port, a number or a service name).
"""

import ipaddress
import socket
import sys
from dataclasses import dataclass, field

from google.protobuf import empty_pb2

from pktpath.pb import l3_pb2
from pktpath.tools.iptables import (
    CHAINS, COMMANDS, TABLES, TARGET_NAMES, TARGETS, IptablesError, _num, _plain, _port, _words, header,
)

PROG = "ip6tables v1.8.9 (pktpath)"
TRY = "Try `ip6tables -h' or 'ip6tables --help' for more information."
FAMILY = l3_pb2.NFPROTO_IPV6
# libxtables' xtables_chain_protos: the names it knows without /etc/protocols
CHAIN_PROTOS = {"tcp": 6, "sctp": 132, "udp": 17, "udplite": 136, "icmp": 1, "ipv6-icmp": 58, "icmpv6": 58,
                "esp": 50, "ah": 51, "ipv6-mh": 135, "mh": 135, "all": 0}
# ip6tables' is_exthdr(): -p of these never matches (the walk passes them), and it says so
EXTHDRS = (43, 44, 51, 60)
PORT_PROTOCOLS = {6: "tcp", 17: "udp"}


def usage(message: str) -> IptablesError:
    """A bad command line: ip6tables' PARAMETER_PROBLEM, exit 2."""
    return IptablesError(f"{message}\n{TRY}", 2)


def problem(message: str) -> IptablesError:
    return usage(f"{PROG}: {message}")


@dataclass
class Command:
    action: str = ""
    chain: str = ""
    position: int = 0
    target: str = ""
    table: str = "filter"
    rule: l3_pb2.Rule = field(default_factory=lambda: l3_pb2.Rule(family=FAMILY))
    protocol: str = ""  # -p as given (lower-cased, as ip6tables keeps it)
    verbose: bool = False
    numeric: bool = False
    exact: bool = False
    line_numbers: bool = False
    warnings: list[str] = field(default_factory=list)


def parse(argv: list[str]) -> Command:
    words, cmd = _words(argv), Command()
    seen: set[str] = set()
    i = 0

    def value(option: str) -> str:
        nonlocal i
        i += 1
        if i >= len(words):
            raise problem(f"option \"{option}\" requires an argument")
        return words[i]

    def once(flag: str) -> None:
        if flag in seen:
            raise problem(f"multiple {flag} flags not allowed")
        seen.add(flag)

    while i < len(words):
        w = words[i]
        if w in COMMANDS:
            if cmd.action:
                raise problem(f"Cannot use -{w.lstrip('-')[0].upper()} with -{cmd.action[0].upper()}")
            cmd.action = COMMANDS[w]
            if cmd.action in ("append", "insert", "delete", "policy"):
                if i + 1 >= len(words) or words[i + 1].startswith("-"):
                    raise problem(f"option \"{w}\" requires an argument")
            if i + 1 < len(words) and not words[i + 1].startswith("-"):
                i += 1
                cmd.chain = words[i]
                if cmd.action in ("insert", "delete") and i + 1 < len(words) and words[i + 1].isdigit():
                    i += 1
                    cmd.position = int(words[i])
                    if cmd.position == 0:
                        raise problem(f"Invalid rule number `{words[i]}'")
                elif cmd.action == "policy":
                    if i + 1 >= len(words) or words[i + 1].startswith("-"):
                        raise problem("-P requires a chain and a policy")
                    i += 1
                    cmd.target = words[i]
        elif w in ("-t", "--table"):
            cmd.table = value(w)
        elif w in ("-v", "--verbose"):
            cmd.verbose = True
        elif w in ("-n", "--numeric"):
            cmd.numeric = True
        elif w in ("-x", "--exact"):
            cmd.exact = True
        elif w == "--line-numbers":
            cmd.line_numbers = True
        elif w in ("-s", "--source", "--src"):
            once("-s")
            cmd.rule.src = _prefix(value(w))
        elif w in ("-d", "--destination", "--dst"):
            once("-d")
            cmd.rule.dst = _prefix(value(w))
        elif w in ("-p", "--protocol"):
            once("-p")
            cmd.protocol = value(w).lower()  # ip6tables lower-cases it: -p ICMPv6 is icmpv6
            cmd.rule.protocol = _protocol(cmd.protocol)
        elif w in ("--sport", "--source-port", "--dport", "--destination-port"):
            name = PORT_PROTOCOLS.get(cmd.rule.protocol)
            if name is None:  # the tcp and udp matches come with -p tcp / -p udp
                raise problem(f"unknown option \"{w}\"")
            long = "--source-port" if w in ("--sport", "--source-port") else "--destination-port"
            if long in seen:
                raise problem(f"Only one `{long}' allowed")
            seen.add(long)
            port = _port_number(value(w), name)
            if long == "--source-port":
                cmd.rule.sport = port
            else:
                cmd.rule.dport = port
        elif w in ("-j", "--jump"):
            once("-j")
            cmd.target = value(w)
        elif w in ("-m", "--match"):
            match = value(w)
            if match in ("tcp", "udp"):  # the protocol's own ports, which -p already brings
                if PORT_PROTOCOLS.get(cmd.rule.protocol) != match:
                    raise problem(f"{match.upper()} match requires '-p {match}'")
            else:
                raise problem(f"Couldn't load match `{match}':No such file or directory\n")
        elif w.startswith("-"):
            raise problem(f"unknown option \"{w}\"")
        else:
            raise usage(f"Bad argument `{w}'")
        i += 1
    if not cmd.action:
        raise problem("no command specified")
    if cmd.table not in TABLES:
        raise IptablesError(f"{PROG}: table '{cmd.table}' does not exist (pktpath models {', '.join(TABLES)})\n"
                            f"Perhaps ip6tables or your kernel needs to be upgraded.", 3)
    if cmd.target and cmd.action != "policy" and cmd.target not in TARGETS:
        if cmd.target in ("REJECT", "RETURN", "LOG", "MARK", "QUEUE"):
            raise problem(f"target {cmd.target} is not modelled here: -j ACCEPT or -j DROP")
        raise problem(f"Chain '{cmd.target}' does not exist")
    if cmd.action in ("append", "insert") and not cmd.target:
        raise problem("a rule needs a target here: -j ACCEPT or -j DROP (pktpath keeps no rule without one)")
    if cmd.rule.protocol in EXTHDRS and cmd.action in ("append", "insert", "delete"):
        cmd.warnings.append(f"Warning: never matched protocol: {cmd.protocol}. use extension match instead.")
    if cmd.chain in CHAINS:
        cmd.rule.hook = CHAINS[cmd.chain]
    cmd.rule.target = TARGETS.get(cmd.target, 0)
    cmd.rule.position = cmd.position
    return cmd


def _protocol(text: str) -> int:
    """xtables_parse_protocol(): a number 0-255, "all", an /etc/protocols name, or one of libxtables'."""
    try:
        number = int(text, 0) if text[:1].isdigit() else -1
    except ValueError:
        number = -1
    if 0 <= number <= 255:
        return number
    if text == "all":  # before any lookup, as libxtables does
        return 0
    try:
        return socket.getprotobyname(text)
    except OSError:
        pass
    if text in CHAIN_PROTOS:
        return CHAIN_PROTOS[text]
    raise problem(f"unknown protocol \"{text}\" specified")


def _port_number(text: str, proto: str) -> int:
    """xtables_parse_port(): a service name of the protocol, or a number 0-65535."""
    try:
        return socket.getservbyname(text, proto)
    except OSError:
        pass
    try:
        port = int(text, 0) if text[:1].isdigit() else -1
    except ValueError:
        port = -1
    if not 0 <= port <= 0xFFFF:
        why = " (pktpath matches one port, not a range)" if ":" in text else ""
        raise problem(f"invalid port/service `{text}' specified{why}")
    return port


def _prefix(text: str) -> str:
    """xtables_ip6parse_any(): ADDR[/LEN or /MASK] as the network ip6tables keeps (host bits masked)."""
    addr, slash, mask = text.rpartition("/") if "/" in text else (text, "", "")
    if slash:
        if ":" in mask:
            try:
                bits = int(ipaddress.IPv6Address(mask))
            except ValueError:
                raise problem(f"invalid mask `{mask}' specified") from None
            plen = 128 - (~bits & (1 << 128) - 1).bit_length()
            if bits != ((1 << plen) - 1) << (128 - plen):
                raise problem(f"invalid mask `{mask}' specified (pktpath takes a contiguous one)")
        elif mask.isdigit() and int(mask) <= 128:
            plen = int(mask)
        else:
            raise problem(f"invalid mask `{mask}' specified")
    else:
        plen = 128
    try:
        ip = ipaddress.IPv6Address(addr.partition("%")[0])
    except ValueError:
        raise problem(f"host/network `{addr}' not found") from None
    return str(ipaddress.IPv6Network((ip, plen), strict=False))


# -- listing ------------------------------------------------------------------------------------
def _protocols_file() -> dict[int, str]:
    """/etc/protocols' names by number, as getprotobynumber() finds them (the first line wins)."""
    names: dict[int, str] = {}
    try:
        with open("/etc/protocols") as f:
            for line in f:
                fields = line.partition("#")[0].split()
                if len(fields) >= 2 and fields[1].isdigit():
                    names.setdefault(int(fields[1]), fields[0])
    except OSError:
        pass
    return names


_PROTOCOL_NAMES: dict[int, str] | None = None


def proto_name(proto: int) -> str:
    """proto_to_name(): getprotobynumber()'s name, else libxtables' own, else the number."""
    global _PROTOCOL_NAMES
    if _PROTOCOL_NAMES is None:
        _PROTOCOL_NAMES = _protocols_file()
    if proto and proto in _PROTOCOL_NAMES:
        return _PROTOCOL_NAMES[proto]
    return next((name for name, n in CHAIN_PROTOS.items() if n == proto), str(proto))


def _addr(prefix: str, numeric: bool) -> str:
    if not prefix or prefix == "::/0":
        return "::/0" if numeric else "anywhere"
    return prefix.removesuffix("/128")


def rule_line(r, cmd: Command, number: int) -> str:
    line = f"{number:<4} " if cmd.line_numbers else ""
    if cmd.verbose:
        line += f"{_num(r.pkts, cmd.exact)} {_num(r.bytes, cmd.exact)} "
    proto = str(r.protocol) if cmd.numeric else proto_name(r.protocol)
    line += f"{TARGET_NAMES.get(r.target, str(r.target)):<10} {proto:<4} {'--':<3} "
    if cmd.verbose:
        anydev = "*" if cmd.numeric else "any"
        line += f"{anydev:<6} {anydev:<7} "
    line += f"{_addr(r.src, cmd.numeric):<20} {_addr(r.dst, cmd.numeric):<19} "
    if r.sport or r.dport:
        name = PORT_PROTOCOLS[r.protocol]
        ports = [f"{k}:{_port(v, name, cmd.numeric)}" for k, v in (("spt", r.sport), ("dpt", r.dport)) if v]
        line += f" {name} {' '.join(ports)}"
    return line


def listing(table: l3_pb2.RuleTable, cmd: Command) -> list[str]:
    """ip6tables -L [CHAIN]: each chain of the table, its policy and its rules."""
    if cmd.chain and cmd.chain not in TABLES[cmd.table]:
        raise IptablesError(f"{PROG}: chain `{cmd.chain}' in table `{cmd.table}' is incompatible, use 'nft' tool.")
    policies = {p.hook: p for p in table.policies if p.family == FAMILY}
    out: list[str] = []
    for chain in [cmd.chain] if cmd.chain else TABLES[cmd.table]:
        hook = CHAINS[chain]
        p = policies.get(hook)
        policy = TARGET_NAMES.get(p.policy, "ACCEPT") if p else "ACCEPT"
        counts = f" {_plain(p.pkts if p else 0)} packets, {_plain(p.bytes if p else 0)} bytes" if cmd.verbose else ""
        if out:
            out.append("")
        out += [f"Chain {chain} (policy {policy}{counts})", header(cmd).rstrip()]
        rules = (r for r in table.rules if r.hook == hook and r.family == FAMILY)
        out += [rule_line(r, cmd, n).rstrip() for n, r in enumerate(rules, 1)]
    return out


def run(view, argv: list[str], err=None) -> list[str]:
    """Carry out one ip6tables command on the host; the lines it prints (its warnings to err,
    stderr by default). Refusals the host gives are grpc.RpcErrors: say() words them."""
    cmd = parse(argv)
    for warning in cmd.warnings:
        print(warning, file=err or sys.stderr)
    l3 = view.stub["l3"]
    if cmd.action == "list":
        return listing(l3.GetRules(empty_pb2.Empty(), timeout=5), cmd)
    chains = TABLES[cmd.table]
    if cmd.chain and cmd.chain not in chains:
        raise IptablesError("ip6tables: Bad built-in chain name." if cmd.action == "policy"
                            else "ip6tables: No chain/target/match by that name.")
    if cmd.action in ("append", "insert"):
        if cmd.action == "insert" and not cmd.rule.position:
            cmd.rule.position = 1  # -I CHAIN: at the head
        l3.RuleAdd(cmd.rule, timeout=5)
    elif cmd.action == "delete":
        if not cmd.position and not cmd.target:  # a rule without a target: none such can be here
            raise IptablesError(BAD_RULE)
        l3.RuleDel(cmd.rule, timeout=5)
    elif cmd.action == "policy":
        if cmd.target not in TARGETS:
            raise IptablesError("ip6tables: Bad policy name. Run `dmesg' for more information.")
        l3.SetPolicy(l3_pb2.ChainPolicy(hook=cmd.rule.hook, policy=TARGETS[cmd.target], family=FAMILY), timeout=5)
    elif cmd.action in ("flush", "zero"):
        call = l3.RuleFlush if cmd.action == "flush" else l3.ZeroCounters
        for chain in [cmd.chain] if cmd.chain else chains:  # the table's chains, not every hook
            call(l3_pb2.Chain(hook=CHAINS[chain], family=FAMILY), timeout=5)
    return []


BAD_RULE = "ip6tables: Bad rule (does a matching rule exist in that chain?)."


def say(exc, argv: list[str]) -> str | None:
    """What ip6tables says when the host refuses a command (a grpc.RpcError), or None."""
    import grpc

    code = exc.code()
    if code == grpc.StatusCode.OUT_OF_RANGE:
        return "ip6tables: Index of insertion too big."
    if code == grpc.StatusCode.NOT_FOUND:
        cmd = parse(argv)
        return "ip6tables: Index of deletion too big." if cmd.position else BAD_RULE
    return None
