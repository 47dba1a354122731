"""Noise2Same (Xie, Wang & Ji, NeurIPS 2020): a self-supervised upper bound of the supervised loss, with no
blind spot in the network.

For a normalised noisy image x and a random pixel subset J (0.5 % of the pixels, stratified),

    L = E||f(x) - x||^2 / m + lambda_inv * (E_J ||f(x)_J - f(x_J^c)_J||^2 / |J|)^(1/2),

where ``x_J^c`` is x with the pixels of J replaced by N(0, 0.2^2) noise and lambda_inv = 2 (the paper's
Theorem 1: the bound holds at 2; its released code uses 2). The reconstruction term alone is minimised by
the identity; the invariance term makes f(x)_J predictable without x_J. Prediction is f(x).
"""

from __future__ import annotations

import torch
from torch import Tensor

from dig.tracks.ssl.denoising.learned import LearnedDenoiser
from dig.tracks.ssl.denoising.masking import gaussian_fill, stratified_mask


def noise2same_loss(output: Tensor, masked_output: Tensor, noisy: Tensor, mask: Tensor,
                    lambda_inv: float = 2.0) -> Tensor:
    """``mean((f(x) - x)^2) + lambda_inv * sqrt(mean over J of (f(x) - f(x_J^c))^2)``."""
    reconstruction = torch.mean((output - noisy) ** 2)
    invariance = ((output - masked_output) ** 2)[mask].mean()
    return reconstruction + lambda_inv * torch.sqrt(invariance)


class Noise2Same(LearnedDenoiser):
    def __init__(self, dim: int = 2, lambda_inv: float = 2.0, mask_percent: float = 0.5, mask_sigma: float = 0.2,
                 **hparams) -> None:
        super().__init__(dim=dim, **hparams)
        self.lambda_inv, self.mask_percent, self.mask_sigma = lambda_inv, mask_percent, mask_sigma

    def loss(self, noisy: Tensor, clean: Tensor | None, generator: torch.Generator) -> Tensor:
        mask = stratified_mask(noisy.shape, self.mask_percent, generator)
        masked = gaussian_fill(noisy, mask, generator, self.mask_sigma)
        both = self.network(torch.cat([noisy, masked]))
        output, masked_output = both.chunk(2)
        return noise2same_loss(output, masked_output, noisy, mask, self.lambda_inv)
