"""Quick start: sysletloop as the ``loop_factory`` of asyncio's own runners."""

import asyncio
import sys

import sysletloop


async def main() -> str:
    return type(asyncio.get_running_loop()).__name__


# Python 3.11 and later: asyncio.Runner.
with asyncio.Runner(loop_factory=sysletloop.new_event_loop) as runner:
    print(runner.run(main()))

# Python 3.12 and later: asyncio.run takes a loop_factory too.
if sys.version_info >= (3, 12):
    print(asyncio.run(main(), loop_factory=sysletloop.new_event_loop))
