"""Migration: aiofiles code runs unchanged; its calls take the syslet path."""

import asyncio
import tempfile
from pathlib import Path

import aiofiles

import sysletloop


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "notes.txt"
        async with aiofiles.open(path, "w") as f:
            await f.write("written by aiofiles\n")
        async with aiofiles.open(path) as f:
            print((await f.read()).strip())
    loop = asyncio.get_running_loop()
    assert isinstance(loop, sysletloop.SysletEventLoop)
    stats = loop.syslet_stats()
    # open, write, close, open, read, close: six calls, none on asyncio's thread pool.
    assert stats.inline_completions + stats.completions_drained == 6


sysletloop.run(main())
