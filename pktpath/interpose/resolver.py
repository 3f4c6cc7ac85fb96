"""Name resolution for a program on a pktpath host: numeric addresses and the topology's hosts.

getaddrinfo, gethostbyname(_ex), gethostbyaddr as the socket module has them, over
the names a topology gives (host "B" is its first interface's IPv4 address and, when it
has one, its first global IPv6 address; every address names its host), as an /etc/hosts of
the topology would. Other names fail as an unknown name fails (gaierror EAI_NONAME,
herror): the program lives on the topology's network, where nothing else resolves.
getaddrinfo without a family gives a dual-stack host's IPv6 address before its IPv4 one,
as glibc's RFC 6724 sort does (::/0 precedes ::ffff:0:0/96), but the passive wildcards
0.0.0.0 before ::, which glibc does not sort; gethostbyname is IPv4's.
"""

import ipaddress
import socket as _socket

from pktpath.topology import Topology

_KINDS = ((_socket.SOCK_STREAM, _socket.IPPROTO_TCP), (_socket.SOCK_DGRAM, _socket.IPPROTO_UDP),
          (_socket.SOCK_RAW, 0))
_FAMILIES = (_socket.AF_INET6, _socket.AF_INET)  # getaddrinfo's order for AF_UNSPEC


class Resolver:
    def __init__(self, topology: Topology) -> None:
        self.by_name: dict[str, str] = {}
        self.by_name6: dict[str, str] = {}
        self.by_addr: dict[str, str] = {}
        for host in topology.hosts:
            addrs = [str(i.addr.ip) for i in host.interfaces]
            addrs6 = [str(a.ip) for i in host.interfaces for a in i.addr6 if not a.ip.is_link_local]
            if addrs:
                self.by_name[host.name.lower()] = addrs[0]
            if addrs6:
                self.by_name6[host.name.lower()] = addrs6[0]
            for addr in addrs + addrs6:
                self.by_addr.setdefault(addr, host.name)

    def address(self, host: str | bytes | None, passive: bool = False, family: int = _socket.AF_INET) -> str:
        """The numeric address of family for host: itself if numeric, a topology host's
        address, or gaierror (EAI_NONAME; EAI_ADDRFAMILY-like for the other family's literal)."""
        if isinstance(host, bytes):
            host = host.decode("idna")
        v6 = family == _socket.AF_INET6
        if host is None:
            return ("::" if v6 else "0.0.0.0") if passive else ("::1" if v6 else "127.0.0.1")
        if host in ("", "<any>"):
            return "::" if v6 else "0.0.0.0"
        if host == "<broadcast>" and not v6:
            return "255.255.255.255"
        try:
            literal = ipaddress.ip_address(host.split("%")[0])
        except ValueError:
            literal = None
        if literal is not None:
            if literal.version != (6 if v6 else 4):
                raise _socket.gaierror(_socket.EAI_ADDRFAMILY, "Address family for hostname not supported")
            return str(literal)
        if host.lower() == "localhost":
            return "::1" if v6 else "127.0.0.1"
        found = (self.by_name6 if v6 else self.by_name).get(host.lower().rstrip("."))
        if found is None:
            raise _socket.gaierror(_socket.EAI_NONAME, "Name or service not known")
        return found

    def sockaddr(self, host, port, family: int = _socket.AF_INET) -> tuple[str, int]:
        """An address as a socket call of family takes it: (numeric host, port)."""
        if not isinstance(port, int):
            raise TypeError(f"'{type(port).__name__}' object cannot be interpreted as an integer")
        if not 0 <= port <= 0xFFFF:
            raise OverflowError("getsockaddrarg: port must be 0-65535.")
        return self.address(host, family=family), port

    def getaddrinfo(self, host, port, family=0, type=0, proto=0, flags=0):
        if family not in (0, _socket.AF_UNSPEC, *_FAMILIES):
            raise _socket.gaierror(_socket.EAI_FAMILY, "ai_family not supported")
        passive = bool(flags & _socket.AI_PASSIVE)
        families = _FAMILIES
        if passive and host is None:  # glibc's wildcards come unsorted: 0.0.0.0 first
            families = families[::-1]
        found = []
        for fam in (families if family in (0, _socket.AF_UNSPEC) else (family,)):
            try:
                found.append((fam, self.address(host, passive=passive, family=fam)))
            except _socket.gaierror:
                if family not in (0, _socket.AF_UNSPEC):
                    raise
        if not found:
            raise _socket.gaierror(_socket.EAI_NONAME, "Name or service not known")
        if port is None:
            port = 0
        elif isinstance(port, (str, bytes)):
            port = port.decode() if isinstance(port, bytes) else port
            port = int(port) if port.isdigit() else _socket.getservbyname(port)
        canon = host if flags & _socket.AI_CANONNAME and isinstance(host, str) else ""
        kinds = [(kind, p) for kind, p in _KINDS if (not type or kind == type) and (not proto or p == proto)]
        return [(_socket.AddressFamily(fam), _socket.SocketKind(kind), p, canon,
                 (addr, port, 0, 0) if fam == _socket.AF_INET6 else (addr, port))
                for fam, addr in found for kind, p in kinds]

    def gethostbyname(self, name: str) -> str:
        return self.address(name)

    def gethostbyname_ex(self, name: str):
        addr = self.address(name)
        return self.by_addr.get(addr, name), [], [addr]

    def gethostbyaddr(self, ip: str):
        addr = self.address(ip, family=_socket.AF_INET6 if ":" in str(ip) else _socket.AF_INET)
        name = self.by_addr.get(addr)
        if name is None:
            raise _socket.herror(1, "Unknown host")
        return name, [], [addr]

    def install(self) -> None:
        for name in ("getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr"):
            setattr(_socket, name, getattr(self, name))
