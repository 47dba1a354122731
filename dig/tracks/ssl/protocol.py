"""The self-supervision track's protocol (graph half).

- A dataset gives a ``GraphTask``: molecule graphs (node features, edges) with one label each, the task kind
  (``classification`` or ``regression``) and the label unit. Its unlabelled graphs are what a method
  pre-trains on (all of them, as the unsupervised protocol of InfoGraph and GraphCL does; the labels are
  never shown to pre-training).
- A method is built by ``build(in_features, **hparams)`` and has ``pretrain(graphs, seed, on_epoch=None) ->
  dict`` (a history) and ``embed(graphs) -> ndarray [G, d]`` (frozen embeddings).
- The evaluator is the linear probe of ``probe.py``: nested cross-validation, hyper-parameters chosen on the
  training folds only, each outer test fold scored once. Metrics: ``accuracy_frac`` (classes) or
  ``mae_<unit>`` (regression), mean over the 10 outer folds; the fold std is kept in the record's extra.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
from torch import Tensor

Graph = tuple[Tensor, Tensor]  # (node features [n, F], edge_index [2, e] with local node ids)


@dataclass(frozen=True)
class GraphTask:
    name: str
    graphs: list[Graph]
    labels: np.ndarray
    task: str  # "classification" | "regression"
    unit: str = ""  # of regression labels, e.g. "kcal_per_mol"
    deduplication: dict[str, int] = field(default_factory=dict)  # what building the set merged or dropped

    @property
    def in_features(self) -> int:
        return int(self.graphs[0][0].size(1))


@runtime_checkable
class GraphMethod(Protocol):
    def pretrain(self, graphs: Sequence[Graph], seed: int,
                 on_epoch: Callable[[int, int, Mapping[str, float]], None] | None = None) -> dict[str, Any]: ...

    def embed(self, graphs: Sequence[Graph]) -> np.ndarray: ...
