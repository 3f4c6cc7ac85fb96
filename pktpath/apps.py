"""User-space programs over a host's socket API: ping(8) and a UDP sender/receiver.

They talk to a running topology (`pktpath up`) exactly as a program talks to
the kernel: socket, setsockopt, sendto, recvfrom. Output follows iputils ping.
"""

import statistics
import struct
import time
from typing import Callable, Iterator

from pktpath.client import (
    IP_MTU_DISCOVER, IP_RECVERR, IP_TTL, IPPROTO_ICMP, IPPROTO_IP, SocketApi,
)
from pktpath.flow import IP_PMTUDISC_DO, IP_PMTUDISC_DONT, IP_PMTUDISC_WANT

PMTUDISC = {"do": IP_PMTUDISC_DO, "want": IP_PMTUDISC_WANT, "dont": IP_PMTUDISC_DONT}
_ECHO = struct.Struct("!BBHHH")


def ping(api: SocketApi, dest: str, *, count: int = 3, size: int = 56, ttl: int | None = None,
         interval: float = 1.0, timeout: float = 2.0, pmtudisc: str | None = None,
         out: Callable[[str], None] = print) -> int:
    """ping -c COUNT -s SIZE [-t TTL] [-M do|want|dont] DEST through a ping socket.
    Returns the number of replies (ping exits 1 when it is 0)."""
    payload = bytes((0x10 + i) & 0xFF for i in range(size))
    rtts, sent, errors = [], 0, 0
    start = time.monotonic()
    with api.socket(protocol=IPPROTO_ICMP) as sock:
        sock.setsockopt(IPPROTO_IP, IP_RECVERR, 1)  # as ping(8) does: see errors from routers
        if ttl is not None:
            sock.setsockopt(IPPROTO_IP, IP_TTL, ttl)
        if pmtudisc is not None:
            sock.setsockopt(IPPROTO_IP, IP_MTU_DISCOVER, PMTUDISC[pmtudisc])
        out(f"PING {dest} ({dest}) {size}({size + 28}) bytes of data.")
        for seq in range(1, count + 1):
            if seq > 1:
                time.sleep(interval)
            t0 = time.perf_counter()
            try:
                sock.sendto(_ECHO.pack(8, 0, 0, 0, seq) + payload, (dest, 0))
                sent += 1
            except OSError as exc:
                out(f"ping: sendmsg: {exc.strerror}")
                errors += 1
                continue
            line = _await_reply(sock, seq, t0, timeout, rtts)
            if line.startswith("From"):
                errors += 1
            if line:
                out(line)
    elapsed = (time.monotonic() - start) * 1000
    loss = 100 * (sent - len(rtts)) // sent if sent else 100
    out(f"--- {dest} ping statistics ---")
    extra = f", +{errors} errors" if errors else ""
    out(f"{sent} packets transmitted, {len(rtts)} received{extra}, {loss}% packet loss, time {elapsed:.0f}ms")
    if rtts:
        mdev = statistics.pstdev(rtts)
        out(f"rtt min/avg/max/mdev = {min(rtts):.3f}/{statistics.fmean(rtts):.3f}/{max(rtts):.3f}/{mdev:.3f} ms")
    return len(rtts)


def _await_reply(sock, seq: int, t0: float, timeout: float, rtts: list) -> str:
    deadline = t0 + timeout
    while True:
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            return ""
        try:
            reply = sock.recvmsg(timeout=remaining)
        except TimeoutError:
            return ""
        except OSError as exc:  # an ICMP error, detail "from 10.0.1.254: time to live exceeded"
            src, _, what = getattr(exc, "detail", "").removeprefix("from ").partition(": ")
            return f"From {src} icmp_seq={seq} {what[:1].upper() + what[1:] or exc.strerror}"
        rtt = (time.perf_counter() - t0) * 1000
        type_, _, _, _, rseq = _ECHO.unpack_from(reply.data)
        if type_ != 0 or rseq != seq:
            continue  # a late reply to an earlier request
        rtts.append(rtt)
        return f"{len(reply.data)} bytes from {reply.addr.addr}: icmp_seq={seq} ttl={reply.ttl} time={rtt:.2f} ms"


def send(api: SocketApi, dest: str, port: int, *, count: int = 1, size: int = 64, data: bytes | None = None,
         sport: int = 0, interval: float = 0.0, out: Callable[[str], None] = print) -> int:
    """Send COUNT UDP datagrams of SIZE bytes (or DATA) to DEST:PORT. Returns how many went."""
    body = data if data is not None else bytes(i % 256 for i in range(size))
    sent = 0
    with api.socket() as sock:
        if sport:
            sock.bind(("0.0.0.0", sport))
        for i in range(count):
            if i and interval:
                time.sleep(interval)
            try:
                sock.sendto(body, (dest, port))
            except OSError as exc:
                out(f"send: {exc.strerror}")
                continue
            sent += 1
        addr, bound = sock.getsockname()
        out(f"sent {sent} datagram(s) of {len(body)} bytes from {addr}:{bound} to {dest}:{port}")
    return sent


def recv(api: SocketApi, port: int, *, count: int = 1, timeout: float = 10.0) -> Iterator[tuple[bytes, tuple]]:
    """Bind PORT and yield up to COUNT datagrams as (data, (addr, port)); stops at the timeout."""
    with api.socket() as sock:
        sock.bind(("0.0.0.0", port))
        for _ in range(count):
            try:
                yield sock.recvfrom(65535, timeout=timeout)
            except TimeoutError:
                return

