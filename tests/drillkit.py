"""What the drill tests share: the project's scripts, and one that is not what Linux does."""

import subprocess
from collections.abc import Callable
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent / "drill"

# Linux 6.18 answers this SYN with window scale 8 (defaults.sh's tcp_rmem): the script says 7.
WRONG = """`{defaults}`
    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
   +0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
   +0 bind(3, ..., ...) = 0
   +0 listen(3, 1) = 0
   +0 < S 0:0(0) win 65535 <mss 1460,sackOK,nop,nop,nop,wscale 7>
   +0 > S. 0:0(0) ack 1 <mss 1460,nop,nop,sackOK,nop,wscale 7>
"""


def wrong_script(folder: Path) -> Path:
    path = folder / "wrong-wscale.pkt"
    path.write_text(WRONG.format(defaults=SCRIPTS / "defaults.sh"))
    return path


def results(stdout: str, scripts: list[str]) -> dict[str, str]:
    """Each script's result, as `pktpath drill` prints it: "pass (0.20 s)", "unsupported: ...",
    or the failure's first line ("26: timing error: ...")."""
    out = {}
    for line in stdout.splitlines():
        for script in scripts:
            if line.startswith(script + ":"):
                out[script] = line[len(script) + 1:].lstrip()
    return out


def run_settled(drill: Callable[..., subprocess.CompletedProcess], scripts: list[str], *options: str,
                timeout: float = 600, any_failure: bool = False) -> dict[str, str]:
    """The scripts' results, run together; those that failed on their timing alone (with
    any_failure, those that failed at all) run once more. On a CI machine whose two cores the
    rest of the suite shares, a runner's thread or the kernel's softirq can be 15 ms late (a CI
    run: keepalive-inherited's data left 15 ms after its write, against the kernel), and a live
    pktpath host's six processes may take a script's calls and packets in another order than
    they were made (a loaded run: a TCP_QUICKACK set just before connect read back unset). A
    script that does the wrong thing every time still fails."""
    found = results(drill(*options, *scripts, timeout=timeout).stdout, scripts)
    late = [s for s, result in found.items()
            if not result.startswith("pass (") and (any_failure or "timing error:" in result.split("\n")[0])]
    if late:
        found.update(results(drill(*options, *late, timeout=timeout).stdout, late))
    return found


def not_passed(found: dict[str, str]) -> str:
    return "\n".join(f"{script}: {result}" for script, result in found.items() if not result.startswith("pass ("))
