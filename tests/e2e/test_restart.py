"""A layer that dies and is restarted (issue #16): the layers beside it learn it and end what
depended on it as Linux ends a dead process's sockets — connections aborted or reset,
errors to the processes that own them, ports freed — and count it, instead of leaving a
blocked recv waiting or a port taken forever."""

import errno
import os
import signal
import threading
import time

import grpc
import pytest
from conftest import start_topology
from e2ekit import counter, stub, wait_for
from google.protobuf.empty_pb2 import Empty
from grpc_health.v1 import health_pb2, health_pb2_grpc

from pktpath.client import SOCK_STREAM, SocketApi
from pktpath.rpc import l4_pb2_grpc, socket_pb2_grpc

pytestmark = pytest.mark.slow
A_IP, B_IP = "10.0.0.1", "10.0.0.2"


@pytest.fixture(scope="module")
def watched(tmp_path_factory):
    """The default topology under a watcher that restarts what dies; its reports."""
    sup = start_topology("default", tmp_path_factory)
    reports: list[str] = []
    sup.watch(reports.append)
    yield sup, reports
    statuses = sup.stop()
    assert all(rc == 0 for _, _, rc in statuses), statuses  # the restarted ones too
    for log in sup.log_dir.iterdir():
        assert "Traceback" not in log.read_text(), log.name


def kill(sup, host: str, layer: str) -> None:
    svc = next(svc for svc in sup.services if (svc.host, svc.layer) == (host, layer))
    os.kill(svc.proc.pid, signal.SIGKILL)


def serving(sup, host: str, layer: str) -> bool:
    try:
        reply = stub(sup, host, layer, health_pb2_grpc.HealthStub).Check(health_pb2.HealthCheckRequest(), timeout=1)
    except grpc.RpcError:
        return False
    return reply.status == health_pb2.HealthCheckResponse.SERVING


def restarted(sup, reports, host: str, layer: str) -> None:
    """Wait for the watcher to report the death and the new process to serve."""
    assert wait_for(lambda: any(f"{host}/{layer} was killed by SIGKILL" in r for r in reports), 10), reports
    time.sleep(0.5)  # the restart's delay: the old process's address must not answer for the new one
    assert wait_for(lambda: serving(sup, host, layer), 60)


def failing(call, timeout: float = 10.0) -> OSError:
    """Run a blocking call on a thread: the OSError it ends with, within timeout."""
    result: list = []

    def run():
        try:
            result.append(call())
        except OSError as exc:
            result.append(exc)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    assert result and isinstance(result[0], OSError), f"still blocked or returned {result}"
    return result[0]


def connected_pair(a: SocketApi, b: SocketApi, port: int):
    listener = b.socket(SOCK_STREAM)
    listener.bind(("0.0.0.0", port))
    listener.listen(8)
    client = a.socket(SOCK_STREAM)
    client.connect((B_IP, port), timeout=10)
    server, _ = listener.accept(timeout=10)
    return listener, client, server


def test_a_restarted_socket_layer_resets_its_connections_and_frees_its_ports(watched):
    """Before: L4 kept LISTEN and an established connection with 220 kB unread forever, and
    the port stayed EADDRINUSE."""
    sup, reports = watched
    l4 = stub(sup, "B", "l4", l4_pb2_grpc.L4Stub)
    with SocketApi(sup.addrs.target("A", "socket")) as a:
        b = SocketApi(sup.addrs.target("B", "socket"))
        _, client, _ = connected_pair(a, b, 7710)
        client.sendall(b"u" * 220_000)  # never read by B
        assert wait_for(lambda: any(t.sport == 7710 and t.recv_q for t in l4.GetTcpSockets(Empty(), timeout=5).socks))
        kill(sup, "B", "socket")
        # B's process died with its socket layer: its connection ends as close(2) of unread data does
        reset = failing(lambda: client.recv(100, timeout=20))
        assert reset.errno == errno.ECONNRESET, reset
        assert wait_for(lambda: not [t for t in l4.GetTcpSockets(Empty(), timeout=5).socks if t.sport == 7710])
        assert counter(l4, "Peer", "SocketLayerLost") == 1 and counter(l4, "Peer", "SocketsClosed") >= 2
        assert counter(l4, "Peer", "PortsFreed") >= 1
        restarted(sup, reports, "B", "socket")
        with SocketApi(sup.addrs.target("B", "socket")) as b2:  # the port is free again at once
            listener = b2.socket(SOCK_STREAM)
            listener.bind(("0.0.0.0", 7710))
            listener.listen(1)
            again = a.socket(SOCK_STREAM)
            again.connect((B_IP, 7710), timeout=10)
            conn, _ = listener.accept(timeout=10)
            again.sendall(b"hello")
            assert conn.recv(10, timeout=10) == b"hello"


def test_a_restarted_l4_aborts_what_it_ran_and_gives_udp_its_ports_back(watched):
    """Before: after B's L4 was killed, B's blocked recv saw nothing for 42 s and more."""
    sup, reports = watched
    with SocketApi(sup.addrs.target("A", "socket")) as a, SocketApi(sup.addrs.target("B", "socket")) as b:
        listener, client, server = connected_pair(a, b, 7720)
        udp = b.socket()
        udp.bind(("0.0.0.0", 7721))
        started = time.monotonic()
        kill(sup, "B", "l4")
        aborted = failing(lambda: server.recv(100, timeout=30))
        assert aborted.errno == errno.ECONNABORTED and "L4 went away" in str(aborted)
        assert time.monotonic() - started < 5
        with pytest.raises(OSError) as exc:
            listener.accept(timeout=5)
        assert exc.value.errno == errno.EINVAL  # no longer listening, as after tcp_abort()
        assert server.recv(100, timeout=1) == b""  # the error is reported once, then end of file
        restarted(sup, reports, "B", "l4")
        sock_b = stub(sup, "B", "socket", socket_pb2_grpc.SocketStub)
        assert wait_for(lambda: counter(sock_b, "Peer", "PortsHashedAgain") >= 1)
        assert counter(sock_b, "Peer", "L4Lost") == 1 and counter(sock_b, "Peer", "SocketsAborted") >= 2
        with a.socket() as tx:  # the UDP socket receives again on its port
            tx.sendto(b"still here", (B_IP, 7721))
            assert udp.recvfrom(100, timeout=10)[0] == b"still here"
        # The new L4 knows nothing of A's connection: A's next segment is answered by a reset.
        client.send(b"anyone?")
        reset = failing(lambda: client.recv(100, timeout=20))
        assert reset.errno == errno.ECONNRESET, reset
