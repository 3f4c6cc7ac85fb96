"""`pktpath drill` against a pktpath host: the same scripts the kernel passes
(tests/drill/, proven in test_drill_kernel.py), run live against a host of six layer
processes whose eth0 is a TAP device with the script's wire at its other end: each one
passes, as it does against Linux; a wrong one fails with packetdrill's words, and one that
needs what pktpath lacks is unsupported with its reason."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pktpath.rpc import l2_pb2_grpc

from drillkit import not_passed, run_settled, wrong_script
from e2ekit import counter, stub

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", autouse=True)
def root():
    if os.geteuid() != 0:
        pytest.skip("the host's TAP device and the wire's namespace need root")


def drill(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """At the live default, 20 ms: the worst event was 7.5 ms off on an idle machine (docs/drill.md)."""
    return subprocess.run([sys.executable, "-m", "pktpath.cli", "drill", *args], capture_output=True, text=True,
                          timeout=timeout)


# Over IPv6 live, the scripts where the family shows (addresses and the handshake, the MSS from
# the MTU, ECN in the traffic class, resets, retransmission): every one of the 80 runs over IPv6
# in one process (tests/test_drill_deterministic.py), in CI's time.
IPV6_LIVE = ("initial-windows", "syn-options-without-sack", "syn-options-without-timestamps", "maxseg",
             "peer-mss-clamps-segments", "active-open-nonblocking", "connect-refused", "rst-to-closed-port",
             "simultaneous-open", "time-wait-new-syn-reopens", "ecn-passive-open", "ecn-active-open", "ecn-ce-echo",
             "sack-fast-retransmit", "half-close", "close-peer-first", "nagle", "fin-with-data")


# Seconds of one timer's backoff and nothing else (17 s of CI's time live): they run against
# the kernel and in one process on a virtual clock; synack-retries keeps the live timers' case.
TIMERS_ONLY = ("syn-retries", "keepalive", "keepalive-inherited")


@pytest.mark.parametrize("ip_version", ["4", "6"])
def test_the_projects_scripts_pass_against_a_pktpath_host_as_against_the_kernel(ip_version):
    """Over IPv4 all of them but TIMERS_ONLY; over IPv6 (ksft_runner.sh's addresses; the host's
    address past DAD first) IPV6_LIVE."""
    scripts = sorted(str(p) for p in (ROOT / "tests" / "drill").glob("*.pkt")
                     if p.stem in IPV6_LIVE or ip_version == "4" and p.stem not in TIMERS_ONLY)
    assert ip_version == "4" or len(scripts) == len(IPV6_LIVE)
    found = run_settled(drill, scripts, "--ip-version", ip_version, any_failure=True)
    assert len(found) == len(scripts), found
    assert not not_passed(found), not_passed(found)  # sysctls, TCP_INFO, options, timing: all as Linux's


def test_a_script_pktpath_does_not_do_fails_at_its_line_and_what_it_lacks_is_unsupported(tmp_path):
    wrong = wrong_script(tmp_path)
    lacking = tmp_path / "syncookies.pkt"
    lacking.write_text("`sysctl -q net.ipv4.tcp_syncookies=2`\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n")
    out = drill(str(wrong), str(lacking))
    lines = out.stdout.splitlines()
    assert lines[0] == f"{wrong}:7: error handling packet: bad value outbound TCP option 3", out.stdout
    assert re.fullmatch(r"actual packet: +[\d.]+ S\. 0:0\(0\) ack 1 win \d+ <mss 1460,nop,nop,sackOK,nop,wscale 8>",
                        lines[2]), lines[2]
    assert lines[3] == (f"{lacking}: unsupported: net.ipv4.tcp_syncookies = 2 is not modelled: pktpath behaves as 0 "
                        "(no SYN cookies)")
    assert out.returncode == 1 and lines[-1] == "0 passed, 1 failed, 1 unsupported"


ON_A_RUNNING_HOST = ("passive-open-data-close", "active-open-nonblocking", "nagle", "rto-backoff",
                     "sack-fast-retransmit",
                     "maxseg", "ecn-passive-open", "time-wait-new-syn-reopens", "connect-refused", "close-peer-first")


def test_scripts_run_on_a_host_of_a_running_topology_which_gets_its_tables_back(default_topology):
    """`--on A`: A keeps its addresses (10.0.0.1), the script's remote is routed
    through a gateway address nobody has for the run; what A sends that way crosses the real
    link, where B drops it as not its own; afterwards A's routes, neighbours and sysctls are
    as they were."""
    base = str(default_topology.base_port)

    def show(*words: str) -> str:
        out = subprocess.run([sys.executable, "-m", "pktpath.cli", *words, "--on", "A", "--base-port", base],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return out.stdout

    before = [show("ip", "route"), show("ip", "neigh"), show("sysctl", "-a")]
    ip6_routes = show("ip", "-6", "route")
    l2_b = stub(default_topology, "B", "l2", l2_pb2_grpc.L2Stub)
    otherhost = counter(l2_b, "core_stats eth0", "rx_otherhost_dropped")
    scripts = sorted(str(p) for p in (ROOT / "tests" / "drill").glob("*.pkt") if p.stem in ON_A_RUNNING_HOST)
    found = run_settled(drill, scripts, "--on", "A", "--base-port", base, any_failure=True)
    assert len(found) == len(ON_A_RUNNING_HOST) and not not_passed(found), not_passed(found)
    assert counter(l2_b, "core_stats eth0", "rx_otherhost_dropped") > otherhost
    after = [show("ip", "route"), show("ip", "neigh"), show("sysctl", "-a")]
    assert after == before
    # over IPv6 the scripts' MSS of 1460 needs ksft_runner.sh's MTU of 1520; A's eth0 has 1500
    refused = drill("--on", "A", "--base-port", base, "--ip-version", "6", scripts[0])
    assert refused.returncode == 2 and "need an MTU of 1520" in refused.stderr, refused.stderr
    assert show("ip", "-6", "route") == ip6_routes
