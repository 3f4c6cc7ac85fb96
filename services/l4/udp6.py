"""UDP over IPv6 (net/ipv6/udp.c) and ICMPv6 ping sockets (net/ipv6/ping.c, net/ipv4/ping.c's
shared half) on one host, beside IPv4's (services/l4/udp.py), in the same port tables.

Receive: __udp6_lib_rcv checks the header and length (jumbo UDP's len 0 included, link padding
trimmed), verifies a checksum that is there (Udp6InCsumErrors and Udp6InErrors, UDP_CSUM), looks
the socket up (an AF_INET6 one: services/l4/table.py), refuses a zero checksum once it has
(RFC 8200 8.1: Udp6InCsumErrors, Udp6InErrors, UDP_CSUM, or NO_SOCKET and no ICMPv6 when no
socket matched), and hands the datagram to the socket layer; with no socket it counts
Udp6NoPorts and asks L3 for ICMPv6 port unreachable (icmpv6_send). A multicast destination
goes to every socket on the port (__udp6_lib_mcast_deliver: clones), none counting
Udp6IgnoredMulti. Udp6InDatagrams and Udp6RcvbufErrors are the socket layer's, as IPv4's.
ping_rcv takes echo replies for AF_INET6 ping sockets by their identifier.

Errors: __udp6_lib_err and ping_err find the socket the quoted packet came from and report the
errno icmpv6_err_convert gives; a UDP error no socket matches counts Icmp6InErrors.

Send: udpv6_sendmsg hands a v4-mapped destination to udp_sendmsg (an IPV6_V6ONLY socket, or
one bound to an IPv6 address, gets ENETUNREACH, as Linux 6.18 answers), sends to :: as to ::1,
takes the source address from the route (ip6_dst_lookup_flow: L3's Ip6RouteOutput) unless the
socket is bound to one, checksums over the IPv6 pseudo-header and hands the datagram to L3
(ip6_make_skb → ip6_send_skb), counting Udp6OutDatagrams (Udp6SndbufErrors for ENOBUFS).
ping_v6_sendmsg refuses what ping_common_sendmsg and it refuse (under 8 bytes, anything but an
echo request with code 0, a v4-mapped destination, a link-local one without an interface:
EINVAL), stamps the socket's identifier and checksums; L3 counts Icmp6OutMsgs and
Icmp6OutEchos where __ip6_make_skb does.

Pure logic: L3 (route lookup, output, icmpv6_send) and the socket layer are callables.
"""

import errno
import struct
from typing import Callable

from pktpath import skbuff as s
from pktpath.counters import Mib
from pktpath.flow import Flowi4, Flowi6 as SockFlowi6
from pktpath.pb import skbuff_pb2
from pktpath.services.l3.ipv6 import Flowi6
from pktpath.services.l4.table import AF_INET6, PortTable
from pktpath.services.l4.udp import mcast_deliver
from pktpath.sockerr import SockError
from pktpath.wire import ChecksumError, UdpHdr, WireError
from pktpath.wire.addr import (
    IN6ADDR_LOOPBACK, IPV6_ADDR_LINKLOCAL, IPV6_ADDR_LOOPBACK, IPV6_ADDR_MULTICAST, ipv6_addr_is_multicast,
    ipv6_addr_type, ipv6_addr_v4mapped,
)
from pktpath.wire.icmpv6 import (
    ICMPV6_ADDR_UNREACH, ICMPV6_ADM_PROHIBITED, ICMPV6_DEST_UNREACH, ICMPV6_ECHO_REQUEST, ICMPV6_HLEN,
    ICMPV6_NOROUTE, ICMPV6_NOT_NEIGHBOUR, ICMPV6_PARAMPROB, ICMPV6_PKT_TOOBIG, ICMPV6_POLICY_FAIL,
    ICMPV6_PORT_UNREACH, ICMPV6_REJECT_ROUTE, ICMPV6_TIME_EXCEED, Icmp6Hdr,
)
from pktpath.wire.ipv6 import IPPROTO_ICMPV6, IPV6_HLEN, NEXTHDR_ICMP, NEXTHDR_UDP
from pktpath.wire.udp import IPPROTO_UDP, UDP_HLEN

pb = skbuff_pb2
L4 = pb.LAYER_L4
UDP6, ICMP6 = "Udp6", "Icmp6"
_PORTS = struct.Struct("!HH")
_UDPH = struct.Struct("!HHHH")
_V4_MASK = 0xFFFFFFFF

# icmpv6_err_convert()'s tab_unreach (net/ipv6/icmp.c): Destination Unreachable's codes → (errno, fatal)
_TAB_UNREACH = {
    ICMPV6_NOROUTE: (errno.ENETUNREACH, False), ICMPV6_ADM_PROHIBITED: (errno.EACCES, True),
    ICMPV6_NOT_NEIGHBOUR: (errno.EHOSTUNREACH, False), ICMPV6_ADDR_UNREACH: (errno.EHOSTUNREACH, False),
    ICMPV6_PORT_UNREACH: (errno.ECONNREFUSED, True), ICMPV6_POLICY_FAIL: (errno.EACCES, True),
    ICMPV6_REJECT_ROUTE: (errno.EACCES, True),
}


def icmpv6_err_convert(type_: int, code: int) -> tuple[int, bool]:
    """icmpv6_err_convert(): the errno an ICMPv6 error means to a socket and whether it is hard.
    Packet Too Big is EMSGSIZE and soft here; udpv6_err makes it hard unless the socket turned
    path MTU discovery off, which the socket layer decides."""
    if type_ == ICMPV6_DEST_UNREACH:
        return _TAB_UNREACH.get(code, (errno.EPROTO, True))
    if type_ == ICMPV6_PKT_TOOBIG:
        return errno.EMSGSIZE, False
    if type_ == ICMPV6_PARAMPROB:
        return errno.EPROTO, True
    if type_ == ICMPV6_TIME_EXCEED:
        return errno.EHOSTUNREACH, False
    return errno.EPROTO, False


def ipv6_addr_needs_scope_id(addr: int) -> bool:
    """__ipv6_addr_needs_scope_id(): a link-local address, or an interface- or link-local group."""
    t = ipv6_addr_type(addr)
    return bool(t & IPV6_ADDR_LINKLOCAL or t & IPV6_ADDR_MULTICAST and t & (IPV6_ADDR_LOOPBACK | IPV6_ADDR_LINKLOCAL))


def ip6_addrs(skb) -> tuple[int, int]:
    """(saddr, daddr) from the IPv6 header the skb arrived with (ipv6_hdr(skb))."""
    nh = skb.network_header
    buf = skb.buf
    return int.from_bytes(buf[nh + 8:nh + 24], "big"), int.from_bytes(buf[nh + 24:nh + 40], "big")


def is_ipv6(skb) -> bool:
    """skb->protocol == htons(ETH_P_IPV6), read from the header the skb arrived with."""
    return skb.network_header + IPV6_HLEN <= skb.tail and skb.buf[skb.network_header] >> 4 == 6


class Datagram6:
    """UDP and ping over IPv6, sharing the port tables of IPv4's Datagram (services/l4/udp.py)."""

    def __init__(self, host: str, dgram, *, mib: Mib, to_sock: Callable[[list], object],
                 sk_err: Callable[[list], object], icmp6_send: Callable, route_output6: Callable,
                 ip6_send: Callable, devs=()) -> None:
        """dgram: IPv4's Datagram (its tables, its udp_send4 for v4-mapped destinations).
        icmp6_send(skb, type, code) asks L3 for an ICMPv6 error; route_output6(Flowi6) -> (errno,
        saddr) is ip6_dst_lookup_flow; ip6_send(skb, Flowi6, pmtudisc) -> errno hands a datagram
        to L3. devs: the host's interfaces in order, interface index 1 first (sin6_scope_id)."""
        self.host = host
        self.mib = mib
        self.dgram = dgram
        self.udp: PortTable = dgram.udp
        self.ping: PortTable = dgram.ping
        self.devs = list(devs)
        self._to_sock = to_sock
        self._sk_err = sk_err
        self._icmp6_send = icmp6_send
        self._route_output6 = route_output6
        self._ip6_send = ip6_send

    def drop(self, skb, reason: int, func: str) -> None:
        s.kfree_skb_reason(skb, reason, L4, self.host, func)
        self.mib.drop(reason)

    def dev_of(self, scope_id: int) -> str:
        """The device of an interface index (0: none); an index of no device is EINVAL... as the
        kernel's dev_get_by_index failing in ip6_datagram_connect or a route lookup (ENODEV)."""
        if not scope_id:
            return ""
        if not 0 < scope_id <= len(self.devs):
            raise SockError(errno.ENODEV, f"no interface with index {scope_id}")
        return self.devs[scope_id - 1]

    # -- receive -------------------------------------------------------------------------
    def udpv6_rcv(self, skbs: list) -> tuple[int, int]:
        """udpv6_rcv() for one batch (data at the UDP header). Returns (accepted, dropped)."""
        up, dropped = [], 0
        for skb in skbs:
            skb.record(s.ENTER, L4, self.host, "udpv6_rcv")
            if self._udpv6_rcv_one(skb, up):
                dropped += 1
        dropped += self.dgram._deliver(up)
        return len(skbs) - dropped, dropped

    def _csum_error(self, skb, reason: int) -> int:
        """__udp6_lib_rcv's csum_error: Udp6InCsumErrors, then discard: Udp6InErrors."""
        self.mib.inc(UDP6, "InCsumErrors")
        self.mib.inc(UDP6, "InErrors")
        self.drop(skb, reason, "__udp6_lib_rcv")
        return reason

    def _udpv6_rcv_one(self, skb, up: list) -> int:
        saddr, daddr = ip6_addrs(skb)
        data = skb.payload()
        zero = False
        try:
            uh = UdpHdr.from_bytes(data, saddr, daddr, ipv6=True)
        except ChecksumError:
            if data[6] | data[7]:
                return self._csum_error(skb, pb.SKB_DROP_REASON_UDP_CSUM)
            zero = True  # refused only once the socket is known, as the kernel does
            source, dest, ulen, _ = _UDPH.unpack_from(data)
            uh = UdpHdr(source, dest, ulen or len(data), 0)
        except WireError:  # short header, bad length, port 0
            self.mib.inc(UDP6, "InErrors")
            self.drop(skb, pb.SKB_DROP_REASON_PKT_TOO_SMALL, "__udp6_lib_rcv")
            return pb.SKB_DROP_REASON_PKT_TOO_SMALL
        s.skb_trim(skb, uh.len)
        s.skb_pull(skb, UDP_HLEN)
        if ipv6_addr_is_multicast(daddr):
            return self._mcast_deliver6(skb, saddr, daddr, uh, up, zero)
        entry = self.udp.lookup(saddr, uh.source, daddr, uh.dest, AF_INET6)
        if zero:  # report_csum_error: no port unreachable either way
            return self._csum_error(skb, pb.SKB_DROP_REASON_UDP_CSUM if entry else pb.SKB_DROP_REASON_NO_SOCKET)
        if entry is None:
            self.mib.inc(UDP6, "NoPorts")
            self._icmp6_send(skb, ICMPV6_DEST_UNREACH, ICMPV6_PORT_UNREACH)
            self.drop(skb, pb.SKB_DROP_REASON_NO_SOCKET, "__udp6_lib_rcv")
            return pb.SKB_DROP_REASON_NO_SOCKET
        skb.sk = entry.sk
        skb.record(s.EXIT, L4, self.host, "udpv6_queue_rcv_skb")
        up.append(skb)
        return 0

    def _mcast_deliver6(self, skb, saddr: int, daddr: int, uh: UdpHdr, up: list, zero: bool) -> int:
        """__udp6_lib_mcast_deliver(): a clone for each socket on the port but the last; a zero
        checksum skips every socket (none sets UDP_NO_CHECK6_RX). None: Udp6IgnoredMulti, and the
        skb freed by kfree_skb (NOT_SPECIFIED)."""
        entries = [] if zero else self.udp.lookup_all(saddr, uh.source, daddr, uh.dest, AF_INET6)
        if not entries:
            self.mib.inc(UDP6, "IgnoredMulti")
            self.drop(skb, pb.SKB_DROP_REASON_NOT_SPECIFIED, "__udp6_lib_mcast_deliver")
            return pb.SKB_DROP_REASON_NOT_SPECIFIED
        mcast_deliver(skb, entries, up, self.host, "__udp6_lib_mcast_deliver")
        return 0

    def ping_rcv6(self, skbs: list) -> tuple[int, int]:
        """ping_rcv() for echo replies over IPv6 (data at the ICMPv6 header): the AF_INET6 ping
        socket of the reply's identifier."""
        up, dropped = [], 0
        for skb in skbs:
            skb.record(s.ENTER, L4, self.host, "ping_rcv")
            saddr, daddr = ip6_addrs(skb)
            ident = _PORTS.unpack_from(skb.buf, skb.data + 4)[0] if skb.len >= ICMPV6_HLEN else 0
            entry = self.ping.lookup(saddr, 0, daddr, ident, AF_INET6)
            if entry is None:
                self.drop(skb, pb.SKB_DROP_REASON_NO_SOCKET, "ping_rcv")
                dropped += 1
                continue
            skb.sk = entry.sk
            skb.record(s.EXIT, L4, self.host, "ping_queue_rcv_skb")
            up.append(skb)
        dropped += self.dgram._deliver(up)
        return len(skbs) - dropped, dropped

    # -- ICMPv6 errors ---------------------------------------------------------------------
    def icmpv6_err(self, items: list) -> tuple[int, int]:
        """udpv6_err / ping_err: items are (skb at the ICMPv6 header, type, code, info, the quoted
        packet's upper protocol, the offset of its header from the quoted IPv6 header). Returns
        (reported to a socket, not matched)."""
        errs, unmatched = [], 0
        for skb, type_, code, info, nexthdr, offset in items:
            entry = self._err_lookup(skb, nexthdr, offset)
            if entry is None:
                if nexthdr == NEXTHDR_UDP:
                    self.mib.inc(ICMP6, "InErrors")  # __udp6_lib_err: no socket for the error
                unmatched += 1
            else:
                err, fatal = icmpv6_err_convert(type_, code)
                offender, _ = ip6_addrs(skb)
                errs.append((entry.sk, err, fatal, offender, type_, code, info, AF_INET6))
            s.consume_skb(skb, L4, self.host, "icmpv6_notify")
        if errs:
            self._sk_err(errs)
        return len(errs), unmatched

    def _err_lookup(self, skb, nexthdr: int, offset: int):
        inner = skb.payload()[ICMPV6_HLEN:]
        if len(inner) < IPV6_HLEN or offset + 8 > len(inner):
            return None
        ours = int.from_bytes(inner[8:24], "big")
        peer = int.from_bytes(inner[24:40], "big")
        if nexthdr == NEXTHDR_UDP:
            sport, dport = _PORTS.unpack_from(inner, offset)
            return self.udp.lookup(peer, dport, ours, sport, AF_INET6)
        if nexthdr == NEXTHDR_ICMP and inner[offset] == ICMPV6_ECHO_REQUEST:
            ident = _PORTS.unpack_from(inner, offset + 4)[0]
            return self.ping.lookup(peer, 0, ours, ident, AF_INET6)
        return None

    # -- send --------------------------------------------------------------------------------
    def _sending(self, skb, table: PortTable):
        """The flow the socket layer put in skb->cb and the sending socket's entry."""
        flow = SockFlowi6.unpack(skb.cb)  # ValueError: not a flow
        entry = table.get(skb.sk)
        if entry is None:
            raise SockError(errno.EINVAL, "the socket is not bound")
        return flow, entry

    def _oif(self, flow: SockFlowi6, entry) -> str:
        return self.dev_of(flow.scope_id) if flow.scope_id and ipv6_addr_needs_scope_id(flow.daddr) else entry.dev

    def _source6(self, entry, daddr: int, oif: str, proto: int) -> int:
        """The socket's bound address, else the route's choice (ip6_sk_dst_lookup_flow)."""
        bound = entry.v6_side()
        if bound:
            return bound
        err, saddr = self._route_output6(Flowi6(daddr, 0, proto, oif=oif))
        if err:
            raise SockError(err, "no route to the destination")
        return saddr

    def udpv6_sendmsg(self, skb) -> int:
        """udpv6_sendmsg(): skb holds the user's data, skb->cb the destination (pktpath.flow's
        Flowi6). Returns 0 or the errno sendmsg fails with."""
        skb.record(s.ENTER, L4, self.host, "udpv6_sendmsg")
        try:
            flow, entry = self._sending(skb, self.udp)
            daddr = flow.daddr
            if ipv6_addr_v4mapped(daddr):
                return self._udp_send_mapped(skb, flow, entry)
            if not daddr:
                daddr = IN6ADDR_LOOPBACK  # sendto(::) is to the loopback address
            if entry.v6_side() is None:  # bound to a v4-mapped address, as Linux 6.18 answers
                raise SockError(errno.EAFNOSUPPORT, "a socket on an IPv4 address sends no IPv6")
            oif = self._oif(flow, entry)
            saddr = self._source6(entry, daddr, oif, IPPROTO_UDP)
            header = UdpHdr(entry.sport, flow.dport).to_bytes(skb.payload(), saddr, daddr, ipv6=True)
        except (ValueError, WireError):
            return self.dgram._send_failed(skb, errno.EINVAL)
        except SockError as exc:
            return self.dgram._send_failed(skb, exc.errno)
        s.skb_push_data(skb, header)
        s.skb_reset_transport_header(skb)
        skb.cb = b""
        skb.record(s.EXIT, L4, self.host, "udp_v6_send_skb")
        err = self._ip6_send(skb, Flowi6(daddr, saddr, IPPROTO_UDP, oif=oif, hop_limit=max(flow.hop_limit, 0),
                                         tclass=flow.tclass, flowlabel=flow.flowlabel), flow.pmtudisc)
        if not err:
            self.mib.inc(UDP6, "OutDatagrams")
        elif err == errno.ENOBUFS:
            self.mib.inc(UDP6, "SndbufErrors")
        return err

    def _udp_send_mapped(self, skb, flow: SockFlowi6, entry) -> int:
        """udpv6_sendmsg → udp_sendmsg for ::ffff:a.b.c.d: an IPV6_V6ONLY socket, or one bound to
        an IPv6 address, has no IPv4 to send from (ENETUNREACH)."""
        source = entry.v4_side()
        if source is None:
            raise SockError(errno.ENETUNREACH, "an IPv6-only socket sends no IPv4")
        daddr = flow.daddr & _V4_MASK
        if not source:
            err, source = self.dgram._route_output(daddr)
            if err:
                raise SockError(err, "no route to the destination")
        return self.dgram.udp_send4(skb, Flowi4(daddr, dport=flow.dport, ttl=flow.ttl, pmtudisc=flow.pmtudisc4),
                                    entry.sport, source)

    def ping_v6_sendmsg(self, skb) -> int:
        """ping_v6_sendmsg(): the user's ICMPv6 echo header and data."""
        skb.record(s.ENTER, L4, self.host, "ping_v6_sendmsg")
        try:
            flow, entry = self._sending(skb, self.ping)
            data = skb.payload()
            if len(data) < ICMPV6_HLEN:
                raise SockError(errno.EINVAL, "shorter than an ICMPv6 header")
            if data[0] != ICMPV6_ECHO_REQUEST or data[1] != 0:
                raise SockError(errno.EINVAL, "a ping socket sends ICMPv6 echo requests (type 128, code 0) only")
            daddr = flow.daddr or IN6ADDR_LOOPBACK
            oif = self._oif(flow, entry)
            if ipv6_addr_v4mapped(daddr) or ipv6_addr_needs_scope_id(daddr) and not oif:
                raise SockError(errno.EINVAL, "a v4-mapped destination, or a link-local one without an interface")
            sequence = _PORTS.unpack_from(data, 6)[0]
            body = bytes(data[ICMPV6_HLEN:])
            saddr = self._source6(entry, daddr, oif, IPPROTO_ICMPV6)
        except ValueError:
            return self.dgram._send_failed(skb, errno.EINVAL)
        except SockError as exc:
            return self.dgram._send_failed(skb, exc.errno)
        header = Icmp6Hdr.echo(entry.sport, sequence).to_bytes(saddr, daddr, body)
        skb.writable()[skb.data:skb.data + ICMPV6_HLEN] = header
        s.skb_reset_transport_header(skb)
        skb.cb = b""
        skb.record(s.EXIT, L4, self.host, "icmpv6_push_pending_frames")
        return self._ip6_send(skb, Flowi6(daddr, saddr, IPPROTO_ICMPV6, oif=oif, hop_limit=max(flow.hop_limit, 0),
                                          tclass=flow.tclass, flowlabel=flow.flowlabel,
                                          icmp_type=ICMPV6_ECHO_REQUEST), flow.pmtudisc)
