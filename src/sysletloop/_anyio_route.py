"""``route_anyio``: ``anyio.to_thread.run_sync`` on a syslet loop takes the syslet path.

FastAPI and Starlette send every blocking piece of a request (``def`` endpoints, sync
dependencies, ``run_in_threadpool``, sync iterators of ``StreamingResponse``, sync
background tasks, the file work of ``FileResponse``/``StaticFiles``) through
``anyio.to_thread.run_sync``, which on the asyncio backend hands each call to one of
anyio's own worker threads. This module makes that function, on a loop created with
``route_anyio=True``, submit the call to the loop like ``run_in_executor`` does: it starts
inline and the loop moves only if it blocks. Every other loop (stock asyncio, uvloop, a
syslet loop without the option) keeps anyio's worker threads, untouched.

Glossary
    routed call    a ``to_thread.run_sync`` call made on a loop with ``route_anyio``.
    worker locals  what anyio's ``claim_worker_thread`` puts in anyio's thread-local
                   (the event loop token, and before 4.11 the backend class): what
                   ``from_thread.run``/``run_sync`` look up to find the loop.
    worker scope   the cancel scope ``from_thread.check_cancelled`` reads
                   (``threadlocals.current_cancel_scope``), chosen as anyio chooses it.

The one anyio point hooked
    ``anyio._backends._asyncio.AsyncIOBackend.run_sync_in_worker_thread``, the backend
    classmethod ``anyio.to_thread.run_sync`` calls (anyio's own ``open_file``, ``Path``
    and friends, and Starlette's ``run_in_threadpool``, reach it through that function),
    is replaced,
    once per process, by a classmethod that looks at the running loop: a syslet loop with
    ``route_anyio`` gets :func:`_run_routed`; any other loop gets anyio's original method,
    called as it was. It is installed when the first loop with the option is created,
    never by importing sysletloop.

anyio internals relied on (read in anyio 4.4.0 through 4.16.0, which all agree)
    * ``AsyncIOBackend.run_sync_in_worker_thread(func, args, abandon_on_cancel, limiter)``
      and its behaviour, copied here: a cancellation check first; a given limiter held for
      the whole call; a ``CancelScope(shield=not abandon_on_cancel)``; ``func`` run in a
      copy of the caller's context with the current async library set to ``None``; the
      worker scope is that scope when ``abandon_on_cancel`` or it has no parent, else
      its parent (``CancelScope._parent_scope``).
    * ``anyio._core._eventloop.threadlocals`` and ``claim_worker_thread(backend, token)``
      (what ``from_thread`` finds: its layout changed in 4.11, so we let anyio's own
      function fill it in once per loop and copy the result); ``current_cancel_scope``
      in the same thread-local (``check_cancelled``).
    * ``set_current_async_library`` (4.12+), else ``sniffio.current_async_library_cvar``.
    The version is checked against that range when the hook is installed: an anyio
    outside it is refused with an error naming the version, rather than guessed at.

FastAPI and Starlette details relied on (for the predictor only: see ``_profiled``)
    FastAPI's ``partial(_run_sync_endpoint, function=endpoint, ...)`` and Starlette's
    ``_next(iterator)``: their calls are profiled per endpoint and per generator function.
    If either changes, calls are profiled per trampoline: still correct, less precise.

Thread rules
    :func:`install` runs on the thread creating a loop; it patches a class attribute
    under ``_install_lock`` (``_installed`` is read without it first: it only ever goes
    from False to True, after the patch). :func:`_run_routed` runs in a task on the
    loop's owner, and so does :func:`_worker_locals`, which caches its answer in the
    loop's ``__dict__`` (owner only, like the rest of the loop's state).
    :func:`_in_worker` runs on whichever thread runs the call (the owner inline, the
    thread left behind when it blocked, or a spare the predictor sent it to); it touches
    only that thread's own thread-local dict, and puts back what was there before (an
    anyio worker thread that runs a syslet loop keeps its own token).

How ``from_thread`` works inside an inline call
    The call runs on the loop's thread, with the running loop cleared. ``from_thread.run``
    finds the loop in the worker locals, posts to it with ``call_soon_threadsafe`` and
    blocks on a future; the watchdog sees the call blocked past the threshold and hands
    the loop to another thread, which runs the callback and resolves the future; the
    call goes on. So a call into the loop from an inline call costs one threshold (1 ms)
    and one migration, and the predictor sends that callable to a spare next time.

Where it differs from anyio's threads, or matches it in a way worth saying (see
docs/fastapi.rst; anyio's own tests/test_to_thread.py and test_from_thread.py were run
with this option: the failures left are these)
    * ``limiter=None`` does not take a token of anyio's default limiter (40): calls that
      do not block use no thread, blocked calls are capped by ``max_blocked``. Setting
      ``current_default_thread_limiter().total_tokens`` has no effect on routed calls.
    * the thread running ``func`` is the loop's (``threading.current_thread()``,
      thread-locals, ``sqlite3``'s same-thread check: see the migration guide).
    * ``run_sync`` checks for cancellation but does not yield an extra time before the
      call: the call itself always suspends the task until the end of an iteration.
    * a call already submitted runs even if its task is cancelled before the loop starts
      it (anyio's worker checks for that, but has always picked the call up by then).
    * ``BlockingPortal`` methods refuse to be called from an inline call ("cannot be
      called from the event loop thread"): it *is* the thread the portal was made on.

Rejected alternatives
    * Replacing ``anyio.to_thread.run_sync``: modules that did ``from anyio.to_thread
      import run_sync`` (and anyio's own ``Path``/``open_file``, which call the module
      attribute) would miss it or not, depending on import order.
    * A thread-local fallback patched into ``anyio.from_thread``: it would change anyio
      for every thread, where setting anyio's own worker locals around each call changes
      nothing outside routed calls.
    * Something per loop instead of per process: anyio looks its backend class up by
      name ("asyncio") for every loop, and offers no per-loop hook for its threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
from collections.abc import Callable
from contextvars import copy_context
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from ._loop import SysletEventLoop

__all__ = ["ANYIO_VERSIONS", "install", "installed"]

#: The anyio versions (major, minor) whose internals this module was checked against.
ANYIO_VERSIONS = ((4, 4), (4, 16))

_install_lock = threading.Lock()
_installed = False
_original: Any = None  # anyio's run_sync_in_worker_thread (a classmethod object)

# Filled in by install(), from anyio (typed loosely: anyio is not a dependency).
_threadlocals: Any = None
_claim_worker_thread: Any = None
_backend_class: Any = None
_cancel_scope_class: Any = None


def _set_no_library(name: str | None) -> object:
    return None  # replaced by install()


_set_async_library: Callable[[str | None], object] = _set_no_library
_no_limiter = contextlib.nullcontext()
_shield = asyncio.shield


def installed() -> bool:
    """Whether the hook is in place (a loop with ``route_anyio`` was created)."""
    return _installed


def _parse_version(text: str) -> tuple[int, int] | None:
    parts = text.split(".")
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        return None


def install() -> None:
    """Hook anyio's asyncio backend, once per process. Raises ``ImportError`` without
    anyio and ``RuntimeError`` on an anyio version this module does not know."""
    global _installed
    if _installed:
        return
    with _install_lock:
        if _installed:
            return
        _check_version()
        _hook()
        _installed = True


def _check_version() -> None:
    try:
        text = version("anyio")
    except PackageNotFoundError:
        raise ImportError("route_anyio=True needs anyio installed (4.4 to 4.16)") from None
    found = _parse_version(text)
    low, high = ANYIO_VERSIONS
    if found is None or not low <= found <= high:
        raise RuntimeError(
            f"route_anyio=True: anyio {text} is not a version sysletloop knows "
            f"(it was checked against anyio {low[0]}.{low[1]} through {high[0]}.{high[1]}, "
            "whose worker-thread internals it relies on); use one of those, or create the "
            "loop without route_anyio"
        )


def _hook() -> None:
    global _original, _threadlocals, _claim_worker_thread, _backend_class
    global _cancel_scope_class, _set_async_library
    from anyio._backends import _asyncio as backend
    from anyio._core import _eventloop

    backend_class = backend.AsyncIOBackend
    original = vars(backend_class).get("run_sync_in_worker_thread")
    claim = getattr(_eventloop, "claim_worker_thread", None)
    locals_ = getattr(_eventloop, "threadlocals", None)
    scope_class = getattr(backend, "CancelScope", None)
    if (
        not isinstance(original, classmethod)
        or claim is None
        or not isinstance(locals_, threading.local)
        or scope_class is None
    ):
        raise RuntimeError(
            "route_anyio=True: this anyio's asyncio backend lacks what sysletloop hooks "
            "(AsyncIOBackend.run_sync_in_worker_thread, claim_worker_thread, threadlocals)"
        )
    setter = getattr(_eventloop, "set_current_async_library", None)
    if setter is None:  # before 4.12: sniffio is a dependency of anyio
        import sniffio

        setter = sniffio.current_async_library_cvar.set
    _original = original
    _threadlocals = locals_
    _claim_worker_thread = claim
    _backend_class = backend_class
    _cancel_scope_class = scope_class
    _set_async_library = setter
    # The hook itself: anyio's types for the method are anyio's business.
    backend_class.run_sync_in_worker_thread = classmethod(  # type: ignore[method-assign,assignment]
        _run_sync_in_worker_thread
    )


# ------------------------------------------------------------------ the hook


async def _run_sync_in_worker_thread(
    cls: Any,
    func: Callable[..., Any],
    args: tuple[Any, ...],
    abandon_on_cancel: bool = False,
    limiter: Any = None,
) -> Any:
    """anyio's backend method, as installed: routed on a syslet loop with the option,
    anyio's own everywhere else."""
    loop = asyncio._get_running_loop()
    if isinstance(loop, SysletEventLoop) and loop.syslet_options.route_anyio:
        return await _run_routed(loop, func, args, abandon_on_cancel, limiter)
    return await _original.__func__(cls, func, args, abandon_on_cancel, limiter)


async def _run_routed(
    loop: SysletEventLoop,
    func: Callable[..., Any],
    args: tuple[Any, ...],
    abandon_on_cancel: bool,
    limiter: Any,
) -> Any:
    # As anyio: a scope already cancelled raises here and func never runs. anyio yields
    # once here too; we do not, as the call below always suspends the task anyway.
    await _backend_class.checkpoint_if_cancelled()
    async with limiter if limiter is not None else _no_limiter:
        with _cancel_scope_class(shield=not abandon_on_cancel) as scope:
            parent = scope._parent_scope
            worker_scope = scope if abandon_on_cancel or parent is None else parent
            context = copy_context()
            context.run(_set_async_library, None)
            call = functools.partial(_in_worker, _worker_locals(loop), worker_scope, func)
            future = loop._submit(call, args, None, context, _profiled(func, args))
            # Once handed over, the call runs even if the task is cancelled before the
            # loop starts it (as a call handed to an anyio worker does): the shield keeps
            # the task's cancellation off the loop's future, and drops the outcome.
            return await _shield(future)


def _profiled(func: Callable[..., Any], args: tuple[Any, ...]) -> object:
    """What the blocking predictor should learn about: the callable itself, except for
    the frameworks' trampolines that every call goes through. FastAPI runs every ``def``
    endpoint as ``partial(_run_sync_endpoint, function=endpoint, arguments=...)``, and
    Starlette every sync iterator of a streaming response as ``_next(iterator)``: keyed
    by the trampoline, one slow endpoint (or stream) would send all the others to spare
    threads."""
    if type(func) is functools.partial:
        endpoint = func.keywords.get("function")
        if endpoint is not None and getattr(func.func, "__name__", "") == "_run_sync_endpoint":
            return endpoint
    elif args and getattr(func, "__name__", "") == "_next":
        code = getattr(args[0], "gi_code", None)
        if code is not None:
            return code  # a generator: its function's code
    return func


def _worker_locals(loop: SysletEventLoop) -> dict[str, Any]:
    """What anyio's claim_worker_thread sets in its thread-local for ``loop``, worked
    out once per loop (on the loop's thread, between two calls) by letting it run."""
    cached: dict[str, Any] | None = vars(loop).get("_syslet_anyio_locals")
    if cached is not None:
        return cached
    mine: dict[str, Any] = vars(_threadlocals)
    saved = dict(mine)
    mine.clear()
    try:
        with _claim_worker_thread(_backend_class, loop):
            claimed = dict(mine)
    finally:
        mine.clear()
        mine.update(saved)
    vars(loop)["_syslet_anyio_locals"] = claimed
    return claimed


def _in_worker(
    worker_locals: dict[str, Any], scope: object, func: Callable[..., Any], *args: Any
) -> Any:
    """Run ``func(*args)`` as if in an anyio worker thread, on whichever thread this is."""
    mine: dict[str, Any] = vars(_threadlocals)
    saved = dict(mine) if mine else None
    mine.update(worker_locals)
    mine["current_cancel_scope"] = scope
    try:
        return func(*args)
    except StopIteration as exc:  # anyio's message for it
        raise RuntimeError("coroutine raised StopIteration") from exc
    finally:
        mine.clear()
        if saved:
            mine.update(saved)
