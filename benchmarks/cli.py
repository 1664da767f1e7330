"""Command line: ``python -m benchmarks {run,list,report}``.

- ``run [--quick | --full | --smoke] [--loops A B ...] [--workloads W ...] [--repeat N]
  [--out DIR] [--scratch DIR] [--no-warmup]``: measure, then write ``DIR/results.json``,
  ``DIR/table.txt``, ``DIR/report.md`` and ``DIR/plots/*.png``, and print the table.
- ``list``: the contenders (available or missing, and why) and the workloads.
- ``report DIR``: re-render table, report and plots from ``DIR/results.json``.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from benchmarks import plots, report
from benchmarks.contenders import BASELINE, all_contenders, contender_names
from benchmarks.progress import default_progress
from benchmarks.runner import Settings, run
from benchmarks.schema import validate
from benchmarks.workloads import all_workloads, workload_names
from benchmarks.workloads.base import PROFILES, Workload

DEFAULT_OUT = "bench-results"
DEFAULT_REPEAT = {"smoke": 1, "quick": 3, "full": 5}


def _names(values: Sequence[str] | None) -> list[str] | None:
    """``--loops a,b c`` -> ["a", "b", "c"]."""
    if values is None:
        return None
    return [n for v in values for n in v.split(",") if n]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="What syslets buy over KAIO and over thread pools, measured here.",
    )
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run the benchmarks")
    prof = r.add_mutually_exclusive_group()
    prof.add_argument(
        "--quick",
        dest="profile",
        action="store_const",
        const="quick",
        help="a few minutes on 2 cores (the default)",
    )
    prof.add_argument(
        "--full",
        dest="profile",
        action="store_const",
        const="full",
        help="longer runs, bigger files, every case",
    )
    prof.add_argument(
        "--smoke",
        dest="profile",
        action="store_const",
        const="smoke",
        help="a fraction of a second per workload (tests the harness)",
    )
    r.set_defaults(profile="quick")
    r.add_argument(
        "--loops",
        nargs="+",
        action="extend",
        metavar="NAME",
        help=f"contenders to run (comma or space separated; {BASELINE} is always "
        f"added): {', '.join(contender_names())}",
    )
    r.add_argument(
        "--workloads",
        nargs="+",
        action="extend",
        metavar="NAME",
        help=f"workloads to run, by name or number: {', '.join(workload_names())}",
    )
    r.add_argument(
        "--repeat",
        type=int,
        metavar="N",
        help="interleaved repeats of every workload (default: quick 3, full 5, smoke 1; "
        "a workload may ask for more when not given, net_throughput --full 10)",
    )
    r.add_argument(
        "--out",
        default=DEFAULT_OUT,
        metavar="DIR",
        help=f"output directory (default: {DEFAULT_OUT})",
    )
    r.add_argument(
        "--scratch",
        metavar="DIR",
        help="where big temporary files go (default /var/tmp; not tmpfs: O_DIRECT)",
    )
    r.add_argument(
        "--no-warmup",
        dest="warmup",
        action="store_false",
        help="skip the warm-up run of each contender",
    )
    r.add_argument("--no-plots", dest="plots", action="store_false", help="skip the PNG plots")
    r.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="server processes, one loop each, for the workloads that serve (fastapi, "
        "net_throughput's http_server; default 1)",
    )
    sub.add_parser("list", help="list contenders (available or missing) and workloads")
    rep = sub.add_parser("report", help="re-render table, report.md and plots from saved JSON")
    rep.add_argument("dir", metavar="DIR", help="a directory holding results.json")
    rep.add_argument("--no-plots", dest="plots", action="store_false", help="skip the PNG plots")
    return p


def render(doc: Mapping[str, Any], out_dir: str, *, with_plots: bool = True) -> str:
    """Write table.txt, report.md and plots into ``out_dir``; return the table text."""
    os.makedirs(out_dir, exist_ok=True)
    figures: dict[str, list[str]] = {}
    if with_plots:
        why_not = plots.available()
        if why_not is None:
            figures = plots.render(doc, out_dir)
        else:
            print(f"note: no plots: {why_not}", file=sys.stderr)
    table = report.terminal_table(doc)
    with open(os.path.join(out_dir, "table.txt"), "w", encoding="utf-8") as f:
        f.write(table)
    with open(os.path.join(out_dir, "report.md"), "w", encoding="utf-8") as f:
        f.write(report.markdown(doc, figures))
    return table


def with_workers(workers: int) -> list[Workload[Any]]:
    """Every workload, those that take ``workers`` made with it (ValueError if < 1)."""
    return [
        type(w)(workers=workers) if "workers" in inspect.signature(type(w)).parameters else w
        for w in all_workloads()
    ]


def _cmd_run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    repeat = args.repeat if args.repeat is not None else DEFAULT_REPEAT[args.profile]
    if repeat < 1:
        print("error: --repeat must be at least 1", file=sys.stderr)
        return 2
    settings = Settings(
        profile=args.profile,
        repeat=repeat,
        repeat_fixed=args.repeat is not None,
        loops=_names(args.loops),
        workloads=_names(args.workloads),
        scratch=args.scratch,
        warmup=args.warmup,
        argv=["python -m benchmarks", *argv],
    )
    try:
        workloads = None if args.workers is None else with_workers(args.workers)
        doc = run(settings, args.out, workloads=workloads, progress=default_progress())
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    problems = validate(doc)
    for p in problems:
        print(f"schema problem: {p}", file=sys.stderr)
    print(render(doc, args.out, with_plots=args.plots))
    print(written(args.out))
    return 1 if problems else 0


def written(out_dir: str) -> str:
    """The closing lines of a run: every file it wrote, and what each is for."""
    plots_dir = os.path.join(out_dir, "plots")
    pngs: list[str] = []
    if os.path.isdir(plots_dir):
        pngs = sorted(f for f in os.listdir(plots_dir) if f.endswith(".png"))
    lines = [
        f"wrote {out_dir}/:",
        "  report.md     the report: machine, method, every number, findings against the claims",
        "  table.txt     the table above",
        "  results.json  everything measured (python -m benchmarks report DIR re-renders it)",
    ]
    if pngs:
        lines.append(f"  plots/        {len(pngs)} figures: {', '.join(pngs)}")
    else:
        lines.append("  plots/        none (--no-plots, or matplotlib is missing: see above)")
    return "\n".join(lines)


def _cmd_list() -> int:
    print("contenders:")
    for c in all_contenders():
        found = c.probe()
        state = f"available ({found.version})" if found.available else f"MISSING: {found.reason}"
        print(f"  {c.name:<18} {state}\n  {'':<18} {c.description}")
    print("workloads:")
    for w in all_workloads():
        out = [f"--{p}" for p in PROFILES if p not in w.profiles]
        note = f" [not in {', '.join(out)} unless named]" if out else ""
        print(f"  {w.number}. {w.name:<14} {w.title} ({w.paper}){note}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    path = os.path.join(args.dir, "results.json")
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError) as exc:
        print(f"error: cannot read {path}: {exc}", file=sys.stderr)
        return 2
    problems = validate(doc)
    if problems:
        for p in problems:
            print(f"schema problem: {p}", file=sys.stderr)
        return 2
    print(render(doc, args.dir, with_plots=args.plots))
    print(written(args.dir))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    if args.command == "run":
        return _cmd_run(args, argv)
    if args.command == "list":
        return _cmd_list()
    return _cmd_report(args)
