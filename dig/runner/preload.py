"""What the worker fork server imports once, so that each job's fresh process starts with it loaded.

``run_in_pool`` starts every job in a new process forked from one server process (multiprocessing's
``forkserver``). The server imports this module first: torch, the plugins (and through them every track) and
the heavy libraries that jobs import on first use. A spawned process paid these imports for every job: 3-5 s
of a 2-core machine per job (torch 1.7 s, the plugins 0.8-1.3 s, scikit-learn 2.4 s when the file cache is
cold), and a track's default bench runs 50-200 jobs.

Nothing here may start a thread (a fork copies only the forking thread) or fail the server: an import that
fails is left for the job itself to fail on, where its record says why.
"""

from __future__ import annotations

import importlib
import warnings

OPTIONAL = ("scipy.sparse", "sklearn.linear_model", "sklearn.model_selection", "sklearn.pipeline",
            "sklearn.preprocessing", "rdkit.Chem", "torch_geometric")


def preload() -> list[str]:
    """Import torch, the plugins and ``OPTIONAL``; return the names that did not import."""
    missing = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import torch  # noqa: F401

            from dig.plugins import load_plugins

            load_plugins()
        except BaseException:  # noqa: BLE001 - even a plugin calling sys.exit: the jobs load them again and say why
            missing.append("dig plugins")
        for name in OPTIONAL:
            try:
                importlib.import_module(name)
            except BaseException:  # noqa: BLE001 - not installed, or broken: the job that needs it says so
                missing.append(name)
    return missing


preload()
