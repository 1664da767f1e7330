from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks import cli, report
from benchmarks.contenders import BASELINE
from benchmarks.runner import Settings, run

from .fakes import FakeContender, FakeWorkload


@pytest.fixture
def doc(tmp_path: Path) -> dict[str, Any]:
    return run(
        Settings(profile="smoke", repeat=2, scratch=str(tmp_path)),
        contenders=[
            FakeContender(BASELINE, 2.0),
            FakeContender("fast", 1.0),
            FakeContender("absent", missing="absent is not installed"),
            FakeContender("flaky", 3.0, fail_on=2),
        ],
        workloads=[FakeWorkload()],
    )


def test_fmt() -> None:
    assert report.fmt(1234.5) == "1,234"
    assert report.fmt(123.4) == "123"
    assert report.fmt(12.34) == "12.3"
    assert report.fmt(1.234) == "1.23"
    assert report.fmt(0.1234) == "0.123"
    assert report.fmt(0.001234) == "0.0012"
    assert report.fmt(0) == "0"


def test_terminal_table_shows_every_contender_and_state(doc: dict[str, Any]) -> None:
    table = report.terminal_table(doc)
    lines = table.splitlines()
    row = {
        line.split()[0]: line
        for line in lines
        if line.split() and line.split()[0] in doc["contenders"]
    }
    assert set(row) == {BASELINE, "fast", "absent", "flaky"}
    assert "1.50 [1.00-2.00] x0.500" in row["fast"]
    assert "missing" in row["absent"]
    assert "error" in row["flaky"]
    assert "! flaky: RuntimeError: boom" in table
    assert "missing: absent: absent is not installed" in table
    assert "9. Fake (§0) [fake]" in table


def test_markdown_ties_figures_to_claims(doc: dict[str, Any]) -> None:
    md = report.markdown(doc, {"fake": ["plots/fake.png"]})
    assert "**Claim (§0):** the harness works." in md
    assert "![Fake](plots/fake.png)" in md
    assert "| fast | 1.50 [1.00-2.00] x0.500 |" in md
    assert "| absent | missing |" in md
    assert "unsupported" in md
    assert "`flaky`: RuntimeError: boom" in md
    assert "- a: ref_s" in md


def test_report_command_re_renders_saved_json(doc: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "saved"
    out.mkdir()
    (out / "results.json").write_text(json.dumps(doc))
    assert cli.main(["report", str(out), "--no-plots"]) == 0
    assert (out / "report.md").read_text().startswith("# sysletloop benchmarks")
    assert (out / "table.txt").read_text() == report.terminal_table(doc)


def test_report_command_rejects_invalid_json(tmp_path: Path) -> None:
    (tmp_path / "results.json").write_text("{}")
    assert cli.main(["report", str(tmp_path), "--no-plots"]) == 2
    assert cli.main(["report", str(tmp_path / "nowhere")]) == 2
