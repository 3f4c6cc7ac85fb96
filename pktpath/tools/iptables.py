"""`pktpath iptables` and `pktpath ip6tables`: iptables(8) and ip6tables(8) over a running host
— -L (with -v, -n, -x, --line-numbers, -t, a chain, a rule number), -A, -I, -D, -F, -Z, -P — one
program for both families, as iptables-nft's is (xtables-nft-multi: iptables/xshared.c's do_parse,
add_command, generic_opt_check and print_rule_details; libxtables' xtables_ipparse_any,
xtables_ip6parse_any, xtables_parse_protocol, xtables_parse_port, xtables_strtoui and
xtables_print_num), in the words, columns and exit codes of Debian's iptables and ip6tables v1.8.9
(nf_tables), checked line by line against them. A Family says what differs: addresses and their
names, the program's name, the other family's -4/-6 it refuses, ip6tables' warning about
extension-header protocols.

Each family's rules, policies and counters are a table of their own on the host
(services/l3/netfilter.py, netfilter6.py), as ip_tables' and ip6_tables' are in Linux. One chain
per netfilter hook, whatever table names it: filter shows INPUT, FORWARD and OUTPUT, mangle all
five hooks, raw PREROUTING and OUTPUT, each the same chain. No nat table; targets ACCEPT and DROP
(no REJECT, no rule without a target, no `!`, no -Z of one rule); matches -s and -d (a prefix of the family, as a
length or a contiguous mask, host bits masked away as iptables does, a name resolved as it
resolves one), -p (a number, or a name from /etc/protocols or libxtables' list) and, with -p tcp
or -p udp (-m tcp / -m udp alike), --sport and --dport (one port 1-65535, a number or a service).
"""

import ipaddress
import re
import socket
import sys
from dataclasses import dataclass, field
from functools import lru_cache

from google.protobuf import empty_pb2

from pktpath.pb import l3_pb2


@dataclass(frozen=True)
class Family:
    name: str                     # the program: the first word of its messages
    nfproto: int                  # its table on the host
    af: int
    other: str                    # the other family's -4/-6, which it refuses
    exthdrs: tuple[int, ...] = ()  # ip6tables' is_exthdr(): -p of these never matches, and it says so

    @property
    def bits(self) -> int:
        return 32 if self.af == socket.AF_INET else 128

    @property
    def prog(self) -> str:
        return f"{self.name} v1.8.9 (pktpath)"

    @property
    def try_help(self) -> str:
        return f"Try `{self.name} -h' or '{self.name} --help' for more information."


IPV4 = Family("iptables", l3_pb2.NFPROTO_IPV4, socket.AF_INET, "-6")
IPV6 = Family("ip6tables", l3_pb2.NFPROTO_IPV6, socket.AF_INET6, "-4", exthdrs=(43, 44, 51, 60))

CHAINS = {"PREROUTING": l3_pb2.NF_INET_PRE_ROUTING, "INPUT": l3_pb2.NF_INET_LOCAL_IN,
          "FORWARD": l3_pb2.NF_INET_FORWARD, "OUTPUT": l3_pb2.NF_INET_LOCAL_OUT,
          "POSTROUTING": l3_pb2.NF_INET_POST_ROUTING}
TABLES = {"filter": ("INPUT", "FORWARD", "OUTPUT"), "mangle": tuple(CHAINS), "raw": ("PREROUTING", "OUTPUT")}
TARGETS = {"ACCEPT": l3_pb2.NF_ACCEPT, "DROP": l3_pb2.NF_DROP}
TARGET_NAMES = {v: k for k, v in TARGETS.items()}
OTHER_TARGETS = ("REJECT", "RETURN", "LOG", "MARK", "QUEUE", "NFQUEUE", "CONNMARK", "TCPMSS", "NOTRACK", "CT")
# libxtables' xtables_chain_protos: the names it knows without /etc/protocols, in its order
CHAIN_PROTOS = {"tcp": 6, "sctp": 132, "udp": 17, "udplite": 136, "icmp": 1, "ipv6-icmp": 58, "icmpv6": 58,
                "esp": 50, "ah": 51, "ipv6-mh": 135, "mh": 135, "all": 0}
PORT_MATCHES = {6: "tcp", 17: "udp"}
# the commands, by the letter iptables names them with; -D and -Z with a rule number are their own
COMMANDS = {"-A": "A", "--append": "A", "-I": "I", "--insert": "I", "-D": "D", "--delete": "D", "-L": "L",
            "--list": "L", "-F": "F", "--flush": "F", "-Z": "Z", "--zero": "Z", "-P": "P", "--policy": "P"}
TOGETHER = {"L": "Z", "Z": "L"}  # add_command(): -L and -Z may be given together, nothing else
# generic_opt_check()'s commands_v_options: the options (-0 is --line-numbers) each command refuses
ILLEGAL = {"A": "nx0", "I": "nx0", "D": "nx0", "D#": "nsdpjx0", "L": "sdpj", "F": "nsdpjx0", "Z": "nsdpjx0",
           "Z#": "nsdpjx0", "P": "nsdpjx0"}
OPTION_ORDER = "nsdpjvx0"
# getopt's short options: flags, those that take an argument (a cluster's rest is it: -AINPUT), those that may
SHORT_FLAGS, SHORT_REQUIRED, SHORT_OPTIONAL = "nvx46", "ADIPtsdpjm", "LFZ"
LONG_REQUIRED = ("--append", "--delete", "--insert", "--policy", "--table", "--source", "--src", "--destination",
                 "--dst", "--protocol", "--jump", "--match", "--sport", "--source-port", "--dport",
                 "--destination-port")


class IptablesError(ValueError):
    """What iptables says, and its exit status: 1 for what the table refuses, 2 for a bad command
    line (PARAMETER_PROBLEM), 3 for a missing table, 4 for what the kernel refuses."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Match:
    """A tcp or udp match (-m tcp, or the one -p tcp brings): its ports."""
    name: str
    sport: int = 0
    dport: int = 0


@dataclass
class Command:
    family: Family = IPV4
    commands: str = ""            # the command letters given: "A", "L", "LZ", "D#" ...
    chain: str = ""
    rulenum: int = 0
    policy: str = ""
    target: str = ""
    table: str = "filter"
    rule: l3_pb2.Rule = field(default_factory=l3_pb2.Rule)
    protocol: str = ""            # -p as given, lower-cased as iptables keeps it
    matches: list[Match] = field(default_factory=list)
    options: str = ""             # the option letters given, for generic_opt_check
    verbose: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def numeric(self) -> bool:
        return "n" in self.options

    @property
    def exact(self) -> bool:
        return "x" in self.options

    @property
    def line_numbers(self) -> bool:
        return "0" in self.options

    @property
    def action(self) -> str:
        """The command carried out: -L's when -L and -Z come together."""
        return "L" if "L" in self.commands else self.commands

    def problem(self, message: str) -> IptablesError:
        """PARAMETER_PROBLEM: the program's name, the message, how to get help; exit 2."""
        return usage(f"{self.family.prog}: {message}", self.family)


def usage(message: str, family: Family) -> IptablesError:
    return IptablesError(f"{message}\n{family.try_help}", 2)


def _expand(argv: list[str]) -> list[str]:
    """getopt_long's view of argv as one word per option: -nvL is -n -v -L, -AINPUT is -A INPUT,
    --table=raw is --table raw; a cluster with a letter iptables lacks stays whole, as it names it."""
    out = []
    for w in argv:
        if w.startswith("--") and "=" in w and w.partition("=")[0] in LONG_REQUIRED:
            out += list(w.split("=", 1))
        elif w.startswith("-") and not w.startswith("--") and len(w) > 2 and w[1] != "j":  # -jDROP: a target
            letters, words = w[1:], []
            for n, c in enumerate(letters):
                if c not in SHORT_FLAGS + SHORT_REQUIRED + SHORT_OPTIONAL:
                    words = [w]  # iptables names the whole word: unknown option "-nq"
                    break
                words.append(f"-{c}")
                if c in SHORT_REQUIRED + SHORT_OPTIONAL:
                    words += [letters[n + 1:]] if letters[n + 1:] else []
                    break
            out += words
        else:
            out.append(w)
    return out


def parse(argv: list[str], family: Family = IPV4, err=None) -> Command:
    """do_parse(): the command line as iptables takes it, its refusals in iptables' order (its
    warnings to err, stderr by default, whether it is refused or not)."""
    words, cmd = _expand(argv), Command(family=family)
    i = 0

    def required(option: str) -> str:
        nonlocal i
        i += 1
        if i >= len(words):
            raise cmd.problem(f"option \"{option}\" requires an argument")
        return words[i]

    def has_arg() -> bool:  # xs_has_arg(): an optional argument is a next word not starting - or !
        return i + 1 < len(words) and not words[i + 1].startswith(("-", "!"))

    def next_word() -> str:
        nonlocal i
        i += 1
        return words[i]

    def rulenum(text: str) -> int:
        number = _strtoui(text, 1, 2**31 - 1)
        if number is None:
            raise cmd.problem(f"Invalid rule number `{text}'")
        return number

    def option(letter: str) -> None:  # set_option()
        if letter in cmd.options:
            raise cmd.problem(f"multiple -{letter} flags not allowed")
        cmd.options += letter

    while i < len(words):
        w = words[i]
        if w in COMMANDS:
            letter = COMMANDS[w]
            others = cmd.commands.replace("#", "").replace(TOGETHER.get(letter, "-"), "")
            if others:
                raise cmd.problem(f"Cannot use -{letter} with -{others[0]}")
            if letter in "ADIP":
                cmd.chain = required(w)
            elif has_arg():
                cmd.chain = next_word()
            if letter in "DILZ" and has_arg():
                cmd.rulenum = rulenum(next_word())
                letter += "#" if letter in "DZ" else ""
            elif letter == "P":
                if not has_arg():
                    raise cmd.problem("-P requires a chain and a policy")
                cmd.policy = next_word()
            cmd.commands += letter
        elif w in ("-t", "--table"):
            cmd.table = required(w)
        elif w in ("-v", "--verbose"):
            cmd.verbose += 1
            cmd.options += "" if "v" in cmd.options else "v"
        elif w in ("-n", "--numeric"):
            option("n")
        elif w in ("-x", "--exact"):
            option("x")
        elif w == "--line-numbers":
            option("0")
        elif w in ("-4", "-6", "--ipv4", "--ipv6"):
            if w[-1] == family.other[-1]:  # the other family's: only how to get help
                raise IptablesError(family.try_help, 2)
        elif w in ("-s", "--source", "--src", "-d", "--destination", "--dst"):
            letter = "s" if w in ("-s", "--source", "--src") else "d"
            option(letter)
            prefix = _prefix(required(w), cmd)
            if letter == "s":
                cmd.rule.src = prefix
            else:
                cmd.rule.dst = prefix
        elif w in ("-p", "--protocol"):
            option("p")
            cmd.protocol = required(w).lower()  # iptables lower-cases it: -p TCP is tcp
            cmd.rule.protocol = _protocol(cmd.protocol, cmd)
        elif w in ("-j", "--jump") or w.startswith("-j"):
            option("j")
            cmd.target = required(w) if w in ("-j", "--jump") else w  # -jDROP: iptables names the whole word
        elif w in ("-m", "--match"):
            name = required(w)
            if name not in PORT_MATCHES.values():
                raise cmd.problem(f"Couldn't load match `{name}':No such file or directory\n")
            cmd.matches.append(Match(name))
        elif w in ("--sport", "--source-port", "--dport", "--destination-port"):
            if not cmd.matches and cmd.rule.protocol in PORT_MATCHES:  # -p tcp brings the tcp match
                cmd.matches.append(Match(PORT_MATCHES[cmd.rule.protocol]))
            if not cmd.matches:
                raise cmd.problem(f"unknown option \"{w}\"")
            match, source = cmd.matches[-1], w in ("--sport", "--source-port")
            port = _port(required(w), match.name, cmd)
            if match.sport if source else match.dport:
                long = f"--{'source' if source else 'destination'}-port"
                raise cmd.problem(f"Only one `{long}' allowed" if match.name == "tcp" else
                                  f"udp: option \"{long}\" can only be used once.\n")
            if source:
                match.sport = port
            else:
                match.dport = port
        elif w.startswith("!"):
            raise cmd.problem("`!' (inversion) is not modelled here")
        elif w.startswith("-"):
            raise cmd.problem(f"unknown option \"{w}\"")
        else:
            raise usage(f"Bad argument `{w}'", family)
        i += 1
    try:
        _check(cmd)
    finally:
        for warning in cmd.warnings:
            print(warning, file=err or sys.stderr)
    return cmd


def _check(cmd: Command) -> None:
    """What do_parse checks after the words, in its order."""
    if not cmd.commands:
        raise cmd.problem("no command specified")
    if cmd.rule.protocol in cmd.family.exthdrs and "p" in cmd.options:
        cmd.warnings.append(f"Warning: never matched protocol: {cmd.protocol}. use extension match instead.")
    for letter in OPTION_ORDER:
        if letter in cmd.options and all(letter in ILLEGAL[c] for c in re.findall(r".#?", cmd.commands)):
            raise cmd.problem(f"Illegal option `-{letter}' with this command")
    if cmd.table not in TABLES:
        why = f" (pktpath models {', '.join(TABLES)})" if cmd.table in ("nat", "security") else ""
        raise IptablesError(f"{cmd.family.prog}: table '{cmd.table}' does not exist{why}\n"
                            f"Perhaps {cmd.family.name} or your kernel needs to be upgraded.", 3)
    for match in cmd.matches:
        if (match.sport or match.dport) and PORT_MATCHES.get(cmd.rule.protocol) != match.name:
            raise cmd.problem(f"{match.name.upper()} match requires '-p {match.name}'")
    if cmd.target and cmd.target not in TARGETS:
        if cmd.target in OTHER_TARGETS or cmd.target in CHAINS:
            raise cmd.problem(f"target {cmd.target} is not modelled here: -j ACCEPT or -j DROP")
        raise cmd.problem(f"Chain '{cmd.target}' does not exist")
    if cmd.action in "AI" and not cmd.target:
        raise cmd.problem("a rule needs a target here: -j ACCEPT or -j DROP (pktpath keeps no rule without one)")
    if "Z#" in cmd.commands:
        raise cmd.problem("-Z CHAIN RULENUM is not modelled here: pktpath zeroes a whole chain")
    # iptables-nft lists a rule's port matches as one (-m udp --sport 1 -m udp --dport 2: spt:1 dpt:2)
    sports, dports = [m.sport for m in cmd.matches if m.sport], [m.dport for m in cmd.matches if m.dport]
    if len(sports) > 1 or len(dports) > 1 or any(not (m.sport or m.dport) for m in cmd.matches):
        raise cmd.problem("pktpath models a tcp or udp match with one --sport and one --dport, no empty one")
    cmd.rule.family = cmd.family.nfproto
    cmd.rule.sport, cmd.rule.dport = sum(sports), sum(dports)
    if cmd.chain in CHAINS:
        cmd.rule.hook = CHAINS[cmd.chain]
    cmd.rule.target = TARGETS.get(cmd.target, 0)
    cmd.rule.position = cmd.rulenum


# -- numbers, protocols, ports, addresses as libxtables reads them ------------------------------------
_C_NUMBER = re.compile(r"[ \t\n\v\f\r]*\+?(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")


def _strtoui(text: str, lo: int, hi: int) -> int | None:
    """xtables_strtoui(): a C number (leading blanks, 0x hex, 0 octal; no minus) from lo to hi, or None."""
    m = _C_NUMBER.fullmatch(text)
    if not m:
        return None
    digits = m[1]
    value = int(digits, 16) if digits[:2] in ("0x", "0X") else int(digits, 8) if digits[0] == "0" else int(digits)
    return value if lo <= value <= hi else None


def _protocol(text: str, cmd: Command) -> int:
    """xtables_parse_protocol(): a number 0-255, "all", an /etc/protocols name, or one of libxtables'."""
    number = _strtoui(text, 0, 255)
    if number is not None:
        return number
    if text == "all":  # before any lookup, as libxtables does
        return 0
    try:
        return socket.getprotobyname(text)
    except (OSError, ValueError):
        pass
    if text in CHAIN_PROTOS:
        return CHAIN_PROTOS[text]
    raise cmd.problem(f"unknown protocol \"{text}\" specified")


def _port(text: str, match: str, cmd: Command) -> int:
    """The tcp match's xtables_parse_port(): a tcp service, else a C number to 65535; the udp
    match's xtables_getportbyname(): getaddrinfo()'s service, any protocol's, a decimal number cut
    to 16 bits (70000 is 4464). pktpath's port 0 is any port, and it matches one port, not a range."""
    if ":" in text:
        raise cmd.problem(f"port range `{text}' is not modelled here: one port")
    if match == "tcp":
        try:
            port = socket.getservbyname(text, "tcp")
        except (OSError, ValueError):
            port = _strtoui(text, 0, 0xFFFF)
        if port is None:
            raise cmd.problem(f"invalid port/service `{text}' specified")
    else:
        try:
            port = socket.getaddrinfo(None, text)[0][4][1]
        except (OSError, UnicodeError, ValueError, IndexError):
            raise cmd.problem(f"Port \"{text}\" does not resolve to anything.\n") from None
    if not port:
        raise cmd.problem(f"port `{text}' is 0, which pktpath takes for any port")
    return port


def _ipv4(text: str, mask: bool = False) -> int | None:
    """__numeric_to_ipaddr(): dotted C numbers to 255 each; fewer than four parts are a network
    whose missing parts are 0 (10.1 is 10.1.0.0), except in a mask."""
    parts = text.split(".")
    if len(parts) > 4 or (mask and len(parts) < 4):
        return None
    value = 0
    for n in range(4):
        byte = _strtoui(parts[n], 0, 255) if n < len(parts) else 0
        if byte is None:
            return None
        value = value << 8 | byte
    return value


def _numeric(text: str, family: Family, mask: bool = False) -> int | None:
    if family.af == socket.AF_INET:
        return _ipv4(text, mask)
    try:
        return int.from_bytes(socket.inet_pton(socket.AF_INET6, text), "big")
    except (OSError, ValueError):
        return None


def _host(name: str, family: Family, cmd: Command) -> int:
    """ipparse_hostnetwork(): a numeric address, else a name getaddrinfo() resolves (one, here)."""
    addr = _numeric(name, family)
    if addr is not None:
        return addr
    try:
        found = {a[4][0].partition("%")[0] for a in socket.getaddrinfo(name, None, family.af, socket.SOCK_RAW)}
    except (OSError, UnicodeError, ValueError):
        found = set()
    if not found:
        raise cmd.problem(f"host/network `{name}' not found")
    if len(found) > 1:  # iptables makes a rule of each
        raise cmd.problem(f"host/network `{name}' is {len(found)} addresses (pktpath takes one)")
    return int(ipaddress.ip_address(found.pop()))


def _prefix(text: str, cmd: Command) -> str:
    """xtables_ipparse_any() / xtables_ip6parse_any(): ADDR[/LEN or /MASK] as the network iptables
    keeps, host bits masked away; a mask of 0 makes any name the any address."""
    family, bits = cmd.family, cmd.family.bits
    name, slash, mask_text = text.rpartition("/") if "/" in text else (text, "", "")
    mask = (1 << bits) - 1
    if slash:
        mask = _numeric(mask_text, family, mask=True)
        if mask is None:
            plen = _strtoui(mask_text, 0, bits)
            if plen is None:
                raise cmd.problem(f"invalid mask `{mask_text}' specified")
            mask = ((1 << plen) - 1) << (bits - plen)
    plen = bits - (~mask & (1 << bits) - 1).bit_length()
    if mask != ((1 << plen) - 1) << (bits - plen):
        raise cmd.problem(f"invalid mask `{mask_text}' specified (pktpath takes a contiguous one)")
    if not plen:
        return ""  # any: "anywhere"
    addr = _host(name, family, cmd) & mask
    return str((ipaddress.IPv4Network if family.af == socket.AF_INET else ipaddress.IPv6Network)((addr, plen)))


# -- listing ------------------------------------------------------------------------------------------
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


def _plain(n: int, exact: bool) -> str:
    """The chain line's counts: the same units (FMT_NOTABLE), no padding."""
    return _num(n, exact).strip()


def _inet_network(text: str) -> int | None:
    """inet_network(): up to four dotted C numbers, the last the lowest byte (127 is 0.0.0.127)."""
    parts = text.split(".")
    numbers = [_strtoui(p, 0, 255) for p in parts]
    if len(parts) > 4 or None in numbers:
        return None
    value = 0
    for n in numbers:
        value = value << 8 | n
    return value


@lru_cache(maxsize=None)
def _names_file(path: str) -> dict[int, str]:
    """A file of NAME NUMBER lines by number, the first line winning, as getprotobynumber() reads
    /etc/protocols and getnetbyaddr() /etc/networks."""
    names: dict[int, str] = {}
    try:
        with open(path) as f:
            for line in f:
                fields = line.partition("#")[0].split()
                number = _inet_network(fields[1]) if len(fields) >= 2 else None
                if number is not None:
                    names.setdefault(number, fields[0])
    except OSError:
        pass
    return names


def proto_name(proto: int, lookup: bool = True) -> str:
    """proto_to_name(): getprotobynumber()'s name (not for 0, nor when echoing a rule), else
    libxtables' own, else the number."""
    names = _names_file("/etc/protocols")
    if lookup and proto and proto in names:
        return names[proto]
    return next((name for name, n in CHAIN_PROTOS.items() if n == proto), str(proto))


@lru_cache(maxsize=256)
def _name(addr: str, af: int) -> str:
    """xtables_ipaddr_to_anyname() / xtables_ip6addr_to_anyname(): the host's name
    (getnameinfo, NI_NAMEREQD), else for IPv4 the network's (/etc/networks), else the address."""
    try:
        return socket.getnameinfo((addr, 0), socket.NI_NAMEREQD)[0]
    except (OSError, UnicodeError):
        pass
    if af == socket.AF_INET:
        return _names_file("/etc/networks").get(int(ipaddress.IPv4Address(addr)), addr)
    return addr


def _addr(prefix: str, cmd: Command) -> str:
    """print_ipv4_addresses / print_ipv6_addresses: without -n, "anywhere" for any (IPv4: a mask
    of 0; IPv6: the address ::, whatever its mask, as ip6tables 1.8.9 prints ::/8); else the
    address (its name without -n) and /LEN unless it is one host."""
    net = ipaddress.ip_network(prefix or ("0.0.0.0/0" if cmd.family.af == socket.AF_INET else "::/0"))
    if not cmd.numeric and not (net.prefixlen if net.version == 4 else int(net.network_address)):
        return "anywhere"
    addr = str(net.network_address)
    text = addr if cmd.numeric else _name(addr, cmd.family.af)
    return text if net.prefixlen == cmd.family.bits else f"{text}/{net.prefixlen}"


def _service(port: int, proto: str, numeric: bool) -> str:
    if numeric:
        return str(port)
    try:
        return socket.getservbyport(port, proto)
    except OSError:
        return str(port)


def _ports(r, numeric: bool) -> str:
    """The tcp or udp match as its print function words it: " tcp spt:53 dpt:domain"."""
    if not (r.sport or r.dport):
        return ""
    name = PORT_MATCHES[r.protocol]
    ports = [f"{k}:{_service(v, name, numeric)}" for k, v in (("spt", r.sport), ("dpt", r.dport)) if v]
    return f" {name} {' '.join(ports)}"


def rule_line(r, cmd: Command, number: int) -> str:
    """print_rule_details() and the addresses, as -L prints a rule."""
    line = f"{number:<4} " if cmd.line_numbers else ""
    if cmd.verbose:
        line += f"{_num(r.pkts, cmd.exact)} {_num(r.bytes, cmd.exact)} "
    proto = str(r.protocol) if cmd.numeric else proto_name(r.protocol)
    line += f"{TARGET_NAMES.get(r.target, str(r.target)):<10} {proto:<4} {'--':<3} "
    if cmd.verbose:
        anydev = "*" if cmd.numeric else "any"
        line += f"{anydev:<6} {anydev:<7} "
    return line + f"{_addr(r.src, cmd):<19}  {_addr(r.dst, cmd):<19} " + _ports(r, cmd.numeric)


def echo_line(r, cmd: Command) -> str:
    """What -v prints of a rule it adds or deletes (FMT_PRINT_RULE: numeric, no table)."""
    numeric = Command(family=cmd.family, options="n")
    return (f"{TARGET_NAMES[r.target]}  {proto_name(r.protocol, lookup=False)} opt -- in * out *  "
            f"{_addr(r.src, numeric)}  -> {_addr(r.dst, numeric)}  " + _ports(r, True))


def header(cmd: Command) -> str:
    line = "num  " if cmd.line_numbers else ""
    if cmd.verbose:
        line += "    pkts      bytes " if cmd.exact else " pkts bytes "
    line += "target     prot opt "
    if cmd.verbose:
        line += "in     out     "
    return line + "source               destination         "


def listing(table: l3_pb2.RuleTable, cmd: Command) -> list[str]:
    """-L [CHAIN [RULENUM]]: each chain of the table, its policy and its rules; a rule number
    lists that rule alone (nothing past the end)."""
    fam = cmd.family.nfproto
    policies = {p.hook: p for p in table.policies if p.family == fam}
    out: list[str] = []
    for chain in [cmd.chain] if cmd.chain else TABLES[cmd.table]:
        hook = CHAINS[chain]
        rules = [r for r in table.rules if r.hook == hook and r.family == fam]
        if cmd.rulenum:
            return [rule_line(rules[cmd.rulenum - 1], cmd, cmd.rulenum)] if cmd.rulenum <= len(rules) else []
        p = policies.get(hook)
        policy = TARGET_NAMES.get(p.policy, "ACCEPT") if p else "ACCEPT"
        counts = (f" {_plain(p.pkts if p else 0, cmd.exact)} packets, {_plain(p.bytes if p else 0, cmd.exact)} bytes"
                  if cmd.verbose else "")
        if out:
            out.append("")
        out += [f"Chain {chain} (policy {policy}{counts})", header(cmd)]
        out += [rule_line(r, cmd, n) for n, r in enumerate(rules, 1)]
    return out


BAD_RULE = "Bad rule (does a matching rule exist in that chain?)."


# -- carrying it out ------------------------------------------------------------------------------------
def run(view, argv: list[str], family: Family = IPV4, err=None) -> list[str]:
    """Carry out one iptables (ip6tables, for IPV6) command on the host; the lines it prints (its
    warnings to err, stderr by default). What it refuses, and what the host refuses, is an
    IptablesError in iptables' words; a host that does not answer, a grpc.RpcError."""
    import grpc

    cmd = parse(argv, family, err)
    try:
        return _carry_out(view.stub["l3"], cmd)
    except grpc.RpcError as exc:
        code, name = exc.code(), family.name
        if code == grpc.StatusCode.OUT_OF_RANGE:
            raise IptablesError(f"{name}: Index of insertion too big.") from None
        if code == grpc.StatusCode.NOT_FOUND:
            raise IptablesError(f"{name}: Index of deletion too big." if cmd.rulenum else f"{name}: {BAD_RULE}") \
                from None
        raise


def _carry_out(l3, cmd: Command) -> list[str]:
    family = cmd.family
    name, chains = family.name, TABLES[cmd.table]
    action = cmd.action
    if cmd.chain and cmd.chain not in chains:
        if action == "L":
            raise IptablesError(f"{family.prog}: chain `{cmd.chain}' in table `{cmd.table}' is incompatible, "
                                f"use 'nft' tool.")
        raise IptablesError(f"{name}: Bad built-in chain name." if action == "P" else f"{name}: {BAD_RULE}"
                            if action == "D" else f"{name}: No chain/target/match by that name.")
    out: list[str] = []
    todo = [cmd.chain] if cmd.chain else list(chains)  # the table's chains, not every hook
    if action == "L":
        out = listing(l3.GetRules(empty_pb2.Empty(), timeout=5), cmd)
    if action in ("A", "I", "D"):
        if action == "D" and not cmd.target:  # a rule without a target: none such can be here
            raise IptablesError(f"{name}: {BAD_RULE}")
        out += [echo_line(cmd.rule, cmd)] if cmd.verbose else []
        if action == "I" and not cmd.rule.position:
            cmd.rule.position = 1  # -I CHAIN: at the head
        (l3.RuleDel if action == "D" else l3.RuleAdd)(cmd.rule, timeout=5)
    elif action == "D#":
        l3.RuleDel(cmd.rule, timeout=5)
    elif action == "P":
        if cmd.policy not in TARGETS:
            raise IptablesError(f"{name}: Bad policy name. Run `dmesg' for more information.")
        l3.SetPolicy(l3_pb2.ChainPolicy(hook=cmd.rule.hook, policy=TARGETS[cmd.policy], family=family.nfproto),
                     timeout=5)
    elif action == "F":
        out += [f"Flushing chain `{chain}'" for chain in todo] if cmd.verbose else []
        for chain in todo:
            l3.RuleFlush(l3_pb2.Chain(hook=CHAINS[chain], family=family.nfproto), timeout=5)
    if "Z" in cmd.commands:  # -Z, or -L -Z: after the listing
        out += [f"Zeroing chain `{chain}'" for chain in todo] if cmd.verbose else []
        for chain in todo:
            l3.ZeroCounters(l3_pb2.Chain(hook=CHAINS[chain], family=family.nfproto), timeout=5)
    return out

