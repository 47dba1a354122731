"""The segmentation track's built-in datasets, all offline.

- ``fluo-nuclei-2d`` / ``fluo-nuclei-3d``: ``dig.data.fluo_sim`` scenes (128^2 with 12 nuclei; 32 x 64^2 with
  8) seen through three cameras (30, 12 and 6 photons per unit intensity, read noise 1), each scene under one
  camera picked by its index; the semantic mask is nucleus vs background and the simulator's instance map is
  the instance truth. Training, validation and test are disjoint scenes (different seeds).
- ``stardist-nuclei``: trained exactly as ``fluo-nuclei-2d`` (its training and validation scenes), tested on
  the REAL 512^2 fluorescence image of the stardist wheel with its 125 annotated nuclei: a simulator -> real
  transfer test that no model trains on, reported as its own table. Both datasets carry the same
  ``training_key``, so within one bench each (model, seed) is trained once and both test sets score it.
- ``monai-synthetic-3d``: MONAI's ``create_test_image_3d`` volumes (48^3, 10 spheres of radius 4..10, 3
  classes, noise_max 0.5), seeds 0..15 train, 100..101 validation, 200..205 test. Class k has intensity k
  before the uniform noise ``max(image, U(0, 1.5))``, so class 1 and the noisy background overlap in
  intensity and only shape and context tell them apart.
"""

from __future__ import annotations

import numpy as np

from dig.data.fluo_sim import Camera, fluorescence_set
from dig.data.stardist_nuclei import stardist_image, stardist_instances
from dig.tracks.segmentation.protocol import SegmentationTask, Split

CAMERAS = (Camera("C0", 30.0, 1.0), Camera("C1", 12.0, 1.0), Camera("C2", 6.0, 1.0))
FLUO = {2: {"shape": (128, 128), "count": 12, "radius": (5.0, 11.0), "train": 24, "val": 3, "test": 9},
        3: {"shape": (32, 64, 64), "count": 8, "radius": (4.0, 9.0), "train": 9, "val": 3, "test": 3}}
NUCLEI = ("background", "nucleus")
MONAI_SYNTHETIC = {"side": 48, "objects": 10, "radius": (4, 10), "classes": 3, "noise_max": 0.5,
                   "train": range(0, 16), "val": range(100, 102), "test": range(200, 206)}


def _fluo_split(dim: int, split: str, seed: int) -> Split:
    """``spec[split]`` scenes; scene i is seen through camera i mod 3 (every camera in every split)."""
    spec = FLUO[dim]
    per_camera = -(-spec[split] // len(CAMERAS))
    arrays = fluorescence_set(f"seg-fluo-nuclei-{dim}d-{split}-v1", spec["shape"], CAMERAS, per_camera, seed,
                              count=spec["count"], radius=spec["radius"])
    images, labels, instances = [], [], []
    for i in range(spec[split]):
        camera, scene = i % len(CAMERAS), i // len(CAMERAS)
        instance_map = arrays["instances"][camera, scene].astype(np.int32)
        images.append(arrays["noisy"][camera, scene][None].astype(np.float32))
        labels.append((instance_map > 0).astype(np.int64))
        instances.append(instance_map)
    return Split(images, labels, instances)


class FluoNucleiTask:
    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.training_key = f"fluo-nuclei-{dim}d-train-s11-val-s12-v1"  # the same training and validation images
        self._task: SegmentationTask | None = None

    def _training(self) -> tuple[Split, Split]:
        return _fluo_split(self.dim, "train", 11), _fluo_split(self.dim, "val", 12)

    def load(self) -> SegmentationTask:
        if self._task is None:
            self._task = SegmentationTask(f"fluo-nuclei-{self.dim}d", self.dim, NUCLEI, *self._training(),
                                          _fluo_split(self.dim, "test", 13),
                                          "simulated nuclei under cameras C0/C1/C2 (30/12/6 photons)")
        return self._task


class StardistNucleiTask(FluoNucleiTask):
    trains_elsewhere = True  # its training is fluo-nuclei-2d's: scheduled after it, to score the same fit

    def __init__(self) -> None:
        super().__init__(2)

    def load(self) -> SegmentationTask:
        if self._task is None:
            instances = stardist_instances()
            test = Split([stardist_image()[None]], [(instances > 0).astype(np.int64)], [instances])
            self._task = SegmentationTask("stardist-nuclei", 2, NUCLEI, *self._training(), test,
                                          "trained on fluo-nuclei-2d; tested on the real stardist img2d.tif "
                                          "(125 annotated nuclei)", external_test=True)
        return self._task


def monai_synthetic_volume(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """One ``create_test_image_3d`` volume [1, 48, 48, 48] (float32, rescaled to 0..1) and its labels."""
    from monai.data import create_test_image_3d

    spec = MONAI_SYNTHETIC
    side = spec["side"]
    image, labels = create_test_image_3d(side, side, side, num_objs=spec["objects"], rad_max=spec["radius"][1],
                                         rad_min=spec["radius"][0], noise_max=spec["noise_max"],
                                         num_seg_classes=spec["classes"], random_state=np.random.RandomState(seed))
    return image[None].astype(np.float32), labels.astype(np.int64)


class MonaiSynthetic3DTask:
    def __init__(self) -> None:
        self._task: SegmentationTask | None = None

    def load(self) -> SegmentationTask:
        if self._task is None:
            splits = []
            for split in ("train", "val", "test"):
                pairs = [monai_synthetic_volume(seed) for seed in MONAI_SYNTHETIC[split]]
                splits.append(Split([p[0] for p in pairs], [p[1] for p in pairs]))
            classes = ("background", *(f"class-{k}" for k in range(1, MONAI_SYNTHETIC["classes"] + 1)))
            self._task = SegmentationTask("monai-synthetic-3d", 3, classes, *splits,
                                          "MONAI create_test_image_3d spheres, 3 classes, noise_max 0.5")
        return self._task
