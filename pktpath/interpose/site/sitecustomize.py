"""Run at the start of every Python program `pktpath run` starts (it puts this folder
on PYTHONPATH): the program's sockets become the pktpath host's. If that fails the
program does not start: it must never run on the machine's own stack by mistake."""

import os
import sys

try:
    from pktpath.interpose import install_from_environment

    install_from_environment()
except Exception as exc:  # noqa: BLE001 — whatever it was, the program must not go on
    print(f"pktpath run: cannot put this program on the host's stack: {type(exc).__name__}: {exc}",
          file=sys.stderr, flush=True)
    os._exit(126)
