"""FastAPI under uvicorn: stock asyncio, uvloop, and sysletloop with and without
``route_anyio``, same app, same load, same run.

Run::

    python -m benchmarks.fastapi_serve [--quick] [--rounds N] [--seconds S] [--json OUT]

(``./scripts/bench-fastapi`` makes the environment and runs it.) One *round* starts each
server in turn (a real ``uvicorn benchmarks.fastapi_app:app`` on 127.0.0.1, ``--loop``
set per server, the order rotated every round) and puts every case under load for
``--seconds``, after a warm-up of one second per case that is not recorded. Per case and
round, the ratio of a server's req/s to stock asyncio's in the same round is taken; the
report gives the median of those ratios with their min and max, and beside req/s the
request latency p50/p99 (from the load generator) and the loop's lag p99 (a 1 ms timer
in the server: how late it fired).

The load generator is wrk when it is installed (``apt-get install wrk`` is tried when
running as root); otherwise :mod:`benchmarks.http_load`, stdlib asyncio, which spends
far more CPU per request and so caps what it can measure on a small machine. The report
names the one used.

Cases and the issue's targets (ratio of median req/s, sysletloop with the option vs
stock asyncio): ``json`` (def endpoint, small JSON, 32 connections) >= 1.25;
``sleep`` (def endpoint, ``time.sleep(0.05)``, 256 connections) >= 3, loop lag p99 <= 5 ms;
``sqlite`` (def endpoint reading a row of a SQLite file) >= 1.25; ``file``
(``FileResponse`` of 64 KiB) >= 1.5; ``async-json`` (async def, no thread work) >= 0.97.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import fastapi_app
from benchmarks.stats import paired_ratios, spread

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Server:
    name: str
    loop: str  # uvicorn's --loop


@dataclass(frozen=True)
class Case:
    name: str
    path: str
    conns: int
    target: float  # the target for sysletloop-anyio / asyncio req/s
    lag_target_ms: float | None = None


SERVERS = (
    Server("asyncio", "asyncio"),
    Server("uvloop", "uvloop"),
    Server("sysletloop", "sysletloop:new_event_loop"),
    Server("sysletloop-anyio", "sysletloop:new_anyio_event_loop"),
)
BASELINE = "asyncio"
ROUTED = "sysletloop-anyio"
CASES = (
    Case("json", "/json", 32, 1.25),
    Case("sleep", "/sleep", 256, 3.0, lag_target_ms=5.0),
    Case("sqlite", "/sqlite", 32, 1.25),
    Case("file", "/file", 32, 1.5),
    Case("async-json", "/async-json", 32, 0.97),
)
WARMUP = 1.0  # seconds of load per case before each measurement, not recorded


# ---- the load generator ----------------------------------------------------------------


def find_wrk(install: bool) -> str | None:
    wrk = shutil.which("wrk")
    if wrk is None and install and os.geteuid() == 0 and shutil.which("apt-get"):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        for argv in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "wrk"]):
            subprocess.run(argv, env=env, capture_output=True, check=False)
        wrk = shutil.which("wrk")
    return wrk


_WRK_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _wrk_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise ValueError(f"wrk latency {text!r}")
    return float(match[1]) * _WRK_UNITS[match[2]]


def load(wrk: str | None, url: str, conns: int, seconds: float) -> dict[str, float]:
    """Closed-loop load on ``url``: req/s, latency p50/p99 (ms), errors."""
    if wrk is None:
        argv = [sys.executable, "-m", "benchmarks.http_load", url,
                f"--conns={conns}", f"--seconds={seconds}"]  # fmt: skip
        out = subprocess.run(argv, capture_output=True, text=True, check=True, cwd=ROOT)
        result: dict[str, float] = json.loads(out.stdout)
        return result
    threads = min(conns, max(1, (os.cpu_count() or 2)))
    duration = f"-d{max(1, round(seconds))}s"  # wrk takes whole seconds
    argv = [wrk, f"-t{threads}", f"-c{conns}", duration, "--timeout=10s", "--latency", url]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])  # type: ignore[index]
    p50 = _wrk_ms(re.search(r"^\s+50%\s+(\S+)", out, re.M)[1])  # type: ignore[index]
    p99 = _wrk_ms(re.search(r"^\s+99%\s+(\S+)", out, re.M)[1])  # type: ignore[index]
    errors = 0.0
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        errors += float(m[1])
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        errors += sum(float(g) for g in m.groups())
    return {"rps": rps, "p50_ms": p50, "p99_ms": p99, "errors": errors}


# ---- a server ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Running:
    """One uvicorn process serving the benchmark app."""

    def __init__(self, server: Server, data_dir: Path, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, SYSLETLOOP_BENCH_DIR=str(data_dir))
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        with open(log, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "benchmarks.fastapi_app:app",
                 "--host", "127.0.0.1", "--port", str(self.port), "--loop", server.loop,
                 "--no-access-log", "--log-level", "warning"],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            try:
                self.get("/async-json")
                return
            except OSError as exc:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"{server.name}: uvicorn did not start (see {log})") from exc
                time.sleep(0.1)

    def get(self, path: str, method: str = "GET") -> Any:
        request = urllib.request.Request(self.url + path, method=method)
        with urllib.request.urlopen(request, timeout=10) as reply:
            return json.loads(reply.read())

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# ---- the run -----------------------------------------------------------------------------


def measure(
    servers: list[Server], cases: list[Case], rounds: int, seconds: float, wrk: str | None,
    data_dir: Path, log: Path,
) -> dict[str, dict[str, list[dict[str, float]]]]:
    """results[server][case] = one dict of metrics per round."""
    results: dict[str, dict[str, list[dict[str, float]]]] = {
        s.name: {c.name: [] for c in cases} for s in servers
    }
    for r in range(rounds):
        order = servers[r % len(servers) :] + servers[: r % len(servers)]
        for server in order:
            running = Running(server, data_dir, log)
            try:
                for case in cases:
                    url = running.url + case.path
                    load(wrk, url, case.conns, WARMUP)
                    running.get("/_lag/reset", "POST")
                    metrics = load(wrk, url, case.conns, seconds)
                    lag = running.get("/_lag")
                    metrics["lag_p99_ms"] = lag["p99_ms"]
                    metrics["lag_max_ms"] = lag["max_ms"]
                    results[server.name][case.name].append(metrics)
                    print(
                        f"round {r + 1}/{rounds} {server.name:<17} {case.name:<11} "
                        f"{metrics['rps']:>9.0f} req/s  p50 {metrics['p50_ms']:7.2f} ms  "
                        f"p99 {metrics['p99_ms']:7.2f} ms  lag p99 {lag['p99_ms']:6.2f} ms",
                        file=sys.stderr, flush=True,
                    )  # fmt: skip
            finally:
                running.stop()
    return results


def summarize(
    results: dict[str, dict[str, list[dict[str, float]]]], cases: list[Case]
) -> list[dict[str, Any]]:
    rows = []
    base = results.get(BASELINE)
    for case in cases:
        for name, by_case in results.items():
            rounds = by_case[case.name]
            if not rounds:
                continue
            row: dict[str, Any] = {
                "case": case.name,
                "server": name,
                "rps": spread([m["rps"] for m in rounds]).as_dict(),
                "p50_ms": statistics.median(m["p50_ms"] for m in rounds),
                "p99_ms": statistics.median(m["p99_ms"] for m in rounds),
                "lag_p99_ms": statistics.median(m["lag_p99_ms"] for m in rounds),
                "errors": sum(m.get("errors", 0.0) for m in rounds),
            }
            if base is not None:
                ratios = paired_ratios(
                    [m["rps"] for m in rounds], [m["rps"] for m in base[case.name]]
                )
                if ratios:
                    row["ratio"] = spread(ratios).as_dict()
            if name == ROUTED and "ratio" in row:
                met = row["ratio"]["median"] >= case.target
                if case.lag_target_ms is not None:
                    met = met and row["lag_p99_ms"] <= case.lag_target_ms
                row["target"] = case.target
                row["lag_target_ms"] = case.lag_target_ms
                row["met"] = met
            rows.append(row)
    return rows


def render(rows: list[dict[str, Any]], generator: str) -> str:
    lines = [
        f"load generator: {generator}",
        "",
        "| case | server | req/s (median) | vs asyncio: median [min-max] | p50 ms | p99 ms "
        "| loop lag p99 ms | target |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        ratio = row.get("ratio")
        ratio_text = (
            f"{ratio['median']:.2f}x [{ratio['min']:.2f}-{ratio['max']:.2f}]" if ratio else ""
        )
        target = ""
        if "met" in row:
            target = f">= {row['target']}x" + (
                f", lag <= {row['lag_target_ms']} ms" if row["lag_target_ms"] else ""
            )
            target += ": met" if row["met"] else ": MISSED"
        lines.append(
            f"| {row['case']} | {row['server']} | {row['rps']['median']:.0f} | {ratio_text} "
            f"| {row['p50_ms']:.2f} | {row['p99_ms']:.2f} | {row['lag_p99_ms']:.2f} | {target} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds of 3 s per case")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--servers", nargs="+", choices=[s.name for s in SERVERS])
    parser.add_argument("--cases", nargs="+", choices=[c.name for c in CASES])
    parser.add_argument("--no-wrk", action="store_true", help="use benchmarks.http_load")
    parser.add_argument("--json", type=Path, help="write the raw rounds and summary here")
    args = parser.parse_args(argv)
    rounds = args.rounds or (3 if args.quick else 5)
    seconds = args.seconds or (3.0 if args.quick else 10.0)
    servers = [s for s in SERVERS if not args.servers or s.name in args.servers]
    cases = [c for c in CASES if not args.cases or c.name in args.cases]
    wrk = None if args.no_wrk else find_wrk(install=True)
    generator = "wrk" if wrk else "benchmarks.http_load (wrk not found)"
    with tempfile.TemporaryDirectory(prefix="sysletloop-fastapi-") as scratch:
        data_dir = Path(scratch)
        fastapi_app.prepare(data_dir)
        log = data_dir / "uvicorn.log"
        try:
            results = measure(servers, cases, rounds, seconds, wrk, data_dir, log)
        finally:
            if log.exists() and "Traceback" in (text := log.read_text()):
                print("server log:\n" + text[-4000:], file=sys.stderr)
    rows = summarize(results, cases)
    print(render(rows, generator))
    if args.json:
        record = {
            "generator": generator,
            "rounds": rounds,
            "seconds": seconds,
            "results": results,
            "summary": rows,
        }
        args.json.write_text(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
