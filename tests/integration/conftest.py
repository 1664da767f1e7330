"""Integration tests: sysletloop under the real packages users bring (anyio, aiofiles,
pytest-asyncio, sqlite3).

pytest-asyncio tests here run on both loops, sysletloop and stock asyncio, with the
factories that ``sysletloop.testing`` (the plugin users enable) offers, so a test that
passes on one and fails on the other shows as one failing parameter. A test about what
only a syslet loop does says so with ``@pytest.mark.asyncio(loop_factories=["syslet"])``.
This hook is nearer the tests than the suite's own, so it is the one asked.
"""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from sysletloop.testing import LOOP_FACTORIES, LoopFactory


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, LoopFactory]:
    return LOOP_FACTORIES
