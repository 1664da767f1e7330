"""``await sysletloop.call(fn, *args, **kwargs)``: a blocking call, syslet-style."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import types
from collections.abc import Callable
from typing import Any, TypeVar

from ._loop import SysletEventLoop, _check_blocking_callable
from ._takeback import SEND_AWAY

__all__ = ["call", "call_eager"]

T = TypeVar("T")

_get_running_loop = asyncio.get_running_loop
_CoroutineType = types.CoroutineType


async def call(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run the blocking callable ``fn(*args, **kwargs)`` and return its result.

    On a :class:`SysletEventLoop` it starts inline in the loop's thread and moves the
    loop to another thread only if it blocks; elsewhere it falls back to
    ``asyncio.to_thread``. ``fn`` runs in a copy of the caller's context. Cancelling the
    awaiting task cancels the wait at once (a call already running finishes in its
    thread; its outcome is dropped).
    """
    _check_blocking_callable(fn, "call")
    loop = _get_running_loop()
    if isinstance(loop, SysletEventLoop):
        loop._check_closed()  # syslet_call's checks, each once
        return await loop._submit(fn, args, kwargs, contextvars.copy_context())
    return await asyncio.to_thread(functools.partial(fn, *args, **kwargs))


async def call_eager(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run the blocking callable ``fn(*args, **kwargs)`` right now, inside the calling
    task's step, and return its result.

    When ``fn`` does not block this costs about what calling ``fn`` directly costs: no
    future, no suspension, no other task runs in between. If it blocks past the
    threshold, the loop moves to another thread and keeps serving other tasks; when
    ``fn`` returns, this task waits for the loop to come back to its thread before it
    goes on (so a coroutine never runs on a thread that does not own the loop).
    Differences from :func:`call`: ``fn`` runs in the task's own context (like any
    function the coroutine calls), sees the running loop, is not counted against
    ``max_blocked``, and cannot be interrupted by cancellation while it runs (the
    cancellation lands at the task's next ``await``). A callable the blocking predictor
    has seen block (or run slow) lately is not run in the step: it takes
    :func:`call`'s path instead (in a copy of the context, suspending the task), until
    the predictor forgets it. On other event loops it falls back to
    ``asyncio.to_thread``.
    """
    loop = _get_running_loop()
    if isinstance(loop, SysletEventLoop):
        if not callable(fn):
            _check_blocking_callable(fn, "call_eager")
        result = loop.call_eager(fn, args, kwargs)
        if result is SEND_AWAY:
            # Predicted to block (it blocked, or ran slow, lately): run it syslet-style,
            # suspending this task, rather than stall the loop inside the step.
            return await loop.syslet_call(fn, *args, **kwargs)
        if type(result) is _CoroutineType:
            result.close()
            raise TypeError(
                f"call_eager() runs blocking callables; {fn!r} returned a coroutine "
                "(await it instead)"
            )
        return result  # type: ignore[return-value]  # not SEND_AWAY: fn's own result
    _check_blocking_callable(fn, "call_eager")
    return await asyncio.to_thread(functools.partial(fn, *args, **kwargs))
