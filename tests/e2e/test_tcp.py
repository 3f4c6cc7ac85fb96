"""TCP between two hosts on one link, every layer its own process: the socket API
at both ends (connect, listen, accept, send, recv, shutdown, close), the
handshake and resets on the wire, and the Tcp counters."""

import errno
import hashlib
import os
import threading

import pytest
from google.protobuf import empty_pb2

from pktpath.client import SHUT_WR, SOCK_STREAM
from pktpath.pb import nic_pb2, softirq_pb2
from pktpath.rpc import l4_pb2_grpc, nic_pb2_grpc, socket_pb2_grpc, softirq_pb2_grpc

from e2ekit import counter, listener, read_all, stub, tcp_connection, wait_for, with_sockets

pytestmark = pytest.mark.slow

B_IP = "10.0.0.2"


@pytest.fixture(scope="module")
def net(default_topology):
    yield from with_sockets(default_topology, "A", "B")


def connection(a, b, port: int, backlog: int = 16):
    return tcp_connection(a, b, B_IP, port, backlog)


def send_all_and_read(cli, conn, data: bytes) -> bytearray:
    """cli sends data and its FIN while conn reads to the end: what conn read."""
    got = bytearray()
    reader = threading.Thread(target=read_all, args=(conn, got))
    reader.start()
    cli.sendall(data)
    cli.shutdown(SHUT_WR)
    reader.join(60)
    return got


def test_ten_megabytes_cross_byte_exact_and_both_ends_count_it(net):
    sup, a, b = net
    l4_a, l4_b = stub(sup, "A", "l4", l4_pb2_grpc.L4Stub), stub(sup, "B", "l4", l4_pb2_grpc.L4Stub)
    opens = counter(l4_a, "Tcp", "ActiveOpens"), counter(l4_b, "Tcp", "PassiveOpens")
    with listener(b, 5001) as srv, a.socket(SOCK_STREAM) as cli:
        cli.connect((B_IP, 5001), timeout=10)
        conn, peer = srv.accept(timeout=10)
        assert peer == ("10.0.0.1", cli.getsockname()[1]) and cli.getpeername() == (B_IP, 5001)
        data = os.urandom(10_000_000)
        assert hashlib.sha256(send_all_and_read(cli, conn, data)).digest() == hashlib.sha256(data).digest()
        # every skb A's TCP sent was freed below it, on A's ring or on the way, and gave its truesize
        # back to the socket (tcp_wfree, the seam TCP Small Queues counts on): nothing is left charged
        sport = cli.getsockname()[1]
        wait_for(lambda: next(t.wmem_alloc for t in l4_a.GetTcpSockets(empty_pb2.Empty(), timeout=5).socks
                              if t.sport == sport) == 0, 10)
        conn.close()
    assert counter(l4_a, "Tcp", "ActiveOpens") == opens[0] + 1
    assert counter(l4_b, "Tcp", "PassiveOpens") == opens[1] + 1
    assert counter(l4_a, "Tcp", "OutSegs") >= 10_000_000 // 1448


def test_over_fq_a_transfer_is_paced_and_arrives_whole(net):
    """`tc qdisc replace dev eth0 root fq` on A: its TCP learns fq is there (from the freed
    skbs), stamps each skb with its departure time, and fq holds them to it (throttled).
    B's replies take 100 ms more on the wire, so the pacing rate (twice cwnd per RTT: 290 kB/s
    at first, a 2-segment skb every 10 ms) is far slower than A's layers: pacing binds."""
    sup, a, b = net
    softirq = stub(sup, "A", "softirq", softirq_pb2_grpc.SoftirqStub)
    nic_b = stub(sup, "B", "nic", nic_pb2_grpc.NicStub)
    softirq.ReplaceQdisc(softirq_pb2.Qdisc(dev="eth0", kind="fq"), timeout=5)
    nic_b.SetNetem(nic_pb2.Netem(dev="eth0", delay_ms=100), timeout=5)
    try:
        with connection(a, b, 5011) as (_, cli, conn):
            data = os.urandom(300_000)
            assert send_all_and_read(cli, conn, data) == data
        root = softirq.GetQdisc(softirq_pb2.Qdisc(dev="eth0"), timeout=5)
        assert root.kind == "fq" and root.throttled > 0
    finally:
        nic_b.SetNetem(nic_pb2.Netem(dev="eth0"), timeout=5)
        softirq.ReplaceQdisc(softirq_pb2.Qdisc(dev="eth0", kind="pfifo_fast"), timeout=5)


def test_connect_to_a_closed_port_is_refused(net):
    sup, a, b = net
    l4_b = stub(sup, "B", "l4", l4_pb2_grpc.L4Stub)
    rsts = counter(l4_b, "Tcp", "OutRsts")
    with a.socket(SOCK_STREAM) as cli:
        with pytest.raises(ConnectionRefusedError, match="connection refused"):
            cli.connect((B_IP, 5999), timeout=10)
    assert counter(l4_b, "Tcp", "OutRsts") == rsts + 1


def test_half_close_both_ways(net):
    sup, a, b = net
    with connection(a, b, 5002) as (srv, cli, conn):
        cli.send(b"request")
        cli.shutdown(SHUT_WR)  # "that is all I will send"
        assert conn.recv(100, timeout=10) == b"request"
        assert conn.recv(100, timeout=10) == b""  # the FIN
        conn.send(b"answer after your FIN")
        conn.shutdown(SHUT_WR)
        assert cli.recv(100, timeout=10) == b"answer after your FIN"
        assert cli.recv(100, timeout=10) == b""
        conn.close()


def test_twenty_concurrent_connections(net):
    sup, a, b = net
    n, size = 20, 20_000
    with listener(b, 5003, backlog=n) as srv:
        results, errors = {}, []

        def serve():
            for _ in range(n):
                conn, peer = srv.accept(timeout=20)
                buf = bytearray()
                threading.Thread(target=lambda c=conn, p=peer, bb=buf: (read_all(c, bb), results.__setitem__(p, bb),
                                                                         c.close())).start()

        server = threading.Thread(target=serve)
        server.start()

        def client(i):
            try:
                with a.socket(SOCK_STREAM) as cli:
                    cli.connect((B_IP, 5003), timeout=20)
                    cli.sendall(bytes([i]) * size)
                    cli.shutdown(SHUT_WR)
                    cli.recv(1, timeout=20)  # the server's FIN
            except OSError as exc:
                errors.append(exc)

        clients = [threading.Thread(target=client, args=(i,)) for i in range(n)]
        for t in clients:
            t.start()
        for t in clients:
            t.join(60)
        server.join(30)
        wait_for(lambda: len(results) == n, 30)
    assert not errors
    assert sorted(bytes(v[:1]) for v in results.values()) == [bytes([i]) for i in range(n)]
    assert all(len(v) == size and len(set(v)) == 1 for v in results.values())


def test_closing_with_unread_data_resets_the_peer(net):
    sup, a, b = net
    l4_b = stub(sup, "B", "l4", l4_pb2_grpc.L4Stub)
    aborts = counter(l4_b, "TcpExt", "TCPAbortOnClose")
    with connection(a, b, 5004) as (srv, cli, conn):
        cli.send(b"you will never read this")
        wait_for(lambda: _recv_q(sup, "B", conn.fd) > 0)
        conn.close()
        with pytest.raises(ConnectionResetError):
            cli.recv(100, timeout=10)
    assert counter(l4_b, "TcpExt", "TCPAbortOnClose") == aborts + 1


def _recv_q(sup, host: str, fd: int) -> int:
    table = stub(sup, host, "socket", socket_pb2_grpc.SocketStub).ListSockets(empty_pb2.Empty(), timeout=5)
    return next((s.recv_q for s in table.sockets if s.fd == fd), 0)


def test_listening_and_established_sockets_show_in_the_tables(net):
    sup, a, b = net
    with connection(a, b, 5005, backlog=7) as (srv, cli, conn):
        socks = stub(sup, "B", "socket", socket_pb2_grpc.SocketStub).ListSockets(empty_pb2.Empty(), timeout=5)
        rows = {s.fd: s for s in socks.sockets}
        assert (rows[srv.fd].netid, rows[srv.fd].state, rows[srv.fd].send_q) == ("tcp", "LISTEN", 7)
        assert rows[conn.fd].state == "ESTAB" and rows[conn.fd].peer.port == cli.getsockname()[1]
        tcp = stub(sup, "B", "l4", l4_pb2_grpc.L4Stub).GetTcpSockets(empty_pb2.Empty(), timeout=5)
        states = {(t.sport, t.dport): t for t in tcp.socks}
        est = states[5005, cli.getsockname()[1]]
        assert est.state == "ESTAB" and est.mss == 1448 and est.cong == "cubic"
        conn.close()


def test_send_after_the_peer_reset_fails(net):
    sup, a, b = net
    with connection(a, b, 5006) as (srv, cli, conn):
        conn.send(b"x")
        wait_for(lambda: _recv_q(sup, "A", cli.fd) > 0)
        cli.close()  # unread data: a reset
        with pytest.raises(OSError) as exc:
            for _ in range(50):
                conn.send(b"y" * 1000, timeout=1)
        assert exc.value.errno in (errno.ECONNRESET, errno.EPIPE)


def test_pktpath_ss_lists_listeners_and_connections(net):
    import subprocess
    import sys

    sup, a, b = net
    with connection(a, b, 5007, backlog=9) as (srv, cli, conn):
        out = subprocess.run([sys.executable, "-m", "pktpath.cli", "ss", "-tai", "--on", "B", "--base-port",
                              str(sup.base_port)], capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        lines = out.stdout.splitlines()
        assert lines[0].split()[:3] == ["State", "Recv-Q", "Send-Q"]
        assert any(line.split() == ["LISTEN", "0", "9", "0.0.0.0:5007", "0.0.0.0:*"] for line in lines)
        sport = cli.getsockname()[1]
        row = next(i for i, line in enumerate(lines) if line.split()[-1:] == [f"10.0.0.1:{sport}"])
        assert lines[row].split()[:4] == ["ESTAB", "0", "0", "10.0.0.2:5007"]
        assert "cubic" in lines[row + 1] and "mss:1448" in lines[row + 1]
        conn.close()


def test_a_slow_reader_blocks_the_sender_until_it_reads_and_nothing_is_lost(net):
    """The reader does not read: its window closes, the sender's send buffer fills and a
    send waits (EAGAIN at its timeout), the sender probes the zero window; then the
    reader drains it all, byte-exact."""
    sup, a, b = net
    l4_a = stub(sup, "A", "l4", l4_pb2_grpc.L4Stub)
    probes = counter(l4_a, "TcpExt", "TCPWinProbe")
    data = os.urandom(3_000_000)
    with connection(a, b, 5008) as (srv, cli, conn):
        sent = 0
        with pytest.raises(TimeoutError):
            while sent < len(data):
                sent += cli.send(data[sent:sent + 65536], timeout=2)
        assert 0 < sent < len(data)
        tcp = stub(sup, "B", "l4", l4_pb2_grpc.L4Stub).GetTcpSockets(empty_pb2.Empty(), timeout=5)
        row = next(t for t in tcp.socks if t.sport == 5008 and t.dport == cli.getsockname()[1])
        assert row.recv_q > 0  # held for a reader that does not read
        wait_for(lambda: counter(l4_a, "TcpExt", "TCPWinProbe") > probes, 30)
        got = bytearray()
        reader = threading.Thread(target=read_all, args=(conn, got))
        reader.start()
        cli.sendall(data[sent:])
        cli.shutdown(SHUT_WR)
        reader.join(60)
        assert bytes(got) == data


def test_listen_backlog_overflow_is_counted(net):
    sup, a, b = net
    l4_b = stub(sup, "B", "l4", l4_pb2_grpc.L4Stub)
    before = counter(l4_b, "TcpExt", "ListenOverflows") + counter(l4_b, "TcpExt", "TCPReqQFullDrop")
    with listener(b, 5009, backlog=1):
        clients = [a.socket(SOCK_STREAM) for _ in range(4)]
        for cli in clients:
            with pytest.raises(BlockingIOError):
                cli.connect((B_IP, 5009), nonblocking=True)
        wait_for(lambda: counter(l4_b, "TcpExt", "ListenOverflows") + counter(l4_b, "TcpExt", "TCPReqQFullDrop")
                 > before, 10)
        assert counter(l4_b, "TcpExt", "ListenDrops") > 0
        for cli in clients:
            cli.close()
