"""What a thread carries while it runs a loop's iterations, and puts down around a call.

asyncio keeps three pieces of loop state per *thread*, not per loop: the running loop
(``asyncio._get_running_loop()``), the async-generator hooks (``sys.set_asyncgen_hooks``)
and, in debug mode, the coroutine origin tracking depth. (3.14+ keeps two more per
thread, in C: the current task, which is set and cleared within a task step and so is
never carried across a hand-over, and the list of tasks the thread created, which stays
with that thread: see ``_alltasks``.) Stock asyncio sets them once in
``run_forever`` because its loop never changes thread. A syslet loop changes thread, and
runs user callables inline that must see what they would see in a pool thread. So each
thread that owns the loop holds a :class:`OwnerThreadState`:

    enter     on becoming the owner: remember the thread's own values, install the loop's.
    suspend   around an inline call: put the thread's own values back, so the call sees no
              running loop (``asyncio.run()`` works inside it) and no loop hooks.
    resume    after the inline call, if this thread is still the owner: install again.
    leave     on giving up the loop for good (loop stopped): put the thread's own back.

A thread deposed during an inline call is already suspended; it only has to forget.

Thread rules: every method acts on the calling thread's state and must be called by the
thread that created the object.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from typing import Any

__all__ = ["OwnerThreadState", "driving"]

# The state this thread drives a loop with, set when it starts driving (``_drive``): for
# the rare path that must find its own thread's state from inside an iteration.
driving = threading.local()

# asyncio's value for debug mode (asyncio.constants.DEBUG_STACK_DEPTH).
_DEBUG_STACK_DEPTH: int = getattr(getattr(asyncio, "constants", None), "DEBUG_STACK_DEPTH", 10)


class OwnerThreadState:
    __slots__ = ("_loop", "_loop_hooks", "_native_depth", "_native_hooks", "_tracking", "deposed")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        hooked: Any = loop
        # Made once: resume runs after every inline call.
        self._loop_hooks = (hooked._asyncgen_firstiter_hook, hooked._asyncgen_finalizer_hook)
        self._native_hooks = sys.get_asyncgen_hooks()
        self._native_depth = sys.get_coroutine_origin_tracking_depth()
        self._tracking = False
        # Set when this thread loses the loop in the middle of an iteration (its inline
        # call blocked, or it granted a take-back); cleared when it starts driving.
        # Written and read by this thread only, like everything here.
        self.deposed = False

    def enter(self) -> None:
        self.resume()

    def resume(self) -> None:
        loop: Any = self._loop
        asyncio._set_running_loop(loop)
        sys.set_asyncgen_hooks(*self._loop_hooks)
        if loop._debug != self._tracking:
            self.set_tracking(bool(loop._debug))

    def suspend(self) -> None:
        asyncio._set_running_loop(None)
        sys.set_asyncgen_hooks(*self._native_hooks)
        if self._tracking:
            sys.set_coroutine_origin_tracking_depth(self._native_depth)
            self._tracking = False

    leave = suspend

    def set_tracking(self, enabled: bool) -> None:
        """Coroutine origin tracking for debug mode, on this thread."""
        if enabled == self._tracking:
            return
        sys.set_coroutine_origin_tracking_depth(
            _DEBUG_STACK_DEPTH if enabled else self._native_depth
        )
        self._tracking = enabled
