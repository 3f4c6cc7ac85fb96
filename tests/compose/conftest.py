"""The compose tests drive the stack with the end-to-end tests' helpers (tests/e2e/e2ekit.py) and
their own (tests/composekit.py)."""

import os
import sys

_E2E = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "e2e")
if _E2E not in sys.path:
    sys.path.insert(0, _E2E)
