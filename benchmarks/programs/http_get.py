"""GET one URL again and again with urllib.request for SECONDS: http_get.py URL SECONDS.
Prints: requests seconds."""

import sys
import time
import urllib.request

url, seconds = sys.argv[1], float(sys.argv[2])
n, t0 = 0, time.perf_counter()
while time.perf_counter() - t0 < seconds:
    urllib.request.urlopen(url, timeout=30).read()
    n += 1
print(n, time.perf_counter() - t0, flush=True)
