"""Tests of the benchmark harness (``benchmarks/``), not of sysletloop itself.

The harness lives at the repository root, outside the package: put the root on sys.path
so ``import benchmarks`` works however pytest was started.
"""

from __future__ import annotations

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
