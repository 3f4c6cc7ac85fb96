"""A system call's failure inside a layer: an errno and what it was about.

pktpath.rpc carries it to a gRPC client as a status with the errno attached.
"""

import errno
import os

MAX_ERRNO = 4095  # include/linux/err.h: an errno is 1..MAX_ERRNO


class SockError(Exception):
    """A syscall's failure inside a service: an errno and what it was about."""

    def __init__(self, err: int, detail: str = "") -> None:
        super().__init__(describe(err, detail))
        self.errno = err
        self.detail = detail


MAX_DETAIL = 200  # characters: a detail never carries a large input back (metadata is capped at 8 kB)


def describe(err: int, detail: str = "") -> str:
    text = f"{errno.errorcode.get(err, str(err))}: {os.strerror(err)}"
    return f"{text} ({detail})" if detail else text


def short_detail(detail: str) -> str:
    """What metadata can carry: ASCII, and not much of it."""
    detail = detail.encode("ascii", "backslashreplace").decode()
    return detail if len(detail) <= MAX_DETAIL else detail[:MAX_DETAIL] + "..."
