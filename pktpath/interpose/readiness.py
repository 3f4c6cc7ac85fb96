"""select, poll, epoll and selectors for an unchanged program whose sockets are a host's.

A program waits on a mix: pktpath sockets (whose readiness the host knows: its
Poll call, poll(2) over the process's descriptors) and real files (asyncio's
self-pipe, a terminal, a pipe). When both are asked for, one wait covers both:
the host's Poll runs as a gRPC future whose completion writes an eventfd, and
the kernel's poll(2) waits on the real files and that eventfd together. When
only one kind is asked for, only that one is waited on, so a program with no
pktpath socket waits exactly as it always did.

The event bits are poll(2)'s; epoll's EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLHUP and
EPOLLRDHUP have the same values. A pktpath socket is level-triggered whatever
EPOLLET says (asyncio and selectors use level-triggered epoll).
"""

import errno
import math
import os
import select as _select
import selectors
import threading

from pktpath.interpose import sockets
from pktpath.pb import socket_pb2

real_select, real_poll, real_epoll = _select.select, _select.poll, _select.epoll
POLLIN, POLLPRI, POLLOUT, POLLERR, POLLHUP, POLLNVAL = 0x1, 0x2, 0x4, 0x8, 0x10, 0x20
POLLRDNORM, POLLRDBAND, POLLWRNORM, POLLWRBAND = 0x40, 0x80, 0x100, 0x200
# fs/select.c: what counts as readable, writable, exceptional for select(2)
SELECT_IN = POLLIN | POLLRDNORM | POLLRDBAND | POLLHUP | POLLERR
SELECT_OUT = POLLOUT | POLLWRNORM | POLLWRBAND | POLLERR
SELECT_EX = POLLPRI
EPOLL_FLAGS = _select.EPOLLET | _select.EPOLLONESHOT | getattr(_select, "EPOLLEXCLUSIVE", 0)


def _fileno(obj) -> int:
    fd = obj if isinstance(obj, int) else obj.fileno()
    if not isinstance(fd, int) or fd < 0:
        raise ValueError(f"file descriptor cannot be a negative integer ({fd})")
    return fd


def wait(interest: dict[int, int], timeout_ms: int) -> dict[int, int]:
    """poll(2) over real descriptors and pktpath sockets alike: {fd: events} ->
    {fd: revents} of the ready ones, once one is ready or timeout_ms passed (-1: never)."""
    ours = {fd: sockets.lookup(fd) for fd in interest}
    host = {fd: (sock, interest[fd]) for fd, sock in ours.items() if sock is not None}
    real = {fd: ev for fd, ev in interest.items() if ours[fd] is None}
    if not host:
        return _real_wait(real, timeout_ms)
    if not real:
        return _host_wait(host, timeout_ms)
    return _both(host, real, timeout_ms)


def _real_wait(real: dict[int, int], timeout_ms: int) -> dict[int, int]:
    p = real_poll()
    for fd, events in real.items():
        p.register(fd, events)
    return dict(p.poll(timeout_ms))


def _request(host: dict, timeout_ms: int) -> socket_pb2.PollRequest:
    request = socket_pb2.PollRequest(timeout_ms=timeout_ms)
    for sock, events in host.values():
        request.fds.add(fd=sock.host_fd, events=events)
    return request


def _revents(host: dict, reply) -> dict[int, int]:
    by_host_fd = {p.fd: p.revents for p in reply.fds}
    return {fd: by_host_fd.get(sock.host_fd, 0) for fd, (sock, _) in host.items() if by_host_fd.get(sock.host_fd)}


def _host_wait(host: dict, timeout_ms: int) -> dict[int, int]:
    reply = sockets.api().call("Poll", _request(host, timeout_ms), timeout=None)
    return _revents(host, reply)


_local = threading.local()


def _wake_fd() -> int:
    """This thread's eventfd for a finished host Poll: kept open, since a cancelled
    future's callback may still write to it after the wait is over."""
    fd = getattr(_local, "wake", None)
    if fd is None:
        fd = _local.wake = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
    try:
        os.eventfd_read(fd)  # drain what an earlier wait left
    except BlockingIOError:
        pass
    return fd


def _both(host: dict, real: dict[int, int], timeout_ms: int) -> dict[int, int]:
    api = sockets.api()
    wake = _wake_fd()
    future = api.stub.Poll.future(_request(host, timeout_ms), metadata=api.attach())
    future.add_done_callback(lambda _: os.eventfd_write(wake, 1))
    ready = _real_wait({**real, wake: POLLIN}, timeout_ms)
    ready.pop(wake, None)
    if not future.done():
        future.cancel()
    if future.done() and not future.cancelled():
        if future.exception() is not None:
            raise OSError(errno.EIO, f"pktpath poll: {future.exception()}")
        ready.update(_revents(host, future.result()))
    return ready


def _timeout_ms(seconds: float | None) -> int:
    if seconds is None or seconds < 0:
        return -1
    return math.ceil(seconds * 1000)


def select(rlist, wlist, xlist, timeout: float | None = None):
    """select.select(): readable, writable, exceptional, as select(2) tells them from poll bits."""
    if not any(sockets.lookup(_fileno(f)) for f in (*rlist, *wlist, *xlist)):
        return real_select(rlist, wlist, xlist, timeout)
    interest: dict[int, int] = {}
    for objs, bits in ((rlist, SELECT_IN), (wlist, SELECT_OUT), (xlist, SELECT_EX)):
        for obj in objs:
            interest[_fileno(obj)] = interest.get(_fileno(obj), 0) | bits
    ready = wait(interest, _timeout_ms(timeout))
    return tuple([obj for obj in objs if ready.get(_fileno(obj), 0) & bits]
                 for objs, bits in ((rlist, SELECT_IN), (wlist, SELECT_OUT), (xlist, SELECT_EX)))


class poll:  # noqa: N801 — select.poll's name
    """select.poll(): register, modify, unregister, poll(timeout_ms)."""

    def __init__(self) -> None:
        self._interest: dict[int, int] = {}

    def register(self, fd, eventmask: int = POLLIN | POLLPRI | POLLOUT) -> None:
        self._interest[_fileno(fd)] = eventmask

    def modify(self, fd, eventmask: int) -> None:
        fd = _fileno(fd)
        if fd not in self._interest:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT))
        self._interest[fd] = eventmask

    def unregister(self, fd) -> None:
        del self._interest[_fileno(fd)]

    def poll(self, timeout: float | None = None) -> list[tuple[int, int]]:
        timeout_ms = -1 if timeout is None or timeout < 0 else math.ceil(timeout)
        return list(wait(self._interest, timeout_ms).items())


class epoll:  # noqa: N801 — select.epoll's name
    """select.epoll(): real descriptors in a kernel epoll, pktpath sockets beside it; a
    wait covers both by polling the epoll's own descriptor with the sockets."""

    def __init__(self, sizehint: int = -1, flags: int = 0) -> None:
        self._epoll = real_epoll(sizehint, flags)
        self._ours: dict[int, int] = {}

    closed = property(lambda self: self._epoll.closed)

    def fileno(self) -> int:
        return self._epoll.fileno()

    def close(self) -> None:
        self._epoll.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def register(self, fd, eventmask: int = POLLIN | POLLPRI | POLLOUT) -> None:
        fd = _fileno(fd)
        if sockets.lookup(fd) is None:
            return self._epoll.register(fd, eventmask)
        if fd in self._ours:
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST))
        self._ours[fd] = eventmask & ~EPOLL_FLAGS

    def modify(self, fd, eventmask: int) -> None:
        fd = _fileno(fd)
        if fd not in self._ours:
            return self._epoll.modify(fd, eventmask)
        self._ours[fd] = eventmask & ~EPOLL_FLAGS

    def unregister(self, fd) -> None:
        fd = _fileno(fd)
        if self._ours.pop(fd, None) is None:
            self._epoll.unregister(fd)

    def poll(self, timeout: float | None = None, maxevents: int = -1) -> list[tuple[int, int]]:
        if self._epoll.closed:
            raise ValueError("I/O operation on closed epoll object")
        for fd in [fd for fd in self._ours if sockets.lookup(fd) is None]:
            del self._ours[fd]  # the socket was closed: epoll forgets a closed file
        if not self._ours:
            return self._epoll.poll(timeout, maxevents)
        ready = wait({**self._ours, self._epoll.fileno(): POLLIN}, _timeout_ms(timeout))
        out = list(self._epoll.poll(0, maxevents)) if ready.pop(self._epoll.fileno(), 0) else []
        out += ready.items()
        return out[:maxevents] if maxevents > 0 else out


def install() -> None:
    """Put these in the select module and under the selectors that use it."""
    _select.select, _select.poll, _select.epoll = select, poll, epoll
    selectors.SelectSelector._select = staticmethod(select)
    selectors.PollSelector._selector_cls = poll
    selectors.EpollSelector._selector_cls = epoll
