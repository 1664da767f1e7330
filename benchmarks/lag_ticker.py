"""The servers' own timer lag: a task sleeps 1 ms in a loop and records how late each
wake-up was, per window (``/_lag/reset`` starts one, ``/_lag`` reports it). Shared by the
served apps (:mod:`benchmarks.fastapi_app`, :mod:`benchmarks.aiohttp_app`)."""

from __future__ import annotations

import asyncio

__all__ = ["TICK", "Lag"]

TICK = 0.001  # seconds: the ticker's period


class Lag:
    """Lateness of a 1 ms timer, per window (owner: the loop, whichever thread runs it)."""

    def __init__(self) -> None:
        self.samples: list[float] = []

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(TICK)
            self.samples.append(max(0.0, loop.time() - before - TICK))

    def report(self) -> dict[str, float]:
        samples = sorted(self.samples)
        if not samples:
            return {"p50_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0, "ticks": 0}

        def at(q: float) -> float:
            return samples[min(len(samples) - 1, int(q * len(samples)))] * 1e3

        return {"p50_ms": at(0.50), "p99_ms": at(0.99), "max_ms": samples[-1] * 1e3,
                "ticks": len(samples)}  # fmt: skip
