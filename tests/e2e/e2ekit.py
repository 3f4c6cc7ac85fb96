"""Helpers for the end-to-end tests: stubs to one service of a running topology,
counters as dicts, waiting for something to become true, TCP connections."""

import random
import socket
import time
from contextlib import contextmanager

from google.protobuf import empty_pb2

from pktpath.client import SOCK_STREAM, SocketApi
from pktpath.config import HTTP_PORT_OFFSET

from clikit import cli_here  # noqa: F401 (the e2e tests' too)


def stub(sup, host: str, layer: str, cls):
    return cls(sup.addrs.channel(host, layer))


def sockets(sup, host: str) -> SocketApi:
    return SocketApi(sup.addrs.target(host, "socket"))


def with_sockets(sup, *hosts: str):
    """A module fixture's body: (sup, one SocketApi per host), closed afterwards."""
    apis = [sockets(sup, h) for h in hosts]
    yield (sup, *apis)
    for api in apis:
        api.close()


def counters(service_stub) -> dict:
    """A service's GetCounters as {group: {name: value}}."""
    reply = service_stub.GetCounters(empty_pb2.Empty(), timeout=5)
    return {g.name: dict(g.values) for g in reply.groups}


def counter(service_stub, group: str, name: str) -> int:
    return counters(service_stub).get(group, {}).get(name, 0)


def wait_for(predicate, timeout: float = 10.0):
    """Poll predicate until it is truthy (counters settle asynchronously); returns its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    return predicate()


def ipv6_ready(sup, *hosts: str, timeout: float = 10.0) -> bool:
    """Whether every IPv6 address of the hosts has left duplicate address detection (a packet
    to a tentative address is not the host's), waiting up to timeout."""
    from pktpath.rpc import l3_pb2_grpc

    tentative = 0x40  # IFA_F_TENTATIVE

    def ready() -> bool:
        return not any(a.flags & tentative for h in hosts
                       for i in stub(sup, h, "l3", l3_pb2_grpc.L3Stub).GetAddrs(empty_pb2.Empty(), timeout=5).addrs
                       for a in i.inet6)
    return bool(wait_for(ready, timeout))


def free_base_port(hosts: int) -> int:
    """A base port whose whole layout (orchestrator + 10 per host, and each one's HTTP
    port) is free on loopback."""
    for _ in range(50):
        base = random.randrange(20000, 60000, 100)
        grpc_ports = [base] + [base + 10 * (h + 1) + layer for h in range(hosts) for layer in range(6)]
        ports = grpc_ports + [port + HTTP_PORT_OFFSET for port in grpc_ports]
        try:
            socks = []
            for port in ports:
                sock = socket.socket()
                socks.append(sock)
                sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
        return base
    raise RuntimeError("no free port range on loopback")


def listener(api: SocketApi, port: int, backlog: int = 16):
    """A TCP socket listening on port (all addresses) of api's host."""
    srv = api.socket(SOCK_STREAM)
    srv.bind(("0.0.0.0", port))
    srv.listen(backlog)
    return srv


@contextmanager
def tcp_connection(a: SocketApi, b: SocketApi, dst: str, port: int, backlog: int = 16):
    """A connected pair: (b's listener, a's socket, b's accepted socket), all closed after."""
    with listener(b, port, backlog) as srv, a.socket(SOCK_STREAM) as cli:
        cli.connect((dst, port), timeout=10)
        conn, _ = srv.accept(timeout=10)
        with conn:
            yield srv, cli, conn


def read_all(conn, out: bytearray, timeout: float = 30) -> None:
    """recv until the peer's FIN."""
    while data := conn.recv(1 << 20, timeout=timeout):
        out.extend(data)
