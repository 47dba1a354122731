"""DimeNet++ (Gasteiger, Giri, Margraf & Günnemann, "Fast and Uncertainty-Aware Directional Message Passing
for Non-Equilibrium Molecules", 2020; DimeNet: Gasteiger, Groß & Günnemann, ICLR 2020).

Messages m_ji live on directed edges j -> i. With e_RBF(d_ji) the radial Bessel basis and a_SBF(d_kj, angle_kji)
the spherical basis of every triplet k -> j -> i:

    m_ji^0 = sigma(W [h_j || h_i || W_rbf e_RBF(d_ji)])                                       (embedding)
    t_kj   = sigma(W_down(sigma(W_kj m_kj) * W_rbf2 W_rbf1 e_RBF(d_kj)))                      (int_emb size)
    m_ji  <- m_ji + residuals(sigma(W_up sum_k t_kj * W_sbf2 W_sbf1 a_SBF(d_kj, angle_kji)) + sigma(W_ji m_ji))
    o_i    = sum_blocks MLP(W_up sum_j W_rbf e_RBF(d_ji) * m_ji)                                (output blocks)

The triplet sum, with the basis's second projection W_sbf2, is one fused op, ``dig.ops.triplet_basis_aggregate``,
over the "edge graph" whose nodes are edges and whose edges are triplets (kj -> ji): no [T, int_emb] tensor is
built; triplets come from ``dig.ops.triplets`` (vectorised, no Python loops).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dig.nn.basis import BesselBasis, SphericalBasis
from dig.nn.geometry import angle_between
from dig.nn.init import glorot_linear_init
from dig.nn.linear import Linear
from dig.ops import CSRGraph, Triplets, radius_graph, segment, triplet_basis_aggregate, triplets
from dig.tracks.threed.protocol import MAX_ATOMIC_NUMBER, MoleculeBatch, TargetStats
from dig.tracks.threed.readout import AtomwiseReadout


class Residual(nn.Module):
    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.lin1, self.lin2, self.act = Linear(hidden, hidden), Linear(hidden, hidden), nn.SiLU()

    def forward(self, x: Tensor) -> Tensor:
        return x + self.act(self.lin2(self.act(self.lin1(x))))


class EmbeddingBlock(nn.Module):
    def __init__(self, num_radial: int, hidden: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(MAX_ATOMIC_NUMBER + 1, hidden)
        self.lin_rbf = Linear(num_radial, hidden)
        self.lin = Linear(3 * hidden, hidden)
        self.act = nn.SiLU()

    def forward(self, z: Tensor, rbf: Tensor, src: Tensor, dst: Tensor) -> Tensor:
        h = self.embedding(z)
        return self.act(self.lin(torch.cat([h[src], h[dst], self.act(self.lin_rbf(rbf))], dim=-1)))


class InteractionPPBlock(nn.Module):
    def __init__(self, hidden: int, int_emb: int, basis_emb: int, num_spherical: int, num_radial: int,
                 before_skip: int, after_skip: int) -> None:
        super().__init__()
        self.act = nn.SiLU()
        self.lin_rbf1 = Linear(num_radial, basis_emb, bias=False)
        self.lin_rbf2 = Linear(basis_emb, hidden, bias=False)
        self.lin_sbf1 = Linear(num_spherical * num_radial, basis_emb, bias=False)
        self.lin_sbf2 = Linear(basis_emb, int_emb, bias=False)
        self.lin_kj, self.lin_ji = Linear(hidden, hidden), Linear(hidden, hidden)
        self.lin_down = Linear(hidden, int_emb, bias=False)
        self.lin_up = Linear(int_emb, hidden, bias=False)
        self.before = nn.Sequential(*(Residual(hidden) for _ in range(before_skip)))
        self.lin = Linear(hidden, hidden)
        self.after = nn.Sequential(*(Residual(hidden) for _ in range(after_skip)))

    def forward(self, m: Tensor, rbf: Tensor, sbf: Tensor, triplet_graph: CSRGraph) -> Tensor:
        x_ji = self.act(self.lin_ji(m))
        x_kj = self.act(self.lin_kj(m)) * self.lin_rbf2(self.lin_rbf1(rbf))
        x_kj = self.act(self.lin_down(x_kj))
        x_kj = triplet_basis_aggregate(triplet_graph, x_kj, self.lin_sbf1(sbf), self.lin_sbf2.weight)
        h = self.before(x_ji + self.act(self.lin_up(x_kj)))
        return self.after(self.act(self.lin(h)) + m)


class OutputPPBlock(nn.Module):
    def __init__(self, num_radial: int, hidden: int, out_emb: int, num_targets: int, layers: int) -> None:
        super().__init__()
        self.lin_rbf = Linear(num_radial, hidden, bias=False)
        self.lin_up = Linear(hidden, out_emb, bias=False)
        self.layers = nn.Sequential(*(nn.Sequential(Linear(out_emb, out_emb), nn.SiLU()) for _ in range(layers)))
        self.out = Linear(out_emb, num_targets, bias=False)

    def forward(self, m: Tensor, rbf: Tensor, graph: CSRGraph) -> Tensor:
        per_atom = segment(self.lin_rbf(rbf) * m, graph.rowptr)
        return self.out(self.layers(self.lin_up(per_atom)))


def triplet_geometry(pos: Tensor, graph: CSRGraph) -> tuple[CSRGraph, Tensor, Triplets]:
    """The edge graph (edges as nodes, triplets kj -> ji as edges), the angle at j of every triplet, and
    the triplets themselves (their edge_kj gathers per-edge bases)."""
    found = triplets(graph)
    vec_ji = pos[found.i] - pos[found.j]
    vec_jk = pos[found.k] - pos[found.j]
    angle = angle_between(vec_ji, vec_jk)
    edge_graph = CSRGraph.from_sorted(found.edge_ji, found.edge_kj, graph.num_edges)
    return edge_graph, angle, found


class DimeNetPlusPlus(nn.Module):
    def __init__(
        self, stats: TargetStats, hidden: int = 128, out_emb: int = 256, int_emb: int = 64, basis_emb: int = 8,
        blocks: int = 4, num_spherical: int = 7, num_radial: int = 6, cutoff: float = 5.0, envelope_exponent: int = 5,
        before_skip: int = 1, after_skip: int = 2, output_layers: int = 3,
    ) -> None:
        super().__init__()
        targets = len(stats.targets)
        self.cutoff = cutoff
        self.rbf = BesselBasis(num_radial, cutoff, envelope_exponent)
        self.sbf = SphericalBasis(num_spherical, num_radial, cutoff, envelope_exponent)
        self.embedding = EmbeddingBlock(num_radial, hidden)
        self.interactions = nn.ModuleList(
            InteractionPPBlock(hidden, int_emb, basis_emb, num_spherical, num_radial, before_skip, after_skip)
            for _ in range(blocks)
        )
        self.outputs = nn.ModuleList(
            OutputPPBlock(num_radial, hidden, out_emb, targets, output_layers) for _ in range(blocks + 1)
        )
        self.readout = AtomwiseReadout(stats)
        glorot_linear_init(self)

    def forward(self, batch: MoleculeBatch) -> Tensor:
        graph, distance = radius_graph(batch.pos, batch.ptr, self.cutoff)
        edge_graph, angle, found = triplet_geometry(batch.pos, graph)
        rbf = self.rbf(distance)
        sbf = self.sbf(distance, angle, found.edge_kj)
        m = self.embedding(batch.z, rbf, graph.col, graph.row)
        atom_out = self.outputs[0](m, rbf, graph)
        for interaction, output in zip(self.interactions, self.outputs[1:], strict=True):
            m = interaction(m, rbf, sbf, edge_graph)
            atom_out = atom_out + output(m, rbf, graph)
        return self.readout(atom_out, batch)


def build_dimenet_pp(stats: TargetStats, **hparams) -> DimeNetPlusPlus:
    return DimeNetPlusPlus(stats, **hparams)
