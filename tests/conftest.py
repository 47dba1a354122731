from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

# Triton kernels run on CPU tensors only through the interpreter, which must be chosen before triton is imported.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def dig_cache(tmp_path_factory) -> Path:
    """One dataset cache for the whole session (built from the real QM9 files on first use)."""
    path = Path(os.environ.get("DIG_TEST_CACHE_DIR") or tmp_path_factory.mktemp("dig-cache"))
    os.environ["DIG_CACHE_DIR"] = str(path)
    return path


def make_plugin_dist(root: Path, dist: str, entry: str, module: str, source: str) -> Path:
    """Write an installed-looking distribution (a dist-info with a ``dig`` entry point plus its module) under
    ``root``; putting ``root`` on PYTHONPATH makes importlib.metadata find it as it would a pip install."""
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[dig]\n{entry} = {module}\n")
    return root


def run_dig(*args: str, cwd: Path | None = None, extra_path: Path | None = None, env: dict | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess:
    environment = {**os.environ, **(env or {})}
    if extra_path is not None:
        environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(extra_path), environment.get("PYTHONPATH")]))
    environment.setdefault("COLUMNS", "200")
    return subprocess.run(
        [sys.executable, "-m", "dig", *args], cwd=cwd, env=environment, capture_output=True, text=True, timeout=timeout
    )


def pip_install(path: Path, editable: bool = False) -> None:
    """Install a plugin package with pip, as a third party would (its dependency, dig, is already here)."""
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         *(["-e"] if editable else []), str(path)],
        check=True,
    )


@pytest.fixture(scope="session")
def egnn_installed() -> None:
    """The example model plugin, installed with pip once per environment."""
    try:
        import dig_egnn  # noqa: F401
    except ImportError:
        pip_install(ROOT / "plugins" / "dig-egnn")


@pytest.fixture(scope="session")
def lj_installed() -> None:
    """The example dataset plugin, installed with pip once per environment."""
    try:
        import dig_lj  # noqa: F401
    except ImportError:
        pip_install(ROOT / "plugins" / "dig-lj")


@pytest.fixture(scope="session")
def pyg_installed() -> None:
    """The example explainer plugin (PyG's explainers as reference rows), installed with pip once."""
    try:
        import dig_pyg  # noqa: F401
    except ImportError:
        import importlib

        pip_install(ROOT / "plugins" / "dig-pyg")
        importlib.invalidate_caches()


def row_spy(fit_rows: list):
    """A scikit-learn pipeline step that records the rows every fit sees (their ids in column 0) in
    ``fit_rows`` and passes the other columns on: the probes' tests use it to prove no fit sees a test row."""
    from sklearn.base import BaseEstimator, TransformerMixin

    class RowSpy(TransformerMixin, BaseEstimator):
        def fit(self, X, y=None):
            fit_rows.append({int(r) for r in X[:, 0]})
            return self

        def transform(self, X):
            return X[:, 1:]

    return RowSpy()
