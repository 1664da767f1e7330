"""Runs the workloads on the contenders and builds the results document.

Method (the same for every workload):

1. Probe every selected contender once: available, or missing with the reason. The
   baseline (stock asyncio with ``to_thread``) is always run, since every ratio needs it.
   A contender a workload has ``on_demand`` runs it only when ``--loops`` names it
   (else it is n/a there, as a contender the workload does not apply to).
2. ``prepare`` the workload (its files) once; then a warm-up run per contender, discarded
   (imports, thread creation, page cache, JIT-free but allocator-warm).
3. Repeats, interleaved: repeat 1 of A, B, C..., then repeat 2 of A, B, C... so that drift
   of a shared machine hits every contender alike (a workload with ``rotate`` turns the
   order too: A B C, then B C A, ...). Each repeat also re-measures the
   workload's loop-free reference numbers, if it has any.
4. Per case and metric: the per-repeat values, their median with min-max, and the ratio
   to the baseline taken *repeat by repeat* (both measured minutes apart at most), with
   its own median and min-max.

A workload whose ``missing()`` gives a reason (a package it needs is not installed) is
skipped: every contender it applies to is reported ``missing`` with that reason.
A contender that raises keeps the cases it already measured, gets its error recorded
(status ``error``), and is skipped for the rest of that workload; the run goes on.
``results.json`` is rewritten after every workload, so a run cut short keeps what it did.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from benchmarks.contenders import BASELINE, Contender, all_contenders
from benchmarks.machine import describe
from benchmarks.progress import Progress, Silent
from benchmarks.schema import SCHEMA_VERSION
from benchmarks.stats import paired_ratios, spread
from benchmarks.workloads import all_workloads
from benchmarks.workloads.base import CaseResult, Cases, Profile, Workload

ISOLATED_TIMEOUT = 600.0  # seconds for one isolated repeat (all its cases)


@dataclass
class Settings:
    profile: Profile = "quick"
    repeat: int = 3
    # --repeat was given: every workload runs exactly ``repeat`` (else a workload may ask
    # for more, ``Workload.repeats``)
    repeat_fixed: bool = False
    loops: Sequence[str] | None = None  # None: every contender
    workloads: Sequence[str] | None = None  # None: every workload
    scratch: str | None = None  # parent of the scratch directory (None: /var/tmp)
    warmup: bool = True
    argv: Sequence[str] = field(default_factory=list)


def left_out(settings: Settings, workloads: Sequence[Workload[Any]] | None = None) -> list[str]:
    """The workloads a run leaves out because its profile does not include them (run
    them by naming them with ``--workloads``)."""
    if settings.workloads is not None:
        return []
    all_w = list(workloads) if workloads is not None else all_workloads()
    return [w.name for w in all_w if settings.profile not in w.profiles]


def default_scratch_parent() -> str:
    """/var/tmp: on disk (O_DIRECT needs a real file system, tmpfs refuses it)."""
    return "/var/tmp" if os.path.isdir("/var/tmp") else tempfile.gettempdir()


def select(
    settings: Settings,
    contenders: Sequence[Contender] | None = None,
    workloads: Sequence[Workload[Any]] | None = None,
) -> tuple[list[Contender], list[Workload[Any]]]:
    """The contenders and workloads a run covers, in table order (names are checked).
    With no workloads named, those of the profile (``Workload.profiles``)."""
    all_c = list(contenders) if contenders is not None else all_contenders()
    all_w = list(workloads) if workloads is not None else all_workloads()
    chosen_c = all_c
    if settings.loops is not None:
        wanted = set(settings.loops)
        unknown = wanted - {c.name for c in all_c}
        if unknown:
            raise ValueError(f"unknown contender(s): {', '.join(sorted(unknown))}")
        wanted.add(BASELINE)
        chosen_c = [c for c in all_c if c.name in wanted]
    chosen_w = [w for w in all_w if settings.profile in w.profiles]
    if settings.workloads is not None:
        by_key = {w.name: w for w in all_w} | {str(w.number): w for w in all_w}
        unknown = set(settings.workloads) - set(by_key)
        if unknown:
            raise ValueError(f"unknown workload(s): {', '.join(sorted(unknown))}")
        keep = {by_key[k].name for k in settings.workloads}
        chosen_w = [w for w in all_w if w.name in keep]
    return chosen_c, chosen_w


def run(
    settings: Settings,
    out_dir: str | None = None,
    *,
    contenders: Sequence[Contender] | None = None,
    workloads: Sequence[Workload[Any]] | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run the benchmark; returns the results document (and saves it into ``out_dir``)."""
    progress = progress or Silent()
    chosen_c, chosen_w = select(settings, contenders, workloads)
    started = time.perf_counter()
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "argv": list(settings.argv),
        "settings": {
            "profile": settings.profile,
            "repeat": settings.repeat,
            "warmup": settings.warmup,
            "loops": [c.name for c in chosen_c],
            "workloads": [w.name for w in chosen_w],
            "left_out": left_out(settings, workloads),
        },
        "baseline": BASELINE,
        "machine": describe(),
        "contenders": {},
        "workloads": {},
        "duration_s": 0.0,
    }
    for c in chosen_c:
        found = c.probe()
        doc["contenders"][c.name] = {
            "status": "available" if found.available else "missing",
            "reason": found.reason,
            "version": found.version,
            "family": c.family,
            "description": c.description,
        }
    available = [c for c in chosen_c if c.probe().available]
    steps = sum(
        len([c for c in available if w.runs_on(c, settings.loops)])
        * (_repeats(w, settings) + settings.warmup)
        for w in chosen_w
    )
    parent = settings.scratch or default_scratch_parent()
    scratch = tempfile.mkdtemp(prefix="sysletloop-bench-", dir=parent)
    progress.start(steps)
    try:
        for w in chosen_w:
            doc["workloads"][w.name] = _run_workload(w, chosen_c, settings, scratch, progress)
            doc["duration_s"] = time.perf_counter() - started
            if out_dir is not None:
                save(doc, out_dir)
    finally:
        progress.close()
        shutil.rmtree(scratch, ignore_errors=True)
    doc["duration_s"] = time.perf_counter() - started
    if out_dir is not None:
        save(doc, out_dir)
    return doc


def _repeats(w: Workload[Any], settings: Settings) -> int:
    if settings.repeat_fixed:
        return settings.repeat
    return w.repeats(settings.profile, settings.repeat)


def save(doc: Mapping[str, Any], out_dir: str) -> str:
    """Write ``results.json`` atomically; returns its path."""
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "results.json")
    fd, tmp = tempfile.mkstemp(prefix=".results-", dir=out_dir)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1, allow_nan=False)
        f.write("\n")
    os.replace(tmp, path)
    return path


# ---------------------------------------------------------------------------------------
# One workload
# ---------------------------------------------------------------------------------------


@dataclass
class _Track:
    """What one contender produced in one workload, repeat by repeat."""

    status: str = "ok"
    error: str | None = None
    traceback: str | None = None
    repeats: list[Cases | None] = field(default_factory=list)


def _error_text(exc: BaseException) -> tuple[str, str]:
    """("Type: message" of the innermost first error, the full traceback).

    Task groups and nurseries wrap errors in exception groups; the table shows the leaf.
    """
    leaf = exc
    while isinstance(leaf, BaseExceptionGroup) and leaf.exceptions:
        leaf = leaf.exceptions[0]
    return f"{type(leaf).__name__}: {leaf}", "".join(traceback.format_exception(exc))


def _run_workload(
    w: Workload[Any],
    contenders: Sequence[Contender],
    settings: Settings,
    scratch: str,
    progress: Progress,
) -> dict[str, Any]:
    params = w.params(settings.profile)
    repeat = _repeats(w, settings)
    entry: dict[str, Any] = {
        **w.describe(),
        "params": params,
        "repeat": repeat,
        "reference": {},
        "results": {},
    }
    tracks: dict[str, _Track] = {}
    for c in contenders:
        if not c.probe().available:
            tracks[c.name] = _Track(status="missing", error=c.probe().reason)
        elif not w.runs_on(c, settings.loops):  # n/a, or on demand and not named
            tracks[c.name] = _Track(status="not_applicable")
        else:
            tracks[c.name] = _Track()
    active = [c for c in contenders if tracks[c.name].status == "ok"]
    references: list[dict[str, dict[str, float]]] = []
    why_not = w.missing()
    if why_not is not None:  # a package the workload needs is absent: skipped, with why
        for c in active:
            tracks[c.name] = _Track(status="missing", error=why_not)
            for _ in range(repeat + settings.warmup):
                progress.step(f"{w.name}: {c.name} (skipped)")
        progress.log(f"{w.name}: skipped: {why_not}")
        entry["results"] = {
            name: _render_track(w, t, tracks.get(BASELINE)) for name, t in tracks.items()
        }
        return entry
    try:
        state = w.prepare(scratch, params)
    except Exception as exc:  # no files, no workload: every contender shows the error
        message, tb = _error_text(exc)
        for c in active:
            tracks[c.name] = _Track(status="error", error=f"prepare: {message}", traceback=tb)
        progress.log(f"{w.name}: prepare failed: {message}")
        entry["results"] = {
            name: _render_track(w, t, tracks.get(BASELINE)) for name, t in tracks.items()
        }
        return entry
    try:
        if settings.warmup:
            warm = w.warmup_params(params)
            for c in active:
                _measure_into(w, c, state, warm, scratch, tracks[c.name], keep=False)
                progress.step(f"{w.name}: {c.name} (warm-up)")
        for rep in range(repeat):
            try:
                ref = w.reference(state, params)
            except Exception as exc:
                message, _ = _error_text(exc)
                progress.log(f"{w.name}: reference failed: {message}")
                ref = {}
            references.append(ref)
            turn = rep % len(active) if w.rotate and active else 0
            for c in active[turn:] + active[:turn]:
                track = tracks[c.name]
                if track.status != "ok":
                    track.repeats.append(None)
                else:
                    _measure_into(w, c, state, params, scratch, track, keep=True)
                    last = track.repeats[-1]
                    if last is not None:
                        w.complete(last, ref)
                progress.step(f"{w.name}: {c.name} ({rep + 1}/{repeat})")
                if track.status == "error":
                    progress.log(f"{w.name}: {c.name}: {track.error}")
    finally:
        w.cleanup(state)
    entry["reference"] = _render_reference(references)
    baseline = tracks.get(BASELINE)
    entry["results"] = {name: _render_track(w, t, baseline) for name, t in tracks.items()}
    return entry


def _measure_into(
    w: Workload[Any],
    c: Contender,
    state: Any,
    params: Mapping[str, Any],
    scratch: str,
    track: _Track,
    *,
    keep: bool,
) -> None:
    if track.status != "ok":
        return
    try:
        cases = _isolated(w, c, params, scratch) if w.isolated else w.measure(c, state, params)
    except Exception as exc:
        track.status = "error"
        track.error, track.traceback = _error_text(exc)
        if not keep:
            track.error = f"warm-up: {track.error}"
        if keep:
            track.repeats.append(None)
        return
    if keep:
        track.repeats.append(cases)


def _isolated(w: Workload[Any], c: Contender, params: Mapping[str, Any], scratch: str) -> Cases:
    """One repeat in a fresh interpreter (``python -m benchmarks.child``)."""
    request = json.dumps(
        {"workload": w.name, "contender": c.name, "params": params, "scratch": scratch}
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.child"],
        input=request,
        capture_output=True,
        text=True,
        timeout=ISOLATED_TIMEOUT,
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
        raise RuntimeError(f"isolated run failed: {tail[0]}")
    reply = json.loads(proc.stdout)
    if "error" in reply:
        raise RuntimeError(reply["error"])
    return {name: CaseResult(**case) for name, case in reply["cases"].items()}


# ---------------------------------------------------------------------------------------
# Aggregation
# ---------------------------------------------------------------------------------------


def _metric_values(repeats: Sequence[Cases | None], case: str, metric: str) -> list[float | None]:
    out: list[float | None] = []
    for cases in repeats:
        result = cases.get(case) if cases else None
        value = result.metrics.get(metric) if result else None
        out.append(None if value is None else float(value))
    return out


def _summary(values: Sequence[float | None]) -> dict[str, Any] | None:
    present = [v for v in values if v is not None]
    return spread(present).as_dict() if present else None


def _render_track(w: Workload[Any], track: _Track, baseline: _Track | None) -> dict[str, Any]:
    out: dict[str, Any] = {"status": track.status, "error": track.error, "cases": {}}
    if track.traceback:
        out["traceback"] = track.traceback
    measured = [r for r in track.repeats if r is not None]
    case_order: list[str] = []
    for cases in measured:
        case_order += [k for k in cases if k not in case_order]
    for case in case_order:
        metrics: dict[str, Any] = {}
        names: list[str] = []
        for cases in measured:
            if case in cases:
                names += [m for m in cases[case].metrics if m not in names]
        for name in names:
            values = _metric_values(track.repeats, case, name)
            summary = _summary(values)
            if summary is None:
                continue
            ratio = None
            if baseline is not None and baseline.repeats:
                base_values = _metric_values(baseline.repeats, case, name)
                ratios = paired_ratios(values, base_values)
                if ratios:
                    ratio = {"values": ratios, **spread(ratios).as_dict()}
            metrics[name] = {"values": values, **summary, "ratio": ratio}
        last = next(cases[case] for cases in reversed(measured) if case in cases)
        medians = {name: m["median"] for name, m in metrics.items()}
        out["cases"][case] = {
            "metrics": metrics,
            "labels": w.labels(case, medians),
            "unsupported": last.unsupported,
            "samples": last.samples,
            "extra": last.extra,
        }
    return out


def _render_reference(references: Sequence[Mapping[str, Mapping[str, float]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    cases: list[str] = []
    for ref in references:
        cases += [c for c in ref if c not in cases]
    for case in cases:
        names: list[str] = []
        for ref in references:
            names += [m for m in ref.get(case, {}) if m not in names]
        out[case] = {}
        for name in names:
            values: list[float | None] = [ref.get(case, {}).get(name) for ref in references]
            summary = _summary(values)
            if summary is not None:
                out[case][name] = {"values": values, **summary}
    return out
