"""``benchmarks.uring_fio``, the ``uring`` contender and ``fio-io_uring``: functional checks
only (tiny files, fractions of a second); the numbers come from
``python -m benchmarks.uring_fio``."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks import kaio_fio, uring_fio, uring_raw
from benchmarks.contenders import all_contenders
from benchmarks.contenders.base import Api
from benchmarks.contenders.fio import FioContender
from tests.uring._support import needs_uring

BLOCK = 4096


@pytest.fixture
def data_file() -> Iterator[Path]:
    # /var/tmp, like the benchmark's default: tmp_path may be on tmpfs, which refuses
    # O_DIRECT before Linux 6.6
    directory = Path(tempfile.mkdtemp(prefix="sysletloop-uring-compare-", dir="/var/tmp"))
    path = directory / "data.dat"
    try:
        try:
            kaio_fio.prepare_file(path, 64 * BLOCK)
        except OSError as exc:
            pytest.skip(f"O_DIRECT is not supported under /var/tmp here: {exc}")
        yield path
    finally:
        shutil.rmtree(directory)


@needs_uring
def test_loop_reader_counts_real_reads(data_file: Path) -> None:
    fds_before = len(os.listdir("/proc/self/fd"))
    result = uring_fio.run_uring_random_reads(data_file, 8, 0.05)
    assert result["engine"] == "uring-loop" and result["ios"] >= 8
    assert result["ios_per_enter"] >= 1 and result["enter_calls"] >= 1
    assert len(os.listdir("/proc/self/fd")) == fds_before  # the file and the ring closed


@needs_uring
def test_raw_reader_counts_real_reads_and_refuses_depth_0(data_file: Path) -> None:
    fds_before = len(os.listdir("/proc/self/fd"))
    result = uring_raw.run_raw_random_reads(data_file, 4, 0.05)
    assert result["engine"] == "uring-raw" and result["ios"] >= 4
    assert result["enter_calls"] >= 1 and result["iops"] > 0
    assert len(os.listdir("/proc/self/fd")) == fds_before
    with pytest.raises(ValueError, match="depth must be >= 1"):
        uring_raw.run_raw_random_reads(data_file, 0, 0.01)


@needs_uring
def test_comparison_rows_pair_rounds_and_invent_no_ratio(
    data_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real = uring_fio.run_uring_random_reads

    def counted(*args: Any, **kwargs: Any) -> dict[str, Any]:
        calls.append("uring")
        return real(*args, **kwargs)

    def no_fio(*args: Any, engine: str = "libaio", **kwargs: Any) -> None:
        calls.append(f"fio-{engine}")

    def raw(*args: Any, **kwargs: Any) -> dict[str, Any]:
        calls.append("raw")
        return real_raw(*args, **kwargs)

    real_raw = uring_raw.run_raw_random_reads
    monkeypatch.setattr(uring_fio, "run_uring_random_reads", counted)
    monkeypatch.setattr(uring_fio, "run_raw_random_reads", raw)
    monkeypatch.setattr(uring_fio, "run_fio_random_reads", no_fio)
    rows = uring_fio.compare(data_file, depths=(2,), seconds=0.05, rounds=2)
    # Round 1 in the listed order, round 2 reversed: each engine runs once per round.
    order = ["uring", "raw", "fio-io_uring", "fio-libaio"]
    assert calls == order + order[::-1]
    (row,) = rows
    assert row["depth"] == 2 and row["uring"]["n"] == row["uring-raw"]["n"] == 2
    assert row["fio-io_uring"] == row["fio-libaio"] == "missing"
    assert "ratio" not in row  # no fio, no ratio


@needs_uring
def test_ratio_is_the_median_of_the_rounds(
    data_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop_iops = iter([100.0, 300.0, 200.0])
    fio_iops = iter([100.0, 100.0, 100.0])
    monkeypatch.setattr(
        uring_fio, "run_uring_random_reads", lambda *a, **k: {"iops": next(loop_iops)}
    )
    monkeypatch.setattr(uring_fio, "run_fio_random_reads", lambda *a, **k: {"iops": next(fio_iops)})
    (row,) = uring_fio.compare(data_file, depths=(32,), rounds=3, engines=("uring", "fio-io_uring"))
    assert row["ratio"] == {"median": 2.0, "min": 1.0, "max": 3.0, "n": 3}


def test_fio_rows_and_their_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    names = [c.name for c in all_contenders()]
    assert names.index("fio-io_uring") == names.index("fio") + 1
    assert names.index("uring") == names.index("kaio") + 1
    seen: list[list[str]] = []

    class Done:
        returncode = 1
        stderr = "no device"
        stdout = ""

    def fake_run(cmd: list[str], **kwargs: Any) -> Done:
        seen.append(cmd)
        return Done()

    monkeypatch.setattr("shutil.which", lambda exe: "/usr/bin/fio")
    monkeypatch.setattr("subprocess.run", fake_run)
    for engine in ("libaio", "io_uring"):
        with pytest.raises(RuntimeError, match="fio failed"):
            FioContender(engine).random_reads()("/nowhere", 4, 1.0)
    assert [c for c in seen[0] if c.startswith("--ioengine")] == ["--ioengine=libaio"]
    assert [c for c in seen[1] if c.startswith("--ioengine")] == ["--ioengine=io_uring"]


def test_fio_without_the_engine_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    if shutil.which("fio") is None:
        pytest.skip("fio is not installed")
    found = FioContender("no_such_engine").probe()
    assert not found.available and found.reason == "this fio has no no_such_engine engine"


@needs_uring
def test_the_uring_contender_does_files_and_fs_ops(tmp_path: Path) -> None:
    contender = next(c for c in all_contenders() if c.name == "uring")
    assert contender.probe().available
    path = tmp_path / "f.dat"
    path.write_bytes(b"0123456789")

    async def main(api: Api) -> tuple[bytes, int, dict[str, Any] | None]:
        f = await api.open_file(str(path), write=True)
        try:
            assert await f.pwrite(b"ab", 0) == 2
            await f.fsync()
            data = await f.pread(4, 0)
            buf = bytearray(3)
            n = await f.preadinto(buf, 7)
            assert bytes(buf) == b"789"
        finally:
            await f.aclose()
        small = await getattr(api, "read_small")(str(path))  # noqa: B009 (main's Api has it)
        assert small == b"ab23456789"
        await api.fs("open_close", str(path))
        await api.fs("stat", str(path))
        await api.fs("unlink", str(path))
        return data, n, api.stats()

    data, n, stats = contender.run(main)
    assert (data, n) == (b"ab23", 3)
    assert not path.exists()
    assert stats is not None and stats["submitted"] == stats["completed"] >= 13
