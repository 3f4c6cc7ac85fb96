"""What one poll's packets pass on, passed on once: each next layer gets one list at the end
of the poll (ip_sublist_rcv's idea), not a hand-off per packet. Ipv4 and Ipv6 share it."""

import threading

from pktpath.pb import skbuff_pb2

pb = skbuff_pb2


class PollHandOff:
    """For a class with `drop(skb, reason, func)`, `mib`, `_to_l4(kind, items)` and (for
    kind "l2") `_to_l2(items)`; MIB_GROUP ("Ip", "Ip6") counts what L2 refused as OutDiscards,
    DELIVER_FUNC names where what L4 refused is dropped."""

    MIB_GROUP = "Ip"
    DELIVER_FUNC = "ip_protocol_deliver_rcu"

    def _init_handoff(self) -> None:
        self._tls = threading.local()  # the poll being received on this thread, if any

    def _list_rcv(self, skbs: list, rcv) -> tuple[int, int]:
        """rcv(skb) for each of one poll's packets (a drop reason, or 0), then what they passed
        on; returns (accepted, dropped)."""
        dropped = 0
        self._tls.pending = pending = {}
        try:
            for skb in skbs:
                if rcv(skb):
                    dropped += 1
        finally:
            self._tls.pending = None
        for kind, items in pending.items():
            dropped += self._hand_on(kind, items)
        dropped = min(dropped, len(skbs))  # a refused ICMP reply is counted, but is not one of these
        return len(skbs) - dropped, dropped

    def _pass_on(self, kind: str, item, skbs: list) -> int:
        """Hand item (carrying skbs) to the next layer `kind` ("l2" or an L4 handler): at
        the end of the current poll if one is running on this thread, else now."""
        pending = getattr(self._tls, "pending", None)
        if pending is not None:
            pending.setdefault(kind, []).append((item, skbs))
            return 0
        return self._hand_on(kind, [(item, skbs)])

    def _hand_on(self, kind: str, items: list) -> int:
        """Returns how many skbs were dropped because the next layer refused them."""
        ok = (self._to_l2 if kind == "l2" else lambda x: self._to_l4(kind, x))([item for item, _ in items])
        if ok:
            return 0
        lost = [skb for _, skbs in items for skb in skbs]
        for skb in lost:
            self.drop(skb, pb.SKB_DROP_REASON_CPU_BACKLOG, "ip_finish_output2" if kind == "l2" else self.DELIVER_FUNC)
        if kind == "l2":
            self.mib.inc(self.MIB_GROUP, "OutDiscards", len(lost))
        return len(lost)
