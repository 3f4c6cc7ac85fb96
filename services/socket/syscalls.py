"""The socket API's system calls, each once: what a call does to a process's descriptors
and the socket layer, and what it answers (net/socket.c, fs/select.c).

A call that may wait returns a Wait: its blocking call (a generator, services/socket/
wait.py), the queues it sleeps on, its time limit and how its value becomes the answer.
Who runs the wait is the caller's choice: the socket service on its asyncio loop
(services/socket/server.py), the one-process stack on its virtual clock
(pktpath/drill/local.py). A failure raises SockError with the call's errno.
"""

import errno
import math
from dataclasses import dataclass
from typing import Callable

from google.protobuf import empty_pb2

from pktpath import validate
from pktpath.pb import socket_pb2
from pktpath.services.socket.files import Task, Tasks
from pktpath.services.socket.sock import AF_INET6, IPPROTO_IPV6, IPV6_TCLASS, TCP_MAXSEG, TCP_QUICKACK, dontwait
from pktpath.services.socket.wait import POLL_ALWAYS, POLL_ANY, POLLNVAL, Blocking
from pktpath.sockerr import SockError
from pktpath.wire.addr import ip6_to_str, ip_to_str, ipv6_addr_set_v4mapped
from pktpath.wire.ipv4 import IPPROTO_TCP

TCP_INFO = 11  # include/uapi/linux/tcp.h


@dataclass
class Wait:
    """A call that may block: run `call` waiting on `queues` for at most `timeout` seconds
    (None: no limit), then `reply(value)`; `undo()` if it fails. `on_loop`: its steps only
    touch the socket layer's memory (no call to L4), so they may run where it waits."""

    queues: list
    call: Blocking
    timeout: float | None
    reply: Callable[[object], object]
    on_loop: bool = False
    undo: Callable[[], None] | None = None

    def __post_init__(self) -> None:
        if self.timeout is not None and not (math.isfinite(self.timeout) and self.timeout >= 0):
            raise SockError(errno.EINVAL, f"timeout {self.timeout}: not a number of seconds")


def _addr(addr) -> tuple[int, int]:
    """A Sockaddr from a client: EINVAL for what no sockaddr_in can hold."""
    try:
        return validate.ipv4(addr.addr), validate.port(addr.port)
    except validate.Invalid as exc:
        raise SockError(errno.EINVAL, str(exc)) from None


def _sock_addr(sock, addr, *, ipv4_as_mapped: bool = False) -> tuple[int, int]:
    """A Sockaddr for `sock`'s family: an AF_INET6 socket's is a sockaddr_in6 (an IPv4 text a
    sockaddr_in, which connect and sendto take as its v4-mapped address, as
    ip6_datagram_connect and udpv6_sendmsg do, and bind refuses: EINVAL); an AF_INET socket
    given an IPv6 address gets EAFNOSUPPORT, as inet_bind and udp_sendmsg answer."""
    if sock.family != AF_INET6:
        if ":" in addr.addr:
            raise SockError(errno.EAFNOSUPPORT, f"an AF_INET socket and the IPv6 address {addr.addr[:48]!r}")
        return _addr(addr)
    if addr.addr and ":" not in addr.addr:
        if not ipv4_as_mapped:
            raise SockError(errno.EINVAL, "an AF_INET6 socket takes a sockaddr_in6")
        daddr, port = _addr(addr)
        return ipv6_addr_set_v4mapped(daddr), port
    try:
        return validate.ipv6(addr.addr), validate.port(addr.port)
    except validate.Invalid as exc:
        raise SockError(errno.EINVAL, str(exc)) from None


def sockaddr(sock, addr: int, port: int, scope_id: int = 0, out=None) -> socket_pb2.Sockaddr:
    """The sockaddr a call returns for `sock`: an AF_INET6 socket's in IPv6 text."""
    out = socket_pb2.Sockaddr() if out is None else out
    if sock.family == AF_INET6:
        out.addr, out.port, out.scope_id = ip6_to_str(addr), port, scope_id
    else:
        out.addr, out.port = ip_to_str(addr), port
    return out


def _recv_reply(dgram, out=None, sock=None):
    """A datagram as RecvfromReply; its source as `sock`'s family writes it (AF_INET without one)."""
    out = socket_pb2.RecvfromReply() if out is None else out
    out.data, out.ttl = dgram.data, dgram.ttl
    if sock is not None and sock.family == AF_INET6:
        sockaddr(sock, dgram.saddr, dgram.sport, dgram.scope_id, out.addr)
    else:
        out.addr.addr, out.addr.port = ip_to_str(dgram.saddr), dgram.sport
    if dgram.tstamp:
        out.tstamp_ns = dgram.tstamp
    if dgram.inq is not None:
        out.inq = dgram.inq
    return out


def _recvmmsg_reply(sock, dgrams) -> socket_pb2.RecvmmsgReply:
    reply = socket_pb2.RecvmmsgReply()
    for dgram in dgrams:
        _recv_reply(dgram, reply.msgs.add(), sock)
    return reply


def _poll_call(task: Task, fds: list[tuple[int, int]]) -> Blocking:
    """do_poll()'s loop: revents for each (fd, events) once any is ready or time is up."""
    timed_out = False
    while True:
        revents = []
        for fd, events in fds:
            sock = task.fds.get(fd)
            if fd < 0:
                revents.append(0)  # poll(2) skips a negative fd
            else:
                revents.append(POLLNVAL if sock is None else sock.poll() & (events | POLL_ALWAYS))
        if any(revents) or timed_out:
            return revents
        timed_out = yield POLL_ANY


def _link_local(addr: int) -> bool:
    """fe80::/10, whose sockaddr_in6 names its interface (inet6_getname's sin6_scope_id)."""
    return addr >> 118 == 0x3FA


class Syscalls:
    """The calls of the pktpath.v1.Socket API, by their RPC names, for a process `task`."""

    def __init__(self, socket, tasks: Tasks) -> None:
        self.socket = socket  # services/socket/layer.py's Socket
        self.layer = socket.layer
        self.tasks = tasks

    def Prlimit(self, task: Task, request):
        if request.set:
            task.setrlimit_nofile(request.soft, request.hard)
        return socket_pb2.PrlimitReply(soft=task.nofile[0], hard=task.nofile[1])

    def Poll(self, task: Task, request) -> Wait:
        """do_poll(): each descriptor's sock_poll(), waiting on all their queues at once
        until one is ready or the time is up. An fd < 0 is ignored; a closed one is POLLNVAL."""
        fds = [(p.fd, p.events) for p in request.fds]

        def reply(revents):
            out = socket_pb2.PollReply(ready=sum(1 for r in revents if r))
            for (fd, events), r in zip(fds, revents):
                out.fds.add(fd=fd, events=events, revents=r)
            return out

        queues = [task.fds[fd].wq for fd, _ in fds if task.fds.get(fd) is not None]
        return Wait(queues, _poll_call(task, fds), None if request.timeout_ms < 0 else request.timeout_ms / 1000,
                    reply, on_loop=True)

    def Socket(self, task: Task, request):
        """__sys_socket(): the socket, then the process's lowest free descriptor for it."""
        fd = self.tasks.alloc_fd(task)
        try:
            sock = self.layer.socket(request.family, request.type, request.protocol)
        except SockError:
            self.tasks.put_unused_fd(task, fd)
            raise
        self.tasks.fd_install(task, fd, sock)
        return socket_pb2.SocketReply(fd=fd)

    def Bind(self, task: Task, request):
        sock = task.get(request.fd)
        self.layer.bind(sock, *_sock_addr(sock, request.addr), request.addr.scope_id)
        return empty_pb2.Empty()

    def Connect(self, task: Task, request) -> Wait:
        sock = task.get(request.fd)
        if request.addr.scope_id and sock.family == AF_INET6:
            self.layer.dev_of(request.addr.scope_id)
            sock.scope_id = request.addr.scope_id  # ip6_datagram_connect: sk_bound_dev_if
        call = self.layer.connect_call(sock, *_sock_addr(sock, request.addr, ipv4_as_mapped=True),
                                       nonblocking=request.nonblocking)
        return Wait([sock.wq], call, request.timeout_s or None, lambda _: empty_pb2.Empty())

    def Listen(self, task: Task, request):
        self.layer.listen(task.get(request.fd), request.backlog)
        return empty_pb2.Empty()

    def Accept(self, task: Task, request) -> Wait:
        """__sys_accept4(): a descriptor first (EMFILE leaves the connection queued), then
        the connection, installed in the same step that takes it off the queue."""
        sock = task.get(request.fd)
        fd = self.tasks.alloc_fd(task)

        def accept_into():
            child = yield from self.layer.accept_call(sock)
            if not self.tasks.fd_install(task, fd, child):  # the process died meanwhile
                self.layer.close(child)
            return child

        return Wait([sock.wq], accept_into(), 0 if request.nonblocking else request.timeout_s or None,
                    lambda child: socket_pb2.AcceptReply(fd=fd, peer=sockaddr(child, child.daddr, child.dport)),
                    undo=lambda: self.tasks.put_unused_fd(task, fd))

    def Sendto(self, task: Task, request) -> Wait:
        sock = task.get(request.fd)
        daddr, dport = _sock_addr(sock, request.addr, ipv4_as_mapped=True) if request.HasField("addr") else (0, 0)
        call = self.layer.sendto_call(sock, request.data, daddr, dport, flags=request.flags,
                                      scope_id=request.addr.scope_id if request.HasField("addr") else 0)
        return Wait([sock.wq], call, dontwait(request.flags, request.timeout_s or None),
                    lambda sent: socket_pb2.SendtoReply(sent=sent))

    def _recv(self, task: Task, request, vlen: int, reply) -> Wait:
        sock = task.get(request.fd)
        call = self.layer.recvmmsg_call(sock, vlen, request.bufsize or 0xFFFF, request.flags)
        return Wait([sock.wq], call, dontwait(request.flags, request.timeout_s or None), reply, on_loop=True)

    def Recvfrom(self, task: Task, request) -> Wait:
        sock = task.get(request.fd)
        return self._recv(task, request, 1, lambda dgrams: _recv_reply(dgrams[0], sock=sock))

    def Recvmmsg(self, task: Task, request) -> Wait:
        sock = task.get(request.fd)
        return self._recv(task, request, request.vlen, lambda dgrams: _recvmmsg_reply(sock, dgrams))

    def Shutdown(self, task: Task, request):
        self.layer.shutdown(task.get(request.fd), request.how)
        return empty_pb2.Empty()

    def Close(self, task: Task, request):
        self.layer.close(self.tasks.close_fd(task, request.fd))
        return empty_pb2.Empty()

    def Getsockname(self, task: Task, request):
        sock = task.get(request.fd)
        return sockaddr(sock, sock.saddr, sock.sport, sock.scope_id if _link_local(sock.saddr) else 0)

    def Getpeername(self, task: Task, request):
        sock = task.get(request.fd)
        if not sock.connected:
            raise SockError(errno.ENOTCONN)
        return sockaddr(sock, sock.daddr, sock.dport, sock.scope_id if _link_local(sock.daddr) else 0)

    def Setsockopt(self, task: Task, request):
        self.layer.setsockopt(task.get(request.fd), request.level, request.optname, request.value,
                              data=request.data if request.HasField("data") else None)
        return empty_pb2.Empty()

    @staticmethod
    def asks_l4(request) -> bool:
        """A getsockopt L4 answers (TCP_INFO; TCP_MAXSEG, TCP_QUICKACK; a TCP socket's IPV6_TCLASS,
        whose ECN field is TCP's), not the socket layer's memory."""
        return (request.level == IPPROTO_TCP and request.optname in (TCP_INFO, TCP_MAXSEG, TCP_QUICKACK)
                or request.level == IPPROTO_IPV6 and request.optname == IPV6_TCLASS)

    def Getsockopt(self, task: Task, request):
        sock = task.get(request.fd)
        if self.asks_l4(request) and sock.stream is not None and (request.level == IPPROTO_TCP
                                                                   or sock.family == AF_INET6):
            if request.optname != TCP_INFO or request.level != IPPROTO_TCP:
                return socket_pb2.SockoptReply(value=self.socket.tcp_getsockopt(sock, request.optname,
                                                                                request.level))
            return socket_pb2.SockoptReply(data=self.socket.tcp_info(sock))
        return socket_pb2.SockoptReply(value=self.layer.getsockopt(sock, request.level, request.optname))

    def Ioctl(self, task: Task, request):
        """sock_ioctl(): a TCP socket's queues are L4's to tell (tcp_ioctl)."""
        return socket_pb2.IoctlReply(value=self.layer.ioctl(task.get(request.fd), request.request))

