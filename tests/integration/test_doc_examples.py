"""The documentation's example programs run, and print what the pages say they print.

The pages include these files verbatim (``literalinclude``), so an example that stops
working fails here rather than rotting in the docs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import sysletloop

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
IMPORT_ROOT = Path(sysletloop.__file__).resolve().parent.parent

EXPECTED: dict[str, list[str]] = {
    "quickstart_run.py": [
        "b6ec91c6a9f9e8a271543e5068c35da04c181e2043680abb6882b98e2e7ee993",
        "syslet calls: 2",
    ],
    "quickstart_runner.py": ["SysletEventLoop"] * (2 if sys.version_info >= (3, 12) else 1),
    "quickstart_policy.py": ["SysletEventLoop"],
    "quickstart_anyio.py": ["['A', 'B', 'C']"],
    "tuning.py": [],  # the peak depends on timing; the example asserts its bound itself
    "migrate_aiofiles.py": ["written by aiofiles"],
    "migrate_sqlite.py": ["[('42',)]"],
}


def test_every_example_is_checked() -> None:
    assert sorted(EXPECTED) == sorted(p.name for p in EXAMPLES.glob("*.py"))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs(name: str) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(IMPORT_ROOT), env.get("PYTHONPATH", "")])
    warning_options = ["-W", "error"]
    if name == "quickstart_policy.py" and sys.version_info >= (3, 14):
        # asyncio itself deprecates its policy functions from 3.14 on (the page says so);
        # anything else that warns is still an error.
        for fn in ("set_event_loop_policy", "get_event_loop_policy"):
            warning_options += ["-W", f"ignore:'asyncio.{fn}' is deprecated:DeprecationWarning"]
    result = subprocess.run(
        [sys.executable, *warning_options, str(EXAMPLES / name)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    if name == "tuning.py":
        assert len(lines) == 1 and lines[0].startswith("peak blocked: ")
        assert lines[0].endswith(" of 4")
        return
    assert lines == EXPECTED[name]
