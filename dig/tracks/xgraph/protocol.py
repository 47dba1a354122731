"""The explainability track's protocol: graphs with ground-truth explanations, GNNs that take an edge mask,
explainers that return one ``Explanation`` shape.

- A dataset provides a ``GraphSet`` (all graphs concatenated, ground truth kept) and a fixed split per budget.
- An explained GNN is an ``nn.Module`` ``forward(x, graph, edge_weight=None, batch=None) -> logits``:
  ``graph`` a ``dig.ops.CSRGraph``, ``edge_weight`` [E] multiplies every edge's message (1 = the edge is
  there, 0 = removed), ``batch`` [N] the graph of each node for graph classification ([G, C] logits), None
  for node classification ([N, C] logits). ``dig.nn``'s GCN and GIN layers take that ``edge_weight``.
  Optionally ``embed(x, graph, edge_weight=None) -> [N, D]`` node embeddings (parametrised explainers such as
  PGExplainer need them and say so when a model lacks it).
- An explainer is registered as kind ``explainer`` with a factory ``build(**hparams)`` returning a callable
  ``explain(model, instance: Instance, seed: int) -> Explanation``. An explainer that learns across instances
  (PGExplainer) also has ``fit(model, instances, seed)``, which the track calls once per job with instances
  built from the TRAINING split (never the explained test items).
- Evaluators are pure functions of the model's probabilities and the explanation (``evaluators.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from dig.ops import CSRGraph


@dataclass(frozen=True)
class GraphSet:
    """Graphs with nodes and edges concatenated; graph g owns nodes ``node_ptr[g]:node_ptr[g+1]`` and edges
    ``edge_ptr[g]:edge_ptr[g+1]``. Node classification datasets hold one graph. Edges are directed pairs
    (an undirected edge is stored both ways) with global node ids."""

    task: str  # "node" or "graph"
    x: np.ndarray  # [N, F] float32 node features
    edge_index: np.ndarray  # [2, E] int64 source, destination
    node_ptr: np.ndarray  # [G + 1] int64
    edge_ptr: np.ndarray  # [G + 1] int64
    y: np.ndarray  # [N] (node task) or [G] (graph task) int64 class labels
    edge_truth: np.ndarray  # [E] bool: the edge belongs to a ground-truth motif / structural alert
    node_truth: np.ndarray  # [N] bool: the node belongs to one
    motif: np.ndarray  # [N] int64 id of the motif instance a node belongs to, -1 for none
    num_classes: int

    @property
    def num_graphs(self) -> int:
        return len(self.node_ptr) - 1


@dataclass
class Instance:
    """One thing to explain: a small graph (the target node's L-hop computation graph for node tasks, the
    whole graph for graph tasks), already in the explained model's input form."""

    x: Tensor  # [n, F]
    edge_index: Tensor  # [2, e] local ids, in ``graph``'s edge order (sorted by destination)
    graph: CSRGraph
    target: int | None  # local id of the explained node; None for a graph
    label: int  # the explained class: the model's prediction on the full input
    edge_truth: Tensor  # [e] bool ground truth, for evaluation only (explainers must not read it)
    node_truth: Tensor  # [n] bool

    @property
    def num_nodes(self) -> int:
        return self.x.size(0)

    @property
    def num_edges(self) -> int:
        return self.edge_index.size(1)

    def batch(self) -> Tensor | None:
        return None if self.target is not None else torch.zeros(self.num_nodes, dtype=torch.long)


@dataclass(frozen=True)
class Explanation:
    """An explainer's answer. ``edge_mask`` [e] and ``node_mask`` [n] are soft importances (higher = more
    important); an explainer gives at least one and says which through ``None``. ``target`` is the explained
    node (local id) or None for a graph; ``label`` the explained class."""

    edge_mask: Tensor | None
    node_mask: Tensor | None
    target: int | None
    label: int

    def edge_scores(self, instance: Instance) -> Tensor:
        """Edge importances: the edge mask, or for node-mask explainers min(score(u), score(v)) of the ends, so
        that an edge counts as explained exactly when both its ends are."""
        if self.edge_mask is not None:
            return self.edge_mask.detach().float()
        src, dst = instance.edge_index
        return torch.minimum(self.node_mask[src], self.node_mask[dst]).detach().float()

    def node_scores(self, instance: Instance) -> Tensor:
        """Node importances: the node mask, or for edge-mask explainers the mean score of a node's edges (both
        directions; 0 for a node without edges). The mean, not the max, so that a random edge mask ranks nodes
        at random whatever their degree."""
        if self.node_mask is not None:
            return self.node_mask.detach().float()
        ends = instance.edge_index.reshape(-1)  # every edge's source, then every edge's destination
        scores = self.edge_mask.detach().float().repeat(2)
        total = torch.zeros(instance.num_nodes).index_add_(0, ends, scores)
        return total / torch.bincount(ends, minlength=instance.num_nodes).clamp(min=1)

    def hard(self, instance: Instance, sparsity: float) -> Tensor:
        """[e] bool: the top-k edges with k = round((1 - sparsity) * e), ties broken by edge order (stable)."""
        if not 0.0 <= sparsity <= 1.0:
            raise ValueError(f"sparsity must be in [0, 1], got {sparsity}")
        scores = self.edge_scores(instance)
        keep = int(round((1.0 - sparsity) * scores.numel()))
        chosen = torch.zeros(scores.numel(), dtype=torch.bool)
        chosen[torch.sort(scores, descending=True, stable=True).indices[:keep]] = True
        return chosen


Explainer = Callable[[torch.nn.Module, Instance, int], Explanation]


def check_explanation(explanation: Explanation, instance: Instance, explainer: str) -> None:
    """A clear error for an explainer that returns the wrong shape or non-finite values."""
    if explanation.edge_mask is None and explanation.node_mask is None:
        raise ValueError(f"explainer {explainer!r} returned neither an edge mask nor a node mask")
    for name, mask, size in (("edge_mask", explanation.edge_mask, instance.num_edges),
                             ("node_mask", explanation.node_mask, instance.num_nodes)):
        if mask is None:
            continue
        if tuple(mask.shape) != (size,):
            raise ValueError(f"explainer {explainer!r} returned {name} of shape {list(mask.shape)}; the instance "
                             f"has {size} {'edges' if name == 'edge_mask' else 'nodes'}")
        if not bool(torch.isfinite(mask).all()):
            raise ValueError(f"explainer {explainer!r} returned a {name} with non-finite values")


def edges_to_numpy(edges: list[tuple[int, int]]) -> np.ndarray:
    """Undirected pairs -> [2, 2 * len] int64, both directions."""
    if not edges:
        return np.zeros((2, 0), dtype=np.int64)
    pairs = np.asarray(edges, dtype=np.int64).T
    return np.concatenate([pairs, pairs[::-1]], axis=1)
