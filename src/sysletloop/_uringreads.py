"""Positional reads that would block, done by io_uring instead of a thread (``uring_reads``).

The loop already tries a plain positional read (``os.pread(fd, n, offset)``; with this
option also ``os.preadv(fd, [buffer], offset)``) with ``RWF_NOWAIT`` first (``_nowait``):
a page-cache hit completes inline. Without the option a read that would block goes to a
spare thread, which then sleeps in it: a thread (tens of KiB) per read in flight, and a
hand-off per read. With it, the read becomes an ``IORING_OP_READ`` on a ring the loop
owns. The kernel does the read (queued straight to a device that can take it without
blocking, or on its own io-wq worker for a file system that cannot: FUSE, NFS) and posts
a completion; the ring's eventfd is a reader on the loop's selector, and the callback
resolves the call's future from the completion. No thread of ours, no hand-over: the
syslet idea done inside the kernel, which is where Linux took it (the paper's §4.2 risk,
memory per blocked operation, becomes the kernel's ``io_kiocb`` for a device read).
A file system without ``RWF_NOWAIT`` (the kernel answers ``EOPNOTSUPP``, as FUSE does)
gives no inline answer at all; with this option its reads go to the ring too, where
io_uring makes the same try itself.

Threads
    The ring belongs to the loop's owner, whichever thread that is at the moment. Only the
    owner submits (in the step that submits a read known to wait, or from the pending-call
    queue; the flush callback), reaps (the eventfd's reader callback,
    run by the loop) and closes (``loop.close``, with the loop stopped). Ownership changes
    hands only through the loop's hand-over, which takes ``own_lock``: that orders one
    owner's ring writes before the next owner's reads. Nothing here is locked.

The kernel side, and the one way the loop's moves show through
    io_uring posts a device read's completion by *task work* run on the thread that
    submitted it (its default notification, like a signal with no handler): the loop's
    thread when it submitted, but that thread may since have lost the loop, be parked in
    the thread cache, or be blocked in another call. An interruptible wait (the cache's
    lock, a socket, ``epoll_wait``) is woken to run the task work and resumes; a thread in
    an uninterruptible wait (a disk read of its own) posts the completion only when it
    wakes. The read is done by then; its result is late by that wait. A thread that
    exits hands its task work to the kernel's fallback worker.

Invariants
    * A submitted read is in ``_slots`` (with its buffer) until its completion has been
      reaped: the kernel may write the buffer until then.
    * ``in_flight`` (the reads in ``_slots``) never exceeds the SQ size, so the CQ ring
      (twice as big) cannot overflow, and every SQE is consumed by the ``io_uring_enter``
      that follows it (else it is withdrawn before that returns to the caller).
    * ``close`` returns after every completion, or after ``DRAIN_TIMEOUT`` with the
      buffers of the reads still in the kernel kept for the life of the process
      (``_UNRETURNED``): never freed memory the kernel may write.

Rejected alternatives
    * The io_uring loop's own machinery (``sysletloop.uring``): it lives in the methods
      of a loop subclass (15 operations, cancellation, queueing past the ring); a syslet
      loop needs one operation, and a read the ring cannot take has a path already (the
      spare thread it took before this option).
    * One ``io_uring_enter`` per read: an O_DIRECT read is handed to the device inside
      that call, 22 us of it on this VM (a virtio notification is a VM exit), which held
      a depth-32 run to 25,000 reads/s with the loop's thread saturated. Reads are
      entered in batches of ``SUBMIT_BATCH`` instead, as the io_uring loop does, except
      that a read finding fewer than ``IDLE_BELOW`` reads in the kernel is entered at
      once (the device is idle: a depth-1 reader, or a task about to compute while its
      next piece is read, must not wait); the rest of a batch is entered by a callback
      the loop runs in its next iteration (``flush``).
    * ``ASYNC_CANCEL`` for a cancelled caller: a read takes as long as the device; the
      completion is dropped when it comes (the future is already cancelled).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import select
import struct
import sys
import time
from typing import Final

from sysletloop.uring import _abi
from sysletloop.uring._errors import (
    UringUnsupportedError,
    disabled_error,
    missing_opcodes_error,
    probe_unsupported_error,
    read_proc,
    seccomp_mode,
    setup_error,
)
from sysletloop.uring._ring import Ring
from sysletloop.uring._syscall import Syscalls

__all__ = ["DRAIN_TIMEOUT", "ENTRIES", "UringReads"]

# SQ entries: the most reads in the kernel at once (the loop's max_blocked caps calls in
# flight on threads; these are not threads). Beyond it a read takes the thread path.
ENTRIES: Final = 256
# How long close() waits for reads still in the kernel (a device read takes ms; a dead
# FUSE server can hold one for ever).
DRAIN_TIMEOUT: Final = 5.0
# Enter the kernel once this many reads wait for it, or at once while fewer than
# IDLE_BELOW reads are in the kernel. Depth 32, O_DIRECT 4 KiB reads on this VM's disk
# through asyncio.to_thread (benchmarks.uring_reads' case, 2 s runs, 2-4 each): 3 gave
# 36,800-46,300 reads/s, 6 36,400-45,900, 8 45,100-57,000, 12 41,700-55,300 (median
# 54,400), 32 33,000-37,500 (about once per iteration: the device idles while the loop
# resumes a burst of tasks, as the io_uring loop found; it settled on 3 for its lighter
# per-read path).
SUBMIT_BATCH: Final = 12
IDLE_BELOW: Final = 2

_U32: Final = 0xFFFFFFFF
_PACK_SQE: Final = _abi.SQE_HEAD.pack_into
_OP_READ: Final = _abi.IORING_OP_READ
_SQE_USER_DATA: Final = struct.Struct("=Q")  # at byte 32 of an SQE
_c_char: Final = ctypes.c_char
_addressof: Final = ctypes.addressof

# Memory lent to reads whose completion close() could not wait for.
_UNRETURNED: list[object] = []


class UringReads:
    """A ring for the loop's reads. ``open`` it; ``submit``; ``reap`` when ``efd`` is
    readable; ``close``."""

    __slots__ = ("_entered", "_free", "_head", "_ring", "_slots", "_tail", "efd", "in_flight")

    def __init__(self, ring: Ring, efd: int) -> None:
        self._ring = ring
        self.efd = efd
        n = ring.sq_entries
        # slot -> (call, holder of the buffer's memory, the buffer when the call is an
        # os.pread and so returns bytes, else None: os.preadv returns the count)
        self._slots: list[tuple[object, object, bytearray | None] | None] = [None] * n
        self._free = list(range(n - 1, -1, -1))
        self._tail = 0  # SQEs written (mod 2**32 when published)
        self._entered = 0  # SQEs the kernel has taken
        self._head = 0
        self.in_flight = 0  # reads written and not reaped: in _slots

    @classmethod
    def open(cls, entries: int = ENTRIES) -> UringReads:
        """A ring with its eventfd; raises ``UringError`` (``UringUnsupportedError`` with the
        reason where io_uring cannot be had: not Linux, disabled, seccomp, too old)."""
        if sys.platform != "linux":
            raise UringUnsupportedError(
                errno.ENOSYS, f"uring_reads needs Linux io_uring; this is {sys.platform!r}"
            )
        disabled = read_proc("/proc/sys/kernel/io_uring_disabled")
        refused = disabled_error(disabled)
        if refused is not None:
            raise refused
        syscalls = Syscalls.load()
        ring = None
        for flags in (_abi.IORING_SETUP_SUBMIT_ALL, 0):
            try:
                ring = Ring.open(syscalls, entries, flags)
                break
            except OSError as exc:
                if exc.errno == errno.EINVAL and flags:
                    continue  # a kernel older than 5.18: without SUBMIT_ALL
                raise setup_error(
                    exc.errno or 0,
                    entries,
                    disabled=disabled,
                    group=read_proc("/proc/sys/kernel/io_uring_group"),
                    seccomp=seccomp_mode(),
                ) from None
        assert ring is not None
        try:
            supported = ring.probe()
            if isinstance(supported, int):
                raise probe_unsupported_error(-supported)
            if _OP_READ not in supported:
                raise missing_opcodes_error([_abi.OPCODES[_OP_READ]])
            efd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            try:
                ring.register_eventfd(efd)
            except BaseException:
                os.close(efd)
                raise
        except BaseException:
            ring.close()
            raise
        return cls(ring, efd)

    def submit(
        self, call: object, fd: int, nbytes: int, offset: int, into: object
    ) -> bool | None:
        """Start reading *nbytes* at *offset* of *fd* for *call*: into *into* (a writable
        buffer, ``os.preadv``'s) or, when it is None, into a new buffer whose bytes are
        the result (``os.pread``'s). True if the kernel has it; None if it waits in the
        ring for ``flush`` (the caller makes sure one runs soon); False if the read cannot
        be started here (the ring is full, the buffer cannot be pinned, the kernel refused
        it): the caller takes its other path, and nothing of it stays in the ring."""
        free = self._free
        if not free:
            return False
        if into is None:
            data: bytearray | None = bytearray(nbytes)
            target: object = data
        else:
            data = None
            target = into
        try:
            holder = _c_char.from_buffer(target)  # type: ignore[arg-type]  # holds an export
        except (TypeError, ValueError):
            return False  # read-only or not contiguous: os.preadv itself will say so
        ring = self._ring
        slot = free.pop()
        tail = self._tail
        _PACK_SQE(
            ring.sqes,
            (tail & ring.sq_mask) << 6,
            _OP_READ,
            0,  # flags
            0,  # ioprio
            fd,
            offset,
            _addressof(holder),
            nbytes,
            0,  # rw_flags
            slot,
        )
        self._tail = tail = tail + 1
        self._slots[slot] = (call, holder, data)
        self.in_flight += 1
        waiting = tail - self._entered
        if waiting < SUBMIT_BATCH and self.in_flight - waiting >= IDLE_BELOW:
            return None  # the device is busy: batch it
        ring.publish(tail)
        ret = ring.enter(waiting)
        if ret == waiting:
            self._entered = tail
            return True
        # Not all taken (short of kernel memory, or the ring is gone). The kernel reads
        # the SQ only inside io_uring_enter, so what it left can be withdrawn by taking
        # the tail back: this read is refused; earlier ones wait for the next flush.
        self._entered += max(ret, 0)
        self._tail = tail - 1
        ring.publish(tail - 1)
        self._slots[slot] = None
        free.append(slot)
        self.in_flight -= 1
        return False

    def flush(self) -> list[object]:
        """Enter the reads waiting in the ring. The calls the kernel would not take (it
        failed, or is short of memory), withdrawn from the ring: the caller runs them
        another way."""
        waiting = self._tail - self._entered
        if not waiting:
            return []
        ring = self._ring
        ring.publish(self._tail)
        ret = ring.enter(waiting)
        if ret == waiting:
            self._entered = self._tail
            return []
        self._entered += max(ret, 0)
        return self._withdraw()

    def _withdraw(self) -> list[object]:
        """Take back the SQEs written and not entered: the kernel has not read them (it
        reads the SQ only inside io_uring_enter), so the tail goes back to the last SQE
        it took. Their calls."""
        withdrawn: list[object] = []
        ring = self._ring
        mask, sqes = ring.sq_mask, ring.sqes
        for position in range(self._entered, self._tail):
            (slot,) = _SQE_USER_DATA.unpack_from(sqes, ((position & mask) << 6) + 32)
            entry = self._slots[slot]
            assert entry is not None
            self._slots[slot] = None
            self._free.append(slot)
            self.in_flight -= 1
            withdrawn.append(entry[0])
        self._tail = self._entered
        ring.publish(self._tail)
        return withdrawn

    def reap(self) -> list[tuple[object, bytes | int | OSError]]:
        """The calls whose reads completed, with their outcomes: the bytes read (an
        ``os.pread``), the count (an ``os.preadv``) or the ``OSError``."""
        with contextlib.suppress(BlockingIOError):
            os.eventfd_read(self.efd)
        ring = self._ring
        cq_u32 = ring.cq_u32
        head = self._head
        available = (cq_u32[ring.cq_tail_index] - head) & _U32
        if not available:
            return []
        chunks = ring.cqe_chunks(head, available)
        slots, release = self._slots, self._free.append
        done: list[tuple[object, bytes | int | OSError]] = []
        for chunk in chunks:
            for slot, res, _flags in chunk:
                entry = slots[slot]
                slots[slot] = None
                release(slot)
                assert entry is not None, f"a completion for free slot {slot}"
                call, _holder, data = entry
                if res < 0:
                    done.append((call, OSError(-res, os.strerror(-res))))
                elif data is None:
                    done.append((call, res))
                else:
                    done.append((call, bytes(memoryview(data)[:res])))
        self._head = head = (head + available) & _U32
        cq_u32[ring.cq_head_index] = head
        self.in_flight -= available
        return done

    def close(self, timeout: float = DRAIN_TIMEOUT) -> list[object]:
        """Wait (up to *timeout*) for the reads still in the kernel, close the ring and
        its eventfd; the calls that were in flight, for the caller to resolve."""
        calls = self._withdraw()  # never entered: nothing of the kernel's to wait for
        deadline = time.monotonic() + timeout
        while self.in_flight:
            calls.extend(call for call, _ in self.reap())
            left = deadline - time.monotonic()
            if not self.in_flight or left <= 0:
                break
            select.select([self.efd], [], [], min(left, 0.05))
        if self.in_flight:
            for entry in self._slots:
                if entry is not None:
                    calls.append(entry[0])
                    _UNRETURNED.append(entry[1:])  # the kernel may still write them
        self._slots = []
        self.in_flight = 0
        self._ring.close()
        os.close(self.efd)
        self.efd = -1
        return calls
