"""Quick start: anyio on sysletloop."""

import time

import anyio

import sysletloop
import sysletloop.to_thread


def slow_lookup(key: str) -> str:  # blocks: the loop moves on without it
    time.sleep(0.05)
    return key.upper()


async def main() -> None:
    results: list[str] = []

    async def worker(key: str) -> None:
        # anyio's signature; the syslet path on sysletloop, anyio's threads elsewhere.
        results.append(await sysletloop.to_thread.run_sync(slow_lookup, key))

    async with anyio.create_task_group() as tg:
        for key in ("a", "b", "c"):
            tg.start_soon(worker, key)
    print(sorted(results))


anyio.run(main, backend="asyncio", backend_options={"loop_factory": sysletloop.new_event_loop})
