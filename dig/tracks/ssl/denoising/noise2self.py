"""Noise2Self (Batson & Royer, ICML 2019): J-invariant training.

The pixels are partitioned into ``spacing^dim`` grids J (every coordinate congruent to a phase modulo 4);
each step picks one J at random, replaces its pixels by the mean of their neighbours without the centre (the
"donut" interpolation) and takes the squared error on J only: ``L = mean_{i in J} (f(x_{J^c})_i - x_i)^2``.
This is the Noise2Self-Donut row of the Noise2Same table. Prediction is f(x) on the unmasked image.
"""

from __future__ import annotations

import torch
from torch import Tensor

from dig.tracks.ssl.denoising.learned import LearnedDenoiser
from dig.tracks.ssl.denoising.masking import donut_fill, grid_mask


class Noise2Self(LearnedDenoiser):
    def __init__(self, dim: int = 2, spacing: int = 4, **hparams) -> None:
        super().__init__(dim=dim, **hparams)
        self.spacing = spacing

    def loss(self, noisy: Tensor, clean: Tensor | None, generator: torch.Generator) -> Tensor:
        phase = int(torch.randint(0, self.spacing ** (noisy.dim() - 2), (1,), generator=generator))
        mask = grid_mask(noisy.shape, self.spacing, phase)
        output = self.network(donut_fill(noisy, mask))
        return ((output - noisy) ** 2)[mask].mean()
