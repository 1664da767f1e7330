"""A description of the machine a run was measured on, stored in every result file.

Numbers from a benchmark mean little without the machine: CPU count (and the CPUs this
process may use), CPU model, kernel, Python build, and the versions of every package a
contender depends on. Nothing here is measured; it is read from the system.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from importlib import metadata
from typing import Any

# The distributions whose versions decide the numbers (a contender's own, or the harness's).
PACKAGES = (
    "sysletloop", "uvloop", "rloop", "trio", "anyio", "aiofiles", "rich", "matplotlib",
    "fastapi", "starlette", "uvicorn", "httptools", "gevent",
)  # fmt: skip


def package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _mem_total_kib() -> int | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def fio_version() -> str | None:
    """``fio --version`` if fio is on PATH, else None."""
    return _tool_version("fio", "--version")


def wrk_version() -> str | None:
    """wrk's version line (``wrk -v``, which exits 1) if wrk is on PATH, else None."""
    line = _tool_version("wrk", "-v")
    return line.split(" Copyright")[0] if line else None


def _tool_version(tool: str, flag: str) -> str | None:
    """The first line ``tool flag`` prints (stdout, else stderr), if ``tool`` is on PATH."""
    exe = shutil.which(tool)
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, flag], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = (out.stdout.strip() or out.stderr.strip()).splitlines()
    return lines[0] if lines else None


def _gil_enabled() -> bool:
    probe = getattr(sys, "_is_gil_enabled", None)
    return True if probe is None else bool(probe())


def describe() -> dict[str, Any]:
    """The machine, as a JSON-ready dict (see SCHEMA.md, ``machine``)."""
    uname = platform.uname()
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 0
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "cpu_model": _cpu_model(),
        "mem_total_kib": _mem_total_kib(),
        "system": uname.system,
        "kernel": uname.release,
        "arch": uname.machine,
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "python_build": " ".join(platform.python_build()),
        "gil_enabled": _gil_enabled(),
        "executable": sys.executable,
        "packages": {name: package_version(name) for name in PACKAGES},
        "fio": fio_version(),
        "wrk": wrk_version(),
    }
