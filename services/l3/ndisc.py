"""IPv6 neighbour discovery's protocol side and Duplicate Address Detection, as Linux 6.18 runs
them (net/ipv6/ndisc.c, net/ipv6/addrconf.c).

The neighbour table (nd_tbl: NUD states, timers, the queue) is L2's (services/l2/neighbour.py);
this module parses and answers NDP messages and meets that table at two seams:

- `neigh_update(dev, ip, lladdr, state, flags, create)`: L2's neigh_update() on nd_tbl, called
  synchronously, as ndisc_update() does, before any answer goes out (so the answer finds the
  entry). It may return False to say it found no entry and created none (create=False), which
  is __neigh_lookup() returning NULL: the kernel then answers nothing and drops the message.
- `ndisc_solicit(dev, target, unicast, saddr)`: what L2's table calls when it must resolve or
  re-probe an address.

Receive (ndisc_rcv, after Ipv6 ran ndisc_validate: hop limit 255, code 0, lengths, options):

- NS (ndisc_recv_ns). For an address of ours that is tentative: a DAD probe (from ::) is a
  conflict (addrconf_dad_failure) unless it carries the nonce of our own probe (RFC 7527: our
  probe looped back); any other NS is ignored (NOT_SPECIFIED), as RFC 4862 5.4.3 asks. For a
  valid one, a DAD probe gets an NA to ff02::1 (override, not solicited), a normal NS updates the
  sender's entry (NUD_STALE, OVERRIDE | WEAK_OVERRIDE, created unless the NS was multicast and
  without a source link-layer address) and gets an NA to the sender: solicited; override and the
  target link-layer address only when the NS was multicast (a unicast NS gets S alone: Linux
  6.18 seen on the wire); the router flag when forwarding. A forwarding host's subnet-router
  anycast addresses are answered too, never with override, a multicast NS after a random delay
  below proxy_delay (0.8 s: pneigh_enqueue; the message is dropped NOT_SPECIFIED and its clone
  answered later). Any other target: IPV6_NDISC_NS_OTHERHOST. Answered: SKB_CONSUMED; a DAD
  probe answered for a valid address still returns NOT_SPECIFIED, as the kernel's `goto out`.
- NA (ndisc_recv_na): for a tentative address of ours, a DAD conflict; for a valid one, ignored
  with the kernel's warning; otherwise neigh_update (no create; REACHABLE if solicited, else
  STALE; WEAK_OVERRIDE, OVERRIDE if O, OVERRIDE_ISROUTER, ISROUTER if R): consumed when an entry
  was there, NOT_SPECIFIED when not.
- RS (ndisc_recv_rs): a host (not forwarding) drops it NOT_SPECIFIED; a router updates the
  sender's entry (STALE, OVERRIDE | WEAK_OVERRIDE | OVERRIDE_ISROUTER: not a router) and
  consumes it. (An RS to ff02::2 never reaches a host: ip6_mc_input drops it, Ipv6's part.)
  radvd, on a router that advertises, reads every RS on its raw socket before that (radvd_rcv).
- RA (ndisc_router_discovery): see ndisc_router_discovery; a router (accept_ra 1) only updates
  the sender's entry (STALE, a router) and consumes it.
- Redirect (ndisc_redirect_rcv): without a redirected header NOT_SPECIFIED; with one the
  icmpv6_notify checks on the header it quotes, then consumed. Either way ip6_redirect: a host
  with accept_redirects (its default; never a forwarding one) takes a valid Redirect from its
  current first hop for the destination (ip6_route_redirect) and installs an exception route
  through the target (Route6.rt6_insert_exception), the target's entry STALE and, unless it is
  the destination itself, a router. Linux 6.18 after a router's redirect:
  `ip -6 route get 2001:db8:77::1` `... from :: via fe80::ff:fe00:102 dev eth0 src 2001:db8:1::1
  metric 1024 pref medium`, `fe80::ff:fe00:102 dev eth0 lladdr 02:00:00:00:01:02 router STALE`,
  Icmp6InRedirects 1; the exception gone 30 s later, used or not (the fib6 gc, Route6).

Send: ndisc_send_ns, ndisc_send_na, ndisc_send_rs, ndisc_send_redirect build the message with
the wire codecs, an IPv6 header as ip6_nd_hdr() does (hop limit 255, traffic class 0, next
header 58) and hand it to `ip6_local_out(skb, dev)`, next hop its destination; Icmp6Out* are
counted when it returns 0. A router forwarding a packet back out of the link it came in on
(ip6_forward) redirects its on-link source to the better first hop: from the link-local
address, the target's link-layer address if L2 has it valid, the packet in the redirected
header (up to 1280 bytes in all), rate-limited per destination and per source (a burst of 6,
then one a second: inet_peer_xrlim_allow, the buckets ICMPv6 errors use). Linux 6.18, a router
with one link: to `ping 2001:db8:77::1` from 2001:db8:1::1 (its route via fe80::ff:fe00:102)
a Redirect of 160 bytes (target fe80::ff:fe00:102, TLLA 02:00:00:00:01:02, redirected header
of 112 bytes: the 104-byte echo request, hop limit 64), then the request forwarded.

DAD (RFC 4862 5.4, addrconf_dad_start ... addrconf_dad_completed): each tentative address, after
a random delay below rtr_solicit_delay (1 s), sends dad_transmits (1) NS from :: to its
solicited-node group, without a source link-layer address and with a 6-byte nonce
(enhanced_dad 1); retrans_time (1 s) after the last one with no conflict it is valid. A conflict
logs the kernel's "IPv6: DEV: IPv6 duplicate address ADDR used by MAC detected!" and leaves the
address IFA_F_TENTATIVE | IFA_F_DADFAILED (a SLAAC address is deleted). When a link-local
address completes DAD on a host that accepts RAs, it sends a Router Solicitation from it and
more with RFC 7559's backoff (4 s, doubling, at most an hour) until an RA comes
(addrconf_rs_timer).

Router advertisements sent (a router host playing radvd). The Linux kernel never sends RAs: a
daemon does, radvd on a raw ICMPv6 socket. pktpath's router plays radvd 2.19 with radvd's
defaults on each interface the topology marks `advertise` (radvd_conf(): AdvSendAdvert on and
a `prefix` block for each prefix of the interface's addr6), as Linux 6.18 with radvd showed on
the wire between two namespaces:

- the RA (send.c): hop limit 64, no M/O flag, medium preference, router lifetime
  AdvDefaultLifetime 1800 (3 * MaxRtrAdvInterval; 0 with IPv6 forwarding off), reachable time
  and retrans timer 0; a prefix information option per prefix (L and A, valid 86400, preferred
  14400), the MTU option only if AdvLinkMTU is set (0 by default), the source link-layer address
  last. From the interface's link-local address, hop limit 255, through ra_output (radvd's raw
  socket: Icmp6OutRouterAdvertisements; the multicast copy loops back, and the router's kernel
  learns itself as a router neighbour, as Linux's `ip -6 neigh` shows);
- unsolicited to ff02::1 once the link-local address has passed DAD (kickoff_adverts), the
  first MAX_INITIAL_RTR_ADVERTISEMENTS (3) MAX_INITIAL_RTR_ADVERT_INTERVAL (16 s) apart exactly,
  then every MinRtrAdvInterval..MaxRtrAdvInterval (198..600 s, uniform);
- solicited (process_rs): AdvRASolicitedUnicast being on, an RS from an address is answered at
  once with a unicast RA to it (RFC 7772); an RS from :: with the multicast RA at once, or, within
  MIN_DELAY_BETWEEN_RAS (3 s) of the last multicast one, 3 s after it plus a random delay below
  MAX_RA_DELAY_TIME (0.5 s: RFC 4861 6.2.6; radvd delays only then).
- radvd_stop_adverts(): the final RA with a router lifetime of 0 that radvd sends on exit.

Lifetimes: an RA's routes carry their expiry (Fib6Info.expires, RTF_EXPIRES: `ip -6 route`'s
`expires NNNsec` counts down) and go at the fib6 gc's next run once past (Route6); an address's
valid and preferred lifetimes count from its tstamp (`valid_lft NNNsec preferred_lft NNNsec`),
addrconf_verify deprecates it when the preferred one ends and deletes it when the valid one does.
Linux 6.18 after an RA (router lifetime 1800, MTU 1400, prefix valid 86400 preferred 14400) and
3 s: `default via fe80::ff:fe00:9fe dev D proto ra metric 1024 expires 1796sec mtu 1400 hoplimit
64 pref medium`, `2001:db8:9::/64 dev D proto kernel metric 256 expires 86396sec pref medium`,
`inet6 2001:db8:9::ff:fe00:901/64 scope global dynamic mngtmpaddr` `valid_lft 86397sec
preferred_lft 14397sec`; with valid 8 and preferred 3, `deprecated` and `preferred_lft 0sec` after
3 s, the address gone after 8.

Timers run in tick(), the caller's timer thread: it returns the next deadline. `on_timer()`,
if given, is called when a deadline earlier than the last one tick() returned is set from
outside tick() (a received message), so that thread can wake.

Left out: proxy NDP (proxy_ndp 0), optimistic DAD (optimistic_dad 0), stable-privacy and
temporary addresses (addr_gen_mode eui64, use_tempaddr 0), accept_dad 2, accept_untracked_na
(0), rt6_clean_tohost when
an NA says a router became a host, an RA's route-information options (only prefix length 0
passes accept_ra_rt_info_max_plen 0) and user options, and applying an RA's reachable time and
retrans timer (nd_tbl's parameters are L2's: they are kept in `ra[dev].nd_parms` for it). Of
redirects: dst_confirm_neigh of the first hop, the entry dst_neigh_lookup creates (NUD_NONE) for
a target L2 does not know, and a TCP socket's own dst (tcp_v6_err redirects that without the
first-hop check).
Of radvd: every setting but the defaults and AdvLinkMTU (route, RDNSS and DNSSL options, client
lists, UnicastOnly, DecrementLifetimes, Mobile IPv6), checking other routers' RAs (process_ra's
warnings), splitting an RA too big for the MTU, and netlink's re-setup when addresses change.
"""

import errno
import logging
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from pktpath import skbuff as s
from pktpath.counters import Mib
from pktpath.pb import l2_pb2, skbuff_pb2
from pktpath.services.l3.addrconf import (
    IFA_F_DADFAILED, IFA_F_DEPRECATED, IFA_F_MANAGETEMPADDR, IFA_F_NODAD, IFA_F_OPTIMISTIC,
    IFA_F_TENTATIVE, INFINITY_LIFE_TIME, LOOPBACK_DEV, Inet6Ifaddr,
)
from pktpath.services.l3.icmp import IcmpRateLimit
from pktpath.services.l3.ipv6 import ETH_P_IPV6, Flowi6, Ipv6, icmp6_out_stats
from pktpath.services.l3.route6 import Route6
from pktpath.wire.addr import (
    IN6ADDR_LINKLOCAL_ALLNODES, IN6ADDR_LINKLOCAL_ALLROUTERS, IPV6_ADDR_LINKLOCAL, IPV6_ADDR_MULTICAST,
    IPV6_ADDR_UNICAST, addrconf_addr_solict_mult, addrconf_ifid_eui48, ip6_to_str, ipv6_addr_is_multicast,
    ipv6_addr_is_solict_mult, ipv6_addr_type, mac_to_str,
)
from pktpath.wire.errors import IntegrityError, TruncatedError, WireError
from pktpath.wire.icmpv6 import (
    ICMPV6_HLEN, ICMPV6_ROUTER_PREF_HIGH, ICMPV6_ROUTER_PREF_INVALID, ICMPV6_ROUTER_PREF_LOW,
    ICMPV6_ROUTER_PREF_MEDIUM, ND_OPT_PI_FLAG_AUTO, ND_OPT_PI_FLAG_ONLINK, ND_OPT_REDIRECT_HDR, ND_OPT_SOURCE_LL_ADDR,
    NDISC_HOP_LIMIT, NDISC_NEIGHBOUR_ADVERTISEMENT, NDISC_NEIGHBOUR_SOLICITATION, NDISC_REDIRECT,
    NDISC_ROUTER_ADVERTISEMENT, NDISC_ROUTER_SOLICITATION,
    RD_MSG_LEN, NdiscOptions, NdNeighAdvert, NdNeighSolicit, NdOptMtu, NdOptNonce, NdOptPrefixInfo,
    NdOptRedirectHdr, NdRedirect,
    NdRouterAdvert, NdRouterSolicit, src_lladdr, tgt_lladdr,
)
from pktpath.wire.ipv6 import (
    IPPROTO_ICMPV6, IPV6_HLEN, IPV6_MIN_MTU, NEXTHDR_TCP, NEXTHDR_UDP, Ipv6Hdr, ipv6_ext_hdr, ipv6_skip_exthdr,
)

log = logging.getLogger(__name__)
pb = skbuff_pb2
L3 = pb.LAYER_L3

NUD_REACHABLE, NUD_STALE = l2_pb2.NUD_REACHABLE, l2_pb2.NUD_STALE
NEIGH_UPDATE_F_OVERRIDE = l2_pb2.NEIGH_UPDATE_F_OVERRIDE
NEIGH_UPDATE_F_WEAK_OVERRIDE = l2_pb2.NEIGH_UPDATE_F_WEAK_OVERRIDE
NEIGH_UPDATE_F_OVERRIDE_ISROUTER = l2_pb2.NEIGH_UPDATE_F_OVERRIDE_ISROUTER
NEIGH_UPDATE_F_ISROUTER = l2_pb2.NEIGH_UPDATE_F_ISROUTER

# enum inet6_ifaddr_state (include/net/if_inet6.h): where an address's DAD is
INET6_IFADDR_STATE_PREDAD, INET6_IFADDR_STATE_DAD, INET6_IFADDR_STATE_POSTDAD = 0, 1, 2
INET6_IFADDR_STATE_ERRDAD, INET6_IFADDR_STATE_DEAD = 3, 4

MIN_VALID_LIFETIME = 2 * 3600  # RFC 4862 5.5.3 e): an RA cannot cut a valid lifetime below two hours
RTF_PREF = {ICMPV6_ROUTER_PREF_LOW: "low", ICMPV6_ROUTER_PREF_MEDIUM: "medium", ICMPV6_ROUTER_PREF_HIGH: "high"}

# radvd 2.19's defaults (defaults.h) and the RFC 4861 10 router constants it uses, in seconds
DFLT_MaxRtrAdvInterval = 600.0
DFLT_MinRtrAdvInterval = 0.33 * DFLT_MaxRtrAdvInterval        # 198 s
DFLT_AdvDefaultLifetime = max(1, int(3 * DFLT_MaxRtrAdvInterval))  # 1800 s
DFLT_AdvCurHopLimit = 64
DFLT_AdvValidLifetime = 86400
DFLT_AdvPreferredLifetime = 14400
MAX_INITIAL_RTR_ADVERT_INTERVAL = 16.0
MAX_INITIAL_RTR_ADVERTISEMENTS = 3
MIN_DELAY_BETWEEN_RAS = 3.0                                   # DFLT_MinDelayBetweenRAs
MAX_RA_DELAY_TIME = 0.5
RADVD_ICMP6_FILTER = frozenset({NDISC_ROUTER_SOLICITATION, NDISC_ROUTER_ADVERTISEMENT})  # ICMP6_FILTER_SETPASS


@dataclass
class Ipv6Devconf:
    """The parts of struct ipv6_devconf (net.ipv6.conf.DEV.*) and of nd_tbl's neigh_parms
    (net.ipv6.neigh.DEV.*) neighbour discovery reads, at Linux's defaults; times in seconds."""
    accept_dad: int = 1
    dad_transmits: int = 1
    enhanced_dad: bool = True
    rtr_solicit_delay: float = 1.0          # MAX_RTR_SOLICITATION_DELAY
    rtr_solicits: int = -1                  # MAX_RTR_SOLICITATIONS: unlimited
    rtr_solicit_interval: float = 4.0       # RTR_SOLICITATION_INTERVAL
    rtr_solicit_max_interval: float = 3600.0
    accept_ra: int = 1
    accept_ra_defrtr: bool = True
    accept_ra_pinfo: bool = True
    accept_ra_mtu: bool = True
    accept_ra_from_local: bool = False
    accept_ra_rtr_pref: bool = True
    accept_ra_min_hop_limit: int = 1
    accept_ra_min_lft: int = 0
    ra_defrtr_metric: int = 1024            # IP6_RT_PRIO_USER
    accept_redirects: bool = True           # a host's default (a forwarding one ignores them anyway)
    autoconf: bool = True
    max_addresses: int = 16                 # IPV6_MAX_ADDRESSES
    ndisc_notify: bool = False
    force_tllao: bool = False
    drop_unsolicited_na: bool = False
    retrans_time: float = 1.0               # ND_RETRANS_TIMER (neigh parm)
    proxy_delay: float = 0.8                # neigh parm, (8 * HZ) / 10


@dataclass
class _DadWork:
    """An address's DAD: struct inet6_ifaddr's state, dad_probes, dad_nonce and dad_work."""
    dev: str
    ifa: Inet6Ifaddr
    state: int = INET6_IFADDR_STATE_PREDAD
    probes: int = 0
    nonce: bytes = b""
    due: float | None = None


@dataclass
class _RsState:
    """A device's router solicitation state: idev->rs_interval, rs_probes, rs_timer, if_flags."""
    interval: float = 0.0
    probes: int = 0
    due: float | None = None
    rs_sent: bool = False   # IF_RS_SENT
    ra_rcvd: bool = False   # IF_RA_RCVD


@dataclass
class RaState:
    """What an RA left on a device beyond routes and addresses: if_flags' IF_RA_MANAGED and
    IF_RA_OTHERCONF, cnf.hop_limit, ra_mtu, and the nd_tbl parameters (seconds) it set."""
    managed: bool = False
    other: bool = False
    hop_limit: int = 0
    ra_mtu: int = 0
    nd_parms: dict = field(default_factory=dict)


@dataclass(frozen=True)
class AdvInterface:
    """radvd.conf's `interface DEV { AdvSendAdvert on; prefix P/L { }; ... };` at radvd's defaults:
    what a router advertises out of one interface (struct Interface's settings)."""
    prefixes: tuple[tuple[int, int], ...] = ()  # (prefix, length), each a prefix information option
    link_mtu: int = 0                            # AdvLinkMTU: 0 sends no MTU option
    max_interval: float = DFLT_MaxRtrAdvInterval  # MaxRtrAdvInterval
    min_interval: float = DFLT_MinRtrAdvInterval  # MinRtrAdvInterval
    default_lifetime: int = DFLT_AdvDefaultLifetime
    cur_hop_limit: int = DFLT_AdvCurHopLimit
    valid_lifetime: int = DFLT_AdvValidLifetime
    preferred_lifetime: int = DFLT_AdvPreferredLifetime


def radvd_conf(interfaces) -> dict[str, AdvInterface]:
    """The topology's advertising interfaces (pktpath.topology.Interface with `advertise`) as
    radvd.conf would list them: each distinct prefix of the interface's addr6 but the link-local
    ones, in file order, on-link and autonomous; AdvLinkMTU from adv_link_mtu."""
    conf = {}
    for iface in interfaces:
        if not getattr(iface, "advertise", False):
            continue
        prefixes: list[tuple[int, int]] = []
        for a in iface.addr6:
            net = (int(a.network.network_address), a.network.prefixlen)
            if not a.ip.is_link_local and net not in prefixes:
                prefixes.append(net)
        conf[iface.name] = AdvInterface(tuple(prefixes), getattr(iface, "adv_link_mtu", 0))
    return conf


@dataclass
class _Radvd:
    """radvd's struct Interface state for one advertising device: state_info.ready, racount and
    cease_adv, times.last_multicast and next_multicast; the solicited unicast RAs waiting."""
    conf: AdvInterface
    ready: bool = False
    racount: int = 0
    cease: bool = False
    last_multicast: float | None = None
    next_multicast: float | None = None
    unicast: list[int] = field(default_factory=list)


class Ndisc:
    def __init__(self, host: str, addrconf, macs: dict[str, bytes], *,
                 neigh_update: Callable[[str, int, bytes | None, int, int, bool], object],
                 ip6_local_out: Callable[[s.SkBuff, str], int], mib: Mib,
                 clock: Callable[[], float] = time.monotonic, rand: Callable[[], float] = random.random,
                 on_timer: Callable[[], None] | None = None, advertise: dict[str, AdvInterface] | None = None,
                 ra_output: Callable[[s.SkBuff, Flowi6], int] | None = None, route6: Route6 | None = None,
                 ratelimit: IcmpRateLimit | None = None,
                 neigh_lookup: Callable[[str, int], bytes | None] | None = None) -> None:
        """addrconf: the host's Addrconf (addresses, forwarding); macs: each interface's MAC.
        advertise: the devices a router sends router advertisements out of, as radvd does
        (radvd_conf()); ra_output(skb, flow) -> errno: how radvd's raw ICMPv6 socket sends one
        (Ip6Output.ip6_output: skb data at the ICMPv6 message; multicast looped back to this
        host too), ndisc_send_skb's way when not given. route6: the host's route lookups and
        exceptions (a Redirect's), whose fib6 gc timer runs in tick(); ratelimit: the host's
        IcmpRateLimit, whose per-peer buckets (inet_peer_xrlim_allow) limit redirects sent;
        neigh_lookup(dev, ip): L2's nd_tbl entry's MAC when it is NUD_VALID, else None."""
        self.host = host
        self.addrconf = addrconf
        self.macs = dict(macs)
        self.mib = mib
        self.cnf: dict[str, Ipv6Devconf] = {}
        self.mtu6: dict[str, int] = {}          # cnf.mtu6 as an RA's MTU option set it
        self.dev_mtu: dict[str, int] = {}       # dev->mtu, what an RA's MTU may not exceed (unset: 1500)
        self.ra: dict[str, RaState] = {}
        self._neigh_update = neigh_update
        self._ip6_local_out = ip6_local_out
        self._clock = clock
        self._rand = rand
        self._on_timer = on_timer
        self._lock = threading.RLock()
        self._dad: dict[tuple[str, int], _DadWork] = {}
        self._rs: dict[str, _RsState] = {}
        self._proxy_queue: list[tuple[float, s.SkBuff, Ipv6Hdr]] = []  # pneigh_enqueue's proxy_queue
        self._expiring: dict[tuple, float] = {}  # addresses' deadlines (addrconf_verify)
        self._ra_prefixes: set[tuple[int, int, str]] = set()  # prefix routes an RA made (RTF_ADDRCONF|PREFIX_RT)
        self._next: float | None = None
        self._radvd = {dev: _Radvd(conf) for dev, conf in (advertise or {}).items()}
        self._ra_output = ra_output
        self.route6 = route6 if route6 is not None else Route6(addrconf, {}, clock=clock)
        self.route6.on_gc_timer = self._timer_set
        self.ratelimit = ratelimit if ratelimit is not None else IcmpRateLimit(clock=clock)
        self._neigh_lookup = neigh_lookup

    def devconf(self, dev: str) -> Ipv6Devconf:
        """net.ipv6.conf.DEV: the device's settings, Linux's defaults until changed."""
        return self.cnf.setdefault(dev, Ipv6Devconf())

    def ipv6_accept_ra(self, dev: str) -> bool:
        """ipv6_accept_ra(): a forwarding host takes RAs only with accept_ra 2."""
        accept = self.devconf(dev).accept_ra
        return accept >= 2 if self.addrconf.forwarding else accept > 0

    # -- receive -------------------------------------------------------------------------
    def ndisc_rcv(self, skb, hdr: Ipv6Hdr) -> int:
        """ndisc_rcv(): the message (skb data at its ICMPv6 header, validated by ndisc_validate)
        by type. Returns the drop reason, 0 or SKB_CONSUMED when consumed."""
        data = skb.payload()
        if len(data) < ICMPV6_HLEN:
            return pb.SKB_DROP_REASON_PKT_TOO_SMALL
        handler = {
            NDISC_NEIGHBOUR_SOLICITATION: self.ndisc_recv_ns,
            NDISC_NEIGHBOUR_ADVERTISEMENT: self.ndisc_recv_na,
            NDISC_ROUTER_SOLICITATION: self.ndisc_recv_rs,
            NDISC_ROUTER_ADVERTISEMENT: self.ndisc_router_discovery,
            NDISC_REDIRECT: self.ndisc_redirect_rcv,
        }.get(data[0])
        if handler is None:
            return pb.SKB_DROP_REASON_NOT_SPECIFIED
        try:
            return handler(skb, hdr)
        except TruncatedError:
            return pb.SKB_DROP_REASON_PKT_TOO_SMALL
        except IntegrityError:
            return pb.SKB_DROP_REASON_IPV6_NDISC_BAD_OPTIONS
        except WireError:
            return pb.SKB_DROP_REASON_NOT_SPECIFIED

    @staticmethod
    def _lladdr(opt) -> bytes | None | bool:
        """ndisc_opt_addr_data(): the option's address; None without the option; False when its
        length is wrong (the kernel drops the message)."""
        if opt is None:
            return None
        addr = opt.addr_data()
        return False if addr is None else addr

    def ndisc_recv_ns(self, skb, hdr: Ipv6Hdr, *, locally_enqueued: bool = False) -> int:
        """ndisc_recv_ns(): see the module's docstring."""
        msg = NdNeighSolicit.from_bytes(skb.payload())
        opts = NdiscOptions.from_options(msg.options)
        dev, saddr, target = skb.dev, hdr.saddr, msg.target
        dad = saddr == 0
        if ipv6_addr_is_multicast(target) or dad and not ipv6_addr_is_solict_mult(hdr.daddr):
            return pb.SKB_DROP_REASON_NOT_SPECIFIED
        lladdr = self._lladdr(opts.src_lladdr)
        if lladdr is False or lladdr is not None and dad:
            return pb.SKB_DROP_REASON_NOT_SPECIFIED
        nonce = opts.nonce.nonce if opts.nonce is not None and len(opts.nonce.nonce) == 6 else b""
        nonce = b"" if nonce == bytes(6) else nonce
        inc = ipv6_addr_is_multicast(hdr.daddr)
        ifp = self.addrconf.ipv6_get_ifaddr(target, dev)
        if ifp is not None:
            if ifp.flags & (IFA_F_TENTATIVE | IFA_F_OPTIMISTIC):
                if dad:
                    work = self._dad.get((dev, target))
                    if nonce and work is not None and work.ifa is ifp and work.nonce == nonce:
                        return pb.SKB_DROP_REASON_NOT_SPECIFIED  # our own probe looped back
                    self.addrconf_dad_failure(skb, dev, ifp)
                    return pb.SKB_DROP_REASON_NOT_SPECIFIED
                if not ifp.flags & IFA_F_OPTIMISTIC:
                    return pb.SKB_DROP_REASON_NOT_SPECIFIED
        else:
            if dev not in self.addrconf.idev:
                return pb.SKB_DROP_REASON_NOT_SPECIFIED
            if not self.addrconf.ipv6_chk_acast_addr(dev, target):
                return pb.SKB_DROP_REASON_IPV6_NDISC_NS_OTHERHOST
            cnf = self.devconf(dev)
            if not locally_enqueued and skb.pkt_type != pb.PACKET_HOST and inc and cnf.proxy_delay:
                self.pneigh_enqueue(skb, hdr, cnf.proxy_delay)
                return pb.SKB_DROP_REASON_NOT_SPECIFIED
        is_router = self.addrconf.forwarding
        if dad:
            self.ndisc_send_na(dev, IN6ADDR_LINKLOCAL_ALLNODES, target, router=is_router, solicited=False,
                               override=ifp is not None, inc_opt=True)
            return pb.SKB_DROP_REASON_NOT_SPECIFIED
        known = self._neigh_update(dev, saddr, lladdr, NUD_STALE,
                                   NEIGH_UPDATE_F_WEAK_OVERRIDE | NEIGH_UPDATE_F_OVERRIDE,
                                   not inc or lladdr is not None)
        if known is False:  # __neigh_lookup found none and created none: no answer
            return pb.SKB_DROP_REASON_NOT_SPECIFIED
        self.ndisc_send_na(dev, saddr, target, router=is_router, solicited=True,
                           override=ifp is not None and inc, inc_opt=inc)
        return pb.SKB_CONSUMED

    def pneigh_enqueue(self, skb, hdr: Ipv6Hdr, proxy_delay: float) -> None:
        """pneigh_enqueue(): a clone of an anycast NS, answered by pndisc_redo() after a random
        delay below proxy_delay (RFC 4861 7.2.7's MAX_ANYCAST_DELAY_TIME)."""
        clone = s.skb_clone(skb, L3, self.host, "pneigh_enqueue")
        due = self._clock() + self._rand() * proxy_delay
        with self._lock:
            self._proxy_queue.append((due, clone, hdr))
        self._timer_set(due)

    def pndisc_redo(self, skb, hdr: Ipv6Hdr) -> None:
        """pndisc_redo(): the queued NS again, LOCALLY_ENQUEUED, then freed with its reason."""
        try:
            reason = self.ndisc_recv_ns(skb, hdr, locally_enqueued=True)
        except WireError:
            reason = pb.SKB_DROP_REASON_NOT_SPECIFIED
        if reason in (0, pb.SKB_CONSUMED):
            s.consume_skb(skb, L3, self.host, "pndisc_redo")
        else:
            s.kfree_skb_reason(skb, reason, L3, self.host, "pndisc_redo")
            self.mib.drop(reason)

    def ndisc_recv_na(self, skb, hdr: Ipv6Hdr) -> int:
        """ndisc_recv_na(): see the module's docstring."""
        msg = NdNeighAdvert.from_bytes(skb.payload())
        dev = skb.dev
        if ipv6_addr_is_multicast(msg.target) or ipv6_addr_is_multicast(hdr.daddr) and msg.solicited:
            return pb.SKB_DROP_REASON_NOT_SPECIFIED
        if not msg.solicited and self.devconf(dev).drop_unsolicited_na:
            return pb.SKB_DROP_REASON_NOT_SPECIFIED
        lladdr = self._lladdr(NdiscOptions.from_options(msg.options).tgt_lladdr)
        if lladdr is False:
            return pb.SKB_DROP_REASON_NOT_SPECIFIED
        ifp = self.addrconf.ipv6_get_ifaddr(msg.target, dev)
        if ifp is not None:
            if skb.pkt_type != pb.PACKET_LOOPBACK:
                if ifp.flags & IFA_F_TENTATIVE:
                    self.addrconf_dad_failure(skb, dev, ifp)
                    return pb.SKB_DROP_REASON_NOT_SPECIFIED
                log.warning("ICMPv6: NA: %s advertised our address %s on %s!", mac_to_str(_h_source(skb)),
                            ip6_to_str(ifp.addr), dev)
            return pb.SKB_DROP_REASON_NOT_SPECIFIED
        flags = NEIGH_UPDATE_F_WEAK_OVERRIDE | NEIGH_UPDATE_F_OVERRIDE_ISROUTER
        if msg.override:
            flags |= NEIGH_UPDATE_F_OVERRIDE
        if msg.router:
            flags |= NEIGH_UPDATE_F_ISROUTER
        known = self._neigh_update(dev, msg.target, lladdr, NUD_REACHABLE if msg.solicited else NUD_STALE,
                                   flags, False)
        return pb.SKB_DROP_REASON_NOT_SPECIFIED if known is False else pb.SKB_CONSUMED

    def ndisc_recv_rs(self, skb, hdr: Ipv6Hdr) -> int:
        """ndisc_recv_rs(): only a router listens (NOT_SPECIFIED on a host), and learns nothing from
        an RS from ::; else the sender's entry, STALE and not a router, and consumed. (radvd had
        its copy before icmpv6_rcv: radvd_rcv.)"""
        msg = NdRouterSolicit.from_bytes(skb.payload())
        dev = skb.dev
        if dev not in self.addrconf.idev or not self.addrconf.forwarding or hdr.saddr == 0:
            return pb.SKB_DROP_REASON_NOT_SPECIFIED
        lladdr = self._lladdr(NdiscOptions.from_options(msg.options).src_lladdr)
        if lladdr is False:
            return pb.SKB_DROP_REASON_NOT_SPECIFIED
        self._neigh_update(dev, hdr.saddr, lladdr, NUD_STALE, NEIGH_UPDATE_F_WEAK_OVERRIDE | NEIGH_UPDATE_F_OVERRIDE
                           | NEIGH_UPDATE_F_OVERRIDE_ISROUTER, True)
        return pb.SKB_CONSUMED

    def ndisc_redirect_rcv(self, skb, hdr: Ipv6Hdr) -> int:
        """ndisc_redirect_rcv(): a Redirect without a redirected header option goes to
        ip6_redirect_no_header and is dropped NOT_SPECIFIED; with one, icmpv6_notify's checks on
        the packet it quotes (its IPv6 header: PKT_TOO_SMALL; its extension headers:
        IPV6_BAD_EXTHDR; 8 bytes after them: PKT_TOO_SMALL), then the quoted protocol's error
        handler: ICMPv6's (icmpv6_err), UDP's and TCP's call ip6_redirect; consumed. (Linux's
        UDP and TCP do so only for a packet of one of their sockets, TCP on the socket's own dst;
        pktpath, whose sockets are L4's, takes every one, as it learns a path MTU.)
        ip6_redirect_no_header changes a route as ip6_redirect does, for the message's
        destination from the address it came to."""
        data = skb.payload()
        if not ipv6_addr_type(hdr.saddr) & IPV6_ADDR_LINKLOCAL:
            return pb.SKB_DROP_REASON_NOT_SPECIFIED
        msg = NdRedirect.from_bytes(data)  # the options parse
        i, n = RD_MSG_LEN, len(data)
        while i < n and data[i] != ND_OPT_REDIRECT_HDR:
            i += data[i + 1] << 3
        if i >= n:
            self.ip6_redirect(skb.dev, hdr.saddr, msg.dest, msg)  # ip6_redirect_no_header
            return pb.SKB_DROP_REASON_NOT_SPECIFIED
        inner = data[i + 8:]
        if len(inner) < IPV6_HLEN:
            return pb.SKB_DROP_REASON_PKT_TOO_SMALL
        nexthdr, offset = inner[6], IPV6_HLEN
        if ipv6_ext_hdr(nexthdr):
            offset, nexthdr, _ = ipv6_skip_exthdr(inner, IPV6_HLEN, nexthdr)
            if offset < 0:
                return pb.SKB_DROP_REASON_IPV6_BAD_EXTHDR
        if offset + 8 > len(inner):
            return pb.SKB_DROP_REASON_PKT_TOO_SMALL
        if nexthdr in (IPPROTO_ICMPV6, NEXTHDR_UDP, NEXTHDR_TCP):
            self.ip6_redirect(skb.dev, hdr.saddr, int.from_bytes(inner[24:40], "big"), msg)
        return pb.SKB_CONSUMED

    def ip6_redirect(self, dev: str, gateway: int, daddr: int, msg: NdRedirect) -> bool:
        """ip6_redirect() → ip6_route_redirect + rt6_do_redirect(), RFC 4861 8.1 and 8.3: the
        destination not multicast; the target the destination itself (on-link) or a link-local
        unicast address; not on a forwarding device, and accept_redirects; a target link-layer
        address, if given, of the right length; the route to daddr through the Redirect's sender
        (its current first hop) on dev. Then the target's entry (STALE, its address if given, a
        router unless on-link: ndisc_update) and an exception route to daddr through the target
        (`ip -6 route get` shows it). Returns whether the route changed."""
        on_link = msg.dest == msg.target
        if ipv6_addr_is_multicast(msg.dest) or not on_link and ipv6_addr_type(msg.target) != (
                IPV6_ADDR_UNICAST | IPV6_ADDR_LINKLOCAL):
            return False
        if dev not in self.addrconf.idev or self.addrconf.forwarding or not self.devconf(dev).accept_redirects:
            return False
        lladdr = self._lladdr(NdiscOptions.from_options(msg.options).tgt_lladdr)
        if lladdr is False:
            return False
        f6i = self.route6.ip6_route_redirect(daddr, dev, gateway)
        if f6i is None:  # "rt6_redirect: source isn't a valid nexthop for redirect target"
            return False
        flags = NEIGH_UPDATE_F_WEAK_OVERRIDE | NEIGH_UPDATE_F_OVERRIDE
        if not on_link:
            flags |= NEIGH_UPDATE_F_OVERRIDE_ISROUTER | NEIGH_UPDATE_F_ISROUTER
        self._neigh_update(dev, msg.target, lladdr, NUD_STALE, flags, True)
        self.route6.rt6_insert_exception(msg.dest, f6i, msg.target, on_link)
        return True

    # -- send ----------------------------------------------------------------------------
    def ndisc_send_skb(self, dev: str, msg, saddr: int, daddr: int) -> int:
        """ndisc_alloc_skb + ndisc_send_skb(): the message, checksummed, under ip6_nd_hdr()'s IPv6
        header, out of dev to daddr (its next hop); Icmp6Out* once sent. Returns the errno."""
        body = msg.to_bytes(saddr, daddr)
        skb = s.alloc_skb(s.MAX_HEADER + IPV6_HLEN + len(body), origin_host=self.host, sampled=False)
        s.skb_reserve(skb, s.MAX_HEADER + IPV6_HLEN)
        s.skb_put_data(skb, body)
        s.skb_reset_transport_header(skb)
        s.skb_push_data(skb, Ipv6Hdr(saddr, daddr, IPPROTO_ICMPV6, NDISC_HOP_LIMIT).to_bytes(len(body)))
        s.skb_reset_network_header(skb)
        skb.protocol = ETH_P_IPV6
        skb.dev = dev
        skb.nexthop = daddr
        skb.record(s.EXIT, L3, self.host, "ndisc_send_skb")
        err = self._ip6_local_out(skb, dev)
        if not err:
            icmp6_out_stats(self.mib, msg.type)
        return err

    def ndisc_send_na(self, dev: str, daddr: int, solicited_addr: int, *, router: bool, solicited: bool,
                      override: bool, inc_opt: bool) -> None:
        """ndisc_send_na(): from the target when it is one of dev's addresses (never with override
        while it is optimistic), else (anycast) from the address source selection picks; with the
        target link-layer address if inc_opt (or force_tllao)."""
        ifp = self.addrconf.ipv6_get_ifaddr(solicited_addr, dev)
        if ifp is not None:
            src = solicited_addr
            if ifp.flags & IFA_F_OPTIMISTIC:
                override = False
            inc_opt = inc_opt or self.devconf(dev).force_tllao
        else:
            src = self.ipv6_dev_get_saddr(dev, daddr)
            if not src:
                return
        mac = self.macs.get(dev)
        opts = (tgt_lladdr(mac),) if inc_opt and mac else ()
        self.ndisc_send_skb(dev, NdNeighAdvert(solicited_addr, router, solicited, override, opts), src, daddr)

    def ndisc_send_ns(self, dev: str, solicit: int, daddr: int, saddr: int | None, nonce: bytes = b"") -> None:
        """ndisc_send_ns() / ndisc_ns_create(): an NS for `solicit`; with no saddr from dev's
        link-local address (ipv6_get_lladdr, not a tentative one; none: nothing sent); with the
        source link-layer address unless from :: (DAD); with the nonce option if given."""
        if saddr is None:
            saddr = self.addrconf.ipv6_get_lladdr(dev, IFA_F_TENTATIVE | IFA_F_OPTIMISTIC)
            if not saddr:
                return
        mac = self.macs.get(dev)
        opts = () if saddr == 0 or not mac else (src_lladdr(mac),)
        if nonce:
            opts += (NdOptNonce(nonce),)
        self.ndisc_send_skb(dev, NdNeighSolicit(solicit, opts), saddr, daddr)

    def ndisc_send_rs(self, dev: str, saddr: int, daddr: int = IN6ADDR_LINKLOCAL_ALLROUTERS) -> None:
        """ndisc_send_rs(): an RS with the source link-layer address (unless saddr is not one of
        dev's addresses, or is optimistic: RFC 4429 2.2)."""
        ifp = self.addrconf.ipv6_get_ifaddr(saddr, dev)
        mac = self.macs.get(dev)
        opts = (src_lladdr(mac),) if mac and ifp is not None and not ifp.flags & IFA_F_OPTIMISTIC else ()
        self.ndisc_send_skb(dev, NdRouterSolicit(opts), saddr, daddr)

    def ndisc_send_redirect(self, skb, hdr: Ipv6Hdr, target: int) -> None:
        """ndisc_send_redirect(): from ip6_forward, about skb (data at its IPv6 header hdr, as it
        came in on skb.dev) going back out of that device towards `target`. Sent only from dev's
        link-local address (none: nothing); the target the destination itself or link-local
        unicast; to a source on-link (its route has no gateway) and at most one a second per
        source after a burst of 6 (inet_peer_xrlim_allow). The target's link-layer address if L2
        knows it NUD_VALID, then the redirected header: the packet from its IPv6 header, cut so
        the message stays within 1280 bytes. To the source, hop limit 255: Icmp6OutRedirects."""
        dev = skb.dev
        saddr = self.addrconf.ipv6_get_lladdr(dev, IFA_F_TENTATIVE)
        if not saddr:  # ND_PRINTK(2): "Redirect: no link-local address on DEV"
            return
        if hdr.daddr != target and ipv6_addr_type(target) != IPV6_ADDR_UNICAST | IPV6_ADDR_LINKLOCAL:
            return
        rt = self.route6.ip6_route_output(hdr.saddr, dev)
        if rt is None or rt.gateway:  # "Redirect: destination is not a neighbour"
            return
        if not self.ratelimit.peer_allow(("ip6", hdr.saddr), 1.0):
            return
        ha = self._neigh_lookup(dev, target) if self._neigh_lookup is not None else None
        opts: tuple = (tgt_lladdr(ha),) if ha else ()
        packet = s.skb_network_header(skb)
        opts += (NdOptRedirectHdr.quote(packet, sum(len(o.to_bytes()) for o in opts)),)
        self.ndisc_send_skb(dev, NdRedirect(target, hdr.daddr, opts), saddr, hdr.saddr)

    def ndisc_solicit(self, dev: str, target: int, unicast: bytes | None, saddr: int) -> None:
        """ndisc_solicit(), for L2's nd_tbl: an NS for target, to its solicited-node group, or to
        the target itself when L2 re-probes a known entry (`unicast`, its MAC, given: L2 sends the
        NS there). From saddr (the source of the packet waiting) if it is one of dev's addresses
        and not tentative, else from dev's link-local address (ipv6_get_lladdr); Linux 6.18's
        unicast probes, which have no packet waiting, come from the link-local address."""
        src = saddr if saddr and self.addrconf.ipv6_chk_addr_and_flags(
            saddr, dev, IFA_F_TENTATIVE | IFA_F_OPTIMISTIC) else None
        daddr = target if unicast is not None else addrconf_addr_solict_mult(target)
        self.ndisc_send_ns(dev, target, daddr, src)

    def ipv6_dev_get_saddr(self, dev: str, daddr: int) -> int:
        """ipv6_dev_get_saddr(): Ipv6's source address selection (it reads only the addresses)."""
        return Ipv6.ipv6_dev_get_saddr(self, dev, daddr)

    # -- DAD (net/ipv6/addrconf.c) -------------------------------------------------------
    def start(self) -> None:
        """NETDEV_UP for every device: addrconf_dad_start() for each tentative address (and
        the rest of DAD in tick()); radvd starts on an advertising device whose link-local
        address is usable already (no DAD), else once its DAD succeeds."""
        for dev in list(self.addrconf.idev):
            for ifa in self.addrconf.addr_list(dev):
                if ifa.flags & IFA_F_TENTATIVE and not ifa.flags & IFA_F_DADFAILED:
                    self.addrconf_dad_start(dev, ifa)
        for dev in self._radvd:
            self.radvd_kickoff_adverts(dev)

    def addrconf_dad_start(self, dev: str, ifa: Inet6Ifaddr) -> None:
        """addrconf_dad_start(): state PREDAD and the DAD work at once; addrconf_dad_begin runs
        here (the work's first step): an address that needs no DAD (lo's, IFA_F_NODAD, accept_dad
        0, not tentative) completes now; any other waits a random delay below rtr_solicit_delay
        (addrconf_dad_kick) before its first probe."""
        work = _DadWork(dev, ifa)
        with self._lock:
            self._dad[dev, ifa.addr] = work
            work.state = INET6_IFADDR_STATE_DAD
        self.addrconf_dad_begin(work)

    def addrconf_dad_begin(self, work: _DadWork) -> None:
        """addrconf_dad_begin(): see addrconf_dad_start."""
        ifa, dev = work.ifa, work.dev
        cnf = self.devconf(dev)
        if dev == LOOPBACK_DEV or cnf.accept_dad < 1 or not ifa.flags & IFA_F_TENTATIVE or ifa.flags & IFA_F_NODAD:
            send_na = bool(ifa.flags & IFA_F_TENTATIVE and not ifa.flags & IFA_F_OPTIMISTIC)
            with self._lock:
                work.state = INET6_IFADDR_STATE_POSTDAD
            self.addrconf_dad_completed(dev, ifa, send_na)
            return
        self.addrconf_dad_kick(work)

    def addrconf_dad_kick(self, work: _DadWork) -> None:
        """addrconf_dad_kick(): a random delay below rtr_solicit_delay, a new nonce (enhanced_dad),
        dad_transmits probes."""
        cnf = self.devconf(work.dev)
        delay = 0.0 if work.ifa.flags & IFA_F_OPTIMISTIC else self._rand() * (cnf.rtr_solicit_delay or 0.001)
        nonce = b""
        if cnf.enhanced_dad:
            while not any(nonce):
                nonce = int(self._rand() * (1 << 48)).to_bytes(6, "little")
        with self._lock:
            work.nonce = nonce
            work.probes = cnf.dad_transmits
        self._mod_dad_work(work, delay)

    def _mod_dad_work(self, work: _DadWork, delay: float) -> None:
        due = self._clock() + delay
        with self._lock:
            work.due = due
        self._timer_set(due)

    def addrconf_dad_work(self, work: _DadWork) -> None:
        """addrconf_dad_work(): with probes left, send one (from :: to the address's
        solicited-node group, no source link-layer address, the nonce) and wait retrans_time
        (at least 10 ms); with none left and no conflict, DAD succeeded."""
        with self._lock:
            if work.state != INET6_IFADDR_STATE_DAD or not self._current(work):
                return
            if work.probes == 0:
                work.state = INET6_IFADDR_STATE_POSTDAD  # addrconf_dad_end
                done = True
            else:
                done = False
                work.probes -= 1
        ifa = work.ifa
        if done:
            send_na = bool(ifa.flags & IFA_F_TENTATIVE and not ifa.flags & IFA_F_OPTIMISTIC)
            self.addrconf_dad_completed(work.dev, ifa, send_na)
            return
        self._mod_dad_work(work, max(self.devconf(work.dev).retrans_time, 0.01))
        self.ndisc_send_ns(work.dev, ifa.addr, addrconf_addr_solict_mult(ifa.addr), 0, work.nonce)

    def _current(self, work: _DadWork) -> bool:
        """Is work's address still the device's (not deleted or replaced)?"""
        return any(a is work.ifa for a in self.addrconf.addr_list(work.dev))

    def addrconf_dad_completed(self, dev: str, ifa: Inet6Ifaddr, send_na: bool) -> None:
        """addrconf_dad_completed(): the address is valid (its flags cleared, its local route:
        Addrconf's part); an unsolicited NA if ndisc_notify; and when it is dev's only usable
        link-local address on a host taking RAs, the first Router Solicitation from it (no delay
        again: DAD had one), then more from addrconf_rs_timer."""
        with self._lock:
            work = self._dad.get((dev, ifa.addr))
            if work is not None and work.ifa is ifa:
                work.due = None
        self.addrconf.addrconf_dad_completed(dev, ifa)
        if ifa.scope == IPV6_ADDR_LINKLOCAL and dev in self._radvd:
            self.radvd_kickoff_adverts(dev)
        cnf = self.devconf(dev)
        if send_na and cnf.ndisc_notify:
            self.ndisc_send_na(dev, IN6ADDR_LINKLOCAL_ALLNODES, ifa.addr, router=self.addrconf.forwarding,
                               solicited=False, override=True, inc_opt=True)
        send_rs = (ifa.scope == IPV6_ADDR_LINKLOCAL and self.addrconf.ipv6_lonely_lladdr(dev, ifa)
                   and self.ipv6_accept_ra(dev) and cnf.rtr_solicits != 0 and dev != LOOPBACK_DEV)
        if not send_rs:
            return
        lladdr = self.addrconf.ipv6_get_lladdr(dev, IFA_F_TENTATIVE)
        if not lladdr:
            return
        self.ndisc_send_rs(dev, lladdr)
        interval = self._backoff_init(cnf.rtr_solicit_interval)
        with self._lock:
            rs = self._rs.setdefault(dev, _RsState())
            rs.interval, rs.probes, rs.rs_sent = interval, 1, True
        self._mod_rs_timer(dev, interval)

    def addrconf_dad_failure(self, skb, dev: str, ifa: Inet6Ifaddr) -> None:
        """addrconf_dad_failure(): only during DAD; logs the kernel's words with the sender's MAC,
        then addrconf_dad_work's DAD_ABORT: addrconf_dad_stop (DADFAILED; a SLAAC address
        deleted). (The kernel runs the abort from the work queue at once; here it runs now.)"""
        with self._lock:
            work = self._dad.get((dev, ifa.addr))
            if work is None or work.ifa is not ifa or work.state != INET6_IFADDR_STATE_DAD:
                return
            work.state = INET6_IFADDR_STATE_POSTDAD
            work.due = None
        # the kernel's pr_info; a warning here, the level a service's log shows
        log.warning("IPv6: %s: IPv6 duplicate address %s used by %s detected!", dev, ip6_to_str(ifa.addr),
                    mac_to_str(_h_source(skb)))
        self.addrconf.addrconf_dad_stop(dev, ifa, True)
        if not any(a is ifa for a in self.addrconf.addr_list(dev)):  # a SLAAC address, deleted
            with self._lock:
                self._expiring.pop(("addr", dev, ifa.addr), None)
                self._expiring.pop(("deprecate", dev, ifa.addr), None)

    def dad_state(self, dev: str, addr: int) -> int | None:
        """The address's INET6_IFADDR_STATE_*, None if DAD never ran for it."""
        with self._lock:
            work = self._dad.get((dev, addr))
            return None if work is None else work.state

    # -- router solicitations ------------------------------------------------------------
    def _backoff_init(self, irt: float) -> float:
        """rfc3315_s14_backoff_init(): the initial interval times 0.9 .. 1.1."""
        return irt * (0.9 + 0.2 * self._rand())

    def _backoff_update(self, rt: float, mrt: float) -> float:
        """rfc3315_s14_backoff_update(): times 1.9 .. 2.1, at most mrt times 0.9 .. 1.1."""
        rt = rt * (1.9 + 0.2 * self._rand())
        return mrt * (0.9 + 0.2 * self._rand()) if rt > mrt else rt

    def _mod_rs_timer(self, dev: str, delay: float) -> None:
        due = self._clock() + delay
        with self._lock:
            self._rs[dev].due = due
        self._timer_set(due)

    def addrconf_rs_timer(self, dev: str) -> None:
        """addrconf_rs_timer(): another RS unless an RA came or rtr_solicits ran out; the interval
        doubles up to rtr_solicit_max_interval."""
        cnf = self.devconf(dev)
        with self._lock:
            rs = self._rs[dev]
            rs.due = None
            if not self.ipv6_accept_ra(dev) or rs.ra_rcvd:
                return
            if not (rs.probes < cnf.rtr_solicits or cnf.rtr_solicits < 0):
                return
            rs.probes += 1
        lladdr = self.addrconf.ipv6_get_lladdr(dev, IFA_F_TENTATIVE)
        if not lladdr:
            return
        self.ndisc_send_rs(dev, lladdr)
        with self._lock:
            rs.interval = self._backoff_update(rs.interval, cnf.rtr_solicit_max_interval)
            last = rs.probes == cnf.rtr_solicits
        self._mod_rs_timer(dev, cnf.rtr_solicit_delay if last else rs.interval)

    # -- router advertisements -----------------------------------------------------------
    def ndisc_router_discovery(self, skb, hdr: Ipv6Hdr) -> int:
        """ndisc_router_discovery() on a host with accept_ra 1 (a forwarding host only learns the
        router's link-layer address):

        - the default router (accept_ra_defrtr; not from one of our own addresses): a lifetime
          adds `default via SRC dev DEV proto ra metric 1024` with the RA's preference (RFC 4191;
          10b is medium) expiring after it, refreshes it, or 0 removes it; a non-zero hop limit
          becomes the device's (cnf.hop_limit) and the route's;
        - the reachable time and retrans timer, kept for L2 (nd_parms, in seconds);
        - the sender's entry: STALE, a router, its source link-layer address (of the wrong length:
          NOT_SPECIFIED); consumed;
        - each prefix information option (accept_ra_pinfo): addrconf_prefix_rcv;
        - the MTU option (accept_ra_mtu): between 1280 and the device's MTU it becomes cnf.mtu6
          and the default route's mtu; else ignored (ND_PRINTK(2), which Linux does not print).
        """
        msg = NdRouterAdvert.from_bytes(skb.payload())
        dev, saddr = skb.dev, hdr.saddr
        if not ipv6_addr_type(saddr) & IPV6_ADDR_LINKLOCAL:
            return pb.SKB_DROP_REASON_NOT_SPECIFIED
        if dev not in self.addrconf.idev:
            return pb.SKB_DROP_REASON_NOT_SPECIFIED
        opts = NdiscOptions.from_options(msg.options)
        cnf = self.devconf(dev)
        accept = self.ipv6_accept_ra(dev)
        ra = self.ra.setdefault(dev, RaState())
        rt = None
        if accept:
            with self._lock:
                rs = self._rs.get(dev)
                if rs is not None and rs.rs_sent:
                    rs.ra_rcvd = True
            ra.managed, ra.other = msg.managed, msg.other
            if cnf.accept_ra_defrtr and not (msg.router_lifetime and msg.router_lifetime < cnf.accept_ra_min_lft) \
                    and (cnf.accept_ra_from_local or not self.addrconf.ipv6_chk_addr(saddr, dev)):
                rt = self._defrtr(dev, saddr, msg, cnf, ra)
            if msg.retrans_timer:
                ra.nd_parms["retrans_time"] = max(msg.retrans_timer / 1000, 0.01)
            if msg.reachable_time:
                ra.nd_parms["base_reachable_time"] = max(msg.reachable_time / 1000, 0.1)
        lladdr = self._lladdr(opts.src_lladdr)
        if lladdr is False:
            return pb.SKB_DROP_REASON_NOT_SPECIFIED
        self._neigh_update(dev, saddr, lladdr, NUD_STALE, NEIGH_UPDATE_F_WEAK_OVERRIDE | NEIGH_UPDATE_F_OVERRIDE
                           | NEIGH_UPDATE_F_OVERRIDE_ISROUTER | NEIGH_UPDATE_F_ISROUTER, True)
        if not accept:
            return pb.SKB_CONSUMED
        if cnf.accept_ra_pinfo:
            for pinfo in opts.pi:
                if isinstance(pinfo, NdOptPrefixInfo):  # one too short is ignored
                    self.addrconf_prefix_rcv(dev, pinfo, opts.src_lladdr is not None)
        if opts.mtu is not None and cnf.accept_ra_mtu:
            mtu = opts.mtu.mtu
            ra.ra_mtu = mtu
            if mtu < IPV6_MIN_MTU or mtu > self.dev_mtu.get(dev, 1500):
                log.debug("ICMPv6: RA: invalid mtu: %d", mtu)  # ND_PRINTK(2): not printed (ND_DEBUG 1)
            elif self.mtu6.get(dev) != mtu:
                self.mtu6[dev] = mtu
                if rt is not None:
                    rt = self.addrconf.fib6_metric_set(rt, mtu=mtu)
        if opts.tgt_lladdr is not None or opts.rh is not None:
            log.debug("ICMPv6: RA: invalid RA options")
        return pb.SKB_CONSUMED

    def _defrtr(self, dev: str, saddr: int, msg: NdRouterAdvert, cnf: Ipv6Devconf, ra: RaState):
        """The default-router part of ndisc_router_discovery: the route, or None."""
        pref = msg.router_pref
        if pref == ICMPV6_ROUTER_PREF_INVALID or not cnf.accept_ra_rtr_pref:
            pref = ICMPV6_ROUTER_PREF_MEDIUM
        lifetime = msg.router_lifetime
        rt = self.addrconf.rt6_get_dflt_router(saddr, dev)  # (found even expired, until the gc removes it)
        if rt is not None and (lifetime == 0 or rt.metric != cnf.ra_defrtr_metric):
            self.addrconf.ip6_del_rt(rt)
            rt = None
        expires = self._clock() + lifetime
        if rt is None and lifetime:
            rt = self.addrconf.rt6_add_dflt_router(saddr, dev, RTF_PREF[pref], cnf.ra_defrtr_metric, expires)
            self.route6.fib6_start_gc()  # fib6_add of an RTF_EXPIRES route
        elif rt is not None and rt.pref != RTF_PREF[pref]:
            rt = self.addrconf.fib6_metric_set(rt, pref=RTF_PREF[pref])
        if rt is not None:
            rt = self.addrconf.fib6_set_expires(rt, expires)
        if cnf.accept_ra_min_hop_limit < 256 and msg.cur_hop_limit:
            if cnf.accept_ra_min_hop_limit <= msg.cur_hop_limit:
                ra.hop_limit = msg.cur_hop_limit
                if rt is not None:
                    rt = self.addrconf.fib6_metric_set(rt, hoplimit=msg.cur_hop_limit)
            else:
                log.debug("ICMPv6: RA: Got route advertisement with lower hop_limit than minimum")
        return rt

    def addrconf_prefix_rcv(self, dev: str, pinfo: NdOptPrefixInfo, sllao: bool) -> None:
        """addrconf_prefix_rcv(): not for a link-local or multicast prefix, nor one whose
        preferred lifetime exceeds its valid one (the kernel's warning). On-link (L): the prefix
        route (proto kernel, metric 256) expiring with the valid lifetime, or removed by a valid
        lifetime of 0. Autonomous (A, autoconf): for a /64, the address of the prefix and the
        device's EUI-64 interface id (addrconf_prefix_rcv_add_addr), new ones tentative and
        IFA_F_MANAGETEMPADDR, through DAD; an existing one's lifetimes as RFC 4862 5.5.3 e) has
        it (the valid lifetime not cut below two hours)."""
        if ipv6_addr_type(pinfo.prefix) & (IPV6_ADDR_MULTICAST | IPV6_ADDR_LINKLOCAL):
            return
        valid, prefered = pinfo.valid, pinfo.prefered
        if prefered > valid:
            log.warning("IPv6: addrconf: prefix option has invalid lifetime")
            return
        cnf = self.devconf(dev)
        if valid != 0 and valid < cnf.accept_ra_min_lft:
            return
        plen = pinfo.prefix_len
        prefix = pinfo.prefix >> (128 - plen) << (128 - plen) if 0 < plen <= 128 else 0
        if pinfo.onlink:
            self._prefix_route(dev, prefix, plen, valid)
        if not (pinfo.autoconf and cnf.autoconf):
            return
        mac = self.macs.get(dev)
        if plen != 64 or not mac:
            return
        addr = prefix | int.from_bytes(addrconf_ifid_eui48(mac), "big")
        ifp = self.addrconf.ipv6_get_ifaddr(addr, dev)
        now = self._clock()
        if ifp is None:
            if not valid:
                return
            if cnf.max_addresses and len(self.addrconf.addr_list(dev)) >= cnf.max_addresses:
                return
            try:
                ifp = self.addrconf.ipv6_add_addr(dev, Inet6Ifaddr(addr, plen, IFA_F_MANAGETEMPADDR, valid, prefered))
            except (ValueError, FileExistsError):
                return
            self._address_lifetimes(dev, ifp, now)
            if ifp.flags & IFA_F_TENTATIVE:
                self.addrconf_dad_start(dev, ifp)
            return
        stored = self._remaining(dev, ifp, now)
        if stored:
            valid = max(valid, min(stored, MIN_VALID_LIFETIME))
            ifp.valid_lft, ifp.prefered_lft = valid, prefered
            ifp.flags &= ~IFA_F_DEPRECATED
            self._address_lifetimes(dev, ifp, now)

    def _prefix_route(self, dev: str, prefix: int, plen: int, valid: int) -> None:
        """addrconf_prefix_rcv's on-link part: the prefix route an RA made (addrconf_get_prefix_route
        finds only those, RTF_ADDRCONF | RTF_PREFIX_RT) expires with the valid lifetime (none when
        infinite: fib6_clean_expires), or goes at 0; a new one is added, RTF_EXPIRES unless
        infinite, unless the prefix has a route already (a configured address's: -EEXIST, left as
        it is)."""
        expires = None if valid == INFINITY_LIFE_TIME else self._clock() + valid  # addrconf_finite_timeout
        rt = self._ra_prefix_route(dev, prefix, plen)
        if rt is not None:
            if valid:
                self.addrconf.fib6_set_expires(rt, expires)
                return
            self.addrconf.ip6_del_rt(rt)
            with self._lock:
                self._ra_prefixes.discard((prefix, plen, dev))
        elif valid and self.addrconf.addrconf_prefix_route(prefix, plen, dev, expires):
            with self._lock:
                self._ra_prefixes.add((prefix, plen, dev))
            if expires is not None:
                self.route6.fib6_start_gc()

    def _ra_prefix_route(self, dev: str, prefix: int, plen: int):
        """addrconf_get_prefix_route(..., RTF_ADDRCONF | RTF_PREFIX_RT, ...): the prefix route an RA
        made and the fib6 gc has not removed, or None."""
        with self._lock:
            ours = (prefix, plen, dev) in self._ra_prefixes
        rt = self.addrconf.addrconf_get_prefix_route(prefix, plen, dev) if ours else None
        if ours and rt is None:
            with self._lock:
                self._ra_prefixes.discard((prefix, plen, dev))
        return rt

    def _address_lifetimes(self, dev: str, ifa: Inet6Ifaddr, now: float) -> None:
        """ifp->tstamp and addrconf_verify()'s deadlines for an address of finite lifetimes:
        deprecated when the preferred lifetime runs out, deleted when the valid one does."""
        ifa.tstamp = now
        for key, lft in ((("addr", dev, ifa.addr), ifa.valid_lft), (("deprecate", dev, ifa.addr), ifa.prefered_lft)):
            if lft != INFINITY_LIFE_TIME:
                self._expire(key, now + lft)
            else:
                with self._lock:
                    self._expiring.pop(key, None)

    def _remaining(self, dev: str, ifa: Inet6Ifaddr, now: float) -> int:
        """The address's valid lifetime left, in whole seconds (its stored_lft)."""
        if ifa.valid_lft == INFINITY_LIFE_TIME:
            return INFINITY_LIFE_TIME
        return max(0, ifa.valid_lft - int(now - ifa.tstamp))

    # -- router advertisements sent: radvd (radvd.c, send.c, process.c, interface.c) -------
    def radvd_kickoff_adverts(self, dev: str) -> None:
        """setup_iface + kickoff_adverts(): once dev has a usable link-local address (radvd's
        if_addr_rasrc: DAD passed), the first RA to all nodes at once, the next
        MAX_INITIAL_RTR_ADVERT_INTERVAL later. Once per device."""
        with self._lock:
            r = self._radvd.get(dev)
            if r is None or r.ready or r.cease or not self.addrconf.ipv6_get_lladdr(
                    dev, IFA_F_TENTATIVE | IFA_F_OPTIMISTIC):
                return
            r.ready = True
            r.last_multicast = self._clock()
        self.radvd_send_ra_forall(dev, None)
        self._radvd_reschedule(dev, min(MAX_INITIAL_RTR_ADVERT_INTERVAL, r.conf.max_interval))

    def _radvd_reschedule(self, dev: str, delay: float) -> None:
        """reschedule_iface(): the next multicast RA `delay` from now, but while fewer than
        MAX_INITIAL_RTR_ADVERTISEMENTS went out, exactly min(MAX_INITIAL_RTR_ADVERT_INTERVAL,
        MaxRtrAdvInterval) from now (so an RS rate-limited then waits that long too, as radvd does)."""
        with self._lock:
            r = self._radvd[dev]
            if r.racount < MAX_INITIAL_RTR_ADVERTISEMENTS:
                delay = min(MAX_INITIAL_RTR_ADVERT_INTERVAL, r.conf.max_interval)
            due = r.next_multicast = self._clock() + delay
        self._timer_set(due)

    def radvd_timer_handler(self, dev: str) -> None:
        """timer_handler(): the unsolicited RA, then the next one a random time between
        MinRtrAdvInterval and MaxRtrAdvInterval later (rand_between)."""
        self.radvd_send_ra_forall(dev, None)
        conf = self._radvd[dev].conf
        self._radvd_reschedule(dev, conf.min_interval + (conf.max_interval - conf.min_interval) * self._rand())

    def radvd_rcv(self, skb, hdr: Ipv6Hdr) -> None:
        """radvd's raw ICMPv6 socket (ICMP6_FILTER: RADVD_ICMP6_FILTER) and process(): an RS of at
        least 8 bytes, code 0, hop limit 255, on an advertising device, to process_rs; others
        ignored (radvd's warnings; other routers' RAs are only checked for agreement by radvd:
        left out). Ipv6 hands it its copy of every RS and RA from ip6_protocol_deliver_rcu
        (raw6_local_deliver, before icmpv6_rcv), with a good checksum (rawv6_recvmsg), so radvd
        sees RSs the kernel drops, from :: among them (a host soliciting before its link-local
        address is valid), as Linux's radvd does: one answered with the multicast RA at once."""
        data = skb.payload()
        dev = skb.dev
        if len(data) < 8 or data[0] != NDISC_ROUTER_SOLICITATION or dev not in self._radvd:
            return
        if data[1] != 0:
            log.warning("radvd: received icmpv6 RS/RA packet with invalid code (%d) from %s", data[1],
                        ip6_to_str(hdr.saddr))
            return
        if hdr.hop_limit != NDISC_HOP_LIMIT:
            log.warning("radvd: received RS or RA with invalid hoplimit %d from %s", hdr.hop_limit,
                        ip6_to_str(hdr.saddr))
            return
        i = 8  # process_rs's own walk of the options
        while i < len(data):
            optlen = data[i + 1] << 3 if i + 1 < len(data) else -1
            if optlen <= 0 or i + optlen > len(data):
                log.warning("radvd: %s in RS", "trailing garbage" if optlen < 0 else "zero length option"
                            if optlen == 0 else "option length greater than total length")
                return
            if data[i] == ND_OPT_SOURCE_LL_ADDR and hdr.saddr == 0:
                log.warning("radvd: received icmpv6 RS packet with unspecified source address and there is a "
                            "lladdr option")
                return
            i += optlen
        self.radvd_process_rs(dev, hdr.saddr)

    def radvd_process_rs(self, dev: str, saddr: int) -> None:
        """process_rs() of a valid RS: AdvRASolicitedUnicast (on by default, RFC 7772) answers an RS
        from an address with its own RA, unicast, at once. One from :: gets the multicast RA at
        once, unless the last went out less than MinDelayBetweenRAs ago: then it goes
        MinDelayBetweenRAs after that one plus a random delay below MAX_RA_DELAY_TIME (RFC 4861
        6.2.6). Nothing before radvd is ready."""
        now = self._clock()
        delay = MAX_RA_DELAY_TIME * self._rand()
        with self._lock:
            r = self._radvd[dev]
            if not r.ready:  # send_ra_forall: "not sending RA for DEV, interface is not ready"
                return
            if saddr:
                r.unicast.append(saddr)  # sent by the timer thread now: radvd answers from its own process
            last = r.last_multicast
        if saddr:
            self._timer_set(now)
            return
        if last is not None and now - last < MIN_DELAY_BETWEEN_RAS:
            self._radvd_reschedule(dev, MIN_DELAY_BETWEEN_RAS - (now - last) + delay)
            return
        with self._lock:  # send_ra_forall now, then rand_between: radvd_timer_handler's two steps
            r.next_multicast = now
        self._timer_set(now)

    def radvd_stop_adverts(self) -> None:
        """stop_adverts() (radvd's exit): a final RA to all nodes with a router lifetime of 0
        (cease_adv, RFC 4861 6.2.5) out of every device that was advertising."""
        for dev, r in self._radvd.items():
            with self._lock:
                if not r.ready:
                    continue
                r.cease = True
                r.next_multicast = None
            self.radvd_send_ra_forall(dev, None)
            with self._lock:
                r.ready, r.unicast = False, []  # radvd has exited: no more RAs, solicited or not

    def radvd_send_ra_forall(self, dev: str, dest: int | None) -> None:
        """send_ra_forall() without a client list: racount counts the first RAs (solicited ones
        too), then send_ra()."""
        with self._lock:
            r = self._radvd[dev]
            if r.racount < MAX_INITIAL_RTR_ADVERTISEMENTS:
                r.racount += 1
        self.radvd_send_ra(dev, dest)

    def radvd_build_ra(self, dev: str) -> NdRouterAdvert:
        """add_ra_header + build_ra_options(): the current hop limit, no M or O flag, medium
        preference, the router lifetime (0 while ceasing or when IPv6 forwarding is off:
        check_ip6_forwarding), reachable time and retrans timer 0; then each prefix (on-link and
        autonomous, radvd's lifetimes), the MTU option if AdvLinkMTU, the source link-layer
        address (AdvSourceLLAddress), in that order."""
        r = self._radvd[dev]
        conf = r.conf
        lifetime = conf.default_lifetime if self.addrconf.forwarding and not r.cease else 0
        opts: list = [NdOptPrefixInfo(plen, ND_OPT_PI_FLAG_ONLINK | ND_OPT_PI_FLAG_AUTO, conf.valid_lifetime,
                                      conf.preferred_lifetime, prefix) for prefix, plen in conf.prefixes]
        if conf.link_mtu:
            opts.append(NdOptMtu(conf.link_mtu))
        mac = self.macs.get(dev)
        if mac:
            opts.append(src_lladdr(mac))
        return NdRouterAdvert(cur_hop_limit=conf.cur_hop_limit, router_lifetime=lifetime, options=tuple(opts))

    def radvd_send_ra(self, dev: str, dest: int | None) -> int:
        """send_ra() + really_send(): the RA from dev's link-local address (IPV6_PKTINFO) with hop
        limit 255 (IPV6_UNICAST_HOPS, IPV6_MULTICAST_HOPS), to dest or all nodes (ff02::1, then
        times.last_multicast), through the raw socket: ra_output, Icmp6OutMsgs and
        Icmp6OutRouterAdvertisements as __ip6_make_skb counts them. Returns the errno."""
        saddr = self.addrconf.ipv6_get_lladdr(dev, IFA_F_TENTATIVE | IFA_F_OPTIMISTIC)
        if not saddr:
            return errno.EADDRNOTAVAIL
        if dest is None:
            dest = IN6ADDR_LINKLOCAL_ALLNODES
            with self._lock:
                self._radvd[dev].last_multicast = self._clock()
        msg = self.radvd_build_ra(dev)
        if self._ra_output is None:
            return self.ndisc_send_skb(dev, msg, saddr, dest)
        body = msg.to_bytes(saddr, dest)  # IPV6_CHECKSUM 2: the kernel sums it
        skb = s.alloc_skb(s.MAX_HEADER + IPV6_HLEN + len(body), origin_host=self.host, sampled=False)
        s.skb_reserve(skb, s.MAX_HEADER + IPV6_HLEN)
        s.skb_put_data(skb, body)
        err = self._ra_output(skb, Flowi6(dest, saddr, IPPROTO_ICMPV6, oif=dev, hop_limit=NDISC_HOP_LIMIT,
                                          icmp_type=msg.type))
        if err not in (errno.ENETUNREACH, errno.EADDRNOTAVAIL):  # the route and source were found
            icmp6_out_stats(self.mib, msg.type)
        return err

    # -- timers --------------------------------------------------------------------------
    def _expire(self, key: tuple, due: float) -> None:
        with self._lock:
            self._expiring[key] = due
        self._timer_set(due)

    def _timer_set(self, due: float) -> None:
        """A new deadline: wake the caller's timer thread if it is earlier than it knows of."""
        with self._lock:
            earlier = self._next is None or due < self._next
            if earlier:
                self._next = due
        if earlier and self._on_timer is not None:
            self._on_timer()

    def tick(self) -> float | None:
        """Run every due timer (DAD work, router solicitations, delayed anycast answers, address
        lifetimes, the fib6 gc that removes expired routes, radvd's advertisements and solicited
        answers); return the next deadline, or None when nothing waits."""
        now = self._clock()
        with self._lock:
            dad = sorted((w for w in self._dad.values() if w.due is not None and w.due <= now), key=lambda w: w.due)
            for w in dad:
                w.due = None
            rs = [dev for dev, r in self._rs.items() if r.due is not None and r.due <= now]
            proxy = [q for q in self._proxy_queue if q[0] <= now]
            self._proxy_queue = [q for q in self._proxy_queue if q[0] > now]
            expired = [k for k, due in self._expiring.items() if due <= now]
            for k in expired:
                del self._expiring[k]
            unicast = [(dev, daddr) for dev, r in self._radvd.items() for daddr in r.unicast]
            adverts = [dev for dev, r in self._radvd.items()
                       if r.next_multicast is not None and r.next_multicast <= now]
            for r in self._radvd.values():
                r.unicast = []
            for dev in adverts:
                self._radvd[dev].next_multicast = None
        for w in dad:
            self.addrconf_dad_work(w)
        for dev in rs:
            self.addrconf_rs_timer(dev)
        for _, skb, hdr in proxy:
            self.pndisc_redo(skb, hdr)
        for key in expired:
            self._lifetime_over(key)
        gc_due = self.route6.fib6_gc_timer()
        for dev, daddr in unicast:
            self.radvd_send_ra_forall(dev, daddr)
        for dev in adverts:
            self.radvd_timer_handler(dev)
        with self._lock:
            dues = [w.due for w in self._dad.values() if w.due is not None]
            dues += [r.due for r in self._rs.values() if r.due is not None]
            dues += [r.next_multicast for r in self._radvd.values() if r.next_multicast is not None]
            dues += [now for r in self._radvd.values() if r.unicast]
            dues += [q[0] for q in self._proxy_queue] + list(self._expiring.values())
            dues += [gc_due] if gc_due is not None else []
            self._next = min(dues) if dues else None
            return self._next

    def _lifetime_over(self, key: tuple) -> None:
        """An address's lifetime (addrconf_verify): deprecated (its preferred lifetime shows 0 from
        tstamp), or deleted."""
        kind, dev, addr = key
        ifa = self.addrconf.ipv6_get_ifaddr(addr, dev)
        if ifa is None:
            return
        if kind == "deprecate":
            ifa.flags |= IFA_F_DEPRECATED
        else:
            self.addrconf.ipv6_del_addr(dev, ifa)
            with self._lock:
                self._expiring.pop(("deprecate", dev, addr), None)
                self._dad.pop((dev, addr), None)


def _h_source(skb) -> bytes:
    """eth_hdr(skb)->h_source: the sender's MAC, zeros when the skb kept no link-layer header."""
    if skb.mac_header == s.UNSET:
        return bytes(6)
    mac = s.skb_mac_header(skb)
    return bytes(mac[6:12]) if len(mac) >= 12 else bytes(6)

