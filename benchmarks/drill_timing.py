"""How far from its script time each event of packetdrill scripts happens when pktpath
drill runs them against the kernel, or (--live) against a pktpath host: the figure that
says what --tolerance-usecs each needs (packetdrill's own is 4000). Every time check is
recorded with a tolerance too wide to fail, and the deviations are printed: median, 99th
percentile, the worst few.

    sudo .venv/bin/python benchmarks/drill_timing.py [--live] SCRIPT.pkt...
"""

import statistics
import sys
import tempfile

from pktpath.drill import runner
from pktpath.drill.kernel import KernelHost
from pktpath.drill.live import LiveHost
from pktpath.drill.parser import parse_file
from pktpath.drill.script import ABSOLUTE_RANGE, ANY, RELATIVE_RANGE


def main(paths: list[str], live: bool) -> None:
    deviations: list[tuple[int, str]] = []
    check = runner.Runner.check_time

    def record(self, event, live, last, what, end=None):
        if event.time.kind not in (ANY, ABSOLUTE_RANGE, RELATIVE_RANGE):
            expected = event.time.usecs if end is None else end
            deviations.append((abs(live - expected), f"{self.script.path.rsplit('/', 1)[-1]}:{event.line}"))
        return check(self, event, live, last, what, end)

    runner.Runner.check_time = record
    pktpath_host = LiveHost(tempfile.mkdtemp(prefix="drill-timing-")) if live else None
    try:
        for path in paths:
            host = pktpath_host or KernelHost()
            try:
                if pktpath_host:
                    pktpath_host.reset()
                outcome = runner.Runner(parse_file(path), host, tolerance_usecs=1_000_000).run()
            finally:
                if not pktpath_host:
                    host.close()
            print(f"{path}: {outcome.status}", file=sys.stderr)
    finally:
        if pktpath_host:
            pktpath_host.close()
    us = sorted(d for d, _ in deviations)
    where = "a pktpath host" if live else "the kernel"
    print(f"against {where}: {len(us)} timed events: median {statistics.median(us):.0f} us, "
          f"p99 {us[int(len(us) * 0.99)]} us, worst {us[-1]} us; packetdrill's tolerance: 4000 us")
    for d, where in sorted(deviations, reverse=True)[:5]:
        print(f"  {d:>6} us  {where}")


if __name__ == "__main__":
    main([a for a in sys.argv[1:] if a != "--live"], "--live" in sys.argv[1:])
