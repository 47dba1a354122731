"""Image-level datasets of the ssl track (self-supervised denoising), all offline.

- ``fluo-sim-2d`` / ``fluo-sim-3d``: ``dig.data.fluo_sim`` scenes (128^2 with 12 nuclei; 32 x 64^2 with 8)
  under three cameras, as the seed's C0/C1/C2 conditions: C0 30, C1 12, C2 6 photons per unit intensity,
  read noise 1 e-. One model is trained on all conditions together (CARE's Planaria protocol) and scored
  per condition. Training, validation and test images are different scenes (disjoint seeds), so no scene
  leaks. PSNR/SSIM data range 1 (the relative intensity: background 0.05, nuclei up to about 1).
- ``natural-gray``: scikit-image's photographs in grayscale (colour ones by ``rgb2gray``), 0..255, with
  additive Gaussian noise sigma = 25 (the BSD68 protocol, unclipped), split by image: 9 train, 1 validation,
  3 test (``camera``, ``coins``, ``chelsea``; ``cat`` is left out, it is ``chelsea``). The noise is fixed
  per image (seeded by its name), so every job sees the same noisy set. Data range 255.
- ``stardist-nuclei``: trained exactly as ``fluo-sim-2d`` (its training and validation scenes; within a bench
  the two share each fit, see ``dig.tracks.shared_fit``), tested on
  the REAL fluorescence image ``img2d.tif`` shipped in the stardist wheel (512^2, never trained on), its
  1st-99.8th percentiles mapped to the simulator's intensity scale (0.05 .. 0.85), seen through the same
  three cameras: simulator -> real-image transfer.
- ``care``: CARE-style paired data from a folder (``dig data prepare care --track ssl --from DIR``).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from dig.data.cache import load_cached_arrays, save_cached_arrays
from dig.data.fluo_sim import Camera, add_camera_noise, fluorescence_set
from dig.data.paired_files import paired_files
from dig.data.splits import ordered_split
from dig.data.stardist_nuclei import stardist_image
from dig.errors import DataError
from dig.tracks.ssl.protocol import ImageTask

CAMERAS = (Camera("C0", 30.0, 1.0), Camera("C1", 12.0, 1.0), Camera("C2", 6.0, 1.0))
FLUO = {2: {"shape": (128, 128), "count": 12, "radius": (5.0, 11.0), "train": 16, "val": 2, "test": 6},
        3: {"shape": (32, 64, 64), "count": 8, "radius": (4.0, 9.0), "train": 6, "val": 1, "test": 2}}
NATURAL_TRAIN = ("astronaut", "brick", "coffee", "grass", "gravel", "moon", "page", "text", "rocket")
NATURAL_VAL = ("clock",)
NATURAL_TEST = ("camera", "coins", "chelsea")
NATURAL_SIGMA = 25.0


def _fluo_split(dim: int, split: str, seed: int) -> dict[str, np.ndarray]:
    spec = FLUO[dim]
    name = f"ssl-fluo-sim-{dim}d-{split}-v1"
    return fluorescence_set(name, spec["shape"], CAMERAS, spec[split], seed, count=spec["count"],
                            radius=spec["radius"])


def _flatten(arrays: dict[str, np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    noisy, clean = arrays["noisy"], arrays["clean"]
    return ([image for per_camera in noisy for image in per_camera],
            [image for per_camera in clean for image in per_camera])


class FluoSimTask:
    level = "image"

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.training_key = f"fluo-sim-{dim}d-train-s1-val-s2-v1"  # the same training and validation images
        self._task: ImageTask | None = None

    def _training(self) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
        train_noisy, train_clean = _flatten(_fluo_split(self.dim, "train", 1))
        val_noisy, val_clean = _flatten(_fluo_split(self.dim, "val", 2))
        return train_noisy, train_clean, val_noisy, val_clean

    def load(self) -> ImageTask:
        if self._task is None:
            test = _fluo_split(self.dim, "test", 3)
            conditions = {camera.name: (list(test["noisy"][k]), list(test["clean"][k]))
                          for k, camera in enumerate(CAMERAS)}
            self._task = ImageTask(f"fluo-sim-{self.dim}d", self.dim, 1.0, *self._training(), conditions,
                                   "simulated nuclei, cameras " + ", ".join(
                                       f"{c.name} {c.photons:g} photons" for c in CAMERAS))
        return self._task


class StardistNucleiTask(FluoSimTask):
    trains_elsewhere = True  # its training is fluo-sim-2d's: scheduled after it, to score the same fit

    def __init__(self) -> None:
        super().__init__(2)

    def load(self) -> ImageTask:
        if self._task is None:
            clean = stardist_image()
            conditions = {}
            for k, camera in enumerate(CAMERAS):
                rng = np.random.default_rng(7919 + k)
                conditions[camera.name] = ([add_camera_noise(clean, camera, rng)], [clean])
            self._task = ImageTask("stardist-nuclei", 2, 1.0, *self._training(), conditions,
                                   "trained on fluo-sim-2d, tested on the real stardist img2d.tif")
        return self._task


def _gray(name: str) -> np.ndarray:
    import skimage.data
    from skimage.color import rgb2gray, rgba2rgb

    image = getattr(skimage.data, name)()
    if image.ndim == 3:
        image = rgb2gray(rgba2rgb(image) if image.shape[-1] == 4 else image)
        return (image * 255.0).astype(np.float32)
    return image.astype(np.float32)


def _noisy(name: str, clean: np.ndarray) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little")
    return (clean + np.random.default_rng(seed).normal(0.0, NATURAL_SIGMA, clean.shape)).astype(np.float32)


class NaturalGrayTask:
    level = "image"

    def __init__(self) -> None:
        self._task: ImageTask | None = None

    def load(self) -> ImageTask:
        if self._task is None:
            sets = []
            for names in (NATURAL_TRAIN, NATURAL_VAL, NATURAL_TEST):
                clean = [_gray(name) for name in names]
                sets.append(([_noisy(n, c) for n, c in zip(names, clean, strict=True)], clean))
            (train_noisy, train_clean), (val_noisy, val_clean), test = sets
            self._task = ImageTask("natural-gray", 2, 255.0, train_noisy, train_clean, val_noisy, val_clean,
                                   {"sigma25": test}, f"scikit-image photographs, Gaussian sigma {NATURAL_SIGMA:g}")
        return self._task


def read_care_folder(source: str | os.PathLike) -> tuple[list[str], list[np.ndarray], list[np.ndarray]]:
    """CARE's paired layout: ``low/NAME.tif`` (noisy) and ``GT/NAME.tif`` (clean) with the same names and shapes,
    read with tifffile; returns sorted names, low and GT images (float32)."""
    import tifffile

    root = Path(source)
    pairs = paired_files(root, "low", "GT", (".tif", ".tiff"), "a CARE folder")
    names, low, gt = [name for name, _, _ in pairs], [], []
    for name, low_path, gt_path in pairs:
        pair = []
        for path in (low_path, gt_path):
            try:
                pair.append(np.asarray(tifffile.imread(path), dtype=np.float32))
            except Exception as exc:  # tifffile raises many kinds on a damaged file
                raise DataError(f"{path} is not a readable TIFF ({type(exc).__name__}: {exc})") from exc
        if pair[0].shape != pair[1].shape:
            raise DataError(f"{name}: low/ has shape {pair[0].shape} and GT/ {pair[1].shape}; a pair must match")
        if pair[0].ndim not in (2, 3):
            raise DataError(f"{low_path} has shape {pair[0].shape}; CARE images are 2D or 3D single-channel")
        low.append(pair[0])
        gt.append(pair[1])
    if len({image.ndim for image in low}) > 1:
        raise DataError(f"{root} mixes 2D and 3D images; prepare them as separate datasets")
    return names, low, gt


class CareTask:
    """Pairs split by file in sorted order: the last 20 % (at least one) test, the one before validation,
    the rest training. Data range: the GT images' max - min over the test set."""

    level = "image"

    def __init__(self, name: str = "care") -> None:
        self.name, self.cache_name = name, f"ssl-{name}-v1"
        self._task: ImageTask | None = None

    def prepare(self, source: str | os.PathLike | None = None) -> dict[str, Any]:
        if source is None:
            raise DataError(f"{self.name} is read from a CARE folder: dig data prepare {self.name} --track ssl "
                            "--from DIR (DIR holds low/ and GT/)")
        names, low, gt = read_care_folder(source)
        if len(names) < 3:
            raise DataError(f"{source} holds {len(names)} pairs; training, validation and test need at least 3")
        arrays = {f"low_{i}": image for i, image in enumerate(low)} | {f"gt_{i}": image for i, image in enumerate(gt)}
        manifest = {"dataset": self.name, "pairs": len(names), "names": names, "path": str(source)}
        save_cached_arrays(self.cache_name, arrays, manifest)
        self._task = None
        return {key: value for key, value in manifest.items() if key != "names"}

    def load(self) -> ImageTask:
        if self._task is None:
            cached = load_cached_arrays(self.cache_name)
            if cached is None:
                raise DataError(f"{self.name} is not prepared: dig data prepare {self.name} --track ssl --from DIR "
                                "(a folder with low/ and GT/ TIFFs of matching names)")
            arrays, manifest = cached
            count = int(manifest["pairs"])
            low = [arrays[f"low_{i}"] for i in range(count)]
            gt = [arrays[f"gt_{i}"] for i in range(count)]
            train, val, test = ordered_split(count)
            data_range = float(max(g.max() for g in gt[test]) - min(g.min() for g in gt[test]))
            self._task = ImageTask(self.name, low[0].ndim, data_range, low[train], gt[train], low[val], gt[val],
                                   {"all": (low[test], gt[test])}, f"CARE folder {manifest['path']}")
        return self._task
