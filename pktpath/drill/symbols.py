"""The names a script may use for numbers (packetdrill's symbols_linux.c): socket levels
and options, message and file flags, poll and epoll events, ioctls, errnos; taken from
Python's own modules where they have them, with Linux's values for the rest."""

import errno
import fcntl
import os
import select
import socket

LINUX = {  # what Python's modules do not export
    "SOL_IP": 0, "SOL_IPV6": 41, "SOL_TCP": 6, "SOL_UDP": 17, "SOL_SOCKET": socket.SOL_SOCKET,
    "SIOCINQ": 0x541B, "SIOCOUTQ": 0x5411, "FIONREAD": 0x541B,
    "TCP_INQ": 36, "TCP_CM_INQ": 36, "TCP_INFO": 11, "TCP_CONGESTION": 13, "TCP_NOTSENT_LOWAT": 25,
    "TCP_FASTOPEN_CONNECT": 30, "TCP_ZEROCOPY_RECEIVE": 35, "TCP_TX_DELAY": 37,
    "SO_ZEROCOPY": 60, "MSG_ZEROCOPY": 0x4000000, "SO_EE_ORIGIN_ZEROCOPY": 5, "SO_EE_CODE_ZEROCOPY_COPIED": 1,
    "SO_MAX_PACING_RATE": 47, "SO_TXTIME": 61, "IP_RECVERR": 11, "IPV6_RECVERR": 25, "MSG_ERRQUEUE": 0x2000,
    "MSG_FASTOPEN": 0x20000000, "EPOLLEXCLUSIVE": 1 << 28, "EPOLLONESHOT": 1 << 30, "EPOLLET": 1 << 31,
    "EPOLL_CTL_ADD": 1, "EPOLL_CTL_DEL": 2, "EPOLL_CTL_MOD": 3, "AF_UNSPEC": 0,
}


def _table() -> dict[str, int]:
    table = {}
    for module, prefixes in ((socket, ("AF_", "SOCK_", "IPPROTO_", "SOL_", "SO_", "TCP_", "IP_", "MSG_", "SHUT_")),
                             (os, ("O_",)), (fcntl, ("F_",)), (select, ("POLL", "EPOLL"))):
        for name in dir(module):
            value = getattr(module, name)
            if name.startswith(prefixes) and isinstance(value, int):
                table[name] = int(value)
    table.update({name: code for code, name in errno.errorcode.items()})
    table.update(LINUX)
    return table


SYMBOLS = _table()
