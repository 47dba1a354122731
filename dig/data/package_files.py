"""Data files shipped inside installed PyPI wheels that dig reads but never imports (their own imports or
requirements are broken or heavy): found with ``importlib.util.find_spec``, checked by SHA-256."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from dig.errors import DataError
from dig.io import sha256_file


def package_data_file(package: str, folder: str, name: str, sha256: str | None, install: str) -> Path:
    """``<package's directory>/<folder>/<name>``; ``install`` is the pip requirement that provides it
    (e.g. ``molsets==0.3.1``). ``sha256=None`` skips the checksum."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"the {package} data files are not installed: pip install --no-deps {install} "
                        "(its requirements need not install; dig only reads its data files)")
    path = Path(next(iter(spec.submodule_search_locations))) / folder / name
    if not path.exists():
        raise DataError(f"{install} is installed but {path} is missing; reinstall: "
                        f"pip install --no-deps --force-reinstall {install}")
    if sha256 is not None and sha256_file(path) != sha256:
        raise DataError(f"{path} does not match its known checksum; reinstall: "
                        f"pip install --no-deps --force-reinstall {install}")
    return path
