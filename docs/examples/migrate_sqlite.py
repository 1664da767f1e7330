"""Migration: a sqlite3 connection used from blocking calls.

A blocking call runs on the loop's thread when it does not block, and the loop changes
thread whenever a call does block, so two calls of one task may run on different threads.
sqlite3's default ``check_same_thread=True`` then refuses the connection. Open it with
``check_same_thread=False`` and keep to one call at a time per connection (here: one
task uses it).
"""

import sqlite3

import sysletloop


async def main() -> None:
    db = await sysletloop.call(sqlite3.connect, ":memory:", check_same_thread=False)
    try:
        await sysletloop.call(db.execute, "create table kv (k text primary key, v text)")
        await sysletloop.call(db.execute, "insert into kv values (?, ?)", ("answer", "42"))
        rows = await sysletloop.call(lambda: db.execute("select v from kv").fetchall())
        print(rows)
    finally:
        await sysletloop.call(db.close)


sysletloop.run(main())
