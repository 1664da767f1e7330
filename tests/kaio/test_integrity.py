"""Data integrity: random writes, then reads checked against a model by checksum.

Writes in one batch never overlap (the order of concurrent overlapping writes is undefined
in the kernel as in POSIX), so the model is exact. Everything in a batch is in flight at
once; a ring smaller than the batch makes the surplus wait in the loop's queue.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sysletloop import kaio

from ._support import open_file, run

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
    ring_size=st.sampled_from([1, 4, 64]),
)
def test_direct_random_writes_then_reads(
    backend: str, direct_dir: Path, blocks: list[int], seed: int, ring_size: int
) -> None:
    path = direct_dir / "direct.dat"
    expected = {b: content(seed + b, BLOCK) for b in blocks}

    async def main(loop: kaio.KaioEventLoop) -> None:
        fd = open_file(path, direct=True, size=NBLOCKS * BLOCK)
        try:
            buffers = []
            for b in blocks:
                buf = kaio.aligned_buffer(BLOCK)
                buf[:] = expected[b]
                buffers.append(buf)
            written = await asyncio.gather(
                *(
                    loop.aio_pwrite(fd, buf, b * BLOCK)
                    for b, buf in zip(blocks, buffers, strict=True)
                )
            )
            assert written == [BLOCK] * len(blocks)
            into = [kaio.aligned_buffer(BLOCK) for _ in range(NBLOCKS)]
            counts = await asyncio.gather(
                *(loop.aio_preadinto(fd, into[b], b * BLOCK) for b in range(NBLOCKS))
            )
            assert counts == [BLOCK] * NBLOCKS
            for b in range(NBLOCKS):
                want = expected.get(b, bytes(BLOCK))
                assert digest(into[b]) == digest(want), f"block {b}"
            whole = await loop.aio_pread(fd, NBLOCKS * BLOCK, 0)
            model = b"".join(expected.get(b, bytes(BLOCK)) for b in range(NBLOCKS))
            assert digest(whole) == digest(model)
            stats = loop.kaio_stats()
            assert stats.submitted == stats.completed == len(blocks) + NBLOCKS + 1
            assert stats.in_flight == 0 and stats.queued == 0
        finally:
            os.close(fd)

    run(main, backend=backend, ring_size=ring_size)


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
    backend: str, tmp_path: Path, spans: list[tuple[int, int, int]], seed: int
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

    async def main(loop: kaio.KaioEventLoop) -> None:
        fd = open_file(path, direct=False, size=size)
        try:
            counts = await asyncio.gather(*(loop.aio_pwrite(fd, d, o) for o, d in writes))
            assert counts == [len(d) for _, d in writes]
            await loop.aio_fdatasync(fd)
            reads = await asyncio.gather(
                *(loop.aio_pread(fd, SPAN, i * SPAN) for i in range(NBLOCKS))
            )
            for i, data in enumerate(reads):
                assert zlib.crc32(data) == zlib.crc32(model[i * SPAN : (i + 1) * SPAN]), i
            for offset, data in writes:
                assert await loop.aio_pread(fd, len(data), offset) == data
        finally:
            os.close(fd)

    run(main, backend=backend)


@pytest.mark.parametrize("direct", [True, False], ids=["O_DIRECT", "buffered"])
def test_many_in_flight_with_a_small_ring(backend: str, direct_dir: Path, direct: bool) -> None:
    """512 writes then 512 reads at once through a 16-slot ring: most wait their turn."""
    rng = random.Random(1234)
    nblocks = 512
    order = list(range(nblocks))
    rng.shuffle(order)
    blocks = {b: rng.randbytes(BLOCK) for b in order}

    async def main(loop: kaio.KaioEventLoop) -> None:
        fd = open_file(direct_dir / "many.dat", direct=direct, size=nblocks * BLOCK)
        try:
            sources = []
            for b in order:
                buf = kaio.aligned_buffer(BLOCK)
                buf[:] = blocks[b]
                sources.append(buf)
            await asyncio.gather(
                *(
                    loop.aio_pwrite(fd, s, b * BLOCK, exact=True)
                    for b, s in zip(order, sources, strict=True)
                )
            )
            assert loop.kaio_stats().submit_calls > 1  # the ring forced several batches
            await loop.aio_fsync(fd)
            reads = await asyncio.gather(
                *(loop.aio_pread(fd, BLOCK, b * BLOCK, exact=True) for b in order)
            )
            for b, data in zip(order, reads, strict=True):
                assert zlib.crc32(data) == zlib.crc32(blocks[b]), f"block {b}"
            stats = loop.kaio_stats()
            assert stats.submitted == stats.completed == 2 * nblocks + 1
            assert (stats.cancelled, stats.rejected, stats.failed) == (0, 0, 0)
        finally:
            os.close(fd)

    run(main, backend=backend, ring_size=16)
