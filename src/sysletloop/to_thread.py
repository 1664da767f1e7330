"""``await sysletloop.to_thread.run_sync(fn, *args)``: anyio's ``to_thread.run_sync``,
syslet-style.

Code written for anyio sends blocking work to a thread with ``anyio.to_thread.run_sync``.
On the asyncio backend anyio runs it on anyio's own worker threads, not through
``run_in_executor``, so a syslet loop cannot take it over by itself. This module offers the
same function, with the same signature, that takes the syslet path when the running loop
is a :class:`~sysletloop.SysletEventLoop`: ``fn`` starts inline in the loop's thread and
the loop moves to another thread only if ``fn`` blocks. Anywhere else (stock asyncio,
uvloop, trio) it calls ``anyio.to_thread.run_sync`` unchanged, so a library can use it
without knowing which loop it runs on.

What is the same as anyio's, on the syslet path
    * ``fn`` runs in a copy of the caller's context (``contextvars``).
    * Cancellation, with ``abandon_on_cancel=False`` (the default): the wait is shielded.
      A cancel scope cancelled while ``fn`` runs does not interrupt the wait: ``run_sync``
      returns ``fn``'s result and the cancellation is delivered at the task's next
      checkpoint. A scope already cancelled when ``run_sync`` is called raises at once
      and ``fn`` never runs.
    * With ``abandon_on_cancel=True`` the task is cancelled at once; ``fn`` finishes in
      the thread it is running on and its outcome is dropped. A call cancelled before it
      started never runs.
    * ``limiter``: when given, one token of that :class:`anyio.CapacityLimiter` is held
      for the whole call, as anyio does.

What differs, on the syslet path
    * ``limiter=None`` does *not* apply anyio's default thread limiter (40 tokens). A call
      that does not block uses no thread at all; calls that block are capped by the loop's
      own ``max_blocked`` option (calls over the cap wait, first in first out).
    * ``fn`` runs on the loop's thread when it does not block, and stays on it when it
      does (it is the loop that moves): thread identity, thread-locals and
      ``threading.current_thread()`` inside ``fn`` depend on timing. See the migration
      guide in the documentation.
    * ``fn`` does not run in an anyio worker thread, so ``anyio.from_thread.run`` and
      ``anyio.from_thread.run_sync`` without a ``token`` raise
      ``anyio.NoEventLoopError`` inside it, as in any thread anyio did not start. With an
      explicit ``token=anyio.lowlevel.current_token()`` they work, but a call into the loop
      from an inline ``fn`` waits until the watchdog declares ``fn`` blocked and moves the
      loop (``block_threshold``). Callables that call back into the loop belong on
      ``anyio.to_thread.run_sync``.

To send anyio's own ``to_thread.run_sync`` (and so FastAPI's and Starlette's thread
work) down the syslet path, with ``from_thread`` working inside it, create the loop with
``route_anyio=True`` instead (``sysletloop._anyio_route``).

anyio is needed only when ``run_sync`` is called (the import is inside); importing this
module needs nothing but the standard library.
"""

from __future__ import annotations

import asyncio
import contextlib
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar, TypeVarTuple

from ._loop import SysletEventLoop, _check_blocking_callable

if TYPE_CHECKING:
    from anyio import CapacityLimiter

__all__ = ["run_sync"]

T_Retval = TypeVar("T_Retval")
PosArgsT = TypeVarTuple("PosArgsT")


async def run_sync(
    func: Callable[[*PosArgsT], T_Retval],
    *args: *PosArgsT,
    abandon_on_cancel: bool = False,
    cancellable: bool | None = None,
    limiter: CapacityLimiter | None = None,
) -> T_Retval:
    """Call ``func(*args)`` the syslet way on a syslet loop, else in an anyio worker thread.

    :param func: a blocking callable (not a coroutine function).
    :param args: positional arguments for ``func``.
    :param abandon_on_cancel: ``True`` to let a cancelled task go on at once, leaving
        ``func`` to finish on its own (its outcome dropped); ``False`` to wait for
        ``func`` whatever happens, the cancellation taking effect at the task's next
        checkpoint after it.
    :param cancellable: deprecated alias of ``abandon_on_cancel`` (as in anyio); wins if
        both are given.
    :param limiter: an :class:`anyio.CapacityLimiter` to hold a token of during the call.
        ``None``: on a syslet loop no limiter (the loop's ``max_blocked`` caps blocked
        calls); elsewhere anyio's default limiter.
    :return: what ``func`` returned.
    :raises TypeError: if ``func`` is not callable or is a coroutine function.
    :raises ModuleNotFoundError: if anyio is not installed.
    """
    if cancellable is not None:
        abandon_on_cancel = cancellable
        warnings.warn(
            "The `cancellable=` keyword argument to `sysletloop.to_thread.run_sync` is "
            "deprecated (as in anyio since 4.1.0); use `abandon_on_cancel=` instead",
            DeprecationWarning,
            stacklevel=2,
        )
    _check_blocking_callable(func, "run_sync")
    import anyio
    import anyio.lowlevel
    import anyio.to_thread

    loop = asyncio.events._get_running_loop()
    if not isinstance(loop, SysletEventLoop):
        return await anyio.to_thread.run_sync(
            func, *args, abandon_on_cancel=abandon_on_cancel, limiter=limiter
        )

    # anyio's run_sync is a checkpoint: a cancelled scope raises before func can start.
    # The wait below always suspends the task (a syslet call resolves at the end of an
    # iteration at the earliest), so this check need not yield itself.
    await anyio.lowlevel.checkpoint_if_cancelled()
    async with limiter if limiter is not None else contextlib.nullcontext():
        # Our own scope, never cancelled itself, so it cannot swallow a cancellation.
        with anyio.CancelScope(shield=not abandon_on_cancel):
            result = await loop.syslet_call(func, *args)
    return result
