"""Places where steps blocked before: the owner claims the step at the call.

With ``migrate_steps`` and ``predict_blocking``, the place (code object, call
instruction) of a step the sampler claimed is *watched*: ``sys.monitoring`` CALL events
go on for that code object (a second tool id, beside ``_stephold``'s). When a thread that
owns a loop watching the place is about to make a C call there, this module's callback
hands it to the loop (``_steps._claim_called_step``), which claims the step before the
call starts. The protocol (why no bytecode of the step runs beside the loop, the races
with the sampler, misses) is written once, in ``_handover``'s header, "Claimed at the
call"; this module only watches places and dispatches.

Glossary
    place      (code object, instruction offset) of a call a step was claimed in.
    watch      register a place for a loop; CALL events are on for a code object while
               any loop watches a place in it (reference-counted per code object).
    miss       a call claimed at a place that returned within ``MISS_TIME``: it did not
               block this time, and the loop forgets the place (``forget``).

Thread rules
    ``watch`` runs on the sampler's thread (after a claim), ``forget`` on a held thread
    (a miss), ``forget_loop`` on the thread closing a loop: all under ``_lock``, which
    guards ``_sites``, ``_codes``, ``_by_loop`` and the ``set_local_events`` calls.
    ``_on_call`` runs on any thread that runs watched code, without the lock: one dict
    lookup (atomic under the GIL) of watcher tuples that are replaced, never changed.

Cost: a thread running a watched code object pays one callback per call instruction in
it (a dict lookup where it is not a place), for as long as the place is watched.

Only C callables are handed on (builtin functions and methods, method descriptors): a
Python callee's bytecode would run beside the new owner. 3.11 has no ``sys.monitoring``:
nothing is watched there (the option is refused).
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import types
import weakref
from typing import Any

from ._stephold import use_free_tool

__all__ = ["C_CALLABLES", "MISS_TIME", "forget", "forget_loop", "watch", "watched"]

_monitoring: Any = getattr(sys, "monitoring", None)

# A claimed call that returns sooner than this did not block (a hand-over and a take-back
# cost about this much): the site stops being watched.
MISS_TIME = 0.0001  # seconds

# The callables whose call runs no Python of its own.
C_CALLABLES = frozenset(
    {
        types.BuiltinFunctionType,  # time.sleep, sock.recv (bound C methods too)
        types.MethodDescriptorType,  # socket.socket.recv(sock, n)
        types.WrapperDescriptorType,
        types.MethodWrapperType,
        types.ClassMethodDescriptorType,
    }
)

# Tool ids that sys.monitoring does not name for a purpose; _stephold takes the first
# free one of (4, 3), this module the first free one of these after it.
_CANDIDATE_TOOLS = (3, 4)

_get_running_loop = asyncio.events._get_running_loop
_getframe = sys._getframe

_lock = threading.Lock()
_sites: dict[tuple[types.CodeType, int], tuple[weakref.ref[Any], ...]] = {}
_codes: dict[types.CodeType, int] = {}
_by_loop: weakref.WeakKeyDictionary[Any, set[tuple[types.CodeType, int]]] = (
    weakref.WeakKeyDictionary()
)
_tool: int | None = None
_no_tool = False


def _claim_tool() -> int | None:
    """The tool id for CALL events, claimed on first use; None if none is free (then no
    site is watched: the sampler alone finds blocked steps)."""
    global _tool, _no_tool
    if _tool is not None or _no_tool or _monitoring is None:
        return _tool
    _tool = use_free_tool(_CANDIDATE_TOOLS, "sysletloop-calls", _monitoring.events.CALL, _on_call)
    _no_tool = _tool is None
    return _tool


def watch(code: types.CodeType, offset: int, loop: Any) -> bool:
    """Any thread: watch the call at ``offset`` in ``code`` for ``loop``. False if no
    tool id is free or it is watched for this loop already."""
    with _lock:
        tool = _claim_tool()
        if tool is None:
            return False
        key = (code, offset)
        mine = _by_loop.setdefault(loop, set())
        if key in mine:
            return False
        count = _codes.get(code, 0)
        if count == 0:
            _monitoring.set_local_events(tool, code, _monitoring.events.CALL)
        _codes[code] = count + 1
        mine.add(key)
        _sites[key] = (*_sites.get(key, ()), weakref.ref(loop))
        return True


def forget(code: types.CodeType, offset: int, loop: Any) -> None:
    """Any thread: stop watching that site for ``loop`` (a miss)."""
    with _lock:
        mine = _by_loop.get(loop)
        if mine is not None and (code, offset) in mine:
            mine.discard((code, offset))
            _unwatch(code, offset, loop)


def forget_loop(loop: Any) -> None:
    """Any thread: stop watching every site of ``loop`` (it closes)."""
    with _lock:
        mine = _by_loop.pop(loop, None)
        for code, offset in mine or ():
            _unwatch(code, offset, loop)


def watched(loop: Any) -> int:
    """How many sites ``loop`` watches (for tests)."""
    with _lock:
        return len(_by_loop.get(loop, ()))


def _unwatch(code: types.CodeType, offset: int, loop: Any) -> None:
    key = (code, offset)
    left = tuple(ref for ref in _sites.get(key, ()) if ref() is not loop and ref() is not None)
    if left:
        _sites[key] = left
    else:
        _sites.pop(key, None)
    count = _codes[code] - 1
    if count:
        _codes[code] = count
    else:
        del _codes[code]
        assert _tool is not None
        _monitoring.set_local_events(_tool, code, 0)


def _on_call(code: types.CodeType, offset: int, callable: object, arg0: object) -> None:
    """sys.monitoring's CALL callback, on whichever thread runs watched code, before the
    call: at a site its running loop watches, the loop may claim the step first."""
    refs = _sites.get((code, offset))
    if refs is None:
        return
    loop: Any = _get_running_loop()
    if loop is None:
        return
    for ref in refs:
        watcher = ref()
        if watcher is not None and watcher is loop:
            if type(callable) in C_CALLABLES:
                watcher._claim_called_step(_getframe(1), offset)
            return


def _after_fork_in_child() -> None:
    # Only the forking thread exists in the child; its loops start over (the child's
    # loops are new, or unusable: asyncio's rule), and so do their sites.
    global _lock
    _lock = threading.Lock()
    if _tool is not None:
        for code in _codes:
            _monitoring.set_local_events(_tool, code, 0)
    _codes.clear()
    _sites.clear()
    _by_loop.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
