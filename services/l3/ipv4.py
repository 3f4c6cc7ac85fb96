"""The IPv4 layer of one host: receive, local delivery, forwarding, output, ICMP.

Receive models ip_list_rcv → ip_rcv_core (input.py) → NF_INET_PRE_ROUTING →
ip_rcv_finish → ip_route_input_noref (net/ipv4/ip_input.c, route.c), then
either ip_local_deliver (ip_defrag, NF_INET_LOCAL_IN, ip_local_deliver_finish →
the protocol's handler: icmp_rcv here, UDP and TCP in L4) or ip_forward
(net/ipv4/ip_forward.c: TTL, path MTU, NF_INET_FORWARD, ip_decrease_ttl).

Output models ip_queue_xmit / ip_make_skb → __ip_local_out (NF_INET_LOCAL_OUT)
→ ip_output (NF_INET_POST_ROUTING) → ip_finish_output (ip_fragment when the
packet exceeds the path MTU) → the neighbour layer (L2). Packets for one of
our own addresses loop back into the receive path, as the kernel's lo does.

ICMP models net/ipv4/icmp.c: icmp_rcv (echo and timestamp → icmp_reply; echo
replies to ping sockets; errors → icmp_unreach, which learns a path MTU and
hands the error to the protocol's err_handler in L4) and icmp_send for errors.
IGMP models igmp_rcv (net/ipv4/igmp.c) for a host that joined no group.

Options are compiled after routing (ip_rcv_options, services/l3/input.py);
replies to echo and timestamp requests echo them, a forwarded packet's record
route gets the outgoing address (ip_forward_options).

Pure logic: the next layers are callables (`to_l2(skbs)`, `to_l4(kind, items)`
with kind "udp", "tcp", "ping" or "err").
"""

import errno
import random
import threading
import time
from collections import OrderedDict
from typing import Callable

from pktpath import skbuff as s
from pktpath.counters import Mib
from pktpath.flow import IP_PMTUDISC_DO, IP_PMTUDISC_DONT, IP_PMTUDISC_PROBE, IP_PMTUDISC_WANT, Flowi4
from pktpath.offload import skb_gso_segment
from pktpath.pb import skbuff_pb2
from pktpath.services.l3.handoff import PollHandOff
from pktpath.services.l3 import netfilter as nf
from pktpath.services.l3.fragment import IpDefrag, ip_fragment
from pktpath.services.l3.icmp import TYPE_NAMES, IcmpRateLimit
from pktpath.services.l3.input import (
    IpOptions, inet_current_timestamp, ip_options_build, ip_options_compile, ip_options_echo, ip_rcv_core,
    ip_send_check,
)
from pktpath.services.l3.route import RTN_BROADCAST, RTN_LOCAL, Fib, FibResult
from pktpath.wire import IcmpHdr, IpHdr, SanityError, WireError
from pktpath.wire.checksum import verifies
from pktpath.wire.icmp import (
    ICMP_ADDRESS, ICMP_ADDRESSREPLY, ICMP_DEST_UNREACH, ICMP_ECHO, ICMP_ECHOREPLY, ICMP_EXC_FRAGTIME, ICMP_EXC_TTL,
    ICMP_EXT_ECHO, ICMP_EXT_ECHOREPLY, ICMP_FRAG_NEEDED, ICMP_HLEN, ICMP_NET_UNREACH, ICMP_PARAMETERPROB,
    ICMP_PROT_UNREACH, ICMP_TIME_EXCEEDED, ICMP_TIMESTAMP, ICMP_TIMESTAMPREPLY, quote, quoted,
)
from pktpath.wire.ipv4 import (
    IP_DF, IP_MAX_PACKET, IPDEFTTL, IPPROTO_ICMP, IPPROTO_IGMP, IPPROTO_TCP, IPPROTO_UDP, IPV4_MIN_HLEN,
)

pb = skbuff_pb2
L3 = pb.LAYER_L3
IP, IPEXT, ICMP = "Ip", "IpExt", "Icmp"
IPTOS_PREC_INTERNETCONTROL = 0xC0
IPTOS_TOS_MASK = 0x1E
IP_RT_MIN_PMTU = 552      # net.ipv4.route.min_pmtu
IP_RT_MTU_EXPIRES = 600.0  # net.ipv4.route.mtu_expires: a learned path MTU is forgotten after 10 minutes
LOOPBACK_MTU = 65536
_L4_HANDLERS = {IPPROTO_UDP: "udp", IPPROTO_TCP: "tcp"}  # ip_protocol_deliver_rcu's inet_protos (ICMP is ours)
ACCEPT_SOURCE_ROUTE = False  # net.ipv4.conf.all.accept_source_route = 0, and the kernel ANDs it with the device's
# IGMP message types (include/uapi/linux/igmp.h)
IGMP_HOST_MEMBERSHIP_QUERY = 0x11
IGMP_HOST_MEMBERSHIP_REPORT = 0x12
IGMPV2_HOST_MEMBERSHIP_REPORT = 0x16
INET_IDS_MAX = 65536  # connected sockets whose IP id counter L3 keeps (the kernel keeps it in the socket)

# What sendmsg returns when the output path refuses a packet.
SEND_ERRNO = {
    pb.SKB_DROP_REASON_IP_OUTNOROUTES: errno.ENETUNREACH,
    pb.SKB_DROP_REASON_NETFILTER_DROP: errno.EPERM,
    pb.SKB_DROP_REASON_PKT_TOO_BIG: errno.EMSGSIZE,
    pb.SKB_DROP_REASON_NOT_SPECIFIED: errno.EINVAL,
}


def _martian(saddr: int, daddr: int) -> tuple[int, str]:
    """ip_route_input_slow()'s checks of "the most weird martians", in its order, with the
    reasons Linux 6.18 gives: (reason, "src" or "dst"), or (0, "") for none. A multicast
    or limited-broadcast source is invalid; 0.0.0.0 is a valid source only towards the
    limited broadcast (DHCP), and since Linux 5.3 only 0.0.0.0 itself is the zero net
    (0.0.0.0/8 is allowed); a loopback source or destination from the wire is
    IP_LOCALNET (net.ipv4.conf.*.route_localnet = 0)."""
    if saddr >> 28 == 0xE or saddr == 0xFFFFFFFF:
        return pb.SKB_DROP_REASON_IP_INVALID_SOURCE, "src"
    if daddr == 0xFFFFFFFF or saddr == daddr == 0:  # brd_input
        return 0, ""
    if saddr == 0:
        return pb.SKB_DROP_REASON_IP_INVALID_SOURCE, "src"
    if daddr == 0:
        return pb.SKB_DROP_REASON_IP_INVALID_DEST, "dst"
    if daddr >> 24 == 127:
        return pb.SKB_DROP_REASON_IP_LOCALNET, "dst"
    if saddr >> 24 == 127:
        return pb.SKB_DROP_REASON_IP_LOCALNET, "src"
    return 0, ""


def _never_a_source(addr: int) -> bool:
    """What icmp_send never answers: a zero-net, loopback, multicast or limited-broadcast source."""
    return addr == 0 or addr >> 24 == 127 or addr >> 28 == 0xE or addr == 0xFFFFFFFF


class Ipv4(PollHandOff):
    def __init__(self, host: str, fib: Fib, mtus: dict[str, int], *, forwarding: bool,
                 to_l2: Callable[[list], object], to_l4: Callable[[str, list], object], mib: Mib,
                 netfilter: nf.Netfilter | None = None, defrag: IpDefrag | None = None,
                 ratelimit: IcmpRateLimit | None = None, clock=time.monotonic, wallclock=time.time) -> None:
        self.host = host
        self.fib = fib
        self.mtus = mtus
        self.forwarding = forwarding
        self.mib = mib
        self.nf = netfilter if netfilter is not None else nf.Netfilter()
        self.defrag = defrag if defrag is not None else IpDefrag(host, mib)
        self.ratelimit = ratelimit if ratelimit is not None else IcmpRateLimit()
        self._to_l2 = to_l2
        self._to_l4 = to_l4
        self._clock = clock
        self._wallclock = wallclock  # ICMP and option timestamps: the time of day (inet_current_timestamp)
        self._frag_lock = threading.Lock()
        self._pmtu: dict[int, tuple[int, float]] = {}  # daddr -> (mtu, expires): fib_nh_exception
        self._idents: dict[tuple, int] = {}
        self._inet_ids: OrderedDict[tuple, int] = OrderedDict()  # a connected socket's inet_id, least recent first
        self._id_lock = threading.Lock()
        self._init_handoff()
        mib.inc(IP, "Forwarding", 1 if forwarding else 2)
        mib.inc(IP, "DefaultTTL", IPDEFTTL)

    def drop(self, skb, reason: int, func: str) -> None:
        s.kfree_skb_reason(skb, reason, L3, self.host, func)
        self.mib.drop(reason)

    def _nf_drop(self, hook: int, iph: IpHdr, skb) -> bool:
        """NF_HOOK(): does the hook's chain drop this packet (skb data at its IP header)?"""
        if not self.nf.active(hook):
            self.nf.passed(hook, iph.tot_len)
            return False
        return self.nf.hook(hook, iph, skb.payload()[iph.header_len:], iph.tot_len) == nf.NF_DROP

    # -- receive ------------------------------------------------------------
    def ip_list_rcv(self, skbs: list) -> tuple[int, int]:
        """ip_list_rcv(): one poll's IPv4 packets from L2. Returns (accepted, dropped)."""
        return self._list_rcv(skbs, self.ip_rcv)

    def ip_rcv(self, skb) -> int:
        """ip_rcv(): returns the drop reason, 0 if the packet went on (or was queued)."""
        skb.record(s.ENTER, L3, self.host, "ip_rcv")
        iph = ip_rcv_core(skb, self.mib)
        if type(iph) is int:
            self.drop(skb, iph, "ip_rcv_core")
            return iph
        self.mib.inc(IPEXT, "InOctets", iph.tot_len)
        if self._nf_drop(nf.NF_INET_PRE_ROUTING, iph, skb):
            return self._drop(skb, pb.SKB_DROP_REASON_NETFILTER_DROP, "nf_hook_slow")
        return self.ip_rcv_finish(skb, iph)

    def _drop(self, skb, reason: int, func: str) -> int:
        self.drop(skb, reason, func)
        return reason

    def ip_rcv_finish(self, skb, iph: IpHdr) -> int:
        """ip_rcv_finish() → ip_rcv_finish_core(): ip_route_input_noref, then the options
        (ip_rcv_options) and the broadcast count, then dst_input: local delivery,
        forwarding, or ip_error. A packet the route cannot take (not ours on a host that
        does not forward, or no route) still has its options compiled first: Linux
        routes it to ip_error, which runs after them."""
        if skb.pkt_type != pb.PACKET_LOOPBACK:
            reason, which = _martian(iph.saddr, iph.daddr)
            if reason:
                self.mib.inc("RtCache", f"in_martian_{which}")
                return self._drop(skb, reason, "ip_route_input_slow")
        res = self.fib.lookup(iph.daddr)
        local = res is not None and res.type in (RTN_LOCAL, RTN_BROADCAST)
        error = 0
        if not local and not self.forwarding:
            error = pb.SKB_DROP_REASON_IP_INADDRERRORS  # not for us (no ICMP; ip_error's !IN_DEV_FORWARD)
        elif self.fib.is_local(iph.saddr) and skb.pkt_type != pb.PACKET_LOOPBACK:
            self.mib.inc("RtCache", "in_martian_src")  # fib_validate_source: our own address as source
            return self._drop(skb, pb.SKB_DROP_REASON_IP_LOCAL_SOURCE, "fib_validate_source")
        elif not local and res is None:
            error = pb.SKB_DROP_REASON_IP_INNOROUTES
        opt = None
        if iph.header_len > IPV4_MIN_HLEN:
            opt = self.ip_rcv_options(skb, iph, res, local)
            if type(opt) is int:
                return opt
            iph = IpHdr.from_bytes(s.skb_network_header(skb), verify_csum=False, quoted=True)
        if res is not None and res.type == RTN_BROADCAST:
            self.mib.inc(IPEXT, "InBcastPkts")  # __IP_UPD_PO_STATS(IPSTATS_MIB_INBCAST)
            self.mib.inc(IPEXT, "InBcastOctets", iph.tot_len)
        if error == pb.SKB_DROP_REASON_IP_INADDRERRORS:
            self.mib.inc(IP, "InAddrErrors")
            return self._drop(skb, error, "ip_error")
        if error:
            self.mib.inc(IPEXT, "InNoRoutes")
            self.icmp_send(skb, iph, ICMP_DEST_UNREACH, ICMP_NET_UNREACH)
            return self._drop(skb, error, "ip_error")
        if local:
            return self.ip_local_deliver(skb, iph, opt)
        return self.ip_forward(skb, iph, res, opt)

    def ip_rcv_options(self, skb, iph: IpHdr, res: FibResult | None, local: bool) -> IpOptions | int:
        """ip_rcv_options(): compile the options (ip_options_compile, which writes our
        entries into the header: skb_cow first). A malformed option is answered with ICMP
        parameter problem pointing at it and counts InHdrErrors: IP_INHDR, as Linux 6.18
        drops it (6.12 said NOT_SPECIFIED). A source-routed packet (LSRR or SSRR) is
        dropped, uncounted, unless accept_source_route is on, which it is not by default:
        Linux 6.18 gives no reason (NOT_SPECIFIED) and counts nothing but InReceives.
        Returns the options, or the drop reason."""
        buf = skb.writable()
        nh, ihl = skb.network_header, iph.header_len
        opt, pointer = ip_options_compile(buf, nh, ihl, spec_dst=lambda: self._spec_dst(iph, res, local),
                                          unicast=self._inet_addr_unicast,
                                          now_ms=lambda: inet_current_timestamp(self._wallclock))
        if opt is None:
            self.icmp_send(skb, iph, ICMP_PARAMETERPROB, 0, pointer << 24)
            self.mib.inc(IP, "InHdrErrors")
            return self._drop(skb, pb.SKB_DROP_REASON_IP_INHDR, "ip_rcv_options")
        if opt.srr and not ACCEPT_SOURCE_ROUTE:
            return self._drop(skb, pb.SKB_DROP_REASON_NOT_SPECIFIED, "ip_rcv_options")
        if opt.is_changed:  # the kernel checksums again only when forwarding; pktpath keeps every header verifying
            ip_send_check(buf, nh, ihl)
            opt.is_changed = False
        return opt

    def _spec_dst(self, iph: IpHdr, res: FibResult | None, local: bool) -> int:
        """fib_compute_spec_dst(): the address a packet came to if it is ours (unicast),
        else our source towards its sender."""
        if local and res is not None and res.type == RTN_LOCAL:
            return iph.daddr
        back = self.fib.lookup(iph.saddr) if iph.saddr else None
        return back.prefsrc if back is not None else 0

    def _inet_addr_unicast(self, addr: int) -> bool:
        """inet_addr_type() == RTN_UNICAST: not ours, not a broadcast, multicast or loopback address."""
        if _never_a_source(addr):
            return False
        res = self.fib.lookup(addr)
        return res is None or res.type not in (RTN_LOCAL, RTN_BROADCAST)

    def ip_local_deliver(self, skb, iph: IpHdr, opt: IpOptions | None = None) -> int:
        """ip_local_deliver(): reassemble, NF_INET_LOCAL_IN, then the protocol. A reassembled
        datagram's options are not kept for a reply (the kernel keeps its first fragment's
        IPCB): pktpath answers it without them."""
        if iph.is_fragment:
            with self._frag_lock:
                whole = self.defrag.defrag(skb, iph)
            if whole is None:
                return 0  # queued (or dropped and counted by ip_defrag)
            skb, opt = whole, None
            iph = IpHdr.from_bytes(skb.payload())
        if self._nf_drop(nf.NF_INET_LOCAL_IN, iph, skb):
            return self._drop(skb, pb.SKB_DROP_REASON_NETFILTER_DROP, "nf_hook_slow")
        return self.ip_local_deliver_finish(skb, iph, opt)

    def ip_local_deliver_finish(self, skb, iph: IpHdr, opt: IpOptions | None = None) -> int:
        """ip_local_deliver_finish() → ip_protocol_deliver_rcu(): pull the IP header, dispatch."""
        s.skb_pull(skb, iph.header_len)
        s.skb_reset_transport_header(skb)
        proto = iph.protocol
        if proto == IPPROTO_ICMP:
            self.mib.inc(IP, "InDelivers")
            return self.icmp_rcv(skb, iph, opt)
        if proto == IPPROTO_IGMP:
            self.mib.inc(IP, "InDelivers")
            return self.igmp_rcv(skb)
        kind = _L4_HANDLERS.get(proto)
        if kind is None:
            # No handler and no raw socket: protocol unreachable.
            self.mib.inc(IP, "InUnknownProtos")
            self.icmp_send(skb, iph, ICMP_DEST_UNREACH, ICMP_PROT_UNREACH)
            return self._drop(skb, pb.SKB_DROP_REASON_IP_NOPROTO, "ip_protocol_deliver_rcu")
        self.mib.inc(IP, "InDelivers")
        return self._up(kind, skb)

    def _up(self, kind: str, skb, item=None) -> int:
        skb.record(s.EXIT, L3, self.host, "ip_protocol_deliver_rcu")
        return self._pass_on(kind, item or skb, [skb])

    # -- ICMP in --------------------------------------------------------------
    def icmp_rcv(self, skb, iph: IpHdr, opt: IpOptions | None = None) -> int:
        """icmp_rcv(): data at the ICMP header. Every message counts InMsgs and its type
        (IcmpMsg InTypeN, which /proc/net/snmp's Icmp In* names read), before anything
        is refused. A type past 18 counts InErrors and is dropped as UNHANDLED_PROTO,
        but for PROBE (42, refused silently with icmp_echo_enable_probe 0) and its reply
        (43, to ping sockets). To a broadcast address (icmp_echo_ignore_broadcasts 1)
        only address-mask messages are taken: an echo, a timestamp request or anything
        else counts InErrors and is dropped as INVALID_PROTO."""
        self.mib.inc(ICMP, "InMsgs")
        data = skb.payload()
        try:
            icmph = IcmpHdr.from_bytes(data)
        except WireError as exc:
            if isinstance(exc, SanityError) and exc.field == "type":
                return self._icmp_unknown_type(skb, data[0])
            self.mib.inc(ICMP, "InErrors")
            if exc.field == "checksum":
                self.mib.inc(ICMP, "InCsumErrors")
                return self._drop(skb, pb.SKB_DROP_REASON_ICMP_CSUM, "icmp_rcv")
            return self._drop(skb, pb.SKB_DROP_REASON_ICMP_INVALID, "icmp_rcv")
        self.mib.inc("IcmpMsg", f"InType{icmph.type}")  # ICMPMSGIN_INC_STATS: every type, known or not
        name = TYPE_NAMES.get(icmph.type)
        if name:
            self.mib.inc(ICMP, "In" + name)
        res = self.fib.lookup(iph.daddr)
        if (res is None or res.type == RTN_BROADCAST) and icmph.type not in (ICMP_ADDRESS, ICMP_ADDRESSREPLY):
            self.mib.inc(ICMP, "InErrors")
            return self._drop(skb, pb.SKB_DROP_REASON_INVALID_PROTO, "icmp_rcv")
        if icmph.type == ICMP_ECHO:
            self.icmp_echo(skb, iph, icmph, opt)
            s.consume_skb(skb, L3, self.host, "icmp_echo")
            return 0
        if icmph.type == ICMP_TIMESTAMP:
            return self.icmp_timestamp(skb, iph, icmph, opt)
        if icmph.type == ICMP_ECHOREPLY:
            return self._up("ping", skb)
        if icmph.is_error:
            return self.icmp_unreach(skb, icmph)
        s.consume_skb(skb, L3, self.host, "icmp_discard")  # address masks, timestamp replies: not answered
        return 0

    def _icmp_unknown_type(self, skb, type_: int) -> int:
        """icmp_rcv() for a type past NR_ICMP_TYPES (the checksum verified)."""
        self.mib.inc("IcmpMsg", f"InType{type_}")
        if type_ == ICMP_EXT_ECHO:  # icmp_echo → icmp_build_probe: PROBE is off by default
            s.consume_skb(skb, L3, self.host, "icmp_echo")
            return 0
        if type_ == ICMP_EXT_ECHOREPLY:
            return self._up("ping", skb)
        self.mib.inc(ICMP, "InErrors")  # RFC 1122 3.2.2: unknown types are silently discarded
        return self._drop(skb, pb.SKB_DROP_REASON_UNHANDLED_PROTO, "icmp_rcv")

    # -- IGMP in --------------------------------------------------------------
    def igmp_rcv(self, skb) -> int:
        """igmp_rcv() (net/ipv4/igmp.c), data at the IGMP header, for a host that joined no
        group: a query (igmp_heard_query) and a report that came to a link-layer broadcast
        or multicast (igmp_heard_report) are consumed; a unicast report, any other type, a
        short message or a bad checksum is freed with kfree_skb(), no reason and no
        counter (NOT_SPECIFIED). Never a protocol unreachable: IGMP has a handler."""
        data = skb.payload()
        dropped = True
        if len(data) >= 8 and verifies(data):
            if data[0] == IGMP_HOST_MEMBERSHIP_QUERY:
                dropped = igmp_heard_query(data)
            elif data[0] in (IGMP_HOST_MEMBERSHIP_REPORT, IGMPV2_HOST_MEMBERSHIP_REPORT):
                # a unicast report is not heard ("don't rely on MC router hearing unicast reports")
                dropped = skb.pkt_type not in (pb.PACKET_MULTICAST, pb.PACKET_BROADCAST)
        if dropped:
            return self._drop(skb, pb.SKB_DROP_REASON_NOT_SPECIFIED, "igmp_rcv")
        s.consume_skb(skb, L3, self.host, "igmp_rcv")
        return 0

    def icmp_unreach(self, skb, icmph: IcmpHdr) -> int:
        """icmp_unreach(): check the quoted header, learn the path MTU, hand the error
        to the quoted protocol's err_handler (L4)."""
        try:
            inner, _ = quoted(skb.payload())
        except WireError:
            self.mib.inc(ICMP, "InErrors")
            return self._drop(skb, pb.SKB_DROP_REASON_ICMP_INVALID, "icmp_unreach")
        if inner.ihl < 5:
            self.mib.inc(ICMP, "InErrors")
            return self._drop(skb, pb.SKB_DROP_REASON_ICMP_INVALID, "icmp_unreach")
        if icmph.type == ICMP_DEST_UNREACH and icmph.code == ICMP_FRAG_NEEDED:
            self.update_pmtu(inner.daddr, icmph.mtu)
        return self._up("err", skb, (skb, icmph.type, icmph.code, icmph.mtu if icmph.code == ICMP_FRAG_NEEDED else 0))

    def update_pmtu(self, daddr: int, mtu: int) -> None:
        """__ip_rt_update_pmtu(): remember a smaller path MTU towards daddr for 10 minutes."""
        res = self.fib.lookup(daddr)
        if res is None or not mtu:
            return
        mtu = max(mtu, IP_RT_MIN_PMTU)
        if mtu < self.mtus.get(res.dev, LOOPBACK_MTU):
            self._pmtu[daddr] = (mtu, self._clock() + IP_RT_MTU_EXPIRES)

    def path_mtu(self, daddr: int, dev: str) -> int:
        mtu = self.mtus.get(dev, LOOPBACK_MTU)
        learned = self._pmtu.get(daddr)
        if learned is not None:
            if learned[1] > self._clock():
                return min(mtu, learned[0])
            self._pmtu.pop(daddr, None)
        return mtu

    # -- ICMP out -------------------------------------------------------------
    def icmp_echo(self, skb, iph: IpHdr, icmph: IcmpHdr, opt: IpOptions | None = None) -> None:
        """icmp_echo() → icmp_reply(): the request's header (its code too) and data copied
        into a new reply."""
        data = skb.payload()[ICMP_HLEN:]
        reply = icmph._replace(type=ICMP_ECHOREPLY, checksum=0)
        self.icmp_reply(skb, iph, reply, bytes(data), opt)

    def icmp_timestamp(self, skb, iph: IpHdr, icmph: IcmpHdr, opt: IpOptions | None = None) -> int:
        """icmp_timestamp(): a timestamp reply (type 14, code 0) with the request's
        identifier, sequence and originate timestamp, and the receive and transmit
        timestamps both now, in ms since midnight UTC. The rest of the request is not
        copied. Fewer than 4 bytes after the header: InErrors, PKT_TOO_SMALL."""
        data = skb.payload()
        if len(data) < ICMP_HLEN + 4:
            self.mib.inc(ICMP, "InErrors")
            return self._drop(skb, pb.SKB_DROP_REASON_PKT_TOO_SMALL, "icmp_timestamp")
        now = inet_current_timestamp(self._wallclock).to_bytes(4, "big")
        body = bytes(data[ICMP_HLEN:ICMP_HLEN + 4]) + now + now
        self.icmp_reply(skb, iph, icmph._replace(type=ICMP_TIMESTAMPREPLY, code=0, checksum=0), body, opt)
        s.consume_skb(skb, L3, self.host, "icmp_timestamp")
        return 0

    def icmp_reply(self, skb, iph: IpHdr, icmph: IcmpHdr, body: bytes, opt: IpOptions | None) -> None:
        """icmp_reply(): from the address the request was sent to, with the request's
        options echoed (ip_options_echo; none, and no reply, when they leave no room).
        Counted as an echo reply whatever it is: icmp_reply's flowi4 leaves fl4_icmp_type
        0, which __ip_make_skb counts for its raw ICMP socket (Linux 6.18 counts a
        timestamp reply as OutEchoReps and OutType0)."""
        options = None
        if opt is not None and (opt.rr or opt.ts):
            options = ip_options_echo(s.skb_network_header(skb), opt, unicast=self._inet_addr_unicast)
            if options is None:
                return
        out = self._icmp_skb(icmph, body, skb)
        out.record(s.COPY, L3, self.host, "icmp_reply", len(body), copy_from="skb", copy_to="skb")
        self._icmp_xmit(out, IcmpHdr(ICMP_ECHOREPLY), Flowi4(iph.saddr, iph.daddr, protocol=IPPROTO_ICMP,
                                                            tos=iph.tos, pmtudisc=IP_PMTUDISC_DONT), options)

    def icmp_send(self, skb_in, iph: IpHdr, type_: int, code: int, info: int = 0) -> bool:
        """icmp_send() / __icmp_send(): an error about skb_in, whose network header is iph.
        Returns whether one was sent."""
        if skb_in.pkt_type not in (pb.PACKET_HOST, pb.PACKET_LOOPBACK):
            return False
        res = self.fib.lookup(iph.daddr)
        if res is not None and res.type == RTN_BROADCAST or iph.daddr >> 28 == 0xE or _never_a_source(iph.saddr):
            return False
        if iph.frag_offset:  # only the first fragment is answered
            return False
        if iph.protocol == IPPROTO_ICMP:  # never an error about an error
            inner = s.skb_network_header(skb_in)[iph.header_len:]
            if len(inner) < 1 or inner[0] > 18 or IcmpHdr(inner[0]).is_error:
                return False
        route = self.fib.lookup(iph.saddr)
        if route is None:
            return False
        if IcmpRateLimit.limited(type_, code):
            if not self.ratelimit.global_allow():
                self.mib.inc(ICMP, "OutRateLimitGlobal")
                return False
            # icmpv4_xrlim_allow: no per-host limit towards ourselves (loopback)
            if route.type != RTN_LOCAL and not self.ratelimit.peer_allow(iph.saddr):
                self.mib.inc(ICMP, "OutRateLimitHost")
                return False
        # The source: the offending packet's destination if it was ours, else the address
        # of the interface the error leaves by (icmp_errors_use_inbound_ifaddr = 0).
        saddr = iph.daddr if self.fib.is_local(iph.daddr) else route.prefsrc
        icmph = IcmpHdr(type_, code, info & 0xFFFF if code == ICMP_FRAG_NEEDED else info)
        body = quote(s.skb_network_header(skb_in), ip_options_len=0)
        out = self._icmp_skb(icmph, body, skb_in)
        out.record(s.COPY, L3, self.host, "__icmp_send", len(body), copy_from="skb", copy_to="skb")
        tos = (iph.tos & IPTOS_TOS_MASK) | IPTOS_PREC_INTERNETCONTROL
        self._icmp_xmit(out, icmph, Flowi4(iph.saddr, saddr, protocol=IPPROTO_ICMP, tos=tos,
                                           pmtudisc=IP_PMTUDISC_DONT))
        return True

    def _icmp_skb(self, icmph: IcmpHdr, body: bytes, about) -> s.SkBuff:
        skb = s.alloc_skb(s.MAX_HEADER + ICMP_HLEN + len(body), origin_host=self.host, sampled=about.sampled)
        s.skb_reserve(skb, s.MAX_HEADER)
        s.skb_put_data(skb, icmph.to_bytes(body))
        s.skb_put_data(skb, body)
        s.skb_reset_transport_header(skb)
        skb.traceparent = about.traceparent
        return skb

    def _icmp_xmit(self, skb, icmph: IcmpHdr, flow: Flowi4, options=None) -> None:
        """icmp_out_count() for icmph's type, then out (with options: (IpOptions, bytes))."""
        self.mib.inc(ICMP, "OutMsgs")
        self.mib.inc("IcmpMsg", f"OutType{icmph.type}")
        name = TYPE_NAMES.get(icmph.type)
        if name:
            self.mib.inc(ICMP, "Out" + name)
        self.ip_local_out(skb, flow, options)

    def icmp_frag_expired(self, first) -> None:
        """ip_expire(): time exceeded (fragment reassembly) about the first fragment."""
        try:
            iph = IpHdr.from_bytes(s.skb_network_header(first), verify_csum=False)
        except WireError:
            return
        self.icmp_send(first, iph, ICMP_TIME_EXCEEDED, ICMP_EXC_FRAGTIME)

    def frag_expire(self) -> int:
        with self._frag_lock:
            return self.defrag.expire(self.icmp_frag_expired)

    # -- forward --------------------------------------------------------------
    def ip_forward(self, skb, iph: IpHdr, res: FibResult, opt: IpOptions | None = None) -> int:
        """ip_forward(): TTL, path MTU, NF_INET_FORWARD, then out (ip_forward_options first).
        Only what came in a frame addressed to this host (a unicast one) is forwarded."""
        if skb.pkt_type != pb.PACKET_HOST:
            return self._drop(skb, pb.SKB_DROP_REASON_NOT_SPECIFIED, "ip_forward")
        if iph.ttl <= 1:
            self.icmp_send(skb, iph, ICMP_TIME_EXCEEDED, ICMP_EXC_TTL)
            self.mib.inc(IP, "InHdrErrors")
            return self._drop(skb, pb.SKB_DROP_REASON_IP_INHDR, "ip_forward")
        mtu = self.path_mtu(iph.daddr, res.dev)
        if iph.df and ip_exceeds_mtu(skb, iph, mtu):
            self.mib.inc(IP, "FragFails")
            self.icmp_send(skb, iph, ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, mtu)
            return self._drop(skb, pb.SKB_DROP_REASON_PKT_TOO_BIG, "ip_forward")
        ip_decrease_ttl(skb)
        iph = iph._replace(ttl=iph.ttl - 1)
        if self._nf_drop(nf.NF_INET_FORWARD, iph, skb):
            return self._drop(skb, pb.SKB_DROP_REASON_NETFILTER_DROP, "nf_hook_slow")
        self.mib.inc(IP, "ForwDatagrams")  # ip_forward_finish
        if opt is not None and opt.rr_needaddr:
            iph = ip_forward_options(skb, iph, opt, res.prefsrc)
        return self.ip_output(skb, iph, res, mtu, forwarded=True)

    # -- output ---------------------------------------------------------------
    def route_output(self, daddr: int) -> FibResult | None:
        """ip_route_output_key()."""
        return self.fib.lookup(daddr)

    def ip_select_ident(self, saddr: int, daddr: int, protocol: int, segs: int = 1, *, df: bool = False,
                        ignore_df: bool = True, connected: tuple | None = None) -> int:
        """ip_select_ident_segs(): the IP id. A connected socket (`connected`: its key)
        numbers its own packets from a random start (inet_id, set at connect or accept);
        otherwise a DF packet that may not be fragmented (not ignore_df: IP_PMTUDISC_DO or
        PROBE, as TCP's control socket for RSTs is) gets id 0, as do ip_build_and_send_pkt's
        SYN-ACKs, and anything else takes the per-(source, destination, protocol) counter
        (ip_idents). A GSO packet takes one id for each of its segments, which GSO numbers."""
        if connected is not None:
            with self._id_lock:
                ident = self._inet_ids.pop(connected, None)
                if ident is None:
                    ident = random.getrandbits(16)  # get_random_u16()
                    if len(self._inet_ids) >= INET_IDS_MAX:
                        self._inet_ids.popitem(last=False)
                self._inet_ids[connected] = (ident + segs) & 0xFFFF
            return ident
        if df and not ignore_df:
            return 0
        key = (saddr, daddr, protocol)
        with self._id_lock:
            ident = self._idents.get(key)
            if ident is None:
                ident = (saddr * 31 + daddr * 17 + protocol) & 0xFFFF  # a spread start, like the hash
            self._idents[key] = (ident + segs) & 0xFFFF
        return ident

    def ip_queue_xmit(self, skbs: list) -> tuple[int, int, int]:
        """L4's packets (data at the transport header, skb->cb a Flowi4).
        Returns (accepted, dropped, errno of the last refusal)."""
        dropped, err = 0, 0
        for skb in skbs:
            skb.record(s.ENTER, L3, self.host, "ip_queue_xmit")
            try:
                flow = Flowi4.unpack(skb.cb)
            except ValueError:
                reason = self._drop(skb, pb.SKB_DROP_REASON_NOT_SPECIFIED, "ip_queue_xmit")
            else:
                reason = self.ip_local_out(skb, flow)
            if reason:
                dropped += 1
                err = SEND_ERRNO.get(reason, errno.EIO)
        return len(skbs) - dropped, dropped, err

    def ip_local_out(self, skb, flow: Flowi4, options: tuple[IpOptions, bytes] | None = None) -> int:
        """__ip_make_skb() + ip_local_out(): route, the IP header, NF_INET_LOCAL_OUT, ip_output.
        skb's data is the transport header; options (a reply's, from ip_options_echo) get
        our entries (ip_options_build). Returns the drop reason, 0 if sent on.

        The IP id (ip_select_ident): TCP's packets from a socket (skb->sk) are a
        connected socket's; TCP's without one are the SYN-ACKs and RSTs the kernel sends
        from a request sock or its control socket (DF, id 0). UDP and ping sockets pass
        no word on whether they are connected, so theirs are taken as unconnected."""
        res = self.route_output(flow.daddr)
        if res is None:
            self.mib.inc(IP, "OutNoRoutes")
            return self._drop(skb, pb.SKB_DROP_REASON_IP_OUTNOROUTES, "ip_route_output_flow")
        loopback = res.type == RTN_LOCAL
        mtu = LOOPBACK_MTU if loopback else self.path_mtu(flow.daddr, res.dev)
        hlen = IPV4_MIN_HLEN + (len(options[1]) if options else 0)
        if hlen + skb.len > IP_MAX_PACKET:
            return self._drop(skb, pb.SKB_DROP_REASON_PKT_TOO_BIG, "ip_append_data")
        # what the MTU is held against: a GSO packet's segments (skb_gso_validate_network_len)
        length = hlen + (skb_gso_transport_seglen(skb) if skb.gso_size else skb.len)
        if flow.pmtudisc == IP_PMTUDISC_PROBE:
            mtu = LOOPBACK_MTU if loopback else self.mtus.get(res.dev, LOOPBACK_MTU)
        df = flow.pmtudisc in (IP_PMTUDISC_DO, IP_PMTUDISC_PROBE) or (
            flow.pmtudisc == IP_PMTUDISC_WANT and length <= mtu)
        if df and length > mtu:  # ip_append_data: EMSGSIZE before anything is built
            return self._drop(skb, pb.SKB_DROP_REASON_PKT_TOO_BIG, "ip_append_data")
        saddr = flow.saddr or res.prefsrc or flow.daddr
        tcp = flow.protocol == IPPROTO_TCP
        connected = (skb.sk, flow.daddr, flow.dport, flow.sport) if tcp and skb.sk else None
        ident = self.ip_select_ident(saddr, flow.daddr, flow.protocol, skb.gso_segs or 1, df=df,
                                     ignore_df=not tcp and flow.pmtudisc < IP_PMTUDISC_DO, connected=connected)
        opt_bytes = b""
        if options:
            opt, built = options
            opt_bytes = bytearray(built)
            ip_options_build(opt_bytes, opt, saddr, inet_current_timestamp(self._wallclock))
        iph = IpHdr(saddr, flow.daddr, flow.protocol, ttl=flow.ttl or IPDEFTTL, tos=flow.tos, id=ident,
                    frag_off=IP_DF if df else 0, options=bytes(opt_bytes))
        s.skb_reset_transport_header(skb)
        try:
            header = iph.to_bytes(skb.len)
            s.skb_push_data(skb, header)
        except (WireError, s.SkbError):
            return self._drop(skb, pb.SKB_DROP_REASON_NOT_SPECIFIED, "ip_local_out")
        s.skb_reset_network_header(skb)
        iph = iph._replace(tot_len=skb.len)
        skb.protocol = 0x0800
        if self._nf_drop(nf.NF_INET_LOCAL_OUT, iph, skb):
            return self._drop(skb, pb.SKB_DROP_REASON_NETFILTER_DROP, "nf_hook_slow")
        if loopback:
            return self._loopback_xmit(skb, iph)
        return self.ip_output(skb, iph, res, mtu, forwarded=False)

    def ip_output(self, skb, iph: IpHdr, res: FibResult, mtu: int, *, forwarded: bool) -> int:
        """ip_output() → NF_INET_POST_ROUTING → ip_finish_output(): fragment if needed, then L2."""
        if not forwarded:
            self.mib.inc(IP, "OutRequests")
        if self._nf_drop(nf.NF_INET_POST_ROUTING, iph, skb):
            return self._drop(skb, pb.SKB_DROP_REASON_NETFILTER_DROP, "nf_hook_slow")
        skb.dev = res.dev
        skb.nexthop = res.nexthop
        skb.protocol = 0x0800
        self.mib.inc(IPEXT, "OutOctets", iph.tot_len)
        if not ip_exceeds_mtu(skb, iph, mtu):
            out = [skb]
        elif skb.gso_size:  # ip_finish_output_gso(): segment in software, then fragment what still exceeds
            out = []
            for seg in skb_gso_segment(skb, L3, self.host):
                seg_iph = IpHdr.from_bytes(seg.payload(), verify_csum=False)
                out += [seg] if seg_iph.tot_len <= mtu else ip_fragment(seg, seg_iph, mtu, self.host, self.mib,
                                                                        slow_path=True)
        else:
            out = ip_fragment(skb, iph, mtu, self.host, self.mib, slow_path=forwarded)
        for o in out:
            o.record(s.EXIT, L3, self.host, "ip_finish_output2")
            self._pass_on("l2", o, [o])
        return 0

    def _loopback_xmit(self, skb, iph: IpHdr) -> int:
        """loopback_xmit(): a packet for one of our own addresses comes straight back in,
        orphaned first (its sender's sk_wmem_alloc gets it back: TSQ never waits on lo)."""
        s.skb_orphan(skb, self.host)
        self.mib.inc(IP, "OutRequests")
        skb.dev = "lo"
        skb.pkt_type = pb.PACKET_LOOPBACK
        skb.record(s.EXIT, L3, self.host, "loopback_xmit")
        self.ip_rcv(skb)
        return 0


def igmp_heard_query(data) -> bool:
    """igmp_heard_query(): whether a query is dropped (a bogus one) rather than consumed.
    An 8-byte message is an IGMPv1/v2 query; 9 to 11 bytes is bogus; an IGMPv3 query
    must hold the sources it counts, and a general one may name none. pktpath keeps no
    querier version state (IGMP_V1_SEEN/V2_SEEN), nor groups to schedule reports for."""
    n = len(data)
    if n == 8:
        return False
    if n < 12:
        return True
    nsrcs = int.from_bytes(data[10:12], "big")
    if n < 12 + 4 * nsrcs:
        return True
    return not any(data[4:8]) and nsrcs > 0  # a general query with sources


def ip_forward_options(skb, iph: IpHdr, opt: IpOptions, saddr: int) -> IpHdr:
    """ip_forward_options(): a record route slot ip_options_compile filled with our
    incoming address gets the outgoing one (ip_rt_get_source: the route's preferred
    source), and the header its checksum again (ip_send_check). Returns the header."""
    buf = skb.writable()
    nh = skb.network_header
    rr = nh + opt.rr
    at = rr + buf[rr + 2] - 5
    buf[at:at + 4] = saddr.to_bytes(4, "big")
    ip_send_check(buf, nh, iph.header_len)
    return iph._replace(options=bytes(buf[nh + IPV4_MIN_HLEN:nh + iph.header_len]))


def ip_exceeds_mtu(skb, iph: IpHdr, mtu: int) -> bool:
    """ip_exceeds_mtu(): a GSO packet (GRO merged it) fits when each of its segments would
    (skb_gso_validate_network_len: IP and TCP headers plus gso_size)."""
    if not skb.gso_size:
        return iph.tot_len > mtu
    return iph.header_len + skb_gso_transport_seglen(skb, skb.network_header + iph.header_len) > mtu


def skb_gso_transport_seglen(skb, th: int | None = None) -> int:
    """skb_gso_transport_seglen(): the TCP header and gso_size, what each segment of a GSO
    packet carries past its IP header (th: where the TCP header is; the data by default)."""
    th = skb.data if th is None else th
    return (skb.buf[th + 12] >> 4) * 4 + skb.gso_size


def ip_decrease_ttl(skb) -> None:
    """ip_decrease_ttl(): TTL - 1 and the checksum patched incrementally (RFC 1624)."""
    buf = skb.writable()
    nh = skb.network_header
    buf[nh + 8] -= 1
    check = int.from_bytes(buf[nh + 10:nh + 12], "big") + 0x0100
    check = (check + (check >= 0xFFFF)) & 0xFFFF
    buf[nh + 10:nh + 12] = check.to_bytes(2, "big")
