"""L2: Ethernet validation, ethertype dispatch, ARP and the neighbour table.

Models __netif_receive_skb_core (net/core/dev.c), net/ipv4/arp.c, net/core/neighbour.c.
"""
