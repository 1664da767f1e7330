"""Instructions per operation, ours beside stock asyncio's, counted by valgrind's callgrind.

Wall time on a shared 2-vCPU VM swings by 10% from run to run; instruction counts do not:
callgrind counts what the CPU executes for the same binary and input whatever else the
machine does. So the loop's hot paths are compared here by instructions.

Run from the repository root, with sysletloop installed into the Python you name and
valgrind on the machine (Debian: ``apt-get install valgrind``)::

    python -m benchmarks.instructions                    # this Python, a table
    python -m benchmarks.instructions --python .venv/py3.11/bin/python --json

How one number is made: a child process (this module, ``--child``) does an operation
``n`` times on one loop; it runs under callgrind twice, with ``n = N`` and ``n = 2N``,
and the operation's cost is ``(I(2N) - I(N)) / N``. Interpreter start-up, imports, loop
creation and teardown cancel out; what remains is the steady-state cost of one
operation. ``PYTHONHASHSEED=0`` and a fixed ``N`` make each child's work repeatable.

Valgrind runs the program some 50 times slower, so every decision the loop takes by the
clock would go the other way under it: a ``len`` call inline takes longer than the
predictor's ``SLOW_CALL`` (50 us), is predicted to block after two calls and is sent to
a spare thread, and a call can outlast the 1 ms threshold and migrate. The counts would
then measure paths a native run never takes, and vary from run to run. So the child
scales the loop's clocks to valgrind's: ``block_threshold`` is 60 s (the largest allowed)
and ``SLOW_CALL`` 1 s, and what is counted is the path a fast, non-blocking call takes
natively. With that, two runs agree to within a few instructions per operation (the
watchdog thread's rare timer wake-ups).

The operations (each on the stock loop and on the syslet loop, same Python):

``callback``       one ``call_soon`` callback run by the loop (a chain of them).
``iteration_100``  one loop iteration with 100 ready callbacks and one task step.
``idle_step``      one iteration whose only handle is a task step (``await sleep(0)``).
``socket_rt``      one round trip of 64 bytes over a socket pair, streams on both ends.
``future_rt``      a bare future round trip: ``call_soon(fut.set_result)``, ``await fut``.
``to_thread``      ``await asyncio.to_thread(len, b)`` (stock: a pool thread; ours: inline).
``run_in_executor`` ``await loop.run_in_executor(None, len, b)``.
``call``           ``await sysletloop.call(len, b)`` (syslet loop only).
``eager``          ``await sysletloop.call_eager(len, b)`` (syslet loop only; beside it,
                   stock's column holds a direct ``len(b)`` inside the coroutine).

With the option ``migrate_steps`` (``--migrate-steps``): the iteration operations on a
syslet loop with the option on, beside stock, counting the *main thread's* instructions
only (callgrind's ``--separate-threads``), in both columns. The option adds a sampling
thread and no code to an iteration; under valgrind that thread wakes 50 times too often
for the work it watches, so counting it would measure valgrind's clock, not the loop. Its
real cost is wall time on the machine (``net_throughput`` with ``sysletloop-steps``).

Where the fast path's instructions go (``--breakdown``): ``run_in_executor`` is counted
on the syslet loop as it is, then with one piece of the syslet machinery at a time
replaced by a C-level no-op of the same shape (``PIECES``), so that the difference is
what that piece costs per call: the thread-state switch around the inline call
(``OwnerThreadState.suspend``/``resume``), the watchdog's arm and disarm, and the
predictor's profile lookup. What remains beside stock's ``future_rt`` is the call's
record, the pending queue and delivering the outcome. The replacements change nothing
else on that path (a call of ``len`` never blocks, is never predicted, and runs with no
async generator or running loop in sight).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

OPERATIONS = (
    "callback",
    "iteration_100",
    "idle_step",
    "socket_rt",
    "future_rt",
    "to_thread",
    "run_in_executor",
    "call",
    "eager",
)
SYSLET_ONLY = frozenset({"call", "eager"})
# --breakdown: run_in_executor on the syslet loop with one piece replaced by a no-op.
PIECES = ("thread_state", "watchdog", "profile")
DEFAULT_N = 2000
# The loop's clock-driven decisions, scaled to a program running under valgrind.
VALGRIND_THRESHOLD = 60.0  # seconds: the largest block_threshold the loop accepts
VALGRIND_SLOW_CALL = 1.0  # seconds, for the predictor's SLOW_CALL (natively 50 us)


# ---------------------------------------------------------------- the child's operations


def _noop() -> None:
    pass


async def _callback_chain(n: int) -> None:
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    left = [n]

    def step() -> None:
        left[0] -= 1
        if left[0]:
            loop.call_soon(step)
        else:
            done.set_result(None)

    loop.call_soon(step)
    await done


async def _iteration_100(n: int) -> None:
    loop = asyncio.get_running_loop()
    for _ in range(n):
        for _ in range(100):
            loop.call_soon(_noop)
        await asyncio.sleep(0)


async def _idle_step(n: int) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def _socket_rt(n: int) -> None:
    a, b = socket.socketpair()
    reader_a, writer_a = await asyncio.open_connection(sock=a)
    reader_b, writer_b = await asyncio.open_connection(sock=b)
    payload = b"x" * 64
    for _ in range(n):
        writer_a.write(payload)
        got = await reader_b.readexactly(64)
        writer_b.write(got)
        await reader_a.readexactly(64)
    for writer in (writer_a, writer_b):
        writer.close()
        await writer.wait_closed()


async def _future_rt(n: int) -> None:
    loop = asyncio.get_running_loop()
    for _ in range(n):
        fut = loop.create_future()
        loop.call_soon(fut.set_result, None)
        await fut


async def _to_thread(n: int) -> None:
    data = b"abc"
    for _ in range(n):
        await asyncio.to_thread(len, data)


async def _run_in_executor(n: int) -> None:
    loop = asyncio.get_running_loop()
    data = b"abc"
    for _ in range(n):
        await loop.run_in_executor(None, len, data)


async def _call(n: int) -> None:
    import sysletloop

    data = b"abc"
    for _ in range(n):
        await sysletloop.call(len, data)


async def _eager(n: int, *, direct: bool) -> None:
    import sysletloop

    data = b"abc"
    for _ in range(n):
        if direct:
            len(data)
        else:
            await sysletloop.call_eager(len, data)


def _operation(name: str, loop: str) -> Callable[[int], Awaitable[None]]:
    if name == "eager":
        return lambda n: _eager(n, direct=loop == "stock")
    table: dict[str, Callable[[int], Awaitable[None]]] = {
        "callback": _callback_chain,
        "iteration_100": _iteration_100,
        "idle_step": _idle_step,
        "socket_rt": _socket_rt,
        "future_rt": _future_rt,
        "to_thread": _to_thread,
        "run_in_executor": _run_in_executor,
        "call": _call,
    }
    return table[name]


def _child(name: str, loop: str, n: int) -> None:
    """Warm up (n // 10, so caches and the pool exist in both runs alike), then n."""
    import functools

    import sysletloop
    from sysletloop import _profile, _takeback

    factory: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop
    loop, _, without = loop.partition(":")  # "syslet:watchdog": without the watchdog
    if loop in ("syslet", "syslet+steps"):
        factory = functools.partial(
            sysletloop.new_event_loop,
            block_threshold=VALGRIND_THRESHOLD,
            **({"migrate_steps": True} if loop == "syslet+steps" else {}),
        )
        loop = "syslet"
    op = _operation(name, loop)
    if without:
        op = _without(without, op)

    async def main() -> None:
        await op(max(1, n // 10))
        await op(n)

    # Valgrind's clock, not the machine's (see the module docstring); put back after, as
    # the tests run a child's work in their own process.
    saved = _profile.SLOW_CALL, _takeback.SLOW_CALL
    _profile.SLOW_CALL = _takeback.SLOW_CALL = VALGRIND_SLOW_CALL  # type: ignore[misc]
    try:
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(main())
    finally:
        _profile.SLOW_CALL, _takeback.SLOW_CALL = saved  # type: ignore[misc]


class _NoWatchdog:
    """A watchdog that does nothing, called as the C one is (slotted, C callables):
    ``arm(cell)`` gives a number (``id``: the call's elapsed time comes out negative,
    "fast"), ``disarm()`` a float; neither has any effect."""

    __slots__ = ()
    arm = id
    disarm = time.monotonic


def _without(piece: str, op: Callable[[int], Awaitable[None]]) -> Callable[[int], Awaitable[None]]:
    """``op``, on a syslet loop with ``piece`` replaced by a C-level no-op (--breakdown)."""
    import types

    from sysletloop import _profile
    from sysletloop._threadstate import OwnerThreadState

    if piece not in PIECES:
        raise ValueError(f"unknown piece {piece!r}; expected one of {PIECES}")

    async def run(n: int) -> None:
        loop: Any = asyncio.get_running_loop()
        sy = loop._syslet
        saved = (OwnerThreadState.suspend, OwnerThreadState.resume, sy.profiles)
        await op(1)  # the loop starts its threads (and its watchdog) at the first call
        watchdog = sy.watchdog
        try:
            if piece == "thread_state":
                # object.__init__(state): a C call that does nothing
                OwnerThreadState.suspend = OwnerThreadState.resume = object.__init__  # type: ignore[method-assign,assignment]
            elif piece == "watchdog":
                sy.watchdog = _NoWatchdog()
            else:
                profile = _profile.Profile("len")
                sy.profiles = types.SimpleNamespace(get={len: profile}.get)  # dict.get: C
            await op(n)
        finally:
            OwnerThreadState.suspend, OwnerThreadState.resume, sy.profiles = saved  # type: ignore[method-assign]
            sy.watchdog = watchdog

    return run


# ---------------------------------------------------------------- the parent


def _instructions(python: str, name: str, loop: str, n: int, *, main_only: bool = False) -> int:
    """Total instructions (all threads, or the main thread's only) of one child run
    under callgrind."""
    with tempfile.TemporaryDirectory(prefix="sysletloop-callgrind-") as tmp:
        out = os.path.join(tmp, "callgrind.out")
        env = dict(os.environ, PYTHONHASHSEED="0")
        env["PYTHONPATH"] = os.pathsep.join([os.getcwd(), env.get("PYTHONPATH", "")])
        command = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            *(["--separate-threads=yes"] if main_only else []),
            python,
            "-m",
            "benchmarks.instructions",
            "--child",
            name,
            loop,
            str(n),
        ]
        result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{name} on {loop} failed under callgrind:\n{result.stderr[-2000:]}")
        if main_only:
            return _main_thread_total(out + "-01")
        match = re.search(r"Collected\s*:\s*(\d+)", result.stderr)
        if match is None:
            raise RuntimeError(
                f"no instruction total in callgrind's output:\n{result.stderr[-2000:]}"
            )
        return int(match.group(1))


def _main_thread_total(path: str) -> int:
    """The instruction total in one thread's callgrind file (``--separate-threads``)."""
    with open(path, encoding="utf-8", errors="replace") as dump:
        for line in dump:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise RuntimeError(f"no total in {path}")


# The operations that are loop iterations (no call submitted): what --migrate-steps counts.
ITERATION_OPERATIONS = ["callback", "iteration_100", "idle_step", "socket_rt", "future_rt"]


def measure(
    python: str, operations: list[str], n: int, *, migrate_steps: bool = False
) -> list[dict[str, Any]]:
    rows = []
    syslet_kind = "syslet+steps" if migrate_steps else "syslet"
    for name in operations:
        row: dict[str, Any] = {"operation": name}
        for loop in ("stock", "syslet"):
            if loop == "stock" and name == "call":
                row[loop] = None
                continue
            kind = syslet_kind if loop == "syslet" else loop
            low = _instructions(python, name, kind, n, main_only=migrate_steps)
            high = _instructions(python, name, kind, 2 * n, main_only=migrate_steps)
            row[loop] = (high - low) / n
        stock, ours = row["stock"], row["syslet"]
        row["ratio"] = ours / stock if stock else None
        rows.append(row)
    return rows


def breakdown(python: str, n: int) -> list[dict[str, Any]]:
    """run_in_executor on the syslet loop, whole and without each piece; future_rt on
    stock beside it."""

    def per_op(loop: str, name: str = "run_in_executor") -> float:
        return (_instructions(python, name, loop, 2 * n) - _instructions(python, name, loop, n)) / n

    whole = per_op("syslet")
    rows = [{"piece": "stock future_rt (the floor)", "instructions": per_op("stock", "future_rt")}]
    rows.append({"piece": "run_in_executor, whole", "instructions": whole})
    for piece in PIECES:
        rows.append({"piece": piece, "instructions": whole - per_op(f"syslet:{piece}")})
    return rows


def _breakdown_table(python_version: str, rows: list[dict[str, Any]]) -> str:
    lines = [
        f"run_in_executor(None, len, b) on sysletloop, Python {python_version}: "
        "instructions per call, and what each piece costs of them",
    ]
    for row in rows:
        lines.append(f"{row['piece']:<32} {row['instructions']:>10,.0f}")
    return "\n".join(lines)


def _table(python_version: str, rows: list[dict[str, Any]]) -> str:
    lines = [
        f"instructions per operation, Python {python_version} (callgrind, (I(2N)-I(N))/N)",
        f"{'operation':<16} {'stock asyncio':>14} {'sysletloop':>12} {'ratio':>7}",
    ]
    for row in rows:
        stock = "-" if row["stock"] is None else f"{row['stock']:,.0f}"
        ratio = "-" if row["ratio"] is None else f"{row['ratio']:.2f}"
        lines.append(f"{row['operation']:<16} {stock:>14} {row['syslet']:>12,.0f} {ratio:>7}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.instructions")
    parser.add_argument("--python", default=sys.executable, help="the interpreter to measure")
    parser.add_argument("--n", type=int, default=DEFAULT_N, help="operations in the base run")
    parser.add_argument("--ops", nargs="+", choices=OPERATIONS, default=list(OPERATIONS))
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--breakdown", action="store_true", help="where run_in_executor's instructions go"
    )
    parser.add_argument(
        "--migrate-steps",
        action="store_true",
        help="the iteration operations with migrate_steps on, main thread only (both loops)",
    )
    parser.add_argument("--child", nargs=3, metavar=("OP", "LOOP", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        name, loop, n = args.child
        _child(name, loop, int(n))
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (Debian: apt-get install valgrind)", file=sys.stderr)
        return 2
    version = subprocess.run(
        [args.python, "-c", "import sys; print(sys.version.split()[0])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if args.breakdown:
        rows = breakdown(args.python, args.n)
        text = _breakdown_table(version, rows)
    else:
        ops = args.ops
        if args.migrate_steps and ops == list(OPERATIONS):
            ops = ITERATION_OPERATIONS
        rows = measure(args.python, ops, args.n, migrate_steps=args.migrate_steps)
        text = _table(version, rows)
        if args.migrate_steps:
            text += "\n(sysletloop with migrate_steps=True; main thread only, both columns)"
    if args.json:
        print(json.dumps({"python": version, "n": args.n, "rows": rows}, indent=2))
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
