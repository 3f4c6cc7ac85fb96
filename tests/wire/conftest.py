"""Shared set-up for the wire codec tests.

The helpers themselves (reference algorithms, sample packets, error assertions)
live in wirekit.py next to this file; this conftest makes that module importable
whatever pytest import mode is in use.
"""

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
