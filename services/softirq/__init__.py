"""softirq (ksoftirqd): NAPI polling with budget for NET_RX, qdisc drain for NET_TX.

Models net_rx_action/napi_poll and net_tx_action in net/core/dev.c.
"""
