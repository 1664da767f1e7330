"""Contenders that are asyncio event loops: stock asyncio, uvloop, rloop, sysletloop, KAIO,
io_uring, aiofiles.

They share one api implementation (:class:`AsyncioApi`: TaskGroup for concurrency, asyncio
streams for echo) and differ in two things only: the loop factory and how a blocking call
is offloaded (:meth:`AsyncioApi.call`). The "do nothing" baseline, ``asyncio-inline``,
calls the function in the loop's thread after a single ``sleep(0)`` yield: the loop gets a
turn between blocking calls, as in a coroutine that awaits something between them, but
never while one runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import os
import platform
import subprocess
import sys
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType
from typing import Any, TypeVar, cast

from benchmarks.contenders.base import (
    ASGI,
    CALL,
    ECHO,
    FILE,
    FS,
    IN_FLIGHT,
    NET,
    SERVED,
    UNWRAPPED,
    Api,
    AsyncFile,
    Availability,
    Buffer,
    Contender,
    FsOp,
    Main,
    NotSupported,
    OffloadFile,
    open_flags,
    snapshot_dict,
)
from benchmarks.machine import package_version

T = TypeVar("T")
ECHO_CLOSE_TIMEOUT = 5.0  # seconds serve_echo waits for closing connections' handlers

LoopFactory = Callable[[], asyncio.AbstractEventLoop]


class AsyncioApi(Api):
    """The asyncio side of :class:`Api`; subclasses choose how ``call`` offloads."""

    def __init__(self, name: str, provides: frozenset[str]) -> None:
        self.name = name
        self.provides = provides

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def gather(self, *thunks: Callable[[], Awaitable[T]]) -> list[T]:
        async def run(thunk: Callable[[], Awaitable[T]]) -> T:
            return await thunk()

        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(run(t)) for t in thunks]
        return [t.result() for t in tasks]

    async def serve_echo(self, body: Callable[[int], Awaitable[T]]) -> T:
        if ECHO not in self.provides:
            raise NotSupported(f"{self.name} does not serve TCP")

        # The connections' handlers, awaited before the server returns: on 3.11 a handler
        # still in wait_closed() when the loop shuts down is cancelled, and asyncio's
        # streams then log its CancelledError as an error (3.12 checks first).
        handlers: set[asyncio.Task[None]] = set()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            handlers.add(task)
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            except ConnectionError:
                pass
            finally:
                writer.close()
                with contextlib.suppress(ConnectionError):
                    await writer.wait_closed()
                handlers.discard(task)

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = int(server.sockets[0].getsockname()[1])
        try:
            return await body(port)
        finally:
            server.close()
            await server.wait_closed()
            if handlers:  # clients that closed: their handlers are finishing
                await asyncio.wait(handlers, timeout=ECHO_CLOSE_TIMEOUT)


class InlineApi(AsyncioApi):
    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        await asyncio.sleep(0)
        return fn(*args)


class ToThreadApi(AsyncioApi):
    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(fn, *args)


class RunInExecutorApi(AsyncioApi):
    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, functools.partial(fn, *args))


class SysletCountersApi(AsyncioApi):
    """A syslet loop's counters, and no offloading of its own (``call`` is unsupported)."""

    def stats(self) -> dict[str, Any] | None:
        return snapshot_dict(asyncio.get_running_loop().syslet_stats())  # type: ignore[attr-defined]

    def counter(self, name: str) -> int | None:
        stats = asyncio.get_running_loop().syslet_stats()  # type: ignore[attr-defined]
        value = getattr(stats, name, None)
        return value if isinstance(value, int) else None


class SysletApi(SysletCountersApi):
    def __init__(self, name: str, provides: frozenset[str], eager: bool) -> None:
        super().__init__(name, provides)
        sysletloop = importlib.import_module("sysletloop")
        self._call = sysletloop.call_eager if eager else sysletloop.call

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        return cast(T, await self._call(fn, *args))


class SysletFileApi(SysletApi):
    """sysletloop's file reads for a contender of the file workloads alone: no ``call``
    capability (so no row of every workload that runs calls, and ``call`` refuses, as
    for any contender without it), its files' reads through ``sysletloop.call``."""

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        if CALL not in self.provides:
            raise NotSupported(f"{self.name} cannot run an arbitrary blocking callable")
        return await super().call(fn, *args)

    async def open_file(self, path: str, *, direct: bool = False, write: bool = False) -> AsyncFile:
        fd = os.open(path, open_flags(direct=direct, write=write))
        return OffloadFile(self, fd, call=self._call)


# ---------------------------------------------------------------------------------------
# aiofiles: stock asyncio, file operations through aiofiles' own API
# ---------------------------------------------------------------------------------------


class AiofilesFile(AsyncFile):
    """aiofiles has no pread: a positioned read is ``seek`` then ``read`` (two hops).

    Each task opens its own file object, so the seek/read pairs of concurrent tasks never
    share a file position. Files are opened unbuffered (``buffering=0``) so one ``read``
    is one system call, and O_DIRECT reads land in the caller's aligned buffer.
    """

    def __init__(self, handle: Any) -> None:
        self._f = handle
        self.fileno = int(handle.fileno())

    async def pread(self, nbytes: int, offset: int) -> bytes:
        await self._f.seek(offset)
        return cast(bytes, await self._f.read(nbytes))

    async def preadinto(self, buf: Buffer, offset: int) -> int:
        await self._f.seek(offset)
        return cast(int, await self._f.readinto(buf))

    async def pwrite(self, data: Buffer, offset: int) -> int:
        await self._f.seek(offset)
        return cast(int, await self._f.write(data))

    async def fsync(self) -> None:
        raise NotSupported("aiofiles has no fsync")

    async def aclose(self) -> None:
        await self._f.close()


class AiofilesApi(AsyncioApi):
    def __init__(self, name: str, provides: frozenset[str]) -> None:
        super().__init__(name, provides)
        self._aiofiles = importlib.import_module("aiofiles")
        self._aiofiles_os = importlib.import_module("aiofiles.os")

    async def open_file(self, path: str, *, direct: bool = False, write: bool = False) -> AsyncFile:
        extra = os.O_DIRECT if direct else 0

        def opener(p: str, flags: int) -> int:
            return os.open(p, flags | extra)

        mode = "r+b" if write else "rb"
        handle = await self._aiofiles.open(path, mode, buffering=0, opener=opener)
        return AiofilesFile(handle)

    async def fs(self, op: FsOp, path: str) -> None:
        if op == "open_close":
            handle = await self._aiofiles.open(path, "rb", buffering=0)
            await handle.close()
        else:
            await getattr(self._aiofiles_os, op)(path)

    async def read_small(self, path: str) -> bytes:
        # aiofiles' way: open (its thread opens and fstats), read (readall: fstat and
        # read), close; three hops.
        async with self._aiofiles.open(path, "rb", buffering=0) as f:
            return cast(bytes, await f.read())


# ---------------------------------------------------------------------------------------
# The KAIO loop: file I/O through Linux native AIO, nothing else
# ---------------------------------------------------------------------------------------


class KaioFile(AsyncFile):
    def __init__(self, loop: Any, fd: int) -> None:
        self._loop = loop
        self.fileno = fd

    async def pread(self, nbytes: int, offset: int) -> bytes:
        return cast(bytes, await self._loop.aio_pread(self.fileno, nbytes, offset))

    async def preadinto(self, buf: Buffer, offset: int) -> int:
        return cast(int, await self._loop.aio_preadinto(self.fileno, buf, offset))

    async def pwrite(self, data: Buffer, offset: int) -> int:
        return cast(int, await self._loop.aio_pwrite(self.fileno, data, offset))

    async def fsync(self) -> None:
        await self._loop.aio_fsync(self.fileno)

    async def aclose(self) -> None:
        os.close(self.fileno)


class KaioApi(AsyncioApi):
    def __init__(self, name: str, provides: frozenset[str]) -> None:
        super().__init__(name, provides)
        self._kaio = importlib.import_module("sysletloop.kaio")

    async def open_file(self, path: str, *, direct: bool = False, write: bool = False) -> AsyncFile:
        fd = os.open(path, open_flags(direct=direct, write=write))
        return KaioFile(asyncio.get_running_loop(), fd)

    async def fs(self, op: FsOp, path: str) -> None:
        raise NotSupported(f"KAIO has no {op}")

    def aligned_buffer(self, size: int) -> Buffer:
        return self._kaio.aligned_buffer(size)

    def stats(self) -> dict[str, Any] | None:
        return snapshot_dict(asyncio.get_running_loop().kaio_stats())  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------
# The io_uring loop: file I/O and file-system calls through io_uring
# ---------------------------------------------------------------------------------------


class UringFile(AsyncFile):
    def __init__(self, loop: Any, fd: int) -> None:
        self._loop = loop
        self.fileno = fd

    async def pread(self, nbytes: int, offset: int) -> bytes:
        return cast(bytes, await self._loop.uring_read(self.fileno, nbytes, offset))

    async def preadinto(self, buf: Buffer, offset: int) -> int:
        return cast(int, await self._loop.uring_readinto(self.fileno, buf, offset))

    async def pwrite(self, data: Buffer, offset: int) -> int:
        return cast(int, await self._loop.uring_write(self.fileno, data, offset))

    async def fsync(self) -> None:
        await self._loop.uring_fsync(self.fileno)

    async def aclose(self) -> None:
        await self._loop.uring_close(self.fileno)


class UringApi(AsyncioApi):
    """Files opened, read, written, synced, stat-ed, unlinked and closed by io_uring."""

    def __init__(self, name: str, provides: frozenset[str]) -> None:
        super().__init__(name, provides)
        self._uring = importlib.import_module("sysletloop.uring")

    async def open_file(self, path: str, *, direct: bool = False, write: bool = False) -> AsyncFile:
        loop: Any = asyncio.get_running_loop()
        fd = await loop.uring_openat(path, open_flags(direct=direct, write=write))
        return UringFile(loop, fd)

    async def fs(self, op: FsOp, path: str) -> None:
        loop: Any = asyncio.get_running_loop()
        if op == "open_close":
            await loop.uring_close(await loop.uring_openat(path))
        elif op == "stat":
            await loop.uring_statx(path)
        else:
            await loop.uring_unlink(path)

    async def read_small(self, path: str) -> bytes:
        """A small file whole: open, fstat, read, close, each an io_uring operation (the
        ``metadata`` workload's steps, none of which KAIO can do)."""
        loop: Any = asyncio.get_running_loop()
        fd = await loop.uring_openat(path)
        try:
            size = (await loop.uring_fstat(fd)).st_size
            return cast(bytes, await loop.uring_read(fd, size, 0))
        finally:
            await loop.uring_close(fd)

    def aligned_buffer(self, size: int) -> Buffer:
        return self._uring.aligned_buffer(size)

    def stats(self) -> dict[str, Any] | None:
        return snapshot_dict(asyncio.get_running_loop().uring_stats())  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------
# The contenders
# ---------------------------------------------------------------------------------------


class AsyncioContender(Contender):
    """A contender run by ``asyncio.Runner(loop_factory=...)``."""

    family = "asyncio"

    def __init__(
        self,
        name: str,
        description: str,
        provides: frozenset[str],
        make_api: Callable[[str, frozenset[str]], AsyncioApi],
        *,
        module: str | None = None,
        required_attrs: tuple[str, ...] = (),
        distribution: str | None = None,
        uvicorn_loop: str | None = None,
    ) -> None:
        self.name = name
        self.description = description
        self.provides = provides | {ASGI} if uvicorn_loop else provides
        self.uvicorn_loop = uvicorn_loop
        self._make_api = make_api
        self._module = module
        self._required = required_attrs
        self._distribution = distribution

    def _import(self) -> ModuleType | None:
        return importlib.import_module(self._module) if self._module else None

    def _probe(self) -> Availability:
        if self._module is None:
            return Availability(True, version=f"Python {platform.python_version()}")
        try:
            mod = importlib.import_module(self._module)
        except ImportError as exc:
            return Availability(False, f"{self._module} is not installed ({exc})")
        absent = [a for a in self._required if not hasattr(mod, a)]
        dist = self._distribution or self._module.split(".")[0]
        version = package_version(dist)
        if absent:
            return Availability(
                False, f"{self._module} {version or ''} has no {', '.join(absent)} yet", version
            )
        return Availability(True, version=version)

    def loop_factory(self, max_threads: int | None) -> LoopFactory | None:
        """The loop factory for ``asyncio.Runner``; None is the default asyncio loop."""
        return None

    def _configure(self, loop: asyncio.AbstractEventLoop, max_threads: int | None) -> None:
        """Apply ``max_threads`` to a loop whose offload goes through its default executor."""
        if max_threads is not None:
            loop.set_default_executor(ThreadPoolExecutor(max_workers=max_threads))

    def run(
        self, main: Main[T], *, max_threads: int | None = None, timeout: float | None = None
    ) -> T:
        async def wrapped() -> T:
            self._configure(asyncio.get_running_loop(), max_threads)
            api = self._make_api(self.name, self.provides)
            if timeout is None:
                return await main(api)
            return await asyncio.wait_for(main(api), timeout)

        with asyncio.Runner(loop_factory=self.loop_factory(max_threads)) as runner:
            return runner.run(wrapped())


class ThirdPartyLoopContender(AsyncioContender):
    """A loop from another package (uvloop, rloop): its module's ``new_event_loop``, blocking
    calls through ``run_in_executor(None, ...)`` and the loop's default executor."""

    def loop_factory(self, max_threads: int | None) -> LoopFactory | None:
        assert self._module is not None  # a third-party loop always names its module
        return cast(LoopFactory, importlib.import_module(self._module).new_event_loop)


class SysletContender(AsyncioContender):
    """sysletloop; ``max_threads`` becomes its ``max_blocked`` option."""

    def __init__(
        self,
        name: str,
        description: str,
        provides: frozenset[str],
        eager: bool,
        *,
        uvicorn_loop: str | None = None,
        **options: Any,
    ) -> None:
        self._options = options  # loop options besides max_blocked
        super().__init__(
            name,
            description,
            provides,
            functools.partial(SysletApi, eager=eager),
            module="sysletloop",
            required_attrs=("new_event_loop", "call_eager" if eager else "call"),
            uvicorn_loop=uvicorn_loop,
        )

    def loop_factory(self, max_threads: int | None) -> LoopFactory | None:
        new_event_loop = importlib.import_module("sysletloop").new_event_loop
        options = dict(self._options)
        if max_threads is not None:
            options["max_blocked"] = max_threads
        if not options:
            return cast(LoopFactory, new_event_loop)
        return cast(LoopFactory, functools.partial(new_event_loop, **options))

    def _configure(self, loop: asyncio.AbstractEventLoop, max_threads: int | None) -> None:
        pass  # the cap is a loop option, set by loop_factory


class SysletAnyioContender(SysletContender):
    """sysletloop with ``route_anyio=True``, for the workloads that run anyio's thread work
    (FastAPI under uvicorn): it provides ASGI alone, so it is n/a in every other workload,
    where the option changes nothing (the ``sysletloop`` row is that loop). Missing where
    the option cannot be used (anyio absent, or a version sysletloop refuses)."""

    def __init__(self, name: str, description: str, *, uvicorn_loop: str, **options: Any) -> None:
        super().__init__(
            name, description, frozenset(), False, uvicorn_loop=uvicorn_loop, **options
        )
        self._make_api = AsyncioApi  # no capability besides ASGI: its api offloads nothing

    def _probe(self) -> Availability:
        found = super()._probe()
        if not found.available:
            return found
        # In a child: the first such loop patches anyio's asyncio backend, and the harness's
        # own anyio contenders must keep the stock method.
        probe = "import sysletloop; sysletloop.new_anyio_event_loop().close()"
        proc = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False
        )
        if proc.returncode != 0:  # anyio missing, or a version sysletloop refuses
            last = (proc.stderr.strip().splitlines() or ["?"])[-1]
            return Availability(False, f"new_anyio_event_loop(): {last}", found.version)
        return found


class SysletStepsContender(SysletContender):
    """sysletloop with ``migrate_steps=True``: a task step that blocks in a C call (an
    unwrapped ``time.sleep``, ``socket.recv``) moves the loop to another thread. A row of
    the ``unwrapped`` and ``served_unwrapped`` workloads (its api offloads nothing, its
    counters are read), and of ``net_throughput`` when named (``on_demand`` there: the
    option's cost with nothing blocking, a row that would lengthen every quick run).
    Its ``uvicorn_loop`` serves ``served_unwrapped`` only: it provides no ASGI, so it is
    no row of ``fastapi``, whose ``def`` endpoints never block a task step. Missing, with
    the loop's own error, where creating such a loop raises: a sysletloop without the
    option (TypeError, an unknown option) or a Python without ``sys.monitoring``
    (ValueError, 3.11)."""

    def __init__(
        self, name: str, description: str, *, uvicorn_loop: str | None = None, **options: Any
    ) -> None:
        super().__init__(
            name, description, frozenset(), False, uvicorn_loop=uvicorn_loop, **options
        )
        self.provides = STEPS  # not ASGI, which a uvicorn_loop would have added
        self._make_api = SysletCountersApi

    def _probe(self) -> Availability:
        found = super()._probe()
        if not found.available:
            return found
        new_event_loop = importlib.import_module("sysletloop").new_event_loop
        spelled = ", ".join(f"{k}={v!r}" for k, v in self._options.items())
        try:
            loop = new_event_loop(**self._options)
        except (TypeError, ValueError) as exc:
            why = f"sysletloop.new_event_loop({spelled}) raised {type(exc).__name__}: {exc}"
            return Availability(False, why, found.version)
        loop.close()
        return found


class SysletUringContender(SysletContender):
    """sysletloop with ``uring_reads=True``: a positional read that would block (every
    ``O_DIRECT`` one, and every one on a file system that cannot say, FUSE) is done by
    io_uring instead of a spare thread. Rows of the file workloads only. Missing, with
    the reason, where io_uring cannot be had (or the loop has no such option)."""

    def __init__(self, name: str, description: str, provides: frozenset[str]) -> None:
        super().__init__(name, description, provides, False, uring_reads=True)
        self._make_api = functools.partial(SysletFileApi, eager=False)

    def _probe(self) -> Availability:
        found = super()._probe()
        if not found.available:
            return found
        try:
            importlib.import_module("sysletloop").new_event_loop(uring_reads=True).close()
            reads = importlib.import_module("sysletloop._uringreads").UringReads.open()
        except (TypeError, ImportError, OSError) as exc:  # UringError is an OSError
            return Availability(False, f"{type(exc).__name__}: {exc}", found.version)
        reads.close()
        return found


class KaioContender(AsyncioContender):
    def loop_factory(self, max_threads: int | None) -> LoopFactory | None:
        return cast(LoopFactory, importlib.import_module("sysletloop.kaio").new_event_loop)

    def _configure(self, loop: asyncio.AbstractEventLoop, max_threads: int | None) -> None:
        pass  # KAIO runs no threads


class UringContender(AsyncioContender):
    """The io_uring loop. Missing, with the loop's own reason, where io_uring cannot be
    used (kernel.io_uring_disabled, a seccomp filter, a kernel older than 5.6)."""

    def loop_factory(self, max_threads: int | None) -> LoopFactory | None:
        return cast(LoopFactory, importlib.import_module("sysletloop.uring").new_event_loop)

    def _configure(self, loop: asyncio.AbstractEventLoop, max_threads: int | None) -> None:
        pass  # the loop runs no threads (io-wq's are the kernel's, sized by the kernel)

    def _probe(self) -> Availability:
        found = super()._probe()
        if not found.available:
            return found
        module = importlib.import_module("sysletloop.uring")
        try:
            module.new_event_loop().close()
        except module.UringUnsupportedError as exc:
            return Availability(False, str(exc), found.version)
        return found


INLINE = frozenset({CALL, FILE, FS, ECHO})
GENERIC = INLINE | {IN_FLIGHT}
# A distinct loop: the net_throughput rows. asyncio-inline, sysletloop-eager and aiofiles
# run a loop that has a row already (stock asyncio's, sysletloop's), so they lack it.
LOOP = GENERIC | {NET}
# The unwrapped workload's rows: the loops issue 19 compares (sysletloop-away stalls as
# sysletloop does, and would only lengthen the run).
LOOP_UNWRAPPED = LOOP | {UNWRAPPED}
# The served_unwrapped workload's rows: the loops issue 19 compares there, the ones with a
# uvicorn loop (rloop has none; it would stall as stock asyncio does).
SERVED_UNWRAPPED = LOOP_UNWRAPPED | {SERVED}
# sysletloop-steps: a loop of its own (NET, ECHO: net_throughput on demand), no offloading.
STEPS = frozenset({UNWRAPPED, SERVED, NET, ECHO})


def contenders() -> list[Contender]:
    return [
        AsyncioContender(
            "asyncio-inline",
            "stock asyncio, blocking calls made inline in the loop thread (do-nothing baseline)",
            INLINE,
            InlineApi,
        ),
        AsyncioContender(
            "asyncio-to_thread",
            "stock asyncio, asyncio.to_thread (default executor): the ratio baseline",
            SERVED_UNWRAPPED,
            ToThreadApi,
            uvicorn_loop="asyncio",
        ),
        ThirdPartyLoopContender(
            "uvloop",
            "uvloop, loop.run_in_executor(None, ...)",
            SERVED_UNWRAPPED,
            RunInExecutorApi,
            module="uvloop",
            required_attrs=("new_event_loop",),
            uvicorn_loop="uvloop",
        ),
        ThirdPartyLoopContender(
            "rloop",
            "rloop (an asyncio loop written in Rust), loop.run_in_executor(None, ...)",
            LOOP_UNWRAPPED,
            RunInExecutorApi,
            module="rloop",
            required_attrs=("new_event_loop",),
        ),
        SysletContender(
            "sysletloop",
            "sysletloop, await sysletloop.call(fn) (syslet-style)",
            SERVED_UNWRAPPED,
            False,
            uvicorn_loop="sysletloop:new_event_loop",
        ),
        SysletAnyioContender(
            "sysletloop-anyio",
            "sysletloop with route_anyio=True: anyio.to_thread.run_sync (FastAPI's def "
            "endpoints) takes the syslet path; only the fastapi workload",
            uvicorn_loop="sysletloop:new_anyio_event_loop",
            route_anyio=True,
        ),
        SysletStepsContender(
            "sysletloop-steps",
            "sysletloop with migrate_steps=True: a task step blocked in a C call (time.sleep, "
            "socket.recv written straight in an async def) moves the loop to another "
            "thread; the unwrapped and served_unwrapped workloads (net_throughput if named)",
            uvicorn_loop="benchmarks.fastapi_loops:migrate_steps",
            migrate_steps=True,
        ),
        SysletUringContender(
            "sysletloop-uring",
            "sysletloop with uring_reads=True: a read that would block (O_DIRECT, FUSE) "
            "goes to io_uring, not to a thread; the file workloads",
            frozenset({FILE}),
        ),
        SysletContender(
            "sysletloop-away",
            "sysletloop.call(fn) with home_affinity=False (the loop stays where it moved)",
            LOOP,
            False,
            home_affinity=False,
        ),
        SysletContender(
            "sysletloop-eager",
            "sysletloop, await sysletloop.call_eager(fn) (runs in the task step)",
            GENERIC,
            True,
        ),
        KaioContender(
            "kaio",
            "the KAIO loop: Linux native AIO (io_submit) for file reads, writes and fsync",
            frozenset({FILE, ECHO}),
            KaioApi,
            module="sysletloop.kaio",
            required_attrs=("new_event_loop", "aligned_buffer"),
            distribution="sysletloop",
        ),
        UringContender(
            "uring",
            "the io_uring loop: open, read, write, fsync, statx, unlink and close through "
            "io_uring (one io_uring_enter per iteration)",
            frozenset({FILE, FS, ECHO}),
            UringApi,
            module="sysletloop.uring",
            required_attrs=("new_event_loop", "aligned_buffer"),
            distribution="sysletloop",
        ),
        AsyncioContender(
            "aiofiles",
            "stock asyncio with aiofiles (file objects: seek + read; aiofiles.os)",
            frozenset({FILE, FS}),
            AiofilesApi,
            module="aiofiles",
        ),
    ]
