"""Tests of the benchmark harness (``benchmarks/``), not of sysletloop itself.

The harness lives at the repository root, outside the package: put the root on sys.path
so ``import benchmarks`` works however pytest was started.
"""

from __future__ import annotations

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

# rloop 0.5.0 drops its self-pipe socket pair without closing it (``RLoop._ssock_stop`` sets
# both to None, after every run of the loop), so the garbage collector closes them and
# warns (ResourceWarning, attributed to the module ``rloop.loop``). Not ours to fix, and
# harmless to a benchmark; under this suite's warnings-as-errors it would fail every test
# that runs rloop. So that one warning, from that one module, is ignored here; a socket
# the harness itself leaks still fails the test.
RLOOP_SOCKET_LEAK = r"ignore:unclosed <socket\.socket:ResourceWarning:rloop\.loop"
# rloop 0.5.0 also calls asyncio.iscoroutinefunction, which 3.14+ deprecates (for removal
# in 3.16): the same treatment, for that message from rloop's modules only.
RLOOP_DEPRECATED_CALL = (
    r"ignore:'asyncio\.iscoroutinefunction' is deprecated:DeprecationWarning:rloop"
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # A conftest's collection hook sees the whole session's items: mark ours only.
    here = os.path.dirname(os.path.abspath(__file__))
    for item in items:
        if str(item.path).startswith(here + os.sep):
            item.add_marker(pytest.mark.filterwarnings(RLOOP_SOCKET_LEAK))
            item.add_marker(pytest.mark.filterwarnings(RLOOP_DEPRECATED_CALL))
