"""Which event loops the async tests run on.

Tests under ``tests/behaviour`` state asyncio's documented behaviour and run the same
body on stock asyncio and on sysletloop (pytest-asyncio's loop-factory hook), so a
difference between the two shows up as one failing parameter. Tests under
``tests/syslet`` cover what only a syslet loop does. Other async tests get stock asyncio.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

import sysletloop

LoopFactory = Callable[[], asyncio.AbstractEventLoop]

LOOP_FACTORIES: dict[str, LoopFactory] = {
    "asyncio": asyncio.new_event_loop,
    "syslet": sysletloop.new_event_loop,
}

_HERE = Path(__file__).parent


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, LoopFactory]:
    path = Path(str(item.path))
    if _HERE / "behaviour" in path.parents:
        return LOOP_FACTORIES
    if _HERE / "syslet" in path.parents:
        return {"syslet": sysletloop.new_event_loop}
    return {"asyncio": asyncio.new_event_loop}


@pytest.fixture(params=sorted(LOOP_FACTORIES))
def loop_factory(request: pytest.FixtureRequest) -> LoopFactory:
    """For synchronous tests that drive a loop themselves (asyncio.Runner and friends)."""
    return LOOP_FACTORIES[request.param]
