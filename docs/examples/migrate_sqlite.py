"""Migration: a sqlite3 connection used from blocking calls, as with a thread pool.

With home affinity (the default) every call that starts while the loop's home thread is
free runs on that thread, whatever blocked in between: the connection made in the first
call is usable in every later one, with sqlite3's default ``check_same_thread=True``.
Here a blocking call (and then three at once) runs between making the connection and
using it.
"""

import asyncio
import sqlite3
import time

import sysletloop


async def main() -> None:
    db = await asyncio.to_thread(sqlite3.connect, ":memory:")
    try:
        await asyncio.to_thread(db.execute, "create table kv (k text primary key, v text)")
        await asyncio.to_thread(time.sleep, 0.05)  # blocks: the loop moves, then comes home
        await asyncio.to_thread(db.execute, "insert into kv values (?, ?)", ("answer", "42"))
        await asyncio.gather(*(asyncio.to_thread(time.sleep, 0.02) for _ in range(3)))
        rows = await asyncio.to_thread(lambda: db.execute("select v from kv").fetchall())
        print(rows)
    finally:
        await asyncio.to_thread(db.close)


sysletloop.run(main())
