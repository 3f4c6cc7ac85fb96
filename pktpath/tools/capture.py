"""tcpdump for pktpath: what a tap saw, as one-line summaries or a capture file.

A device tap (L2's, the wire's view) writes libpcap's classic format with
nanosecond timestamps (magic 0xa1b23c4d, LINKTYPE_ETHERNET), as tcpdump -w
does. A layer tap sees packets of several kinds at once (frames, IP packets,
segments with no IP header yet), and classic pcap has one link type per file,
so it writes pcapng: an interface per link type, each packet's direction in
epb_flags and the kernel function it entered through as its comment; a PDU
above IP goes as Wireshark's exported PDU (LINKTYPE_WIRESHARK_UPPER_PDU),
tagged with its protocol and the flow's addresses. tcpdump, tshark, Wireshark
and scapy read both.
"""

import struct
import time
from typing import BinaryIO

from pktpath.pcapfilter import compile_filter, ipv4_packet
from pktpath.taps import LINKTYPE_ETHERNET, LINKTYPE_IPV4, LINKTYPE_WIRESHARK_UPPER_PDU
from pktpath.wire import ArpHdr, EthHdr, IcmpHdr, IpHdr, TcpHdr, UdpHdr, WireError
from pktpath.wire.addr import ip_from_str, ip_to_str, mac_to_str
from pktpath.wire.checksum import csum_tcpudp, pseudo_header_sum, verifies
from pktpath.wire.arp import ARPOP_REPLY, ARPOP_REQUEST
from pktpath.wire.ethernet import ETH_P_ARP, ETH_P_IP
from pktpath.wire.ipv4 import IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP

PCAP_MAGIC_NS = 0xA1B23C4D
_PCAP_HDR = struct.Struct("<IHHiIII")
_PCAP_REC = struct.Struct("<IIII")
_ICMP_TYPES = {0: "echo reply", 3: "destination unreachable", 8: "echo request", 11: "time exceeded"}
LINKTYPE_NAMES = {LINKTYPE_ETHERNET: "EN10MB (Ethernet)", LINKTYPE_IPV4: "IPV4 (Raw IPv4)",
                  LINKTYPE_WIRESHARK_UPPER_PDU: "WIRESHARK_UPPER_PDU (above IP)"}


class PcapWriter:
    def __init__(self, f: BinaryIO, snaplen: int = 262144) -> None:
        self.f = f
        f.write(_PCAP_HDR.pack(PCAP_MAGIC_NS, 2, 4, 0, 0, snaplen, LINKTYPE_ETHERNET))

    def write(self, ts_ns: int, data: bytes, orig_len: int) -> None:
        sec, nsec = divmod(ts_ns, 1_000_000_000)
        self.f.write(_PCAP_REC.pack(sec, nsec, len(data), orig_len))
        self.f.write(data)


# -- pcapng (draft-ietf-opsawg-pcapng) -------------------------------------------
_SHB, _IDB, _EPB = 0x0A0D0D0A, 0x00000001, 0x00000006
OPT_COMMENT, IF_NAME, IF_TSRESOL, EPB_FLAGS = 1, 2, 9, 2
EPB_INBOUND, EPB_OUTBOUND = 1, 2
# Wireshark's exported PDU tags (epan/exported_pdu.h), big-endian TLVs padded to 4 bytes
EXP_PDU_TAG_END_OF_OPT, EXP_PDU_TAG_DISSECTOR_NAME, EXP_PDU_TAG_IPV4_SRC, EXP_PDU_TAG_IPV4_DST = 0, 12, 20, 21


def _pad4(b: bytes) -> bytes:
    return b + bytes(-len(b) % 4)


def _options(opts: list[tuple[int, bytes]]) -> bytes:
    if not opts:
        return b""
    return b"".join(struct.pack("<HH", code, len(v)) + _pad4(v) for code, v in opts) + struct.pack("<HH", 0, 0)


def _block(kind: int, body: bytes) -> bytes:
    total = 12 + len(body)
    return struct.pack("<II", kind, total) + body + struct.pack("<I", total)


def exported_pdu(upper: str, saddr: str, daddr: str) -> bytes:
    """The tags before an upper PDU: the dissector Wireshark runs on it, and the addresses
    its checksum and conversation need."""
    tags = [(EXP_PDU_TAG_DISSECTOR_NAME, upper.encode())]
    if saddr:
        tags.append((EXP_PDU_TAG_IPV4_SRC, ip_from_str(saddr).to_bytes(4, "big")))
    if daddr:
        tags.append((EXP_PDU_TAG_IPV4_DST, ip_from_str(daddr).to_bytes(4, "big")))
    return b"".join(struct.pack("!HH", tag, len(_pad4(v))) + _pad4(v) for tag, v in tags) + struct.pack(
        "!HH", EXP_PDU_TAG_END_OF_OPT, 0)


class PcapngWriter:
    """One section; an interface block the first time a link type appears."""

    def __init__(self, f: BinaryIO, name: str, snaplen: int = 262144) -> None:
        self.f, self.name, self.snaplen = f, name, snaplen
        self._ifaces: dict[int, int] = {}
        f.write(_block(_SHB, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)))

    def _iface(self, linktype: int) -> int:
        if linktype not in self._ifaces:
            opts = _options([(IF_NAME, self.name.encode()), (IF_TSRESOL, bytes([9]))])  # nanoseconds
            self.f.write(_block(_IDB, struct.pack("<HHI", linktype, 0, self.snaplen) + opts))
            self._ifaces[linktype] = len(self._ifaces)
        return self._ifaces[linktype]

    def write(self, frame) -> None:
        """A CapturedFrame (pktpath.v1) of a layer tap."""
        linktype = frame.linktype or LINKTYPE_ETHERNET
        data, length = frame.data, frame.len
        if linktype == LINKTYPE_WIRESHARK_UPPER_PDU:
            tags = exported_pdu(frame.upper, frame.saddr, frame.daddr)
            data, length = tags + data, length + len(tags)
        iface = self._iface(linktype)
        opts = [(EPB_FLAGS, struct.pack("<I", EPB_OUTBOUND if frame.outgoing else EPB_INBOUND))]
        if frame.func:
            opts.append((OPT_COMMENT, frame.func.encode()))
        body = struct.pack("<IIIII", iface, frame.ts_ns >> 32, frame.ts_ns & 0xFFFFFFFF, len(data), length)
        self.f.write(_block(_EPB, body + _pad4(data) + _options(opts)))


def describe(frame, *, link: bool = False, verbose: bool = False, seqs: "TcpSeqHash | None" = None) -> str:
    """A CapturedFrame in tcpdump's manner (`tcpdump -n`), whatever its link type; with
    link (-e) the Ethernet header first, with verbose (-v) the IP header's fields, with seqs
    TCP's sequence numbers relative to each conversation's first (without: -S's absolute)."""
    linktype = frame.linktype or LINKTYPE_ETHERNET
    if linktype == LINKTYPE_IPV4:
        return summary_ip(frame.data, verbose=verbose, seqs=seqs)
    if linktype == LINKTYPE_WIRESHARK_UPPER_PDU:
        flow = f"{frame.saddr or '(src not chosen yet)'} > {frame.daddr}"
        if frame.upper == "data":
            return f"{flow}: payload, length {frame.len} (no transport header yet)"
        return f"{flow}: {_summary_l4(frame.upper, frame.data)} (no IP header yet)"
    return summary(frame.data, link=link, verbose=verbose, seqs=seqs)


def _summary_l4(upper: str, l4: bytes) -> str:
    try:
        if upper == "udp":
            udp = UdpHdr.from_bytes(l4)
            return f"UDP {udp.source} > {udp.dest}, length {udp.len - 8}"
        if upper == "tcp":
            tcp = TcpHdr.from_bytes(l4)
            return f"TCP {tcp.source} > {tcp.dest}, seq {tcp.seq}, length {len(l4) - tcp.header_len}"
        icmp = IcmpHdr.from_bytes(l4, verify_csum=False)
        return f"ICMP {_ICMP_TYPES.get(icmp.type, f'type {icmp.type}')}, length {len(l4)}"
    except WireError as exc:
        return f"malformed {upper}: {exc}"


_ETHERTYPES = {ETH_P_IP: "IPv4", ETH_P_ARP: "ARP"}


def summary(frame: bytes, *, link: bool = False, verbose: bool = False, seqs: "TcpSeqHash | None" = None) -> str:
    """One line per Ethernet frame, as `tcpdump -n` prints it (-e: link, -v: verbose)."""
    try:
        eth = EthHdr.from_bytes(frame)
    except WireError as exc:
        return f"malformed ethernet: {exc}"
    body = frame[eth.header_len:]
    prefix = ""
    if link:  # print-ether.c: the addresses, the type, the frame's length
        kind = _ETHERTYPES.get(eth.h_proto, "Unknown")
        prefix = (f"{mac_to_str(eth.h_source)} > {mac_to_str(eth.h_dest)}, ethertype {kind} "
                  f"(0x{eth.h_proto:04x}), length {len(frame)}: ")
    if eth.h_proto == ETH_P_ARP:
        text = _summary_arp(body, verbose)
        return prefix + (text[5:] if link else text)  # -e: no "ARP, " after the type
    if eth.h_proto != ETH_P_IP:
        return prefix + f"ethertype 0x{eth.h_proto:04x}, length {len(frame)}"
    text = summary_ip(body, verbose=verbose, seqs=seqs)
    return prefix + (text[3:] if link and text.startswith("IP ") else text)  # -e: no "IP " after the type


def _summary_arp(body: bytes, verbose: bool) -> str:
    """print-arp.c: the length is what follows the link header, padding included."""
    try:
        arp = ArpHdr.from_bytes(body)
    except WireError as exc:
        return f"malformed: {exc}"
    head = "ARP, Ethernet (len 6), IPv4 (len 4), " if verbose else "ARP, "
    length = len(body)
    if arp.ar_op == ARPOP_REQUEST:
        return f"{head}Request who-has {ip_to_str(arp.ar_tip)} tell {ip_to_str(arp.ar_sip)}, length {length}"
    if arp.ar_op == ARPOP_REPLY:
        return f"{head}Reply {ip_to_str(arp.ar_sip)} is-at {mac_to_str(arp.ar_sha)}, length {length}"
    return f"{head}op {arp.ar_op}, length {length}"


_U16 = struct.Struct("!H")
_UDP_HEAD = struct.Struct("!HHH")  # source, dest, len: read whatever the length says
_PROTO_NAMES = {IPPROTO_ICMP: "ICMP", IPPROTO_TCP: "TCP", IPPROTO_UDP: "UDP"}
_UNREACH = {0: "net {} unreachable", 1: "host {} unreachable", 2: "{} protocol {} unreachable",
            4: "{} unreachable - need to frag (mtu {})"}
_TCP_FLAGS = ((0x02, "S"), (0x01, "F"), (0x08, "P"), (0x04, "R"), (0x20, "U"), (0x40, "E"), (0x80, "W"))


def _ip_verbose(ip) -> str:
    """print-ip.c's -v header: "(tos 0x0, ttl 64, id 1, offset 0, flags [DF], proto UDP (17), length 33)"."""
    flags = "+" if ip.mf else "DF" if ip.df else "none"
    proto = _PROTO_NAMES.get(ip.protocol, "unknown")
    return (f"(tos {ip.tos:#x}, ttl {ip.ttl}, id {ip.id}, offset {ip.frag_offset}, flags [{flags}], "
            f"proto {proto} ({ip.protocol}), length {ip.tot_len})")


def summary_ip(body: bytes, *, verbose: bool = False, seqs: "TcpSeqHash | None" = None) -> str:
    """One line per IPv4 packet, as `tcpdump -n` prints it (-v: the header's fields first)."""
    try:
        ip = IpHdr.from_bytes(body)
    except WireError as exc:
        return f"malformed: {exc}"
    src, dst = ip_to_str(ip.saddr), ip_to_str(ip.daddr)
    head = f"IP {_ip_verbose(ip)}\n    " if verbose else "IP "
    l4 = body[ip.header_len:ip.tot_len]
    if ip.frag_offset:  # a later fragment: no transport header to read
        return f"{head}{src} > {dst}: ip-proto-{ip.protocol}"
    try:
        if ip.protocol == IPPROTO_ICMP:
            return f"{head}{src} > {dst}: {_summary_icmp(l4, verbose, seqs)}"
        if ip.protocol == IPPROTO_UDP:
            if len(l4) < 8:
                return f"{head}{src} > {dst}: UDP, truncated"
            sport, dport, ulen = _UDP_HEAD.unpack_from(l4)
            if ulen > len(l4) and not ip.mf:  # print-udp.c checks the length of whole datagrams only
                return f"{head}{src}.{sport} > {dst}.{dport}: UDP, bad length {ulen} > {len(l4) - 8}"
            return f"{head}{src}.{sport} > {dst}.{dport}: UDP, length {ulen - 8}"
        if ip.protocol == IPPROTO_TCP:
            cksum = _tcp_cksum(ip, l4) if verbose and not ip.mf else None
            return f"{head}{_summary_tcp(ip, l4, cksum, seqs)}"
    except WireError as exc:
        return f"{head}{src} > {dst}: malformed {_PROTO_NAMES.get(ip.protocol, ip.protocol)}: {exc}"
    return f"{head}{src} > {dst}: ip-proto-{ip.protocol} {len(l4)}"


def _summary_icmp(l4: bytes, verbose: bool = False, seqs: "TcpSeqHash | None" = None) -> str:
    """print-icmp.c: an echo's id and sequence; an error names what it quotes (-v: and
    prints the quoted packet on the lines after)."""
    icmp = IcmpHdr.from_bytes(l4, verify_csum=False)
    text = _icmp_text(icmp, l4)
    if verbose and icmp.type in (3, 11) and len(l4) > 8:
        text += "\n\t" + summary_ip(l4[8:], verbose=True, seqs=seqs)
    return text


def _icmp_text(icmp, l4: bytes) -> str:
    if icmp.type in (0, 8):
        return f"ICMP {_ICMP_TYPES[icmp.type]}, id {icmp.echo_id}, seq {icmp.echo_sequence}, length {len(l4)}"
    if icmp.type == 3:
        inner = l4[8:]
        try:
            quoted = IpHdr.from_bytes(inner, verify_csum=False)
            qdst = ip_to_str(quoted.daddr)
            if icmp.code == 3:
                _, qdport, _ = _UDP_HEAD.unpack_from(inner, quoted.header_len)  # TCP's ports sit alike
                proto = _PROTO_NAMES.get(quoted.protocol, str(quoted.protocol)).lower()
                return f"ICMP {qdst} {proto} port {qdport} unreachable, length {len(l4)}"
            if icmp.code in _UNREACH:
                what = _UNREACH[icmp.code].format(qdst, quoted.protocol if icmp.code == 2 else icmp.mtu)
                return f"ICMP {what}, length {len(l4)}"
        except (WireError, struct.error):
            pass
        return f"ICMP destination unreachable (code {icmp.code}), length {len(l4)}"
    if icmp.type == 11:
        return f"ICMP time exceeded {'in-transit' if icmp.code == 0 else 'reassembly'}, length {len(l4)}"
    return f"ICMP type {icmp.type}, code {icmp.code}, length {len(l4)}"


def _tcp_cksum(ip, l4: bytes) -> str:
    """-v's "cksum 0x7b5e (correct)", or "(incorrect -> 0x...)" with what it should be."""
    given = _U16.unpack_from(l4, 16)[0]
    if verifies(l4, pseudo_header_sum(ip.saddr, ip.daddr, IPPROTO_TCP, len(l4))):
        return f"cksum {given:#06x} (correct)"
    right = csum_tcpudp(ip.saddr, ip.daddr, IPPROTO_TCP, l4[:16] + b"\0\0" + l4[18:])
    return f"cksum {given:#06x} (incorrect -> {right:#06x})"


class TcpSeqHash:
    """print-tcp.c's tcp_seq_hash4: each conversation's initial sequence numbers, one entry
    for both directions, recorded from its first segment with ACK set (or any SYN-ACK),
    which prints absolute; later ones print relative to it. A bare SYN has no entry."""

    def __init__(self) -> None:
        self._conversations: dict[tuple, list[int]] = {}  # (addr, addr, ports) -> [th_seq, th_ack]

    def relative(self, ip, tcp) -> tuple[int, int, int, int, bool]:
        """(seq, ack, th_seq, th_ack, rev) for tcp_print to print, as tcpdump works them out."""
        seq, ack = tcp.seq, tcp.ack_seq
        if not tcp.ack:
            return seq, ack, 0, 0, False
        rev = tcp.source > tcp.dest or (tcp.source == tcp.dest and ip.saddr > ip.daddr)
        key = ((ip.daddr, ip.saddr, tcp.dest << 16 | tcp.source) if rev
               else (ip.saddr, ip.daddr, tcp.source << 16 | tcp.dest))
        th = self._conversations.get(key)
        if th is None or tcp.syn:  # new conversation: remember, print absolute
            th = self._conversations[key] = [(ack - 1) & MASK32, seq] if rev else [seq, (ack - 1) & MASK32]
        elif rev:
            seq, ack = (seq - th[1]) & MASK32, (ack - th[0]) & MASK32
        else:
            seq, ack = (seq - th[0]) & MASK32, (ack - th[1]) & MASK32
        return seq, ack, th[0], th[1], rev


MASK32 = 0xFFFFFFFF


def _summary_tcp(ip, l4: bytes, cksum: str | None = None, seqs: TcpSeqHash | None = None) -> str:
    """print-tcp.c: flags, seq, ack, win, options, length; sequence numbers relative to the
    conversation's first (seqs) or absolute (-S)."""
    tcp = TcpHdr.from_bytes(l4)
    flags = "".join(c for bit, c in _TCP_FLAGS if tcp.flags & bit) + ("." if tcp.ack else "")
    length = len(l4) - tcp.header_len
    seq, ack, th_seq, th_ack, rev = (seqs.relative(ip, tcp) if seqs is not None
                                     else (tcp.seq, tcp.ack_seq, 0, 0, False))
    parts = [f"Flags [{flags or 'none'}]", *([cksum] if cksum else [])]
    if length:
        parts.append(f"seq {seq}:{(seq + length) & MASK32}")
    elif tcp.syn or tcp.fin or tcp.rst:  # a bare ACK has no sequence number worth printing
        parts.append(f"seq {seq}")
    if tcp.ack:
        parts.append(f"ack {ack}")
    parts.append(f"win {tcp.window}")
    if tcp.options:
        sack_base = th_seq if rev else th_ack  # SACK blocks name the other direction's bytes
        options = (_tcp_option(o, sack_base) for o in tcp.parsed_options(strict=False))
        parts.append(f"options [{','.join(options)}]")
    parts.append(f"length {length}")
    return f"{ip_to_str(ip.saddr)}.{tcp.source} > {ip_to_str(ip.daddr)}.{tcp.dest}: {', '.join(parts)}"


def _tcp_option(opt, sack_base: int = 0) -> str:
    name = type(opt).__name__
    if name == "TcpOptMss":
        return f"mss {opt.mss}"
    if name == "TcpOptWindow":
        return f"wscale {opt.snd_wscale}"
    if name == "TcpOptTimestamp":
        return f"TS val {opt.tsval} ecr {opt.tsecr}"
    if name == "TcpOptSack":
        blocks = " ".join(f"{{{(a - sack_base) & MASK32}:{(b - sack_base) & MASK32}}}" for a, b in opt.blocks)
        return f"sack {len(opt.blocks)} {blocks}"
    return {"TcpOptSackPerm": "sackOK", "TcpOptNop": "nop", "TcpOptEol": "eol"}.get(name, "unknown")


def hexdump(data: bytes) -> list[str]:
    """tcpdump -X: 16 bytes a line, in groups of two, then their ASCII."""
    lines = []
    for off in range(0, len(data), 16):
        chunk = data[off:off + 16]
        words = " ".join(chunk[i:i + 2].hex() for i in range(0, len(chunk), 2))
        text = "".join(chr(b) if 33 <= b < 127 else "." for b in chunk)  # ND_ASCII_ISGRAPH: a space is "."
        lines.append(f"\t0x{off:04x}:  {words:<39}  {text}")
    return lines


class PcapFilter:
    """A pcap-filter expression compiled by libpcap (pktpath.pcapfilter) once for each link
    type a capture brings: Ethernet frames, raw IPv4 packets, and a layer's packets above IP,
    which are matched as the IPv4 packet their flow's addresses and protocol make. An empty
    expression matches all."""

    def __init__(self, expression: str) -> None:
        self.expression = expression.strip()
        self._programs: dict[int, object] = {}
        if self.expression:
            self._program(LINKTYPE_ETHERNET)  # a syntax error now, before anything is captured

    def _program(self, linktype: int):
        program = self._programs.get(linktype)
        if program is None:
            program = self._programs[linktype] = compile_filter(self.expression, linktype)
        return program

    def match(self, frame) -> bool:
        if not self.expression:
            return True
        linktype, data = frame.linktype or LINKTYPE_ETHERNET, frame.data
        if linktype == LINKTYPE_WIRESHARK_UPPER_PDU:
            linktype, data = LINKTYPE_IPV4, _as_ipv4(frame)
        return bool(self._program(linktype).filter(data))


_UPPER_PROTO = {"tcp": IPPROTO_TCP, "udp": IPPROTO_UDP, "icmp": IPPROTO_ICMP}


def _as_ipv4(frame) -> bytes:
    """The IPv4 packet a PDU above IP will be: its flow's addresses and protocol over it."""
    saddr = ip_from_str(frame.saddr) if frame.saddr else 0
    daddr = ip_from_str(frame.daddr) if frame.daddr else 0
    return ipv4_packet(saddr, daddr, _UPPER_PROTO.get(frame.upper, 255), frame.data)


def clock(ts_ns: int) -> str:
    sec, nsec = divmod(ts_ns, 1_000_000_000)
    return time.strftime("%H:%M:%S", time.localtime(sec)) + f".{nsec // 1000:06d}"
