"""Unchanged Python programs on a pktpath host: `pktpath run --on B -- python prog.py`.

The program's interpreter starts with pktpath's sitecustomize on its path, which
calls install(): from then on the socket module's AF_INET sockets, its name
lookups, the select, poll, epoll and selectors that wait on them, and
fcntl.ioctl's questions about their queues (FIONREAD) are the host's
(sockets.py, resolver.py, readiness.py), so socketserver, http.server,
http.client, urllib.request and asyncio's default event loop run on its stack
as they are. The program is one process of the host (pktpath.client.SocketApi):
its sockets are closed when it ends.
"""

import fcntl
import os
import selectors  # noqa: F401 — imported here so that its classes exist to be patched
import socket

from pktpath.interpose import readiness, sockets
from pktpath.interpose.resolver import Resolver
from pktpath.topology import Topology, load

SOCKET_API_ENV, TOPOLOGY_ENV = "PKTPATH_SOCKET_API", "PKTPATH_TOPOLOGY"


def install(target: str, topology: Topology) -> None:
    """Make the socket module's AF_INET sockets those of the host serving `target`."""
    resolver = Resolver(topology)
    resolver.install()
    sockets.configure(target, resolver.sockaddr)
    socket.socket = sockets.PktSocket
    socket.has_ipv6 = False  # create_server(dualstack_ipv6=True) and the like ask this first
    fcntl.ioctl = sockets.fcntl_ioctl  # FIONREAD and the like on a socket's fileno()
    readiness.install()


def install_from_environment() -> bool:
    """What sitecustomize runs: install() if `pktpath run` set the environment."""
    target = os.environ.get(SOCKET_API_ENV)
    if not target:
        return False
    install(target, load(os.environ.get(TOPOLOGY_ENV) or "default"))
    return True
