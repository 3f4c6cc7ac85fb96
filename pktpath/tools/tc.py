"""`pktpath tc qdisc`: tc(8)'s qdisc verbs over a running host — show, fq or pfifo_fast at
the root of a device, and netem there changed while it runs (tc/q_netem.c's words and units).

A pktpath device has the softirq layer's root qdisc, pfifo_fast (txqueuelen 1000) unless
the topology or `tc qdisc replace dev eth0 root fq` gives it fq (services/softirq/qdisc.py),
and, where its frames leave the NIC, the link impairment the topology gave it: `tc qdisc
change dev eth0 root netem loss 5% delay 10ms` sets that impairment (over pfifo_fast),
`tc qdisc del dev eth0 root` takes it away (pfifo_fast again), as netem or fq would be
added and removed at a Linux device's root: one root qdisc at a time.
"""

from pktpath.pb import nic_pb2, softirq_pb2
from pktpath.services.softirq.qdisc import QDISCS, PfifoFast
NETEM_HANDLE = "8001:"
CHANCES = ("loss", "duplicate", "reorder", "corrupt")
_TIME_UNITS = (("us", 0.001), ("usec", 0.001), ("ms", 1.0), ("msec", 1.0), ("s", 1000.0), ("sec", 1000.0))


class TcError(ValueError):
    pass


def _percent(text: str) -> float:
    value = text.removesuffix("%")
    try:
        chance = float(value) / 100
    except ValueError:
        raise TcError(f'Illegal "{text}": a percentage, such as 5%') from None
    if not 0 <= chance <= 1:
        raise TcError(f'Illegal "{text}": not between 0% and 100%')
    return chance


def _delay(text: str) -> float:
    """tc's time: 10ms, 1s, 500us, or a bare number of microseconds (get_time)."""
    for unit, ms in sorted(_TIME_UNITS, key=lambda u: -len(u[0])):
        if text.endswith(unit) and text[:-len(unit)].replace(".", "", 1).isdigit():
            return float(text[:-len(unit)]) * ms
    if text.replace(".", "", 1).isdigit():
        return float(text) / 1000
    raise TcError(f'Illegal "delay": "{text}" is not a time (10ms, 1s, 500us)')


def parse_netem(words: list[str]) -> nic_pb2.Netem:
    """The words after `netem`: loss P%, delay T, duplicate P%, reorder P%, corrupt P%, limit N."""
    netem, i = nic_pb2.Netem(), 0
    while i < len(words):
        word = words[i]
        if i + 1 >= len(words):
            raise TcError(f'"{word}" needs a value')
        value = words[i + 1]
        if word in CHANCES:
            if word == "loss" and value == "random":  # "loss random 5%", the same model
                i += 1
                value = words[i + 1] if i + 1 < len(words) else ""
            setattr(netem, word, _percent(value))
        elif word == "delay":
            netem.delay_ms = _delay(value)
        elif word == "limit":
            if not value.isdigit():
                raise TcError(f'Illegal "limit": {value}')  # taken; the device's queue holds 1000 anyway
        else:
            raise TcError(f'What is "{word}"? (pktpath models loss, delay, duplicate, reorder, corrupt, limit)')
        i += 2
    return netem


def _impaired(netem: nic_pb2.Netem) -> bool:
    return bool(netem.loss or netem.duplicate or netem.reorder or netem.corrupt or netem.delay_ms)


def qdisc_line(netem: nic_pb2.Netem, dev: str | None, root: str = PfifoFast.describe()) -> str:
    """One device's root qdisc as `tc qdisc show` prints it (`dev X ` when listing every
    device): netem if the link is impaired, else the softirq layer's (`root`, its line)."""
    where = f"dev {dev} " if dev else ""
    if not _impaired(netem):
        return root.replace(" root ", f" {where}root ", 1)
    words = [f"qdisc netem {NETEM_HANDLE} {where}root refcnt 2 limit 1000"]
    if netem.delay_ms:
        words.append(f"delay {_time_text(netem.delay_ms)}")
    words += [f"{name} {getattr(netem, name) * 100:g}%" for name in CHANCES if getattr(netem, name)]
    return " ".join(words)


def _time_text(ms: float) -> str:
    """sprint_time(): 10ms, 1s, 500us."""
    if ms >= 1000:
        return f"{ms / 1000:g}s"
    if ms >= 1:
        return f"{ms:g}ms"
    return f"{ms * 1000:g}us"


def qdisc_record(netem: nic_pb2.Netem) -> dict:
    """tc -j qdisc show's record for a device's root."""
    if not _impaired(netem):
        return {"kind": "pfifo_fast", "handle": "0:", "dev": netem.dev, "root": True, "refcnt": 2,
                "options": {"bands": 3, "priomap": [1, 2, 2, 2, 1, 2, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1]}}
    options = {"limit": 1000, "delay": {"delay": netem.delay_ms / 1000}}
    options.update({name: getattr(netem, name) for name in CHANCES})
    return {"kind": "netem", "handle": NETEM_HANDLE, "dev": netem.dev, "root": True, "refcnt": 2,
            "options": options}


def run(view, devs: list[str], words: list[str], json: bool = False) -> list:
    """`qdisc show [dev DEV]`, `qdisc add|change|replace dev DEV root netem ...`, `qdisc del dev DEV root`."""
    if not words or words[0] not in ("qdisc", "q", "qd", "qdi"):
        raise TcError("Object is unknown: pktpath models `tc qdisc` only")
    verb = words[1] if len(words) > 1 else "show"
    rest = words[2:]
    dev = rest[rest.index("dev") + 1] if "dev" in rest[:-1] else None
    if dev is not None and dev not in devs:
        raise TcError(f'Cannot find device "{dev}"')
    nic, softirq = view.stub["nic"], view.stub["softirq"]
    if verb in ("show", "ls", "list"):
        shown = [dev] if dev else devs
        netems = [nic.GetNetem(nic_pb2.DevRequest(dev=d), timeout=5) for d in shown]
        roots = [softirq.GetQdisc(softirq_pb2.Qdisc(dev=d), timeout=5) for d in shown]
        if json:
            return [qdisc_record(n) if _impaired(n) or r.kind == PfifoFast.kind else fq_record(r)
                    for n, r in zip(netems, roots)]
        return [qdisc_line(n, None if dev else n.dev, r.line) for n, r in zip(netems, roots)]
    if dev is None or "root" not in rest:
        raise TcError(f'"tc qdisc {verb}" needs "dev DEV root"')
    kind = PfifoFast.kind
    if verb in ("del", "delete"):
        netem = nic_pb2.Netem()
    elif verb in ("add", "change", "replace"):
        after = rest[rest.index("root") + 1:]
        if not after or after[0] not in ("netem", *QDISCS):
            raise TcError(f"Specified qdisc kind is unknown: pktpath has netem, {', '.join(QDISCS)} at a device's root")
        if after[0] == "netem":
            netem = parse_netem(after[1:])
        elif len(after) > 1:
            raise TcError(f'What is "{after[1]}"? (pktpath takes {after[0]} with its defaults)')
        else:
            netem, kind = nic_pb2.Netem(), after[0]
    else:
        raise TcError(f'Command "{verb}" is unknown, try "tc qdisc help".')
    netem.dev = dev
    nic.SetNetem(netem, timeout=5)  # one root qdisc: netem replaces fq, fq replaces netem
    softirq.ReplaceQdisc(softirq_pb2.Qdisc(dev=dev, kind=kind), timeout=5)
    return []


def fq_record(root: softirq_pb2.Qdisc) -> dict:
    """tc -j qdisc show's record of an fq root (tc/q_fq.c's fq_print_opt, its defaults)."""
    fq = QDISCS["fq"]()
    return {"kind": "fq", "handle": "8001:", "dev": root.dev, "root": True, "refcnt": 2,
            "options": {"limit": fq.limit, "flow_limit": fq.flow_limit, "buckets": 1024, "orphan_mask": 1023,
                        "quantum": fq.quantum, "initial_quantum": fq.initial_quantum,
                        "refill_delay": fq.refill_delay_ns / 1e9, "horizon": fq.horizon_ns / 1e9,
                        "horizon_drop": fq.horizon_drop}}
