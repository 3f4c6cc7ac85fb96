"""UDP (net/ipv4/udp.c) and ping sockets (net/ipv4/ping.c) on one host.

Receive: __udp4_lib_rcv checks the header and length (trimming link or IP
padding), verifies the checksum (InCsumErrors), looks the socket up (a
connected socket first, then a bound one; broadcasts go to every socket on the
port) and hands the datagram to the socket layer; with no socket it counts
NoPorts and answers ICMP port unreachable. ping_rcv does the same for echo
replies, keyed by the echo identifier. The receive-buffer check, RcvbufErrors
and InDatagrams happen where the kernel's do, in the socket layer
(__udp_enqueue_schedule_skb, udp_recvmsg).

Errors: __udp4_lib_err and ping_err find the socket an ICMP error quotes and
report the errno icmp_err_convert gives it.

Send: udp_sendmsg builds the UDP header, checksummed over the pseudo-header
(so it needs the source address first: ip_route_output_flow for an unbound
socket), then ip_make_skb/udp_send_skb hand it to IPv4; ping_v4_sendmsg checks
the user's echo header, stamps the socket's identifier and checksums it.

Pure logic: IPv4 (route lookup and output), the socket layer and icmp_send
are callables.
"""

import errno
import struct
from typing import Callable

from pktpath import skbuff as s
from pktpath.counters import Mib
from pktpath.flow import Flowi4
from pktpath.pb import skbuff_pb2
from pktpath.services.l3.icmp import icmp_err_convert
from pktpath.services.l4.table import PortTable
from pktpath.sockerr import SockError
from pktpath.wire import ChecksumError, IcmpHdr, UdpHdr, WireError
from pktpath.wire.icmp import ICMP_DEST_UNREACH, ICMP_ECHO, ICMP_HLEN, ICMP_PORT_UNREACH, quoted
from pktpath.wire.ipv4 import IPPROTO_ICMP, IPPROTO_UDP
from pktpath.wire.ipv6 import IPPROTO_ICMPV6
from pktpath.wire.udp import UDP_HLEN

pb = skbuff_pb2
L4 = pb.LAYER_L4
UDP, ICMP = "Udp", "Icmp"
_ADDRS = struct.Struct("!II")
_PORTS = struct.Struct("!HH")
UDP_MAX_PAYLOAD = 0xFFFF - 20 - UDP_HLEN  # 65507: the largest datagram ip_append_data builds


def ip_addrs(skb) -> tuple[int, int]:
    """(saddr, daddr) from the IPv4 header the skb arrived with (ip_hdr(skb))."""
    return _ADDRS.unpack_from(skb.buf, skb.network_header + 12)


class Datagram:
    """UDP and ping, sharing the socket layer and IPv4 below."""

    def __init__(self, host: str, local_addrs, *, mib: Mib, to_sock: Callable[[list], object],
                 sk_err: Callable[[list], object], icmp_send: Callable, route_output: Callable,
                 ip_queue_xmit: Callable) -> None:
        self.host = host
        self.mib = mib
        self.udp = PortTable(IPPROTO_UDP, local_addrs)
        # one ping table for both families (ping_table), each socket seeing only its own family's
        self.ping = PortTable(IPPROTO_ICMP, local_addrs, port_range=(1, 65535), strict_family=True)
        self._to_sock = to_sock
        self._sk_err = sk_err
        self._icmp_send = icmp_send          # (skb, type, code) -> None
        self._route_output = route_output    # daddr -> (errno, saddr)
        self._ip_queue_xmit = ip_queue_xmit  # [skb] -> errno (0: sent)

    def table(self, protocol: int) -> PortTable:
        if protocol == IPPROTO_UDP:
            return self.udp
        if protocol in (IPPROTO_ICMP, IPPROTO_ICMPV6):
            return self.ping
        raise SockError(errno.EPROTONOSUPPORT, f"protocol {protocol}")

    def drop(self, skb, reason: int, func: str) -> None:
        s.kfree_skb_reason(skb, reason, L4, self.host, func)
        self.mib.drop(reason)

    def _deliver(self, skbs: list) -> int:
        """Hand skbs (sk set) to the socket layer; returns how many were dropped."""
        if not skbs or self._to_sock(skbs):
            return 0
        for skb in skbs:
            self.drop(skb, pb.SKB_DROP_REASON_CPU_BACKLOG, "sock_queue_rcv_skb")
        return len(skbs)

    # -- receive ------------------------------------------------------------
    def udp_rcv(self, skbs: list) -> tuple[int, int]:
        """udp_rcv() for one batch (data at the UDP header). Returns (accepted, dropped)."""
        up, dropped = [], 0
        for skb in skbs:
            skb.record(s.ENTER, L4, self.host, "udp_rcv")
            reason = self._udp_rcv_one(skb, up)
            if reason:
                dropped += 1
        dropped += self._deliver(up)
        return len(skbs) - dropped, dropped

    def _udp_rcv_one(self, skb, up: list) -> int:
        saddr, daddr = ip_addrs(skb)
        try:
            uh = UdpHdr.from_bytes(skb.payload(), saddr, daddr)
        except ChecksumError:
            self.mib.inc(UDP, "InCsumErrors")
            self.mib.inc(UDP, "InErrors")
            self.drop(skb, pb.SKB_DROP_REASON_UDP_CSUM, "__udp4_lib_rcv")
            return pb.SKB_DROP_REASON_UDP_CSUM
        except WireError:  # short header, bad length, port 0
            self.mib.inc(UDP, "InErrors")
            self.drop(skb, pb.SKB_DROP_REASON_PKT_TOO_SMALL, "__udp4_lib_rcv")
            return pb.SKB_DROP_REASON_PKT_TOO_SMALL
        s.skb_trim(skb, uh.len)
        s.skb_pull(skb, UDP_HLEN)  # udp_csum_pull_header(): the socket sees the payload
        if daddr not in self.udp.local_addrs:
            # the route's RTCF_BROADCAST | RTCF_MULTICAST, as __udp4_lib_rcv decides: L3 delivered it here
            # yet it is not to one of our addresses. A link-layer broadcast to our own address is unicast.
            return self._mcast_deliver(skb, saddr, daddr, uh, up)
        entry = self.udp.lookup(saddr, uh.source, daddr, uh.dest)
        if entry is None:
            self.mib.inc(UDP, "NoPorts")
            self._icmp_send(skb, ICMP_DEST_UNREACH, ICMP_PORT_UNREACH)
            self.drop(skb, pb.SKB_DROP_REASON_NO_SOCKET, "__udp4_lib_rcv")
            return pb.SKB_DROP_REASON_NO_SOCKET
        skb.sk = entry.sk
        skb.record(s.EXIT, L4, self.host, "udp_queue_rcv_skb")
        up.append(skb)
        return 0

    def _mcast_deliver(self, skb, saddr: int, daddr: int, uh: UdpHdr, up: list) -> int:
        """__udp4_lib_mcast_deliver(): a clone for each socket on the port but the last."""
        entries = self.udp.lookup_all(saddr, uh.source, daddr, uh.dest)
        if not entries:
            # no NoPorts and no ICMP about a broadcast; Linux 6.18 frees it without a reason (consume
            # is not called: kfree_skb, NOT_SPECIFIED, as measured with the skb:kfree_skb tracepoint)
            self.mib.inc(UDP, "IgnoredMulti")
            self.drop(skb, pb.SKB_DROP_REASON_NOT_SPECIFIED, "__udp4_lib_mcast_deliver")
            return pb.SKB_DROP_REASON_NOT_SPECIFIED
        mcast_deliver(skb, entries, up, self.host, "__udp4_lib_mcast_deliver")
        return 0

    def ping_rcv(self, skbs: list) -> tuple[int, int]:
        """ping_rcv(): echo replies (data at the ICMP header) for ping sockets."""
        up, dropped = [], 0
        for skb in skbs:
            skb.record(s.ENTER, L4, self.host, "ping_rcv")
            saddr, daddr = ip_addrs(skb)
            ident = _PORTS.unpack_from(skb.buf, skb.data + 4)[0] if skb.len >= ICMP_HLEN else 0
            entry = self.ping.lookup(saddr, 0, daddr, ident)
            if entry is None:
                self.drop(skb, pb.SKB_DROP_REASON_NO_SOCKET, "ping_rcv")
                dropped += 1
                continue
            skb.sk = entry.sk
            skb.record(s.EXIT, L4, self.host, "ping_queue_rcv_skb")
            up.append(skb)
        dropped += self._deliver(up)
        return len(skbs) - dropped, dropped

    # -- ICMP errors ---------------------------------------------------------
    def icmp_err(self, items: list) -> tuple[int, int]:
        """__udp4_lib_err / ping_err: items are (skb at the ICMP header, type, code, info).
        Returns (reported to a socket, not matched)."""
        errs, unmatched = [], 0
        for skb, type_, code, info in items:
            entry = self._err_lookup(skb)
            if entry is None:
                self.mib.inc(ICMP, "InErrors")  # no socket sent what the error quotes
                unmatched += 1
            else:
                err, fatal = icmp_err_convert(type_, code)
                offender, _ = ip_addrs(skb)
                errs.append((entry.sk, err, fatal, offender, type_, code, info))
            s.consume_skb(skb, L4, self.host, "icmp_err")
        if errs:
            self._sk_err(errs)
        return len(errs), unmatched

    def _err_lookup(self, skb):
        try:
            inner, rest = quoted(skb.payload())
        except WireError:
            return None
        if len(rest) < 8:
            return None
        if inner.protocol == IPPROTO_UDP:
            sport, dport = _PORTS.unpack_from(rest)
            # The quoted datagram went from us (inner.saddr:sport) to the peer.
            return self.udp.lookup(inner.daddr, dport, inner.saddr, sport)
        if inner.protocol == IPPROTO_ICMP and rest[0] == ICMP_ECHO:
            ident = _PORTS.unpack_from(rest, 4)[0]
            return self.ping.lookup(inner.daddr, 0, inner.saddr, ident)
        return None

    # -- send -----------------------------------------------------------------
    def _source(self, entry, daddr: int) -> int:
        if entry.saddr:
            return entry.saddr
        err, saddr = self._route_output(daddr)
        if err:
            raise SockError(err, "no route to the destination")
        return saddr

    @staticmethod
    def _sending(skb, table: PortTable):
        """The flow the socket layer put in skb->cb and the sending socket's entry."""
        flow = Flowi4.unpack(skb.cb)  # ValueError: not a flow
        entry = table.get(skb.sk)
        if entry is None:
            raise SockError(errno.EINVAL, "the socket is not bound")
        return flow, entry

    def udp_sendmsg(self, skb) -> int:
        """udp_sendmsg(): skb holds the user's data, skb->cb the destination and the
        socket's options. Returns 0 or the errno sendmsg fails with."""
        skb.record(s.ENTER, L4, self.host, "udp_sendmsg")
        try:
            flow, entry = self._sending(skb, self.udp)
            saddr = self._source(entry, flow.daddr)
        except ValueError:
            return self._send_failed(skb, errno.EINVAL)
        except SockError as exc:
            return self._send_failed(skb, exc.errno)
        return self.udp_send4(skb, flow, entry.sport, saddr)

    def udp_send4(self, skb, flow: Flowi4, sport: int, saddr: int) -> int:
        """udp_sendmsg() from the source address on: the header, then IPv4. udpv6_sendmsg comes
        here for an IPv4 destination of an AF_INET6 socket."""
        try:
            header = UdpHdr(sport, flow.dport).to_bytes(skb.payload(), saddr, flow.daddr)
        except WireError:
            return self._send_failed(skb, errno.EINVAL)
        s.skb_push_data(skb, header)
        s.skb_reset_transport_header(skb)
        skb.cb = flow._replace(saddr=saddr, sport=sport, protocol=IPPROTO_UDP).pack()
        skb.record(s.EXIT, L4, self.host, "udp_send_skb")
        err = self._ip_queue_xmit([skb])
        if not err:
            self.mib.inc(UDP, "OutDatagrams")
        elif err == errno.ENOBUFS:
            self.mib.inc(UDP, "SndbufErrors")
        return err

    def ping_sendmsg(self, skb) -> int:
        """ping_v4_sendmsg(): the user's ICMP echo header and data."""
        skb.record(s.ENTER, L4, self.host, "ping_v4_sendmsg")
        try:
            flow, entry = self._sending(skb, self.ping)
            data = skb.payload()
            if len(data) < ICMP_HLEN:
                raise SockError(errno.EINVAL, "shorter than an ICMP header")
            if data[0] != ICMP_ECHO or data[1] != 0:
                raise SockError(errno.EINVAL, "a ping socket sends ICMP echo requests (type 8, code 0) only")
            sequence = _PORTS.unpack_from(data, 6)[0]
            body = bytes(data[ICMP_HLEN:])
        except ValueError:
            return self._send_failed(skb, errno.EINVAL)
        except SockError as exc:
            return self._send_failed(skb, exc.errno)
        header = IcmpHdr.echo(entry.sport, sequence).to_bytes(body)
        skb.writable()[skb.data:skb.data + ICMP_HLEN] = header
        s.skb_reset_transport_header(skb)
        skb.cb = flow._replace(saddr=entry.saddr, protocol=IPPROTO_ICMP).pack()
        skb.record(s.EXIT, L4, self.host, "ping_v4_push_pending_frames")
        err = self._ip_queue_xmit([skb])
        if not err:
            self.mib.inc(ICMP, "OutMsgs")  # icmp_out_count(), as ping_v4_sendmsg calls it
            self.mib.inc("IcmpMsg", f"OutType{ICMP_ECHO}")
            self.mib.inc(ICMP, "OutEchos")
        return err

    def _send_failed(self, skb, err: int) -> int:
        # The kernel fails these before an skb exists; pktpath's skb carried the
        # user's bytes here, so it is freed, not dropped: the caller gets the errno.
        s.consume_skb(skb, L4, self.host, "sendmsg")
        return err


def mcast_deliver(skb, entries: list, up: list, host: str, func: str) -> None:
    """__udp{4,6}_lib_mcast_deliver's hand-out: a clone for each socket but the last, which takes skb."""
    for entry in entries[:-1]:
        clone = s.skb_clone(skb, L4, host, func)
        clone.sk = entry.sk
        up.append(clone)
    skb.sk = entries[-1].sk
    up.append(skb)
