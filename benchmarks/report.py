"""Rendering a results document: the terminal table and ``report.md``.

Both read only the saved JSON (``python -m benchmarks report DIR`` re-renders a past run).
A cell is ``median [min-max]`` over the repeats, then the ratio to the baseline taken
within the run (``x0.25``: a quarter of stock asyncio's value). Contenders that are
missing, not applicable, unsupported or failed say so in the cell, never vanish.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from benchmarks import findings as findings_mod
from benchmarks.findings import Finding

STATUS_TEXT = {"missing": "missing", "not_applicable": "n/a", "error": "error"}
# workloads under a load generator
SERVED = frozenset({"fastapi", "net_throughput", "served_unwrapped"})


def fmt(x: float) -> str:
    """3 significant digits, no exponent for the usual range."""
    if x == 0 or not math.isfinite(x):
        return str(x if math.isfinite(x) else "nan")
    mag = abs(x)
    if mag >= 1000:
        return f"{x:,.0f}"
    if mag >= 100:
        return f"{x:.0f}"
    if mag >= 10:
        return f"{x:.1f}"
    if mag >= 1:
        return f"{x:.2f}"
    if mag >= 0.01:
        return f"{x:.3f}"
    return f"{x:.2g}"


def cell(result: Mapping[str, Any], case: str, metric: str, *, ratio: bool = True) -> str:
    status = result.get("status", "ok")
    c = result.get("cases", {}).get(case)
    if c is None:
        if status in STATUS_TEXT:
            return STATUS_TEXT[status]
        return "n/a"
    if c.get("unsupported"):
        return "unsupported"
    m = c.get("metrics", {}).get(metric)
    if m is None:
        return "n/a"
    text = f"{fmt(m['median'])} [{fmt(m['min'])}-{fmt(m['max'])}]"
    if ratio and m.get("ratio"):
        text += f" x{fmt(m['ratio']['median'])}"
    if status == "error":
        text += " (then error)"
    return text


def _grid(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    out = [line.rstrip(), "  ".join("-" * w for w in widths)]
    out += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return out


def _headline(w: Mapping[str, Any]) -> list[tuple[str, str]]:
    pairs = [(c, m) for c, m in w.get("headline", [])]
    if pairs:
        return pairs
    first: Mapping[str, Any] = next(iter(w["results"].values()), {})
    cases = list(first.get("cases", {}))
    return [(cases[0], m) for m in w["metrics"]][:3] if cases else []


def _metric_label(w: Mapping[str, Any], case: str, metric: str) -> str:
    unit = w["metrics"].get(metric, {}).get("unit", "")
    return f"{case} {metric} ({unit})" if unit else f"{case} {metric}"


def terminal_table(doc: Mapping[str, Any]) -> str:
    """Every workload's headline numbers, one row per contender."""
    lines = [
        f"sysletloop benchmarks: profile {doc['settings']['profile']}, "
        f"{doc['settings']['repeat']} repeats, {doc['duration_s']:.0f} s; "
        f"ratios (xN) against {doc['baseline']} within this run",
        _machine_line(doc["machine"]),
        "cells: median [min-max] over repeats, then xratio to the baseline",
        "",
    ]
    for name, w in doc["workloads"].items():
        lines.append(f"{w['number']}. {w['title']} ({w['paper']}) [{name}]")
        pairs = _headline(w)
        if name == "ops":
            lines += _ops_grid(w)
        else:
            header = ["contender", *(_metric_label(w, c, m) for c, m in pairs)]
            rows = [
                [cname, *(cell(r, c, m) for c, m in pairs)] for cname, r in w["results"].items()
            ]
            lines += _grid(header, rows)
        for cname, r in w["results"].items():
            if r["status"] == "error":
                lines.append(f"  ! {cname}: {r['error']}")
        lines += [f"  {line}" for line in _skipped(doc, w)]
        lines += [f"  {line}" for line in _targets_terminal(name, w)]
        lines.append("")
    missing = [(n, c["reason"]) for n, c in doc["contenders"].items() if c["status"] == "missing"]
    for n, reason in missing:
        lines.append(f"missing: {n}: {reason}")
    if left := _left_out(doc):
        lines.append(left)
    lines += _terminal_findings(findings_mod.find(doc))
    missed = findings_mod.missed_targets(doc)
    if missed:
        lines += ["", "targets missed (report.md says why):"]
        lines += [f"  {wname} {case}: {text}" for wname, case, text, _ in missed]
    return "\n".join(lines).rstrip() + "\n"


def _left_out(doc: Mapping[str, Any]) -> str | None:
    """The workloads this run's profile leaves out, and how to run them."""
    names = doc["settings"].get("left_out") or []
    if not names:
        return None
    return (
        f"not in the {doc['settings']['profile']} profile: {', '.join(names)} "
        f"(run with --workloads {' '.join(names)})"
    )


def _skipped(doc: Mapping[str, Any], w: Mapping[str, Any]) -> list[str]:
    """Contenders installed but skipped by this workload (a package it needs is missing)."""
    return [
        f"skipped: {cname}: {r['error']}"
        for cname, r in w["results"].items()
        if r["status"] == "missing" and doc["contenders"][cname]["status"] == "available"
    ]


def generator(w: Mapping[str, Any], case: str | None = None) -> str | None:
    """A served workload's load generator, as its cases (or ``case``) recorded it."""
    for r in w["results"].values():
        for name, c in r.get("cases", {}).items():
            if case in (None, name) and (c.get("extra") or {}).get("generator"):
                return str(c["extra"]["generator"])
    return None


def _targets_terminal(name: str, w: Mapping[str, Any]) -> list[str]:
    """A served workload's load generator, and the verdict on each of a workload's targets."""
    found = findings_mod.judged(name, w)
    if not found:
        return []
    contender = (w.get("targets") or {}).get("contender", "sysletloop-anyio")
    lines = [f"load generator: {_generators(w)}"] if name in SERVED else []
    for v in found:
        got = f"x{fmt(v.ratio['median'])}" if v.ratio else "no ratio"
        if v.lag_p99_ms is not None and v.lag_target_ms is not None:
            got += f", lag p99 {fmt(v.lag_p99_ms)} ms"
        lines.append(f"target {v.case}: {contender} {v.words} {got} ({v.text()})")
    return lines


def _terminal_findings(found: Mapping[str, Sequence[Finding]]) -> list[str]:
    """One line per subject and column a peer clearly beat; a count of the rest."""
    if not found:
        return []
    lines = ["", "against the claims (report.md, 'Findings against the claims', says why):"]
    fuzzy = 0
    for name, fs in found.items():
        for (subject, case, metric), group in _grouped(fs).items():
            clear = [f for f in group if f.clear]
            fuzzy += len(group) - len(clear)
            if clear:
                best = _best(clear)
                lines.append(
                    f"  {name} {case} {metric}: {subject} {fmt(best.subject_value['median'])}, "
                    f"{best.peer} {fmt(best.peer_value['median'])}"
                    + (f" (and {len(clear) - 1} more)" if len(clear) > 1 else "")
                )
    if fuzzy:
        lines.append(
            f"  and {fuzzy} peer results better by more than "
            f"{findings_mod.MARGIN:.0%} but within the spread of the repeats"
        )
    return lines


def _grouped(fs: Sequence[Finding]) -> dict[tuple[str, str, str], list[Finding]]:
    groups: dict[tuple[str, str, str], list[Finding]] = {}
    for f in fs:
        groups.setdefault((f.subject, f.case, f.metric), []).append(f)
    return groups


def _best(fs: Sequence[Finding]) -> Finding:
    """The peer that did best of ``fs`` (all on one subject, case and metric)."""
    sign = 1.0 if fs[0].better == "lower" else -1.0
    return min(fs, key=lambda f: sign * float(f.peer_value["median"]))


def _ops_grid(w: Mapping[str, Any]) -> list[str]:
    ops: list[str] = []
    for r in w["results"].values():
        ops += [op for op in r.get("cases", {}) if op not in ops]
    header = ["contender", *ops]
    rows = []
    for cname, r in w["results"].items():
        row = [cname]
        for op in ops:
            row.append(ops_verdict(r, op))
        rows.append(row)
    return _grid(header, rows)


def ops_verdict(result: Mapping[str, Any], op: str) -> str:
    status = result.get("status", "ok")
    c = result.get("cases", {}).get(op)
    if c is None:
        return STATUS_TEXT.get(status, "n/a")
    verdict = str(c.get("labels", {}).get("verdict", "?"))
    gap = c.get("metrics", {}).get("max_gap_ms")
    if verdict in ("blocks", "async") and gap:
        return f"{verdict} {fmt(gap['median'])}ms"
    return verdict


def _machine_line(m: Mapping[str, Any]) -> str:
    return (
        f"machine: {m.get('cpu_count')} CPUs ({m.get('cpus_usable')} usable), "
        f"{m.get('cpu_model')}, Linux {m.get('kernel')}, "
        f"{m.get('python_implementation', 'Python')} {m.get('python')}"
    )


# ---------------------------------------------------------------------------------------
# report.md
# ---------------------------------------------------------------------------------------


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(v.replace("|", "/") for v in r) + " |" for r in rows]
    return out


def markdown(doc: Mapping[str, Any], figures: Mapping[str, Sequence[str]] | None = None) -> str:
    """The full report: machine, contenders, method, then each workload with its claim,
    figures, every case and metric, reference numbers and errors."""
    figures = figures or {}
    m = doc["machine"]
    s = doc["settings"]
    out = [
        "# sysletloop benchmarks",
        "",
        f"Run {doc['created']}, profile `{s['profile']}`, {s['repeat']} interleaved repeats"
        f"{' after a warm-up' if s.get('warmup') else ''}, {doc['duration_s']:.0f} s. "
        f"Command: `{' '.join(doc['argv']) or 'python -m benchmarks run'}`.",
        "",
        "Paper: Zach Brown, *Asynchronous System Calls: Genesis and Status*, Linux "
        "Symposium 2007. Each section below names the claim it tests.",
        "",
        "## Machine",
        "",
        f"- CPUs: {m.get('cpu_count')} ({m.get('cpus_usable')} usable), {m.get('cpu_model')}",
        f"- Memory: {m.get('mem_total_kib')} KiB",
        f"- Kernel: {m.get('system')} {m.get('kernel')} ({m.get('arch')})",
        f"- Python: {m.get('python_implementation')} {m.get('python')} "
        f"({m.get('python_build')}), GIL {'on' if m.get('gil_enabled') else 'off'}",
        f"- fio: {m.get('fio') or 'not installed'}",
        f"- wrk: {m.get('wrk') or 'not installed'}",
        "- Packages: "
        + ", ".join(f"{k} {v or '(not installed)'}" for k, v in m.get("packages", {}).items()),
        "",
        "## Contenders",
        "",
    ]
    rows = [
        [n, c["status"], c.get("version") or "", c["description"], c.get("reason") or ""]
        for n, c in doc["contenders"].items()
    ]
    out += _md_table(["contender", "status", "version", "what", "reason if missing"], rows)
    out += [
        "",
        "## Method",
        "",
        "Every contender runs the same workload code through a small adapter. Each workload "
        "gets a warm-up run per contender (discarded), then repeats interleaved across "
        "contenders (A B C ..., A B C ...). A cell is the median over repeats with the "
        f"min-max; `xN` is the ratio to `{doc['baseline']}` taken repeat by repeat (both "
        "measured in the same repeat), then its median. For latencies and times lower is "
        "better; for IOPS and throughput higher is better. `n/a`: the contender cannot run "
        "this workload (e.g. KAIO runs no arbitrary callable); `missing`: not installed "
        "here; `unsupported`: the contender has no such operation; `error`: it raised, the "
        "text is below the table.",
        "",
    ]
    if left := _left_out(doc):
        out += [f"{left[0].upper()}{left[1:]}.", ""]
    found = findings_mod.find(doc)
    out += _md_findings_summary(doc, found)
    for name, w in doc["workloads"].items():
        out += _md_workload(name, w, figures.get(name, ()), found.get(name, []))
    return "\n".join(out).rstrip() + "\n"


def _md_findings_summary(
    doc: Mapping[str, Any], found: Mapping[str, Sequence[Finding]]
) -> list[str]:
    out = [
        "## Findings against the claims",
        "",
        "A finding is a peer that did better than sysletloop (or the KAIO loop, on random "
        "reads) on a column that carries the workload's claim, by more than "
        f"{findings_mod.MARGIN:.0%} of the median. *Clear*: the min-max ranges over the "
        "repeats do not overlap; *within the spread*: they overlap, and the difference may "
        "be noise. Each workload's section lists its findings with the reason.",
        "",
    ]
    missed = findings_mod.missed_targets(doc)
    if missed:
        rows_t = [
            [f"[{wname}](#{_anchor(doc['workloads'][wname], wname)})", f"`{case}`", text]
            for wname, case, text, _ in missed
        ]
        out += ["Targets missed (the workload's section says why):", ""]
        out += [*_md_table(["workload", "case", "target"], rows_t), ""]
    if not found:
        return [*out, "None in this run." if not missed else "No peer did better in this run.", ""]
    rows = []
    for name, fs in found.items():
        w = doc["workloads"][name]
        for (subject, case, metric), group in _grouped(fs).items():
            best = _best(group)
            clear = sum(f.clear for f in group)
            rows.append(
                [
                    f"[{name}](#{_anchor(w, name)})",
                    f"`{case}` `{metric}`",
                    f"{subject} {fmt(best.subject_value['median'])}",
                    f"{best.peer} {fmt(best.peer_value['median'])}",
                    f"{clear} clear, {len(group) - clear} within the spread",
                ]
            )
    out += _md_table(["workload", "column", "subject", "best peer", "peers better"], rows)
    return [*out, ""]


def _anchor(w: Mapping[str, Any], name: str) -> str:
    """The anchor MyST and GitHub give the workload's heading."""
    text = f"{w['number']}. {w['title']} ({name})".lower()
    kept = "".join(ch for ch in text if ch.isalnum() or ch in " -_")
    return kept.replace(" ", "-")


def _md_workload(
    name: str, w: Mapping[str, Any], figures: Sequence[str], found: Sequence[Finding]
) -> list[str]:
    out = [
        f"## {w['number']}. {w['title']} (`{name}`)",
        "",
        f"**Claim ({w['paper']}):** {w['claim']}.",
        "",
        "Parameters: "
        + ", ".join(f"`{k}={v}`" for k, v in w["params"].items())
        + (f"; rounds (interleaved repeats): {w['repeat']}." if "repeat" in w else "."),
        "",
    ]
    for fig in figures:
        out += [f"![{w['title']}]({fig})", ""]
    cases: list[str] = []
    for r in w["results"].values():
        cases += [c for c in r.get("cases", {}) if c not in cases]
    if name == "ops":
        out += [
            "Verdict per operation, with the longest gap between the loop's 1 ms ticks while "
            "it ran: `async` (the timer kept ticking), `blocks` (the gap was over 80% of the "
            "operation's time and over 2 ms), `fast` (done in under 2 ms: too short to "
            "tell), `unsupported` (the contender has no such operation):",
            "",
        ]
        rows = [[n, *(ops_verdict(r, op) for op in cases)] for n, r in w["results"].items()]
        out += _md_table(["contender", *cases], rows)
        out.append("")
    for case in cases:
        metrics = list(w["metrics"])
        header = ["contender", *(f"{m} ({w['metrics'][m]['unit']})" for m in metrics)]
        rows = [[n, *(cell(r, case, mt) for mt in metrics)] for n, r in w["results"].items()]
        out += [f"**{case}**", "", *_md_table(header, rows), ""]
    if w.get("reference"):
        out += ["Reference numbers (no loop), per repeat:", ""]
        for case, ref in w["reference"].items():
            items = ", ".join(
                f"{k} {fmt(v['median'])} [{fmt(v['min'])}-{fmt(v['max'])}]" for k, v in ref.items()
            )
            out.append(f"- {case}: {items}")
        out.append("")
    out += _md_findings(name, w)
    out += _md_against(name, w, found)
    errors = [(n, r["error"]) for n, r in w["results"].items() if r["status"] == "error"]
    if errors:
        out += ["Errors:", ""]
        out += [f"- `{n}`: {e}" for n, e in errors]
        out.append("")
    skipped = [(n, r["error"]) for n, r in w["results"].items() if r["status"] == "missing"]
    if skipped:
        out += ["Missing or skipped here:", ""]
        out += [f"- `{n}`: {e}" for n, e in skipped]
        out.append("")
    return out


def _md_against(name: str, w: Mapping[str, Any], found: Sequence[Finding]) -> list[str]:
    """This workload's findings against the claims, by subject and column, with the reason."""
    if not found:
        return []
    out = ["**Findings against the claims:**", ""]
    told: dict[str, str] = {}  # reason -> the subject it was first given for
    for subject in dict.fromkeys(f.subject for f in found):
        for (subj, case, metric), group in _grouped(found).items():
            if subj != subject:
                continue
            s = group[0].subject_value
            peers = ", ".join(
                f"`{f.peer}` {fmt(f.peer_value['median'])} [{fmt(f.peer_value['min'])}-"
                f"{fmt(f.peer_value['max'])}]" + ("" if f.clear else " (within the spread)")
                for f in group
            )
            out.append(
                f"- `{case}` `{metric}` ({group[0].better} is better): `{subject}` "
                f"{fmt(s['median'])} [{fmt(s['min'])}-{fmt(s['max'])}]; better: {peers}."
            )
        why = findings_mod.reason(name, subject, w) or findings_mod.rerun_hint(name)
        if why in told:
            why = f"as for `{told[why]}` above."
        else:
            told[why] = subject
        out += ["", f"Why, for `{subject}`: {why}", ""]
    return out


def _md_findings(name: str, w: Mapping[str, Any]) -> list[str]:
    """Workload-specific reading aids computed from the numbers (no judgement added)."""
    if findings_mod.judged(name, w):
        return _md_targets(name, w)
    if name != "hashing":
        return []
    lines = ["Overlap target (wall <= 1.15 x max(read-only, hash-only)):", ""]
    for cname, r in w["results"].items():
        for case in w["params"].get("cases", ("cold", "warm")):
            m = r.get("cases", {}).get(case, {}).get("metrics", {}).get("overlap")
            if m:
                verdict = "meets" if m["median"] <= 1.15 else "misses"
                lines.append(f"- {cname}, {case}: {fmt(m['median'])} ({verdict} the target)")
    return [*lines, ""]


def _generators(w: Mapping[str, Any]) -> str:
    """The load generator of each case, or the one all cases used."""
    per_case = {c: generator(w, c) for c in w["params"].get("cases", ())}
    if len(set(per_case.values())) <= 1:
        return generator(w) or "none ran"
    return "; ".join(f"{c}: {g or 'none ran'}" for c, g in per_case.items())


def _md_targets(name: str, w: Mapping[str, Any]) -> list[str]:
    """The issue's targets against this run's numbers, and why a missed one was missed."""
    goal = w.get("targets") or {}
    contender = goal.get("contender", "sysletloop-anyio")
    gen = generator(w, "http_server") if name == "net_throughput" else generator(w)
    found = findings_mod.judged(name, w)
    words = " and ".join(dict.fromkeys(v.words for v in found))
    lines = []
    if name in SERVED:
        lines += [
            f"Load generator: {_generators(w)}."
            + (
                " The stdlib generator spends far more CPU per request than wrk and caps the "
                "req/s a small machine can measure: install wrk for numbers to compare."
                if gen and gen != "wrk"
                else ""
            ),
            "",
        ]
    lines += [
        f"Targets ({w.get('paper', 'issue')}): `{contender}` against `asyncio-to_thread` "
        f"(stock asyncio), median of the per-repeat ratios of {words} [min-max], and the "
        "distribution-free interval of that median (it narrows as rounds are added; a "
        "target whose interval spans it is not resolved by this run):",
        "",
    ]
    with_lag = any(v.lag_target_ms is not None for v in found)
    rows = []
    why: list[str] = []
    for v in found:
        ratio = interval = ""
        if v.ratio is not None:
            ratio = f"x{fmt(v.ratio['median'])} [{fmt(v.ratio['min'])}-{fmt(v.ratio['max'])}]"
            if (iv := v.interval) is not None:
                n = v.ratio["n"]
                interval = f"{fmt(iv[0])}-{fmt(iv[1])} ({iv[2]:.0%}, {n} round{'s' * (n != 1)})"
        lag = [fmt(v.lag_p99_ms) if v.lag_p99_ms is not None else ""] if with_lag else []
        rows.append([f"`{v.case}`", ratio, interval, *lag, v.text()])
        if v.met is False:
            why.append(f"- `{v.case}`: {findings_mod.target_reason(name, v.case)}")
    header = ["case", f"{words} ratio", "interval of the median", "target"]
    if with_lag:
        header.insert(3, "loop lag p99 (ms)")
    lines += _md_table(header, rows)
    lines.append("")
    if why:
        lines += ["Why a target was missed:", "", *why, ""]
    return lines
