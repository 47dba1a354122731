"""PSNR and SSIM of denoised images against clean ones (scikit-image's implementations), at a stated data range.

``PSNR = 10 log10(range^2 / MSE)`` in dB; SSIM (Wang et al. 2004) with scikit-image's defaults (7-pixel
uniform window, K1 = 0.01, K2 = 0.03), in 2D or 3D. Both are averaged over a set's images.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def denoising_scores(predictions: Sequence[np.ndarray], references: Sequence[np.ndarray],
                     data_range: float) -> dict[str, float]:
    """``{"psnr_dB": mean PSNR, "ssim_index": mean SSIM}`` over image pairs of equal shapes."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    if len(predictions) != len(references) or not len(predictions):
        raise ValueError(f"need as many predictions as references (>0); got {len(predictions)} and {len(references)}")
    psnr, ssim = [], []
    for prediction, reference in zip(predictions, references, strict=True):
        if prediction.shape != reference.shape:
            raise ValueError(f"a prediction of shape {prediction.shape} for a reference of shape {reference.shape}")
        prediction = np.asarray(prediction, dtype=np.float64)
        reference = np.asarray(reference, dtype=np.float64)
        with np.errstate(divide="ignore"):  # identical images: PSNR = inf, as it should be
            psnr.append(peak_signal_noise_ratio(reference, prediction, data_range=data_range))
        ssim.append(structural_similarity(reference, prediction, data_range=data_range))
    return {"psnr_dB": float(np.mean(psnr)), "ssim_index": float(np.mean(ssim))}
