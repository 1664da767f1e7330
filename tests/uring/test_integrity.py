"""Data integrity: random writes, then reads checked against a model by checksum.

The same tests as the KAIO loop's (tests/kaio/test_integrity.py), plus vectored I/O.
Writes in one batch never overlap (the order of concurrent overlapping writes is
undefined), so the model is exact. Everything in a batch is in flight at once; a ring
smaller than the batch makes the surplus wait in the loop's queue.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
import random
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sysletloop import uring

from ._support import needs_uring, open_file, run

pytestmark = needs_uring

BLOCK = 4096
NBLOCKS = 64
SPAN = 8192  # buffered tests: one non-overlapping span per write


def content(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def digest(data: bytes | bytearray | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


_fixture_settings = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@_fixture_settings
@given(
    blocks=st.lists(st.integers(0, NBLOCKS - 1), min_size=1, max_size=48, unique=True),
    seed=st.integers(0, 2**32 - 1),
    entries=st.sampled_from([1, 4, 64]),
)
def test_direct_random_writes_then_reads(
    direct_dir: Path, blocks: list[int], seed: int, entries: int
) -> None:
    path = direct_dir / "direct.dat"
    expected = {b: content(seed + b, BLOCK) for b in blocks}

    async def main(loop: uring.UringEventLoop) -> None:
        fd = open_file(path, direct=True, size=NBLOCKS * BLOCK)
        try:
            buffers = []
            for b in blocks:
                buf = uring.aligned_buffer(BLOCK)
                buf[:] = expected[b]
                buffers.append(buf)
            written = await asyncio.gather(
                *(
                    loop.uring_write(fd, buf, b * BLOCK)
                    for b, buf in zip(blocks, buffers, strict=True)
                )
            )
            assert written == [BLOCK] * len(blocks)
            into = [uring.aligned_buffer(BLOCK) for _ in range(NBLOCKS)]
            counts = await asyncio.gather(
                *(loop.uring_readinto(fd, into[b], b * BLOCK) for b in range(NBLOCKS))
            )
            assert counts == [BLOCK] * NBLOCKS
            for b in range(NBLOCKS):
                want = expected.get(b, bytes(BLOCK))
                assert digest(into[b]) == digest(want), f"block {b}"
            whole = await loop.uring_read(fd, NBLOCKS * BLOCK, 0)
            model = b"".join(expected.get(b, bytes(BLOCK)) for b in range(NBLOCKS))
            assert digest(whole) == digest(model)
            stats = loop.uring_stats()
            assert stats.submitted == stats.completed == len(blocks) + NBLOCKS + 1
            assert stats.in_flight == 0 and stats.queued == 0
        finally:
            os.close(fd)

    run(main, entries=entries)


@_fixture_settings
@given(
    spans=st.lists(
        st.tuples(st.integers(0, NBLOCKS - 1), st.integers(0, SPAN - 1), st.integers(1, SPAN)),
        min_size=1,
        max_size=32,
        unique_by=lambda t: t[0],
    ),
    seed=st.integers(0, 2**32 - 1),
)
def test_buffered_random_writes_then_reads(
    tmp_path: Path, spans: list[tuple[int, int, int]], seed: int
) -> None:
    path = tmp_path / "buffered.dat"
    size = NBLOCKS * SPAN
    model = bytearray(size)
    writes: list[tuple[int, bytes]] = []
    for index, start, length in spans:
        offset = index * SPAN + start
        length = min(length, (index + 1) * SPAN - offset)  # stay inside this span
        data = content(seed ^ index, length)
        model[offset : offset + length] = data
        writes.append((offset, data))

    async def main(loop: uring.UringEventLoop) -> None:
        fd = open_file(path, direct=False, size=size)
        try:
            counts = await asyncio.gather(*(loop.uring_write(fd, d, o) for o, d in writes))
            assert counts == [len(d) for _, d in writes]
            await loop.uring_fsync(fd, datasync=True)
            reads = await asyncio.gather(
                *(loop.uring_read(fd, SPAN, i * SPAN) for i in range(NBLOCKS))
            )
            for i, data in enumerate(reads):
                assert zlib.crc32(data) == zlib.crc32(model[i * SPAN : (i + 1) * SPAN]), i
            for offset, data in writes:
                assert await loop.uring_read(fd, len(data), offset) == data
        finally:
            os.close(fd)
        with open(path, "rb") as f:  # and the file as the kernel keeps it
            assert digest(f.read()) == digest(model)

    run(main)


@_fixture_settings
@given(
    sizes=st.lists(st.integers(0, 3 * BLOCK), min_size=1, max_size=8),
    offset=st.integers(0, 4 * BLOCK),
    seed=st.integers(0, 2**32 - 1),
)
def test_vectored_writes_then_reads(
    tmp_path: Path, sizes: list[int], offset: int, seed: int
) -> None:
    """writev of pieces of random sizes, then readv into pieces of other sizes."""
    pieces = [content(seed + i, n) for i, n in enumerate(sizes)]
    joined = b"".join(pieces)
    cuts = sorted(random.Random(seed).sample(range(len(joined) + 1), k=min(3, len(joined) + 1)))
    bounds = [0, *cuts, len(joined)]
    into = [bytearray(b - a) for a, b in itertools.pairwise(bounds)]

    async def main(loop: uring.UringEventLoop) -> None:
        fd = open_file(tmp_path / "v.dat", direct=False, size=0)
        try:
            assert await loop.uring_writev(fd, pieces, offset) == len(joined)
            assert await loop.uring_readv(fd, into, offset) == len(joined)
            assert b"".join(into) == joined
            assert os.pread(fd, len(joined), offset) == joined
        finally:
            os.close(fd)

    run(main)


@pytest.mark.parametrize("direct", [True, False], ids=["O_DIRECT", "buffered"])
def test_many_in_flight_with_a_small_ring(direct_dir: Path, direct: bool) -> None:
    """512 writes then 512 reads at once through a 16-entry ring: most wait their turn."""
    rng = random.Random(1234)
    nblocks = 512
    order = list(range(nblocks))
    rng.shuffle(order)
    blocks = {b: rng.randbytes(BLOCK) for b in order}

    async def main(loop: uring.UringEventLoop) -> None:
        fd = open_file(direct_dir / "many.dat", direct=direct, size=nblocks * BLOCK)
        try:
            sources = []
            for b in order:
                buf = uring.aligned_buffer(BLOCK)
                buf[:] = blocks[b]
                sources.append(buf)
            await asyncio.gather(
                *(
                    loop.uring_write(fd, s, b * BLOCK, exact=True)
                    for b, s in zip(order, sources, strict=True)
                )
            )
            assert loop.uring_stats().enter_calls > 1  # the ring forced several batches
            await loop.uring_fsync(fd)
            reads = await asyncio.gather(
                *(loop.uring_read(fd, BLOCK, b * BLOCK, exact=True) for b in order)
            )
            for b, data in zip(order, reads, strict=True):
                assert zlib.crc32(data) == zlib.crc32(blocks[b]), f"block {b}"
            stats = loop.uring_stats()
            assert stats.submitted == stats.completed == 2 * nblocks + 1
            assert (stats.cancelled, stats.failed) == (0, 0)
        finally:
            os.close(fd)

    run(main, entries=16)


def test_file_position_reads_and_writes(tmp_path: Path, fds: list[int]) -> None:
    """offset=-1 uses and moves the file position, like os.read/os.write; O_APPEND
    appends."""
    fd = open_file(tmp_path / "pos.dat", direct=False, size=0)
    fds.append(fd)

    async def main(loop: uring.UringEventLoop) -> None:
        assert await loop.uring_write(fd, b"abc", -1) == 3
        assert await loop.uring_write(fd, b"defg", -1) == 4
        assert os.lseek(fd, 0, os.SEEK_CUR) == 7
        os.lseek(fd, 2, os.SEEK_SET)
        assert await loop.uring_read(fd, 3, -1) == b"cde"
        assert await loop.uring_read(fd, 10, -1) == b"fg"
        afd = os.open(tmp_path / "pos.dat", os.O_WRONLY | os.O_APPEND)
        try:
            assert await loop.uring_write(afd, b"!", -1) == 1
        finally:
            os.close(afd)
        assert await loop.uring_read(fd, 100, 0) == b"abcdefg!"

    run(main)
