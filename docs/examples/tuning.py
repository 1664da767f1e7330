"""Tuning: the threshold and the cap, and the counters that tell whether they fit."""

import asyncio
import time

import sysletloop


async def main() -> None:
    # Eight calls that block for 20 ms each, at most four blocked at a time.
    await asyncio.gather(*(asyncio.to_thread(time.sleep, 0.02) for _ in range(8)))
    loop = asyncio.get_running_loop()
    assert isinstance(loop, sysletloop.SysletEventLoop)
    stats = loop.syslet_stats()
    assert stats.peak_blocked <= 4
    print("peak blocked:", stats.peak_blocked, "of", loop.syslet_options.max_blocked)


sysletloop.run(main(), block_threshold=0.005, max_blocked=4)
