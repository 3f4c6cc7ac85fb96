"""The Linux kernel's side of the kernel-peer tests: plain sockets, run inside the test's
network namespace (`ip netns exec NS python kernel_peer.py ...`), the standard library only.
Each command prints `ready` once it listens, then one JSON line with what it saw."""

import hashlib
import json
import socket
import sys


def pattern(n: int) -> bytes:
    return bytes(i % 251 for i in range(n))


def read_all(sock: socket.socket) -> bytes:
    got = bytearray()
    while chunk := sock.recv(1 << 16):
        got += chunk
    return bytes(got)


def udp_echo(addr: str, port: int, count: int) -> dict:
    """Send each datagram back where it came from (over IPv6 for an IPv6 address)."""
    with socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((addr, port))
        s.settimeout(30)
        print("ready", flush=True)
        sizes = []
        for _ in range(count):
            data, peer = s.recvfrom(65535)
            s.sendto(data, peer)
            sizes.append(len(data))
        return {"sizes": sizes}


def tcp_client(dst: str, port: int, nbytes: int) -> dict:
    """Connect, send nbytes, half-close, read until the peer closes."""
    data = pattern(nbytes)
    with socket.create_connection((dst, port), timeout=60) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        got = read_all(s)
    return {"sent": hashlib.sha256(data).hexdigest(), "got": hashlib.sha256(got).hexdigest(), "got_len": len(got)}


def tcp_server(addr: str, port: int, nbytes: int) -> dict:
    """Accept one connection, read until its half-close, answer nbytes, close."""
    with socket.create_server((addr, port), family=socket.AF_INET6 if ":" in addr else socket.AF_INET) as srv:
        srv.settimeout(60)
        print("ready", flush=True)
        conn, peer = srv.accept()
        with conn:
            conn.settimeout(60)
            got = read_all(conn)
            conn.sendall(pattern(nbytes))
    return {"peer": list(peer), "got": hashlib.sha256(got).hexdigest(), "got_len": len(got)}


def udp_send(dst: str, port: int, size: int) -> dict:
    """Send one datagram of `size` pattern bytes to dst:port from an ephemeral port, and wait for
    it to come back (the pktpath side echoes it)."""
    data = pattern(size)
    with socket.socket(socket.AF_INET6 if ":" in dst else socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(30)
        s.sendto(data, (dst, port))
        got, peer = s.recvfrom(65535)
    return {"same": got == data, "len": len(got), "peer": list(peer[:2])}


COMMANDS = {"udp-echo": udp_echo, "udp-send": udp_send, "tcp-client": tcp_client, "tcp-server": tcp_server}

if __name__ == "__main__":
    command, addr, port, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    print(json.dumps(COMMANDS[command](addr, port, n)), flush=True)
