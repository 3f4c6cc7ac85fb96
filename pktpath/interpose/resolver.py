"""Name resolution for a program on a pktpath host: numeric IPv4 and the topology's hosts.

getaddrinfo, gethostbyname(_ex), gethostbyaddr as the socket module has them, over
the names a topology gives (host "B" is its first interface's address; every
address names its host), as an /etc/hosts of the topology would. Other names
fail as an unknown name fails (gaierror EAI_NONAME, herror): the program lives
on the topology's network, where nothing else resolves. IPv4 only, as the host's
stack is: asking for AF_INET6 fails with EAI_FAMILY.
"""

import ipaddress
import socket as _socket

from pktpath.topology import Topology

_KINDS = ((_socket.SOCK_STREAM, _socket.IPPROTO_TCP), (_socket.SOCK_DGRAM, _socket.IPPROTO_UDP),
          (_socket.SOCK_RAW, 0))


class Resolver:
    def __init__(self, topology: Topology) -> None:
        self.by_name: dict[str, str] = {}
        self.by_addr: dict[str, str] = {}
        for host in topology.hosts:
            addrs = [str(i.addr.ip) for i in host.interfaces]
            if addrs:
                self.by_name[host.name.lower()] = addrs[0]
            for addr in addrs:
                self.by_addr.setdefault(addr, host.name)

    def address(self, host: str | bytes | None, passive: bool = False) -> str:
        """A dotted quad for host: itself if numeric, a topology host's address, or gaierror."""
        if isinstance(host, bytes):
            host = host.decode("idna")
        if host is None:
            return "0.0.0.0" if passive else "127.0.0.1"
        if host in ("", "<any>"):
            return "0.0.0.0"
        if host == "<broadcast>":
            return "255.255.255.255"
        try:
            return str(ipaddress.IPv4Address(host))
        except ValueError:
            pass
        if host.lower() == "localhost":
            return "127.0.0.1"
        found = self.by_name.get(host.lower().rstrip("."))
        if found is None:
            raise _socket.gaierror(_socket.EAI_NONAME, "Name or service not known")
        return found

    def sockaddr(self, host, port) -> tuple[str, int]:
        """An AF_INET address as a socket call takes it: (host, port)."""
        if not isinstance(port, int):
            raise TypeError(f"'{type(port).__name__}' object cannot be interpreted as an integer")
        if not 0 <= port <= 0xFFFF:
            raise OverflowError("getsockaddrarg: port must be 0-65535.")
        return self.address(host), port

    def getaddrinfo(self, host, port, family=0, type=0, proto=0, flags=0):
        if family not in (0, _socket.AF_UNSPEC, _socket.AF_INET):
            raise _socket.gaierror(_socket.EAI_FAMILY, "ai_family not supported")
        addr = self.address(host, passive=bool(flags & _socket.AI_PASSIVE))
        if port is None:
            port = 0
        elif isinstance(port, (str, bytes)):
            port = port.decode() if isinstance(port, bytes) else port
            port = int(port) if port.isdigit() else _socket.getservbyname(port)
        canon = host if flags & _socket.AI_CANONNAME and isinstance(host, str) else ""
        return [(_socket.AddressFamily.AF_INET, _socket.SocketKind(kind), p, canon, (addr, port))
                for kind, p in _KINDS if (not type or kind == type) and (not proto or p == proto)]

    def gethostbyname(self, name: str) -> str:
        return self.address(name)

    def gethostbyname_ex(self, name: str):
        addr = self.address(name)
        return self.by_addr.get(addr, name), [], [addr]

    def gethostbyaddr(self, ip: str):
        addr = self.address(ip)
        name = self.by_addr.get(addr)
        if name is None:
            raise _socket.herror(1, "Unknown host")
        return name, [], [addr]

    def install(self) -> None:
        for name in ("getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr"):
            setattr(_socket, name, getattr(self, name))
