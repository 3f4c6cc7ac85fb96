"""What layers tell each other about a flow. Flowi4: what the send path tells the next
layer down about a packet, struct flowi4 plus the ipcm_cookie bits (TTL, TOS,
path-MTU discovery mode) a socket chose. TcpChild: a connection L4 established for
a listener, which the socket layer's accept() will hand out.

The kernel passes these as arguments (udp_sendmsg → ip_make_skb(fl4, ipc)); a
pktpath hop carries them in the skb's control buffer, skb->cb, whose role in
the kernel is exactly this kind of per-layer scratch.
"""

import struct
from typing import NamedTuple

# IP_MTU_DISCOVER values (include/uapi/linux/in.h)
IP_PMTUDISC_DONT = 0   # never set DF
IP_PMTUDISC_WANT = 1   # the default: DF when the packet fits the path MTU, else fragment
IP_PMTUDISC_DO = 2     # always DF; a send over the path MTU fails with EMSGSIZE
IP_PMTUDISC_PROBE = 3  # DF, ignore the path MTU

_FLOW = struct.Struct("!IIHHBBBB")


class Flowi4(NamedTuple):
    daddr: int
    saddr: int = 0      # 0: the route's preferred source
    dport: int = 0
    sport: int = 0
    protocol: int = 0
    ttl: int = 0        # 0: the default TTL (64)
    tos: int = 0
    pmtudisc: int = IP_PMTUDISC_WANT

    def pack(self) -> bytes:
        return _FLOW.pack(*self)

    @classmethod
    def unpack(cls, cb: bytes) -> "Flowi4":
        """Raises ValueError when cb does not hold a flow (a malformed message)."""
        if len(cb) != _FLOW.size:
            raise ValueError(f"skb->cb holds {len(cb)} bytes, not a flowi4")
        return cls(*_FLOW.unpack(cb))


_FLOW6 = struct.Struct("!16sHhBIIBBB16s")


class Flowi6(NamedTuple):
    """What an AF_INET6 datagram socket's sendmsg tells L4 in skb->cb: the sockaddr_in6 (the
    destination as a 128-bit int, an IPv4 one as ::ffff:a.b.c.d) and the ipcm6_cookie bits the
    socket chose; the IPv4 ones (IP_TTL, IP_MTU_DISCOVER) for a v4-mapped destination, which
    udpv6_sendmsg hands to udp_sendmsg. TCP's segments carry one to L3 too (inet6_csk_xmit's
    flowi6): saddr the connection's, tclass its ECN field. (L3's flow, services/l3/ipv6.py
    Flowi6, names the output device instead of an interface index.)"""
    daddr: int
    dport: int = 0
    hop_limit: int = -1  # IPV6_UNICAST_HOPS; -1: the route's (64)
    tclass: int = 0
    flowlabel: int = 0
    scope_id: int = 0    # sin6_scope_id: the interface of a link-local destination (0: none)
    pmtudisc: int = IP_PMTUDISC_WANT  # IPV6_MTU_DISCOVER (the same values, IPV6_PMTUDISC_*)
    ttl: int = 0         # IP_TTL for an IPv4 destination; 0: the default (64)
    pmtudisc4: int = IP_PMTUDISC_WANT  # IP_MTU_DISCOVER for an IPv4 destination
    saddr: int = 0       # the source (a TCP connection's own); 0: the route's choice

    def pack(self) -> bytes:
        return _FLOW6.pack(self.daddr.to_bytes(16, "big"), *self[1:-1], self.saddr.to_bytes(16, "big"))

    @classmethod
    def unpack(cls, cb: bytes) -> "Flowi6":
        """Raises ValueError when cb does not hold one (a malformed message, or a flowi4)."""
        if len(cb) != _FLOW6.size:
            raise ValueError(f"skb->cb holds {len(cb)} bytes, not a flowi6")
        daddr, *rest, saddr = _FLOW6.unpack(cb)
        return cls(int.from_bytes(daddr, "big"), *rest, int.from_bytes(saddr, "big"))


class TcpChild(NamedTuple):
    """A connection a listener accepted (inet_csk_accept's child), as L4 tells the socket layer:
    an AF_INET6 listener's child has 128-bit addresses (an IPv4 peer's ::ffff:a.b.c.d)."""
    sk: int
    saddr: int
    sport: int
    daddr: int
    dport: int
    mss: int
    family: int = 2  # AF_INET; AF_INET6 (10)
