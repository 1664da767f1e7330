"""Signals, Ctrl-C and fork, whichever thread owns the loop."""

from __future__ import annotations

import asyncio
import os
import signal
import textwrap
import threading
import time
import warnings

import pytest

import sysletloop

from .helpers import Gate, python_child, this_loop, until, wait_until

CTRL_C_CHILD = textwrap.dedent(
    """
    import asyncio, sys, time
    import sysletloop

    MODE = sys.argv[1]

    async def main():
        if MODE == "home-blocked":
            # The main thread runs this call inline and blocks in it; the loop moves on.
            asyncio.get_running_loop().call_later(0.3, lambda: print("ready", flush=True))
            await sysletloop.call(time.sleep, 1)
        else:
            # Move the loop off the main thread, then idle on the worker.
            await sysletloop.call(time.sleep, 0.05)
            print("ready", flush=True)
            await asyncio.sleep(4)

    try:
        sysletloop.run(main())
    except KeyboardInterrupt:
        print("interrupted", time.monotonic(), flush=True)
        sys.exit(3)
    print("not interrupted", flush=True)
    """
)


@pytest.mark.parametrize("mode", ["home-blocked", "home-free"])
@pytest.mark.parametrize("debug", ["", "1"])
def test_ctrl_c_cancels_the_main_task_promptly(mode: str, debug: str) -> None:
    env = dict(os.environ, PYTHONASYNCIODEBUG=debug)
    with python_child(CTRL_C_CHILD, mode, env=env) as child:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        sent = time.monotonic()
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=30)
    assert child.returncode == 3, (out, err)
    interrupted_at = float(out.split()[1])
    if mode == "home-free":
        # Nothing blocks: the interrupt ends the run well before the 4 s sleep would.
        assert interrupted_at - sent < 3.0, (out, err)
    else:
        # The main task is cancelled at once; asyncio.run then waits for the blocked
        # call (as stock asyncio waits for its pool threads) and raises KeyboardInterrupt.
        assert "Traceback" not in err or "KeyboardInterrupt" in err


CANCEL_TIMING_CHILD = textwrap.dedent(
    """
    import asyncio, time
    import sysletloop

    async def main():
        asyncio.get_running_loop().call_later(0.3, lambda: print("ready", flush=True))
        try:
            await sysletloop.call(time.sleep, 4)
        except asyncio.CancelledError:
            print("cancelled", time.monotonic(), flush=True)
            raise

    try:
        sysletloop.run(main())
    except KeyboardInterrupt:
        print("interrupted", time.monotonic(), flush=True)
    """
)


def test_ctrl_c_reaches_the_main_task_while_the_main_thread_is_blocked() -> None:
    with python_child(CANCEL_TIMING_CHILD) as child:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        sent = time.monotonic()
        child.send_signal(signal.SIGINT)
        cancelled = child.stdout.readline().split()
        out, err = child.communicate(timeout=30)
    assert cancelled[0] == "cancelled", (cancelled, out, err)
    # The main thread still sleeps (4 s) when the task sees the cancellation.
    assert float(cancelled[1]) - sent < 2.5
    assert out.split()[0] == "interrupted"


needs_main_thread = pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(),
    reason="signal handlers are registered from the main thread",
)


@needs_main_thread
@pytest.mark.parametrize("affinity", [False, True], ids=["away", "home"])
def test_add_signal_handler_on_a_loop_that_moved_off_the_main_thread(affinity: bool) -> None:
    async def main() -> int:
        loop = this_loop()
        await sysletloop.call(time.sleep, 0.02)
        assert loop.syslet_stats().migrations == 1
        # Away: registered on the main thread, which waits for the run to end. Home:
        # the loop is back on the main thread, and registers it there directly.
        assert (threading.current_thread() is threading.main_thread()) is affinity
        got: asyncio.Future[int] = loop.create_future()
        loop.add_signal_handler(signal.SIGUSR1, got.set_result, 7)
        try:
            os.kill(os.getpid(), signal.SIGUSR1)
            return await asyncio.wait_for(got, 10)
        finally:
            assert loop.remove_signal_handler(signal.SIGUSR1)

    assert sysletloop.run(main(), home_affinity=affinity) == 7
    assert signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL


@needs_main_thread
def test_signal_registration_waits_for_a_busy_main_thread() -> None:
    gate = Gate()

    async def main() -> int:
        loop = this_loop()
        blocked = asyncio.ensure_future(sysletloop.call(gate))  # the main thread blocks
        await until(gate.started.is_set)
        await asyncio.sleep(0.01)
        got: asyncio.Future[int] = loop.create_future()
        loop.add_signal_handler(signal.SIGUSR2, got.set_result, 9)
        gate.release.set()
        await blocked
        await until(lambda: signal.getsignal(signal.SIGUSR2) is not signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGUSR2)
        try:
            return await asyncio.wait_for(got, 10)
        finally:
            loop.remove_signal_handler(signal.SIGUSR2)

    assert sysletloop.run(main()) == 9
    assert wait_until(lambda: signal.getsignal(signal.SIGUSR2) is signal.SIG_DFL)


def test_a_forked_child_can_run_a_new_loop() -> None:
    # Leave this process with live loop threads, as a real program would have.
    async def warm() -> None:
        await sysletloop.call(time.sleep, 0.01)

    sysletloop.run(warm(), idle_timeout=30)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork with threads
        pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:

            async def child_main() -> int:
                await sysletloop.call(time.sleep, 0.01)
                return this_loop().syslet_stats().migrations

            code = 0 if sysletloop.run(child_main()) == 1 else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


RETURNED_CHILD = textwrap.dedent(
    """
    import asyncio, signal, threading, time
    import sysletloop

    async def main():
        loop = asyncio.get_running_loop()
        await asyncio.to_thread(time.sleep, 0.05)  # blocks: the loop moves, then comes home
        got = loop.create_future()
        loop.add_signal_handler(signal.SIGUSR1, lambda: got.set_result(time.monotonic()))
        on_main = threading.current_thread() is threading.main_thread()
        stats = loop.syslet_stats()
        print("ready", on_main, stats.migrations, stats.home_returns, flush=True)
        print("usr1", await got, flush=True)
        await asyncio.sleep(10)

    try:
        sysletloop.run(main(), predict_blocking=False)
    except KeyboardInterrupt:
        print("interrupted", time.monotonic(), flush=True)
    """
)


def test_signals_arrive_promptly_after_a_migration_and_return() -> None:
    # After its blocked call returns, the main thread runs the loop again: handlers of
    # add_signal_handler and asyncio.run's own Ctrl-C handler run there at once.
    with python_child(RETURNED_CHILD) as child:
        assert child.stdout is not None
        ready = child.stdout.readline().split()
        assert ready == ["ready", "True", "1", "1"], (ready, child.stderr)
        sent = time.monotonic()
        child.send_signal(signal.SIGUSR1)
        usr1 = child.stdout.readline().split()
        assert usr1[0] == "usr1"
        sent_int = time.monotonic()
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=30)
    assert float(usr1[1]) - sent < 2.0
    assert out.split()[0] == "interrupted", (out, err)
    assert float(out.split()[1]) - sent_int < 2.0  # not the 10 s sleep


LONG_C_CALL_CHILD = textwrap.dedent(
    """
    import asyncio, hashlib, sys, time
    import sysletloop

    def long_c_call():
        # One C call that releases the GIL and never checks for signals.
        hashlib.pbkdf2_hmac("sha256", b"x", b"salt", ITERATIONS)
        sys.stdout.write(f"returned {time.monotonic()}\\n")  # one write: no interleaving
        sys.stdout.flush()

    ITERATIONS = 1
    per = time.monotonic()
    hashlib.pbkdf2_hmac("sha256", b"x", b"salt", 200_000)
    ITERATIONS = int(200_000 * 1.5 / max(time.monotonic() - per, 1e-6))  # about 1.5 s

    async def main():
        asyncio.get_running_loop().call_later(0.3, lambda: print("ready", flush=True))
        try:
            await sysletloop.call(long_c_call)
        except asyncio.CancelledError:
            sys.stdout.write(f"cancelled {time.monotonic()}\\n")
            sys.stdout.flush()
            raise

    try:
        sysletloop.run(main(), predict_blocking=False)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
    """
)


def test_ctrl_c_during_a_c_call_that_never_checks_is_handled_once_when_it_returns() -> None:
    # The documented limit: Python runs signal handlers on the main thread only, between
    # bytecodes; while the main thread is inside one long C call that never checks,
    # nothing can run asyncio.run's handler (running it on the loop's thread instead
    # would run it twice: CPython keeps the signal pending for the main thread). It runs
    # once, as soon as the call returns: the main task is cancelled then.
    with python_child(LONG_C_CALL_CHILD) as child:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        sent = time.monotonic()
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=60)
    lines = [line.split() for line in out.splitlines()]
    assert sorted(line[0] for line in lines) == ["cancelled", "interrupted", "returned"], (
        out,
        err,
    )
    assert lines[-1] == ["interrupted"]  # once, at the end: the handler ran once
    at = {line[0]: float(line[1]) for line in lines[:-1]}
    assert at["returned"] - sent > 0.2  # the signal came in the middle of the call...
    assert at["cancelled"] > at["returned"] - 0.05  # ...and was handled when it returned
    assert "Traceback" not in err or "KeyboardInterrupt" in err
