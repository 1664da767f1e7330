"""The contenders, in the order they appear in every table.

``BASELINE`` is the contender every ratio is taken against: stock asyncio offloading with
``asyncio.to_thread``, the thread pool everyone uses today.
"""

from __future__ import annotations

from benchmarks.contenders import asyncio_family, fio, trio_family
from benchmarks.contenders.base import Api, AsyncFile, Availability, Contender, NotSupported
from benchmarks.contenders.gevent import GeventContender

BASELINE = "asyncio-to_thread"


def all_contenders() -> list[Contender]:
    return [
        *asyncio_family.contenders(),
        *trio_family.contenders(),
        GeventContender(),
        fio.FioContender(),
        fio.FioContender("io_uring"),
    ]


def contender_names() -> list[str]:
    return [c.name for c in all_contenders()]


__all__ = [
    "BASELINE",
    "Api",
    "AsyncFile",
    "Availability",
    "Contender",
    "NotSupported",
    "all_contenders",
    "contender_names",
]
