"""Quick start: the event loop policy, for code that calls ``asyncio.run`` without a
``loop_factory`` (or creates loops with ``asyncio.new_event_loop``)."""

import asyncio

import sysletloop


async def main() -> str:
    return type(asyncio.get_running_loop()).__name__


asyncio.set_event_loop_policy(sysletloop.EventLoopPolicy(block_threshold=0.002))
try:
    print(asyncio.run(main()))
finally:
    asyncio.set_event_loop_policy(None)
