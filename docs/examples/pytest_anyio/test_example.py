import anyio
import pytest

import sysletloop.to_thread


@pytest.mark.anyio
async def test_to_thread_on_each_backend() -> None:
    assert await sysletloop.to_thread.run_sync(sum, [1, 2, 3]) == 6
    with anyio.move_on_after(0.01) as scope:
        await anyio.sleep_forever()
    assert scope.cancelled_caught
