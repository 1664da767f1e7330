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
    suite: Path,
    tmp_path: Path,
    *args: str,
    conftest: str | None = None,
    first_on_path: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``suite`` in a pytest child; ``first_on_path`` goes before everything on
    PYTHONPATH (to shadow an installed package)."""
    where = tmp_path / suite.name
    shutil.copytree(suite, where)
    if conftest is not None:
        (where / "conftest.py").write_text(conftest)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    path = [str(IMPORT_ROOT), env.get("PYTHONPATH", "")]
    if first_on_path is not None:
        path.insert(0, str(first_on_path))
    env["PYTHONPATH"] = os.pathsep.join(path)
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


# pytest-asyncio 1.2 as far as the plugin can tell: the same import names and entry point
# (``asyncio = pytest_asyncio.plugin``), the ini options the example suite sets, no
# ``pytest_asyncio_loop_factories`` hookspec. It shadows the installed pytest-asyncio
# because it comes first on PYTHONPATH, and it runs no test: the session must stop first.
FAKE_OLD_PYTEST_ASYNCIO = {
    "__init__.py": '__version__ = "1.2.0"\n',
    "plugin.py": (
        "def pytest_addoption(parser):\n"
        "    parser.addini('asyncio_mode', 'fake')\n"
        "    parser.addini('asyncio_default_fixture_loop_scope', 'fake')\n"
    ),
}


def fake_old_pytest_asyncio(tmp_path: Path) -> Path:
    root = tmp_path / "fake-site"
    package = root / "pytest_asyncio"
    package.mkdir(parents=True)
    for name, text in FAKE_OLD_PYTEST_ASYNCIO.items():
        (package / name).write_text(text)
    return root


def test_a_pytest_asyncio_without_the_hook_is_a_usage_error(tmp_path: Path) -> None:
    # Before the check, this suite ran on the stock loop with no word (issue 14).
    fake = fake_old_pytest_asyncio(tmp_path)
    result = run_suite(EXAMPLES / "pytest_plugin", tmp_path, first_on_path=fake)
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, result.stdout + result.stderr
    assert "pytest-asyncio 1.2.0 has no pytest_asyncio_loop_factories hook" in result.stderr
    assert "needs pytest-asyncio 1.4 or later" in result.stderr
    assert "event_loop_policy" in result.stderr  # the way out for those who cannot upgrade
    assert "PASSED" not in result.stdout


def test_the_plugin_without_pytest_asyncio_is_a_usage_error(tmp_path: Path) -> None:
    result = run_suite(
        EXAMPLES / "pytest_plugin",
        tmp_path,
        "-p",
        "no:asyncio",
        "-p",
        "sysletloop.testing",
        conftest="# no pytest_plugins here\n",
    )
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, result.stdout + result.stderr
    assert "pytest-asyncio is not loaded" in result.stderr


def test_the_policy_fixture_of_older_pytest_asyncio(tmp_path: Path) -> None:
    # pytest-asyncio 1.4+ still honours the fixture, with a deprecation warning that
    # points at the hook (checked by hand on 0.24, 1.2 and 1.3, which have no hook: passes
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
