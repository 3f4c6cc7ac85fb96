"""A script's shell commands on a pktpath host: what the kernel's defaults.sh and its kin
do, mapped onto the host (`sysctl` onto its Sysctl RPCs), and everything else refused.

packetdrill hands a command to /bin/sh; a pktpath host has no /proc/sys to write, so the
commands the scripts use are read here: `sysctl [-q] [-w] [-e] NAME=VALUE...` (with `$((...))`
arithmetic and quotes), a script of such lines (`./defaults.sh`), the selftests'
`set_sysctls.py /proc/sys/...=VALUE`, `tc qdisc add|replace dev tun0 root pfifo|pfifo_fast|fq`
(onto the host's device), `ip tcp_metrics flush` (pktpath caches no metrics: nothing to
flush). A line of any other kind makes the script unsupported, with the line.
"""

import os
import re
import shlex

from pktpath.drill.packets import Unsupported

_ARITH = re.compile(r"\$\(\(([0-9+\-*/ ()]+)\)\)")
_COMMENT = re.compile(r"(^|\s)#.*$")
_REDIRECT = re.compile(r"\s*(?:[12]?>\s*/dev/null|2>&1)")


class Shell:
    """Runs command text against `set_sysctl(name, value, ignore_unknown)`, which raises
    Unsupported for a knob (unless ignore_unknown) or a value the host does not take."""

    QDISCS = {"pfifo": "pfifo_fast", "pfifo_fast": "pfifo_fast", "fq": "fq"}  # tc's word → the host's qdisc

    def __init__(self, set_sysctl, restore, set_qdisc) -> None:
        self.set_sysctl = set_sysctl
        self.restore = restore  # puts every sysctl back as it was before the script
        self.set_qdisc = set_qdisc  # the device's root qdisc, by its name in QDISCS

    def run(self, text: str, cwd: str) -> None:
        for line in _lines(text):
            self.line(line, cwd)

    def line(self, line: str, cwd: str) -> None:
        line = _REDIRECT.sub("", _ARITH.sub(lambda m: str(_arith(m.group(1))), line)).strip()
        words = shlex.split(line)
        if not words:
            return
        command, args = os.path.basename(words[0]), words[1:]
        if command == "sysctl":
            ignore_unknown = "-e" in args  # a key this kernel has not is passed by
            for word in args:
                if word.startswith("-"):
                    continue  # -q, -w: quiet, write
                name, eq, value = word.partition("=")
                if not eq:
                    raise Unsupported(f"`{line}`: reading a sysctl in a command")
                self.set_sysctl(name, value, ignore_unknown)
        elif command == "set_sysctls.py":
            for word in args:
                path, _, value = word.partition("=")
                self.set_sysctl(path.removeprefix("/proc/sys/"), value)
        elif command == "tc" and args[:2] in (["qdisc", "add"], ["qdisc", "replace"]) and args[-2:-1] == ["root"]:
            if args[-1] not in self.QDISCS:
                raise Unsupported(f"`{line}`: pktpath's devices have pfifo_fast and fq, no {args[-1]}")
            self.set_qdisc(self.QDISCS[args[-1]])
        elif command == "ip" and args[:2] == ["tcp_metrics", "flush"]:
            pass
        elif words[0].startswith("/tmp/sysctl_restore_"):
            self.restore()  # what set_sysctls.py saved: the values before the script
        elif words[0].endswith(".sh") and os.path.isfile(os.path.join(cwd, words[0])):
            with open(os.path.join(cwd, words[0]), encoding="utf-8") as f:
                self.run(f.read(), cwd)
        else:
            raise Unsupported(f"command `{line}` on a pktpath host")


def _lines(text: str) -> list[str]:
    """Logical lines: `\\` continues one, `#` starts a comment."""
    out, current = [], ""
    for raw in text.splitlines():
        raw = _COMMENT.sub("", raw)
        if raw.rstrip().endswith("\\"):
            current += raw.rstrip()[:-1] + " "
            continue
        out.append(current + raw)
        current = ""
    if current:
        out.append(current)
    return [line for line in out if line.strip()]


def _arith(expr: str) -> int:
    """$((...)) of integers and + - * / ( ): what defaults.sh computes."""
    return int(eval(compile(expr, "<arith>", "eval"), {"__builtins__": {}}))  # noqa: S307 (digits and operators)
