"""Running a user's test suite on sysletloop: pytest-asyncio (the ``sysletloop.testing``
plugin, or the policy fixture of older versions) and anyio's pytest plugin.

Each suite is a directory of ``docs/examples`` (the very files the documentation shows),
copied to a temporary directory and run by a separate pytest process, as a user would.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import sysletloop

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"

# The package's import root, so that the child finds the same sysletloop as we do
# (an installed copy, or src/ in a checkout).
IMPORT_ROOT = Path(sysletloop.__file__).resolve().parent.parent


def run_suite(
    suite: Path, tmp_path: Path, *args: str, conftest: str | None = None
) -> subprocess.CompletedProcess[str]:
    where = tmp_path / suite.name
    shutil.copytree(suite, where)
    if conftest is not None:
        (where / "conftest.py").write_text(conftest)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PYTHONPATH"] = os.pathsep.join([str(IMPORT_ROOT), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-v", "-W", "error", *args],
        cwd=where,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def outcome(result: subprocess.CompletedProcess[str]) -> dict[str, int]:
    """The counts on pytest's closing line: {"passed": 4, ...}."""
    last = result.stdout.strip().splitlines()[-1]
    return {word: int(n) for n, word in re.findall(r"(\d+) (\w+)", last)}


def test_the_plugin_runs_each_test_on_the_loops_the_ini_names(tmp_path: Path) -> None:
    result = run_suite(EXAMPLES / "pytest_plugin", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert outcome(result) == {"passed": 4}
    for test in ("test_blocking_work_does_not_stall_the_loop", "test_which_loop"):
        assert f"{test}[syslet] PASSED" in result.stdout
        assert f"{test}[asyncio] PASSED" in result.stdout


def test_the_plugin_defaults_to_sysletloop_alone(tmp_path: Path) -> None:
    result = run_suite(
        EXAMPLES / "pytest_plugin", tmp_path, "-o", "sysletloop_loops=syslet", "-k", "which"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert outcome(result) == {"passed": 1, "deselected": 1}
    assert "[asyncio]" not in result.stdout


def test_the_plugin_can_be_enabled_with_dash_p(tmp_path: Path) -> None:
    result = run_suite(
        EXAMPLES / "pytest_plugin",
        tmp_path,
        "-p",
        "sysletloop.testing",
        conftest="# no pytest_plugins here\n",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert outcome(result) == {"passed": 4}


def test_a_suites_own_hook_comes_first(tmp_path: Path) -> None:
    conftest = (
        "import asyncio, sysletloop\n"
        "pytest_plugins = ['sysletloop.testing']\n"
        "def pytest_asyncio_loop_factories(config, item):\n"
        "    return {'mine': sysletloop.new_event_loop, 'asyncio': asyncio.new_event_loop}\n"
    )
    result = run_suite(EXAMPLES / "pytest_plugin", tmp_path, "-k", "which", conftest=conftest)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "test_which_loop[mine] PASSED" in result.stdout
    assert "test_which_loop[asyncio] PASSED" in result.stdout


def test_an_unknown_loop_name_is_a_usage_error(tmp_path: Path) -> None:
    result = run_suite(EXAMPLES / "pytest_plugin", tmp_path, "-o", "sysletloop_loops=uvloop")
    assert result.returncode == pytest.ExitCode.USAGE_ERROR
    assert "sysletloop_loops = 'uvloop'" in result.stderr


def test_the_policy_fixture_of_older_pytest_asyncio(tmp_path: Path) -> None:
    # pytest-asyncio 1.3+ still honours the fixture, with a deprecation warning that
    # points at the hook (checked by hand on 0.24 and 1.2, which have no hook: passes
    # with no warning).
    result = run_suite(
        EXAMPLES / "pytest_policy", tmp_path, "-W", "default::pytest.PytestDeprecationWarning"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert outcome(result)["passed"] == 1


def test_the_anyio_plugin_with_sysletloop_and_trio(tmp_path: Path) -> None:
    pytest.importorskip("trio")
    result = run_suite(
        EXAMPLES / "pytest_anyio", tmp_path, "-o", "asyncio_default_fixture_loop_scope=function"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "test_to_thread_on_each_backend[sysletloop] PASSED" in result.stdout
    assert "test_to_thread_on_each_backend[trio] PASSED" in result.stdout
