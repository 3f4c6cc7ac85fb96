"""packetdrill's language as pktpath.drill reads it: times, packets, system calls, commands
and Python, and the scripts packetdrill refuses, refused with its words."""

import pytest

from pktpath.drill import packets
from pktpath.drill.packets import Connection
from pktpath.drill.parser import DrillSyntaxError, parse
from pktpath.drill.script import ABSOLUTE, ANY, RELATIVE, RELATIVE_RANGE, Code, Command, Packet, Syscall
from pktpath.wire.ipv4 import IpHdr
from pktpath.wire.tcp import TcpHdr

SCRIPT = """// a comment
--tolerance_usecs=10000
`./defaults.sh
sysctl -q net.ipv4.tcp_sack=1`
    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
   +0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
 +.1 < S 0:0(0) win 32792 <mss 1000,sackOK,nop,nop,nop,wscale 7>
/* a block
   comment */
 +0 > S. 0:0(0) ack 1 <mss 1460,nop,nop,sackOK,nop,wscale 8>
 +0~+0.2 > P. 1:1001(1000) ack 1 <...>
 * > . 1:1(0) ack 1
 0.5...0.7 read(4, ..., 1000) = 1000
 +0 connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)
 +0 fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK) = 0
 +0 poll([{fd=3, events=POLLOUT, revents=POLLOUT}], 1, 0) = 1
 +0 %{ assert tcpi_snd_cwnd == 10, tcpi_snd_cwnd }%
 +0 `echo hi`
`/tmp/cleanup.sh`
"""


def test_a_script_reads_as_its_events_with_their_times_and_lines():
    script = parse(SCRIPT, "x.pkt")
    assert script.options == {"tolerance_usecs": "10000"}
    assert script.init_command == "./defaults.sh\nsysctl -q net.ipv4.tcp_sack=1"
    assert script.cleanup_command == "/tmp/cleanup.sh"
    times = [(e.line, e.time.kind, e.time.usecs) for e in script.events]
    assert times[:3] == [(5, ABSOLUTE, 0), (6, RELATIVE, 0), (7, RELATIVE, 100000)]
    ranged, star, blocking = script.events[4].time, script.events[5].time, script.events[6].time
    assert (ranged.kind, ranged.usecs, ranged.end_usecs) == (RELATIVE_RANGE, 0, 200000)
    assert star.kind == ANY
    assert (blocking.kind, blocking.usecs, blocking.blocking_end_usecs) == (ABSOLUTE, 500000, 700000)
    kinds = [type(e.action) for e in script.events]
    assert kinds == [Syscall] * 2 + [Packet] * 4 + [Syscall] * 4 + [Code, Command]


def test_packets_keep_the_scripts_numbers_flags_and_options():
    events = parse(SCRIPT).events
    syn, synack, data = events[2].action, events[3].action, events[4].action
    assert (syn.direction, syn.flags, syn.seq, syn.length, syn.win) == ("<", "S", 0, 0, 32792)
    assert [o.kind for o in syn.options] == ["mss", "sackOK", "nop", "nop", "nop", "wscale"]
    assert syn.options[0].value == 1000 and syn.options[-1].value == 7
    assert (synack.flags, synack.ack, synack.win) == ("S.", 1, None)  # outbound: the window unchecked
    assert (data.seq, data.length, data.options) == (1, 1000, None)  # <...>: the options unchecked


def test_system_calls_keep_their_arguments_result_and_errno():
    events = parse(SCRIPT).events
    connect, fcntl, poll = events[7].action, events[8].action, events[9].action
    assert (connect.name, connect.result, connect.errno) == ("connect", -1, "EINPROGRESS")
    assert connect.args == [("int", 3), ("...",), ("...",)]
    assert fcntl.args[2] == ("or", [("sym", "O_RDWR"), ("sym", "O_NONBLOCK")])
    assert poll.args[0][0] == "list" and poll.args[0][1][0][0] == "struct"
    assert events[10].action.text == "assert tcpi_snd_cwnd == 10, tcpi_snd_cwnd"


@pytest.mark.parametrize("line, says", [
    ("0 < S 0:0(0) <mss 1000>", "semantic error: window must be specified for inbound packets"),
    ("0 > S 0:0(0) <mss 1000,nop>", "TCP options are not padded correctly"),
    ("0 < S 0:10(5) win 1", "inconsistent TCP sequence numbers and payload size"),
    ("* < S 0:0(0) win 1", "can only be used with outbound packets"),
    ("0 < S 0:0(0) win 1 <...>", "<...> for TCP options can only be used with outbound packets"),
    ("0 > SX 0:0(0)", "Invalid TCP flag: 'X'"),
    ("0 socket(..., SOCK_STREAM = 3", "parse error at"),
])
def test_what_packetdrill_refuses_is_refused_with_its_words_and_the_line(line, says):
    with pytest.raises(DrillSyntaxError, match=says) as err:
        parse(f"// line 1\n{line}\n", "bad.pkt")
    assert str(err.value).startswith("bad.pkt:2: ")


def test_inbound_numbers_go_onto_the_wire_relative_to_the_isns_and_come_back_so():
    """A SYN's seq is absolute, every other packet's relative; acks and SACK blocks are
    relative to the local ISN (map_inbound_packet, tcp_convert_seq_number)."""
    conn = Connection("192.168.0.1", "192.0.2.1", remote_port=48820, remote_isn=0, local_isn=1_000_000)
    (data,) = [e.action for e in parse("0 < . 1:101(100) ack 1 win 257 <nop,nop,sack 1:2>\n").events]
    wire = packets.inbound(data, conn)
    ip = IpHdr.from_bytes(wire)
    tcp = TcpHdr.from_bytes(wire[20:], ip.saddr, ip.daddr)  # the checksum verifies
    assert (tcp.seq, tcp.ack_seq, len(wire) - 20 - tcp.header_len) == (1, 1_000_001, 100)
    assert packets.decode_options(tcp.options)[2].blocks == ((1_000_001, 1_000_002),)
    assert (ip.ttl, tcp.source, tcp.dest) == (packets.TTL_NONE, 48820, 8080)
    out = TcpHdr(8080, 48820, 1_000_001, 101, flags=0x10, window=500)
    (expect,) = [e.action for e in parse("0 > . 1:1(0) ack 101 win 500\n").events]
    seen = packets.to_script(ip, out, 0, conn, expect, 0)
    assert (seen.seq, seen.ack) == (1, 101)
    packets.verify(expect, seen)  # nothing differs
    (wrong,) = [e.action for e in parse("0 > . 1:1(0) ack 101 win 257\n").events]
    with pytest.raises(packets.DrillMismatch, match=r"live packet field tcp_window: expected: 257 \(0x101\) vs "
                                                     r"actual: 500 \(0x1f4\)"):
        packets.verify(wrong, seen)


def test_ecn_annotations_and_the_ae_flag_go_onto_the_wire_and_are_checked():
    """`[ce]` sets the IP header's ECN field; A is AE, the flag beside the reserved bits; a
    digit is the ACE field (AE, CWR, ECE) as one number, checked as one (tcp_ace)."""
    conn = Connection("192.168.0.1", "192.0.2.1", remote_port=48820)
    (syn,) = [e.action for e in parse("0 < [ce] SEWA 0:0(0) win 257\n").events]
    wire = packets.inbound(syn, conn)
    ip, tcp = IpHdr.from_bytes(wire), TcpHdr.from_bytes(wire[20:])
    assert (ip.tos & 3, tcp.ece, tcp.cwr, tcp.doff_res & 0x0F) == (3, True, True, 1)
    conn.remote_isn, conn.local_isn = 0, 1_000_000
    out = TcpHdr(8080, 48820, 1_000_001, 1, doff_res=1, flags=0x10 | 0x08 | 0x40, window=500)
    (expect,) = [e.action for e in parse("0 > [ect0] PEA. 1:1(0) ack 1\n").events]
    seen = packets.to_script(IpHdr(ip.daddr, ip.saddr, 6, tos=2), out, 0, conn, expect, 0)
    packets.verify(expect, seen)
    (five,) = [e.action for e in parse("0 > [ect0] P5. 1:1(0) ack 1\n").events]
    packets.verify(five, seen)  # ACE 5: AE and ECE
    (no_ae,) = [e.action for e in parse("0 > [ect0] PE. 1:1(0) ack 1\n").events]
    with pytest.raises(packets.DrillMismatch, match=r"live packet field tcp_ae: expected: 0 \(0x0\) vs actual: 1"):
        packets.verify(no_ae, seen)
    (six,) = [e.action for e in parse("0 > [ect0] P6. 1:1(0) ack 1\n").events]
    with pytest.raises(packets.DrillMismatch, match=r"live packet field tcp_ace: expected: 6 \(0x6\) vs actual: 5"):
        packets.verify(six, seen)
    (not_ect,) = [e.action for e in parse("0 > [noecn] PEA. 1:1(0) ack 1\n").events]
    with pytest.raises(packets.DrillMismatch, match=r"live packet field ip_ecn: expected: 0 \(0x0\) vs actual: 2"):
        packets.verify(not_ect, seen)


def test_over_ipv6_a_scripts_packets_are_ipv6_with_the_traffic_class_and_hop_limit_where_ipv4_has_tos_and_ttl():
    """new_ipv6_packet: scapy reads the inbound packet with a good TCP checksum over the IPv6
    pseudo-header; an IPv6 packet the stack sent is read back for its checks."""
    from scapy.layers.inet import TCP
    from scapy.layers.inet6 import IPv6

    conn = Connection("fd3d:a0b:17d6::1", "fd3d:fa7b:d17d::1", remote_port=48820, remote_isn=0, local_isn=7)
    (data,) = [e.action for e in parse("0 < [ect0] . 1:101(100) ack 1 win 257\n").events]
    pkt = IPv6(packets.inbound(data, conn))
    tcp_check = pkt[TCP].chksum
    del pkt[TCP].chksum
    assert (pkt.src, pkt.dst, pkt.nh, pkt.hlim, pkt.tc) == ("fd3d:fa7b:d17d::1", "fd3d:a0b:17d6::1", 6, 255, 2)
    assert IPv6(bytes(pkt))[TCP].chksum == tcp_check and len(pkt[TCP].payload) == 100
    sent = bytes(IPv6(src="fd3d:a0b:17d6::1", dst="fd3d:fa7b:d17d::1", tc=2, hlim=64)
                 / TCP(sport=8080, dport=48820, seq=8, ack=101, flags="A", window=500))
    ip, tcp, payload = packets.parse_outbound(sent)
    assert packets.endpoints(ip, tcp) == ("fd3d:a0b:17d6::1", 8080, "fd3d:fa7b:d17d::1", 48820) and payload == 0
    (expect,) = [e.action for e in parse("0 > [ect0] . 1:1(0) ack 101 win 500\n").events]
    packets.verify(expect, packets.to_script(ip, tcp, payload, conn, expect, 0))
    (ttl,) = [e.action for e in parse("0 > (ttl 32) . 1:1(0) ack 101 win 500\n").events]
    with pytest.raises(packets.DrillMismatch, match=r"live packet field ttl: expected: 32 \(0x20\) vs actual: 64"):
        packets.verify(ttl, packets.to_script(ip, tcp, payload, conn, ttl, 0))


def test_segments_taken_together_keep_the_first_ones_cwr():
    """aggregate_packets: GSO sets CWR on a burst's first segment only; the script's one
    packet for the burst has it."""
    conn = Connection("192.168.0.1", "192.0.2.1", remote_port=48820, remote_isn=0, local_isn=1_000_000)
    (expect,) = [e.action for e in parse("0 > PW. 1:2001(2000) ack 1\n").events]
    ip = IpHdr(0xC0A80001, 0xC0000201, 6)
    first = packets.to_script(ip, TcpHdr(8080, 48820, 1_000_001, 1, flags=0x10 | 0x80), 1000, conn, expect, 0)
    last = packets.to_script(ip, TcpHdr(8080, 48820, 1_000_001 + 1000, 1, flags=0x10 | 0x08), 1000, conn, expect, 0)
    seen = packets.aggregate(first, last)
    assert (seen.seq, seen.payload, seen.tcp.flags) == (1, 2000, 0x10 | 0x08 | 0x80)
    packets.verify(expect, seen)
