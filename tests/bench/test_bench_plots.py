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


def test_each_figure_asks_its_question_and_keeps_legends_off_the_data(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    wanted = ["timer_lag", "cheap_calls", "blocked_cost", "kaio_submit"]
    doc = run(
        Settings(
            profile="smoke",
            repeat=1,
            warmup=False,
            scratch=str(tmp_path),
            loops=["asyncio-inline"],
            workloads=wanted,
        ),
        workloads=all_workloads(),
    )
    assert plots.available() is None
    for name in wanted:
        for stem, fig in plots.DRAWERS[name](doc["workloads"][name]):
            titles = [fig.get_suptitle(), *(ax.get_title() for ax in fig.axes)]
            assert any("?" in t for t in titles), f"{stem}: no question in {titles}"
            assert all(ax.get_legend() is None for ax in fig.axes), f"{stem}: legend on data"
            labels = [ax.get_xlabel() for ax in fig.axes if ax.get_xlabel()]
            assert labels and not any("_" in label for label in labels), f"{stem}: {labels}"
            plt.close(fig)


def _has_trio() -> bool:
    try:
        import trio  # noqa: F401
    except ImportError:
        return False
    return True
