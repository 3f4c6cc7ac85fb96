"""How far from its script time each event of packetdrill scripts happens when pktpath
drill runs them against the kernel: the figure that says what --tolerance-usecs a machine
needs (packetdrill's own is 4000). Every time check is recorded with a tolerance too wide
to fail, and the deviations are printed: median, 99th percentile, the worst few.

    sudo .venv/bin/python benchmarks/drill_timing.py SCRIPT.pkt...
"""

import statistics
import sys

from pktpath.drill import runner
from pktpath.drill.kernel import KernelHost
from pktpath.drill.parser import parse_file
from pktpath.drill.script import ABSOLUTE_RANGE, ANY, RELATIVE_RANGE


def main(paths: list[str]) -> None:
    deviations: list[tuple[int, str]] = []
    check = runner.Runner.check_time

    def record(self, event, live, last, what, end=None):
        if event.time.kind not in (ANY, ABSOLUTE_RANGE, RELATIVE_RANGE):
            expected = event.time.usecs if end is None else end
            deviations.append((abs(live - expected), f"{self.script.path.rsplit('/', 1)[-1]}:{event.line}"))
        return check(self, event, live, last, what, end)

    runner.Runner.check_time = record
    for path in paths:
        host = KernelHost()
        try:
            outcome = runner.Runner(parse_file(path), host, tolerance_usecs=1_000_000).run()
        finally:
            host.close()
        print(f"{path}: {outcome.status}", file=sys.stderr)
    us = sorted(d for d, _ in deviations)
    print(f"{len(us)} timed events: median {statistics.median(us):.0f} us, p99 {us[int(len(us) * 0.99)]} us, "
          f"worst {us[-1]} us; packetdrill's tolerance: 4000 us")
    for d, where in sorted(deviations, reverse=True)[:5]:
        print(f"  {d:>6} us  {where}")


if __name__ == "__main__":
    main(sys.argv[1:])
