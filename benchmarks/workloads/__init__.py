"""The workloads, in the issue's order (1-8, then later issues' 9-14); each names the
paper's claim (or the issue's target) it tests."""

from __future__ import annotations

from typing import Any

from benchmarks.workloads.base import Workload
from benchmarks.workloads.blocked_cost import BlockedCost
from benchmarks.workloads.cheap_calls import CheapCalls
from benchmarks.workloads.echo import Echo
from benchmarks.workloads.fastapi_uvicorn import FastAPIServe
from benchmarks.workloads.hashing import Hashing
from benchmarks.workloads.kaio_submit import KaioSubmit
from benchmarks.workloads.limits import Limits
from benchmarks.workloads.metadata import Metadata
from benchmarks.workloads.net_throughput import NetThroughput
from benchmarks.workloads.ops import Ops
from benchmarks.workloads.random_reads import RandomReads
from benchmarks.workloads.served_unwrapped import ServedUnwrapped
from benchmarks.workloads.timer_lag import TimerLag
from benchmarks.workloads.unwrapped import Unwrapped


def all_workloads() -> list[Workload[Any]]:
    return [
        Hashing(),
        CheapCalls(),
        RandomReads(),
        Echo(),
        BlockedCost(),
        KaioSubmit(),
        Ops(),
        TimerLag(),
        Limits(),
        FastAPIServe(),
        NetThroughput(),
        Unwrapped(),
        ServedUnwrapped(),
        Metadata(),
    ]


def workload_names() -> list[str]:
    return [w.name for w in all_workloads()]
