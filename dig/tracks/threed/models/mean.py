"""The floor every model must beat: predict the training-set mean of each target, whatever the molecule."""

from __future__ import annotations

from torch import Tensor, nn

from dig.tracks.threed.protocol import MoleculeBatch, TargetStats


class MeanBaseline(nn.Module):
    def __init__(self, stats: TargetStats) -> None:
        super().__init__()
        self.register_buffer("y_mean", stats.y_mean.clone())

    def forward(self, batch: MoleculeBatch) -> Tensor:
        return self.y_mean.to(batch.pos.dtype).expand(batch.num_graphs, -1)


def build_mean(stats: TargetStats) -> MeanBaseline:
    return MeanBaseline(stats)
