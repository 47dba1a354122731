"""Mini-batch samplers for large graphs: GraphSAGE's uniform neighbour sampler and LADIES' layer-wise
importance sampler. Both return bipartite blocks (``CSRGraph`` with num_src >= num_dst, destination nodes
first among the sources) from the input layer to the output layer, ready for ``SAGEConv`` / ``spmm``."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from dig.ops import CSRGraph
from dig.ops._torch import edge_rows


@dataclass
class Block:
    """One sampled layer: edges from ``src_nodes`` (global ids) to the first ``graph.num_dst_nodes`` of them.
    ``edge_weight`` is set by importance samplers (the rescaled Â entries) and None for uniform sampling."""

    graph: CSRGraph
    src_nodes: Tensor
    edge_weight: Tensor | None = None

    @property
    def dst_nodes(self) -> Tensor:
        return self.src_nodes[: self.graph.num_dst_nodes]


def _relabel(dst_nodes: Tensor, sources: Tensor, num_nodes: int) -> tuple[Tensor, Tensor]:
    """Local ids of ``sources`` in [dst_nodes, new sources...] and that node list (destinations first)."""
    local = torch.full((num_nodes,), -1, dtype=torch.long, device=dst_nodes.device)
    local[dst_nodes] = torch.arange(dst_nodes.numel(), device=dst_nodes.device)
    new = torch.unique(sources[local[sources] < 0])
    local[new] = torch.arange(dst_nodes.numel(), dst_nodes.numel() + new.numel(), device=dst_nodes.device)
    return local[sources], torch.cat([dst_nodes, new])


def _row_edges(graph: CSRGraph, nodes: Tensor) -> tuple[Tensor, Tensor]:
    """Edge ids of the in-edges of ``nodes`` and, for each, the position of its node in ``nodes``."""
    starts, counts = graph.rowptr[nodes], graph.rowptr[nodes + 1] - graph.rowptr[nodes]
    owner = edge_rows(torch.cat([counts.new_zeros(1), counts.cumsum(0)]), int(counts.sum()))
    offsets = torch.arange(owner.numel(), device=nodes.device) - (counts.cumsum(0) - counts)[owner]
    return starts[owner] + offsets, owner


class NeighborSampler:
    """Uniform neighbour sampling with a fixed fan-out per layer (Hamilton et al., NeurIPS 2017): every node
    keeps min(degree, fan-out) of its in-edges, drawn uniformly without replacement."""

    def __init__(self, graph: CSRGraph, fanouts: list[int], generator: torch.Generator | None = None) -> None:
        if any(k <= 0 for k in fanouts):
            raise ValueError(f"fan-outs must be positive, got {fanouts}")
        self.graph, self.fanouts, self.generator = graph, list(fanouts), generator

    def sample(self, seeds: Tensor) -> list[Block]:
        """Blocks ordered from the input layer to the output layer (the last block's destinations = seeds)."""
        blocks, nodes = [], seeds.long()
        for fanout in reversed(self.fanouts):
            edges, owner = _row_edges(self.graph, nodes)
            keys = torch.rand(edges.numel(), generator=self.generator, dtype=torch.float64) + owner
            order = torch.argsort(keys)
            edges, owner = edges[order], owner[order]
            counts = torch.bincount(owner, minlength=nodes.numel())
            rank = torch.arange(owner.numel()) - (counts.cumsum(0) - counts)[owner]
            keep = rank < fanout
            edges, owner = edges[keep], owner[keep]
            local_src, src_nodes = _relabel(nodes, self.graph.col[edges], self.graph.num_src_nodes)
            block = CSRGraph.from_sorted(owner, local_src, src_nodes.numel())
            blocks.append(Block(_as_bipartite(block, nodes.numel()), src_nodes))
            nodes = src_nodes
        return blocks[::-1]


def _as_bipartite(graph: CSRGraph, num_dst: int) -> CSRGraph:
    return CSRGraph(graph.rowptr[: num_dst + 1].contiguous(), graph.col, graph.num_src_nodes)


class LadiesSampler:
    """Layer-dependent importance sampling (LADIES, Zou et al., NeurIPS 2019).

    For the nodes S of the layer above, draw ``num_samples`` nodes u without replacement with probability
    p(u) ∝ sum_{v in S} Â(v, u)^2 (the squared column norms of Â restricted to S), keep S itself (self loops),
    and weight the edges Â(v, u) / (n p(u)) so that the block estimates Â X; rows are then renormalised to sum
    as in Â (``row_normalize``), as the authors' implementation does.
    """

    def __init__(self, graph: CSRGraph, edge_weight: Tensor, num_samples: list[int], row_normalize: bool = True,
                 generator: torch.Generator | None = None) -> None:
        if edge_weight.numel() != graph.num_edges:
            raise ValueError(f"edge_weight must have one entry per edge ({graph.num_edges})")
        self.graph, self.edge_weight = graph, edge_weight
        self.num_samples, self.row_normalize, self.generator = list(num_samples), row_normalize, generator

    def sample(self, seeds: Tensor) -> list[Block]:
        blocks, nodes = [], seeds.long()
        n = self.graph.num_src_nodes
        for count in reversed(self.num_samples):
            edges, owner = _row_edges(self.graph, nodes)
            row_total = torch.zeros(nodes.numel(), dtype=self.edge_weight.dtype).index_add_(
                0, owner, self.edge_weight[edges])
            sources, weights = self.graph.col[edges], self.edge_weight[edges]
            prob = torch.zeros(n, dtype=torch.float64).index_add_(0, sources, weights.double() ** 2)
            candidates = torch.nonzero(prob > 0).squeeze(1)
            take = min(count, candidates.numel())
            p = prob / prob.sum() if take else prob
            selected = torch.zeros(n, dtype=torch.bool)
            if take:
                chosen = torch.multinomial(p[candidates], take, replacement=False, generator=self.generator)
                selected[candidates[chosen]] = True
            is_self = sources == nodes[owner]
            keep = selected[sources] | is_self
            owner, sources, weights, is_self = owner[keep], sources[keep], weights[keep], is_self[keep]
            sampled = selected[sources] & ~is_self
            scale = torch.ones_like(weights)
            scale[sampled] = (1.0 / (take * p[sources[sampled]])).to(weights.dtype)
            weights = weights * scale
            if self.row_normalize:
                row_sum = torch.zeros(nodes.numel(), dtype=weights.dtype).index_add_(0, owner, weights)
                weights = weights * (row_total / row_sum.clamp(min=1e-30))[owner]
            local_src, src_nodes = _relabel(nodes, sources, n)
            block = CSRGraph.from_sorted(owner, local_src, src_nodes.numel())
            blocks.append(Block(_as_bipartite(block, nodes.numel()), src_nodes, weights))
            nodes = src_nodes
        return blocks[::-1]
