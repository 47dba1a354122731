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
from typing import Any, TypeVar

import torch

from dig.io import build_once, current_bench_workspace, stable_hash
from dig.registry import Entry

REUSED_TRAINING_COST = 0.01
T = TypeVar("T")


def fit_once(dataset: Entry, model: Entry, seed: int, identity: Sequence[Any], method: Any,
             fit: Callable[[], dict]) -> tuple[Any, dict, float, bool]:
    """(the fitted method, its history, training seconds, whether the fit was reused). ``fit()`` trains
    ``method`` in place and returns its history; ``identity`` is every setting that changes the fit besides
    the training data, the model and the seed (hyper-parameters, shapes)."""

    def train() -> tuple[Any, dict, float]:
        start = time.perf_counter()
        history = fit() or {}
        return method, history, time.perf_counter() - start

    training_key = getattr(dataset.obj, "training_key", None)
    if training_key is None:
        return (*train(), False)
    (fitted, history, train_s), built = kept_in_bench(f"fitted/{model.name}-s{seed}",
                                                      [training_key, model.name, seed, list(identity)], train)
    if type(fitted) is not type(method):
        raise TypeError(f"the kept fit of {model.name} is a {type(fitted).__name__}, not a {type(method).__name__}; "
                        "delete --out/.work and run again")
    return fitted, history, train_s, not built


def kept_in_bench(name: str, identity: Sequence[Any], build: Callable[[], T]) -> tuple[T, bool]:
    """(``build()``'s value, True), or (the value an earlier job of this bench built for the same ``identity``,
    False). Kept pickled under the bench's workspace as ``<name>-<hash of identity>.pt``; outside a bench
    every call builds."""
    workspace = current_bench_workspace()
    if workspace is None:
        return build(), True
    path = workspace / f"{name}-{stable_hash(list(identity))}.pt"
    # the file was written by this bench's own job, under its --out, so unpickling it runs no foreign code
    return build_once(path, lambda stored: torch.load(stored, weights_only=False), build, torch.save)


def scheduled_cost(dataset: Entry, cost: float) -> float:
    """A job's cost for the runner's longest-first order: evaluation only where another dataset trains."""
    return cost * REUSED_TRAINING_COST if getattr(dataset.obj, "trains_elsewhere", False) else cost
