"""The picture a leaderboard shows per model: the test image, the truth and the prediction side by side,
outlines drawn on the image (truth green, prediction magenta), as a PNG (3D: the middle slice)."""

from __future__ import annotations

import base64
import io

import numpy as np

TRUTH_RGB = (0, 220, 0)
PREDICTION_RGB = (255, 0, 255)
MAX_SIDE = 256
MIN_SIDE = 128


def _gray(image: np.ndarray) -> np.ndarray:
    intensity = image.mean(axis=0)
    low, high = np.percentile(intensity, (1.0, 99.5))
    scaled = np.clip((intensity - low) / (high - low if high > low else 1.0), 0, 1)
    return np.repeat((scaled * 255).astype(np.uint8)[..., None], 3, axis=-1)


def _outlined(rgb: np.ndarray, labels: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    from skimage.segmentation import find_boundaries

    out = rgb.copy()
    out[find_boundaries(labels, mode="inner")] = colour
    return out


def overlay_png(image: np.ndarray, truth: np.ndarray, prediction: np.ndarray) -> str:
    """Base64 PNG of [image | truth outlines | prediction outlines] for one [C, *spatial] image and its label
    (or instance) maps; 3D inputs show their middle slice along the first axis; sides above 256 are
    subsampled, sides below 128 enlarged by whole pixels."""
    from PIL import Image

    if truth.ndim == 3:
        middle = truth.shape[0] // 2
        image, truth, prediction = image[:, middle], truth[middle], prediction[middle]
    step = max(1, int(np.ceil(max(truth.shape) / MAX_SIDE)))
    image, truth, prediction = image[:, ::step, ::step], truth[::step, ::step], prediction[::step, ::step]
    gray = _gray(image)
    panels = [gray, _outlined(gray, truth, TRUTH_RGB), _outlined(gray, prediction, PREDICTION_RGB)]
    zoom = max(1, -(-MIN_SIDE // max(truth.shape)))  # small volumes (48^3) are enlarged, pixel by pixel
    panels = [panel.repeat(zoom, axis=0).repeat(zoom, axis=1) for panel in panels]
    gap = np.full((panels[0].shape[0], 4, 3), 255, dtype=np.uint8)
    panel = np.concatenate([panels[0], gap, panels[1], gap, panels[2]], axis=1)
    buffer = io.BytesIO()
    Image.fromarray(panel).save(buffer, format="PNG", optimize=True)
    return base64.b64encode(buffer.getvalue()).decode("ascii")
