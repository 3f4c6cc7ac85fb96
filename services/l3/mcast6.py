"""IPv6 multicast group membership and Multicast Listener Discovery on a host, as
net/ipv6/mcast.c runs them on Linux 6.18.

Per device the mc_* parts of struct inet6_dev: the list of groups it listens to (struct
ifmcaddr6: the group, its users count, MAF_* flags, its report timer), newest first as
/proc/net/igmp6 and `ip -6 maddr` list them; the deleted groups still to be reported
(mc_tomb); the querier's robustness variable, query interval and response interval; the
older-version-querier deadline (mc_v1_seen); the interface-change, DAD and general-query timers.

What joins what (the callers are Addrconf and the socket layer's IPV6_JOIN_GROUP):

- ipv6_add_dev: every device ff01::1 and ff02::1; a forwarding host's (not lo) ff02::2.
- addrconf_join_solict: each address's solicited-node group, but lo's (IFF_LOOPBACK),
  before DAD starts; addrconf_leave_solict when the address goes.
- a socket (ipv6_sock_mc_join): ipv6_dev_mc_inc; leaving or closing it ipv6_dev_mc_dec.

ff02::1 and any group of a scope below link-local are never reported (MAF_NOREPORT).

MLDv2 (RFC 3810) as Linux 6.18 sent it between two namespaces over a veth:

- a join while the device is up (igmp6_group_added) sets the group's mca_crcount to
  mc_qrv (2) and starts the interface-change work (mld_ifc_event) 2 jiffies (8 ms at
  HZ=250) later; each run (mld_ifc_work → mld_send_cr) sends one report with a
  CHANGE_TO_EXCLUDE record for every group whose count is not 0 and counts it down, then
  again after a random delay below unsolicited_report_interval (mldv2_unsolicited_report_
  interval, 1 s) + 2 jiffies, mc_qrv reports in all. A leave (igmp6_leave_group) moves the
  group to mc_tomb, reported CHANGE_TO_INCLUDE as often. Groups joined while the device
  was down are reported when it comes up (ipv6_mc_up), all in one report;
- every report goes from the device's link-local address, or from :: while that is
  tentative (mld_newpack: ipv6_get_lladdr(dev, IFA_F_TENTATIVE)), to ff02::16, hop limit 1,
  traffic class and flow label 0, with a hop-by-hop header holding a Router Alert for MLD
  and a PadN; records newest group first (mc_tomb's, then mc_list's), as many as fit in
  min(mtu, 2048) bytes (mld_newpack's size), further ones in the next report;
- when a device's only link-local address completes DAD (addrconf_dad_completed's
  send_mld), ipv6_mc_dad_complete sends every group CHANGE_TO_EXCLUDE again from it
  (mld_send_initial_cr), mc_qrv times, the later ones a random delay below the interval
  + 2 jiffies apart (mld_dad_work);
- a query (__mld_query_work) counts only from a link-local source with hop limit 1 and a
  Router Alert for MLD, about :: or a group; a general MLDv2 query is answered after a
  random delay below its Maximum Response Delay + 2 jiffies (mld_gq_work: one report,
  MODE_IS_EXCLUDE for each reported group); a group-specific one (with or without sources)
  and an MLDv1 query start each group's timer (igmp6_group_queried: a random delay below
  the maximum, an earlier running one kept), which reports the group alone (mld_mca_work).
  An MLDv2 query sets mc_qrv (at least 2), the query and response intervals and mc_maxdelay
  (mld_process_v2); one with sources in a general query is ignored;
- an MLDv1 query (exactly 24 bytes, RFC 3810 8.1) switches the device to MLDv1 for
  mc_qrv * query interval + response interval (mld_set_v1_mode: 260 s by default), drops
  the MLDv2 work and deleted records (mld_process_v1); then groups are reported with MLDv1
  Reports (type 131) to the group itself (igmp6_send), a join reports at once and once more
  after a random delay below mldv1_unsolicited_report_interval (10 s), and a leave sends a
  Done (type 132) to ff02::2 if this host reported the group last (MAF_LAST_REPORTER);
  another host's MLDv1 report of a group stops our timer for it (igmp6_event_report).

Counters as mld_sendpack and igmp6_send count them: Icmp6OutMsgs, Icmp6OutType143 and
Icmp6OutMLDv2Reports (Icmp6OutGroupMembResponses, Icmp6OutGroupMembReductions for MLDv1)
once ip6_local_out took the report (which counts Ip6OutRequests); Ip6OutDiscards if not.
What comes in is counted by icmpv6_rcv (Icmp6InGroupMembQueries ...) before it gets here.

Left out: source filtering (MCAST_JOIN_SOURCE_GROUP, MCAST_MSFILTER: every group is
EXCLUDE with no sources, so no ALLOW/BLOCK records and no source-specific answers), devices
going down (ipv6_mc_down), force_mld_version but as a setting, dev_forward_change (forwarding
is fixed when the host starts), the link-layer filter (dev_mc_add: MAF_LOADED is only shown).

Timers run in tick(), the caller's timer thread; `on_timer()` is called when a deadline
earlier than the last one tick() returned is set outside it. Sending is `ip6_local_out(skb,
dev)` (Ip6Output's), the source address `lladdr(dev)` (Addrconf's ipv6_get_lladdr), both
set by the owner; without ip6_local_out reports are counted as discarded.
"""

import errno
import math
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from pktpath import skbuff as s
from pktpath.counters import Mib
from pktpath.pb import skbuff_pb2
from pktpath.services.l3.ipv6 import ETH_P_IPV6, icmp6_out_stats
from pktpath.wire.addr import (
    IN6ADDR_LINKLOCAL_ALLROUTERS, IPV6_ADDR_ANY, IPV6_ADDR_LINKLOCAL, IPV6_ADDR_MC_SCOPE, IPV6_ADDR_MULTICAST,
    IPV6_ADDR_SCOPE_LINKLOCAL, ipv6_addr_is_ll_all_nodes, ipv6_addr_type,
)
from pktpath.wire.errors import WireError
from pktpath.wire.icmpv6 import (
    ICMPV6_HLEN, ICMPV6_MGM_QUERY, ICMPV6_MGM_REDUCTION, ICMPV6_MGM_REPORT, ICMPV6_MLD2_REPORT, MLD2_ALL_MCR,
    MLD2_CHANGE_TO_EXCLUDE, MLD2_CHANGE_TO_INCLUDE, MLD2_MODE_IS_EXCLUDE, MLD_EXP_MIN_LIMIT, MLD_HOP_LIMIT,
    MLD_V1_QUERY_LEN, MLD_V2_QUERY_LEN_MIN, Mld2Grec, Mld2Report, MldMsg, mldv2_mrc, mldv2_qqi,
)
from pktpath.wire.ipv6 import (
    IPV6_HLEN, IPV6_MIN_MTU, IPV6_OPT_ROUTERALERT_MLD, NEXTHDR_HOP, NEXTHDR_ICMP, Ipv6Hdr, Ipv6HopOptHdr,
    Ipv6OptRouterAlert,
)

pb = skbuff_pb2
L3 = pb.LAYER_L3

# struct ifmcaddr6's mca_flags (include/net/if_inet6.h)
MAF_TIMER_RUNNING = 0x01
MAF_LAST_REPORTER = 0x02
MAF_LOADED = 0x04
MAF_NOREPORT = 0x08
MAF_GSQUERY = 0x10

HZ = 250                             # CONFIG_HZ of the reference kernel: a jiffy is 4 ms
JIFFY = 1.0 / HZ
MLD_QRV_DEFAULT = 2                  # sysctl_mld_qrv
MLD_QI_DEFAULT = 125.0               # RFC 3810 9.2, seconds
MLD_QRI_DEFAULT = 10.0               # RFC 3810 9.3
MLDV1_MRD_MAX_COMPAT = MLD_EXP_MIN_LIMIT - 1  # ms: an MLDv2 query's code read as an MLDv1 delay
MLDV1_UNSOLICITED_REPORT_INTERVAL = 10.0     # net.ipv6.conf.*.mldv1_unsolicited_report_interval (10000 ms)
MLDV2_UNSOLICITED_REPORT_INTERVAL = 1.0      # mldv2_unsolicited_report_interval (1000 ms)
MLD_REPORT_MAX = 2048                # mld_newpack: min(mtu, PAGE_SIZE / 2) bytes from the IPv6 header on
MLD_GREC_LEN = 20                    # sizeof(struct mld2_grec) (no sources)
TC_PRIO_CONTROL = 7                  # the priority MLD's skbs get
IN6ADDR_INTERFACELOCAL_ALLNODES = 0xFF01 << 112 | 1  # ff01::1
_HBH_RA = Ipv6HopOptHdr(NEXTHDR_ICMP, (Ipv6OptRouterAlert(IPV6_OPT_ROUTERALERT_MLD),)).to_bytes()
_REPORT_OVERHEAD = IPV6_HLEN + len(_HBH_RA) + ICMPV6_HLEN


@dataclass(eq=False)
class Ifmcaddr6:
    """struct ifmcaddr6: one group a device listens to (all of them EXCLUDE {}: any source)."""
    addr: int                   # mca_addr
    users: int = 1              # mca_users
    flags: int = 0              # MAF_*
    crcount: int = 0            # mca_crcount: filter-mode change reports still to send
    due: float | None = None    # mca_work: when the group's own report goes (a query's answer, MLDv1's repeat)


@dataclass
class McDev:
    """The multicast part of one struct inet6_dev, and its net.ipv6.conf.DEV MLD settings."""
    dev: str
    loopback: bool = False
    up: bool = False            # IFF_UP: groups are reported only then
    mc_list: list = field(default_factory=list)   # Ifmcaddr6, newest first
    mc_tomb: list = field(default_factory=list)   # left groups still to be reported CHANGE_TO_INCLUDE
    mc_qrv: int = MLD_QRV_DEFAULT
    mc_qi: float = MLD_QI_DEFAULT
    mc_qri: float = MLD_QRI_DEFAULT
    mc_maxdelay: float = MLDV2_UNSOLICITED_REPORT_INTERVAL
    mc_v1_seen: float | None = None   # MLDv1 mode until then
    mc_ifc_count: int = 0
    mc_dad_count: int = 0
    ifc_due: float | None = None      # mc_ifc_work
    dad_due: float | None = None      # mc_dad_work
    gq_due: float | None = None       # mc_gq_work (mc_gq_running while set)
    force_mld_version: int = 0
    mldv1_unsolicited_report_interval: float = MLDV1_UNSOLICITED_REPORT_INTERVAL
    mldv2_unsolicited_report_interval: float = MLDV2_UNSOLICITED_REPORT_INTERVAL

    def find(self, addr: int) -> Ifmcaddr6 | None:
        return next((mc for mc in self.mc_list if mc.addr == addr), None)


class _Report:
    """An MLDv2 report being filled (mld_newpack's skb): its records and the room left."""

    def __init__(self, dev: str, mtu: int) -> None:
        self.dev = dev
        self.records: list[Mld2Grec] = []
        self.room = min(mtu, MLD_REPORT_MAX) - _REPORT_OVERHEAD  # skb_availroom after the header


class Mcast6:
    """The host's IPv6 multicast lists and MLD (see the module's docstring)."""

    def __init__(self, host: str = "", *, mib: Mib | None = None, clock: Callable[[], float] = time.monotonic,
                 rand: Callable[[], float] = random.random, on_timer: Callable[[], None] | None = None) -> None:
        self.host = host
        self.mib = mib if mib is not None else Mib()
        self.ip6_local_out: Callable[[s.SkBuff, str], int] | None = None
        self.lladdr: Callable[[str], int] = lambda dev: 0   # ipv6_get_lladdr(dev, IFA_F_TENTATIVE), 0: none
        self.dev_mtu: dict[str, int] = {}                   # dev->mtu (1500 if unknown)
        self._clock = clock
        self._rand = rand
        self._on_timer = on_timer
        self._lock = threading.RLock()
        self._devs: dict[str, McDev] = {}
        self._pending: list[tuple] = []  # (dev, kind, ...): what to send once the lock is let go
        self._next: float | None = None

    # -- devices ----------------------------------------------------------------------------
    def ipv6_mc_init_dev(self, dev: str, *, loopback: bool = False) -> McDev:
        """ipv6_mc_init_dev(): the device's empty list and ipv6_mc_reset()'s defaults."""
        with self._lock:
            d = self._devs.get(dev)
            if d is None:
                d = self._devs[dev] = McDev(dev, loopback=loopback)
                self.ipv6_mc_reset(d)
            return d

    def ipv6_mc_reset(self, d: McDev) -> None:
        """ipv6_mc_reset(): mc_qrv, the query and response intervals back to the defaults, no
        MLDv1 querier seen, mc_maxdelay the unsolicited report interval."""
        d.mc_qrv, d.mc_qi, d.mc_qri, d.mc_v1_seen = MLD_QRV_DEFAULT, MLD_QI_DEFAULT, MLD_QRI_DEFAULT, None
        d.mc_maxdelay = self.unsolicited_report_interval(d)

    def ipv6_mc_up(self, dev: str) -> None:
        """ipv6_mc_up(): the device came up; every group it joined is reported now
        (mld_del_delrec, igmp6_group_added)."""
        with self._lock:
            d = self._devs.get(dev)
            if d is None:
                return
            d.up = True
            self.ipv6_mc_reset(d)
            for mc in d.mc_list:
                self.mld_del_delrec(d, mc)
                self.igmp6_group_added(d, mc)
        self._flush()

    def devices(self) -> list[str]:
        with self._lock:
            return list(self._devs)

    def groups(self, dev: str) -> list[Ifmcaddr6]:
        """The device's groups, newest first (a copy of each, as /proc/net/igmp6 reads them)."""
        with self._lock:
            d = self._devs.get(dev)
            return [Ifmcaddr6(mc.addr, mc.users, mc.flags, mc.crcount, mc.due) for mc in d.mc_list] if d else []

    # -- the list ------------------------------------------------------------------------------
    def ipv6_dev_mc_inc(self, dev: str, addr: int) -> int:
        """__ipv6_dev_mc_inc(): one more user of `addr` on dev; a new group goes first in the
        list and is reported (igmp6_group_added), taken back from mc_tomb if it was just left.
        Returns the errno: EINVAL when dev has no IPv6 (in6_dev_get found no inet6_dev)."""
        with self._lock:
            d = self._devs.get(dev)
            if d is None:
                return errno.EINVAL
            mc = d.find(addr)
            if mc is not None:
                mc.users += 1
                return 0
            mc = Ifmcaddr6(addr)  # mca_alloc
            if ipv6_addr_is_ll_all_nodes(addr) or IPV6_ADDR_MC_SCOPE(addr) < IPV6_ADDR_SCOPE_LINKLOCAL:
                mc.flags |= MAF_NOREPORT
            d.mc_list.insert(0, mc)
            self.mld_del_delrec(d, mc)
            self.igmp6_group_added(d, mc)
        self._flush()
        return 0

    def ipv6_dev_mc_dec(self, dev: str, addr: int) -> int:
        """__ipv6_dev_mc_dec(): one user fewer; the last one's leaving drops the group
        (igmp6_group_dropped). Returns the errno: ENODEV without the device, ENOENT if it had
        not joined `addr`."""
        with self._lock:
            d = self._devs.get(dev)
            if d is None:
                return errno.ENODEV
            mc = d.find(addr)
            if mc is None:
                return errno.ENOENT
            mc.users -= 1
            if mc.users == 0:
                d.mc_list.remove(mc)
                self.igmp6_group_dropped(d, mc)
        self._flush()
        return 0

    def ipv6_chk_mcast_addr(self, dev: str, group: int) -> bool:
        """ipv6_chk_mcast_addr(dev, group, NULL): has dev joined `group`? (ip6_mc_input delivers
        a packet to a group only then; no source filters, so any source is in.)"""
        with self._lock:
            d = self._devs.get(dev)
            return d is not None and d.find(group) is not None

    # -- joining and leaving -----------------------------------------------------------------
    def igmp6_group_added(self, d: McDev, mc: Ifmcaddr6) -> None:
        """igmp6_group_added(): nothing for a scope below link-local; MAF_LOADED (dev_mc_add);
        reported if the device is up and the group is: MLDv1 at once (igmp6_join_group),
        MLDv2 by the interface-change work, mc_qrv times."""
        if IPV6_ADDR_MC_SCOPE(mc.addr) < IPV6_ADDR_SCOPE_LINKLOCAL:
            return
        mc.flags |= MAF_LOADED
        if not d.up or mc.flags & MAF_NOREPORT:
            return
        if self.mld_in_v1_mode(d):
            self.igmp6_join_group(d, mc)
            return
        mc.crcount = d.mc_qrv  # EXCLUDE: a filter-mode change to report
        self.mld_ifc_event(d)

    def igmp6_group_dropped(self, d: McDev, mc: Ifmcaddr6) -> None:
        """igmp6_group_dropped(): reported as left (igmp6_leave_group) unless never reported;
        its timer stopped."""
        if IPV6_ADDR_MC_SCOPE(mc.addr) < IPV6_ADDR_SCOPE_LINKLOCAL:
            return
        mc.flags &= ~MAF_LOADED
        if mc.flags & MAF_NOREPORT:
            return
        self.igmp6_leave_group(d, mc)
        mc.due = None

    def igmp6_join_group(self, d: McDev, mc: Ifmcaddr6) -> None:
        """igmp6_join_group() (MLDv1): a Report now, another after a random delay below the
        unsolicited report interval (or when the running timer says)."""
        if mc.flags & MAF_NOREPORT:
            return
        self.igmp6_send(d, mc.addr, ICMPV6_MGM_REPORT)
        delay = self._random_below(self.unsolicited_report_interval(d))
        now = self._clock()
        if mc.due is not None:
            delay = max(mc.due - now, 0.0)
        self._mod(mc, now + delay)
        mc.flags |= MAF_TIMER_RUNNING | MAF_LAST_REPORTER

    def igmp6_leave_group(self, d: McDev, mc: Ifmcaddr6) -> None:
        """igmp6_leave_group(): MLDv1 a Done if we reported the group last; MLDv2 the group to
        mc_tomb (mld_add_delrec, mc_qrv CHANGE_TO_INCLUDE reports) and the interface-change work."""
        if self.mld_in_v1_mode(d):
            if mc.flags & MAF_LAST_REPORTER:
                self.igmp6_send(d, mc.addr, ICMPV6_MGM_REDUCTION)
            return
        self.mld_add_delrec(d, mc)
        self.mld_ifc_event(d)

    def mld_add_delrec(self, d: McDev, mc: Ifmcaddr6) -> None:
        """mld_add_delrec(): a deleted record with mca_crcount mc_qrv, first in mc_tomb."""
        d.mc_tomb.insert(0, Ifmcaddr6(mc.addr, users=0, crcount=d.mc_qrv))

    def mld_del_delrec(self, d: McDev, mc: Ifmcaddr6) -> None:
        """mld_del_delrec(): a group joined again while its deleted record waits: the record
        goes, and the group's change is reported mc_qrv times."""
        for rec in d.mc_tomb:
            if rec.addr == mc.addr:
                d.mc_tomb.remove(rec)
                mc.crcount = d.mc_qrv
                return

    def mld_clear_delrec(self, d: McDev) -> None:
        d.mc_tomb.clear()

    # -- MLD's mode and intervals ----------------------------------------------------------------
    def mld_in_v1_mode(self, d: McDev) -> bool:
        """mld_in_v1_mode(): force_mld_version, else whether an MLDv1 querier was heard lately."""
        if d.force_mld_version == 2:
            return False
        if d.force_mld_version == 1:
            return True
        return d.mc_v1_seen is not None and self._clock() < d.mc_v1_seen

    def unsolicited_report_interval(self, d: McDev) -> float:
        """unsolicited_report_interval(): MLDv1's or MLDv2's setting, at least a jiffy."""
        iv = d.mldv1_unsolicited_report_interval if self.mld_in_v1_mode(d) else d.mldv2_unsolicited_report_interval
        return iv if iv > 0 else JIFFY

    # -- work ---------------------------------------------------------------------------------
    def _random_below(self, delay: float) -> float:
        """get_random_u32_below() of `delay` in whole jiffies (rounded up, as msecs_to_jiffies
        does, at least 1), in seconds: 0 for a jiffy."""
        jiffies = max(1, math.ceil(delay * HZ - 1e-9))
        return int(self._rand() * jiffies) * JIFFY

    def _set_due(self, due: float) -> None:
        """A new deadline: wake the caller's timer thread if it is earlier than it knows of."""
        earlier = self._next is None or due < self._next
        if earlier:
            self._next = due
            if self._on_timer is not None:
                self._on_timer()

    def _mod(self, mc: Ifmcaddr6, due: float) -> None:
        """mod_delayed_work() of the group's mca_work."""
        mc.due = due
        self._set_due(due)

    def mld_ifc_event(self, d: McDev) -> None:
        """mld_ifc_event(): MLDv2 only; mc_qrv interface-change reports, the first 2 jiffies on."""
        if self.mld_in_v1_mode(d):
            return
        d.mc_ifc_count = d.mc_qrv
        self.mld_ifc_start_work(d, JIFFY)

    def mld_ifc_start_work(self, d: McDev, delay: float) -> None:
        d.ifc_due = self._clock() + self._random_below(delay) + 2 * JIFFY
        self._set_due(d.ifc_due)

    def mld_ifc_work(self, d: McDev) -> None:
        """mld_ifc_work(): a change report (mld_send_cr), and the next while any are left."""
        self.mld_send_cr(d)
        if d.mc_ifc_count:
            d.mc_ifc_count -= 1
            if d.mc_ifc_count:
                self.mld_ifc_start_work(d, self.unsolicited_report_interval(d))

    def ipv6_mc_dad_complete(self, dev: str) -> None:
        """ipv6_mc_dad_complete(): the link-local address is ours now; every group reported
        again from it, mc_qrv times (mld_send_initial_cr, then mld_dad_work)."""
        with self._lock:
            d = self._devs.get(dev)
            if d is None:
                return
            d.mc_dad_count = d.mc_qrv
            if d.mc_dad_count:
                self.mld_send_initial_cr(d)
                d.mc_dad_count -= 1
                if d.mc_dad_count:
                    self.mld_dad_start_work(d, self.unsolicited_report_interval(d))
        self._flush()

    def mld_dad_start_work(self, d: McDev, delay: float) -> None:
        d.dad_due = self._clock() + self._random_below(delay) + 2 * JIFFY
        self._set_due(d.dad_due)

    def mld_dad_work(self, d: McDev) -> None:
        self.mld_send_initial_cr(d)
        if d.mc_dad_count:
            d.mc_dad_count -= 1
            if d.mc_dad_count:
                self.mld_dad_start_work(d, self.unsolicited_report_interval(d))

    def mld_gq_start_work(self, d: McDev) -> None:
        """mld_gq_start_work(): the answer to a general query, a random delay below mc_maxdelay on."""
        d.gq_due = self._clock() + self._random_below(d.mc_maxdelay) + 2 * JIFFY
        self._set_due(d.gq_due)

    def mld_gq_work(self, d: McDev) -> None:
        self.mld_send_report(d, None)

    def mld_mca_work(self, d: McDev, mc: Ifmcaddr6) -> None:
        """mld_mca_work(): the group's own report (MLDv1's Report, else an MLDv2 report of it)."""
        if self.mld_in_v1_mode(d):
            self.igmp6_send(d, mc.addr, ICMPV6_MGM_REPORT)
        else:
            self.mld_send_report(d, mc)
        mc.flags |= MAF_LAST_REPORTER
        mc.flags &= ~MAF_TIMER_RUNNING

    # -- reports --------------------------------------------------------------------------------
    def add_grec(self, rep: _Report | None, d: McDev, mc: Ifmcaddr6, type_: int,
                 crsend: bool = False) -> _Report | None:
        """add_grec() for a group without sources: a record when the group is reported and
        either its change is still to be told, this answers a query, or crsend; a report
        that has no room for it is sent and a new one begun (add_grhead, mld_newpack)."""
        if mc.flags & MAF_NOREPORT:
            return rep
        mtu = self.dev_mtu.get(d.dev, 1500)
        if mtu < IPV6_MIN_MTU:
            return rep
        isquery = type_ == MLD2_MODE_IS_EXCLUDE
        if mc.crcount or isquery or crsend:
            if rep is not None and rep.room < MLD_GREC_LEN:
                self.mld_sendpack(rep)
                rep = None
            if rep is None:
                rep = _Report(d.dev, mtu)
            rep.records.append(Mld2Grec(type_, mc.addr))
            rep.room -= MLD_GREC_LEN
        if isquery:
            mc.flags &= ~MAF_GSQUERY
        return rep

    def mld_send_report(self, d: McDev, mc: Ifmcaddr6 | None) -> None:
        """mld_send_report(): MODE_IS_EXCLUDE for the group, or (a general query's answer) for
        every reported group."""
        rep = None
        for pmc in d.mc_list if mc is None else (mc,):
            if pmc.flags & MAF_NOREPORT:
                continue
            rep = self.add_grec(rep, d, pmc, MLD2_MODE_IS_EXCLUDE)
        if rep is not None:
            self.mld_sendpack(rep)

    def mld_send_cr(self, d: McDev) -> None:
        """mld_send_cr(): CHANGE_TO_INCLUDE for each deleted group with reports left (dropped
        from mc_tomb after its last), then CHANGE_TO_EXCLUDE for each joined one; one report."""
        rep = None
        for pmc in list(d.mc_tomb):
            if pmc.crcount:
                rep = self.add_grec(rep, d, pmc, MLD2_CHANGE_TO_INCLUDE)
                pmc.crcount -= 1
            if pmc.crcount == 0:
                d.mc_tomb.remove(pmc)
        for pmc in d.mc_list:
            if pmc.crcount:
                rep = self.add_grec(rep, d, pmc, MLD2_CHANGE_TO_EXCLUDE)
                pmc.crcount -= 1
        if rep is not None:
            self.mld_sendpack(rep)

    def mld_send_initial_cr(self, d: McDev) -> None:
        """mld_send_initial_cr(): MLDv2 only; CHANGE_TO_EXCLUDE for every reported group."""
        if self.mld_in_v1_mode(d):
            return
        rep = None
        for pmc in d.mc_list:
            rep = self.add_grec(rep, d, pmc, MLD2_CHANGE_TO_EXCLUDE, crsend=True)
        if rep is not None:
            self.mld_sendpack(rep)

    def mld_sendpack(self, rep: _Report) -> None:
        """mld_sendpack(): the report, sent when the lock is let go."""
        self._pending.append((rep.dev, ICMPV6_MLD2_REPORT, tuple(rep.records)))

    def igmp6_send(self, d: McDev, addr: int, type_: int) -> None:
        """igmp6_send(): an MLDv1 Report (to the group) or Done (to ff02::2) about `addr`."""
        self._pending.append((d.dev, type_, addr))

    # -- receiving ------------------------------------------------------------------------------
    def igmp6_event(self, skb, hdr: Ipv6Hdr) -> int:
        """What icmpv6_rcv hands MLD (skb data at the ICMPv6 header): a query to
        igmp6_event_query, an MLDv1 report to igmp6_event_report. Both consume the skb
        whatever they make of it: returns 0."""
        data = skb.payload()
        if data[0] == ICMPV6_MGM_QUERY:
            self.igmp6_event_query(skb, hdr)
        elif data[0] == ICMPV6_MGM_REPORT:
            self.igmp6_event_report(skb, hdr)
        return 0

    @staticmethod
    def _router_alert(skb, hdr: Ipv6Hdr) -> int | None:
        """IP6CB(skb)->ra when IP6SKB_ROUTERALERT is set: the Router Alert of the hop-by-hop
        header right after the IPv6 header (ipv6_hop_ra), read again from the packet."""
        if hdr.nexthdr != NEXTHDR_HOP:
            return None
        try:
            opts = Ipv6HopOptHdr.from_bytes(s.skb_network_header(skb), IPV6_HLEN, daddr=hdr.daddr).options
        except WireError:
            return None
        return next((o.value for o in opts if type(o) is Ipv6OptRouterAlert), None)

    def igmp6_event_query(self, skb, hdr: Ipv6Hdr) -> None:
        """igmp6_event_query() → __mld_query_work(): see the module's docstring."""
        data = bytes(skb.payload())
        n = len(data)  # payload_len less the extension headers: the whole message
        if n < ICMPV6_HLEN + 16:
            return
        if not ipv6_addr_type(hdr.saddr) & IPV6_ADDR_LINKLOCAL or hdr.hop_limit != MLD_HOP_LIMIT or \
                self._router_alert(skb, hdr) != IPV6_OPT_ROUTERALERT_MLD:
            return  # RFC 3810 6.2
        group = int.from_bytes(data[8:24], "big")
        group_type = ipv6_addr_type(group)
        if group_type != IPV6_ADDR_ANY and not group_type & IPV6_ADDR_MULTICAST:
            return
        with self._lock:
            d = self._devs.get(skb.dev)
            if d is None:
                return
            mark = False
            srcs: list[int] = []
            if n == MLD_V1_QUERY_LEN or self.mld_in_v1_mode(d):
                max_delay = self.mld_process_v1(d, MldMsg.from_bytes(data).maxdelay, n == MLD_V1_QUERY_LEN)
                if max_delay is None:
                    return
            elif n >= MLD_V2_QUERY_LEN_MIN:
                mrc = int.from_bytes(data[4:6], "big")
                nsrcs = int.from_bytes(data[26:28], "big")
                max_delay = self.mld_process_v2(d, mrc, data[24] & 7, data[25])
                if group_type == IPV6_ADDR_ANY:
                    if not nsrcs:  # sources in a general query: ignored
                        self.mld_gq_start_work(d)
                    return
                if nsrcs:
                    if n < MLD_V2_QUERY_LEN_MIN + 16 * nsrcs:
                        return
                    mark = True
                    srcs = [int.from_bytes(data[i:i + 16], "big") for i in range(28, 28 + 16 * nsrcs, 16)]
            else:
                return
            if group_type == IPV6_ADDR_ANY:
                for mc in d.mc_list:
                    self.igmp6_group_queried(mc, max_delay)
                return
            mc = d.find(group)
            if mc is None:
                return
            if mc.flags & MAF_TIMER_RUNNING:
                if not mark:  # gsquery <- gsquery && mark
                    mc.flags &= ~MAF_GSQUERY
            elif mark:
                mc.flags |= MAF_GSQUERY
            else:
                mc.flags &= ~MAF_GSQUERY
            if not mc.flags & MAF_GSQUERY or self.mld_marksources(mc, srcs):
                self.igmp6_group_queried(mc, max_delay)

    def mld_marksources(self, mc: Ifmcaddr6, srcs: list[int]) -> bool:
        """mld_marksources() → mld_xmarksources() for an EXCLUDE group without sources: none of
        the sources asked about is excluded, so it is answered."""
        mc.flags &= ~MAF_GSQUERY
        return bool(srcs)

    def mld_process_v1(self, d: McDev, maxdelay_ms: int, v1_query: bool) -> float | None:
        """mld_process_v1(): the maximum response delay (at least a jiffy; an MLDv2 query's code
        taken as milliseconds, at most 32767); an MLDv1 query switches to MLDv1 mode; the MLDv2
        work and deleted records dropped. None: ignored (force_mld_version 2)."""
        if d.force_mld_version == 2:
            return None
        if not v1_query:
            maxdelay_ms = min(maxdelay_ms, MLDV1_MRD_MAX_COMPAT)
        max_delay = max(maxdelay_ms / 1000, JIFFY)
        if v1_query:
            d.mc_v1_seen = self._clock() + d.mc_qrv * d.mc_qi + d.mc_qri  # mld_set_v1_mode
        d.gq_due = None              # mld_gq_stop_work
        d.mc_ifc_count, d.ifc_due = 0, None  # mld_ifc_stop_work
        self.mld_clear_delrec(d)
        return max_delay

    def mld_process_v2(self, d: McDev, mrc: int, qrv: int, qqic: int) -> float:
        """mld_process_v2(): the maximum response delay (mldv2_mrc, at least a jiffy), which
        becomes mc_maxdelay; the querier's robustness (mld_update_qrv: at least 2), query
        interval and query response interval."""
        max_delay = max(mldv2_mrc(mrc) / 1000, JIFFY)
        if qrv > 0:
            d.mc_qrv = qrv
        d.mc_qrv = max(d.mc_qrv, MLD_QRV_DEFAULT)  # "IPv6: MLD: clamping QRV" up to min(2, sysctl_mld_qrv)
        d.mc_qi = float(mldv2_qqi(qqic))
        d.mc_qri = mldv2_mrc(mrc) / 1000
        d.mc_maxdelay = max_delay
        return max_delay

    def igmp6_group_queried(self, mc: Ifmcaddr6, resptime: float) -> None:
        """igmp6_group_queried(): not ff02::1 nor a scope below link-local; the group's timer
        to a random delay below resptime, unless it would already go sooner."""
        if ipv6_addr_is_ll_all_nodes(mc.addr) or IPV6_ADDR_MC_SCOPE(mc.addr) < IPV6_ADDR_SCOPE_LINKLOCAL:
            return
        now = self._clock()
        delay = resptime
        if mc.due is not None:
            delay = mc.due - now
        if delay >= resptime:
            delay = self._random_below(resptime)
        self._mod(mc, now + max(delay, 0.0))
        mc.flags |= MAF_TIMER_RUNNING

    def igmp6_event_report(self, skb, hdr: Ipv6Hdr) -> None:
        """igmp6_event_report() → __mld_report_work(): another host's MLDv1 Report of a group
        (multicast, from :: or a link-local address; not our own looped back) stops our timer
        for it: someone told the router already."""
        if skb.pkt_type == pb.PACKET_LOOPBACK or skb.pkt_type not in (pb.PACKET_MULTICAST, pb.PACKET_BROADCAST):
            return
        data = skb.payload()
        if len(data) < MLD_V1_QUERY_LEN:
            return
        addr_type = ipv6_addr_type(hdr.saddr)
        if addr_type != IPV6_ADDR_ANY and not addr_type & IPV6_ADDR_LINKLOCAL:
            return
        group = int.from_bytes(data[8:24], "big")
        with self._lock:
            d = self._devs.get(skb.dev)
            mc = d.find(group) if d is not None else None
            if mc is not None:
                mc.due = None
                mc.flags &= ~(MAF_LAST_REPORTER | MAF_TIMER_RUNNING)

    # -- timers -------------------------------------------------------------------------------
    def tick(self) -> float | None:
        """Run every due work (interface change, DAD, general query, each group's); return the
        next deadline, or None when nothing waits."""
        now = self._clock()
        with self._lock:
            for d in self._devs.values():
                if d.gq_due is not None and d.gq_due <= now:
                    d.gq_due = None
                    self.mld_gq_work(d)
                if d.ifc_due is not None and d.ifc_due <= now:
                    d.ifc_due = None
                    self.mld_ifc_work(d)
                if d.dad_due is not None and d.dad_due <= now:
                    d.dad_due = None
                    self.mld_dad_work(d)
                for mc in list(d.mc_list):
                    if mc.due is not None and mc.due <= now:
                        mc.due = None
                        self.mld_mca_work(d, mc)
            dues = [t for d in self._devs.values() for t in (d.gq_due, d.ifc_due, d.dad_due) if t is not None]
            dues += [mc.due for d in self._devs.values() for mc in d.mc_list if mc.due is not None]
            self._next = min(dues) if dues else None
            nxt = self._next
        self._flush()
        return nxt

    # -- sending --------------------------------------------------------------------------------
    def _flush(self) -> None:
        """Send what the work queued, outside the lock (the source address is Addrconf's)."""
        with self._lock:
            pending, self._pending = self._pending, []
        for dev, type_, what in pending:
            if type_ == ICMPV6_MLD2_REPORT:
                self._send(dev, type_, MLD2_ALL_MCR, lambda saddr, daddr: Mld2Report(what).to_bytes(saddr, daddr))
            else:
                daddr = IN6ADDR_LINKLOCAL_ALLROUTERS if type_ == ICMPV6_MGM_REDUCTION else what
                self._send(dev, type_, daddr, lambda saddr, daddr: MldMsg(type_, what).to_bytes(saddr, daddr))

    def _send(self, dev: str, type_: int, daddr: int, body: Callable[[int, int], bytes]) -> int:
        """mld_newpack + mld_sendpack, igmp6_send: from dev's link-local address (:: while it is
        tentative), hop limit 1, the Router Alert, out of dev to daddr (icmp6_dst_alloc). The
        errno ip6_local_out returned; Icmp6Out* counted on success, Ip6OutDiscards else."""
        saddr = self.lladdr(dev)
        msg = body(saddr, daddr)
        skb = s.alloc_skb(s.MAX_HEADER + _REPORT_OVERHEAD + len(msg), origin_host=self.host, sampled=False)
        s.skb_reserve(skb, s.MAX_HEADER + IPV6_HLEN + len(_HBH_RA))
        s.skb_put_data(skb, msg)
        s.skb_reset_transport_header(skb)
        s.skb_push_data(skb, _HBH_RA)
        s.skb_push_data(skb, Ipv6Hdr(saddr, daddr, NEXTHDR_HOP, hop_limit=MLD_HOP_LIMIT).to_bytes(
            len(_HBH_RA) + len(msg)))
        s.skb_reset_network_header(skb)
        skb.protocol = ETH_P_IPV6
        skb.priority = TC_PRIO_CONTROL
        skb.dev = dev
        skb.nexthop = daddr
        skb.record(s.EXIT, L3, self.host, "mld_sendpack" if type_ == ICMPV6_MLD2_REPORT else "igmp6_send")
        if self.ip6_local_out is None:
            s.kfree_skb_reason(skb, pb.SKB_DROP_REASON_NOT_SPECIFIED, L3, self.host, "mld_sendpack")
            err = errno.ENETUNREACH
        else:
            err = self.ip6_local_out(skb, dev)
        if err:
            self.mib.inc("Ip6", "OutDiscards")
        else:
            icmp6_out_stats(self.mib, type_)
        return err
