"""The interface every contender adapts its framework to, and what a contender is.

Glossary
--------
contender
    One way of running the workloads: a loop or library plus the way it offloads a
    blocking call (stock asyncio with ``to_thread``, trio with ``to_thread.run_sync``,
    sysletloop with ``sysletloop.call``...). Each has a short, stable ``name``.
api
    What a workload sees of a contender while it runs: :class:`Api`. Workload code is
    written once against it, so every contender runs the same workload code.
capability
    What an api can do. ``call``: offload any blocking callable. ``file``: read and write
    a file asynchronously (:class:`AsyncFile`). ``fs``: ``stat``/``unlink``/``open``.
    ``echo``: serve TCP. ``asgi``: a loop uvicorn can run (``Contender.uvicorn_loop``,
    its ``--loop`` value). ``net``: a loop of its own to serve and connect TCP on, in a
    fresh process (``net_throughput``; one contender per distinct loop). ``in_flight``:
    blocking calls run concurrently, so several can be blocked at once (not so for
    inline calls). ``unwrapped``: runs coroutines whose steps block in a C call
    directly, with nothing handed to a thread (the ``unwrapped`` workload; one row per
    loop that workload compares, and gevent). ``served``: a loop a uvicorn and an
    aiohttp server run on, in a fresh process, with a handler that blocks unwrapped (the
    ``served_unwrapped`` workload; ``Contender.uvicorn_loop`` names the loop for both
    servers). ``fio``: not a loop at all, the device's limit measured by fio.
    A workload runs on the contenders that have the capabilities it needs; the others show
    "n/a" for it. A contender that lacks an operation *inside* a workload raises
    :class:`NotSupported`, recorded as "unsupported".
missing
    The contender's module is not installed (or lacks the API): probed once, reported with
    the reason in every table and in the JSON, never silently dropped.

Threads: a contender's ``run`` is called from the harness's main thread and returns there;
everything an api does happens in the framework's own threads.
"""

from __future__ import annotations

import mmap
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import asdict, dataclass, is_dataclass
from typing import Any, Final, Literal, TypeVar, cast

T = TypeVar("T")
A = TypeVar("A")
B = TypeVar("B")

CALL: Final = "call"
FILE: Final = "file"
FS: Final = "fs"
ECHO: Final = "echo"
FIO: Final = "fio"
ASGI: Final = "asgi"
NET: Final = "net"
IN_FLIGHT: Final = "in_flight"
UNWRAPPED: Final = "unwrapped"
SERVED: Final = "served"

# A writable buffer for O_DIRECT reads: an anonymous mmap (page aligned) or whatever
# ``sysletloop.kaio.aligned_buffer`` returns; both support the buffer protocol.
Buffer = Any

FsOp = Literal["stat", "unlink", "open_close"]


class NotSupported(Exception):
    """This contender has no way to do this operation (e.g. KAIO cannot run ``getaddrinfo``)."""


# ---------------------------------------------------------------------------------------
# What a workload sees
# ---------------------------------------------------------------------------------------


class AsyncFile(ABC):
    """An open file read and written through the contender's async mechanism."""

    fileno: int

    @abstractmethod
    async def pread(self, nbytes: int, offset: int) -> bytes: ...

    @abstractmethod
    async def preadinto(self, buf: Buffer, offset: int) -> int: ...

    @abstractmethod
    async def pwrite(self, data: Buffer, offset: int) -> int: ...

    @abstractmethod
    async def fsync(self) -> None: ...

    @abstractmethod
    async def aclose(self) -> None: ...


class Api(ABC):
    """One contender, as seen by workload code while the contender's loop runs."""

    name: str
    provides: frozenset[str]

    @staticmethod
    def clock() -> float:
        return time.perf_counter()

    @abstractmethod
    async def sleep(self, seconds: float) -> None: ...

    @abstractmethod
    async def gather(self, *thunks: Callable[[], Awaitable[T]]) -> list[T]:
        """Run the thunks concurrently (in the order given) and return their results."""

    async def pair(
        self, first: Callable[[], Awaitable[A]], second: Callable[[], Awaitable[B]]
    ) -> tuple[A, B]:
        """Two thunks of different result types, concurrently; ``first`` starts first."""
        results: list[object] = await self.gather(first, second)
        return cast(A, results[0]), cast(B, results[1])

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking callable the contender's way (inline, a thread, a syslet...)."""
        raise NotSupported(f"{self.name} cannot run an arbitrary blocking callable")

    async def open_file(self, path: str, *, direct: bool = False, write: bool = False) -> AsyncFile:
        """Open ``path`` (synchronously: setup, not measured) for async reads/writes."""
        if CALL not in self.provides:
            raise NotSupported(f"{self.name} has no async file I/O")
        return OffloadFile(self, os.open(path, open_flags(direct=direct, write=write)))

    async def fs(self, op: FsOp, path: str) -> None:
        """A file-system operation on ``path`` the contender's way."""
        if CALL not in self.provides:
            raise NotSupported(f"{self.name} has no async {op}")
        await self.call(FS_FUNCTIONS[op], path)

    async def read_small(self, path: str) -> bytes:
        """A small file whole, the contender's way: open, fstat, read, close, each a
        call of its own, as code that awaits each step writes it (the ``metadata``
        workload; aiofiles does it its own way)."""
        if CALL not in self.provides:
            raise NotSupported(f"{self.name} has no async open or fstat")
        fd = await self.call(os.open, path, os.O_RDONLY)
        try:
            size = (await self.call(os.fstat, fd)).st_size
            data = await self.call(os.read, fd, size)
        finally:
            await self.call(os.close, fd)
        return data

    async def serve_echo(self, body: Callable[[int], Awaitable[T]]) -> T:
        """Serve TCP echo on 127.0.0.1 (an ephemeral port) while ``body(port)`` runs."""
        raise NotSupported(f"{self.name} cannot serve TCP")

    def aligned_buffer(self, size: int) -> Buffer:
        """A page-aligned buffer, good for O_DIRECT."""
        return mmap.mmap(-1, size)

    def stats(self) -> dict[str, Any] | None:
        """The loop's own counters (``syslet_stats()``, ``kaio_stats()``), if it has any."""
        return None

    def counter(self, name: str) -> int | None:
        """One of the loop's own counters by name (``syslet_stats().claimed_steps``), or
        None where the loop has no such counter: read with ``getattr`` and a default, so
        that a counter newer than the installed loop is None rather than an error."""
        return None


def open_flags(*, direct: bool, write: bool) -> int:
    flags = os.O_RDWR if write else os.O_RDONLY
    if direct:
        flags |= os.O_DIRECT
    return flags


def _open_close(path: str) -> None:
    os.close(os.open(path, os.O_RDONLY))


def _stat(path: str) -> None:
    os.stat(path)


FS_FUNCTIONS: Final[dict[str, Callable[[str], None]]] = {
    "stat": _stat,
    "unlink": os.unlink,
    "open_close": _open_close,
}


class OffloadFile(AsyncFile):
    """File I/O as ``os.pread``/``os.pwrite``/``os.fsync`` run through ``api.call`` (or
    through *call*, for a contender whose files offload but whose ``call`` is refused)."""

    def __init__(
        self, api: Api, fd: int, call: Callable[..., Awaitable[Any]] | None = None
    ) -> None:
        self._call = api.call if call is None else call
        self.fileno = fd

    async def pread(self, nbytes: int, offset: int) -> bytes:
        return cast(bytes, await self._call(os.pread, self.fileno, nbytes, offset))

    async def preadinto(self, buf: Buffer, offset: int) -> int:
        return cast(int, await self._call(os.preadv, self.fileno, [buf], offset))

    async def pwrite(self, data: Buffer, offset: int) -> int:
        return cast(int, await self._call(os.pwrite, self.fileno, data, offset))

    async def fsync(self) -> None:
        await self._call(os.fsync, self.fileno)

    async def aclose(self) -> None:
        os.close(self.fileno)


def snapshot_dict(snapshot: object) -> dict[str, Any]:
    """A loop's stats snapshot (dataclass, named tuple or plain object) as a dict."""
    if is_dataclass(snapshot) and not isinstance(snapshot, type):
        return asdict(snapshot)
    as_dict = getattr(snapshot, "_asdict", None)
    if callable(as_dict):
        return dict(as_dict())
    if isinstance(snapshot, dict):
        return dict(snapshot)
    return {k: v for k, v in vars(snapshot).items() if not k.startswith("_")}


# ---------------------------------------------------------------------------------------
# What the runner sees
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Availability:
    available: bool
    reason: str | None = None
    version: str | None = None


Main = Callable[[Api], Coroutine[Any, Any, T]]


class Contender(ABC):
    name: str
    family: str  # "asyncio", "trio" or "external"
    description: str
    provides: frozenset[str]
    # uvicorn's ``--loop`` for this contender (``asyncio``, ``uvloop``, ``module:factory``);
    # None: uvicorn cannot run it. Set for the contenders that provide ASGI or SERVED.
    uvicorn_loop: str | None = None

    _availability: Availability | None = None

    def probe(self) -> Availability:
        """Is the contender usable here? Probed once, then cached."""
        if self._availability is None:
            try:
                self._availability = self._probe()
            except Exception as exc:  # a broken install is "missing", with the reason
                self._availability = Availability(False, f"{type(exc).__name__}: {exc}")
        return self._availability

    @abstractmethod
    def _probe(self) -> Availability: ...

    @abstractmethod
    def run(
        self, main: Main[T], *, max_threads: int | None = None, timeout: float | None = None
    ) -> T:
        """Run ``main(api)`` to completion in a fresh loop of this contender.

        ``max_threads`` replaces the contender's default cap on concurrently running
        blocking calls (pool size, capacity limiter, ``max_blocked``); None keeps the
        default. ``timeout`` (seconds) cancels ``main`` and raises TimeoutError.
        """
