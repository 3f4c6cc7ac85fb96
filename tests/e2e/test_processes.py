"""Programs as processes of a host: descriptors that are their own, closed when the
program goes however it goes, limits as Linux has them, ss -p naming the owner, and
blocked calls that hold no thread of the socket service."""

import errno
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest
from e2ekit import counters, stub, wait_for
from google.protobuf.empty_pb2 import Empty

from pktpath.client import SOCK_DGRAM, SOCK_STREAM, SocketApi
from pktpath.pb import socket_pb2
from pktpath.rpc import socket_pb2_grpc

pytestmark = pytest.mark.slow
PROGRAMS = Path(__file__).parent / "programs"
README = Path(__file__).parents[2] / "README.md"


@pytest.fixture(scope="module")
def topo(default_topology):
    a = SocketApi(default_topology.addrs.target("A", "socket"))
    yield default_topology, a
    a.close()


def socket_stub(sup, host: str):
    return stub(sup, host, "socket", socket_pb2_grpc.SocketStub)


def processes(sup, host: str) -> int:
    return counters(socket_stub(sup, host))["Files"]["Processes"]


class Forwarder:
    """A TCP relay in front of a socket API, whose connections the test can cut."""

    def __init__(self, target: str) -> None:
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass

    def cut(self) -> None:
        self.listener.close()
        for conn in self.conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()


def start_holder(api_target: str, peer_port: int, listen_port: int, udp_port: int) -> tuple[subprocess.Popen, list]:
    proc = subprocess.Popen([sys.executable, str(PROGRAMS / "holder.py"), api_target, "10.0.0.1", str(peer_port),
                             str(listen_port), str(udp_port)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line, proc.stderr.read()
    return proc, [int(x) for x in line.split()]


@pytest.mark.parametrize("way", ["exit", "raise", "kill -9", "connection cut"])
def test_a_dying_program_closes_its_sockets_as_linux_does(topo, way):
    """Each socket closes as tcp_close would: a FIN, a reset for unread data, a reset
    for each connection the listener never accepted; every port is free at once."""
    sup, a = topo
    base = 7000 + 10 * ["exit", "raise", "kill -9", "connection cut"].index(way)
    listen_port, udp_port, peer_port = base + 1, base + 2, base + 3
    a_listener = a.socket(SOCK_STREAM)
    a_listener.bind(("0.0.0.0", peer_port))
    a_listener.listen(8)
    b_target = sup.addrs.target("B", "socket")
    forwarder = Forwarder(b_target) if way == "connection cut" else None
    before = processes(sup, "B")
    holder, (lfd, ufd, unread_fd, clean_fd, unread_port, clean_port) = start_holder(
        forwarder.address if forwarder else b_target, peer_port, listen_port, udp_port)
    try:
        assert (lfd, ufd, unread_fd, clean_fd) == (3, 4, 5, 6)  # its own numbering from 3
        conns = dict(a_listener.accept(timeout=10)[::-1] for _ in range(2))
        by_port = {peer[1]: conn for peer, conn in conns.items()}
        by_port[unread_port].sendall(b"never read")
        pending = a.socket(SOCK_STREAM)  # completes the handshake, never accepted
        pending.connect(("10.0.0.2", listen_port), timeout=10)

        table = socket_stub(sup, "B").ListSockets(Empty())
        comm = Path(f"/proc/{holder.pid}/comm").read_text().strip()
        owned = {(s.local.port, s.users[0].fd) for s in table.sockets
                 if s.users and s.users[0].pid == holder.pid and s.users[0].comm == comm}
        assert {(listen_port, 3), (udp_port, 4), (unread_port, 5), (clean_port, 6)} <= owned
        assert wait_for(lambda: any(s.local.port == unread_port and s.recv_q for s in
                                    socket_stub(sup, "B").ListSockets(Empty()).sockets))

        if way in ("exit", "raise"):
            holder.stdin.write(way + "\n")
            holder.stdin.flush()
            assert holder.wait(10) == (0 if way == "exit" else 1)
        elif way == "kill -9":
            holder.send_signal(signal.SIGKILL)
            holder.wait(10)
        else:
            forwarder.cut()

        with pytest.raises(ConnectionResetError):
            by_port[unread_port].recv(timeout=10)   # unread data: TCPAbortOnClose
        assert by_port[clean_port].recv(timeout=10) == b""   # the FIN
        with pytest.raises(ConnectionResetError):
            pending.recv(timeout=10)                 # the listener's child, reset
        assert wait_for(lambda: processes(sup, "B") == before)
        with SocketApi(b_target) as again:           # every port is free for a new program
            again.socket(SOCK_STREAM).bind(("0.0.0.0", listen_port))
            again.socket(SOCK_DGRAM).bind(("0.0.0.0", udp_port))
    finally:
        holder.kill()
        holder.wait()
        for conn in (a_listener, pending, *by_port.values()) if "by_port" in dir() else (a_listener,):
            conn.close()


def test_a_descriptor_of_another_process_is_ebadf(topo):
    sup, a = topo
    with SocketApi(sup.addrs.target("A", "socket")) as other:
        mine = a.socket(SOCK_DGRAM)
        theirs = other.socket(SOCK_DGRAM)
        with pytest.raises(OSError) as exc:
            other.call("Close", socket_pb2.FdRequest(fd=mine.fd + 100))
        assert exc.value.errno == errno.EBADF
        theirs.close()
        with pytest.raises(OSError) as exc:
            theirs.getsockname()  # closed in its own process
        assert exc.value.errno == errno.EBADF
        assert mine.getsockname() == ("0.0.0.0", 0)
        mine.close()


def test_rlimit_nofile_gives_emfile_and_the_lowest_descriptor_is_reused(topo):
    sup, _ = topo
    with SocketApi(sup.addrs.target("A", "socket")) as p:
        assert p.prlimit_nofile() == (1024, 4096)
        assert p.prlimit_nofile(soft=8) == (8, 4096)
        socks = [p.socket(SOCK_DGRAM) for _ in range(5)]
        assert [s.fd for s in socks] == [3, 4, 5, 6, 7]
        with pytest.raises(OSError) as exc:
            p.socket(SOCK_DGRAM)
        assert exc.value.errno == errno.EMFILE
        socks[1].close()
        assert p.socket(SOCK_DGRAM).fd == 4
        with pytest.raises(OSError) as exc:
            p.prlimit_nofile(soft=10, hard=5)
        assert exc.value.errno == errno.EINVAL


def test_calls_without_a_process_are_refused(topo):
    sup, _ = topo
    with pytest.raises(grpc.RpcError) as exc:
        socket_stub(sup, "A").Socket(socket_pb2.SocketRequest(family=2, type=2), timeout=5)
    assert exc.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "Attach" in exc.value.details()


def test_ss_p_names_the_process_holding_each_socket(topo):
    sup, a = topo
    listener = a.socket(SOCK_STREAM)
    listener.bind(("0.0.0.0", 7100))
    listener.listen()
    out = subprocess.run([str(Path(sys.executable).parent / "pktpath"), "ss", "-ltp", "--on", "A", "--base-port",
                          str(sup.base_port)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    comm = Path("/proc/self/comm").read_text().strip()
    line = next(l for l in out.stdout.splitlines() if ":7100" in l)
    assert re.search(rf'users:\(\("{re.escape(comm)}",pid={os.getpid()},fd={listener.fd}\)\)', line), line
    listener.close()


def test_the_readme_snippet_runs_again_and_again(default_topology):
    """The README's pktpath.client example, unchanged but for the ports, twice in a row."""
    sup = default_topology
    snippet = re.search(r"```python\nfrom pktpath.client import.*?```", README.read_text(), re.S).group(0)[10:-3]
    snippet = snippet.replace("127.0.0.1:50025", sup.addrs.target("B", "socket")).replace(
        "127.0.0.1:50015", sup.addrs.target("A", "socket"))
    for _ in range(2):
        run = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr
        assert "b'hello'" in run.stdout and "b'GET /' b''" in run.stdout


def test_a_thousand_blocked_calls_do_not_delay_another_process(topo):
    """20 programs with 50 recvfroms each waiting on B: another program's socket(),
    sendto() and recvfrom() are answered as fast as on an idle host. (20 not 100 programs: each
    is an interpreter that loads grpc, and a hundred take CI's two cores half a minute.)"""
    sup, a = topo
    b_target = sup.addrs.target("B", "socket")

    def round_trip(api) -> float:
        t0 = time.perf_counter()
        rx = api.socket(SOCK_DGRAM)
        rx.bind(("0.0.0.0", 7200))
        a.socket(SOCK_DGRAM).sendto(b"through", ("10.0.0.2", 7200))
        assert rx.recvfrom(timeout=10)[0] == b"through"
        rx.close()
        return time.perf_counter() - t0

    with SocketApi(b_target) as idle:
        baseline = min(round_trip(idle) for _ in range(3))
    blockers: list[subprocess.Popen] = []
    try:
        for _ in range(2):  # in waves of ten: interpreters starting at once swamp two cores
            wave = [subprocess.Popen([sys.executable, str(PROGRAMS / "blocker.py"), b_target, "50"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for _ in range(10)]
            blockers += wave
            assert [p.stdout.readline() for p in wave] == ["ready\n"] * 10
        time.sleep(1)  # the last futures reach the host
        with SocketApi(b_target) as busy:
            loaded = [round_trip(busy) for _ in range(3)]
        assert max(loaded) < max(1.0, 5 * baseline), (baseline, loaded)
        assert processes(sup, "B") >= 20
    finally:
        for p in blockers:
            p.stdin.close()
        for p in blockers:
            p.wait(30)
    assert wait_for(lambda: processes(sup, "B") == 0, 30)
