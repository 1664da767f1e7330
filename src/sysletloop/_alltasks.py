"""``asyncio.all_tasks()`` for a loop whose tasks live in several threads' lists (3.14+).

CPython 3.14 moved asyncio's task bookkeeping into per-thread C state: a task is linked,
when it is created, into the task list of the *thread that creates it*, and stays there
until it is done (or that thread exits, when its leftovers move to an interpreter-wide
list). ``all_tasks(loop)`` then takes a shortcut: when ``loop`` is the running loop of the
calling thread it reads only that thread's list, on the assumption that a loop's tasks
are all made on the one thread that runs it. A syslet loop breaks that assumption by
design: after a migration it creates tasks on another thread, so from the loop's thread
the shortcut misses every task made before the move (or after, once the loop has moved
again) — ``for t in asyncio.all_tasks(): t.cancel()`` in a shutdown handler would leave
most of them running. Called from a thread where ``loop`` is not the running loop,
``all_tasks`` reads every thread's list and the interpreter's, and is right.

So, on 3.14+, importing sysletloop wraps ``asyncio.all_tasks`` (and
``asyncio.tasks.all_tasks``, the name asyncio's own ``Runner`` uses): for a loop that
spans threads (a class attribute, ``_syslet_spans_threads``) the wrapper clears this
thread's running loop around the call, so CPython takes its every-thread path; for any
other loop it calls CPython's function unchanged. Code that bound ``all_tasks`` before
importing sysletloop (``from asyncio import all_tasks`` earlier in the process) keeps the
shortcut; the README says so.

Thread rules: the wrapper touches only the calling thread's running-loop slot, and puts
it back before returning (even on error), so nothing is visible to any other thread or
to the caller. Nothing here leans on the GIL.

Rejected alternatives
    * Creating every task on the loop's home thread: CPython links a task into the list
      of whichever thread runs ``Task.__init__``; a loop cannot choose the list.
    * Leaving it as a documented difference: ``all_tasks`` is how servers shut down and
      how monitors (aiomonitor, the ``asyncio`` REPL) list tasks; a silent miss is worse
      than a two-line wrapper.
"""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["install"]

_AllTasks = Callable[..., "set[asyncio.Task[Any]]"]


def _every_thread(c_all_tasks: _AllTasks) -> _AllTasks:
    get_running = asyncio.events._get_running_loop
    set_running = asyncio.events._set_running_loop

    @functools.wraps(c_all_tasks)
    def all_tasks(loop: asyncio.AbstractEventLoop | None = None) -> set[asyncio.Task[Any]]:
        if loop is None:
            loop = asyncio.get_running_loop()
        if not getattr(loop, "_syslet_spans_threads", False):
            return c_all_tasks(loop)
        running = get_running()
        if running is not loop:
            return c_all_tasks(loop)  # already CPython's every-thread path
        set_running(None)
        try:
            return c_all_tasks(loop)
        finally:
            set_running(running)

    return all_tasks


def install() -> None:
    """Wrap asyncio's ``all_tasks`` (3.14+; idempotent)."""
    if sys.version_info < (3, 14):
        return  # 3.11-3.13 keep one set of all tasks for every thread
    current = asyncio.tasks.all_tasks
    if getattr(current, "__wrapped__", None) is not None:
        return
    wrapped = _every_thread(current)
    asyncio.tasks.all_tasks = wrapped
    asyncio.all_tasks = wrapped
