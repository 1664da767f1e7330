from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import plots
from benchmarks.runner import Settings, run
from benchmarks.workloads import all_workloads


def test_plots_from_a_smoke_run(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    wanted = ["timer_lag", "cheap_calls", "blocked_cost"]
    doc = run(
        Settings(
            profile="smoke",
            repeat=1,
            warmup=False,
            scratch=str(tmp_path),
            loops=["asyncio-inline", "trio"] if _has_trio() else ["asyncio-inline"],
            workloads=wanted,
        ),
        workloads=all_workloads(),
    )
    figures = plots.render(doc, str(tmp_path))
    assert set(figures) == set(wanted)
    for paths in figures.values():
        for rel in paths:
            data = (tmp_path / rel).read_bytes()
            assert data.startswith(b"\x89PNG") and len(data) > 1000


def _has_trio() -> bool:
    try:
        import trio  # noqa: F401
    except ImportError:
        return False
    return True
