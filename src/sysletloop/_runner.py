"""How users start a syslet loop: a factory, a policy, and ``run()`` (as uvloop has)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Coroutine
from typing import Any, TypeVar

from ._loop import SysletEventLoop
from ._options import LoopOptions

__all__ = ["EventLoopPolicy", "new_event_loop", "run"]

T = TypeVar("T")


def new_event_loop(**options: Any) -> SysletEventLoop:
    """A new :class:`SysletEventLoop`; usable as ``loop_factory`` of ``asyncio.run``
    (3.12+) and ``asyncio.Runner``."""
    return SysletEventLoop(**options)


class EventLoopPolicy(asyncio.DefaultEventLoopPolicy):
    """The default asyncio policy, making syslet loops. For
    ``asyncio.set_event_loop_policy(sysletloop.EventLoopPolicy())``."""

    def __init__(self, **options: Any) -> None:
        LoopOptions.from_mapping(options)  # fail now, not at the first new loop
        super().__init__()
        self._syslet_loop_options = dict(options)

    def new_event_loop(self) -> SysletEventLoop:
        return SysletEventLoop(**self._syslet_loop_options)


def run(main: Coroutine[Any, Any, T], *, debug: bool | None = None, **options: Any) -> T:
    """Run ``main`` on a new syslet loop and return its result, like ``asyncio.run``."""
    if asyncio._get_running_loop() is not None:
        raise RuntimeError("sysletloop.run() cannot be called from a running event loop")
    LoopOptions.from_mapping(options)
    factory = functools.partial(new_event_loop, **options)
    with asyncio.Runner(debug=debug, loop_factory=factory) as runner:
        return runner.run(main)
