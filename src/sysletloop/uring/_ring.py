"""One io_uring instance: its fd, its three shared mappings, and the views the loop uses.

Glossary
    *SQ ring*   the submission queue: ``head`` (the kernel's), ``tail`` (ours), an index
                ``array`` and the SQE slots. We write SQEs and move ``tail``; the kernel
                reads them during ``io_uring_enter`` and moves ``head``.
    *CQ ring*   the completion queue: ``head`` (ours), ``tail`` (the kernel's) and the CQEs.
                The kernel writes a CQE and moves ``tail``; we read CQEs and move ``head``.
    *SQE index* where an SQE lives. The ``array`` is filled once with the identity
                (``array[i] = i``), so the SQE for tail value *t* is slot ``t & mask`` and
                publishing an SQE is writing its 64 bytes and bumping ``tail``.

This module knows nothing of operations or futures: it makes the ring, hands out the
``memoryview``\\s over the shared memory (the loop reads CQEs through them inline, with no
call per completion), submits, and takes everything down. It imports nothing from the loop.

Threads: one at a time. The ring is created, used and closed by the loop's thread only
(for a syslet loop's ``uring_reads``, by its owner, whichever thread that is: ownership
changes hands under the loop's ``own_lock``, which orders one owner's accesses before the
next owner's); nothing here is locked. io_uring's kernel side runs concurrently
(interrupt handlers and io-wq workers post CQEs at any moment), which is why the order of
memory accesses matters:

Memory ordering (what the C library does with barriers, and why we may skip them)
    1. SQ: our SQE stores must be visible before our ``tail`` store, and ``tail`` before
       the kernel reads it. The kernel reads ``tail`` only inside ``io_uring_enter`` (no
       SQPOLL here), and a system call orders everything before it. Python performs the
       stores in program order (each is a C ``memcpy`` in a separate function call).
    2. CQ: the kernel writes a CQE, then ``smp_store_release``\\s ``tail``. We load ``tail``
       and then the CQEs; x86-64 (TSO) never reorders loads with loads, so a CQE read after
       ``tail`` is complete. On aarch64 loads may be reordered: there every reap follows a
       system call (the selector's ``epoll_wait`` or the iteration's ``io_uring_enter``),
       whose lock/barrier pairs give the acquire the C library would use. Those are the
       only two architectures ``_syscall`` accepts.
    3. We store ``head`` after reading the CQEs it releases; a store is not reordered
       before earlier loads on either architecture's rules for dependent accesses here
       (the kernel only uses ``head`` to count free CQ space; at worst it sees it late).
    Under free-threaded Python nothing changes: the ring is still one thread's.

Rejected alternatives
    * ``ctypes`` structs over the mappings (``from_buffer``): an attribute read builds a
      Python int through a descriptor; a ``memoryview`` cast to ``"I"``/``"Q"``/``"i"`` is
      indexed in C. One ``struct.pack_into`` writes an SQE's 40 meaningful bytes at once.
    * SQPOLL (a kernel thread polling the SQ): no ``io_uring_enter`` per batch, but a
      spinning kernel thread per ring on a 2-core machine competes with the loop itself;
      and fio's io_uring engine, our yardstick, does not use it by default.
    * ``IORING_SETUP_NO_SQARRAY`` (6.6): saves the identity array's 4 bytes per SQE, not
      worth a second code path.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
from collections.abc import Iterator
from typing import Final

from sysletloop.uring import _abi
from sysletloop.uring._syscall import Syscalls

_U32: Final = 0xFFFFFFFF
_CQE_UNPACK: Final = _abi.CQE.iter_unpack
_MAP_FAILED: Final = ctypes.c_void_p(-1).value


class _Mman:
    """libc's ``mmap``/``munmap``, bound on first use (importing stays platform-neutral)."""

    def __init__(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self.mmap = libc["mmap"]
        self.mmap.restype = ctypes.c_void_p
        self.mmap.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_long,
        ]
        self.munmap = libc["munmap"]
        self.munmap.restype = ctypes.c_int
        self.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        self.prot = mmap.PROT_READ | mmap.PROT_WRITE
        self.flags = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)


_mman: _Mman | None = None  # set once, on the loop's thread (a second set is harmless)


def _libc_mman() -> _Mman:
    global _mman
    if _mman is None:
        _mman = _Mman()
    return _mman


class Ring:
    """A set-up io_uring with its mappings. Create with :meth:`open`."""

    def __init__(self, sys: Syscalls, fd: int, params: _abi.UringParams) -> None:
        self.sys = sys
        self.fd = fd
        self.sq_entries = int(params.sq_entries)
        self.cq_entries = int(params.cq_entries)
        self.features = int(params.features)
        self.flags = int(params.flags)
        sq_off, cq_off = params.sq_off, params.cq_off
        # Rounded up to 8 bytes so that the mappings can be viewed as u64 (the kernel's
        # rings are whole pages, so the rounding stays inside them).
        sq_size = (int(sq_off.array) + self.sq_entries * 4 + 7) & ~7
        cq_size = (int(cq_off.cqes) + self.cq_entries * _abi.CQE_SIZE + 7) & ~7
        self._maps: list[tuple[int, int]] = []  # (address, length) to munmap
        try:
            if self.features & _abi.IORING_FEAT_SINGLE_MMAP:
                sq_map = cq_map = self._map(max(sq_size, cq_size), _abi.IORING_OFF_SQ_RING)
            else:
                sq_map = self._map(sq_size, _abi.IORING_OFF_SQ_RING)
                cq_map = self._map(cq_size, _abi.IORING_OFF_CQ_RING)
            sqes = self._map(self.sq_entries * _abi.SQE_SIZE, _abi.IORING_OFF_SQES)
        except BaseException:
            self._unmap()
            raise
        # --- views (released in close(), before the unmapping they would block) ---
        self._sq_bytes, self._cq_bytes = sq_map, cq_map
        self.sqes = sqes  # SQE bytes: SQE_HEAD.pack_into(sqes, index * 64, ...)
        self.sq_u32 = sq_map.cast("I")
        self.sq_head_index = int(sq_off.head) // 4  # sq_u32[...]: written by the kernel
        self.sq_tail_index = int(sq_off.tail) // 4  # sq_u32[...]: written by us
        self.sq_flags_index = int(sq_off.flags) // 4
        self.sq_dropped_index = int(sq_off.dropped) // 4
        self.sq_mask = int(self.sq_u32[int(sq_off.ring_mask) // 4])
        self.cq_u32 = cq_map.cast("I")
        self.cq_u64 = cq_map.cast("Q")
        self.cq_i32 = cq_map.cast("i")
        self.cq_head_index = int(cq_off.head) // 4  # cq_u32[...]: written by us
        self.cq_tail_index = int(cq_off.tail) // 4  # cq_u32[...]: written by the kernel
        self.cq_mask = int(self.cq_u32[int(cq_off.ring_mask) // 4])
        self.cq_overflow_index = int(cq_off.overflow) // 4
        # CQE i: user_data at cq_u64[cqe_u64 + 2*i], res at cq_i32[cqe_i32 + 4*i + 2];
        # or the 16 bytes cqes[16*i : 16*i + 16] (the CQE array alone, as bytes)
        self.cqe_u64 = int(cq_off.cqes) // 8
        self.cqe_i32 = int(cq_off.cqes) // 4
        self.cqes = cq_map[int(cq_off.cqes) : int(cq_off.cqes) + self.cq_entries * 16]
        # cq_off.flags is 0 on kernels before 5.8 (no IORING_CQ_EVENTFD_DISABLED).
        self.cq_flags_index = int(cq_off.flags) // 4 if int(cq_off.flags) else -1
        array = int(sq_off.array) // 4
        for i in range(self.sq_entries):
            self.sq_u32[array + i] = i

    @classmethod
    def open(cls, sys: Syscalls, entries: int, flags: int) -> Ring:
        """``io_uring_setup(entries)`` with *flags*; raises ``OSError`` with the errno
        (the caller words it: it knows the sysctls to blame)."""
        params = _abi.UringParams()
        params.flags = flags
        fd = sys.setup(entries, ctypes.addressof(params))
        if fd < 0:
            raise OSError(-fd, os.strerror(-fd))
        try:
            return cls(sys, fd, params)
        except BaseException:
            os.close(fd)
            raise

    # ---- registration ------------------------------------------------------------------
    def register_eventfd(self, efd: int) -> None:
        """Have the kernel signal *efd* whenever it posts a CQE."""
        value = ctypes.c_int32(efd)
        ret = self.sys.register(self.fd, _abi.IORING_REGISTER_EVENTFD, ctypes.addressof(value), 1)
        if ret < 0:
            raise OSError(-ret, f"IORING_REGISTER_EVENTFD: {os.strerror(-ret)}")

    def probe(self) -> set[int] | int:
        """The opcodes this kernel supports, or ``-errno`` when it cannot say
        (``IORING_REGISTER_PROBE`` came in 5.6)."""
        size = _abi.PROBE_HEADER_SIZE + _abi.PROBE_OPS * _abi.PROBE_OP_SIZE
        buf = (ctypes.c_uint8 * size)()
        ret = self.sys.register(
            self.fd, _abi.IORING_REGISTER_PROBE, ctypes.addressof(buf), _abi.PROBE_OPS
        )
        if ret < 0:
            return ret
        raw = bytes(buf)
        ops_len = raw[1]
        supported: set[int] = set()
        for i in range(ops_len):
            base = _abi.PROBE_HEADER_SIZE + i * _abi.PROBE_OP_SIZE
            op, op_flags = raw[base], int.from_bytes(raw[base + 2 : base + 4], "little")
            if op_flags & _abi.IO_URING_OP_SUPPORTED:
                supported.add(op)
        return supported

    # ---- submission --------------------------------------------------------------------
    def unconsumed(self, tail: int) -> int:
        """SQEs published up to *tail* that the kernel has not consumed yet."""
        return (tail - self.sq_u32[self.sq_head_index]) & _U32

    def publish(self, tail: int) -> None:
        """Make the SQEs up to *tail* (mod 2**32) visible to the kernel."""
        self.sq_u32[self.sq_tail_index] = tail & _U32

    def enter(self, to_submit: int, min_complete: int = 0, flags: int = 0) -> int:
        """``io_uring_enter``, retried on ``EINTR``; ``>= 0`` or ``-errno``."""
        while True:
            ret = self.sys.enter(self.fd, to_submit, min_complete, flags)
            if ret != -errno.EINTR:
                return ret

    # ---- completion --------------------------------------------------------------------
    def cqe_chunks(self, head: int, count: int) -> list[Iterator[tuple[int, int, int]]]:
        """The *count* CQEs from *head* (the caller's, mod 2**32) as ``(user_data, res,
        flags)`` records, unpacked in C: one slice of the CQE array, or two when the range
        wraps around its end. Moving ``head`` past them is the caller's."""
        start = head & self.cq_mask
        first = min(count, self.cq_entries - start)
        cqes = self.cqes
        chunks = [_CQE_UNPACK(cqes[start << 4 : (start + first) << 4])]
        if first < count:
            chunks.append(_CQE_UNPACK(cqes[: (count - first) << 4]))
        return chunks

    # ---- teardown ----------------------------------------------------------------------
    def close(self) -> None:
        """Release the views, unmap, close the fd. Only once the kernel owns nothing of
        ours: the caller waits for every CQE first (``_loop``'s close)."""
        for name in (
            "sq_u32",
            "cq_u32",
            "cq_u64",
            "cq_i32",
            "cqes",
            "sqes",
            "_sq_bytes",
            "_cq_bytes",
        ):
            view = self.__dict__.pop(name, None)
            if view is not None:
                view.release()
        self._unmap()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def _map(self, length: int, offset: int) -> memoryview:
        """``mmap`` part of the ring (through libc: Python's ``mmap`` module would keep a
        ``dup`` of the ring's fd per mapping before 3.13's ``trackfd=False``) and a byte
        view of it. The view does not own the memory: ``close()`` releases every view
        before it unmaps."""
        mman = _libc_mman()
        address = mman.mmap(None, length, mman.prot, mman.flags, self.fd, offset)
        if address is None or address == _MAP_FAILED:
            err = ctypes.get_errno()
            raise OSError(
                err, f"mmap of the io_uring ring (offset {offset:#x}): {os.strerror(err)}"
            )
        self._maps.append((address, length))
        return memoryview((ctypes.c_ubyte * length).from_address(address)).cast("B")

    def _unmap(self) -> None:
        while self._maps:
            address, length = self._maps.pop()
            _libc_mman().munmap(address, length)
