"""The nearest-training-frame baseline for trajectory datasets: what memorising the training frames gives.

For a frame x with atoms in the dataset's fixed order, find the training frame x' minimising
||d(x) - d(x')||_2, with d the vector of all interatomic distances (invariant to rotation and translation),
and predict its energy E(x') and its forces rotated onto x: F = F(x') R^T, with R the Kabsch rotation that
best superimposes x' on x. A model that beats it has learned more than "this geometry looks like that one";
on a split whose test frames sit a few femtoseconds from training frames it is nearly exact, which is how it
exposes leaking splits.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from dig.errors import DataError
from dig.tracks.threed.protocol import MoleculeBatch, TargetStats


def _frames(batch: MoleculeBatch) -> tuple[Tensor, Tensor]:
    """Positions [B, n, 3] and atomic numbers [n] of a batch whose molecules all have the same atoms."""
    sizes = batch.ptr[1:] - batch.ptr[:-1]
    atoms = int(sizes[0])
    if not bool((sizes == atoms).all()) or not bool((batch.z.view(-1, atoms) == batch.z[:atoms]).all()):
        raise DataError("nearest-frame needs a trajectory dataset (every frame the same atoms in the same order)")
    return batch.pos.view(-1, atoms, 3), batch.z[:atoms]


def _distances(pos: Tensor) -> Tensor:
    """[B, n(n-1)/2] interatomic distances of each frame."""
    rows, cols = torch.triu_indices(pos.shape[1], pos.shape[1], offset=1, device=pos.device)
    return (pos[:, rows] - pos[:, cols]).norm(dim=-1)


def kabsch_rotation(source: Tensor, target: Tensor) -> Tensor:
    """[B, 3, 3] proper rotations R minimising sum_a ||R (s_a - s_mean) - (t_a - t_mean)||^2 (Kabsch 1976)."""
    source = source - source.mean(1, keepdim=True)
    target = target - target.mean(1, keepdim=True)
    u, _, vh = torch.linalg.svd(source.transpose(1, 2) @ target)
    sign = torch.sign(torch.linalg.det(u @ vh))
    correction = torch.diag_embed(torch.stack([torch.ones_like(sign), torch.ones_like(sign), sign], dim=-1))
    return (u @ correction @ vh).transpose(1, 2)


class NearestFrame(nn.Module):
    def __init__(self, stats: TargetStats) -> None:
        super().__init__()
        self.num_targets = len(stats.targets)
        self.train_pos: Tensor | None = None

    def fit_training_set(self, batches: Iterable[MoleculeBatch]) -> None:
        """Keep every training frame (positions, targets, forces)."""
        pos, y, forces = [], [], []
        for batch in batches:
            frames, self.z = _frames(batch)
            pos.append(frames.detach().double())
            y.append(batch.y.double())
            forces.append(torch.zeros_like(frames, dtype=torch.float64) if batch.forces is None
                          else batch.forces.view(frames.shape).double())
        self.train_pos, self.train_y, self.train_forces = torch.cat(pos), torch.cat(y), torch.cat(forces)
        self.train_d = _distances(self.train_pos)

    def forward(self, batch: MoleculeBatch) -> Tensor:
        if self.train_pos is None:
            raise RuntimeError("nearest-frame predicts only after fit_training_set")
        frames, z = _frames(batch)
        if z.shape != self.z.shape or not bool((z == self.z).all()):
            raise DataError("nearest-frame: these frames have other atoms than the training frames")
        nearest = torch.cdist(_distances(frames.detach().double()), self.train_d).argmin(dim=1)
        rotation = kabsch_rotation(self.train_pos[nearest], frames.detach().double())
        forces = self.train_forces[nearest] @ rotation.transpose(1, 2)
        out = self.train_y[nearest].to(batch.pos.dtype).clone()
        # value E(x'); gradient -F with respect to the positions, so that forces = -dE/dpos = F
        shift = (forces.to(batch.pos.dtype) * (frames - frames.detach())).sum(dim=(1, 2))
        out[:, 0] = out[:, 0] - shift
        return out


def build_nearest_frame(stats: TargetStats) -> NearestFrame:
    return NearestFrame(stats)
