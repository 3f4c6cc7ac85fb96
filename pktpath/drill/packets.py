"""Script packets onto the wire and wire packets back into the script's numbers
(packetdrill's run_packet.c): one connection under test, its live addresses and ISNs.

As tcpdump prints them, a SYN's sequence numbers are absolute and every other packet's
relative to the ISNs. The remote ISN is what the script's own SYN or SYN-ACK carries; the
local one is learned from the stack's first SYN or SYN-ACK. Inbound TS ecr values are
mapped to the TS val the stack really sent for the script's value. Outbound packets are
checked field by field in packetdrill's order, with its words.
"""

import struct
from dataclasses import dataclass, field

from pktpath.drill.script import Packet, TcpOption
from typing import NamedTuple

from pktpath.wire.addr import ip6_from_str, ip6_to_str, ip_from_str, ip_to_str
from pktpath.wire.ipv4 import IPPROTO_TCP, IpHdr
from pktpath.wire.ipv6 import IPV6_HLEN, Ipv6Hdr
from pktpath.wire.tcp import TcpHdr

MASK = 0xFFFFFFFF
FLAG_BITS = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, ".": 0x10, "U": 0x20, "E": 0x40, "W": 0x80,
             "A": 0x100}  # AE (RFC 9768), the header's flag bit next to the reserved ones
AE = FLAG_BITS["A"]
DUMP_ORDER = "FSRP.UEWA"
ECN_BITS = {"noecn": 0, "ect1": 1, "ect0": 2, "ce": 3}
OPTION_KINDS = {"eol": 0, "nop": 1, "mss": 2, "wscale": 3, "sackOK": 4, "sack": 5, "TS": 8, "md5": 19, "FO": 34,
                "FOEXP": 254}
KIND_NAMES = {v: k for k, v in OPTION_KINDS.items()}
TTL_NONE = 255  # packetdrill's TTL_CHECK_NONE: what it injects when the script gives no ttl


class Unsupported(Exception):
    """What the script asks for that this runner does not do: the script is unsupported."""


@dataclass
class Connection:
    """The socket under test as the wire sees it (packetdrill's struct socket: live and
    script ISNs, the 4-tuple, the TS val map)."""
    local_ip: str
    remote_ip: str
    local_port: int = 8080
    remote_port: int = 0
    remote_isn: int | None = None
    local_isn: int | None = None        # live
    script_local_isn: int = 0
    ts_vals: dict[int, int] = field(default_factory=dict)  # script TS val -> the live one sent for it
    first_ts: tuple[int, int] | None = None                 # (script, live) of the first outbound TS

    def local_offset(self, syn: bool) -> int:
        isn = self.local_isn or 0
        return (isn - self.script_local_isn) & MASK if syn else isn

    def remote_offset(self, syn: bool) -> int:
        return 0 if syn else self.remote_isn or 0


# -- inbound ------------------------------------------------------------------------------
def flag_bits(flags: str) -> int:
    """The 9 flag bits; a digit is the ACE field (AE, CWR, ECE) as a number, as in `P5.`."""
    bits = 0
    for c in flags:
        if c.isdigit():
            ace = int(c)
            bits |= (AE if ace & 4 else 0) | (FLAG_BITS["W"] if ace & 2 else 0) | (FLAG_BITS["E"] if ace & 1 else 0)
        else:
            bits |= FLAG_BITS.get(c, 0)
    return bits


def ace_field(bits: int) -> int:
    """tcp_ace_field(): AE, CWR and ECE as one 3-bit number."""
    return (4 if bits & AE else 0) | (2 if bits & FLAG_BITS["W"] else 0) | (1 if bits & FLAG_BITS["E"] else 0)


def wire_flags(tcp: TcpHdr) -> int:
    """A header's 9 flag bits: AE is the low bit of the byte the data offset is in."""
    return tcp.flags | (AE if tcp.doff_res & 1 else 0)


def encode_option(opt: TcpOption) -> bytes:
    kind = OPTION_KINDS[opt.kind]
    if opt.kind in ("nop", "eol"):
        return bytes([kind])
    if opt.kind == "mss":
        return struct.pack("!BBH", kind, 4, opt.value)
    if opt.kind == "wscale":
        return struct.pack("!BBB", kind, 3, opt.value)
    if opt.kind == "sackOK":
        return bytes([kind, 2])
    if opt.kind == "sack":
        return bytes([kind, 2 + 8 * len(opt.blocks)]) + b"".join(struct.pack("!II", a & MASK, b & MASK)
                                                                  for a, b in opt.blocks)
    if opt.kind == "TS":
        return struct.pack("!BBII", kind, 10, opt.val & MASK, opt.ecr & MASK)
    if opt.kind == "FOEXP":
        return bytes([kind, 4 + len(opt.data)]) + b"\xf9\x89" + opt.data
    return bytes([kind, 2 + len(opt.data)]) + opt.data  # md5, FO


def inbound(pkt: Packet, conn: Connection) -> bytes:
    """The IPv4 or IPv6 packet (by the connection's addresses) a script's `<` line puts on the
    wire (map_inbound_packet)."""
    if pkt.protocol != "tcp":
        raise Unsupported(f"inbound {pkt.protocol} packets")
    syn = "S" in pkt.flags
    bits = flag_bits(pkt.flags)
    seq = (pkt.seq + conn.remote_offset(syn)) & MASK
    ack = (pkt.ack + conn.local_offset(syn)) & MASK if bits & FLAG_BITS["."] else pkt.ack & MASK
    options = []
    for opt in pkt.options or ():
        if opt.kind == "sack":
            opt = TcpOption("sack", blocks=tuple(((a + conn.local_offset(syn)) & MASK, (b + conn.local_offset(syn))
                                                  & MASK) for a, b in opt.blocks))
        elif opt.kind == "TS" and bits & FLAG_BITS["."]:
            opt = TcpOption("TS", val=opt.val, ecr=_live_ecr(opt.ecr, conn))
        options.append(encode_option(opt))
    sport = pkt.sport if pkt.sport is not None else conn.remote_port
    dport = pkt.dport if pkt.dport is not None else conn.local_port
    v6 = ":" in conn.local_ip
    from_str = ip6_from_str if v6 else ip_from_str
    saddr, daddr = from_str(conn.remote_ip), from_str(conn.local_ip)
    tcp = TcpHdr(sport, dport, seq, ack, doff_res=1 if bits & AE else 0, flags=bits & 0xFF, window=pkt.win or 0,
                 urg_ptr=pkt.urg, options=b"".join(options))
    segment = tcp.to_bytes(bytes(pkt.length), saddr, daddr) + bytes(pkt.length)
    tos = pkt.tos if pkt.tos is not None else ECN_BITS.get(pkt.ecn or "noecn", 0)
    ttl = pkt.ttl if pkt.ttl is not None else TTL_NONE
    if v6:  # new_ipv6_packet: the traffic class and hop limit where IPv4 has TOS and TTL
        return Ipv6Hdr(saddr, daddr, IPPROTO_TCP, hop_limit=ttl, tclass=tos).to_bytes(len(segment)) + segment
    return IpHdr(saddr, daddr, IPPROTO_TCP, ttl=ttl, tos=tos).to_bytes(len(segment)) + segment


def _live_ecr(script_ecr: int, conn: Connection) -> int:
    if script_ecr in conn.ts_vals:
        return conn.ts_vals[script_ecr]
    if script_ecr == 0:
        return 0
    raise DrillMismatch(f"unable to infer live TS ecr for script TS ecr {script_ecr};  "
                        "no matching or preceding outbound TS val")


# -- outbound ------------------------------------------------------------------------------
class DrillMismatch(Exception):
    """The stack did not do what the script says; the text is packetdrill's."""


class NetHdr(NamedTuple):
    """What the runner reads of an IPv4 or IPv6 header: addresses as text, TOS or traffic
    class, TTL or hop limit (packetdrill checks `tos` and `ttl` against either)."""
    saddr: str
    daddr: str
    tos: int
    ttl: int


@dataclass
class Seen:
    """An outbound TCP packet as the stack sent it, in the script's numbers."""
    ip: NetHdr
    tcp: TcpHdr
    payload: int
    seq: int
    ack: int
    options: list[TcpOption]
    usecs: int = 0     # when, since the script started


def parse_outbound(data: bytes) -> tuple[NetHdr, TcpHdr, int] | None:
    """An IPv4 or IPv6 TCP packet's headers and payload length; None for anything else (an
    IPv6 packet with extension headers too: no stack under test sends TCP with them)."""
    if len(data) >= 20 and data[0] >> 4 == 4:
        ip4 = IpHdr.from_bytes(data, verify_csum=False)
        if ip4.protocol != IPPROTO_TCP:
            return None
        ip, l4 = NetHdr(ip_to_str(ip4.saddr), ip_to_str(ip4.daddr), ip4.tos, ip4.ttl), data[ip4.header_len:ip4.tot_len]
    elif len(data) >= IPV6_HLEN and data[0] >> 4 == 6:
        ip6 = Ipv6Hdr.from_bytes(data)
        if ip6.nexthdr != IPPROTO_TCP:
            return None
        ip, l4 = NetHdr(ip6_to_str(ip6.saddr), ip6_to_str(ip6.daddr), ip6.tclass, ip6.hop_limit), \
            data[IPV6_HLEN:IPV6_HLEN + ip6.payload_len]
    else:
        return None
    tcp = TcpHdr.from_bytes(l4)
    return ip, tcp, len(l4) - tcp.header_len


def decode_options(raw: bytes) -> list[TcpOption]:
    out, i = [], 0
    while i < len(raw):
        kind = raw[i]
        if kind in (0, 1):
            out.append(TcpOption(KIND_NAMES[kind]))
            i += 1
            continue
        length = raw[i + 1] if i + 1 < len(raw) else 0
        body = raw[i + 2:i + max(length, 2)]
        name = KIND_NAMES.get(kind, f"kind{kind}")
        if name == "mss" and len(body) == 2:
            out.append(TcpOption(name, value=struct.unpack("!H", body)[0]))
        elif name == "wscale" and len(body) == 1:
            out.append(TcpOption(name, value=body[0]))
        elif name == "TS" and len(body) == 8:
            val, ecr = struct.unpack("!II", body)
            out.append(TcpOption(name, val=val, ecr=ecr))
        elif name == "sack":
            blocks = tuple(struct.unpack_from("!II", body, j) for j in range(0, len(body) - 7, 8))
            out.append(TcpOption(name, blocks=blocks))
        else:
            out.append(TcpOption(name, data=bytes(body)))
        i += max(length, 2)
    return out


def to_script(ip: NetHdr, tcp: TcpHdr, payload: int, conn: Connection, script: Packet, usecs: int) -> Seen:
    """A stack's packet in the script's numbers (tcp_convert_seq_number, map_outbound_live_packet)."""
    syn = tcp.syn
    seq = (tcp.seq - conn.local_offset(syn)) & MASK
    ack = (tcp.ack_seq - conn.remote_offset(syn)) & MASK if tcp.ack else tcp.ack_seq
    options = []
    script_ts = next((o for o in script.options or () if o.kind == "TS"), None)
    for opt in decode_options(tcp.options):
        if opt.kind == "sack":
            opt = TcpOption("sack", blocks=tuple(((a - conn.remote_offset(syn)) & MASK,
                                                  (b - conn.remote_offset(syn)) & MASK) for a, b in opt.blocks))
        elif opt.kind == "TS" and script_ts is not None:
            conn.ts_vals[script_ts.val] = opt.val
            if conn.first_ts is None:
                conn.first_ts = (script_ts.val, opt.val)
            opt = TcpOption("TS", val=(conn.first_ts[0] + opt.val - conn.first_ts[1]) & MASK, ecr=opt.ecr)
        options.append(opt)
    return Seen(ip, tcp, payload, seq, ack, options, usecs)


def aggregate(first: Seen, more: Seen) -> Seen:
    """Two segments the stack sent back to back, as the one the script expects
    (aggregate_packets: the last one's headers, the first one's seq and CWR: GSO sets CWR
    on the first segment only)."""
    cwr = FLAG_BITS["W"]
    tcp = more.tcp._replace(flags=more.tcp.flags & ~cwr | first.tcp.flags & cwr)
    return Seen(more.ip, tcp, first.payload + more.payload, first.seq, more.ack, more.options, more.usecs)


def _field(name: str, expected: int, actual: int) -> None:
    if expected != actual:
        raise DrillMismatch(f"live packet field {name}: expected: {expected} ({expected:#x}) vs actual: {actual} "
                            f"({actual:#x})")


def verify(script: Packet, seen: Seen) -> None:
    """verify_outbound_live_packet: the first difference, in packetdrill's order and words."""
    if script.protocol != "tcp":
        raise Unsupported(f"outbound {script.protocol} packets")
    if seen.payload != script.length:
        raise DrillMismatch(f"live packet payload: expected {script.length} bytes vs actual {seen.payload} bytes")
    ip, tcp = seen.ip, seen.tcp
    if script.ecn == "ect01":
        if ip.tos & 3 not in (1, 2):
            raise DrillMismatch(f"live packet field ip_ecn: expected: 0x1 or 0x2 vs actual: {ip.tos & 3:#x}")
    elif script.ecn is not None:
        _field("ip_ecn", ECN_BITS[script.ecn], ip.tos & 3)
    if script.tos is not None:
        _field("tos", script.tos, ip.tos)
    if script.ttl is not None:
        _field("ttl", script.ttl, ip.ttl)
    if script.options is not None:
        _field("tcp_data_offset", 5 + sum(o.size for o in script.options) // 4, tcp.doff)
    bits, actual = flag_bits(script.flags), wire_flags(tcp)
    ace = any(c.isdigit() for c in script.flags)  # FLAG_PARSE_ACE: AE, CWR and ECE checked as one number
    for name, bit in (("fin", 0x01), ("syn", 0x02), ("rst", 0x04), ("psh", 0x08), ("ack", 0x10), ("urg", 0x20),
                      *(() if ace else (("ece", 0x40), ("cwr", 0x80), ("ae", AE)))):
        _field(f"tcp_{name}", int(bool(bits & bit)), int(bool(actual & bit)))
    if ace:
        _field("tcp_ace", ace_field(bits), ace_field(actual))
    _field("tcp_seq", script.seq & MASK, seen.seq)
    _field("tcp_ack_seq", script.ack & MASK, seen.ack)
    if script.win is not None:
        _field("tcp_window", script.win, tcp.window)
    _field("tcp_urg_ptr", script.urg, tcp.urg_ptr)
    if script.options is not None:
        _verify_options(script.options, seen.options)


def _verify_options(expected: list[TcpOption], actual: list[TcpOption]) -> None:
    if [o.kind for o in expected] != [o.kind for o in actual]:
        raise DrillMismatch("bad outbound TCP options")
    for want, got in zip(expected, actual):
        if want.kind in ("nop", "eol", "TS"):  # TS val only with --tcp_ts_tick_usecs; ecr never
            continue
        if want.size != got.size:
            raise DrillMismatch(f"bad lengths for outbound TCP option {OPTION_KINDS[want.kind]}")
        if encode_option(want) != encode_option(got):
            raise DrillMismatch(f"bad value outbound TCP option {OPTION_KINDS[want.kind]}")


# -- dumps -----------------------------------------------------------------------------------
def option_text(opt: TcpOption) -> str:
    if opt.kind in ("mss", "wscale"):
        return f"{opt.kind} {opt.value}"
    if opt.kind == "TS":
        return f"TS val {opt.val} ecr {opt.ecr}"
    if opt.kind == "sack":
        return "sack " + " ".join(f"{a}:{b}" for a, b in opt.blocks)
    if opt.kind in ("md5", "FO", "FOEXP"):
        return f"{opt.kind} {opt.data.hex()}"
    return opt.kind


def dump(flags: int, seq: int, payload: int, ack: int, win: int | None, options) -> str:
    """packetdrill's DUMP_SHORT: `P. 1:1001(1000) ack 1 win 257 <nop,nop,TS val 1 ecr 2>`."""
    text = "".join(c for c in DUMP_ORDER if flags & FLAG_BITS[c])
    text += f" {seq}:{(seq + payload) & MASK}({payload})"
    if flags & FLAG_BITS["."]:
        text += f" ack {ack}"
    if win is not None:
        text += f" win {win}"
    if options is None:
        return text + " <...>"
    if options:
        text += " <" + ",".join(option_text(o) for o in options) + ">"
    return text


def script_dump(pkt: Packet) -> str:
    return dump(flag_bits(pkt.flags), pkt.seq, pkt.length, pkt.ack, pkt.win, pkt.options)


def seen_dump(seen: Seen) -> str:
    return dump(wire_flags(seen.tcp), seen.seq, seen.payload, seen.ack, seen.tcp.window, seen.options)


def endpoints(ip: NetHdr, tcp: TcpHdr) -> tuple[str, int, str, int]:
    return ip.saddr, tcp.source, ip.daddr, tcp.dest
