"""EGNN: E(n) Equivariant Graph Neural Networks (Satorras, Hoogeboom & Welling, ICML 2021).

Equivariant graph convolutional layer (EGCL), edges j -> i within the cutoff:

    m_ij  = phi_e(h_i, h_j, |x_i - x_j|^2)
    e_ij  = sigmoid(phi_inf(m_ij))                          (soft edge inference)
    x_i' = x_i + 1/(n_i) * sum_j (x_i - x_j) phi_x(m_ij)   (only with update_coords=True)
    h_i' = h_i + phi_h(h_i, sum_j e_ij m_ij)

For QM9 the paper keeps the coordinates fixed (invariant features only), 7 layers, 128 hidden, SiLU. The first
layer of phi_e is applied to node projections (W_a h_i + W_b h_j + w_d d^2) so no [E, 2H+1] concatenation is
built; sums over neighbours run on ``dig.ops.segment`` over the destination-sorted graph.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dig.ops import CSRGraph, radius_graph, segment
from dig.tracks.threed import MAX_ATOMIC_NUMBER, AtomwiseReadout, MoleculeBatch, TargetStats


class EquivariantLayer(nn.Module):
    def __init__(self, hidden: int, update_coords: bool) -> None:
        super().__init__()
        self.src_proj = nn.Linear(hidden, hidden)
        self.dst_proj = nn.Linear(hidden, hidden, bias=False)
        self.dist_proj = nn.Linear(1, hidden, bias=False)
        self.edge_mlp = nn.Sequential(nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU())
        self.gate = nn.Sequential(nn.Linear(hidden, 1), nn.Sigmoid())
        self.node_mlp = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.coord_mlp = (
            nn.Sequential(nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, 1, bias=False)) if update_coords else None
        )

    def forward(self, h: Tensor, pos: Tensor, graph: CSRGraph) -> tuple[Tensor, Tensor]:
        row, col = graph.row, graph.col
        diff = pos[row] - pos[col]
        dist2 = diff.pow(2).sum(-1, keepdim=True)
        pre = self.dst_proj(h)[row] + self.src_proj(h)[col] + self.dist_proj(dist2)
        message = self.edge_mlp(pre)
        aggregated = segment(message * self.gate(message), graph.rowptr)
        if self.coord_mlp is not None:
            degree = graph.in_degree().clamp(min=1).unsqueeze(-1).to(pos.dtype)
            pos = pos + segment(diff * self.coord_mlp(message), graph.rowptr) / degree
        return h + self.node_mlp(torch.cat([h, aggregated], dim=-1)), pos


class EGNN(nn.Module):
    def __init__(
        self, stats: TargetStats, hidden: int = 128, layers: int = 7, cutoff: float = 5.0, update_coords: bool = False
    ) -> None:
        super().__init__()
        self.cutoff = cutoff
        self.embedding = nn.Embedding(MAX_ATOMIC_NUMBER + 1, hidden)
        self.layers = nn.ModuleList(EquivariantLayer(hidden, update_coords) for _ in range(layers))
        self.head = nn.Sequential(nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, len(stats.targets)))
        self.readout = AtomwiseReadout(stats)

    def forward(self, batch: MoleculeBatch) -> Tensor:
        graph, _ = radius_graph(batch.pos, batch.ptr, self.cutoff)
        h, pos = self.embedding(batch.z), batch.pos
        for layer in self.layers:
            h, pos = layer(h, pos, graph)
        return self.readout(self.head(h), batch)
