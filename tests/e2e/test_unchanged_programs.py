"""Unchanged Python programs on pktpath hosts (`pktpath run --on HOST -- python ...`): the
standard library's http.server and urllib.request, asyncio's streams, a server killed with
-9 and started again on the same port."""

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest


from pktpath.client import SocketApi

pytestmark = pytest.mark.slow
PROGRAMS = Path(__file__).parent / "programs"
PKTPATH = str(Path(sys.executable).parent / "pktpath")


def pktpath_run(sup, host: str, *command: str, topology: str = "default", **kw) -> subprocess.Popen:
    return subprocess.Popen([PKTPATH, "run", "--on", host, "--topology", topology, "--base-port", str(sup.base_port),
                             "--", *command], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"}, **kw)


def started(proc: subprocess.Popen, word: str) -> str:
    line = proc.stdout.readline()
    if word not in line:
        proc.kill()
        raise AssertionError(f"{line!r}: {proc.stderr.read()}")
    return line


def finished(proc: subprocess.Popen, timeout: float = 60) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    return out


@pytest.fixture(scope="module")
def web_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("www")
    (root / "blob.bin").write_bytes(os.urandom(1_000_000))
    return root


def test_urllib_on_a_fetches_a_file_from_http_server_on_b_byte_exact(default_topology, web_root):
    sup = default_topology
    server = pktpath_run(sup, "B", "python", "-m", "http.server", "8000", "--directory", str(web_root))
    try:
        started(server, "Serving HTTP on 0.0.0.0 port 8000")
        kernel = subprocess.run(["ss", "-Hltn", "sport = :8000"], capture_output=True, text=True, check=True).stdout
        assert kernel == "", "it listens on this machine's own stack"
        fetch = pktpath_run(sup, "A", "python", "-c", (
            "import hashlib, urllib.request\n"
            "body = urllib.request.urlopen('http://B:8000/blob.bin', timeout=30).read()\n"
            "print(len(body), hashlib.sha256(body).hexdigest())\n"))
        assert finished(fetch).split() == ["1000000", hashlib.sha256((web_root / "blob.bin").read_bytes()).hexdigest()]
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(10)
    assert '"GET /blob.bin HTTP/1.1" 200' in server.stderr.read()  # its log names A as the client


UDP6_SERVER = """
import socket
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.bind(("::", 9100))
print("ready", flush=True)
data, peer = s.recvfrom(2048)
s.sendto(data.upper(), peer)
print(peer[0], data.decode())
"""

UDP6_CLIENT = """
import socket
family, kind, proto, _, addr = socket.getaddrinfo("B", 9100, type=socket.SOCK_DGRAM)[0]
s = socket.socket(family, kind, proto)
s.settimeout(1)
for _ in range(10):  # B's address may still be tentative (DAD) on a topology just started
    s.sendto(b"over ipv6", addr)
    try:
        print(family.name, addr[0], s.recv(2048).decode())
        break
    except TimeoutError:
        pass
"""


def test_an_unchanged_program_talks_udp_over_ipv6_to_a_topology_host_by_name(default_topology):
    """getaddrinfo gives B's IPv6 address first, as glibc's sort does; the sockets are AF_INET6."""
    sup = default_topology
    server = pktpath_run(sup, "B", "python", "-c", UDP6_SERVER)
    try:
        started(server, "ready")
        client = pktpath_run(sup, "A", "python", "-c", UDP6_CLIENT)
        assert finished(client).split() == ["AF_INET6", "2001:db8::2", "OVER", "IPV6"]
        assert finished(server).split() == ["2001:db8::1", "over", "ipv6"]
    finally:
        server.kill()
        server.wait()


def test_an_asyncio_echo_server_and_client_one_per_host(default_topology):
    sup = default_topology
    server = pktpath_run(sup, "B", "python", str(PROGRAMS / "asyncio_echo_server.py"), "9000")
    try:
        assert started(server, "serving").split() == ["serving", "0.0.0.0", "9000"]
        client = pktpath_run(sup, "A", "python", str(PROGRAMS / "asyncio_echo_client.py"), "10.0.0.2", "9000",
                             "300000")
        assert finished(client).split() == ["300000", "True", "10.0.0.2", "9000"]
    finally:
        server.kill()
        server.wait()


def test_a_server_killed_with_9_frees_its_port_and_its_peer_sees_the_fin(default_topology):
    """The kernel closes a killed process's connection with a FIN (nothing unread); the
    port is free at once, so the program starts again on it."""
    sup = default_topology
    server = pktpath_run(sup, "B", "python", str(PROGRAMS / "asyncio_echo_server.py"), "9001")
    with SocketApi(sup.addrs.target("A", "socket")) as a:
        conn = a.socket(1)
        try:
            started(server, "serving")
            conn.connect(("10.0.0.2", 9001), timeout=10)
            conn.sendall(b"ping")
            assert conn.recv(timeout=10) == b"ping"
            server.send_signal(signal.SIGKILL)
            server.wait(10)
            assert conn.recv(timeout=10) == b""  # the FIN
            again = pktpath_run(sup, "B", "python", str(PROGRAMS / "asyncio_echo_server.py"), "9001")
            try:
                started(again, "serving")
                with a.socket(1) as second:
                    second.connect(("10.0.0.2", 9001), timeout=10)
                    second.sendall(b"again")
                    assert second.recv(timeout=10) == b"again"
            finally:
                again.kill()
                again.wait()
        finally:
            server.kill()
            conn.close()


def test_the_socket_module_behaves_on_pktpath_as_on_linux(default_topology):
    """Fifteen cases (errors, timeouts, non-blocking calls, select/poll/selectors, makefile,
    shutdown, names), the same program on this machine's stack and on host B: the same lines."""
    program = str(PROGRAMS / "socket_semantics.py")
    linux = subprocess.run([sys.executable, program, "127.0.0.1"], capture_output=True, text=True, timeout=120)
    assert linux.returncode == 0, linux.stderr
    ours = pktpath_run(default_topology, "B", "python", program, "10.0.0.2")
    lines = finished(ours, timeout=120).splitlines()
    assert len(lines) == 15
    for got, expected in zip(lines, linux.stdout.splitlines()):
        assert got == expected
