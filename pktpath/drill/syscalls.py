"""A script's system calls, made on a host's sockets (packetdrill's run_system_call.c).

Sockets are Python socket objects or pktpath's (the same methods); what a socket object
has no method for (fcntl, ioctl, poll, TCP_INFO) the host does. A script's fd is the
number it expects a call to return; any live fd stands for it. Data is never compared:
writes send zeros, reads count bytes. A call ends in its result, or -1 and an errno,
checked as packetdrill checks them.
"""

import errno as errnos
import os
import socket
import struct

from pktpath.drill.packets import DrillMismatch, Unsupported
from pktpath.drill.script import Syscall
from pktpath.drill.symbols import SYMBOLS

BIND_PORT = CONNECT_PORT = 8080  # --bind_port, --connect_port
_RETURNS_FD = {"socket", "accept"}


class SyscallError(DrillMismatch):
    """"runtime error in NAME call: ..." """


class Calls:
    """One script's fds and the calls on them, against `host` (see pktpath.drill.kernel)."""

    def __init__(self, host, defines: dict[str, str] | None = None) -> None:
        self.host = host
        self.fds: dict[int, object] = {}
        self.defines = defines or {}
        self.under_test: int | None = None   # the script fd of the socket under test
        self.on_connect = None               # the runner's hook: a connect() is about to start

    # -- expressions ---------------------------------------------------------------------------
    def value(self, expr):
        kind = expr[0]
        if kind == "...":
            return ...
        if kind == "int" or kind == "str":
            return expr[1]
        if kind == "sym":
            name = self.defines.get(expr[1], expr[1])
            if name in SYMBOLS:
                return SYMBOLS[name]
            if name != expr[1]:
                return self.value(("sym", name))
            raise SyscallError(f"unknown symbol: '{expr[1]}'")
        if kind == "or":
            out = 0
            for term in expr[1]:
                out |= self.value(term)
            return out
        if kind == "list":
            return [self.value(e) for e in expr[1]]
        if kind == "struct":
            fields, items = {}, []
            for e in expr[1]:
                if e[0] == "assign":
                    fields[e[1][1] if e[1][0] in ("sym", "call") else str(e[1])] = self.value(e[2])
                else:
                    items.append(self.value(e))
            return fields or items
        if kind == "call":
            args = [self.value(e) for e in expr[2]]
            if expr[1] == "htons":
                return socket.htons(args[0])
            if expr[1] == "inet_addr":
                return args[0]
            return args
        if kind == "assign":
            return self.value(expr[2])
        raise SyscallError(f"bad expression {expr!r}")

    def sock(self, fd: int):
        if fd not in self.fds:
            raise SyscallError(f"unable to find fd with script fd {fd}")
        return self.fds[fd]

    # -- calls -----------------------------------------------------------------------------
    def run(self, call: Syscall) -> None:
        """Make the call and check its result; SyscallError says how it differs."""
        handler = getattr(self, f"sys_{call.name}", None)
        if handler is None:
            raise Unsupported(f"system call {call.name}")
        args = [self.value(a) for a in call.args]
        try:
            result, err = handler(call, *args), 0
        except OSError as exc:
            result, err = -1, exc.errno or errnos.EIO
        except TypeError as exc:
            raise SyscallError(f"Expected other args ({exc})") from None
        except AttributeError:  # a socket object without the call (pktpath's has no sendmsg yet)
            raise Unsupported(f"{call.name} on this host's sockets") from None
        self.check(call, result, err)

    def check(self, call: Syscall, result: int, err: int) -> None:
        expected = call.result
        if call.name in _RETURNS_FD and expected >= 0:
            if result < 0:
                raise SyscallError(f"Expected non-negative result but got {result} with errno {err} "
                                   f"({os.strerror(err)})")
            return
        if result != expected:
            text = f"Expected result {expected} but got {result}"
            raise SyscallError(text + (f" with errno {err} ({os.strerror(err)})" if result < 0 else ""))
        if call.errno is not None:
            want = SYMBOLS.get(call.errno)
            if want != err:
                raise SyscallError(f"Expected errno {want} ({call.errno}) but got {err} ({os.strerror(err)})")

    def _new_fd(self, fd: int, sock) -> int:
        if fd in self.fds:
            raise SyscallError(f"duplicate fd {fd} in script")
        self.fds[fd] = sock
        self.under_test = fd
        return fd

    def sys_socket(self, call, domain, type_, proto):
        return self._new_fd(call.result, self.host.socket(type_, proto))

    def sys_bind(self, call, fd, addr, addrlen):
        self.sock(fd).bind((self.host.local_ip, BIND_PORT))
        return 0

    def sys_listen(self, call, fd, backlog):
        self.sock(fd).listen(backlog)
        return 0

    def sys_accept(self, call, fd, addr, addrlen):
        child, _ = self.sock(fd).accept()
        return self._new_fd(call.result, child)

    def sys_connect(self, call, fd, addr, addrlen):
        if isinstance(addr, dict) and addr.get("sa_family") == SYMBOLS["AF_UNSPEC"]:
            raise Unsupported("connect(AF_UNSPEC)")
        if self.on_connect is not None:
            self.on_connect()
        self.under_test = fd
        err = self.sock(fd).connect_ex((self.host.remote_ip, CONNECT_PORT))
        if err:
            raise OSError(err, os.strerror(err))
        return 0

    def sys_write(self, call, fd, buf, count):
        return self.sock(fd).send(bytes(count))

    def sys_send(self, call, fd, buf, count, flags):
        return self.sock(fd).send(bytes(count), flags)

    def sys_sendto(self, call, fd, buf, count, flags, addr, addrlen):
        if flags & SYMBOLS["MSG_FASTOPEN"] and self.on_connect is not None:  # the connect is in the SYN
            self.on_connect()
            self.under_test = fd
        return self.sock(fd).sendto(bytes(count), flags, (self.host.remote_ip, CONNECT_PORT))

    def sys_writev(self, call, fd, iov, iovcnt):
        return self.sock(fd).sendmsg([bytes(v[1]) for v in iov])

    def sys_sendmsg(self, call, fd, msg, flags):
        return self.sock(fd).sendmsg([bytes(v[1]) for v in msg.get("msg_iov", [])], [], flags)

    def sys_read(self, call, fd, buf, count):
        return len(self.sock(fd).recv(count))

    def sys_recv(self, call, fd, buf, count, flags):
        return len(self.sock(fd).recv(count, flags))

    def sys_recvfrom(self, call, fd, buf, count, flags, addr, addrlen):
        return len(self.sock(fd).recv(count, flags))

    def sys_readv(self, call, fd, iov, iovcnt):
        return len(self.sock(fd).recv(sum(v[1] for v in iov)))

    def sys_recvmsg(self, call, fd, msg, flags):
        size = sum(v[1] for v in msg.get("msg_iov", []))
        wanted = msg.get("msg_control") or []
        data, ancdata, msg_flags, _ = self.sock(fd).recvmsg(size, 256 if wanted else 0, flags)
        if msg_flags != msg.get("msg_flags", 0):
            raise SyscallError(f"Expected msg_flags 0x{msg.get('msg_flags', 0):08X} but got 0x{msg_flags:08X}")
        got = [(level, type_, _cmsg_value(data_, want.get("cmsg_data")))
               for (level, type_, data_), want in zip(ancdata, wanted)]
        want = [(c["cmsg_level"], c["cmsg_type"], c["cmsg_data"]) for c in wanted]
        if len(ancdata) != len(wanted) or got != want:
            raise SyscallError(f"Bad cmsg: expected {want} vs actual {got}")
        return len(data)

    def sys_close(self, call, fd):
        self.sock(fd).close()
        del self.fds[fd]
        return 0

    def sys_shutdown(self, call, fd, how):
        self.sock(fd).shutdown(how)
        return 0

    def sys_setsockopt(self, call, fd, level, name, optval, optlen):
        if isinstance(optval, list):
            value = optval[0]
        elif isinstance(optval, dict) and "onoff" in optval:
            value = struct.pack("ii", optval["onoff"], optval["linger"])
        elif isinstance(optval, str):
            value = optval.encode()
        else:
            raise Unsupported(f"setsockopt value {optval!r}")
        self.sock(fd).setsockopt(level, name, value)
        return 0

    def sys_getsockopt(self, call, fd, level, name, optval, optlen):
        if not isinstance(optval, list) or len(optval) != 1 or not isinstance(optval[0], int):
            raise Unsupported(f"getsockopt value {optval!r}")
        actual = self.sock(fd).getsockopt(level, name)
        if actual != optval[0]:
            raise SyscallError(f"Bad getsockopt optval: expected: {optval[0]} actual: {actual}")
        return 0

    def sys_fcntl(self, call, fd, cmd, arg=0):
        return self.host.fcntl(self.sock(fd), cmd, arg)

    def sys_ioctl(self, call, fd, request, value=None):
        actual = self.host.ioctl(self.sock(fd), request)
        if isinstance(value, list) and actual != value[0]:
            raise SyscallError(f"Bad ioctl optval: expected: {value[0]} actual: {actual}")
        return 0

    def sys_poll(self, call, fds, nfds, timeout):
        polled = [(self.sock(p["fd"]), p["events"]) for p in fds]
        revents = self.host.poll(polled, timeout)
        for i, (p, got) in enumerate(zip(fds, revents)):
            if "revents" in p and p["revents"] != got:
                raise SyscallError(f"Expected revents of {p['revents']:#x} but got {got:#x} for pollfd {i}")
        return sum(1 for got in revents if got)

    def sys_epoll_create(self, call, size):
        fd = call.result
        if fd in self.fds:
            raise SyscallError(f"duplicate fd {fd} in script")
        self.fds[fd] = self.host.epoll()
        return fd

    def sys_epoll_ctl(self, call, epfd, op, fd, event):
        self.sock(epfd).ctl(op, self.sock(fd), event.get("events", 0) if isinstance(event, dict) else 0, fd)
        return 0

    def sys_epoll_wait(self, call, epfd, event, maxevents, timeout):
        ready = self.sock(epfd).wait(maxevents, timeout)  # [(script fd, events)]
        if ready and isinstance(event, dict):
            fd, events = ready[0]
            if events != event.get("events") or ("fd" in event and fd != event["fd"]):
                raise SyscallError(f"epoll_event->events does not match: expected {event.get('events'):#x} "
                                   f"(fd {event.get('fd')}) vs actual {events:#x} (fd {fd})")
        return len(ready)

    def close_all(self) -> None:
        for sock in self.fds.values():
            try:
                sock.close()
            except OSError:
                pass
        self.fds.clear()


SOCK_EXTENDED_ERR = struct.Struct("=IBBBxII")  # struct sock_extended_err
EE_FIELDS = ("ee_errno", "ee_origin", "ee_type", "ee_code", "ee_info", "ee_data")


def _cmsg_value(data: bytes, want):
    """A control message's data as the script writes it: an int, or IP_RECVERR's
    sock_extended_err as its fields."""
    if isinstance(want, dict):
        return dict(zip(EE_FIELDS, SOCK_EXTENDED_ERR.unpack_from(data.ljust(SOCK_EXTENDED_ERR.size, b"\0"))))
    return int.from_bytes(data[:4], "little")
