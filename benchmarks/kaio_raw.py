"""Random O_DIRECT reads through KAIO from Python with no event loop: the floor.

The KAIO loop pays for asyncio (a future, a task wake-up and a coroutine resume per
operation) on top of Python's ``ctypes`` glue. This reader pays only the glue: one thread
keeps *depth* reads in flight with the package's own bindings (``sysletloop.kaio``'s
backend and ABI structs), blocking in ``io_getevents`` for at least one event, taking at
most *harvest* at a time, and resubmitting what it took with one ``io_submit``. No
eventfd, no selector, no futures. Its IOPS is what Python + ctypes can reach on the
machine; the KAIO loop's distance from it is what the event loop costs.

:func:`run_raw_random_reads` is used by ``benchmarks.kaio_fio`` beside fio. It reads
into a private aligned buffer per slot and checks nothing; it is a measurement, not an
API.
"""

from __future__ import annotations

import ctypes
import os
import random
import time
from pathlib import Path
from typing import Any

from sysletloop.kaio import _abi, aligned_buffer
from sysletloop.kaio._backend import load_backend

OFFSETS = 1 << 16  # random offsets cycled through, as kaio_fio's readers do


def run_raw_random_reads(
    path: str | Path,
    depth: int,
    seconds: float,
    *,
    harvest: int = 8,
    backend: str | None = None,
    block_size: int = 4096,
    seed: int = 0,
) -> dict[str, Any]:
    """Keep *depth* random O_DIRECT reads of *block_size* in flight for *seconds*."""
    if depth < 1 or harvest < 1:
        raise ValueError(f"depth and harvest must be >= 1, got {depth} and {harvest}")
    binding = load_backend(backend)
    ctxp = ctypes.c_ulong(0)
    ret = binding.setup(depth, ctypes.addressof(ctxp))
    if ret < 0:
        raise OSError(-ret, f"io_setup({depth}) failed: {os.strerror(-ret)}")
    ctx = int(ctxp.value)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    try:
        return _read_loop(binding, ctx, fd, path, depth, seconds, harvest, block_size, seed)
    finally:
        os.close(fd)
        binding.destroy(ctx)


def _read_loop(
    binding: Any,
    ctx: int,
    fd: int,
    path: str | Path,
    depth: int,
    seconds: float,
    harvest: int,
    block_size: int,
    seed: int,
) -> dict[str, Any]:
    nblocks = os.stat(path).st_size // block_size
    rng = random.Random(seed)
    offsets = [rng.randrange(nblocks) * block_size for _ in range(OFFSETS)]
    buffers = [aligned_buffer(block_size) for _ in range(depth)]
    pins = [ctypes.c_char.from_buffer(b) for b in buffers]  # kept alive until we return
    iocbs = (_abi.Iocb * depth)()
    iocb_bytes = memoryview(iocbs).cast("B")
    addresses = [ctypes.addressof(iocbs[i]) for i in range(depth)]
    for i in range(depth):
        _abi.IOCB_REQUEST.pack_into(
            iocb_bytes,
            i * _abi.IOCB_SIZE + _abi.IOCB_REQUEST_OFFSET,
            _abi.IOCB_CMD_PREAD,
            0,
            fd,
            ctypes.addressof(pins[i]),
            block_size,
            offsets[i],
        )
        iocbs[i].aio_data = i
    pointers = (ctypes.c_void_p * depth)(*addresses)
    pointer_words = memoryview(pointers).cast("B").cast("Q")
    pointers_at = ctypes.addressof(pointers)
    events = (_abi.IoEvent * depth)()
    event_words = memoryview(events).cast("B").cast("q")
    events_at = ctypes.addressof(events)
    offset_word = _abi.IOCB_REQUEST_OFFSET // 8 + 3  # aio_offset, as an int64 index
    iocb_words = iocb_bytes.cast("q")
    words_per_iocb = _abi.IOCB_SIZE // 8
    submit, getevents = binding.submit, binding.getevents

    if submit(ctx, depth, pointers_at) != depth:
        raise OSError("io_submit took fewer than depth iocbs at start")
    done, next_offset, failed = 0, depth, 0
    started = time.perf_counter()
    deadline = started + seconds
    while True:
        got = getevents(ctx, 1, harvest, events_at, 0)
        if got < 0:
            raise OSError(-got, f"io_getevents failed: {os.strerror(-got)}")
        for j in range(got):
            slot = event_words[j * 4]
            if event_words[j * 4 + 2] != block_size:
                failed += 1
            iocb_words[slot * words_per_iocb + offset_word] = offsets[next_offset % OFFSETS]
            next_offset += 1
            pointer_words[j] = addresses[slot]
        done += got
        if time.perf_counter() >= deadline:
            break
        if submit(ctx, got, pointers_at) != got:
            raise OSError("io_submit took fewer iocbs than were freed")
    elapsed = time.perf_counter() - started
    in_flight = depth - got  # the last harvest's slots were not resubmitted
    while in_flight:
        reaped = getevents(ctx, 1, depth, events_at, 0)
        if reaped > 0:
            in_flight -= reaped
    del pins  # the kernel is done with every buffer
    if failed:
        raise OSError(f"{failed} raw reads returned other than {block_size} bytes")
    return {
        "engine": "raw-ctypes",
        "depth": depth,
        "harvest": harvest,
        "seconds": elapsed,
        "ios": done,
        "iops": done / elapsed,
    }
