"""Fixtures for the io_uring loop tests. Tests that need a ring carry ``needs_uring``
(``_support``): skipped, with the loop's own reason, where io_uring cannot be used."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ._support import direct_supported


@pytest.fixture
def direct_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory whose file system accepts O_DIRECT: tmp_path, else one under /var/tmp
    (tmpfs before Linux 6.6 refuses O_DIRECT)."""
    if direct_supported(tmp_path):
        yield tmp_path
        return
    with tempfile.TemporaryDirectory(prefix="sysletloop-uring-", dir="/var/tmp") as name:
        path = Path(name)
        if not direct_supported(path):
            pytest.skip(f"neither {tmp_path} nor /var/tmp supports O_DIRECT")
        yield path


@pytest.fixture
def fds() -> Iterator[list[int]]:
    """fds a test opened; closed afterwards, whatever happened."""
    opened: list[int] = []
    yield opened
    for fd in opened:
        with contextlib.suppress(OSError):  # the test may have closed it already
            os.close(fd)
