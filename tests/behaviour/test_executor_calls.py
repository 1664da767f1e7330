"""run_in_executor(None, ...) and asyncio.to_thread: what asyncio documents, on both loops."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import threading
import time
import traceback
from unittest import mock

import pytest

pytestmark = pytest.mark.asyncio

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id")


async def test_to_thread_returns_the_result() -> None:
    assert await asyncio.to_thread(lambda a, b=0: a + b, 2, b=3) == 5


async def test_run_in_executor_passes_positional_arguments() -> None:
    loop = asyncio.get_running_loop()
    assert await loop.run_in_executor(None, pow, 2, 10) == 1024


async def test_run_in_executor_returns_an_asyncio_future() -> None:
    loop = asyncio.get_running_loop()
    fut = loop.run_in_executor(None, int, "7")
    assert asyncio.isfuture(fut)
    assert fut.get_loop() is loop
    assert await fut == 7


def _raise_value_error() -> None:
    raise ValueError("boom")


async def test_exception_propagates_with_its_traceback() -> None:
    with pytest.raises(ValueError, match="boom") as info:
        await asyncio.to_thread(_raise_value_error)
    frames = [f.name for f in traceback.extract_tb(info.value.__traceback__)]
    assert "_raise_value_error" in frames


class CustomBaseError(BaseException):
    pass


def _raise_base() -> None:
    raise CustomBaseError("base")


async def test_base_exception_propagates_to_the_awaiting_task() -> None:
    with pytest.raises(CustomBaseError):
        await asyncio.to_thread(_raise_base)


async def test_to_thread_runs_in_a_copy_of_the_callers_context() -> None:
    request_id.set("r-1")

    def read_and_write() -> str:
        seen = request_id.get()
        request_id.set("changed-inside")
        return seen

    assert await asyncio.to_thread(read_and_write) == "r-1"
    assert request_id.get() == "r-1"


async def test_run_in_executor_does_not_run_in_the_callers_context() -> None:
    request_id.set("caller")
    loop = asyncio.get_running_loop()
    assert await loop.run_in_executor(None, request_id.get, "unset") == "unset"


async def test_no_running_loop_inside_the_call() -> None:
    def probe() -> bool:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return True
        return False

    assert await asyncio.to_thread(probe)


async def test_asyncio_run_works_inside_the_call() -> None:
    async def inner() -> str:
        await asyncio.sleep(0)
        return "inner"

    assert await asyncio.to_thread(asyncio.run, inner()) == "inner"


async def test_many_concurrent_calls_all_resolve_in_order() -> None:
    results = await asyncio.gather(*(asyncio.to_thread(lambda i=i: i * i) for i in range(200)))
    assert results == [i * i for i in range(200)]


async def test_concurrent_blocking_calls_overlap() -> None:
    barrier = threading.Barrier(3, timeout=30)
    # Three calls that can only return once all three are running at the same time.
    results = await asyncio.gather(*(asyncio.to_thread(barrier.wait) for _ in range(3)))
    assert sorted(results) == [0, 1, 2]


async def test_cancelling_the_awaiting_task_cancels_at_once() -> None:
    release = threading.Event()
    started = threading.Event()

    def blocked() -> str:
        started.set()
        release.wait(30)
        return "late"

    task = asyncio.create_task(asyncio.to_thread(blocked))
    while not started.is_set():
        await asyncio.sleep(0.001)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 10)
    release.set()


async def test_explicit_executor_is_used_as_given() -> None:
    loop = asyncio.get_running_loop()
    with concurrent.futures.ThreadPoolExecutor(thread_name_prefix="mine") as pool:
        name = await loop.run_in_executor(pool, lambda: threading.current_thread().name)
    assert name.startswith("mine")


async def test_default_executor_set_by_the_user_is_used() -> None:
    loop = asyncio.get_running_loop()
    pool = concurrent.futures.ThreadPoolExecutor(thread_name_prefix="chosen")
    loop.set_default_executor(pool)
    name = await loop.run_in_executor(None, lambda: threading.current_thread().name)
    assert name.startswith("chosen")
    await loop.shutdown_default_executor()


async def test_non_callable_fails_when_awaited() -> None:
    loop = asyncio.get_running_loop()
    fut = loop.run_in_executor(None, 5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await fut


async def test_debug_mode_rejects_a_coroutine_function() -> None:
    loop = asyncio.get_running_loop()
    loop.set_debug(True)

    async def coro_fn() -> None:
        pass

    with pytest.raises(TypeError):
        loop.run_in_executor(None, coro_fn)


async def test_getaddrinfo_goes_through_the_default_path() -> None:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo("127.0.0.1", 80, type=1)
    assert infos and infos[0][4][0] == "127.0.0.1"


async def test_run_in_executor_after_shutdown_is_an_error() -> None:
    loop = asyncio.get_running_loop()
    await loop.shutdown_default_executor()
    with pytest.raises(RuntimeError, match="shutdown"):
        loop.run_in_executor(None, time.time)


def _raise_cf_cancelled() -> None:
    future: concurrent.futures.Future[None] = concurrent.futures.Future()
    future.cancel()
    future.result()  # raises concurrent.futures.CancelledError


def _raise_cf_invalid_state() -> None:
    raise concurrent.futures.InvalidStateError("not now")


async def test_pool_flavoured_errors_become_asyncio_errors() -> None:
    # asyncio's wrap_future converts them (its test_run_coroutine_threadsafe_* rely on it)
    loop = asyncio.get_running_loop()
    with pytest.raises(asyncio.CancelledError):
        await loop.run_in_executor(None, _raise_cf_cancelled)
    with pytest.raises(asyncio.InvalidStateError, match="not now"):
        await asyncio.to_thread(_raise_cf_invalid_state)
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


class _UnhashableCallable:
    __hash__ = None  # type: ignore[assignment]

    def __call__(self, x: int) -> int:
        return x + 1


async def test_any_callable_object_runs() -> None:
    # a Mock answers every attribute (co_qualname included); an object may be unhashable
    assert await asyncio.to_thread(mock.Mock(return_value="mocked")) == "mocked"
    assert await asyncio.to_thread(_UnhashableCallable(), 1) == 2
    loop = asyncio.get_running_loop()
    assert await loop.run_in_executor(None, _UnhashableCallable(), 41) == 42
