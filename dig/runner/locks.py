"""Per-job lock files, so that two ``dig bench`` processes on the same ``--out`` never train one job twice.

The lock ``OUT/<track>/<job>.lock`` is created atomically (``O_CREAT | O_EXCL``) by the process that is about
to run the job and removed when its record is written. A lock whose owner is a dead process on this host is
stale and taken over; one from another host (a shared file system) counts as live for ``STALE_AFTER_S``.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

STALE_AFTER_S = 24 * 3600.0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


@dataclass(frozen=True)
class LockOwner:
    pid: int
    host: str
    since: float

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}"


def lock_path(out_dir: str | Path, track: str, config_hash: str) -> Path:
    return Path(out_dir) / track / f"{config_hash}.lock"


def read_owner(path: Path) -> LockOwner | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return LockOwner(int(data["pid"]), str(data["host"]), float(data["since"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _is_stale(owner: LockOwner | None, path: Path) -> bool:
    if owner is None:  # unreadable: half-written by a process that died in between, or garbage
        try:
            return time.time() - path.stat().st_mtime > 5.0
        except OSError:
            return True
    if owner.host == platform.node():
        return not _alive(owner.pid)
    return time.time() - owner.since > STALE_AFTER_S


def try_lock(out_dir: str | Path, track: str, config_hash: str) -> LockOwner | None:
    """Take the job's lock; returns ``None`` on success, else the live owner that holds it."""
    path = lock_path(out_dir, track, config_hash)
    path.parent.mkdir(parents=True, exist_ok=True)
    me = {"pid": os.getpid(), "host": platform.node(), "since": time.time()}
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            owner = read_owner(path)
            if not _is_stale(owner, path):
                return owner or LockOwner(-1, "?", 0.0)
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(me, handle)
        return None
    return read_owner(path) or LockOwner(-1, "?", 0.0)


def release_lock(out_dir: str | Path, track: str, config_hash: str) -> None:
    path = lock_path(out_dir, track, config_hash)
    owner = read_owner(path)
    if owner is not None and owner.pid == os.getpid() and owner.host == platform.node():
        try:
            path.unlink()
        except FileNotFoundError:
            pass
