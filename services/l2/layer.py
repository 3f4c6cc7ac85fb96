"""L2 of one host without its RPC surface: Ethernet, ARP and the neighbour tables
(services/l2/link.py), fed by the edges into it (pktpath/seams.py) and told by L3's
neighbour discovery what it learned about IPv6 neighbours (NeighUpdate).

The L2 service serves it over gRPC (services/l2/server.py); the one-process stack
(pktpath/drill/local.py) calls it directly. Its timer is the caller's to run.
"""

from pktpath import skbuff as s
from pktpath.counters import Mib
from pktpath.hop import batches
from pktpath.pb import l2_pb2, skbuff_pb2
from pktpath.seams import edge, open_tcp_wfree
from pktpath.services.l2.link import Link, l2_ifaces
from pktpath.services.l2.neighbour import NUD_FAILED
from pktpath.taps import Taps


class L2:
    def __init__(self, host: str, config, hop) -> None:
        """`config` is the host's topology entry; `hop(edge, mib)` opens an edge out of L2."""
        self.mib = Mib()
        self.to_l3 = hop(edge("l2", "l3"), self.mib)
        self.to_l3_ipv6 = hop(edge("l2", "ipv6"), self.mib)
        self.to_ndisc = hop(edge("l2", "ndisc-solicit"), self.mib)
        self.to_dev = hop(edge("l2", "softirq"), self.mib)
        self.to_l4_wfree = open_tcp_wfree("l2", host, hop, self.mib)
        self.host = host
        self.taps = Taps()
        self.link = Link(host, l2_ifaces(config), to_l3=self.to_l3.put, to_dev=self.to_dev.put, mib=self.mib,
                         tap=self.taps, to_l3_ipv6=self.to_l3_ipv6.put, ndisc_solicit=self.to_ndisc.put)

    @batches(skbuff_pb2.SkBuffBatch)
    def NetifReceiveSkb(self, request, context):
        """netif_receive_skb_list(): one NAPI poll's frames."""
        return s.disposition(*self.link.netif_receive_skb_list(s.from_protos(request.skbs, self.mib)))

    @batches(skbuff_pb2.SkBuffBatch)
    def NeighOutput(self, request, context):
        """neigh_output(): L3's packets, to be resolved and framed."""
        return s.disposition(*self.link.neigh_output(s.from_protos(request.skbs, self.mib)))

    def NeighUpdate(self, request, context):
        """neigh_update() on nd_tbl, as ndisc_recv_ns (creating the entry) and ndisc_recv_na (not;
        and leaving a FAILED one alone) call it. Known: there was an entry to update."""
        dst = int.from_bytes(request.dst, "big")
        if not request.create and self.link.nd.state_of(request.dev, dst) in (None, NUD_FAILED):
            return l2_pb2.NeighUpdateReply(known=False)
        known = self.link.nd.neigh_update(request.dev, dst, request.lladdr or None, request.state, request.flags,
                                          create=request.create)
        return l2_pb2.NeighUpdateReply(known=known)

    def close(self) -> None:
        s.set_destructor(self.host, None)
        for h in (self.to_l3, self.to_l3_ipv6, self.to_ndisc, self.to_dev, self.to_l4_wfree):
            h.close()
