"""The self-supervision track's protocol (graph half: graph-level and node-level tasks).

- A graph-level dataset gives a ``GraphTask``: molecule graphs (node features, edges) with one label each, the task kind
  (``classification`` or ``regression``) and the label unit. Its unlabelled graphs are what a method
  pre-trains on (all of them, as the unsupervised protocol of InfoGraph and GraphCL does; the labels are
  never shown to pre-training).
- A method is built by ``build(in_features, **hparams)`` and has ``pretrain(graphs, seed, on_epoch=None) ->
  dict`` (a history) and ``embed(graphs) -> ndarray [G, d]`` (frozen embeddings).
- A node-level dataset gives a ``NodeTask``: one graph, a label per node and fixed train / validation /
  test node sets. Methods pre-train on the graph without labels (``graphs`` is a one-graph list) and
  ``embed`` returns one row per node; the probe is a logistic regression fitted on the training nodes with
  C chosen on the validation nodes, scoring the test nodes once (``probe.probe_nodes``). The ``supervised``
  ceiling alone also gets the training and validation labels (``pretrain(..., supervision=...)``).
- An image-level dataset (the image half: self-supervised denoising) gives an ``ImageTask``: training and
  validation images (noisy, with their clean versions that only ``uses_clean`` methods receive) and test
  images per noise condition. A denoiser is built by ``build(dim=..., **hparams)`` and has
  ``fit(noisy, seed, on_epoch=None, clean=None, val_noisy=..., val_clean=None) -> dict`` and
  ``denoise(noisy) -> ndarray`` (same shape); the track scores PSNR/SSIM against the clean test images.
- Every task and method says its ``level`` ("graph", "node" or "image"); a method runs only on tasks of its level.
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
    level = "graph"
    name: str
    graphs: list[Graph]
    labels: np.ndarray
    task: str  # "classification" | "regression"
    unit: str = ""  # of regression labels, e.g. "kcal_per_mol"
    deduplication: dict[str, int] = field(default_factory=dict)  # what building the set merged or dropped

    @property
    def in_features(self) -> int:
        return int(self.graphs[0][0].size(1))


@dataclass(frozen=True)
class NodeTask:
    level = "node"
    task = "classification"
    unit = ""
    name: str
    x: Tensor  # [N, F]
    edge_index: Tensor  # [2, E], both directions of every undirected edge
    labels: np.ndarray  # [N] int classes
    train: np.ndarray  # node ids; the three sets are disjoint
    val: np.ndarray
    test: np.ndarray
    description: str = ""

    @property
    def graphs(self) -> list[Graph]:
        return [(self.x, self.edge_index)]

    @property
    def in_features(self) -> int:
        return int(self.x.size(1))

    @property
    def deduplication(self) -> dict[str, int]:
        return {}


@dataclass(frozen=True)
class ImageTask:
    level = "image"
    task = "denoising"
    name: str
    dim: int  # 2 or 3
    data_range: float  # of the clean images, for PSNR and SSIM
    train_noisy: list[np.ndarray]
    train_clean: list[np.ndarray]
    val_noisy: list[np.ndarray]
    val_clean: list[np.ndarray]
    test: dict[str, tuple[list[np.ndarray], list[np.ndarray]]]  # condition -> (noisy, clean) images
    description: str = ""

    @property
    def conditions(self) -> tuple[str, ...]:
        return tuple(self.test)


@dataclass(frozen=True)
class Supervision:
    """What the ``supervised`` ceiling may see of a node task: labels of the training and validation nodes."""

    labels: np.ndarray
    train: np.ndarray
    val: np.ndarray


@runtime_checkable
class GraphMethod(Protocol):
    def pretrain(self, graphs: Sequence[Graph], seed: int,
                 on_epoch: Callable[[int, int, Mapping[str, float]], None] | None = None) -> dict[str, Any]: ...

    def embed(self, graphs: Sequence[Graph]) -> np.ndarray: ...
