"""``struct statx`` as ``os.stat_result``: what ``uring_statx`` and ``uring_fstat`` return.

One job: decode the 256 bytes ``IORING_OP_STATX`` wrote into the object ``os.stat`` would
have returned for the same file, so code written against ``os.stat`` keeps working. A pure
function of its input; any thread.

Why a real ``os.stat_result`` rather than a class of our own: ``stat.S_ISDIR(r.st_mode)``,
``r.st_mtime_ns``, ``r[stat.ST_SIZE]`` and ``os.path.samestat`` all work on it unchanged.
Fields ``statx`` has and ``os.stat`` does not (birth time, attributes, the mask of what
the file system filled in) come back beside it from :func:`decode_statx` for whoever asks
(``uring_statx(..., full=True)``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from sysletloop.uring import _abi

_NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class StatxExtra:
    """What ``statx`` reports beyond ``os.stat_result``."""

    mask: int  # STATX_* bits the file system filled in
    attributes: int  # STATX_ATTR_* bits
    btime_ns: int | None  # birth time, when the file system records it (STATX_BTIME)


def decode_statx(raw: bytes | bytearray | memoryview) -> tuple[os.stat_result, StatxExtra]:
    """The ``os.stat_result`` and the extras in a filled ``struct statx``."""
    (mask, blksize, attributes, nlink, uid, gid, mode, _spare, ino, size, blocks, _am) = (
        _abi.STATX_HEAD.unpack_from(raw, 0)
    )
    times: dict[str, int] = {}
    for name in ("atime", "btime", "ctime", "mtime"):
        sec, nsec, _ = _abi.STATX_TIMESTAMP.unpack_from(raw, _abi.STATX_FIELDS[f"stx_{name}"])
        times[name] = sec * _NS + nsec
    rdev_major, rdev_minor, dev_major, dev_minor = _abi.STATX_DEVICES.unpack_from(
        raw, _abi.STATX_FIELDS["stx_rdev_major"]
    )
    atime, mtime, ctime = times["atime"], times["mtime"], times["ctime"]
    result = os.stat_result(
        (
            mode,
            ino,
            os.makedev(dev_major, dev_minor),
            nlink,
            uid,
            gid,
            size,
            atime // _NS,
            mtime // _NS,
            ctime // _NS,
        ),
        {
            "st_atime": atime / _NS,
            "st_mtime": mtime / _NS,
            "st_ctime": ctime / _NS,
            "st_atime_ns": atime,
            "st_mtime_ns": mtime,
            "st_ctime_ns": ctime,
            "st_blksize": blksize,
            "st_blocks": blocks,
            "st_rdev": os.makedev(rdev_major, rdev_minor),
        },
    )
    extra = StatxExtra(
        mask=mask,
        attributes=attributes,
        btime_ns=times["btime"] if mask & _abi.STATX_BTIME else None,
    )
    return result, extra
