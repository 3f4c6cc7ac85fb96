"""The two ways bytes can fail to be a packet, shared by every wire module.

IntegrityError: the bytes are not well formed -- too short, a length field that
disagrees with the buffer, a checksum that does not verify.
SanityError: the bytes are well formed but mean something forbidden or
unsupported -- an IHL below 5, a TCP data offset below 5, port 0 as a
destination, an ARP for a hardware type other than Ethernet.

Both carry the protocol and field, so a layer can map them to a drop reason.
No parser raises anything else, whatever bytes it is given.
"""


class WireError(ValueError):
    def __init__(self, proto: str, field: str, message: str) -> None:
        super().__init__(f"{proto}: {field}: {message}")
        self.proto = proto
        self.field = field


class IntegrityError(WireError):
    """Bounds, lengths or checksum: the bytes are damaged or cut short."""


class TruncatedError(IntegrityError):
    """The buffer ends before the header (or the length it declares) does."""


class ChecksumError(IntegrityError):
    """A checksum does not verify."""


class SanityError(WireError):
    """Well-formed bytes whose meaning is forbidden or unsupported."""


def need(proto: str, field: str, have: int, want: int) -> None:
    """Raise TruncatedError unless `have` bytes cover the `want` needed."""
    if have < want:
        raise TruncatedError(proto, field, f"need {want} bytes, have {have}")
