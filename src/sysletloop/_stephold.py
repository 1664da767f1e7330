"""Holding a thread at the first bytecode after a blocking call: ``sys.monitoring`` holds.

A task step that blocks in a C call written straight in its code (``time.sleep``,
``socket.recv``) can be *claimed*: the loop goes on on another thread while the call
blocks (``_steps``). The thread that runs the step must then not execute one more
bytecode of it until it owns the loop again. This module is the catch that makes it
stop there: it turns on ``sys.monitoring``'s local INSTRUCTION events for the code
objects of the blocked thread's frames, and when that thread executes its next
instruction in any of them (the one after the returned CALL, or an exception handler's
first one when the call raised), the callback runs first, on that thread, with nothing
of the step run yet. The callback hands over to the loop (``StepHold.on_resume``, which
waits for the loop to be granted back), and the step goes on as the owner.

Glossary
    hold       one blocked thread, held or about to be: its ident, the code objects of
               its frame chain (innermost up to the step's root), and what to call
               when it resumes. At most one hold per thread.
    arm        set INSTRUCTION events on a hold's code objects; reference-counted per
               code object, since several held threads may run the same code.
    disarm     the reverse, at the last hold of a code object.

Thread rules
    ``arm``/``disarm`` run on any thread (the loop's sampler arms, the held thread
    disarms), under ``_lock``, which guards ``_armed`` and the ``set_local_events`` calls.
    ``_holds`` (thread ident -> hold) is written under ``_lock`` and read by the
    callback without it: a dict lookup is one atomic step under the GIL (a free-threaded
    build would make ``_holds`` a per-thread slot instead). ``release`` removes a hold
    exactly once, whoever calls it first (the held thread, or a sampler cancelling).

What fires, and why the whole chain is armed (measured on 3.12-3.15 by the feasibility
study, ``shared/design/STEPS.md``, and tested in ``tests/syslet/test_unwrapped_steps``):
when the blocked call returns, INSTRUCTION
fires at the instruction after its CALL in the innermost frame; when it raises, at the
first instruction of the handler that catches it, in whichever frame of the chain that
is. A coroutine body always has a handler of its own (the one that turns StopIteration
into RuntimeError), so an exception cannot leave a coroutine root unseen; a plain
callback's exception leaves to ``Handle._run``, which the caller arms too for that case.
LINE events fire only at the next line (the rest of the line would run first), and
CALL/C_RETURN never fire for a call already in progress: neither is enough.

Other threads running an armed code object meanwhile (the new owner running other tasks
of the same coroutine function) pay a callback per instruction of it, a dict lookup
that finds no hold: the price of a held step, paid only while one is held. Returning
``DISABLE`` for them is not an option: it disables the event at that instruction for
every thread, the held one included, until ``restart_events()``.

Not caught (documented in the README): Python code that C code runs after the blocking
call returns and before control is back in an armed frame -- a garbage-collection
finalizer, a weakref callback, a sqlite3 user function called after a busy wait. Catching
them needs the global PY_START/PY_RESUME/PY_THROW events, which cost every thread 3.6 to
4.1 times on call-heavy code for as long as any step is held; rejected for now.

3.11 has no ``sys.monitoring``: ``available()`` is False there and the option that needs
it is refused (``_options``).
"""

from __future__ import annotations

import os
import sys
import threading
import types
from collections.abc import Callable
from typing import Any

__all__ = ["StepHold", "arm", "available", "release", "tool_id", "use_free_tool"]

_monitoring: Any = getattr(sys, "monitoring", None)
_get_ident = threading.get_ident

# Tool ids that sys.monitoring does not name for a purpose (0 debugger, 1 coverage,
# 2 profiler, 5 optimizer); the first of these that is free when a hold is first armed.
_CANDIDATE_TOOLS = (4, 3)

_lock = threading.Lock()
_holds: dict[int, StepHold] = {}
_armed: dict[types.CodeType, int] = {}
_tool: int | None = None


def available() -> bool:
    """Can this interpreter hold a thread at its next bytecode (3.12+)?"""
    return _monitoring is not None


class StepHold:
    """One thread blocked in a step: the codes armed for it and the callback to run on
    it at its next instruction in any of them."""

    __slots__ = ("codes", "ident", "on_resume", "released")

    def __init__(
        self, ident: int, codes: tuple[types.CodeType, ...], on_resume: Callable[[StepHold], None]
    ) -> None:
        self.ident = ident
        self.codes = codes
        self.on_resume = on_resume
        self.released = False  # under _lock


def tool_id() -> int:
    """The sys.monitoring tool id this process uses, claimed on first call. Raises
    RuntimeError when every candidate id is taken by another tool."""
    global _tool
    with _lock:
        return _claim_tool()


def _claim_tool() -> int:
    global _tool
    if _tool is not None:
        return _tool
    if _monitoring is None:
        raise RuntimeError("holding a blocked step needs sys.monitoring (CPython 3.12+)")
    events = _monitoring.events
    tool = use_free_tool(_CANDIDATE_TOOLS, "sysletloop", events.INSTRUCTION, _on_instruction)
    if tool is not None:
        _tool = tool
        return tool
    taken = ", ".join(f"{t}: {_monitoring.get_tool(t)}" for t in _CANDIDATE_TOOLS)
    raise RuntimeError(f"no sys.monitoring tool id is free for sysletloop ({taken})")


def use_free_tool(
    candidates: tuple[int, ...], name: str, event: int, callback: Callable[..., Any]
) -> int | None:
    """Take the first of ``candidates`` that no tool uses, as ``name``, with ``callback``
    for ``event``; None if every one is taken. (Also ``_stepcalls``' way to its id.)"""
    for tool in candidates:
        if _monitoring.get_tool(tool) is None:
            _monitoring.use_tool_id(tool, name)
            _monitoring.register_callback(tool, event, callback)
            return tool
    return None


def arm(hold: StepHold) -> bool:
    """Any thread: register ``hold`` and turn on INSTRUCTION events for its codes. False
    (nothing armed) if the thread has another hold: a sampler's claim and the owner's
    own claim at a watched site (``_stepcalls``) can meet so."""
    with _lock:
        tool = _claim_tool()
        if hold.ident in _holds:
            return False
        events = _monitoring.events.INSTRUCTION
        armed = []
        try:
            for code in hold.codes:
                count = _armed.get(code, 0)
                if count == 0:
                    _monitoring.set_local_events(tool, code, events)
                _armed[code] = count + 1
                armed.append(code)
        except BaseException:
            _disarm(armed)
            raise
        _holds[hold.ident] = hold
        return True


def release(hold: StepHold) -> bool:
    """Any thread: remove ``hold`` and disarm its codes, once. True for the caller that
    did it, False if it was released already."""
    with _lock:
        if hold.released:
            return False
        hold.released = True
        if _holds.get(hold.ident) is hold:
            del _holds[hold.ident]
        _disarm(hold.codes)
        return True


def _disarm(codes: tuple[types.CodeType, ...] | list[types.CodeType]) -> None:
    assert _tool is not None
    for code in codes:
        count = _armed[code] - 1
        if count:
            _armed[code] = count
        else:
            del _armed[code]
            _monitoring.set_local_events(_tool, code, 0)


def _on_instruction(code: types.CodeType, offset: int) -> None:
    """sys.monitoring's INSTRUCTION callback, on whichever thread runs armed code. On a
    held thread it runs before the instruction at ``offset``; on any other it returns."""
    hold = _holds.get(_get_ident())
    if hold is not None:
        hold.on_resume(hold)


def is_held(ident: int) -> bool:
    """Is thread ``ident`` held, or about to be? (A claimed thread stays the loop's
    ``_thread_id`` until its successor runs: a sampler may see it again meanwhile.)"""
    return ident in _holds


def held_count() -> int:
    """How many threads are held or about to be (for tests and stats)."""
    return len(_holds)


def armed_codes() -> int:
    """How many code objects have events on (for tests)."""
    return len(_armed)


def _after_fork_in_child() -> None:
    # Only the forking thread exists in the child: no held thread survives the fork.
    global _lock
    _lock = threading.Lock()
    for hold in list(_holds.values()):
        hold.released = True
    _holds.clear()
    if _tool is not None:
        for code in _armed:
            _monitoring.set_local_events(_tool, code, 0)
    _armed.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
