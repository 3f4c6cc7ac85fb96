"""Topologies: hosts with interfaces, routes and netfilter rules, and the links between them.

One file drives both ways of running pktpath (local processes and compose).
The format is TOML; see pktpath/topologies/default.toml and router.toml.
A name without a path ("default", "router") means one of those.

    [[host]]            name; at (the machine it runs on, an address or a DNS name: its services listen
                        there, and its links to hosts at other machines are VXLAN tunnels; default: this one);
                        forwarding (ip_forward and net.ipv6.conf.all.forwarding, default false);
                        tcp_congestion_control ("cubic", the default, or "reno"); tcp_timewait (seconds, default 60);
                        file_max (fs.file-max: open descriptors host-wide; default as the kernel
                        sizes it from memory)
    [[host.interface]]  name, mac, addr ("10.0.0.1/24"), addr6 (IPv6 addresses, ["2001:db8::1/64"]),
                        mtu (default 1500), rx_ring, tx_ring (descriptors, as ethtool -G sets them; default 256),
                        gro (generic receive offload, as ethtool -K sets it; default true),
                        qdisc (its root qdisc: "pfifo_fast", Linux's default, or "fq", which paces TCP),
                        attach ("tap:pkt0": a TAP device the NIC creates; "packet:veth0": an existing
                        interface through an AF_PACKET socket; "vxlan:192.0.2.7": a VXLAN tunnel to
                        that machine, UDP 4789; the Linux kernel is then the peer), vni (the tunnel's,
                        default 1),
                        advertise (send router advertisements of the interface's addr6 prefixes, as
                        radvd's `AdvSendAdvert on` with radvd's defaults; only on a forwarding host),
                        adv_link_mtu (radvd's AdvLinkMTU: the MTU option advertised; 0, the default, none)
    [[host.route]]      dst ("0.0.0.0/0"; IPv6: "::/0"), via (gateway, optional, of dst's family), dev,
                        metric (an IPv6 route's 0 is 1024, IP6_RT_PRIO_USER, as ip -6 route add makes it)
    [[host.rule]]       hook (PRE_ROUTING...), src, dst, proto (icmp/icmpv6/udp/tcp), sport, dport, target,
                        family ("ip", iptables', or "ip6", ip6tables': nft's names; by default an IPv6
                        src or dst or proto icmpv6 makes it "ip6", anything else "ip")
    [[link]]            a, b ("HOST:IF"); loss, corrupt, duplicate, reorder (0..1), delay_ms; vni (its VXLAN
                        network identifier where its hosts are at different machines; default: its number)

Connected routes need not be listed: each interface's prefix is one, as the
kernel adds them with the address (proto kernel, scope link).

IPv6 (net/ipv6/addrconf.c): every interface has it, as Linux's do, with a link-local
address made from its MAC (fe80::/64 and the EUI-64 interface id) whether or not it
lists addr6; each addr6 brings its prefix's connected route (proto kernel, metric 256).
An interface whose MTU is below 1280 (IPV6_MIN_MTU) has none, as in Linux: no link-local
address, and no addr6 or IPv6 route may name it. IPv6 routes are Host.routes6; Host.routes
stays IPv4's. Likewise IPv6 rules are Host.rules6 (ip6tables' table, apart from iptables' as
in Linux); Host.rules stays IPv4's.
"""

import dataclasses
import difflib
import ipaddress
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from pktpath.ring import DEFAULT_RING_SIZE, MAX_RING_SIZE
from pktpath.wire.addr import addrconf_addr_gen_eui64, mac_from_str
from pktpath.wire.errors import SanityError

HOOKS = ("PRE_ROUTING", "LOCAL_IN", "FORWARD", "LOCAL_OUT", "POST_ROUTING")
PROTOCOLS = {"icmp": 1, "tcp": 6, "udp": 17, "icmpv6": 58}
RULE_FAMILIES = ("ip", "ip6")  # nft's names for iptables' and ip6tables' tables
CONGESTION_CONTROLS = ("cubic", "reno")
TARGETS = ("ACCEPT", "DROP")
# a TAP device pktpath creates; an existing interface, by AF_PACKET; a VXLAN tunnel to a machine
ATTACH_KINDS = ("tap", "packet", "vxlan")
VXLAN_N_VID = 1 << 24  # VNIs are 24 bits (RFC 7348)
QDISC_KINDS = ("pfifo_fast", "fq")  # the root qdiscs the softirq layer has (services/softirq/qdisc.py)
IFNAMSIZ = 16
IP6_RT_PRIO_USER = 1024     # include/net/ip6_route.h: an IPv6 route's metric when none is given
IP6_RT_PRIO_ADDRCONF = 256  # a connected (prefix) route's: addrconf_prefix_route()
LINK_LOCAL_PREFIX = ipaddress.IPv6Network("fe80::/64")  # every interface's, from addrconf_addr_gen()
IPV6_MIN_MTU = 1280  # include/linux/ipv6.h: below it an interface has no IPv6 (ipv6_add_dev refuses it)


class TopologyError(ValueError):
    pass


@dataclass(frozen=True)
class Interface:
    name: str
    mac: str
    addr: ipaddress.IPv4Interface
    mtu: int = 1500
    rx_ring: int = DEFAULT_RING_SIZE
    tx_ring: int = DEFAULT_RING_SIZE
    gro: bool = True
    qdisc: str = "pfifo_fast"
    attach: str = ""  # "tap:NAME", "packet:NAME" or "vxlan:REMOTE": the Linux kernel is the other end of the wire
    addr6: tuple[ipaddress.IPv6Interface, ...] = ()  # configured (permanent) IPv6 addresses, in file order
    advertise: bool = False  # router advertisements out of it (radvd's AdvSendAdvert on): services/l3/ndisc.py
    adv_link_mtu: int = 0    # radvd's AdvLinkMTU: 0 sends no MTU option
    vni: int = 1             # with attach "vxlan:REMOTE": the tunnel's VXLAN network identifier


@dataclass(frozen=True)
class Route:
    dst: ipaddress.IPv4Network | ipaddress.IPv6Network
    dev: str
    via: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None
    metric: int = 0


@dataclass(frozen=True)
class Rule:
    hook: str
    target: str
    src: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    dst: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    proto: int = 0
    sport: int = 0
    dport: int = 0


@dataclass(frozen=True)
class Host:
    name: str
    interfaces: tuple[Interface, ...]
    routes: tuple[Route, ...] = ()
    rules: tuple[Rule, ...] = ()
    forwarding: bool = False
    tcp_congestion_control: str = "cubic"  # net.ipv4.tcp_congestion_control
    tcp_timewait: float = 60.0             # TCP_TIMEWAIT_LEN (2 MSL), shorter for tests
    file_max: int = 0                      # fs.file-max; 0: files_maxfiles_init()'s, from memory
    routes6: tuple[Route, ...] = ()        # the IPv6 routes ([[host.route]] with an IPv6 dst)
    rules6: tuple[Rule, ...] = ()          # ip6tables' rules ([[host.rule]] of family "ip6")
    at: str = ""                           # the machine it runs on (an address or name); "": this one

    def interface(self, name: str) -> Interface:
        for iface in self.interfaces:
            if iface.name == name:
                return iface
        raise TopologyError(f"host {self.name} has no interface {name!r}")


@dataclass(frozen=True)
class Endpoint:
    host: str
    dev: str

    def __str__(self) -> str:
        return f"{self.host}:{self.dev}"


@dataclass(frozen=True)
class Link:
    a: Endpoint
    b: Endpoint
    loss: float = 0.0
    corrupt: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    delay_ms: float = 0.0
    vni: int = 0  # its VXLAN network identifier where it is a tunnel (its ends on two machines)


@dataclass(frozen=True)
class Topology:
    name: str
    hosts: tuple[Host, ...]
    links: tuple[Link, ...] = field(default=())
    source: str = ""  # what load() was given, made absolute: how child processes load it too

    def host(self, name: str) -> Host:
        for host in self.hosts:
            if host.name == name:
                return host
        raise TopologyError(f"no host {name!r} in topology {self.name}")

    def peer(self, host: str, dev: str) -> tuple[Endpoint, Link] | None:
        """The other end of the link on host:dev, and the link; None if unplugged."""
        me = Endpoint(host, dev)
        for link in self.links:
            if link.a == me:
                return link.b, link
            if link.b == me:
                return link.a, link
        return None


# The keys each table may have: a misspelled one ("lose", "mtuu") is an error, not ignored.
KEYS = {
    "": ("host", "link"),
    "host": ("name", "interface", "route", "rule", "forwarding", "tcp_congestion_control", "tcp_timewait",
             "file_max", "at"),
    "interface": ("name", "mac", "addr", "addr6", "mtu", "rx_ring", "tx_ring", "gro", "qdisc", "attach", "advertise",
                  "adv_link_mtu", "vni"),
    "route": ("dst", "via", "dev", "metric"),
    "rule": ("hook", "src", "dst", "proto", "sport", "dport", "target", "family"),
    "link": ("a", "b", "loss", "corrupt", "duplicate", "reorder", "delay_ms", "vni"),
}


def _tables(parent: dict, key: str, where: str, kind: str = "") -> list[dict]:
    """The [[key]] tables of a table, each checked for unknown keys."""
    tables = parent.get(key, [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise TopologyError(f"{where}{' ' if where else ''}{key!r}: write [[{kind or key}]] tables, "
                            f"one per {key}")
    for t in tables:
        _known(t, kind or key, where)
    return tables


def _known(table: dict, kind: str, where: str) -> None:
    for key in table:
        if key not in KEYS[kind]:
            close = difflib.get_close_matches(key, KEYS[kind], n=1)
            hint = (f" (did you mean {close[0]!r}?)" if close
                    else f" ({kind or 'the file'} takes {', '.join(KEYS[kind])})")
            raise TopologyError(f"{where or kind or 'topology'}: unknown key {key!r}{hint}")


def _get(table: dict, key: str, where: str, kind=str, default=...):
    if key not in table:
        if default is ...:
            raise TopologyError(f"{where}: missing {key!r}")
        return default
    value = table[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TopologyError(f"{where}: {key!r} must be {kind.__name__}, not {value!r}")
    return value


def _parse(kind, text: str, where: str):
    try:
        return kind(text)
    except ValueError as exc:
        raise TopologyError(f"{where}: {exc}") from None


def _interface(t: dict, where: str) -> Interface:
    name = _get(t, "name", where)
    if not 0 < len(name) < IFNAMSIZ or not name.isascii() or not name.isprintable() or any(c in name for c in "/: "):
        raise TopologyError(f"{where} interface {name!r}: a name is 1..{IFNAMSIZ - 1} characters without /, : "
                            f"or spaces (dev_valid_name)")
    where = f"{where} interface {name}"
    mac = _get(t, "mac", where)
    try:
        mac_from_str(mac)
    except SanityError as exc:
        raise TopologyError(f"{where}: {exc}") from None
    addr = _parse(ipaddress.IPv4Interface, _get(t, "addr", where), where)
    net = addr.network
    if net.prefixlen < 31 and addr.ip in (net.network_address, net.broadcast_address):
        own = "address" if addr.ip == net.network_address else "broadcast"
        raise TopologyError(f"{where}: addr {addr} is the network's own {own}, not a host's")
    mtu = _get(t, "mtu", where, int, 1500)
    if not 68 <= mtu <= 9000:
        raise TopologyError(f"{where}: mtu {mtu} outside 68..9000")
    rings = {k: _get(t, k, where, int, DEFAULT_RING_SIZE) for k in ("rx_ring", "tx_ring")}
    if any(not 1 <= n <= MAX_RING_SIZE for n in rings.values()):
        raise TopologyError(f"{where}: rx_ring and tx_ring are 1..{MAX_RING_SIZE} descriptors")
    attach = _get(t, "attach", where, str, "")
    kind, _, ifname = attach.partition(":")
    if kind == "vxlan":
        _machine(ifname, f"{where}: attach {attach!r}: the tunnel's remote end")
    elif attach and (kind not in ATTACH_KINDS or not 0 < len(ifname) < IFNAMSIZ or "/" in ifname or " " in ifname):
        raise TopologyError(f"{where}: attach {attach!r} is not tap:NAME or packet:NAME (a Linux interface name, "
                            f"at most {IFNAMSIZ - 1} characters) or vxlan:REMOTE (an address or a name)")
    if "vni" in t and kind != "vxlan":
        raise TopologyError(f"{where}: vni is a VXLAN tunnel's: it needs attach = \"vxlan:REMOTE\"")
    vni = _vni(_get(t, "vni", where, int, 1), where)
    qdisc = _get(t, "qdisc", where, str, "pfifo_fast")
    if qdisc not in QDISC_KINDS:
        raise TopologyError(f"{where}: qdisc {qdisc!r} is not one of {', '.join(QDISC_KINDS)}")
    addr6 = _addr6(t.get("addr6", []), where)
    if addr6 and mtu < IPV6_MIN_MTU:
        raise TopologyError(f"{where}: addr6 needs an mtu of at least {IPV6_MIN_MTU} (IPV6_MIN_MTU), not {mtu}: "
                            f"Linux has no IPv6 on a smaller one (ipv6_add_dev: Invalid argument)")
    advertise = _get(t, "advertise", where, bool, False)
    adv_link_mtu = _get(t, "adv_link_mtu", where, int, 0)
    if advertise and mtu < IPV6_MIN_MTU:
        raise TopologyError(f"{where}: advertise needs an mtu of at least {IPV6_MIN_MTU} (IPV6_MIN_MTU), not {mtu}: "
                            f"the interface has no IPv6 to advertise from")
    if adv_link_mtu and not advertise:
        raise TopologyError(f"{where}: adv_link_mtu is what router advertisements carry: it needs advertise = true")
    if adv_link_mtu and not IPV6_MIN_MTU <= adv_link_mtu <= mtu:  # radvd's check_iface
        raise TopologyError(f"{where}: AdvLinkMTU for {name} ({adv_link_mtu}) must be zero or between "
                            f"{IPV6_MIN_MTU} and {mtu} (adv_link_mtu: at most the interface's mtu)")
    return Interface(name, mac.lower(), addr, mtu, **rings, gro=_get(t, "gro", where, bool, True), qdisc=qdisc,
                     attach=attach, addr6=addr6, advertise=advertise, adv_link_mtu=adv_link_mtu, vni=vni)


def _vni(vni: int, where: str) -> int:
    if not 0 < vni < VXLAN_N_VID:
        raise TopologyError(f"{where}: vni {vni} is not 1..{VXLAN_N_VID - 1} (24 bits)")
    return vni


def _machine(text: str, where: str) -> str:
    """A machine's address or DNS name (RFC 1123), as a host's `at` or a tunnel's remote names it."""
    try:
        ipaddress.ip_address(text)
        return text
    except ValueError:
        pass
    labels = text.split(".")
    if not 0 < len(text) <= 253 or not all(
            0 < len(x) <= 63 and x.isascii() and x.replace("-", "").isalnum() and not x.startswith("-")
            and not x.endswith("-") for x in labels):
        raise TopologyError(f"{where}: {text!r} is neither an IP address nor a DNS name")
    return text


def _addr6(values, where: str) -> tuple[ipaddress.IPv6Interface, ...]:
    """An interface's IPv6 addresses, each one ipv6_add_addr() would take and a host may have."""
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise TopologyError(f"{where}: 'addr6' must be a list of addresses, [\"2001:db8::1/64\"], not {values!r}")
    addrs: list[ipaddress.IPv6Interface] = []
    for text in values:
        try:
            addr = ipaddress.IPv6Interface(text)
        except ValueError as exc:
            raise TopologyError(f"{where}: addr6 {text!r} is not an IPv6 address with a prefix length "
                                f"(\"2001:db8::1/64\"): {exc}") from None
        ip, net = addr.ip, addr.network
        why = ("prefix length 0: an address's prefix is /1 to /128" if net.prefixlen == 0
               else "the unspecified address (ipv6_add_addr: Invalid address)" if ip.is_unspecified
               else "the loopback address, lo's alone (ipv6_add_addr: Cannot assign loopback address on this device)"
               if ip.is_loopback
               else "a multicast address, a group and not an interface's (ipv6_add_addr: Cannot assign multicast "
                    "address)" if ip.is_multicast
               else "IPv4-mapped, never on the wire (ip6_rcv_core drops it)" if ip.ipv4_mapped
               else "the subnet-router anycast address (RFC 4291 2.6.1), not a host's"
               if net.prefixlen < 127 and ip == net.network_address else "")
        if why:
            raise TopologyError(f"{where}: addr6 {addr} is {why}")
        if any(a.ip == ip for a in addrs):
            raise TopologyError(f"{where}: addr6 {ip} is listed twice (ipv6: address already assigned)")
        addrs.append(addr)
    return tuple(addrs)


def _route(t: dict, where: str) -> Route:
    """An IPv4 or IPv6 route, dst's family deciding which; its gateway of the same family."""
    dst = _parse(ipaddress.ip_network, _get(t, "dst", where), where)
    via = _get(t, "via", where, str, "")
    metric = _get(t, "metric", where, int, 0)
    if not 0 <= metric <= 0xFFFFFFFF:
        raise TopologyError(f"{where}: metric {metric} is not 0..4294967295")
    gateway = _parse(ipaddress.ip_address, via, where) if via else None
    if gateway is not None and gateway.version != dst.version:
        raise TopologyError(f"{where} {dst}: via {gateway} is not an IPv{dst.version} address, as an "
                            f"IPv{dst.version} route's gateway is")
    if dst.version == 6 and metric == 0:
        metric = IP6_RT_PRIO_USER  # ip6_route_info_create()
    return Route(dst, _get(t, "dev", where), gateway, metric)


def _check_routes6(where: str, ifaces: tuple[Interface, ...], routes6: tuple[Route, ...]) -> None:
    """What ip -6 route add refuses: a gateway that is not a unicast neighbour on the device's
    link (ip6_validate_gw, ip6_route_check_nh), and a second route to a prefix at one metric."""
    local = {ipaddress.IPv6Address(1)} | {a for i in ifaces for a in _link_locals(i)} | {
        a.ip for i in ifaces for a in i.addr6}
    taken = {(net, IP6_RT_PRIO_ADDRCONF): f"{i.name}'s connected route" for i in ifaces if i.mtu >= IPV6_MIN_MTU
             for net in (*(a.network for a in i.addr6), LINK_LOCAL_PREFIX)}
    for r in routes6:
        at = f"{where} route {r.dst}"
        dev = next(i for i in ifaces if i.name == r.dev)
        if dev.mtu < IPV6_MIN_MTU:
            raise TopologyError(f"{at}: {r.dev} has no IPv6: its mtu {dev.mtu} is below {IPV6_MIN_MTU} "
                                f"(IPV6_MIN_MTU)")
        if r.via is not None:
            onlink = [a.network for a in dev.addr6] + [x.dst for x in routes6 if x.dev == r.dev and x.via is None]
            if r.via.is_multicast or r.via.is_unspecified:
                raise TopologyError(f"{at}: via {r.via} is not a unicast neighbour (ip6_validate_gw: Invalid "
                                    f"gateway address)")
            if r.via in local:
                raise TopologyError(f"{at}: via {r.via} is {where}'s own address (ip6_validate_gw: Gateway can "
                                    f"not be a local address)")
            if not r.via.is_link_local and not any(r.via in net for net in onlink):
                nets = ", ".join(map(str, onlink)) or "none but the link-local fe80::/64"
                raise TopologyError(f"{at}: via {r.via} is not on {r.dev}'s prefixes ({nets}): ip6_route_check_nh "
                                    f"finds no route to it (No route to host)")
        if (r.dst, r.metric) in taken:
            raise TopologyError(f"{at}: metric {r.metric} is taken by {taken[r.dst, r.metric]} (fib6_add_rt2: one "
                                f"route per prefix and metric; RTNETLINK answers: File exists)")
        taken[r.dst, r.metric] = f"the route via {r.via}" if r.via else f"the route dev {r.dev}"


def _rule(t: dict, where: str) -> tuple[str, Rule]:
    """A rule and its family: the one given, else "ip6" for an IPv6 src or dst or proto icmpv6."""
    hook = _get(t, "hook", where).upper()
    target = _get(t, "target", where).upper()
    if hook not in HOOKS:
        raise TopologyError(f"{where}: hook {hook!r} is not one of {', '.join(HOOKS)}")
    if target not in TARGETS:
        raise TopologyError(f"{where}: target {target!r} is not one of {', '.join(TARGETS)}")
    proto = _get(t, "proto", where, str, "")
    if proto and proto not in PROTOCOLS:
        raise TopologyError(f"{where}: proto {proto!r} is not one of {', '.join(PROTOCOLS)}")
    nets = {k: _parse(ipaddress.ip_network, _get(t, k, where), where) if k in t else None for k in ("src", "dst")}
    versions = {n.version for n in nets.values() if n is not None}
    family = _get(t, "family", where, str, "ip6" if 6 in versions or proto == "icmpv6" else "ip")
    if family not in RULE_FAMILIES:
        raise TopologyError(f"{where}: family {family!r} is not one of {', '.join(RULE_FAMILIES)}")
    if versions - {6 if family == "ip6" else 4}:
        raise TopologyError(f"{where}: src and dst are of one family, the rule's ({family}: "
                            f"{'IPv6' if family == 'ip6' else 'IPv4'} prefixes)")
    ports = {k: _get(t, k, where, int, 0) for k in ("sport", "dport")}
    if any(not 0 <= p <= 0xFFFF for p in ports.values()):
        raise TopologyError(f"{where}: ports are 0..65535")
    return family, Rule(hook, target, nets["src"], nets["dst"], PROTOCOLS.get(proto, 0), **ports)


def _endpoint(text: str, where: str) -> Endpoint:
    host, sep, dev = text.partition(":")
    if not sep or not host or not dev:
        raise TopologyError(f"{where}: endpoint {text!r} is not HOST:IF")
    return Endpoint(host, dev)


def parse(doc: dict, name: str = "topology") -> Topology:
    hosts = []
    _known(doc, "", "")
    for i, h in enumerate(_tables(doc, "host", "")):
        hname = _get(h, "name", f"host #{i + 1}")
        where = f"host {hname}"
        ifaces = tuple(_interface(t, where) for t in _tables(h, "interface", where))
        if not ifaces:
            raise TopologyError(f"{where}: no interfaces")
        if len({x.name for x in ifaces}) != len(ifaces):
            raise TopologyError(f"{where}: duplicate interface names")
        all_routes = tuple(_route(t, f"{where} route") for t in _tables(h, "route", where))
        routes = tuple(r for r in all_routes if r.dst.version == 4)
        routes6 = tuple(r for r in all_routes if r.dst.version == 6)
        for r in all_routes:
            if r.dev not in {x.name for x in ifaces}:
                raise TopologyError(f"{where} route {r.dst}: no interface {r.dev!r}")
            dev = next(x for x in ifaces if x.name == r.dev)
            if r.dst.version == 4 and r.via is not None and r.via not in dev.addr.network:
                raise TopologyError(f"{where} route {r.dst}: via {r.via} is not on {r.dev}'s subnet "
                                    f"{dev.addr.network} (fib_check_nh: the gateway must be reachable)")
        all_rules = [_rule(t, f"{where} rule") for t in _tables(h, "rule", where)]
        rules = tuple(r for family, r in all_rules if family == "ip")
        rules6 = tuple(r for family, r in all_rules if family == "ip6")
        cc = _get(h, "tcp_congestion_control", where, str, "cubic")
        if cc not in CONGESTION_CONTROLS:
            raise TopologyError(f"{where}: tcp_congestion_control {cc!r} is not one of "
                                f"{', '.join(CONGESTION_CONTROLS)}")
        timewait = _get(h, "tcp_timewait", where, float, 60.0)
        if not 0 < timewait <= 3600:
            raise TopologyError(f"{where}: tcp_timewait {timewait} must be between 0 and 3600 seconds")
        file_max = _get(h, "file_max", where, int, 0)
        if not 0 <= file_max <= 2**63 - 1:
            raise TopologyError(f"{where}: file_max {file_max} must be 0 (the kernel's default) or more")
        _check_routes6(where, ifaces, routes6)
        forwarding = _get(h, "forwarding", where, bool, False)
        for x in ifaces:
            if x.advertise and not forwarding:  # radvd's RAs from a host not forwarding say "not a router"
                raise TopologyError(f"{where} interface {x.name}: advertise needs forwarding = true on the host: "
                                    f"router advertisements come from a router (radvd: IPv6 forwarding seems to "
                                    f"be disabled)")
        at = _machine(_get(h, "at", where, str), f"{where}: at") if "at" in h else ""
        hosts.append(Host(hname, ifaces, routes, rules, forwarding, cc, timewait, file_max, routes6, rules6, at))
    if not hosts:
        raise TopologyError(f"{name}: no hosts")
    names = [h.name for h in hosts]
    if len(set(names)) != len(names):
        raise TopologyError(f"{name}: duplicate host names")
    for h in hosts:
        if not h.name.isidentifier():
            raise TopologyError(f"host {h.name!r}: names are letters, digits and _")
    for what, key in (("addr", lambda i: i.addr.ip), ("mac", lambda i: i.mac)):
        seen: dict = {}
        for h in hosts:
            for iface in h.interfaces:
                other = seen.setdefault(key(iface), f"{h.name}:{iface.name}")
                if other != f"{h.name}:{iface.name}":
                    raise TopologyError(f"host {h.name} interface {iface.name}: {what} {key(iface)} is also "
                                        f"{other}'s")
    seen = {}
    for h in hosts:  # a global IPv6 address is one interface's in the whole topology (DAD would say so)
        for iface in h.interfaces:
            for a in iface.addr6:
                other = seen.setdefault(a.ip, f"{h.name}:{iface.name}")
                if not a.ip.is_link_local and other != f"{h.name}:{iface.name}":
                    raise TopologyError(f"host {h.name} interface {iface.name}: addr6 {a.ip} is also {other}'s")
    topo = Topology(name, tuple(hosts))
    links, used = [], set()
    for i, t in enumerate(_tables(doc, "link", "")):
        where = f"link #{i + 1}"
        a, b = _endpoint(_get(t, "a", where), where), _endpoint(_get(t, "b", where), where)
        for end in (a, b):
            if topo.host(end.host).interface(end.dev).attach:
                raise TopologyError(f"{where}: {end} is attached to a Linux interface, not to a link")
            if end in used:
                raise TopologyError(f"{where}: {end} is already on a link")
            used.add(end)
        rates = {k: _get(t, k, where, float, 0.0) for k in ("loss", "corrupt", "duplicate", "reorder")}
        if any(not 0.0 <= v <= 1.0 for v in rates.values()):
            raise TopologyError(f"{where}: loss, corrupt, duplicate and reorder are fractions 0..1")
        delay = _get(t, "delay_ms", where, float, 0.0)
        if delay < 0:
            raise TopologyError(f"{where}: delay_ms < 0")
        same = (_link_locals(topo.host(a.host).interface(a.dev))
                & _link_locals(topo.host(b.host).interface(b.dev)))
        if same:  # link-local addresses need only be unique on their link
            raise TopologyError(f"{where}: {a} and {b} both have the link-local address {min(same)} "
                                f"(DAD would fail on one of them)")
        vni = _vni(_get(t, "vni", where, int, i + 1), where)
        if any(x.vni == vni for x in links):
            raise TopologyError(f"{where}: vni {vni} is also another link's (a tunnel's VNI tells its frames apart)")
        links.append(Link(a, b, delay_ms=delay, vni=vni, **rates))
    return Topology(name, tuple(hosts), tuple(links))


def _link_locals(iface: Interface) -> set[ipaddress.IPv6Address]:
    """An interface's link-local addresses: its configured ones and the one from its MAC
    (none if its MTU is too small for IPv6)."""
    if iface.mtu < IPV6_MIN_MTU:
        return set()
    return {a.ip for a in iface.addr6 if a.ip.is_link_local} | {
        ipaddress.IPv6Address(addrconf_addr_gen_eui64(mac_from_str(iface.mac)))}


def builtins() -> list[str]:
    """The names of the built-in topologies."""
    return sorted(r.name.removesuffix(".toml") for r in resources.files("pktpath.topologies").iterdir()
                  if r.name.endswith(".toml"))


def _builtin(name: str):
    return resources.files("pktpath.topologies").joinpath(f"{name}.toml")


def source_text(topology: Topology) -> str:
    """The text of the file the topology was loaded from (a built-in one's, by name)."""
    if "/" in (topology.source or ""):
        return Path(topology.source).read_text()
    return _builtin(topology.source or topology.name).read_text()


def load(spec: str | Path = "default") -> Topology:
    """Load a topology file, or a built-in one by name ("default", "router")."""
    path = Path(spec)
    if path.suffix != ".toml" and not path.exists():
        ref = _builtin(str(spec))
        if not ref.is_file():
            raise TopologyError(f"no topology file {spec!r} and no built-in topology of that name")
        text, name, source = ref.read_text(), str(spec), str(spec)
    else:
        try:
            text, name, source = path.read_bytes().decode("utf-8"), path.stem, str(path.resolve())
        except OSError as exc:
            raise TopologyError(f"cannot read {path}: {exc.strerror}") from None
        except UnicodeDecodeError as exc:
            raise TopologyError(f"{path}: not UTF-8 text (byte {exc.start}), as TOML must be") from None
    try:
        doc = tomllib.loads(text)
        return dataclasses.replace(parse(doc, name), source=source)
    except tomllib.TOMLDecodeError as exc:
        raise TopologyError(f"{source}: {exc}") from None
    except TopologyError as exc:  # one line naming the file, the key and what is wrong
        raise TopologyError(f"{source}: {exc}") from None
