"""`pktpath sysctl`: a host's net.ipv4 sysctls, as sysctl(8) reads and writes them.

`sysctl NAME` prints `NAME = VALUE`; `-w NAME=VALUE` (or NAME=VALUE alone) sets it on every
layer that keeps it (pktpath.sysctl) and prints what it is now; `-a` every one pktpath has.
"""

from pktpath.pb import skbuff_pb2
from pktpath.sysctl import KNOBS, SysctlError, knob


def run(view, words: list[str], *, show_all: bool = False, write: bool = False) -> list[str]:
    """The lines sysctl prints; SysctlError for a name or value a layer refuses (its text)."""
    import grpc

    names = sorted(KNOBS) if show_all else words
    lines = []
    for word in names:
        name, eq, value = word.partition("=")
        if write and not eq:
            raise SysctlError("EINVAL", f'"{word}" must be of the form name=value')
        k = knob(name)
        request = skbuff_pb2.SysctlValue(name=k.name, value=value.strip() if eq else "")
        try:
            replies = [view.stub[layer].Sysctl(request, timeout=5) for layer in k.layers]
        except grpc.RpcError as exc:
            if exc.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT,
                              grpc.StatusCode.UNIMPLEMENTED):
                raise SysctlError(exc.code().name, exc.details()) from None
            raise
        lines.append(f"{k.name} = {replies[0].value}")
    return lines
