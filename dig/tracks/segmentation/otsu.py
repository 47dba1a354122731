"""Floor: Otsu thresholding (Otsu 1979, scikit-image's ``threshold_otsu``; ``threshold_multiotsu`` for K > 2
classes, classes in order of intensity) of the channel mean after a Gaussian smoothing whose width is chosen
among 0, 1 and 2 pixels by mean foreground Dice on the validation images: the baseline gets the same
validation-only selection as the networks. Instances: connected components."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from dig.tracks.segmentation.learned import foreground_dice
from dig.tracks.segmentation.protocol import EpochCallback, Prediction, Split

SMOOTHING = (0.0, 1.0, 2.0)


class OtsuThreshold:
    prompted = False

    def __init__(self, dim: int = 2, in_channels: int = 1, classes: int = 2, **_: object) -> None:
        self.classes, self.sigma = classes, 0.0

    def _segment(self, image: np.ndarray, sigma: float) -> np.ndarray:
        from skimage.filters import threshold_multiotsu, threshold_otsu

        intensity = image.mean(axis=0)
        if sigma:
            intensity = ndimage.gaussian_filter(intensity, sigma)
        if self.classes == 2:
            return (intensity > threshold_otsu(intensity)).astype(np.int64)
        return np.digitize(intensity, threshold_multiotsu(intensity, classes=self.classes)).astype(np.int64)

    def fit(self, train: Split, val: Split, seed: int, on_epoch: EpochCallback | None = None) -> dict:
        scores = {sigma: float(np.mean([foreground_dice(self._segment(image, sigma), label, self.classes)
                                        for image, label in zip(val.images, val.labels, strict=True)]))
                  for sigma in SMOOTHING}
        self.sigma = max(scores, key=scores.get)
        return {"val_dice_by_sigma": {f"{s:g}": v for s, v in scores.items()}, "sigma": self.sigma, "steps": 0}

    def predict(self, image: np.ndarray) -> Prediction:
        return Prediction(self._segment(image, self.sigma))
