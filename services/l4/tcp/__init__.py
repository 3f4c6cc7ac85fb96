"""TCP (RFC 9293) as the kernel does it, as pure logic for the L4 service.

    sock.py     struct tcp_sock, the eleven states, sequence arithmetic, RTT (RFC 6298)
    cong.py     congestion control: Reno and CUBIC (the default)
    output.py   tcp_output.c: options, windows, transmit (a CLONE per transmission), ACKs, resets
    input.py    tcp_input.c: the state machine, RFC 5961, ACK processing, NewReno, the ofo queue
    timer.py    tcp_timer.c: retransmission with backoff, delayed ACK, zero-window probes
    ipv4.py     tcp_ipv4.c, tcp_minisocks.c, tcp.c: the tables, tcp_v4_rcv, listen queues,
                TIME_WAIT, and the socket layer's calls (connect, listen, sendmsg, close...)
"""
