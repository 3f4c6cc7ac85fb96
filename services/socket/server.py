"""The socket service of one host: the BSD socket API that clients call, over gRPC.

Servicer for pktpath.v1.Socket (net/socket.c, net/ipv4/af_inet.c). Each call
is a system call on a descriptor of this host; failures end the RPC with the
errno's gRPC status (pktpath.rpc). SockQueueRcvSkb (L4 queueing delivered
datagrams) and SkErrorReport (ICMP errors for a socket) are the way up.
"""

import asyncio
import errno
import functools
import math
import os
import threading

import grpc
from google.protobuf import empty_pb2

from pktpath import skbuff as s
from pktpath import sockerr, validate
from pktpath.counters import Mib
from pktpath.seams import edge
from pktpath.flow import TcpChild
from pktpath.hop import batches
from pktpath.pb import l4_pb2, socket_pb2
from pktpath.rpc import abort, abort_async, errno_of, l4_pb2_grpc, socket_pb2_grpc, sysctl_rpc
from pktpath.services.socket.files import Task, Tasks, files_maxfiles_init
from pktpath.services.socket.sock import SocketLayer, dontwait, sk_get_meminfo
from pktpath.services.socket.wait import POLL_ALWAYS, POLL_ANY, POLLNVAL, wait_async
from pktpath.sockerr import SockError
from pktpath.trace import sampler
from pktpath.wire.addr import ip_from_str, ip_to_str
from pktpath.wire.errors import SanityError
from pktpath.wire.icmp import (
    ICMP_DEST_UNREACH, ICMP_EXC_FRAGTIME, ICMP_FRAG_NEEDED, ICMP_PORT_UNREACH, ICMP_PROT_UNREACH,
    ICMP_TIME_EXCEEDED,
)
from pktpath.wire import tcp_info
from pktpath.wire.ipv4 import IPPROTO_TCP, IPPROTO_UDP

TCP_INFO, TCP_CLOSE = 11, 7  # include/uapi/linux/tcp.h, tcp_states.h

L4_TIMEOUT_S = 10
MAX_WAIT_S = 1e6
_SS_STATE = {"ESTABLISHED": "ESTAB", "SYN_SENT": "SYN-SENT", "LISTEN": "LISTEN", "CLOSE": "UNCONN",
             "CLOSED": "CLOSED"}

_UNREACH = {0: "network unreachable", 1: "host unreachable", ICMP_PROT_UNREACH: "protocol unreachable",
            ICMP_PORT_UNREACH: "port unreachable", ICMP_FRAG_NEEDED: "fragmentation needed"}


def icmp_text(type_: int, code: int, info: int, offender: str) -> str:
    """What ping prints for an ICMP error: "From 10.0.1.254: time to live exceeded"."""
    if type_ == ICMP_DEST_UNREACH:
        what = _UNREACH.get(code, f"destination unreachable (code {code})")
        if code == ICMP_FRAG_NEEDED:
            what += f" (mtu {info})"
    elif type_ == ICMP_TIME_EXCEEDED:
        what = "fragment reassembly time exceeded" if code == ICMP_EXC_FRAGTIME else "time to live exceeded"
    else:
        what = f"ICMP type {type_} code {code}"
    return f"from {offender}: {what}"


class L4Protocols:
    """The protocol side of the socket calls: L4's port tables and sendmsg."""

    def __init__(self, stub) -> None:
        self.stub = stub

    def _call(self, rpc, request):
        try:
            return rpc(request, timeout=L4_TIMEOUT_S)
        except grpc.RpcError as exc:
            raise SockError(errno_of(exc) or errno.EIO, exc.details()) from None

    def hash(self, sock) -> tuple[int, int, int, int]:
        reply = self._call(self.stub.Hash, l4_pb2.SockAddrs(
            sk=sock.sk, protocol=sock.protocol, saddr=ip_to_str(sock.saddr) if sock.saddr else "",
            sport=sock.sport, daddr=ip_to_str(sock.daddr) if sock.daddr else "", dport=sock.dport))
        return ip_from_str(reply.saddr), reply.sport, ip_from_str(reply.daddr), reply.dport

    def unhash(self, sock) -> None:
        try:
            self._call(self.stub.Unhash, l4_pb2.SockAddrs(sk=sock.sk, protocol=sock.protocol))
        except SockError:
            pass  # close() succeeds whatever happened below, as in the kernel

    def sendmsg(self, sock, skb) -> int:
        rpc = self.stub.UdpSendmsg if sock.protocol == IPPROTO_UDP else self.stub.PingSendmsg
        return self._call(rpc, s.to_batch([skb])).errno


class L4Tcp:
    """L4's side of TCP sockets: the calls that wait for an answer over gRPC, the
    others (send, read, shutdown, close) by one hop, in order."""

    _KINDS = {v: k.lower() for k, v in socket_pb2.SkCallback.Kind.items()}

    def __init__(self, stub, calls: L4Protocols, ctx, mib: Mib) -> None:
        self.stub = stub
        self._call = calls._call
        # sends, reads, shutdowns and closes in one ordered stream: none overtakes another
        self._calls = ctx.hop(edge("socket", "tcp-calls"), mib)
        self._mib = mib

    def connect(self, sock) -> int:
        return self._call(self.stub.TcpV4Connect, l4_pb2.TcpConnectRequest(
            sk=sock.sk, saddr=ip_to_str(sock.saddr), sport=sock.sport, daddr=ip_to_str(sock.daddr),
            dport=sock.dport, rcvbuf=_user_rcvbuf(sock), nodelay=sock.stream.nodelay)).errno

    def listen(self, sock, backlog: int) -> None:
        self._call(self.stub.InetCskListenStart, l4_pb2.TcpListenRequest(
            sk=sock.sk, saddr=ip_to_str(sock.saddr) if sock.saddr else "", sport=sock.sport, backlog=backlog,
            rcvbuf=_user_rcvbuf(sock), nodelay=sock.stream.nodelay))

    def accepted(self, listener_sk: int, child_sk: int) -> None:
        self._call(self.stub.InetCskAccept, l4_pb2.TcpAccepted(listener=listener_sk, child=child_sk))

    def sendmsg(self, skbs) -> None:
        # value 1 on the write's last skb: tcp_push() marks it PSH
        last = len(skbs) - 1
        self._calls.put([(l4_pb2.TcpCall.SENDMSG, skb.sk, int(i == last), skb) for i, skb in enumerate(skbs)])

    def recvd(self, sk: int, copied: int) -> None:
        self._calls.put([(l4_pb2.TcpCall.RECVD, sk, copied, None)])

    def shutdown(self, sk: int, how: int) -> None:
        self._calls.put([(l4_pb2.TcpCall.SHUTDOWN, sk, how, None)])

    def close(self, sk: int) -> None:
        self._calls.put([(l4_pb2.TcpCall.CLOSE, sk, 0, None)])

    def abort(self, sk: int) -> None:
        try:
            self._call(self.stub.TcpAbort, l4_pb2.TcpSk(sk=sk))
        except SockError:
            pass

    def setsockopt(self, sock) -> None:
        opts = l4_pb2.TcpSockopt(sk=sock.sk, nodelay=sock.stream.nodelay)
        if sock.rcvbuf_locked:
            opts.rcvbuf = sock.rcvbuf
        self._call(self.stub.TcpSetsockopt, opts)

    def callbacks(self, batch) -> list:
        """SkCallbacks' items as the socket layer takes them. One that makes no sense (an
        unknown kind, a bad skb or address) is left out alone and counted (Hop BadCallbacks)."""
        out = []
        for it in batch.items:
            kind, child, skb = self._KINDS.get(it.kind), None, None
            try:
                if it.kind == socket_pb2.SkCallback.ACCEPT:
                    c = it.child
                    child = TcpChild(c.sk, ip_from_str(c.local.addr), c.local.port, ip_from_str(c.peer.addr),
                                     c.peer.port, c.mss)
                if it.kind == socket_pb2.SkCallback.DATA:
                    skb = s.from_proto(it.skb)
            except (s.SkbError, SanityError, ValueError):
                kind = None
            if kind is None:
                self._mib.inc("Hop", "BadCallbacks")
                continue
            out.append((kind, it.sk, it.value, skb, child))
        return out

    def close_hops(self) -> None:
        self._calls.close()


def _user_rcvbuf(sock) -> int:
    """SO_RCVBUF if the user set it, else 0: L4 autotunes it."""
    return sock.rcvbuf if sock.rcvbuf_locked else 0


TASK_KEY = "pktpath-task"  # the metadata each call of a process carries: its key from Attach
# The pool runs every step of a call; a call that waits holds none of its threads.
WORKERS = 8
COMM_LEN = 15  # TASK_COMM_LEN - 1


# Where a call runs. A call that waits for L4 (a gRPC call to it: bind, sendto, close of a
# bound socket...) runs on the pool; one that only reads or changes the socket layer's
# memory runs on the event loop itself, sparing it two thread switches (~250 µs here).
def _syscall(handler):
    """A call that waits for L4, on the pool: a SockError ends the RPC with its errno."""
    @functools.wraps(handler)
    def rpc(self, request, context):
        try:
            return handler(self, request, context)
        except SockError as exc:
            abort(context, exc.errno, exc.detail)
    return rpc


def _syscall_on_loop(handler):
    """A call that runs on the service's event loop: a coroutine that may wait, or a
    plain function that never blocks."""
    @functools.wraps(handler)
    async def rpc(self, request, context):
        try:
            result = handler(self, request, context)
            return await result if asyncio.iscoroutine(result) else result
        except SockError as exc:
            await abort_async(context, exc.errno, exc.detail)
    return rpc


async def _inline(fn, *args):
    return fn(*args)


class SocketServicer(socket_pb2_grpc.SocketServicer):
    aio = True          # served by grpc.aio (pktpath.service): waiting costs no thread
    workers = WORKERS

    def __init__(self, ctx) -> None:
        self.ctx = ctx
        self.mib = Mib()
        self._channel = ctx.addrs.channel(ctx.host, "l4")
        stub = l4_pb2_grpc.L4Stub(self._channel)
        calls = L4Protocols(stub)
        self.tcp = L4Tcp(stub, calls, ctx, self.mib)
        self.layer = SocketLayer(ctx.host, calls, self.mib, self.tcp, sample=sampler())
        memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        file_max = ctx.topology.host(ctx.host).file_max or files_maxfiles_init(memory)
        self.tasks = Tasks(file_max)
        self._l4 = stub
        self._l4_ready = threading.Event()
        self._stopping = threading.Event()
        self._session = None
        threading.Thread(target=self._l4_session, name="l4-session", daemon=True).start()

    # -- L4 below ----------------------------------------------------------------------
    def _l4_session(self) -> None:
        """Keep a session open with this host's L4 (L4.SocketLayerSession). When it ends, L4
        went away and took its TCP state: every connection and listener is aborted at once
        (a blocked recv or accept returns), rather than left waiting for a peer that is
        gone. When a new one begins, the ports of sockets with no state below are hashed
        again. Counted under Peer."""
        sessions = 0
        while not self._stopping.is_set():
            try:
                self._session = self._l4.SocketLayerSession(empty_pb2.Empty(), wait_for_ready=True)
                reply = next(self._session)
                self.layer.reserve_sks(reply.sk_base)
                sessions += 1
                if sessions > 1:
                    done, failed = self.layer.l4_attached()
                    self.mib.inc("Peer", "PortsHashedAgain", done)
                    self.mib.inc("Peer", "PortsLost", failed)
                self._l4_ready.set()
                for _ in self._session:
                    pass
            except (grpc.RpcError, StopIteration):
                pass
            if self._stopping.is_set():
                return
            if self._l4_ready.is_set():
                self._l4_ready.clear()
                self.mib.inc("Peer", "L4Lost")
                self.mib.inc("Peer", "SocketsAborted", self.layer.l4_lost())
            self._stopping.wait(0.1)

    def wait_ready(self, timeout: float) -> bool:
        """SERVING once L4 answered the session (and gave the ids to start from)."""
        return self._l4_ready.wait(timeout)

    # -- processes -------------------------------------------------------------------
    def _task(self, context) -> Task:
        for key, value in context.invocation_metadata() or ():
            if key == TASK_KEY:
                task = self.tasks.get(value)
                if task is None:
                    raise SockError(errno.ESRCH, "no such process: it has exited (its Attach stream ended)")
                return task
        raise SockError(errno.ESRCH, f"no process: call Attach first and send its key as metadata {TASK_KEY!r}")

    def _sock(self, context, fd: int):
        return self._task(context).get(fd)

    async def Attach(self, request, context):
        """A process begins: its fd table lives until this stream ends (exit_files)."""
        task = self.tasks.attach(request.pid, request.comm[:COMM_LEN] or "?")
        self.mib.inc("Socket", "ProcessesAttached")
        loop = asyncio.get_running_loop()
        try:
            yield socket_pb2.AttachReply(key=task.key, file_max=self.tasks.file_max)
            await asyncio.Event().wait()  # until the client ends the call or its connection drops
        finally:
            self.mib.inc("Socket", "ProcessesExited")
            loop.run_in_executor(None, self._exit_files, self.tasks.exit(task))

    def _exit_files(self, socks: list) -> None:
        """do_exit() → exit_files(): every socket the process held is closed as close(2) does."""
        for sock in socks:
            self.mib.inc("Socket", "ClosedOnExit")
            self.layer.close(sock)

    @_syscall_on_loop
    def Prlimit(self, request, context):
        task = self._task(context)
        if request.set:
            task.setrlimit_nofile(request.soft, request.hard)
        return socket_pb2.PrlimitReply(soft=task.nofile[0], hard=task.nofile[1])

    @_syscall_on_loop
    async def Poll(self, request, context):
        """do_poll(): each descriptor's sock_poll(), waiting on all their queues at once
        until one is ready or the time is up. An fd < 0 is ignored; a closed one is POLLNVAL."""
        task = self._task(context)
        fds = [(p.fd, p.events) for p in request.fds]
        queues = [task.fds[fd].wq for fd, _ in fds if task.fds.get(fd) is not None]
        timeout = None if request.timeout_ms < 0 else request.timeout_ms / 1000
        revents = await wait_async(queues, _poll_call(task, fds), self._limit(timeout, context), _inline)
        reply = socket_pb2.PollReply(ready=sum(1 for r in revents if r))
        for (fd, events), r in zip(fds, revents):
            reply.fds.add(fd=fd, events=events, revents=r)
        return reply

    # -- the calls -------------------------------------------------------------------
    @_syscall_on_loop
    def Socket(self, request, context):
        """__sys_socket(): the socket, then the process's lowest free descriptor for it."""
        task = self._task(context)
        fd = self.tasks.alloc_fd(task)
        try:
            sock = self.layer.socket(request.family, request.type, request.protocol)
        except SockError:
            self.tasks.put_unused_fd(task, fd)
            raise
        self.tasks.fd_install(task, fd, sock)
        return socket_pb2.SocketReply(fd=fd)

    @_syscall
    def Bind(self, request, context):
        self.layer.bind(self._sock(context, request.fd), *_addr(request.addr))
        return empty_pb2.Empty()

    @staticmethod
    def _limit(timeout: float | None, context) -> float | None:
        """The call's own time limit, bounded by the RPC's deadline (none has a huge one)."""
        remaining = context.time_remaining()
        if remaining is not None and remaining < MAX_WAIT_S:
            timeout = remaining if timeout is None else min(timeout, remaining)
        return timeout

    async def _wait(self, sock, call, timeout: float | None, context, *, on_loop: bool = False):
        """Run a blocking call: its steps on the pool (they call L4) or, on_loop, here."""
        if timeout is not None and not (math.isfinite(timeout) and timeout >= 0):
            raise SockError(errno.EINVAL, f"timeout {timeout}: not a number of seconds")
        run = _inline if on_loop else functools.partial(asyncio.get_running_loop().run_in_executor, None)
        return await wait_async([sock.wq], call, self._limit(timeout, context), run)

    @_syscall_on_loop
    async def Connect(self, request, context):
        sock = self._sock(context, request.fd)
        call = self.layer.connect_call(sock, *_addr(request.addr), nonblocking=request.nonblocking)
        await self._wait(sock, call, request.timeout_s or None, context)
        return empty_pb2.Empty()

    @_syscall
    def Listen(self, request, context):
        self.layer.listen(self._sock(context, request.fd), request.backlog)
        return empty_pb2.Empty()

    @_syscall_on_loop
    async def Accept(self, request, context):
        """__sys_accept4(): a descriptor first (EMFILE leaves the connection queued), then
        the connection, installed in the same step that takes it off the queue."""
        task = self._task(context)
        sock = task.get(request.fd)
        fd = self.tasks.alloc_fd(task)
        try:
            child = await self._wait(sock, self._accept_into(task, fd, sock),
                                     0 if request.nonblocking else request.timeout_s or None, context)
        except BaseException:
            self.tasks.put_unused_fd(task, fd)
            raise
        return socket_pb2.AcceptReply(fd=fd, peer=socket_pb2.Sockaddr(addr=ip_to_str(child.daddr), port=child.dport))

    def _accept_into(self, task, fd: int, sock):
        child = yield from self.layer.accept_call(sock)
        if not self.tasks.fd_install(task, fd, child):  # the process died meanwhile
            self.layer.close(child)
        return child

    @_syscall_on_loop
    async def Sendto(self, request, context):
        sock = self._sock(context, request.fd)
        daddr, dport = _addr(request.addr) if request.HasField("addr") else (0, 0)
        call = self.layer.sendto_call(sock, request.data, daddr, dport, flags=request.flags)
        sent = await self._wait(sock, call, dontwait(request.flags, request.timeout_s or None), context)
        return socket_pb2.SendtoReply(sent=sent)

    async def _recv(self, request, context, vlen: int) -> list:
        sock = self._sock(context, request.fd)
        call = self.layer.recvmmsg_call(sock, vlen, request.bufsize or 0xFFFF, request.flags)
        return await self._wait(sock, call, dontwait(request.flags, request.timeout_s or None), context, on_loop=True)

    @staticmethod
    def _reply(dgram, out=None):
        out = socket_pb2.RecvfromReply() if out is None else out
        out.data, out.ttl = dgram.data, dgram.ttl
        out.addr.addr, out.addr.port = ip_to_str(dgram.saddr), dgram.sport
        if dgram.tstamp:
            out.tstamp_ns = dgram.tstamp
        return out

    @_syscall_on_loop
    async def Recvfrom(self, request, context):
        return self._reply((await self._recv(request, context, 1))[0])

    @_syscall_on_loop
    async def Recvmmsg(self, request, context):
        reply = socket_pb2.RecvmmsgReply()
        for dgram in await self._recv(request, context, request.vlen):
            self._reply(dgram, reply.msgs.add())
        return reply

    @_syscall
    def Shutdown(self, request, context):
        self.layer.shutdown(self._sock(context, request.fd), request.how)
        return empty_pb2.Empty()

    @_syscall
    def Close(self, request, context):
        self.layer.close(self.tasks.close_fd(self._task(context), request.fd))
        return empty_pb2.Empty()

    @_syscall_on_loop
    def Getsockname(self, request, context):
        sock = self._sock(context, request.fd)
        return socket_pb2.Sockaddr(addr=ip_to_str(sock.saddr), port=sock.sport)

    @_syscall_on_loop
    def Getpeername(self, request, context):
        sock = self._sock(context, request.fd)
        if not sock.connected:
            raise SockError(errno.ENOTCONN)
        return socket_pb2.Sockaddr(addr=ip_to_str(sock.daddr), port=sock.dport)

    @_syscall
    def Setsockopt(self, request, context):
        self.layer.setsockopt(self._sock(context, request.fd), request.level, request.optname, request.value)
        return empty_pb2.Empty()

    @_syscall_on_loop
    def Getsockopt(self, request, context):
        sock = self._sock(context, request.fd)
        if (request.level, request.optname) == (IPPROTO_TCP, TCP_INFO) and sock.stream is not None:
            return self._tcp_info(sock)
        value = self.layer.getsockopt(sock, request.level, request.optname)
        return socket_pb2.SockoptReply(value=value)

    async def _tcp_info(self, sock) -> socket_pb2.SockoptReply:
        """getsockopt(TCP_INFO): L4 holds the tcp_sock; one it has not (a socket not yet
        connected or listening) is CLOSE, as tcp_get_info says of it."""
        try:
            reply = await asyncio.to_thread(self._l4.TcpGetInfo, l4_pb2.TcpSk(sk=sock.sk), timeout=5)
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND:
                raise SockError(errno.EIO, f"TCP_INFO: {exc.details()}") from None
            return socket_pb2.SockoptReply(data=tcp_info.pack(tcpi_state=TCP_CLOSE))
        return socket_pb2.SockoptReply(data=reply.info)

    @batches(s.pb.SkBuffBatch)
    def SockQueueRcvSkb(self, request, context):
        """sock_queue_rcv_skb(): L4's delivered datagrams."""
        return s.disposition(*self.layer.sock_queue_rcv_skb(s.from_protos(request.skbs, self.mib)))

    @batches(socket_pb2.SockErrBatch)
    def SkErrorReport(self, request, context):
        """sk_error_report(): ICMP errors for sockets of this host."""
        errs = [e for e in request.errs if 0 < e.errno < sockerr.MAX_ERRNO]
        if len(errs) < len(request.errs):  # no errno a kernel could set: left out alone
            self.mib.inc("Hop", "BadErrorReports", len(request.errs) - len(errs))
        seen = sum(self.layer.sk_error_report(e.sk, e.errno, e.fatal, icmp_text(e.type, e.code, e.info, e.offender),
                                              e.type, e.code) for e in errs)
        return s.disposition(seen, len(request.errs) - len(errs))

    @batches(socket_pb2.SkCallbackBatch)
    def SkCallbacks(self, request, context):
        """TCP's socket callbacks from L4, in order."""
        orphans = self.layer.stream.callbacks(self.tcp.callbacks(request))
        return s.disposition(len(request.items) - orphans, orphans)

    def ListSockets(self, request, context):
        """ss -uap: every socket the layer knows, with the process holding it (ss -p)."""
        table = socket_pb2.SocketTable()
        owners = self.tasks.owners()
        for k in sorted(self.layer.sockets(), key=lambda k: k.sk):
            state, recv_q, send_q = ("ESTAB" if k.connected else "UNCONN"), k.rmem, 0
            if k.stream is not None:
                st = k.stream
                state = _SS_STATE.get(st.state, st.state)
                recv_q, send_q = (len(st.accept_queue), st.backlog) if st.state == "LISTEN" else (st.unread, st.wmem)
            task, fd = owners.get(id(k), (None, -1))
            info = table.sockets.add(fd=fd, netid=k.netid, state=state, recv_q=recv_q, send_q=send_q, sk=k.sk,
                                     local=socket_pb2.Sockaddr(addr=ip_to_str(k.saddr), port=k.sport),
                                     peer=socket_pb2.Sockaddr(addr=ip_to_str(k.daddr), port=k.dport),
                                     skmem=sk_get_meminfo(k))
            if task is not None:
                info.users.add(comm=task.comm, pid=task.pid, fd=fd)
        return table

    def Sysctl(self, request, context):
        return sysctl_rpc(self.layer.sysctls, request, context, self.mib)

    def GetCounters(self, request, context):
        reply = self.mib.to_proto()
        files = reply.groups.add(name="Files")  # /proc/sys/fs/file-nr, and the processes attached
        files.values.update(Processes=len(self.tasks), OpenFiles=self.tasks.nr_files, FileMax=self.tasks.file_max)
        return reply

    def close(self) -> None:
        self._stopping.set()
        if self._session is not None:
            self._session.cancel()
        self.tcp.close_hops()
        self._channel.close()


def _addr(addr) -> tuple[int, int]:
    """A Sockaddr from a client: EINVAL for what no sockaddr_in can hold."""
    try:
        return validate.ipv4(addr.addr), validate.port(addr.port)
    except validate.Invalid as exc:
        raise SockError(errno.EINVAL, str(exc)) from None


def _poll_call(task, fds: list[tuple[int, int]]):
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


def build(ctx) -> SocketServicer:
    return SocketServicer(ctx)
