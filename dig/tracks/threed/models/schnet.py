"""SchNet (Schütt et al., "SchNet: A continuous-filter convolutional neural network for modeling quantum
interactions", NeurIPS 2017).

    h_i^0 = Embedding(z_i)
    W_ij  = Dense(ssp(Dense(e(d_ij)))) * C(d_ij),      e: Gaussian RBF, C: cosine cutoff
    m_i   = sum_{j in N(i)} (Lin_1 h_j) * W_ij           (continuous-filter convolution, cfconv)
    h_i  <- h_i + Lin_3(ssp(Lin_2 m_i))                  (interaction block, repeated T times)
    o_i   = Lin(ssp(Lin(h_i)))  -> per-target readout (sum for extensive targets)

The cfconv runs on ``dig.ops.gather_mul_scatter`` over a radius graph built inside the model.
"""

from __future__ import annotations

from torch import Tensor, nn

from dig.nn import CosineCutoff, GaussianSmearing, ShiftedSoftplus
from dig.nn.linear import Linear
from dig.ops import CSRGraph, gather_mul_scatter, radius_graph
from dig.tracks.threed.protocol import MAX_ATOMIC_NUMBER, MoleculeBatch, TargetStats
from dig.tracks.threed.readout import AtomwiseReadout


class InteractionBlock(nn.Module):
    def __init__(self, hidden: int, filters: int, num_gaussians: int, cutoff: float) -> None:
        super().__init__()
        self.filter_net = nn.Sequential(
            Linear(num_gaussians, filters), ShiftedSoftplus(), Linear(filters, filters)
        )
        self.cutoff = CosineCutoff(cutoff)
        self.lin_in = Linear(hidden, filters, bias=False)
        self.lin_mid = Linear(filters, hidden)
        self.act = ShiftedSoftplus()
        self.lin_out = Linear(hidden, hidden)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for layer in (self.filter_net[0], self.filter_net[2], self.lin_mid, self.lin_out):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
        nn.init.xavier_uniform_(self.lin_in.weight)

    def forward(self, h: Tensor, graph: CSRGraph, rbf: Tensor, distance: Tensor) -> Tensor:
        filters = self.filter_net(rbf) * self.cutoff(distance).unsqueeze(-1)
        message = gather_mul_scatter(graph, self.lin_in(h), filters)
        return self.lin_out(self.act(self.lin_mid(message)))


class SchNet(nn.Module):
    def __init__(
        self,
        stats: TargetStats,
        hidden: int = 128,
        filters: int = 128,
        interactions: int = 6,
        num_gaussians: int = 50,
        cutoff: float = 10.0,
    ) -> None:
        super().__init__()
        self.cutoff = cutoff
        self.embedding = nn.Embedding(MAX_ATOMIC_NUMBER + 1, hidden)
        self.rbf = GaussianSmearing(0.0, cutoff, num_gaussians)
        self.interactions = nn.ModuleList(
            InteractionBlock(hidden, filters, num_gaussians, cutoff) for _ in range(interactions)
        )
        self.head = nn.Sequential(Linear(hidden, hidden // 2), ShiftedSoftplus(), Linear(hidden // 2, len(stats.targets)))
        self.readout = AtomwiseReadout(stats)

    def forward(self, batch: MoleculeBatch) -> Tensor:
        graph, distance = radius_graph(batch.pos, batch.ptr, self.cutoff)
        rbf = self.rbf(distance)
        h = self.embedding(batch.z)
        for block in self.interactions:
            h = h + block(h, graph, rbf, distance)
        return self.readout(self.head(h), batch)


def build_schnet(stats: TargetStats, **hparams) -> SchNet:
    return SchNet(stats, **hparams)
