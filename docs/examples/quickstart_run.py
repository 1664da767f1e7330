"""Quick start: ``sysletloop.run``, the one-line entry point."""

import asyncio
import hashlib
import threading

import sysletloop


def digest(data: bytes) -> str:  # a blocking call: CPU work that releases the GIL
    return hashlib.sha256(data).hexdigest()


async def main() -> None:
    loop_thread = threading.get_ident()
    # run_in_executor(None, ...) and asyncio.to_thread take the syslet path: the call
    # starts inline, in the loop's thread.
    ran_on = await asyncio.to_thread(threading.get_ident)
    assert ran_on == loop_thread
    # sysletloop.call is the explicit form (it falls back to to_thread on other loops).
    print(await sysletloop.call(digest, b"syslet"))
    # Inline, or (had one blocked) on another thread and collected from the ring.
    loop = asyncio.get_running_loop()
    assert isinstance(loop, sysletloop.SysletEventLoop)
    stats = loop.syslet_stats()
    print("syslet calls:", stats.inline_completions + stats.completions_drained)


sysletloop.run(main())
