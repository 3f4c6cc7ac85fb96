"""Helpers for the end-to-end tests: stubs to one service of a running topology,
counters as dicts, and waiting for something to become true."""

import random
import socket
import time

from google.protobuf import empty_pb2

from pktpath.client import SocketApi
from pktpath.service import channel


def stub(sup, host: str, layer: str, cls):
    return cls(channel(sup.addrs.target(host, layer)))


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


def free_base_port(hosts: int) -> int:
    """A base port whose whole layout (orchestrator + 10 per host) is free on loopback."""
    for _ in range(50):
        base = random.randrange(20000, 60000, 100)
        ports = [base] + [base + 10 * (h + 1) + layer for h in range(hosts) for layer in range(6)]
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
