"""pcap-filter expressions (`host 10.0.0.2 and (tcp port 80 or icmp)`), compiled by libpcap
itself through pcapy-ng, for every place that filters packets: `pktpath tcpdump`, and
`pktpath trace` through the layers' samplers and the orchestrator's queries.

A filter that has no frame to read — a flow the sampler or the orchestrator knows only by
its addresses, protocol and ports — is matched against the IPv4 packet that flow makes:
an IPv4 header, then the ports and a transport header of zeros (`flow_packet`)."""

import struct

import pcapy

LINKTYPE_ETHERNET, LINKTYPE_IPV4 = 1, 228
_DLT = {LINKTYPE_ETHERNET: pcapy.DLT_EN10MB, LINKTYPE_IPV4: pcapy.DLT_RAW}
SNAPLEN = 262144
_IPV4 = struct.Struct("!BBHHHBBHII")
_TRANSPORT_LEN = {6: 20, 17: 8, 1: 8}  # the header a filter may read (tcp[tcpflags], icmp[icmptype])


def compile_filter(expression: str, linktype: int = LINKTYPE_IPV4):
    """libpcap's BPF program for the expression; ValueError("...: syntax error") if it does not parse."""
    try:
        return pcapy.compile(_DLT[linktype], SNAPLEN, expression, 1, 0xFFFFFFFF)
    except pcapy.PcapError as exc:
        raise ValueError(str(exc)) from None


def ipv4_packet(saddr: int, daddr: int, protocol: int, transport: bytes) -> bytes:
    return _IPV4.pack(0x45, 0, 20 + len(transport), 0, 0, 64, protocol, 0, saddr, daddr) + transport


def flow_packet(saddr: int, daddr: int, protocol: int, sport: int = 0, dport: int = 0) -> bytes:
    """The IPv4 packet a flow makes, as far as a filter can ask about it."""
    transport = bytearray(_TRANSPORT_LEN.get(protocol, 0))
    if protocol in (6, 17):
        struct.pack_into("!HH", transport, 0, sport, dport)
    return ipv4_packet(saddr, daddr, protocol, bytes(transport))
