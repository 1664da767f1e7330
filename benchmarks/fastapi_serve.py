"""FastAPI under uvicorn: stock asyncio, uvloop, and sysletloop with and without
``route_anyio``, same app, same load, same run. A front end to the harness's ``fastapi``
workload (:mod:`benchmarks.workloads.fastapi_uvicorn`), for running it alone with its own
rounds, seconds and cases.

Run::

    python -m benchmarks.fastapi_serve [--quick] [--rounds N] [--seconds S]
        [--servers NAME ...] [--cases NAME ...] [--extra-server NAME=LOOP ...]
        [--workers N ...] [--server uvicorn|gunicorn] [--no-wrk] [--json OUT]

(``./scripts/bench-fastapi`` makes the environment and runs it.) The same measurement as
``python -m benchmarks run --workloads fastapi``: one *round* is one repeat of the
harness, which starts each server in turn (the order rotated every round) and puts every
case under load for ``--seconds`` after ``warmup_s`` (1 s) of load that is not recorded.
Default: 5 rounds of 10 s per case; ``--quick``: 3
rounds of 3 s. ``--extra-server`` adds a server with any loop factory uvicorn can import
(``benchmarks.fastapi_loops`` has some), to measure a loop option. It prints the
workload's table and the issue's targets against the numbers, and ``--json`` writes the
harness's ``results.json`` document (with several ``--workers``, one per count:
``OUT`` gets ``-wN`` before its suffix).

``--workers 1 2`` runs the whole measurement once per worker count (``uvicorn --workers
N``, or gunicorn's uvicorn worker class with ``--server gunicorn``: one loop per process)
and ends with the scaling table: per server and case, req/s at each count, the ratio to
stock asyncio at each count (median of the paired rounds), the server processes' CPU
share at each count (``cpu``, cores: every worker and the master), the scaling, req/s
at the largest count over req/s at the smallest (medians), and at the largest count how
the last round's requests were split between the workers (``split``, percent). wrk is
installed with apt-get when absent and running as root; without it the load generator is
:mod:`benchmarks.http_load`, and the output says so.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from benchmarks import report
from benchmarks.contenders import BASELINE, Contender, all_contenders
from benchmarks.contenders.asyncio_family import AsyncioContender, ToThreadApi
from benchmarks.progress import default_progress
from benchmarks.runner import Settings, run
from benchmarks.workloads.fastapi_uvicorn import CASE_NAMES, FastAPIServe
from benchmarks.workloads.fastapi_uvicorn import SERVERS as SERVER_KINDS

# The servers by their old names (asyncio is the harness's baseline contender).
SERVERS = {
    "asyncio": BASELINE,
    "uvloop": "uvloop",
    "sysletloop": "sysletloop",
    "sysletloop-anyio": "sysletloop-anyio",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds of 3 s per case")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--servers", nargs="+", choices=list(SERVERS))
    parser.add_argument("--cases", nargs="+", choices=list(CASE_NAMES))
    parser.add_argument("--no-wrk", action="store_true", help="use benchmarks.http_load")
    parser.add_argument(
        "--extra-server",
        action="append",
        default=[],
        metavar="NAME=LOOP",
        help="one more server: uvicorn --loop LOOP (e.g. benchmarks.fastapi_loops:"
        "anyio_unpredicted), shown as NAME",
    )
    parser.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=[1],
        metavar="N",
        help="server processes, one loop each; several counts: one run each, then scaling",
    )
    parser.add_argument("--server", choices=SERVER_KINDS, default="uvicorn")
    parser.add_argument("--json", type=Path, help="write the results document here")
    args = parser.parse_args(argv)
    if any(n < 1 for n in args.workers):
        parser.error(f"--workers {args.workers}: each count is 1 or more")
    extra = [_extra_server(spec) for spec in args.extra_server]
    docs: dict[int, dict[str, Any]] = {}
    for workers in args.workers:
        workload = FastAPIServe(
            seconds=args.seconds or (3.0 if args.quick else 10.0),
            cases=args.cases,
            generator="http_load" if args.no_wrk else None,
            install_wrk=True,
            workers=workers,
            server=args.server,
        )
        settings = Settings(
            profile="quick" if args.quick else "full",
            repeat=args.rounds or (3 if args.quick else 5),
            loops=[SERVERS[s] for s in args.servers or SERVERS] + [c.name for c in extra],
            workloads=[workload.name],
            argv=["python -m benchmarks.fastapi_serve", *(sys.argv[1:] if argv is None else argv)],
        )
        contenders = all_contenders() + extra
        doc = run(
            settings, contenders=contenders, workloads=[workload], progress=default_progress()
        )
        docs[workers] = doc
        print(f"=== {args.server}, {workers} worker{'s' if workers > 1 else ''}")
        print(report.terminal_table(doc))
        if args.json:
            out = args.json
            if len(args.workers) > 1:
                out = out.with_name(f"{out.stem}-w{workers}{out.suffix}")
            out.write_text(json.dumps(doc, indent=1, allow_nan=False) + "\n")
    if len(docs) > 1:
        print(f"=== scaling ({args.server})")
        print(scaling_table(docs))
    return 0


def scaling_table(docs: Mapping[int, Mapping[str, Any]]) -> str:
    """Per server and case: req/s and the ratio to stock asyncio at each worker count,
    and the scaling (req/s at the most workers / at the fewest; medians)."""
    counts = sorted(docs)
    head = ["server", "case"]
    head += [f"req/s w{n}" for n in counts] + [f"x stock w{n}" for n in counts]
    head += [f"cpu w{n}" for n in counts]
    head.append(f"scaling w{counts[-1]}/w{counts[0]}")
    head.append(f"split w{counts[-1]}")
    rows = [head]
    first = docs[counts[0]]["workloads"]["fastapi"]["results"]
    for name, result in first.items():
        for case in result.get("cases", {}):
            rps = [_median(docs[n], name, case) for n in counts]
            cpu = [_median(docs[n], name, case, "server_cpu") for n in counts]
            ratios = [_ratio(docs[n], name, case) for n in counts]
            lo, hi = rps[0], rps[-1]
            scaling = hi / lo if lo and hi else None
            row = [name, case, *map(_num, rps), *map(_num, ratios), *map(_num, cpu)]
            rows.append([*row, _num(scaling), _split(docs[counts[-1]], name, case)])
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows
    )


def _metric(
    doc: Mapping[str, Any], contender: str, case: str, name: str = "rps"
) -> Mapping[str, Any] | None:
    result = doc["workloads"]["fastapi"]["results"].get(contender, {})
    case_result = result.get("cases", {}).get(case, {})
    metric: Mapping[str, Any] | None = case_result.get("metrics", {}).get(name)
    return metric


def _median(doc: Mapping[str, Any], contender: str, case: str, name: str = "rps") -> float | None:
    metric = _metric(doc, contender, case, name)
    return None if metric is None else float(metric["median"])


def _ratio(doc: Mapping[str, Any], contender: str, case: str) -> float | None:
    metric = _metric(doc, contender, case)
    ratio = None if metric is None else metric.get("ratio")
    return None if not ratio else float(ratio["median"])


def _split(doc: Mapping[str, Any], contender: str, case: str) -> str:
    """How the last round's requests were split between the workers, in percent."""
    result = doc["workloads"]["fastapi"]["results"].get(contender, {})
    served = result.get("cases", {}).get(case, {}).get("extra", {}).get("served_by_worker")
    if not served or len(served) < 2 or not sum(served):
        return "-"
    return "/".join(f"{100 * n / sum(served):.0f}" for n in sorted(served))


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}" if value < 100 else f"{value:,.0f}"


def _extra_server(spec: str) -> Contender:
    name, sep, loop = spec.partition("=")
    if not sep or not name or not loop:
        raise SystemExit(f"--extra-server {spec!r}: NAME=LOOP")
    return AsyncioContender(
        name, f"uvicorn --loop {loop}", frozenset(), ToThreadApi, uvicorn_loop=loop
    )


if __name__ == "__main__":
    sys.exit(main())
