"""User-space programs over a host's socket API: ping(8) and a UDP sender/receiver.

They talk to a running topology (`pktpath up`) exactly as a program talks to
the kernel: socket, setsockopt, sendto, recvfrom. Output follows iputils ping,
whose IPv6 words differ ("PING 2001:db8::2(2001:db8::2) 56 data bytes",
"Destination unreachable: Port unreachable"); an IPv6 literal chooses IPv6 by itself.
"""

import errno
import statistics
import struct
import time
from typing import Callable, Iterator

from pktpath.client import (
    AF_INET, AF_INET6, IP_MTU_DISCOVER, IP_RECVERR, IP_TTL, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_IP, IPPROTO_IPV6,
    IPV6_MTU_DISCOVER, IPV6_RECVERR, IPV6_UNICAST_HOPS, SocketApi,
)
from pktpath.flow import IP_PMTUDISC_DO, IP_PMTUDISC_DONT, IP_PMTUDISC_WANT

PMTUDISC = {"do": IP_PMTUDISC_DO, "want": IP_PMTUDISC_WANT, "dont": IP_PMTUDISC_DONT}
_ECHO = struct.Struct("!BBHHH")
ICMP_ECHO, ICMP_ECHOREPLY, ICMPV6_ECHO_REQUEST, ICMPV6_ECHO_REPLY = 8, 0, 128, 129


def family_of(dest: str, family: int | None = None) -> int:
    """The family a literal address asks for, as getaddrinfo answers ping: an IPv6 literal is
    AF_INET6; with -4 or -6 (family) one of the other family is "Address family for hostname
    not supported" (EAI_ADDRFAMILY), an OSError here."""
    own = AF_INET6 if ":" in dest else AF_INET
    if family is not None and family != own:
        raise OSError(errno.EAFNOSUPPORT, f"{dest}: Address family for hostname not supported")
    return own


def _icmp_error(exc: OSError) -> tuple[str, str]:
    """Who sent the ICMP error a socket call failed with, and what it said: the socket layer's
    detail "from 10.0.1.254: time to live exceeded" (services/socket/layer.py icmp_text)."""
    src, _, what = getattr(exc, "detail", "").removeprefix("from ").partition(": ")
    return src, what


LINGER_S = 10.0  # iputils' MAXWAIT: how long ping waits for the last replies once it has sent -c of them
FLOOD_INTERVAL_S = 0.01  # ping -f as a user may run it: 100 requests a second at the most


def ping(api: SocketApi, dest: str, *, count: int = 0, size: int = 56, ttl: int | None = None,
         interval: float = 1.0, linger: float = LINGER_S, pmtudisc: str | None = None, quiet: bool = False,
         flood: bool = False, family: int | None = None, out: Callable[[str], None] = print) -> int:
    """ping(8) through a ping socket, as iputils' ping runs: an echo request every `interval`
    seconds whatever the replies do, each reply printed as it comes (matched by its
    sequence), until `count` are sent (0: until Ctrl-C) and the last replies are in or
    `linger` (-W) seconds have passed; then the statistics, on Ctrl-C too. quiet (-q):
    only the statistics; flood (-f): a dot per request, a backspace per reply. IPv6 (ping
    -6, or an IPv6 literal: family_of) through an ICMPv6 ping socket, with IPV6_RECVERR, -t as
    IPV6_UNICAST_HOPS and -M as IPV6_MTU_DISCOVER. Returns the number of replies (ping exits 1
    when it is 0)."""
    family = family_of(dest, family)
    v6 = family == AF_INET6
    request = ICMPV6_ECHO_REQUEST if v6 else ICMP_ECHO
    payload = bytes((0x10 + i) & 0xFF for i in range(size))
    if flood:
        interval, quiet = min(interval, FLOOD_INTERVAL_S), True
    pending: dict[int, float] = {}  # seq -> when sent
    rtts: list[float] = []
    sent = errors = 0
    start = time.monotonic()
    say = (lambda line: None) if quiet else out
    try:
        with api.socket(protocol=IPPROTO_ICMPV6 if v6 else IPPROTO_ICMP, family=family) as sock:
            level = IPPROTO_IPV6 if v6 else IPPROTO_IP
            sock.setsockopt(level, IPV6_RECVERR if v6 else IP_RECVERR, 1)  # as ping(8) does: see routers' errors
            if ttl is not None:
                sock.setsockopt(level, IPV6_UNICAST_HOPS if v6 else IP_TTL, ttl)
            if pmtudisc is not None:
                sock.setsockopt(level, IPV6_MTU_DISCOVER if v6 else IP_MTU_DISCOVER, PMTUDISC[pmtudisc])
            out(f"PING {dest}({dest}) {size} data bytes" if v6 else
                f"PING {dest} ({dest}) {size}({size + 28}) bytes of data.")
            next_send = last_send = time.perf_counter()
            while True:
                now = time.perf_counter()
                if (not count or sent < count) and now >= next_send:
                    seq = sent + 1
                    try:
                        sock.sendto(_ECHO.pack(request, 0, 0, 0, seq & 0xFFFF) + payload, (dest, 0))
                        pending[seq & 0xFFFF] = last_send = now
                        if flood:
                            out(".")
                    except OSError as exc:
                        out(f"ping: sendmsg: {exc.strerror}")
                        errors += 1
                    sent += 1
                    next_send += interval
                    continue
                if count and sent >= count:  # all sent: wait for the rest, not forever
                    if not pending or now >= last_send + linger:
                        break
                    until = last_send + linger
                else:
                    until = next_send
                line = _reply(sock, pending, max(0.0, until - now), rtts, sent,
                              ICMPV6_ECHO_REPLY if v6 else ICMP_ECHOREPLY)
                if line is None:
                    continue
                if line.startswith("From"):
                    errors += 1
                if flood and not line.startswith("From"):
                    out("\b")
                say(line)
    except KeyboardInterrupt:
        pass  # Ctrl-C: the statistics all the same
    elapsed = (time.monotonic() - start) * 1000
    loss = 100 * (sent - len(rtts)) // sent if sent else 0
    out(f"--- {dest} ping statistics ---")
    extra = f", +{errors} errors" if errors else ""
    out(f"{sent} packets transmitted, {len(rtts)} received{extra}, {loss}% packet loss, time {elapsed:.0f}ms")
    if rtts:
        mdev = statistics.pstdev(rtts)
        out(f"rtt min/avg/max/mdev = {min(rtts):.3f}/{statistics.fmean(rtts):.3f}/{max(rtts):.3f}/{mdev:.3f} ms")
    return len(rtts)


def _reply(sock, pending: dict[int, float], timeout: float, rtts: list, last_seq: int,
           reply_type: int = ICMP_ECHOREPLY) -> str | None:
    """The line for the next reply or error within timeout; None for nothing (or a reply to
    no request of ours: a duplicate, or one given up on)."""
    try:
        reply = sock.recvmsg(timeout=timeout)
    except TimeoutError:
        return None
    except OSError as exc:  # an ICMP error, detail "from 10.0.1.254: time to live exceeded"
        src, what = _icmp_error(exc)
        return f"From {src} icmp_seq={last_seq} {what[:1].upper() + what[1:] or exc.strerror}"
    type_, _, _, _, rseq = _ECHO.unpack_from(reply.data)
    sent_at = pending.pop(rseq, None) if type_ == reply_type else None
    if sent_at is None:
        return None
    rtt = (time.perf_counter() - sent_at) * 1000
    rtts.append(rtt)
    return f"{len(reply.data)} bytes from {reply.addr.addr}: icmp_seq={rseq} ttl={reply.ttl} time={rtt:.2f} ms"


# traceroute(8)'s marks for an ICMP error that is neither a router's "time exceeded" nor the
# destination's "port unreachable" (what the socket layer says of it: services/socket/server.py)
_TRACE_MARKS = {"network unreachable": "!N", "host unreachable": "!H", "protocol unreachable": "!P"}


def _trace_mark(what: str, err: int) -> str:
    if what.startswith("fragmentation needed"):
        return "!F-" + what.rpartition("mtu ")[2].rstrip(")")
    return _TRACE_MARKS.get(what, f"!<{err}>")
TRACEROUTE_PORT = 33434  # traceroute's default base port: no service listens there


def traceroute(api: SocketApi, dest: str, *, first_ttl: int = 1, max_ttl: int = 30, queries: int = 3,
               wait: float = 5.0, port: int = TRACEROUTE_PORT, size: int = 60,
               out: Callable[[str], None] = print) -> bool:
    """traceroute -n DEST: UDP probes (to port+n, one at a time) with TTL 1, 2, ... and
    IP_RECVERR on, as traceroute(8)'s default method: each router on the way answers
    "time to live exceeded", the destination "port unreachable", which ends it. A hop
    prints its address, then each probe's round trip or `*` if nothing came within `wait`
    seconds, and traceroute's mark for another error (!N, !H, !P, !F-mtu), after which it
    stops when (nearly) every probe of the hop had one. Returns whether the destination
    answered."""
    out(f"traceroute to {dest} ({dest}), {max_ttl} hops max, {size} byte packets")
    payload = bytes(max(0, size - 28))
    probe = 0
    with api.socket() as sock:
        sock.setsockopt(IPPROTO_IP, IP_RECVERR, 1)
        for ttl in range(first_ttl, max_ttl + 1):
            sock.setsockopt(IPPROTO_IP, IP_TTL, ttl)
            line, last, reached, unreachable = f"{ttl:2d} ", None, False, 0
            for _ in range(queries):
                t0 = time.perf_counter()
                sock.sendto(payload, (dest, port + probe))
                probe += 1
                try:
                    sock.recvfrom(65535, timeout=wait)  # an answer to a UDP probe: nothing to mark
                    continue
                except TimeoutError:
                    line += " *"
                    continue
                except OSError as exc:
                    rtt, err = (time.perf_counter() - t0) * 1000, exc.errno
                    src, what = _icmp_error(exc)
                if src != last:
                    line += f" {src or '?'}"
                    last = src
                line += f"  {rtt:.3f} ms"
                if err == errno.ECONNREFUSED:  # port unreachable: the destination itself
                    reached = True
                elif not what.startswith("time to live"):
                    line += " " + _trace_mark(what, err)
                    unreachable += 1
            out(line)
            if reached or last == dest:
                return True
            if unreachable and unreachable >= queries - 1:  # traceroute's rule: no way on from here
                return False
    return False


HOST_COLUMN = 52  # iputils tracepath's HOST_COLUMN_SIZE
TRACEPATH_PORT = 44444


def tracepath(api: SocketApi, dest: str, *, mtu: int = 1500, max_hops: int = 30, wait: float = 2.0,
              port: int = TRACEPATH_PORT, out: Callable[[str], None] = print) -> bool:
    """tracepath -n DEST: UDP probes as big as the path MTU allows, Don't Fragment set
    (IP_PMTUDISC_DO), with rising TTL and IP_RECVERR on, as iputils' tracepath: a router's
    "fragmentation needed" lowers the path MTU and the same hop is probed again, "time
    exceeded" names a hop, the destination's "port unreachable" ends it; then the resume
    line (no "back": the TTL an ICMP error arrived with is not reported here). Returns
    whether the destination answered."""
    out(f"{1:2d}?: {'[LOCALHOST]':<32} pmtu {mtu}")
    hops, reached = 0, False
    with api.socket() as sock:
        sock.setsockopt(IPPROTO_IP, IP_RECVERR, 1)
        sock.setsockopt(IPPROTO_IP, IP_MTU_DISCOVER, PMTUDISC["do"])
        ttl = 1
        while ttl <= max_hops and not reached:
            sock.setsockopt(IPPROTO_IP, IP_TTL, ttl)
            t0 = time.perf_counter()
            try:
                sock.sendto(bytes(mtu - 28), (dest, port + ttl))
                sock.recvfrom(65535, timeout=wait)
                line = f"{ttl:2d}:  {dest:<{HOST_COLUMN}}"  # an answer to a probe: the destination itself
                reached = True
            except TimeoutError:
                out(f"{ttl:2d}:  no reply")
                ttl += 1
                continue
            except OSError as exc:
                rtt = (time.perf_counter() - t0) * 1000
                src, what = _icmp_error(exc)
                if exc.errno == errno.EMSGSIZE and "mtu " in what:
                    mtu = int(what.rpartition("mtu ")[2].rstrip(")"))
                    out(f"{ttl:2d}:  {src:<{HOST_COLUMN}}{rtt:7.3f}ms pmtu {mtu}")
                    continue  # the same hop again, with probes that fit
                if exc.errno == errno.EMSGSIZE:
                    out(f"{ttl:2d}:  send failed: the path MTU is below {mtu} and was not said")
                    break
                line = f"{ttl:2d}:  {src:<{HOST_COLUMN}}{rtt:7.3f}ms"
                if exc.errno == errno.ECONNREFUSED:
                    line += " reached"
                    reached = True
                elif not what.startswith("time to live"):
                    line += " " + _trace_mark(what, exc.errno)
                    out(line)
                    break
            else:
                line += f"{(time.perf_counter() - t0) * 1000:7.3f}ms reached"
            out(line)
            hops = ttl
            ttl += 1
    out(f"     Resume: pmtu {mtu}" + (f" hops {hops}" if reached else ""))
    return reached


def send(api: SocketApi, dest: str, port: int, *, count: int = 1, size: int = 64, data: bytes | None = None,
         sport: int = 0, interval: float = 0.0, family: int | None = None, out: Callable[[str], None] = print) -> int:
    """Send COUNT UDP datagrams of SIZE bytes (or DATA) to DEST:PORT over a connected socket,
    as `nc -u` does: the route picks the source address (getsockname says which), and a
    port unreachable comes back as ECONNREFUSED on a later send. An IPv6 DEST (or -6) sends
    from an AF_INET6 socket. Returns how many went."""
    body = data if data is not None else bytes(i % 256 for i in range(size))
    sent = 0
    family = family_of(dest, family)
    with api.socket(family=family) as sock:
        if sport:
            sock.bind(("::" if family == AF_INET6 else "0.0.0.0", sport))
        sock.connect((dest, port))
        for i in range(count):
            if i and interval:
                time.sleep(interval)
            try:
                sock.send(body)
            except OSError as exc:
                out(f"send: {exc.strerror}")
                continue
            sent += 1
        addr, bound = sock.getsockname()[:2]
        if family == AF_INET6:  # as nc and ss write an IPv6 address with a port
            out(f"sent {sent} datagram(s) of {len(body)} bytes from [{addr}]:{bound} to [{dest}]:{port}")
        else:
            out(f"sent {sent} datagram(s) of {len(body)} bytes from {addr}:{bound} to {dest}:{port}")
    return sent


def recv(api: SocketApi, port: int, *, count: int = 1, timeout: float = 10.0,
         family: int = AF_INET) -> Iterator[tuple[bytes, tuple]]:
    """Bind PORT and yield up to COUNT datagrams as (data, (addr, port)); stops at the timeout.
    AF_INET6: bound to [::] (dual-stack: an IPv4 sender shows as ::ffff:a.b.c.d)."""
    with api.socket(family=family) as sock:
        sock.bind(("::" if family == AF_INET6 else "0.0.0.0", port))
        for _ in range(count):
            try:
                data, addr = sock.recvfrom(65535, timeout=timeout)
                yield data, addr[:2]
            except TimeoutError:
                return





class HostView:
    """What `netstat -s`, `ethtool` and /proc/net/dev show of one host, gathered from its layer
    services (`ip`'s: pktpath.tools.iproute, `ss`'s: pktpath.tools.ss, `iptables`': pktpath.tools.iptables)."""

    LAYERS = ("nic", "softirq", "l2", "l3", "l4", "socket")

    def __init__(self, addrs, host: str) -> None:
        from pktpath.rpc import l2_pb2_grpc, l3_pb2_grpc, l4_pb2_grpc, nic_pb2_grpc, socket_pb2_grpc, softirq_pb2_grpc

        self.host = host
        self._channels = {layer: addrs.channel(host, layer) for layer in self.LAYERS}
        stubs = (nic_pb2_grpc.NicStub, softirq_pb2_grpc.SoftirqStub, l2_pb2_grpc.L2Stub, l3_pb2_grpc.L3Stub,
                 l4_pb2_grpc.L4Stub, socket_pb2_grpc.SocketStub)
        self.stub = {layer: cls(self._channels[layer]) for layer, cls in zip(self.LAYERS, stubs)}

    def layer_counters(self) -> dict[str, dict[str, dict[str, int]]]:
        """layer -> its counter groups."""
        from google.protobuf import empty_pb2

        replies = {layer: self.stub[layer].GetCounters(empty_pb2.Empty(), timeout=5) for layer in self.LAYERS}
        return {layer: {g.name: dict(g.values) for g in reply.groups} for layer, reply in replies.items()}

    def counters(self) -> dict[str, dict[str, int]]:
        """Every layer's counter groups, summed by name (Udp: L4 counts NoPorts, the socket
        layer InDatagrams, as the kernel's udp.c and its socket code do)."""
        groups: dict[str, dict[str, int]] = {}
        for layer_groups in self.layer_counters().values():
            for name, values in layer_groups.items():
                group = groups.setdefault(name, {})
                for k, v in values.items():
                    group[k] = group.get(k, 0) + v
        return groups

    NETSTAT_GROUPS = ("Ip", "Icmp", "IcmpMsg", "Tcp", "Udp", "TcpExt", "IpExt", "Drops")

    def netstat(self, groups=NETSTAT_GROUPS) -> list[str]:
        """netstat -s, in net-tools' words: the kernel's groups as the kernel orders them, then
        pktpath's own (Drops by reason) as netstat prints a group it has no prose for."""
        from pktpath.tools.netstat import KERNEL_ORDER, netstat_s

        counters = self.counters()  # the kernel's groups are there from boot, zeros and all
        return netstat_s({name: counters.get(name, {}) for name in groups if name in KERNEL_ORDER or name in counters})

    def dev_stats(self, devs) -> dict[str, dict[str, int]]:
        """/proc/net/dev's counters by interface, with NetDevStats' field names."""
        from pktpath.pb import nic_pb2

        stats = {dev: self.stub["nic"].GetStats(nic_pb2.DevRequest(dev=dev), timeout=5) for dev in devs}
        return {dev: {f.name: getattr(st, f.name) for f in st.DESCRIPTOR.fields if f.name != "dev"}
                for dev, st in stats.items()}

    def dev(self, devs) -> list[str]:
        """/proc/net/dev's counters, one line per interface."""
        from pktpath.pb import nic_pb2

        lines = []
        for dev in devs:
            st = self.stub["nic"].GetStats(nic_pb2.DevRequest(dev=dev), timeout=5)
            lines.append(f"{dev}: rx {st.rx_packets} packets {st.rx_bytes} bytes, drop {st.rx_dropped}, "
                         f"missed {st.rx_missed_errors} | tx {st.tx_packets} packets {st.tx_bytes} bytes, "
                         f"drop {st.tx_dropped}")
        return lines

    def ethtool_stats(self, dev: str) -> list[str]:
        """ethtool -S DEV: the driver's statistics, one `name: value` a line."""
        from pktpath.pb import nic_pb2

        st = self.stub["nic"].GetStats(nic_pb2.DevRequest(dev=dev), timeout=5)
        return ["NIC statistics:"] + [f"     {f.name}: {getattr(st, f.name)}" for f in st.DESCRIPTOR.fields
                                      if f.name != "dev"]

    def ethtool_ring(self, dev: str) -> list[str]:
        """ethtool -g DEV: the RX/TX descriptor rings' sizes."""
        from pktpath.pb import nic_pb2

        r = self.stub["nic"].GetRingParam(nic_pb2.DevRequest(dev=dev), timeout=5)
        return [f"Ring parameters for {dev}:", "Pre-set maximums:", f"RX:\t\t\t{r.rx_max_pending}",
                f"TX:\t\t\t{r.tx_max_pending}", "Current hardware settings:", f"RX:\t\t\t{r.rx_pending}",
                f"TX:\t\t\t{r.tx_pending}"]

    def close(self) -> None:
        for ch in self._channels.values():
            ch.close()
