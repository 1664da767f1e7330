"""Contenders on trio's and anyio's APIs: ``trio.to_thread.run_sync`` and
``anyio.to_thread.run_sync`` (on the asyncio and on the trio backend).

``max_threads`` becomes a ``CapacityLimiter`` passed to every offloaded call; None keeps
the library's default limiter (40 threads in both at the time of writing).
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar

from benchmarks.contenders.asyncio_family import GENERIC
from benchmarks.contenders.base import Api, Availability, Contender, Main
from benchmarks.machine import package_version

T = TypeVar("T")


class TrioApi(Api):
    def __init__(self, name: str, provides: frozenset[str], limiter: Any) -> None:
        import trio

        self._trio = trio
        self.name = name
        self.provides = provides
        self._limiter = limiter

    async def sleep(self, seconds: float) -> None:
        await self._trio.sleep(seconds)

    async def gather(self, *thunks: Callable[[], Awaitable[T]]) -> list[T]:
        results: list[T | None] = [None] * len(thunks)

        async def run(i: int, thunk: Callable[[], Awaitable[T]]) -> None:
            results[i] = await thunk()

        async with self._trio.open_nursery() as nursery:
            for i, thunk in enumerate(thunks):
                nursery.start_soon(run, i, thunk)
        return results  # type: ignore[return-value]  # every slot was filled

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        return await self._trio.to_thread.run_sync(fn, *args, limiter=self._limiter)

    async def serve_echo(self, body: Callable[[int], Awaitable[T]]) -> T:
        trio = self._trio

        async def handler(stream: Any) -> None:
            try:
                async for data in stream:
                    await stream.send_all(data)
            except trio.BrokenResourceError:
                pass

        async with trio.open_nursery() as nursery:
            listeners: list[Any] = await nursery.start(
                functools.partial(trio.serve_tcp, handler, 0, host="127.0.0.1")
            )
            port = int(listeners[0].socket.getsockname()[1])
            result = await body(port)
            nursery.cancel_scope.cancel()
        return result


class TrioContender(Contender):
    family = "trio"

    def __init__(self) -> None:
        self.name = "trio"
        self.description = "trio, trio.to_thread.run_sync (default limiter)"
        self.provides = GENERIC

    def _probe(self) -> Availability:
        try:
            importlib.import_module("trio")
        except ImportError as exc:
            return Availability(False, f"trio is not installed ({exc})")
        return Availability(True, version=package_version("trio"))

    def run(
        self, main: Main[T], *, max_threads: int | None = None, timeout: float | None = None
    ) -> T:
        import trio

        async def wrapped() -> T:
            limiter = None if max_threads is None else trio.CapacityLimiter(max_threads)
            api = TrioApi(self.name, self.provides, limiter)
            if timeout is None:
                return await main(api)
            try:
                with trio.fail_after(timeout):
                    return await main(api)
            except trio.TooSlowError as exc:  # the contract of Contender.run
                raise TimeoutError(f"{self.name}: no result after {timeout} s") from exc

        return trio.run(wrapped)


class AnyioApi(Api):
    def __init__(self, name: str, provides: frozenset[str], limiter: Any) -> None:
        import anyio

        self._anyio = anyio
        self.name = name
        self.provides = provides
        self._limiter = limiter

    async def sleep(self, seconds: float) -> None:
        await self._anyio.sleep(seconds)

    async def gather(self, *thunks: Callable[[], Awaitable[T]]) -> list[T]:
        results: list[T | None] = [None] * len(thunks)

        async def run(i: int, thunk: Callable[[], Awaitable[T]]) -> None:
            results[i] = await thunk()

        async with self._anyio.create_task_group() as tg:
            for i, thunk in enumerate(thunks):
                tg.start_soon(run, i, thunk)
        return results  # type: ignore[return-value]  # every slot was filled

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        return await self._anyio.to_thread.run_sync(fn, *args, limiter=self._limiter)

    async def serve_echo(self, body: Callable[[int], Awaitable[T]]) -> T:
        anyio = self._anyio
        from anyio.abc import SocketAttribute, SocketStream

        async def handler(client: SocketStream) -> None:
            async with client:
                try:
                    async for data in client:
                        await client.send(data)
                except (anyio.BrokenResourceError, anyio.EndOfStream):
                    pass

        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        port = int(listener.extra(SocketAttribute.local_port))
        async with listener, anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, handler)
            result = await body(port)
            tg.cancel_scope.cancel()
        return result


class AnyioContender(Contender):
    def __init__(self, backend: Literal["asyncio", "trio"]) -> None:
        self.backend = backend
        self.name = f"anyio-{backend}"
        self.family = backend
        self.description = f"anyio on {backend}, anyio.to_thread.run_sync (default limiter)"
        self.provides = GENERIC

    def _probe(self) -> Availability:
        for module in ("anyio", *(("trio",) if self.backend == "trio" else ())):
            try:
                importlib.import_module(module)
            except ImportError as exc:
                return Availability(False, f"{module} is not installed ({exc})")
        return Availability(True, version=package_version("anyio"))

    def run(
        self, main: Main[T], *, max_threads: int | None = None, timeout: float | None = None
    ) -> T:
        import anyio

        async def wrapped() -> T:
            limiter = None if max_threads is None else anyio.CapacityLimiter(max_threads)
            api = AnyioApi(self.name, self.provides, limiter)
            if timeout is None:
                return await main(api)
            with anyio.fail_after(timeout):
                return await main(api)

        return anyio.run(wrapped, backend=self.backend)


def contenders() -> list[Contender]:
    return [TrioContender(), AnyioContender("asyncio"), AnyioContender("trio")]
