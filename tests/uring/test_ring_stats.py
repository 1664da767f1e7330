"""The ABI layouts, the probe, batching (one io_uring_enter per iteration), FIFO order
with a full ring, the harvest bound, and the statistics."""

from __future__ import annotations

import asyncio
import os
import struct
from pathlib import Path

from sysletloop import uring
from sysletloop.uring import _abi
from sysletloop.uring._statx import decode_statx

from ._support import needs_uring, open_file, run

BLOCK = 4096


def test_layouts_match_the_kernel_abi() -> None:
    assert _abi.layout_errors() == []
    assert _abi.UringParams.sq_off.offset == 40 and _abi.UringParams.cq_off.offset == 80
    # An SQE head packs opcode..user_data into exactly the kernel's first 40 bytes.
    packed = _abi.SQE_HEAD.pack(22, 0, 0, 7, 8, 16, 24, 28, 32)
    assert packed[0] == 22 and struct.unpack_from("=i", packed, 4) == (7,)
    assert struct.unpack_from("=QQ", packed, 8) == (8, 16)
    assert struct.unpack_from("=IIQ", packed, 24) == (24, 28, 32)


def test_statx_decoding_of_a_known_buffer() -> None:
    raw = bytearray(_abi.STATX_SIZE)
    _abi.STATX_HEAD.pack_into(raw, 0, 0xFFF, 4096, 0, 2, 1000, 100, 0o100644, 0, 77, 5, 8, 0)
    _abi.STATX_TIMESTAMP.pack_into(raw, 112, 1_700_000_000, 123, 0)  # mtime
    _abi.STATX_TIMESTAMP.pack_into(raw, 80, 1_600_000_000, 5, 0)  # btime
    _abi.STATX_DEVICES.pack_into(raw, 128, 0, 0, 8, 1)
    result, extra = decode_statx(raw)
    assert (result.st_mode, result.st_ino, result.st_size, result.st_nlink) == (
        0o100644,
        77,
        5,
        2,
    )
    assert (result.st_uid, result.st_gid, result.st_blocks, result.st_blksize) == (
        1000,
        100,
        8,
        4096,
    )
    assert result.st_mtime_ns == 1_700_000_000_000_000_123 and result.st_mtime == 1.7e9 + 123e-9
    assert result.st_dev == os.makedev(8, 1)
    assert extra.btime_ns == 1_600_000_000_000_000_005


@needs_uring
def test_probe_knows_the_loops_opcodes() -> None:
    loop = uring.new_event_loop()
    try:
        for opcode in _abi.REQUIRED_OPCODES:
            assert loop.uring_supports(opcode), _abi.OPCODES[opcode]
        assert not loop.uring_supports(255)
        stats = loop.uring_stats()
        assert stats.sq_entries == loop.uring_entries == uring.DEFAULT_ENTRIES
        assert stats.cq_entries == 2 * stats.sq_entries
        assert stats.features & _abi.IORING_FEAT_NODROP
    finally:
        loop.close()


@needs_uring
def test_entries_are_rounded_to_a_power_of_two() -> None:
    loop = uring.new_event_loop(entries=5)
    try:
        assert loop.uring_entries == 8
    finally:
        loop.close()


@needs_uring
def test_one_io_uring_enter_per_iteration_without_submit_batch(
    tmp_path: Path, fds: list[int]
) -> None:
    fd = open_file(tmp_path / "b.dat", direct=False, size=32 * BLOCK)
    fds.append(fd)

    async def main(loop: uring.UringEventLoop) -> None:
        await asyncio.gather(*(loop.uring_read(fd, BLOCK, i * BLOCK) for i in range(32)))
        stats = loop.uring_stats()
        assert (stats.enter_calls, stats.submitted) == (1, 32)
        assert stats.ops_per_enter == 32.0 and stats.enter_mean_seconds > 0

    run(main, submit_batch=0)


@needs_uring
def test_default_submit_batch(tmp_path: Path, fds: list[int]) -> None:
    fd = open_file(tmp_path / "d.dat", direct=False, size=33 * BLOCK)
    fds.append(fd)

    async def main(loop: uring.UringEventLoop) -> None:
        await asyncio.gather(*(loop.uring_read(fd, BLOCK, i * BLOCK) for i in range(32)))
        stats = loop.uring_stats()
        batch = uring.DEFAULT_SUBMIT_BATCH
        # full batches as the tasks ask, then the rest at the end of the iteration
        assert stats.enter_calls == -(-32 // batch) and stats.submitted == 32

    run(main)


@needs_uring
def test_submit_batch_enters_early(tmp_path: Path, fds: list[int]) -> None:
    """32 reads requested in one iteration with submit_batch=4: eight io_uring_enter calls
    of four SQEs each, the first while later tasks have not yet asked."""
    fd = open_file(tmp_path / "e.dat", direct=False, size=32 * BLOCK)
    fds.append(fd)

    async def main(loop: uring.UringEventLoop) -> None:
        await asyncio.gather(*(loop.uring_read(fd, BLOCK, i * BLOCK) for i in range(32)))
        stats = loop.uring_stats()
        assert (stats.enter_calls, stats.submitted) == (8, 32)

    run(main, submit_batch=4)


@needs_uring
def test_harvest_batch_bounds_what_one_iteration_resolves(tmp_path: Path, fds: list[int]) -> None:
    """32 cached reads finish inside one io_uring_enter; with harvest_batch=5 the loop
    resolves them 5 per iteration (each task sees the completed count of its own
    iteration) and still resolves all of them; by default all at once."""
    fd = open_file(tmp_path / "h.dat", direct=False, size=32 * BLOCK)
    fds.append(fd)
    for i in range(32):
        os.pwrite(fd, bytes([i + 1]) * BLOCK, i * BLOCK)

    async def main(loop: uring.UringEventLoop) -> list[int]:
        async def read(i: int) -> int:
            data = await loop.uring_read(fd, BLOCK, i * BLOCK)
            assert data == bytes([i + 1]) * BLOCK
            return loop.uring_stats().completed

        seen = await asyncio.wait_for(asyncio.gather(*(read(i) for i in range(32))), 10)
        assert loop.uring_stats().enter_calls == 1
        return seen

    assert run(main, harvest_batch=5, submit_batch=0) == [
        min(32, 5 * (i // 5 + 1)) for i in range(32)
    ]
    assert run(main, submit_batch=0) == [32] * 32


@needs_uring
def test_full_ring_waits_in_fifo_order(tmp_path: Path, fds: list[int]) -> None:
    fd = open_file(tmp_path / "f.dat", direct=False, size=0)
    fds.append(fd)
    finished: list[int] = []

    async def write(loop: uring.UringEventLoop, i: int) -> None:
        await loop.uring_write(fd, b"%04d" % i, 0)
        finished.append(i)

    async def main(loop: uring.UringEventLoop) -> None:
        tasks = [asyncio.ensure_future(write(loop, i)) for i in range(40)]
        while loop.uring_stats().submitted == 0:
            await asyncio.sleep(0)
        stats = loop.uring_stats()
        assert stats.in_flight == 1  # the ring's one entry (the first, or already the next)
        assert stats.completed + stats.in_flight + stats.queued == 40  # waiting, not failed
        assert stats.queued >= 38
        await asyncio.gather(*tasks)
        assert finished == list(range(40))
        assert os.pread(fd, 4, 0) == b"0039"  # the last requested was the last written

    run(main, entries=1)
