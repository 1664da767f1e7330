"""FastAPI under uvicorn: stock asyncio, uvloop, and sysletloop with and without
``route_anyio``, same app, same load, same run. A front end to the harness's ``fastapi``
workload (:mod:`benchmarks.workloads.fastapi_uvicorn`), for running it alone with its own
rounds, seconds and cases.

Run::

    python -m benchmarks.fastapi_serve [--quick] [--rounds N] [--seconds S]
        [--servers NAME ...] [--cases NAME ...] [--extra-server NAME=LOOP ...]
        [--no-wrk] [--json OUT]

(``./scripts/bench-fastapi`` makes the environment and runs it.) The same measurement as
``python -m benchmarks run --workloads fastapi``: one *round* is one repeat of the
harness, which starts each server in turn (the order rotated every round) and puts every
case under load for ``--seconds`` after ``warmup_s`` (1 s) of load that is not recorded.
Default: 5 rounds of 10 s per case; ``--quick``: 3
rounds of 3 s. ``--extra-server`` adds a server with any loop factory uvicorn can import
(``benchmarks.fastapi_loops`` has some), to measure a loop option. It prints the
workload's table and the issue's targets against the numbers, and ``--json`` writes the
harness's ``results.json`` document. wrk is installed with apt-get when absent and
running as root; without it the load generator is :mod:`benchmarks.http_load`, and the
output says so.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchmarks import report
from benchmarks.contenders import BASELINE, Contender, all_contenders
from benchmarks.contenders.asyncio_family import AsyncioContender, ToThreadApi
from benchmarks.progress import default_progress
from benchmarks.runner import Settings, run
from benchmarks.workloads.fastapi_uvicorn import CASE_NAMES, FastAPIServe

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
    parser.add_argument("--json", type=Path, help="write the results document here")
    args = parser.parse_args(argv)
    extra = [_extra_server(spec) for spec in args.extra_server]
    workload = FastAPIServe(
        seconds=args.seconds or (3.0 if args.quick else 10.0),
        cases=args.cases,
        generator="http_load" if args.no_wrk else None,
        install_wrk=True,
    )
    settings = Settings(
        profile="quick" if args.quick else "full",
        repeat=args.rounds or (3 if args.quick else 5),
        loops=[SERVERS[s] for s in args.servers or SERVERS] + [c.name for c in extra],
        workloads=[workload.name],
        argv=["python -m benchmarks.fastapi_serve", *(sys.argv[1:] if argv is None else argv)],
    )
    contenders = all_contenders() + extra
    doc = run(settings, contenders=contenders, workloads=[workload], progress=default_progress())
    print(report.terminal_table(doc))
    if args.json:
        args.json.write_text(json.dumps(doc, indent=1, allow_nan=False) + "\n")
    return 0


def _extra_server(spec: str) -> Contender:
    name, sep, loop = spec.partition("=")
    if not sep or not name or not loop:
        raise SystemExit(f"--extra-server {spec!r}: NAME=LOOP")
    return AsyncioContender(
        name, f"uvicorn --loop {loop}", frozenset(), ToThreadApi, uvicorn_loop=loop
    )


if __name__ == "__main__":
    sys.exit(main())
