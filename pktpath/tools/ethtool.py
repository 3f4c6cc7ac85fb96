"""`pktpath ethtool`: ethtool(8) over a running host's NIC — its settings (`ethtool DEV`),
statistics (-S), rings (-g), features (-k) and the one it can change (-K DEV gro on|off),
in ethtool's words (ethtool.c dump_link_usettings, dump_features).

What the features say is what pktpath does: checksums are computed and checked in
software (no rx/tx checksumming), the NIC cannot segment (no TSO), segmentation is
software GSO always (on [fixed]), and GRO is the driver's to turn on or off.
"""

from pktpath.pb import softirq_pb2

FIXED = [("rx-checksumming", "off [fixed]"), ("tx-checksumming", "off [fixed]"), ("scatter-gather", "off [fixed]"),
         ("tcp-segmentation-offload", "off [fixed]"), ("generic-segmentation-offload", "on [fixed]")]
AFTER_GRO = [("large-receive-offload", "off [fixed]"), ("rx-vlan-offload", "off [fixed]"),
             ("tx-vlan-offload", "off [fixed]"), ("ntuple-filters", "off [fixed]"), ("receive-hashing", "off [fixed]")]
SHORT_NAMES = {"gro": "generic-receive-offload", "gso": "generic-segmentation-offload",
               "tso": "tcp-segmentation-offload", "rx": "rx-checksumming", "tx": "tx-checksumming",
               "sg": "scatter-gather", "lro": "large-receive-offload", "rxvlan": "rx-vlan-offload",
               "txvlan": "tx-vlan-offload", "ntuple": "ntuple-filters", "rxhash": "receive-hashing"}


class EthtoolError(ValueError):
    pass


def settings(dev: str, linked: bool) -> list[str]:
    """ethtool DEV: a virtual device's settings, as a veth reports them (no speed of its own)."""
    return [f"Settings for {dev}:", "\tSupported ports: [  ]", "\tSupported link modes:   Not reported",
            "\tSupported pause frame use: No", "\tSupports auto-negotiation: No", "\tSupported FEC modes: Not reported",
            "\tAdvertised link modes:  Not reported", "\tAdvertised pause frame use: No",
            "\tAdvertised auto-negotiation: No", "\tAdvertised FEC modes: Not reported", "\tSpeed: Unknown!",
            "\tDuplex: Full", "\tAuto-negotiation: off", "\tPort: Other", "\tPHYAD: 0", "\tTransceiver: internal",
            "\tMDI-X: Unknown", f"\tLink detected: {'yes' if linked else 'no'}"]


def features(view, dev: str) -> list[str]:
    """ethtool -k DEV."""
    gro = view.stub["softirq"].GetFeatures(softirq_pb2.Features(dev=dev), timeout=5).gro
    rows = FIXED + [("generic-receive-offload", "on" if gro else "off")] + AFTER_GRO
    return [f"Features for {dev}:"] + [f"{name}: {value}" for name, value in rows]


def change(view, dev: str, words: list[str]) -> list[str]:
    """ethtool -K DEV FEATURE on|off ...: GRO changes; a fixed feature asked to change is
    what ethtool reports ("Could not change any device features")."""
    if not words or len(words) % 2:
        raise EthtoolError("ethtool: bad command line argument(s): -K needs FEATURE on|off pairs")
    wanted: dict[str, bool] = {}
    for name, value in zip(words[::2], words[1::2]):
        full = SHORT_NAMES.get(name, name)
        if value not in ("on", "off") or full not in dict(FIXED + AFTER_GRO) and full != "generic-receive-offload":
            raise EthtoolError(f"ethtool: bad command line argument(s): {name} {value}")
        wanted[full] = value == "on"
    refused = [f"{name}: {dict(FIXED + AFTER_GRO)[name].split()[0]} [requested {'on' if on else 'off'}]"
               for name, on in wanted.items() if name != "generic-receive-offload"
               and (dict(FIXED + AFTER_GRO)[name].startswith("on")) != on]
    if "generic-receive-offload" in wanted:
        view.stub["softirq"].SetFeatures(softirq_pb2.Features(dev=dev, gro=wanted["generic-receive-offload"]),
                                         timeout=5)
    if refused:
        raise EthtoolError("\n".join(["Actual changes:", *refused, "Could not change any device features"]))
    return []

