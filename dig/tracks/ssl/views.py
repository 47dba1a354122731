"""Graph augmentations ("views") of GraphCL (You et al., NeurIPS 2020) and GRACE (Zhu et al., 2020),
vectorised over a ``GraphBatch``, and MVGRL's diffusion view (``ppr_diffusion``, ``batch_ppr_diffusion``).

Each view is a callable ``view(batch, generator) -> GraphBatch`` with a ``ratio`` (GraphCL's aug_ratio,
0.2 in its code). Counts follow GraphCL's code: a graph of n nodes loses ``int(n * ratio)`` of them.
A view never moves an edge between graphs and never leaves a graph empty.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from dig.tracks.ssl.graphs import GraphBatch


def _rank_within(group: Tensor, num_groups: int, generator: torch.Generator) -> Tensor:
    """A uniformly random rank 0..k-1 for every item among the k items of its group (``group`` [M])."""
    if group.numel() == 0:
        return group.clone()
    key = group.double() + torch.rand(group.numel(), generator=generator, dtype=torch.float64)
    order = torch.argsort(key)
    counts = torch.bincount(group, minlength=num_groups)
    first = torch.cumsum(counts, 0) - counts
    rank = torch.empty_like(group)
    rank[order] = torch.arange(group.numel()) - first[group[order]]
    return rank


@dataclass(frozen=True)
class NodeDropping:
    """Drop ``int(n * ratio)`` nodes of every graph uniformly at random, with their edges."""

    ratio: float = 0.2

    def __call__(self, batch: GraphBatch, generator: torch.Generator) -> GraphBatch:
        graph = batch.graph_of_node()
        rank = _rank_within(graph, batch.num_graphs, generator)
        drop = (batch.sizes().double() * self.ratio).long().clamp(max=batch.sizes() - 1)
        return batch.subgraph(rank >= drop[graph])


@dataclass(frozen=True)
class EdgePerturbation:
    """Remove ``int(m * ratio)`` of a graph's m undirected edges at random and add as many random node pairs
    of the same graph (no self loops; a pair that duplicates a kept edge is merged, so a graph can end with
    slightly fewer edges). Edges stay symmetric."""

    ratio: float = 0.2

    def __call__(self, batch: GraphBatch, generator: torch.Generator) -> GraphBatch:
        src, dst = batch.edge_index
        once = src < dst
        pairs = torch.stack([src[once], dst[once]])
        node_graph = batch.graph_of_node()
        edge_graph = node_graph[pairs[0]]
        counts = torch.bincount(edge_graph, minlength=batch.num_graphs)
        drop = (counts.double() * self.ratio).long()
        kept = pairs[:, _rank_within(edge_graph, batch.num_graphs, generator) >= drop[edge_graph]]
        sizes = batch.sizes()
        add_graph = torch.repeat_interleave(torch.arange(batch.num_graphs), torch.where(sizes > 1, drop, 0))
        n = sizes[add_graph]
        first = (torch.rand(add_graph.numel(), generator=generator) * n).long()
        second = (first + 1 + (torch.rand(add_graph.numel(), generator=generator) * (n - 1)).long()) % n
        added = torch.stack([first, second]) + batch.ptr[add_graph]
        undirected = torch.cat([kept, added], dim=1).sort(dim=0).values
        undirected = torch.unique(undirected, dim=1) if undirected.numel() else undirected
        return GraphBatch(batch.x, torch.cat([undirected, undirected.flip(0)], dim=1), batch.ptr)


@dataclass(frozen=True)
class AttributeMasking:
    """Replace the features of ``int(n * ratio)`` nodes per graph with Gaussian noise N(0.5, 0.5²), as
    GraphCL's code does; the structure is unchanged."""

    ratio: float = 0.2
    mean: float = 0.5
    std: float = 0.5

    def __call__(self, batch: GraphBatch, generator: torch.Generator) -> GraphBatch:
        graph = batch.graph_of_node()
        rank = _rank_within(graph, batch.num_graphs, generator)
        masked = rank < (batch.sizes().double() * self.ratio).long()[graph]
        noise = torch.randn(int(masked.sum()), batch.x.size(1), generator=generator) * self.std + self.mean
        x = batch.x.clone()
        x[masked] = noise.to(x.dtype)
        return GraphBatch(x, batch.edge_index, batch.ptr)


@dataclass(frozen=True)
class Subgraph:
    """Keep a connected subgraph of ``n - int(n * ratio)`` nodes grown from a random start node: each step
    adds one random node adjacent to the kept set (GraphCL's ``subgraph``). A graph whose start node's
    component is smaller stops at that component."""

    ratio: float = 0.2

    def __call__(self, batch: GraphBatch, generator: torch.Generator) -> GraphBatch:
        graph = batch.graph_of_node()
        sizes = batch.sizes()
        target = sizes - (sizes.double() * self.ratio).long()
        start = batch.ptr[:-1] + (torch.rand(batch.num_graphs, generator=generator) * sizes).long()
        inside = torch.zeros(batch.num_nodes, dtype=torch.bool)
        inside[start[sizes > 0]] = True
        src, dst = batch.edge_index
        for _ in range(int(target.max()) if target.numel() else 0):
            have = torch.bincount(graph[inside], minlength=batch.num_graphs)
            frontier = torch.zeros(batch.num_nodes, dtype=torch.bool)
            frontier[dst[inside[src]]] = True
            frontier &= ~inside
            frontier &= (have < target)[graph]
            if not bool(frontier.any()):
                break
            candidates = frontier.nonzero().squeeze(1)
            pick = _rank_within(graph[candidates], batch.num_graphs, generator) == 0
            inside[candidates[pick]] = True
        return batch.subgraph(inside)


@dataclass(frozen=True)
class EdgeRemoving:
    """GRACE's edge removing (Zhu et al. 2020): every directed edge is dropped independently with probability
    ``ratio`` (its code's ``dropout_adj``, so the two directions of an edge can part); nodes and features kept."""

    ratio: float = 0.2

    def __call__(self, batch: GraphBatch, generator: torch.Generator) -> GraphBatch:
        keep = torch.rand(batch.edge_index.size(1), generator=generator) >= self.ratio
        return GraphBatch(batch.x, batch.edge_index[:, keep], batch.ptr)


@dataclass(frozen=True)
class FeatureMasking:
    """GRACE's feature masking: each feature dimension is zeroed with probability ``ratio``, the same
    dimensions for every node; the structure is unchanged."""

    ratio: float = 0.3

    def __call__(self, batch: GraphBatch, generator: torch.Generator) -> GraphBatch:
        keep = torch.rand(batch.x.size(1), generator=generator) >= self.ratio
        return GraphBatch(batch.x * keep.to(batch.x.dtype), batch.edge_index, batch.ptr)


VIEWS = {"node-dropping": NodeDropping, "edge-perturbation": EdgePerturbation,
         "attribute-masking": AttributeMasking, "subgraph": Subgraph, "edge-removing": EdgeRemoving,
         "feature-masking": FeatureMasking}


def _ppr(adjacency: Tensor, alpha: float) -> Tensor:
    """alpha (I - (1 - alpha) D^-1/2 A D^-1/2)^-1 of a float64 adjacency [..., n, n] that has its self loops."""
    inv_sqrt = adjacency.sum(-1).pow(-0.5)
    normalised = inv_sqrt[..., :, None] * adjacency * inv_sqrt[..., None, :]
    eye = torch.eye(adjacency.size(-1), dtype=torch.float64).expand_as(adjacency)
    return alpha * torch.linalg.inv(eye - (1 - alpha) * normalised)


def ppr_diffusion(edge_index: Tensor, nodes: int, alpha: float = 0.2) -> Tensor:
    """MVGRL's diffusion view (Hassani & Khasahmadi, ICML 2020): personalised PageRank
    S = alpha (I - (1 - alpha) Â)^-1 with Â = D̃^-1/2 (A + I) D̃^-1/2, dense [n, n] (exact inverse; the graphs
    here have <= a few thousand nodes). S[i, j] weighs node j's features in node i's diffused features."""
    adjacency = torch.zeros(nodes, nodes, dtype=torch.float64)
    adjacency[edge_index[1], edge_index[0]] = 1.0
    adjacency.fill_diagonal_(1.0)
    return _ppr(adjacency, alpha).float()


def batch_ppr_diffusion(batch: GraphBatch, alpha: float = 0.2) -> tuple[Tensor, Tensor]:
    """``ppr_diffusion`` of every graph of a batch at once, as weighted edges: (edge_index [2, sum n_g^2],
    weight) with an edge j -> i of weight S[i, j] for every ordered pair of one graph, self pairs included.
    The graphs are padded to the largest one and inverted as one batched matrix (padding rows are identity
    and never read)."""
    sizes = batch.sizes()
    graphs, largest = batch.num_graphs, int(sizes.max()) if batch.num_graphs else 0
    graph_of = batch.graph_of_node()
    local = torch.arange(batch.num_nodes) - batch.ptr[graph_of]
    adjacency = torch.zeros(graphs, largest, largest, dtype=torch.float64)
    src, dst = batch.edge_index
    adjacency[graph_of[dst], local[dst], local[src]] = 1.0
    real = torch.arange(largest)[None, :] < sizes[:, None]  # [G, m]
    adjacency[:, torch.arange(largest), torch.arange(largest)] = 1.0  # self loops (and the padding's identity)
    diffusion = _ppr(adjacency, alpha)
    pair = real[:, :, None] & real[:, None, :]  # [G, m, m]: both ends real
    g, i, j = pair.nonzero(as_tuple=True)  # grouped by graph, then destination i: destination-sorted
    offset = batch.ptr[g]
    return torch.stack([offset + j, offset + i]), diffusion[g, i, j].float()
