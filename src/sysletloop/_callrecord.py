"""One blocking call submitted to a syslet loop, from submission to delivery.

A record is created by the loop's owner when a task submits a call, and lives in the
loop's pending queue until the owner runs it. It then either finishes inline (the owner
delivers its outcome at once) or is declared blocked, in which case the thread running it
(no longer the owner) stores the outcome in the record and posts the record to the
completion ring; the owner delivers it when it drains the ring.

Thread rules: ``outcome`` fields are written once, by the thread that ran the call, before
the record is posted; they are read by the owner after it drains the record (the post is
the hand-over). Everything else is written by the owner only.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._profile import Profile

__all__ = ["CallRecord"]


class CallRecord:
    __slots__ = (
        "args",
        "context",
        "duration",
        "exception",
        "fn",
        "future",
        "kwargs",
        "profile",
        "read",
        "result",
        "sent_away",
        "started",
    )

    def __init__(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any] | None,
        context: contextvars.Context,
        future: asyncio.Future[Any],
        profile: Profile,
        read: tuple[int, int, int, object] | None,
    ) -> None:
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.context = context
        self.future = future
        self.profile = profile
        self.read = read  # (fd, n, offset, buffer or None): a plain os.pread or preadv
        self.result: Any = None
        self.exception: BaseException | None = None
        self.sent_away = False  # run on a spare thread from the start (never inline)
        self.started = 0.0  # time.monotonic() when it started
        self.duration = 0.0  # seconds it ran, once it blocked or was sent away

    def run(self) -> None:
        """Run the call in its context; keep the outcome. Never raises."""
        try:
            if self.kwargs:
                self.result = self.context.run(self.fn, *self.args, **self.kwargs)
            else:
                self.result = self.context.run(self.fn, *self.args)
        except BaseException as exc:
            self.exception = exc

    def run_timed(self) -> None:
        """Run the call, measuring how long it takes. Never raises."""
        started = self.started = time.monotonic()
        self.run()
        self.duration = time.monotonic() - started

    def release(self) -> None:
        """Drop references once delivered (an exception's traceback points back here)."""
        self.fn = self.args = self.kwargs = self.result = self.exception = None  # type: ignore[assignment]
