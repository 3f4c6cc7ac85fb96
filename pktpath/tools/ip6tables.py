"""`pktpath ip6tables`: pktpath.tools.iptables for the IPv6 family — one program for both, as
iptables-nft's is — on the host's IPv6 table (services/l3/netfilter6.py), in the words and columns
of ip6tables v1.8.9 (nf_tables): IPv6 prefixes, ip6tables' names, and its warning that -p of an
extension header never matches.
"""

from pktpath.tools import iptables as xtables
from pktpath.tools.iptables import IPV6, Command

FAMILY = IPV6
TRY = IPV6.try_help


def parse(argv: list[str], err=None) -> Command:
    return xtables.parse(argv, IPV6, err)


def run(view, argv: list[str], err=None) -> list[str]:
    return xtables.run(view, argv, IPV6, err)
