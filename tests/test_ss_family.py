"""ss's family options (-4, -6, -f FAMILY) in pktpath.tools.ss, without a topology: the same
sockets as in a namespace of Linux 6.18 (a dual-stack AF_INET6 listener on 7100 and the IPv4
connection it accepted from 127.0.0.1:36748, an AF_INET listener on 7101, an IPV6_V6ONLY one on
7102, AF_INET6 and AF_INET UDP sockets on 7200 and 7201), and iproute2's ss's output for them,
copied here line by line (its trailing blanks cut): pktpath's must be the same, to the column.

What ss.c does, and the cases show: -4/-6/-f add to the families shown and the last of them is
preferred_family, the only one dumped if it is inet or inet6 (so -4 -6 shows IPv6's, -6 -4
IPv4's); a socket's family is its own, so the dual-stack listener and its v4-mapped connection
are -6's; a family alone brings its tables (-4: TCP and UDP, with the Netid column), a table
none of whose families was named brings them all (-t -f unix: TCP of both families)."""

import pytest

from pktpath.cli import parser
from pktpath.pb import l4_pb2, socket_pb2
from pktpath.tools.ss import AF_INET, AF_INET6, AF_UNIX, FilterError, select, ss

TCP = [l4_pb2.TcpSockInfo(sk=3, state="LISTEN", saddr="::", sport=7102, daddr="::", send_q=128, family=AF_INET6,
                          ipv6only=True),
       l4_pb2.TcpSockInfo(sk=1, state="LISTEN", saddr="::", sport=7100, daddr="::", send_q=128, family=AF_INET6),
       l4_pb2.TcpSockInfo(sk=2, state="LISTEN", saddr="0.0.0.0", sport=7101, daddr="0.0.0.0", send_q=128,
                          family=AF_INET),
       l4_pb2.TcpSockInfo(sk=5, state="ESTAB", saddr="::ffff:127.0.0.1", sport=7100, daddr="::ffff:127.0.0.1",
                          dport=36748, family=AF_INET6),
       l4_pb2.TcpSockInfo(sk=4, state="ESTAB", saddr="127.0.0.1", sport=36748, daddr="127.0.0.1", dport=7100,
                          family=AF_INET)]
UDP = [socket_pb2.SocketInfo(netid="udp", state="UNCONN", local=socket_pb2.Sockaddr(addr="::", port=7200),
                             family=AF_INET6, sk=6),
       socket_pb2.SocketInfo(netid="udp", state="UNCONN", local=socket_pb2.Sockaddr(addr="0.0.0.0", port=7201),
                             family=AF_INET, sk=7)]


class Stub:
    def __init__(self, **rpcs) -> None:
        self.__dict__.update(rpcs)


class View:
    """A host's services as pktpath ss asks them: L4 lists its TCP sockets (IPv6's first here,
    so that the order ss prints is ss's own), the socket layer its datagram sockets."""
    stub = {"socket": Stub(ListSockets=lambda *a, **k: socket_pb2.SocketTable(sockets=UDP)),
            "l4": Stub(GetTcpSockets=lambda *a, **k: l4_pb2.TcpSockTable(socks=TCP))}


def pktpath_ss(words: str) -> list[str]:
    """`pktpath ss WORDS` as the command line parses them, the lines it prints."""
    args = parser().parse_args(["ss", *words.split()])
    return ss(View(), tcp=args.tcp, udp=args.udp, listening=args.listening, all_=args.all,
              filter_words=args.filter, families=args.families or ())


KERNEL = {
    '-tna': [
        'State  Recv-Q Send-Q      Local Address:Port        Peer Address:Port Process',
        'LISTEN 0      128               0.0.0.0:7101             0.0.0.0:*',
        'ESTAB  0      0               127.0.0.1:36748          127.0.0.1:7100',
        'LISTEN 0      128                  [::]:7102                [::]:*',
        'LISTEN 0      128                     *:7100                   *:*',
        'ESTAB  0      0      [::ffff:127.0.0.1]:7100  [::ffff:127.0.0.1]:36748',
    ],
    '-tna -4': [
        'State  Recv-Q Send-Q Local Address:Port  Peer Address:PortProcess',
        'LISTEN 0      128          0.0.0.0:7101       0.0.0.0:*',
        'ESTAB  0      0          127.0.0.1:36748    127.0.0.1:7100',
    ],
    '-tna -6': [
        'State  Recv-Q Send-Q      Local Address:Port       Peer Address:Port Process',
        'LISTEN 0      128                  [::]:7102               [::]:*',
        'LISTEN 0      128                     *:7100                  *:*',
        'ESTAB  0      0      [::ffff:127.0.0.1]:7100 [::ffff:127.0.0.1]:36748',
    ],
    '-una -4': [
        'State  Recv-Q Send-Q Local Address:Port Peer Address:PortProcess',
        'UNCONN 0      0            0.0.0.0:7201      0.0.0.0:*',
    ],
    '-una -6': [
        'State  Recv-Q Send-Q Local Address:Port Peer Address:PortProcess',
        'UNCONN 0      0                  *:7200            *:*',
    ],
    '-tna -4 -6': [
        'State  Recv-Q Send-Q      Local Address:Port       Peer Address:Port Process',
        'LISTEN 0      128                  [::]:7102               [::]:*',
        'LISTEN 0      128                     *:7100                  *:*',
        'ESTAB  0      0      [::ffff:127.0.0.1]:7100 [::ffff:127.0.0.1]:36748',
    ],
    '-tna -6 -4': [
        'State  Recv-Q Send-Q Local Address:Port  Peer Address:PortProcess',
        'LISTEN 0      128          0.0.0.0:7101       0.0.0.0:*',
        'ESTAB  0      0          127.0.0.1:36748    127.0.0.1:7100',
    ],
    '-tna -f inet -f inet6': [
        'State  Recv-Q Send-Q      Local Address:Port       Peer Address:Port Process',
        'LISTEN 0      128                  [::]:7102               [::]:*',
        'LISTEN 0      128                     *:7100                  *:*',
        'ESTAB  0      0      [::ffff:127.0.0.1]:7100 [::ffff:127.0.0.1]:36748',
    ],
    '-na -4': [
        'Netid State  Recv-Q Send-Q Local Address:Port  Peer Address:PortProcess',
        'udp   UNCONN 0      0            0.0.0.0:7201       0.0.0.0:*',
        'tcp   LISTEN 0      128          0.0.0.0:7101       0.0.0.0:*',
        'tcp   ESTAB  0      0          127.0.0.1:36748    127.0.0.1:7100',
    ],
    '-na -6': [
        'Netid State  Recv-Q Send-Q      Local Address:Port       Peer Address:Port Process',
        'udp   UNCONN 0      0                       *:7200                  *:*',
        'tcp   LISTEN 0      128                  [::]:7102               [::]:*',
        'tcp   LISTEN 0      128                     *:7100                  *:*',
        'tcp   ESTAB  0      0      [::ffff:127.0.0.1]:7100 [::ffff:127.0.0.1]:36748',
    ],
    '-tna -f unix': [
        'Netid State  Recv-Q Send-Q      Local Address:Port        Peer Address:Port Process',
        'tcp   LISTEN 0      128               0.0.0.0:7101             0.0.0.0:*',
        'tcp   ESTAB  0      0               127.0.0.1:36748          127.0.0.1:7100',
        'tcp   LISTEN 0      128                  [::]:7102                [::]:*',
        'tcp   LISTEN 0      128                     *:7100                   *:*',
        'tcp   ESTAB  0      0      [::ffff:127.0.0.1]:7100  [::ffff:127.0.0.1]:36748',
    ],
    '-tna -4 -f unix': [
        'Netid State  Recv-Q Send-Q Local Address:Port  Peer Address:PortProcess',
        'tcp   LISTEN 0      128          0.0.0.0:7101       0.0.0.0:*',
        'tcp   ESTAB  0      0          127.0.0.1:36748    127.0.0.1:7100',
    ],
    '-na -f link': [
        'Netid State Recv-Q Send-Q Local Address:Port Peer Address:PortProcess',
    ],
    '-tln -6': [
        'State  Recv-Q Send-Q Local Address:Port Peer Address:PortProcess',
        'LISTEN 0      128             [::]:7102         [::]:*',
        'LISTEN 0      128                *:7100            *:*',
    ],
    '-tna -6 sport = :7100': [
        'State  Recv-Q Send-Q      Local Address:Port       Peer Address:Port Process',
        'LISTEN 0      128                     *:7100                  *:*',
        'ESTAB  0      0      [::ffff:127.0.0.1]:7100 [::ffff:127.0.0.1]:36748',
    ],
}


@pytest.mark.parametrize("words", list(KERNEL))
def test_pktpath_ss_prints_what_the_kernels_ss_printed_for_the_same_sockets(words):
    assert pktpath_ss(words) == KERNEL[words]


def test_a_dual_stack_listener_and_its_v4_mapped_connection_are_ipv6s_not_ipv4s():
    ipv4 = " ".join(pktpath_ss("-tna -4"))
    ipv6 = " ".join(pktpath_ss("-tna -6"))
    assert "*:7100" not in ipv4 and "[::ffff:127.0.0.1]:7100" not in ipv4 and "0.0.0.0:7101" in ipv4
    assert "*:7100" in ipv6 and "[::ffff:127.0.0.1]:7100" in ipv6 and "0.0.0.0:7101" not in ipv6


def test_the_last_family_named_is_the_one_dumped_and_the_others_only_filter():
    assert select(families=["inet", "inet6"]).dumps() == (AF_INET6,)
    assert select(families=["inet6", "inet"]).dumps() == (AF_INET,)
    both = select(tcp=True, families=["inet", "unix"])
    assert both.dumps() == (AF_INET, AF_INET6) and both.shows(AF_INET) and not both.shows(AF_INET6)
    assert select(tcp=True).families == {AF_INET, AF_INET6}  # -t alone: TCP's families, no Netid column
    assert select(tcp=True).dbs == {"tcp"}
    assert {"tcp", "udp"} <= select(families=["inet"]).dbs  # -4 alone: every inet table
    unix = select(families=["unix"])
    assert unix.families == {AF_UNIX} and not unix.dbs & {"tcp", "udp"}  # -f unix alone: no inet socket


def test_json_records_say_each_sockets_family():
    args = parser().parse_args(["ss", "-tna6"])
    records = ss(View(), tcp=args.tcp, all_=args.all, families=args.families, json=True)
    assert {r["family"] for r in records} == {"inet6"} and {r["local"]["port"] for r in records} == {7100, 7102}


def test_a_family_ss_does_not_know_is_refused_as_ss_refuses_it():
    with pytest.raises(FilterError, match='"bogus" is invalid family'):
        select(families=["bogus"])
    with pytest.raises(SystemExit):
        parser().parse_args(["ss", "-f", "bogus"])
