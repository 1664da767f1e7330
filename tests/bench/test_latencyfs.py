"""``benchmarks.latencyfs``: the latency-injecting FUSE file system the file workloads
run on (issue 20).

Every timing here is a lower bound (a read takes *at least* the latency it was given), so
a slow or loaded machine cannot fail them; the mount's life is checked in
``/proc/self/mountinfo`` in every way it can end: normally, by an exception, by the
server's SIGKILL, by the mounting process's SIGKILL and by both at once. Skipped, with
the reason, where FUSE cannot be had (no ``/dev/fuse``, no right to mount, no compiler
or libfuse3 headers to build the server).
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks import latencyfs
from benchmarks.latencyfs import Latency, LatencyFsUnavailable, is_mounted, mounted

from .conftest import ROOT

BLOCK = 4096
MS = 1e-3
# Latencies are large against the page cache's microseconds, so that a lower bound
# tells an injected wait from none; small enough to keep the file fast (a few seconds).
READ_MS = 20.0
DEADLINE = 15.0  # seconds to wait for something that happens in milliseconds

WHY_NOT = latencyfs.unavailable()
needs_fuse = pytest.mark.skipif(WHY_NOT is not None, reason=f"latencyfs: {WHY_NOT}")


@pytest.fixture
def source(tmp_path: Path) -> Path:
    if WHY_NOT is not None:
        pytest.skip(f"latencyfs: {WHY_NOT}")
    directory = tmp_path / "source"
    directory.mkdir()
    (directory / "data").write_bytes(os.urandom(64 * BLOCK))
    (directory / "sub").mkdir()
    (directory / "sub" / "small").write_bytes(b"hello latencyfs\n")
    return directory


def timed_pread(fd: int, offset: int) -> tuple[bytes, float]:
    t0 = time.perf_counter()
    data = os.pread(fd, BLOCK, offset)
    return data, time.perf_counter() - t0


def wait_until(predicate: object, what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {DEADLINE} s: {what}")
        time.sleep(0.01)


def test_every_read_waits_the_latency_and_returns_the_backing_data(source: Path) -> None:
    backing = (source / "data").read_bytes()
    with mounted(source, Latency(read_ms=READ_MS)) as fs:
        fd = os.open(os.path.join(fs.path, "data"), os.O_RDONLY)
        try:
            first, t_first = timed_pread(fd, 5 * BLOCK)
            again, t_again = timed_pread(fd, 5 * BLOCK)  # cached, were the cache not defeated
            other, _ = timed_pread(fd, 63 * BLOCK)
        finally:
            os.close(fd)
        assert first == again == backing[5 * BLOCK : 6 * BLOCK]
        assert other == backing[63 * BLOCK :]
        assert t_first >= READ_MS * MS
        assert t_again >= READ_MS * MS, "the second read of a block came from the page cache"
        stats = fs.stats()
        assert stats["reads"] == 3
        assert stats["read_bytes"] == 3 * BLOCK
        assert stats["delayed"] == stats["sent"] == 3
        assert stats["in_flight"] == 0
        assert stats["read_us"] == READ_MS * 1000
        # nested paths resolve, and a small file reads whole
        assert (Path(fs.path) / "sub" / "small").read_bytes() == b"hello latencyfs\n"
        assert sorted(os.listdir(fs.path)) == ["data", "sub"]


def test_open_stat_write_and_fsync_wait_when_asked(source: Path) -> None:
    latency = Latency(read_ms=0.0, open_ms=10.0, stat_ms=10.0, write_ms=10.0, fsync_ms=10.0)
    with mounted(source, latency) as fs:
        path = os.path.join(fs.path, "data")
        t0 = time.perf_counter()
        os.stat(path)
        assert time.perf_counter() - t0 >= 10 * MS  # lookup (and getattr), each >= 10 ms
        t0 = time.perf_counter()
        fd = os.open(path, os.O_RDWR)
        try:
            assert time.perf_counter() - t0 >= 10 * MS
            t0 = time.perf_counter()
            os.fstat(fd)
            assert time.perf_counter() - t0 >= 10 * MS
            t0 = time.perf_counter()
            assert os.pwrite(fd, b"x" * BLOCK, 0) == BLOCK
            assert time.perf_counter() - t0 >= 10 * MS
            t0 = time.perf_counter()
            os.fsync(fd)
            assert time.perf_counter() - t0 >= 10 * MS
        finally:
            os.close(fd)
        stats = fs.stats()
        assert stats["opens"] == 1 and stats["writes"] == 1 and stats["fsyncs"] == 1
        assert int(stats["getattrs"]) >= 1 and int(stats["lookups"]) >= 1
    assert (source / "data").read_bytes()[:BLOCK] == b"x" * BLOCK  # it reached the source


def test_new_files_are_created_through_the_mount(source: Path) -> None:
    with mounted(source, Latency(read_ms=1.0)) as fs:
        made = Path(fs.path) / "made"
        made.write_bytes(b"written through latencyfs")
        assert made.read_bytes() == b"written through latencyfs"
        os.unlink(made)
    assert sorted(p.name for p in source.iterdir()) == ["data", "sub"]


def test_lognormal_latencies_have_a_tail(source: Path) -> None:
    # sigma 1: a draw is >= 2x the median with probability 0.24, so 40 reads without one
    # happen once in 80,000 runs; each read is also >= 0 (a lower bound, nothing more).
    with mounted(source, Latency(read_ms=4.0, distribution="lognormal", sigma=1.0)) as fs:
        fd = os.open(os.path.join(fs.path, "data"), os.O_RDONLY)
        try:
            times = [timed_pread(fd, (i % 64) * BLOCK)[1] for i in range(40)]
        finally:
            os.close(fd)
        assert max(times) >= 2 * 4.0 * MS
        assert fs.stats()["dist"] == "lognormal"


def test_no_mount_is_left_after_the_block(source: Path) -> None:
    with mounted(source) as fs:
        point = fs.path
        assert is_mounted(point)
    assert not is_mounted(point)
    assert not os.path.exists(point)  # the temporary mount point is removed too
    assert fs.process.returncode == 0


def test_no_mount_is_left_after_an_exception(source: Path) -> None:
    with pytest.raises(KeyError), mounted(source) as fs:
        point = fs.path
        raise KeyError("boom")
    assert not is_mounted(point)
    assert fs.process.returncode is not None


def test_no_mount_is_left_after_the_server_is_killed(source: Path, tmp_path: Path) -> None:
    point = tmp_path / "mnt"
    point.mkdir()
    with mounted(source, mountpoint=point) as fs:
        os.kill(fs.pid, signal.SIGKILL)
        fs.process.wait()
        assert is_mounted(point)  # stale: nobody answers it
        with pytest.raises(OSError) as info:
            os.stat(point / "data")
        assert info.value.errno in (errno.ENOTCONN, errno.ECONNABORTED)
    assert not is_mounted(point)
    assert point.is_dir()  # a mount point it was given is left where it was


def _mount_in_child(source: Path, point: Path) -> tuple[subprocess.Popen[str], int]:
    """A process that mounts latencyfs at ``point`` and waits; (it, its server's pid)."""
    code = (
        "import sys, time\n"
        "from benchmarks.latencyfs import mounted\n"
        "with mounted(sys.argv[1], mountpoint=sys.argv[2]) as fs:\n"
        "    print(fs.pid, flush=True)\n"
        "    time.sleep(120)\n"
    )
    path = os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, PYTHONPATH=path)
    child = subprocess.Popen(
        [sys.executable, "-c", code, str(source), str(point)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert child.stdout is not None
    line = child.stdout.readline()
    assert line.strip().isdigit(), f"the child did not mount: {line!r}"
    return child, int(line)


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    with open(f"/proc/{pid}/stat") as f:  # a zombie waiting for init is gone too
        return f.read().rpartition(")")[2].split()[0] == "Z"


@pytest.fixture
def point(tmp_path: Path) -> Iterator[Path]:
    where = tmp_path / "mnt"
    where.mkdir()
    yield where
    if is_mounted(where):  # the test failed: leave nothing mounted behind it
        latencyfs.unmount(where)


def test_no_mount_is_left_when_the_mounting_process_is_killed(source: Path, point: Path) -> None:
    child, server = _mount_in_child(source, point)
    assert is_mounted(point)
    child.kill()  # SIGKILL: no finally, no atexit; the server's lifeline ends it
    child.wait()
    child.stdout.close()  # type: ignore[union-attr]
    wait_until(lambda: not is_mounted(point), "the server unmounts when its parent dies")
    wait_until(lambda: _gone(server), "the server exits when its parent dies")


def test_no_mount_is_left_when_the_mounting_process_is_interrupted(
    source: Path, point: Path
) -> None:
    child, server = _mount_in_child(source, point)
    child.send_signal(signal.SIGINT)  # Ctrl-C: KeyboardInterrupt in the with block
    child.wait()
    child.stdout.close()  # type: ignore[union-attr]
    assert child.returncode != 0  # it was interrupted, not done
    assert not is_mounted(point)  # unmounted before the process ended
    wait_until(lambda: _gone(server), "the server ended with the block")


def test_a_stale_mount_is_reaped_by_the_next_use(source: Path, point: Path) -> None:
    child, server = _mount_in_child(source, point)
    os.kill(server, signal.SIGKILL)  # both die: nobody is left to unmount
    child.kill()
    child.wait()
    child.stdout.close()  # type: ignore[union-attr]
    wait_until(lambda: _gone(server), "the server is dead")
    assert is_mounted(point)
    with mounted(source) as fs:  # the next use sweeps stale latencyfs mounts first
        assert is_mounted(fs.path)
    assert not is_mounted(point)


def test_a_live_mount_of_another_process_is_not_reaped(source: Path, point: Path) -> None:
    child, _ = _mount_in_child(source, point)
    try:
        assert os.path.realpath(point) not in latencyfs.reap_stale()
        assert is_mounted(point)
    finally:
        child.terminate()  # SIGTERM: its with block unmounts
        child.wait()
        child.stdout.close()  # type: ignore[union-attr]
    wait_until(lambda: not is_mounted(point), "the child unmounted")


@needs_fuse
def test_the_server_binary_is_cached_outside_the_checkout() -> None:
    binary = latencyfs.build()
    assert binary == latencyfs.build()
    assert not str(binary).startswith(ROOT + os.sep)
    assert os.access(binary, os.X_OK)


# ---- without mounting --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("read_ms", -1.0, "Latency.read_ms must be in [0, 60000] ms, got -1.0"),
        ("fsync_ms", 1e9, "Latency.fsync_ms must be in [0, 60000] ms"),
        ("distribution", "normal", "Latency.distribution must be 'fixed' or 'lognormal'"),
        ("sigma", 9.0, "Latency.sigma must be in [0, 5], got 9.0"),
    ],
)
def test_latency_options_are_validated(field: str, value: object, words: str) -> None:
    with pytest.raises(ValueError, match=words.replace("[", r"\[").replace("]", r"\]")):
        Latency(**{field: value})  # type: ignore[arg-type]


def test_latency_becomes_server_options() -> None:
    opts = Latency(read_ms=2.0, stat_ms=0.5, distribution="lognormal", sigma=0.25).options()
    assert opts.split(",") == [
        "read_us=2000",
        "open_us=0",
        "stat_us=500",
        "write_us=0",
        "fsync_us=0",
        "dist=lognormal",
        "sigma=0.25",
    ]


def test_unavailable_names_a_missing_compiler(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CC", "no-such-compiler-here")
    reason = latencyfs.unavailable()
    assert reason is not None
    if os.path.exists("/dev/fuse") and os.access("/dev/fuse", os.R_OK | os.W_OK):
        assert reason.startswith("no C compiler")
    with pytest.raises(LatencyFsUnavailable) as info:
        latencyfs.build()
    assert info.value.reason == reason


@needs_fuse
def test_an_unwritable_cache_is_a_reason_not_a_crash(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    monkeypatch.setenv("SYSLETLOOP_CACHE", str(blocker / "cache"))  # under a file: ENOTDIR
    with pytest.raises(LatencyFsUnavailable, match="cannot write the server's cache"):
        latencyfs.build()
