"""Processes and their descriptors: per-process numbering from 3, the lowest free first,
EBADF across processes, RLIMIT_NOFILE (EMFILE) and fs.file-max (ENFILE), exit_files."""

import errno

import pytest

from pktpath.services.socket.files import INR_OPEN_CUR, INR_OPEN_MAX, NR_FILE, NR_OPEN, Tasks, files_maxfiles_init
from pktpath.sockerr import SockError


def errno_of(call) -> int:
    with pytest.raises(SockError) as exc:
        call()
    return exc.value.errno


def opened(tasks, task, sock="sock"):
    fd = tasks.alloc_fd(task)
    assert tasks.fd_install(task, fd, sock)
    return fd


def test_descriptors_start_at_3_and_reuse_the_lowest_free():
    tasks = Tasks(file_max=100)
    task = tasks.attach(4242, "python3")
    assert [opened(tasks, task, f"s{i}") for i in range(3)] == [3, 4, 5]
    assert tasks.close_fd(task, 4) == "s1"
    assert opened(tasks, task) == 4
    tasks.close_fd(task, 3)
    tasks.close_fd(task, 5)
    assert [opened(tasks, task) for _ in range(3)] == [3, 5, 6]


def test_a_descriptor_belongs_to_its_process_alone():
    tasks = Tasks(file_max=100)
    one, two = tasks.attach(1, "a"), tasks.attach(2, "b")
    fd = opened(tasks, one, "mine")
    assert opened(tasks, two, "theirs") == fd  # each numbers its own from 3
    assert one.get(fd) == "mine" and two.get(fd) == "theirs"
    tasks.close_fd(two, fd)
    assert errno_of(lambda: two.get(fd)) == errno.EBADF
    assert errno_of(lambda: tasks.close_fd(two, fd)) == errno.EBADF
    assert one.get(fd) == "mine"
    assert one.key != two.key and tasks.get(one.key) is one


def test_rlimit_nofile_bounds_the_descriptor_numbers():
    tasks = Tasks(file_max=10_000)
    task = tasks.attach(1, "a")
    assert task.nofile == [INR_OPEN_CUR, INR_OPEN_MAX] == [1024, 4096]
    fds = [opened(tasks, task) for _ in range(INR_OPEN_CUR - 3)]  # 0-2 are stdio
    assert fds[-1] == 1023
    assert errno_of(lambda: tasks.alloc_fd(task)) == errno.EMFILE
    task.setrlimit_nofile(2000, 4096)
    assert opened(tasks, task) == 1024
    task.setrlimit_nofile(10, 4096)  # lowering it leaves open descriptors alone
    assert task.get(1000) == "sock" and errno_of(lambda: tasks.alloc_fd(task)) == errno.EMFILE
    assert errno_of(lambda: task.setrlimit_nofile(5000, 4096)) == errno.EINVAL
    assert errno_of(lambda: task.setrlimit_nofile(5, NR_OPEN + 1)) == errno.EPERM


def test_file_max_is_host_wide():
    tasks = Tasks(file_max=5)
    one, two = tasks.attach(1, "a"), tasks.attach(2, "b")
    for _ in range(3):
        opened(tasks, one)
    opened(tasks, two)
    fd = tasks.alloc_fd(two)       # reserved: counts as open
    assert errno_of(lambda: tasks.alloc_fd(one)) == errno.ENFILE
    tasks.put_unused_fd(two, fd)   # the call failed: given back
    assert opened(tasks, one) == 6
    assert tasks.nr_files == 5


def test_exit_hands_back_every_socket_lowest_fd_first():
    tasks = Tasks(file_max=100)
    task, other = tasks.attach(1, "a"), tasks.attach(2, "b")
    for name in ("x", "y", "z"):
        opened(tasks, task, name)
    tasks.close_fd(task, 4)
    reserved = tasks.alloc_fd(task)  # an accept() still waiting
    opened(tasks, other, "w")
    assert tasks.exit(task) == ["x", "z"]
    assert tasks.nr_files == 1 and tasks.get(task.key) is None and len(tasks) == 1
    assert not tasks.fd_install(task, reserved, "late")  # the accept finished after the exit: caller closes it
    assert errno_of(lambda: tasks.alloc_fd(task)) == errno.EBADF
    assert tasks.owners() == {id("w"): (other, 3)}


def test_file_max_follows_memory_as_the_kernel_sizes_it():
    assert files_maxfiles_init(24 << 30) == 2_516_582  # a tenth of memory in 1 kB units
    assert files_maxfiles_init(1 << 20) == NR_FILE
