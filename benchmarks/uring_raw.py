"""Random O_DIRECT reads through io_uring from one Python thread, with no event loop.

What Python and ``ctypes`` alone reach on the package's own ring (``sysletloop.uring._ring``):
keep ``depth`` reads in flight; each pass reaps every CQE in the ring, writes one SQE per
completion (same buffer, next offset) and calls ``io_uring_enter(to_submit, 1,
GETEVENTS)``: submit and wait in one system call, as fio's io_uring engine does. The loop's
distance from fio then splits into the language's share (this reader's) and asyncio's
(the rest): a ``Future``, a ``Handle``, a task step and a coroutine frame per read.

Used by ``python -m benchmarks.uring_fio`` beside the loop and fio.
"""

from __future__ import annotations

import ctypes
import os
import random
import time
from pathlib import Path
from typing import Any

from sysletloop.uring import _abi
from sysletloop.uring._ring import Ring
from sysletloop.uring._syscall import Syscalls

BLOCK = 4096
OFFSETS = 1 << 16  # random offsets cycled per slot, drawn before the clock starts


def run_raw_random_reads(
    path: str | Path, depth: int, seconds: float, *, block_size: int = BLOCK, seed: int = 0
) -> dict[str, Any]:
    """*depth* random O_DIRECT reads in flight for *seconds*; IOPS and system calls."""
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    nblocks = os.stat(path).st_size // block_size
    rng = random.Random(seed)
    offsets = [rng.randrange(nblocks) * block_size for _ in range(OFFSETS)]
    ring = Ring.open(Syscalls.load(), max(depth, 8), 0)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    raw = bytearray(depth * block_size + 4096)
    base = ctypes.addressof((ctypes.c_char * len(raw)).from_buffer(raw))
    base += (-base) % 4096
    pack, sqes, sq_mask = _abi.SQE_HEAD.pack_into, ring.sqes, ring.sq_mask
    cq_u32, cq_u64, cq_i32 = ring.cq_u32, ring.cq_u64, ring.cq_i32
    cq_mask, cqe64, cqe32 = ring.cq_mask, ring.cqe_u64, ring.cqe_i32
    tail_index, head_index = ring.cq_tail_index, ring.cq_head_index
    tail = head = done = enters = 0
    try:
        for slot in range(depth):
            pack(sqes, (tail & sq_mask) << 6, _abi.IORING_OP_READ, 0, 0, fd,
                 offsets[slot], base + slot * block_size, block_size, 0, slot)  # fmt: skip
            tail += 1
        pending = depth
        started = time.perf_counter()
        deadline = started + seconds
        stop = False
        while done < tail:  # every SQE written yields one CQE; after the deadline, drain
            ring.publish(tail)
            ret = ring.enter(pending, 1, _abi.IORING_ENTER_GETEVENTS)
            enters += 1
            if ret < 0:
                raise OSError(-ret, f"io_uring_enter: {os.strerror(-ret)}")
            pending = 0
            ktail = cq_u32[tail_index]
            stop = stop or time.perf_counter() >= deadline
            while head != ktail:
                i = head & cq_mask
                slot = cq_u64[cqe64 + 2 * i]
                res = cq_i32[cqe32 + 4 * i + 2]
                head = (head + 1) & 0xFFFFFFFF
                if res != block_size:
                    raise OSError(-res if res < 0 else 0, f"read returned {res}")
                done += 1
                if not stop:
                    pack(sqes, (tail & sq_mask) << 6, _abi.IORING_OP_READ, 0, 0, fd,
                         offsets[tail % OFFSETS], base + slot * block_size, block_size, 0,
                         slot)  # fmt: skip
                    tail += 1
                    pending += 1
            cq_u32[head_index] = head
        elapsed = time.perf_counter() - started
    finally:
        os.close(fd)
        ring.close()
    return {
        "engine": "uring-raw",
        "depth": depth,
        "seconds": elapsed,
        "ios": done,
        "iops": done / elapsed,
        "enter_calls": enters,
        "ios_per_enter": done / enters if enters else 0.0,
    }
