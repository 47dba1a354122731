"""The floor row: the noisy input itself, scored as if it were a denoised image (the seed's "Input" row)."""

from __future__ import annotations

import numpy as np

from dig.tracks.ssl.denoising.classical import ClassicalDenoiser


class NoisyInput(ClassicalDenoiser):
    def denoise(self, noisy: np.ndarray) -> np.ndarray:
        return np.asarray(noisy, dtype=np.float32)
