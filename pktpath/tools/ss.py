"""`pktpath ss`: ss(8) over a running host — which sockets (-t, -u; -4, -6, -f FAMILY; -l
listening, -a all, by default the connected ones), what of them (-p the process, -e uid and sk, -i TCP's
internals, -m their memory) and ss's filter: `state established`, `dport = :80`, `src 10.0.0.1`, joined
by and, or, not and parentheses (misc/ss.c, ssfilter.y).

TCP sockets come from L4 (every one it runs: listeners, connections, TIME-WAIT), datagram
sockets from the socket layer; the processes holding them from the socket layer's fd
tables. Addresses are always numeric: pktpath resolves no names (-n is taken and changes
nothing). An AF_INET6 socket's are written as ss writes them (inet_addr_print): in brackets,
[2001:db8::1]:80, an IPv4 peer's [::ffff:10.0.0.1]:80, and the wildcard :: as * unless the
socket is IPV6_V6ONLY ([::]:80), so a dual-stack listener shows *:80 *:* (Linux 6.18's ss
printed these for the same sockets). A filter's address may be IPv6, in brackets with a port.

-4, -6 and -f choose by the socket's family, as ss.c does: a dual-stack AF_INET6 listener and
the IPv4 connections it accepted ([::ffff:10.0.0.1]) are IPv6's, shown by -6 and not by -4.
"""

import ipaddress
import os
from dataclasses import dataclass, field

from google.protobuf import empty_pb2

AF_UNSPEC, AF_UNIX, AF_INET, AF_INET6, AF_NETLINK, AF_PACKET = 0, 1, 2, 10, 16, 17
AF_TIPC, AF_VSOCK, AF_XDP = 30, 40, 44
# -f's names (ss.c main): -4 is inet, -6 inet6
FAMILIES = {"inet": AF_INET, "inet6": AF_INET6, "link": AF_PACKET, "unix": AF_UNIX, "netlink": AF_NETLINK,
            "tipc": AF_TIPC, "vsock": AF_VSOCK, "xdp": AF_XDP}
# ss.c's socket tables and the families each holds (default_dbs), the tables of each family (default_afs)
_INET = frozenset({AF_INET, AF_INET6})
DB_FAMILIES = {"tcp": _INET, "mptcp": _INET, "dccp": _INET, "udp": _INET, "raw": _INET, "sctp": _INET,
               "unix_dg": {AF_UNIX}, "unix_st": {AF_UNIX}, "unix_sq": {AF_UNIX}, "packet_dg": {AF_PACKET},
               "packet_raw": {AF_PACKET}, "netlink": {AF_NETLINK}, "vsock_st": {AF_VSOCK}, "vsock_dg": {AF_VSOCK},
               "tipc": {AF_TIPC}, "xdp": {AF_XDP}}
INET_DBS = frozenset({"tcp", "mptcp", "dccp", "udp", "raw", "sctp"})
FAMILY_DBS = {AF_INET: INET_DBS, AF_INET6: INET_DBS, AF_UNIX: {"unix_dg", "unix_st", "unix_sq"},
              AF_PACKET: {"packet_dg", "packet_raw"}, AF_NETLINK: {"netlink"}, AF_VSOCK: {"vsock_st", "vsock_dg"},
              AF_TIPC: {"tipc"}, AF_XDP: {"xdp"}}
ALL_DBS = frozenset(DB_FAMILIES) - {"tipc"}  # filter_db_parse("all")

# ss's state names and groups (ss.c: sstate_name, SS_CONN ...)
STATES = ("ESTAB", "SYN-SENT", "SYN-RECV", "FIN-WAIT-1", "FIN-WAIT-2", "TIME-WAIT", "UNCONN", "CLOSE-WAIT",
          "LAST-ACK", "LISTEN", "CLOSING")
STATE_WORDS = {"established": {"ESTAB"}, "syn-sent": {"SYN-SENT"}, "syn-recv": {"SYN-RECV"},
               "fin-wait-1": {"FIN-WAIT-1"}, "fin-wait-2": {"FIN-WAIT-2"}, "time-wait": {"TIME-WAIT"},
               "closed": {"UNCONN"}, "close-wait": {"CLOSE-WAIT"}, "last-ack": {"LAST-ACK"},
               "listening": {"LISTEN", "UNCONN"}, "closing": {"CLOSING"}, "all": set(STATES),
               "connected": set(STATES) - {"LISTEN", "UNCONN"},
               "synchronized": set(STATES) - {"LISTEN", "UNCONN", "SYN-SENT"},
               "bucket": {"SYN-RECV", "TIME-WAIT"}, "big": set(STATES) - {"SYN-RECV", "TIME-WAIT"}}
# What ss shows without -a or -l: SS_CONN, every state but listening, closed, TIME-WAIT and SYN-RECV
DEFAULT_STATES = set(STATES) - {"LISTEN", "UNCONN", "TIME-WAIT", "SYN-RECV"}
LISTENING = {"LISTEN", "UNCONN"}


@dataclass
class Sock:
    netid: str
    state: str
    recv_q: int
    send_q: int
    saddr: str
    sport: int
    daddr: str
    dport: int
    sk: int
    users: list = field(default_factory=list)
    info: object = None  # TCP's TcpSockInfo, for -i
    skmem: object = None  # the socket layer's SkMemInfo, for -m (a TIME-WAIT socket has none)
    family: int = AF_INET
    v6only: bool = False  # IPV6_V6ONLY: its wildcard is [::], not *


def addr_text(addr: str, family: int, v6only: bool) -> str:
    """inet_addr_print(): an AF_INET6 socket's address in brackets, :: as * when it is not
    IPV6_V6ONLY (it takes IPv4 too)."""
    if family != AF_INET6:
        return addr
    if addr == "::" and not v6only:
        return "*"
    return f"[{addr}]"


@dataclass(frozen=True)
class Selection:
    """What ss's options chose, as ss.c's current_filter has it after filter_merge_defaults():
    the socket tables (dbs), the families a socket may be of, and preferred_family (the last
    of -4, -6, -f)."""
    dbs: frozenset
    families: frozenset
    preferred: int = AF_UNSPEC

    def dumps(self) -> tuple[int, ...]:
        """inet_show_netlink(): the families asked of sock_diag, in order: preferred_family's
        alone if it is AF_INET6 or AF_INET, else AF_INET's sockets then AF_INET6's."""
        return (self.preferred,) if self.preferred in (AF_INET, AF_INET6) else (AF_INET, AF_INET6)

    def shows(self, family: int) -> bool:
        """show_one_inet_sock(): a socket the dump gave, of a family the options chose."""
        return family in self.dumps() and family in self.families


def select(*, tcp: bool = False, udp: bool = False, families=()) -> Selection:
    """main()'s -t and -u (filter_db_set), -4, -6 and -f (filter_af_set: families, their names
    in the order given, add to the families shown and the last is preferred_family), all of
    ss's tables when none was named (do_default), then filter_merge_defaults(): a table with
    none of its families chosen brings them all, a family none of whose tables was chosen
    brings its tables (-4 alone: every inet table, TCP and UDP both; -f unix alone: no inet)."""
    dbs, fams, preferred = set(), set(), AF_UNSPEC
    if tcp:
        dbs.add("tcp")
    if udp:
        dbs.add("udp")
    for name in families:
        if name not in FAMILIES:
            raise FilterError(f'"{name}" is invalid family')
        preferred = FAMILIES[name]
        fams.add(preferred)
    if not dbs and not fams:
        dbs |= ALL_DBS
    for db in list(dbs):
        if not DB_FAMILIES[db] & fams:
            fams |= DB_FAMILIES[db]
    for af in list(fams):
        if not FAMILY_DBS[af] & dbs:
            dbs |= FAMILY_DBS[af]
    return Selection(frozenset(dbs), frozenset(fams), preferred)


def sockets(view, *, tcp: bool, udp: bool) -> list[Sock]:
    """Every TCP socket L4 has and every datagram socket of the socket layer."""
    table = view.stub["socket"].ListSockets(empty_pb2.Empty(), timeout=5).sockets
    by_sk = {s.sk: s for s in table}
    out = []
    if udp:  # ss dumps UDP's table before TCP's
        for s in table:
            if s.netid == "udp":
                family = s.family or AF_INET
                out.append(Sock("udp", s.state, s.recv_q, s.send_q, s.local.addr, s.local.port, s.peer.addr or
                                ("::" if family == AF_INET6 else "0.0.0.0"), s.peer.port, s.sk, list(s.users),
                                skmem=s.skmem, family=family, v6only=s.ipv6only))
    if tcp:
        for t in view.stub["l4"].GetTcpSockets(empty_pb2.Empty(), timeout=5).socks:
            mine = by_sk.get(t.sk)
            skmem = None
            if mine is not None:  # the receive buffer as L4's autotuning left it
                skmem = type(mine.skmem)()
                skmem.CopyFrom(mine.skmem)
                skmem.rcvbuf, skmem.wmem_alloc = t.rcvbuf, t.wmem_alloc
            family = t.family or AF_INET
            any_addr = "::" if family == AF_INET6 else "0.0.0.0"
            out.append(Sock("tcp", t.state, t.recv_q, t.send_q, t.saddr, t.sport, t.daddr if t.dport else any_addr,
                            t.dport, t.sk, list(mine.users) if mine else [], t, skmem, family, t.ipv6only))
    return out


SKMEM = (("r", "rmem_alloc"), ("rb", "rcvbuf"), ("t", "wmem_alloc"), ("tb", "sndbuf"), ("f", "fwd_alloc"),
         ("w", "wmem_queued"), ("o", "optmem"), ("bl", "backlog"), ("d", "drops"))  # ss.c print_skmeminfo


def skmem_text(m) -> str:
    return "skmem:(" + ",".join(f"{short}{getattr(m, name)}" for short, name in SKMEM) + ")"


# -- the filter ------------------------------------------------------------------------------
class FilterError(ValueError):
    pass


def parse(words: list[str]):
    """(states, predicate) of ss's filter: leading `state X`/`exclude X` words, then an
    expression of sport/dport/src/dst conditions."""
    words = list(words)
    states: set[str] | None = None
    excluded: set[str] = set()
    while len(words) >= 2 and words[0] in ("state", "exclude", "excl"):
        kind, name = words.pop(0), words.pop(0)
        if name not in STATE_WORDS:
            raise FilterError(f'wrong state name: "{name}"')
        if kind == "state":
            states = (states or set()) | STATE_WORDS[name]
        else:
            excluded |= STATE_WORDS[name]
    tokens = []
    for w in words:  # "(" and ")" may stick to their neighbours, as in ss '( dport = :80 )'
        tokens += [t for t in w.replace("(", " ( ").replace(")", " ) ").split()]
    predicate = _Parser(tokens).expression() if tokens else (lambda s: True)
    return states, excluded, predicate


_OPS = {"=": "eq", "==": "eq", "eq": "eq", "!=": "ne", "ne": "ne", "neq": "ne", "<": "lt", "lt": "lt",
        ">": "gt", "gt": "gt", "<=": "le", "le": "le", ">=": "ge", "ge": "ge"}


class _Parser:
    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens

    def _next(self) -> str:
        if not self.tokens:
            raise FilterError("the filter ends too soon")
        return self.tokens.pop(0)

    def expression(self):
        left = self._term()
        while self.tokens and self.tokens[0] in ("or", "||", "|"):
            self.tokens.pop(0)
            right, before = self._term(), left
            left = lambda s, a=before, b=right: a(s) or b(s)  # noqa: E731
        if self.tokens and self.tokens[0] != ")":
            raise FilterError(f'unexpected "{self.tokens[0]}"')
        return left

    def _term(self):
        left = self._factor()
        while self.tokens and self.tokens[0] not in ("or", "||", "|", ")"):
            if self.tokens[0] in ("and", "&&", "&"):
                self.tokens.pop(0)
            right, before = self._factor(), left
            left = lambda s, a=before, b=right: a(s) and b(s)  # noqa: E731
        return left

    def _factor(self):
        word = self._next()
        if word in ("not", "!"):
            inner = self._factor()
            return lambda s: not inner(s)
        if word == "(":
            inner = self.expression()
            if not self.tokens or self._next() != ")":
                raise FilterError('a "(" is not closed')
            return inner
        if word in ("sport", "dport"):
            op = "eq"
            if self.tokens and self.tokens[0] in _OPS:
                op = _OPS[self._next()]
            port = _port(self._next())
            side = "sport" if word == "sport" else "dport"
            return lambda s: _compare(getattr(s, side), op, port)
        if word in ("src", "dst"):
            if self.tokens and self.tokens[0] in ("=", "==", "eq"):
                self._next()
            net, port = _endpoint(self._next())
            addr_of, port_of = ("saddr", "sport") if word == "src" else ("daddr", "dport")
            return lambda s: (net is None or ipaddress.ip_address(getattr(s, addr_of)) in net) and (
                port is None or getattr(s, port_of) == port)
        raise FilterError(f'unexpected "{word}"')


def _port(text: str) -> int:
    text = text.removeprefix(":")
    if not text.isdigit() or int(text) > 65535:
        raise FilterError(f'"{text}" is not a port')
    return int(text)


def _endpoint(text: str):
    """ADDR[/LEN][:PORT], `*` for any address; an IPv6 ADDR in brackets when a port follows
    ([2001:db8::1]:80), bare without one."""
    if text.startswith("["):
        inside, _, rest = text[1:].partition("]")
        addr, port = inside, rest.removeprefix(":")
    else:
        addr, _, port = text.rpartition(":") if text.count(":") == 1 else (text, "", "")
    try:
        net = None if addr in ("*", "") else ipaddress.ip_network(addr, strict=False)
    except ValueError:
        raise FilterError(f'"{addr}" is not an address') from None
    return net, (_port(port) if port and port != "*" else None)


def _compare(value: int, op: str, port: int) -> bool:
    return {"eq": value == port, "ne": value != port, "lt": value < port, "gt": value > port,
            "le": value <= port, "ge": value >= port}[op]


# -- the table -----------------------------------------------------------------------------------
def table(socks: list[Sock], *, netid: bool, state: bool = True, processes: bool = False, extended: bool = False,
          info: bool = False, memory: bool = False, header: bool = True) -> list[str]:
    """ss's columns, laid out as ss lays them: Netid (when more than one kind is asked for),
    State (unless one state is), Recv-Q, Send-Q, each address right-aligned up to the ":"
    and its port left-aligned after it — the header's "Address:Port" split there too, so a
    column of "*" ports lets "Port" run into the next column, as ss does — then the
    process; -e adds to a socket's line, -m and -i make the next one (skmem first)."""
    rows = []
    for s in socks:
        cells = ([s.netid] if netid else []) + ([s.state] if state else []) + [str(s.recv_q), str(s.send_q)]
        extra = ""
        if processes and s.users:
            extra += " users:(" + ",".join(f'("{u.comm}",pid={u.pid},fd={u.fd})' for u in s.users) + ")"
        if extended:
            extra += f" uid:{os.getuid()} sk:{s.sk:x}"
        rows.append((cells, (addr_text(s.saddr, s.family, s.v6only), str(s.sport)),
                     (addr_text(s.daddr, s.family, s.v6only), str(s.dport) if s.dport else "*"), extra, s))
    head = (["Netid"] if netid else []) + (["State"] if state else []) + ["Recv-Q", "Send-Q"]
    widths = [max([len(h)] + [len(r[0][i]) for r in rows]) for i, h in enumerate(head)]
    addr_w = [max([len(name) if header else 0] + [len(r[side][0]) for r in rows])
              for side, name in ((1, "Local Address"), (2, "Peer Address"))]
    port_w = [max([0] + [len(r[side][1]) for r in rows]) for side in (1, 2)]

    def line(cells: list[str], local: tuple[str, str], peer: tuple[str, str], tail: str) -> str:
        out = ""
        for cell, width in zip(cells, widths):
            out += cell.ljust(width) + " "
        for (addr, port), aw, pw in zip((local, peer), addr_w, port_w):
            start = len(out)
            out += f"{addr:>{aw}}:{port:<{pw}}"
            out = out.ljust(start + aw + 1 + pw) + " "
        return (out[:-1] + tail).rstrip()  # the process column follows the peer's port at once

    out = [line(head, ("Local Address", "Port"), ("Peer Address", "Port"), "Process")] if header else []
    for cells, local, peer, extra, s in rows:
        out.append(line(cells, local, peer, extra))
        more = [skmem_text(s.skmem)] if memory and s.skmem is not None else []
        if info and s.info is not None and s.state != "LISTEN":
            t = s.info
            ssthresh = f" ssthresh:{t.ssthresh}" if t.ssthresh < 0x7FFFFFFF else ""
            more.append(f"{t.cong} rto:{t.rto_ms:.0f} rtt:{t.srtt_ms:.1f} mss:{t.mss} cwnd:{t.cwnd}{ssthresh}"
                        f" snd_wnd:{t.snd_wnd} rcv_wnd:{t.rcv_wnd} unacked:{t.unacked} rb:{t.rcvbuf}")
        if more:
            out.append("\t " + " ".join(more))
    return out


def ss(view, *, tcp: bool = False, udp: bool = False, listening: bool = False, all_: bool = False,
       processes: bool = False, extended: bool = False, info: bool = False, memory: bool = False,
       header: bool = True, filter_words: list[str] = (), json: bool = False, families=()) -> list:
    """The lines `ss [-t] [-u] [-4|-6|-f FAMILY] [-l|-a] [-p] [-e] [-i] [-m] [-H] [FILTER]`
    prints (families: -4's inet, -6's inet6 and -f's names in the order given); with json, its
    sockets as records (stable field names) instead. Of ss's tables pktpath has TCP's and
    UDP's; the Netid column shows when the options chose more than one table, as ss's does."""
    sel = select(tcp=tcp, udp=udp, families=families)
    tcp, udp = "tcp" in sel.dbs, "udp" in sel.dbs
    states, excluded, predicate = parse(list(filter_words))
    if states is None:
        states = set(STATES) if all_ else LISTENING if listening else DEFAULT_STATES
    states -= excluded
    order = sel.dumps()
    chosen = [s for s in sockets(view, tcp=tcp, udp=udp) if sel.shows(s.family) and s.state in states and predicate(s)]
    chosen.sort(key=lambda s: (s.netid != "udp", order.index(s.family)))  # each table dumped family by family
    if json:
        return [record(s) for s in chosen]
    return table(chosen, netid=len(sel.dbs) > 1, state=len(states) > 1, processes=processes, extended=extended,
                 info=info, memory=memory, header=header)


def record(s: Sock) -> dict:
    rec = {"netid": s.netid, "family": "inet6" if s.family == AF_INET6 else "inet", "state": s.state,
           "recv_q": s.recv_q, "send_q": s.send_q,
           "local": {"addr": s.saddr, "port": s.sport}, "peer": {"addr": s.daddr, "port": s.dport}, "sk": s.sk,
           "users": [{"comm": u.comm, "pid": u.pid, "fd": u.fd} for u in s.users]}
    if s.skmem is not None:
        rec["skmem"] = {name: getattr(s.skmem, name) for _, name in SKMEM}
    if s.info is not None:
        t = s.info
        rec["tcp_info"] = {"cong": t.cong, "rto_ms": t.rto_ms, "rtt_ms": t.srtt_ms, "mss": t.mss, "cwnd": t.cwnd,
                           "ssthresh": t.ssthresh, "snd_wnd": t.snd_wnd, "rcv_wnd": t.rcv_wnd,
                           "unacked": t.unacked, "rcvbuf": t.rcvbuf}
    return rec
