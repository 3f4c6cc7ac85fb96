"""`pktpath ip`: iproute2's `ip` over a running host — route (and `route get`), neigh,
addr, link (`-s`: its statistics), maddr — in ip's own words and columns, and as `ip -j` prints
them: each object is a list of records with iproute2's JSON field names, and the text is
rendered from the same records (ip/iproute.c, ipneigh.c, ipaddress.c).

`-4` and `-6` choose a family as ip's do: `ip addr` shows both (inet, then the inet6
addresses L3's addrconf keeps), `ip route` IPv4's main table unless -6. Under a family,
`ip addr` shows only the devices with an address of it, without their link/ether line;
`ip -6 addr` without `dev` lists them as the kernel's AF_INET6 link dump describes them
(inet6_fill_ifinfo: no qdisc, no group).

`ip maddr` lists each device's IPv6 multicast groups (L3's ifmcaddr6 lists, newest first, as
/proc/net/igmp6 has them), a group's users when more than one (ip/ipmaddr.c).

IPv6 routes as Linux 6.18 shows them: an RA's with `expires NNNsec` (what RTF_EXPIRES leaves,
below 0 once past until the kernel's gc removes the route) and its RTAX_MTU / RTAX_HOPLIMIT
metrics (`mtu 1400 hoplimit 64`, -j's "metrics"); SLAAC addresses with their lifetimes counting
down, `forever` for a static one. `ip -6 route get ADDR` as rt6_fill_node fills it (`from ::`,
`src`, a redirect's new first hop; no `uid`/`cache` line, unlike IPv4's).

What pktpath has no model of is not shown: no loopback device (so not lo's ::1 either), no
IPv4 groups (IGMP) and no link-layer multicast list in `ip maddr`.
Its devices are numbered from 1 in topology order.
"""

import os
from typing import Callable

from google.protobuf import empty_pb2

from pktpath.pb import l2_pb2, l3_pb2, name_of, nic_pb2
from pktpath.wire.addr import ip6_from_str, ip6_to_str, ip_from_str, ip_to_str

OBJECTS = {"route": ("r", "ro", "rou", "rout", "route"), "neigh": ("n", "ne", "nei", "neig", "neigh", "neighbor",
           "neighbour"), "addr": ("a", "ad", "add", "addr", "address"), "link": ("l", "li", "lin", "link"),
           "maddr": ("m", "ma", "mad", "madd", "maddr", "maddre", "maddres", "maddress")}
INFINITY_LIFE = 4294967295  # an address that does not expire, as ip -j says "forever"
AF_INET6 = 10                # a Route's family (pktpath.v1.Route)
IFA_F_SECONDARY, IFA_F_PERMANENT = 0x01, 0x80
# print_ifa_flags()'s table (ip/ipaddress.c, ifa_flag_data), in its order: an IPv6 address's
# IFA_F_SECONDARY is "temporary", and IFA_F_PERMANENT is shown by its absence, "dynamic".
IFA_FLAGS6 = (("temporary", IFA_F_SECONDARY), ("nodad", 0x02), ("optimistic", 0x04), ("dadfailed", 0x08),
              ("home", 0x10), ("deprecated", 0x20), ("tentative", 0x40), ("dynamic", IFA_F_PERMANENT),
              ("mngtmpaddr", 0x100), ("noprefixroute", 0x200), ("autojoin", 0x400), ("stable-privacy", 0x800))
QDISC, TXQLEN = "pfifo_fast", 1000  # the softirq layer's qdisc and its txqueuelen (services/softirq/napi.py)


def object_of(word: str) -> str:
    """ip's abbreviations: `ip r`, `ip n`, `ip a`, `ip l`."""
    for name, spellings in OBJECTS.items():
        if word in spellings:
            return name
    raise ValueError(f'Object "{word}" is unknown, try "pktpath ip help".')


# -- records --------------------------------------------------------------------------
def routes(view, family: int = 4) -> list[dict]:
    """ip route (family 4, ip's default for routes) or ip -6 route: the main table."""
    out = []
    for r in view.stub["l3"].GetRoutes(empty_pb2.Empty(), timeout=5).routes:
        if (6 if r.family == AF_INET6 else 4) != family:
            continue
        if r.family == AF_INET6:
            out.append(_route6(r))
            continue
        rec = {"dst": "default" if r.dst == "0.0.0.0/0" else r.dst}
        if r.gateway:
            rec["gateway"] = r.gateway
        rec["dev"] = r.dev
        rec["protocol"] = r.proto
        if r.scope != "global":
            rec["scope"] = r.scope
        if r.prefsrc:
            rec["prefsrc"] = r.prefsrc
        if r.metric:
            rec["metric"] = r.metric
        rec["flags"] = []
        out.append(rec)
    return out


def _route6(r, get: dict | None = None) -> dict:
    """An IPv6 route as ip -6 route shows it: no scope (all are universe), a host route
    without its /128, the metric always, what RTF_EXPIRES leaves (`expires NNNsec`, below 0
    once past until the kernel's gc removes it), the RTAX_MTU and RTAX_HOPLIMIT metrics (an
    RA's), then the router preference. `get`: ip -6 route get's words (type, from, prefsrc)."""
    get = get or {}
    rec = {"type": get["type"]} if get.get("type", "unicast") != "unicast" else {}
    rec["dst"] = "default" if r.dst == "::/0" else r.dst.removesuffix("/128")
    if "from" in get:
        rec["from"] = get["from"]
    if r.gateway:
        rec["gateway"] = r.gateway
    rec["dev"] = r.dev
    if r.table:
        rec["table"] = r.table
    if r.proto != "boot":  # RTPROT_BOOT, what ip -6 route add makes, is not shown
        rec["protocol"] = r.proto
    if get.get("prefsrc"):
        rec["prefsrc"] = get["prefsrc"]
    rec.update(metric=r.metric, flags=[])
    if r.HasField("expires"):
        rec["expires"] = r.expires
    metrics = {name: value for name, value in (("mtu", r.mtu), ("hoplimit", r.hoplimit)) if value}
    if metrics:
        rec["metrics"] = [metrics]
    rec["pref"] = r.pref or "medium"
    return rec


def route_get(view, dest: str) -> list[dict]:
    """ip route get ADDR: the route a packet to it takes (ip_route_output_key); ip -6 route get
    for an IPv6 address (ip6_route_output: a redirect's or a learned MTU's exception shows)."""
    if ":" in dest:
        return _route_get6(view, dest)
    reply = view.stub["l3"].IpRouteOutput(l3_pb2.Flowi4(daddr=ip_from_str(dest)), timeout=5)
    if reply.errno:
        raise OSError(reply.errno, "Network is unreachable")
    rec = {"type": reply.type} if reply.type != "unicast" else {}
    rec["dst"] = dest
    if reply.nexthop and ip_to_str(reply.nexthop) != dest:
        rec["gateway"] = ip_to_str(reply.nexthop)
    rec.update(dev=reply.dev, prefsrc=ip_to_str(reply.saddr), flags=[], uid=os.getuid(), cache=[])
    return [rec]


def _route_get6(view, dest: str) -> list[dict]:
    """inet6_rtm_getroute(): the dst for the address, from :: (no source given), as rt6_fill_node
    fills it: no `uid` and no `cache` line, unlike IPv4's."""
    daddr = ip6_from_str(dest)
    reply = view.stub["l3"].Ip6RouteOutput(l3_pb2.Flowi6(daddr=daddr.to_bytes(16, "big")), timeout=5)
    if reply.errno:
        raise OSError(reply.errno, os.strerror(reply.errno))
    saddr = int.from_bytes(reply.saddr, "big")
    return [_route6(reply.route, {"type": reply.type, "from": "::", "prefsrc": ip6_to_str(saddr) if saddr else ""})]


def neighbours(view, family: int | None = None) -> list[dict]:
    out = []
    for n in view.stub["l2"].GetNeighbours(empty_pb2.Empty(), timeout=5).entries:
        if family is not None and (6 if ":" in n.dst else 4) != family:
            continue
        rec = {"dst": n.dst, "dev": n.dev}
        if n.lladdr:
            rec["lladdr"] = n.lladdr
        if n.router:  # NTF_ROUTER: ip -j prints it as a key with no value
            rec["router"] = None
        rec["state"] = [name_of(l2_pb2.NudState, n.state).removeprefix("NUD_")]
        out.append(rec)
    return out


def links(view, stats: bool = False, addrs=None) -> list[dict]:
    out = []
    addrs = addrs if addrs is not None else view.stub["l3"].GetAddrs(empty_pb2.Empty(), timeout=5).addrs
    for index, a in enumerate(addrs, 1):
        rec = {"ifindex": index, "ifname": a.dev, "flags": ["BROADCAST", "MULTICAST", "UP", "LOWER_UP"],
               "mtu": a.mtu, "qdisc": QDISC, "operstate": "UP", "linkmode": "DEFAULT", "group": "default",
               "txqlen": TXQLEN, "link_type": "ether", "address": a.lladdr, "broadcast": "ff:ff:ff:ff:ff:ff"}
        if stats:
            st = view.stub["nic"].GetStats(nic_pb2.DevRequest(dev=a.dev), timeout=5)
            rec["stats64"] = {
                "rx": {"bytes": st.rx_bytes, "packets": st.rx_packets, "errors": st.rx_errors,
                       "dropped": st.rx_dropped, "over_errors": 0, "multicast": 0},
                "tx": {"bytes": st.tx_bytes, "packets": st.tx_packets, "errors": st.tx_errors,
                       "dropped": st.tx_dropped, "carrier_errors": 0, "collisions": 0}}
            rec["stats64"]["rx"]["missed"] = st.rx_missed_errors
        out.append(rec)
    return out


def addresses(view, family: int | None = None, dev: str | None = None) -> list[dict]:
    """ip [-4|-6] addr [show dev DEV]: each device with its inet, then inet6, addresses."""
    addrs = view.stub["l3"].GetAddrs(empty_pb2.Empty(), timeout=5).addrs
    recs = links(view, addrs=addrs)
    by_dev = {a.dev: a for a in addrs}
    out = []
    for rec in recs:
        a = by_dev[rec["ifname"]]
        rec.pop("linkmode")
        info = []
        if family in (None, 4):
            local, _, prefixlen = a.local.partition("/")
            info.append({"family": "inet", "local": local, "prefixlen": int(prefixlen), "broadcast": a.broadcast,
                         "scope": "global", "label": a.dev, "valid_life_time": INFINITY_LIFE,
                         "preferred_life_time": INFINITY_LIFE})
        if family in (None, 6):
            info += [_inet6(x) for x in a.inet6]
        if family is not None:
            if not info:  # a device without an address of the family is left out
                continue
            for key in ("link_type", "address", "broadcast"):
                rec.pop(key)
            if family == 6 and dev is None:  # the AF_INET6 link dump's fields (inet6_fill_ifinfo)
                rec.pop("qdisc")
                rec.pop("group")
        rec["addr_info"] = info
        out.append(rec)
    return out


def maddresses(view, family: int | None = None) -> list[dict]:
    """ip [-6] maddr: each device that listens to a group, with its groups (ip -j's "maddr"),
    a group's users when more than one. IPv6's only: pktpath has no IGMP."""
    out = []
    for index, a in enumerate(view.stub["l3"].GetAddrs(empty_pb2.Empty(), timeout=5).addrs, 1):
        groups = [] if family == 4 else [
            {"family": "inet6", "address": m.addr, **({"users": m.users} if m.users > 1 else {})} for m in a.maddr6]
        if groups:  # print_mlist: a device's line comes with its first group
            out.append({"ifindex": index, "ifname": a.dev, "maddr": groups})
    return out


def _inet6(a) -> dict:
    local, _, prefixlen = a.local.partition("/")
    rec = {"family": "inet6", "local": local, "prefixlen": int(prefixlen), "scope": a.scope}
    for name, mask in IFA_FLAGS6:
        if (not a.flags & mask) if mask == IFA_F_PERMANENT else a.flags & mask:
            rec[name] = True
    rec.update(valid_life_time=a.valid_lft, preferred_life_time=a.preferred_lft)
    return rec


# -- text, as ip prints the records -------------------------------------------------------
def route_text(rec: dict) -> list[str]:
    words = [rec["dst"]] if "type" not in rec else [rec["type"], rec["dst"]]
    if "from" in rec:  # ip -6 route get
        words += ["from", rec["from"]]
    if "gateway" in rec:
        words += ["via", rec["gateway"]]
    if "dev" in rec:  # not under ip route show dev DEV
        words += ["dev", rec["dev"]]
    if "table" in rec:
        words += ["table", rec["table"]]
    if rec.get("protocol") and rec["protocol"] != "boot":
        words += ["proto", rec["protocol"]]
    if "scope" in rec:
        words += ["scope", rec["scope"]]
    if "prefsrc" in rec:
        words += ["src", rec["prefsrc"]]
    if "metric" in rec:
        words += ["metric", str(rec["metric"])]
    if "expires" in rec:
        words += ["expires", f"{rec['expires']}sec"]
    for metrics in rec.get("metrics", ()):
        for name, value in metrics.items():
            words += [name, str(value)]
    if "pref" in rec:
        words += ["pref", rec["pref"]]
    if "uid" in rec:  # ip route get
        return [" ".join(words + ["uid", str(rec["uid"])]), "    cache"]
    return [" ".join(words)]


def neigh_text(rec: dict) -> list[str]:
    lladdr = ["lladdr", rec["lladdr"]] if "lladdr" in rec else []
    router = ["router"] if "router" in rec else []
    dev = ["dev", rec["dev"]] if "dev" in rec else []  # not under ip neigh show dev DEV
    return [" ".join([rec["dst"], *dev, *lladdr, *router, *rec["state"]])]


def maddr_text(rec: dict) -> list[str]:
    """print_mlist(): "IFINDEX:<tab>DEV", then "<tab>inet6 GROUP[ users N]" for each group."""
    lines = [f"{rec['ifindex']}:\t{rec['ifname']}"]
    for m in rec["maddr"]:
        lines.append(f"\t{m['family']} {m['address']}" + (f" users {m['users']}" if "users" in m else ""))
    return lines


def link_text(rec: dict) -> list[str]:
    """print_linkinfo() and print_addrinfo(): the words a record has (ip -6 addr's lack some)."""
    qdisc = f" qdisc {rec['qdisc']}" if "qdisc" in rec else ""
    mode = f" mode {rec['linkmode']}" if "linkmode" in rec else ""
    group = f" group {rec['group']}" if "group" in rec else ""
    lines = [f"{rec['ifindex']}: {rec['ifname']}: <{','.join(rec['flags'])}> mtu {rec['mtu']}{qdisc} "
             f"state {rec['operstate']}{mode}{group} qlen {rec['txqlen']}"]
    if "link_type" in rec:
        lines.append(f"    link/{rec['link_type']} {rec['address']} brd {rec['broadcast']}")
    for a in rec.get("addr_info", ()):
        if a["family"] == "inet":
            lines.append(f"    inet {a['local']}/{a['prefixlen']} brd {a['broadcast']} scope {a['scope']} {a['label']}")
        else:  # each flag followed by a blank, as ip prints them, so the line ends in one
            flags = "".join(f"{name} " for name, value in a.items() if value is True)
            lines.append(f"    inet6 {a['local']}/{a['prefixlen']} scope {a['scope']} {flags}")
        lines.append(f"       valid_lft {_lft(a['valid_life_time'])} preferred_lft {_lft(a['preferred_life_time'])}")
    if "stats64" in rec:
        lines += _stats_text(rec["stats64"])
    return lines


def _lft(seconds: int) -> str:
    return "forever" if seconds == INFINITY_LIFE else f"{seconds}sec"


def _stats_text(s: dict) -> list[str]:
    """print_link_stats64(): columns as wide as their widest word or number."""
    rx = [s["rx"]["bytes"], s["rx"]["packets"], s["rx"]["errors"], s["rx"]["dropped"], s["rx"]["missed"],
          s["rx"]["multicast"]]
    tx = [s["tx"]["bytes"], s["tx"]["packets"], s["tx"]["errors"], s["tx"]["dropped"], s["tx"]["carrier_errors"],
          s["tx"]["collisions"]]
    cols = [len("*X errors:"), len("packets"), len("errors"), len("dropped"), len("heartbt"), len("overrun")]
    cols = [max(c, len(str(r)), len(str(t))) for c, r, t in zip(cols, rx, tx)]

    def row(head: list[str], first: str) -> str:
        rest = " ".join(f"{h:>{c}}" for h, c in zip(head[1:], cols[1:]))
        return f"    {first}{head[0]:>{cols[0] - len(first)}} {rest}"

    def values(nums: list[int]) -> str:
        return "    " + " ".join(f"{n:>{c}}" for n, c in zip(nums, cols))

    return [row(["bytes", "packets", "errors", "dropped", "missed", "mcast"], "RX: "), values(rx),
            row(["bytes", "packets", "errors", "dropped", "carrier", "collsns"], "TX: "), values(tx)]


RENDER: dict[str, Callable[[dict], list[str]]] = {"route": route_text, "neigh": neigh_text, "addr": link_text,
                                                  "link": link_text, "maddr": maddr_text}
