"""pktpath.forkserver: services forked from one process that imported them, each in its own
session with its own log, command line and exit status, as subprocess.Popen would give."""

import os
import signal
import subprocess
import time

import pytest

from pktpath.forkserver import Forkserver, ForkserverGone
from pktpath.supervisor import SUPERVISOR_ENV


@pytest.fixture
def server():
    fs = Forkserver(dict(os.environ), SUPERVISOR_ENV)
    yield fs
    fs.close()


def child_env(fs) -> dict:
    return {**os.environ, SUPERVISOR_ENV: str(fs.pid)}


def test_a_command_runs_in_its_own_session_with_its_log_and_its_exit_status(server, tmp_path):
    log = tmp_path / "version.log"
    proc = server.spawn(["--version"], child_env(server), str(log))
    assert proc.wait(10) == 0
    assert log.read_text().startswith("pktpath ")
    bad = server.spawn(["serve", "nic", "--host", "Z", "--base-port", "1"], child_env(server), str(tmp_path / "z.log"))
    assert bad.wait(10) == 2 and "no host 'Z'" in (tmp_path / "z.log").read_text()


def test_a_service_shows_its_own_command_line_and_ends_by_its_signal(server, tmp_path):
    proc = server.spawn(["serve", "l3", "--listen", "127.0.0.1:0"], child_env(server), str(tmp_path / "l3.log"))
    log = tmp_path / "l3.log"
    deadline = time.monotonic() + 10
    while not (log.exists() and "listening" in log.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    with open(f"/proc/{proc.pid}/cmdline", "rb") as f:
        assert f.read().split(b"\0")[0] == b"pktpath serve l3 --listen 127.0.0.1:0"
    assert os.getpgid(proc.pid) == proc.pid  # a session and group of its own
    assert proc.poll() is None
    with pytest.raises(subprocess.TimeoutExpired):
        proc.wait(0.1)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(10) == -signal.SIGKILL and proc.returncode == -signal.SIGKILL


def test_its_services_end_with_it_and_nothing_more_can_start(tmp_path):
    fs = Forkserver(dict(os.environ), SUPERVISOR_ENV)
    proc = fs.spawn(["serve", "l3", "--listen", "127.0.0.1:0"], child_env(fs), str(tmp_path / "l3.log"))
    time.sleep(0.5)
    fs.proc.kill()
    fs.proc.wait()
    assert proc.wait(10) == -signal.SIGTERM  # PR_SET_PDEATHSIG: the forkserver's death is its parent's
    with pytest.raises(ForkserverGone):
        fs.spawn(["--version"], child_env(fs), None)
    fs.close()
