"""``benchmarks.kaio_fio`` and ``benchmarks.kaio_raw``: the KAIO-vs-fio comparison runs.

Functional checks only (tiny files, fractions of a second); the numbers themselves come
from ``python -m benchmarks.kaio_fio``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks import kaio_fio, kaio_raw
from tests.kaio._support import NO_LIBAIO, libaio_installed

BLOCK = 4096


@pytest.fixture
def data_file() -> Iterator[Path]:
    # /var/tmp, like the benchmark's default: tmp_path may be on tmpfs, which refuses
    # O_DIRECT before Linux 6.6
    directory = Path(tempfile.mkdtemp(prefix="sysletloop-kaio-compare-", dir="/var/tmp"))
    path = directory / "data.dat"
    try:
        try:
            kaio_fio.prepare_file(path, 64 * BLOCK)
        except OSError as exc:
            pytest.skip(f"O_DIRECT is not supported under /var/tmp here: {exc}")
        yield path
    finally:
        shutil.rmtree(directory)


@pytest.mark.parametrize("backend", ["libaio", "syscall"])
def test_raw_reader_counts_real_reads(data_file: Path, backend: str) -> None:
    if backend == "libaio" and not libaio_installed():
        pytest.skip(NO_LIBAIO)
    fds_before = len(os.listdir("/proc/self/fd"))
    result = kaio_raw.run_raw_random_reads(data_file, 4, 0.05, harvest=2, backend=backend)
    assert result["engine"] == "raw-ctypes"
    assert result["ios"] >= 4 and result["iops"] > 0
    assert len(os.listdir("/proc/self/fd")) == fds_before  # the file and context closed


def test_raw_reader_refuses_bad_arguments(data_file: Path) -> None:
    with pytest.raises(ValueError, match="depth and harvest must be >= 1"):
        kaio_raw.run_raw_random_reads(data_file, 0, 0.01)


def test_loop_reader_and_comparison_rows(data_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loop = kaio_fio.run_kaio_random_reads(data_file, 8, 0.05)
    assert loop["engine"] == "kaio-loop" and loop["ios"] >= 8
    assert loop["ios_per_submit"] >= 1
    # fio absent: its column reads "missing" and no ratio is invented
    monkeypatch.setattr(kaio_fio, "run_fio_random_reads", lambda *a, **k: None)
    rows = kaio_fio.compare(data_file, depths=(2,), seconds=0.05, repeats=2)
    assert [row["depth"] for row in rows] == [2]
    row = rows[0]
    assert row["fio_iops"] == "missing" and "ratio" not in row and "raw_ratio" not in row
    assert row["kaio_iops"]["n"] == row["raw_iops"]["n"] == 2
    assert row["kaio_iops"]["min"] <= row["kaio_iops"]["median"] <= row["kaio_iops"]["max"]
