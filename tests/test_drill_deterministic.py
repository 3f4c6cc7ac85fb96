"""`pktpath drill --deterministic`: the layers wired in one process on a virtual clock run
the project's scripts (each proven against the kernel in tests/e2e/test_drill_kernel.py),
seconds of timers in no time, load no gRPC, and fail a wrong script with packetdrill's
words."""

import subprocess
import sys

import pytest

from drillkit import SCRIPTS, wrong_script
from pktpath.drill.local import LocalHost, Sim
from pktpath.drill.parser import parse_file
from pktpath.drill.runner import Runner
from pktpath.sysctl import unmodelled_reason

PROJECT_SCRIPTS = sorted(SCRIPTS.glob("*.pkt"))


@pytest.mark.parametrize("ip_version", [4, 6], ids=["ipv4", "ipv6"])
@pytest.mark.parametrize("script", PROJECT_SCRIPTS, ids=lambda p: p.stem)
def test_each_project_script_passes_as_against_the_kernel(script, ip_version):
    """Over IPv4 and over IPv6 (ksft_runner.sh's addresses, MTU 1520), as the kernel passes each."""
    host = LocalHost(ip_version=ip_version)
    outcome = Runner(parse_file(str(script)), host).run()  # packetdrill's tolerance: the scripts' own
    assert (outcome.status, outcome.message) == ("pass", "")
    assert ":" in host.local_ip if ip_version == 6 else "." in host.local_ip


def test_seconds_of_timers_pass_in_virtual_time_alone():
    host = LocalHost()
    assert Runner(parse_file(str(SCRIPTS / "syn-retries.pkt")), host).run().status == "pass"
    assert host.monotonic_ns() >= 7e9  # a SYN, retried at 1 and 3 s, given up at 7 s: seconds of the clock...
    assert not host.wire.out            # ...and every packet it sent was one the script expected


def test_the_one_process_stack_loads_no_grpc():
    code = ("import sys; from pktpath.drill.local import LocalHost; from pktpath.drill.parser import parse_file; "
            "from pktpath.drill.runner import Runner; "
            f"assert Runner(parse_file({str(SCRIPTS / 'half-close.pkt')!r}), LocalHost()).run().status == 'pass'; "
            "print(sorted(m for m in sys.modules if 'grpc' in m))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_a_wrong_script_fails_at_its_line_with_packetdrills_words_and_no_root(tmp_path):
    wrong = wrong_script(tmp_path)
    out = subprocess.run([sys.executable, "-m", "pktpath.cli", "drill", "--deterministic", str(wrong)],
                         capture_output=True, text=True, timeout=120)
    lines = out.stdout.splitlines()
    assert out.returncode == 1
    assert lines[0] == f"{wrong}:7: error handling packet: bad value outbound TCP option 3"
    assert lines[1] == "script packet:  0.000000 S. 0:0(0) ack 1 <mss 1460,nop,nop,sackOK,nop,wscale 7>"
    assert lines[2] == "actual packet:  0.000000 S. 0:0(0) ack 1 win 65535 <mss 1460,nop,nop,sackOK,nop,wscale 8>"


def test_a_script_that_meets_a_mechanism_pktpath_lacks_is_unsupported_there_never_passed():
    """tests/drill/unmodelled/ (each proven against the kernel too): an RTO the late ACK shows
    spurious is F-RTO's moment, with tcp_frto at Linux's 2; pktpath counts it and says so."""
    host = LocalHost()
    outcome = Runner(parse_file(str(SCRIPTS / "unmodelled" / "frto-spurious-rto.pkt")), host).run()
    assert (outcome.status, outcome.message) == ("unsupported", unmodelled_reason("tcp_frto"))
    assert host.unmodelled() == {"tcp_frto": 1}


def test_time_moves_past_a_timer_whose_deadline_falls_between_two_nanoseconds():
    """0.20400000000000001 s is after 204000000 ns: the timer fires at the next one, never spins."""
    sim, fired, due = Sim(), [], 0.20400000000000001

    def run_timers() -> float:
        if sim.clock() >= due and not fired:
            fired.append(sim.now_ns)
        return 0.0 if fired else due

    sim.timers.append(run_timers)
    sim.advance_to(300_000_000)
    assert fired == [204_000_001] and sim.now_ns == 300_000_000
