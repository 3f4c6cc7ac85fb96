"""scapy as an independent oracle, in both directions, on randomized headers.

(a) scapy builds the bytes; pktpath parses them (checksums verified) to the
    field values scapy was given.
(b) pktpath builds the bytes; scapy parses them to the field values pktpath
    was given, and scapy agrees the checksums are right: the header is re-made
    from scapy's dissection with the checksum field deleted (so scapy computes
    it) and must come out byte for byte the same; for TCP/UDP scapy's own
    pseudo-header checksum (in4_chksum) is compared as well.

When scapy must see only a header, it is given just that slice (plus a Raw
payload), so that its port- or protocol-based payload dissectors (DNS on 53,
HTTP on 80, ...) can neither fail nor re-encode the payload differently.
"""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import (
    ICMP, IP, TCP, UDP, IPerror, IPOption, TCPerror, UDPerror, ICMPerror, in4_chksum,
)
from scapy.layers.l2 import ARP, Dot1Q, Ether
from scapy.packet import Raw
from scapy.utils import checksum as scapy_checksum

from pktpath.wire.arp import ArpHdr
from pktpath.wire.ethernet import EthHdr
from pktpath.wire.icmp import (
    ICMP_DEST_UNREACH, ICMP_ECHO, ICMP_ECHOREPLY, ICMP_FRAG_NEEDED, ICMP_TIME_EXCEEDED, IcmpHdr, quote, quoted,
)
from pktpath.wire.ipv4 import IP_OFFSET, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, IpHdr
from pktpath.wire.tcp import (
    TcpHdr, TcpOptEol, TcpOptMss, TcpOptNop, TcpOptSack, TcpOptSackPerm, TcpOptTimestamp, TcpOptUnknown,
    TcpOptWindow, encode_options, parse_options,
)
from pktpath.wire.udp import UdpHdr
from wirekit import ip_str, mac_str

ORACLE = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PER_KIND = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
macs = st.binary(min_size=6, max_size=6)
addrs = u32
ports = st.integers(1, 0xFFFF)  # port 0 is a SanityError for TCP (both) and UDP (dest)
ethertypes = st.integers(0x0600, 0xFFFF).filter(lambda t: t != 0x8100)
payloads = st.binary(max_size=80)
# Fragment fields: the three flag bits (reserved, DF, MF) and the 13-bit offset.
frag_flags = st.integers(0, 7)
frag_offsets = st.one_of(st.just(0), st.integers(0, IP_OFFSET))


def pad4(raw: bytes) -> bytes:
    return raw + bytes(-len(raw) % 4)


@st.composite
def ip_option_chunks(draw):
    """A list of well-formed raw IPv4 options (NOP, Router Alert, Record Route), at most 40 bytes."""
    kinds = draw(st.lists(st.sampled_from(["nop", "ra", "rr"]), max_size=5))
    chunks, size = [], 0
    for kind in kinds:
        if kind == "nop":
            chunk = b"\x01"
        elif kind == "ra":
            chunk = b"\x94\x04" + draw(u16).to_bytes(2, "big")
        else:
            routers = draw(st.lists(u32, max_size=4))
            filled = draw(st.integers(0, len(routers)))
            chunk = bytes((7, 3 + 4 * len(routers), 4 + 4 * filled)) + b"".join(r.to_bytes(4, "big") for r in routers)
        if size + len(chunk) <= 40:
            chunks.append(chunk)
            size += len(chunk)
    return chunks


def scapy_options(chunks):
    return [IPOption(c) for c in chunks]


def rebuilt_without(pkt, layer, field="chksum") -> bytes:
    """scapy re-makes `pkt` with `layer`'s checksum deleted, so it computes it itself."""
    pkt = pkt.copy()
    delattr(pkt[layer], field)
    return bytes(pkt)


# ------------------------------------------------------------------ Ethernet


@ORACLE
@given(dst=macs, src=macs, etype=ethertypes, payload=payloads)
def test_ethernet_scapy_to_pktpath(dst, src, etype, payload):
    raw = bytes(Ether(dst=mac_str(dst), src=mac_str(src), type=etype) / Raw(payload))
    h = EthHdr.from_bytes(raw)
    assert (h.h_dest, h.h_source, h.h_proto, h.vlan_tci) == (dst, src, etype, None)
    assert raw[h.header_len:] == payload


@ORACLE
@given(dst=macs, src=macs, etype=ethertypes)
def test_ethernet_pktpath_to_scapy(dst, src, etype):
    raw = EthHdr(dst, src, etype).to_bytes()
    s = Ether(raw)
    assert (s.dst, s.src, s.type) == (mac_str(dst), mac_str(src), etype)
    assert len(s) == 14


@ORACLE
@given(dst=macs, src=macs, prio=st.integers(0, 7), dei=st.integers(0, 1), vid=st.integers(0, 4095),
       inner=st.integers(0x0600, 0xFFFF), payload=payloads)
def test_vlan_scapy_to_pktpath(dst, src, prio, dei, vid, inner, payload):
    raw = bytes(Ether(dst=mac_str(dst), src=mac_str(src)) / Dot1Q(prio=prio, dei=dei, vlan=vid, type=inner)
                / Raw(payload))
    assert raw[12:14] == b"\x81\x00"  # scapy put the TPID in
    h = EthHdr.from_bytes(raw)
    assert (h.h_dest, h.h_source, h.h_proto) == (dst, src, inner)
    assert h.vlan_tci == prio << 13 | dei << 12 | vid
    assert h.vlan_id == vid
    assert h.header_len == 18
    assert raw[18:] == payload


@ORACLE
@given(dst=macs, src=macs, tci=u16, inner=st.integers(0x0600, 0xFFFF))
def test_vlan_pktpath_to_scapy(dst, src, tci, inner):
    raw = EthHdr(dst, src, inner, vlan_tci=tci).to_bytes()
    s = Ether(raw)
    assert (s.dst, s.src, s.type) == (mac_str(dst), mac_str(src), 0x8100)
    q = s[Dot1Q]
    assert (q.prio, q.dei, q.vlan, q.type) == (tci >> 13, tci >> 12 & 1, tci & 0x0FFF, inner)
    assert bytes(s)[:18] == raw


# ----------------------------------------------------------------------- ARP


@ORACLE
@given(op=st.sampled_from([1, 2]), sha=macs, sip=addrs, tha=macs, tip=addrs, padding=st.binary(max_size=18))
def test_arp_scapy_to_pktpath(op, sha, sip, tha, tip, padding):
    raw = bytes(ARP(op=op, hwsrc=mac_str(sha), psrc=ip_str(sip), hwdst=mac_str(tha), pdst=ip_str(tip)))
    assert len(raw) == 28
    h = ArpHdr.from_bytes(raw + padding)
    assert (h.ar_op, h.ar_sha, h.ar_sip, h.ar_tha, h.ar_tip) == (op, sha, sip, tha, tip)
    assert (h.ar_hrd, h.ar_pro, h.ar_hln, h.ar_pln) == (1, 0x0800, 6, 4)


@ORACLE
@given(op=st.sampled_from([1, 2]), sha=macs, sip=addrs, tha=macs, tip=addrs)
def test_arp_pktpath_to_scapy(op, sha, sip, tha, tip):
    raw = ArpHdr(op, sha, sip, tha, tip).to_bytes()
    s = ARP(raw)
    assert (s.hwtype, s.ptype, s.hwlen, s.plen, s.op) == (1, 0x0800, 6, 4, op)
    assert (s.hwsrc, s.psrc, s.hwdst, s.pdst) == (mac_str(sha), ip_str(sip), mac_str(tha), ip_str(tip))
    assert bytes(s) == raw


# ---------------------------------------------------------------------- IPv4

ip_fields = dict(src=addrs, dst=addrs, tos=u8, ip_id=u16, flags=frag_flags, frag=frag_offsets, ttl=u8, proto=u8,
                 chunks=ip_option_chunks(), payload=payloads)


@ORACLE
@given(**ip_fields)
def test_ipv4_scapy_to_pktpath(src, dst, tos, ip_id, flags, frag, ttl, proto, chunks, payload):
    pkt = IP(src=ip_str(src), dst=ip_str(dst), tos=tos, id=ip_id, flags=flags, frag=frag, ttl=ttl, proto=proto,
             options=scapy_options(chunks)) / Raw(payload)
    raw = bytes(pkt)
    options = pad4(b"".join(chunks))
    for h in (IpHdr.from_bytes(raw), IpHdr.from_bytes(raw[:20 + len(options)], quoted=True)):
        assert (h.saddr, h.daddr, h.protocol, h.ttl, h.tos, h.id) == (src, dst, proto, ttl, tos, ip_id)
        assert h.frag_off == flags << 13 | frag
        assert h.df == bool(flags & 2) and h.mf == bool(flags & 1)
        assert h.frag_offset == frag * 8
        assert h.is_fragment == bool(flags & 1 or frag)
        assert h.tot_len == 20 + len(options) + len(payload)
        assert h.options == options
        assert h.ihl == 5 + len(options) // 4
        assert h.check == IP(raw).chksum
    assert IpHdr.from_bytes(raw).to_bytes() == raw[:20 + len(options)]


@ORACLE
@given(**ip_fields)
def test_ipv4_pktpath_to_scapy(src, dst, tos, ip_id, flags, frag, ttl, proto, chunks, payload):
    h = IpHdr(src, dst, proto, ttl=ttl, tos=tos, id=ip_id, frag_off=flags << 13 | frag, options=b"".join(chunks))
    header = h.to_bytes(len(payload))
    hlen = len(header)
    assert hlen == h.header_len == 20 + len(pad4(b"".join(chunks)))
    s = IP(header + payload)
    assert (s.version, s.ihl, s.tos, s.len, s.id) == (4, hlen // 4, tos, hlen + len(payload), ip_id)
    assert (int(s.flags), s.frag, s.ttl, s.proto) == (flags, frag, ttl, proto)
    assert bool(s.flags.DF) == bool(flags & 2) and bool(s.flags.MF) == bool(flags & 1)
    assert (s.src, s.dst) == (ip_str(src), ip_str(dst))
    assert b"".join(bytes(o) for o in s.options) == header[20:]
    # scapy computes the header checksum itself and gets the same header
    assert rebuilt_without(IP(header), IP) == header
    assert scapy_checksum(header[:10] + b"\0\0" + header[12:]) == int.from_bytes(header[10:12], "big")


# ---------------------------------------------------------------------- ICMP


@ORACLE
@given(reply=st.booleans(), code=u8, echo_id=u16, seq=u16, payload=payloads)
def test_icmp_echo_scapy_to_pktpath(reply, code, echo_id, seq, payload):
    type_ = ICMP_ECHOREPLY if reply else ICMP_ECHO
    raw = bytes(ICMP(type=type_, code=code, id=echo_id, seq=seq) / Raw(payload))
    h = IcmpHdr.from_bytes(raw)  # checksum verified
    assert (h.type, h.code, h.echo_id, h.echo_sequence) == (type_, code, echo_id, seq)
    assert h.checksum == ICMP(raw).chksum
    assert not h.is_error
    assert h.to_bytes(payload) == raw[:8]


@ORACLE
@given(reply=st.booleans(), code=u8, echo_id=u16, seq=u16, payload=payloads)
def test_icmp_echo_pktpath_to_scapy(reply, code, echo_id, seq, payload):
    h = IcmpHdr.echo(echo_id, seq, reply=reply)._replace(code=code)
    raw = h.to_bytes(payload) + payload
    s = ICMP(raw)
    assert (s.type, s.code, s.id, s.seq) == (0 if reply else 8, code, echo_id, seq)
    assert bytes(s.payload) == payload
    assert rebuilt_without(ICMP(raw[:8]) / Raw(raw[8:]), ICMP) == raw
    assert scapy_checksum(raw[:2] + b"\0\0" + raw[4:]) == s.chksum


@st.composite
def scapy_originals(draw):
    """An offending datagram an ICMP error might quote, built by scapy."""
    kind = draw(st.sampled_from(["udp", "tcp", "icmp"]))
    ip = IP(src=ip_str(draw(addrs)), dst=ip_str(draw(addrs)), id=draw(u16), ttl=draw(u8), tos=draw(u8),
            flags=draw(frag_flags), frag=draw(frag_offsets), options=scapy_options(draw(ip_option_chunks())))
    if kind == "udp":
        l4 = UDP(sport=draw(ports), dport=draw(ports))
    elif kind == "tcp":
        l4 = TCP(sport=draw(ports), dport=draw(ports), seq=draw(u32), ack=draw(u32), flags=draw(u8))
    else:
        l4 = ICMP(type=8, id=draw(u16), seq=draw(u16))
    size = draw(st.one_of(st.integers(0, 40), st.integers(500, 700)))  # some exceed the 576-byte limit
    return ip / l4 / Raw((bytes(range(1, 256)) * 3)[:size])


def check_quoted(raw: bytes, orig: bytes, oracle_ip):
    """pktpath's view of the quoted header matches scapy's dissection of the original."""
    iph, rest = quoted(raw)
    assert (iph.saddr, iph.daddr) == (int.from_bytes(orig[12:16], "big"), int.from_bytes(orig[16:20], "big"))
    assert (ip_str(iph.saddr), ip_str(iph.daddr)) == (oracle_ip.src, oracle_ip.dst)
    assert (iph.protocol, iph.id, iph.ttl, iph.tos) == (oracle_ip.proto, oracle_ip.id, oracle_ip.ttl, oracle_ip.tos)
    assert iph.frag_off == int(oracle_ip.flags) << 13 | oracle_ip.frag
    assert (iph.tot_len, iph.check, iph.header_len) == (oracle_ip.len, oracle_ip.chksum, oracle_ip.ihl * 4)
    assert rest == orig[iph.header_len:548]
    assert len(raw) == 8 + min(len(orig), 548)


@ORACLE
@given(code=st.integers(0, 15), mtu=u16, orig=scapy_originals())
def test_icmp_dest_unreach_scapy_to_pktpath(code, mtu, orig):
    orig_raw = bytes(orig)
    mtu = mtu if code == ICMP_FRAG_NEEDED else 0
    raw = bytes(ICMP(type=3, code=code, nexthopmtu=mtu) / Raw(orig_raw[:548]))
    h = IcmpHdr.from_bytes(raw)
    assert (h.type, h.code, h.un, h.mtu) == (ICMP_DEST_UNREACH, code, mtu, mtu)
    assert h.is_error
    assert h.checksum == ICMP(raw).chksum
    check_quoted(raw, orig_raw, IP(orig_raw))


@ORACLE
@given(code=st.integers(0, 1), orig=scapy_originals())
def test_icmp_time_exceeded_scapy_to_pktpath(code, orig):
    orig_raw = bytes(orig)
    raw = bytes(ICMP(type=11, code=code) / Raw(orig_raw[:548]))
    h = IcmpHdr.from_bytes(raw)
    assert (h.type, h.code, h.un) == (ICMP_TIME_EXCEEDED, code, 0)
    assert h.is_error
    assert h.checksum == ICMP(raw).chksum
    check_quoted(raw, orig_raw, IP(orig_raw))


@st.composite
def pktpath_originals(draw):
    """(bytes, protocol, sport-or-id, dport-or-seq) of an offending datagram, built by pktpath."""
    proto = draw(st.sampled_from([IPPROTO_UDP, IPPROTO_TCP, IPPROTO_ICMP]))
    saddr, daddr = draw(addrs), draw(addrs)
    size = draw(st.one_of(st.integers(0, 40), st.integers(500, 700)))
    payload = (bytes(range(1, 256)) * 3)[:size]
    a, b = draw(ports), draw(ports)
    if proto == IPPROTO_UDP:
        l4 = UdpHdr(a, b).to_bytes(payload, saddr, daddr)
    elif proto == IPPROTO_TCP:
        l4 = TcpHdr(a, b, draw(u32), draw(u32), flags=draw(u8), window=draw(u16)).to_bytes(payload, saddr, daddr)
    else:
        l4 = IcmpHdr.echo(a, b).to_bytes(payload)
    iph = IpHdr(saddr, daddr, proto, ttl=draw(u8), tos=draw(u8), id=draw(u16),
                frag_off=draw(frag_flags) << 13 | draw(frag_offsets), options=b"".join(draw(ip_option_chunks())))
    return iph.to_bytes(len(l4) + len(payload)) + l4 + payload, iph, a, b


def check_scapy_sees_quote(raw: bytes, orig: bytes, iph: IpHdr, a: int, b: int):
    s = ICMP(raw)
    inner = s[IPerror]
    assert (inner.src, inner.dst, inner.proto) == (ip_str(iph.saddr), ip_str(iph.daddr), iph.protocol)
    assert (inner.id, inner.ttl, inner.tos, inner.len) == (iph.id, iph.ttl, iph.tos, len(orig))
    assert int(inner.flags) << 13 | inner.frag == iph.frag_off
    assert inner.ihl * 4 == iph.header_len
    assert bytes(inner)[:iph.header_len] == orig[:iph.header_len]
    if iph.frag_off & IP_OFFSET:
        return  # a non-first fragment: scapy rightly does not dissect a transport header
    if iph.protocol == IPPROTO_UDP:
        assert (s[UDPerror].sport, s[UDPerror].dport) == (a, b)
    elif iph.protocol == IPPROTO_TCP:
        assert (s[TCPerror].sport, s[TCPerror].dport) == (a, b)
    else:
        assert (s[ICMPerror].type, s[ICMPerror].id, s[ICMPerror].seq) == (ICMP_ECHO, a, b)
    # scapy computes the ICMP checksum over the whole message itself
    assert rebuilt_without(ICMP(raw[:8]) / Raw(raw[8:]), ICMP) == raw
    assert scapy_checksum(raw[:2] + b"\0\0" + raw[4:]) == s.chksum


@ORACLE
@given(code=st.integers(0, 15), mtu=u16, original=pktpath_originals())
def test_icmp_dest_unreach_pktpath_to_scapy(code, mtu, original):
    orig, iph, a, b = original
    body = quote(orig)
    raw = IcmpHdr.dest_unreach(code, mtu).to_bytes(body) + body
    assert len(raw) == 8 + min(len(orig), 548)
    s = ICMP(raw)
    assert (s.type, s.code, s.reserved, s.length) == (3, code, 0, 0)
    assert s.nexthopmtu == (mtu if code == ICMP_FRAG_NEEDED else 0)
    check_scapy_sees_quote(raw, orig, iph, a, b)


@ORACLE
@given(code=st.integers(0, 1), original=pktpath_originals())
def test_icmp_time_exceeded_pktpath_to_scapy(code, original):
    orig, iph, a, b = original
    body = quote(orig)
    raw = IcmpHdr.time_exceeded(code).to_bytes(body) + body
    s = ICMP(raw)
    assert (s.type, s.code, s.reserved, s.length, s.unused) == (11, code, 0, 0, 0)
    check_scapy_sees_quote(raw, orig, iph, a, b)


# ----------------------------------------------------------------------- UDP


@ORACLE
@given(src=addrs, dst=addrs, sport=u16, dport=ports, payload=payloads, no_check=st.booleans())
def test_udp_scapy_to_pktpath(src, dst, sport, dport, payload, no_check):
    pkt = IP(src=ip_str(src), dst=ip_str(dst)) / UDP(sport=sport, dport=dport, chksum=0 if no_check else None) \
        / Raw(payload)
    seg = bytes(pkt)[20:]
    h = UdpHdr.from_bytes(seg, src, dst)  # checksum verified unless 0
    assert (h.source, h.dest, h.len) == (sport, dport, 8 + len(payload))
    assert h.check == (0 if no_check else UDP(seg[:8]).chksum)
    assert h.check != 0 or no_check  # scapy, like pktpath, never sends a computed 0
    assert UdpHdr.from_bytes(seg) == h
    if not no_check:
        assert h.to_bytes(payload, src, dst) == seg[:8]


def check_udp_by_scapy(raw: bytes, src: int, dst: int, sport: int, dport: int, payload: bytes):
    s = UDP(raw[20:28])
    assert (s.sport, s.dport, s.len) == (sport, dport, 8 + len(payload))
    check = s.chksum
    assert check == (in4_chksum(17, IP(raw[:20]), raw[20:26] + b"\0\0" + raw[28:]) or 0xFFFF)
    assert rebuilt_without(IP(raw[:20]) / UDP(raw[20:28]) / Raw(raw[28:]), UDP) == raw


@ORACLE
@given(src=addrs, dst=addrs, sport=u16, dport=ports, payload=payloads)
def test_udp_pktpath_to_scapy(src, dst, sport, dport, payload):
    udp = UdpHdr(sport, dport).to_bytes(payload, src, dst)
    raw = IpHdr(src, dst, IPPROTO_UDP).to_bytes(8 + len(payload)) + udp + payload
    check_udp_by_scapy(raw, src, dst, sport, dport, payload)


@ORACLE
@given(src=addrs, dst=addrs, sport=u16, dport=ports, payload=payloads)
def test_udp_checksum_zero_is_sent_as_ffff(src, dst, sport, dport, payload):
    """Steer the last payload word so the checksum computes to 0: both must send 0xFFFF."""
    payload = payload[: len(payload) & ~1] + b"\0\0"
    first = UdpHdr(sport, dport).to_bytes(payload, src, dst)
    fix = int.from_bytes(first[6:8], "big")  # adding ~sum makes the sum all ones
    payload = payload[:-2] + fix.to_bytes(2, "big")
    udp = UdpHdr(sport, dport).to_bytes(payload, src, dst)
    assert udp[6:8] == b"\xff\xff"
    raw = IpHdr(src, dst, IPPROTO_UDP).to_bytes(8 + len(payload)) + udp + payload
    check_udp_by_scapy(raw, src, dst, sport, dport, payload)
    assert bytes(IP(src=ip_str(src), dst=ip_str(dst)) / UDP(sport=sport, dport=dport) / Raw(payload))[20:28] == udp
    assert UdpHdr.from_bytes(udp + payload, src, dst).check == 0xFFFF


# ----------------------------------------------------------------------- TCP

UNKNOWN_KINDS = [6, 7, 9, 10, 11, 12, 13, 16, 17, 18, 20, 21, 22, 23, 24, 26, 27, 30, 69, 76, 253, 254]

OPTION_STRATEGIES = {
    "EOL": st.just(TcpOptEol()),
    "NOP": st.just(TcpOptNop()),
    "MSS": u16.map(TcpOptMss),
    "WScale": u8.map(TcpOptWindow),
    "SAckOK": st.just(TcpOptSackPerm()),
    **{f"SAck{n}": st.lists(st.tuples(u32, u32), min_size=n, max_size=n).map(lambda b: TcpOptSack(tuple(b)))
       for n in (1, 2, 3, 4)},
    "Timestamp": st.tuples(u32, u32).map(lambda t: TcpOptTimestamp(*t)),
    "Unknown": st.tuples(st.sampled_from(UNKNOWN_KINDS), st.binary(max_size=12)).map(lambda t: TcpOptUnknown(*t)),
}


def to_scapy_option(opt):
    t = type(opt)
    if t is TcpOptEol:
        return ("EOL", None)
    if t is TcpOptNop:
        return ("NOP", None)
    if t is TcpOptMss:
        return ("MSS", opt.mss)
    if t is TcpOptWindow:
        return ("WScale", opt.snd_wscale)
    if t is TcpOptSackPerm:
        return ("SAckOK", b"")
    if t is TcpOptSack:
        return ("SAck", tuple(v for block in opt.blocks for v in block))
    if t is TcpOptTimestamp:
        return ("Timestamp", (opt.tsval, opt.tsecr))
    if t is TcpOptUnknown:
        return (opt.kind, opt.data)
    raise AssertionError(opt)


def from_scapy_option(name, value):
    simple = {"EOL": TcpOptEol(), "NOP": TcpOptNop(), "SAckOK": TcpOptSackPerm()}
    if name in simple:
        return simple[name]
    if name == "MSS":
        return TcpOptMss(value)
    if name == "WScale":
        return TcpOptWindow(value)
    if name == "SAck":
        return TcpOptSack(tuple(zip(value[::2], value[1::2])))
    if name == "Timestamp":
        return TcpOptTimestamp(*value)
    if isinstance(name, int):
        return TcpOptUnknown(name, value)
    raise AssertionError((name, value))


@st.composite
def tcp_option_lists(draw):
    """Options of every kind in any order, EOL (if any) last, at most 40 bytes."""
    opts, size = [], 0
    for opt in draw(st.lists(st.one_of(*(s for k, s in OPTION_STRATEGIES.items() if k != "EOL")), max_size=8)):
        n = len(opt.to_bytes())
        if size + n <= 40:
            opts.append(opt)
            size += n
    if size < 40 and draw(st.booleans()):
        opts.append(TcpOptEol())
    return opts


def expected_parse(opts) -> tuple:
    """What a parser must return: the options, then an EOL for any zero padding."""
    size = sum(len(o.to_bytes()) for o in opts)
    if size % 4 and (not opts or type(opts[-1]) is not TcpOptEol):
        return (*opts, TcpOptEol())
    return tuple(opts)


tcp_fields = dict(src=addrs, dst=addrs, sport=ports, dport=ports, seq=u32, ack=u32, res=st.integers(0, 15),
                  flags=u8, window=u16, urg=u16, payload=payloads)


def scapy_tcp_to_pktpath(src, dst, sport, dport, seq, ack, res, flags, window, urg, payload, opts):
    pkt = IP(src=ip_str(src), dst=ip_str(dst)) / TCP(
        sport=sport, dport=dport, seq=seq, ack=ack, reserved=res >> 1, flags=(res & 1) << 8 | flags,
        window=window, urgptr=urg, options=[to_scapy_option(o) for o in opts]) / Raw(payload)
    seg = bytes(pkt)[20:]
    h = TcpHdr.from_bytes(seg, src, dst)  # checksum verified
    assert (h.source, h.dest, h.seq, h.ack_seq) == (sport, dport, seq, ack)
    assert (h.flags, h.doff_res & 0x0F, h.window, h.urg_ptr) == (flags, res, window, urg)
    raw_opts = encode_options(*opts)
    assert h.options == raw_opts
    assert h.doff == 5 + len(raw_opts) // 4 == TCP(seg).dataofs
    assert h.check == TCP(seg[:h.header_len]).chksum
    assert h.parsed_options() == expected_parse(opts)
    assert parse_options(h.options, strict=False) == expected_parse(opts)
    assert seg[h.header_len:] == payload
    assert TcpHdr.from_bytes(seg) == h
    assert h.to_bytes(payload, src, dst) == seg[:h.header_len]


def pktpath_tcp_to_scapy(src, dst, sport, dport, seq, ack, res, flags, window, urg, payload, opts):
    hdr = TcpHdr(sport, dport, seq, ack, doff_res=res, flags=flags, window=window, urg_ptr=urg,
                 options=encode_options(*opts))
    tcp = hdr.to_bytes(payload, src, dst)
    hlen = len(tcp)
    raw = IpHdr(src, dst, IPPROTO_TCP).to_bytes(hlen + len(payload)) + tcp + payload
    s = TCP(tcp)
    assert (s.sport, s.dport, s.seq, s.ack) == (sport, dport, seq, ack)
    assert (s.dataofs, s.reserved, int(s.flags)) == (hlen // 4, res >> 1, (res & 1) << 8 | flags)
    assert (s.window, s.urgptr) == (window, urg)
    assert tuple(from_scapy_option(*o) for o in s.options) == expected_parse(opts)
    assert s.chksum == in4_chksum(6, IP(raw[:20]), tcp[:16] + b"\0\0" + tcp[18:] + payload)
    assert rebuilt_without(IP(raw[:20]) / TCP(tcp) / Raw(payload), TCP) == raw


@ORACLE
@given(**tcp_fields, opts=tcp_option_lists())
def test_tcp_scapy_to_pktpath(src, dst, sport, dport, seq, ack, res, flags, window, urg, payload, opts):
    scapy_tcp_to_pktpath(src, dst, sport, dport, seq, ack, res, flags, window, urg, payload, opts)


@ORACLE
@given(**tcp_fields, opts=tcp_option_lists())
def test_tcp_pktpath_to_scapy(src, dst, sport, dport, seq, ack, res, flags, window, urg, payload, opts):
    pktpath_tcp_to_scapy(src, dst, sport, dport, seq, ack, res, flags, window, urg, payload, opts)


@pytest.mark.parametrize("kind", list(OPTION_STRATEGIES))
@PER_KIND
@given(data=st.data(), src=addrs, dst=addrs, sport=ports, dport=ports, payload=payloads)
def test_tcp_each_option_kind_both_ways(kind, data, src, dst, sport, dport, payload):
    opt = data.draw(OPTION_STRATEGIES[kind])
    # the kind alone, and after a NOP (so EOL is not only ever first)
    opts = data.draw(st.sampled_from([[opt], [TcpOptNop(), opt]]))
    fields = dict(src=src, dst=dst, sport=sport, dport=dport, seq=1, ack=2, res=0, flags=0x12, window=1024, urg=0,
                  payload=payload, opts=opts)
    scapy_tcp_to_pktpath(**fields)
    pktpath_tcp_to_scapy(**fields)
    # scapy's own reading of the option bytes agrees with pktpath's
    raw_opts = encode_options(*opts)
    scapy_view = TCP(bytes([0, 1, 0, 2]) + bytes(8) + bytes([(5 + len(raw_opts) // 4) << 4, 2]) + bytes(6) + raw_opts)
    assert tuple(from_scapy_option(*o) for o in scapy_view.options) == parse_options(raw_opts)
