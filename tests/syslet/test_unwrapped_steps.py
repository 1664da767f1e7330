"""migrate_steps: a task step that blocks in a call nobody wrapped moves the loop.

Every test blocks for real (no mocks) and proves that the loop went on without timing
anything: the blocked step waits for something only *another task on the same loop* can
give it (an event, bytes on a socket, a commit, a file). On a stock loop, or with the
option off, that is a deadlock, bounded here by a generous timeout that turns it into a
failure. The invariant -- no code of a claimed step runs beside the loop -- is checked by
a hypothesis test of read-modify-write sections that a concurrent step would break.
"""

from __future__ import annotations

import asyncio
import hashlib
import http.server
import logging
import queue
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sysletloop

from .helpers import loop_threads, python_child, wait_until

needs_monitoring = pytest.mark.skipif(
    sys.version_info < (3, 12), reason="migrate_steps needs sys.monitoring (3.12+)"
)

# Long enough that a loaded machine never turns a working migration into a timeout,
# short enough that a deadlock fails the test instead of hanging CI.
DEADLOCK = 20.0  # seconds


def run_steps(main: Callable[[], Awaitable[Any]], **options: Any) -> Any:
    options.setdefault("migrate_steps", True)
    return sysletloop.run(main(), **options)


def this_loop() -> sysletloop.SysletEventLoop:
    loop = asyncio.get_running_loop()
    assert isinstance(loop, sysletloop.SysletEventLoop)
    return loop


# ----------------------------------------------------------------- the option


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="3.11 only")
def test_refused_on_311_with_the_reason() -> None:
    with pytest.raises(ValueError, match=r"migrate_steps=True needs sys\.monitoring"):
        sysletloop.new_event_loop(migrate_steps=True)


def test_option_is_a_bool_and_off_by_default() -> None:
    with pytest.raises(TypeError, match="migrate_steps must be a bool, got int"):
        sysletloop.new_event_loop(migrate_steps=1)
    loop = sysletloop.new_event_loop()
    try:
        assert loop.syslet_options.migrate_steps is False
    finally:
        loop.close()


# ------------------------------------------------ the loop goes on while it blocks


@needs_monitoring
def test_event_wait_in_a_step_lets_the_setter_run() -> None:
    async def main() -> tuple[bool, int]:
        event = threading.Event()

        async def waiter() -> bool:
            return event.wait(DEADLOCK)  # unwrapped: blocks the step's thread

        async def setter() -> None:
            event.set()

        ok, _ = await asyncio.gather(waiter(), setter())
        return ok, this_loop().syslet_stats().claimed_steps

    ok, claimed = run_steps(main)
    assert ok, "the setter never ran while the waiter blocked: the loop stalled"
    assert claimed >= 1


@needs_monitoring
def test_option_off_stalls_as_stock() -> None:
    async def main() -> tuple[bool, int]:
        event = threading.Event()

        async def waiter() -> bool:
            return event.wait(0.3)

        async def setter() -> None:
            event.set()

        ok, _ = await asyncio.gather(waiter(), setter())
        return ok, this_loop().syslet_stats().claimed_steps

    assert run_steps(main, migrate_steps=False) == (False, 0)


@needs_monitoring
def test_socket_recv_from_a_peer_on_the_loop() -> None:
    async def main() -> bytes:
        a, b = socket.socketpair()
        a.settimeout(DEADLOCK)

        async def reader() -> bytes:
            return a.recv(100)  # blocks until the writer, on the loop, sends

        async def writer() -> None:
            b.sendall(b"hello")

        try:
            data, _ = await asyncio.gather(reader(), writer())
        finally:
            a.close()
            b.close()
        return bytes(data)

    assert run_steps(main) == b"hello"


@needs_monitoring
def test_sqlite3_busy_wait_on_a_lock_held_by_another_task(tmp_path: Path) -> None:
    path = str(tmp_path / "db.sqlite")
    setup = sqlite3.connect(path)
    setup.execute("create table t (x)")
    setup.commit()
    setup.close()

    async def main() -> list[tuple[int]]:
        # Steps run on whichever thread owns the loop: connections must allow that.
        holder = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        writer = sqlite3.connect(path, timeout=DEADLOCK, check_same_thread=False)
        holder.execute("begin immediate")
        holder.execute("insert into t values (1)")
        started = asyncio.Event()

        async def write() -> None:
            started.set()
            writer.execute("insert into t values (2)")  # busy: waits for the lock
            writer.commit()

        async def release() -> None:
            await started.wait()
            await asyncio.sleep(0.05)  # let the writer reach its busy wait
            holder.execute("commit")

        await asyncio.gather(write(), release())
        rows = holder.execute("select x from t order by x").fetchall()
        holder.close()
        writer.close()
        return rows

    assert run_steps(main) == [(1,), (2,)]


@contextmanager
def gated_http_server(gate: threading.Event) -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            gate.wait(DEADLOCK)
            body = b"answered"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@needs_monitoring
def test_urllib_request_waits_for_a_server_the_loop_releases() -> None:
    gate = threading.Event()
    with gated_http_server(gate) as url:

        async def main() -> bytes:
            async def fetch() -> bytes:
                with urllib.request.urlopen(url, timeout=DEADLOCK) as response:
                    return bytes(response.read())

            async def open_gate() -> None:
                await asyncio.sleep(0.05)
                gate.set()

            body, _ = await asyncio.gather(fetch(), open_gate())
            return body

        assert run_steps(main) == b"answered"


@needs_monitoring
def test_subprocess_run_waits_for_a_file_another_task_writes(tmp_path: Path) -> None:
    flag = tmp_path / "go"
    child = (
        "import os, sys, time\n"
        f"deadline = time.monotonic() + {DEADLOCK}\n"
        "while not os.path.exists(sys.argv[1]) and time.monotonic() < deadline:\n"
        "    time.sleep(0.01)\n"
        "sys.exit(0 if os.path.exists(sys.argv[1]) else 3)\n"
    )

    async def main() -> int:
        async def run_child() -> int:
            return subprocess.run([sys.executable, "-c", child, str(flag)]).returncode

        async def make_flag() -> None:
            await asyncio.sleep(0.05)
            flag.write_text("go")

        code, _ = await asyncio.gather(run_child(), make_flag())
        return code

    assert run_steps(main) == 0


@needs_monitoring
@pytest.mark.parametrize("work", ["python", "hashing without the GIL"])
def test_a_step_that_computes_is_not_moved(work: str) -> None:
    # Its CPU clock moves: nothing would be gained by moving it (with the GIL, its
    # Python would interleave with other tasks'; without, it is not waiting).
    async def main() -> int:
        if work == "python":
            deadline = time.perf_counter() + 0.1
            while time.perf_counter() < deadline:
                pass
        else:
            hashlib.sha256(b"x" * 200_000_000).digest()  # releases the GIL, computes
        return this_loop().syslet_stats().claimed_steps

    assert run_steps(main) == 0


@needs_monitoring
def test_a_thread_asleep_in_the_kernel_is_told_from_a_running_one() -> None:
    from sysletloop._steps import _sleeping

    asleep = threading.Thread(target=time.sleep, args=(0.5,))
    asleep.start()
    try:
        assert wait_until(lambda: _sleeping(asleep.native_id or 0))
        assert not _sleeping(threading.get_native_id())  # this one runs
    finally:
        asleep.join()
    assert not _sleeping(asleep.native_id or 0)  # gone


# ------------------------------------------------- a call that raises after the block


def _recv_in_a_plain_function(sock: socket.socket) -> bytes:
    return sock.recv(100)  # raises ConnectionResetError: leaves this plain frame


@needs_monitoring
@pytest.mark.parametrize("depth", ["coroutine", "plain function"])
def test_a_call_that_raises_after_the_claim(depth: str) -> None:
    async def main() -> tuple[str, list[str]]:
        server = socket.create_server(("127.0.0.1", 0))
        client = socket.create_connection(server.getsockname())
        peer, _ = server.accept()
        client.settimeout(DEADLOCK)
        order: list[str] = []

        async def reader() -> str:
            try:
                if depth == "coroutine":
                    client.recv(100)
                else:
                    _recv_in_a_plain_function(client)
            except ConnectionResetError:
                order.append("reader caught")
                return "reset"
            return "no error"

        async def resetter() -> None:
            order.append("resetter ran")
            linger = b"\x01\x00\x00\x00\x00\x00\x00\x00"  # on, 0 s
            peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            peer.close()  # RST: the reader's recv raises

        try:
            outcome, _ = await asyncio.gather(reader(), resetter())
        finally:
            client.close()
            server.close()
        return outcome, order

    outcome, order = run_steps(main)
    assert outcome == "reset"
    assert order == ["resetter ran", "reader caught"]


@needs_monitoring
def test_queue_get_timeout_raising_empty_in_python_frames() -> None:
    # queue.get is Python code over a C lock wait: the raise starts in a stdlib frame.
    async def main() -> list[str]:
        q: queue.Queue[int] = queue.Queue()
        order: list[str] = []
        other_ran = threading.Event()

        async def getter() -> None:
            try:
                q.get(timeout=1.0)
            except queue.Empty:
                order.append(f"empty, other ran first: {other_ran.is_set()}")

        async def other() -> None:
            other_ran.set()

        await asyncio.gather(getter(), other())
        return order

    assert run_steps(main) == ["empty, other ran first: True"]


# ------------------------------------------------------------ callbacks, eager tasks


@needs_monitoring
def test_a_plain_callback_that_blocks_is_claimed_too() -> None:
    async def main() -> tuple[bool, int]:
        loop = this_loop()
        event = threading.Event()
        done: asyncio.Future[bool] = loop.create_future()

        def callback() -> None:
            done.set_result(event.wait(DEADLOCK))

        loop.call_soon(callback)
        await asyncio.sleep(0)
        event.set()  # this task runs while the callback blocks
        return await done, loop.syslet_stats().claimed_steps

    ok, claimed = run_steps(main)
    assert ok and claimed >= 1


@needs_monitoring
def test_a_bare_c_callback_is_not_claimed() -> None:
    # call_soon(time.sleep, ...) has no Python frame of its own to hold: it stalls the
    # loop as on stock asyncio (documented), and nothing is claimed.
    async def main() -> int:
        loop = this_loop()
        loop.call_soon(time.sleep, 0.05)
        await asyncio.sleep(0.01)
        return loop.syslet_stats().claimed_steps

    assert run_steps(main) == 0


@needs_monitoring
def test_eager_task_first_step_blocks_inside_create_task() -> None:
    async def main() -> list[str]:
        loop = this_loop()
        loop.set_task_factory(asyncio.eager_task_factory)  # type: ignore[attr-defined]
        event = threading.Event()
        order: list[str] = []

        async def setter() -> None:
            await asyncio.sleep(0)  # its eager first step ends here
            order.append("setter")
            event.set()

        async def eager() -> None:
            order.append("eager start")
            event.wait(DEADLOCK)  # blocks inside create_task, in main's own step
            order.append("eager resumed")

        first = loop.create_task(setter())
        second = loop.create_task(eager())
        await asyncio.gather(first, second)
        return order

    assert run_steps(main) == ["eager start", "setter", "eager resumed"]


# ---------------------------------------------------- threads, the home thread, the cap


@needs_monitoring
@pytest.mark.parametrize("home_affinity", [True, False])
def test_steps_and_threads_after_close(home_affinity: bool) -> None:
    home = threading.get_ident()

    async def main() -> tuple[int, int]:
        events = [threading.Event() for _ in range(4)]

        async def waiter(e: threading.Event) -> None:
            assert e.wait(DEADLOCK)

        async def setter() -> None:
            for e in events:
                await asyncio.sleep(0.01)
                e.set()

        await asyncio.gather(*(waiter(e) for e in events), setter())
        await asyncio.sleep(0.01)
        return threading.get_ident(), this_loop().syslet_stats().claimed_steps

    ident, claimed = run_steps(main, home_affinity=home_affinity)
    assert claimed >= 1
    if home_affinity:
        assert ident == home  # the main task's last step ran at home
    assert wait_until(lambda: not loop_threads()), loop_threads()


@needs_monitoring
@pytest.mark.parametrize("wait", ["c", "python"])
def test_close_joins_the_sampler_promptly_with_a_long_threshold(
    wait: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The sampler waits in slices no longer than MAX_WAIT, whatever the threshold.
    from sysletloop import _stepsampler

    if wait == "python":
        monkeypatch.setattr(_stepsampler, "_wait_still", _stepsampler._wait_still_in_python)

    async def main() -> None:
        await asyncio.sleep(0.05)

    loop = sysletloop.new_event_loop(migrate_steps=True, block_threshold=60.0)
    try:
        loop.run_until_complete(main())
    finally:
        started = time.monotonic()
        loop.close()
        closed_in = time.monotonic() - started
    assert closed_in < 5.0, closed_in  # not the 30 s a threshold-sized look would take
    assert wait_until(lambda: not loop_threads()), loop_threads()


@needs_monitoring
def test_at_the_cap_a_blocked_step_stalls_and_is_counted() -> None:
    async def main() -> tuple[list[bool], int, int]:
        first = threading.Event()
        second = threading.Event()

        async def a() -> bool:
            return first.wait(DEADLOCK)

        async def b() -> bool:
            # Claimed? No: a's step holds the only slot. It stalls until its timeout...
            return second.wait(0.3)

        async def c() -> bool:
            first.set()
            return True

        results = await asyncio.gather(a(), b(), c())
        stats = this_loop().syslet_stats()
        return list(results), stats.claimed_steps, stats.steps_at_cap

    results, claimed, at_cap = run_steps(main, max_blocked=1)
    assert results == [True, False, True]
    assert claimed >= 1
    assert at_cap >= 1


@needs_monitoring
def test_a_held_step_holding_a_lock_the_loop_needs_does_not_cascade() -> None:
    # Task 0 blocks acquiring a lock a plain thread holds: claimed. When it gets the
    # lock, it is held (holding it) until it takes the loop back. The other tasks then
    # block on that lock one after another, each claimed in turn; with the grant queued
    # behind them, the claims cascaded to the cap and the last owner stalled forever.
    lock = threading.Lock()
    lock.acquire()
    threading.Timer(0.05, lock.release).start()

    async def main() -> tuple[list[bool], int]:
        async def take(i: int) -> bool:
            got = lock.acquire(timeout=DEADLOCK)
            if got:
                lock.release()
            return got

        results = await asyncio.gather(*(take(i) for i in range(12)))
        return list(results), this_loop().syslet_stats().steps_at_cap

    results, _ = run_steps(main, max_blocked=4)
    assert results == [True] * 12
    assert wait_until(lambda: not loop_threads()), loop_threads()


@needs_monitoring
def test_run_coroutine_threadsafe_result_from_a_step_completes() -> None:
    # A deadlock on stock asyncio (the step waits for the loop it is blocking); with
    # migrate_steps the waiting step is claimed and the loop runs the coroutine.
    async def main() -> int:
        loop = this_loop()

        async def answer() -> int:
            await asyncio.sleep(0)
            return 42

        future = asyncio.run_coroutine_threadsafe(answer(), loop)
        return future.result(timeout=DEADLOCK)

    assert run_steps(main) == 42


# ----------------------------------------------------------------- telemetry


@needs_monitoring
def test_report_names_the_line_and_the_call() -> None:
    lines: list[int] = []

    async def main() -> tuple[list[sysletloop.BlockedSite], str]:
        event = threading.Event()

        async def waiter() -> None:
            event.wait(DEADLOCK)

        lines.append(waiter.__code__.co_firstlineno + 1)

        async def setter() -> None:
            event.set()

        await asyncio.gather(waiter(), setter())
        loop = this_loop()
        return loop.syslet_blocked_sites(), loop.syslet_report()

    sites, report = run_steps(main)
    assert len(sites) == 1
    site = sites[0]
    # The innermost Python frame is threading's own (Event.wait over a C lock wait);
    # the step's frame is the application's line.
    assert site.where.startswith(threading.__file__ + ":")
    assert site.call  # the source of the C call there, e.g. waiter.acquire()
    assert site.step == f"{__file__}:{lines[0]} in {main.__qualname__}.<locals>.waiter"
    assert site.claims == 1 and site.blocked_seconds > 0
    assert f"{Path(__file__).name}:{lines[0]}" in report


@needs_monitoring
def test_debug_slow_callback_warning_says_the_loop_moved_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> None:
        event = threading.Event()

        async def waiter() -> None:
            event.wait(DEADLOCK)

        async def setter() -> None:
            await asyncio.sleep(0.15)  # the waiter's step outlasts slow_callback_duration
            event.set()

        await asyncio.gather(waiter(), setter())

    with caplog.at_level(logging.WARNING, logger="asyncio"):
        sysletloop.run(main(), migrate_steps=True, debug=True)
    moved = [r for r in caplog.records if "the loop went on on another thread" in r.getMessage()]
    assert moved, [r.getMessage() for r in caplog.records]


# ------------------------------------------------------------------ Ctrl-C


@needs_monitoring
@pytest.mark.parametrize("factory", ["asyncio", "syslet"])
def test_ctrl_c_while_the_main_thread_blocks_in_a_step(factory: str) -> None:
    # asyncio.Runner: the first SIGINT cancels the main task (a blocking call goes on),
    # the second raises KeyboardInterrupt where the main thread is: in time.sleep,
    # inside a step that the syslet loop has claimed. Same outcome on both loops.
    code = """
import asyncio, os, signal, sys, threading, time
import sysletloop

# A parent that ignores SIGINT (a background job) passes that on: asyncio.Runner then
# installs no handler. This test is about the handler.
signal.signal(signal.SIGINT, signal.default_int_handler)

async def main():
    async def ticker():
        while True:
            await asyncio.sleep(0.01)
    asyncio.get_running_loop().create_task(ticker())
    for delay in (0.5, 1.0):
        threading.Timer(delay, os.kill, (os.getpid(), signal.SIGINT)).start()
    time.sleep(30)   # unwrapped, on the main thread
    print("not interrupted", flush=True)

if sys.argv[1] == "syslet":
    factory = lambda: sysletloop.new_event_loop(migrate_steps=True)
else:
    factory = asyncio.new_event_loop
try:
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(main())
except KeyboardInterrupt:
    print("KeyboardInterrupt", threading.current_thread() is threading.main_thread(), flush=True)
"""
    with python_child(code, factory) as child:
        out, err = child.communicate(timeout=DEADLOCK)
    assert out.split() == ["KeyboardInterrupt", "True"], err


# ------------------------------------------------------ the invariant, by hypothesis

BLOCKS = st.sampled_from(["none", "sleep", "event"])


@needs_monitoring
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    programs=st.lists(
        st.lists(st.tuples(BLOCKS, BLOCKS), min_size=1, max_size=4), min_size=2, max_size=5
    ),
    home_affinity=st.booleans(),
    predict_blocking=st.booleans(),
)
def test_no_step_runs_beside_the_loop(
    programs: list[list[tuple[str, str]]], home_affinity: bool, predict_blocking: bool
) -> None:
    """Each task runs steps: [block] read-modify-write [block] await. A read-modify-write
    long enough to span a GIL switch loses an update if two steps run at once."""
    state = {"n": 0, "inside": 0, "overlaps": 0}

    def rmw() -> None:
        state["inside"] += 1
        if state["inside"] > 1:
            state["overlaps"] += 1
        n = state["n"]
        deadline = time.perf_counter() + 0.0005
        while time.perf_counter() < deadline:  # pure Python: the GIL may switch here
            pass
        state["n"] = n + 1
        state["inside"] -= 1

    async def main() -> int:
        gate = threading.Event()

        def block(kind: str) -> None:
            if kind == "sleep":
                time.sleep(0.003)
            elif kind == "event":
                gate.wait(0.003)

        async def task(steps: list[tuple[str, str]]) -> None:
            for before, after in steps:
                block(before)
                rmw()
                block(after)
                await asyncio.sleep(0)

        await asyncio.gather(*(task(p) for p in programs))
        return this_loop().syslet_stats().claimed_steps

    run_steps(main, home_affinity=home_affinity, predict_blocking=predict_blocking)
    assert state["overlaps"] == 0
    assert state["n"] == sum(len(p) for p in programs)
    assert wait_until(lambda: not loop_threads()), loop_threads()

