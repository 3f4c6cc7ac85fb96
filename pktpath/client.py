"""A Python client for a pktpath host's socket API, shaped like the socket module.

    with SocketApi("127.0.0.1:50015") as a:
        sock = a.socket(SOCK_DGRAM)
        sock.sendto(b"hello", ("10.0.0.2", 7000))
        six = a.socket(SOCK_DGRAM, family=AF_INET6)   # addresses as the socket module's:
        six.sendto(b"hello", ("2001:db8::2", 7000))     # (host, port, flowinfo, scope_id)
        srv = a.socket(SOCK_STREAM, family=AF_INET6)  # TCP over IPv6; on :: it takes IPv4 too,
        srv.bind(("::", 80))                          # its peers then ::ffff:a.b.c.d

A SocketApi is a process on that host: its descriptors are its own (another
SocketApi's number is EBADF there), and when it closes, or the program ends, is
killed or loses its connection, the host closes every socket it still holds, as
Linux closes a dying process's files.

Every failure is an OSError with the errno the socket layer reported
(ConnectionRefusedError for ECONNREFUSED, TimeoutError when recvfrom's
timeout passes, ...), so client code reads like code against the kernel's API;
its `detail` says what it was about ("from 10.0.1.254: time to live exceeded").
"""

import errno
import _socket
import os
import sys
import threading
import weakref

import grpc

from pktpath.pb import socket_pb2
from pktpath.rpc import socket_pb2_grpc
from pktpath.config import channel
from pktpath.rpc import detail_of, errno_of

AF_INET, AF_INET6, SOCK_STREAM, SOCK_DGRAM = 2, 10, 1, 2
IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMPV6 = 1, 6, 17, 58
SOL_SOCKET, IPPROTO_IP, IPPROTO_IPV6 = 1, 0, 41
IPV6_UNICAST_HOPS, IPV6_MTU_DISCOVER, IPV6_RECVERR, IPV6_V6ONLY = 16, 23, 25, 26
IPV6_JOIN_GROUP, IPV6_LEAVE_GROUP = 20, 21  # IPV6_ADD_MEMBERSHIP, IPV6_DROP_MEMBERSHIP: a struct ipv6_mreq
SO_ERROR, SO_SNDBUF, SO_RCVBUF, SO_TIMESTAMPNS = 4, 7, 8, 35
IP_TTL, IP_MTU_DISCOVER, IP_RECVERR = 2, 10, 11
TCP_NODELAY, TCP_INQ = 1, 36
SIOCINQ, SIOCOUTQ, SIOCOUTQNSD = 0x541B, 0x5411, 0x894B
SHUT_RD, SHUT_WR, SHUT_RDWR = 0, 1, 2
MSG_PEEK, MSG_DONTWAIT, MSG_WAITFORONE = 0x2, 0x40, 0x10000
POLLIN, POLLPRI, POLLOUT, POLLERR, POLLHUP, POLLNVAL, POLLRDHUP = 0x1, 0x2, 0x4, 0x8, 0x10, 0x20, 0x2000
TASK_KEY = "pktpath-task"
ATTACH_TIMEOUT_S = 60


def _listening(target: str) -> None:
    """Fail at once, as any call would, when nothing listens at a host:port target.
    With the C module's sockets: in a program under `pktpath run` the socket module's
    are the host's own."""
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit() or ":" in host.strip("[]").replace("::", ""):
        return  # a unix: or dns: target, or another scheme: gRPC will say
    try:
        family, kind, proto, _, address = _socket.getaddrinfo(host.strip("[]"), int(port), 0,
                                                              _socket.SOCK_STREAM)[0]
        probe = _socket.socket(family, kind, proto)
    except OSError:
        return  # unresolvable now: gRPC tries, and says
    try:
        probe.settimeout(ATTACH_TIMEOUT_S)
        probe.connect(address)
    except ConnectionRefusedError:
        raise OSError(errno.ECONNREFUSED, f"socket service: nothing listens at {target}") from None
    except OSError:
        pass  # unreachable now: gRPC tries, and says
    finally:
        probe.close()


def _comm() -> str:
    """The process's name as ps and ss -p show it."""
    try:
        with open("/proc/self/comm") as f:
            return f.read().strip()
    except OSError:
        return os.path.basename(sys.executable)


def _oserror(exc: grpc.RpcError) -> OSError:
    err = errno_of(exc)
    if err is None:  # the service itself failed or is unreachable
        return OSError(errno.EIO, f"socket service: {exc.code().name}: {exc.details()}")
    error = TimeoutError(err, exc.details()) if err == errno.EAGAIN else OSError(err, exc.details())
    error.detail = detail_of(exc)
    return error


class SocketApi:
    """The socket service of one host, as one process of it."""

    def __init__(self, target: str) -> None:
        self.target = target
        self._channel = channel(target)
        # Closed when this is collected or the program exits (before the interpreter tears
        # down): every call still open ends, the attachment too, and no blocked call of a
        # daemon thread is left for gRPC's finalizers to deadlock on.
        weakref.finalize(self, self._channel.close)
        self.stub = socket_pb2_grpc.SocketStub(self._channel)
        self._attach_lock = threading.Lock()
        self._attachment = None
        self._metadata = None

    def attach(self) -> tuple:
        """Become a process of the host (once, at the first call): the metadata every call carries."""
        with self._attach_lock:
            if self._metadata is None:
                _listening(self.target)
                try:  # a loaded host may take long to answer a new connection: wait for it
                    grpc.channel_ready_future(self._channel).result(timeout=ATTACH_TIMEOUT_S)
                    stream = self.stub.Attach(socket_pb2.AttachRequest(pid=os.getpid(), comm=_comm()),
                                              wait_for_ready=True)
                    reply = next(stream)
                except grpc.FutureTimeoutError:
                    raise OSError(errno.ETIMEDOUT, f"socket service {self.target}: no answer in "
                                                   f"{ATTACH_TIMEOUT_S} s") from None
                except grpc.RpcError as exc:
                    raise _oserror(exc) from None
                self._attachment = stream  # held open: the process lives while it does
                self._metadata = ((TASK_KEY, reply.key),)
            return self._metadata

    def call(self, rpc: str, request, timeout: float | None = 30):
        metadata = self._metadata or self.attach()
        try:
            return getattr(self.stub, rpc)(request, timeout=timeout, metadata=metadata)
        except grpc.RpcError as exc:
            raise _oserror(exc) from None

    def poll(self, fds: list[tuple[int, int]], timeout_ms: int = -1) -> list[tuple[int, int]]:
        """poll(2): (fd, revents) for each (fd, events), once one is ready or timeout_ms
        has passed (-1: no limit)."""
        request = socket_pb2.PollRequest(timeout_ms=timeout_ms)
        for fd, events in fds:
            request.fds.add(fd=fd, events=events)
        reply = self.call("Poll", request, timeout=None)
        return [(p.fd, p.revents) for p in reply.fds]

    def prlimit_nofile(self, soft: int | None = None, hard: int | None = None) -> tuple[int, int]:
        """getrlimit/setrlimit(RLIMIT_NOFILE) of this process on the host; returns (soft, hard)."""
        request = socket_pb2.PrlimitRequest()
        if soft is not None or hard is not None:
            current = self.call("Prlimit", request)
            request = socket_pb2.PrlimitRequest(set=True, soft=current.soft if soft is None else soft,
                                                hard=current.hard if hard is None else hard)
        reply = self.call("Prlimit", request)
        return reply.soft, reply.hard

    def socket(self, type_: int = SOCK_DGRAM, protocol: int = 0, family: int = AF_INET) -> "Socket":
        """socket(2): AF_INET by default; AF_INET6 for UDP and TCP (dual-stack unless
        IPV6_V6ONLY) and ICMPv6 ping sockets (protocol IPPROTO_ICMPV6), whose addresses are
        (host, port, flowinfo, scope_id) as the socket module's are (accept's peer too)."""
        return Socket(self, self.call("Socket", socket_pb2.SocketRequest(family=family, type=type_,
                                                                         protocol=protocol)).fd, family)

    def close(self) -> None:
        """The process ends: the host closes whatever it still holds."""
        with self._attach_lock:
            if self._attachment is not None:
                self._attachment.cancel()
                self._attachment = None
        self._channel.close()

    def __enter__(self) -> "SocketApi":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _sockaddr(addr: tuple) -> socket_pb2.Sockaddr:
    """(host, port) or an AF_INET6 socket's (host, port[, flowinfo[, scope_id]])."""
    host, port, *rest = addr
    flowinfo, scope_id = (list(rest) + [0, 0])[:2]
    return socket_pb2.Sockaddr(addr=host, port=port, flowinfo=flowinfo, scope_id=scope_id)


class Socket:
    def __init__(self, api: SocketApi, fd: int, family: int = AF_INET) -> None:
        self.api = api
        self.fd = fd
        self.family = family

    def _addr(self, a: socket_pb2.Sockaddr) -> tuple:
        """A sockaddr as the socket module returns it for this socket's family."""
        return (a.addr, a.port, a.flowinfo, a.scope_id) if self.family == AF_INET6 else (a.addr, a.port)

    def bind(self, addr: tuple[str, int]) -> None:
        self.api.call("Bind", socket_pb2.SockaddrRequest(fd=self.fd, addr=_sockaddr(addr)))

    def connect(self, addr: tuple[str, int], timeout: float | None = None, *, nonblocking: bool = False) -> None:
        """A TCP socket's connect waits for the handshake (ConnectionRefusedError, TimeoutError);
        nonblocking raises BlockingIOError (EINPROGRESS) at once and SO_ERROR tells the end."""
        self.api.call("Connect", socket_pb2.SockaddrRequest(fd=self.fd, addr=_sockaddr(addr), nonblocking=nonblocking,
                                                            timeout_s=timeout or 0),
                      timeout=None if timeout is None else timeout + 5)

    def listen(self, backlog: int = 128) -> None:
        self.api.call("Listen", socket_pb2.ListenRequest(fd=self.fd, backlog=backlog))

    def accept(self, timeout: float | None = None) -> tuple["Socket", tuple[str, int]]:
        reply = self.api.call("Accept", socket_pb2.AcceptRequest(fd=self.fd, timeout_s=timeout or 0),
                              timeout=None if timeout is None else timeout + 5)
        return Socket(self.api, reply.fd, self.family), self._addr(reply.peer)

    def sendto(self, data: bytes, addr: tuple[str, int] | None = None, timeout: float | None = None) -> int:
        req = socket_pb2.SendtoRequest(fd=self.fd, data=data, timeout_s=timeout or 0)
        if addr is not None:
            req.addr.CopyFrom(_sockaddr(addr))
        return self.api.call("Sendto", req, timeout=None).sent

    def send(self, data: bytes, timeout: float | None = None) -> int:
        return self.sendto(data, None, timeout)

    def sendall(self, data: bytes, chunk: int = 1 << 20) -> None:
        """A TCP stream's whole data, in calls of at most `chunk` bytes."""
        view = memoryview(data)
        while view:
            view = view[self.send(bytes(view[:chunk])):]

    def recv(self, bufsize: int = 65536, timeout: float | None = None, flags: int = 0) -> bytes:
        """A TCP socket: what has arrived, up to bufsize; b"" once the peer has closed."""
        return self.recvmsg(bufsize, timeout, flags).data

    def shutdown(self, how: int) -> None:
        self.api.call("Shutdown", socket_pb2.ShutdownRequest(fd=self.fd, how=how))

    def recvfrom(self, bufsize: int = 65535, timeout: float | None = None, flags: int = 0) -> tuple[bytes, tuple]:
        reply = self.recvmsg(bufsize, timeout, flags)
        return reply.data, self._addr(reply.addr)

    def recvmsg(self, bufsize: int = 65535, timeout: float | None = None, flags: int = 0):
        """The whole reply: data, addr, the TTL the datagram arrived with and, with
        SO_TIMESTAMPNS set, tstamp_ns: when the NIC received it (ns since the epoch); with
        TCP_INQ set, inq: the bytes left to read (TCP_CM_INQ)."""
        req = socket_pb2.RecvfromRequest(fd=self.fd, bufsize=bufsize, flags=flags, timeout_s=timeout or 0)
        return self.api.call("Recvfrom", req, timeout=None if timeout is None else timeout + 5)

    def recvmmsg(self, vlen: int = 64, bufsize: int = 65535, timeout: float | None = None,
                 flags: int = MSG_WAITFORONE):
        """recvmmsg(2): the replies of up to vlen datagrams. By default with MSG_WAITFORONE
        (what is queued once one is there); flags without it wait for vlen datagrams
        until the timeout, as a reader of a busy socket does to make fewer calls."""
        req = socket_pb2.RecvmmsgRequest(fd=self.fd, vlen=vlen, bufsize=bufsize, flags=flags, timeout_s=timeout or 0)
        return self.api.call("Recvmmsg", req, timeout=None if timeout is None else timeout + 5).msgs

    def setsockopt(self, level: int, optname: int, value: int | bytes) -> None:
        """setsockopt(2) with an int, or with bytes as the socket module takes them (a struct:
        IPV6_JOIN_GROUP's struct ipv6_mreq, the group's 16 bytes and a native int interface index)."""
        request = socket_pb2.SockoptRequest(fd=self.fd, level=level, optname=optname)
        if isinstance(value, int):
            request.value = value
        else:
            request.data = bytes(value)
        self.api.call("Setsockopt", request)

    def getsockopt(self, level: int, optname: int) -> int:
        return self.api.call("Getsockopt", socket_pb2.SockoptRequest(fd=self.fd, level=level,
                                                                     optname=optname)).value

    def ioctl(self, request: int) -> int:
        """ioctl(2) with an int argument: SIOCINQ (bytes to read), SIOCOUTQ (bytes not yet
        acknowledged), SIOCOUTQNSD (not yet sent)."""
        return self.api.call("Ioctl", socket_pb2.IoctlRequest(fd=self.fd, request=request)).value

    def getsockname(self) -> tuple:
        return self._addr(self.api.call("Getsockname", socket_pb2.FdRequest(fd=self.fd)))

    def getpeername(self) -> tuple:
        return self._addr(self.api.call("Getpeername", socket_pb2.FdRequest(fd=self.fd)))

    def close(self) -> None:
        self.api.call("Close", socket_pb2.FdRequest(fd=self.fd))

    def __enter__(self) -> "Socket":
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.close()
        except OSError:
            pass
