"""Run a test suite on sysletloop: a pytest plugin for pytest-asyncio, and anyio's backend.

pytest-asyncio (1.3 and later) asks the ``pytest_asyncio_loop_factories`` hook which event
loops each async test runs on. This module is a pytest plugin implementing that hook, so
a whole suite moves to sysletloop without touching a test::

    pytest -p sysletloop.testing

or, for good, in the suite's top-level ``conftest.py``::

    pytest_plugins = ["sysletloop.testing"]

The ini option ``sysletloop_loops`` chooses the loops, by name: ``syslet`` (the default)
runs every test on a :class:`~sysletloop.SysletEventLoop`; ``syslet asyncio`` runs each
test twice, on sysletloop and on stock asyncio, which is how to find a test that depends
on the loop. The plugin's hook runs last, so a ``pytest_asyncio_loop_factories`` of the
suite's own (in a ``conftest.py``) takes precedence, for the tests it covers.

For anyio's pytest plugin, parametrize the ``anyio_backend`` fixture with
:func:`anyio_backend`::

    @pytest.fixture(params=[sysletloop.testing.anyio_backend(), "trio"])
    def anyio_backend(request): return request.param

Importing this module imports pytest (it is a pytest plugin); the rest of sysletloop does
not need pytest.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from ._options import LoopOptions
from ._runner import new_event_loop

__all__ = ["LOOP_FACTORIES", "LoopFactory", "anyio_backend", "pytest_asyncio_loop_factories"]

LoopFactory = Callable[[], asyncio.AbstractEventLoop]

#: The loops ``sysletloop_loops`` may name.
LOOP_FACTORIES: Mapping[str, LoopFactory] = {
    "syslet": new_event_loop,
    "asyncio": asyncio.new_event_loop,
}

_INI = "sysletloop_loops"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        _INI,
        type="args",
        default=["syslet"],
        help=(
            "event loops pytest-asyncio runs each async test on: any of "
            f"{', '.join(LOOP_FACTORIES)} (default: syslet)"
        ),
    )


def pytest_configure(config: pytest.Config) -> None:
    _chosen_factories(config)  # a bad ini value fails the session now, not per test


@pytest.hookimpl(trylast=True, optionalhook=True)
def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, LoopFactory]:
    """pytest-asyncio's hook: the loops ``item`` runs on (``sysletloop_loops``)."""
    return _chosen_factories(config)


def anyio_backend(**options: Any) -> tuple[str, dict[str, Any]]:
    """An ``anyio_backend`` value that runs a test on a syslet loop with ``options``
    (see :class:`~sysletloop.LoopOptions`): anyio's asyncio backend with sysletloop as
    its ``loop_factory``."""
    LoopOptions.from_mapping(options)  # fail at collection, not in the first test
    factory: LoopFactory = new_event_loop
    if options:
        factory = functools.partial(new_event_loop, **options)
    return ("asyncio", {"loop_factory": factory})


def _chosen_factories(config: pytest.Config) -> dict[str, LoopFactory]:
    names: list[str] = config.getini(_INI)
    unknown = [name for name in names if name not in LOOP_FACTORIES]
    if unknown or not names:
        raise pytest.UsageError(
            f"{_INI} = {' '.join(names)!r}: expected one or more of {', '.join(LOOP_FACTORIES)}"
        )
    return {name: LOOP_FACTORIES[name] for name in names}
