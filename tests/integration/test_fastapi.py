"""FastAPI and Starlette on a syslet loop with ``route_anyio`` (``fastapi_app.py``).

In process, through ``httpx.ASGITransport``, each test runs on a routed syslet loop and on
stock asyncio (anyio's worker threads), so a difference shows as one failing parameter.
Out of process, a real uvicorn serves the app on 127.0.0.1 with
``--loop sysletloop:new_anyio_event_loop`` (the whole change a FastAPI user makes), and
the tests talk HTTP to it: the same endpoints, a client that goes away mid-request, many
concurrent requests, and ``--workers 2``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

import sysletloop

from . import fastapi_app
from .fastapi_app import FILE_BYTES, app

T = TypeVar("T")
LoopFactory = Callable[[], asyncio.AbstractEventLoop]

ROOT = Path(__file__).resolve().parents[2]
LOOP_OPTION = "sysletloop:new_anyio_event_loop"


@pytest.fixture(
    params=[
        pytest.param(sysletloop.new_anyio_event_loop, id="routed"),
        pytest.param(asyncio.new_event_loop, id="asyncio"),
    ]
)
def loop_factory(request: pytest.FixtureRequest) -> LoopFactory:
    factory: LoopFactory = request.param
    return factory


def routed(factory: LoopFactory) -> bool:
    return factory is sysletloop.new_anyio_event_loop


def drive(factory: LoopFactory, body: Callable[[httpx.AsyncClient], Awaitable[T]]) -> T:
    """Run ``body`` with a client of the in-process app, on a loop from ``factory``."""

    async def main() -> T:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            await client.post("/reset")
            return await asyncio.wait_for(body(client), 60)

    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main())


# ------------------------------------------------------------ in process (ASGI)


def test_def_endpoints_fast_and_blocking(loop_factory: LoopFactory) -> None:
    async def body(client: httpx.AsyncClient) -> None:
        info = (await client.get("/info")).json()
        fast = (await client.get("/fast")).json()
        # A fast def endpoint runs inline on the loop's thread when routed; on an anyio
        # worker thread otherwise.
        assert (fast["thread"] == info["loop_thread"]) == routed(loop_factory)
        assert info["route_anyio"] == routed(loop_factory)
        replies = await asyncio.gather(*(client.get(f"/sleep?s=0.05&i={i}") for i in range(8)))
        assert sorted(r.json()["i"] for r in replies) == list(range(8))
        if routed(loop_factory):
            loop = asyncio.get_running_loop()
            assert isinstance(loop, sysletloop.SysletEventLoop)
            assert loop.syslet_stats().migrations + loop.syslet_stats().predicted_blocking >= 1

    drive(loop_factory, body)


def test_a_slow_def_endpoint_does_not_send_the_fast_ones_away(loop_factory: LoopFactory) -> None:
    # FastAPI runs every def endpoint through one trampoline (_run_sync_endpoint): the
    # blocking predictor must learn per endpoint, not per trampoline.
    if not routed(loop_factory):
        pytest.skip("about the syslet loop's predictor")

    async def body(client: httpx.AsyncClient) -> None:
        for i in range(3):
            await client.get(f"/sleep?s=0.01&i={i}")
        info = (await client.get("/info")).json()
        assert (await client.get("/fast")).json()["thread"] == info["loop_thread"]
        loop = asyncio.get_running_loop()
        assert isinstance(loop, sysletloop.SysletEventLoop)
        names = {c.name: c for c in loop.syslet_callables()}
        assert any(name.startswith("sleep ") for name in names), names
        assert any(name.startswith("fast ") for name in names), names

    drive(loop_factory, body)


def test_def_endpoint_raising(loop_factory: LoopFactory) -> None:
    async def body(client: httpx.AsyncClient) -> None:
        with pytest.raises(ValueError, match="raised in a def endpoint"):
            await client.get("/raise")
        reply = await client.get("/http-error")
        assert reply.status_code == 418
        assert reply.json() == {"detail": "teapot"}

    drive(loop_factory, body)


def test_sync_dependency_with_yield(loop_factory: LoopFactory) -> None:
    async def body(client: httpx.AsyncClient) -> list[str]:
        assert (await client.get("/dep")).json() == {"value": "resource"}
        return list(fastapi_app.events)

    assert drive(loop_factory, body) == ["dependency enter", "endpoint", "dependency exit"]


def test_streaming_response_of_a_sync_generator(loop_factory: LoopFactory) -> None:
    async def body(client: httpx.AsyncClient) -> None:
        reply = await client.get("/stream?chunks=20&delay=0.002")
        assert reply.text == "".join(f"chunk {i}\n" for i in range(20))

    drive(loop_factory, body)
    assert "stream closed after 20" in fastapi_app.events


def test_file_response_and_static_files(loop_factory: LoopFactory) -> None:
    async def body(client: httpx.AsyncClient) -> None:
        replies = await asyncio.gather(*(client.get("/file") for _ in range(5)))
        assert all(r.content == FILE_BYTES for r in replies)
        assert (await client.get("/static/hello.txt")).text == "hello, static\n"
        assert (await client.get("/static/data.bin")).content == FILE_BYTES
        assert (await client.get("/static/missing.txt")).status_code == 404

    drive(loop_factory, body)


def test_sync_background_tasks(loop_factory: LoopFactory) -> None:
    async def body(client: httpx.AsyncClient) -> None:
        assert (await client.get("/background?tag=a")).json() == {"queued": "a"}

    drive(loop_factory, body)
    assert "background a" in fastapi_app.events


def test_def_endpoint_calling_anyio_from_thread(loop_factory: LoopFactory) -> None:
    async def body(client: httpx.AsyncClient) -> None:
        for x in range(3):  # inline first, then on a spare once predicted to block
            reply = (await client.get(f"/from-thread?x={x}")).json()
            assert reply["got"]["x"] == x

    drive(loop_factory, body)


def test_starlette_run_in_threadpool_and_sqlite(loop_factory: LoopFactory) -> None:
    async def body(client: httpx.AsyncClient) -> None:
        assert (await client.get("/starlette/threadpool?n=5")).json()["sum"] == 10
        assert (await client.get("/sqlite?key=3")).json() == {"v": "value 3"}

    drive(loop_factory, body)


def test_many_concurrent_requests_none_lost_or_duplicated(loop_factory: LoopFactory) -> None:
    async def body(client: httpx.AsyncClient) -> list[int]:
        replies = await asyncio.gather(
            *(client.get(f"/sleep?s={0.01 if i % 3 else 0}&i={i}") for i in range(300))
        )
        assert [r.json()["i"] for r in replies] == list(range(300))
        return sorted(fastapi_app.seen_ids)

    assert drive(loop_factory, body) == list(range(300))


# ------------------------------------------------------------ a real uvicorn


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Server:
    def __init__(self, tmp: Path, *extra: str, gunicorn: bool = False) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, PYTHONPATH=str(ROOT), SYSLETLOOP_TEST_FILES=str(tmp))
        self.log = tmp / f"server-{self.port}.log"
        if gunicorn:
            argv = [sys.executable, "-m", "gunicorn", "tests.integration.fastapi_app:app",
                    "-k", "tests.integration.gunicorn_worker.SysletWorker",
                    "-b", f"127.0.0.1:{self.port}", *extra]  # fmt: skip
        else:
            argv = [sys.executable, "-m", "uvicorn", "tests.integration.fastapi_app:app",
                    "--host", "127.0.0.1", "--port", str(self.port), "--loop", LOOP_OPTION,
                    "--log-level", "warning", *extra]  # fmt: skip
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(self.url + "/info", timeout=1)
                return
            except httpx.TransportError as exc:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    log = self.log.read_text()
                    raise RuntimeError("uvicorn did not start:\n" + log) from exc
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def events(self) -> dict[str, Any]:
        reply: dict[str, Any] = httpx.get(self.url + "/events", timeout=10).json()
        return reply

    def events_once(self, event: str, timeout: float = 30) -> list[str]:
        """The server's events once ``event`` is among them: what the server does after
        a reply (a background task) may still be running when the client reads."""
        deadline = time.monotonic() + timeout
        while True:
            events: list[str] = self.events()["events"]
            if event in events:
                return events
            assert time.monotonic() < deadline, f"{event!r} never came: {events}"
            time.sleep(0.02)


# How uvicorn ends after SIGTERM when its shutdown completed: by the signal it re-raises
# once its own handlers are restored (uvicorn 0.29+), or with status 0.
CLEAN_EXIT = (0, -signal.SIGTERM)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("uvicorn")
    fastapi_app.make_files(tmp)
    running = Server(tmp)
    try:
        yield running
    finally:
        running.stop()
    log = running.log.read_text()
    # The only tracebacks are those of /raise, the endpoint that raises on purpose. At
    # shutdown uvicorn restores its signal handlers with signal.signal from its serve()
    # coroutine: the loop is back on the main thread by then (home affinity), so that
    # works, and uvicorn exits as on stock asyncio: it re-raises the SIGTERM it caught
    # (uvicorn 0.29+), where the failed restore used to make it exit with status 1.
    assert "signal only works in main thread" not in log, log
    assert log.count("Traceback") == log.count("ValueError: raised in a def endpoint"), log
    assert running.process.returncode in CLEAN_EXIT, log


def test_uvicorn_runs_the_app_on_a_routed_syslet_loop(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        client.post("/reset")
        info = client.get("/info").json()
        assert info["loop"] == "SysletEventLoop" and info["route_anyio"]
        fast = client.get("/fast").json()
        assert fast["thread"] == info["loop_thread"]
        assert client.get("/dep").json() == {"value": "resource"}
        assert client.get("/stream?chunks=4").text == "".join(f"chunk {i}\n" for i in range(4))
        assert client.get("/file").content == FILE_BYTES
        assert client.get("/static/hello.txt").text == "hello, static\n"
        assert client.get("/background?tag=u").json() == {"queued": "u"}
        assert client.get("/from-thread?x=7").json()["got"]["x"] == 7
        assert client.get("/starlette/threadpool?n=4").json()["sum"] == 6
        assert client.get("/sqlite?key=9").json() == {"v": "value 9"}
        # The background task notes its event after a 10 ms sleep, which four more
        # requests can outrun: wait for it (a fresh machine's 3.15 run once did not).
        events = server.events_once("background u")
        assert events[:3] == ["dependency enter", "endpoint", "dependency exit"]
    # uvicorn drops the connection after an unhandled error: a client of its own.
    assert httpx.get(server.url + "/raise", timeout=30).status_code == 500


def test_uvicorn_a_client_that_disconnects_mid_request(server: Server) -> None:
    httpx.post(server.url + "/reset", timeout=10)
    # Goes away while a blocking def endpoint runs...
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        s.sendall(b"GET /sleep?s=0.3&i=-1 HTTP/1.1\r\nHost: x\r\n\r\n")
    # ...and in the middle of a stream of a sync generator.
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        s.sendall(b"GET /stream?chunks=200&delay=0.01 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert s.recv(100)
    deadline = time.monotonic() + 30
    while -1 not in server.events()["seen_ids"]:  # the call finished all the same
        assert time.monotonic() < deadline
        time.sleep(0.05)
    # The stream stops being pulled from its generator (starlette does not close a sync
    # generator on disconnect, on any loop: only its iteration stops).
    before = server.events()["produced"]["200"]
    time.sleep(0.5)
    after = server.events()["produced"]["200"]
    assert before == after < 200
    assert httpx.get(server.url + "/fast", timeout=10).status_code == 200


def test_uvicorn_many_concurrent_requests(server: Server) -> None:
    httpx.post(server.url + "/reset", timeout=10)

    async def main() -> list[int]:
        limits = httpx.Limits(max_connections=64)
        async with httpx.AsyncClient(base_url=server.url, timeout=60, limits=limits) as client:
            replies = await asyncio.gather(
                *(client.get(f"/sleep?s={0.02 if i % 2 else 0}&i={i}") for i in range(400))
            )
        return [r.json()["i"] for r in replies]

    assert asyncio.run(main()) == list(range(400))
    assert sorted(server.events()["seen_ids"]) == list(range(400))


def test_uvicorn_workers_each_run_a_routed_syslet_loop(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    tmp = tmp_path_factory.mktemp("workers")
    fastapi_app.make_files(tmp)
    server = Server(tmp, "--workers", "2")
    try:
        for _ in range(6):
            with httpx.Client(base_url=server.url, timeout=30) as client:
                info = client.get("/info").json()
                assert info["loop"] == "SysletEventLoop" and info["route_anyio"]
                assert client.get("/sleep?s=0.01&i=1").json()["i"] == 1
    finally:
        server.stop()
    log = server.log.read_text()
    assert "signal only works in main thread" not in log, log  # each worker went home
    assert server.process.returncode in CLEAN_EXIT, log


def test_gunicorn_uvicorn_workers_run_a_routed_syslet_loop(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    pytest.importorskip("gunicorn")
    pytest.importorskip("uvicorn_worker")
    tmp = tmp_path_factory.mktemp("gunicorn")
    fastapi_app.make_files(tmp)
    server = Server(tmp, "-w", "2", gunicorn=True)
    try:
        for _ in range(6):
            with httpx.Client(base_url=server.url, timeout=30) as client:
                info = client.get("/info").json()
                assert info["loop"] == "SysletEventLoop" and info["route_anyio"]
                assert client.get("/from-thread?x=2").json()["got"]["x"] == 2
    finally:
        server.stop()
    log = server.log.read_text()
    assert "signal only works in main thread" not in log, log
