"""Where a busy FastAPI server's time goes, per request: a sampling profile of the process
under load (issue 21), for stock asyncio and the syslet loop side by side.

Run::

    python -m benchmarks.fastapi_profile [--servers NAME ...] [--cases NAME ...]
        [--seconds S] [--rate HZ] [--json OUT]

Per server and case: a fresh uvicorn server (the ``fastapi`` workload's app and
endpoints), 2 s of wrk load as warm-up, then wrk for ``S`` seconds while `py-spy
<https://github.com/benfred/py-spy>`_ samples the process ``HZ`` times a second with
``--gil --nonblocking``: each sample is the stack of the thread that holds the GIL, so
the samples are where the process's Python time goes (a thread blocked in ``time.sleep``
or waiting in ``epoll`` holds no GIL and is not in them). ``--nonblocking`` leaves the
process running while it is read: py-spy's default, which stops every thread for every
sample, cut the served rate of a server with 256 threads by two thirds here.

Printed per server and case, every time figure per request (the window's samples divided
by the rate, divided by the requests wrk counted over the same window):

``cpu us/req``
    the process's CPU (user + system, all threads, ``/proc/PID/stat``) per request;
``gil %``
    the share of the window some thread held the GIL (samples / (HZ * S));
``loop us/req``
    GIL time in the loop's own work, the rest being the blocking calls (``call us/req``:
    the endpoint, inline or on a thread) and other threads' overhead (``threads us/req``).
    A sample outside a blocking call is the loop's if its thread is the one that started
    the process (the loop's home; py-spy shows a coroutine resumed by C code without the
    frames below it, so its stack need not reach ``_run_once``), or if its stack runs
    through the loop's ``_run_once`` (a syslet loop away from home, on another thread);
by package
    the loop's work by the package of the innermost frame (asyncio, uvicorn, starlette,
    fastapi, anyio, sysletloop, ...), and the top functions by their own samples.

Needs py-spy (``pip install py-spy``; the ``bench`` extra has it where a wheel exists) and
the right to attach to a child process (root, or ``kernel.yama.ptrace_scope`` 0 or 1).

Threads: the main thread, and one thread that waits for wrk while py-spy runs.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.fastapi_lag import uvicorn_loops
from benchmarks.loadgen import choose_generator, cpu_seconds, load
from benchmarks.workloads.fastapi_uvicorn import CASES, Running

SERVERS = ("asyncio-to_thread", "sysletloop-anyio")
WARMUP_S = 2.0

# The innermost frame's file, by package (first match wins); "other" for the rest.
PACKAGES = (
    ("sysletloop", "sysletloop/"),
    ("asyncio", "asyncio/"),
    ("asyncio", "selectors.py"),
    ("uvicorn", "uvicorn/"),
    ("httptools", "httptools/"),
    ("starlette", "starlette/"),
    ("fastapi", "fastapi/"),
    ("pydantic", "pydantic"),
    ("anyio", "anyio/"),
    ("threading", "threading.py"),
    ("threading", "concurrent/"),
    ("contextlib", "contextlib.py"),
    ("json", "json/"),
)
LOOP_FRAME = re.compile(r"EventLoop\._run_once ")  # stock's BaseEventLoop, the syslet loop's
THREAD_FRAME = "Thread._bootstrap "  # the outermost frame of every thread but the first
# A blocking call's frames: the syslet loop's call record (inline, or on its spare thread),
# anyio's worker thread, an executor's work item.
CALL_FRAME = re.compile(r"CallRecord\.run(_timed)? |WorkerThread\.run |_WorkItem\.run ")


@dataclass
class Profile:
    """A ``py-spy record --format raw`` profile, sorted into the module's buckets."""

    samples: int = 0
    loop: int = 0
    call: int = 0
    threads: int = 0
    by_package: collections.Counter[str] = field(default_factory=collections.Counter)
    by_function: collections.Counter[str] = field(default_factory=collections.Counter)


def package_of(frame: str) -> str:
    for name, needle in PACKAGES:
        if needle in frame:
            return name
    return "other"


def parse(lines: Iterable[str]) -> Profile:
    """Sort raw (collapsed) stacks, ``thread (TID): NAME;frame;...;frame COUNT``, outermost
    frame first: loop work, blocking calls, and the rest."""
    profile = Profile()
    for line in lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")[1:]  # the first item names the thread
        profile.samples += n
        if any(CALL_FRAME.search(f + " ") for f in frames):
            profile.call += n
        elif not any(THREAD_FRAME in f + " " for f in frames) or any(
            LOOP_FRAME.search(f + " ") for f in frames
        ):
            profile.loop += n
            leaf = frames[-1] if frames else "?"
            profile.by_package[package_of(leaf)] += n
            profile.by_function[leaf] += n
        else:
            profile.threads += n
    return profile


def measure_one(
    name: str, loop: str, case: str, data_dir: Path, wrk: str, seconds: float, rate: int
) -> dict[str, Any]:
    """One fresh server under wrk, profiled for ``seconds`` in the middle of the load."""
    by_name = {c.name: c for c in CASES}
    running = Running(name, loop, data_dir, data_dir / "uvicorn.log")
    url = running.url + by_name[case].path
    conns = by_name[case].conns
    raw = data_dir / f"{name}-{case}.raw"
    figures: dict[str, float] = {}
    try:
        load(wrk, url, conns, WARMUP_S)
        loaded = threading.Thread(
            target=lambda: figures.update(load(wrk, url, conns, seconds + 2.0)), daemon=True
        )
        loaded.start()
        time.sleep(1.0)  # wrk's connections are up and busy
        cpu0, t0 = cpu_seconds(running.pid), time.monotonic()
        spy = subprocess.run(
            [py_spy(), "record", "--pid", str(running.pid), "--duration", str(round(seconds)),
             "--rate", str(rate), "--nonblocking", "--gil", "--format", "raw", "--threads",
             "-o", str(raw)],
            capture_output=True, text=True, timeout=seconds + 60, check=False,
        )  # fmt: skip
        cpu1, t1 = cpu_seconds(running.pid), time.monotonic()
        loaded.join(seconds + 70)
    finally:
        running.stop()
    if spy.returncode != 0 or not raw.exists():
        raise RuntimeError(f"py-spy failed ({spy.returncode}): {spy.stderr.strip()[-500:]}")
    with raw.open() as f:
        profile = parse(f)
    window = t1 - t0
    requests = figures["rps"] * window
    per_req = 1e6 / rate / requests  # microseconds of GIL time per sample, per request
    return {
        "server": name,
        "case": case,
        "rps": figures["rps"],
        "window_s": window,
        "cpu_us_per_req": (cpu1 - cpu0) * 1e6 / requests,
        "cpu_share": (cpu1 - cpu0) / window,
        "gil_share": profile.samples / (rate * window),
        "loop_us_per_req": profile.loop * per_req,
        "call_us_per_req": profile.call * per_req,
        "threads_us_per_req": profile.threads * per_req,
        "loop_by_package_us_per_req": {k: v * per_req for k, v in profile.by_package.most_common()},
        "loop_top_functions_us_per_req": [
            [k, v * per_req] for k, v in profile.by_function.most_common(12)
        ],
    }


def py_spy() -> str:
    found = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if found is None:
        raise RuntimeError("py-spy is not installed (pip install py-spy)")
    return found


def render(rows: Sequence[Mapping[str, Any]]) -> str:
    out = []
    head = ["server", "case", "req/s", "cpu us/req", "cpu share", "gil %", "loop us/req",
            "call us/req", "threads us/req"]  # fmt: skip
    lines = [head]
    for r in rows:
        lines.append([
            r["server"], r["case"], f"{r['rps']:,.0f}", f"{r['cpu_us_per_req']:.0f}",
            f"{r['cpu_share']:.2f}", f"{r['gil_share'] * 100:.0f}",
            f"{r['loop_us_per_req']:.0f}", f"{r['call_us_per_req']:.0f}",
            f"{r['threads_us_per_req']:.0f}",
        ])  # fmt: skip
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    out += ["  ".join(c.ljust(w) for c, w in zip(ln, widths, strict=True)) for ln in lines]
    for r in rows:
        packages = ", ".join(
            f"{k} {v:.0f}" for k, v in r["loop_by_package_us_per_req"].items() if v >= 1
        )
        out.append(
            f"\n{r['server']} / {r['case']}: the loop's work by package (us/req): {packages}"
        )
        for function, us in r["loop_top_functions_us_per_req"][:8]:
            out.append(f"  {us:6.1f}  {function}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", nargs="+", default=list(SERVERS))
    parser.add_argument("--cases", nargs="+", choices=[c.name for c in CASES],
                        default=["json", "sleep"])  # fmt: skip
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rate", type=int, default=100, help="samples per second")
    parser.add_argument("--json", type=Path, help="write the rows here")
    args = parser.parse_args(argv)
    if args.seconds < 1 or args.rate < 1:
        parser.error("--seconds and --rate are 1 or more")
    try:
        loops = uvicorn_loops(args.servers)
        py_spy()
    except (ValueError, RuntimeError) as exc:
        parser.error(str(exc))
    wrk, _ = choose_generator("wrk", install=True)
    assert wrk is not None  # choose_generator raises without it
    from benchmarks import fastapi_app  # imports fastapi: only once it runs

    rows = []
    with tempfile.TemporaryDirectory(prefix="sl-fastapi-profile-") as scratch:
        data_dir = Path(scratch)
        fastapi_app.prepare(data_dir)
        for case in args.cases:
            for name, loop in loops.items():
                rows.append(measure_one(name, loop, case, data_dir, wrk, args.seconds, args.rate))
                print(f"{name} / {case}: {rows[-1]['rps']:,.0f} req/s", file=sys.stderr)
    print(render(rows))
    if args.json:
        doc = {"argv": sys.argv if argv is None else argv, "rows": rows}
        args.json.write_text(json.dumps(doc, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
