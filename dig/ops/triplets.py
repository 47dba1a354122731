"""Triplet (angle) index construction for directional message passing (DimeNet, SphereNet).

For every pair of edges k -> j and j -> i with k != i, one triplet (k, j, i): ``edge_kj`` indexes the first
edge and ``edge_ji`` the second, both in the order of the graph. Built from the destination-sorted CSR with
``repeat_interleave`` only: no Python loop over molecules or nodes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from dig.ops.graph import CSRGraph


@dataclass(frozen=True)
class Triplets:
    edge_kj: Tensor  # [T] index of edge k -> j
    edge_ji: Tensor  # [T] index of edge j -> i (triplets are sorted by it)
    k: Tensor
    j: Tensor
    i: Tensor

    def __len__(self) -> int:
        return self.edge_ji.numel()


def triplets(graph: CSRGraph) -> Triplets:
    """All (k -> j -> i) paths of length two without backtracking (k != i), sorted by the edge j -> i."""
    if graph.num_src_nodes != graph.num_dst_nodes:
        raise ValueError("triplets need a graph whose sources and destinations are the same nodes")
    src, dst = graph.col, graph.row  # edge e: src[e] = j -> dst[e] = i
    incoming = graph.in_degree()[src]  # for edge j -> i: the number of edges k -> j
    edge_ji = torch.repeat_interleave(torch.arange(graph.num_edges, device=graph.device), incoming)
    first = torch.cumsum(incoming, 0) - incoming
    offset = torch.arange(edge_ji.numel(), device=graph.device) - torch.repeat_interleave(first, incoming)
    edge_kj = graph.rowptr[src[edge_ji]] + offset
    keep = src[edge_kj] != dst[edge_ji]
    edge_kj, edge_ji = edge_kj[keep], edge_ji[keep]
    return Triplets(edge_kj=edge_kj, edge_ji=edge_ji, k=src[edge_kj], j=src[edge_ji], i=dst[edge_ji])
