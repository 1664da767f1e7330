"""anyio on sysletloop: ``anyio.run`` with sysletloop as the asyncio backend's loop
factory, and anyio's pytest plugin parametrized with it.

The same bodies run on anyio's stock asyncio backend, so a failure that shows on the
syslet parameter only is ours. Two bodies run on a ``route_anyio=True`` loop as well
(``test_anyio_route.py`` has the rest of that option): a shielded call, and a call that
blocks while a sibling task runs.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.abc
import pytest
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

import sysletloop
import sysletloop.testing

from .support import Gate, sleep_and_return, wait_for

SYSLET = pytest.param(sysletloop.testing.anyio_backend(), id="syslet")
STOCK = pytest.param(("asyncio", {}), id="asyncio")
ROUTED = pytest.param(sysletloop.testing.anyio_backend(route_anyio=True), id="routed")
BACKENDS = [SYSLET, STOCK]


@pytest.fixture(params=BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    backend: tuple[str, dict[str, Any]] = request.param
    return backend


def on_syslet(backend: tuple[str, dict[str, Any]]) -> bool:
    return "loop_factory" in backend[1]


# ------------------------------------------------------------------ anyio.run


def test_anyio_run_with_the_loop_factory_runs_on_a_syslet_loop() -> None:
    async def main() -> str:
        return type(asyncio.get_running_loop()).__name__

    name = anyio.run(
        main, backend="asyncio", backend_options={"loop_factory": sysletloop.new_event_loop}
    )
    assert name == "SysletEventLoop"


def test_anyio_run_with_loop_options_passes_them_to_the_loop() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, sysletloop.SysletEventLoop)
        return loop.syslet_options.block_threshold

    backend, options = sysletloop.testing.anyio_backend(block_threshold=0.25)
    assert anyio.run(main, backend=backend, backend_options=options) == 0.25


def test_anyio_backend_rejects_a_bad_option_when_called() -> None:
    with pytest.raises(TypeError, match="unknown sysletloop option"):
        sysletloop.testing.anyio_backend(threshold=1)


# ------------------------------------------------------- anyio's pytest plugin


@pytest.mark.anyio
async def test_the_anyio_plugin_runs_the_test_on_the_chosen_loop(
    anyio_backend: tuple[str, dict[str, Any]],
) -> None:
    loop = asyncio.get_running_loop()
    assert isinstance(loop, sysletloop.SysletEventLoop) == on_syslet(anyio_backend)


@pytest.mark.anyio
async def test_task_group_tasks_talk_over_a_memory_stream() -> None:
    send: MemoryObjectSendStream[int]
    receive: MemoryObjectReceiveStream[int]
    send, receive = anyio.create_memory_object_stream[int](2)
    got: list[int] = []

    async def producer() -> None:
        async with send:
            for i in range(20):
                await send.send(i)

    async def consumer() -> None:
        async with receive:
            async for item in receive:
                got.append(item)

    async with anyio.create_task_group() as tg:
        tg.start_soon(consumer)
        tg.start_soon(producer)
    assert got == list(range(20))


@pytest.mark.anyio
async def test_a_failing_child_cancels_its_siblings() -> None:
    cancelled = anyio.Event()

    async def sibling() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.set()

    async def failing() -> None:
        await anyio.sleep(0)
        raise ValueError("boom")

    with pytest.raises(BaseExceptionGroup) as info:
        async with anyio.create_task_group() as tg:
            tg.start_soon(sibling)
            tg.start_soon(failing)
    assert info.group_contains(ValueError, match="boom")
    assert cancelled.is_set()


@pytest.mark.anyio
async def test_cancel_scopes_time_out_and_shield() -> None:
    with anyio.move_on_after(0.01) as scope:
        await anyio.sleep_forever()
    assert scope.cancelled_caught

    with pytest.raises(TimeoutError):
        with anyio.fail_after(0.01):
            await anyio.sleep_forever()

    finished = False
    with anyio.move_on_after(0.01) as outer:
        with anyio.CancelScope(shield=True):
            await anyio.sleep(0.05)
            finished = True
        await anyio.sleep_forever()
    assert finished and outer.cancelled_caught


@pytest.mark.anyio
async def test_a_tcp_stream_echoes_over_loopback() -> None:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)

    async def echo(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            async for chunk in stream:
                await stream.send(chunk)

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, echo)
        async with await anyio.connect_tcp("127.0.0.1", port) as client:
            for message in (b"syslet", b"x" * 65536):
                await client.send(message)
                received = b""
                while len(received) < len(message):
                    received += await client.receive()
                assert received == message
        tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_anyio_to_thread_runs_on_anyio_worker_threads() -> None:
    # anyio's asyncio backend keeps its own worker threads (not run_in_executor): it
    # works on sysletloop unchanged, and does not take the syslet path.
    thread = await anyio.to_thread.run_sync(threading.current_thread)
    assert thread.name == "AnyIO worker thread"


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", [*BACKENDS, ROUTED])
async def test_anyio_to_thread_waits_for_a_shielded_call_then_cancels() -> None:
    results: list[float] = []
    with anyio.move_on_after(0.01) as scope:
        results.append(await anyio.to_thread.run_sync(sleep_and_return, 0.05))
        await anyio.sleep(0)
    assert results == [0.05]
    assert scope.cancelled_caught


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("anyio_backend", "blocking_call"),
    [
        pytest.param(SYSLET.values[0], sysletloop.call, id="syslet-sysletloop.call"),
        pytest.param(STOCK.values[0], sysletloop.call, id="asyncio-sysletloop.call"),
        pytest.param(ROUTED.values[0], anyio.to_thread.run_sync, id="routed-anyio.to_thread"),
        pytest.param(STOCK.values[0], anyio.to_thread.run_sync, id="asyncio-anyio.to_thread"),
    ],
)
async def test_a_blocking_call_in_a_task_group_does_not_stall_siblings(
    anyio_backend: tuple[str, dict[str, Any]],
    blocking_call: Callable[..., Awaitable[object]],
) -> None:
    # On sysletloop (sysletloop.call, or anyio's to_thread on a route_anyio loop) the call
    # starts inline and the loop moves away from it; on stock asyncio it runs on a pool
    # thread. Either way the sibling keeps going.
    gate = Gate()
    ticks_while_blocked = 0

    async def sibling() -> None:
        nonlocal ticks_while_blocked
        await wait_for(gate.started)
        for _ in range(5):
            await anyio.sleep(0.001)
            ticks_while_blocked += 1
        gate.release.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(sibling)
        assert await blocking_call(gate, "released") == "released"
    assert ticks_while_blocked == 5
    loop = asyncio.get_running_loop()
    if on_syslet(anyio_backend):
        assert isinstance(loop, sysletloop.SysletEventLoop)
        assert loop.syslet_stats().migrations >= 1
        if blocking_call is anyio.to_thread.run_sync:
            assert loop.syslet_options.route_anyio
