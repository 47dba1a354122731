"""BM3D (Dabov et al., IEEE TIP 2007) through the ``bm3d`` package (Makinen, Azzari & Foi): block matching,
collaborative 3D transform-domain filtering (hard thresholding, then Wiener), with the noise's sigma estimated
from the image. 3D volumes are filtered slice by slice (BM4D, the volumetric method, is another package)."""

from __future__ import annotations

import numpy as np

from dig.tracks.ssl.denoising.classical import ClassicalDenoiser


class BM3D(ClassicalDenoiser):
    def denoise(self, noisy: np.ndarray) -> np.ndarray:
        import bm3d

        image = np.asarray(noisy, dtype=np.float64)
        if image.ndim == 2:
            return np.asarray(bm3d.bm3d(image, sigma_psd=self.noise_sigma(image)), dtype=np.float32)
        return np.stack([np.asarray(bm3d.bm3d(plane, sigma_psd=self.noise_sigma(plane)), dtype=np.float32)
                         for plane in image])
