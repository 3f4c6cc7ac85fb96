"""`pktpath ip`: iproute2's `ip` over a running host — route (and `route get`), neigh,
addr, link (`-s`: its statistics) — in ip's own words and columns, and as `ip -j` prints
them: each object is a list of records with iproute2's JSON field names, and the text is
rendered from the same records (ip/iproute.c, ipneigh.c, ipaddress.c).

What pktpath has no model of is not shown: no loopback device, no IPv6 addresses. Its
devices are numbered from 1 in topology order.
"""

import os
from typing import Callable

from google.protobuf import empty_pb2

from pktpath.pb import l2_pb2, l3_pb2, name_of, nic_pb2
from pktpath.wire.addr import ip_from_str, ip_to_str

OBJECTS = {"route": ("r", "ro", "rou", "rout", "route"), "neigh": ("n", "ne", "nei", "neig", "neigh", "neighbor",
           "neighbour"), "addr": ("a", "ad", "add", "addr", "address"), "link": ("l", "li", "lin", "link")}
INFINITY_LIFE = 4294967295  # an address that does not expire, as ip -j says "forever"
QDISC, TXQLEN = "pfifo_fast", 1000  # the softirq layer's qdisc and its txqueuelen (services/softirq/napi.py)


def object_of(word: str) -> str:
    """ip's abbreviations: `ip r`, `ip n`, `ip a`, `ip l`."""
    for name, spellings in OBJECTS.items():
        if word in spellings:
            return name
    raise ValueError(f'Object "{word}" is unknown, try "pktpath ip help".')


# -- records --------------------------------------------------------------------------
def routes(view) -> list[dict]:
    out = []
    for r in view.stub["l3"].GetRoutes(empty_pb2.Empty(), timeout=5).routes:
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


def route_get(view, dest: str) -> list[dict]:
    """ip route get ADDR: the route a packet to it takes (ip_route_output_key)."""
    reply = view.stub["l3"].IpRouteOutput(l3_pb2.Flowi4(daddr=ip_from_str(dest)), timeout=5)
    if reply.errno:
        raise OSError(reply.errno, "Network is unreachable")
    rec = {"type": reply.type} if reply.type != "unicast" else {}
    rec["dst"] = dest
    if reply.nexthop and ip_to_str(reply.nexthop) != dest:
        rec["gateway"] = ip_to_str(reply.nexthop)
    rec.update(dev=reply.dev, prefsrc=ip_to_str(reply.saddr), flags=[], uid=os.getuid(), cache=[])
    return [rec]


def neighbours(view) -> list[dict]:
    out = []
    for n in view.stub["l2"].GetNeighbours(empty_pb2.Empty(), timeout=5).entries:
        rec = {"dst": n.dst, "dev": n.dev}
        if n.lladdr:
            rec["lladdr"] = n.lladdr
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


def addresses(view) -> list[dict]:
    addrs = view.stub["l3"].GetAddrs(empty_pb2.Empty(), timeout=5).addrs
    recs = links(view, addrs=addrs)
    by_dev = {a.dev: a for a in addrs}
    for rec in recs:
        a = by_dev[rec["ifname"]]
        rec.pop("linkmode")
        local, _, prefixlen = a.local.partition("/")
        rec["addr_info"] = [{"family": "inet", "local": local, "prefixlen": int(prefixlen), "broadcast": a.broadcast,
                             "scope": "global", "label": a.dev, "valid_life_time": INFINITY_LIFE,
                             "preferred_life_time": INFINITY_LIFE}]
    return recs


# -- text, as ip prints the records -------------------------------------------------------
def route_text(rec: dict) -> list[str]:
    words = [rec["dst"]] if "type" not in rec else [rec["type"], rec["dst"]]
    if "gateway" in rec:
        words += ["via", rec["gateway"]]
    words += ["dev", rec["dev"]]
    if rec.get("protocol") and rec["protocol"] != "boot":
        words += ["proto", rec["protocol"]]
    if "scope" in rec:
        words += ["scope", rec["scope"]]
    if "prefsrc" in rec:
        words += ["src", rec["prefsrc"]]
    if "metric" in rec:
        words += ["metric", str(rec["metric"])]
    if "uid" in rec:  # ip route get
        return [" ".join(words + ["uid", str(rec["uid"])]), "    cache"]
    return [" ".join(words)]


def neigh_text(rec: dict) -> list[str]:
    lladdr = ["lladdr", rec["lladdr"]] if "lladdr" in rec else []
    return [" ".join([rec["dst"], "dev", rec["dev"], *lladdr, *rec["state"]])]


def link_text(rec: dict) -> list[str]:
    mode = f" mode {rec['linkmode']}" if "linkmode" in rec else ""
    lines = [f"{rec['ifindex']}: {rec['ifname']}: <{','.join(rec['flags'])}> mtu {rec['mtu']} qdisc {rec['qdisc']} "
             f"state {rec['operstate']}{mode} group {rec['group']} qlen {rec['txqlen']}",
             f"    link/{rec['link_type']} {rec['address']} brd {rec['broadcast']}"]
    for a in rec.get("addr_info", ()):
        lines += [f"    inet {a['local']}/{a['prefixlen']} brd {a['broadcast']} scope {a['scope']} {a['label']}",
                  "       valid_lft forever preferred_lft forever"]
    if "stats64" in rec:
        lines += _stats_text(rec["stats64"])
    return lines


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
                                                  "link": link_text}
