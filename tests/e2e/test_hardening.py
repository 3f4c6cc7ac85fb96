"""Bad input at the boundaries of running services (issue #16): an skb that lies about its
buffer is dropped alone and counted, allocating nothing from its lie; a request field no
call can hold is INVALID_ARGUMENT (EINVAL for a socket call) with a short message; the
service stays healthy and logs no traceback."""

import errno
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from e2ekit import counter, stub, wait_for
from google.protobuf.empty_pb2 import Empty

from pktpath import skbuff as s
from pktpath.tools.apps import HostView
from pktpath.tools.iptables import run as iptables_run
from pktpath.client import SocketApi
from pktpath.config import channel, token_path
from pktpath.pb import l3_pb2, l4_pb2, skbuff_pb2 as pb, socket_pb2, trace_pb2
from pktpath.rpc import l3_pb2_grpc, l4_pb2_grpc, orchestrator_pb2_grpc
from pktpath.supervisor import log_name

pytestmark = pytest.mark.slow


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def an_skb(**lie) -> pb.SkBuff:
    skb = s.alloc_skb(s.MAX_HEADER + 64)
    s.skb_reserve(skb, s.MAX_HEADER)
    s.skb_put_data(skb, b"x" * 64)
    m = s.to_proto(skb)
    for name, value in lie.items():
        setattr(m, name, value)
    return m


def test_an_skb_claiming_4_gib_costs_l3_nothing(default_topology):
    sup = default_topology
    l3 = stub(sup, "B", "l3", l3_pb2_grpc.L3Stub)
    pid = next(svc.proc.pid for svc in sup.services if (svc.host, svc.layer) == ("B", "l3"))
    before = rss_kib(pid)
    lies = [an_skb(end=0xFFFFFFFF), an_skb(gso_size=1), an_skb(gso_size=1 << 31), an_skb(network_header=9999)]
    reply = l3.IpQueueXmit(iter([pb.SkBuffBatch(skbs=lies)]), timeout=10)
    assert reply.accepted == 0
    assert wait_for(lambda: counter(l3, "Drops", "PKTPATH_DROP_REASON_BAD_SKB") == len(lies))
    assert rss_kib(pid) - before < 50_000  # KiB: nothing like the 4 GiB claimed
    log = (sup.log_dir / log_name("B", "l3")).read_text()
    assert "Traceback" not in log


def invalid(call) -> str:
    """The call's status is INVALID_ARGUMENT; its message, which must be short."""
    with pytest.raises(grpc.RpcError) as exc:
        call()
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (exc.value.code(), exc.value.details())
    assert len(exc.value.details()) < 300
    return exc.value.details()


def test_requests_no_sockaddr_or_rule_can_hold_answer_invalid_argument(default_topology):
    sup = default_topology
    l3 = stub(sup, "A", "l3", l3_pb2_grpc.L3Stub)
    l4 = stub(sup, "A", "l4", l4_pb2_grpc.L4Stub)
    assert "destination port 65536" in invalid(lambda: l4.TcpV4Connect(
        l4_pb2.TcpConnectRequest(sk=424242, daddr="10.0.0.2", dport=65536), timeout=5))
    assert not [t for t in l4.GetTcpSockets(Empty(), timeout=5).socks if t.sk == 424242]  # no SYN-SENT left
    for addr in ("10.0.0.2\x00", "١٠.0.0.2", "10.0.0.2" * 8000):
        assert "is not an IPv4 address" in invalid(lambda: l4.Hash(
            l4_pb2.SockAddrs(sk=1, protocol=17, daddr=addr, dport=9), timeout=5))
    for hook in (99999, -5):
        assert "hook" in invalid(lambda: l3.RuleAdd(l3_pb2.Rule(hook=hook, target=l3_pb2.NF_ACCEPT), timeout=5))
    assert "target" in invalid(lambda: l3.RuleAdd(l3_pb2.Rule(target=7), timeout=5))
    assert "sport 70000" in invalid(lambda: l3.RuleAdd(l3_pb2.Rule(sport=70000, target=l3_pb2.NF_ACCEPT), timeout=5))
    assert "dst" in invalid(lambda: l3.RouteAdd(l3_pb2.Route(dst="10.9.0.0/33", dev="eth0"), timeout=5))
    with pytest.raises(grpc.RpcError) as exc:
        l3.RouteAdd(l3_pb2.Route(dst="10.9.0.0/16", dev="x" * 65536), timeout=5)
    assert exc.value.code() == grpc.StatusCode.NOT_FOUND and len(exc.value.details()) < 300
    orchestrator = stub(sup, "", "orchestrator", orchestrator_pb2_grpc.OrchestratorStub)
    for bad in ({"rate": float("nan")}, {"rate": 0.5, "per_second": float("inf")}):
        invalid(lambda: orchestrator.SetSampling(trace_pb2.Sampling(**bad), timeout=5))
    assert not l3.GetRules(Empty(), timeout=5).rules  # none of them got in
    assert iptables_run(HostView(sup.addrs, "A"), ["-L", "-v", "-n"])[0].startswith("Chain INPUT")  # still reads it
    for layer in ("l3", "l4"):
        assert "Traceback" not in (sup.log_dir / log_name("A", layer)).read_text()


def test_a_rule_added_can_be_deleted(default_topology):
    l3 = stub(default_topology, "B", "l3", l3_pb2_grpc.L3Stub)
    rule = l3_pb2.Rule(hook=l3_pb2.NF_INET_LOCAL_IN, protocol=17, dport=9999, target=l3_pb2.NF_DROP)
    l3.RuleAdd(rule, timeout=5)
    assert len(l3.GetRules(Empty(), timeout=5).rules) == 1
    l3.RuleDel(rule, timeout=5)
    assert not l3.GetRules(Empty(), timeout=5).rules
    with pytest.raises(grpc.RpcError) as exc:
        l3.RuleDel(rule, timeout=5)
    assert exc.value.code() == grpc.StatusCode.NOT_FOUND


def test_socket_calls_with_impossible_arguments_fail_with_einval(default_topology):
    with SocketApi(default_topology.addrs.target("A", "socket")) as a:
        sock = a.socket(2)
        for addr in (("10.0.0.2", 70000), ("10.0.0.2\x00", 9), ("٣.0.0.2", 9)):
            with pytest.raises(OSError) as exc:
                sock.connect(addr)
            assert exc.value.errno == errno.EINVAL and len(str(exc.value)) < 300
        for timeout in (float("nan"), float("inf"), -1.0):
            with pytest.raises(OSError) as exc:
                a.call("Recvfrom", socket_pb2.RecvfromRequest(fd=sock.fd, timeout_s=timeout))
            assert exc.value.errno == errno.EINVAL


def test_administrative_calls_need_the_runs_token_and_the_socket_api_does_not(default_topology, tmp_path):
    """Like CAP_NET_ADMIN: anyone on loopback may use the socket API and read tables; only the
    run's owner (who can read the 0600 token in the 0700 runtime directory) may change them."""
    sup = default_topology
    path = Path(token_path(sup.run_id))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    bare = channel(sup.addrs.target("B", "l3"))  # no token
    l3 = l3_pb2_grpc.L3Stub(bare)
    rule = l3_pb2.Rule(hook=l3_pb2.NF_INET_LOCAL_IN, target=l3_pb2.NF_DROP)  # would drop all B receives
    calls = [lambda: l3.RuleAdd(rule, timeout=5), lambda: l3.RouteDel(l3_pb2.Route(dst="10.0.0.0/24"), timeout=5),
             lambda: l3.IpQueueXmit(iter([pb.SkBuffBatch(skbs=[an_skb()])]), timeout=5)]
    for call in calls:
        with pytest.raises(grpc.RpcError) as exc:
            call()
        assert exc.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "admin token" in exc.value.details()
    assert l3.GetRoutes(Empty(), timeout=5).routes  # reading stays open
    assert not l3.GetRules(Empty(), timeout=5).rules  # and nothing got in
    assert counter(l3, "Access", "AdminDenied") == len(calls)
    with SocketApi(sup.addrs.target("B", "socket")) as b:  # the socket API needs no token
        sock = b.socket(2)
        sock.bind(("10.0.0.2", 0))
        assert sock.getsockname()[1] > 0
        sock.close()
    bare.close()
    # A user who cannot read the token (here: one whose runtime directory is elsewhere) cannot
    # capture either, as tcpdump needs root on Linux.
    cli = [str(Path(sys.executable).parent / "pktpath"), "tcpdump", "-i", "B:eth0", "-c", "1",
           "--base-port", str(sup.base_port)]
    denied = subprocess.run(cli, capture_output=True, text=True, timeout=60,
                            env={**os.environ, "XDG_RUNTIME_DIR": str(tmp_path)})
    assert denied.returncode == 2 and "Capture is an administrative call" in denied.stderr, denied


def test_tcpdump_started_in_the_background_stops_on_sigint(default_topology):
    """A script's `pktpath tcpdump ... &` inherits SIGINT ignored: it must stop on it all the same."""
    proc = subprocess.Popen([str(Path(sys.executable).parent / "pktpath"), "tcpdump", "-i", "B:eth0", "--base-port",
                             str(default_topology.base_port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        lines = []
        while len(lines) < 5 and not any("listening on B:eth0" in line for line in lines):
            lines.append(proc.stdout.readline())  # gRPC's own log lines may come first
        assert "listening on B:eth0" in lines[-1], lines
        proc.send_signal(signal.SIGINT)
        proc.wait(10)
    finally:
        proc.kill()
