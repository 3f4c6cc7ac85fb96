"""What the drill tests share: the project's scripts, and one that is not what Linux does."""

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
