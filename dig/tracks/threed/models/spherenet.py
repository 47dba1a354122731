"""SphereNet (Liu, Wang, Liu, Lei, Liu, Yu, Ji, "Spherical Message Passing for 3D Molecular Graphs",
ICLR 2022): spherical message passing (SMP) over distance d, angle theta and torsion phi.

For each triplet k -> j -> i (angle theta at j between j->i and j->k), the torsion phi is the smallest
dihedral angle in (0, 2 pi] between the plane (j->i, j->k) and the planes (j->i, j->k') of the other
neighbours k' of j (k' != i, k; 2 pi when there is none). DIG's code also lets k' = k into the minimum, where
the dihedral is 0 up to rounding, so its torsion flips between ~0 and the real gap on rounding noise; we
leave k out. With e(d) a radial Bessel basis and
a(d, theta), t(d, theta, phi) the spherical and torsion bases (j_l(z_ln d / c) Y_l^0 and j_l Y_l^m):

    e_ji^0 = sigma(W [h_i || h_j || sigma(W_rbf0 e(d_ji))])                                     (init)
    x_kj   = sigma(W_down(sigma(W_kj e_kj) * W_rbf e(d_kj)))
    e_ji  <- e_ji + residuals(sigma(W_up sum_k x_kj * W_sbf a * W_t t) + sigma(W_ji e_ji))      (update_e)
    v_i    = MLP(W_up sum_j W_rbf' e(d_ji) * e_ji),    u = sum over blocks of v                 (update_v, u)

Published defaults: cutoff 5, 4 layers, hidden 128, int_emb 64, basis_emb 8, out_emb 256, 3 spherical,
6 radial, envelope exponent 5, 1 residual before and 2 after the skip, 3 output layers.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from dig.nn.basis import BesselBasis, SphericalBasis, TorsionBasis
from dig.nn.geometry import safe_atan2
from dig.nn.init import glorot_linear_init
from dig.nn.linear import Linear
from dig.ops import CSRGraph, gather_mul_scatter, radius_graph
from dig.tracks.threed.models.dimenet import EmbeddingBlock, OutputPPBlock, Residual, triplet_geometry
from dig.tracks.threed.protocol import MoleculeBatch, TargetStats
from dig.tracks.threed.readout import AtomwiseReadout


def angles_and_torsions(pos: Tensor, graph: CSRGraph):
    """Triplets of ``graph`` with their angle theta_kji in [0, pi] and torsion phi in (0, 2 pi], the edge graph
    over them, and the triplets' edge_kj.

    The torsion of triplet (k, j, i) is min over the other neighbours k' of the dihedral rotating the plane
    (j->i, j->k) onto (j->i, j->k') about j->i, i.e. the gap from k's azimuth about the axis j->i to the next
    azimuth in increasing order. Sorting the azimuths of each edge's triplets gives it in O(T log T) instead
    of enumerating every (k, k') pair (O(T d)); tested against the pairwise definition.
    """
    edge_graph, angle, found = triplet_geometry(pos, graph)
    vec_ji = pos[found.i] - pos[found.j]
    vec_jk = pos[found.k] - pos[found.j]
    axis = vec_ji / vec_ji.norm(dim=-1, keepdim=True)
    reference = torch.zeros_like(axis)
    use_y = axis[:, 0].abs() > 0.9
    reference[:, 0], reference[:, 1] = (~use_y).to(pos.dtype), use_y.to(pos.dtype)
    x_axis = reference - (reference * axis).sum(-1, keepdim=True) * axis
    x_axis = x_axis / x_axis.norm(dim=-1, keepdim=True)
    y_axis = torch.linalg.cross(axis, x_axis)
    azimuth = safe_atan2((vec_jk * y_axis).sum(-1), (vec_jk * x_axis).sum(-1))
    with torch.no_grad():  # cyclic order of the azimuths within each edge j -> i (triplets are grouped by it)
        by_azimuth = torch.sort(azimuth, stable=True).indices
        order = by_azimuth[torch.sort(found.edge_ji[by_azimuth], stable=True).indices]
        sorted_edge = found.edge_ji[order]
        counts = torch.bincount(sorted_edge, minlength=graph.num_edges)
        start = (torch.cumsum(counts, 0) - counts)[sorted_edge]
        position = torch.arange(order.numel(), device=pos.device)
        successor = torch.where(position + 1 < start + counts[sorted_edge], position + 1, start)
        following = torch.empty_like(order)
        following[order] = order[successor]
    gap = torch.remainder(azimuth[following] - azimuth, 2 * math.pi)
    torsion = torch.where(gap <= 0, gap + 2 * math.pi, gap)
    return edge_graph, angle, torsion, found.edge_kj


class UpdateE(nn.Module):
    def __init__(self, hidden: int, int_emb: int, basis_emb: int, num_spherical: int, num_radial: int,
                 before_skip: int, after_skip: int) -> None:
        super().__init__()
        self.act = nn.SiLU()
        self.lin_rbf1 = Linear(num_radial, basis_emb, bias=False)
        self.lin_rbf2 = Linear(basis_emb, hidden, bias=False)
        self.lin_sbf1 = Linear(num_spherical * num_radial, basis_emb, bias=False)
        self.lin_sbf2 = Linear(basis_emb, int_emb, bias=False)
        self.lin_t1 = Linear(num_spherical**2 * num_radial, basis_emb, bias=False)
        self.lin_t2 = Linear(basis_emb, int_emb, bias=False)
        self.lin_kj, self.lin_ji = Linear(hidden, hidden), Linear(hidden, hidden)
        self.lin_down = Linear(hidden, int_emb, bias=False)
        self.lin_up = Linear(int_emb, hidden, bias=False)
        self.before = nn.Sequential(*(Residual(hidden) for _ in range(before_skip)))
        self.lin = Linear(hidden, hidden)
        self.after = nn.Sequential(*(Residual(hidden) for _ in range(after_skip)))

    def forward(self, e: Tensor, rbf: Tensor, sbf: Tensor, tbf: Tensor, edge_graph: CSRGraph) -> Tensor:
        x_ji = self.act(self.lin_ji(e))
        x_kj = self.act(self.lin_down(self.act(self.lin_kj(e)) * self.lin_rbf2(self.lin_rbf1(rbf))))
        filters = self.lin_sbf2(self.lin_sbf1(sbf)) * self.lin_t2(self.lin_t1(tbf))
        x_kj = self.act(self.lin_up(gather_mul_scatter(edge_graph, x_kj, filters)))
        h = self.before(x_ji + x_kj)
        return self.after(self.act(self.lin(h)) + e)


class SphereNet(nn.Module):
    def __init__(
        self, stats: TargetStats, hidden: int = 128, out_emb: int = 256, int_emb: int = 64, basis_emb: int = 8,
        layers: int = 4, num_spherical: int = 3, num_radial: int = 6, cutoff: float = 5.0, envelope_exponent: int = 5,
        before_skip: int = 1, after_skip: int = 2, output_layers: int = 3,
    ) -> None:
        super().__init__()
        targets = len(stats.targets)
        self.cutoff = cutoff
        self.rbf = BesselBasis(num_radial, cutoff, envelope_exponent)
        self.sbf = SphericalBasis(num_spherical, num_radial, cutoff, envelope_exponent)
        self.tbf = TorsionBasis(num_spherical, num_radial, cutoff, envelope_exponent)
        self.init = EmbeddingBlock(num_radial, hidden)
        self.updates = nn.ModuleList(
            UpdateE(hidden, int_emb, basis_emb, num_spherical, num_radial, before_skip, after_skip) for _ in range(layers)
        )
        self.outputs = nn.ModuleList(OutputPPBlock(num_radial, hidden, out_emb, targets, output_layers)
                                     for _ in range(layers + 1))
        self.readout = AtomwiseReadout(stats)
        glorot_linear_init(self)

    def forward(self, batch: MoleculeBatch) -> Tensor:
        graph, distance = radius_graph(batch.pos, batch.ptr, self.cutoff)
        edge_graph, angle, torsion, edge_kj = angles_and_torsions(batch.pos, graph)
        rbf = self.rbf(distance)
        sbf = self.sbf(distance, angle, edge_kj)
        tbf = self.tbf(distance, angle, torsion, edge_kj)
        e = self.init(batch.z, rbf, graph.row, graph.col)  # [h_i || h_j || rbf] as in DIG's init block
        atom_out = self.outputs[0](e, rbf, graph)
        for update, output in zip(self.updates, self.outputs[1:], strict=True):
            e = update(e, rbf, sbf, tbf, edge_graph)
            atom_out = atom_out + output(e, rbf, graph)
        return self.readout(atom_out, batch)


def build_spherenet(stats: TargetStats, **hparams) -> SphereNet:
    return SphereNet(stats, **hparams)


