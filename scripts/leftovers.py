"""What a test run left behind: files, processes and mounts.

    python scripts/leftovers.py snapshot STATE            before the run
    python scripts/leftovers.py check STATE MARKER TMPDIR after it

``scripts/test-python`` runs the suite with ``TMPDIR`` set to a directory of its own and
with ``SYSLETLOOP_TEST_RUN=MARKER`` in every test process's environment. ``check`` then
reports, and exits 1 for:

* anything left in that ``TMPDIR`` but pytest's own ``pytest-of-*`` directories (pytest
  keeps its last three on purpose; the script removes the whole directory after);
* new entries of ours in ``/tmp`` and ``/var/tmp`` (code that names its directory instead
  of asking ``tempfile``): entries that appeared during the run with a name of this
  project's (``NAMES``). Other new entries are printed, not counted: on a shared machine
  other programs write there too;
* processes still running whose environment holds the marker (children the suite started
  and did not reap: servers, workers, helpers), which it then kills;
* mounts that appeared during the run (in the caller's mount namespace).

Standard library only: it runs on every Python the suite runs on, inside the chroot too.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sys
from pathlib import Path

SHARED = ("/tmp", "/var/tmp")
NAMES = re.compile(r"syslet|sl-|kaio|uring|latencyfs|pytest-of-")


def entries() -> dict[str, list[str]]:
    found = {}
    for directory in SHARED:
        try:
            found[directory] = sorted(os.listdir(directory))
        except OSError:
            found[directory] = []
    return found


def mounts() -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return sorted(line.split()[4] for line in f)


def marked_processes(marker: str) -> list[tuple[int, str]]:
    needle = f"SYSLETLOOP_TEST_RUN={marker}".encode()
    found = []
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit() or int(pid_dir.name) == os.getpid():
            continue
        try:
            environ = (pid_dir / "environ").read_bytes()
            cmdline = (pid_dir / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if needle in environ.split(b"\0"):
            found.append((int(pid_dir.name), cmdline.decode(errors="replace").strip()))
    return found


def snapshot(state: Path) -> int:
    state.write_text(json.dumps({"entries": entries(), "mounts": mounts()}))
    return 0


def check(state: Path, marker: str, tmpdir: Path) -> int:
    before = json.loads(state.read_text())
    problems: list[str] = []
    notes: list[str] = []
    for entry in sorted(tmpdir.iterdir()):
        if not entry.name.startswith("pytest-of-"):
            problems.append(f"left in the run's TMPDIR: {entry.name}")
    after = entries()
    for directory, names in after.items():
        for name in sorted(set(names) - set(before["entries"].get(directory, []))):
            path = os.path.join(directory, name)
            if path == str(tmpdir) or path == str(state):
                continue
            if NAMES.search(name):
                problems.append(f"left in {directory}: {name}")
            else:
                notes.append(f"new in {directory} (not named like ours): {name}")
    for mount in sorted(set(mounts()) - set(before["mounts"])):
        problems.append(f"still mounted: {mount}")
    for pid, cmdline in marked_processes(marker):
        problems.append(f"still running: pid {pid}: {cmdline[:200]}")
        with contextlib.suppress(OSError):  # ended meanwhile
            os.kill(pid, signal.SIGKILL)
    for line in notes:
        print(f"leftovers: note: {line}", file=sys.stderr)
    for line in problems:
        print(f"leftovers: {line}", file=sys.stderr)
    if problems:
        print(f"leftovers: the run left {len(problems)} thing(s) behind", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "snapshot":
        return snapshot(Path(argv[1]))
    if len(argv) == 4 and argv[0] == "check":
        return check(Path(argv[1]), argv[2], Path(argv[3]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
