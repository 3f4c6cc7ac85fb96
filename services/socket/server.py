"""The socket service of one host: the BSD socket API that clients call, over gRPC.

Servicer for pktpath.v1.Socket (net/socket.c, net/ipv4/af_inet.c). Each call
is a system call on a descriptor of this host; failures end the RPC with the
errno's gRPC status (pktpath.rpc). The way up from L4 (SockQueueRcvSkb,
SkErrorReport, SkCallbacks) is services/socket/layer.py's.
"""

import asyncio
import errno
import functools
import os
import threading

import grpc
from google.protobuf import empty_pb2

from pktpath.pb import socket_pb2
from pktpath.rpc import ErrnoStub, abort_async, errno_status, l3_pb2_grpc, l4_pb2_grpc, socket_pb2_grpc, sysctl_rpc
from pktpath.services.socket.files import Task, Tasks, files_maxfiles_init
from pktpath.services.socket.layer import Socket
from pktpath.services.socket.syscalls import Syscalls, Wait, sockaddr
from pktpath.services.socket.sock import sk_get_meminfo
from pktpath.services.socket.wait import wait_async
from pktpath.sockerr import SockError
from pktpath.trace import sampler

MAX_WAIT_S = 1e6
_SS_STATE = {"ESTABLISHED": "ESTAB", "SYN_SENT": "SYN-SENT", "LISTEN": "LISTEN", "CLOSE": "UNCONN",
             "CLOSED": "CLOSED"}

TASK_KEY = "pktpath-task"  # the metadata each call of a process carries: its key from Attach
# The pool runs every step of a call; a call that waits holds none of its threads.
WORKERS = 8
COMM_LEN = 15  # TASK_COMM_LEN - 1


# Where a call runs. A call that waits for L4 (a gRPC call to it: bind, sendto, close of a
# bound socket...) runs on the pool; one that only reads or changes the socket layer's
# memory runs on the event loop itself, sparing it two thread switches (~250 µs here).
_syscall = errno_status  # a call that waits for L4, on the pool: a SockError ends the RPC with its errno


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


class SocketServicer(Socket, socket_pb2_grpc.SocketServicer):
    aio = True          # served by grpc.aio (pktpath.service): waiting costs no thread
    workers = WORKERS

    def __init__(self, ctx) -> None:
        self.ctx = ctx
        self._channel = ctx.addrs.channel(ctx.host, "l4")
        stub = l4_pb2_grpc.L4Stub(self._channel)
        super().__init__(ctx.host, ctx.hop, ErrnoStub(stub), sample=sampler(),
                         devs=[i.name for i in ctx.topology.host(ctx.host).interfaces])
        self._l3_channel = ctx.addrs.channel(ctx.host, "l3")  # IPV6_JOIN_GROUP's device side (Ipv6DevMc)
        self.layer.l3 = ErrnoStub(l3_pb2_grpc.L3Stub(self._l3_channel))
        memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        file_max = ctx.topology.host(ctx.host).file_max or files_maxfiles_init(memory)
        self.tasks = Tasks(file_max)
        self.sys = Syscalls(self, self.tasks)
        self._l4 = stub
        self._l4_ready = threading.Event()
        self._stopping = threading.Event()
        self._loop, self._detach = None, None  # the server's loop, and its event that ends every Attach
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

    async def Attach(self, request, context):
        """A process begins: its fd table lives until this stream ends (exit_files)."""
        task = self.tasks.attach(request.pid, request.comm[:COMM_LEN] or "?")
        self.mib.inc("Socket", "ProcessesAttached")
        loop = asyncio.get_running_loop()
        if self._detach is None:
            self._loop, self._detach = loop, asyncio.Event()
        try:
            yield socket_pb2.AttachReply(key=task.key, file_max=self.tasks.file_max)
            await self._detach.wait()  # until the client ends the call or its connection drops
        finally:
            self.mib.inc("Socket", "ProcessesExited")
            socks = self.tasks.exit(task)
            if not self._detach.is_set():  # a host going down takes its sockets with it
                loop.run_in_executor(None, self._exit_files, socks)

    def stopping(self) -> None:
        """The service is going down: every process's Attach ends now, not at the server's grace."""
        self._stopping.set()
        if self._detach is not None:
            self._loop.call_soon_threadsafe(self._detach.set)

    def _exit_files(self, socks: list) -> None:
        """do_exit() → exit_files(): every socket the process held is closed as close(2) does."""
        for sock in socks:
            self.mib.inc("Socket", "ClosedOnExit")
            self.layer.close(sock)

    async def _wait(self, wait: Wait, context):
        """Run a call that may block: its steps on the pool (they call L4) or, on_loop, here."""
        run = _inline if wait.on_loop else functools.partial(asyncio.get_running_loop().run_in_executor, None)
        try:
            value = await wait_async(wait.queues, wait.call, self._limit(wait.timeout, context), run)
        except BaseException:
            if wait.undo is not None:
                wait.undo()
            raise
        return wait.reply(value)

    @staticmethod
    def _limit(timeout: float | None, context) -> float | None:
        """The call's own time limit, bounded by the RPC's deadline (none has a huge one)."""
        remaining = context.time_remaining()
        if remaining is not None and remaining < MAX_WAIT_S:
            timeout = remaining if timeout is None else min(timeout, remaining)
        return timeout

    # -- the calls (services/socket/syscalls.py), each where it runs -------------------
    @_syscall_on_loop
    def Prlimit(self, request, context):
        return self.sys.Prlimit(self._task(context), request)

    @_syscall_on_loop
    async def Poll(self, request, context):
        return await self._wait(self.sys.Poll(self._task(context), request), context)

    @_syscall_on_loop
    def Socket(self, request, context):
        return self.sys.Socket(self._task(context), request)

    @_syscall
    def Bind(self, request, context):
        return self.sys.Bind(self._task(context), request)

    @_syscall_on_loop
    async def Connect(self, request, context):
        return await self._wait(self.sys.Connect(self._task(context), request), context)

    @_syscall
    def Listen(self, request, context):
        return self.sys.Listen(self._task(context), request)

    @_syscall_on_loop
    async def Accept(self, request, context):
        return await self._wait(self.sys.Accept(self._task(context), request), context)

    @_syscall_on_loop
    async def Sendto(self, request, context):
        return await self._wait(self.sys.Sendto(self._task(context), request), context)

    @_syscall_on_loop
    async def Recvfrom(self, request, context):
        return await self._wait(self.sys.Recvfrom(self._task(context), request), context)

    @_syscall_on_loop
    async def Recvmmsg(self, request, context):
        return await self._wait(self.sys.Recvmmsg(self._task(context), request), context)

    @_syscall
    def Shutdown(self, request, context):
        return self.sys.Shutdown(self._task(context), request)

    @_syscall
    def Close(self, request, context):
        return self.sys.Close(self._task(context), request)

    @_syscall_on_loop
    def Getsockname(self, request, context):
        return self.sys.Getsockname(self._task(context), request)

    @_syscall_on_loop
    def Getpeername(self, request, context):
        return self.sys.Getpeername(self._task(context), request)

    @_syscall
    def Setsockopt(self, request, context):
        return self.sys.Setsockopt(self._task(context), request)

    @_syscall_on_loop
    async def Getsockopt(self, request, context):
        task = self._task(context)
        if self.sys.asks_l4(request):  # L4 answers: off the loop
            return await asyncio.to_thread(self.sys.Getsockopt, task, request)
        return self.sys.Getsockopt(task, request)

    @_syscall
    def Ioctl(self, request, context):
        return self.sys.Ioctl(self._task(context), request)

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
                                     local=sockaddr(k, k.saddr, k.sport), peer=sockaddr(k, k.daddr, k.dport),
                                     skmem=sk_get_meminfo(k), family=k.family, ipv6only=k.ipv6only)
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
        super().close()
        self._channel.close()
        self._l3_channel.close()


def build(ctx) -> SocketServicer:
    return SocketServicer(ctx)
