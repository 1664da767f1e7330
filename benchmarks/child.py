"""One isolated repeat: ``python -m benchmarks.child`` reads a JSON request on stdin,
measures one contender on one workload in this fresh interpreter, prints JSON on stdout.

Request: ``{"workload": name, "contender": name, "params": {...}, "scratch": dir}``.
Reply: ``{"cases": {case: {"metrics", "samples", "extra", "unsupported"}}}`` or
``{"error": "Type: message"}``. Used for workloads whose numbers are per process (thread
counts, resident memory): see ``Workload.isolated``.
"""

from __future__ import annotations

import dataclasses
import json
import sys

from benchmarks.contenders import all_contenders
from benchmarks.workloads import all_workloads


def main() -> int:
    request = json.load(sys.stdin)
    workload = next(w for w in all_workloads() if w.name == request["workload"])
    contender = next(c for c in all_contenders() if c.name == request["contender"])
    try:
        found = contender.probe()
        if not found.available:
            raise RuntimeError(f"{contender.name} is missing here: {found.reason}")
        state = workload.prepare(request["scratch"], request["params"])
        try:
            cases = workload.measure(contender, state, request["params"])
        finally:
            workload.cleanup(state)
    except Exception as exc:
        json.dump({"error": f"{type(exc).__name__}: {exc}"}, sys.stdout)
        return 0
    json.dump({"cases": {k: dataclasses.asdict(v) for k, v in cases.items()}}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
