"""Per-target output scaling shared by the 3D models (and offered to plugins)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dig.ops import segment
from dig.tracks.threed.protocol import MoleculeBatch, TargetStats


class AtomwiseReadout(nn.Module):
    """Turn per-atom outputs o [A, T] into molecule predictions [B, T] in the targets' units.

    y_t = sum_atoms atomref[z, t] + R_t(mean_t + std_t * o_t), with R_t the sum over atoms for extensive
    targets and the mean for intensive ones (output scaling as in SchNet / DimeNet).
    """

    def __init__(self, stats: TargetStats) -> None:
        super().__init__()
        self.register_buffer("mean", stats.mean.float())
        self.register_buffer("std", stats.std.float())
        self.register_buffer("atomref", stats.atomref.float())
        self.register_buffer("extensive", stats.extensive)

    @property
    def num_targets(self) -> int:
        return self.mean.numel()

    def forward(self, atom_out: Tensor, batch: MoleculeBatch) -> Tensor:
        scaled = atom_out * self.std + self.mean + self.atomref[batch.z]
        summed = segment(scaled, batch.ptr)
        counts = batch.ptr.diff().clamp(min=1).unsqueeze(-1).to(summed.dtype)
        return torch.where(self.extensive, summed, summed / counts)  # atomref is zero for intensive targets
