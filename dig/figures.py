"""Pictures a job leaves for the leaderboard page: side-by-side gray panels as a base64 PNG (kept in the
record's ``extra.figure_png``; ``dig bench`` writes it to ``OUT/figures/<track>/<dataset>/<model>.png``)."""

from __future__ import annotations

import base64
import io

import numpy as np

MAX_SIDE = 256
MIN_SIDE = 128
GAP = 4


def to_rgb(image: np.ndarray, low: float | None = None, high: float | None = None) -> np.ndarray:
    """A 2D image as uint8 RGB, ``low``..``high`` (default: its 1st and 99.5th percentiles) mapped to black..white."""
    if low is None or high is None:
        low, high = np.percentile(image, (1.0, 99.5))
    scaled = np.clip((image - low) / (high - low if high > low else 1.0), 0, 1)
    return np.repeat((scaled * 255).astype(np.uint8)[..., None], 3, axis=-1)


def panels_png(panels: list[np.ndarray]) -> str:
    """Base64 PNG of RGB panels [H, W, 3] of one size, left to right with white gaps; panels whose longest side
    is under 128 pixels are enlarged by whole pixels."""
    from PIL import Image

    zoom = max(1, -(-MIN_SIDE // max(panels[0].shape[:2])))
    panels = [panel.repeat(zoom, axis=0).repeat(zoom, axis=1) for panel in panels]
    gap = np.full((panels[0].shape[0], GAP, 3), 255, dtype=np.uint8)
    row = [part for panel in panels for part in (panel, gap)][:-1]
    buffer = io.BytesIO()
    Image.fromarray(np.concatenate(row, axis=1)).save(buffer, format="PNG", optimize=True)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def middle_slice(array: np.ndarray, spatial_dims: int) -> np.ndarray:
    """The middle slice along the first spatial axis of a 3D array (leading channel axes kept); 2D as is."""
    if spatial_dims == 3:
        index = (slice(None),) * (array.ndim - 3) + (array.shape[-3] // 2,)
        return array[index]
    return array


def subsample(array: np.ndarray, longest: int) -> np.ndarray:
    """Every k-th pixel in the last two axes, k the smallest step that brings ``longest`` to at most 256."""
    step = max(1, int(np.ceil(longest / MAX_SIDE)))
    return array[..., ::step, ::step]
