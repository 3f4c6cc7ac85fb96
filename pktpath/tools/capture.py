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

from pktpath.taps import LINKTYPE_ETHERNET, LINKTYPE_IPV4, LINKTYPE_WIRESHARK_UPPER_PDU
from pktpath.wire import ArpHdr, EthHdr, IcmpHdr, IpHdr, TcpHdr, UdpHdr, WireError
from pktpath.wire.addr import ip_from_str, ip_to_str, mac_to_str
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


def describe(frame) -> str:
    """A CapturedFrame in tcpdump's manner, whatever its link type."""
    linktype = frame.linktype or LINKTYPE_ETHERNET
    if linktype == LINKTYPE_IPV4:
        return summary_ip(frame.data)
    if linktype == LINKTYPE_WIRESHARK_UPPER_PDU:
        flow = f"{frame.saddr or '(src not chosen yet)'} > {frame.daddr}"
        if frame.upper == "data":
            return f"{flow}: payload, length {frame.len} (no transport header yet)"
        return f"{flow}: {_summary_l4(frame.upper, frame.data)} (no IP header yet)"
    return summary(frame.data)


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


def summary(frame: bytes) -> str:
    """One line per Ethernet frame, in tcpdump's manner."""
    try:
        eth = EthHdr.from_bytes(frame)
    except WireError as exc:
        return f"malformed ethernet: {exc}"
    body = frame[eth.header_len:]
    try:
        if eth.h_proto == ETH_P_ARP:
            arp = ArpHdr.from_bytes(body)
            if arp.ar_op == ARPOP_REQUEST:
                return f"ARP, Request who-has {ip_to_str(arp.ar_tip)} tell {ip_to_str(arp.ar_sip)}, length {len(body)}"
            if arp.ar_op == ARPOP_REPLY:
                return f"ARP, Reply {ip_to_str(arp.ar_sip)} is-at {mac_to_str(arp.ar_sha)}, length {len(body)}"
            return f"ARP, op {arp.ar_op}"
    except WireError as exc:
        return f"malformed: {exc}"
    if eth.h_proto != ETH_P_IP:
        return f"ethertype 0x{eth.h_proto:04x}, length {len(frame)}"
    return summary_ip(body)


def summary_ip(body: bytes) -> str:
    """One line per IPv4 packet, in tcpdump's manner."""
    try:
        ip = IpHdr.from_bytes(body)
        src, dst = ip_to_str(ip.saddr), ip_to_str(ip.daddr)
        frag = f" (frag {ip.id}:{ip.tot_len - ip.header_len}@{ip.frag_offset}{'+' if ip.mf else ''})" \
            if ip.is_fragment else ""
        l4 = body[ip.header_len:ip.tot_len]
        if ip.frag_offset:
            return f"IP {src} > {dst}: ip-proto-{ip.protocol}{frag}"
        if ip.protocol == IPPROTO_ICMP:
            icmp = IcmpHdr.from_bytes(l4, verify_csum=False)
            what = _ICMP_TYPES.get(icmp.type, f"type {icmp.type}")
            if icmp.type in (0, 8):
                what += f", id {icmp.echo_id}, seq {icmp.echo_sequence}"
            return f"IP {src} > {dst}: ICMP {what}, length {len(l4)}{frag}"
        if ip.protocol == IPPROTO_UDP:
            udp = UdpHdr.from_bytes(l4)
            return f"IP {src}.{udp.source} > {dst}.{udp.dest}: UDP, length {udp.len - 8}{frag}"
        if ip.protocol == IPPROTO_TCP:
            tcp = TcpHdr.from_bytes(l4)
            return f"IP {src}.{tcp.source} > {dst}.{tcp.dest}: TCP, seq {tcp.seq}, length {len(l4) - tcp.header_len}"
        return f"IP {src} > {dst}: ip-proto-{ip.protocol}, length {ip.tot_len}{frag}"
    except WireError as exc:
        return f"malformed: {exc}"


def clock(ts_ns: int) -> str:
    sec, nsec = divmod(ts_ns, 1_000_000_000)
    return time.strftime("%H:%M:%S", time.localtime(sec)) + f".{nsec // 1000:06d}"
