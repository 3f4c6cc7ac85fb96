"""L4: UDP and TCP: checksums, socket lookup, the TCP state machine and retransmit queue.

Models net/ipv4/udp.c, tcp_ipv4.c, tcp_input.c, tcp_output.c, tcp_timer.c.
"""
