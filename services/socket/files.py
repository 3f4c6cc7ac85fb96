"""Processes and their descriptors: who owns which socket of a host.

Models fs/file.c (struct files_struct: alloc_fd, fd_install, put_unused_fd,
close_fd; the lowest free descriptor first, RLIMIT_NOFILE bounding it), the
host-wide count of open files against fs.file-max (alloc_empty_file: ENFILE), and
exit_files(): when a process ends, every descriptor it held is closed as close(2)
would close it.

A client of a host's socket API is a process (a Task) from the moment it attaches
until its attachment ends: it exits, is killed, or its connection to the host
breaks. Its descriptors are its own: another process naming the same number gets
EBADF, as on Linux.
"""

import errno
import secrets
import threading
from dataclasses import dataclass, field

from pktpath.sockerr import SockError

FIRST_FD = 3               # 0-2 are the process's stdin, stdout and stderr
INR_OPEN_CUR = 1024        # RLIMIT_NOFILE's soft limit of init, inherited by every process
INR_OPEN_MAX = 4096        # ... and its hard limit
NR_OPEN = 1024 * 1024      # fs.nr_open: the most RLIMIT_NOFILE can be
NR_FILE = 8192             # the least fs.file-max can be


def files_maxfiles_init(mem_bytes: int) -> int:
    """files_maxfiles_init(): fs.file-max from memory, about 10 % of it in 1 kB files."""
    pages = mem_bytes // 4096
    return max(pages * (4096 // 1024) // 10, NR_FILE)


@dataclass
class Task:
    """A process using the host's sockets: what `ss -p` shows, and its fd table."""

    key: str                  # the attachment's secret: its calls carry it
    pid: int                  # on the client's own machine
    comm: str
    nofile: list[int] = field(default_factory=lambda: [INR_OPEN_CUR, INR_OPEN_MAX])  # soft, hard
    fds: dict[int, object] = field(default_factory=dict)  # fd -> socket (None: reserved by alloc_fd)
    lock: threading.Lock = field(default_factory=threading.Lock)
    exited: bool = False

    def get(self, fd: int):
        """fdget(): the socket behind fd, EBADF if there is none."""
        sock = self.fds.get(fd)
        if sock is None:
            raise SockError(errno.EBADF, f"fd {fd}")
        return sock

    def setrlimit_nofile(self, soft: int, hard: int) -> None:
        """setrlimit(RLIMIT_NOFILE): EINVAL for soft > hard, EPERM above fs.nr_open."""
        if soft > hard:
            raise SockError(errno.EINVAL, f"soft limit {soft} > hard limit {hard}")
        if hard > NR_OPEN:
            raise SockError(errno.EPERM, f"hard limit {hard} > fs.nr_open {NR_OPEN}")
        self.nofile = [soft, hard]


class Tasks:
    """The host's processes and its count of open files."""

    def __init__(self, file_max: int) -> None:
        self.file_max = file_max
        self.nr_files = 0
        self._lock = threading.Lock()
        self._by_key: dict[str, Task] = {}

    def attach(self, pid: int, comm: str) -> Task:
        task = Task(secrets.token_urlsafe(16), pid, comm)
        with self._lock:
            self._by_key[task.key] = task
        return task

    def get(self, key: str) -> Task | None:
        return self._by_key.get(key)

    def __len__(self) -> int:
        return len(self._by_key)

    def alloc_fd(self, task: Task) -> int:
        """alloc_fd() and alloc_empty_file(): the lowest free descriptor under the soft
        RLIMIT_NOFILE (EMFILE), if the host has a file left (ENFILE). Reserved until
        fd_install() or put_unused_fd()."""
        with task.lock:
            if task.exited:
                raise SockError(errno.EBADF, "the process has exited")
            fd = FIRST_FD
            while fd in task.fds:
                fd += 1
            if fd >= task.nofile[0]:
                raise SockError(errno.EMFILE, f"RLIMIT_NOFILE is {task.nofile[0]}")
            with self._lock:
                if self.nr_files >= self.file_max:
                    raise SockError(errno.ENFILE, f"fs.file-max {self.file_max} files are open")
                self.nr_files += 1
            task.fds[fd] = None
        return fd

    def fd_install(self, task: Task, fd: int, sock) -> bool:
        """False if the process exited meanwhile: the caller closes the socket."""
        with task.lock:
            if task.exited:
                return False
            task.fds[fd] = sock
        return True

    def put_unused_fd(self, task: Task, fd: int) -> None:
        """The call failed after alloc_fd(): the descriptor and its file go back."""
        with task.lock:
            if task.fds.get(fd, 0) is None:
                del task.fds[fd]
                self._release(1)

    def close_fd(self, task: Task, fd: int):
        """close_fd(): take fd out of the table; the caller closes the socket."""
        with task.lock:
            sock = task.fds.get(fd)
            if sock is None:
                raise SockError(errno.EBADF, f"fd {fd}")
            del task.fds[fd]
        self._release(1)
        return sock

    def exit(self, task: Task) -> list:
        """exit_files(): the process is gone; returns its sockets, lowest fd first, for
        the caller to close. Reserved descriptors are released too."""
        with self._lock:
            self._by_key.pop(task.key, None)
        with task.lock:
            task.exited = True
            fds, task.fds = task.fds, {}
        self._release(len(fds))
        return [sock for _, sock in sorted(fds.items()) if sock is not None]

    def owners(self) -> dict[int, tuple[Task, int]]:
        """id(socket) -> (task, fd): who holds each socket, for ss -p."""
        with self._lock:
            tasks = list(self._by_key.values())
        out = {}
        for task in tasks:
            with task.lock:
                for fd, sock in task.fds.items():
                    if sock is not None:
                        out[id(sock)] = (task, fd)
        return out

    def _release(self, n: int) -> None:
        with self._lock:
            self.nr_files -= n
