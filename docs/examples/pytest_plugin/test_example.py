import asyncio
import time

import pytest

import sysletloop


@pytest.mark.asyncio
async def test_blocking_work_does_not_stall_the_loop() -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.001)
            ticks += 1

    task = asyncio.create_task(ticker())
    await asyncio.to_thread(time.sleep, 0.1)
    task.cancel()
    assert ticks > 0


@pytest.mark.asyncio
async def test_which_loop(request: pytest.FixtureRequest) -> None:
    # With "sysletloop_loops = syslet asyncio" each test runs twice: [syslet], [asyncio].
    on_syslet = not request.node.name.endswith("[asyncio]")
    assert isinstance(asyncio.get_running_loop(), sysletloop.SysletEventLoop) == on_syslet
