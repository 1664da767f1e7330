"""benchmarks.home_cost: runs the three contenders for real and reports paired medians."""

from __future__ import annotations

import json

import pytest

from benchmarks import home_cost


def test_a_small_run_measures_every_contender(capsys: pytest.CaptureFixture[str]) -> None:
    assert home_cost.main(["--calls", "3", "--rounds", "2", "--sleep", "0.002", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["samples"]) == set(home_cost.CONTENDERS)
    assert all(len(v) == 2 for v in result["samples"].values())
    # Each call blocked for 2 ms: what is left above it is overhead, not negative.
    assert all(v > -500 for v in result["us_per_call_above_sleep"].values())
    assert result["home_over_away"] > 0


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(SystemExit):
        home_cost.main(["--calls", "0"])
