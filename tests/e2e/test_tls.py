"""With PKTPATH_TLS_DIR set (issue #16), every service listens with TLS and every client —
the services' channels to each other, the CLI, pktpath.client — dials with it: the packets
still flow, and a plaintext client or one that trusts another CA gets nothing."""

import os
import subprocess
import sys

import grpc
import pytest
from e2ekit import free_base_port, read_all, stub, tcp_connection
from google.protobuf.empty_pb2 import Empty
from grpc_health.v1 import health_pb2, health_pb2_grpc

from pktpath.client import SHUT_WR, SocketApi
from pktpath.config import TLS_DIR_ENV, TLS_NAME
from pktpath.rpc import l3_pb2_grpc
from pktpath.supervisor import Supervisor
from pktpath.topology import load

pytestmark = pytest.mark.slow


def make_certificate(directory) -> None:
    """A self-signed certificate for TLS_NAME (its own CA), as the docs tell users to make one."""
    directory.mkdir()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", directory / "key.pem", "-out", directory / "cert.pem", "-days", "1",
                    "-subj", f"/CN={TLS_NAME}", "-addext", f"subjectAltName=DNS:{TLS_NAME}"],
                   check=True, capture_output=True)


@pytest.fixture(scope="module")
def tls_topology(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tls")
    make_certificate(tmp / "run")
    make_certificate(tmp / "other")  # another CA's: trusted by nobody here
    saved = os.environ.get(TLS_DIR_ENV)
    os.environ[TLS_DIR_ENV] = str(tmp / "run")  # this process's clients too
    sup = Supervisor(load("default"), free_base_port(2), log_dir=tmp / "logs")
    try:
        sup.start(timeout=60)
        yield sup, tmp
    finally:
        statuses = sup.stop()
        if saved is None:
            del os.environ[TLS_DIR_ENV]
        else:
            os.environ[TLS_DIR_ENV] = saved
    assert all(rc == 0 for _, _, rc in statuses), statuses


def test_the_packets_flow_between_services_that_speak_tls(tls_topology):
    sup, _ = tls_topology
    with SocketApi(sup.addrs.target("A", "socket")) as a, SocketApi(sup.addrs.target("B", "socket")) as b:
        rx = b.socket()
        rx.bind(("0.0.0.0", 7800))
        a.socket().sendto(b"over tls", ("10.0.0.2", 7800))
        assert rx.recvfrom(100, timeout=10)[0] == b"over tls"
        with tcp_connection(a, b, "10.0.0.2", 7801) as (_, client, conn):
            client.sendall(b"t" * 50_000)
            client.shutdown(SHUT_WR)
            got = bytearray()
            read_all(conn, got)
            assert got == b"t" * 50_000
    assert stub(sup, "B", "l3", l3_pb2_grpc.L3Stub).GetRoutes(Empty(), timeout=5).routes


def test_a_plaintext_client_or_one_trusting_another_ca_gets_nothing(tls_topology):
    sup, tmp = tls_topology
    target = sup.addrs.target("B", "l3")
    with grpc.insecure_channel(target) as plain:
        with pytest.raises(grpc.RpcError) as exc:
            health_pb2_grpc.HealthStub(plain).Check(health_pb2.HealthCheckRequest(), timeout=3)
        assert exc.value.code() == grpc.StatusCode.UNAVAILABLE
    cli = [sys.executable, "-m", "pktpath.cli", "health", target]
    assert subprocess.run(cli, capture_output=True, timeout=30).returncode == 0  # trusts the run's CA
    stranger = subprocess.run(cli, capture_output=True, text=True, timeout=30,
                              env={**os.environ, TLS_DIR_ENV: str(tmp / "other")})
    assert stranger.returncode == 1 and "UNAVAILABLE" in stranger.stderr
    missing = subprocess.run(cli, capture_output=True, text=True, timeout=30,
                             env={**os.environ, TLS_DIR_ENV: str(tmp / "nowhere")})
    assert missing.returncode == 2 and "cannot read" in missing.stderr and "Traceback" not in missing.stderr
