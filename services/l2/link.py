"""Ethernet receive and transmit, and ARP, for the interfaces of one host.

Receive models __netif_receive_skb_core (net/core/dev.c) with eth_type_trans
(net/ethernet/eth.c): parse the Ethernet header, classify the frame for this
interface (PACKET_HOST, BROADCAST, MULTICAST, or OTHERHOST), show it to the
capture taps, skb_pull the header, and dispatch by ethertype: ARP to
arp_rcv/arp_process (net/ipv4/arp.c) here, IPv4 (ip_list_rcv) and IPv6
(ipv6_list_rcv) up to L3, each as one batch per poll. A frame for another host
reaches the taps and is then dropped as its protocol's handler drops it: IPv4
and IPv6 with OTHERHOST (ip_rcv_core, ip6_rcv_core, counting the device's
rx_otherhost_dropped), ARP consumed without a drop (arp_rcv). A unicast IPv4
packet in a multicast or broadcast frame goes up like any other, with its
pkt_type (ip_rcv_finish_core: drop_unicast_in_l2_multicast is 0 by default).
An ethertype without a handler is UNHANDLED_PROTO and counts rx_dropped.

VLAN tags (802.1Q, 802.1ad) are taken off as skb_vlan_untag() does. The host
has no VLAN devices, so vlan_do_receive() never finds one: a tag with a VLAN id
makes the frame PACKET_OTHERHOST (dropped as above), and a priority tag (VLAN 0)
is stripped and the frame taken as untagged, up to VLAN_MAX_DEPTH stacked ones.
The device's counters the stack keeps (net_device->core_stats) are the Mib group
"core_stats DEV".

Transmit models neigh_output → neigh_resolve_output → dev_hard_header: resolve
the next hop through the neighbour table, skb_push the Ethernet header into
headroom, and hand the frame to the device's queue. IPv6 next hops are resolved
in their own table (nd_tbl) by neighbour discovery, which is ICMPv6 and so L3's:
the table asks L3 to solicit (ndisc_solicit) and L3 tells it what it learned
(neigh_update). A multicast IPv6 next hop needs no resolution: its MAC is
33:33 and the group's last 32 bits (ndisc_mc_map, ipv6_eth_mc_map).

Pure logic: the next layer, the device queue and the capture taps are callables.
"""

from dataclasses import dataclass
from typing import Callable

from pktpath import skbuff as s
from pktpath.counters import Mib
from pktpath.pb import skbuff_pb2
from pktpath.services.l2.neighbour import NeighParms, NeighTable
from pktpath.wire import ArpHdr, EthHdr, SanityError, TruncatedError, WireError
from pktpath.wire.addr import BROADCAST_MAC, ZERO_MAC, ipv6_addr_is_multicast, ipv6_eth_mc_map, mac_from_str
from pktpath.wire.arp import ARP_HLEN, ARPOP_REPLY, ARPOP_REQUEST
from pktpath.wire.ethernet import (ETH_HLEN, ETH_P_8021AD, ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, VLAN_HLEN,
                                   VLAN_MAX_DEPTH, VLAN_VID_MASK, VlanHdr, eth_type_vlan)

pb = skbuff_pb2
L2 = pb.LAYER_L2
RCV_CORE = "__netif_receive_skb_core"
CORE_STATS = "core_stats"  # + " DEV": dev_core_stats_*_inc(), which dev_get_stats() adds to the driver's


@dataclass(frozen=True)
class L2Iface:
    name: str
    mac: bytes
    addr: int      # this interface's IPv4 address
    prefixlen: int
    mtu: int


class Link:
    def __init__(self, host: str, ifaces: list[L2Iface], *, to_l3: Callable[[list], object],
                 to_dev: Callable[[list], object], mib: Mib, parms: NeighParms | None = None,
                 tap: Callable[[str, object], None] | None = None, to_l3_ipv6: Callable[[list], object] | None = None,
                 ndisc_solicit: Callable[[list], object] | None = None) -> None:
        """to_l3 and to_l3_ipv6 take a poll's IPv4 and IPv6 packets (ip_list_rcv, ipv6_list_rcv);
        ndisc_solicit L3's solicitations [(dev, target, unicast lladdr or None, saddr)]."""
        self.host = host
        self.ifaces = {i.name: i for i in ifaces}
        self.mib = mib
        self._to_l3 = {ETH_P_IP: to_l3, ETH_P_IPV6: to_l3_ipv6}
        self._to_dev = to_dev
        self._tap = tap
        self._ndisc_solicit = ndisc_solicit
        drop = lambda skb, reason: self.drop(skb, reason, "neigh_resolve_output")  # noqa: E731
        self.neigh = NeighTable(parms or NeighParms(), solicit=self.arp_solicit, output=self._xmit_resolved,
                                drop=drop)
        self.nd = NeighTable(NeighParms(), solicit=self.ndisc_solicit, output=self._xmit_resolved, drop=drop)

    def drop(self, skb, reason: int, func: str) -> None:
        s.kfree_skb_reason(skb, reason, L2, self.host, func)
        self.mib.drop(reason)

    # -- receive ------------------------------------------------------------
    def netif_receive_skb_list(self, skbs: list) -> tuple[int, int]:
        """One NAPI poll's frames, each protocol's up as one list (__netif_receive_skb_list_core
        groups them by packet_type). Returns (accepted, dropped)."""
        up: dict[int, list] = {ETH_P_IP: [], ETH_P_IPV6: []}
        dropped = 0
        for skb in skbs:
            skb.record(s.ENTER, L2, self.host, RCV_CORE)
            reason, func = self._receive_one(skb)
            if reason == pb.SKB_CONSUMED:
                continue
            if reason:
                self.drop(skb, reason, func)
                dropped += 1
            else:
                skb.record(s.EXIT, L2, self.host, "ip_list_rcv" if skb.protocol == ETH_P_IP else "ipv6_list_rcv")
                up[skb.protocol].append(skb)
        for proto, batch in up.items():
            if batch and not self._to_l3[proto](batch):
                for skb in batch:
                    self.drop(skb, pb.SKB_DROP_REASON_CPU_BACKLOG, "netif_receive_skb_list")
                dropped += len(batch)
        self.mib.inc("L2", "InFrames", len(skbs))
        return len(skbs) - dropped, dropped

    def core_stat(self, dev: str, name: str) -> None:
        """dev_core_stats_rx_dropped_inc() and its kin: rx_dropped, rx_otherhost_dropped."""
        self.mib.inc(f"{CORE_STATS} {dev}", name)

    def _receive_one(self, skb) -> tuple[int, str]:
        """eth_type_trans() and __netif_receive_skb_core() (net/core/dev.c) for one frame: (0 to go up,
        SKB_CONSUMED, or the drop reason; the kernel function that drops it)."""
        iface = self.ifaces.get(skb.dev)
        if iface is None:
            return pb.SKB_DROP_REASON_DEV_READY, RCV_CORE
        data = skb.payload()
        try:
            eth = EthHdr.from_bytes(data)
            tci, proto, hlen = eth.vlan_tci, eth.h_proto, eth.header_len
            if proto == ETH_P_8021AD and tci is None:  # EthHdr takes an 802.1Q tag, not an 802.1ad one
                tci, proto = VlanHdr.from_bytes(data[hlen:])
                hlen += VLAN_HLEN
        except TruncatedError as exc:
            if exc.field == "vlan":  # skb_vlan_untag() frees a frame too short for its tag, with no reason
                return pb.SKB_DROP_REASON_NOT_SPECIFIED, "skb_vlan_untag"
            return pb.SKB_DROP_REASON_PKT_TOO_SMALL, RCV_CORE
        except SanityError:
            self.core_stat(iface.name, "rx_dropped")
            return pb.SKB_DROP_REASON_UNHANDLED_PROTO, RCV_CORE  # 802.3 length frames: no LLC here
        dest = eth.h_dest
        if dest == iface.mac:
            skb.pkt_type = pb.PACKET_HOST
        elif dest == BROADCAST_MAC:
            skb.pkt_type = pb.PACKET_BROADCAST
        elif dest[0] & 1:
            skb.pkt_type = pb.PACKET_MULTICAST
        else:
            skb.pkt_type = pb.PACKET_OTHERHOST
        s.skb_reset_mac_header(skb)
        if self._tap is not None:
            self._tap("rx", skb)
        depth = 1
        while tci is not None:  # check_vlan_id: no VLAN device took the tag
            if tci & VLAN_VID_MASK:
                skb.pkt_type = pb.PACKET_OTHERHOST  # a VLAN this host has no device for
                break
            if not eth_type_vlan(proto):
                break  # a priority tag (VLAN 0): the frame is taken as untagged
            if depth >= VLAN_MAX_DEPTH:  # Linux 6.18 names this RECURSION_LIMIT
                self.core_stat(iface.name, "rx_dropped")
                return pb.SKB_DROP_REASON_UNHANDLED_PROTO, RCV_CORE
            depth += 1
            try:
                tci, proto = VlanHdr.from_bytes(data[hlen:])
            except TruncatedError:
                return pb.SKB_DROP_REASON_NOT_SPECIFIED, "skb_vlan_untag"
            hlen += VLAN_HLEN
        s.skb_pull(skb, hlen)
        skb.protocol = proto
        s.skb_reset_network_header(skb)
        if proto == ETH_P_IP or proto == ETH_P_IPV6 and self._to_l3[ETH_P_IPV6] is not None:
            if skb.pkt_type == pb.PACKET_OTHERHOST:
                self.core_stat(iface.name, "rx_otherhost_dropped")
                return pb.SKB_DROP_REASON_OTHERHOST, "ip_rcv_core" if proto == ETH_P_IP else "ip6_rcv_core"
            return 0, ""
        if proto == ETH_P_ARP:
            if skb.pkt_type == pb.PACKET_OTHERHOST:  # "do not tweak dropwatch on an ARP we will ignore"
                s.consume_skb(skb, L2, self.host, "arp_rcv")
                return pb.SKB_CONSUMED, ""
            return self.arp_rcv(skb, iface), "arp_rcv"
        self.core_stat(iface.name, "rx_dropped")
        return pb.SKB_DROP_REASON_UNHANDLED_PROTO, RCV_CORE

    # -- ARP ------------------------------------------------------------------
    def arp_rcv(self, skb, iface: L2Iface) -> int:
        """arp_rcv() + arp_process(): answer requests for our address, learn senders."""
        try:
            arp = ArpHdr.from_bytes(skb.payload())
        except TruncatedError:
            return pb.SKB_DROP_REASON_PKT_TOO_SMALL
        except WireError:
            return pb.SKB_DROP_REASON_UNHANDLED_PROTO
        self.mib.inc("Arp", "InRequests" if arp.ar_op == ARPOP_REQUEST else "InReplies")
        for_us = arp.ar_tip == iface.addr
        if arp.ar_sip:  # 0.0.0.0 senders are duplicate-address probes: learn nothing
            # A request for us creates the sender's entry (neigh_event_ns); a reply or
            # anything else only updates an entry we already have (arp_accept=0). Only a
            # reply in a frame to us confirms: "broadcast replies ... do not assert reachability".
            self.neigh.update(iface.name, arp.ar_sip, arp.ar_sha,
                              solicited=arp.ar_op == ARPOP_REPLY and for_us and skb.pkt_type == pb.PACKET_HOST,
                              create=for_us and arp.ar_op == ARPOP_REQUEST)
        if for_us and arp.ar_op == ARPOP_REQUEST:
            self.arp_send(iface, ARPOP_REPLY, dest_hw=arp.ar_sha, dest_ip=arp.ar_sip, target_hw=arp.ar_sha)
        s.consume_skb(skb, L2, self.host, "arp_process")
        return pb.SKB_CONSUMED

    def arp_send(self, iface: L2Iface, op: int, *, dest_hw: bytes, dest_ip: int, target_hw: bytes) -> None:
        """arp_create() + arp_xmit(): a new frame from our interface."""
        body = ArpHdr(op, iface.mac, iface.addr, target_hw, dest_ip).to_bytes()
        skb = s.alloc_skb(s.MAX_HEADER + ARP_HLEN, origin_host=self.host, sampled=False)
        s.skb_reserve(skb, s.MAX_HEADER)
        s.skb_put_data(skb, body)
        s.skb_reset_network_header(skb)
        skb.protocol = ETH_P_ARP
        skb.dev = iface.name
        self.mib.inc("Arp", "OutRequests" if op == ARPOP_REQUEST else "OutReplies")
        self._xmit(skb, dest_hw, ETH_P_ARP)

    def arp_solicit(self, dev: str, ip: int, unicast: bytes | None, waiting=None) -> None:
        """arp_solicit(): who-has ip, broadcast (or unicast when re-probing a known entry)."""
        iface = self.ifaces[dev]
        self.arp_send(iface, ARPOP_REQUEST, dest_hw=unicast or BROADCAST_MAC, dest_ip=ip,
                      target_hw=unicast or ZERO_MAC)

    def ndisc_solicit(self, dev: str, ip: int, unicast: bytes | None, waiting=None) -> None:
        """nd_tbl's solicit: L3's ndisc_solicit() sends the Neighbour Solicitation, from the
        source of the packet waiting (when there is one), to ip's solicited-node group or,
        re-probing a known entry, to unicast."""
        saddr = 0
        if waiting is not None:
            saddr = int.from_bytes(s.skb_network_header(waiting)[8:24], "big")
        self._ndisc_solicit([(dev, ip, unicast, saddr)])

    # -- transmit -------------------------------------------------------------
    def neigh_output(self, skbs: list) -> tuple[int, int]:
        """L3's packets, network header at data, next hop in skb.nexthop."""
        accepted = dropped = 0
        for skb in skbs:
            skb.record(s.ENTER, L2, self.host, "neigh_output")
            iface = self.ifaces.get(skb.dev)
            if iface is None:
                self.drop(skb, pb.SKB_DROP_REASON_DEV_READY, "neigh_output")
                dropped += 1
                continue
            if skb.headroom() < ETH_HLEN:
                self.drop(skb, pb.SKB_DROP_REASON_DEV_HDR, "neigh_output")
                dropped += 1
                continue
            if skb.protocol != ETH_P_IPV6:
                self.neigh.output(skb, iface.name, skb.nexthop)
            elif ipv6_addr_is_multicast(skb.nexthop):  # ndisc_constructor: NUD_NOARP, ndisc_mc_map
                self._xmit(skb, ipv6_eth_mc_map(skb.nexthop), ETH_P_IPV6)
            else:
                self.nd.output(skb, iface.name, skb.nexthop)
            accepted += 1
        return accepted, dropped

    def _xmit_resolved(self, skb, lladdr: bytes) -> None:
        self._xmit(skb, lladdr, skb.protocol or ETH_P_IP)

    def _xmit(self, skb, dest: bytes, proto: int) -> None:
        """dev_hard_header() + dev_queue_xmit()."""
        iface = self.ifaces[skb.dev]
        s.skb_push_data(skb, EthHdr(dest, iface.mac, proto).to_bytes())
        s.skb_reset_mac_header(skb)
        skb.record(s.EXIT, L2, self.host, "dev_queue_xmit")
        if self._tap is not None:
            self._tap("tx", skb)
        if not self._to_dev([skb]):
            self.drop(skb, pb.SKB_DROP_REASON_QDISC_DROP, "dev_queue_xmit")


def l2_ifaces(host) -> list[L2Iface]:
    """The topology host's interfaces as L2 sees them."""
    return [L2Iface(i.name, mac_from_str(i.mac), int(i.addr.ip), i.addr.network.prefixlen, i.mtu)
            for i in host.interfaces]

