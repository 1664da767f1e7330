"""The KAIO event loop: an asyncio selector loop that does file I/O with Linux native AIO.

This is the foil for the syslet loop (Zach Brown, "Asynchronous System Calls: Genesis and
Status", 2007, §1.2): operations are packed into ``iocb`` structs, handed to the kernel by
``io_submit`` and come back as ``io_event`` structs. The loop adds nothing to KAIO's
semantics; in particular, when the kernel performs a "submission" synchronously (buffered
files, §1.2's first option) the loop's thread blocks inside ``io_submit``, and
:meth:`KaioEventLoop.kaio_stats` reports the time it spent there.

Glossary
    *op*        one requested operation (:class:`_Op`): its iocb fields, its pinned buffer
                and the future its caller awaits.
    *slot*      an index into the loop's fixed array of ``ring_size`` iocbs. An op holds a
                slot from the ``io_submit`` that takes it until its event is harvested;
                ``iocb.aio_data`` is the slot index, so an event names its slot.
    *queue*     ops waiting for a slot (or for the next flush), oldest first.
    *flush*     one ``io_submit`` for everything queued, at the end of every loop
                iteration that queued something (``_run_once``).
    *harvest*   ``io_getevents`` with a zero timeout for at most ``harvest_batch``
                events, run as soon as the poll reports the eventfd readable, before
                the iteration's callbacks (``_process_events``), so the tasks it wakes
                run in the same iteration and their next ops go out in its flush.
    *abandoned* an op whose caller was cancelled while the kernel had it: its outcome is
                dropped on arrival, but its buffer and slot are kept until then.

Life of an op::

    aio_pread() ─ queue ─(flush: io_submit)─ in flight ─(eventfd, harvest)─ future resolved
         └─ cancelled while queued: dropped    └─ cancelled: io_cancel tried, op abandoned,
                                                  buffer and slot kept until its event

Threads: everything here runs on the loop's thread: the coroutine methods, the flush,
the harvest and ``close()``. No lock guards the queue, the slot table or the counters,
because nothing else touches them (we do not rely on the GIL for this; it would hold
under free-threaded Python too, as long as the loop is used from its own thread, which
asyncio already requires). The kernel is the only other party: it reads
an iocb during ``io_submit`` only, and reads or writes an op's buffer until the op's event
is in the completion ring. Hence the rule the whole module is arranged around: **a slot
and its buffer are released only by the harvest of that slot's event** (or by
``io_submit`` refusing the iocb).

Guarantees
    * Every op resolves exactly once: result, exception or cancellation.
    * Ops enter the kernel in the order they were requested (FIFO); when the ring is full
      they wait in the queue instead of failing.
    * ``close()`` cancels queued ops, asks the kernel to cancel in-flight ones, then waits
      for every remaining event before destroying the context and closing the eventfd.
      Disk I/O always finishes; an op the kernel can neither cancel nor finish (none is
      known among the five operations offered here) would make ``close()`` wait for it.

Resources running out (reviewed for issue 15; this loop starts no thread of its own)
    * ``io_setup`` refused (``EAGAIN`` once fs.aio-nr would pass fs.aio-max-nr, or
      ``ENOMEM``): the constructor raises :class:`KaioSetupError` naming the sysctls;
      nothing was created but the selector, which it closes.
    * No descriptor for the eventfd (``EMFILE`` at RLIMIT_NOFILE, ``ENFILE``): the
      constructor destroys the context it made and raises the ``OSError``. Either way a
      loop is never half made, and a later attempt starts from scratch.
    * ``io_submit`` refusing with ``EAGAIN`` (the kernel's own AIO memory) requeues the
      ops while others are in flight (their events will make room) and fails them only
      when nothing is, so a refusal never leaves an op waiting for an event that cannot
      come. ``run_in_executor`` work goes to asyncio's default pool and meets a thread
      limit as stock asyncio does.

Rejected alternatives
    * Submitting each op as it is requested: one system call per op, and the paper's
      complaint (submission cost) multiplied. One ``io_submit`` per loop iteration batches
      everything the iteration's callbacks asked for.
    * Harvesting every finished event at once: at queue depth 32 the disk and the loop
      then take turns (all 32 complete together, the loop resumes 32 tasks while the disk
      idles, then submits 32 again): 0.58 of fio's IOPS. Bounded harvests keep most of the
      queue in the kernel while the loop works (``DEFAULT_HARVEST_BATCH``).
    * Harvesting from a reader callback, or flushing from a ``call_soon`` callback: each
      adds a loop iteration between an event and the next submission (the woken tasks
      run one iteration later), so an op spends two iterations in the loop's hands.
    * Blocking ``io_getevents`` in a helper thread: a second thread, and a handoff per
      completion. ``IOCB_FLAG_RESFD`` makes the kernel signal an eventfd that the selector
      already watches, so completions arrive with the poll's other events.
    * A done-callback on each future to notice cancellation: it would cost a callback per
      completed op. The coroutine that awaits the future catches ``CancelledError``
      instead, and a harvest that finds a cancelled future drops the outcome.
    * Failing submissions when the ring is full (``EAGAIN``): callers would need their own
      retry loop; the queue is that loop, in one place, in order.
    * Running KAIO-incapable operations (``open``, ``stat``...) through KAIO by emulation:
      they stay with the stock thread pool (``run_in_executor``), which is the point of the
      comparison with syslets.

What KAIO cannot do (and this loop therefore does not offer)
    ``open``, ``close``, ``stat``, ``rename``, directory operations, anything but
    read/write/fsync/fdatasync/poll; buffered I/O that must not block the caller (a
    buffered read or write is performed inside ``io_submit``); sockets' connect/accept.
    Use ``loop.run_in_executor`` (the default ``ThreadPoolExecutor``) for those.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import os
import selectors
import sys
import time
from collections import deque
from typing import TYPE_CHECKING, Final

from sysletloop.kaio import _abi
from sysletloop.kaio._backend import Backend, BackendName, load_backend
from sysletloop.kaio._buffer import Pinned, aligned_buffer, pin_readable, pin_writable
from sysletloop.kaio._errors import (
    KaioClosedError,
    KaioError,
    KaioShortReadError,
    KaioShortWriteError,
    KaioUnsupportedError,
    Request,
    operation_error,
    setup_error,
)
from sysletloop.kaio._stats import KaioCounters, KaioStats

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer, WriteableBuffer

# Ops one context holds in flight at once. 128 covers the benchmark's deepest queue (32)
# four times over; io_setup charges it (doubled, and at least 4 per CPU) against the
# system-wide fs.aio-max-nr (65536 by default), so a few hundred loops can coexist.
DEFAULT_RING_SIZE: Final = 128

# Events one iteration reaps at most (io_getevents' nr). Bounding it keeps the disk busy:
# an iteration resolves a few ops, their tasks ask for the next ones, and those are
# submitted while the rest of the queue is still in the kernel's hands. Reaping all 32 of
# a depth-32 workload at once made the loop and the disk take turns (every io_submit
# carried exactly 32 iocbs); 8 measured best at depth 32 (python -m benchmarks.kaio_fio).
DEFAULT_HARVEST_BATCH: Final = 8

# How long close() blocks in one io_getevents while waiting for in-flight ops. Only the
# granularity of the wait: close() loops until every op is back, however long that takes.
_CLOSE_WAIT_SLICE_NS: Final = 1_000_000_000

_PACK_REQUEST: Final = _abi.IOCB_REQUEST.pack_into
_POINTER_SIZE: Final = ctypes.sizeof(ctypes.c_void_p)
_EVENT_WORDS: Final = _abi.IO_EVENT_SIZE // 8  # io_event as int64 words: data, obj, res, res2

# op states (plain ints: compared on every flush and harvest)
_QUEUED: Final = 0  # waiting in the queue, no slot
_IN_FLIGHT: Final = 1  # owned by the kernel, holds a slot, caller waiting
_ABANDONED: Final = 2  # owned by the kernel, holds a slot, caller gone
_DONE: Final = 3  # resolved, slot and buffer released


class _Op:
    """One requested operation (see the glossary)."""

    __slots__ = (
        "address",
        "fd",
        "future",
        "name",
        "nbytes",
        "offset",
        "opcode",
        "pinned",
        "slot",
        "state",
    )

    def __init__(
        self,
        name: str,
        opcode: int,
        fd: int,
        address: int,
        nbytes: int,
        offset: int,
        pinned: Pinned | None,
        future: asyncio.Future[int],
    ) -> None:
        self.name = name
        self.opcode = opcode
        self.fd = fd
        self.address = address
        self.nbytes = nbytes
        self.offset = offset
        self.pinned = pinned  # the buffer, held until the op's event is harvested
        self.future = future
        self.slot = -1
        self.state = _QUEUED

    def request(self) -> Request:
        return Request(self.name, self.fd, self.address, self.nbytes, self.offset)


class KaioEventLoop(asyncio.SelectorEventLoop):
    """An asyncio selector event loop with coroutine methods for Linux native AIO.

    *ring_size* is the number of operations the AIO context holds in flight at once
    (``io_setup``'s ``nr_events``); more wait in FIFO order. *backend* is ``"libaio"``,
    ``"syscall"`` or ``"auto"``; by default the environment variable
    ``SYSLETLOOP_KAIO_BACKEND`` decides, else libaio when it loads. *harvest_batch* is
    the most completions one loop iteration resolves (see ``DEFAULT_HARVEST_BATCH``).
    """

    def __init__(
        self,
        selector: object | None = None,
        *,
        ring_size: int = DEFAULT_RING_SIZE,
        backend: str | None = None,
        harvest_batch: int = DEFAULT_HARVEST_BATCH,
    ) -> None:
        super().__init__(selector)  # type: ignore[arg-type]
        self._kaio_ready = False
        try:
            self._kaio_open(ring_size, backend, harvest_batch)
        except BaseException:
            super().close()
            raise

    # ---- set-up and tear-down ---------------------------------------------------------
    def _kaio_open(self, ring_size: int, backend: str | None, harvest_batch: int) -> None:
        if sys.platform != "linux":
            raise KaioUnsupportedError(
                f"the KAIO loop needs Linux native AIO; this platform is {sys.platform!r}"
            )
        if isinstance(ring_size, bool) or not isinstance(ring_size, int) or ring_size < 1:
            raise ValueError(f"ring_size must be a positive int, got {ring_size!r}")
        if (
            isinstance(harvest_batch, bool)
            or not isinstance(harvest_batch, int)
            or harvest_batch < 1
        ):
            raise ValueError(f"harvest_batch must be a positive int, got {harvest_batch!r}")
        self._kaio_backend: Backend = load_backend(backend)
        ctxp = ctypes.c_ulong(0)
        ret = self._kaio_backend.setup(ring_size, ctypes.addressof(ctxp))
        if ret < 0:
            raise setup_error(-ret, ring_size)
        self._kaio_ctx = int(ctxp.value)
        try:
            self._kaio_efd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        except BaseException:
            self._kaio_backend.destroy(self._kaio_ctx)
            raise
        self._kaio_ring_size = ring_size
        self._kaio_counters = KaioCounters()
        self._kaio_closing = False
        self._kaio_queue: deque[_Op] = deque()
        self._kaio_queued = 0  # ops in the queue still in state _QUEUED
        self._kaio_harvest_limit = harvest_batch
        # The slot table: iocbs, and the op each slot is lent to (None when free).
        self._kaio_iocbs = (_abi.Iocb * ring_size)()
        self._kaio_slot_ops: list[_Op | None] = [None] * ring_size
        self._kaio_free: list[int] = list(range(ring_size - 1, -1, -1))
        self._kaio_iocb_bytes = memoryview(self._kaio_iocbs).cast("B")
        self._kaio_slot_addr: list[int] = []
        for slot in range(ring_size):
            iocb = self._kaio_iocbs[slot]
            iocb.aio_data = slot
            iocb.aio_key = _abi.KIOCB_KEY
            iocb.aio_flags = _abi.IOCB_FLAG_RESFD
            iocb.aio_resfd = self._kaio_efd
            self._kaio_slot_addr.append(ctypes.addressof(iocb))
        # One flush's iocb pointers, in submission order, and the ops they belong to.
        self._kaio_ptrs = (ctypes.c_void_p * ring_size)()
        self._kaio_ptrs_addr = ctypes.addressof(self._kaio_ptrs)
        self._kaio_batch: list[_Op | None] = [None] * ring_size
        # Harvested events land in a bytearray read back as int64 words (cheaper than a
        # ctypes struct per event).
        self._kaio_events_raw = bytearray(ring_size * _abi.IO_EVENT_SIZE)
        self._kaio_events = (_abi.IoEvent * ring_size).from_buffer(self._kaio_events_raw)
        self._kaio_events_addr = ctypes.addressof(self._kaio_events)
        self._kaio_event_words = memoryview(self._kaio_events_raw).cast("q")
        self._kaio_cancel_event = _abi.IoEvent()
        self._kaio_zero_timeout = _abi.Timespec(0, 0)
        self._kaio_zero_timeout_addr = ctypes.addressof(self._kaio_zero_timeout)
        self._kaio_close_timeout = _abi.Timespec(0, _CLOSE_WAIT_SLICE_NS)
        self._kaio_close_timeout.tv_sec, self._kaio_close_timeout.tv_nsec = divmod(
            _CLOSE_WAIT_SLICE_NS, 1_000_000_000
        )
        # Watched by the selector directly, with no reader callback: _process_events
        # harvests as soon as the poll reports it (see there).
        self._selector.register(  # type: ignore[attr-defined]
            self._kaio_efd, selectors.EVENT_READ, (None, None)
        )
        self._kaio_ready = True

    def close(self) -> None:
        """Close the loop: cancel queued KAIO ops, cancel or wait for in-flight ones,
        then release the AIO context and the eventfd, then close as asyncio does."""
        if self.is_running():
            raise RuntimeError("Cannot close a running event loop")
        if self.is_closed():
            return
        destroy_error = 0
        if self._kaio_ready:
            self._kaio_ready = False
            destroy_error = self._kaio_shutdown()
        super().close()
        if destroy_error:
            raise KaioError(destroy_error, f"io_destroy failed: {os.strerror(destroy_error)}")

    def _kaio_shutdown(self) -> int:
        self._kaio_closing = True
        counters = self._kaio_counters
        # 1. Queued ops never reached the kernel: they resolve as cancelled.
        while self._kaio_queue:
            op = self._kaio_queue.popleft()
            if op.state == _QUEUED:
                op.state = _DONE
                op.pinned = None
                counters.cancelled += 1
                op.future.cancel(msg="the KAIO event loop closed before submitting it")
        self._kaio_queued = 0
        # 2. Ask the kernel to cancel what it can; those resolve as cancelled too.
        for held in self._kaio_slot_ops:
            if held is not None and held.state == _IN_FLIGHT and self._kaio_try_cancel(held):
                held.state = _ABANDONED
                counters.cancelled += 1
                held.future.cancel(msg="the KAIO event loop closed; io_cancel accepted")
        # 3. Wait for every remaining event: until then the kernel may write the buffers.
        while len(self._kaio_free) < self._kaio_ring_size:
            self._kaio_reap(1, ctypes.addressof(self._kaio_close_timeout))
        # 4. Release the eventfd and the context.
        self._selector.unregister(self._kaio_efd)  # type: ignore[attr-defined]
        os.close(self._kaio_efd)
        ret = self._kaio_backend.destroy(self._kaio_ctx)
        return -ret if ret < 0 else 0

    # ---- the iteration: harvest after the poll, submit at the end ---------------------
    def _process_events(self, event_list: list[tuple[selectors.SelectorKey, int]]) -> None:
        super()._process_events(event_list)  # type: ignore[misc]
        efd = self._kaio_efd
        for key, _ in event_list:
            if key.fd == efd:
                self._kaio_harvest()
                return

    def _run_once(self) -> None:
        super()._run_once()  # type: ignore[misc]
        if self._kaio_queued and self._kaio_free:
            self._kaio_flush()

    # ---- public: introspection --------------------------------------------------------
    @property
    def kaio_backend(self) -> BackendName:
        """Which binding reaches the kernel: ``"libaio"`` or ``"syscall"``."""
        return self._kaio_backend.name

    @property
    def kaio_ring_size(self) -> int:
        """How many operations may be in flight at once."""
        return self._kaio_ring_size

    def kaio_stats(self) -> KaioStats:
        """A frozen snapshot of this loop's KAIO counters (call from the loop's thread)."""
        c = self._kaio_counters
        return KaioStats(
            backend=self._kaio_backend.name,
            ring_size=self._kaio_ring_size,
            submitted=c.submitted,
            completed=c.completed,
            cancelled=c.cancelled,
            cancel_accepted=c.cancel_accepted,
            rejected=c.rejected,
            failed=c.failed,
            in_flight=self._kaio_ring_size - len(self._kaio_free),
            queued=self._kaio_queued,
            submit_calls=c.submit_calls,
            submit_seconds=c.submit_ns / 1e9,
            submit_max_seconds=c.submit_max_ns / 1e9,
        )

    # ---- public: operations -----------------------------------------------------------
    async def aio_pread(self, fd: int, nbytes: int, offset: int, *, exact: bool = False) -> bytes:
        """Read up to *nbytes* at *offset*. The result is as long as what the kernel read
        (shorter at end of file, like ``os.pread``); with ``exact=True`` a short read
        raises :class:`KaioShortReadError` carrying the bytes that were read. The internal
        buffer is 4096-aligned, so this works on O_DIRECT files too."""
        _check_range(nbytes, offset)
        buffer = aligned_buffer(nbytes)
        n = await self._kaio_wait(
            self._kaio_enqueue("aio_pread", _abi.IOCB_CMD_PREAD, fd, offset, pin_writable(buffer))
        )
        data = bytes(buffer[:n])
        if exact and n != nbytes:
            raise KaioShortReadError(
                f"aio_pread(fd={fd}, nbytes={nbytes}, offset={offset}): short read, "
                f"{n} of {nbytes} bytes",
                expected=nbytes,
                transferred=n,
                data=data,
            )
        return data

    async def aio_preadinto(
        self, fd: int, buffer: WriteableBuffer, offset: int, *, exact: bool = False
    ) -> int:
        """Read into *buffer* (writable, C-contiguous) at *offset*; return the byte count.
        With ``exact=True`` a count short of the buffer's size raises
        :class:`KaioShortReadError`. The buffer stays pinned (a ``bytearray`` cannot be
        resized) until the kernel is done with it, even if the caller is cancelled first."""
        _check_range(0, offset)
        op = self._kaio_enqueue(
            "aio_preadinto", _abi.IOCB_CMD_PREAD, fd, offset, pin_writable(buffer)
        )
        nbytes = op.nbytes
        n = await self._kaio_wait(op)
        if exact and n != nbytes:
            with memoryview(buffer) as view, view.cast("B") as flat:
                data = bytes(flat[:n])
            raise KaioShortReadError(
                f"aio_preadinto(fd={fd}, nbytes={nbytes}, offset={offset}): short read, "
                f"{n} of {nbytes} bytes",
                expected=nbytes,
                transferred=n,
                data=data,
            )
        return n

    async def aio_pwrite(
        self, fd: int, data: ReadableBuffer, offset: int, *, exact: bool = False
    ) -> int:
        """Write *data* at *offset*; return the byte count. With ``exact=True`` a short
        write raises :class:`KaioShortWriteError`. For O_DIRECT, put *data* in
        :func:`aligned_buffer` memory: kernels that require aligned memory (all before
        about 6.x) refuse the arbitrary address of a ``bytes`` with EINVAL."""
        _check_range(0, offset)
        op = self._kaio_enqueue("aio_pwrite", _abi.IOCB_CMD_PWRITE, fd, offset, pin_readable(data))
        nbytes = op.nbytes
        n = await self._kaio_wait(op)
        if exact and n != nbytes:
            raise KaioShortWriteError(
                f"aio_pwrite(fd={fd}, nbytes={nbytes}, offset={offset}): short write, "
                f"{n} of {nbytes} bytes",
                expected=nbytes,
                transferred=n,
            )
        return n

    async def aio_fsync(self, fd: int) -> None:
        """``fsync(fd)`` through KAIO (``IOCB_CMD_FSYNC``, Linux >= 4.18)."""
        await self._kaio_wait(self._kaio_enqueue("aio_fsync", _abi.IOCB_CMD_FSYNC, fd, 0, None))

    async def aio_fdatasync(self, fd: int) -> None:
        """``fdatasync(fd)`` through KAIO (``IOCB_CMD_FDSYNC``, Linux >= 4.18)."""
        await self._kaio_wait(
            self._kaio_enqueue("aio_fdatasync", _abi.IOCB_CMD_FDSYNC, fd, 0, None)
        )

    async def aio_poll(self, fd: int, events: int) -> int:
        """Wait until *fd* is ready for *events* (``select.POLLIN``...) and return the
        ready mask (``IOCB_CMD_POLL``, Linux >= 4.18; one-shot). Cancellable in the
        kernel: a cancelled poll is withdrawn with ``io_cancel``."""
        if not 0 < events <= 0xFFFF:
            raise ValueError(f"aio_poll events must be a non-zero 16-bit mask, got {events!r}")
        # IOCB_CMD_POLL takes its event mask in aio_buf
        op = self._kaio_enqueue("aio_poll", _abi.IOCB_CMD_POLL, fd, 0, None, events)
        return await self._kaio_wait(op)

    # ---- requesting (coroutine side) --------------------------------------------------
    def _kaio_enqueue(
        self,
        name: str,
        opcode: int,
        fd: int,
        offset: int,
        pinned: Pinned | None,
        address: int = 0,
    ) -> _Op:
        """Queue an op; the caller awaits it with ``_kaio_wait`` (which abandons the op if
        the caller is cancelled).

        Callers pass *pinned* straight from ``pin_*()`` and keep no reference to it: the op
        is its only holder, so a traceback kept by a cancelled caller cannot keep the
        buffer pinned after the op is done.
        """
        if self._kaio_closing or self.is_closed():
            raise KaioClosedError(f"{name}: the KAIO event loop is closed")
        if fd < 0:
            raise ValueError(f"{name}: fd must be >= 0, got {fd}")
        nbytes = 0
        if pinned is not None:
            address, nbytes = pinned.address, pinned.nbytes
        op = _Op(name, opcode, fd, address, nbytes, offset, pinned, self.create_future())
        self._kaio_queue.append(op)
        self._kaio_queued += 1
        return op

    async def _kaio_wait(self, op: _Op) -> int:
        try:
            return await op.future
        except asyncio.CancelledError:
            self._kaio_abandon(op)
            raise

    def _kaio_abandon(self, op: _Op) -> None:
        """The caller of *op* was cancelled: drop it if queued, else let the kernel
        cancel it if it can; its buffer and slot stay lent until its event arrives."""
        if op.state == _QUEUED:
            op.state = _DONE  # the flush skips it
            op.pinned = None
            self._kaio_queued -= 1
            self._kaio_counters.cancelled += 1
        elif op.state == _IN_FLIGHT:
            op.state = _ABANDONED
            self._kaio_counters.cancelled += 1
            self._kaio_try_cancel(op)
        # _ABANDONED or _DONE: nothing left to do

    def _kaio_try_cancel(self, op: _Op) -> bool:
        """``io_cancel`` an in-flight op; True when the kernel accepted. The event still
        arrives through the ring (since Linux 4.x ``-EINPROGRESS`` means exactly that; a
        0 from older kernels is treated alike, never as "slot free now")."""
        ret = self._kaio_backend.cancel(
            self._kaio_ctx, self._kaio_slot_addr[op.slot], ctypes.addressof(self._kaio_cancel_event)
        )
        if ret == 0 or ret == -errno.EINPROGRESS:
            self._kaio_counters.cancel_accepted += 1
            return True
        return False  # EINVAL: this kind of op cannot be cancelled; EAGAIN: already done

    # ---- submitting (flush) -----------------------------------------------------------
    def _kaio_flush(self) -> None:
        """Submit everything queued, oldest first, as far as free slots allow, with one
        ``io_submit`` per batch (a second call only after a partial submission)."""
        queue, free, batch = self._kaio_queue, self._kaio_free, self._kaio_batch
        ptrs, slot_addr = self._kaio_ptrs, self._kaio_slot_addr
        pack, iocb_bytes = _PACK_REQUEST, self._kaio_iocb_bytes
        n = 0
        while queue and free:
            op = queue.popleft()
            if op.state != _QUEUED:
                continue  # abandoned while queued
            self._kaio_queued -= 1
            if op.future.done():  # cancelled, and its task has not yet run to abandon it
                op.state = _DONE
                op.pinned = None
                self._kaio_counters.cancelled += 1
                continue
            slot = free.pop()
            op.slot = slot
            pack(
                iocb_bytes,
                slot * _abi.IOCB_SIZE + _abi.IOCB_REQUEST_OFFSET,
                op.opcode,
                0,  # aio_reqprio
                op.fd,
                op.address,
                op.nbytes,
                op.offset,
            )
            ptrs[n] = slot_addr[slot]
            batch[n] = op
            n += 1
        if n:
            self._kaio_submit(n)

    def _kaio_submit(self, n: int) -> None:
        counters, batch, slot_ops = self._kaio_counters, self._kaio_batch, self._kaio_slot_ops
        pos = 0
        while pos < n:
            t0 = time.perf_counter_ns()
            ret = self._kaio_backend.submit(
                self._kaio_ctx, n - pos, self._kaio_ptrs_addr + pos * _POINTER_SIZE
            )
            elapsed = time.perf_counter_ns() - t0
            counters.submit_calls += 1
            counters.submit_ns += elapsed
            if elapsed > counters.submit_max_ns:
                counters.submit_max_ns = elapsed
            if ret > 0:
                for i in range(pos, pos + ret):
                    op = batch[i]
                    assert op is not None
                    op.state = _IN_FLIGHT
                    slot_ops[op.slot] = op
                    batch[i] = None
                counters.submitted += ret
                pos += ret
            elif ret == -errno.EINTR:
                continue
            elif ret in (0, -errno.EAGAIN) and self._kaio_in_flight_besides(n - pos):
                # The kernel is short of request structures while some of ours are in
                # flight: put the rest back at the head of the queue, in order; the flush
                # at the end of the next iteration (one comes with the next harvest at the
                # latest) tries again. (With nothing in flight no harvest would come, so
                # then the head op fails instead, below, and the rest are tried.)
                self._kaio_requeue(pos, n)
                return
            else:
                op = batch[pos]
                assert op is not None
                batch[pos] = None
                self._kaio_release(op)
                counters.rejected += 1
                err = -ret if ret else errno.EAGAIN
                op.future.set_exception(operation_error(err, op.request()))
                pos += 1

    def _kaio_in_flight_besides(self, unsubmitted: int) -> bool:
        """Whether the kernel holds ops other than the *unsubmitted* tail of a batch."""
        return self._kaio_ring_size - len(self._kaio_free) - unsubmitted > 0

    def _kaio_requeue(self, start: int, stop: int) -> None:
        batch = self._kaio_batch
        for i in range(stop - 1, start - 1, -1):
            op = batch[i]
            assert op is not None
            batch[i] = None
            self._kaio_free.append(op.slot)
            op.slot = -1
            self._kaio_queue.appendleft(op)
            self._kaio_queued += 1

    def _kaio_release(self, op: _Op) -> None:
        """Return *op*'s slot and drop its buffer: only once the kernel is done with it."""
        self._kaio_slot_ops[op.slot] = None
        self._kaio_free.append(op.slot)
        op.slot = -1
        op.state = _DONE
        op.pinned = None

    # ---- harvesting -------------------------------------------------------------------
    def _kaio_harvest(self) -> None:
        """Resolve at most ``harvest_batch`` finished ops without waiting. Runs between
        the poll and the ready callbacks, so the awaiting tasks resume in this same
        iteration and the ops they ask for next go out in this iteration's flush.

        The eventfd is reset first, then the ring is read: an event that lands in
        between sets the eventfd again, so no completion goes unnoticed. When the limit
        was reached more events may be waiting; the eventfd is set again by hand so the
        next poll returns at once instead of sleeping on them.
        """
        efd = self._kaio_efd
        with contextlib.suppress(BlockingIOError):  # zero: an earlier harvest took these
            os.eventfd_read(efd)
        limit = self._kaio_harvest_limit
        if self._kaio_reap(0, self._kaio_zero_timeout_addr, limit) == limit:
            os.eventfd_write(efd, 1)

    def _kaio_reap(self, min_nr: int, timeout: int, limit: int = 0) -> int:
        """Resolve the ops of up to *limit* events (0: all there are), waiting as
        ``io_getevents`` does for at least *min_nr*; the number of events taken."""
        backend, ctx = self._kaio_backend, self._kaio_ctx
        ring = limit or self._kaio_ring_size
        total = 0
        words, slot_ops, counters = self._kaio_event_words, self._kaio_slot_ops, self._kaio_counters
        free = self._kaio_free
        while True:
            got = backend.getevents(ctx, min_nr, ring, self._kaio_events_addr, timeout)
            if got < 0:
                if got == -errno.EINTR:
                    continue
                raise KaioError(-got, f"io_getevents failed: {os.strerror(-got)}")
            counters.completed += got
            total += got
            for i in range(got):
                base = i * _EVENT_WORDS
                slot = words[base]
                res = words[base + 2]
                op = slot_ops[slot]
                assert op is not None, f"io_event for free slot {slot}"
                state = op.state
                future = op.future
                slot_ops[slot] = None  # == self._kaio_release(op), inlined: hot path
                free.append(slot)
                op.slot = -1
                op.state = _DONE
                op.pinned = None
                if state == _ABANDONED:
                    continue  # counted as cancelled when abandoned
                if future.done():  # cancelled; its coroutine has not run yet
                    counters.cancelled += 1
                elif res < 0:
                    counters.failed += 1
                    future.set_exception(operation_error(-res, op.request()))
                else:
                    future.set_result(res)
            if got < ring or min_nr or limit:
                return total


def _check_range(nbytes: int, offset: int) -> None:
    if nbytes < 0:
        raise ValueError(f"nbytes must be >= 0, got {nbytes}")
    if offset < 0:
        raise ValueError(f"offset must be >= 0, got {offset}")


def new_event_loop(
    *,
    ring_size: int = DEFAULT_RING_SIZE,
    backend: str | None = None,
    harvest_batch: int = DEFAULT_HARVEST_BATCH,
) -> KaioEventLoop:
    """A new :class:`KaioEventLoop` (a ``loop_factory`` for ``asyncio.Runner``)."""
    return KaioEventLoop(ring_size=ring_size, backend=backend, harvest_batch=harvest_batch)
