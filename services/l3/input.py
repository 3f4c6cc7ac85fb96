"""IPv4 receive validation: ip_rcv_core() (net/ipv4/ip_input.c) with its counters and drop
reasons, and the options as net/ipv4/ip_options.c reads and answers them.

The checks run in the kernel's order (IpHdr.from_bytes keeps it): version and
IHL, the header present, the header checksum, then tot_len against what
arrived. The kernel's bookkeeping follows: every packet counts InReceives; a
bad checksum counts IpExt InCsumErrors and InHdrErrors and drops with IP_CSUM; a
packet shorter than its tot_len counts InTruncatedPkts and drops with
PKT_TOO_SMALL; any other header error counts InHdrErrors and drops with
IP_INHDR. A good packet loses its link padding (pskb_trim_rcsum) and gets its
transport header offset.

Options (RFC 791) are compiled once the packet is routed (ip_rcv_options →
ip_options_compile): a malformed one is answered with ICMP parameter problem
pointing at the offending byte; record route and timestamp options get our
address and the time written into the received header, as Linux does. A reply
echoes them (ip_options_echo) and fills in its own entries (ip_options_build).
"""

import time
from dataclasses import dataclass
from typing import Callable

from pktpath import skbuff as s
from pktpath.counters import Mib
from pktpath.pb import skbuff_pb2
from pktpath.wire import ChecksumError, IpHdr, TruncatedError, WireError
from pktpath.wire.checksum import ip_compute_csum
from pktpath.wire.ipv4 import (
    IPOPT_CIPSO, IPOPT_END, IPOPT_LSRR, IPOPT_NOOP, IPOPT_RA, IPOPT_RR, IPOPT_SSRR, IPOPT_TIMESTAMP,
    IPOPT_TS_PRESPEC, IPOPT_TS_TSANDADDR, IPOPT_TS_TSONLY, IPV4_MIN_HLEN,
)

pb = skbuff_pb2
IP = "Ip"
IPEXT = "IpExt"  # /proc/net/netstat's IpExt line


def ip_rcv_core(skb: s.SkBuff, mib: Mib) -> IpHdr | int:
    """Validate the IPv4 header at skb.data. Returns the header, or the drop reason."""
    mib.inc(IP, "InReceives")
    if skb.pkt_type == pb.PACKET_OTHERHOST:
        return pb.SKB_DROP_REASON_OTHERHOST
    try:
        iph = IpHdr.from_bytes(skb.payload())
    except ChecksumError:
        mib.inc(IPEXT, "InCsumErrors")
        mib.inc(IP, "InHdrErrors")
        return pb.SKB_DROP_REASON_IP_CSUM
    except TruncatedError as exc:
        if exc.field == "tot_len":
            mib.inc(IPEXT, "InTruncatedPkts")
            return pb.SKB_DROP_REASON_PKT_TOO_SMALL
        mib.inc(IP, "InHdrErrors")
        return pb.SKB_DROP_REASON_IP_INHDR
    except WireError:
        mib.inc(IP, "InHdrErrors")
        return pb.SKB_DROP_REASON_IP_INHDR
    s.skb_reset_network_header(skb)
    s.skb_trim(skb, iph.tot_len)
    skb.transport_header = skb.network_header + iph.header_len
    return iph


# -- options (net/ipv4/ip_options.c) ------------------------------------------------

@dataclass
class IpOptions:
    """struct ip_options: where ip_options_compile found each option (offsets from the
    start of the IP header, 0: absent) and what a reply or the next hop must fill in."""

    optlen: int = 0
    srr: int = 0
    rr: int = 0
    ts: int = 0
    router_alert: int = 0
    cipso: int = 0
    is_strictroute: bool = False
    rr_needaddr: bool = False
    ts_needtime: bool = False
    ts_needaddr: bool = False
    is_changed: bool = False


def inet_current_timestamp(wallclock: Callable[[], float] = time.time) -> int:
    """inet_current_timestamp(): milliseconds since midnight UTC, as RFC 791 timestamps
    and ICMP timestamp replies carry them."""
    now = wallclock()
    return int(now % 86400 * 1000) & 0xFFFFFFFF


def ip_options_compile(buf: bytearray, nh: int, ihl: int, *, spec_dst: Callable[[], int],
                       unicast: Callable[[int], bool], now_ms: Callable[[], int]) -> tuple[IpOptions | None, int]:
    """__ip_options_compile() for a received packet, whose IPv4 header is buf[nh:nh + ihl].

    Returns (options, 0), or (None, pointer) for a malformed option: pointer is the
    offset from the header's start of the byte at fault, what ICMP parameter problem
    carries. As in the kernel the header is changed in place on the way (is_changed):
    record route gets spec_dst() (fib_compute_spec_dst: the address the packet came
    to, or ours towards its sender) and the pointer moves on; timestamp gets the time
    (now_ms) and, for flag 1, spec_dst(), or counts an overflow when full; a
    prespecified timestamp (flag 3) is filled only for an address that is not someone
    else's unicast (unicast(addr): inet_addr_type() == RTN_UNICAST); bytes after END
    become END. Timestamp flags the kernel does not know, security (130), stream id
    (136) and unknown options are accepted on receive. CIPSO is refused as Linux with
    no NetLabel DOI configured refuses it (cipso_v4_validate): at its length when
    shorter than 8, else at its DOI.
    """
    opt = IpOptions(optlen=ihl - IPV4_MIN_HLEN)
    spec = 0
    i, left = nh + IPV4_MIN_HLEN, opt.optlen
    while left > 0:
        kind = buf[i]
        if kind == IPOPT_END:
            for j in range(i + 1, i + left):
                if buf[j] != IPOPT_END:
                    buf[j] = IPOPT_END
                    opt.is_changed = True
            return opt, 0
        if kind == IPOPT_NOOP:
            i, left = i + 1, left - 1
            continue
        if left < 2:
            return None, i - nh
        optlen = buf[i + 1]
        if optlen < 2 or optlen > left:
            return None, i - nh
        if kind in (IPOPT_SSRR, IPOPT_LSRR):
            if optlen < 3:
                return None, i + 1 - nh
            if buf[i + 2] < 4:
                return None, i + 2 - nh
            if opt.srr:  # RFC 1812 5.2.4.1: one source route only
                return None, i - nh
            opt.is_strictroute = kind == IPOPT_SSRR
            opt.srr = i - nh
        elif kind == IPOPT_RR:
            if opt.rr:
                return None, i - nh
            if optlen < 3:
                return None, i + 1 - nh
            ptr = buf[i + 2]
            if ptr < 4:
                return None, i + 2 - nh
            if ptr <= optlen:
                if ptr + 3 > optlen:
                    return None, i + 2 - nh
                spec = spec or spec_dst()
                buf[i + ptr - 1:i + ptr + 3] = spec.to_bytes(4, "big")
                buf[i + 2] = ptr + 4
                opt.rr_needaddr = opt.is_changed = True
            opt.rr = i - nh
        elif kind == IPOPT_TIMESTAMP:
            if opt.ts:
                return None, i - nh
            if optlen < 4:
                return None, i + 1 - nh
            ptr = buf[i + 2]
            if ptr < 5:
                return None, i + 2 - nh
            flag = buf[i + 3] & 0x0F
            if ptr <= optlen:
                if ptr + 3 > optlen:
                    return None, i + 2 - nh
                timeptr = 0
                if flag == IPOPT_TS_TSONLY:
                    timeptr = i + ptr - 1
                    opt.ts_needtime = True
                    buf[i + 2] = ptr + 4
                elif flag in (IPOPT_TS_TSANDADDR, IPOPT_TS_PRESPEC):
                    if ptr + 7 > optlen:
                        return None, i + 2 - nh
                    if flag == IPOPT_TS_TSANDADDR:
                        spec = spec or spec_dst()
                        buf[i + ptr - 1:i + ptr + 3] = spec.to_bytes(4, "big")
                        opt.ts_needaddr = True
                    elif unicast(int.from_bytes(buf[i + ptr - 1:i + ptr + 3], "big")):
                        flag = -1  # someone else's entry: left for them
                    if flag != -1:
                        timeptr = i + ptr + 3
                        opt.ts_needtime = True
                        buf[i + 2] = ptr + 8
                if timeptr:
                    buf[timeptr:timeptr + 4] = now_ms().to_bytes(4, "big")
                    opt.is_changed = True
            elif flag != IPOPT_TS_PRESPEC:  # full: count the hop that could not write
                overflow = buf[i + 3] >> 4
                if overflow == 15:
                    return None, i + 3 - nh
                buf[i + 3] = flag | (overflow + 1) << 4
                opt.is_changed = True
            opt.ts = i - nh
        elif kind == IPOPT_RA:
            if optlen < 4:
                return None, i + 1 - nh
            if buf[i + 2] == 0 and buf[i + 3] == 0:
                opt.router_alert = i - nh
        elif kind == IPOPT_CIPSO:
            if opt.cipso:
                return None, i - nh
            opt.cipso = i - nh
            return None, i + (1 if optlen < 8 else 2) - nh
        i, left = i + optlen, left - optlen
    return opt, 0


def ip_send_check(buf: bytearray, nh: int, ihl: int) -> None:
    """ip_send_check(): the header checksum recomputed over the header as it now is."""
    buf[nh + 10:nh + 12] = b"\0\0"
    buf[nh + 10:nh + 12] = ip_compute_csum(bytes(buf[nh:nh + ihl])).to_bytes(2, "big")


def ip_options_echo(header, sopt: IpOptions, *, unicast: Callable[[int], bool]) -> tuple[IpOptions, bytes] | None:
    """__ip_options_echo(): the options a reply to the packet whose header (as
    ip_options_compile left it) is `header` carries: its record route and timestamp
    options copied, with room taken for our own entries, which ip_options_build fills.
    None: no room where the request claimed some (-EINVAL), and no reply is sent.
    Source routes are not reversed here: without accept_source_route such packets are
    dropped before anything answers them (ip_rcv_options), and CIPSO never compiles."""
    dopt, out = IpOptions(), bytearray()
    if sopt.rr:
        optlen, soffset = header[sopt.rr + 1], header[sopt.rr + 2]
        dopt.rr = IPV4_MIN_HLEN + len(out)
        rr = bytearray(header[sopt.rr:sopt.rr + optlen])
        if sopt.rr_needaddr and soffset <= optlen:
            if soffset + 3 > optlen:
                return None
            rr[2] = soffset + 4
            dopt.rr_needaddr = True
        out += rr
    if sopt.ts:
        optlen, soffset = header[sopt.ts + 1], header[sopt.ts + 2]
        dopt.ts = IPV4_MIN_HLEN + len(out)
        ts = bytearray(header[sopt.ts:sopt.ts + optlen])
        if soffset <= optlen:
            if sopt.ts_needaddr:
                if soffset + 3 > optlen:
                    return None
                dopt.ts_needaddr = True
                soffset += 4
            if sopt.ts_needtime:
                if soffset + 3 > optlen:
                    return None
                if ts[3] & 0x0F != IPOPT_TS_PRESPEC:
                    dopt.ts_needtime = True
                    soffset += 4
                elif soffset + 7 <= optlen and not unicast(int.from_bytes(ts[soffset - 1:soffset + 3], "big")):
                    dopt.ts_needtime = True
                    soffset += 8
            ts[2] = soffset
        out += ts
    out += bytes(-len(out) % 4)  # IPOPT_END up to a whole word
    dopt.optlen = len(out)
    return dopt, bytes(out)


def ip_options_build(options: bytearray, opt: IpOptions, saddr: int, now_ms: int) -> None:
    """ip_options_build(): our own entries written into the options of a packet we
    originate from saddr (ip_rt_get_source of an output route: the packet's source):
    the record route slot and timestamp entry ip_options_echo made room for."""
    def put(at: int, value: int) -> None:
        at -= IPV4_MIN_HLEN  # opt's offsets count from the header's start
        options[at:at + 4] = value.to_bytes(4, "big")

    if opt.rr_needaddr:
        put(opt.rr + options[opt.rr - IPV4_MIN_HLEN + 2] - 5, saddr)
    if opt.ts_needaddr:
        put(opt.ts + options[opt.ts - IPV4_MIN_HLEN + 2] - 9, saddr)
    if opt.ts_needtime:
        put(opt.ts + options[opt.ts - IPV4_MIN_HLEN + 2] - 5, now_ms)
