"""gunicorn's uvicorn worker with sysletloop and ``route_anyio``: what the FastAPI page
tells gunicorn users to write (``gunicorn app:app -k module.SysletWorker``)."""

from __future__ import annotations

from typing import Any, ClassVar

from uvicorn_worker import UvicornWorker


class SysletWorker(UvicornWorker):
    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {
        "loop": "sysletloop:new_anyio_event_loop",
        "http": "auto",
    }
