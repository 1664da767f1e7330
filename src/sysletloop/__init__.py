"""sysletloop: an asyncio event loop that never stalls on a blocking call.

A blocking callable starts inline in the loop's thread. Only if it blocks does the loop
move to another thread, leaving the blocked thread to finish the call and post its
outcome to a completion ring (the syslet model of Linux's 2007 asynchronous system
calls, in user space). Calls that do not block complete inline, with no thread hop.

Entry points: :func:`run`, :func:`new_event_loop` (a ``loop_factory``),
:class:`EventLoopPolicy`, :func:`new_anyio_event_loop` (the same, with ``route_anyio``:
for uvicorn's ``--loop``), and :func:`call` for an explicit blocking call;
``loop.run_in_executor(None, ...)`` and ``asyncio.to_thread`` take the same path.
"""

from importlib.metadata import PackageNotFoundError, version

from . import to_thread
from ._call import call, call_eager
from ._loop import SysletEventLoop
from ._options import LoopOptions
from ._profile import CallableStats
from ._runner import EventLoopPolicy, new_anyio_event_loop, new_event_loop, run
from ._stats import SysletStats
from ._steps import BlockedSite

try:
    __version__ = version("sysletloop")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = [
    "BlockedSite",
    "CallableStats",
    "EventLoopPolicy",
    "LoopOptions",
    "SysletEventLoop",
    "SysletStats",
    "__version__",
    "call",
    "call_eager",
    "new_anyio_event_loop",
    "new_event_loop",
    "run",
    "to_thread",
]
