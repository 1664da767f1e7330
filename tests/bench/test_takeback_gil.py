"""``benchmarks.takeback_gil``: real blocks beside a computing task, on each loop."""

from __future__ import annotations

import sys

import pytest

from benchmarks import takeback_gil


@pytest.mark.parametrize("case", ["stock", "to_thread"])
def test_a_wrapped_block_resumes_after_its_sleep(case: str) -> None:
    delays, claimed = takeback_gil.run_case(case, 0.003, 0.0005, 2)
    assert claimed == 0  # wrapped: nothing for the loop to claim
    # The task resumed after the sleep had ended, never before: a delay is not negative
    # (less the sleep's own overshoot, which is measured apart).
    assert len(delays) == 2 and all(d >= 0 for d in delays)


@pytest.mark.skipif(sys.version_info < (3, 12), reason="migrate_steps needs 3.12+")
def test_an_unwrapped_block_is_claimed_and_resumes_after_its_sleep() -> None:
    delays, claimed = takeback_gil.run_case("step", 0.05, 0.0005, 2)
    assert len(delays) == 2 and all(d >= 0 for d in delays)
    assert claimed == 2  # each block moved the loop: the computer went on meanwhile


def test_it_prints_a_row_per_case_and_refuses_bad_input(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert takeback_gil.main(["--repeat", "2", "--sleep-ms", "2", "--cases", "stock"]) == 0
    out = capsys.readouterr().out
    assert "switch interval" in out and out.splitlines()[-1].startswith("stock")
    with pytest.raises(SystemExit):
        takeback_gil.main(["--repeat", "0"])
