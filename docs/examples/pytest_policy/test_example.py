import asyncio

import pytest

import sysletloop


@pytest.mark.asyncio
async def test_runs_on_sysletloop() -> None:
    assert isinstance(asyncio.get_running_loop(), sysletloop.SysletEventLoop)
