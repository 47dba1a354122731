"""The composition baseline: what every model gets for free, and nothing more.

    y_t = sum_atoms atomref[z, t] + n_atoms * mean_t   (extensive targets: the training-set linear fit of
                                                        y on element counts, ``TargetStats``)
    y_t = mean_t                                        (intensive targets: the training mean)

Every 3D model predicts through ``AtomwiseReadout``, which adds exactly these terms to its learned per-atom
outputs; this baseline is that readout with zero outputs. It is the floor for extensive targets such as U0,
where the plain mean of total energies (hundreds of eV apart between molecules) is no floor at all.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dig.tracks.threed.protocol import MoleculeBatch, TargetStats
from dig.tracks.threed.readout import AtomwiseReadout


class CompositionBaseline(nn.Module):
    def __init__(self, stats: TargetStats) -> None:
        super().__init__()
        self.readout = AtomwiseReadout(stats)

    def forward(self, batch: MoleculeBatch) -> Tensor:
        zeros = torch.zeros(batch.z.numel(), self.readout.num_targets, dtype=batch.pos.dtype, device=batch.pos.device)
        return self.readout(zeros, batch)


def build_composition(stats: TargetStats) -> CompositionBaseline:
    return CompositionBaseline(stats)
