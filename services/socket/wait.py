"""Waiting on sockets without holding a thread: wait queues, readiness, blocking calls.

Models include/linux/wait.h and the poll machinery of fs/select.c. Each socket has
a wait queue (`sk_sleep(sk)`); the callbacks that change what a socket can do
(sk_data_ready, sk_write_space, sk_state_change, sk_error_report) wake it with the
poll events they make true. Whoever waits puts a Waiter on the queue *before* it
looks at the socket (prepare_to_wait), so no wake-up between the look and the wait
is lost.

A blocking call is written once, as a generator that yields the events it waits
for whenever it would block and is sent True when its time is up (it then returns
what it has or raises EAGAIN, as the call defines). Two drivers run it:
`wait_sync` on the calling thread (the pure tests), and `wait_async` on an asyncio
loop, whose every step runs in a thread pool while the waiting itself holds no
thread: a socket service answers any number of blocked calls with a few threads.
"""

import asyncio
import errno
import threading
import time
from typing import Callable, Generator

from pktpath.sockerr import SockError

# include/uapi/asm-generic/poll.h
POLLIN, POLLPRI, POLLOUT, POLLERR, POLLHUP, POLLNVAL = 0x1, 0x2, 0x4, 0x8, 0x10, 0x20
POLLRDNORM, POLLRDBAND, POLLWRNORM, POLLWRBAND = 0x40, 0x80, 0x100, 0x200
POLLRDHUP = 0x2000
POLL_READ = POLLIN | POLLRDNORM
POLL_WRITE = POLLOUT | POLLWRNORM
POLL_ALWAYS = POLLERR | POLLHUP | POLLNVAL  # reported whether asked for or not
POLL_ANY = 0xFFFF

# A blocking call: yields the events it waits for, is sent True once its time is up.
Blocking = Generator[int, bool, object]


class Waiter:
    """One wait_queue_entry: a thread or an asyncio task waiting on one or more sockets."""

    __slots__ = ("events", "_loop", "_event", "_woken")

    def __init__(self, events: int = POLL_ANY, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.events = events
        self._loop = loop
        self._event = asyncio.Event() if loop is not None else threading.Event()
        self._woken = False

    def wake(self, mask: int) -> None:
        """The queue's wake_up(): from any thread."""
        if not mask & (self.events | POLL_ALWAYS) or self._woken:
            return
        self._woken = True
        if self._loop is None:
            self._event.set()
        else:
            try:
                self._loop.call_soon_threadsafe(self._event.set)
            except RuntimeError:  # the loop has closed: nobody is waiting any more
                pass

    @property
    def woken(self) -> bool:
        return self._woken

    def clear(self) -> None:
        """Before looking again: a wake from now on is for the next wait."""
        self._event.clear()
        self._woken = False  # after the clear: a wake in between sets the event again

    def wait(self, timeout: float | None) -> None:
        self._event.wait(timeout)

    async def wait_async(self, timeout: float | None) -> None:
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except asyncio.TimeoutError:
            pass


class WaitQueue:
    """wait_queue_head_t: who waits on one socket."""

    __slots__ = ("_waiters", "_lock")

    def __init__(self) -> None:
        self._waiters: list[Waiter] = []
        self._lock = threading.Lock()

    def add(self, waiter: Waiter) -> None:
        with self._lock:
            self._waiters.append(waiter)

    def remove(self, waiter: Waiter) -> None:
        with self._lock:
            try:
                self._waiters.remove(waiter)
            except ValueError:
                pass

    def wake(self, mask: int = POLL_ANY) -> None:
        """wake_up_interruptible_poll(): every waiter whose events are in mask."""
        if not self._waiters:
            return
        with self._lock:
            waiters = list(self._waiters)
        for waiter in waiters:
            waiter.wake(mask)

    def __len__(self) -> int:
        return len(self._waiters)


def _deadline(timeout: float | None) -> float | None:
    return None if timeout is None else time.monotonic() + max(timeout, 0.0)


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else deadline - time.monotonic()


def wait_sync(queues: list[WaitQueue], call: Blocking, timeout: float | None):
    """Run a blocking call on this thread: timeout None waits for ever, 0 not at all."""
    waiter = Waiter()
    for q in queues:
        q.add(waiter)
    deadline = _deadline(timeout)
    try:
        events = next(call)
        while True:
            waiter.events = events
            remaining = _remaining(deadline)
            if remaining is not None and remaining <= 0:
                events = call.send(True)
                continue
            waiter.wait(remaining)
            waiter.clear()
            events = call.send(False)
    except StopIteration as done:
        return done.value
    finally:
        for q in queues:
            q.remove(waiter)
        call.close()


async def wait_async(queues: list[WaitQueue], call: Blocking, timeout: float | None,
                     run: Callable[..., "asyncio.Future"]):
    """Run a blocking call from an asyncio task: each step by run(fn, *args) (a thread
    pool), the waits on the loop. Cancelling the task (the RPC's end) ends the call."""
    waiter = Waiter(loop=asyncio.get_running_loop())
    for q in queues:
        q.add(waiter)
    deadline = _deadline(timeout)
    try:
        events = await run(_step, call, None)
        while True:
            waiter.events = events
            remaining = _remaining(deadline)
            if remaining is not None and remaining <= 0:
                events = await run(_step, call, True)
                continue
            await waiter.wait_async(remaining)
            waiter.clear()
            events = await run(_step, call, False)
    except _Done as done:
        return done.value
    finally:
        for q in queues:
            q.remove(waiter)
        call.close()


class _Done(Exception):
    def __init__(self, value) -> None:
        self.value = value


def _step(call: Blocking, timed_out: bool | None) -> int:
    """One step of a call (on a pool thread): StopIteration cannot cross a Future."""
    try:
        return next(call) if timed_out is None else call.send(timed_out)
    except StopIteration as done:
        raise _Done(done.value) from None


def would_block(what: str) -> SockError:
    return SockError(errno.EAGAIN, what)
