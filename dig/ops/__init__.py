"""Message-passing primitives with autograd, one public function per op.

Each dispatches to a Triton kernel when its tensors are on CUDA and Triton imports, and to the fastest torch
path on CPU (a sparse CSR product where one applies). Triton is optional.
"""

from dig.ops.functional import edge_softmax, gather_mul_scatter, scatter, segment, spmm
from dig.ops.graph import CSRGraph
from dig.ops.radius import radius_graph
from dig.ops.triplet_basis import triplet_basis_aggregate
from dig.ops.triplets import Triplets, triplets

__all__ = [
    "CSRGraph", "Triplets", "edge_softmax", "gather_mul_scatter", "radius_graph", "scatter", "segment", "spmm",
    "triplet_basis_aggregate", "triplets",
]
