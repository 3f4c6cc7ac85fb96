"""The orchestrator's web dashboard: the JSON behind it and the static page.

What it models is what a kernel developer assembles by hand from several tools:
the topology with each layer's counters (netstat, softnet_stat, /proc/net/dev,
and — for every packet, sampled or not — each layer's latency histogram and its
COPY/CLONE/DMA counts), the recent packets the orchestrator collected (pwru's
view), and one packet's journey as a waterfall of layer visits across hosts, with
the events in each visit and the sk_buff's headers as each layer saw them at
skb->data (the ENTER and EXIT snapshots), decoded with the wire codecs.

The functions that build the JSON are pure (journeys, counter groups, topology
in; dicts out); `Dashboard` wires them to the orchestrator's store and to a
callable that fetches every layer's counters, as HTTP routes for the service's
HTTP server (pktpath.metrics.MetricsServer). The page itself is plain files
under web/, no build step and nothing fetched from elsewhere.
"""

import json
import struct
import time
from importlib import resources
from typing import Callable
from urllib.parse import unquote_plus

from pktpath.config import LAYERS
from pktpath.counters import DROPS, MOVE_BYTES, MOVES
from pktpath.metrics import BUCKETS_US, LATENCY
from pktpath.pb import name_of, orchestrator_pb2, skbuff_pb2, trace_pb2
from pktpath.services.orchestrator.journey import Journey
from pktpath.services.orchestrator.spans import trace_id
from pktpath.services.orchestrator.store import PacketStore, Query
from pktpath.trace import PROTOCOLS
from pktpath.wire import ArpHdr, EthHdr, IcmpHdr, IpHdr, TcpHdr, TruncatedError, UdpHdr, WireError
from pktpath.wire.addr import ip6_to_str, ip_to_str, mac_to_str
from pktpath.wire.arp import ARPOP_REPLY, ARPOP_REQUEST
from pktpath.wire.ethernet import ETH_P_ARP, ETH_P_IP, ETH_P_IPV6
from pktpath.wire.icmp import ICMP_DEST_UNREACH, ICMP_ECHO, ICMP_ECHOREPLY, ICMP_FRAG_NEEDED, ICMP_HLEN
from pktpath.wire.icmpv6 import (ICMPV6_ECHO_REPLY, ICMPV6_ECHO_REQUEST, ICMPV6_HLEN, ICMPV6_PARAMPROB,
                                 ICMPV6_PKT_TOOBIG, NDISC_NEIGHBOUR_ADVERTISEMENT, NDISC_NEIGHBOUR_SOLICITATION,
                                 NDISC_REDIRECT, Icmp6Hdr)
from pktpath.wire.ipv4 import IP_DF, IP_MF, IP_OFFSET, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP
from pktpath.wire.ipv6 import (IP6_MF, IP6_OFFSET, IPPROTO_ICMPV6, NEXTHDR_DEST, NEXTHDR_FRAGMENT, NEXTHDR_HOP,
                               NEXTHDR_ROUTING, Ipv6FragHdr, Ipv6Hdr)
from pktpath.wire.tcp import (TcpOptEol, TcpOptMss, TcpOptNop, TcpOptSack, TcpOptSackPerm, TcpOptTimestamp,
                              TcpOptWindow)
from pktpath.wire.udp import UDP_HLEN

pb = skbuff_pb2
MOVE_KINDS = ("COPY", "CLONE", "DMA")
JSON = "application/json; charset=utf-8"
STATIC = {  # path -> (file under web/, content type)
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/dashboard.js": ("dashboard.js", "text/javascript; charset=utf-8"),
    "/dashboard.css": ("dashboard.css", "text/css; charset=utf-8"),
}
DEFAULT_LIMIT, MAX_LIMIT = 50, 1000
_ICMP_TYPES = {0: "echo reply", 3: "destination unreachable", 4: "source quench", 5: "redirect", 8: "echo request",
               11: "time exceeded", 12: "parameter problem"}
_ICMP6_TYPES = {1: "destination unreachable", 2: "packet too big", 3: "time exceeded", 4: "parameter problem",
                128: "echo request", 129: "echo reply", 130: "multicast listener query",
                131: "multicast listener report", 132: "multicast listener done", 133: "router solicitation",
                134: "router advertisement", 135: "neighbor solicitation", 136: "neighbor advertisement",
                137: "redirect", 143: "multicast listener report v2"}
_EXT_NAMES = {NEXTHDR_HOP: ("ipv6-hopopts", "hop-by-hop options"), NEXTHDR_ROUTING: ("ipv6-route", "routing"),
              NEXTHDR_FRAGMENT: ("ipv6-frag", "fragment"), NEXTHDR_DEST: ("ipv6-dstopts", "destination options")}
_TCP_FLAGS = ((0x01, "FIN"), (0x02, "SYN"), (0x04, "RST"), (0x08, "PSH"), (0x10, "ACK"), (0x20, "URG"),
              (0x40, "ECE"), (0x80, "CWR"))


class BadRequest(ValueError):
    """A query the API cannot answer: HTTP 400."""


# -- counters -----------------------------------------------------------------------------

def quantile(q: float, buckets: dict[str, int]) -> float | None:
    """The q-quantile in µs of a Latency group (counts per bucket, not cumulative), estimated
    as Prometheus's histogram_quantile does: linearly inside the bucket the rank falls in
    (from 0 for the first). A rank in the overflow bucket gives the highest finite bound.
    None when nothing was observed."""
    counts = [buckets.get(f"le_{b}us", 0) for b in BUCKETS_US]
    total = sum(counts) + buckets.get("le_inf", 0)
    if total <= 0:
        return None
    rank = q * total
    seen, lower = 0, 0.0
    for bound, n in zip(BUCKETS_US, counts):
        if n and seen + n >= rank:
            return lower + (bound - lower) * max(0.0, rank - seen) / n
        seen += n
        lower = float(bound)
    return float(BUCKETS_US[-1])


def latency_summary(group: dict[str, int]) -> dict:
    """A layer's Latency group: count, mean, p50, p99 (µs) and the buckets in order."""
    count = group.get("count", 0)
    buckets = [{"le_us": b, "n": group.get(f"le_{b}us", 0)} for b in BUCKETS_US]
    buckets.append({"le_us": None, "n": group.get("le_inf", 0)})
    return {"count": count, "sum_ns": group.get("sum_ns", 0),
            "mean_us": group.get("sum_ns", 0) / count / 1000 if count else None,
            "p50_us": quantile(0.5, group), "p99_us": quantile(0.99, group), "buckets": buckets}


def moves_summary(moves: dict[str, int], move_bytes: dict[str, int]) -> dict:
    """The Moves/MoveBytes groups ("COPY skb_copy_datagram_msg" -> times, bytes) by kind,
    each with its kernel functions, the most frequent first."""
    out = {kind: {"count": 0, "bytes": 0, "by_func": []} for kind in MOVE_KINDS}
    for name in sorted(set(moves) | set(move_bytes)):
        kind, _, func = name.partition(" ")
        entry = out.setdefault(kind, {"count": 0, "bytes": 0, "by_func": []})
        n, nbytes = moves.get(name, 0), move_bytes.get(name, 0)
        entry["count"] += n
        entry["bytes"] += nbytes
        entry["by_func"].append({"func": func, "count": n, "bytes": nbytes})
    for entry in out.values():
        entry["by_func"].sort(key=lambda f: (-f["count"], f["func"]))
    return out


def layer_summary(groups: dict[str, dict[str, int]]) -> dict:
    """What the topology shows of one layer: packets (those its latency histogram
    observed: every packet, sampled or not), latency, moves, drops."""
    latency = latency_summary(groups.get(LATENCY, {}))
    drops = groups.get(DROPS, {})
    return {"packets": latency["count"], "latency": latency,
            "moves": moves_summary(groups.get(MOVES, {}), groups.get(MOVE_BYTES, {})),
            "drops": {"total": sum(drops.values()), "by_reason": dict(sorted(drops.items(), key=lambda i: -i[1]))}}


def merge_groups(many) -> dict[str, dict[str, int]]:
    """Counter groups summed (one layer across hosts)."""
    out: dict[str, dict[str, int]] = {}
    for groups in many:
        for group, values in groups.items():
            into = out.setdefault(group, {})
            for name, n in values.items():
                into[name] = into.get(name, 0) + n
    return out


def counters_json(topology, fetched: dict[tuple[str, str], dict | None], orchestrator: dict | None = None) -> dict:
    """Every host's layers (up or not, their groups and summary), each layer summed over
    the hosts, and the orchestrator's own counters. `fetched` maps (host, layer) to the
    layer's groups, None for a layer that did not answer."""
    hosts = []
    for h in topology.hosts:
        layers = {}
        for layer in LAYERS:
            groups = fetched.get((h.name, layer))
            layers[layer] = {"up": groups is not None, "groups": groups or {},
                             "summary": layer_summary(groups or {})}
        hosts.append({"name": h.name, "layers": layers})
    totals = {layer: layer_summary(merge_groups(fetched.get((h.name, layer)) or {} for h in topology.hosts))
              for layer in LAYERS}
    return {"hosts": hosts, "totals": totals, "orchestrator": orchestrator or {}}


# -- topology -----------------------------------------------------------------------------

def topology_json(topology, addrs) -> dict:
    hosts = [{"name": h.name, "forwarding": h.forwarding,
              "interfaces": [{"name": i.name, "mac": i.mac, "addr": str(i.addr), "addr6": [str(a) for a in i.addr6],
                              "mtu": i.mtu} for i in h.interfaces],
              "layers": [{"layer": layer, "target": addrs.target(h.name, layer), "http": addrs.http(h.name, layer)}
                         for layer in LAYERS]}
             for h in topology.hosts]
    links = [{"a": {"host": lk.a.host, "dev": lk.a.dev}, "b": {"host": lk.b.host, "dev": lk.b.dev},
              "loss": lk.loss, "corrupt": lk.corrupt, "duplicate": lk.duplicate, "reorder": lk.reorder,
              "delay_ms": lk.delay_ms} for lk in topology.links]
    return {"name": topology.name, "layers": list(LAYERS), "hosts": hosts, "links": links}


# -- header snapshots -----------------------------------------------------------------------

def _flags(value: int, names) -> str:
    return " ".join(name for bit, name in names if value & bit)


def _header(proto: str, offset: int, length: int, summary: str, fields: list) -> dict:
    return {"proto": proto, "offset": offset, "len": length, "summary": summary,
            "fields": [[name, str(value)] for name, value in fields]}


def _tcp_options(tcp: TcpHdr) -> str:
    out = []
    for opt in tcp.parsed_options(strict=False):
        if isinstance(opt, TcpOptMss):
            out.append(f"mss {opt.mss}")
        elif isinstance(opt, TcpOptWindow):
            out.append(f"wscale {opt.snd_wscale}")
        elif isinstance(opt, TcpOptSackPerm):
            out.append("sackOK")
        elif isinstance(opt, TcpOptTimestamp):
            out.append(f"TS val {opt.tsval} ecr {opt.tsecr}")
        elif isinstance(opt, TcpOptSack):
            out.append("sack " + " ".join(f"{left}:{right}" for left, right in opt.blocks))
        elif isinstance(opt, TcpOptNop):
            out.append("nop")
        elif isinstance(opt, TcpOptEol):
            out.append("eol")
        else:
            out.append(repr(opt))
    return ", ".join(out)


def _l4(protocol: int, data: bytes, offset: int, out: list) -> int:
    """The transport header at data (struct udphdr, tcphdr, icmphdr); returns its length."""
    if protocol == IPPROTO_UDP:
        try:
            udp = UdpHdr.from_bytes(data)
        except TruncatedError:  # the snapshot ends before the datagram does: the fixed header is all here
            if len(data) < UDP_HLEN:
                raise
            udp = UdpHdr._make(struct.unpack_from("!HHHH", data))
        out.append(_header("udp", offset, UDP_HLEN, f"UDP {udp.source} > {udp.dest}, len {udp.len}",
                           [("source", udp.source), ("dest", udp.dest), ("len", udp.len),
                            ("check", f"0x{udp.check:04x}")]))
        return UDP_HLEN
    if protocol == IPPROTO_TCP:
        tcp = TcpHdr.from_bytes(data)
        flags = _flags(tcp.flags, _TCP_FLAGS)
        fields = [("source", tcp.source), ("dest", tcp.dest), ("seq", tcp.seq), ("ack_seq", tcp.ack_seq),
                  ("doff", tcp.doff), ("flags", f"0x{tcp.flags:02x} {flags}".strip()), ("window", tcp.window),
                  ("check", f"0x{tcp.check:04x}"), ("urg_ptr", tcp.urg_ptr)]
        if tcp.options:
            fields.append(("options", _tcp_options(tcp)))
        out.append(_header("tcp", offset, tcp.header_len,
                           f"TCP {tcp.source} > {tcp.dest} [{tcp.flag_str() or 'none'}] seq {tcp.seq}", fields))
        return tcp.header_len
    if protocol == IPPROTO_ICMP:
        try:
            icmp = IcmpHdr.from_bytes(data, verify_csum=False)
        except TruncatedError:  # an error message whose quote the snapshot cut short
            if len(data) < ICMP_HLEN:
                raise
            t, c, check, un = struct.unpack_from("!BBHI", data)
            icmp = IcmpHdr(t, c, un, check)
        what = _ICMP_TYPES.get(icmp.type, f"type {icmp.type}")
        fields = [("type", f"{icmp.type} ({what})"), ("code", icmp.code), ("checksum", f"0x{icmp.checksum:04x}")]
        if icmp.type in (ICMP_ECHO, ICMP_ECHOREPLY):
            fields += [("un.echo.id", icmp.echo_id), ("un.echo.sequence", icmp.echo_sequence)]
            what += f", id {icmp.echo_id}, seq {icmp.echo_sequence}"
        elif icmp.type == ICMP_DEST_UNREACH and icmp.code == ICMP_FRAG_NEEDED:
            fields.append(("un.frag.mtu", icmp.mtu))
        else:
            fields.append(("un.gateway", f"0x{icmp.gateway:08x}"))
        out.append(_header("icmp", offset, ICMP_HLEN, f"ICMP {what}", fields))
        return ICMP_HLEN
    if protocol == IPPROTO_ICMPV6:
        return _icmp6(data, offset, out)
    return 0


def _icmp6(data: bytes, offset: int, out: list) -> int:
    """struct icmp6hdr (the checksum not verified: a snapshot has only the message's start),
    and a neighbour solicitation's or advertisement's target (struct nd_msg)."""
    icmp = Icmp6Hdr.from_bytes(data, 0, 0, verify_csum=False)
    what = _ICMP6_TYPES.get(icmp.type, f"type {icmp.type}")
    fields = [("icmp6_type", f"{icmp.type} ({what})"), ("icmp6_code", icmp.code),
              ("icmp6_cksum", f"0x{icmp.checksum:04x}")]
    length = ICMPV6_HLEN
    if icmp.type in (ICMPV6_ECHO_REQUEST, ICMPV6_ECHO_REPLY):
        fields += [("icmp6_identifier", icmp.identifier), ("icmp6_sequence", icmp.sequence)]
        what += f", id {icmp.identifier}, seq {icmp.sequence}"
    elif icmp.type == ICMPV6_PKT_TOOBIG:
        fields.append(("icmp6_mtu", icmp.mtu))
        what += f", mtu {icmp.mtu}"
    elif icmp.type == ICMPV6_PARAMPROB:
        fields.append(("icmp6_pointer", icmp.pointer))
    elif icmp.type in (NDISC_NEIGHBOUR_SOLICITATION, NDISC_NEIGHBOUR_ADVERTISEMENT, NDISC_REDIRECT) \
            and len(data) >= ICMPV6_HLEN + 16:
        target = ip6_to_str(int.from_bytes(data[ICMPV6_HLEN:ICMPV6_HLEN + 16], "big"))
        fields += [("icmp6_dataun", f"0x{icmp.un:08x}"), ("target", target)]
        what += f", {'who has' if icmp.type == NDISC_NEIGHBOUR_SOLICITATION else 'tgt is'} {target}"
        length += 16
    else:
        fields.append(("icmp6_dataun", f"0x{icmp.un:08x}"))
    out.append(_header("icmp6", offset, length, f"ICMPv6 {what}", fields))
    return length


def _ip(data: bytes, offset: int, out: list) -> tuple[int, int | None]:
    """struct iphdr at data; returns its length and the protocol of what follows it (None
    for a fragment past the first, which carries no transport header)."""
    ip = IpHdr.from_bytes(data, verify_csum=False, quoted=True)  # a snapshot: the datagram is cut short
    frag = _flags(ip.frag_off, ((0x8000, "CE"), (IP_DF, "DF"), (IP_MF, "MF")))
    proto = PROTOCOLS.get(ip.protocol, str(ip.protocol))
    fields = [("version", 4), ("ihl", ip.ihl), ("tos", f"0x{ip.tos:02x}"), ("tot_len", ip.tot_len), ("id", ip.id),
              ("frag_off", f"0x{ip.frag_off:04x} {frag} offset {ip.frag_offset}".replace("  ", " ")),
              ("ttl", ip.ttl), ("protocol", f"{ip.protocol} ({proto})"), ("check", f"0x{ip.check:04x}"),
              ("saddr", ip_to_str(ip.saddr)), ("daddr", ip_to_str(ip.daddr))]
    if ip.options:
        fields.append(("options", ip.options.hex()))
    summary = f"IPv4 {ip_to_str(ip.saddr)} > {ip_to_str(ip.daddr)} {proto}, ttl {ip.ttl}, tot_len {ip.tot_len}"
    out.append(_header("ipv4", offset, ip.header_len, summary, fields))
    return ip.header_len, None if ip.frag_off & IP_OFFSET else ip.protocol


def _ip6(data: bytes, offset: int, out: list) -> tuple[int, int | None]:
    """struct ipv6hdr at data, then its extension headers (hop-by-hop, routing, fragment,
    destination options: ipv6_skip_exthdr's walk, each its own header); returns their length
    and the upper-layer protocol (None for a fragment past the first, which carries no
    transport header, or when the snapshot ends inside an extension header)."""
    ip = Ipv6Hdr.from_bytes(data, quoted=True)  # a snapshot: the packet is cut short
    proto = PROTOCOLS.get(ip.nexthdr, str(ip.nexthdr))
    fields = [("version", 6), ("tclass", f"0x{ip.tclass:02x}"), ("flow_lbl", f"0x{ip.flow_lbl:05x}"),
              ("payload_len", ip.payload_len), ("nexthdr", f"{ip.nexthdr} ({proto})"), ("hop_limit", ip.hop_limit),
              ("saddr", ip6_to_str(ip.saddr)), ("daddr", ip6_to_str(ip.daddr))]
    n, off, nexthdr = len(data), ip.header_len, ip.nexthdr
    headers, upper = [], nexthdr
    while nexthdr in (NEXTHDR_HOP, NEXTHDR_ROUTING, NEXTHDR_FRAGMENT, NEXTHDR_DEST):
        name, what = _EXT_NAMES[nexthdr]
        hlen = 8 if nexthdr == NEXTHDR_FRAGMENT or n < off + 2 else (data[off + 1] + 1) << 3  # ipv6_optlen
        if off + hlen > n:  # shown as far as the snapshot goes, nothing after it
            headers.append(_header(name, offset + off, n - off, f"IPv6 {what} header, cut short by the snapshot",
                                   []))
            off, upper = n, None
            break
        if nexthdr == NEXTHDR_FRAGMENT:
            fh = Ipv6FragHdr.from_bytes(data, off)
            more = " MF" if fh.frag_off & IP6_MF else ""
            headers.append(_header(name, offset + off, hlen,
                                   f"IPv6 fragment offset {fh.frag_offset}{more}, id 0x{fh.identification:08x}",
                                   [("nexthdr", fh.nexthdr), ("frag_off", f"0x{fh.frag_off:04x}{more} offset "
                                                                          f"{fh.frag_offset}"),
                                    ("identification", f"0x{fh.identification:08x}")]))
            off, nexthdr = off + hlen, fh.nexthdr
            upper = None if fh.frag_off & IP6_OFFSET else nexthdr
            if upper is None:
                break
            continue
        headers.append(_header(name, offset + off, hlen, f"IPv6 {what} header, {hlen} bytes",
                               [("nexthdr", data[off]), ("hdrlen", data[off + 1])]))
        off, nexthdr = off + hlen, data[off]
        upper = nexthdr
    summary = (f"IPv6 {ip6_to_str(ip.saddr)} > {ip6_to_str(ip.daddr)} {PROTOCOLS.get(nexthdr, str(nexthdr))}, "
               f"hop_limit {ip.hop_limit}, payload_len {ip.payload_len}")
    out.append(_header("ipv6", offset, ip.header_len, summary, fields))
    out.extend(headers)
    return off, upper


def _eth(data: bytes, offset: int, out: list) -> tuple[int, int]:
    eth = EthHdr.from_bytes(data)
    fields = [("h_dest", mac_to_str(eth.h_dest)), ("h_source", mac_to_str(eth.h_source)),
              ("h_proto", f"0x{eth.h_proto:04x}" + {ETH_P_IP: " (ETH_P_IP)", ETH_P_ARP: " (ETH_P_ARP)",
                                                    ETH_P_IPV6: " (ETH_P_IPV6)"}.get(eth.h_proto, ""))]
    if eth.vlan_tci is not None:
        fields.append(("vlan_tci", f"0x{eth.vlan_tci:04x}"))
    out.append(_header("ethernet", offset, eth.header_len,
                       f"Ethernet {mac_to_str(eth.h_source)} > {mac_to_str(eth.h_dest)}", fields))
    return eth.header_len, eth.h_proto


def _arp(data: bytes, offset: int, out: list) -> int:
    arp = ArpHdr.from_bytes(data)
    op = {ARPOP_REQUEST: "request", ARPOP_REPLY: "reply"}.get(arp.ar_op, str(arp.ar_op))
    fields = [("ar_hrd", arp.ar_hrd), ("ar_pro", f"0x{arp.ar_pro:04x}"), ("ar_hln", arp.ar_hln),
              ("ar_pln", arp.ar_pln), ("ar_op", f"{arp.ar_op} ({op})"), ("ar_sha", mac_to_str(arp.ar_sha)),
              ("ar_sip", ip_to_str(arp.ar_sip)), ("ar_tha", mac_to_str(arp.ar_tha)), ("ar_tip", ip_to_str(arp.ar_tip))]
    summary = (f"ARP who-has {ip_to_str(arp.ar_tip)} tell {ip_to_str(arp.ar_sip)}" if arp.ar_op == ARPOP_REQUEST
               else f"ARP {ip_to_str(arp.ar_sip)} is-at {mac_to_str(arp.ar_sha)}")
    out.append(_header("arp", offset, arp.header_len, summary, fields))
    return arp.header_len


def decode_head(head: bytes, head_type: str, protocol: int | None = None) -> list[dict]:
    """The headers in a snapshot of the bytes at skb->data, outermost first, each with its
    offset and length in the snapshot, then what follows as "data". head_type says which
    header starts there; for "l4" the packet's protocol (from its flow) says which one.
    A header the snapshot cannot hold or that does not parse ends the decoding with an
    "error" entry: what the bytes are is still in the hex dump."""
    out: list[dict] = []
    off, data = 0, bytes(head)
    try:
        if head_type == "eth":
            n, h_proto = _eth(data, 0, out)
            off += n
            head_type = "ip" if h_proto in (ETH_P_IP, ETH_P_IPV6) else "arp" if h_proto == ETH_P_ARP else "data"
        if head_type == "arp":
            off += _arp(data[off:], off, out)
            head_type = "data"
        if head_type == "ip":
            n, protocol = (_ip6 if data[off:off + 1] and data[off] >> 4 == 6 else _ip)(data[off:], off, out)
            off += n
            head_type = "l4" if protocol is not None else "data"
        if head_type == "l4" and protocol is not None:
            off += _l4(protocol, data[off:], off, out)
    except WireError as exc:
        out.append({"proto": "error", "offset": off, "len": len(data) - off, "summary": str(exc), "fields": []})
        return out
    if off < len(data):
        rest = data[off:]
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in rest[:48])
        out.append(_header("data", off, len(rest), f"{len(rest)} bytes in the snapshot: {text}", []))
    return out


def hexdump(data: bytes) -> list[str]:
    """hexdump -C's lines: offset, 16 bytes in hex, the printable ones."""
    lines = []
    for i in range(0, len(data), 16):
        chunk = data[i:i + 16]
        hexes = " ".join(f"{b:02x}" for b in chunk)
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{i:04x}  {hexes:<47}  |{text}|")
    return lines


# -- packets --------------------------------------------------------------------------------

def _id(value: int) -> str:
    # Packet ids are 64-bit: as JSON numbers they would lose digits in JavaScript.
    return str(value) if value else ""


def parse_id(text: str) -> int:
    try:
        return int(text, 0) if text.lower().startswith("0x") else int(text)
    except ValueError:
        raise BadRequest(f"not a packet id: {text!r}") from None


def _event_json(e, t0: int) -> dict:
    d = {"kind": name_of(pb.EventKind, e.kind), "func": e.func, "t_ns": e.ts_ns - t0, "bytes": e.bytes}
    if e.kind == pb.COPY:
        d["copy_from"], d["copy_to"] = e.copy_from, e.copy_to
    if e.kind == pb.DROP:
        d["reason"] = name_of(pb.DropReason, e.reason)
    return d


def _head_json(e, at: str, protocol: int | None) -> dict:
    return {"at": at, "func": e.func, "len": e.bytes, "head_type": e.head_type, "hex": e.head.hex(),
            "headers": decode_head(e.head, e.head_type, protocol), "hexdump": hexdump(e.head)}


def _moves(events) -> dict:
    out = {kind: {"count": 0, "bytes": 0} for kind in MOVE_KINDS}
    for e in events:
        kind = name_of(pb.EventKind, e.kind)
        if kind in out:
            out[kind]["count"] += 1
            out[kind]["bytes"] += e.bytes
    return out


def packet_summary(j: Journey, now_ns: int | None = None) -> dict:
    """One row of the recent packets."""
    outcome, reason = j.outcome()
    events = j.events
    hosts = list(dict.fromkeys(e.host for e in events))
    d = {"id": _id(j.id), "id_hex": f"{j.id:#x}", "origin_host": j.origin_host, "flow": str(j.flow) if j.flow else "",
         "protocol": PROTOCOLS.get(j.flow.protocol, str(j.flow.protocol)) if j.flow else "",
         "outcome": outcome, "drop_reason": reason, "trace_id": f"{trace_id(j.origin_host, j.id):032x}",
         "clone_of": _id(j.clone_of), "copy_of": _id(j.copy_of), "hosts": hosts, "events": len(events),
         "visits": len(j.visits()), "duration_ns": events[-1].ts_ns - events[0].ts_ns if events else 0,
         "moves": _moves(events)}
    if events and now_ns is not None:
        d["age_s"] = max(0.0, (now_ns - events[-1].ts_ns) / 1e9)
    return d


def journey_json(j: Journey) -> dict:
    """One packet's journey: its summary, and its visits as waterfall rows (times in ns from
    its first event), each with its events and the headers at entry and exit."""
    d = packet_summary(j)
    events = j.events
    t0 = events[0].ts_ns if events else 0
    protocol = j.flow.protocol if j.flow else None
    # Visit() keeps the ENTER that opened it only as its func and start: find it again for its snapshot.
    enters = {(e.host, e.layer, e.ts_ns, e.func): e for e in events if e.kind == pb.ENTER}
    rows = []
    for n, v in enumerate(j.visits()):
        heads, inside = [], []
        enter = enters.get((v.host, v.layer, v.start_ns, v.func))
        if enter is not None and all(x is not enter for x in v.events):
            heads.append(_head_json(enter, "enter", protocol))
        for e in v.events:
            if e.kind in (pb.ENTER, pb.EXIT):
                heads.append(_head_json(e, "enter" if e.kind == pb.ENTER else "exit", protocol))
            else:
                inside.append(_event_json(e, t0))
        exits = [e for e in v.events if e.kind == pb.EXIT]
        drop = next((e for e in v.events if e.kind == pb.DROP), None)
        rows.append({"n": n, "host": v.host, "layer": v.layer_name, "func": v.func,
                     "exit_func": exits[-1].func if exits else "", "start_ns": v.start_ns - t0,
                     "end_ns": v.end_ns - t0, "duration_ns": v.end_ns - v.start_ns, "len": v.length,
                     "exit_len": exits[-1].bytes if exits else None,
                     "dropped": name_of(pb.DropReason, drop.reason) if drop else "", "events": inside, "heads": heads})
    d["visits"] = rows
    d["visit_count"] = len(rows)
    return d


FILTER_FIELDS = {"addr": str, "port": int, "protocol": str, "saddr": str, "daddr": str, "sport": int, "dport": int}


def packet_query(params: dict[str, str]) -> orchestrator_pb2.PacketQuery:
    """/api/packets' parameters as a PacketQuery: id, origin_host, host, layer, drop_reason
    ("any" or a reason), limit, and the flow filter's addr, port, protocol, saddr, daddr,
    sport, dport."""
    q = orchestrator_pb2.PacketQuery()
    try:
        limit = int(params.get("limit") or DEFAULT_LIMIT)
        flt = {k: conv(params[k]) for k, conv in FILTER_FIELDS.items() if params.get(k)}
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    q.limit = max(1, min(limit, MAX_LIMIT))
    if params.get("id"):
        q.id = parse_id(params["id"])
    for name in ("origin_host", "host", "layer", "drop_reason"):
        if params.get(name):
            setattr(q, name, params[name])
    q.filter.CopyFrom(trace_pb2.PacketFilter(**flt))
    return q


def find_journey(store: PacketStore, host: str, packet_id: int) -> Journey | None:
    found = store.query(Query(orchestrator_pb2.PacketQuery(id=packet_id, origin_host=host, limit=1)))
    return found[0] if found else None


# -- HTTP -----------------------------------------------------------------------------------

def _json(status: int, body) -> tuple[int, str, bytes]:
    return status, JSON, json.dumps(body, separators=(",", ":")).encode()


class Dashboard:
    """The routes: the page, /api/topology, /api/counters, /api/packets, /api/packet."""

    def __init__(self, topology, addrs, store: PacketStore, layer_counters: Callable[[], dict],
                 own_counters: Callable[[], dict] | None = None, sampling: Callable[[], dict] | None = None) -> None:
        self.topology = topology
        self.addrs = addrs
        self.store = store
        self.layer_counters = layer_counters
        self.own_counters = own_counters or (lambda: {})
        self.sampling = sampling or (lambda: {})

    def routes(self) -> dict[str, Callable[[dict], tuple[int, str, bytes]]]:
        routes = {path: self._static(name, ctype) for path, (name, ctype) in STATIC.items()}
        api = {"/api/topology": self.topology_route, "/api/counters": self.counters_route,
               "/api/packets": self.packets_route, "/api/packet": self.packet_route}
        for path, handler in api.items():
            routes[path] = self._api(handler)
        return routes

    @staticmethod
    def _static(name: str, ctype: str):
        def serve(query):
            # Read at each request: small files, and an edited page shows without a restart.
            return 200, ctype, resources.files("pktpath.services.orchestrator").joinpath("web", name).read_bytes()
        return serve

    @staticmethod
    def _api(handler):
        def serve(query):
            params = {unquote_plus(k): unquote_plus(v) for k, v in query.items()}  # the server leaves them quoted
            try:
                return handler(params)
            except BadRequest as exc:
                return _json(400, {"error": str(exc)})
        return serve

    def topology_route(self, params):
        return _json(200, topology_json(self.topology, self.addrs))

    def counters_route(self, params):
        body = counters_json(self.topology, self.layer_counters(), self.own_counters())
        body["sampling"] = self.sampling()
        return _json(200, body)

    def packets_route(self, params):
        try:
            query = Query(packet_query(params))
        except ValueError as exc:  # a bad address, protocol, layer or drop reason
            raise BadRequest(str(exc)) from None
        now = time.time_ns()  # the layers' clock (skbuff.event_time_ns)
        packets = [packet_summary(j, now) for j in self.store.query(query)]
        return _json(200, {"packets": packets, "stored": len(self.store)})

    def packet_route(self, params):
        if not params.get("host") or not params.get("id"):
            raise BadRequest("give host= (the packet's origin host) and id=")
        j = find_journey(self.store, params["host"], parse_id(params["id"]))
        if j is None:
            return _json(404, {"error": f"no packet {params['host']}:{params['id']} in the store"})
        return _json(200, journey_json(j))
