"""On-disk cache of processed datasets: one ``.npz`` of arrays plus a JSON manifest with its checksum.

The cache lives in ``$DIG_CACHE_DIR`` (default ``~/.cache/dig``). Both files are written atomically, and a
cache whose checksum does not match its manifest is reported, never silently used.
"""

from __future__ import annotations

import errno
import json
import os
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from dig.errors import DataError
from dig.io import atomic_write, atomic_write_json, sha256_file


def cache_dir() -> Path:
    root = Path(os.environ.get("DIG_CACHE_DIR", Path.home() / ".cache" / "dig")).expanduser()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(_unwritable(root, exc)) from exc
    if not root.is_dir():
        raise DataError(f"the dataset cache {root} is not a folder; set DIG_CACHE_DIR to a folder")
    return root


def _unwritable(root: Path, exc: OSError) -> str:
    why = "the disk is full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
    return (f"cannot write the dataset cache in {root} ({why}); set DIG_CACHE_DIR to a writable folder with free "
            "space (datasets need up to a few hundred MB)")


def _paths(name: str) -> tuple[Path, Path]:
    root = cache_dir()
    return root / f"{name}.npz", root / f"{name}.json"


def save_cached_arrays(name: str, arrays: dict[str, np.ndarray], manifest: dict[str, Any]) -> Path:
    """Write ``$DIG_CACHE_DIR/<name>.npz`` and its manifest (``manifest`` plus the sha256 and array names),
    both atomically. Put every setting that changes the data into ``name`` (e.g. ``lj13-2000f-30K-v1``)."""
    data_path, manifest_path = _paths(name)

    def save(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)

    try:
        atomic_write(data_path, save)
        atomic_write_json(manifest_path, {**manifest, "sha256": sha256_file(data_path), "arrays": sorted(arrays)})
    except OSError as exc:
        raise DataError(_unwritable(data_path.parent, exc)) from exc
    return data_path


def read_npz(path: str | os.PathLike, required: tuple[str, ...], description: str,
             optional: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """The arrays of a canonical ``.npz`` file, with a DataError naming the file for every way it can be bad."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path} does not exist; pass the path of {description}")
    if not path.is_file():
        raise DataError(f"{path} is not a file; pass the path of {description}")
    if path.stat().st_size == 0:
        raise DataError(f"{path} is empty; pass the path of {description}")
    with open(path, "rb") as raw:
        magic = raw.read(6)
    if magic == b"\x93NUMPY":
        raise DataError(f"{path} is a single .npy array, not an .npz archive of named arrays; pass {description}")
    if magic[:2] != b"PK":
        raise DataError(f"{path} is not an .npz archive (a zip of .npy arrays); pass {description}")
    try:
        handle = np.load(path, allow_pickle=False)
        with handle:
            missing = [key for key in required if key not in handle.files]
            if missing:
                raise DataError(f"{path} lacks arrays {missing}; expected {description} with {', '.join(required)}")
            arrays = {}
            for key in (*required, *optional):
                if key in handle.files:
                    arrays[key] = _numeric_array(handle, key, path)
            return arrays
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path} is a damaged .npz archive ({type(exc).__name__}); pass an intact copy of "
                        f"{description}") from exc


def _numeric_array(handle: Any, key: str, path: Path) -> np.ndarray:
    """One array of an archive; object (pickled) arrays are refused: numbers only, never code."""
    try:
        array = handle[key]
    except ValueError as exc:
        if "pickle" not in str(exc).lower() and "object" not in str(exc).lower():
            raise
        raise DataError(f"{path}: array {key!r} holds Python objects; dig reads numeric arrays only: re-save it "
                        f"with a numeric dtype, e.g. np.savez(..., {key}=np.asarray({key}, dtype=float))") from None
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise DataError(f"{path}: array {key!r} has dtype {array.dtype}; dig reads numeric arrays only")
    return array


def load_cached_arrays(name: str) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
    """The cached arrays and manifest, or ``None`` when there is no cache yet."""
    data_path, manifest_path = _paths(name)
    if not data_path.exists() or not manifest_path.exists():
        return None
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        manifest = exc
    if not isinstance(manifest, dict):
        raise DataError(f"the cache manifest {manifest_path} is damaged or empty; delete {manifest_path} and "
                        f"{data_path} to rebuild the dataset (dig data build NAME, or on first use)")
    digest = sha256_file(data_path)
    if digest != manifest.get("sha256"):
        raise DataError(
            f"cached dataset {data_path} does not match its checksum ({digest[:12]} != "
            f"{str(manifest.get('sha256'))[:12]}); delete {data_path} and {manifest_path} to rebuild it"
        )
    with np.load(data_path, allow_pickle=False) as handle:
        arrays = {key: handle[key] for key in handle.files}
    return arrays, manifest


def load_or_build(name: str, build: Callable[[], Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The cached arrays and manifest of ``name``; on first use ``build()`` (which must call
    ``save_cached_arrays(name, ...)``) makes them."""
    cached = load_cached_arrays(name)
    if cached is None:
        build()
        cached = load_cached_arrays(name)
    if cached is None:
        raise DataError(f"building the dataset cache {name!r} wrote nothing; its prepare() must call "
                        f"save_cached_arrays({name!r}, ...)")
    return cached
