"""How users start a syslet loop: a factory, a policy, and ``run()`` (as uvloop has).

``loop_factory`` is the way forward: ``asyncio.run(main, loop_factory=new_event_loop)``
(3.12+), ``asyncio.Runner(loop_factory=...)`` (3.11+) and :func:`run` (every version).
The policy stays for code that still sets one: 3.14 deprecated asyncio's policy system
for removal in 3.16, so from 3.14 on our class derives from the class that asyncio's
public ``DefaultEventLoopPolicy`` name resolves to (touching the name itself warns).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import sys
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


def _default_policy_class() -> type[Any]:
    """asyncio's default policy class, reached without the 3.14+ deprecation warning
    (``unix_events._DefaultEventLoopPolicy`` is what the public name resolves to)."""
    if sys.version_info < (3, 14):
        return asyncio.DefaultEventLoopPolicy
    policy: type[Any] = vars(asyncio.unix_events)["_DefaultEventLoopPolicy"]
    return policy


class EventLoopPolicy(_default_policy_class()):  # type: ignore[misc]
    """The default asyncio policy, making syslet loops. For
    ``asyncio.set_event_loop_policy(sysletloop.EventLoopPolicy())`` (deprecated by asyncio
    from 3.14 on, with the whole policy system: prefer ``loop_factory``)."""

    def __init__(self, **options: Any) -> None:
        LoopOptions.from_mapping(options)  # fail now, not at the first new loop
        super().__init__()
        self._syslet_loop_options = dict(options)

    def new_event_loop(self) -> SysletEventLoop:
        return SysletEventLoop(**self._syslet_loop_options)


def run(main: Coroutine[Any, Any, T], *, debug: bool | None = None, **options: Any) -> T:
    """Run ``main`` on a new syslet loop and return its result, like ``asyncio.run``."""
    try:
        if asyncio._get_running_loop() is not None:
            raise RuntimeError("sysletloop.run() cannot be called from a running event loop")
        LoopOptions.from_mapping(options)
    except BaseException:
        # As asyncio.run does when it refuses: the coroutine will never run, so close it
        # (no "coroutine was never awaited" warning after the real error).
        if inspect.iscoroutine(main):
            main.close()
        raise
    factory = functools.partial(new_event_loop, **options)
    with asyncio.Runner(debug=debug, loop_factory=factory) as runner:
        return runner.run(main)
