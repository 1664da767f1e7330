"""Every installed contender runs the same tiny workload code through its adapter; missing
ones say why."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

from benchmarks.contenders import BASELINE, Api, Contender, NotSupported, all_contenders
from benchmarks.contenders.base import CALL, ECHO, FILE, FS, snapshot_dict
from benchmarks.workloads.base import FirstStep, Ticker

CONTENDERS = all_contenders()
LOOPS = [c for c in CONTENDERS if c.family != "external"]


def _available(c: Contender) -> None:
    found = c.probe()
    if not found.available:
        assert found.reason, f"{c.name} is missing without a reason"
        pytest.skip(f"{c.name} missing: {found.reason}")


def test_names_are_unique_and_baseline_is_stock_asyncio() -> None:
    names = [c.name for c in CONTENDERS]
    assert len(names) == len(set(names))
    baseline = next(c for c in CONTENDERS if c.name == BASELINE)
    assert baseline.probe().available


def test_every_contender_is_available_or_missing_with_a_reason() -> None:
    for c in CONTENDERS:
        found = c.probe()
        assert found.available or found.reason


@pytest.mark.parametrize("contender", LOOPS, ids=lambda c: c.name)
def test_call_gather_sleep_and_files(contender: Contender, tmp_path: Path) -> None:
    _available(contender)
    path = tmp_path / "f.dat"
    path.write_bytes(b"abcdefgh" * 1024)

    async def main(api: Api) -> dict[str, object]:
        out: dict[str, object] = {}
        order: list[int] = []

        async def item(i: int) -> int:
            # Due 20 ms apart from one start, not 20 ms after each task starts: a task that
            # starts late on a loaded machine (one seen at load 5 on 2 vCPUs) keeps its turn.
            await api.sleep(max(0.0, start + 0.02 * (3 - i) - api.clock()))
            order.append(i)
            return i * 10

        start = api.clock()
        out["gather"] = await api.gather(*(lambda i=i: item(i) for i in range(3)))
        out["order"] = list(order)
        out["pair"] = await api.pair(lambda: item(2), lambda: api.sleep(0))
        if CALL in api.provides:
            out["call"] = await api.call(divmod, 7, 2)
        else:
            with pytest.raises(NotSupported):
                await api.call(divmod, 7, 2)
        if FILE in api.provides:
            f = await api.open_file(str(path))
            try:
                out["pread"] = await f.pread(4, 8)
                buf = bytearray(8)
                out["preadinto"] = (await f.preadinto(buf, 0), bytes(buf))
            finally:
                await f.aclose()
        if FS in api.provides:
            await api.fs("stat", str(path))
            await api.fs("open_close", str(path))
        if CALL in api.provides or FS in api.provides:
            out["small"] = await api.read_small(str(path))
        step = FirstStep(api.sleep(0.001))
        await step
        out["first_step"] = 0 <= step.first_step <= step.total
        out["stats"] = api.stats()
        return out

    out = contender.run(main, timeout=30)
    assert out["gather"] == [0, 10, 20]
    assert out["order"] == [2, 1, 0]
    assert out["pair"] == (20, None)
    if CALL in contender.provides:
        assert out["call"] == (3, 1)
    if FILE in contender.provides:
        assert out["pread"] == b"abcd"
        assert out["preadinto"] == (8, b"abcdefgh")
    if CALL in contender.provides or FS in contender.provides:
        assert out["small"] == b"abcdefgh" * 1024
    assert out["first_step"] is True
    assert out["stats"] is None or isinstance(out["stats"], dict)


@pytest.mark.parametrize(
    "contender", [c for c in LOOPS if CALL in c.provides], ids=lambda c: c.name
)
def test_max_threads_and_timeout(contender: Contender) -> None:
    _available(contender)

    async def main(api: Api) -> int:
        return len(await api.gather(*(lambda: api.call(time.sleep, 0.001) for _ in range(4))))

    assert contender.run(main, max_threads=2, timeout=30) == 4

    async def hang(api: Api) -> None:
        await api.sleep(10)

    with pytest.raises(TimeoutError):
        contender.run(hang, timeout=0.05)


@pytest.mark.parametrize(
    "contender", [c for c in LOOPS if ECHO in c.provides], ids=lambda c: c.name
)
def test_echo_server_answers_on_loopback(contender: Contender) -> None:
    _available(contender)

    async def main(api: Api) -> list[bytes]:
        async def body(port: int) -> list[bytes]:
            got: list[bytes] = []

            def client() -> None:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                    s.sendall(b"ping")
                    got.append(s.recv(4))

            t = threading.Thread(target=client)
            t.start()
            while t.is_alive():
                await api.sleep(0.005)
            t.join()
            return got

        return await api.serve_echo(body)

    assert contender.run(main, timeout=30) == [b"ping"]


def test_ticker_measures_gaps() -> None:
    t = Ticker.__new__(Ticker)
    t.start = 10.0
    t.times = [0.1, 0.2, 0.6]
    assert t.max_gap_between(10.0, 11.0) == pytest.approx(0.4)


def test_snapshot_dict_handles_the_usual_shapes() -> None:
    from collections import namedtuple
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class D:
        a: int

    N = namedtuple("N", "a")

    class Plain:
        def __init__(self) -> None:
            self.a = 1
            self._hidden = 2

    assert snapshot_dict(D(1)) == snapshot_dict(N(1)) == snapshot_dict(Plain()) == {"a": 1}


def test_rloop_sits_beside_uvloop() -> None:
    names = [c.name for c in CONTENDERS]
    assert names.index("rloop") == names.index("uvloop") + 1


def test_a_loop_that_cannot_be_installed_is_missing_with_the_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As where rloop has no wheel for the Python: the import fails, the row stays.
    from benchmarks.contenders import asyncio_family

    monkeypatch.setitem(__import__("sys").modules, "rloop", None)  # import raises ImportError
    rloop = next(c for c in asyncio_family.contenders() if c.name == "rloop")
    found = rloop.probe()
    assert not found.available
    assert found.reason is not None and "rloop is not installed" in found.reason
