"""On-disk cache of processed datasets: one ``.npz`` of arrays plus a JSON manifest with its checksum.

The cache lives in ``$DIG_CACHE_DIR`` (default ``~/.cache/dig``). Both files are written atomically, and a
cache whose checksum does not match its manifest is reported, never silently used.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from dig.errors import DataError
from dig.io import atomic_write, atomic_write_json, sha256_file


def cache_dir() -> Path:
    root = Path(os.environ.get("DIG_CACHE_DIR", Path.home() / ".cache" / "dig")).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root


def _paths(name: str) -> tuple[Path, Path]:
    root = cache_dir()
    return root / f"{name}.npz", root / f"{name}.json"


def save_cached_arrays(name: str, arrays: dict[str, np.ndarray], manifest: dict[str, Any]) -> Path:
    data_path, manifest_path = _paths(name)
    atomic_write(data_path, lambda tmp: np.savez(open(tmp, "wb"), **arrays))
    atomic_write_json(manifest_path, {**manifest, "sha256": sha256_file(data_path), "arrays": sorted(arrays)})
    return data_path


def read_npz(path: str | os.PathLike, required: tuple[str, ...], description: str,
             optional: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """The arrays of a canonical ``.npz`` file, with a DataError naming the file for every way it can be bad."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path} does not exist; pass the path of {description}")
    try:
        handle = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path} is not a readable .npz file ({exc})") from exc
    with handle:
        missing = [key for key in required if key not in handle.files]
        if missing:
            raise DataError(f"{path} lacks arrays {missing}; expected {description} with {', '.join(required)}")
        return {key: handle[key] for key in (*required, *optional) if key in handle.files}


def load_cached_arrays(name: str) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
    """The cached arrays and manifest, or ``None`` when there is no cache yet."""
    data_path, manifest_path = _paths(name)
    if not data_path.exists() or not manifest_path.exists():
        return None
    manifest = json.loads(manifest_path.read_text())
    digest = sha256_file(data_path)
    if digest != manifest.get("sha256"):
        raise DataError(
            f"cached dataset {data_path} does not match its checksum ({digest[:12]} != "
            f"{str(manifest.get('sha256'))[:12]}); delete {data_path} and {manifest_path} to rebuild it"
        )
    with np.load(data_path, allow_pickle=False) as handle:
        arrays = {key: handle[key] for key in handle.files}
    return arrays, manifest
