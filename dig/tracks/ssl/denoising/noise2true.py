"""Noise2True: the supervised ceiling, ``L = mean (f(x) - y)^2`` against the clean image y (CARE's setting,
Weigert et al., Nature Methods 2018). It alone of the U-Net rows sees clean training and validation images."""

from __future__ import annotations

import torch
from torch import Tensor

from dig.tracks.ssl.denoising.learned import LearnedDenoiser


class Noise2True(LearnedDenoiser):
    uses_clean = True

    def loss(self, noisy: Tensor, clean: Tensor | None, generator: torch.Generator) -> Tensor:
        return torch.mean((self.network(noisy) - clean) ** 2)
