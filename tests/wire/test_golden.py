"""Golden bytes, one set per header: parse -> every field; fields -> build == golden;
build(parse(golden)) == golden.

The hex literals were derived once with scapy while writing this file and are
frozen here; nothing at test time recomputes them. Two of them are also
well-known published values:

* the IPv4 header 4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7, the
  classic header-checksum example (Wikipedia, "Internet checksum" / "IPv4
  header checksum"), checksum 0xb861;
* the Windows ping, ICMP echo request id 1 seq 1 with the 32-byte payload
  "abcdefghijklmnopqrstuvwabcdefghi", checksum 0x4d5a, seen in countless captures;
* CRC-32 of b"123456789" is 0xCBF43926, the standard check value of the
  IEEE 802.3 CRC (the Ethernet FCS).
"""

import pytest

from pktpath.wire.addr import (
    BROADCAST_MAC, ZERO_MAC, ip_from_str, ip_to_str, is_multicast_mac, mac_from_str, mac_to_str,
)
from pktpath.wire.arp import ARPOP_REPLY, ARPOP_REQUEST, ArpHdr
from pktpath.wire.errors import SanityError
from pktpath.wire.ethernet import ETH_P_ARP, ETH_P_IP, ETH_ZLEN, EthHdr, fcs, pad, strip_fcs
from pktpath.wire.icmp import (
    ICMP_DEST_UNREACH, ICMP_ECHO, ICMP_ECHOREPLY, ICMP_FRAG_NEEDED, ICMP_PORT_UNREACH,
    ICMP_TIME_EXCEEDED, IcmpHdr, quote, quoted,
)
from pktpath.wire.ipv4 import IP_DF, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, IpHdr
from pktpath.wire.tcp import (
    TCPHDR_ACK, TCPHDR_PSH, TCPHDR_SYN, TcpHdr, TcpOptMss, TcpOptNop, TcpOptSack, TcpOptSackPerm,
    TcpOptTimestamp, TcpOptWindow, encode_options, parse_options,
)
from pktpath.wire.udp import UdpHdr

H = bytes.fromhex

# ------------------------------------------------------------------ Ethernet

ETH = H("525400123456" "0242ac110002" "0800")
ETH_VLAN = H("ffffffffffff" "000c29abcdef" "8100" "b064" "0806")  # PCP 5, DEI 1, VID 100


def test_ethernet_parse():
    frame = ETH + b"payload"
    h = EthHdr.from_bytes(frame)
    assert h.h_dest == H("525400123456")
    assert h.h_source == H("0242ac110002")
    assert h.h_proto == 0x0800
    assert h.vlan_tci is None
    assert h.vlan_id is None
    assert h.header_len == 14


def test_ethernet_build():
    h = EthHdr(mac_from_str("52:54:00:12:34:56"), mac_from_str("02:42:ac:11:00:02"), ETH_P_IP)
    assert h.to_bytes() == ETH


def test_ethernet_roundtrip():
    assert EthHdr.from_bytes(ETH + b"xyz").to_bytes() == ETH


def test_ethernet_vlan_parse():
    h = EthHdr.from_bytes(ETH_VLAN + bytes(28))
    assert h.h_dest == BROADCAST_MAC
    assert h.h_source == H("000c29abcdef")
    assert h.h_proto == 0x0806
    assert h.vlan_tci == 0xB064
    assert h.vlan_tci >> 13 == 5  # PCP
    assert (h.vlan_tci >> 12) & 1 == 1  # DEI
    assert h.vlan_id == 100
    assert h.header_len == 18


def test_ethernet_vlan_build():
    h = EthHdr(BROADCAST_MAC, mac_from_str("00:0c:29:ab:cd:ef"), ETH_P_ARP, vlan_tci=5 << 13 | 1 << 12 | 100)
    assert h.to_bytes() == ETH_VLAN


def test_ethernet_vlan_roundtrip():
    assert EthHdr.from_bytes(ETH_VLAN).to_bytes() == ETH_VLAN


def test_fcs_standard_check_value():
    assert fcs(b"123456789") == H("2639f4cb")  # 0xCBF43926, little-endian on the wire
    assert strip_fcs(ETH + b"123456789" + fcs(ETH + b"123456789")) == ETH + b"123456789"


def test_pad():
    assert pad(ETH) == ETH + bytes(ETH_ZLEN - 14)
    assert len(pad(ETH)) == 60
    long = ETH + bytes(range(50))
    assert pad(long) == long


# ----------------------------------------------------------------------- ARP

ARP_REQUEST = H("0001" "0800" "06" "04" "0001" "000c29abcdef" "c0a80164" "000000000000" "c0a80101")
ARP_REPLY = H("0001" "0800" "06" "04" "0002" "525400123456" "c0a80101" "000c29abcdef" "c0a80164")


def test_arp_request_parse():
    h = ArpHdr.from_bytes(ARP_REQUEST + bytes(18))  # Ethernet padding is ignored
    assert h.ar_op == ARPOP_REQUEST == 1
    assert h.ar_sha == H("000c29abcdef")
    assert h.ar_sip == 0xC0A80164
    assert h.ar_tha == ZERO_MAC
    assert h.ar_tip == 0xC0A80101
    assert (h.ar_hrd, h.ar_pro, h.ar_hln, h.ar_pln) == (1, 0x0800, 6, 4)
    assert h.header_len == 28


def test_arp_reply_parse():
    h = ArpHdr.from_bytes(ARP_REPLY)
    assert h.ar_op == ARPOP_REPLY == 2
    assert h.ar_sha == H("525400123456")
    assert h.ar_sip == 0xC0A80101
    assert h.ar_tha == H("000c29abcdef")
    assert h.ar_tip == 0xC0A80164
    assert (h.ar_hrd, h.ar_pro, h.ar_hln, h.ar_pln) == (1, 0x0800, 6, 4)


def test_arp_build():
    req = ArpHdr(ARPOP_REQUEST, mac_from_str("00:0c:29:ab:cd:ef"), ip_from_str("192.168.1.100"),
                 ZERO_MAC, ip_from_str("192.168.1.1"))
    rep = ArpHdr(ARPOP_REPLY, mac_from_str("52:54:00:12:34:56"), ip_from_str("192.168.1.1"),
                 mac_from_str("00:0c:29:ab:cd:ef"), ip_from_str("192.168.1.100"))
    assert req.to_bytes() == ARP_REQUEST
    assert rep.to_bytes() == ARP_REPLY


@pytest.mark.parametrize("golden", [ARP_REQUEST, ARP_REPLY], ids=["request", "reply"])
def test_arp_roundtrip(golden):
    assert ArpHdr.from_bytes(golden).to_bytes() == golden


# ---------------------------------------------------------------------- IPv4

# The classic published example: 192.168.0.1 -> 192.168.0.199, UDP, DF, checksum 0xb861.
IPV4 = H("4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7")
IPV4_PAYLOAD = bytes(0x73 - 20)
# IGMP-style: TOS 0xc0, TTL 1, DF, one Router Alert option (IHL 6).
IPV4_RA = H("46c00028000040000102f9f80a000001e0000016" "94040000")
IPV4_RA_PAYLOAD = H("2200f9020000000104000000e00000fb")
# A 7-byte Record Route option padded with one EOL byte (IHL 7), protocol 253.
IPV4_RR = H("4700001fbeef000040fd8fd80a0102030a090807" "0707040000000000")
IPV4_RR_PAYLOAD = b"xyz"


def test_ipv4_parse():
    h = IpHdr.from_bytes(IPV4 + IPV4_PAYLOAD)
    assert h.version == 4
    assert h.ihl == 5
    assert h.header_len == 20
    assert h.tos == 0
    assert h.tot_len == 0x73 == 115
    assert h.id == 0
    assert h.frag_off == 0x4000
    assert h.df and not h.mf and h.frag_offset == 0 and not h.is_fragment
    assert h.ttl == 64
    assert h.protocol == IPPROTO_UDP
    assert h.check == 0xB861
    assert h.saddr == 0xC0A80001 and ip_to_str(h.saddr) == "192.168.0.1"
    assert h.daddr == 0xC0A800C7 and ip_to_str(h.daddr) == "192.168.0.199"
    assert h.options == b""


def test_ipv4_build():
    h = IpHdr(ip_from_str("192.168.0.1"), ip_from_str("192.168.0.199"), IPPROTO_UDP, ttl=64, frag_off=IP_DF)
    assert h.to_bytes(len(IPV4_PAYLOAD)) == IPV4
    # tot_len taken from the field when no payload length is given
    assert h._replace(tot_len=115).to_bytes() == IPV4


def test_ipv4_roundtrip():
    assert IpHdr.from_bytes(IPV4 + IPV4_PAYLOAD).to_bytes() == IPV4
    assert IpHdr.from_bytes(IPV4 + IPV4_PAYLOAD).to_bytes(len(IPV4_PAYLOAD)) == IPV4


def test_ipv4_router_alert_parse():
    h = IpHdr.from_bytes(IPV4_RA + IPV4_RA_PAYLOAD)
    assert h.ihl == 6 and h.header_len == 24
    assert h.tos == 0xC0
    assert h.tot_len == 40
    assert h.id == 0
    assert h.frag_off == IP_DF
    assert h.ttl == 1
    assert h.protocol == 2
    assert h.check == 0xF9F8
    assert h.saddr == ip_from_str("10.0.0.1")
    assert h.daddr == ip_from_str("224.0.0.22")
    assert h.options == H("94040000")


def test_ipv4_router_alert_build():
    h = IpHdr(ip_from_str("10.0.0.1"), ip_from_str("224.0.0.22"), 2, ttl=1, tos=0xC0, frag_off=IP_DF,
              options=H("94040000"))
    assert h.to_bytes(len(IPV4_RA_PAYLOAD)) == IPV4_RA


def test_ipv4_record_route_parse():
    h = IpHdr.from_bytes(IPV4_RR + IPV4_RR_PAYLOAD)
    assert h.ihl == 7 and h.header_len == 28
    assert h.tos == 0
    assert h.tot_len == 31
    assert h.id == 0xBEEF
    assert h.frag_off == 0
    assert h.ttl == 64
    assert h.protocol == 253
    assert h.check == 0x8FD8
    assert h.saddr == ip_from_str("10.1.2.3")
    assert h.daddr == ip_from_str("10.9.8.7")
    assert h.options == H("0707040000000000")


def test_ipv4_record_route_build_pads_options():
    h = IpHdr(ip_from_str("10.1.2.3"), ip_from_str("10.9.8.7"), 253, id=0xBEEF, options=H("07070400000000"))
    assert h.ihl == 7
    assert h.to_bytes(len(IPV4_RR_PAYLOAD)) == IPV4_RR


@pytest.mark.parametrize("golden,payload", [(IPV4_RA, IPV4_RA_PAYLOAD), (IPV4_RR, IPV4_RR_PAYLOAD)],
                         ids=["router-alert", "record-route"])
def test_ipv4_options_roundtrip(golden, payload):
    assert IpHdr.from_bytes(golden + payload).to_bytes() == golden


# ---------------------------------------------------------------------- ICMP

WIN_PING = b"abcdefghijklmnopqrstuvwabcdefghi"
ECHO_REQUEST = H("0800" "4d5a" "0001" "0001") + WIN_PING  # published: Windows ping id 1 seq 1
ECHO_REPLY = H("0000" "555a" "0001" "0001") + WIN_PING
ECHO_REQUEST_2 = H("0800" "3014" "1c46" "0102") + WIN_PING  # id != seq: catches a swap

# The original datagrams the error messages quote.
ORIG_UDP = H("4500002112340000401154960a0000010a000002" "9c40829a000d8924" "68656c6c6f")
ORIG_TCP = H("45000030432140003f06b29c0a000001cb007109"
             "b26e0050000003e8000007d0501801f696730000" "474554202f204854")
ORIG_ICMP = H("450000240abc000001017ae20a000001c6336407" "0800c2dd77770003" "70696e67706f6e67")

PORT_UNREACH = H("0303" "111e" "00000000") + ORIG_UDP
FRAG_NEEDED = H("0304" "3db1" "0000" "0578") + ORIG_TCP  # next-hop MTU 1400
TIME_EXCEEDED = H("0b00" "f4ff" "00000000") + ORIG_ICMP


@pytest.mark.parametrize("golden,type_,echo_id,seq,csum", [
    (ECHO_REQUEST, ICMP_ECHO, 1, 1, 0x4D5A),
    (ECHO_REPLY, ICMP_ECHOREPLY, 1, 1, 0x555A),
    (ECHO_REQUEST_2, ICMP_ECHO, 0x1C46, 0x0102, 0x3014),
], ids=["request", "reply", "request-2"])
def test_icmp_echo_parse(golden, type_, echo_id, seq, csum):
    h = IcmpHdr.from_bytes(golden)
    assert h.type == type_
    assert h.code == 0
    assert h.checksum == csum
    assert h.un == echo_id << 16 | seq
    assert h.echo_id == echo_id
    assert h.echo_sequence == seq
    assert not h.is_error
    assert h.header_len == 8


def test_icmp_echo_build():
    assert IcmpHdr.echo(1, 1).to_bytes(WIN_PING) + WIN_PING == ECHO_REQUEST
    assert IcmpHdr.echo(1, 1, reply=True).to_bytes(WIN_PING) + WIN_PING == ECHO_REPLY
    assert IcmpHdr.echo(0x1C46, 0x0102).to_bytes(WIN_PING) + WIN_PING == ECHO_REQUEST_2
    assert IcmpHdr(ICMP_ECHO, 0, 0x1C460102).to_bytes(WIN_PING) == ECHO_REQUEST_2[:8]


@pytest.mark.parametrize("golden", [ECHO_REQUEST, ECHO_REPLY, ECHO_REQUEST_2, PORT_UNREACH, FRAG_NEEDED,
                                    TIME_EXCEEDED])
def test_icmp_roundtrip(golden):
    assert IcmpHdr.from_bytes(golden).to_bytes(golden[8:]) == golden[:8]


def test_icmp_port_unreachable_parse():
    h = IcmpHdr.from_bytes(PORT_UNREACH)
    assert (h.type, h.code, h.checksum, h.un) == (ICMP_DEST_UNREACH, ICMP_PORT_UNREACH, 0x111E, 0)
    assert h.is_error
    iph, rest = quoted(PORT_UNREACH)
    assert iph.saddr == ip_from_str("10.0.0.1") and iph.daddr == ip_from_str("10.0.0.2")
    assert (iph.protocol, iph.id, iph.ttl, iph.tot_len, iph.check, iph.frag_off) == (
        IPPROTO_UDP, 0x1234, 64, 33, 0x5496, 0)
    assert rest == H("9c40829a000d8924") + b"hello"
    udp = UdpHdr.from_bytes(rest, iph.saddr, iph.daddr)
    assert (udp.source, udp.dest, udp.len, udp.check) == (40000, 33434, 13, 0x8924)


def test_icmp_port_unreachable_build():
    s, d = ip_from_str("10.0.0.1"), ip_from_str("10.0.0.2")
    orig = (IpHdr(s, d, IPPROTO_UDP, id=0x1234).to_bytes(13)
            + UdpHdr(40000, 33434).to_bytes(b"hello", s, d) + b"hello")
    assert orig == ORIG_UDP
    body = quote(orig)
    assert body == ORIG_UDP
    assert IcmpHdr.dest_unreach(ICMP_PORT_UNREACH).to_bytes(body) + body == PORT_UNREACH


def test_icmp_frag_needed_parse():
    h = IcmpHdr.from_bytes(FRAG_NEEDED)
    assert (h.type, h.code, h.checksum) == (ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, 0x3DB1)
    assert h.un == 0x0578
    assert h.mtu == 1400
    iph, rest = quoted(FRAG_NEEDED)
    assert iph.saddr == ip_from_str("10.0.0.1") and iph.daddr == ip_from_str("203.0.113.9")
    assert (iph.protocol, iph.id, iph.ttl, iph.tot_len, iph.check) == (IPPROTO_TCP, 0x4321, 63, 48, 0xB29C)
    assert iph.df and not iph.mf
    tcp = TcpHdr.from_bytes(rest, iph.saddr, iph.daddr)
    assert (tcp.source, tcp.dest, tcp.seq, tcp.ack_seq) == (45678, 80, 1000, 2000)
    assert tcp.flags == TCPHDR_PSH | TCPHDR_ACK
    assert (tcp.doff, tcp.window, tcp.check, tcp.urg_ptr, tcp.options) == (5, 502, 0x9673, 0, b"")
    assert rest[tcp.header_len:] == b"GET / HT"


def test_icmp_frag_needed_build():
    s, d = ip_from_str("10.0.0.1"), ip_from_str("203.0.113.9")
    seg = TcpHdr(45678, 80, 1000, 2000, flags=TCPHDR_PSH | TCPHDR_ACK, window=502).to_bytes(b"GET / HT", s, d)
    orig = IpHdr(s, d, IPPROTO_TCP, ttl=63, id=0x4321, frag_off=IP_DF).to_bytes(28) + seg + b"GET / HT"
    assert orig == ORIG_TCP
    body = quote(orig)
    assert IcmpHdr.dest_unreach(ICMP_FRAG_NEEDED, 1400).to_bytes(body) + body == FRAG_NEEDED


def test_icmp_time_exceeded_parse():
    h = IcmpHdr.from_bytes(TIME_EXCEEDED)
    assert (h.type, h.code, h.checksum, h.un) == (ICMP_TIME_EXCEEDED, 0, 0xF4FF, 0)
    assert h.is_error
    iph, rest = quoted(TIME_EXCEEDED)
    assert iph.saddr == ip_from_str("10.0.0.1") and iph.daddr == ip_from_str("198.51.100.7")
    assert (iph.protocol, iph.id, iph.ttl, iph.tot_len, iph.check) == (IPPROTO_ICMP, 0x0ABC, 1, 36, 0x7AE2)
    inner = IcmpHdr.from_bytes(rest)
    assert (inner.type, inner.code, inner.checksum) == (ICMP_ECHO, 0, 0xC2DD)
    assert (inner.echo_id, inner.echo_sequence) == (0x7777, 3)


def test_icmp_time_exceeded_build():
    s, d = ip_from_str("10.0.0.1"), ip_from_str("198.51.100.7")
    echo = IcmpHdr.echo(0x7777, 3).to_bytes(b"pingpong") + b"pingpong"
    orig = IpHdr(s, d, IPPROTO_ICMP, ttl=1, id=0x0ABC).to_bytes(len(echo)) + echo
    assert orig == ORIG_ICMP
    body = quote(orig)
    assert IcmpHdr.time_exceeded().to_bytes(body) + body == TIME_EXCEEDED


def test_icmp_quote_limits_error_to_576_bytes():
    big = bytes(range(256)) * 6  # 1536 bytes
    assert quote(big) == big[:576 - 20 - 8]
    assert quote(big, ip_options_len=12) == big[:576 - 20 - 12 - 8]
    assert quote(big[:100]) == big[:100]


# ----------------------------------------------------------------------- UDP

UDP_SADDR, UDP_DADDR = "192.168.1.100", "8.8.8.8"
DNS_QUERY = H("123401000001000000000000076578616d706c6503636f6d0000010001")  # 29 bytes: odd
UDP = H("cf08" "0035" "0025" "7ca8")


def test_udp_parse():
    h = UdpHdr.from_bytes(UDP + DNS_QUERY, ip_from_str(UDP_SADDR), ip_from_str(UDP_DADDR))
    assert (h.source, h.dest, h.len, h.check) == (53000, 53, 37, 0x7CA8)
    assert h.header_len == 8


def test_udp_build():
    h = UdpHdr(53000, 53)
    assert h.to_bytes(DNS_QUERY, ip_from_str(UDP_SADDR), ip_from_str(UDP_DADDR)) == UDP
    assert h.to_bytes(DNS_QUERY, 0, 0, no_check=True) == UDP[:6] + b"\x00\x00"


def test_udp_roundtrip():
    s, d = ip_from_str(UDP_SADDR), ip_from_str(UDP_DADDR)
    assert UdpHdr.from_bytes(UDP + DNS_QUERY, s, d).to_bytes(DNS_QUERY, s, d) == UDP


# ----------------------------------------------------------------------- TCP

TCP_CLIENT, TCP_SERVER = "192.168.1.100", "93.184.216.34"
# A Linux SYN: MSS 1460, SACK-permitted, timestamps, NOP, window scale 7.
TCP_SYN = H("c82201bb3ade68b100000000a002faf044dd0000" "020405b40402080a0019a2c4000000000103" "0307")
# A duplicate ACK with timestamps and two SACK blocks (doff 13).
TCP_SACK = H("01bbc8228e3f0a213ade8a31d01001f53c400000" "0101080a7c1d3e550019a5d0"
             "0101" "0512" "3ade9559" "3ade9b01" "3adea0a9" "3adea651")

SYN_OPTIONS = (TcpOptMss(1460), TcpOptSackPerm(), TcpOptTimestamp(0x0019A2C4, 0), TcpOptNop(), TcpOptWindow(7))
SACK_OPTIONS = (
    TcpOptNop(), TcpOptNop(), TcpOptTimestamp(0x7C1D3E55, 0x0019A5D0), TcpOptNop(), TcpOptNop(),
    TcpOptSack(((0x3ADE9559, 0x3ADE9B01), (0x3ADEA0A9, 0x3ADEA651))),
)


def test_tcp_syn_parse():
    h = TcpHdr.from_bytes(TCP_SYN, ip_from_str(TCP_CLIENT), ip_from_str(TCP_SERVER))
    assert (h.source, h.dest) == (51234, 443)
    assert (h.seq, h.ack_seq) == (0x3ADE68B1, 0)
    assert h.doff_res == 0xA0 and h.doff == 10 and h.header_len == 40
    assert h.flags == TCPHDR_SYN
    assert h.syn and not (h.ack or h.fin or h.rst or h.psh or h.urg or h.ece or h.cwr)
    assert h.flag_str() == "S"
    assert (h.window, h.check, h.urg_ptr) == (64240, 0x44DD, 0)
    assert h.options == H("020405b40402080a0019a2c4000000000103" "0307")
    assert h.parsed_options() == SYN_OPTIONS
    assert h.option(TcpOptMss) == TcpOptMss(1460)
    assert h.option(TcpOptWindow).snd_wscale == 7
    assert h.option(TcpOptSack) is None


def test_tcp_syn_build():
    h = TcpHdr(51234, 443, seq=0x3ADE68B1, flags=TCPHDR_SYN, window=64240, options=encode_options(*SYN_OPTIONS))
    assert h.to_bytes(b"", ip_from_str(TCP_CLIENT), ip_from_str(TCP_SERVER)) == TCP_SYN


def test_tcp_sack_parse():
    h = TcpHdr.from_bytes(TCP_SACK, ip_from_str(TCP_SERVER), ip_from_str(TCP_CLIENT))
    assert (h.source, h.dest) == (443, 51234)
    assert (h.seq, h.ack_seq) == (0x8E3F0A21, 0x3ADE8A31)
    assert h.doff_res == 0xD0 and h.doff == 13 and h.header_len == 52
    assert h.flags == TCPHDR_ACK and h.flag_str() == "."
    assert (h.window, h.check, h.urg_ptr) == (501, 0x3C40, 0)
    assert h.parsed_options() == SACK_OPTIONS
    assert parse_options(h.options, strict=False) == SACK_OPTIONS
    assert h.option(TcpOptSack).blocks == ((0x3ADE9559, 0x3ADE9B01), (0x3ADEA0A9, 0x3ADEA651))
    assert h.option(TcpOptTimestamp) == TcpOptTimestamp(0x7C1D3E55, 0x0019A5D0)


def test_tcp_sack_build():
    h = TcpHdr(443, 51234, seq=0x8E3F0A21, ack_seq=0x3ADE8A31, flags=TCPHDR_ACK, window=501,
               options=encode_options(*SACK_OPTIONS))
    assert h.to_bytes(b"", ip_from_str(TCP_SERVER), ip_from_str(TCP_CLIENT)) == TCP_SACK


@pytest.mark.parametrize("golden,src,dst", [(TCP_SYN, TCP_CLIENT, TCP_SERVER), (TCP_SACK, TCP_SERVER, TCP_CLIENT)],
                         ids=["syn", "sack"])
def test_tcp_roundtrip(golden, src, dst):
    s, d = ip_from_str(src), ip_from_str(dst)
    h = TcpHdr.from_bytes(golden, s, d)
    assert h.to_bytes(b"", s, d) == golden
    assert encode_options(*h.parsed_options()) == h.options


# ----------------------------------------------------------- address helpers


def test_address_helpers():
    assert ip_from_str("192.168.0.199") == 0xC0A800C7
    assert ip_to_str(0xC0A800C7) == "192.168.0.199"
    assert ip_to_str(0) == "0.0.0.0" and ip_to_str(0xFFFFFFFF) == "255.255.255.255"
    assert mac_from_str("00:0c:29:AB:cd:ef") == H("000c29abcdef")
    assert mac_from_str("0:c:29:ab:cd:ef") == H("000c29abcdef")
    assert mac_to_str(H("000c29abcdef")) == "00:0c:29:ab:cd:ef"
    assert is_multicast_mac(BROADCAST_MAC) and is_multicast_mac(H("01005e000016"))
    assert not is_multicast_mac(H("000c29abcdef"))


@pytest.mark.parametrize("text", ["", "1.2.3", "256.1.1.1", "1.2.3.4.5", "a.b.c.d", "::1"])
def test_ip_from_str_rejects(text):
    with pytest.raises(SanityError) as info:
        ip_from_str(text)
    assert info.value.proto == "ipv4"


@pytest.mark.parametrize("text", ["", "00:11:22:33:44", "00:11:22:33:44:55:66", "00:11:22:33:44:zz",
                                  "000:11:22:33:44:55", "00-11-22-33-44-55", "00:11:22:33:44:100"])
def test_mac_from_str_rejects(text):
    with pytest.raises(SanityError) as info:
        mac_from_str(text)
    assert info.value.proto == "mac"


# ------------------------------------------------------------- TCP flag_str

@pytest.mark.parametrize("flags,text", [
    (0x02, "S"), (0x12, "S."), (0x10, "."), (0x18, "P."), (0x11, "F."), (0x04, "R"), (0x14, "R."),
    (0x19, "FP."), (0xC2, "SEW"),  # an ECN-setup SYN
    (0x52, "S.E"),                 # an ECN-setup SYN-ACK
    (0x30, ".U"), (0x00, ""), (0xFF, "FSRP.UEW"),
])
def test_tcp_flag_str_as_tcpdump_prints(flags, text):
    # tcpdump's tcp_flag_values order: F S R P . U E W
    assert TcpHdr(1, 2, flags=flags).flag_str() == text
