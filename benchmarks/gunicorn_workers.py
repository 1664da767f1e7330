"""gunicorn's uvicorn worker on any loop uvicorn's ``--loop`` takes, for the ``fastapi``
workload's ``server="gunicorn"`` (``gunicorn APP -k benchmarks.gunicorn_workers.LoopWorker``).

gunicorn names a worker class, not a loop, so the loop comes from the environment:
``SYSLETLOOP_BENCH_UVICORN_LOOP`` (``asyncio``, ``uvloop``,
``sysletloop:new_anyio_event_loop``, ...), read when gunicorn's master imports this module,
before it forks the workers. Each worker then runs its own loop of that kind, as a user's
``UvicornWorker`` subclass with ``CONFIG_KWARGS = {"loop": ...}`` does
(``docs/fastapi.rst``).
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

from uvicorn_worker import UvicornWorker

from benchmarks.workloads.fastapi_uvicorn import LOOP_VARIABLE


class LoopWorker(UvicornWorker):
    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {
        "loop": os.environ.get(LOOP_VARIABLE, "asyncio"),
        "http": "auto",
    }
