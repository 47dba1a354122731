"""ComENet (Wang, Liu, Lin, Lin, Yu, Ji, "ComENet: Towards Complete and Efficient Message Passing for 3D
Molecular Graphs", NeurIPS 2022): complete local frames from 1-hop neighbours only, O(E) geometry.

For an edge j -> i, with n0(a), n1(a) the nearest and second-nearest neighbours of atom a:

    theta = angle between x_i - x_j (from j to i) and x_n0(i) - x_i      (polar angle in i's local frame)
    phi   = dihedral about x_i - x_j between x_n0(i) - x_i and x_n1(i) - x_i   (azimuth in that frame)
    (the vectors DIG's reference code uses: -pos_ji with pos_ji = x_j - x_i)
    tau   = rotation about j-i between the planes through j's reference (n0(j), or n1(j) when n0(j) = i)
            and i's reference (n0(i), or n1(i) when n0(i) = j)
    f1 = t(d, theta, phi) (spherical Bessel x real spherical harmonics), f2 = a(d, tau)
    h_i <- residual MLP([W1 GraphConv(h, f1) || W2 GraphConv(h, f2)] + h),
    GraphConv(h, f)_i = W_rel sum_j h_j * f_ji + W_root h_i

phi and tau take the paper's range [0, 2 pi). DIG's reference code folds negative values by + pi instead, which
makes the features jump between 0 and pi for (near-)planar atoms, so a rotation can change the energy of a
planar molecule and forces see a discontinuity; the paper's range has none (the bases are 2 pi-periodic). Where
an angle is undefined (j is the very neighbour that defines i's frame) it is 0 with zero gradient. The
convolutions are ``dig.ops.gather_mul_scatter``; the neighbour ranks come from one sort of the edges.

Smooth frame switching (``frame_switch_width`` w > 0; not in the paper, used by the smoke and default budgets).
The frames are picked by distance rank, so the energy jumps wherever two neighbours of an atom swap rank: in a
relaxed molecule that only makes near-ties (methyl hydrogens) depend on atom order, but along molecular dynamics
it happens all the time (500 K xTB aspirin: every straight path between two consecutive frames has a jump,
the largest step ~1,000x the median one), and forces, being derivatives, cannot see the jumps, so the energy
is left to the weak L(E) term. With w > 0 the angular (l > 0) components of f1 and f2 are multiplied by gates
that fall to 0, flat to second order, as the distance gap deciding their reference closes (see
``local_frame_geometry``); the distance-only l = 0 components stay. The energy is then twice differentiable,
and the frames are those of the paper wherever no two neighbour distances are within w of a tie.
Published QM9 defaults: cutoff 8, 4 layers, hidden 256, middle 64, 3 radial, 2 spherical, 3 output layers.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from dig.nn.basis import SphericalBasis, TorsionBasis
from dig.nn.geometry import angle_between, safe_atan2
from dig.nn.init import glorot_linear_init
from dig.nn.linear import Linear
from dig.ops import CSRGraph, gather_mul_scatter, radius_graph
from dig.tracks.threed.protocol import MAX_ATOMIC_NUMBER, MoleculeBatch, TargetStats
from dig.tracks.threed.readout import AtomwiseReadout


def nearest_neighbours(graph: CSRGraph, distance: Tensor, count: int = 2) -> tuple[Tensor, Tensor]:
    """The ``count`` nearest neighbours of every atom, [A, count] each: their atom indices (the last one found
    repeats where an atom has fewer; an atom without neighbours gets itself) and their distances (+inf where
    missing; differentiable, so the frame gates of ``local_frame_geometry`` carry forces)."""
    num_atoms = graph.num_dst_nodes
    atoms = torch.arange(num_atoms, device=distance.device)
    if graph.num_edges == 0:
        return atoms.unsqueeze(1).repeat(1, count), distance.new_full((num_atoms, count), math.inf)
    with torch.no_grad():
        order = torch.sort(distance, stable=True).indices
        order = order[torch.sort(graph.row[order], stable=True).indices]  # by destination, then distance
        degree, start, last = graph.in_degree(), graph.rowptr[:-1], graph.num_edges - 1
        rank = torch.arange(count, device=distance.device)
        present = rank < degree.unsqueeze(1)  # [A, count]
        edge = order[(start.unsqueeze(1) + torch.minimum(rank, (degree - 1).clamp(min=0).unsqueeze(1))).clamp(max=last)]
        index = torch.where(degree.unsqueeze(1) >= 1, graph.col[edge], atoms.unsqueeze(1))
    ranked = distance[edge]
    return index, torch.where(present, ranked, torch.full_like(ranked, math.inf))


def smootherstep(x: Tensor) -> Tensor:
    """0 for x <= 0, 1 for x >= 1, 6x^5 - 15x^4 + 10x^3 between (flat to second order at both ends)."""
    x = x.clamp(0.0, 1.0)
    return x * x * x * (x * (6 * x - 15) + 10)


def _dihedral(axis: Tensor, u: Tensor, v: Tensor, undefined: Tensor) -> Tensor:
    """Signed rotation about ``axis`` from the plane (axis, u) to the plane (axis, v), in [0, 2 pi); 0 where
    ``undefined`` (u or v along the axis, whose cross product is rounding noise, not 0)."""
    plane1, plane2 = torch.linalg.cross(axis, u), torch.linalg.cross(axis, v)
    a = (plane1 * plane2).sum(-1)
    b = (torch.linalg.cross(plane1, plane2) * axis).sum(-1) / axis.norm(dim=-1)
    angle = safe_atan2(b, a, undefined)
    return torch.where(angle < 0, angle + 2 * math.pi, angle)


def local_frame_geometry(
    pos: Tensor, graph: CSRGraph, distance: Tensor, cutoff: float, switch_width: float = 0.0
) -> tuple[Tensor, Tensor, Tensor, tuple[Tensor, Tensor, Tensor] | None]:
    """(theta, phi, tau) of every edge j -> i, theta in [0, pi], phi and tau in [0, 2 pi) as in the paper, and
    their gates (g_theta, g_phi, g_tau) in [0, 1] (see ``ComENet``), None for hard frames.

    With gap_r(a) = d_{r+1}(a) - d_r(a) between atom a's r-th and (r+1)-th nearest neighbour distances (a
    missing neighbour counts as sitting at the cutoff) and s(x) = smootherstep(x / switch_width):
    g_theta = s(gap_1(i)), g_phi = s(gap_1(i)) s(gap_2(i)), g_tau = g_ref(i) g_ref(j), with g_ref = s(gap_1)
    for a frame whose reference is its nearest neighbour and s(gap_1) s(gap_2) for one that falls back to the
    second. Each gate is 0, flat to second order, wherever its angle's reference atom can change.
    ``switch_width`` = 0: the paper's hard frames."""
    j, i = graph.col, graph.row
    ranked, ranked_distance = nearest_neighbours(graph, distance, count=3)
    n0, n1 = ranked[:, 0], ranked[:, 1]
    vec_ji = pos[j] - pos[i]
    vec_in0 = pos[n0[i]] - pos[i]
    vec_in1 = pos[n1[i]] - pos[i]
    j_is_n0 = n0[i] == j
    theta = angle_between(-vec_ji, vec_in0, j_is_n0)
    phi = _dihedral(-vec_ji, vec_in0, vec_in1, j_is_n0 | (n1[i] == j))
    iref = torch.where(j_is_n0, n1[i], n0[i])
    i_is_n0_of_j = n0[j] == i
    jref = torch.where(i_is_n0_of_j, n1[j], n0[j])
    tau = _dihedral(vec_ji, pos[j] - pos[jref], pos[iref] - pos[i], (iref == j) | (jref == i))
    if switch_width <= 0:
        return theta, phi, tau, None
    gaps = torch.diff(ranked_distance.clamp(max=cutoff), dim=1)
    first, second = (smootherstep(gap / switch_width) for gap in gaps.unbind(1))
    both = first * second
    gate_tau = torch.where(j_is_n0, both[i], first[i]) * torch.where(i_is_n0_of_j, both[j], first[j])
    return theta, phi, tau, (first[i], both[i], gate_tau)


class TwoLayerLinear(nn.Module):
    def __init__(self, inputs: int, middle: int, outputs: int) -> None:
        super().__init__()
        self.lin1, self.lin2 = Linear(inputs, middle, bias=False), Linear(middle, outputs, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.lin2(self.lin1(x))


class EdgeGraphConv(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.lin_rel, self.lin_root = Linear(channels, channels), Linear(channels, channels, bias=False)

    def forward(self, x: Tensor, graph: CSRGraph, edge_weight: Tensor) -> Tensor:
        return self.lin_rel(gather_mul_scatter(graph, x, edge_weight)) + self.lin_root(x)


class InteractionBlock(nn.Module):
    def __init__(self, hidden: int, middle: int, num_radial: int, num_spherical: int, layers: int) -> None:
        super().__init__()
        self.act = nn.SiLU()
        self.lin = Linear(hidden, hidden)
        self.feature1 = TwoLayerLinear(num_radial * num_spherical**2, middle, hidden)
        self.feature2 = TwoLayerLinear(num_radial * num_spherical, middle, hidden)
        self.conv1, self.conv2 = EdgeGraphConv(hidden), EdgeGraphConv(hidden)
        self.lin1, self.lin2 = Linear(hidden, hidden), Linear(hidden, hidden)
        self.lin_cat = Linear(2 * hidden, hidden)
        self.lins = nn.ModuleList(Linear(hidden, hidden) for _ in range(layers))
        self.final = Linear(hidden, hidden)

    def forward(self, x: Tensor, f1: Tensor, f2: Tensor, graph: CSRGraph) -> Tensor:
        x = self.act(self.lin(x))
        h1 = self.act(self.lin1(self.conv1(x, graph, self.feature1(f1))))
        h2 = self.act(self.lin2(self.conv2(x, graph, self.feature2(f2))))
        h = self.lin_cat(torch.cat([h1, h2], dim=-1)) + x
        for lin in self.lins:
            h = self.act(lin(h)) + h
        return self.final(h)


class ComENet(nn.Module):
    def __init__(
        self, stats: TargetStats, hidden: int = 256, middle: int = 64, layers: int = 4, num_radial: int = 3,
        num_spherical: int = 2, cutoff: float = 8.0, output_layers: int = 3, frame_switch_width: float = 0.0,
    ) -> None:
        super().__init__()
        self.cutoff, self.frame_switch_width = cutoff, frame_switch_width
        self.embedding = nn.Embedding(MAX_ATOMIC_NUMBER + 1, hidden)
        self.torsion_basis = TorsionBasis(num_spherical, num_radial, cutoff)
        self.angle_basis = SphericalBasis(num_spherical, num_radial, cutoff)
        self.interactions = nn.ModuleList(
            InteractionBlock(hidden, middle, num_radial, num_spherical, output_layers) for _ in range(layers)
        )
        self.head = nn.Sequential(*(m for _ in range(output_layers) for m in (Linear(hidden, hidden), nn.SiLU())),
                                  Linear(hidden, len(stats.targets)))
        self.readout = AtomwiseReadout(stats)
        glorot_linear_init(self)

    def forward(self, batch: MoleculeBatch) -> Tensor:
        graph, distance = radius_graph(batch.pos, batch.ptr, self.cutoff)
        theta, phi, tau, gates = local_frame_geometry(batch.pos, graph, distance, self.cutoff, self.frame_switch_width)
        every_edge = torch.arange(graph.num_edges, device=distance.device)
        f1 = self.torsion_basis(distance, theta, phi, every_edge)
        f2 = self.angle_basis(distance, tau, every_edge)
        if gates is not None:
            f1, f2 = self._gate(f1, f2, *gates)
        x = self.embedding(batch.z)
        for block in self.interactions:
            x = block(x, f1, f2, graph)
        return self.readout(self.head(x), batch)

    def _gate(self, f1: Tensor, f2: Tensor, gate_theta: Tensor, gate_phi: Tensor, gate_tau: Tensor) -> tuple[Tensor, Tensor]:
        """Scales the angular (l > 0) components of the bases by their gates; l = 0 (distance only) is kept.
        In f1 = j_l(d) Y_lm(theta, phi), m = 0 depends on theta alone and m != 0 on theta and phi."""
        num_spherical, num_radial, edges = self.torsion_basis.num_spherical, self.torsion_basis.num_radial, f1.size(0)
        ones = torch.ones_like(gate_theta)
        gates1 = [ones] + [gate_theta if order == 0 else gate_phi
                           for degree in range(1, num_spherical) for order in range(-degree, degree + 1)]
        f1 = (f1.view(edges, num_spherical**2, num_radial) * torch.stack(gates1, 1).unsqueeze(-1)).reshape(edges, -1)
        gates2 = torch.stack([ones] + [gate_tau] * (num_spherical - 1), 1)
        f2 = (f2.view(edges, num_spherical, num_radial) * gates2.unsqueeze(-1)).reshape(edges, -1)
        return f1, f2


def build_comenet(stats: TargetStats, **hparams) -> ComENet:
    return ComENet(stats, **hparams)
