"""Loop factories for uvicorn's ``--loop``, for measuring a loop option under the
``fastapi`` workload: ``python -m benchmarks.fastapi_serve --extra-server
NAME=benchmarks.fastapi_loops:FACTORY`` (the server imports this module from the
checkout's root, which the workload puts on its ``PYTHONPATH``).
"""

from __future__ import annotations

import asyncio
import sys

import sysletloop


def anyio_unpredicted() -> asyncio.AbstractEventLoop:
    """``route_anyio`` without the blocking predictor: every call starts inline, and one
    that blocks past ``block_threshold`` moves the loop (no call is sent to a spare
    thread up front)."""
    return sysletloop.new_anyio_event_loop(predict_blocking=False)


def migrate_steps() -> asyncio.AbstractEventLoop:
    """``migrate_steps=True``: a task step that blocks in a C call (``time.sleep`` in an
    ``async def`` endpoint) moves the loop to another thread, so the server goes on
    serving. Raises ValueError on Python 3.11 (no ``sys.monitoring``), and the server
    does not start: the ``sysletloop-steps`` contender is missing there, with that error.
    The ``served_unwrapped`` workload's uvicorn and aiohttp servers both use it."""
    return sysletloop.new_event_loop(migrate_steps=True)


def anyio_switch_1ms() -> asyncio.AbstractEventLoop:
    """``route_anyio`` with the interpreter's GIL switch interval at 1 ms instead of 5:
    how much of a busy server's timer lag is a returning thread waiting for the GIL.
    (The interval is the process's: it is set here because uvicorn makes the loop in the
    worker process before it serves.)"""
    sys.setswitchinterval(0.001)
    return sysletloop.new_anyio_event_loop()


def stock_switch_1ms() -> asyncio.AbstractEventLoop:
    """Stock asyncio with the GIL switch interval at 1 ms: ``anyio_switch_1ms``'s control."""
    sys.setswitchinterval(0.001)
    return asyncio.new_event_loop()
