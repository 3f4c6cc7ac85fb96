"""Readiness as poll(2) reports it, checked against the Linux kernel's own sockets in
the same states (tcp_poll, datagram_poll), and waits that are woken by the socket's
events: many blocked calls on an event loop hold no thread."""

import asyncio
import errno
import select
import socket
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from test_socket_layer import FakeL4 as FakeUdpL4, delivered
from test_socket_stream import FakeL4 as FakeTcpL4, data_skb, established

from pktpath.counters import Mib
from pktpath.services.socket.sock import AF_INET, SHUT_RD, SHUT_RDWR, SOCK_DGRAM, SOCK_STREAM, SocketLayer
from pktpath.services.socket.wait import POLLIN, wait_async
from pktpath.sockerr import SockError
from pktpath.wire.addr import ip_from_str as ip


def kernel_poll(sock: socket.socket) -> int:
    p = select.poll()
    p.register(sock, 0xFFFF & ~select.POLLNVAL)
    ready = p.poll(0)
    return ready[0][1] if ready else 0


@pytest.fixture
def tcp():
    l4 = FakeTcpL4()
    return SocketLayer("B", l4, Mib(), l4)


@pytest.fixture
def udp():
    return SocketLayer("A", FakeUdpL4(), Mib())


@pytest.fixture
def loopback():
    """The kernel's TCP sockets on loopback: a listener and a way to connect to it."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    made = [listener]

    def pair():
        c = socket.create_connection(listener.getsockname())
        a, _ = listener.accept()
        made.extend((c, a))
        return c, a

    yield listener, pair
    for s in made:
        s.close()


def settle():
    time.sleep(0.05)  # the kernel's loopback delivers in softirq


def test_datagram_poll_matches_the_kernels(udp):
    ours, kernel = udp.socket(AF_INET, SOCK_DGRAM, 0), socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    assert ours.poll() == kernel_poll(kernel) == 0x304  # POLLOUT | POLLWRNORM | POLLWRBAND
    kernel.connect(("127.0.0.1", 9))
    kernel.send(b"x")  # port unreachable: sk_err
    settle()
    udp.connect(ours, ip("10.0.0.2"), 9)
    udp.sk_error_report(ours.sk, errno.ECONNREFUSED, True, "", 3, 3)
    assert ours.poll() == kernel_poll(kernel) == 0x30C  # ... | POLLERR
    for how in (SHUT_RD, SHUT_RDWR):
        ours, kernel = udp.socket(AF_INET, SOCK_DGRAM, 0), socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.connect(ours, ip("10.0.0.2"), 9)
        kernel.connect(("127.0.0.1", 9))
        udp.shutdown(ours, how)
        kernel.shutdown(how)
        assert ours.poll() == kernel_poll(kernel), how  # RDHUP and IN; HUP once both ways are shut
    ours = udp.socket(AF_INET, SOCK_DGRAM, 0)
    udp.bind(ours, 0, 5000)
    udp.sock_queue_rcv_skb([delivered(ours)])
    assert ours.poll() == 0x304 | POLLIN | select.POLLRDNORM


def test_tcp_poll_matches_the_kernels_through_a_connection(tcp, loopback):
    listener, pair = loopback
    fresh = tcp.socket(AF_INET, SOCK_STREAM, 0)
    assert fresh.poll() == kernel_poll(socket.socket()) == 0x114  # never connected: POLLOUT | POLLHUP
    srv = tcp.socket(AF_INET, SOCK_STREAM, 0)
    tcp.bind(srv, 0, 80)
    tcp.listen(srv, 5)
    assert srv.poll() == kernel_poll(listener) == 0
    waiting = socket.create_connection(listener.getsockname())
    settle()
    from pktpath.flow import TcpChild
    tcp.stream.callbacks([("accept", srv.sk, 0, None, TcpChild(1 << 40, ip("10.0.0.2"), 80, ip("10.0.0.1"), 4000,
                                                                   1448))])
    assert srv.poll() == kernel_poll(listener) == 0x41  # a connection to accept: POLLIN
    waiting.close()
    listener.accept()[0].close()

    ours = established(tcp)
    mine, theirs = pair()
    assert ours.poll() == kernel_poll(mine) == 0x104  # established: POLLOUT
    tcp.stream.callbacks([("data", ours.sk, 0, data_skb(ours.sk, b"x"), None)])
    theirs.send(b"x")
    settle()
    assert ours.poll() == kernel_poll(mine) == 0x145
    tcp.stream.callbacks([("eof", ours.sk, 0, None, None)])
    theirs.shutdown(socket.SHUT_WR)
    settle()
    assert ours.poll() == kernel_poll(mine) == 0x2145  # the peer's FIN: POLLRDHUP
    tcp.shutdown(ours, 1)
    mine.shutdown(socket.SHUT_WR)
    settle()
    assert ours.poll() == kernel_poll(mine) == 0x2155  # both ways shut: POLLHUP

    reset = established(tcp)
    mine, theirs = pair()
    theirs.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    theirs.close()
    settle()
    tcp.stream.callbacks([("error", reset.sk, errno.ECONNRESET, None, None), ("closed", reset.sk, 0, None, None)])
    assert reset.poll() == kernel_poll(mine) == 0x215D  # reset: POLLERR | POLLHUP | POLLIN | POLLOUT | POLLRDHUP


def test_a_full_send_buffer_is_not_writeable_until_acked(tcp):
    sock = established(tcp)
    sock.sndbuf = 10_000
    tcp.sendto(sock, b"x" * 10_000)
    assert not sock.poll() & select.POLLOUT
    tcp.stream.callbacks([("acked", sock.sk, 2_000, None, None)])
    assert not sock.poll() & select.POLLOUT   # 2 kB free of 8 kB queued: less than half
    tcp.stream.callbacks([("acked", sock.sk, 3_000, None, None)])
    assert sock.poll() & select.POLLOUT


def test_blocked_calls_on_an_event_loop_hold_no_thread(udp):
    """1,000 recvfroms wait at once with a pool of two threads; each is woken by its own
    datagram, and a call made while they wait is answered at once."""
    socks = []
    for port in range(6000, 7000):
        sock = udp.socket(AF_INET, SOCK_DGRAM, 0)
        udp.bind(sock, 0, port)
        socks.append(sock)
    pool = ThreadPoolExecutor(2)

    async def main():
        loop = asyncio.get_running_loop()
        run = lambda fn, *a: loop.run_in_executor(pool, fn, *a)  # noqa: E731
        readers = [asyncio.create_task(wait_async([k.wq], udp.recvmmsg_call(k, 1, 100), 30, run)) for k in socks]
        while sum(len(k.wq) for k in socks) < len(socks):
            await asyncio.sleep(0.01)
        t0 = time.monotonic()
        quick = udp.socket(AF_INET, SOCK_DGRAM, 0)
        udp.bind(quick, 0, 7000)
        udp.sock_queue_rcv_skb([delivered(quick, b"now")])
        got = await wait_async([quick.wq], udp.recvmmsg_call(quick, 1, 100), 5, run)
        assert got[0].data == b"now" and time.monotonic() - t0 < 1.0
        assert threading.active_count() < 10
        udp.sock_queue_rcv_skb([delivered(k, str(k.sport).encode()) for k in socks])
        results = await asyncio.gather(*readers)
        assert [r[0].data for r in results] == [str(k.sport).encode() for k in socks]
        assert all(len(k.wq) == 0 for k in socks)  # every waiter left its queue

        nothing = asyncio.create_task(wait_async([quick.wq], udp.recvmmsg_call(quick, 1, 100), 0.2, run))
        with pytest.raises(SockError) as exc:
            await nothing
        assert exc.value.errno == errno.EAGAIN

    asyncio.run(main())
    pool.shutdown()
