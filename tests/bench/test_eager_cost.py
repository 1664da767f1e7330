"""``benchmarks.eager_cost``: it times real eager calls on a syslet loop."""

from __future__ import annotations

import pytest

import sysletloop
from benchmarks import eager_cost


def test_it_measures_one_value_per_repeat_and_prints_the_median(
    capsys: pytest.CaptureFixture[str],
) -> None:
    per_call = sysletloop.run(eager_cost.measure(200, 3))
    assert len(per_call) == 3 and all(isinstance(x, float) for x in per_call)
    assert eager_cost.main(["--n", "200", "--repeat", "3"]) == 0
    assert "call_eager over a direct call, median" in capsys.readouterr().out
