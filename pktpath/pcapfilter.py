"""pcap-filter expressions (`host 10.0.0.2 and (tcp port 80 or icmp)`), compiled by libpcap
itself through pcapy-ng, for every place that filters packets: `pktpath tcpdump`, and
`pktpath trace` through the layers' samplers and the orchestrator's queries.

A filter that has no frame to read — a flow the sampler or the orchestrator knows only by
its addresses, protocol and ports — is matched against the IP packet that flow makes:
an IPv4 (or IPv6) header, then the ports and a transport header of zeros (`flow_packet`).

Raw IP link types (LINKTYPE_IPV4, LINKTYPE_IPV6, LINKTYPE_RAW) compile as libpcap's DLT_RAW,
which tells IPv4 from IPv6 by the version nibble, so `ip6`, `icmp6`, `ip6 host X` work on them
as on Ethernet frames."""

import struct

import pcapy

LINKTYPE_ETHERNET, LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6 = 1, 101, 228, 229
DLT_RAW = pcapy.DLT_RAW  # what libpcap hands back for a LINKTYPE_RAW file (12 on Linux)
_DLT = {LINKTYPE_ETHERNET: pcapy.DLT_EN10MB, LINKTYPE_IPV4: DLT_RAW, LINKTYPE_IPV6: DLT_RAW, LINKTYPE_RAW: DLT_RAW,
        DLT_RAW: DLT_RAW}
SNAPLEN = 262144
_IPV4 = struct.Struct("!BBHHHBBHII")
_IPV6 = struct.Struct("!IHBB16s16s")
_TRANSPORT_LEN = {6: 20, 17: 8, 1: 8, 58: 8}  # the header a filter may read (tcp[tcpflags], icmp6[icmp6type])


def compile_filter(expression: str, linktype: int = LINKTYPE_IPV4):
    """libpcap's BPF program for the expression; ValueError("...: syntax error") if it does not parse."""
    try:
        return pcapy.compile(_DLT[linktype], SNAPLEN, expression, 1, 0xFFFFFFFF)
    except pcapy.PcapError as exc:
        raise ValueError(str(exc)) from None


def ipv4_packet(saddr: int, daddr: int, protocol: int, transport: bytes) -> bytes:
    return _IPV4.pack(0x45, 0, 20 + len(transport), 0, 0, 64, protocol, 0, saddr, daddr) + transport


def ipv6_packet(saddr: int, daddr: int, nexthdr: int, transport: bytes) -> bytes:
    return _IPV6.pack(6 << 28, len(transport), nexthdr, 64, saddr.to_bytes(16, "big"),
                      daddr.to_bytes(16, "big")) + transport


def flow_packet(saddr: int, daddr: int, protocol: int, sport: int = 0, dport: int = 0, family: int = 4) -> bytes:
    """The IP packet a flow makes (family 4 or 6), as far as a filter can ask about it."""
    transport = bytearray(_TRANSPORT_LEN.get(protocol, 0))
    if protocol in (6, 17):
        struct.pack_into("!HH", transport, 0, sport, dport)
    if family == 6:
        return ipv6_packet(saddr, daddr, protocol, bytes(transport))
    return ipv4_packet(saddr, daddr, protocol, bytes(transport))
