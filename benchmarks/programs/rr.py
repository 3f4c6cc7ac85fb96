"""Request/response with the socket module alone, as netperf's UDP_RR and TCP_RR: one byte
each way, one transaction at a time. The same program runs on the kernel's loopback and,
unchanged, under `pktpath run`.

    rr.py udp-server PORT | tcp-server PORT      answer every byte, until killed
    rr.py udp-client HOST PORT SECONDS           prints: transactions seconds
    rr.py tcp-client HOST PORT SECONDS
"""

import socket
import sys
import time


def udp_server(port: int) -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", port))
    print("ready", flush=True)
    while True:
        data, peer = s.recvfrom(64)
        s.sendto(data, peer)


def tcp_server(port: int) -> None:
    srv = socket.create_server(("0.0.0.0", port))
    print("ready", flush=True)
    while True:
        conn, _ = srv.accept()
        with conn:
            while data := conn.recv(64):
                conn.sendall(data)


def client(kind: str, host: str, port: int, seconds: float) -> None:
    if kind == "udp":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.connect((host, port))
    else:
        s = socket.create_connection((host, port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.settimeout(10)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        s.send(b"x")
        if s.recv(64) != b"x":
            raise SystemExit("a wrong answer")
        n += 1
    print(n, time.perf_counter() - t0, flush=True)


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode.endswith("server"):
        (udp_server if mode == "udp-server" else tcp_server)(int(sys.argv[2]))
    else:
        client(mode.split("-")[0], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
