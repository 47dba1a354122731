"""A batch of small graphs as one disconnected graph, the shape every ssl view and encoder takes.

``x`` [N, F] node features, ``edge_index`` [2, E] (row 0 source j, row 1 destination i, both directions of an
undirected edge present), ``ptr`` [G + 1] node offsets: graph g owns nodes ``ptr[g]:ptr[g+1]``, and every
edge stays inside its graph.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class GraphBatch:
    x: Tensor
    edge_index: Tensor
    ptr: Tensor

    @property
    def num_graphs(self) -> int:
        return self.ptr.numel() - 1

    @property
    def num_nodes(self) -> int:
        return self.x.size(0)

    def graph_of_node(self) -> Tensor:
        return torch.repeat_interleave(torch.arange(self.num_graphs), self.ptr.diff())

    def sizes(self) -> Tensor:
        return self.ptr.diff()

    def subgraph(self, keep: Tensor) -> GraphBatch:
        """The batch restricted to the nodes where ``keep`` [N] is true (edges between kept nodes only)."""
        new_id = torch.cumsum(keep.long(), 0) - 1
        src, dst = self.edge_index
        kept_edge = keep[src] & keep[dst]
        counts = torch.zeros(self.num_graphs, dtype=torch.long).index_add_(0, self.graph_of_node(), keep.long())
        ptr = torch.zeros(self.num_graphs + 1, dtype=torch.long)
        ptr[1:] = counts.cumsum(0)
        return GraphBatch(self.x[keep], new_id[self.edge_index[:, kept_edge]], ptr)


def collate(graphs: Sequence[tuple[Tensor, Tensor]]) -> GraphBatch:
    """(node features [n, F], edge_index [2, e] with local node ids) per graph -> one ``GraphBatch``."""
    sizes = torch.tensor([x.size(0) for x, _ in graphs], dtype=torch.long)
    ptr = torch.zeros(len(graphs) + 1, dtype=torch.long)
    ptr[1:] = sizes.cumsum(0)
    edges = [edge_index + ptr[g] for g, (_, edge_index) in enumerate(graphs)]
    return GraphBatch(torch.cat([x for x, _ in graphs]), torch.cat(edges, dim=1) if edges else torch.zeros(2, 0, dtype=torch.long), ptr)
