"""The blocking predictor, RWF_NOWAIT reads, and the telemetry users act on."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import sysletloop
from sysletloop._nowait import NowaitReads, positional_read
from sysletloop._profile import PROBE_FIRST, SLOW_CALL, Profile

from .helpers import this_loop

# -- the predictor ------------------------------------------------------------------


# The predictor tests count migrations exactly, so a call meant not to block must never
# reach the threshold, even when the machine stalls the loop thread for a while (CI
# machines are shared: a 1 ms threshold was crossed by sleep(0) under load), and a call
# meant to block must cross it by far.
THRESHOLD = 0.05
BLOCKS = 0.15


def sleepy(seconds: float) -> int:
    time.sleep(seconds)
    return threading.get_native_id()


def test_a_callable_that_blocked_goes_straight_to_a_spare_next_time() -> None:
    # Without home affinity: a predicted call runs on a spare, the loop stays put.
    async def main() -> None:
        loop = this_loop()
        home = threading.get_native_id()
        first = await sysletloop.call(sleepy, BLOCKS)  # blocks inline: the loop moves
        assert first == home
        owner = threading.get_native_id()
        assert owner != home
        second = await sysletloop.call(sleepy, BLOCKS)  # predicted: sent away at once
        assert second != owner
        assert threading.get_native_id() == owner  # the loop did not move this time
        stats = loop.syslet_stats()
        assert (stats.migrations, stats.predicted_blocking) == (1, 1)
        # It stops blocking: a fast outcome on a spare (under SLOW_CALL) makes the
        # predictor forget, and the next call runs inline again. A loaded machine can
        # stretch one sleep(0) past SLOW_CALL, so a few tries are allowed; fewer than
        # PROBE_FIRST, so an inline probe cannot be what brings it back.
        sent_away = 0
        while await sysletloop.call(sleepy, 0) != owner:
            sent_away += 1
            assert sent_away < PROBE_FIRST - 2, "never forgot: every spare run was slow"
        (profile,) = [c for c in loop.syslet_callables() if c.name.startswith("sleepy")]
        assert (profile.migrations, profile.predicted) == (1, 1 + sent_away)
        assert profile.mispredicted >= 1
        assert profile.inline_completions == 1
        assert profile.blocked_seconds >= 2 * BLOCKS

    sysletloop.run(main(), home_affinity=False, block_threshold=THRESHOLD)


def test_a_callable_that_blocked_is_handed_off_at_home_next_time() -> None:
    # With home affinity (the default), a predicted call on the home thread still runs
    # there, but the loop is handed to another thread before it starts (no stall).
    async def main() -> None:
        loop = this_loop()
        home = threading.get_native_id()
        first = await sysletloop.call(sleepy, BLOCKS)  # blocks inline: the loop moves
        assert first == home
        assert threading.get_native_id() == home  # and comes back when it returns
        seen: list[int] = []
        loop.call_later(0.002, lambda: seen.append(threading.get_native_id()))
        second = await sysletloop.call(sleepy, BLOCKS)  # predicted: handed off at once
        assert second == home
        assert seen and seen[0] != home  # the loop ran elsewhere meanwhile
        assert threading.get_native_id() == home
        stats = loop.syslet_stats()
        assert (stats.migrations, stats.predicted_blocking, stats.home_returns) == (1, 1, 2)
        # It stops blocking: it comes back inline, with no hand-off, at the latest
        # with the predictor's first inline probe. (A fast outcome under SLOW_CALL
        # makes it forget sooner; but a handed-off call shares the GIL with the
        # thread that has just taken the loop, so its time is often longer than the
        # call's own, and the probe is what brings it back on a busy machine.)
        handed_off = 0
        while True:
            before = loop.syslet_stats().predicted_blocking
            assert await sysletloop.call(sleepy, 0) == home
            if loop.syslet_stats().predicted_blocking == before:
                break
            handed_off += 1
            assert handed_off <= PROBE_FIRST, "no inline probe after PROBE_FIRST hand-offs"
        (profile,) = [c for c in loop.syslet_callables() if c.name.startswith("sleepy")]
        assert (profile.migrations, profile.predicted) == (1, 1 + handed_off)
        assert profile.inline_completions == 1

    sysletloop.run(main(), block_threshold=THRESHOLD)


def test_twenty_blocking_calls_started_together_move_the_loop_once() -> None:
    async def main() -> sysletloop.SysletStats:
        await asyncio.gather(*(asyncio.to_thread(time.sleep, 0.05) for _ in range(20)))
        return this_loop().syslet_stats()

    stats = sysletloop.run(main())
    # One blocks inline and teaches the predictor; the rest go straight to spares,
    # except one inline probe after PROBE_FIRST (8) predictions, which blocks too.
    assert stats.migrations == 2
    assert stats.predicted_blocking == 18
    assert stats.peak_blocked == 20
    assert stats.completions_drained == 20


def test_debug_mode_names_a_callable_that_keeps_blocking(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> str:
        for _ in range(4):
            await sysletloop.call(sleepy, 0.005)
        return this_loop().syslet_report()

    with caplog.at_level(logging.WARNING, logger="asyncio"):
        report = sysletloop.run(main(), debug=True, predict_blocking=False)
    warnings = [r.getMessage() for r in caplog.records if "has blocked the loop" in r.getMessage()]
    assert len(warnings) == 1
    assert "sleepy" in warnings[0]
    assert "sleepy" in report.splitlines()[2]


# -- RWF_NOWAIT reads ---------------------------------------------------------------


@pytest.fixture
def data_file(tmp_path: Path) -> Iterator[tuple[int, bytes]]:
    data = os.urandom(256 * 1024)
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        yield fd, data
    finally:
        os.close(fd)


def test_positional_read_recognises_pread_however_it_is_submitted() -> None:
    import contextvars
    import functools

    ctx = contextvars.copy_context()
    assert positional_read(os.pread, (3, 4096, 0)) == (3, 4096, 0, None)
    assert positional_read(functools.partial(ctx.run, os.pread, 3, 10, 5), ()) == (3, 10, 5, None)
    assert positional_read(functools.partial(os.pread, 3), (10, 5)) == (3, 10, 5, None)
    assert positional_read(os.read, (3, 10)) is None
    assert positional_read(os.pread, (3, 0, 0)) is None  # nothing to read
    assert positional_read(os.pread, (3, 10, -1)) is None  # let pread raise


@pytest.mark.skipif(not hasattr(os, "RWF_NOWAIT"), reason="no RWF_NOWAIT on this platform")
def test_cached_reads_complete_inline_without_the_watchdog(data_file: tuple[int, bytes]) -> None:
    fd, data = data_file

    async def main() -> sysletloop.SysletStats:
        for off in range(0, len(data), 4096):
            assert await asyncio.to_thread(os.pread, fd, 4096, off) == data[off : off + 4096]
        return this_loop().syslet_stats()

    stats = sysletloop.run(main())
    if stats.nowait_reads == 0:
        pytest.skip("this file system does not support RWF_NOWAIT reads")
    assert stats.nowait_reads == len(data) // 4096
    assert stats.migrations == 0


@pytest.mark.skipif(not hasattr(os, "RWF_NOWAIT"), reason="no RWF_NOWAIT on this platform")
def test_an_uncached_read_goes_straight_to_a_spare(data_file: tuple[int, bytes]) -> None:
    fd, data = data_file
    os.fsync(fd)  # dirty pages would stay cached
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    probe = bytearray(4096)
    try:
        os.preadv(fd, [probe], 128 * 1024, os.RWF_NOWAIT)
        pytest.skip("the page cache kept the file after POSIX_FADV_DONTNEED")
    except BlockingIOError:
        pass
    except OSError as exc:
        pytest.skip(f"RWF_NOWAIT reads unsupported here: {exc}")

    async def main() -> sysletloop.SysletStats:
        got = await asyncio.to_thread(os.pread, fd, 4096, 64 * 1024)
        assert got == data[64 * 1024 : 68 * 1024]
        return this_loop().syslet_stats()

    # The probe's miss may start readahead that brings the page back before the loop's
    # read: drop the cache again and retry then (the loop served it inline, correctly).
    for _ in range(5):
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        stats = sysletloop.run(main())
        if stats.nowait_reads == 0:
            break
    assert stats.nowait_would_block == 1
    assert stats.migrations == 0
    assert stats.completions_drained == 1


class FakePreadv:
    """Stands in for os.preadv: a kernel without RWF_NOWAIT, or one with short reads."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.calls = 0

    def __call__(self, fd: int, buffers: list[bytearray], offset: int, flags: int = 0) -> int:
        self.calls += 1
        if self.mode == "unsupported":
            raise OSError(errno.EOPNOTSUPP, "RWF_NOWAIT not supported")
        if self.mode == "would-block":
            raise BlockingIOError(errno.EAGAIN, "would block")
        if self.mode == "short":
            chunk = os.pread(fd, len(buffers[0]) // 2, offset)
            buffers[0][: len(chunk)] = chunk
            return len(chunk)
        raise AssertionError(self.mode)


@pytest.mark.parametrize("mode", ["unsupported", "short", "would-block"])
def test_simulated_kernels_still_give_the_right_data(
    mode: str, data_file: tuple[int, bytes]
) -> None:
    fd, data = data_file
    fake = FakePreadv(mode)

    async def main() -> sysletloop.SysletStats:
        loop = this_loop()
        loop._syslet.nowait = NowaitReads(preadv=fake)
        for off in (0, 4096, 8192):
            assert await asyncio.to_thread(os.pread, fd, 4096, off) == data[off : off + 4096]
        return loop.syslet_stats()

    stats = sysletloop.run(main())
    assert stats.nowait_reads == 0
    if mode == "unsupported":
        assert fake.calls == 1  # switched off after the first answer
    else:
        assert fake.calls == 3
    if mode == "would-block":
        assert stats.nowait_would_block == 3
        assert stats.completions_drained == 3
    else:
        assert stats.inline_completions == 3  # plain pread, inline


def test_reads_past_the_end_of_the_file_are_plain_reads(data_file: tuple[int, bytes]) -> None:
    fd, data = data_file

    async def main() -> tuple[bytes, bytes]:
        tail = await asyncio.to_thread(os.pread, fd, 4096, len(data) - 100)
        past = await asyncio.to_thread(os.pread, fd, 4096, len(data) + 10)
        return tail, past

    assert sysletloop.run(main()) == (data[-100:], b"")


def test_a_bad_descriptor_raises_as_pread_does() -> None:
    async def main() -> None:
        with pytest.raises(OSError) as info:
            await asyncio.to_thread(os.pread, 987654, 10, 0)
        assert info.value.errno == errno.EBADF

    sysletloop.run(main())


@pytest.mark.parametrize("affinity", [False, True], ids=["away", "home"])
def test_calls_that_are_slow_but_under_the_threshold_are_sent_away_after_two(
    affinity: bool,
) -> None:
    def waits_briefly() -> int:
        time.sleep(0.0002)  # 200 us: never reaches the 1 ms threshold
        return threading.get_native_id()

    async def main() -> None:
        loop = this_loop()
        me = threading.get_native_id()
        ran_on = [await sysletloop.call(waits_briefly) for _ in range(4)]
        assert ran_on[:2] == [me, me]  # inline, slow twice...
        stats = loop.syslet_stats()
        if loop.syslet_options.home_affinity:
            # ...then handed off: still run at home, with the loop elsewhere meanwhile
            assert ran_on[2:] == [me, me]
            assert stats.home_returns == 2
        else:
            assert me not in ran_on[2:]  # ...then sent to a spare: they can overlap
        assert stats.migrations == 0
        assert stats.predicted_blocking == 2

    # block_threshold: so that a 200 us sleep never migrates, even delayed by a loaded
    # machine (at 50 ms one did once, on CI: the loop moved and its old thread, now a
    # spare, ran the calls sent away)
    sysletloop.run(main(), block_threshold=0.5, home_affinity=affinity)


def test_the_predictor_counts_waiting_not_computing() -> None:
    # Two slow inline calls predict only if each spent SLOW_CALL off the CPU; the CPU
    # time is read once a call was seen slow, so the first slow call counts as waiting.
    computes = Profile("computes")
    computes.note_inline(4 * SLOW_CALL)  # first slow call: CPU time not read yet
    assert computes.timed_cpu and computes.slow_streak == 1
    computes.note_inline(4 * SLOW_CALL, cpu=3.9 * SLOW_CALL)  # busy: the streak ends
    computes.note_inline(4 * SLOW_CALL, cpu=3.9 * SLOW_CALL)
    assert not computes.last_blocked and computes.slow_streak == 0
    waits = Profile("waits")
    waits.note_inline(4 * SLOW_CALL)
    waits.note_inline(4 * SLOW_CALL, cpu=0.2 * SLOW_CALL)  # mostly off the CPU
    assert waits.last_blocked
    fast = Profile("fast")
    fast.note_inline(SLOW_CALL / 10)
    assert not fast.timed_cpu  # fast callables never pay for the CPU clock


@pytest.mark.parametrize("affinity", [False, True], ids=["away", "home"])
def test_a_call_that_computes_for_longer_than_slow_call_stays_inline(affinity: bool) -> None:
    # 4 x SLOW_CALL of computation, repeatedly: a spare would only add hand-overs, so
    # every call runs inline on the loop's thread. (A shared machine can preempt a call
    # for SLOW_CALL twice in a row and so predict it once: a round is retried then.)
    def computes() -> int:
        end = time.thread_time() + 4 * SLOW_CALL
        while time.thread_time() < end:
            pass
        return threading.get_native_id()

    async def main() -> bool:
        loop = this_loop()
        me = threading.get_native_id()
        ran_on = [await sysletloop.call(computes) for _ in range(12)]
        stats = loop.syslet_stats()
        assert stats.migrations == 0
        if stats.predicted_blocking:
            return False
        assert ran_on == [me] * 12
        (profile,) = [p for p in loop.syslet_callables() if "computes" in p.name]
        assert (profile.inline_completions, profile.predicted) == (12, 0)
        return True

    rounds = [
        sysletloop.run(main(), block_threshold=0.05, home_affinity=affinity) for _ in range(3)
    ]
    assert any(rounds), "predicted in every round: computing was taken for waiting"


def test_a_slow_callable_that_gets_fast_comes_back_inline() -> None:
    delay = [0.0002]

    def sometimes_slow() -> int:
        if delay[0]:
            time.sleep(delay[0])
        return threading.get_native_id()

    async def main() -> None:
        me = threading.get_native_id()
        for _ in range(3):
            await sysletloop.call(sometimes_slow)
        delay[0] = 0
        await sysletloop.call(sometimes_slow)  # predicted, runs fast on a spare
        assert await sysletloop.call(sometimes_slow) == me

    sysletloop.run(main(), block_threshold=0.05)


def test_a_callable_predicted_to_block_is_probed_inline_and_forgotten() -> None:
    # The calls get fast; the predictor learns it from a fast run on a spare or, failing
    # that (a spare's time includes waiting for the GIL), from an inline probe.
    delay = [0.0002]

    def waits() -> int:
        if delay[0]:
            time.sleep(delay[0])
        return threading.get_native_id()

    async def main() -> None:
        me = threading.get_native_id()
        for _ in range(3):
            await sysletloop.call(waits)  # slow twice inline: predicted from now on
        delay[0] = 0
        ran_on = [await sysletloop.call(waits) for _ in range(40)]
        assert ran_on[-1] == me  # back inline
        assert me in ran_on[:20]  # within PROBE_FIRST predictions or so

    sysletloop.run(main(), block_threshold=0.05)
