"""Run a test suite on sysletloop: a pytest plugin for pytest-asyncio, and anyio's backend.

pytest-asyncio (1.4 and later) asks the ``pytest_asyncio_loop_factories`` hook which event
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

An older pytest-asyncio has no such hook and would never call this one: its tests would run
on the stock loop while the user believes they run on sysletloop. So the plugin checks, once
the plugins are loaded, that someone declares the hook, and fails the session with a
:class:`pytest.UsageError` naming the version found and the way out (upgrade, or the
``event_loop_policy`` fixture that older versions honour) -- never silence. Rejected: a
fallback that overrides ``event_loop_policy`` itself, because the fixture cannot honour
``sysletloop_loops = syslet asyncio`` and a plugin that half works is the trap again.

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
import sys
from collections.abc import Callable, Mapping
from importlib import metadata
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
_HOOK = "pytest_asyncio_loop_factories"
#: The first pytest-asyncio with the hook (1.4.0 declares it; 1.3.0 does not).
MIN_PYTEST_ASYNCIO = "1.4"


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
    # Every plugin is registered by now, and pytest-asyncio declares its hooks when it is
    # registered (pytest_addoption), so a missing declaration means an old or absent one.
    _require_loop_factory_hook(config)
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


def _require_loop_factory_hook(config: pytest.Config) -> None:
    """Fail the session unless pytest-asyncio will call our hook (see the module docstring)."""
    caller = getattr(config.hook, _HOOK, None)
    if caller is not None and caller.has_spec():
        return
    if config.pluginmanager.hasplugin("asyncio"):
        found = f"pytest-asyncio {_pytest_asyncio_version()} has no {_HOOK} hook"
    else:
        found = "pytest-asyncio is not loaded (not installed, or disabled with -p no:asyncio)"
    raise pytest.UsageError(
        f"sysletloop.testing needs pytest-asyncio {MIN_PYTEST_ASYNCIO} or later: {found}, "
        "so async tests would run on the stock asyncio loop, not on sysletloop. Upgrade "
        f"(pip install 'pytest-asyncio>={MIN_PYTEST_ASYNCIO}'), or drop the plugin and "
        "override pytest-asyncio's event_loop_policy fixture to return "
        "sysletloop.EventLoopPolicy() (the sysletloop quick start, section pytest)."
    )


def _pytest_asyncio_version() -> str:
    """The loaded pytest-asyncio's version: its module's, else the installed distribution's."""
    module = sys.modules.get("pytest_asyncio")
    version = getattr(module, "__version__", None)
    if isinstance(version, str):
        return version
    try:
        return metadata.version("pytest-asyncio")
    except metadata.PackageNotFoundError:
        return "(version unknown)"


def _chosen_factories(config: pytest.Config) -> dict[str, LoopFactory]:
    names: list[str] = config.getini(_INI)
    unknown = [name for name in names if name not in LOOP_FACTORIES]
    if unknown or not names:
        raise pytest.UsageError(
            f"{_INI} = {' '.join(names)!r}: expected one or more of {', '.join(LOOP_FACTORIES)}"
        )
    return {name: LOOP_FACTORIES[name] for name in names}
