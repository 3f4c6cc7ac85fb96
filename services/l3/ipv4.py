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

ICMP models net/ipv4/icmp.c: icmp_rcv (echo → icmp_reply; echo replies to
ping sockets; errors → icmp_unreach, which learns a path MTU and hands the
error to the protocol's err_handler in L4) and icmp_send for errors.

Pure logic: the next layers are callables (`to_l2(skbs)`, `to_l4(kind, items)`
with kind "udp", "tcp", "ping" or "err").
"""

import errno
import threading
import time
from typing import Callable

from pktpath import skbuff as s
from pktpath.counters import Mib
from pktpath.flow import IP_PMTUDISC_DO, IP_PMTUDISC_DONT, IP_PMTUDISC_PROBE, IP_PMTUDISC_WANT, Flowi4
from pktpath.offload import skb_gso_segment
from pktpath.pb import skbuff_pb2
from pktpath.services.l3 import netfilter as nf
from pktpath.services.l3.fragment import IpDefrag, ip_fragment
from pktpath.services.l3.icmp import TYPE_NAMES, IcmpRateLimit
from pktpath.services.l3.input import ip_rcv_core
from pktpath.services.l3.route import RTN_BROADCAST, RTN_LOCAL, Fib, FibResult
from pktpath.wire import IcmpHdr, IpHdr, WireError
from pktpath.wire.icmp import (
    ICMP_DEST_UNREACH, ICMP_ECHO, ICMP_ECHOREPLY, ICMP_EXC_FRAGTIME, ICMP_EXC_TTL, ICMP_FRAG_NEEDED,
    ICMP_HLEN, ICMP_NET_UNREACH, ICMP_PROT_UNREACH, ICMP_TIME_EXCEEDED, quote, quoted,
)
from pktpath.wire.ipv4 import IP_DF, IP_MAX_PACKET, IPDEFTTL, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP

pb = skbuff_pb2
L3 = pb.LAYER_L3
IP, IPEXT, ICMP = "Ip", "IpExt", "Icmp"
IPTOS_PREC_INTERNETCONTROL = 0xC0
IPTOS_TOS_MASK = 0x1E
IP_RT_MIN_PMTU = 552      # net.ipv4.route.min_pmtu
IP_RT_MTU_EXPIRES = 600.0  # net.ipv4.route.mtu_expires: a learned path MTU is forgotten after 10 minutes
LOOPBACK_MTU = 65536
_L4_HANDLERS = {IPPROTO_UDP: "udp", IPPROTO_TCP: "tcp"}  # ip_protocol_deliver_rcu's inet_protos (ICMP is ours)

# What sendmsg returns when the output path refuses a packet.
SEND_ERRNO = {
    pb.SKB_DROP_REASON_IP_OUTNOROUTES: errno.ENETUNREACH,
    pb.SKB_DROP_REASON_NETFILTER_DROP: errno.EPERM,
    pb.SKB_DROP_REASON_PKT_TOO_BIG: errno.EMSGSIZE,
    pb.SKB_DROP_REASON_NOT_SPECIFIED: errno.EINVAL,
}


def _martian(addr: int) -> bool:
    """ipv4_is_zeronet / loopback / multicast / lbcast: never a valid source."""
    return addr >> 24 in (0, 127) or addr >> 28 == 0xE or addr == 0xFFFFFFFF


class Ipv4:
    def __init__(self, host: str, fib: Fib, mtus: dict[str, int], *, forwarding: bool,
                 to_l2: Callable[[list], object], to_l4: Callable[[str, list], object], mib: Mib,
                 netfilter: nf.Netfilter | None = None, defrag: IpDefrag | None = None,
                 ratelimit: IcmpRateLimit | None = None, clock=time.monotonic) -> None:
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
        self._frag_lock = threading.Lock()
        self._pmtu: dict[int, tuple[int, float]] = {}  # daddr -> (mtu, expires): fib_nh_exception
        self._idents: dict[tuple, int] = {}
        self._id_lock = threading.Lock()
        self._tls = threading.local()  # the poll being received on this thread, if any
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
        """ip_list_rcv(): one poll's IPv4 packets from L2. Returns (accepted, dropped).
        What the poll passes on goes to each next layer as one list (ip_sublist_rcv's
        idea), not a hand-off per packet."""
        dropped = 0
        self._tls.pending = pending = {}
        try:
            for skb in skbs:
                if self.ip_rcv(skb):
                    dropped += 1
        finally:
            self._tls.pending = None
        for kind, items in pending.items():
            dropped += self._hand_on(kind, items)
        dropped = min(dropped, len(skbs))  # a refused ICMP reply is counted, but is not one of these
        return len(skbs) - dropped, dropped

    def _pass_on(self, kind: str, item, skbs: list) -> int:
        """Hand item (carrying skbs) to the next layer `kind` ("l2" or an L4 handler): at
        the end of the current poll if one is running on this thread, else now."""
        pending = getattr(self._tls, "pending", None)
        if pending is not None:
            pending.setdefault(kind, []).append((item, skbs))
            return 0
        return self._hand_on(kind, [(item, skbs)])

    def _hand_on(self, kind: str, items: list) -> int:
        """Returns how many skbs were dropped because the next layer refused them."""
        ok = (self._to_l2 if kind == "l2" else lambda x: self._to_l4(kind, x))([item for item, _ in items])
        if ok:
            return 0
        lost = [skb for _, skbs in items for skb in skbs]
        for skb in lost:
            self.drop(skb, pb.SKB_DROP_REASON_CPU_BACKLOG, "ip_finish_output2" if kind == "l2"
                      else "ip_protocol_deliver_rcu")
        if kind == "l2":
            self.mib.inc(IP, "OutDiscards", len(lost))
        return len(lost)

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
        """ip_rcv_finish() → ip_route_input_noref(): local, forward, or an error."""
        if _martian(iph.saddr) and skb.pkt_type != pb.PACKET_LOOPBACK:
            self.mib.inc("RtCache", "in_martian_src")
            return self._drop(skb, pb.SKB_DROP_REASON_IP_INVALID_SOURCE, "ip_route_input_slow")
        res = self.fib.lookup(iph.daddr)
        local = res is not None and res.type in (RTN_LOCAL, RTN_BROADCAST)
        if not local and not self.forwarding:
            # A host that does not forward: the packet is not for us (no ICMP; ip_error's !IN_DEV_FORWARD).
            self.mib.inc(IP, "InAddrErrors")
            return self._drop(skb, pb.SKB_DROP_REASON_IP_INADDRERRORS, "ip_error")
        if self.fib.is_local(iph.saddr) and skb.pkt_type != pb.PACKET_LOOPBACK:
            self.mib.inc("RtCache", "in_martian_src")  # fib_validate_source: our own address as source
            return self._drop(skb, pb.SKB_DROP_REASON_IP_LOCAL_SOURCE, "fib_validate_source")
        if local:
            return self.ip_local_deliver(skb, iph)
        if res is None:
            self.mib.inc(IPEXT, "InNoRoutes")
            self.icmp_send(skb, iph, ICMP_DEST_UNREACH, ICMP_NET_UNREACH)
            return self._drop(skb, pb.SKB_DROP_REASON_IP_INNOROUTES, "ip_error")
        return self.ip_forward(skb, iph, res)

    def ip_local_deliver(self, skb, iph: IpHdr) -> int:
        """ip_local_deliver(): reassemble, NF_INET_LOCAL_IN, then the protocol."""
        if iph.is_fragment:
            with self._frag_lock:
                whole = self.defrag.defrag(skb, iph)
            if whole is None:
                return 0  # queued (or dropped and counted by ip_defrag)
            skb = whole
            iph = IpHdr.from_bytes(skb.payload())
        if self._nf_drop(nf.NF_INET_LOCAL_IN, iph, skb):
            return self._drop(skb, pb.SKB_DROP_REASON_NETFILTER_DROP, "nf_hook_slow")
        return self.ip_local_deliver_finish(skb, iph)

    def ip_local_deliver_finish(self, skb, iph: IpHdr) -> int:
        """ip_local_deliver_finish() → ip_protocol_deliver_rcu(): pull the IP header, dispatch."""
        s.skb_pull(skb, iph.header_len)
        s.skb_reset_transport_header(skb)
        proto = iph.protocol
        if proto == IPPROTO_ICMP:
            self.mib.inc(IP, "InDelivers")
            return self.icmp_rcv(skb, iph)
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
    def icmp_rcv(self, skb, iph: IpHdr) -> int:
        """icmp_rcv(): data at the ICMP header."""
        self.mib.inc(ICMP, "InMsgs")
        try:
            icmph = IcmpHdr.from_bytes(skb.payload())
        except WireError as exc:
            self.mib.inc(ICMP, "InErrors")
            if exc.field == "checksum":
                self.mib.inc(ICMP, "InCsumErrors")
                return self._drop(skb, pb.SKB_DROP_REASON_ICMP_CSUM, "icmp_rcv")
            return self._drop(skb, pb.SKB_DROP_REASON_ICMP_INVALID, "icmp_rcv")
        self.mib.inc("IcmpMsg", f"InType{icmph.type}")  # ICMPMSGIN_INC_STATS: every type, known or not
        name = TYPE_NAMES.get(icmph.type)
        if name:
            self.mib.inc(ICMP, "In" + name)
        if icmph.type == ICMP_ECHO:
            res = self.fib.lookup(iph.daddr)
            if skb.pkt_type not in (pb.PACKET_HOST, pb.PACKET_LOOPBACK) or res is None or res.type == RTN_BROADCAST:
                # icmp_echo_ignore_broadcasts = 1 (smurf attacks)
                return self._drop(skb, pb.SKB_DROP_REASON_INVALID_PROTO, "icmp_rcv")
            self.icmp_echo(skb, iph, icmph)
            s.consume_skb(skb, L3, self.host, "icmp_echo")
            return 0
        if icmph.type == ICMP_ECHOREPLY:
            return self._up("ping", skb)
        if icmph.is_error:
            return self.icmp_unreach(skb, icmph)
        s.consume_skb(skb, L3, self.host, "icmp_discard")  # timestamps, address masks: not answered
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
    def icmp_echo(self, skb, iph: IpHdr, icmph: IcmpHdr) -> None:
        """icmp_echo() → icmp_reply(): the request's data copied into a new reply."""
        data = skb.payload()[ICMP_HLEN:]
        reply = IcmpHdr.echo(icmph.echo_id, icmph.echo_sequence, reply=True)
        out = self._icmp_skb(reply, bytes(data), skb)
        out.record(s.COPY, L3, self.host, "icmp_reply", len(data), copy_from="skb", copy_to="skb")
        # icmp_reply answers from the address the request was sent to.
        self._icmp_xmit(out, reply, Flowi4(iph.saddr, iph.daddr, protocol=IPPROTO_ICMP, tos=iph.tos,
                                           pmtudisc=IP_PMTUDISC_DONT))

    def icmp_send(self, skb_in, iph: IpHdr, type_: int, code: int, info: int = 0) -> bool:
        """icmp_send() / __icmp_send(): an error about skb_in, whose network header is iph.
        Returns whether one was sent."""
        if skb_in.pkt_type not in (pb.PACKET_HOST, pb.PACKET_LOOPBACK):
            return False
        res = self.fib.lookup(iph.daddr)
        if res is not None and res.type == RTN_BROADCAST or iph.daddr >> 28 == 0xE or _martian(iph.saddr):
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

    def _icmp_xmit(self, skb, icmph: IcmpHdr, flow: Flowi4) -> None:
        self.mib.inc(ICMP, "OutMsgs")  # icmp_out_count()
        self.mib.inc("IcmpMsg", f"OutType{icmph.type}")
        name = TYPE_NAMES.get(icmph.type)
        if name:
            self.mib.inc(ICMP, "Out" + name)
        self.ip_local_out(skb, flow)

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
    def ip_forward(self, skb, iph: IpHdr, res: FibResult) -> int:
        """ip_forward(): TTL, path MTU, NF_INET_FORWARD, then out."""
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
        return self.ip_output(skb, iph, res, mtu, forwarded=True)

    # -- output ---------------------------------------------------------------
    def route_output(self, daddr: int) -> FibResult | None:
        """ip_route_output_key()."""
        return self.fib.lookup(daddr)

    def ip_select_ident(self, saddr: int, daddr: int, protocol: int, segs: int = 1) -> int:
        """ip_select_ident_segs(): a per-(source, destination, protocol) IP id counter
        (ip_idents); a GSO packet takes one id for each of its segments, which GSO numbers."""
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

    def ip_local_out(self, skb, flow: Flowi4) -> int:
        """__ip_make_skb() + ip_local_out(): route, the IP header, NF_INET_LOCAL_OUT, ip_output.
        skb's data is the transport header. Returns the drop reason, 0 if sent on."""
        res = self.route_output(flow.daddr)
        if res is None:
            self.mib.inc(IP, "OutNoRoutes")
            return self._drop(skb, pb.SKB_DROP_REASON_IP_OUTNOROUTES, "ip_route_output_flow")
        loopback = res.type == RTN_LOCAL
        mtu = LOOPBACK_MTU if loopback else self.path_mtu(flow.daddr, res.dev)
        if 20 + skb.len > IP_MAX_PACKET:
            return self._drop(skb, pb.SKB_DROP_REASON_PKT_TOO_BIG, "ip_append_data")
        # what the MTU is held against: a GSO packet's segments (skb_gso_validate_network_len)
        length = 20 + (skb_gso_transport_seglen(skb) if skb.gso_size else skb.len)
        if flow.pmtudisc == IP_PMTUDISC_PROBE:
            mtu = LOOPBACK_MTU if loopback else self.mtus.get(res.dev, LOOPBACK_MTU)
        df = flow.pmtudisc in (IP_PMTUDISC_DO, IP_PMTUDISC_PROBE) or (
            flow.pmtudisc == IP_PMTUDISC_WANT and length <= mtu)
        if df and length > mtu:  # ip_append_data: EMSGSIZE before anything is built
            return self._drop(skb, pb.SKB_DROP_REASON_PKT_TOO_BIG, "ip_append_data")
        saddr = flow.saddr or res.prefsrc or flow.daddr
        iph = IpHdr(saddr, flow.daddr, flow.protocol, ttl=flow.ttl or IPDEFTTL, tos=flow.tos,
                    id=self.ip_select_ident(saddr, flow.daddr, flow.protocol, skb.gso_segs or 1),
                    frag_off=IP_DF if df else 0)
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
        """loopback_xmit(): a packet for one of our own addresses comes straight back in."""
        self.mib.inc(IP, "OutRequests")
        skb.dev = "lo"
        skb.pkt_type = pb.PACKET_LOOPBACK
        skb.record(s.EXIT, L3, self.host, "loopback_xmit")
        self.ip_rcv(skb)
        return 0


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
