"""The socket module's `socket` for an unchanged program: AF_INET and AF_INET6 sockets of a
pktpath host.

`socket.socket(AF_INET, ...)` or `socket.socket(AF_INET6, ...)` gives a `PktSocket`, whose
calls go to the host's socket API as the calls of one process (pktpath.client); its
addresses are the socket module's for the family ((host, port), or (host, port, flowinfo,
scope_id)). Any other family (the AF_UNIX socketpair asyncio wakes itself with, a socket
made from an inherited fd) stays the kernel's. `isinstance(x, socket.socket)` holds for both.

Each PktSocket holds a real descriptor too, an eventfd that never becomes
readable, so that `fileno()` is a number no other file of the program has: the
selectors and select functions (readiness.py) find the socket behind it.
Blocking, timeouts and non-blocking mode are the socket module's: a call on a
blocking socket waits at the host for as long as it takes, a timed one for its
timeout (then `TimeoutError("timed out")`), a non-blocking one not at all
(`BlockingIOError`). Errors are OSErrors with the errno the host's stack gave.
"""

import errno
import fcntl
import os
import socket as _socket
import struct
import threading
import weakref
from typing import TYPE_CHECKING

from pktpath.pb import socket_pb2

if TYPE_CHECKING:
    from pktpath import client

RealSocket = _socket.socket
SOCK_NONBLOCK, SOCK_CLOEXEC = _socket.SOCK_NONBLOCK, _socket.SOCK_CLOEXEC
# The host has no packet sockets: a program asking for one is told so (EAFNOSUPPORT) as a
# kernel without them would, instead of getting the machine's own.
NO_SUCH_FAMILY = {_socket.AF_PACKET}
HOST_FAMILIES = (_socket.AF_INET, _socket.AF_INET6)
MAX_IO = 1 << 20  # bytes per send or recv call: a gRPC message stays under its 4 MB limit
SCM_TIMESTAMPNS, TCP_CM_INQ = 35, 36
CMSG_HDR = _socket.CMSG_LEN(0)  # sizeof(struct cmsghdr)
_INT, _TIMESPEC = struct.Struct("i"), struct.Struct("qq")
real_ioctl = fcntl.ioctl

_by_fileno: "weakref.WeakValueDictionary[int, PktSocket]" = weakref.WeakValueDictionary()
_api: "client.SocketApi | None" = None
_api_lock = threading.Lock()
_resolve = None  # (host, port, family) -> (numeric address, port): resolver.sockaddr, set by install()


def configure(target: str, resolve) -> None:
    """The host this process's AF_INET sockets belong to, and how addresses resolve."""
    global _api, _resolve
    with _api_lock:
        from pktpath import client  # gRPC: loaded by a process that has a host to talk to

        _api = client.SocketApi(target)
    _resolve = resolve


def api() -> "client.SocketApi":
    if _api is None:
        raise OSError(errno.ENETDOWN, "pktpath: no host configured (PKTPATH_SOCKET_API)")
    return _api


def lookup(fileno: int) -> "PktSocket | None":
    """The PktSocket whose fileno() this is, if any."""
    return _by_fileno.get(fileno)


def _error(exc: OSError, timeout: float | None) -> OSError:
    """The exception the socket module raises for an errno from the host."""
    if exc.errno in (errno.EAGAIN, errno.EINPROGRESS) and timeout == 0.0:
        return BlockingIOError(exc.errno, os.strerror(exc.errno))
    if exc.errno in (errno.EAGAIN, errno.ETIMEDOUT) and timeout:
        return TimeoutError("timed out")
    if exc.errno in (None, errno.EIO):
        return exc  # the host's service itself failed: its message says how
    return OSError(exc.errno, os.strerror(exc.errno))


class _SocketClass(type):
    """socket.socket: a PktSocket for AF_INET, the kernel's socket for anything else."""

    def __call__(cls, family=-1, type=-1, proto=-1, fileno=None, *, _fd: int | None = None, _api=None):
        if cls is PktSocket and fileno is None and family in (-1, *HOST_FAMILIES):
            return super().__call__(_socket.AF_INET if family == -1 else family,
                                    _socket.SOCK_STREAM if type == -1 else type, 0 if proto == -1 else proto,
                                    _fd=_fd, _api=_api)
        if fileno is None and family in NO_SUCH_FAMILY:  # not on the machine's own stack either
            raise OSError(errno.EAFNOSUPPORT, os.strerror(errno.EAFNOSUPPORT))
        return RealSocket(family, type, proto, fileno)

    def __instancecheck__(cls, obj) -> bool:
        return type.__instancecheck__(cls, obj) or isinstance(obj, RealSocket)

    def __subclasscheck__(cls, sub) -> bool:
        return type.__subclasscheck__(cls, sub) or issubclass(sub, RealSocket)


class PktSocket(metaclass=_SocketClass):
    """A socket of the pktpath host, with the socket module's methods. Its calls go to the
    process's host (configure()), or to `_api`, another one (pktpath.drill.local's)."""

    def __init__(self, family: int, type: int, proto: int, *, _fd: int | None = None, _api=None) -> None:
        kind = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)
        self._family = _socket.AddressFamily(family)
        self._type = _socket.SocketKind(kind)
        self._proto = proto or (_socket.IPPROTO_TCP if kind == _socket.SOCK_STREAM else _socket.IPPROTO_UDP)
        self._timeout = 0.0 if type & SOCK_NONBLOCK else _socket.getdefaulttimeout()
        self._io_refs = 0
        self._closed = False
        self._api = _api or api()
        if _fd is None:
            try:
                _fd = self._api.socket(kind, proto, family).fd
            except OSError as exc:
                raise _error(exc, None) from None
        self._fd = _fd
        self._placeholder = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        _by_fileno[self._placeholder] = self

    # -- what it is ---------------------------------------------------------------
    family = property(lambda self: self._family)
    type = property(lambda self: self._type)
    proto = property(lambda self: self._proto)

    @property
    def host_fd(self) -> int:
        """Its descriptor on the pktpath host (what `pktpath ss -p` shows)."""
        return self._fd

    def fileno(self) -> int:
        return -1 if self._closed and self._io_refs <= 0 else self._placeholder

    def __repr__(self) -> str:
        state = " [closed]" if self._closed else ""
        return (f"<pktpath socket{state} fd={self._fd} family={self._family.name} type={self._type.name} "
                f"proto={self._proto}>")

    # -- timeouts ---------------------------------------------------------------------
    def settimeout(self, value: float | None) -> None:
        if value is not None:
            value = float(value)
            if value < 0:
                raise ValueError("Timeout value out of range")
        self._timeout = value

    def gettimeout(self) -> float | None:
        return self._timeout

    def setblocking(self, flag: bool) -> None:
        self._timeout = None if flag else 0.0

    def getblocking(self) -> bool:
        return self._timeout != 0.0

    def _call(self, rpc: str, request, waits: bool = False):
        """One call on the host; a waiting call's limit is the socket's timeout."""
        request.fd = self._fd
        if waits:
            if self._timeout == 0.0:
                _nonblocking(request)
            elif self._timeout:
                request.timeout_s = self._timeout
        try:
            return self._api.call(rpc, request, timeout=None)
        except OSError as exc:
            raise _error(exc, self._timeout if waits else None) from None

    # -- addresses --------------------------------------------------------------------
    def _sockaddr(self, address) -> socket_pb2.Sockaddr:
        """getsockaddrarg(): (host, port) for AF_INET, (host, port[, flowinfo[, scope_id]]) for AF_INET6."""
        if self._family == _socket.AF_INET6:
            if not isinstance(address, tuple) or not 2 <= len(address) <= 4:
                raise TypeError("AF_INET6 address must be a tuple (host, port[, flowinfo[, scopeid]])")
            host, port, flowinfo, scope_id = (*address, 0, 0)[:4]
        else:
            if not isinstance(address, tuple) or len(address) != 2:
                raise TypeError(f"AF_INET address must be tuple, not {type(address).__name__}")
            (host, port), flowinfo, scope_id = address, 0, 0
        if _resolve is not None:  # unconfigured: as given
            host, port = _resolve(host, port, self._family)
        return socket_pb2.Sockaddr(addr=host, port=port, flowinfo=flowinfo, scope_id=scope_id)

    def _address(self, a: socket_pb2.Sockaddr) -> tuple:
        """A sockaddr as the socket module returns one of this family."""
        return (a.addr, a.port, a.flowinfo, a.scope_id) if self._family == _socket.AF_INET6 else (a.addr, a.port)

    def bind(self, address) -> None:
        self._call("Bind", socket_pb2.SockaddrRequest(addr=self._sockaddr(address)))

    def connect(self, address) -> None:
        request = socket_pb2.SockaddrRequest(addr=self._sockaddr(address))
        self._call("Connect", request, waits=True)

    def connect_ex(self, address) -> int:
        try:
            self.connect(address)
        except TimeoutError:
            return errno.EAGAIN if self._timeout else errno.ETIMEDOUT
        except OSError as exc:
            return exc.errno or errno.EIO
        return 0

    def listen(self, backlog: int = 128) -> None:
        self._call("Listen", socket_pb2.ListenRequest(backlog=max(backlog, 0)))

    def accept(self):
        reply = self._call("Accept", socket_pb2.AcceptRequest(), waits=True)
        # with the default timeout, as socket.accept() makes it: Linux passes no O_NONBLOCK on
        conn = PktSocket(self._family, self._type, self._proto, _fd=reply.fd, _api=self._api)
        return conn, self._address(reply.peer)

    def getsockname(self):
        return self._address(self._call("Getsockname", socket_pb2.FdRequest()))

    def getpeername(self):
        return self._address(self._call("Getpeername", socket_pb2.FdRequest()))

    # -- options ----------------------------------------------------------------------
    def setsockopt(self, level: int, optname: int, value, optlen=None) -> None:
        """An int, or a buffer: its bytes as optval (struct ipv6_mreq for IPV6_JOIN_GROUP)."""
        if isinstance(value, int):
            request = socket_pb2.SockoptRequest(level=level, optname=optname, value=int(value))
        elif value is None:  # setsockopt(level, optname, None, optlen): no buffer to read
            raise OSError(errno.EFAULT, os.strerror(errno.EFAULT))
        else:
            request = socket_pb2.SockoptRequest(level=level, optname=optname, data=bytes(memoryview(value)))
        self._call("Setsockopt", request)

    def getsockopt(self, level: int, optname: int, buflen: int | None = None):
        reply = self._call("Getsockopt", socket_pb2.SockoptRequest(level=level, optname=optname))
        if reply.data:  # a struct option (TCP_INFO): as much of it as buflen takes
            return reply.data[:buflen] if buflen is not None else reply.data
        return reply.value if buflen is None else reply.value.to_bytes(min(buflen, 4), "little", signed=True)

    def host_ioctl(self, request: int) -> int:
        """ioctl(2) with an int argument on the host (SIOCINQ/FIONREAD, SIOCOUTQ, SIOCOUTQNSD,
        SIOCATMARK): the int it writes. fcntl.ioctl on fileno() comes here (fcntl_ioctl)."""
        return self._call("Ioctl", socket_pb2.IoctlRequest(request=request)).value

    # -- data -------------------------------------------------------------------------
    def send(self, data, flags: int = 0) -> int:
        chunk = bytes(memoryview(data).cast("B")[:MAX_IO])
        return self._call("Sendto", socket_pb2.SendtoRequest(data=chunk, flags=flags), waits=True).sent

    def sendall(self, data, flags: int = 0) -> None:
        view = memoryview(data).cast("B")
        while view:
            view = view[self.send(view, flags):]

    def sendto(self, data, flags_or_address, address=None) -> int:
        flags, address = (0, flags_or_address) if address is None else (flags_or_address, address)
        request = socket_pb2.SendtoRequest(data=bytes(data), flags=flags, addr=self._sockaddr(address))
        return self._call("Sendto", request, waits=True).sent

    def sendfile(self, file, offset: int = 0, count: int | None = None) -> int:
        """socket.sendfile() as its send() fallback: read a chunk, sendall it."""
        if offset:
            file.seek(offset)
        total = 0
        while count is None or total < count:
            chunk = file.read(min(MAX_IO, count - total) if count is not None else MAX_IO)
            if not chunk:
                break
            self.sendall(chunk)
            total += len(chunk)
        return total

    def _recvmsg(self, bufsize: int, flags: int):
        if bufsize < 0:
            raise ValueError("negative buffersize in recv")
        request = socket_pb2.RecvfromRequest(bufsize=min(bufsize, MAX_IO), flags=flags)
        return self._call("Recvfrom", request, waits=True)

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        return self._recvmsg(bufsize, flags).data if bufsize else b""

    def recvfrom(self, bufsize: int, flags: int = 0):
        reply = self._recvmsg(bufsize, flags)
        return reply.data, self._address(reply.addr)

    def recvmsg(self, bufsize: int, ancbufsize: int = 0, flags: int = 0):
        """socket.recvmsg(): (data, ancdata, msg_flags, address), the control messages the host
        gave (SCM_TIMESTAMPNS, TCP_CM_INQ) put in a buffer of ancbufsize as put_cmsg() does:
        what does not fit is cut and MSG_CTRUNC set. A stream socket has no address (None)."""
        if ancbufsize < 0:
            raise ValueError("negative buffer size in recvmsg()")
        if not bufsize:
            return b"", [], 0, None  # as recv(0): nothing asked, nothing taken
        reply = self._recvmsg(bufsize, flags)
        cmsgs = []
        if reply.tstamp_ns:
            cmsgs.append((_socket.SOL_SOCKET, SCM_TIMESTAMPNS, _TIMESPEC.pack(*divmod(reply.tstamp_ns, 10**9))))
        if reply.HasField("inq"):
            cmsgs.append((_socket.SOL_TCP, TCP_CM_INQ, _INT.pack(reply.inq)))
        ancdata, msg_flags = _put_cmsgs(cmsgs, ancbufsize)
        address = self._address(reply.addr) if self._type == _socket.SOCK_DGRAM else None
        return reply.data, ancdata, msg_flags, address

    def recv_into(self, buffer, nbytes: int = 0, flags: int = 0) -> int:
        view = memoryview(buffer).cast("B")
        data = self.recv(nbytes or len(view), flags)
        view[:len(data)] = data
        return len(data)

    def recvfrom_into(self, buffer, nbytes: int = 0, flags: int = 0):
        view = memoryview(buffer).cast("B")
        data, address = self.recvfrom(nbytes or len(view), flags)
        view[:len(data)] = data
        return len(data), address

    # -- ending -------------------------------------------------------------------------
    def shutdown(self, how: int) -> None:
        self._call("Shutdown", socket_pb2.ShutdownRequest(how=how))

    makefile = RealSocket.makefile          # a SocketIO over recv_into/send, as for any socket
    _decref_socketios = RealSocket._decref_socketios

    def close(self) -> None:
        self._closed = True
        if self._io_refs <= 0:
            self._real_close()

    def _real_close(self) -> None:
        if self._placeholder < 0:
            return
        _by_fileno.pop(self._placeholder, None)
        os.close(self._placeholder)
        self._placeholder = -1
        try:
            self._api.call("Close", socket_pb2.FdRequest(fd=self._fd))
        except OSError:
            pass  # closed already, or the host is gone: nothing is left to close

    def detach(self) -> int:
        raise OSError(errno.EOPNOTSUPP, "a pktpath socket has no kernel descriptor to detach")

    def dup(self):
        raise OSError(errno.EOPNOTSUPP, "dup() of a pktpath socket")

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            if not self._closed:
                self._real_close()
        except Exception:  # the interpreter is shutting down
            pass

    def __getstate__(self):
        raise TypeError(f"cannot pickle {type(self).__name__!r} object")


def _put_cmsgs(cmsgs: list, space: int) -> tuple[list, int]:
    """put_cmsg() for each (level, type, data) in turn, into a control buffer of `space`
    bytes: one cut short (or left out, when not even its header fits) sets MSG_CTRUNC."""
    out, flags = [], 0
    for level, type_, data in cmsgs:
        if space < CMSG_HDR:
            flags |= _socket.MSG_CTRUNC
            break
        if space < CMSG_HDR + len(data):
            flags |= _socket.MSG_CTRUNC
            data = data[:space - CMSG_HDR]
        out.append((level, type_, data))
        space -= min(_socket.CMSG_SPACE(len(data)), space)
    return out, flags


def fcntl_ioctl(fd, request, arg=0, mutate_flag: bool = True):
    """fcntl.ioctl(): on a pktpath socket's fileno() the host answers the request (FIONREAD,
    SIOCOUTQ, ...), its int written to arg as the real call writes a buffer; any other file
    is the kernel's."""
    sock = lookup(fd if isinstance(fd, int) else fd.fileno())
    if sock is None:
        return real_ioctl(fd, request, arg, mutate_flag)
    if isinstance(arg, int):  # an int is the pointer itself to the kernel: no buffer to write to
        raise OSError(errno.EFAULT, os.strerror(errno.EFAULT))
    value = _INT.pack(sock.host_ioctl(request))
    if isinstance(arg, str):
        arg = arg.encode()
    view = memoryview(arg)
    if mutate_flag and not view.readonly:
        view = view.cast("B")
        n = min(len(view), len(value))
        view[:n] = value[:n]
        return 0
    out = bytearray(arg)
    n = min(len(out), len(value))
    out[:n] = value[:n]
    return bytes(out)


def _nonblocking(request) -> None:
    if isinstance(request, (socket_pb2.SockaddrRequest, socket_pb2.AcceptRequest)):
        request.nonblocking = True
    else:
        request.flags |= _socket.MSG_DONTWAIT
