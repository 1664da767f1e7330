"""The file workloads on their storages (issue 20): ``random_reads`` on disk, page cache
and latencyfs, ``hashing``'s latencyfs case, and the ``metadata`` workload.

Tiny configurations (a fraction of a second each). Where latencyfs can be mounted, its
cases are checked against what the latency implies, as lower bounds on time (so upper
bounds on rates): a read that waits 2 ms cannot be done 500 times a second by one task,
however fast the machine. Where it cannot be had, and always with a mount that is made
to fail, the latencyfs cases must say "unsupported" with the reason while the other
cases are measured.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks import latencyfs
from benchmarks.contenders import Contender, all_contenders
from benchmarks.latencyfs import LatencyFsUnavailable
from benchmarks.runner import Settings, run
from benchmarks.schema import validate
from benchmarks.workloads import storage
from benchmarks.workloads.base import Cases
from benchmarks.workloads.hashing import Hashing
from benchmarks.workloads.metadata import Metadata
from benchmarks.workloads.random_reads import RandomReads, case_name

WHY_NOT = latencyfs.unavailable()
needs_fuse = pytest.mark.skipif(WHY_NOT is not None, reason=f"latencyfs: {WHY_NOT}")
LATENCY_S = 0.002  # the workloads' latency file system: 2 ms


def contender(name: str) -> Contender:
    found = next(c for c in all_contenders() if c.name == name)
    if not found.probe().available:
        pytest.skip(f"{name} missing: {found.probe().reason}")
    return found


@pytest.fixture
def scratch() -> Iterator[str]:
    # /var/tmp as the runner's default: O_DIRECT (the disk storage) is refused on tmpfs
    where = tempfile.mkdtemp(prefix="sysletloop-file-workloads-", dir="/var/tmp")
    yield where
    shutil.rmtree(where)


@pytest.fixture
def no_fuse(monkeypatch: pytest.MonkeyPatch) -> str:
    """latencyfs refused, as on a machine without /dev/fuse."""
    reason = "no /dev/fuse (the kernel has no FUSE, or the container hides it)"

    def refuse(*args: object, **kwargs: object) -> object:
        raise LatencyFsUnavailable(reason)

    monkeypatch.setattr(storage, "mounted", refuse)
    return reason


def _small_reads_params() -> dict[str, Any]:
    params = RandomReads().params("smoke")
    params["size"] = params["small_size"] = 1 << 20
    params["seconds"] = 0.05
    return params


# ---- random_reads ----------------------------------------------------------------------


def test_random_reads_runs_each_storage_at_depths_1_8_32() -> None:
    w = RandomReads()
    quick, full = w.params("quick"), w.params("full")
    assert full["storages"] == {
        "disk": [1, 8, 32, 64],
        "cache": [1, 8, 32],
        "latencyfs": [1, 8, 32],
    }
    assert full["depths"] == [1, 8, 32, 64]  # the disk's, as before storages
    # quick: the depths on the blocking storages, the deepest in the cache
    assert quick["storages"] == {"disk": [1, 8, 32], "cache": [32], "latencyfs": [1, 8, 32]}
    assert quick["latency"]["read_ms"] == 2.0
    assert "latencyfs-depth32" in quick["cases"] and "depth1" in quick["cases"]
    assert "cache-depth32" in quick["cases"]
    warm = w.warmup_params(quick)
    assert warm["cases"] == ["depth8", "cache-depth8", "latencyfs-depth8"]
    assert w.describe()["targets"] == {
        "contender": "sysletloop",
        "cases": {"latencyfs-depth32": {"iops_ratio": 2.0}},
    }


def _measure(w: Any, name: str, params: dict[str, Any], scratch: str) -> Cases:
    """prepare, measure, cleanup; and the workload's mount, if it made one, is gone."""
    state = w.prepare(scratch, params)
    lfs = getattr(state, "latencyfs", None)
    point = lfs.mount.path if lfs is not None and lfs.mount is not None else None
    try:
        return w.measure(contender(name), state, params)  # type: ignore[no-any-return]
    finally:
        w.cleanup(state)
        assert point is None or not latencyfs.is_mounted(point)


@needs_fuse
@pytest.mark.parametrize("name", ["sysletloop", "asyncio-to_thread", "aiofiles", "kaio"])
def test_random_reads_on_latencyfs_wait_the_latency(name: str, scratch: str) -> None:
    params = _small_reads_params()
    cases = _measure(RandomReads(), name, params, scratch)
    for storage_name, depths in params["storages"].items():
        for depth in depths:
            case = cases[case_name(storage_name, depth)]
            assert case.unsupported is None, case.unsupported
            assert case.metrics["iops"] > 0
    for depth in params["storages"]["latencyfs"]:
        case = cases[case_name("latencyfs", depth)]
        # each task's reads each took >= 2 ms: no more than depth / 2 ms a second
        assert case.metrics["iops"] <= depth / LATENCY_S
        assert case.metrics["p50_us"] >= LATENCY_S * 1e6
        served = case.extra["latencyfs"]
        assert served["reads"] >= 1 and served["replies"] >= served["reads"]


@needs_fuse
def test_fio_reads_latencyfs_but_not_the_page_cache(scratch: str) -> None:
    params = _small_reads_params()
    params["storages"] = {"cache": [1], "latencyfs": [8]}
    cases = _measure(RandomReads(), "fio", params, scratch)
    assert cases["cache-depth1"].unsupported == (
        "fio runs libaio with O_DIRECT, which bypasses the page cache"
    )
    on_lfs = cases["latencyfs-depth8"]
    assert on_lfs.metrics["iops"] <= 8 / LATENCY_S
    assert on_lfs.extra["latencyfs"]["reads"] >= 1


def test_random_reads_without_fuse_says_why_and_measures_the_rest(
    no_fuse: str, scratch: str
) -> None:
    params = _small_reads_params()
    cases = _measure(RandomReads(), "sysletloop", params, scratch)
    for depth in params["storages"]["latencyfs"]:
        case = cases[case_name("latencyfs", depth)]
        assert case.unsupported == f"latencyfs is missing here: {no_fuse}"
        assert case.metrics == {}
    assert cases["depth8"].metrics["iops"] > 0
    assert cases["cache-depth8"].metrics["iops"] > 0


def test_a_run_without_fuse_is_a_valid_document(no_fuse: str, tmp_path: Path) -> None:
    settings = Settings(
        profile="smoke",
        repeat=1,
        loops=["sysletloop"],
        workloads=["random_reads", "hashing", "metadata"],
        warmup=False,
    )
    doc = run(settings, str(tmp_path / "out"))
    assert validate(doc) == []
    for name in ("random_reads", "hashing", "metadata"):
        result = doc["workloads"][name]["results"]["sysletloop"]
        assert result["status"] == "ok", result["error"]
        lfs = [c for c in result["cases"] if c.startswith("latencyfs")]
        assert lfs, name
        for case in lfs:
            assert result["cases"][case]["unsupported"] == f"latencyfs is missing here: {no_fuse}"


# ---- hashing -----------------------------------------------------------------------------


def test_hashing_has_a_latencyfs_case() -> None:
    params = Hashing().params("quick")
    assert params["cases"] == ["cold", "warm", "latencyfs"]
    assert params["latency"]["read_ms"] == 2.0


@needs_fuse
@pytest.mark.parametrize("name", ["sysletloop", "asyncio-to_thread"])
def test_hashing_on_latencyfs_waits_for_every_piece(name: str, scratch: str) -> None:
    w = Hashing()
    params = {**w.params("smoke"), "cases": ["latencyfs"]}
    state = w.prepare(scratch, params)
    try:
        reference = w.reference(state, params)
        cases = w.measure(contender(name), state, params)
        w.complete(cases, reference)
    finally:
        w.cleanup(state)
    pieces = params["size"] // params["piece"]
    # the digest was checked by measure; every piece waited its 2 ms, read one at a time
    assert cases["latencyfs"].metrics["wall_s"] >= pieces * LATENCY_S
    assert reference["latencyfs"]["read_only_s"] >= pieces * LATENCY_S
    assert cases["latencyfs"].metrics["overlap"] > 0
    assert cases["latencyfs"].extra["latencyfs"]["reads"] >= pieces


# ---- metadata -----------------------------------------------------------------------------


def test_metadata_params_and_targets() -> None:
    w = Metadata()
    quick = w.params("quick")
    assert quick["tasks"] == 32 and quick["cases"] == ["cache", "latencyfs"]
    assert quick["latency"]["open_ms"] == quick["latency"]["stat_ms"] == 2.0
    assert w.describe()["targets"]["cases"] == {
        "cache": {"files_ratio": 3.0},
        "latencyfs": {"files_ratio": 3.0},
    }
    kaio = next(c for c in all_contenders() if c.name == "kaio")
    assert not w.applies_to(kaio)  # io_submit has no open or stat: n/a


@needs_fuse
@pytest.mark.parametrize("name", ["sysletloop", "asyncio-to_thread", "aiofiles"])
def test_metadata_on_latencyfs_pays_four_round_trips_a_file(name: str, scratch: str) -> None:
    w = Metadata()
    params = {**w.params("smoke"), "files": 16, "seconds": 0.05}
    cases = _measure(w, name, params, scratch)
    assert cases["cache"].metrics["files_per_s"] > 0
    lfs = cases["latencyfs"]
    # lookup, open, getattr and read each wait 2 ms: a file takes >= 8 ms
    assert lfs.metrics["p50_us"] >= 4 * LATENCY_S * 1e6
    assert lfs.metrics["files_per_s"] <= params["tasks"] / (4 * LATENCY_S)
    served = lfs.extra["latencyfs"]
    assert served["reads"] >= 1 and served["replies"] > served["reads"]  # opens, stats too


def test_metadata_without_fuse_says_why(no_fuse: str, scratch: str) -> None:
    w = Metadata()
    params = {**w.params("smoke"), "files": 8, "seconds": 0.02}
    cases = _measure(w, "sysletloop", params, scratch)
    assert cases["latencyfs"].unsupported == f"latencyfs is missing here: {no_fuse}"
    assert cases["cache"].metrics["files_per_s"] > 0
