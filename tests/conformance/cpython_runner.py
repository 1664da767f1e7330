"""Run modules of CPython's own ``test.test_asyncio`` with sysletloop standing in for asyncio's
loop, and write one JSON line per test outcome.

Usage (a subprocess of ``test_cpython_asyncio.py``; not collected by pytest)::

    python cpython_runner.py [--stock | --loop syslet|syslet-steps|kaio] --out OUT.jsonl NAME [...]

Without ``--stock``, the chosen loop (``SysletEventLoop``; the same with ``migrate_steps``
on, ``syslet-steps``; or ``sysletloop.kaio``'s ``KaioEventLoop``) replaces the stock loop
everywhere test_asyncio gets one:
the default policy (``asyncio.new_event_loop``, also after a test module's
``set_event_loop_policy(None)``), and the ``SelectorEventLoop``/``EventLoop`` classes that
many tests instantiate directly. With ``--stock`` nothing is replaced (the baseline).

A ``started`` line is written before each test, so a hang leaves its test's id behind.
"""

from __future__ import annotations

import argparse
import asyncio
import asyncio.unix_events
import json
import sys
import unittest
import warnings
from typing import Any


def substitute(which: str) -> None:
    import sysletloop
    from sysletloop import kaio

    unix_events: Any = asyncio.unix_events
    # The class asyncio's public DefaultEventLoopPolicy resolves to (touching the public
    # name warns from 3.14 on, where asyncio deprecated policies).
    base: Any = (
        unix_events._DefaultEventLoopPolicy
        if sys.version_info >= (3, 14)
        else unix_events.DefaultEventLoopPolicy
    )
    loop_class: type[asyncio.AbstractEventLoop]
    if which == "kaio":
        loop_class = kaio.KaioEventLoop

        class Policy(base):  # type: ignore[misc,valid-type]
            _loop_factory = kaio.KaioEventLoop

        policy: Any = Policy
    elif which == "syslet-steps":

        class StepsLoop(sysletloop.SysletEventLoop):
            def __init__(self, selector: Any = None, **options: Any) -> None:
                options.setdefault("migrate_steps", True)
                super().__init__(selector, **options)

        class StepsPolicy(sysletloop.EventLoopPolicy):
            def new_event_loop(self) -> StepsLoop:
                return StepsLoop()

        loop_class, policy = StepsLoop, StepsPolicy
    else:
        loop_class, policy = sysletloop.SysletEventLoop, sysletloop.EventLoopPolicy
    # Every name the default policy is made from. 3.14+: the private name, which both
    # set_event_loop_policy(None) and the public (deprecated, warning) name resolve to at
    # each use. 3.11-3.13: the public name, bound in each module at import.
    unix_events._DefaultEventLoopPolicy = policy
    if sys.version_info < (3, 14):
        for module in (asyncio, asyncio.events, unix_events):
            module.DefaultEventLoopPolicy = policy
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        asyncio.set_event_loop_policy(policy())
    for module in (asyncio, unix_events):
        for name in ("SelectorEventLoop", "EventLoop"):
            if hasattr(module, name):
                setattr(module, name, loop_class)
    loop = asyncio.new_event_loop()
    try:
        if not isinstance(loop, loop_class):
            raise SystemExit(f"substitution failed: new_event_loop() gave {type(loop)!r}")
    finally:
        loop.close()


class JsonLinesResult(unittest.TextTestResult):
    out_path = ""

    def _write(self, test: Any, outcome: str, detail: str = "") -> None:
        with open(self.out_path, "a", encoding="utf-8") as out:
            out.write(json.dumps({"id": test.id(), "outcome": outcome, "detail": detail}) + "\n")

    def startTest(self, test: unittest.TestCase) -> None:
        self._write(test, "started")
        super().startTest(test)

    def addSuccess(self, test: unittest.TestCase) -> None:
        super().addSuccess(test)
        self._write(test, "ok")

    def addFailure(self, test: unittest.TestCase, err: Any) -> None:
        super().addFailure(test, err)
        self._write(test, "failed", self._exc_info_to_string(err, test)[-3000:])

    def addError(self, test: unittest.TestCase, err: Any) -> None:
        super().addError(test, err)
        self._write(test, "failed", self._exc_info_to_string(err, test)[-3000:])

    def addSkip(self, test: unittest.TestCase, reason: str) -> None:
        super().addSkip(test, reason)
        self._write(test, "skipped", reason)

    def addExpectedFailure(self, test: unittest.TestCase, err: Any) -> None:
        super().addExpectedFailure(test, err)
        self._write(test, "ok")

    def addUnexpectedSuccess(self, test: unittest.TestCase) -> None:
        super().addUnexpectedSuccess(test)
        self._write(test, "failed", "unexpected success")

    def addSubTest(self, test: unittest.TestCase, subtest: Any, err: Any) -> None:
        super().addSubTest(test, subtest, err)
        if err is not None:
            self._write(test, "failed", self._exc_info_to_string(err, test)[-3000:])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stock", action="store_true")
    parser.add_argument("--loop", choices=["syslet", "syslet-steps", "kaio"], default="syslet")
    parser.add_argument("--out", required=True)
    parser.add_argument("names", nargs="+")
    args = parser.parse_args()
    if not args.stock:
        substitute(args.loop)
    JsonLinesResult.out_path = args.out
    names = [n if n.startswith("test.") else f"test.test_asyncio.{n}" for n in args.names]
    suite = unittest.defaultTestLoader.loadTestsFromNames(names)
    runner = unittest.TextTestRunner(stream=sys.stderr, verbosity=0, resultclass=JsonLinesResult)
    runner.run(suite)
    return 0


if __name__ == "__main__":
    sys.exit(main())
