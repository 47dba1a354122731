"""Shared neural-network layers built on dig.ops."""

from dig.nn.conv import GATConv, GCNConv, GINConv, SAGEConv, SGConv, gcn_norm, with_self_loops
from dig.nn.radial import CosineCutoff, GaussianSmearing, ShiftedSoftplus
from dig.nn.sampling import Block, LadiesSampler, NeighborSampler

__all__ = [
    "Block", "CosineCutoff", "GATConv", "GCNConv", "GINConv", "GaussianSmearing", "LadiesSampler",
    "NeighborSampler", "SAGEConv", "SGConv", "ShiftedSoftplus", "gcn_norm", "with_self_loops",
]
