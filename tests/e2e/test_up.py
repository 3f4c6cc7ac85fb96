"""`pktpath up` as a user runs it: every service starts, and Ctrl-C or SIGTERM leaves no
process and no shared memory behind, even when a service was killed underneath it."""

import os
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from e2ekit import free_base_port

from pktpath.config import hop_dir

pytestmark = pytest.mark.slow


def start_up(base: int, *, background: bool = False, topology: str = "default",
             env: dict | None = None) -> tuple[subprocess.Popen, list[int]]:
    """pktpath up; background: as a script's `pktpath up &` starts it, SIGINT ignored."""
    ignore_sigint = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if background else None
    proc = subprocess.Popen([sys.executable, "-m", "pktpath.cli", "up", topology, "--base-port", str(base)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=ignore_sigint,
                            env=env)
    lines = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("all healthy"):
            pids = [int(m.group(1)) for x in lines if (m := re.match(r"^[AB]\s+\w+\s+(\d+)\s", x))]
            return proc, pids
    proc.kill()
    raise AssertionError("pktpath up did not come up:\n" + "".join(lines))


@pytest.fixture
def reaper():
    """Whatever a failing test leaves running or mapped is removed, so no test run
    leaves orphans behind (the services run in their own sessions)."""
    started: list[tuple[subprocess.Popen, list[int], int]] = []
    yield started.append
    for proc, pids, base in started:
        for pid in [proc.pid, *pids, *run_pids(base)]:  # the orchestrator and restarted layers too
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        proc.wait()
        for seg in segments(base):
            seg.unlink(missing_ok=True)


def run_pids(base: int) -> list[int]:
    """Every service process of the run on this base port, by its command line."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            argv = (proc / "cmdline").read_bytes().replace(b"\0", b" ").split()  # forked: its title
        except OSError:
            continue
        if b"serve" in argv and b"--run-id" in argv and argv[argv.index(b"--run-id") + 1] == str(base).encode():
            found.append(int(proc.name))
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def segments(base: int) -> list[Path]:
    return sorted(Path("/dev/shm").glob(f"pktpath-{base}-*"))


@pytest.mark.parametrize("signum, background", [(signal.SIGINT, False), (signal.SIGTERM, False),
                                                (signal.SIGINT, True)])
def test_up_stops_everything(signum, background, reaper):
    base = free_base_port(2)
    proc, pids = start_up(base, background=background)
    reaper((proc, pids, base))
    assert len(pids) == 12 and all(alive(p) for p in pids)
    assert [p.name for p in segments(base)] == [f"pktpath-{base}-A-eth0", f"pktpath-{base}-B-eth0"]
    runtime = os.stat(hop_dir(str(base)))
    assert (runtime.st_uid, stat.S_IMODE(runtime.st_mode)) == (os.getuid(), 0o700)  # private to its user
    proc.send_signal(signum)
    rest = proc.communicate(timeout=30)[0]
    assert proc.returncode == 0, rest
    assert "stopped" in rest
    assert not [p for p in pids if alive(p)]
    assert segments(base) == []


def test_up_cleans_up_after_a_killed_nic(reaper):
    """A NIC killed with SIGKILL cannot unlink its rings: `pktpath up` does it on the way out."""
    base = free_base_port(2)
    proc, pids = start_up(base)
    reaper((proc, pids, base))
    nic_a = pids[0]  # the table lists A's layers first, nic first
    os.kill(nic_a, signal.SIGKILL)
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    rest = proc.communicate(timeout=30)[0]
    assert proc.returncode == 1 and "A/nic was killed by SIGKILL" in rest  # the kill is reported, not hidden
    assert not [p for p in pids if alive(p)]
    assert segments(base) == []


def test_a_second_up_on_the_same_ports_is_refused_and_touches_nothing(reaper):
    """Before: it reported "all healthy" (the first run answered) and deleted the first run's rings."""
    base = free_base_port(2)
    proc, pids = start_up(base)
    reaper((proc, pids, base))
    second = subprocess.run([sys.executable, "-m", "pktpath.cli", "up", "--base-port", str(base)],
                            capture_output=True, text=True, timeout=60)
    assert second.returncode == 1 and f"port {base} is in use" in second.stderr, second.stderr
    assert "all healthy" not in second.stdout
    assert [p.name for p in segments(base)] == [f"pktpath-{base}-A-eth0", f"pktpath-{base}-B-eth0"]
    assert all(alive(p) for p in pids) and os.path.isdir(hop_dir(str(base)))
    proc.send_signal(signal.SIGINT)
    assert proc.wait(30) == 0


def test_a_killed_layer_is_reported_restarted_and_shown_and_down_stops_the_run(reaper):
    """As systemd's Restart=on-failure: the death reported at once with its last log lines,
    the layer started again, `pktpath status` showing the restart, `pktpath down` from
    another process stopping everything."""
    base = free_base_port(2)
    proc, pids = start_up(base)
    reaper((proc, pids, base))
    cli = [sys.executable, "-m", "pktpath.cli"]
    os.kill(pids[7], signal.SIGKILL)  # B's l3: the table lists layer by layer, A before B
    report = proc.stdout.readline()
    assert report.startswith("pktpath up: B/l3 was killed by SIGKILL; restarting in 0.1 s"), report
    assert "l3 listening on" in proc.stdout.readline()  # its last log line, quoted
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status = subprocess.run([*cli, "status", "--base-port", str(base)], capture_output=True, text=True).stdout
        row = next(line for line in status.splitlines() if line.startswith("B/l3"))
        if row.split()[1] == "serving":
            break
        time.sleep(0.2)
    assert row.split()[1:2] + row.split()[3:4] == ["serving", "1"], status
    assert all(line.split()[1] == "serving" for line in status.splitlines()[2:]), status
    down = subprocess.run([*cli, "down", "--base-port", str(base)], capture_output=True, text=True, timeout=60)
    assert down.returncode == 0 and "stopped" in down.stdout, down.stderr
    assert proc.wait(10) == 1  # a layer died during the run: said in the exit status too
    assert segments(base) == [] and not os.path.exists(hop_dir(str(base)))


def test_services_end_when_their_supervisor_is_killed(reaper):
    """`pktpath up` killed with -9 cannot stop its services: they end by themselves
    (PR_SET_PDEATHSIG), unlinking their rings, and leave no process behind."""
    base = free_base_port(2)
    proc, pids = start_up(base)
    reaper((proc, pids, base))
    everyone = run_pids(base)
    assert len(everyone) == 13  # twelve layers and the orchestrator
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and [p for p in everyone if alive(p)]:
        time.sleep(0.1)
    assert not [p for p in everyone if alive(p)]
    assert segments(base) == []


def test_every_command_finds_the_running_topology_by_itself(reaper, tmp_path):
    """No --topology router --base-port N repeated: one run is used; with several, the
    command says which exist; --base-port and PKTPATH_BASE_PORT still choose."""
    env = {**os.environ, "XDG_RUNTIME_DIR": str(tmp_path)}  # only this test's runs are found
    env.pop("PKTPATH_BASE_PORT", None)

    def pktpath(*words, **extra):
        return subprocess.run([sys.executable, "-m", "pktpath.cli", *words], capture_output=True, text=True,
                              timeout=60, env={**env, **extra})

    router_base = free_base_port(3)
    proc, pids = start_up(router_base, topology="router", env=env)
    reaper((proc, pids, router_base))
    route = pktpath("ip", "route", "--on", "R")
    assert route.returncode == 0 and "10.0.2.0/24" in route.stdout, route.stderr
    assert f"topology router on base port {router_base}" in pktpath("status").stdout
    ping = pktpath("ping", "10.0.2.1", "-c", "1")  # from A, through R
    assert ping.returncode == 0 and "1 received" in ping.stdout, ping.stdout + ping.stderr

    default_base = free_base_port(2)
    second, second_pids = start_up(default_base, env=env)
    reaper((second, second_pids, default_base))
    both = pktpath("ip", "route", "--on", "R")
    assert both.returncode != 0 and "2 topologies are running" in both.stderr
    assert f"router (--base-port {router_base})" in both.stderr
    assert f"default (--base-port {default_base})" in both.stderr
    chosen = pktpath("ip", "route", "--on", "R", PKTPATH_BASE_PORT=str(router_base))
    assert chosen.returncode == 0 and "10.0.2.0/24" in chosen.stdout
    assert pktpath("down", "--base-port", str(default_base)).returncode == 0
    assert second.wait(30) == 0
    assert pktpath("ip", "route", "--on", "R").returncode == 0  # one again: found alone
    assert pktpath("down").returncode == 0
    assert proc.wait(30) == 0
