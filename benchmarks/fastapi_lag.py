"""A FastAPI server's loop lag two ways: at full load, and at a fixed offered rate equal to
stock asyncio's maximum (issue 21).

Run::

    python -m benchmarks.fastapi_lag [--rounds N] [--seconds S] [--case NAME]
        [--servers NAME ...] [--extra-server NAME=LOOP ...] [--workers N] [--no-wrk]
        [--json OUT]

``--extra-server`` adds a server with any loop factory uvicorn can import
(``benchmarks.fastapi_loops`` has some), as ``benchmarks.fastapi_serve``'s does.

Full load says how late a busy loop's timers are when every connection always has a
request waiting (closed loop: the faster server is also the busier one). The fixed rate
asks the fairer question: at the same offered load, which loop keeps its timers? One
*round*:

1. stock asyncio's maximum: its server under closed-loop load (wrk, else
   :mod:`benchmarks.http_load`) for ``--seconds`` after 1 s of warm-up; its req/s is the
   round's rate ``R``.
2. each server in turn (the order rotated every round), fresh: 1 s of closed-loop warm-up,
   ``--seconds`` of closed-loop load (``full``), then ``--seconds`` of open-loop load at
   ``R`` requests per second (``at_rate``, :func:`benchmarks.http_load.run_at_rate`,
   latency from each request's due time).

The loop lag is the fastapi workload's (:mod:`benchmarks.lag_ticker`: a 1 ms timer in
every worker, the worst worker's p99 over the window). Printed: per server, medians over
the rounds of req/s, lag p99 and request latency p99 in each mode, and the ratio of its
lag p99 at rate to stock's in the same round (median of the rounds' ratios; below 1 is
better than stock). The generator's own lateness at rate (``late_ms_p99``) is printed too:
when it is near the latencies, the generator fell behind and the round says so.

Threads: the main thread only; servers and load generators are child processes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks.contenders import BASELINE, all_contenders
from benchmarks.lag_ticker import read_dumps, window_report
from benchmarks.loadgen import choose_generator, load
from benchmarks.workloads.fastapi_uvicorn import CASES, Running

SERVERS = ("asyncio-to_thread", "uvloop", "sysletloop", "sysletloop-anyio")
WARMUP_S = 1.0


def uvicorn_loops(names: Sequence[str], extra: Sequence[str] = ()) -> dict[str, str]:
    """The contenders' ``uvicorn --loop`` values, by name (ValueError naming an unknown
    or loop-less one), then the ``NAME=LOOP`` servers of ``extra``."""
    loops = {c.name: c.uvicorn_loop for c in all_contenders() if c.uvicorn_loop}
    unknown = [n for n in names if n not in loops]
    if unknown:
        raise ValueError(f"no uvicorn loop for {', '.join(unknown)} (known: {', '.join(loops)})")
    chosen = {n: loops[n] for n in names}
    for spec in extra:
        name, sep, loop = spec.partition("=")
        if not sep or not name or not loop or name in chosen:
            raise ValueError(f"--extra-server {spec!r}: NAME=LOOP, with a NAME of its own")
        chosen[name] = loop
    return chosen


def serve_round(
    name: str,
    loop: str,
    data_dir: Path,
    *,
    case: str,
    seconds: float,
    rate: float | None,
    wrk: str | None,
    workers: int,
) -> dict[str, Any]:
    """One fresh server: warm-up, full load, then (if ``rate``) the open loop at ``rate``.
    Returns per mode the generator's figures and the loop lag of its window."""
    by_name = {c.name: c for c in CASES}
    conns = by_name[case].conns
    lag_dir = Path(tempfile.mkdtemp(prefix="lag-", dir=data_dir))
    log = data_dir / "uvicorn.log"
    running = Running(name, loop, data_dir, log, workers=workers, lag_dir=lag_dir)
    url = running.url + by_name[case].path
    windows: dict[str, tuple[float, float]] = {}
    figures: dict[str, dict[str, float]] = {}
    try:
        load(wrk, url, conns, WARMUP_S)
        modes: list[tuple[str, float | None]] = [("full", None)]
        if rate is not None:
            modes.append(("at_rate", rate))
        for mode, r in modes:
            start = time.time()
            figures[mode] = load(wrk, url, conns, seconds, rate=r)
            windows[mode] = (start, time.time())
    finally:
        running.stop()
    dumps = read_dumps(lag_dir)
    if len(dumps) < workers:
        raise RuntimeError(f"{name}: {len(dumps)} of {workers} workers wrote their lag samples")
    out: dict[str, Any] = {}
    for mode, window in windows.items():
        lag = window_report(dumps, *window)
        out[mode] = {**figures[mode], "lag_p99_ms": lag["p99_ms"], "lag_max_ms": lag["max_ms"]}
    return out


def measure(
    names: Sequence[str],
    *,
    extra: Sequence[str] = (),
    rounds: int,
    seconds: float,
    case: str,
    wrk: str | None,
    workers: int,
    progress: Any = print,
) -> list[dict[str, Any]]:
    """``rounds`` rounds (the module's docstring): per round, stock's maximum rate and
    every server's figures in both modes."""
    from benchmarks import fastapi_app  # imports fastapi: only once it runs

    loops = uvicorn_loops([BASELINE, *[n for n in names if n != BASELINE]], extra)
    results = []
    with tempfile.TemporaryDirectory(prefix="sl-fastapi-lag-") as scratch:
        data_dir = Path(scratch)
        fastapi_app.prepare(data_dir)
        for r in range(rounds):
            stock = serve_round(
                BASELINE, loops[BASELINE], data_dir, case=case, seconds=seconds,
                rate=None, wrk=wrk, workers=workers,
            )  # fmt: skip
            rate = stock["full"]["rps"]
            progress(f"round {r + 1}: stock asyncio's maximum {rate:,.0f} req/s")
            order = list(loops)
            order = order[r % len(order) :] + order[: r % len(order)]
            servers = {}
            for name in order:
                servers[name] = serve_round(
                    name, loops[name], data_dir, case=case, seconds=seconds,
                    rate=rate, wrk=wrk, workers=workers,
                )  # fmt: skip
                at = servers[name]["at_rate"]
                progress(
                    f"  {name}: full {servers[name]['full']['rps']:,.0f} req/s, lag p99 "
                    f"{servers[name]['full']['lag_p99_ms']:.1f} ms; at {rate:,.0f}: "
                    f"{at['rps']:,.0f} req/s, lag p99 {at['lag_p99_ms']:.1f} ms"
                )
            results.append({"rate": rate, "stock_max": stock, "servers": servers})
    return results


def summary(results: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per server: medians over the rounds, and the median of the rounds' lag ratios to
    stock at the same rate."""
    rows = []
    names = list(results[0]["servers"])
    for name in names:
        per = [r["servers"][name] for r in results]

        def med(mode: str, key: str, per: list[dict[str, Any]] = per) -> float:
            return statistics.median(float(p[mode][key]) for p in per)

        ratios = [
            _ratio(r["servers"][name]["at_rate"]["lag_p99_ms"],
                   r["servers"][BASELINE]["at_rate"]["lag_p99_ms"])
            for r in results
        ]  # fmt: skip
        rows.append(
            {
                "server": name,
                "full_rps": med("full", "rps"),
                "full_lag_p99_ms": med("full", "lag_p99_ms"),
                "rate": statistics.median(float(r["rate"]) for r in results),
                "at_rate_rps": med("at_rate", "rps"),
                "at_rate_lag_p99_ms": med("at_rate", "lag_p99_ms"),
                "at_rate_latency_p99_ms": med("at_rate", "p99_ms"),
                "at_rate_errors": med("at_rate", "errors"),
                "generator_late_p99_ms": med("at_rate", "late_ms_p99"),
                "lag_ratio_to_stock": statistics.median(ratios),
            }
        )
    return rows


def _ratio(lag: float, stock: float) -> float:
    """``lag`` over ``stock``, both p99s in ms; two lags under a microsecond are equal."""
    return max(lag, 1e-3) / max(stock, 1e-3)


def table(rows: Sequence[Mapping[str, Any]]) -> str:
    head = ["server", "full req/s", "full lag p99 ms", "rate req/s", "at-rate req/s",
            "at-rate lag p99 ms", "x stock lag", "at-rate latency p99 ms",
            "gen late p99 ms"]  # fmt: skip
    lines = [head]
    for r in rows:
        lines.append([
            r["server"], f"{r['full_rps']:,.0f}", f"{r['full_lag_p99_ms']:.1f}",
            f"{r['rate']:,.0f}", f"{r['at_rate_rps']:,.0f}", f"{r['at_rate_lag_p99_ms']:.1f}",
            f"{r['lag_ratio_to_stock']:.2f}", f"{r['at_rate_latency_p99_ms']:.0f}",
            f"{r['generator_late_p99_ms']:.1f}",
        ])  # fmt: skip
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(ln, widths, strict=True)) for ln in lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--case", choices=[c.name for c in CASES], default="sleep")
    parser.add_argument("--servers", nargs="+", default=list(SERVERS))
    parser.add_argument("--extra-server", action="append", default=[], metavar="NAME=LOOP")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--no-wrk", action="store_true", help="closed loop by benchmarks.http_load")
    parser.add_argument("--json", type=Path, help="write the rounds and the summary here")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.seconds <= 0 or args.workers < 1:
        parser.error("--rounds and --workers are 1 or more, --seconds more than 0")
    try:
        uvicorn_loops(args.servers, args.extra_server)
    except ValueError as exc:
        parser.error(str(exc))
    wrk, note = choose_generator("http_load" if args.no_wrk else "auto", install=True)
    print(f"closed loop: {note}; open loop: benchmarks.http_load --rate", file=sys.stderr)
    results = measure(
        args.servers, extra=args.extra_server, rounds=args.rounds, seconds=args.seconds,
        case=args.case, wrk=wrk, workers=args.workers,
        progress=lambda line: print(line, file=sys.stderr),
    )  # fmt: skip
    rows = summary(results)
    print(f"case {args.case}, {args.workers} worker(s), {args.rounds} rounds of {args.seconds} s")
    print(table(rows))
    if args.json:
        doc = {"argv": sys.argv if argv is None else argv, "rounds": results, "summary": rows}
        args.json.write_text(json.dumps(doc, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
