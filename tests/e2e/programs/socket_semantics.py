"""How the socket module behaves, one line per case: socket_semantics.py OWN_ADDRESS.

Run on the machine's own stack (OWN_ADDRESS 127.0.0.1) and, unchanged, under `pktpath
run` on a host (its own address): the two outputs must be the same. Each case talks to
itself (a listener and a client in this one program), so no peer is needed. Values that
differ by nature (ports, addresses) are printed as relations, not as themselves."""

import errno
import select
import selectors
import socket
import sys
import threading

ADDR = sys.argv[1]
PORT = 7400


def case(name):
    def run(fn):
        try:
            result = fn()
        except Exception as exc:  # noqa: BLE001 — the exception is the result
            result = f"{type(exc).__name__} {errno.errorcode.get(getattr(exc, 'errno', None) or 0, '')} {exc.args[-1]}"
        print(f"{name}: {result}", flush=True)
    return run


def pair(port: int):
    srv = socket.create_server((ADDR, port))
    cli = socket.create_connection((ADDR, port), timeout=10)
    conn, _ = srv.accept()
    srv.close()
    return cli, conn


@case("udp recv on a non-blocking socket")
def _():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((ADDR, 0))
    s.setblocking(False)
    return s.recv(10)


@case("udp recv with a timeout")
def _():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((ADDR, 0))
    s.settimeout(0.2)
    return (s.gettimeout(), s.getblocking(), s.recv(10))


@case("udp to itself, then select and recvfrom")
def _():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((ADDR, PORT))
    before = select.select([s], [], [], 0)[0] == []
    s.sendto(b"hello", (ADDR, PORT))
    readable = select.select([s], [], [], 5)[0] == [s]  # however long the datagram takes to come round
    writable = select.select([], [s], [], 0)[1] == [s]
    data, peer = s.recvfrom(100)
    return before, readable, writable, data, peer == s.getsockname()


@case("bind a port twice")
def _():
    a, b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM), socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    a.bind((ADDR, PORT + 1))
    b.bind((ADDR, PORT + 1))


@case("connect to a closed port")
def _():
    socket.create_connection((ADDR, PORT + 2), timeout=5)


@case("connect_ex to a closed port")
def _():
    with socket.socket() as s:
        return errno.errorcode[s.connect_ex((ADDR, PORT + 2))]


@case("names of both ends")
def _():
    cli, conn = pair(PORT + 3)
    return (cli.getpeername() == conn.getsockname(), conn.getpeername() == cli.getsockname(),
            cli.getpeername()[1], cli.type == socket.SOCK_STREAM, cli.proto, cli.family == socket.AF_INET,
            cli.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE), cli.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR))


@case("sendall 300 kB, shutdown, read to the end")
def _():
    cli, conn = pair(PORT + 4)
    data = bytes(range(256)) * 1200
    sender = threading.Thread(target=lambda: (cli.sendall(data), cli.shutdown(socket.SHUT_WR)))
    sender.start()
    got = bytearray()
    while chunk := conn.recv(65536):
        got += chunk
    sender.join()
    return len(got), bytes(got) == data, conn.recv(10)


@case("makefile lines both ways")
def _():
    cli, conn = pair(PORT + 5)
    w, r = cli.makefile("w"), conn.makefile("r")
    w.write("first line\nsecond line\n")
    w.flush()
    lines = [r.readline(), r.readline()]
    w.close()
    cli.close()
    return lines, r.readline(), r.read()


@case("a non-blocking connect, then writable")
def _():
    srv = socket.create_server((ADDR, PORT + 6))
    s = socket.socket()
    s.setblocking(False)
    try:
        s.connect((ADDR, PORT + 6))
        started = "connected at once"
    except BlockingIOError as exc:
        started = errno.errorcode[exc.errno]
    with selectors.DefaultSelector() as sel:
        sel.register(s, selectors.EVENT_WRITE)
        writable = bool(sel.select(5))
    return started, writable, s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR), srv.accept()[1][0] == ADDR


@case("recv after the peer closed")
def _():
    cli, conn = pair(PORT + 7)
    conn.close()
    return cli.recv(10), cli.recv(10)


@case("poll of a fresh, a listening and a connected socket")
def _():
    fresh, srv = socket.socket(), socket.create_server((ADDR, PORT + 8))
    cli = socket.create_connection((ADDR, PORT + 8), timeout=5)
    p = select.poll()
    for s in (fresh, srv, cli):
        p.register(s, select.POLLIN | select.POLLOUT)
    ready = dict(p.poll(5000))
    return [ready.get(s.fileno(), 0) for s in (fresh, srv, cli)]


@case("accept with a timeout and nothing coming")
def _():
    srv = socket.create_server((ADDR, PORT + 9))
    srv.settimeout(0.2)
    srv.accept()


@case("send on a socket shut for writing")
def _():
    cli, conn = pair(PORT + 10)
    cli.shutdown(socket.SHUT_WR)
    cli.send(b"x")


@case("a closed socket")
def _():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.close()
    return s.fileno(), repr(s).startswith("<") and "closed" in repr(s)
