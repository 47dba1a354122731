"""One fit for datasets that share their training data: two datasets with the same ``training_key`` (the same
training and validation images, different test sets, e.g. simulated images and the real stardist image) are
trained once per (model, seed, settings) within a bench.

The first job fits the method and keeps it (pickled whole, with its history and training seconds) under the
bench's workspace (``--out/.work/<track>/fitted``); a later job of the same bench, or of a resumed one, loads
it. Parallel workers wait for the first fit instead of repeating it. Training is deterministic per seed, so
this changes no number, only the wall time; outside a bench (a track called directly) every job trains.
A dataset whose ``trains_elsewhere`` is true is costed as evaluation only, so the runner schedules it after
the dataset that trains.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from dig.io import build_once, current_bench_workspace, stable_hash
from dig.registry import Entry

REUSED_TRAINING_COST = 0.01


def fit_once(dataset: Entry, model: Entry, seed: int, identity: Sequence[Any], method: Any,
             fit: Callable[[], dict]) -> tuple[Any, dict, float, bool]:
    """(the fitted method, its history, training seconds, whether the fit was reused). ``fit()`` trains
    ``method`` in place and returns its history; ``identity`` is every setting that changes the fit besides
    the training data, the model and the seed (hyper-parameters, shapes)."""

    def train() -> tuple[Any, dict, float]:
        start = time.perf_counter()
        history = fit() or {}
        return method, history, time.perf_counter() - start

    training_key, workspace = getattr(dataset.obj, "training_key", None), current_bench_workspace()
    if training_key is None or workspace is None:
        return (*train(), False)
    key = stable_hash([training_key, model.name, seed, list(identity)])
    path = workspace / "fitted" / f"{model.name}-s{seed}-{key}.pt"

    def load(stored: Path) -> tuple[Any, dict, float]:
        saved = torch.load(stored, weights_only=False)  # written by this bench's own job, under its --out
        if type(saved["method"]) is not type(method):
            raise TypeError(f"{stored} holds a {type(saved['method']).__name__}, not a {type(method).__name__}")
        return saved["method"], saved["history"], float(saved["train_s"])

    def save(fitted: tuple[Any, dict, float], tmp: Path) -> None:
        torch.save({"method": fitted[0], "history": fitted[1], "train_s": fitted[2]}, tmp)

    (method, history, train_s), trained = build_once(path, load, train, save)
    return method, history, train_s, not trained


def scheduled_cost(dataset: Entry, cost: float) -> float:
    """A job's cost for the runner's longest-first order: evaluation only where another dataset trains."""
    return cost * REUSED_TRAINING_COST if getattr(dataset.obj, "trains_elsewhere", False) else cost
