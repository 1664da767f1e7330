"""Memory for KAIO: aligned buffers, and pinning a caller's buffer for the kernel.

The rule this module exists for: *an iocb's buffer must not be freed or moved while the
kernel may still read or write it*, which is from ``io_submit`` until its ``io_event`` is
harvested, however long after the awaiting task was cancelled or the loop began closing.

How it is kept: :func:`pin_writable` and :func:`pin_readable` return a :class:`Pinned`
whose ``keepalive`` holds a buffer export (a ``ctypes`` array made with ``from_buffer``) or
a reference to an immutable ``bytes``. While an export exists CPython refuses to resize a
``bytearray``, close an ``mmap`` or release a ``memoryview`` (``BufferError``), and the
memory cannot be freed. The loop keeps each ``Pinned`` in its in-flight table until the
operation's event arrives, and drops it only then. All of this runs on the loop's thread;
the only other party touching the memory is the kernel.

Rejected: ``mmap`` per aligned buffer (a system call and a page per allocation, where an
over-allocated ``bytearray`` costs one ``malloc``); ``posix_memalign`` through ctypes (the
memory would need a manual ``free``, and a Python object that owns it, which is what a
``bytearray`` already is); silently copying unaligned data for O_DIRECT (it would hide a
copy per write; callers get a :class:`~sysletloop.kaio.KaioAlignmentError` instead).
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer, WriteableBuffer

DEFAULT_ALIGNMENT = 4096  # bytes: the page size, and the largest logical block size in use


def aligned_buffer(size: int, alignment: int = DEFAULT_ALIGNMENT) -> memoryview:
    """A zeroed, writable ``memoryview`` of *size* bytes whose address is a multiple of
    *alignment* (a power of two), suitable for O_DIRECT reads and writes.

    The memory is an over-allocated ``bytearray``; the view pins it (the array cannot be
    resized while the view lives) and the KAIO loop pins the view while I/O is in flight.
    """
    if size < 0:
        raise ValueError(f"aligned_buffer size must be >= 0, got {size}")
    if alignment < 1 or alignment & (alignment - 1):
        raise ValueError(f"aligned_buffer alignment must be a power of two, got {alignment}")
    raw = bytearray(size + alignment)
    start = (-_address_of(raw)) % alignment
    return memoryview(raw)[start : start + size]


def buffer_address(buffer: WriteableBuffer) -> int:
    """The address of a writable buffer's first byte (for checks; pins nothing)."""
    return _address_of(buffer)


def _address_of(buffer: WriteableBuffer) -> int:
    view = memoryview(buffer)
    if view.nbytes == 0:
        view = memoryview(bytearray(1))  # zero-length exports have no meaningful address
    holder = (ctypes.c_char * view.nbytes).from_buffer(view.cast("B"))
    return ctypes.addressof(holder)


@dataclass(slots=True)
class Pinned:
    """A buffer held in place for the kernel: its address, its size and what pins it."""

    address: int
    nbytes: int
    keepalive: object  # drop only after the operation's event has been harvested


def pin_writable(buffer: WriteableBuffer) -> Pinned:
    """Pin a writable, C-contiguous buffer (``bytearray``, ``aligned_buffer``, ``mmap``)."""
    view = memoryview(buffer)
    if view.readonly:
        raise TypeError(f"a writable buffer is required, got read-only {type(buffer).__name__}")
    if not view.c_contiguous:
        raise ValueError("the buffer must be C-contiguous")
    flat = view.cast("B") if view.ndim != 1 or view.format != "B" else view
    nbytes = flat.nbytes
    # One c_char at the start holds the export of the whole buffer (from_buffer keeps
    # the view), without building an array type per size; empty buffers need the array.
    holder = (ctypes.c_char if nbytes else ctypes.c_char * 0).from_buffer(flat)
    return Pinned(ctypes.addressof(holder), nbytes, holder)


def pin_readable(data: ReadableBuffer) -> Pinned:
    """Pin data to be written. ``bytes`` and writable buffers are used in place; any other
    read-only buffer (a read-only ``memoryview`` or ``mmap``) is copied once, into an
    aligned buffer, because ``ctypes`` can take the address of neither."""
    if type(data) is bytes:
        pointer = ctypes.c_char_p(data)  # points into the bytes object itself, no copy
        return Pinned(ctypes.cast(pointer, ctypes.c_void_p).value or 0, len(data), data)
    view = memoryview(data)
    if view.readonly:
        if not view.c_contiguous:
            raise ValueError("the data must be C-contiguous")
        copy = aligned_buffer(view.nbytes)
        copy[:] = view.cast("B") if view.ndim != 1 or view.format != "B" else view
        return pin_writable(copy)
    return pin_writable(view)
