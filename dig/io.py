"""Atomic writes, checksums and the on-disk layout the runner and the leaderboard share: a file is either
absent or complete, never half-written."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
_BENCH_WORKSPACE: ContextVar[Path | None] = ContextVar("dig_bench_workspace", default=None)


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` on a temp file in the target folder, then rename it onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()
    return path


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def finite_json(obj: Any) -> Any:
    """``obj`` with every non-finite float replaced by ``None``: standard JSON has no NaN or Infinity."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {key: finite_json(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_json(value) for value in obj]
    return obj


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Standard JSON only (non-finite floats become null, see ``finite_json``), written atomically."""
    text = json.dumps(finite_json(obj), indent=2, sort_keys=True, default=str, allow_nan=False)
    return atomic_write_text(path, text + "\n")


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def stable_hash(obj: Any, length: int = 16) -> str:
    """Content hash of a JSON-serialisable object, independent of key order."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def figure_path(folder: str | Path, track: str, dataset: str, model: str) -> Path:
    """Where a job's picture goes: ``<folder>/figures/<track>/<dataset>/<model>.png`` (under a bench's --out, and
    the same layout under ``leaderboards/``, where ``dig leaderboard publish`` shows it)."""
    return Path(folder) / "figures" / track / dataset / f"{model}.png"


def build_once(path: str | os.PathLike, load: Callable[[Path], T], build: Callable[[], T],
               save: Callable[[T, Path], None]) -> tuple[T, bool]:
    """``(load(path), False)`` when ``path`` holds a readable result, else ``(build(), True)`` saved atomically to
    ``path`` with ``save(value, tmp_path)``. An exclusive lock on ``path.lock`` makes parallel callers (bench
    workers) wait for the first one's result instead of each building it. ``load`` raising (a damaged or
    out-of-date file) means build again and overwrite; a ``save`` that fails keeps the built value."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists():
            try:
                return load(path), False
            except Exception:  # noqa: BLE001 - whatever is wrong with the stored file, building again fixes it
                pass
        value = build()
        try:
            atomic_write(path, lambda tmp: save(value, tmp))
        except Exception:  # noqa: BLE001 - an unsaveable value costs the next caller a rebuild, nothing else
            pass
        return value, True


@contextlib.contextmanager
def bench_workspace(folder: str | os.PathLike) -> Iterator[Path]:
    """While a bench job runs: the folder (under the bench's ``--out``) where a track may keep what later jobs
    of the same bench can reuse, e.g. a model that two datasets share; a resumed bench finds it again."""
    token = _BENCH_WORKSPACE.set(Path(folder))
    try:
        yield Path(folder)
    finally:
        _BENCH_WORKSPACE.reset(token)


def current_bench_workspace() -> Path | None:
    """The running bench job's workspace folder, or None outside a bench (a track called directly)."""
    return _BENCH_WORKSPACE.get()
