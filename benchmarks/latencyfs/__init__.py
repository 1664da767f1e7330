"""Storage that blocks, made by the harness itself: a latency-injecting FUSE file system.

On the benchmark's VM nothing blocks for real (file reads come from a cache), so the
paper's claims about I/O would be measured on ``time.sleep``. ``latencyfs`` is a
passthrough over a directory whose reads (and, when asked, opens, lookups/stats, writes
and fsyncs) are answered a set latency after they arrive, with the page cache defeated
(``direct_io``) so that every read pays it. Its server is ``latencyfs.c`` (why C, and its
ceiling: ``docs/latencyfs.md``); this module builds it, mounts it and always unmounts it.

    with mounted("/var/tmp/data", Latency(read_ms=2.0)) as fs:
        os.pread(os.open(fs.path + "/file", os.O_RDONLY), 4096, 0)  # takes >= 2 ms
        fs.stats()["reads"]                                         # 1

Glossary
--------
source
    The directory whose files appear under the mount point (on a real file system; the
    server reads it through the page cache: the latency is the injected one, not the disk's).
server
    The ``latencyfs`` process, one per mount, a child of the mounting process.
lifeline
    The server's stdin: a pipe whose write end only the mounting process holds. When that
    process dies in any way, SIGKILL included, the server reads end of file and ends
    itself, unmounting on its way out.
stale mount
    A mount whose server is gone (SIGKILLed: the one way it cannot unmount itself). Reads
    there fail with ENOTCONN until it is unmounted.

Who unmounts, in every way a mount can end
------------------------------------------
1. The ``with`` block ends, normally or by an exception (KeyboardInterrupt included): the
   mounting process sends SIGTERM; the server leaves its loop, sends every reply it holds
   and unmounts; the mounting process then checks ``/proc/self/mountinfo`` and, if the
   mount is still there, runs ``fusermount3 -u`` and then ``fusermount3 -u -z`` (lazy:
   files still open on it do not keep it), or ``umount``/``umount -l`` without fusermount3.
2. The server is SIGKILLed: the mount is stale until the ``with`` block ends: step 1
   unmounts it.
3. The mounting process dies (SIGKILL, a crash): the lifeline ends the server, which
   unmounts (step 1's server half).
4. Both die at once: the next :func:`mounted` in any process unmounts every latencyfs
   mount whose server (named in the mount's source, ``latencyfs:PID``) is gone
   (:func:`reap_stale`).

Rejected alternatives
---------------------
- ``PR_SET_PDEATHSIG`` in the server: it fires when the *thread* that started the server
  ends, not the process; a harness that mounts from a worker thread would lose its mount.
  The lifeline pipe follows the process.
- An atexit hook or signal handlers in the harness: neither runs on SIGKILL.
- Building the server at install time: the package is stdlib-only and pure Python; the
  benchmarks build it on first use (about a second) into a cache outside the checkout,
  keyed by a hash of the source, the compiler command and libfuse's header.

Threads: every function here is called from the harness's main thread (or a test's); a
:class:`Mount`'s methods may be called from any thread while it is mounted.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import select
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

SOURCE = Path(__file__).with_name("latencyfs.c")
STATS_NAME = ".latencyfs-stats"
FSTYPE = "fuse.latencyfs"
# Mounting took 5-20 ms here; the margin is for a loaded shared machine, and for the
# first use's build, which happens before this clock starts.
READY_TIMEOUT = 10.0  # seconds
# SIGTERM to exit took under 10 ms here (the server sends what it holds and unmounts).
STOP_TIMEOUT = 5.0  # seconds, then SIGKILL and fusermount3
HEADER = "fuse_lowlevel.h"

Distribution = Literal["fixed", "lognormal"]


class LatencyFsUnavailable(RuntimeError):
    """latencyfs cannot be had here; ``reason`` says why (the harness's "missing" text)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Latency:
    """How late the server answers each kind of request, in milliseconds.

    ``read_ms`` applies to every read; ``open_ms`` to open and create; ``stat_ms`` to
    lookups (a path's first step: ``open`` and ``stat`` by name do one per component not
    already known) and getattr (``fstat``, ``stat``); ``write_ms`` and ``fsync_ms`` to
    writes and fsyncs. ``"lognormal"`` draws each latency with that median and ``sigma``
    as the standard deviation of its logarithm (0.5: p99 at 3.2x the median).
    """

    read_ms: float = 2.0
    open_ms: float = 0.0
    stat_ms: float = 0.0
    write_ms: float = 0.0
    fsync_ms: float = 0.0
    distribution: Distribution = "fixed"
    sigma: float = 0.5

    def __post_init__(self) -> None:
        for name in ("read_ms", "open_ms", "stat_ms", "write_ms", "fsync_ms"):
            value = getattr(self, name)
            if not 0.0 <= value <= 60_000.0:
                raise ValueError(f"Latency.{name} must be in [0, 60000] ms, got {value!r}")
        if self.distribution not in ("fixed", "lognormal"):
            raise ValueError(
                f"Latency.distribution must be 'fixed' or 'lognormal', got {self.distribution!r}"
            )
        if not 0.0 <= self.sigma <= 5.0:
            raise ValueError(f"Latency.sigma must be in [0, 5], got {self.sigma!r}")

    def options(self) -> str:
        """The server's ``-o`` options for these latencies."""
        us = {
            "read_us": self.read_ms,
            "open_us": self.open_ms,
            "stat_us": self.stat_ms,
            "write_us": self.write_ms,
            "fsync_us": self.fsync_ms,
        }
        parts = [f"{k}={round(v * 1000)}" for k, v in us.items()]
        return ",".join([*parts, f"dist={self.distribution}", f"sigma={self.sigma!r}"])

    def as_dict(self) -> dict[str, float | str]:
        return asdict(self)


# ---------------------------------------------------------------------------------------
# Can it be had here, and the server binary
# ---------------------------------------------------------------------------------------


def _fuse_cflags() -> tuple[list[str], list[str], Path | None]:
    """(compile flags, link flags, the header's path or None) for libfuse3."""
    if shutil.which("pkg-config"):
        cflags = subprocess.run(
            ["pkg-config", "--cflags", "fuse3"], capture_output=True, text=True, check=False
        )
        libs = subprocess.run(
            ["pkg-config", "--libs", "fuse3"], capture_output=True, text=True, check=False
        )
        if cflags.returncode == 0 and libs.returncode == 0:
            flags, link = cflags.stdout.split(), libs.stdout.split()
            for flag in flags:
                if flag.startswith("-I") and (Path(flag[2:]) / HEADER).exists():
                    return flags, link, Path(flag[2:]) / HEADER
    default = Path("/usr/include/fuse3") / HEADER
    if default.exists():
        return ["-I/usr/include/fuse3"], ["-lfuse3", "-lpthread"], default
    return [], [], None


def _compiler() -> str | None:
    cc = os.environ.get("CC", "gcc")
    return shutil.which(cc)


def unavailable() -> str | None:
    """Why latencyfs cannot be mounted here (the first reason found), or None.

    Checks what can be checked without mounting: ``/dev/fuse``, the right to mount (root,
    or ``fusermount3`` for a user), a C compiler and libfuse3's headers. A mount can still
    be refused (a container without the capability): :func:`mounted` then raises
    :class:`LatencyFsUnavailable` with the server's own words.
    """
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse (the kernel has no FUSE, or the container hides it)"
    if not os.access("/dev/fuse", os.R_OK | os.W_OK):
        return "/dev/fuse is not readable and writable by this user"
    if os.geteuid() != 0 and shutil.which("fusermount3") is None:
        return "not root and no fusermount3 (Debian: apt-get install fuse3)"
    if _compiler() is None:
        return "no C compiler to build the server (Debian: apt-get install gcc)"
    if _fuse_cflags()[2] is None:
        return "no libfuse3 headers to build the server (Debian: apt-get install libfuse3-dev)"
    return None


def cache_dir() -> Path:
    """Where built servers are kept: ``$SYSLETLOOP_CACHE``, else ``$XDG_CACHE_HOME`` or
    ``~/.cache``, ``/sysletloop`` (outside the checkout, shared by its clones)."""
    explicit = os.environ.get("SYSLETLOOP_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "sysletloop"


def build() -> Path:
    """The server binary, compiled if this source, command and header have none yet."""
    why = unavailable()
    if why is not None:
        raise LatencyFsUnavailable(why)
    cc = _compiler()
    assert cc is not None  # unavailable() said so
    cflags, libs, header = _fuse_cflags()
    assert header is not None
    command = [cc, "-O2", "-Wall", "-Wextra", *cflags, "-o", "OUT", str(SOURCE), *libs, "-lm"]
    key = hashlib.sha256()
    key.update(SOURCE.read_bytes())
    key.update("\0".join(command).encode())
    key.update(header.read_bytes())
    binary = cache_dir() / f"latencyfs-{key.hexdigest()[:16]}"
    if os.access(binary, os.X_OK):
        return binary
    # Compile beside the target and rename: a concurrent builder never runs half a file.
    try:
        binary.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".latencyfs-build-", dir=binary.parent)
    except OSError as exc:
        raise LatencyFsUnavailable(
            f"cannot write the server's cache {binary.parent} ({exc.strerror}); "
            "set SYSLETLOOP_CACHE to a writable directory"
        ) from exc
    os.close(fd)
    try:
        command[command.index("OUT")] = tmp
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise LatencyFsUnavailable(
                f"building the server failed ({' '.join(command)}): {done.stderr.strip()[-800:]}"
            )
        os.chmod(tmp, 0o755)
        os.replace(tmp, binary)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return binary


# ---------------------------------------------------------------------------------------
# Mounts
# ---------------------------------------------------------------------------------------


def _unescape(field: str) -> str:
    """A mountinfo path field: spaces, tabs, newlines and backslashes are octal escapes."""
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 3 < len(field) + 0 and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mounts() -> list[tuple[str, str, str]]:
    """(mount point, file system type, source) of every mount this process sees."""
    found = []
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
        for line in f:
            fields = line.split()
            dash = fields.index("-")
            found.append((_unescape(fields[4]), fields[dash + 1], _unescape(fields[dash + 2])))
    return found


def is_mounted(path: str | os.PathLike[str]) -> bool:
    """Whether something is mounted exactly at ``path`` (as this process sees it)."""
    where = os.path.realpath(path)
    return any(point == where for point, _, _ in mounts())


def unmount(path: str | os.PathLike[str]) -> None:
    """Unmount ``path`` however it can be done: ``fusermount3 -u``, then lazily (``-z``),
    or ``umount`` and ``umount -l`` where there is no fusermount3. Quiet if it is not
    mounted; raises OSError if it is still mounted after every attempt."""
    where = os.path.realpath(path)
    fusermount = shutil.which("fusermount3")
    if fusermount is not None:
        attempts = [[fusermount, "-u", "-q", where], [fusermount, "-u", "-z", "-q", where]]
    else:
        attempts = [["umount", where], ["umount", "-l", where]]
    for command in attempts:
        if not is_mounted(where):
            return
        subprocess.run(command, capture_output=True, check=False)
    if is_mounted(where):
        raise OSError(f"{where} is still mounted after {' ; '.join(map(' '.join, attempts))}")


def _server_alive(pid: int) -> bool:
    """Whether ``pid`` is a running latencyfs server (a zombie, SIGKILLed and not yet
    reaped by whoever inherited it, serves nothing: not alive)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as f:
            stat = f.read()
    except OSError:
        return False
    name, _, rest = stat.partition("(")[2].rpartition(")")
    return name.startswith("latencyfs") and rest.split()[0] not in ("Z", "X")


def reap_stale() -> list[str]:
    """Unmount every latencyfs mount whose server is gone; return their mount points."""
    reaped = []
    for point, fstype, source in mounts():
        if fstype != FSTYPE or not source.startswith("latencyfs:"):
            continue
        pid = source.removeprefix("latencyfs:")
        if pid.isdigit() and _server_alive(int(pid)):
            continue
        with contextlib.suppress(OSError):
            unmount(point)
            reaped.append(point)
    return reaped


@dataclass
class Mount:
    """A mounted latencyfs: its mount point, source, latencies and server process."""

    path: str
    source: str
    latency: Latency
    process: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def stats(self) -> dict[str, int | float | str]:
        """The server's counters (``.latencyfs-stats`` at the mount's root): requests by
        kind, replies held and sent, the most held at once, and how late replies went out
        past their deadline in total and at most (``late_ns_sum``, ``late_ns_max``)."""
        with open(os.path.join(self.path, STATS_NAME), encoding="ascii") as f:
            text = f.read()
        out: dict[str, int | float | str] = {}
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            try:
                out[key] = int(value)
            except ValueError:
                try:
                    out[key] = float(value)
                except ValueError:
                    out[key] = value
        return out

    def cpu_seconds(self) -> float:
        """CPU time the server's threads have used so far: the sum of their
        ``schedstat`` run times (nanoseconds; ``stat``'s utime and stime count 10 ms
        ticks, too coarse for a quarter-second case), or ``stat``'s where there is none."""
        total = 0
        try:
            for task in os.listdir(f"/proc/{self.pid}/task"):
                with (
                    contextlib.suppress(OSError),
                    open(f"/proc/{self.pid}/task/{task}/schedstat", encoding="ascii") as f,
                ):
                    total += int(f.read().split()[0])
            return total / 1e9
        except (OSError, ValueError, IndexError):
            pass
        with open(f"/proc/{self.pid}/stat", encoding="ascii") as f:
            fields = f.read().rpartition(")")[2].split()
        # fields[0] is the state (field 3 of proc(5)): utime and stime are fields 14, 15.
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def mounted(
    source: str | os.PathLike[str],
    latency: Latency | None = None,
    *,
    mountpoint: str | os.PathLike[str] | None = None,
    threads: int = 2,
    cache: bool = False,
) -> Iterator[Mount]:
    """Mount latencyfs over ``source`` for the ``with`` block; always unmounted after.

    ``mountpoint`` (an empty directory) defaults to a new temporary directory, removed
    after. ``threads`` is the server's session threads (they never sleep for a latency:
    two keep up with 16,000 delayed reads/s here). ``cache=True`` leaves the page cache in
    place (no ``direct_io``): only first reads pay the latency. Raises
    :class:`LatencyFsUnavailable` where it cannot be had (:func:`unavailable`, or the
    mount was refused).
    """
    latency = latency or Latency()
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    source = os.path.realpath(source)
    if not os.path.isdir(source):
        raise NotADirectoryError(f"latencyfs source {source!r} is not a directory")
    binary = build()
    reap_stale()
    made = mountpoint is None
    point = tempfile.mkdtemp(prefix="latencyfs-") if mountpoint is None else str(mountpoint)
    point = os.path.realpath(point)
    options = f"{latency.options()},threads={threads},lifeline" + (",cache" if cache else "")
    process: subprocess.Popen[bytes] | None = None
    try:
        with tempfile.TemporaryFile() as errors:
            process = subprocess.Popen(
                [str(binary), source, point, "-o", options],
                stdin=subprocess.PIPE,  # the lifeline: we hold its only write end
                stdout=subprocess.PIPE,
                stderr=errors,
                # Its own session: a Ctrl-C in the terminal reaches the harness, which then
                # unmounts in order, rather than the server and the harness at once.
                start_new_session=True,
            )
            _wait_ready(process, point, errors)
            yield Mount(point, source, latency, process)
    finally:
        _stop(process, point)
        if made:
            with contextlib.suppress(OSError):
                os.rmdir(point)


def _wait_ready(process: subprocess.Popen[bytes], point: str, errors: object) -> None:
    """Until the server printed "ready" and the mount is in mountinfo; else raise."""
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], READY_TIMEOUT)
    line = process.stdout.readline() if ready else b""
    if line.startswith(b"ready") and is_mounted(point):
        return
    process.poll()
    text = ""
    if hasattr(errors, "seek") and hasattr(errors, "read"):
        errors.seek(0)
        text = errors.read().decode(errors="replace").strip()
    if process.returncode is None and not line:
        raise RuntimeError(f"latencyfs did not mount {point} within {READY_TIMEOUT} s")
    raise LatencyFsUnavailable(
        f"mounting latencyfs failed (exit {process.returncode}): {text or 'no message'}"
    )


def _stop(process: subprocess.Popen[bytes] | None, point: str) -> None:
    """End the server (SIGTERM: it unmounts itself), then make sure nothing is mounted."""
    if process is not None:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for pipe in (process.stdin, process.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
    if is_mounted(point):
        unmount(point)


__all__ = [
    "Latency",
    "LatencyFsUnavailable",
    "Mount",
    "build",
    "cache_dir",
    "is_mounted",
    "mounted",
    "mounts",
    "reap_stale",
    "unavailable",
    "unmount",
]
