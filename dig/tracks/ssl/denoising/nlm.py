"""Non-local means (Buades, Coll & Morel, CVPR 2005) through ``skimage.restoration.denoise_nl_means``:
each pixel becomes a weighted mean of the pixels whose 5^dim patches (within 6 pixels) look alike,
``w_ij = exp(-max(||P_i - P_j||^2 - 2 sigma^2, 0) / h^2)``, with sigma estimated from the image and
h = 0.8 sigma (scikit-image's recommended setting for ``fast_mode``)."""

from __future__ import annotations

import numpy as np

from dig.tracks.ssl.denoising.classical import ClassicalDenoiser


class NonLocalMeans(ClassicalDenoiser):
    def __init__(self, dim: int = 2, h_factor: float = 0.8, patch_size: int = 5, patch_distance: int = 6,
                 **_: object) -> None:
        super().__init__(dim)
        self.h_factor, self.patch_size, self.patch_distance = h_factor, patch_size, patch_distance

    def denoise(self, noisy: np.ndarray) -> np.ndarray:
        from skimage.restoration import denoise_nl_means

        sigma = self.noise_sigma(noisy)
        image = np.asarray(noisy, dtype=np.float64)
        return denoise_nl_means(image, h=self.h_factor * sigma, sigma=sigma, patch_size=self.patch_size,
                                patch_distance=self.patch_distance, fast_mode=True,
                                channel_axis=None).astype(np.float32)
