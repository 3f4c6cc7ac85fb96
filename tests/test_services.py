"""Every layer's server as a real process: listens, answers health, shuts down cleanly."""

import os
import signal
import subprocess
import sys

import grpc
import pytest
from google.protobuf import empty_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from pktpath.pb import l3_pb2, skbuff_pb2
from pktpath.rpc import l3_pb2_grpc
from pktpath.service import LAYERS

PKTPATH = [sys.executable, "-m", "pktpath.cli"]


def start(layer: str, env=None) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([*PKTPATH, "serve", layer], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    line = proc.stdout.readline().strip()
    assert line.startswith(f"{layer} listening on "), (line, proc.stderr.read() if proc.poll() is not None else "")
    return proc, line.rsplit(" ", 1)[1]


def stop(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.fixture(scope="module")
def servers():
    started = {layer: start(layer) for layer in LAYERS}
    yield started
    for proc, _ in started.values():
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_health_serving_for_server_and_layer_service(servers, layer):
    _, target = servers[layer]
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", LAYERS[layer][0]):
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as err:
            stub.Check(health_pb2.HealthCheckRequest(service="pktpath.v1.NoSuchService"), timeout=5)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_draft_rpc_answers_unimplemented_not_a_crash(servers):
    _, target = servers["l3"]
    with grpc.insecure_channel(target) as channel:
        stub = l3_pb2_grpc.L3Stub(channel)
        with pytest.raises(grpc.RpcError) as err:
            stub.IpRcv(iter([skbuff_pb2.SkBuffBatch()]), timeout=5)
        assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
        with pytest.raises(grpc.RpcError):
            stub.GetCounters(empty_pb2.Empty(), timeout=5)
        # still serving after the errors
        health = health_pb2_grpc.HealthStub(channel)
        assert health.Check(health_pb2.HealthCheckRequest(), timeout=5).status == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_sigterm_exits_zero(servers, layer):
    proc, _ = servers[layer]
    assert stop(proc) == 0


def test_refuses_pure_python_protobuf():
    env = dict(os.environ, PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION="python")
    result = subprocess.run([*PKTPATH, "serve", "l2"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "upb" in result.stderr and "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION" in result.stderr


def test_the_runtime_directory_is_private_and_another_users_is_refused(tmp_path, monkeypatch):
    import stat

    from pktpath.config import RuntimeDirError, hop_dir, runtime_dir

    monkeypatch.delenv("PKTPATH_HOP_DIR", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    path = runtime_dir("50000")
    assert path == hop_dir("50000") == str(tmp_path / f"pktpath-{os.getuid()}-50000")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o700
    assert runtime_dir("50000") == path  # its own, again
    open_to_all = tmp_path / f"pktpath-{os.getuid()}-50001"
    open_to_all.mkdir()
    open_to_all.chmod(0o777)  # as another local user could have made it first
    with pytest.raises(RuntimeDirError, match="not private to you"):
        runtime_dir("50001")
    (tmp_path / f"pktpath-{os.getuid()}-50002").symlink_to(path)
    with pytest.raises(RuntimeDirError):
        runtime_dir("50002")
    monkeypatch.setenv("PKTPATH_HOP_DIR", str(tmp_path / "volume"))  # compose's volume: the operator's
    assert runtime_dir("50000") == str(tmp_path / "volume")


def test_the_runs_admin_token_is_made_once_0600_and_every_process_reads_the_same(tmp_path, monkeypatch):
    import stat
    from concurrent.futures import ThreadPoolExecutor

    from pktpath.config import ensure_token, read_token, runtime_dir, token_path

    monkeypatch.delenv("PKTPATH_HOP_DIR", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert read_token("50000") is None
    runtime_dir("50000")
    with ThreadPoolExecutor(8) as pool:  # the services of a run start at the same moment
        tokens = set(pool.map(lambda _: ensure_token("50000"), range(32)))
    assert len(tokens) == 1 and len(tokens.pop()) == 64
    assert stat.S_IMODE(os.stat(token_path("50000")).st_mode) == 0o600
    assert sorted(os.listdir(tmp_path / f"pktpath-{os.getuid()}-50000")) == ["admin.token"]  # no scratch left


@pytest.mark.parametrize("aio", [False, True], ids=["grpc.server", "grpc.aio"])
def test_an_administrative_call_without_the_token_is_permission_denied_and_counted(aio):
    from concurrent import futures

    from grpc_health.v1 import health

    from pktpath.access import AdminInterceptor, AioAdminInterceptor
    from pktpath.config import channel
    from pktpath.counters import PROCESS
    from pktpath.service import AioServer

    added = []

    class L3(l3_pb2_grpc.L3Servicer):
        def RuleAdd(self, request, context):
            added.append(request)
            return empty_pb2.Empty()

        def GetRules(self, request, context):
            return l3_pb2.RuleTable()

    pool = futures.ThreadPoolExecutor(4)
    server = (AioServer(pool, interceptors=[AioAdminInterceptor("s3cret")]) if aio
              else grpc.server(pool, interceptors=[AdminInterceptor("s3cret")]))
    l3_pb2_grpc.add_L3Servicer_to_server(L3(), server)
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    denied = PROCESS.get("Access", "AdminDenied")
    try:
        target = f"127.0.0.1:{port}"
        for token in (None, "wrong"):
            with channel(target, token) as ch:
                with pytest.raises(grpc.RpcError) as exc:
                    l3_pb2_grpc.L3Stub(ch).RuleAdd(l3_pb2.Rule(), timeout=5)
                assert exc.value.code() == grpc.StatusCode.PERMISSION_DENIED
                assert exc.value.details().startswith("RuleAdd is an administrative call")
                l3_pb2_grpc.L3Stub(ch).GetRules(empty_pb2.Empty(), timeout=5)  # a query is open
                health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)
        with channel(target, "s3cret") as ch:
            l3_pb2_grpc.L3Stub(ch).RuleAdd(l3_pb2.Rule(dport=80), timeout=5)
            assert [r.dport for r in added] == [80]  # only the call with the token got through
            with pytest.raises(grpc.RpcError) as exc:
                l3_pb2_grpc.L3Stub(ch).RouteAdd(l3_pb2.Route(), timeout=5)
            assert exc.value.code() == grpc.StatusCode.UNIMPLEMENTED  # allowed through, to the servicer
        assert PROCESS.get("Access", "AdminDenied") - denied == 2
    finally:
        server.stop(0)
