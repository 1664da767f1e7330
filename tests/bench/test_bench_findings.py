"""The report flags results that go against its own claims, and says why (issue 14)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks import cli, findings, report


def spread(*values: float) -> dict[str, Any]:
    ordered = sorted(values)
    return {
        "values": list(values),
        "median": ordered[len(ordered) // 2],
        "min": ordered[0],
        "max": ordered[-1],
        "n": len(values),
    }


def result(iops: tuple[float, ...], p99: tuple[float, ...], **stats: int) -> dict[str, Any]:
    return {
        "status": "ok",
        "cases": {
            "depth32": {
                "metrics": {"iops": spread(*iops), "p99_us": spread(*p99)},
                "extra": {"loop_stats_end": dict(stats) or None},
            }
        },
    }


def doc(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A results document with one workload, random_reads at depth 32."""
    workload = {
        "number": 3,
        "title": "Random 4 KiB O_DIRECT reads",
        "paper": "§1.1",
        "claim": "reads in flight keep the device busy",
        "metrics": {
            "iops": {"unit": "IOPS", "better": "higher", "description": "reads per second"},
            "p99_us": {"unit": "us", "better": "lower", "description": "p99 latency"},
        },
        "headline": [["depth32", "iops"], ["depth32", "p99_us"]],
        "params": {"depths": [32]},
        "results": results,
    }
    return {
        "created": "2026-11-30T10:00:00+00:00",
        "argv": ["python -m benchmarks", "run", "--quick"],
        "settings": {"profile": "quick", "repeat": 3, "warmup": True},
        "baseline": "asyncio-to_thread",
        "machine": {},
        "contenders": {
            n: {"status": "available", "description": n, "version": "1"} for n in results
        },
        "workloads": {"random_reads": workload},
        "duration_s": 1.0,
    }


def test_a_peer_clearly_ahead_is_a_clear_finding_with_the_reason() -> None:
    d = doc(
        {
            "sysletloop": result((19_000, 19_600, 20_000), (4000, 4100, 4200)),
            "uvloop": result((27_000, 27_800, 28_500), (4000, 4100, 4200)),
        }
    )
    (f,) = findings.find(d)["random_reads"]
    assert (f.subject, f.peer, f.case, f.metric, f.clear) == (
        "sysletloop",
        "uvloop",
        "depth32",
        "iops",
        True,
    )
    md = report.markdown(d)
    assert "## Findings against the claims" in md
    assert "`uvloop` 27,800 [27,000-28,500]" in md
    assert "predicted_blocking" in md  # the reason, not just the numbers
    table = report.terminal_table(d)
    assert "random_reads depth32 iops: sysletloop 19,600, uvloop 27,800" in table


def test_overlapping_ranges_are_within_the_spread() -> None:
    d = doc(
        {
            "sysletloop": result((12_000, 15_000, 17_000), (4000, 4100, 4200)),
            "uvloop": result((13_000, 16_500, 18_000), (4000, 4100, 4200)),
        }
    )
    (f,) = findings.find(d)["random_reads"]
    assert not f.clear
    assert "within the spread" in report.terminal_table(d)


def test_ties_baselines_that_never_offload_and_the_device_are_not_findings() -> None:
    d = doc(
        {
            "sysletloop": result((20_000, 20_000, 20_000), (4000, 4000, 4000)),
            "uvloop": result((20_500, 20_500, 20_500), (3900, 3900, 3900)),  # within 5%
            "asyncio-inline": result((30_000, 30_000, 30_000), (100, 100, 100)),
            "fio": result((100_000, 100_000, 100_000), (500, 500, 500)),
        }
    )
    assert findings.find(d) == {}
    assert "None in this run." in report.markdown(d)


def test_a_lower_is_better_column_counts_the_other_way() -> None:
    d = doc(
        {
            "sysletloop": result((20_000,) * 3, (9000, 9500, 9900)),
            "rloop": result((20_000,) * 3, (3000, 3100, 3200)),
        }
    )
    (f,) = findings.find(d)["random_reads"]
    assert (f.peer, f.metric, f.better, f.clear) == ("rloop", "p99_us", "lower", True)


def test_eager_calls_never_redirected_are_named_from_the_counters() -> None:
    d = doc(
        {
            "sysletloop-eager": result((10_000,) * 3, (4000,) * 3, eager_blocked=40),
            "uvloop": result((20_000,) * 3, (4000,) * 3),
        }
    )
    why = findings.reason("random_reads", "sysletloop-eager", d["workloads"]["random_reads"])
    assert why is not None and "40 eager calls blocked and none was redirected" in why
    redirected = result((10_000,) * 3, (4000,) * 3, eager_blocked=40, eager_redirected=900)
    d["workloads"]["random_reads"]["results"]["sysletloop-eager"] = redirected
    why = findings.reason("random_reads", "sysletloop-eager", d["workloads"]["random_reads"])
    assert why is not None and "none was redirected" not in why


def test_an_unexplained_finding_says_so_with_the_command_to_rerun() -> None:
    assert findings.reason("hashing", "sysletloop") is None
    assert "./scripts/bench --workloads hashing --repeat 5" in findings.rerun_hint("hashing")


def test_the_closing_lines_name_every_file_written(tmp_path: Path) -> None:
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "echo.png").write_bytes(b"\x89PNG")
    text = cli.written(str(tmp_path))
    for name in ("report.md", "table.txt", "results.json", "plots/", "echo.png"):
        assert name in text
