"""sysletloop: an asyncio event loop that never stalls on a blocking call.

A blocking callable starts inline in the loop's thread. Only if it blocks does the loop
move to another thread, leaving the blocked thread to finish the call and post its
outcome to a completion ring (the syslet model of Linux's 2007 asynchronous system
calls, in user space).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sysletloop")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = ["__version__"]
