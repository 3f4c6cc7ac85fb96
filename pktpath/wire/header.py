"""The base of every header type: an immutable named tuple compared by type and value.

Headers are NamedTuples, not frozen dataclasses: constructing a frozen dataclass
costs ~1 µs for an IPv4 header, a tuple ~0.1 µs, and parsing must stay two
orders of magnitude faster than scapy. Plain tuple equality would make
UdpHdr(1, 2, 3, 4) equal to any 4-tuple; @wire_header makes it type-strict.
"""


def wire_header(cls):
    def __eq__(self, other):
        return type(self) is type(other) and tuple.__eq__(self, other)

    def __ne__(self, other):
        return not __eq__(self, other)

    cls.__eq__ = __eq__
    cls.__ne__ = __ne__
    cls.__hash__ = tuple.__hash__
    return cls


# from_bytes passes every field in order, so it can skip the generated __new__'s
# argument handling: half the cost of building a header.
new_header = tuple.__new__
