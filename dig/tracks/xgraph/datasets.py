"""Registered datasets of the xgraph track: generated (or read) once, cached with a checksum, split per budget.

Splits: a permutation with seed 0 of the nodes (node tasks) or graphs (graph tasks), 80 / 10 / 10 %. The
explained instances are the test nodes or graphs that have a ground truth (motif nodes; graphs carrying the
motif or alert): all of them at ``default``, the first ``SMOKE_INSTANCES`` at ``smoke``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import fields
from typing import Any

import numpy as np

from dig.data import load_cached_arrays, load_or_build, permuted_split, save_cached_arrays
from dig.errors import DataError
from dig.tracks.xgraph.molecules import read_tu
from dig.tracks.xgraph.protocol import GraphSet

SPLIT_FRACTIONS = {"train": 0.8, "valid": 0.1}
SPLIT_SEED = 0
SMOKE_INSTANCES = 6
FIT_INSTANCES = {"smoke": 8, "default": 100, "paper": 300}


def graphset_arrays(data: GraphSet) -> dict[str, np.ndarray]:
    return {f.name: np.asarray(getattr(data, f.name)) for f in fields(GraphSet)}


def graphset_from_arrays(arrays: Mapping[str, np.ndarray]) -> GraphSet:
    values = {f.name: arrays[f.name] for f in fields(GraphSet)}
    values["task"], values["num_classes"] = str(values["task"]), int(values["num_classes"])
    return GraphSet(**values)


class ExplainDataset:
    """A dataset built by ``build(seed)`` (generated offline) or read by ``prepare(FOLDER)`` (TU format)."""

    def __init__(self, name: str, build: Callable[[int], GraphSet] | None, card: Mapping[str, Any],
                 seed: int = 0, version: int = 1) -> None:
        self.name, self._build, self._card, self.seed = name, build, dict(card), seed
        self.cache_name = f"xgraph-{name}-s{seed}-v{version}"
        self._data: GraphSet | None = None

    def prepare(self, source: str | os.PathLike | None = None) -> dict[str, Any]:
        if source is not None:
            data, origin = read_tu(source, self._card.get("tu_name", self.name.upper())), {"path": str(source)}
        elif self._build is None:
            raise DataError(f"{self.name} is read from its TU files: dig data prepare {self.name} --from FOLDER")
        else:
            data, origin = self._build(self.seed), {"generator_seed": self.seed}
        manifest = {"dataset": self.name, "graphs": data.num_graphs, "nodes": int(data.x.shape[0]),
                    "edges": int(data.edge_index.shape[1]), **origin}
        save_cached_arrays(self.cache_name, graphset_arrays(data), manifest)
        self._data = None
        return manifest

    def load(self) -> GraphSet:
        if self._data is None:
            if self._build is None:
                cached = load_cached_arrays(self.cache_name)
                if cached is None:
                    raise DataError(f"{self.name} is not prepared: dig data prepare {self.name} --from FOLDER "
                                    f"(the folder holding {self._card.get('tu_name', self.name.upper())}_A.txt, ...)")
                arrays = cached[0]
            else:
                arrays, _ = load_or_build(self.cache_name, self.prepare)
            self._data = graphset_from_arrays(arrays)
        return self._data

    def split(self, budget: str) -> dict[str, np.ndarray]:
        """Node (node task) or graph (graph task) indices of each part, and ``explain``: the instances."""
        data = self.load()
        items = data.x.shape[0] if data.task == "node" else data.num_graphs
        sizes = {part: int(round(fraction * items)) for part, fraction in SPLIT_FRACTIONS.items()}
        split = permuted_split(items, {**sizes, "test": None}, SPLIT_SEED)
        if data.task == "node":
            has_truth = data.node_truth
        else:
            has_truth = np.add.reduceat(data.edge_truth.astype(np.int64), data.edge_ptr[:-1]) > 0
        explain = np.sort(split["test"][has_truth[split["test"]]])
        if budget == "smoke":
            explain = explain[:SMOKE_INSTANCES]
        if len(explain) == 0:
            raise DataError(f"{self.name}: no test {data.task} has a ground-truth explanation")
        # explainers that learn across instances (PGExplainer) fit on training items chosen as the explained ones are
        fit = split["train"][has_truth[split["train"]]]
        fit = np.sort(np.random.RandomState(SPLIT_SEED).permutation(fit)[: FIT_INSTANCES[budget]])
        return {**split, "explain": explain, "fit": fit}

    def card(self) -> Mapping[str, Any]:
        return {"name": self.name, **self._card, "split": "permutation seed 0, 80 / 10 / 10 %"}
