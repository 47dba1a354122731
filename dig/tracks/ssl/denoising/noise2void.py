"""Noise2Void (Krull, Buchholz & Jug, CVPR 2019): blind-spot training from single noisy images.

About 0.2 % of the pixels (stratified, one per 22 x 22 box in 2D) are replaced by a pixel drawn uniformly
from their 5x5 neighbourhood (uniform pixel manipulation, the pixel itself excluded), and the loss is the
squared error at those pixels only, against their original noisy values:
``L = mean_{i in J} (f(x~)_i - x_i)^2``. Prediction is f(x) on the unmasked image.
"""

from __future__ import annotations

import torch
from torch import Tensor

from dig.tracks.ssl.denoising.learned import LearnedDenoiser
from dig.tracks.ssl.denoising.masking import stratified_mask, uniform_pixel_manipulation


class Noise2Void(LearnedDenoiser):
    def __init__(self, dim: int = 2, mask_percent: float = 0.198, **hparams) -> None:
        super().__init__(dim=dim, **hparams)
        self.mask_percent = mask_percent

    def loss(self, noisy: Tensor, clean: Tensor | None, generator: torch.Generator) -> Tensor:
        mask = stratified_mask(noisy.shape, self.mask_percent, generator)
        output = self.network(uniform_pixel_manipulation(noisy, mask, generator))
        return ((output - noisy) ** 2)[mask].mean()
