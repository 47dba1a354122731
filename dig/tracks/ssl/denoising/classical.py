"""What the classical rows share: no training, the noise level estimated from the noisy image itself
(``skimage.restoration.estimate_sigma``: the median absolute deviation of the finest wavelet detail
coefficients), so that they see no more than the self-supervised methods do."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class ClassicalDenoiser:
    uses_clean = False
    seed_independent = True  # no training, no randomness: scored once per bench, the same for every seed

    def __init__(self, dim: int = 2, **_: object) -> None:
        self.dim = dim

    def fit(self, noisy: Sequence[np.ndarray], seed: int, on_epoch=None, **_: object) -> dict:
        return {"steps": 0}

    @staticmethod
    def noise_sigma(noisy: np.ndarray) -> float:
        from skimage.restoration import estimate_sigma

        return float(estimate_sigma(noisy, channel_axis=None))

    def denoise(self, noisy: np.ndarray) -> np.ndarray:
        raise NotImplementedError
