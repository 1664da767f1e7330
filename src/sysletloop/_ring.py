"""The completion ring: where a blocked call, once it returns, leaves its outcome.

Glossary
    poster   any thread that finished a blocked call; it appends the finished call.
    drainer  the thread that owns the loop; it takes finished calls out, in order.

Thread rules
    ``post`` may be called from any thread, at any time, even after the loop closed (the
    item is then never drained, which is what a closed loop means). ``drain`` belongs to
    the owner of the loop.

Waking the owner: every post calls ``wake`` (the loop writes a byte to its self-pipe,
as ``call_soon_threadsafe`` does), and the owner drains the ring when it reads the pipe
(``_process_self_data``). The byte is in the pipe before the post returns, so no
completion waits for an unrelated wake-up; several posts while the owner is busy are
read in one go. Rejected: waking only a sleeping owner (a flag set around the poll,
published and checked in Dekker order). It saved a ``send()`` per completion while the
owner was busy, but made every loop iteration test the ring, and the syslet machinery
may cost only when a call is submitted, not on every iteration of a loop that runs none.

Assumed of the interpreter: ``deque.append``/``popleft`` are atomic (true under the GIL;
CPython's free-threaded build keeps deque operations atomic with a per-object lock). We
rejected a lock around the ring: every post and every drain would take it, and the deque
already gives the one guarantee needed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["CompletionRing"]

T = TypeVar("T")


class CompletionRing(Generic[T]):
    """A multi-producer, single-consumer FIFO that wakes its consumer on every post."""

    __slots__ = ("_wake", "items")

    def __init__(self, wake: Callable[[], None]) -> None:
        self.items: deque[T] = deque()  # only post and drain change it
        self._wake = wake

    def post(self, item: T) -> None:
        """Append a finished item and wake the consumer. Any thread."""
        self.items.append(item)
        self._wake()

    def drain(self) -> list[T]:
        """Take out every item posted so far, oldest first. Owner only."""
        items = self.items
        out: list[T] = []
        while items:
            out.append(items.popleft())
        return out

    def __bool__(self) -> bool:
        return bool(self.items)

    def __len__(self) -> int:
        return len(self.items)
