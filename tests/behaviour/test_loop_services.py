"""The rest of the loop's services keep their documented behaviour, on both loops."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading

import pytest

pytestmark = pytest.mark.asyncio


async def test_call_soon_threadsafe_from_another_thread() -> None:
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[str] = loop.create_future()
    threading.Thread(target=loop.call_soon_threadsafe, args=(fut.set_result, "hi")).start()
    assert await asyncio.wait_for(fut, 10) == "hi"


async def test_run_coroutine_threadsafe_from_a_blocking_call() -> None:
    loop = asyncio.get_running_loop()

    async def double(x: int) -> int:
        await asyncio.sleep(0)
        return 2 * x

    def from_thread() -> int:
        return asyncio.run_coroutine_threadsafe(double(21), loop).result(30)

    # Inline, this call would wait for the loop it is blocking: it must move.
    assert await asyncio.to_thread(from_thread) == 42


async def test_subprocess_exec() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "print('out')", stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    assert out.strip() == b"out"
    assert proc.returncode == 0


async def test_tcp_echo_over_loopback() -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.readline()
        # A blocking call in the middle of serving, as real servers do.
        data = await asyncio.to_thread(bytes.upper, data)
        writer.write(data)
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        replies = []
        for i in range(5):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(f"ping {i}\n".encode())
            replies.append(await reader.readline())
            writer.close()
            await writer.wait_closed()
    assert replies == [f"PING {i}\n".encode() for i in range(5)]


async def test_add_signal_handler_runs_the_callback() -> None:
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers need the main thread")
    loop = asyncio.get_running_loop()
    got: asyncio.Future[int] = loop.create_future()
    loop.add_signal_handler(signal.SIGUSR1, got.set_result, 1)
    try:
        os.kill(os.getpid(), signal.SIGUSR1)
        assert await asyncio.wait_for(got, 10) == 1
    finally:
        assert loop.remove_signal_handler(signal.SIGUSR1)


async def test_timers_fire_in_order() -> None:
    loop = asyncio.get_running_loop()
    order: list[int] = []
    done = loop.create_future()
    loop.call_later(0.02, order.append, 2)
    loop.call_later(0.01, order.append, 1)
    handle = loop.call_later(0.015, order.append, 99)
    handle.cancel()
    loop.call_later(0.03, done.set_result, None)
    await done
    assert order == [1, 2]
