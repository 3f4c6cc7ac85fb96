"""tcpdump for pktpath: frames from a host's L2 taps, as one-line summaries or a pcap file.

The pcap file is libpcap's classic format with nanosecond timestamps (magic
0xa1b23c4d, LINKTYPE_ETHERNET), which tcpdump, tshark, Wireshark and scapy read.
"""

import struct
import time
from typing import BinaryIO

from pktpath.wire import ArpHdr, EthHdr, IcmpHdr, IpHdr, TcpHdr, UdpHdr, WireError
from pktpath.wire.addr import ip_to_str, mac_to_str
from pktpath.wire.arp import ARPOP_REPLY, ARPOP_REQUEST
from pktpath.wire.ethernet import ETH_P_ARP, ETH_P_IP
from pktpath.wire.ipv4 import IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP

PCAP_MAGIC_NS = 0xA1B23C4D
LINKTYPE_ETHERNET = 1
_PCAP_HDR = struct.Struct("<IHHiIII")
_PCAP_REC = struct.Struct("<IIII")
_ICMP_TYPES = {0: "echo reply", 3: "destination unreachable", 8: "echo request", 11: "time exceeded"}


class PcapWriter:
    def __init__(self, f: BinaryIO, snaplen: int = 262144) -> None:
        self.f = f
        f.write(_PCAP_HDR.pack(PCAP_MAGIC_NS, 2, 4, 0, 0, snaplen, LINKTYPE_ETHERNET))

    def write(self, ts_ns: int, data: bytes, orig_len: int) -> None:
        sec, nsec = divmod(ts_ns, 1_000_000_000)
        self.f.write(_PCAP_REC.pack(sec, nsec, len(data), orig_len))
        self.f.write(data)


def summary(frame: bytes) -> str:
    """One line per frame, in tcpdump's manner."""
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
        if eth.h_proto != ETH_P_IP:
            return f"ethertype 0x{eth.h_proto:04x}, length {len(frame)}"
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
