"""``await sysletloop.call(fn, *args, **kwargs)``: a blocking call, syslet-style."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any, TypeVar

from ._loop import SysletEventLoop, _check_blocking_callable

__all__ = ["call"]

T = TypeVar("T")


async def call(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run the blocking callable ``fn(*args, **kwargs)`` and return its result.

    On a :class:`SysletEventLoop` it starts inline in the loop's thread and moves the
    loop to another thread only if it blocks; elsewhere it falls back to
    ``asyncio.to_thread``. ``fn`` runs in a copy of the caller's context. Cancelling the
    awaiting task cancels the wait at once (a call already running finishes in its
    thread; its outcome is dropped).
    """
    _check_blocking_callable(fn, "call")
    loop = asyncio.get_running_loop()
    if isinstance(loop, SysletEventLoop):
        return await loop.syslet_call(fn, *args, **kwargs)
    return await asyncio.to_thread(functools.partial(fn, *args, **kwargs))
