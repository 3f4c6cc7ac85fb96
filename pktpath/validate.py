"""What a request may hold, checked where it enters a service.

Each check returns the value in the form the service uses, or raises Invalid, whose
message names the field and shows at most a few dozen characters of what was given:
an error never echoes a large input back (gRPC caps a status's metadata at 8 kB).
`@checked` turns Invalid into INVALID_ARGUMENT for a gRPC handler, with no traceback
logged: bad input is the caller's mistake, not the service's fault.
"""

import ipaddress
import math


from pktpath.wire.addr import ip6_from_str, ip_from_str
from pktpath.wire.errors import SanityError

SHOWN = 48  # characters of a bad value an error shows


class Invalid(ValueError):
    """A request field no caller may send."""


def shown(value) -> str:
    """The value as an error may show it: printable ASCII (gRPC metadata takes nothing else), short."""
    text = ascii(value)
    return text if len(text) <= SHOWN else text[:SHOWN] + f"... ({len(text)} characters)"


def integer(value: int, field: str, lo: int = 0, hi: int = 0xFFFFFFFF) -> int:
    if not lo <= value <= hi:
        raise Invalid(f"{field} {value} is not in {lo}..{hi}")
    return value


def port(value: int, field: str = "port") -> int:
    return integer(value, field, 0, 0xFFFF)


def ipv4(text: str, field: str = "address", *, empty: int | None = 0) -> int:
    """A dotted quad as the integer the layers use; "" is `empty` (None: not allowed)."""
    if not text and empty is not None:
        return empty
    try:
        return ip_from_str(text)
    except SanityError:
        raise Invalid(f"{field} {shown(text)} is not an IPv4 address") from None


def ipv6(text: str, field: str = "address", *, empty: int | None = 0) -> int:
    """An IPv6 address (inet_pton's text, ::ffff:a.b.c.d included) as the 128-bit integer the
    layers use; "" is `empty` (None: not allowed)."""
    if not text and empty is not None:
        return empty
    try:
        return ip6_from_str(text)
    except SanityError:
        raise Invalid(f"{field} {shown(text)} is not an IPv6 address") from None


def prefix(text: str, field: str = "prefix") -> tuple[int, int]:
    """"10.0.0.0/24" as (network, length); "" is any (0, 0)."""
    if not text:
        return 0, 0
    if not text.isascii() or not text.isprintable() or len(text) > 18:
        raise Invalid(f"{field} {shown(text)} is not an IPv4 prefix")
    try:
        net = ipaddress.IPv4Network(text)
    except ValueError as exc:
        raise Invalid(f"{field} {shown(text)}: {exc}") from None
    return int(net.network_address), net.prefixlen


def enum(value: int, enum_type, field: str, *, allowed=None) -> int:
    """A protobuf enum's value that this build knows (and, given `allowed`, one of those)."""
    names = dict(zip(enum_type.values(), enum_type.keys()))
    if value not in names or (allowed is not None and value not in allowed):
        choices = ", ".join(names[v] for v in (allowed if allowed is not None else names))
        raise Invalid(f"{field} {value} is not one of {choices}")
    return value


def finite(value: float, field: str, lo: float = 0.0, hi: float = math.inf) -> float:
    """A number that is one (no NaN, no infinity) between lo and hi."""
    if not math.isfinite(value) or not lo <= value <= hi:
        raise Invalid(f"{field} {value} must be a finite number from {lo:g} to {hi:g}")
    return value


def name(text: str, field: str, max_len: int = 64) -> str:
    """A short printable ASCII name (a host, a device, a function)."""
    if not text.isascii() or not text.isprintable() or len(text) > max_len:
        raise Invalid(f"{field} {shown(text)} must be printable ASCII of at most {max_len} characters")
    return text
