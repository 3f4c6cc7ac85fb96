"""ss's filter and columns (pktpath.tools.ss) without a topology: the sockets are made here."""

import pytest

from pktpath.tools.ss import DEFAULT_STATES, FilterError, Sock, parse, table

SOCKS = [Sock("tcp", "LISTEN", 0, 128, "0.0.0.0", 80, "0.0.0.0", 0, 1),
         Sock("tcp", "ESTAB", 0, 0, "10.0.0.2", 80, "10.0.0.1", 40000, 2),
         Sock("tcp", "ESTAB", 5, 0, "10.0.0.2", 41000, "10.0.0.9", 22, 3),
         Sock("tcp", "TIME-WAIT", 0, 0, "10.0.0.2", 80, "10.0.0.1", 39999, 4),
         Sock("udp", "UNCONN", 0, 0, "0.0.0.0", 53, "0.0.0.0", 0, 5)]


def chosen(words, default=DEFAULT_STATES):
    states, excluded, predicate = parse(words)
    states = default if states is None else states
    return [s.sk for s in SOCKS if s.state in states - excluded and predicate(s)]


def test_states_by_ss_names_and_the_connected_default():
    assert chosen([]) == [2, 3]  # ss alone: no listener, no TIME-WAIT, no unconnected UDP
    assert chosen(["state", "listening"]) == [1, 5]
    assert chosen(["state", "established", "state", "time-wait"]) == [2, 3, 4]
    assert chosen(["state", "all", "exclude", "established"]) == [1, 4, 5]
    assert chosen(["state", "connected"]) == [2, 3, 4]


def test_port_and_address_conditions_with_and_or_not_and_parentheses():
    assert chosen(["state", "all", "(", "dport", "=", ":80", "or", "sport", "=", ":80", ")"]) == [1, 2, 4]
    assert chosen(["state", "all", "( sport = :80 )", "and", "dst", "10.0.0.1"]) == [2, 4]
    assert chosen(["dport", "eq", ":22"]) == [3]
    assert chosen(["not", "dst", "10.0.0.0/29"]) == [3]
    assert chosen(["state", "all", "sport", ">", ":1024", "dst", "*:22"]) == [3]  # juxtaposed: and
    assert chosen(["src", "10.0.0.2:41000"]) == [3]


@pytest.mark.parametrize("words, says", [(["state", "bogus"], "wrong state name"), (["(", "sport", "=", ":1"],
                         "not closed"), (["dport", "=", ":70000"], "not a port"), (["dst", "10.0.0.300"],
                         "not an address"), (["sport"], "ends too soon"), (["frobnicate"], 'unexpected "frobnicate"')])
def test_a_filter_ss_would_refuse_is_an_error_that_says_why(words, says):
    with pytest.raises(FilterError, match=says):
        parse(words)


def test_columns_are_as_wide_as_their_widest_cell_and_netid_shows_for_several_kinds():
    lines = table(SOCKS[:2] + SOCKS[4:], netid=True)
    assert lines[0].split() == ["Netid", "State", "Recv-Q", "Send-Q", "Local", "Address:Port", "Peer",
                                "Address:Port", "Process"]
    assert lines[2].split() == ["tcp", "ESTAB", "0", "0", "10.0.0.2:80", "10.0.0.1:40000"]
    assert lines[3].split() == ["udp", "UNCONN", "0", "0", "0.0.0.0:53", "0.0.0.0:*"]
    assert len({line.index("Recv-Q") if i == 0 else None for i, line in enumerate(lines)} - {None}) == 1
    assert table(SOCKS[:1], netid=False, header=False)[0].split() == ["LISTEN", "0", "128", "0.0.0.0:80", "0.0.0.0:*"]


def test_m_puts_each_sockets_memory_on_the_next_line_with_i_after_it():
    from pktpath.pb import l4_pb2, socket_pb2

    mem = socket_pb2.SkMemInfo(rmem_alloc=832, rcvbuf=212992, sndbuf=212992, drops=3)
    udp = Sock("udp", "UNCONN", 832, 0, "0.0.0.0", 53, "0.0.0.0", 0, 5, skmem=mem)
    lines = table([udp], netid=False, memory=True, header=False)
    assert lines[1] == "\t skmem:(r832,rb212992,t0,tb212992,f0,w0,o0,bl0,d3)"
    tcp = Sock("tcp", "ESTAB", 0, 0, "10.0.0.2", 80, "10.0.0.1", 40000, 2, skmem=mem,
               info=l4_pb2.TcpSockInfo(cong="cubic", cwnd=10, mss=1448, ssthresh=0x7FFFFFFF))
    (_, second) = table([tcp], netid=False, memory=True, info=True, header=False)
    assert second.startswith("\t skmem:(r832,") and ") cubic rto:0 rtt:0.0 mss:1448 cwnd:10 " in second
    timewait = Sock("tcp", "TIME-WAIT", 0, 0, "10.0.0.2", 80, "10.0.0.1", 39999, 4)  # no socket: no memory
    assert len(table([timewait], netid=False, memory=True, header=False)) == 1
