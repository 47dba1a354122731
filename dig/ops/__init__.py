"""Message-passing primitives with autograd. One public function per op."""

from dig.ops.graph import CSRGraph
from dig.ops.radius import radius_graph
from dig.ops.segment import gather_mul_scatter, segment_sum

__all__ = ["CSRGraph", "gather_mul_scatter", "radius_graph", "segment_sum"]
