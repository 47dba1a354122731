"""The segmentation track's protocol.

- A dataset gives a ``SegmentationTask``: images as float32 arrays ``[channels, *spatial]`` (2D or 3D), a
  semantic label map per image (int, ``0`` background, ``1 .. K-1`` the classes named in ``classes``) and,
  where objects are counted, an instance map per test image (``0`` background, ``1 .. n`` objects).
  Training, validation and test images are disjoint (different scenes, volumes or cases).
- A model is built by ``build(dim=..., in_channels=..., classes=..., **hparams)`` and has
  ``fit(train: Split, val: Split, seed, on_epoch=None) -> dict`` (a history; the checkpoint is chosen on
  ``val`` only) and ``predict(image) -> Prediction`` for one ``[C, *spatial]`` image. A ``Prediction`` holds
  the semantic label map and, optionally, the model's own instances; without them the track takes the
  connected components of each foreground class.
- A box-prompted model (``prompted = True``, MedSAM's protocol) is given the test image and one box per true
  instance instead: ``predict_boxes(image, boxes) -> masks [n, *spatial]`` (boolean, one per box).
- The evaluator (``metrics.segmentation_scores``) compares the test predictions with the truth once:
  Dice, IoU, HD95 and NSD per class (MONAI), AP at IoU 0.5 and panoptic quality of instances (stardist's
  ``matching``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class Split:
    images: list[np.ndarray]  # each [channels, *spatial], float32
    labels: list[np.ndarray]  # each [*spatial], int: 0 background, 1..K-1 classes
    instances: list[np.ndarray] | None = None  # each [*spatial], int: 0 background, 1..n objects

    def __len__(self) -> int:
        return len(self.images)


@dataclass(frozen=True)
class SegmentationTask:
    name: str
    dim: int  # 2 or 3
    classes: tuple[str, ...]  # index 0 is the background
    train: Split
    val: Split
    test: Split
    description: str = ""
    external_test: bool = False  # the test images come from another source than training (transfer)

    @property
    def in_channels(self) -> int:
        return int(self.train.images[0].shape[0])


@dataclass(frozen=True)
class Prediction:
    labels: np.ndarray  # [*spatial] int
    instances: np.ndarray | None = None  # [*spatial] int, or None: connected components of each class


EpochCallback = Callable[[int, int, Mapping[str, float]], None]


@runtime_checkable
class Segmenter(Protocol):
    def fit(self, train: Split, val: Split, seed: int, on_epoch: EpochCallback | None = None) -> dict[str, Any]: ...

    def predict(self, image: np.ndarray) -> Prediction: ...


@runtime_checkable
class PromptedSegmenter(Protocol):
    prompted: bool

    def fit(self, train: Split, val: Split, seed: int, on_epoch: EpochCallback | None = None) -> dict[str, Any]: ...

    def predict_boxes(self, image: np.ndarray, boxes: Sequence[tuple[int, ...]]) -> np.ndarray: ...
