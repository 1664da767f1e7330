"""The schema of ``results.json`` (version 1), as a validator. Prose: ``SCHEMA.md``.

``validate(doc)`` returns a list of problems (empty: valid). It is hand-written rather
than a JSON Schema so that the harness needs no extra dependency, and it checks what the
report relies on: every contender has a status, every metric a median within its min-max,
every ratio comes with its per-repeat values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

SCHEMA_VERSION: Final = 1

CONTENDER_STATUS: Final = frozenset({"available", "missing"})
RESULT_STATUS: Final = frozenset({"ok", "missing", "not_applicable", "error"})
BETTER: Final = frozenset({"lower", "higher", "none"})
PROFILES: Final = frozenset({"smoke", "quick", "full"})

TOP_KEYS: Final = {
    "schema_version": int,
    "created": str,
    "argv": list,
    "settings": dict,
    "baseline": str,
    "machine": dict,
    "contenders": dict,
    "workloads": dict,
    "duration_s": (int, float),
}
MACHINE_KEYS: Final = ("cpu_count", "kernel", "python", "packages")
WORKLOAD_KEYS: Final = (
    "number",
    "title",
    "claim",
    "paper",
    "metrics",
    "params",
    "reference",
    "results",
)


def _num(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _check_spread(where: str, s: Any, problems: list[str]) -> None:
    if not isinstance(s, Mapping):
        problems.append(f"{where}: not an object")
        return
    for key in ("median", "min", "max", "n"):
        if not _num(s.get(key)):
            problems.append(f"{where}.{key}: missing or not a number")
            return
    if not s["min"] <= s["median"] <= s["max"]:
        problems.append(f"{where}: median {s['median']} outside [{s['min']}, {s['max']}]")
    values = s.get("values")
    if not isinstance(values, list):
        problems.append(f"{where}.values: missing")
    elif sum(v is not None for v in values) != s["n"]:
        problems.append(f"{where}: n={s['n']} but {len(values)} values")


def validate(doc: Any) -> list[str]:
    problems: list[str] = []
    if not isinstance(doc, Mapping):
        return ["document: not an object"]
    for key, kind in TOP_KEYS.items():
        if not isinstance(doc.get(key), kind):  # type: ignore[arg-type]
            problems.append(f"{key}: missing or wrong type")
    if problems:
        return problems
    if doc["schema_version"] != SCHEMA_VERSION:
        problems.append(f"schema_version: {doc['schema_version']} (expected {SCHEMA_VERSION})")
    if doc["settings"].get("profile") not in PROFILES:
        problems.append("settings.profile: not one of smoke, quick, full")
    for key in MACHINE_KEYS:
        if key not in doc["machine"]:
            problems.append(f"machine.{key}: missing")
    for name, c in doc["contenders"].items():
        if c.get("status") not in CONTENDER_STATUS:
            problems.append(f"contenders.{name}.status: {c.get('status')!r}")
        if c.get("status") == "missing" and not c.get("reason"):
            problems.append(f"contenders.{name}: missing without a reason")
    if doc["baseline"] not in doc["contenders"]:
        problems.append(f"baseline {doc['baseline']!r} is not a contender of the run")
    for wname, w in doc["workloads"].items():
        _check_workload(f"workloads.{wname}", w, set(doc["contenders"]), problems)
    return problems


def _check_workload(where: str, w: Any, contenders: set[str], problems: list[str]) -> None:
    if not isinstance(w, Mapping):
        problems.append(f"{where}: not an object")
        return
    for key in WORKLOAD_KEYS:
        if key not in w:
            problems.append(f"{where}.{key}: missing")
    if problems:
        return
    metrics = w["metrics"]
    for mname, m in metrics.items():
        if m.get("better") not in BETTER or not isinstance(m.get("unit"), str):
            problems.append(f"{where}.metrics.{mname}: needs unit and better")
    for case, ref in w["reference"].items():
        for rname, s in ref.items():
            _check_spread(f"{where}.reference.{case}.{rname}", s, problems)
    if set(w["results"]) != contenders:
        problems.append(
            f"{where}.results: contenders {sorted(w['results'])} != {sorted(contenders)}"
        )
    for cname, r in w["results"].items():
        at = f"{where}.results.{cname}"
        if r.get("status") not in RESULT_STATUS:
            problems.append(f"{at}.status: {r.get('status')!r}")
            continue
        if r["status"] in ("missing", "error") and not r.get("error"):
            problems.append(f"{at}: status {r['status']} without an error text")
        for case, cr in r.get("cases", {}).items():
            for key in ("metrics", "labels", "samples", "extra"):
                if not isinstance(cr.get(key), dict):
                    problems.append(f"{at}.cases.{case}.{key}: missing")
            for mname, s in cr.get("metrics", {}).items():
                if mname not in metrics:
                    problems.append(f"{at}.cases.{case}: undeclared metric {mname}")
                _check_spread(f"{at}.cases.{case}.metrics.{mname}", s, problems)
                if s.get("ratio") is not None:
                    _check_spread(f"{at}.cases.{case}.metrics.{mname}.ratio", s["ratio"], problems)
