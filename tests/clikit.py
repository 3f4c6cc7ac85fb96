"""pktpath's commands run in the test's own process."""

import io
import subprocess
from contextlib import redirect_stderr, redirect_stdout


def cli_here(*words: str) -> subprocess.CompletedProcess:
    """`pktpath WORDS` run in this process (pktpath.cli.main), as a subprocess would return it:
    for tests that give a command dozens of times, where an interpreter's start each time
    (half a second: grpc, protobuf) would be most of the test."""
    from pktpath.cli import main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main(list(words))
        except SystemExit as exc:  # argparse's refusals, as the program's exit
            code = exc.code if isinstance(exc.code, int) else 1
    return subprocess.CompletedProcess(["pktpath", *words], code, out.getvalue(), err.getvalue())
