"""The picture a leaderboard shows per model: the test image, the truth and the prediction side by side,
outlines drawn on the image (truth green, prediction magenta), as a PNG (3D: the middle slice)."""

from __future__ import annotations

import numpy as np

from dig.figures import middle_slice, panels_png, subsample, to_rgb

TRUTH_RGB = (0, 220, 0)
PREDICTION_RGB = (255, 0, 255)


def _outlined(rgb: np.ndarray, labels: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    from skimage.segmentation import find_boundaries

    out = rgb.copy()
    out[find_boundaries(labels, mode="inner")] = colour
    return out


def overlay_png(image: np.ndarray, truth: np.ndarray, prediction: np.ndarray) -> str:
    """Base64 PNG of [image | truth outlines | prediction outlines] for one [C, *spatial] image and its label
    (or instance) maps; 3D inputs show their middle slice along the first axis; sides above 256 are
    subsampled, sides below 128 enlarged by whole pixels."""
    dims = truth.ndim
    longest = max(truth.shape[-2:])
    image, truth, prediction = (subsample(middle_slice(a, dims), longest) for a in (image, truth, prediction))
    gray = to_rgb(image.mean(axis=0))
    return panels_png([gray, _outlined(gray, truth, TRUTH_RGB), _outlined(gray, prediction, PREDICTION_RGB)])
