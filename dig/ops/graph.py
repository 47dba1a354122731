"""Graph structure shared by every op: edges sorted by destination, stored as CSR.

Edge ``e`` goes from ``col[e]`` (source j) to the destination row i with ``rowptr[i] <= e < rowptr[i+1]``.
Build it once per graph or batch (``CSRGraph.from_edge_index``) and pass it to every layer: the sorted
order, the per-edge destination and the transposed (source-sorted) order are computed once and cached.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from dig.ops._torch import edge_rows, stable_sort, transpose


def _check_index(name: str, index: Tensor, upper: int) -> None:
    if index.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"{name} must be an int64/int32 index tensor, got {index.dtype}")
    if index.numel() and (int(index.min()) < 0 or int(index.max()) >= upper):
        raise IndexError(
            f"{name} holds indices in [{int(index.min())}, {int(index.max())}] but must lie in [0, {upper}): "
            "check num_nodes and that edge_index was not built for another graph"
        )


@dataclass(eq=False)
class CSRGraph:
    """Edges sorted by destination. ``row`` [E] is each edge's DESTINATION i (sorted ascending), ``col`` [E] its
    SOURCE j; ``rowptr`` [N_dst + 1] delimits the in-edges of each destination: edges ``rowptr[i]:rowptr[i+1]``
    go into i. Messages flow ``col -> row``: ``segment(message, graph.rowptr)`` sums per destination.
    Build with ``from_edge_index`` (PyG's [2, E] source/destination order; returns the edge permutation) or
    ``from_sorted``; ``radius_graph`` returns one."""

    rowptr: Tensor  # [N_dst + 1] int64 offsets of each destination's in-edges
    col: Tensor  # [E] int64 source node j of each edge, edges sorted by destination
    num_src_nodes: int  # N_src (equal to N_dst for a graph on one node set)
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def num_dst_nodes(self) -> int:
        return self.rowptr.numel() - 1

    @property
    def num_edges(self) -> int:
        return self.col.numel()

    @property
    def device(self) -> torch.device:
        return self.col.device

    @classmethod
    def from_edge_index(
        cls, edge_index: Tensor, num_nodes: int, num_dst_nodes: int | None = None
    ) -> tuple[CSRGraph, Tensor]:
        """Sort ``edge_index`` ([2, E], row 0 = source, row 1 = destination, PyG convention) by destination.

        Returns the graph and ``perm``, the order of the original edges in the graph (edge attributes
        must be indexed with it: ``edge_attr[perm]``).
        """
        if edge_index.dim() != 2 or edge_index.size(0) != 2:
            raise ValueError(f"edge_index must have shape [2, E], got {list(edge_index.shape)}")
        num_dst = num_nodes if num_dst_nodes is None else num_dst_nodes
        src, dst = edge_index[0], edge_index[1]
        _check_index("edge_index[0] (sources)", src, num_nodes)
        _check_index("edge_index[1] (destinations)", dst, num_dst)
        dst = dst.long()
        if dst.numel() < 2 or bool((dst[1:] >= dst[:-1]).all()):  # already grouped by destination: no sort
            dst_sorted, perm = dst, torch.arange(dst.numel(), device=dst.device)
        else:
            dst_sorted, perm = stable_sort(dst, num_dst)
        rowptr = torch.zeros(num_dst + 1, dtype=torch.long, device=edge_index.device)
        rowptr[1:] = torch.bincount(dst_sorted, minlength=num_dst).cumsum(0)
        graph = cls(rowptr, src.long()[perm].contiguous(), num_nodes)
        graph._cache["row"] = dst_sorted
        return graph, perm

    @classmethod
    def from_sorted(cls, row: Tensor, col: Tensor, num_nodes: int) -> CSRGraph:
        """Build from per-edge destination ``row`` already sorted ascending, and sources ``col``."""
        _check_index("row", row, num_nodes)
        _check_index("col", col, num_nodes)
        if row.numel() > 1 and bool((row[1:] < row[:-1]).any()):
            raise ValueError("row must be sorted ascending; use CSRGraph.from_edge_index for unsorted edges")
        rowptr = torch.zeros(num_nodes + 1, dtype=torch.long, device=row.device)
        rowptr[1:] = torch.bincount(row.long(), minlength=num_nodes).cumsum(0)
        graph = cls(rowptr, col.long().contiguous(), num_nodes)
        graph._cache["row"] = row.long()
        return graph

    @property
    def row(self) -> Tensor:
        """Destination of every edge (length E, sorted)."""
        if "row" not in self._cache:
            self._cache["row"] = edge_rows(self.rowptr, self.num_edges)
        return self._cache["row"]

    def in_degree(self) -> Tensor:
        return self.rowptr.diff()

    def edge_index(self) -> Tensor:
        return torch.stack([self.col, self.row])

    def transposed(self) -> tuple[Tensor, Tensor, Tensor]:
        """Source-sorted view, cached: (colptr [N_src+1], destination of each edge, edge permutation)."""
        if "transposed" not in self._cache:
            self._cache["transposed"] = transpose(self.rowptr, self.col, self.num_src_nodes)
        return self._cache["transposed"]
