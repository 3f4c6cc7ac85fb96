"""L3: IPv4 receive, routing, netfilter, ICMP, forwarding, fragmentation and reassembly.

Models net/ipv4/ip_input.c, ip_output.c, ip_forward.c, ip_fragment.c, icmp.c, route.c.
"""
