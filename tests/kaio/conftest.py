"""Fixtures for the KAIO loop tests: backends, O_DIRECT-capable directories, fd cleanup."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ._support import NO_LIBAIO, direct_supported, libaio_installed

BACKENDS = [
    pytest.param("libaio", marks=pytest.mark.skipif(not libaio_installed(), reason=NO_LIBAIO)),
    "syscall",
]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Each test taking this runs once per binding; the syscall one always runs."""
    name: str = request.param
    return name


@pytest.fixture
def direct_dir(tmp_path: Path) -> Path:
    """A directory whose file system accepts O_DIRECT (tmpfs before Linux 6.6 does not)."""
    if not direct_supported(tmp_path):
        pytest.skip(f"the file system holding {tmp_path} does not support O_DIRECT")
    return tmp_path


@pytest.fixture
def fds() -> Iterator[list[int]]:
    """fds a test opened; closed afterwards, whatever happened."""
    opened: list[int] = []
    yield opened
    for fd in opened:
        with contextlib.suppress(OSError):  # the test may have closed it already
            os.close(fd)
