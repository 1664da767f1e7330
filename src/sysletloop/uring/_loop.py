"""The io_uring event loop: an asyncio selector loop that does file I/O through io_uring.

The third model beside KAIO and syslets (issue 20). KAIO performs whatever it cannot
start asynchronously inside ``io_submit``; syslets run any call inline and move on to
another thread only when it blocks; io_uring (Linux 5.1, 2019) is the kernel's own answer
between the two: each request is first tried inline, *without blocking* (``IOCB_NOWAIT``),
and when it would block the kernel parks it on a poll or hands it to its own worker pool
(io-wq) and returns at once. So unlike KAIO, buffered reads, ``openat``, ``statx``,
``close``, ``unlink`` and ``rename`` are all asynchronous here, and the loop's thread never
performs the blocking part. ``uring_stats().enter_max_seconds`` is where a broken promise
would show.

Glossary
    *op*        one requested operation (:class:`_Op`): its future, what keeps its memory
                alive (buffer exports, the path bytes, the statx buffer), its state.
    *slot*      an index into the loop's table of ops the kernel may hold (``sq_entries``
                of them). An op holds a slot from the moment its SQE is written until its
                CQE is reaped.
    *user_data* the 64 bits an SQE carries into its CQE: ``kind << 62 | seq << 32 | slot``.
                *seq* is a per-op sequence number (30 bits), so a cancel request names
                exactly one op even after the slot has passed to another; *kind* tells an
                op's CQE from the CQE of an ``IORING_OP_ASYNC_CANCEL`` the loop sent.
    *pending*   SQEs written into the SQ ring and not yet handed to the kernel.
    *queue*     ops waiting for a free slot (more than ``sq_entries`` requested), FIFO.
    *flush*     publishing the SQ tail and one ``io_uring_enter`` for everything pending,
                at the end of every loop iteration that wrote SQEs (``_run_once``), and
                with ``submit_batch=N`` also as soon as N SQEs are pending, so the device
                starts on them while the iteration's later callbacks still run.
    *reap*      a pass over the CQ ring between its head and tail: no system call. Done
                when the selector reports the completion eventfd, and at the start of
                every iteration in which ops are in flight.
    *abandoned* an op whose caller was cancelled while the kernel may hold it: an
                ``IORING_OP_ASYNC_CANCEL`` is sent for it, but its slot and its memory are
                kept until its own CQE arrives; the outcome is then dropped (an fd that
                ``openat`` produced for nobody is closed).

Life of an op::

    uring_read() ─ SQE written (slot) ─(flush: io_uring_enter)─ in the kernel ─(CQE, reap)─ resolved
         └─ no free slot: queue, FIFO ─┘        └─ cancelled: ASYNC_CANCEL sent; slot and buffer
                                                   kept until the op's own CQE (often -ECANCELED)

Threads: everything runs on the loop's thread: the coroutine methods (which write SQEs),
the flush, the reap and ``close()``. No lock guards the rings, the slot table or the
counters, because no other thread touches them; asyncio already requires its loop be used
from its own thread, and we do not rely on the GIL for any of this (under free-threaded
Python the same holds). The kernel is the other party (see ``_ring`` for the memory
ordering). Hence the rule the module is arranged around: **a slot and the memory its op
lent the kernel are released only when that op's CQE is reaped** (by a reap, or by
``close()``, which waits for every one).

Guarantees
    * Every op resolves exactly once: result, exception or cancellation. Its CQE is
      reaped exactly once, whatever happened to the caller.
    * Ops enter the kernel in the order they were requested (FIFO); when every slot is
      busy they wait in the queue instead of failing.
    * ``close()`` cancels queued ops, sends ``ASYNC_CANCEL`` for every op in the kernel,
      then blocks in ``io_uring_enter(GETEVENTS)`` until every CQE is back, and only then
      closes the eventfd, unmaps the rings and closes the ring's fd. No fd (the ring's,
      the eventfd, one ``openat`` produced for a caller who left) survives it. The loop
      starts no thread; the kernel's io-wq workers (threads of this process named
      ``iou-wrk-<pid>``, flag ``PF_IO_WORKER``) run punted work and idle out shortly after
      the last ring of the process closes (seen: under a second; tests/uring waits).

Rejected alternatives
    * Submitting each op as it is requested (one ``io_uring_enter`` per op): the SQE is
      written at once, but the system call is paid once per ``submit_batch`` SQEs (and
      for the rest at the end of the iteration). An ``O_DIRECT`` SQE costs 2.5-3.4 us of
      kernel time here, part of it per call (the virtio notification), and submitting
      every SQE alone measured worse than every 3 (``DEFAULT_SUBMIT_BATCH``).
    * Only one ``io_uring_enter`` per iteration, at its end: the device idles while the
      iteration resumes a burst of tasks (see ``DEFAULT_SUBMIT_BATCH``).
    * Blocking in ``io_uring_enter(GETEVENTS)`` instead of the selector: the loop must also
      wait for sockets and timers, which the selector does; a registered eventfd brings
      completions into the same ``epoll_wait``.
    * A thread reaping completions: a second thread and a hand-off per completion, where
      reading the CQ ring costs no system call at all.
    * Keeping a cancelled op's buffer only until ``ASYNC_CANCEL`` answers: the answer
      (``-EALREADY``: it is running) does not mean the kernel is done with the memory; only
      the op's own CQE does.
    * A done-callback on every future to notice cancellation (a callback per op): the
      coroutine awaiting the future catches ``CancelledError`` instead.
    * ``IORING_SETUP_SINGLE_ISSUER``/``DEFER_TASKRUN``: they tie the ring to the thread that
      created it, and an asyncio loop may be created in one thread and run in another.
    * ``IORING_SETUP_SQPOLL`` (a kernel thread that takes SQEs with no system call): tried
      for the depth-32 benchmark on the 2-vCPU development VM, it lost (0.42-0.57 of fio
      against 0.62 for the default loop in the same rounds): the polling thread competes
      with the loop for the second CPU. It would also need a full barrier between the
      tail store and the ``NEED_WAKEUP`` load, which Python can only borrow from a lock.
    * ``IORING_SETUP_COOP_TASKRUN``: works with the eventfd (a sleeping loop is still
      woken), but measured no better (0.86 against 0.85 at ``submit_batch=4``), so the
      default keeps the kernel's own choice.
    * Waiting in ``io_uring_enter(GETEVENTS, EXT_ARG timeout)`` instead of ``epoll_wait``
      whenever the loop would block, with a one-shot ``POLL_ADD`` on the selector's epoll
      fd so that sockets and ``call_soon_threadsafe`` still wake it (submit and wait in
      one system call, no eventfd): tried; depth 1 gained ~6% (12,590 against 11,852
      reads/s), depth 32 nothing, and the extra SQE for the poll needs room the slots
      may have taken. Not worth a second way of waiting.
    * Harvesting at most N completions per iteration (the KAIO loop's answer to bursts):
      worse here (0.50-0.56 with 8), because a CQE costs no system call to reap, and the
      burst is better met by submitting early (``submit_batch``) than by reaping late.
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
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from sysletloop.kaio._buffer import aligned_buffer, pin_readable
from sysletloop.uring import _abi
from sysletloop.uring._errors import (
    Request,
    UringClosedError,
    UringError,
    UringSetupError,
    UringShortReadError,
    UringShortWriteError,
    UringUnsupportedError,
    disabled_error,
    missing_opcodes_error,
    operation_error,
    probe_unsupported_error,
    read_proc,
    seccomp_mode,
    setup_error,
    unsupported_opcode_error,
)
from sysletloop.uring._ring import Ring
from sysletloop.uring._stats import UringCounters, UringStats
from sysletloop.uring._statx import decode_statx
from sysletloop.uring._syscall import Syscalls

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer, StrOrBytesPath, WriteableBuffer

# SQ entries asked of io_uring_setup (the kernel rounds up to a power of two; the CQ ring
# gets twice as many). Also the most ops the kernel holds at once: 256 covers the
# benchmark's deepest queue (32) eight times over, and costs 16 KiB of SQEs and 8 KiB of
# CQEs.
DEFAULT_ENTRIES: Final = 256
MAX_ENTRIES: Final = 32768  # the kernel's IORING_MAX_ENTRIES

# Enter the kernel as soon as this many SQEs are pending, not only at the end of the
# iteration. On the development VM (virtio disk, 2 vCPU) a depth-32 workload gets its
# completions in bursts of ~30; resuming 30 tasks takes ~150 us of Python, during which a
# submit-at-the-end loop leaves the device idle (0.63-0.74 of fio's io_uring engine).
# Entering every 3 SQEs lets the device start on them at once: 0.85-0.90 (3 and 4 were
# best of 2-12 in paired rounds, benchmarks.uring_fio; 2 pays too many system calls,
# 8+ starts the device too late). 0 restores one io_uring_enter per iteration.
DEFAULT_SUBMIT_BATCH: Final = 3

# Setup flags tried first, each dropped (in this order) when the kernel refuses it with
# EINVAL (too old to know it): SUBMIT_ALL keeps a batch going past an SQE that fails to
# prepare (5.18); COOP_TASKRUN spares the loop an inter-processor interrupt per completion
# (5.19); measured in benchmarks.uring_fio (see docs/kaio.md).
_SETUP_FLAGS: Final = (_abi.IORING_SETUP_SUBMIT_ALL,)

_U32: Final = 0xFFFFFFFF
_U64: Final = 0xFFFFFFFFFFFFFFFF  # offset -1 (the file position) as the kernel's u64
_SLOT_MASK: Final = 0xFFFFFFFF
_SEQ_MASK: Final = 0x3FFFFFFF
_KIND_CANCEL: Final = 1 << 62  # user_data of the loop's own ASYNC_CANCEL SQEs
_PACK_SQE: Final = _abi.SQE_HEAD.pack_into
_OP_READ: Final = _abi.IORING_OP_READ
_Future: Final = asyncio.Future
_perf_counter_ns: Final = time.perf_counter_ns
_c_char: Final = ctypes.c_char
_addressof: Final = ctypes.addressof

# op states (plain ints: compared on every reap)
_QUEUED: Final = 0  # waiting in the queue, no slot
_IN_RING: Final = 1  # SQE written, holds a slot; in the kernel after the next flush
_ABANDONED: Final = 2  # holds a slot, caller gone, ASYNC_CANCEL queued or sent
_DONE: Final = 3  # resolved, slot and memory released

# Memory lent to ops whose CQE a failed close() could not wait for (see _uring_shutdown).
_UNRETURNED: list[object] = []

# What happens to a result nobody will receive
_PLAIN: Final = 0
_RETURNS_FD: Final = 1  # openat: a result >= 0 is an fd that must not leak


class _Op:
    """One requested operation (see the glossary)."""

    __slots__ = ("args", "future", "keep", "name", "path", "returns", "slot", "state", "ud")

    def __init__(
        self,
        name: str,
        future: asyncio.Future[int],
        keep: object,
        args: tuple[int, int, int, int, int, int],
    ) -> None:
        self.name = name
        self.future = future
        self.keep = keep  # what keeps lent memory alive; dropped when the CQE is reaped
        self.args = args  # opcode, fd, off, addr, len, op_flags
        self.state = _QUEUED
        self.slot = -1
        self.ud = 0
        self.path: str | None = None
        self.returns = _PLAIN

    def request(self) -> Request:
        _, fd, off, addr, length, _ = self.args
        return Request(self.name, fd, addr, length, off, self.path)


class UringEventLoop(asyncio.SelectorEventLoop):
    """An asyncio selector event loop with coroutine methods for io_uring.

    *entries* is the size of the submission ring (``io_uring_setup``'s ``entries``,
    rounded up to a power of two by the kernel) and the most operations the kernel holds
    at once; more wait in FIFO order. *harvest_batch* bounds how many completions one loop
    iteration resolves (0: all there are). *submit_batch* makes the loop enter the kernel
    as soon as that many SQEs are pending (0: once, at the end of the iteration; the
    default is :data:`DEFAULT_SUBMIT_BATCH`).
    *setup_flags* replaces the ``IORING_SETUP_*`` flags the loop asks for (by default
    ``SUBMIT_ALL``, dropped on kernels that refuse it).
    """

    def __init__(
        self,
        selector: selectors.BaseSelector | None = None,
        *,
        entries: int = DEFAULT_ENTRIES,
        harvest_batch: int = 0,
        submit_batch: int = DEFAULT_SUBMIT_BATCH,
        setup_flags: int | None = None,
    ) -> None:
        super().__init__(selector)
        self._uring_ready = False
        self._uring_accepting = False
        try:
            self._uring_open(entries, harvest_batch, submit_batch, setup_flags)
        except BaseException:
            super().close()
            raise

    # ---- set-up and tear-down ---------------------------------------------------------
    def _uring_open(
        self, entries: int, harvest_batch: int, submit_batch: int, setup_flags: int | None
    ) -> None:
        if sys.platform != "linux":
            raise UringUnsupportedError(
                f"the io_uring loop needs Linux io_uring; this platform is {sys.platform!r}"
            )
        if isinstance(entries, bool) or not isinstance(entries, int) or not entries > 0:
            raise ValueError(f"entries must be a positive int, got {entries!r}")
        if entries > MAX_ENTRIES:
            raise ValueError(f"entries must be at most {MAX_ENTRIES}, got {entries!r}")
        if (
            isinstance(harvest_batch, bool)
            or not isinstance(harvest_batch, int)
            or harvest_batch < 0
        ):
            raise ValueError(f"harvest_batch must be an int >= 0, got {harvest_batch!r}")
        if isinstance(submit_batch, bool) or not isinstance(submit_batch, int) or submit_batch < 0:
            raise ValueError(f"submit_batch must be an int >= 0, got {submit_batch!r}")
        disabled = read_proc("/proc/sys/kernel/io_uring_disabled")
        refused = disabled_error(disabled)
        if refused is not None:
            raise refused
        syscalls = Syscalls.load()
        ring = self._uring_setup(syscalls, entries, disabled, setup_flags)
        try:
            supported = ring.probe()
            if isinstance(supported, int):
                raise probe_unsupported_error(-supported)
            missing = [_abi.OPCODES[op] for op in _abi.REQUIRED_OPCODES if op not in supported]
            if missing:
                raise missing_opcodes_error(missing)
            efd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            try:
                ring.register_eventfd(efd)
            except OSError as exc:
                os.close(efd)
                raise UringSetupError(exc.errno, str(exc)) from None
        except BaseException:
            ring.close()
            raise
        self._uring_ring = ring
        self._uring_supported = frozenset(supported)
        self._uring_efd = efd
        self._uring_counters = UringCounters()
        self._uring_closing = False
        self._uring_harvest = harvest_batch
        self._uring_submit_batch = submit_batch
        self._uring_budget = 0  # CQEs this iteration may still reap (with a harvest_batch)
        nslots = ring.sq_entries
        self._uring_nslots = nslots
        self._uring_slot_ops: list[_Op | None] = [None] * nslots
        self._uring_free: list[int] = list(range(nslots - 1, -1, -1))
        self._uring_queue: deque[_Op] = deque()
        self._uring_queued = 0  # ops in the queue still in state _QUEUED
        self._uring_cancels: list[int] = []  # user_data of ops to ASYNC_CANCEL at the flush
        self._uring_cancels_in_flight = 0
        self._uring_seq = 0
        self._uring_tail = 0  # our SQ tail (mod 2**32 when published)
        self._uring_written = 0  # op SQEs written since the last flush
        self._uring_sqes = ring.sqes
        self._uring_sq_mask = ring.sq_mask
        self._uring_sq_u32 = ring.sq_u32
        self._uring_sq_tail_index = ring.sq_tail_index
        self._uring_fd = ring.fd
        self._uring_syscall, self._uring_nr_enter = syscalls.raw_enter
        self._uring_entered = 0  # the tail as of the last flush
        self._uring_cq_head = 0
        # Watched by the selector with no reader callback: _process_events reaps as soon
        # as the poll reports it (a callback would cost one more iteration).
        self._selector.register(efd, selectors.EVENT_READ, (None, None))  # type: ignore[attr-defined]
        self._uring_ready = True
        self._uring_accepting = True  # ready and not closing: new ops may be requested

    def _uring_setup(
        self, syscalls: Syscalls, entries: int, disabled: str | None, setup_flags: int | None
    ) -> Ring:
        wanted = list(_SETUP_FLAGS) if setup_flags is None else [setup_flags]
        while True:
            flags = 0
            for flag in wanted:
                flags |= flag
            try:
                return Ring.open(syscalls, entries, flags)
            except OSError as exc:
                err = exc.errno or 0
                if err == errno.EINVAL and wanted and setup_flags is None:
                    wanted.pop()  # a kernel too old for the newest flag: try without it
                    continue
                raise setup_error(
                    err,
                    entries,
                    disabled=disabled,
                    group=read_proc("/proc/sys/kernel/io_uring_group"),
                    seccomp=seccomp_mode(),
                ) from None

    def close(self) -> None:
        """Close the loop: cancel queued ops, ``ASYNC_CANCEL`` the ones in the kernel and
        wait for every CQE, then release the eventfd and the ring; then close as asyncio
        does."""
        if self.is_running():
            raise RuntimeError("Cannot close a running event loop")
        if self.is_closed():
            return
        if self._uring_ready:
            self._uring_ready = False
            self._uring_shutdown()
        super().close()

    def _uring_shutdown(self) -> None:
        self._uring_closing = True
        self._uring_accepting = False
        counters = self._uring_counters
        # 1. Queued ops never reached the ring: they resolve as cancelled.
        while self._uring_queue:
            op = self._uring_queue.popleft()
            if op.state == _QUEUED:
                op.state = _DONE
                op.keep = None
                counters.cancelled += 1
                op.future.cancel(msg="the io_uring event loop closed before submitting it")
        self._uring_queued = 0
        # 2. Everything holding a slot gets an ASYNC_CANCEL (sent after the op itself,
        #    in the same flush, for ops still pending). Those that end -ECANCELED resolve
        #    as cancelled, as do opens (nobody could receive the fd); the rest get their
        #    real outcome (see _uring_reap).
        for held in self._uring_slot_ops:
            if held is not None and held.state == _IN_RING:
                held.state = _ABANDONED
                self._uring_cancels.append(held.ud)
        # 3. Submit, then wait for every CQE: until then the kernel may use the memory.
        try:
            self._uring_flush()
            while self._uring_kernel_busy():
                if self._uring_reap(0) == 0:
                    self._uring_wait_cqe()
        except BaseException:
            # Waiting failed (an unexpected io_uring_enter error, KeyboardInterrupt): the
            # ring is torn down below, and the kernel finishes or cancels what it still
            # holds in the background, so the memory lent to those ops must outlive this
            # loop. It is kept for the life of the process rather than risk the kernel
            # writing into freed memory.
            _UNRETURNED.extend(op.keep for op in self._uring_slot_ops if op is not None)
            raise
        finally:
            # 4. Release the eventfd and the ring (closing the ring's fd stops its io-wq
            #    workers; unregistering the eventfd is implied).
            self._selector.unregister(self._uring_efd)  # type: ignore[attr-defined]
            os.close(self._uring_efd)
            self._uring_ring.close()

    def _uring_wait_cqe(self) -> None:
        ring = self._uring_ring
        if self._uring_tail != self._uring_entered or self._uring_cancels:
            self._uring_flush()
        ret = ring.enter(0, 1, _abi.IORING_ENTER_GETEVENTS)
        if ret < 0 and ret not in (-errno.EAGAIN, -errno.EBUSY, -errno.ETIME):
            raise UringError(-ret, f"io_uring_enter(GETEVENTS) failed: {os.strerror(-ret)}")

    # ---- the iteration: reap, run, flush ----------------------------------------------
    def _process_events(self, event_list: list[tuple[selectors.SelectorKey, int]]) -> None:
        super()._process_events(event_list)  # type: ignore[misc]
        efd = self._uring_efd
        for key, _ in event_list:
            if key.fd == efd:
                self._uring_counters.eventfd_wakeups += 1
                with contextlib.suppress(BlockingIOError):  # already reset
                    os.eventfd_read(efd)
                # The eventfd is reset first, then the ring is read: a CQE posted in
                # between sets the eventfd again, so none goes unnoticed.
                limit = self._uring_harvest
                if not limit:
                    self._uring_reap(0)
                elif self._uring_budget > 0:
                    self._uring_budget -= self._uring_reap(self._uring_budget)
                if limit and self._uring_cq_pending():
                    os.eventfd_write(efd, 1)  # the next poll must not sleep on them
                return

    def _run_once(self) -> None:
        # Completions that arrived while the last iteration ran: resolved now, so their
        # tasks run in this iteration (no system call: the CQ ring is memory). With a
        # harvest_batch, the iteration's reaps together take at most that many.
        self._uring_budget = self._uring_harvest
        if len(self._uring_free) < self._uring_nslots:
            self._uring_budget -= self._uring_reap(self._uring_harvest)
        super()._run_once()  # type: ignore[misc]
        if self._uring_cancels:
            self._uring_flush()
        elif self._uring_tail != self._uring_entered:
            self._uring_submit()
        elif self._uring_queued and self._uring_free:
            self._uring_drain_queue()
            self._uring_flush()

    def _uring_cq_pending(self) -> bool:
        ring = self._uring_ring
        return ring.cq_u32[ring.cq_tail_index] != self._uring_cq_head

    def _uring_kernel_busy(self) -> bool:
        """Whether the kernel holds an op or a cancel request of this loop."""
        return len(self._uring_free) < self._uring_nslots or self._uring_cancels_in_flight > 0

    # ---- public: introspection --------------------------------------------------------
    @property
    def uring_entries(self) -> int:
        """How many operations the kernel may hold at once (the SQ ring's size)."""
        return self._uring_nslots

    def uring_supports(self, opcode: int) -> bool:
        """Whether this kernel's io_uring knows *opcode* (``IORING_REGISTER_PROBE``)."""
        return opcode in self._uring_supported

    def uring_stats(self) -> UringStats:
        """A frozen snapshot of this loop's io_uring counters (call from its thread)."""
        c = self._uring_counters
        ring = self._uring_ring
        return UringStats(
            sq_entries=ring.sq_entries,
            cq_entries=ring.cq_entries,
            features=ring.features,
            submitted=c.submitted,
            completed=c.completed,
            cancelled=c.cancelled,
            cancel_requests=c.cancel_requests,
            cancel_found=c.cancel_found,
            failed=c.failed,
            orphans_closed=c.orphans_closed,
            in_flight=self._uring_nslots - len(self._uring_free),
            queued=self._uring_queued,
            enter_calls=c.enter_calls,
            enter_seconds=c.enter_ns / 1e9,
            enter_max_seconds=c.enter_max_ns / 1e9,
            reaps=c.reaps,
            eventfd_wakeups=c.eventfd_wakeups,
        )

    # ---- public: reads and writes ------------------------------------------------------
    async def uring_readinto(
        self, fd: int, buffer: WriteableBuffer, offset: int, *, exact: bool = False
    ) -> int:
        """Read into *buffer* (writable, C-contiguous) at *offset* (-1: the file position,
        like ``os.read``); return the byte count. With ``exact=True`` a count short of the
        buffer's size raises :class:`UringShortReadError`. The buffer stays pinned (a
        ``bytearray`` cannot be resized) until the kernel is done with it, even if the
        caller is cancelled first."""
        # == self._uring_push_read("uring_readinto", ...), inlined (the hot path), with a
        # shortcut for the two buffer types callers use most: no second memoryview.
        kind = type(buffer)
        if kind is memoryview and not buffer.readonly:  # type: ignore[attr-defined]
            nbytes = buffer.nbytes  # type: ignore[attr-defined]
            view = buffer
        elif kind is bytearray:
            nbytes = len(buffer)  # type: ignore[arg-type]
            view = buffer
        else:
            view = memoryview(buffer)
            if view.readonly:
                raise TypeError(
                    f"uring_readinto: a writable buffer is required, got read-only "
                    f"{type(buffer).__name__}"
                )
            nbytes = view.nbytes
        # from_buffer refuses a non-contiguous buffer, and its result holds an export
        holder = (_c_char if nbytes else _c_char * 0).from_buffer(view)
        op = self._uring_push(
            "uring_readinto",
            (_OP_READ, fd, offset & _U64, _addressof(holder), nbytes, 0),
            holder,
            offset,
        )
        del view, holder  # the op holds the buffer now, and only the op
        try:  # _uring_wait, inlined: one coroutine frame less on the hot path
            n = await op.future
        except asyncio.CancelledError:
            self._uring_abandon(op)
            raise
        if exact and n != nbytes:
            with memoryview(buffer) as again, again.cast("B") as flat:
                data = bytes(flat[:n])
            raise UringShortReadError(
                f"uring_readinto(fd={fd}, nbytes={nbytes}, offset={offset}): short "
                f"read, {n} of {nbytes} bytes",
                expected=nbytes,
                transferred=n,
                data=data,
            )
        return n

    async def uring_read(self, fd: int, nbytes: int, offset: int, *, exact: bool = False) -> bytes:
        """Read up to *nbytes* at *offset* (-1: the file position). The result is as long
        as what the kernel read (shorter at end of file, like ``os.pread``); with
        ``exact=True`` a short read raises :class:`UringShortReadError`. The internal
        buffer is 4096-aligned, so this works on O_DIRECT files too."""
        if nbytes < 0:
            raise ValueError(f"uring_read: nbytes must be >= 0, got {nbytes}")
        buffer = aligned_buffer(nbytes)
        n = await self._uring_wait(self._uring_push_read("uring_read", fd, buffer, offset))
        data = bytes(buffer[:n])
        if exact and n != nbytes:
            raise UringShortReadError(
                f"uring_read(fd={fd}, nbytes={nbytes}, offset={offset}): short read, "
                f"{n} of {nbytes} bytes",
                expected=nbytes,
                transferred=n,
                data=data,
            )
        return data

    def _uring_push_read(self, name: str, fd: int, buffer: WriteableBuffer, offset: int) -> _Op:
        view = memoryview(buffer)
        if view.readonly:
            raise TypeError(
                f"{name}: a writable buffer is required, got read-only {type(buffer).__name__}"
            )
        nbytes = view.nbytes
        # One c_char at the start holds an export of the whole buffer (from_buffer refuses
        # a non-contiguous one); an empty buffer needs the zero-length array.
        holder = (ctypes.c_char if nbytes else ctypes.c_char * 0).from_buffer(view)
        return self._uring_push(
            name,
            (_abi.IORING_OP_READ, fd, offset & _U64, ctypes.addressof(holder), nbytes, 0),
            holder,
            offset,
        )

    async def uring_write(
        self, fd: int, data: ReadableBuffer, offset: int, *, exact: bool = False
    ) -> int:
        """Write *data* at *offset* (-1: the file position, as ``os.write``; with
        ``O_APPEND`` the end); return the byte count. With ``exact=True`` a short write
        raises :class:`UringShortWriteError`. For O_DIRECT put *data* in
        :func:`aligned_buffer` memory."""
        pinned = pin_readable(data)
        nbytes = pinned.nbytes
        op = self._uring_push(
            "uring_write",
            (_abi.IORING_OP_WRITE, fd, offset & _U64, pinned.address, nbytes, 0),
            pinned,
            offset,
        )
        del pinned
        n = await self._uring_wait(op)
        if exact and n != nbytes:
            raise UringShortWriteError(
                f"uring_write(fd={fd}, nbytes={nbytes}, offset={offset}): short write, "
                f"{n} of {nbytes} bytes",
                expected=nbytes,
                transferred=n,
            )
        return n

    async def uring_readv(self, fd: int, buffers: Sequence[WriteableBuffer], offset: int) -> int:
        """Scatter-read into *buffers* in order (``os.preadv``); return the byte count."""
        holders: list[object] = []
        iovecs = (_abi.Iovec * max(1, len(buffers)))()
        for i, buffer in enumerate(buffers):
            view = memoryview(buffer)
            if view.readonly:
                raise TypeError(f"uring_readv: buffer {i} is read-only ({type(buffer).__name__})")
            holder = (ctypes.c_char if view.nbytes else ctypes.c_char * 0).from_buffer(view)
            holders.append(holder)
            iovecs[i].iov_base = ctypes.addressof(holder)
            iovecs[i].iov_len = view.nbytes
        return await self._uring_vector(
            "uring_readv", _abi.IORING_OP_READV, fd, iovecs, len(buffers), offset, holders
        )

    async def uring_writev(self, fd: int, buffers: Sequence[ReadableBuffer], offset: int) -> int:
        """Gather-write *buffers* in order (``os.pwritev``); return the byte count."""
        pins: list[object] = []
        iovecs = (_abi.Iovec * max(1, len(buffers)))()
        for i, data in enumerate(buffers):
            pinned = pin_readable(data)
            pins.append(pinned)
            iovecs[i].iov_base = pinned.address
            iovecs[i].iov_len = pinned.nbytes
        return await self._uring_vector(
            "uring_writev", _abi.IORING_OP_WRITEV, fd, iovecs, len(buffers), offset, pins
        )

    async def _uring_vector(
        self,
        name: str,
        opcode: int,
        fd: int,
        iovecs: ctypes.Array[_abi.Iovec],
        count: int,
        offset: int,
        pins: list[object],
    ) -> int:
        if count > 1024:  # UIO_MAXIOV
            raise ValueError(f"{name}: at most 1024 buffers, got {count}")
        op = self._uring_push(
            name,
            (opcode, fd, offset & _U64, ctypes.addressof(iovecs), count, 0),
            (iovecs, pins),
            offset,
        )
        del iovecs, pins
        return await self._uring_wait(op)

    async def uring_fsync(self, fd: int, datasync: bool = False) -> None:
        """``fsync(fd)``, or ``fdatasync(fd)`` with *datasync*."""
        flags = _abi.IORING_FSYNC_DATASYNC if datasync else 0
        await self._uring_wait(
            self._uring_push("uring_fsync", (_abi.IORING_OP_FSYNC, fd, 0, 0, 0, flags), None, 0)
        )

    # ---- public: files and paths ------------------------------------------------------
    async def uring_openat(
        self,
        path: StrOrBytesPath,
        flags: int = os.O_RDONLY,
        mode: int = 0o777,
        *,
        dir_fd: int | None = None,
    ) -> int:
        """``os.open(path, flags, mode, dir_fd=dir_fd)`` through ``IORING_OP_OPENAT``: the
        new fd, non-inheritable (``O_CLOEXEC``) as ``os.open`` makes it. If the caller is
        cancelled after the kernel opened the file, the loop closes the fd."""
        encoded = _path_bytes("uring_openat", path)
        op = self._uring_path_op(
            "uring_openat",
            _abi.IORING_OP_OPENAT,
            dir_fd,
            encoded,
            0,
            mode,
            flags | os.O_CLOEXEC,
            encoded,
        )
        op.returns = _RETURNS_FD
        return await self._uring_wait(op)

    async def uring_close(self, fd: int) -> None:
        """``os.close(fd)`` through ``IORING_OP_CLOSE``."""
        await self._uring_wait(
            self._uring_push("uring_close", (_abi.IORING_OP_CLOSE, fd, 0, 0, 0, 0), None, 0)
        )

    async def uring_statx(
        self,
        path: StrOrBytesPath,
        *,
        dir_fd: int | None = None,
        follow_symlinks: bool = True,
    ) -> os.stat_result:
        """``os.stat(path, dir_fd=..., follow_symlinks=...)`` through ``IORING_OP_STATX``:
        an ``os.stat_result`` with the same fields ``os.stat`` fills."""
        encoded = _path_bytes("uring_statx", path)
        flags = 0 if follow_symlinks else _abi.AT_SYMLINK_NOFOLLOW
        return await self._uring_statx("uring_statx", dir_fd, encoded, flags)

    async def uring_fstat(self, fd: int) -> os.stat_result:
        """``os.fstat(fd)`` through ``IORING_OP_STATX`` (``AT_EMPTY_PATH``)."""
        if fd < 0:
            raise ValueError(f"uring_fstat: fd must be >= 0, got {fd}")
        return await self._uring_statx("uring_fstat", fd, b"", _abi.AT_EMPTY_PATH, fd=True)

    async def _uring_statx(
        self, name: str, dir_fd: int | None, encoded: bytes, flags: int, *, fd: bool = False
    ) -> os.stat_result:
        out = bytearray(_abi.STATX_SIZE)
        holder = (ctypes.c_char * _abi.STATX_SIZE).from_buffer(out)
        op = self._uring_path_op(
            name,
            _abi.IORING_OP_STATX,
            dir_fd,
            encoded,
            ctypes.addressof(holder),
            _abi.STATX_BASIC_STATS | _abi.STATX_BTIME,
            flags,
            (encoded, holder),
        )
        if fd:
            op.path = None  # describe it as an fd operation
        del holder
        await self._uring_wait(op)
        result, _ = decode_statx(out)
        return result

    async def uring_unlink(self, path: StrOrBytesPath, *, dir_fd: int | None = None) -> None:
        """``os.unlink(path, dir_fd=dir_fd)`` through ``IORING_OP_UNLINKAT`` (5.11)."""
        encoded = _path_bytes("uring_unlink", path)
        await self._uring_wait(
            self._uring_path_op(
                "uring_unlink", _abi.IORING_OP_UNLINKAT, dir_fd, encoded, 0, 0, 0, encoded
            )
        )

    async def uring_rmdir(self, path: StrOrBytesPath, *, dir_fd: int | None = None) -> None:
        """``os.rmdir(path, dir_fd=dir_fd)`` through ``IORING_OP_UNLINKAT`` (5.11)."""
        encoded = _path_bytes("uring_rmdir", path)
        await self._uring_wait(
            self._uring_path_op(
                "uring_rmdir",
                _abi.IORING_OP_UNLINKAT,
                dir_fd,
                encoded,
                0,
                0,
                _abi.AT_REMOVEDIR,
                encoded,
            )
        )

    async def uring_mkdir(
        self, path: StrOrBytesPath, mode: int = 0o777, *, dir_fd: int | None = None
    ) -> None:
        """``os.mkdir(path, mode, dir_fd=dir_fd)`` through ``IORING_OP_MKDIRAT`` (5.15)."""
        encoded = _path_bytes("uring_mkdir", path)
        await self._uring_wait(
            self._uring_path_op(
                "uring_mkdir", _abi.IORING_OP_MKDIRAT, dir_fd, encoded, 0, mode, 0, encoded
            )
        )

    async def uring_rename(
        self,
        src: StrOrBytesPath,
        dst: StrOrBytesPath,
        *,
        src_dir_fd: int | None = None,
        dst_dir_fd: int | None = None,
    ) -> None:
        """``os.rename(src, dst, ...)`` through ``IORING_OP_RENAMEAT`` (5.11)."""
        old = _path_bytes("uring_rename", src)
        new = _path_bytes("uring_rename", dst)
        new_dir = _abi.AT_FDCWD if dst_dir_fd is None else dst_dir_fd
        op = self._uring_path_op(
            "uring_rename",
            _abi.IORING_OP_RENAMEAT,
            src_dir_fd,
            old,
            _bytes_address(new),
            new_dir & _U32,
            0,
            (old, new),
        )
        op.path = f"{os.fsdecode(old)} -> {os.fsdecode(new)}"
        await self._uring_wait(op)

    # ---- requesting (coroutine side) --------------------------------------------------
    def _uring_path_op(
        self,
        name: str,
        opcode: int,
        dir_fd: int | None,
        encoded: bytes,
        off: int,
        length: int,
        op_flags: int,
        keep: object,
    ) -> _Op:
        if opcode not in self._uring_supported:
            name_, since = _abi.OPCODES[opcode]
            raise unsupported_opcode_error(name, name_, since)
        fd = _abi.AT_FDCWD if dir_fd is None else dir_fd
        op = self._uring_push(
            name, (opcode, fd, off, _bytes_address(encoded), length, op_flags), keep, 0
        )
        op.path = os.fsdecode(encoded)
        return op

    def _uring_push(
        self, name: str, args: tuple[int, int, int, int, int, int], keep: object, offset: int
    ) -> _Op:
        """Write the op's SQE now if a slot is free (else queue it); the flush at the end
        of this iteration submits it. The caller awaits it with ``_uring_wait`` (which
        abandons the op if the caller is cancelled) and keeps no reference to *keep*: the
        op is its only holder, so a traceback kept by a cancelled caller cannot hold the
        memory after the op is done."""
        if not self._uring_accepting:
            raise UringClosedError(f"{name}: the io_uring event loop is closed")
        if offset < -1:
            raise ValueError(f"{name}: offset must be >= 0 (or -1), got {offset}")
        op = _Op(name, _Future(loop=self), keep, args)
        free = self._uring_free
        if not free or self._uring_queued:
            self._uring_queue.append(op)
            self._uring_queued += 1
            return op
        # == self._uring_write_sqe(op, free.pop()), inlined: the hot path
        slot = free.pop()
        seq = self._uring_seq = (self._uring_seq + 1) & _SEQ_MASK
        op.ud = ud = seq << 32 | slot
        op.slot = slot
        op.state = _IN_RING
        self._uring_slot_ops[slot] = op
        tail = self._uring_tail
        opcode, fd, off, addr, length, op_flags = args
        _PACK_SQE(
            self._uring_sqes,
            (tail & self._uring_sq_mask) << 6,
            opcode,
            0,  # flags
            0,  # ioprio
            fd,
            off,
            addr,
            length,
            op_flags,
            ud,
        )
        self._uring_tail = tail = tail + 1
        self._uring_written += 1
        batch = self._uring_submit_batch
        if batch and tail - self._uring_entered >= batch:
            self._uring_submit()  # the device starts on these while later callbacks run
        return op

    def _uring_write_sqe(self, op: _Op, slot: int) -> None:
        seq = self._uring_seq = (self._uring_seq + 1) & _SEQ_MASK
        ud = seq << 32 | slot
        op.slot = slot
        op.ud = ud
        op.state = _IN_RING
        self._uring_slot_ops[slot] = op
        tail = self._uring_tail
        opcode, fd, off, addr, length, op_flags = op.args
        _PACK_SQE(
            self._uring_sqes,
            (tail & self._uring_sq_mask) << 6,
            opcode,
            0,  # flags
            0,  # ioprio
            fd,
            off,
            addr,
            length,
            op_flags,
            ud,
        )
        self._uring_tail = tail = tail + 1
        self._uring_written += 1
        batch = self._uring_submit_batch
        if batch and tail - self._uring_entered >= batch:
            self._uring_flush()  # the device starts on these while later callbacks run

    async def _uring_wait(self, op: _Op) -> int:
        try:
            return await op.future
        except asyncio.CancelledError:
            self._uring_abandon(op)
            raise

    def _uring_abandon(self, op: _Op) -> None:
        """The caller of *op* was cancelled: drop it if queued, else ask the kernel to
        cancel it; its slot and memory stay lent until its own CQE arrives."""
        if op.state == _QUEUED:
            op.state = _DONE  # the queue drain skips it
            op.keep = None
            self._uring_queued -= 1
            self._uring_counters.cancelled += 1
        elif op.state == _IN_RING:
            op.state = _ABANDONED
            self._uring_counters.cancelled += 1
            self._uring_cancels.append(op.ud)
            op.future.cancel()  # (already, unless CancelledError was thrown in by hand)
        # _ABANDONED or _DONE: nothing left to do

    # ---- submitting (flush) -----------------------------------------------------------
    def _uring_drain_queue(self) -> None:
        """Give free slots to queued ops, oldest first."""
        queue, free = self._uring_queue, self._uring_free
        while queue and free:
            op = queue.popleft()
            if op.state != _QUEUED:
                continue  # abandoned while queued
            self._uring_queued -= 1
            if op.future.done():  # cancelled; its task has not run to abandon it yet
                op.state = _DONE
                op.keep = None
                self._uring_counters.cancelled += 1
                continue
            self._uring_write_sqe(op, free.pop())

    def _uring_submit(self) -> None:
        """The common case of ``_uring_flush``, cut short: no cancel to write and the
        kernel takes the whole batch, in one foreign call with no Python frame between
        (anything else, an error included, goes the long way round)."""
        tail = self._uring_tail
        n = tail - self._uring_entered
        self._uring_sq_u32[self._uring_sq_tail_index] = tail & _U32
        counters = self._uring_counters
        t0 = _perf_counter_ns()
        ret = self._uring_syscall(self._uring_nr_enter, self._uring_fd, n, 0, 0, 0, 0)
        elapsed = _perf_counter_ns() - t0
        counters.enter_calls += 1
        counters.enter_ns += elapsed
        if elapsed > counters.enter_max_ns:
            counters.enter_max_ns = elapsed
        if ret == n:
            self._uring_entered = tail
            counters.submitted += self._uring_written
            self._uring_written = 0
        else:
            self._uring_flush()  # a part was taken, or the call failed: retry, or raise

    def _uring_flush(self) -> None:
        """Write the pending cancel SQEs, publish the tail and hand everything to the
        kernel with one ``io_uring_enter`` (another round only when cancels did not fit
        in the SQ ring beside the ops they follow, or the kernel took part of a batch)."""
        counters = self._uring_counters
        while True:
            if self._uring_cancels:
                self._uring_write_cancels()
            tail = self._uring_tail
            to_submit = self._uring_enter(tail)
            # The kernel consumed SQEs up to here; the rest (after EAGAIN) go next time.
            self._uring_entered = tail - to_submit
            counters.submitted += self._uring_written
            self._uring_written = 0
            if to_submit or not self._uring_cancels:
                return

    def _uring_write_cancels(self) -> None:
        ring, counters, cancels = self._uring_ring, self._uring_counters, self._uring_cancels
        room = ring.sq_entries - ring.unconsumed(self._uring_tail)
        take = cancels[:room]
        del cancels[:room]
        tail = self._uring_tail
        for target in take:
            _PACK_SQE(
                ring.sqes,
                (tail & ring.sq_mask) << 6,
                _abi.IORING_OP_ASYNC_CANCEL,
                0,
                0,
                -1,
                0,
                target,  # addr: the user_data of the op to cancel
                0,
                0,
                _KIND_CANCEL | target,
            )
            tail += 1
        self._uring_tail = tail
        self._uring_cancels_in_flight += len(take)
        counters.cancel_requests += len(take)

    def _uring_enter(self, tail: int) -> int:
        """Publish *tail* and submit; the number of SQEs the kernel left unconsumed."""
        ring, counters = self._uring_ring, self._uring_counters
        ring.publish(tail)
        to_submit = ring.unconsumed(tail)
        while to_submit:
            t0 = time.perf_counter_ns()
            ret = ring.enter(to_submit)
            elapsed = time.perf_counter_ns() - t0
            counters.enter_calls += 1
            counters.enter_ns += elapsed
            if elapsed > counters.enter_max_ns:
                counters.enter_max_ns = elapsed
            if ret < 0:
                if ret in (-errno.EAGAIN, -errno.EBUSY) and self._uring_kernel_busy():
                    # Short of kernel memory, or the CQ is backed up: the SQEs stay in
                    # the ring, and the next flush (after the next reap) tries again.
                    break
                raise UringError(-ret, f"io_uring_enter failed: {os.strerror(-ret)}")
            if ret == 0:
                break
            to_submit -= ret
        return to_submit

    # ---- reaping ----------------------------------------------------------------------
    def _uring_reap(self, limit: int) -> int:
        """Resolve the ops of up to *limit* CQEs (0: all there are) without a system call;
        the number of CQEs taken."""
        ring = self._uring_ring
        cq_u32 = ring.cq_u32
        head = self._uring_cq_head
        available = (cq_u32[ring.cq_tail_index] - head) & _U32
        if not available:
            return 0
        if limit and available > limit:
            available = limit
        chunks = ring.cqe_chunks(head, available)
        slot_ops, free, counters = self._uring_slot_ops, self._uring_free, self._uring_counters
        release = free.append
        cancels = 0
        for chunk in chunks:
            for ud, res, _flags in chunk:
                if ud & _KIND_CANCEL:
                    cancels += 1
                    if res == 0:
                        counters.cancel_found += 1
                    continue
                slot = ud & _SLOT_MASK
                op = slot_ops[slot]
                slot_ops[slot] = None
                release(slot)
                assert op is not None, f"CQE for free slot {slot}"
                op.keep = None  # the kernel is done with the op's memory
                state = op.state
                op.state = _DONE
                future = op.future
                if res >= 0 and state == _IN_RING and not future.done():
                    future.set_result(res)  # the common case
                else:
                    self._uring_resolve_unusual(op, state, res)
        self._uring_cancels_in_flight -= cancels
        self._uring_cq_head = head = (head + available) & _U32
        cq_u32[ring.cq_head_index] = head
        counters.completed += available - cancels
        counters.reaps += 1
        if self._uring_queued and free:
            self._uring_drain_queue()
        return available

    def _uring_resolve_unusual(self, op: _Op, state: int, res: int) -> None:
        """Resolve an op whose CQE is an error, or whose caller is gone."""
        counters, future = self._uring_counters, op.future
        if future.done():  # its caller was cancelled: the outcome goes nowhere
            if state != _ABANDONED:
                counters.cancelled += 1  # (its coroutine has not run to abandon it yet)
            if res >= 0 and op.returns == _RETURNS_FD:
                os.close(res)  # an fd opened for nobody
                counters.orphans_closed += 1
        elif state == _ABANDONED and (
            res == -errno.ECANCELED or (res >= 0 and op.returns == _RETURNS_FD)
        ):
            # Abandoned by close(): withdrawn by ASYNC_CANCEL, or an fd nobody could
            # receive any more (the loop is closing).
            if res >= 0:
                os.close(res)
                counters.orphans_closed += 1
            counters.cancelled += 1
            future.cancel(msg="the io_uring event loop closed")
        elif res < 0:
            counters.failed += 1
            future.set_exception(operation_error(-res, op.request()))
        else:  # abandoned by close() but completed: the real outcome
            future.set_result(res)


def _path_bytes(name: str, path: StrOrBytesPath) -> bytes:
    encoded = os.fsencode(path)
    if b"\0" in encoded:
        raise ValueError(f"{name}: embedded null byte in path {path!r}")
    return encoded


def _bytes_address(data: bytes) -> int:
    """The address of a ``bytes`` object's buffer, which is NUL-terminated (the object
    must be kept alive by the caller for as long as the address is used)."""
    return ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p).value or 0


def new_event_loop(
    *,
    entries: int = DEFAULT_ENTRIES,
    harvest_batch: int = 0,
    submit_batch: int = DEFAULT_SUBMIT_BATCH,
    setup_flags: int | None = None,
) -> UringEventLoop:
    """A new :class:`UringEventLoop` (a ``loop_factory`` for ``asyncio.Runner``)."""
    return UringEventLoop(
        entries=entries,
        harvest_batch=harvest_batch,
        submit_batch=submit_batch,
        setup_flags=setup_flags,
    )
