"""Loop factories for uvicorn's ``--loop``, for measuring a loop option under the
``fastapi`` workload: ``python -m benchmarks.fastapi_serve --extra-server
NAME=benchmarks.fastapi_loops:FACTORY`` (the server imports this module from the
checkout's root, which the workload puts on its ``PYTHONPATH``).
"""

from __future__ import annotations

import asyncio

import sysletloop


def anyio_unpredicted() -> asyncio.AbstractEventLoop:
    """``route_anyio`` without the blocking predictor: every call starts inline, and one
    that blocks past ``block_threshold`` moves the loop (no call is sent to a spare
    thread up front)."""
    return sysletloop.new_anyio_event_loop(predict_blocking=False)
