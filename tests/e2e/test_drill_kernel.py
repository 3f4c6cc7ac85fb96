"""`pktpath drill --kernel`: packetdrill scripts against the Linux kernel itself, in network
namespaces with a TUN device, as the kernel's selftests run packetdrill: the project's own
scripts (each one proven here), the kernel's own (from Debian's linux-source-6.12, taken out
of its tarball at test time), and a wrong script failing with packetdrill's words."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from drillkit import not_passed, run_settled, wrong_script

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
KERNEL_SOURCE = Path("/usr/src/linux-source-6.12.tar.xz")
PACKETDRILL_DIR = "tools/testing/selftests/net/packetdrill/"
# packetdrill's 4 ms assumes a C runner on an idle machine; this one is Python on two
# shared cores, where a thread may wake several ms late under load (docs/drill.md has the figures)
TOLERANCE_USECS = "10000"
# the scripts mostly wait on the kernel's timers, so three at once (each its own namespace)
# take a third of the time without crowding two cores
JOBS = ("--jobs", "3")


def drill(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pktpath.cli", "drill", "--kernel", *args], capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module", autouse=True)
def root():
    if os.geteuid() != 0:
        pytest.skip("network namespaces and TUN devices need root")


def test_the_projects_scripts_pass_against_the_kernel():
    """Over IPv4; over IPv6 they pass too (`--ip-version 6`, docs/drill.md), which CI leaves to
    the kernel's own scripts below for its time."""
    scripts = sorted(str(p) for p in (ROOT / "tests" / "drill").glob("*.pkt"))
    scripts += sorted(str(p) for p in (ROOT / "tests" / "drill" / "unmodelled").glob("*.pkt"))
    assert len(scripts) >= 3
    found = run_settled(drill, scripts, "--tolerance-usecs", TOLERANCE_USECS, *JOBS)
    assert len(found) == len(scripts) and not not_passed(found), not_passed(found)


def test_the_sub_ms_scripts_pass_against_the_kernel_at_packetdrills_tolerance():
    """tests/drill/sub-ms/ (TSO deferral: an ACK within 1 ms of the burst it answers): pktpath
    runs them on its virtual clock (tests/services/test_l4_tcp_tso_defer.py); a live pktpath
    host cannot keep their sub-millisecond timing."""
    scripts = sorted(str(p) for p in (ROOT / "tests" / "drill" / "sub-ms").glob("*.pkt"))
    assert len(scripts) >= 8
    # what the kernel sends depends on an ACK arriving within 1 ms: a late runner changes it, any way
    found = run_settled(drill, scripts, any_failure=True)
    assert len(found) == len(scripts) and not not_passed(found), not_passed(found)


@pytest.fixture(scope="module")
def kernel_scripts(tmp_path_factory) -> list[str]:
    if not KERNEL_SOURCE.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{KERNEL_SOURCE} is missing (.ci/run installs Debian's linux-source-6.12)")
        pytest.skip(f"{KERNEL_SOURCE} is missing (apt-get install linux-source-6.12)")
    folder = tmp_path_factory.mktemp("kernel-packetdrill")
    # tar and xz rather than tarfile: Debian's tarball is xz in 62 blocks, which xz -T0 unpacks
    # on every core (35 s through tarfile, 8 s here)
    subprocess.run(["tar", "-I", "xz -d -T0", "-xf", str(KERNEL_SOURCE), "-C", str(folder), "--strip-components",
                    str(PACKETDRILL_DIR.count("/") + 1), "--wildcards", f"*/{PACKETDRILL_DIR}*"], check=True)
    return sorted(str(p) for p in folder.glob("tcp_*.pkt"))


@pytest.mark.parametrize("ip_version", ["4", "6"])
def test_the_kernels_own_scripts_pass_against_the_kernel(kernel_scripts, ip_version):
    """Linux 6.12's packetdrill suite, all 24 of them, over IPv4 and IPv6 as ksft_runner.sh
    runs them: the runner reads and runs what the kernel's developers wrote (syscalls, TS and
    SACK mapping, zerocopy's error queue, epoll, Fast Open, fq pacing), and the kernel passes each."""
    assert len(kernel_scripts) == 24
    found = run_settled(drill, kernel_scripts, "--tolerance-usecs", TOLERANCE_USECS, "--ip-version", ip_version,
                        *JOBS)
    assert len(found) == 24 and not not_passed(found), not_passed(found)


def test_a_script_that_is_not_what_linux_does_fails_at_its_line_with_packetdrills_words(tmp_path):
    script = wrong_script(tmp_path)
    out = drill(str(script))
    assert out.returncode == 1
    lines = out.stdout.splitlines()
    assert lines[0] == f"{script}:7: error handling packet: bad value outbound TCP option 3"
    assert re.fullmatch(r"script packet: +[\d.]+ S\. 0:0\(0\) ack 1 <mss 1460,nop,nop,sackOK,nop,wscale 7>", lines[1])
    assert re.fullmatch(r"actual packet: +[\d.]+ S\. 0:0\(0\) ack 1 win \d+ <mss 1460,nop,nop,sackOK,nop,wscale 8>",
                        lines[2])
    wrong_result = tmp_path / "wrong-result.pkt"
    wrong_result.write_text("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 listen(3, 1) = -1 EINVAL (no)\n")
    out = drill(str(wrong_result))
    assert out.stdout.startswith(f"{wrong_result}:2: runtime error in listen call: Expected result -1 but got 0")


def test_the_kernels_own_scripts_against_pktpath_in_one_process_pass_or_name_what_pktpath_lacks(kernel_scripts):
    """The same 24 scripts, deterministic (issue 18's table): none fails; slow start passes as
    Linux's (every ACK, every 2nd and 4th, application-limited, after idle, after a window
    update, paced by fq), and TCP_INQ's; each other one is unsupported at the first thing
    pktpath lacks (SO_ZEROCOPY, Fast Open, /proc/net/tcp), named."""
    out = subprocess.run([sys.executable, "-m", "pktpath.cli", "drill", "--deterministic", *kernel_scripts],
                         capture_output=True, text=True, timeout=300)
    lines = out.stdout.splitlines()
    assert len(lines) == len(kernel_scripts) + 1, out.stdout + out.stderr
    passed = set()
    for line in lines[:-1]:
        m = re.fullmatch(r"\S*/(tcp_\S+)\.pkt: (pass \(.*\)|unsupported: .+)", line)
        assert m, line
        if m.group(2).startswith("pass"):
            passed.add(m.group(1))
    assert passed == {f"tcp_slow_start_slow-start-{name}" for name in (
        "ack-per-1pkt", "ack-per-2pkt", "ack-per-2pkt-send-5pkt", "ack-per-2pkt-send-6pkt", "ack-per-4pkt",
        "app-limited", "app-limited-9-packets-out", "after-idle", "after-win-update", "fq-ack-per-2pkt")} | {
        "tcp_inq_client", "tcp_inq_server"}, out.stdout
    assert lines[-1] == f"12 passed, 0 failed, {len(kernel_scripts) - 12} unsupported"
