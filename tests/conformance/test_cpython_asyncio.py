"""CPython's own asyncio test suite, run against sysletloop's loops: an independent judge.

Each module of ``test.test_asyncio`` (the interpreter's installed test package) runs in a
subprocess with the syslet loop, then the KAIO loop, substituted for the stock loop
(``cpython_runner.py``); both promise to be stock asyncio apart from what they add. A test
that fails there is run again on stock asyncio: failing on stock too means this machine
cannot run it (no network, a slow VM...), not a difference. A test that passes on stock
and fails on sysletloop twice more on its own is a contract difference, and fails here,
unless it is in ``DOCUMENTED``: a difference the syslet model makes on purpose.

Skipped where the interpreter was installed without its ``test`` package (Debian splits
it into ``libpython3.x-testsuite``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import sysletloop

pytestmark = [pytest.mark.conformance, pytest.mark.timeout(1200)]

RUNNER = Path(__file__).with_name("cpython_runner.py")
MODULE_TIMEOUT = 600  # seconds for one module's run; a hang leaves its test's id behind

MODULES = [
    "test_base_events",
    "test_buffered_proto",
    "test_context",
    "test_eager_task_factory",
    "test_events",
    "test_futures",
    "test_futures2",
    "test_locks",
    "test_pep492",
    "test_protocols",
    "test_queues",
    "test_runners",
    "test_selector_events",
    "test_sendfile",
    "test_server",
    "test_sock_lowlevel",
    "test_ssl",
    "test_sslproto",
    "test_staggered",
    "test_streams",
    "test_subprocess",
    "test_taskgroups",
    "test_tasks",
    "test_threads",
    "test_timeouts",
    "test_transports",
    "test_unix_events",
    "test_waitfor",
]

# Differences on purpose. test_run_in_executor asserts that run_in_executor(None, fn) ran
# fn on a thread other than the loop's: syslets start fn inline in the loop's thread and
# move the *loop* only if fn blocks (docs/migrating.rst, "What changes for the callable").
DOCUMENTED = {
    f"test.test_asyncio.test_events.{kind}EventLoopTests.test_run_in_executor"
    for kind in ("EPoll", "Poll", "Select")
}


def _run(names: list[str], out: Path, *, loop: str) -> dict[str, tuple[str, str]]:
    """Run *names* in a subprocess on *loop* (``syslet``, ``kaio`` or ``stock``); each
    test's outcome: ok, failed, skipped or hung."""
    out.unlink(missing_ok=True)
    choice = ["--stock"] if loop == "stock" else ["--loop", loop]
    command = [sys.executable, str(RUNNER), "--out", str(out), *choice]
    # the subprocess imports the very sysletloop this process imported (an installed
    # copy and a source tree may both be on hand; a relative PYTHONPATH would not follow)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(sysletloop.__file__).parent.parent), env.get("PYTHONPATH", "")]
    )
    # on a timeout, the hung test is the one left "started"
    with contextlib.suppress(subprocess.TimeoutExpired):
        subprocess.run(
            [*command, *names],
            cwd=out.parent,
            env=env,
            capture_output=True,
            timeout=MODULE_TIMEOUT,
            check=False,
        )
    outcomes: dict[str, tuple[str, str]] = {}
    if out.exists():
        for line in out.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            test_id, outcome = record["id"], record["outcome"]
            if outcome == "started":
                outcomes.setdefault(test_id, ("hung", "no outcome before the time limit"))
            elif outcomes.get(test_id, ("",))[0] != "failed":  # a failed subtest sticks
                outcomes[test_id] = (outcome, record["detail"])
    return outcomes


def _failed(outcomes: dict[str, tuple[str, str]]) -> set[str]:
    return {t for t, (outcome, _) in outcomes.items() if outcome in ("failed", "hung")}


# The syslet loop with migrate_steps on, only when asked for (it is off by default; the
# README says why).
LOOPS = ["syslet", "kaio"] + (
    ["syslet-steps"] if os.environ.get("SYSLETLOOP_CONFORMANCE_STEPS") == "1" else []
)


@pytest.mark.parametrize("module", MODULES)
@pytest.mark.parametrize("loop", LOOPS)
def test_cpython_asyncio_module(loop: str, module: str, tmp_path: Path) -> None:
    if importlib.util.find_spec("test.test_asyncio") is None:
        pytest.skip("this interpreter has no test package (test.test_asyncio)")
    if importlib.util.find_spec(f"test.test_asyncio.{module}") is None:
        pytest.skip(f"test.test_asyncio.{module} does not exist in this Python")
    if loop == "kaio" and not sys.platform.startswith("linux"):
        pytest.skip("the KAIO loop is Linux only")
    if loop == "syslet-steps" and sys.version_info < (3, 12):
        pytest.skip("migrate_steps needs sys.monitoring (3.12+)")
    results = _run([module], tmp_path / f"{loop}.jsonl", loop=loop)
    assert any(outcome == "ok" for outcome, _ in results.values()), (
        f"{module}: no test passed on {loop}; outcomes: {sorted(results.items())[:5]}"
    )
    suspects = sorted(_failed(results) - (DOCUMENTED if loop.startswith("syslet") else set()))
    if suspects:
        stock = _run(suspects, tmp_path / "stock.jsonl", loop="stock")
        suspects = [t for t in suspects if stock.get(t, ("",))[0] == "ok"]
    differences = []
    for test_id in suspects:
        again = [_run([test_id], tmp_path / "again.jsonl", loop=loop) for _ in range(2)]
        if all(test_id in _failed(rerun) for rerun in again):
            differences.append(f"{test_id}: {results[test_id][1].strip()[-1500:]}")
    report = "\n\n".join(differences)
    assert not differences, f"the {loop} loop differs from stock asyncio:\n{report}"
