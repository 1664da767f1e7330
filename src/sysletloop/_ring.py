"""The completion ring: where a blocked call, once it returns, leaves its outcome.

Glossary
    poster   any thread that finished a blocked call; it appends the finished call.
    drainer  the thread that owns the loop; it takes finished calls out, in order.

Thread rules
    ``post`` may be called from any thread, at any time, even after the loop closed (the
    item is then never drained, which is what a closed loop means). ``drain`` and the
    ``sleeping`` flag's writes to ``True`` belong to the owner of the loop.

Waking only a sleeping loop (Dekker order, both sides publish then check):
    1. The owner sets ``sleeping = True``, then looks at the ring; if it is not empty it
       does not sleep (select with a zero timeout).
    2. A poster appends, then looks at ``sleeping``; if set, it clears it and calls
       ``wake`` (a write to the loop's self-pipe).
    Either the owner sees the item in step 1 or the poster sees the flag in step 2, so
    no completion is left waiting for an unrelated wake-up. A spurious wake-up is
    possible and harmless.

Assumed of the interpreter: ``deque.append``/``popleft`` are atomic and the attribute
stores and loads above are not reordered (true under the GIL; CPython's free-threaded
build keeps deque operations atomic with a per-object lock, and the flag would need an
atomic there). We rejected a lock around the ring: every post and every drain would
take it, and the deque already gives the one guarantee needed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["CompletionRing"]

T = TypeVar("T")


class CompletionRing(Generic[T]):
    """A multi-producer, single-consumer FIFO that wakes its consumer only if asleep."""

    __slots__ = ("_wake", "items", "sleeping")

    def __init__(self, wake: Callable[[], None]) -> None:
        # Public so that the owner can test it for emptiness without a Python-level
        # call (``if ring.items``) on its hot path; only ``post`` and ``drain`` change it.
        self.items: deque[T] = deque()
        self._wake = wake
        self.sleeping = False

    def post(self, item: T) -> None:
        """Append a finished item; wake the consumer if it is sleeping. Any thread."""
        self.items.append(item)
        if self.sleeping:
            self.sleeping = False
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
