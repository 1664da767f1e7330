"""Workload 9, blocking calls under a PID limit (issue 15: "when threads run out, the loop
must not hang").

A process confined by a cgroup's ``pids.max`` (what a container's ``--pids-limit`` sets)
runs ten times as many concurrent blocking calls (``time.sleep``) as the limit, while a
1 ms ticker measures the loop's lag. Per case (the limit): calls completed per second,
the share of calls that completed, lag p99, and whether the run hung (killed after
``timeout``). A contender whose calls fail to start a thread reports them as not
completed; a loop that hangs reports ``hung`` 1 and nothing else.

Each repeat runs in a child process (``python -m benchmarks.workloads.limits``) that
moves itself into a fresh cgroup before it starts any thread, so the limit binds that
child alone, a hang can be killed, and the cgroup can be removed afterwards. The
``pids.max`` set is the limit plus the threads the child has before its first call
(one, the main thread, here). Needs root and a writable pids controller (cgroup v1 at
/sys/fs/cgroup/pids, or v2); elsewhere every case is unsupported, with the reason.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from benchmarks.contenders.base import CALL, Api, Contender
from benchmarks.stats import latency_summary
from benchmarks.workloads.base import CaseResult, Cases, Metric, Profile, Ticker, Workload, run_main

V1_ROOT = Path("/sys/fs/cgroup/pids")
V2_ROOTS = (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/unified"))
CALLS_PER_PID = 10  # "blocking calls at 10x the PID limit"


class Limits(Workload[None]):
    name = "limits"
    number = 9
    title = "Blocking calls under a PID limit"
    claim = "Where threads run out, the loop keeps running and every call completes"
    paper = "issue 15"
    needs = frozenset({CALL})
    metrics = (
        Metric("req_s", "calls/s", "higher", "blocking calls completed per second"),
        Metric("completed", "share", "higher", "share of the calls that completed"),
        Metric("lag_p99_ms", "ms", "lower", "99th percentile lateness of a 1 ms timer"),
        Metric("hung", "runs", "lower", "1 if the run had to be killed"),
    )
    headline = (("pids_max=12", "req_s"), ("pids_max=12", "lag_p99_ms"))

    def params(self, profile: Profile) -> dict[str, Any]:
        if profile == "smoke":
            return {"pids_max": [12], "sleep": 0.005, "timeout": 60.0}
        if profile == "quick":
            # pids_max=12 is the headline case; 24 is left to full runs (quick's time)
            return {"pids_max": [12], "sleep": 0.02, "timeout": 60.0}
        return {"pids_max": [12, 24, 48], "sleep": 0.02, "timeout": 120.0}

    def warmup_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return {**params, "pids_max": params["pids_max"][:1]}

    def prepare(self, scratch: str, params: Mapping[str, Any]) -> None:
        return None

    def measure(self, contender: Contender, state: None, params: Mapping[str, Any]) -> Cases:
        cases: Cases = {}
        for pids_max in params["pids_max"]:
            cases[f"pids_max={pids_max}"] = _one_case(
                contender.name, int(pids_max), float(params["sleep"]), float(params["timeout"])
            )
        return cases


# ---------------------------------------------------------------- the parent side


def make_cgroup(pids_max: int) -> Path:
    """A fresh cgroup with ``pids.max`` set; raises OSError if none can be made."""
    name = f"sysletloop-bench-{os.getpid()}-{time.monotonic_ns()}"
    candidates: list[tuple[Path, Path | None]] = [(V1_ROOT, None)]
    candidates += [(root, root / "cgroup.subtree_control") for root in V2_ROOTS]
    problems: list[str] = []
    for root, subtree in candidates:
        if subtree is None and not (root / "cgroup.procs").exists():
            continue
        if subtree is not None:
            controllers = root / "cgroup.controllers"
            if not controllers.exists() or "pids" not in controllers.read_text().split():
                continue
        path = root / name
        try:
            if subtree is not None and "pids" not in subtree.read_text().split():
                subtree.write_text("+pids\n")
            path.mkdir()
            (path / "pids.max").write_text(f"{pids_max}\n")
            return path
        except OSError as exc:
            problems.append(f"{root}: {exc}")
            remove_cgroup(path)
    raise OSError("no writable pids cgroup (" + ("; ".join(problems) or "none mounted") + ")")


def remove_cgroup(path: Path) -> None:
    for _ in range(100):  # a killed child's tasks take a moment to leave
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.05)


def _one_case(contender: str, pids_max: int, sleep: float, timeout: float) -> CaseResult:
    if os.geteuid() != 0:
        return CaseResult(unsupported="needs root to make a cgroup")
    try:
        cgroup = make_cgroup(pids_max)
    except OSError as exc:
        return CaseResult(unsupported=str(exc))
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH")) if p)
    command = [
        sys.executable, "-m", "benchmarks.workloads.limits", "--contender", contender,
        "--cgroup", str(cgroup), "--calls", str(CALLS_PER_PID * pids_max),
        "--sleep", str(sleep), "--timeout", str(timeout),
    ]
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout + 15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return CaseResult(metrics={"hung": 1.0, "completed": 0.0, "req_s": 0.0},
                          extra={"pids_max": pids_max})
    finally:
        remove_cgroup(cgroup)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (err.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        raise RuntimeError(f"limits child failed: {tail}")
    reply = json.loads(lines[-1])
    return CaseResult(
        metrics=reply["metrics"], extra={**reply["extra"], "pids_max": pids_max,
                                         "stderr": err[-2000:]},
    )


# ---------------------------------------------------------------- the child side


async def _calls(api: Api, calls: int, sleep: float) -> dict[str, Any]:
    ticker = Ticker(api)
    done = 0
    errors: dict[str, int] = {}

    async def one() -> None:
        nonlocal done
        try:
            await api.call(time.sleep, sleep)
            done += 1
        except Exception as exc:  # e.g. "can't start new thread": counted, not raised
            key = f"{type(exc).__name__}: {exc}"
            errors[key] = errors.get(key, 0) + 1

    async def blockers() -> float:
        await api.sleep(0.005)
        t0 = api.clock()
        await api.gather(*(one for _ in range(calls)))
        wall = api.clock() - t0
        await api.sleep(0.005)
        ticker.stop = True
        return wall

    _, wall = await api.pair(ticker.run, blockers)
    lag = latency_summary(ticker.lateness or [0.0])
    return {
        "metrics": {
            "req_s": done / wall if wall > 0 else 0.0,
            "completed": done / calls,
            "lag_p99_ms": lag["p99"] * 1e3,
            "hung": 0.0,
        },
        "extra": {"calls": calls, "wall_s": wall, "errors": errors,
                  "loop_stats_end": api.stats()},
    }


def child(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contender", required=True)
    parser.add_argument("--cgroup", required=True)
    parser.add_argument("--calls", type=int, required=True)
    parser.add_argument("--sleep", type=float, required=True)
    parser.add_argument("--timeout", type=float, required=True)
    args = parser.parse_args(argv)
    Path(args.cgroup, "cgroup.procs").write_text(f"{os.getpid()}\n")  # one thread yet
    from benchmarks.contenders import all_contenders

    contender = next(c for c in all_contenders() if c.name == args.contender)

    async def main(api: Api) -> dict[str, Any]:
        return await _calls(api, args.calls, args.sleep)

    reply = run_main(contender, main, timeout=args.timeout)
    print(json.dumps(reply, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(child(sys.argv[1:]))
