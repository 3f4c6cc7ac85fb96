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
from typing import BinaryIO, NamedTuple

from pktpath.pcapfilter import DLT_RAW, LINKTYPE_RAW, compile_filter, ipv4_packet, ipv6_packet
from pktpath.taps import LINKTYPE_ETHERNET, LINKTYPE_IPV4, LINKTYPE_IPV6, LINKTYPE_WIRESHARK_UPPER_PDU
from pktpath.wire import ArpHdr, EthHdr, IcmpHdr, IpHdr, TcpHdr, UdpHdr, WireError
from pktpath.wire.errors import TruncatedError
from pktpath.wire.addr import ip6_from_str, ip6_to_str, ip_from_str, ip_to_str, mac_to_str
from pktpath.wire.checksum import csum_fold, csum_tcpudp, pseudo_header_sum, verifies
from pktpath.wire.arp import ARPOP_REPLY, ARPOP_REQUEST
from pktpath.wire.ethernet import ETH_P_ARP, ETH_P_IP, ETH_P_IPV6
from pktpath.wire.ipv4 import IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP
from pktpath.wire.ipv6 import IPV6_HLEN

PCAP_MAGIC_NS = 0xA1B23C4D
_PCAP_HDR = struct.Struct("<IHHiIII")
_PCAP_REC = struct.Struct("<IIII")
_ICMP_TYPES = {0: "echo reply", 3: "destination unreachable", 8: "echo request", 11: "time exceeded"}
LINKTYPE_NAMES = {LINKTYPE_ETHERNET: "EN10MB (Ethernet)", LINKTYPE_IPV4: "IPV4 (Raw IPv4)",
                  LINKTYPE_IPV6: "IPV6 (Raw IPv6)", DLT_RAW: "RAW (Raw IP)", LINKTYPE_RAW: "RAW (Raw IP)",
                  LINKTYPE_WIRESHARK_UPPER_PDU: "WIRESHARK_UPPER_PDU (above IP)"}
_RAW_IP = frozenset((LINKTYPE_IPV4, LINKTYPE_IPV6, DLT_RAW, LINKTYPE_RAW))  # raw_if_print: IP by its version


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
EXP_PDU_TAG_IPV6_SRC, EXP_PDU_TAG_IPV6_DST = 22, 23


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
    its checksum and conversation need (an IPv6 flow's in the IPv6 tags)."""
    tags = [(EXP_PDU_TAG_DISSECTOR_NAME, upper.encode())]
    if ":" in saddr + daddr:
        src_tag, dst_tag, size, parse = EXP_PDU_TAG_IPV6_SRC, EXP_PDU_TAG_IPV6_DST, 16, ip6_from_str
    else:
        src_tag, dst_tag, size, parse = EXP_PDU_TAG_IPV4_SRC, EXP_PDU_TAG_IPV4_DST, 4, ip_from_str
    if saddr:
        tags.append((src_tag, parse(saddr).to_bytes(size, "big")))
    if daddr:
        tags.append((dst_tag, parse(daddr).to_bytes(size, "big")))
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


def describe(frame, *, link: bool = False, verbose: bool = False, seqs: "TcpSeqHash | None" = None,
             status: dict | None = None) -> str:
    """A CapturedFrame in tcpdump's manner (`tcpdump -n`), whatever its link type; with
    link (-e) the Ethernet header first, with verbose (-v) the IP header's fields, with seqs
    TCP's sequence numbers relative to each conversation's first (without: -S's absolute).
    status["whole"] says the printer gave up on a truncated packet, as tcpdump's longjmp does:
    -X then shows the frame from its first byte."""
    linktype = frame.linktype or LINKTYPE_ETHERNET
    if linktype in _RAW_IP:  # raw_if_print: -e's "ip: ", then ipN_print by the version nibble
        head = "ip: " if link else ""
        if frame.data[:1] and frame.data[0] >> 4 == 6:
            return head + summary_ip6(frame.data, verbose=verbose, seqs=seqs, status=status, length=frame.len,
                                      link=link)
        text = summary_ip(frame.data, verbose=verbose, seqs=seqs)
        return head + (text[3:] if link and text.startswith("IP ") else text)
    if linktype == LINKTYPE_WIRESHARK_UPPER_PDU:
        flow = f"{frame.saddr or '(src not chosen yet)'} > {frame.daddr}"
        if frame.upper == "data":
            return f"{flow}: payload, length {frame.len} (no transport header yet)"
        return f"{flow}: {_summary_l4(frame.upper, frame.data)} (no IP header yet)"
    return summary(frame.data, link=link, verbose=verbose, seqs=seqs, status=status, wire_len=frame.len)


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


_ETHERTYPES = {ETH_P_IP: "IPv4", ETH_P_ARP: "ARP", ETH_P_IPV6: "IPv6"}


def summary(frame: bytes, *, link: bool = False, verbose: bool = False, seqs: "TcpSeqHash | None" = None,
            status: dict | None = None, wire_len: int | None = None) -> str:
    """One line per Ethernet frame, as `tcpdump -n` prints it (-e: link, -v: verbose); wire_len
    is the frame's length on the wire when fewer bytes were captured (-s)."""
    try:
        eth = EthHdr.from_bytes(frame)
    except WireError as exc:
        return f"malformed ethernet: {exc}"
    body = frame[eth.header_len:]
    prefix = ""
    if link:  # print-ether.c: the addresses, the type, the frame's length
        kind = _ETHERTYPES.get(eth.h_proto, "Unknown")
        prefix = (f"{mac_to_str(eth.h_source)} > {mac_to_str(eth.h_dest)}, ethertype {kind} "
                  f"(0x{eth.h_proto:04x}), length {wire_len or len(frame)}: ")
    if eth.h_proto == ETH_P_ARP:
        text = _summary_arp(body, verbose)
        return prefix + (text[5:] if link else text)  # -e: no "ARP, " after the type
    if eth.h_proto == ETH_P_IPV6:
        length = (wire_len or len(frame)) - eth.header_len
        return prefix + summary_ip6(body, verbose=verbose, seqs=seqs, link=link, status=status, length=length)
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
    """print-tcp.c's tcp_seq_hash4 and tcp_seq_hash6: each conversation's initial sequence numbers, one entry
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
        key = ((ip.version, ip.daddr, ip.saddr, tcp.dest << 16 | tcp.source) if rev  # tcp_seq_hash4 or 6
               else (ip.version, ip.saddr, ip.daddr, tcp.source << 16 | tcp.dest))
        th = self._conversations.get(key)
        if th is None or tcp.syn:  # new conversation: remember, print absolute
            th = self._conversations[key] = [(ack - 1) & MASK32, seq] if rev else [seq, (ack - 1) & MASK32]
        elif rev:
            seq, ack = (seq - th[1]) & MASK32, (ack - th[0]) & MASK32
        else:
            seq, ack = (seq - th[0]) & MASK32, (ack - th[1]) & MASK32
        return seq, ack, th[0], th[1], rev


MASK32 = 0xFFFFFFFF


class _TcpFields(NamedTuple):
    """The fixed header print-tcp.c reads, as TcpSeqHash wants it."""
    source: int
    dest: int
    seq: int
    ack_seq: int
    doff: int
    flags: int
    window: int
    urg_ptr: int

    @property
    def ack(self) -> bool:
        return bool(self.flags & 0x10)

    @property
    def syn(self) -> bool:
        return bool(self.flags & 0x02)


_TCP_HEAD = struct.Struct("!HHIIBBHHH")
# tcp_flag_values, in print-tcp.c's order; bittok2str_nosep
_TCP_FLAG_NAMES = ((0x01, "F"), (0x02, "S"), (0x04, "R"), (0x08, "P"), (0x10, "."), (0x20, "U"), (0x40, "E"),
                   (0x80, "W"))
# tcp_option_values (print-tcp.c)
_TCP_OPTION_NAMES = {0: "eol", 1: "nop", 2: "mss", 3: "wscale", 4: "sackOK", 5: "sack", 6: "echo", 7: "echoreply",
                     8: "TS", 11: "cc", 12: "ccnew", 13: "", 19: "md5", 20: "scps", 28: "uto", 29: "tcp-ao",
                     30: "mptcp", 34: "tfo", 254: "exp"}  # mptcp's subtypes (mptcp_print) are left as bytes


def _summary_tcp(ip, l4: bytes, cksum: str | None = None, seqs: TcpSeqHash | None = None,
                 ports_only: bool = False, length: int | None = None, status: dict | None = None) -> str:
    """print-tcp.c's tcp_print: flags, seq, ack, win, urg, options, length; sequence numbers
    relative to the conversation's first (seqs) or absolute (-S). ip is IPv4's header or an
    _Ip6Addrs; ports_only when extension headers came between IPv6's and TCP's (tcpdump then
    leaves the addresses out); length the segment's on the wire, when fewer bytes were captured.
    Fewer than 20 bytes raise TruncatedError; options cut short end " [|tcp]"."""
    if len(l4) < 20:
        raise TruncatedError("tcp", "header", f"need 20 bytes, have {len(l4)}")
    sport, dport, seq, ack, off, flag_bits, win, _, urp = _TCP_HEAD.unpack_from(l4)
    tcp = _TcpFields(sport, dport, seq, ack, off >> 4, flag_bits, win, urp)
    length = len(l4) if length is None else length
    hlen = tcp.doff * 4
    if ports_only:
        out = [f"{sport} > {dport}: "]
    else:
        to_str = ip6_to_str if ip.version == 6 else ip_to_str
        out = [f"{to_str(ip.saddr)}.{sport} > {to_str(ip.daddr)}.{dport}: "]
    if hlen < 20:
        return "".join(out) + f" tcp {length - hlen} [bad hdr length {hlen} - too short, < 20]"
    out.append(f"Flags [{''.join(c for bit, c in _TCP_FLAG_NAMES if flag_bits & bit) or 'none'}]")
    seq, ack, th_seq, th_ack, rev = (seqs.relative(ip, tcp) if seqs is not None else (seq, ack, 0, 0, False))
    if hlen > length:
        return "".join(out) + f" [bad hdr length {hlen} - too long, > {length}]"
    if cksum:
        out.append(f", {cksum}")
    length -= hlen
    if length > 0 or flag_bits & 0x07:  # SYN, FIN or RST: a bare ACK has no sequence number worth printing
        out.append(f", seq {seq}:{(seq + length) & MASK32}" if length > 0 else f", seq {seq}")
    if tcp.ack:
        out.append(f", ack {ack}")
    out.append(f", win {win}")
    if flag_bits & 0x20:
        out.append(f", urg {urp}")
    if hlen > 20:
        ending = _tcp_options(out, l4[20:hlen], hlen - 20, th_seq if rev else th_ack)  # SACK: the other direction's
        if ending == "jumped" and status is not None:
            status["whole"] = True
        if ending:
            return "".join(out)
    out.append(f", length {length}")
    return "".join(out)


def _tcp_fastopen(cookie: bytes) -> str:
    """print_tcp_fastopen_option: a cookie request, a cookie, or (invalid)."""
    if not cookie:
        return " cookiereq"
    if len(cookie) % 2 or not 4 <= len(cookie) <= 16:
        return " (invalid)"
    return f" cookie {cookie.hex()}"


def _tcp_options(out: list, opts: bytes, hlen: int, sack_base: int) -> str:
    """tcp_print's options loop: ", options [mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7]";
    "[bad opt]" for one that overruns the header, " [|tcp]" for one not captured. Returns ""
    when the segment's printing goes on, "stop" when it ends here, "jumped" when tcpdump's
    GET_* would have longjmp'd out."""
    out.append(", options [")
    cp, sep = 0, ""
    while hlen > 0:
        out.append(sep)
        if cp >= len(opts):
            out.append(" [|tcp]")  # GET_U_1 longjmps
            return "jumped"
        opt = opts[cp]
        cp += 1
        if opt in (0, 1):
            size = 1
        else:
            if cp >= len(opts):
                out.append(" [|tcp]")
                return "jumped"
            size = opts[cp]
            cp += 1
            if size < 2 or size > hlen:
                out.append("[bad opt]" + ("]" if sep else ""))
                return "stop"
            hlen -= 1
        hlen -= 1
        out.append(_TCP_OPTION_NAMES.get(opt, f"unknown-{opt}"))
        data = opts[cp:cp + size - 2] if size > 1 else b""

        def need(n: int) -> bool:  # LENCHECK: within the option's header room, and captured (its goto trunc)
            if n > hlen:
                out.append("[bad opt]" + ("]" if sep else ""))
                return False
            if cp + n > len(opts):
                out.append(" [|tcp]" + (">" if sep else ""))
                return False
            return True

        datalen = 0
        if opt == 2:
            datalen = 2
            if not need(2):
                return "stop"
            out.append(f" {_U16.unpack_from(opts, cp)[0]}")
        elif opt == 3:
            datalen = 1
            if not need(1):
                return "stop"
            out.append(f" {opts[cp]}")
        elif opt == 5:
            datalen = size - 2
            if datalen % 8:
                out.append(" invalid sack")
            else:
                out.append(f" {datalen // 8} ")
                for i in range(0, datalen, 8):
                    if not need(i + 8):
                        return "stop"
                    left, right = struct.unpack_from("!II", opts, cp + i)
                    out.append(f"{{{(left - sack_base) & MASK32}:{(right - sack_base) & MASK32}}}")
        elif opt in (6, 7, 11, 12, 13):
            datalen = 4
            if not need(4):
                return "stop"
            out.append(f" {struct.unpack_from('!I', opts, cp)[0]}")
        elif opt == 8:
            datalen = 8
            if not need(8):
                return "stop"
            out.append(" val {} ecr {}".format(*struct.unpack_from("!II", opts, cp)))
        elif opt == 19:
            datalen = 16
            if not need(16):
                return "stop"
            out.append(f" shared secret not supplied with -M, can't check - {opts[cp:cp + 16].hex()}")
        elif opt == 28:
            datalen = 2
            if not need(2):
                return "stop"
            uto = _U16.unpack_from(opts, cp)[0]
            out.append(f" 0x{uto:x} {(uto >> 1) * 60 if uto & 1 else uto >> 1}")
        elif opt == 29:
            datalen = size - 2
            if datalen < 2:
                out.append(" (invalid)")
            else:
                if not need(datalen):
                    return "stop"
                out.append(f" keyid {data[0]} rnextkeyid {data[1]}" + (f" mac 0x{data[2:].hex()}" if datalen > 2
                                                                       else ""))
        elif opt == 34:
            datalen = size - 2
            if not need(datalen):
                return "stop"
            out.append(" " + _tcp_fastopen(data))
        elif opt == 254:  # RFC 6994's experiment, TCP Fast Open's magic
            datalen = size - 2
            if not need(datalen):
                return "stop"
            if datalen < 2:
                out.append("[bad opt]" + ("]" if sep else ""))
                return "stop"
            magic = _U16.unpack_from(data)[0]
            out.append("-" + ("tfo" + _tcp_fastopen(data[2:]) if magic == 0xF989 else f"{magic:04x}"))
        elif opt == 20:
            datalen = 2
            if not need(2):
                return "stop"
            out.append(f" cap {opts[cp]:02x} id {opts[cp + 1]}")
        elif opt not in (0, 1, 4):
            datalen = size - 2
            if datalen:
                out.append(" 0x")
            for i in range(datalen):
                if not need(i + 1):
                    return "stop"
                out.append(f"{opts[cp + i]:02x}")
        cp += datalen
        hlen -= datalen
        if opt not in (0, 1) and size - 2 != datalen:  # the option's length against what its kind holds
            out.append("[len %d]" % size)
        sep = ","
        if opt == 0:
            break
    out.append("]")
    return ""


# -- IPv6, as tcpdump 4.99 prints it ---------------------------------------------------------
# print-ip6.c (ip6_print), print-ip6opts.c (hbhopt_process, dstopt_process), print-rt6.c,
# print-frag6.c, print-ip-demux.c, print-udp.c and print-tcp.c over IPv6, print-icmp6.c.

NEXTHDR_HOP, NEXTHDR_ROUTING, NEXTHDR_FRAGMENT, NEXTHDR_NONE, NEXTHDR_DEST = 0, 43, 44, 59, 60
NEXTHDR_ICMP, NEXTHDR_MOBILITY_OLD, NEXTHDR_MOBILITY, IPPROTO_DCCP, IPPROTO_SCTP = 58, 62, 135, 33, 132
# ipproto_values (ipproto.c) as 4.99 has them: -v's "next-header Options (0)"
_IPPROTO_NAMES = {
    0: "Options", 1: "ICMP", 2: "IGMP", 4: "IPIP", 6: "TCP", 8: "EGP", 9: "IGRP", 17: "UDP", 33: "DCCP",
    41: "IPv6", 43: "Routing", 44: "Fragment", 46: "RSVP", 47: "GRE", 50: "ESP", 51: "AH", 55: "Mobile IP",
    58: "ICMPv6", 62: "Mobile IP (old)", 88: "EIGRP", 89: "OSPF", 103: "PIM", 108: "Compressed IP", 112: "VRRP",
    113: "PGM", 132: "SCTP", 135: "Mobility", 143: "Ethernet",
}


class _Ip6Addrs(NamedTuple):
    """What TCP's printer and its sequence-number table need of an IPv6 header."""
    saddr: int
    daddr: int
    version: int = 6


class _Trunc(Exception):
    """A packet cut short: " [|proto]". jumped: found by a GET_* macro, which longjmps out of
    the printers (after which -X dumps the whole frame, link header and all); not jumped: a
    printer's own check that went to its trunc label (nd_print_trunc)."""

    def __init__(self, proto: str, jumped: bool = True) -> None:
        super().__init__(proto)
        self.proto, self.jumped = proto, jumped


def _get(data: bytes, off: int, n: int, proto: str) -> int:
    if off < 0 or off + n > len(data):
        raise _Trunc(proto)
    return int.from_bytes(data[off:off + n], "big")


def _addr6(data: bytes, off: int, proto: str) -> str:
    return ip6_to_str(_get(data, off, 16, proto))


def _hex_print(out: list, ident: str, data: bytes) -> None:
    """print-ascii.c's hex_print (print_unknown_data): 8 groups of two bytes a line, no ASCII."""
    for i in range(0, len(data) - 1, 2):
        if i % 16 == 0:
            out.append(f"{ident}0x{i:04x}: ")
        out.append(f" {data[i]:02x}{data[i + 1]:02x}")
    if len(data) & 1:
        if (len(data) - 1) % 16 == 0:
            out.append(f"{ident}0x{len(data) - 1:04x}: ")
        out.append(f" {data[-1]:02x}")


def _in_cksum_shouldbe(given: int, residue: int) -> int:
    """in_cksum.c's in_cksum_shouldbe: the checksum field that would have been right."""
    total = given + residue
    total = (total & 0xFFFF) + (total >> 16)
    return ((total & 0xFFFF) + (total >> 16)) & 0xFFFF


def _ip6_finddst(ip6: bytes) -> int:
    """print-ip6.c's ip6_finddst: the final destination a routing header names (type 0 and 2: its
    last address; 4, segment routing: its first), else the header's; the pseudo-header's."""
    dst = int.from_bytes(ip6[24:40], "big")
    nh, cp, advance = ip6[6], 0, IPV6_HLEN
    try:
        while cp < len(ip6):
            cp += advance
            if nh in (NEXTHDR_HOP, NEXTHDR_DEST, NEXTHDR_MOBILITY_OLD, NEXTHDR_MOBILITY):
                advance, nh = (_get(ip6, cp + 1, 1, "ip6") + 1) << 3, _get(ip6, cp, 1, "ip6")
            elif nh == NEXTHDR_FRAGMENT:
                advance, nh = 8, _get(ip6, cp, 1, "ip6")
            elif nh == NEXTHDR_ROUTING:
                length, kind = _get(ip6, cp + 1, 1, "ip6"), _get(ip6, cp + 2, 1, "ip6")
                if kind in (0, 2) and not length % 2:
                    for i in range(length >> 1):
                        dst = _get(ip6, cp + 8 + 16 * i, 16, "ip6")
                elif kind == 4 and not length % 2:
                    dst = _get(ip6, cp + 8, 16, "ip6")
                break
            else:
                break
    except _Trunc:
        pass
    return dst


def _nextproto6_cksum(ip6: bytes, payload: bytes, proto: int) -> int:
    """nextproto6_cksum: 0 when payload's checksum is right (in_cksum's residue otherwise)."""
    saddr = int.from_bytes(ip6[8:24], "big")
    daddr = (_ip6_finddst(ip6) if ip6[6] in (NEXTHDR_HOP, NEXTHDR_DEST, NEXTHDR_MOBILITY_OLD, NEXTHDR_MOBILITY,
                                             NEXTHDR_FRAGMENT, NEXTHDR_ROUTING)
             else int.from_bytes(ip6[24:40], "big"))
    value = int.from_bytes(payload, "big") << (8 * (len(payload) & 1))
    return csum_fold(pseudo_header_sum(saddr, daddr, proto, len(payload)) + value)


def summary_ip6(body: bytes, *, verbose: bool = False, seqs: "TcpSeqHash | None" = None, link: bool = False,
                status: dict | None = None, length: int | None = None) -> str:
    """One IPv6 packet as `tcpdump -n` (4.99) prints it: "IP6 " (none with -e, link), with -v
    the header's fields, then each extension header (HBH, DSTOPT, RT6, frag (OFF|LEN)) and the
    upper protocol: ICMPv6 (NDP's options on lines of their own with -v), UDP, TCP (relative
    sequence numbers by seqs), or " ip-proto-N LEN". What is cut short ends " [|proto]"; when
    tcpdump's printer would have longjmp'd out, status["whole"] is set (-X then dumps the frame
    from its link header). length: the packet's on the wire, when fewer bytes were captured."""
    out: list[str] = []
    try:
        _ip6_print(out, bytes(body), max(length or 0, len(body)), bool(verbose), seqs, link, status)
    except _Trunc as exc:
        out.append(f" [|{exc.proto}]")
        if exc.jumped and status is not None:
            status["whole"] = True
    return "".join(out)


def _ip6_print(out: list, bp: bytes, length: int, vflag: bool, seqs, eflag: bool, status: dict | None) -> None:
    """print-ip6.c's ip6_print: the header, then the extension headers in their order."""
    if len(bp) < IPV6_HLEN:
        raise _Trunc("ip6", jumped=False)
    if not eflag:
        out.append("IP6 ")
    if bp[0] >> 4 != 6:
        out.append(f"version error: {bp[0] >> 4} != 6")
        return
    payload_len, nh = _U16.unpack_from(bp, 4)[0], bp[6]
    if payload_len:
        total = payload_len + IPV6_HLEN
        if length < total:
            out.append(f"truncated-ip6 - {total - length} bytes missing!")
    else:  # a jumbogram's, or none: the extension headers say
        total = length + IPV6_HLEN
    if vflag:
        flow = int.from_bytes(bp[:4], "big")
        out.append("(")
        if flow & 0x0FF00000:
            out.append(f"class 0x{(flow & 0x0FF00000) >> 20:02x}, ")
        if flow & 0x000FFFFF:
            out.append(f"flowlabel 0x{flow & 0x000FFFFF:05x}, ")
        out.append(f"hlim {bp[7]}, next-header {_IPPROTO_NAMES.get(nh, 'unknown')} ({nh}) "
                   f"payload length: {payload_len}) ")
    data = bp[:total]  # nd_push_snapend: the Ethernet padding is not the packet's
    cp, advance, left = 0, IPV6_HLEN, total
    fragmented = found_extension_header = False
    while cp < len(data) and advance > 0:
        if left < advance:
            raise _Trunc("ip6", jumped=False)
        cp += advance
        left -= advance
        if cp == IPV6_HLEN and nh not in (IPPROTO_TCP, IPPROTO_UDP, IPPROTO_DCCP, IPPROTO_SCTP):
            out.append(f"{_addr6(data, 8, 'ip6')} > {_addr6(data, 24, 'ip6')}: ")
        if nh in (NEXTHDR_HOP, NEXTHDR_DEST):
            advance = _ip6_opthdr(out, data, cp, vflag, hbh=nh == NEXTHDR_HOP)
        elif nh == NEXTHDR_FRAGMENT:
            advance = _frag6_print(out, data, cp, vflag)
            if advance < 0 or len(data) <= cp + advance:
                return
            fragmented = True
        elif nh == NEXTHDR_ROUTING:
            if cp >= len(data):  # ND_TCHECK_1(cp)
                raise _Trunc("ip6", jumped=False)
            advance = _rt6_print(out, data, cp, vflag)
        else:
            if payload_len == 0:
                if found_extension_header:
                    raise _Trunc("ip6", jumped=False)
                left, data = 0, data[:IPV6_HLEN]  # nd_change_snapend: nothing past the header
            _ip6_demux(out, data, cp, left, fragmented, nh, vflag, seqs, eflag, status)
            return
        if advance < 0:
            return
        found_extension_header = True
        nh = data[cp]


def _ip6_opthdr(out: list, data: bytes, cp: int, vflag: bool, hbh: bool) -> int:
    """hbhopt_process and dstopt_process: "HBH "/"DSTOPT ", with -v each option (a hop-by-hop
    header's are read without -v too: a Jumbo Payload would change the length)."""
    proto = "hbhopt" if hbh else "dstopt"
    hlen = (_get(data, cp + 1, 1, proto) + 1) << 3
    if cp + hlen > len(data):
        raise _Trunc(proto, jumped=False)
    out.append("HBH " if hbh else "DSTOPT ")
    if (hbh or vflag) and _ip6_opt_process(out, data[cp + 2:cp + hlen], vflag, hbh, _U16.unpack_from(data, 4)[0]) < 0:
        raise _Trunc(proto, jumped=False)
    return hlen


def _ip6_opt_process(out: list, opts: bytes, vflag: bool, hbh: bool, payload_len: int) -> int:
    """ip6_opt_process: with -v "(padn)", "(rtalert: 0x0000) ", "(jumbo: N - ...) ", "(homeaddr: A)",
    "(opt_type 0x3e: len=2)", then a space; an option of the wrong length says so even without -v,
    and ends the header (-1), as one that runs past it does. A Jumbo Payload is only reported: one
    valid would need a payload length of 0, which Ethernet never carries."""
    i, jumbo_seen = 0, False
    while i < len(opts):
        kind = opts[i]
        if kind == 0:
            optlen = 1
        elif i + 1 < len(opts):
            optlen = opts[i + 1] + 2
        else:
            return -1
        if i + optlen > len(opts):
            return -1
        if kind == 0:
            text = "(pad1)"
        elif kind == 1:
            text = "(padn)"
        elif kind == 5:  # router alert
            if optlen != 4:
                out.append(f"(rtalert: invalid len {opts[i + 1]})")
                return -1
            text = f"(rtalert: 0x{_U16.unpack_from(opts, i + 2)[0]:04x}) "
        elif kind == 0xC2:  # jumbo payload
            if optlen != 6:
                out.append(f"(jumbo: invalid len {opts[i + 1]})")
                return -1
            jumbolen = int.from_bytes(opts[i + 2:i + 6], "big")
            why = (" - already seen" if jumbo_seen else " - not a hop-by-hop option" if not hbh
                   else " - payload len != 0" if payload_len else " - < 65536" if jumbolen < 65536 else "")
            jumbo_seen = True
            text = f"(jumbo: {jumbolen}{why}) "
        elif kind == 0xC9:  # home address
            if optlen < 18:
                out.append("(homeaddr: trunc)")
                return -1
            subopts, whole = _ip6_sopt_print(opts[i + 18:i + optlen])
            text = f"(homeaddr: {ip6_to_str(int.from_bytes(opts[i + 2:i + 18], 'big'))}{subopts}"
            if not whole:
                if vflag:
                    out.append(text)
                return -1
            text += ")"
        else:
            text = f"(opt_type 0x{kind:02x}: len={opts[i + 1]})"
        if vflag:
            out.append(text)
        i += optlen
    if vflag:
        out.append(" ")
    return 0


def _ip6_sopt_print(sub: bytes) -> tuple[str, bool]:
    """ip6_sopt_print: a home address option's sub-options, and False when one runs past it."""
    text, i = [], 0
    while i < len(sub):
        if sub[i] == 0:
            text.append(", pad1")
            i += 1
            continue
        if i + 2 > len(sub) or i + sub[i + 1] + 2 > len(sub):
            return "".join(text), False
        text.append(", padn" if sub[i] == 1 else f", sopt_type 0x{sub[i]:02x}: len={sub[i + 1]}")
        i += sub[i + 1] + 2
    return "".join(text), True


def _frag6_print(out: list, data: bytes, cp: int, vflag: bool) -> int:
    """frag6_print: "frag (OFF|LEN)" (-v: "frag (0xID:OFF|LEN)"), LEN what follows the fragment
    header by the payload length; a later fragment is not decoded further (-1)."""
    offset = _get(data, cp + 2, 2, "frag6") & 0xFFF8
    size = (IPV6_HLEN + _U16.unpack_from(data, 4)[0] - cp - 8) & 0xFFFFFFFFFFFFFFFF  # a size_t
    if vflag:
        out.append(f"frag (0x{_get(data, cp + 4, 4, 'frag6'):08x}:{offset}|{size})")
    else:
        out.append(f"frag ({offset}|{size})")
    if offset:
        return -1
    out.append(" ")
    return 8


def _rt6_print(out: list, data: bytes, cp: int, vflag: bool) -> int:
    """rt6_print: "RT6 (len=2, type=0 [Deprecated], segleft=1, [0]ADDR) "; segment routing's
    last-entry, flags and tag; any other type "(unknown type)", cut short."""
    out.append("RT6")
    length = _get(data, cp + 1, 1, "rt6")
    out.append(f" (len={length}")
    kind = _get(data, cp + 2, 1, "rt6")
    out.append(f", type={kind}{' [Deprecated]' if kind == 0 else ''}")
    out.append(f", segleft={_get(data, cp + 3, 1, 'rt6')}")
    if kind in (0, 2):
        reserved = _get(data, cp + 4, 4, "rt6")
        if reserved or vflag:
            out.append(f", rsv=0x{reserved:x}")
        if length % 2:
            out.append(f" (invalid length {length}) (invalid)")
            return -1
        for i in range(length >> 1):
            out.append(f", [{i}]{_addr6(data, cp + 8 + 16 * i, 'rt6')}")
        out.append(") ")
        return (length + 1) << 3
    if kind == 4:
        last_entry, flags = _get(data, cp + 4, 1, "rt6"), _get(data, cp + 5, 1, "rt6")
        out.append(f", last-entry={last_entry}")
        if flags or vflag:
            out.append(f", flags=0x{flags:x}")
        out.append(f", tag={_get(data, cp + 6, 2, 'rt6'):x}")
        if length % 2:
            out.append(f" (invalid length {length}) (invalid)")
            return -1
        for i in range(length >> 1):  # the header's length says how many segments, not last-entry
            out.append(f", [{i}]{_addr6(data, cp + 8 + 16 * i, 'rt6')}")
        out.append(") ")
        return (length + 1) << 3
    out.append(" (unknown type) (invalid)")  # nd_print_invalid
    return -1


def _ip6_demux(out: list, data: bytes, cp: int, length: int, fragmented: bool, nh: int, vflag: bool, seqs,
               eflag: bool, status: dict | None) -> None:
    """ip_demux_print for what pktpath's hosts send over IPv6: ICMPv6, UDP, TCP, No Next Header,
    IPv6 and IPv4 tunnelled, ESP's SPI; anything else by number and length (tcpdump -n)."""
    if nh == NEXTHDR_ICMP:
        _icmp6_print(out, data, cp, length, fragmented, vflag)
    elif nh == IPPROTO_UDP:
        _udp6_print(out, data, cp, length, fragmented, vflag)
    elif nh == IPPROTO_TCP:
        _tcp6_print(out, data, cp, length, fragmented, vflag, seqs, status)
    elif nh == NEXTHDR_NONE:
        out.append("no next header")
    elif nh == 41:  # IPv6 in IPv6
        out.append(summary_ip6(data[cp:cp + length], verbose=vflag, seqs=seqs, link=eflag, status=status))
    elif nh == 4:  # IPv4 in IPv6
        if len(data) - cp < 20:  # ip_print's first GET past the end
            out.append("" if eflag else "IP ")
            raise _Trunc("ip", jumped=False)
        text = summary_ip(data[cp:cp + length], verbose=vflag, seqs=seqs)
        out.append(text[3:] if eflag and text.startswith("IP ") else text)
    elif nh == 50:  # esp_print
        out.append(f"ESP(spi=0x{_get(data, cp, 4, 'esp'):08x},seq=0x{_get(data, cp + 4, 4, 'esp'):x}), "
                   f"length {length}")
    else:
        out.append(f" ip-proto-{nh} {length}")


def _udp6_print(out: list, data: bytes, cp: int, length: int, fragmented: bool, vflag: bool) -> None:
    """udp_print over IPv6: the addresses with the ports when UDP follows IPv6's header, else
    the ports alone; -v checks the checksum (IPv6's is mandatory) unless fragmented."""
    def addrs(sport=None, dport=None) -> str:
        if data[6] == IPPROTO_UDP:
            src, dst = _addr6(data, 8, "udp"), _addr6(data, 24, "udp")
            return f"{src} > {dst}: " if sport is None else f"{src}.{sport} > {dst}.{dport}: "
        return "" if sport is None else f"{sport} > {dport}: "

    if cp + 4 > len(data):
        out.append(addrs())
        raise _Trunc("udp", jumped=False)
    sport, dport = _U16.unpack_from(data, cp)[0], _U16.unpack_from(data, cp + 2)[0]
    if length < 8:
        out.append(f"{addrs(sport, dport)}truncated-udp {length}")
        return
    if cp + 6 > len(data):
        out.append(addrs(sport, dport))
        raise _Trunc("udp", jumped=False)
    ulen = _U16.unpack_from(data, cp + 4)[0]
    if ulen == 0 and length > 65535:
        ulen = length
    if ulen < 8:
        out.append(f"{addrs(sport, dport)}truncated-udplength {ulen}")
        return
    ulen, length = ulen - 8, length - 8
    length = min(length, ulen)
    out.append(addrs(sport, dport))
    if cp + 8 > len(data):
        raise _Trunc("udp", jumped=False)
    if vflag and not fragmented and cp + 8 + length <= len(data):
        given = _U16.unpack_from(data, cp + 6)[0]
        residue = _nextproto6_cksum(data, data[cp:cp + 8 + length], IPPROTO_UDP)
        out.append(f"[bad udp cksum 0x{given:04x} -> 0x{_in_cksum_shouldbe(given, residue):04x}!] " if residue
                   else "[udp sum ok] ")
    if ulen > length and not fragmented:
        out.append(f"UDP, bad length {ulen} > {length}")
    else:
        out.append(f"UDP, length {ulen}")


def _tcp6_print(out: list, data: bytes, cp: int, length: int, fragmented: bool, vflag: bool, seqs,
                status: dict | None = None) -> None:
    """tcp_print over IPv6: as IPv4's, the addresses only when TCP follows IPv6's header."""
    l4 = data[cp:cp + length]
    ip = _Ip6Addrs(int.from_bytes(data[8:24], "big"), int.from_bytes(data[24:40], "big"))
    if len(l4) < 4:
        out.append(f"{ip6_to_str(ip.saddr)} > {ip6_to_str(ip.daddr)}:")
        raise _Trunc("tcp", jumped=False)
    if len(l4) < 20:  # the ports, then the first field it cannot read
        sport, dport = _U16.unpack_from(l4, 0)[0], _U16.unpack_from(l4, 2)[0]
        out.append(f"{sport} > {dport}: " if data[6] != IPPROTO_TCP
                   else f"{ip6_to_str(ip.saddr)}.{sport} > {ip6_to_str(ip.daddr)}.{dport}: ")
        raise _Trunc("tcp", jumped=False)
    cksum = None
    if vflag and not fragmented and len(l4) == length >= 20:
        given = _U16.unpack_from(l4, 16)[0]
        residue = _nextproto6_cksum(data, l4, IPPROTO_TCP)
        cksum = (f"cksum 0x{given:04x} (incorrect -> 0x{_in_cksum_shouldbe(given, residue):04x})" if residue
                 else f"cksum 0x{given:04x} (correct)")
    try:
        out.append(_summary_tcp(ip, l4, cksum, seqs, ports_only=data[6] != IPPROTO_TCP, length=length,
                                status=status))
    except WireError as exc:
        out.append(f"malformed TCP: {exc}")


# print-icmp6.c's tables
_ICMP6_TYPES = {
    1: "destination unreachable", 2: "packet too big", 3: "time exceeded in-transit", 4: "parameter problem",
    128: "echo request", 129: "echo reply", 130: "multicast listener query", 131: "multicast listener report",
    132: "multicast listener done", 133: "router solicitation", 134: "router advertisement",
    135: "neighbor solicitation", 136: "neighbor advertisement", 137: "redirect", 138: "router renumbering",
    141: "inverse neighbor solicitation", 142: "inverse neighbor advertisement", 143: "multicast listener report v2",
    144: "ha discovery request", 145: "ha discovery reply", 146: "mobile router solicitation",
    147: "mobile router advertisement", 139: "who-are-you request", 140: "who-are-you reply",
    201: "mtrace message", 200: "mtrace response", 155: "RPL",
}
_ICMP6_UNREACH = {0: "unreachable route", 1: " unreachable prohibited", 2: "beyond scope", 3: "unreachable address",
                  4: "unreachable port"}
_ICMP6_PARAMPROB = {0: "erroneous", 1: "next header", 2: "option", 3: "incomplete header chain"}
_ND_OPT_NAMES = {1: "source link-address", 2: "destination link-address", 3: "prefix info", 4: "redirected header",
                 5: "mtu", 25: "rdnss", 31: "dnssl", 7: "advertisement interval", 8: "homeagent information",
                 24: "route info"}
_PI_FLAGS = ((0x80, "onlink"), (0x40, "auto"), (0x20, "router"))
_RA_FLAGS = ((0x80, "managed"), (0x40, "other stateful"), (0x20, "home agent"), (0x02, "ipv6 only"))
_NA_FLAGS = ((0x80000000, "router"), (0x40000000, "solicited"), (0x20000000, "override"))
_MLDV2_RECORDS = {1: "is_in", 2: "is_ex", 3: "to_in", 4: "to_ex", 5: "allow", 6: "block"}
_RTPREF = ("medium", "high", "rsv", "low")
# what prints ", length N" right after the type with -v (its options follow on lines of their own)
_ICMP6_LENGTH_FIRST = frozenset((133, 134, 135, 136, 137, 145, 147))


def _bittok(table, value: int) -> str:
    """bittok2str: the names of the set bits, ", " between them; "none" for none."""
    return ", ".join(name for bit, name in table if value & bit) or "none"


def _lifetime(value: int) -> str:
    return "infinity" if value == 0xFFFFFFFF else f"{value}s"


def _icmp6_print(out: list, ip6: bytes, cp: int, length: int, fragmented: bool, vflag: bool) -> None:
    """icmp6_print: -v's checksum verdict, "ICMP6, <type>", what the type carries, then
    ", length N" (with -v: NDP's after the type, and no other)."""
    if length == 0:
        out.append("ICMP6, length 0 (invalid)")
        return
    bp = ip6[cp:]  # to the end of the captured payload
    if vflag and not fragmented and length <= len(bp):
        given = _get(bp, 2, 2, "icmp6")
        residue = _nextproto6_cksum(ip6, bp[:length], NEXTHDR_ICMP)
        out.append(f"[bad icmp6 cksum 0x{given:04x} -> 0x{_in_cksum_shouldbe(given, residue):04x}!] " if residue
                   else "[icmp6 sum ok] ")
    kind = _get(bp, 0, 1, "icmp6")
    out.append(f"ICMP6, {_ICMP6_TYPES.get(kind, f'unknown icmp6 type ({kind})')}")
    if vflag and kind in _ICMP6_LENGTH_FIRST:
        out.append(f", length {length}")
    code = _get(bp, 1, 1, "icmp6")
    if kind == 1:
        out.append(f", {_ICMP6_UNREACH.get(code, f'unknown unreach code ({code})')}")
        if code in (0, 1, 3):
            out.append(f" {_addr6(bp, 8 + 24, 'icmp6')}")
        elif code == 2:
            out.append(f" {_addr6(bp, 8 + 24, 'icmp6')}, source address {_addr6(bp, 8 + 8, 'icmp6')}")
        elif code == 4:
            found = _get_upperlayer(bp[8:])
            if found is None:
                raise _Trunc("icmp6", jumped=False)
            prot, dport = found
            out.append(f", {_addr6(bp, 8 + 24, 'icmp6')} {'tcp' if prot == IPPROTO_TCP else 'udp'} port {dport}")
        else:  # vflag <= 1
            _hex_print(out, "\n\t", bp[:length])
            return
    elif kind == 2:
        out.append(f", mtu {_get(bp, 4, 4, 'icmp6')}")
    elif kind == 3:
        if code == 0:
            out.append(f" for {_addr6(bp, 8 + 24, 'icmp6')}")
        elif code == 1:
            out.append(" (reassembly)")
        else:
            out.append(f", unknown code ({code})")
    elif kind == 4:
        if 8 + 40 > len(bp):  # ND_TCHECK_16(oip->ip6_dst)
            raise _Trunc("icmp6", jumped=False)
        pointer = _get(bp, 4, 4, "icmp6")
        out.append(f", {_ICMP6_PARAMPROB[code]} - octet {pointer}" if code in _ICMP6_PARAMPROB
                   else f", code-#{code}")
    elif kind in (128, 129):
        out.append(f", id {_get(bp, 4, 2, 'icmp6')}, seq {_get(bp, 6, 2, 'icmp6')}")
    elif kind == 130:
        if length == 24:
            _mld6_print(out, bp)
        elif length >= 28:
            out.append(" v2")
            _mldv2_query_print(out, bp, length, vflag)
        else:
            out.append(f" unknown-version (len {length}) ")
    elif kind in (131, 132):
        _mld6_print(out, bp)
    elif kind == 133:
        if vflag and _icmp6_opt_print(out, bp, 8, length - 8, vflag) < 0:
            raise _Trunc("icmp6", jumped=False)
    elif kind == 134:
        if vflag:
            flags = _get(bp, 5, 1, "icmp6")
            out.append(f"\n\thop limit {_get(bp, 4, 1, 'icmp6')}, Flags [{_bittok(_RA_FLAGS, flags)}], "
                       f"pref {_RTPREF[(flags & 0x18) >> 3]}, router lifetime {_get(bp, 6, 2, 'icmp6')}s, "
                       f"reachable time {_get(bp, 8, 4, 'icmp6')}ms, retrans timer {_get(bp, 12, 4, 'icmp6')}ms")
            if _icmp6_opt_print(out, bp, 16, length - 16, vflag) < 0:
                raise _Trunc("icmp6", jumped=False)
    elif kind == 135:
        out.append(f", who has {_addr6(bp, 8, 'icmp6')}")
        if vflag and _icmp6_opt_print(out, bp, 24, length - 24, vflag) < 0:
            raise _Trunc("icmp6", jumped=False)
    elif kind == 136:
        out.append(f", tgt is {_addr6(bp, 8, 'icmp6')}")
        if vflag:
            out.append(f", Flags [{_bittok(_NA_FLAGS, _get(bp, 4, 4, 'icmp6'))}]")
            if _icmp6_opt_print(out, bp, 24, length - 24, vflag) < 0:
                raise _Trunc("icmp6", jumped=False)
    elif kind == 137:
        out.append(f", {_addr6(bp, 24, 'icmp6')} to {_addr6(bp, 8, 'icmp6')}")
        if vflag and _icmp6_opt_print(out, bp, 40, length - 40, vflag) < 0:
            raise _Trunc("icmp6", jumped=False)
    elif kind in (141, 142):
        pass
    elif kind == 143:
        _mldv2_report_print(out, bp, length, vflag)
    elif kind in (144, 146):
        out.append(f", id 0x{_get(bp, 4, 2, 'icmp6'):04x}")
    elif kind == 138:
        _icmp6_rrenum_print(out, bp, vflag)
    elif kind in (139, 140):
        _icmp6_nodeinfo_print(out, bp, length, vflag)
    elif kind == 155:  # rpl_print, without -v's DIO/DAO details
        if code & 0x80:
            out.append(", (SEC) [worktodo]")
        else:
            out.append(", (CLR)" + _RPL_CODES.get(code, f"RPL message, unknown code {code}"))
    elif kind == 145 and vflag:  # ha discovery reply
        out.append(f", id 0x{_get(bp, 4, 2, 'icmp6'):04x}")
        for off in range(8, min(length, len(bp)), 16):
            out.append(f", {_addr6(bp, off, 'icmp6')}")
    elif kind == 147 and vflag:  # mobile router advertisement
        flags = _get(bp, 6, 2, "icmp6")
        out.append(f", id 0x{_get(bp, 4, 2, 'icmp6'):04x}{' ' if flags & 0xC000 else ''}"
                   f"{'M' if flags & 0x8000 else ''}{'O' if flags & 0x4000 else ''}")
        if _icmp6_opt_print(out, bp, 8, length - 8, vflag) < 0:
            raise _Trunc("icmp6", jumped=False)
    elif kind not in (145, 147):  # no case of its own: the type, the length, the bytes
        out.append(f", length {length}")
        _hex_print(out, "\n\t", bp[:length])  # vflag <= 1
        return
    if not vflag:
        out.append(f", length {length}")


_RPL_CODES = {0: "DODAG Information Solicitation", 1: "DODAG Information Object", 2: "Destination Advertisement Object",
              3: "Destination Advertisement Object Ack"}
_RR_CODES = {0: ", command", 1: ", result", 255: ", sequence number reset"}


def _icmp6_rrenum_print(out: list, bp: bytes, vflag: bool) -> None:
    """icmp6_rrenum_print's header: the code, the sequence number, with -v the flags, segment
    and maximum delay (a command's match and use prefixes are left out)."""
    if len(bp) < 16:  # ND_TCHECK_4(rr6->rr_reserved)
        out.append(" [|icmp6]")
        return
    code = bp[1]
    out.append(_RR_CODES.get(code, f", code-#{code}") + f", seq={_get(bp, 4, 4, 'icmp6')}")
    if vflag:
        flags = bp[9]
        out.append("[")
        if flags:
            out.append("".join(c for bit, c in ((0x80, "T"), (0x40, "R"), (0x20, "A"), (0x10, "S"), (0x08, "P"))
                               if flags & bit) + ",")
        out.append(f"seg={bp[8]},maxdelay={_get(bp, 10, 2, 'icmp6')}")
        reserved = _get(bp, 12, 4, "icmp6")
        if reserved:
            out.append(f"rsvd=0x{reserved:x}")
        out.append("]")


_NI_QTYPES = {0: "noop", 1: "supported qtypes", 2: "DNS name", 3: "node addresses"}


def _ni_addr_flags(flags: int, truncate: bool) -> str:
    bits = ((0x40, "a"), (0x20, "G"), (0x10, "S"), (0x08, "L"), (0x04, "C"), (0x02, "A")) + (
        ((0x01, "T"),) if truncate else ())
    return "[" + "".join(c for bit, c in bits if flags & bit) + "]"


def _ni_dnsname(bp: bytes, cp: int) -> str:
    """dnsname_print: labels without decompression, in quotes; "." for a whole FQDN."""
    text, ep = [', "'], len(bp)
    while cp < ep:
        n = bp[cp]
        cp += 1
        if n:
            if n > ep - cp:
                text.append("???")
                break
            text.append("".join(chr(c) if 0x20 <= c < 0x7F else f"\\{c:03o}" for c in bp[cp:cp + n]))
            cp += n
            if cp + 1 < ep and bp[cp]:
                text.append(".")
        else:
            if cp == ep:
                text.append(".")
            elif not (cp + 1 == ep and bp[cp] == 0):
                text.append("???")
            break
    return "".join(text) + '"'


def _icmp6_nodeinfo_print(out: list, bp: bytes, length: int, vflag: bool) -> None:
    """icmp6_nodeinfo_print (RFC 4620 node information), over the captured ICMPv6 message."""
    siz = len(bp)
    if bp[0] == 139:
        if siz == 12:
            out.append(" who-are-you request")
            return
        out.append(" node information query")
        if siz < 16:
            out.append(" [|icmp6]")  # nd_print_trunc, then icmp6_print goes on
            return
        qtype, flags = _U16.unpack_from(bp, 4)[0], _U16.unpack_from(bp, 6)[0]
        out.append(" (" + {0: "noop", 1: "supported qtypes", 2: "DNS name", 3: "node addresses"}.get(qtype, "unknown"))
        if qtype == 1 and flags:
            out.append(f" [{'C' if flags & 1 else ''}]")
        elif qtype == 3 and flags:
            out.append(" " + _ni_addr_flags(flags, False))
        if qtype in (0, 1):
            if siz != 16 and vflag:
                out.append(", invalid len")
            out.append(")")
            return
        if siz == 16:
            out.append(", 03 draft)")
            return
        code = bp[1]
        if code == 0:
            if siz >= 32:
                if siz != 32:
                    if vflag:
                        out.append(", invalid subject len")
                else:
                    out.append(f", subject={_addr6(bp, 16, 'icmp6')}")
        elif code == 1:
            out.append(", subject=DNS name")
            if bp[16] == siz - 16 - 1:
                if vflag:
                    out.append(", 03 draft")
                out.append(', "' + "".join(chr(c) if 0x20 <= c < 0x7F else f"\\{c:03o}" for c in bp[17:]) + '"')
            else:
                out.append(_ni_dnsname(bp, 16))
        elif code == 2:
            if siz >= 20:
                if siz != 20:
                    if vflag:
                        out.append(", invalid subject len")
                else:
                    out.append(f", subject={ip_to_str(int.from_bytes(bp[16:20], 'big'))}")
        else:
            out.append(", unknown subject")
        out.append(")")
        return
    if length > siz or siz < 16:
        out.append(" [|icmp6]")
        return
    out.append(" node information reply (")
    code, needcomma = bp[1], False
    if code == 0:
        if vflag:
            out.append("success")
            needcomma = True
    elif code in (1, 2):
        out.append("refused" if code == 1 else "unknown")
        needcomma = True
        if siz != 16 and vflag:
            out.append(", invalid length")
    if code != 0:
        out.append(")")
        return
    qtype, flags = _U16.unpack_from(bp, 4)[0], _U16.unpack_from(bp, 6)[0]
    out.append(", " if needcomma else "")
    if qtype == 0:
        out.append("noop" + (", invalid length" if siz != 16 and vflag else ""))
    elif qtype == 1:
        out.append("supported qtypes" + (f" [{'C' if flags & 1 else ''}]" if flags else ""))
    elif qtype == 2:
        out.append("DNS name")
        cp = 20
        if cp < siz and bp[cp] == siz - cp - 1:
            if vflag:
                out.append(", 03 draft")
            out.append(', "' + "".join(chr(c) if 0x20 <= c < 0x7F else f"\\{c:03o}" for c in bp[cp + 1:]) + '"')
        else:
            out.append(_ni_dnsname(bp, cp))
        if flags & 1:
            out.append(f" [TTL={_get(bp, 16, 4, 'icmp6')}]")
    elif qtype == 3:
        out.append("node addresses")
        i = 16
        while i + 20 <= siz:
            out.append(f" {_addr6(bp, i + 4, 'icmp6')}({_get(bp, i, 4, 'icmp6')})")
            i += 20
        if flags:
            out.append(" " + _ni_addr_flags(flags, True))
    else:
        out.append("unknown")
    out.append(")")


def _get_upperlayer(oip: bytes) -> tuple[int, int] | None:
    """get_upperlayer: the quoted packet's transport protocol (TCP or UDP) and destination port,
    past its extension headers; None when there is none to read."""
    if len(oip) < 7:
        return None
    nh, cp, hlen = oip[6], 0, IPV6_HLEN
    while cp < len(oip):
        cp += hlen
        if nh in (IPPROTO_UDP, IPPROTO_TCP):
            return (nh, _U16.unpack_from(oip, cp + 2)[0]) if cp + 4 <= len(oip) else None
        if nh in (NEXTHDR_HOP, NEXTHDR_DEST, NEXTHDR_ROUTING):
            if cp + 2 > len(oip):
                return None
            nh, hlen = oip[cp], (oip[cp + 1] + 1) << 3
        elif nh == NEXTHDR_FRAGMENT:
            if cp + 4 > len(oip) or _U16.unpack_from(oip, cp + 2)[0] & 0xFFF8:
                return None
            nh, hlen = oip[cp], 8
        elif nh == 51:  # AH
            if cp + 2 > len(oip):
                return None
            nh, hlen = oip[cp], (oip[cp + 1] + 2) << 2
        else:
            return None
    return None


def _icmp6_opt_print(out: list, bp: bytes, off: int, resid: int, vflag: bool) -> int:
    """icmp6_opt_print: each NDP option on its own line, "\\n\\t  <name> option (T), length L (N): ..."
    (-v); -1 when one is cut short or has length 0."""
    cp = off
    while cp < len(bp):
        if cp + 2 > len(bp):
            raise _Trunc("icmp6", jumped=False)
        if resid <= 0:
            return 0
        kind, units = bp[cp], bp[cp + 1]
        if units == 0 or cp + (units << 3) > len(bp):
            return -1
        size = units << 3
        out.append(f"\n\t  {_ND_OPT_NAMES.get(kind, 'unknown')} option ({kind}), length {size} ({units}): ")
        if kind in (1, 2):
            out.append(":".join(f"{b:02x}" for b in bp[cp + 2:cp + size]))
        elif kind == 3:
            out.append(f"{_addr6(bp, cp + 16, 'icmp6')}/{_get(bp, cp + 2, 1, 'icmp6')}{'badlen' if units != 4 else ''}"
                       f", Flags [{_bittok(_PI_FLAGS, _get(bp, cp + 3, 1, 'icmp6'))}], "
                       f"valid time {_lifetime(_get(bp, cp + 4, 4, 'icmp6'))}, "
                       f"pref. time {_lifetime(_get(bp, cp + 8, 4, 'icmp6'))}")
        elif kind == 4:
            _hex_print(out, "\n\t    ", bp[off:off + size])  # sic: from the first option
        elif kind == 5:
            out.append(f" {_get(bp, cp + 4, 4, 'icmp6')}{'bad option length' if units != 1 else ''}")
        elif kind == 25:
            out.append(f" lifetime {_get(bp, cp + 4, 4, 'icmp6')}s,")
            for i in range((units - 1) // 2):
                out.append(f" addr: {_addr6(bp, cp + 8 + 16 * i, 'icmp6')}")
        elif kind == 31:
            out.append(f" lifetime {_get(bp, cp + 4, 4, 'icmp6')}s, domain(s):")
            domp = cp + 8
            while domp < cp + size and bp[domp]:
                out.append(" ")
                domp = _fqdn_print(out, bp, domp)
        elif kind == 7:
            out.append(f" {_get(bp, cp + 4, 4, 'icmp6')}ms")
        elif kind == 8:
            out.append(f" preference {_get(bp, cp + 4, 2, 'icmp6')}, lifetime {_get(bp, cp + 6, 2, 'icmp6')}")
        elif kind == 24:
            _get(bp, cp + 4, 4, "icmp6")
            if units > 3:
                return -1
            prefix = ip6_to_str(int.from_bytes(bp[cp + 8:cp + 8 + (units - 1) * 8].ljust(16, b"\0"), "big"))
            out.append(f" {prefix}/{bp[cp + 2]}, pref={_RTPREF[(bp[cp + 3] & 0x18) >> 3]}, "
                       f"lifetime={_lifetime(_get(bp, cp + 4, 4, 'icmp6'))}")
        else:  # vflag <= 1 (pktpath's -v is tcpdump's one -v)
            _hex_print(out, "\n\t  ", bp[cp + 2:cp + size])
            return 0
        cp += size
        resid -= size
    return 0


def _fqdn_print(out: list, bp: bytes, off: int) -> int:
    """print-domain.c's fqdn_print for an uncompressed name: its labels, each ending "."."""
    while True:
        label = _get(bp, off, 1, "icmp6")
        off += 1
        if not label:
            return off
        text = bytes(bp[off:off + label])
        if len(text) < label:
            raise _Trunc("icmp6")
        out.append("".join(chr(c) if 0x20 <= c < 0x7F else f"\\{c:03o}" for c in text) + ".")
        off += label


def _mld6_print(out: list, bp: bytes) -> None:
    """mld6_print: nothing unless the whole 24 bytes are there; no comma before it."""
    if len(bp) < 24:
        return
    out.append(f"max resp delay: {_get(bp, 4, 2, 'icmp6')} addr: {_addr6(bp, 8, 'icmp6')}")


def _mldv2_report_print(out: list, bp: bytes, length: int, vflag: bool) -> None:
    """mldv2_report_print: the count of group records; -v each "[gaddr G to_ex, N source(s)]"."""
    if length < 8:
        out.append(f" [invalid len {length}]")
        return
    ngroups = _get(bp, 6, 2, "icmp6")
    out.append(f", {ngroups} group record(s)")
    if not vflag:
        return
    group = 8
    for _ in range(ngroups):
        if length < group + 20:
            out.append(" [invalid number of groups]")
            return
        out.append(f" [gaddr {_addr6(bp, group + 4, 'icmp6')}")
        rtype = _get(bp, group, 1, "icmp6")
        out.append(f" {_MLDV2_RECORDS.get(rtype, f' [v2-report-#{rtype}]')}")
        nsrcs = _get(bp, group + 2, 2, "icmp6")
        if length < group + 20 + nsrcs * 16:
            out.append(f" [invalid number of sources {nsrcs}]")
            return
        out.append(f", {nsrcs} source(s)]")
        group += 20 + nsrcs * 16


def _mldv2_query_print(out: list, bp: bytes, length: int, vflag: bool) -> None:
    """mldv2_query_print: -v the maximum response delay, the group, S flag, robustness, QQI; sources by count."""
    if length < 28:
        out.append(f" [invalid len {length}]")
        return
    mrc = _get(bp, 4, 2, "icmp6")
    mrt = mrc if mrc < 32768 else ((mrc & 0x0FFF) | 0x1000) << (((mrc & 0x7000) >> 12) + 3)
    if vflag:
        out.append(f" [max resp delay={mrt}]")
    out.append(f" [gaddr {_addr6(bp, 8, 'icmp6')}")
    if vflag:
        flags, qqic = _get(bp, 24, 1, "icmp6"), _get(bp, 25, 1, "icmp6")
        if flags & 0x08:
            out.append(" sflag")
        if flags & 0x07:
            out.append(f" robustness={flags & 0x07}")
        qqi = qqic if qqic < 128 else ((qqic & 0x0F) | 0x10) << (((qqic & 0x70) >> 4) + 3)
        out.append(f" qqi={qqi}")
    nsrcs = _get(bp, 26, 2, "icmp6")
    if nsrcs:
        out.append(" [invalid number of sources]" if length < 28 + nsrcs * 16 else f", {nsrcs} source(s)")
    out.append("]")


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
    type a capture brings: Ethernet frames, raw IPv4 and IPv6 packets, and a layer's packets
    above IP, which are matched as the IP packet their flow's addresses and protocol make. An
    empty expression matches all."""

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
            linktype, data = LINKTYPE_RAW, _as_ip(frame)
        elif linktype in _RAW_IP:
            linktype = LINKTYPE_RAW  # one program for raw IPv4 and IPv6: DLT_RAW reads the version
        return bool(self._program(linktype).filter(data))


_UPPER_PROTO = {"tcp": IPPROTO_TCP, "udp": IPPROTO_UDP, "icmp": IPPROTO_ICMP, "icmpv6": NEXTHDR_ICMP}


def _as_ip(frame) -> bytes:
    """The IP packet a PDU above IP will be: its flow's addresses and protocol over it (IPv6's
    header when the flow's addresses are IPv6's)."""
    protocol = _UPPER_PROTO.get(frame.upper, 255)
    if ":" in frame.saddr + frame.daddr:
        saddr = ip6_from_str(frame.saddr) if frame.saddr else 0
        daddr = ip6_from_str(frame.daddr) if frame.daddr else 0
        return ipv6_packet(saddr, daddr, protocol, frame.data)
    saddr = ip_from_str(frame.saddr) if frame.saddr else 0
    daddr = ip_from_str(frame.daddr) if frame.daddr else 0
    return ipv4_packet(saddr, daddr, protocol, frame.data)


def clock(ts_ns: int) -> str:
    sec, nsec = divmod(ts_ns, 1_000_000_000)
    return time.strftime("%H:%M:%S", time.localtime(sec)) + f".{nsec // 1000:06d}"
