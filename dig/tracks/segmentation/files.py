"""Segmentation datasets read from files in their canonical layouts (``dig data prepare NAME --track
segmentation --from DIR``), checked in full before anything is written to the cache, so that a bad file
names itself and an earlier prepared copy is never lost.

- Medical Segmentation Decathlon (Antonelli et al. 2022), one task folder: ``dataset.json`` (``labels``:
  ``{"0": "background", "1": ...}``, or nnU-Net v2's ``{"background": 0, ...}``; ``training``: a list of
  ``{"image": "./imagesTr/X.nii.gz", "label": "./labelsTr/X.nii.gz"}``), images ``[X, Y, Z]`` or
  ``[X, Y, Z, modalities]``, labels ``[X, Y, Z]``; read with nibabel. MSD's ``imagesTs`` have no labels, so
  the labelled cases are split: sorted by file name, the last 20 % (at least one) test, the case before
  them validation, the rest training.
- A folder of pairs: ``images/NAME.(png|tif|tiff)`` and ``masks/NAME.(png|tif|tiff)``, same names and
  shapes; masks are label maps of the classes in an optional ``classes.json`` (``{"0": "background", "1":
  "cell"}``, default background / foreground), or instance maps with ``{"instances": true}`` in it (each
  object its own integer; the class is "object"). Same split as above.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from dig.data.cache import load_cached_arrays, save_cached_arrays
from dig.data.paired_files import paired_files
from dig.data.splits import ordered_split
from dig.errors import DataError
from dig.tracks.segmentation.protocol import SegmentationTask, Split

MSD_TASKS = {"braintumour": "Task01_BrainTumour", "heart": "Task02_Heart", "liver": "Task03_Liver",
             "hippocampus": "Task04_Hippocampus", "prostate": "Task05_Prostate", "lung": "Task06_Lung",
             "pancreas": "Task07_Pancreas", "hepaticvessel": "Task08_HepaticVessel", "spleen": "Task09_Spleen",
             "colon": "Task10_Colon"}
IMAGE_SUFFIXES = (".png", ".tif", ".tiff")


def msd_classes(labels: dict[str, Any], source: Path) -> tuple[str, ...]:
    """Class names by index from MSD's ``{"0": "background"}`` or nnU-Net v2's ``{"background": 0}``."""
    try:
        if all(str(key).isdigit() for key in labels):
            by_index = {int(key): str(name) for key, name in labels.items()}
        else:
            by_index = {int(value): str(key) for key, value in labels.items()}
    except (TypeError, ValueError) as exc:
        raise DataError(f"{source}: 'labels' must map class indices to names; got {labels!r}") from exc
    if sorted(by_index) != list(range(len(by_index))) or len(by_index) < 2:
        raise DataError(f"{source}: 'labels' must number the classes 0..K-1 with 0 the background; got {labels!r}")
    return tuple(by_index[k] for k in range(len(by_index)))


def _nifti(path: Path) -> np.ndarray:
    import nibabel

    if not path.exists():
        raise DataError(f"{path} is listed in dataset.json but does not exist")
    try:
        return np.asarray(nibabel.load(str(path)).get_fdata(dtype=np.float32))
    except Exception as exc:  # nibabel raises several kinds on a damaged or foreign file
        raise DataError(f"{path} is not a readable NIfTI file ({type(exc).__name__}: {exc})") from exc


def check_labels(label: np.ndarray, classes: tuple[str, ...], path: Path) -> np.ndarray:
    """``label`` as int64 after checking it holds whole numbers among the declared classes."""
    if not np.all(np.isfinite(label)) or not np.all(label == np.round(label)):
        raise DataError(f"{path} holds non-integer label values; a label map holds class indices")
    values = np.unique(label).astype(np.int64)
    outside = [int(v) for v in values if v < 0 or v >= len(classes)]
    if outside:
        raise DataError(f"{path} holds label value(s) {outside[:5]} outside the declared classes 0..{len(classes) - 1} "
                        f"({', '.join(classes)}); fix the mask or declare the class")
    return label.astype(np.int64)


def read_msd_folder(source: str | os.PathLike) -> tuple[tuple[str, ...], list[str], list[np.ndarray], list[np.ndarray]]:
    """(classes, case names, images [C, X, Y, Z], labels [X, Y, Z]) of an MSD task folder, sorted by name."""
    root = Path(source)
    description = root / "dataset.json"
    if not description.is_file():
        raise DataError(f"{root} is not a Medical Segmentation Decathlon task folder: {description} is missing")
    try:
        meta = json.loads(description.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{description} is not readable JSON ({exc})") from exc
    if not isinstance(meta, dict) or not isinstance(meta.get("labels"), dict) or not isinstance(meta.get("training"), list):
        raise DataError(f"{description} needs 'labels' (index -> class name) and 'training' (image/label pairs)")
    classes = msd_classes(meta["labels"], description)
    cases = []
    for item in meta["training"]:
        if not isinstance(item, dict) or "image" not in item or "label" not in item:
            raise DataError(f"{description}: every 'training' entry needs 'image' and 'label'; got {item!r}")
        cases.append((root / item["image"], root / item["label"]))
    cases.sort(key=lambda pair: pair[0].name)
    names, images, labels = [], [], []
    for image_path, label_path in cases:
        image, label = _nifti(image_path), _nifti(label_path)
        if image.ndim == 3:
            image = image[None]
        elif image.ndim == 4:
            image = np.moveaxis(image, -1, 0)
        else:
            raise DataError(f"{image_path} has shape {image.shape}; MSD images are [X, Y, Z] or [X, Y, Z, modalities]")
        if label.shape != image.shape[1:]:
            raise DataError(f"{label_path} has shape {label.shape} but its image {image_path.name} has "
                            f"{image.shape[1:]}; a label map must match its image voxel for voxel")
        names.append(image_path.name.split(".")[0])
        images.append(np.ascontiguousarray(image, dtype=np.float32))
        labels.append(check_labels(label, classes, label_path))
    if len({image.shape[0] for image in images}) > 1:
        raise DataError(f"{root}: the images have different numbers of modalities")
    return classes, names, images, labels


def _read_image(path: Path) -> np.ndarray:
    try:
        if path.suffix.lower() == ".png":
            import imageio.v3 as iio

            return np.asarray(iio.imread(path))
        import tifffile

        return np.asarray(tifffile.imread(path))
    except Exception as exc:  # the readers raise many kinds on a damaged file
        raise DataError(f"{path} is not a readable image ({type(exc).__name__}: {exc})") from exc


def read_mask_folder(source: str | os.PathLike) -> tuple[tuple[str, ...], list[str], list[np.ndarray], list[np.ndarray], bool]:
    """(classes, names, images [C, H, W], masks [H, W], masks_are_instances) of an image/mask folder."""
    root = Path(source)
    pairs = paired_files(root, "images", "masks", IMAGE_SUFFIXES, "an image/mask folder", by_stem=True)
    settings: dict[str, Any] = {}
    if (root / "classes.json").is_file():
        try:
            settings = json.loads((root / "classes.json").read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataError(f"{root / 'classes.json'} is not readable JSON ({exc})") from exc
    instances = bool(settings.pop("instances", False)) if isinstance(settings, dict) else False
    classes = ("background", "object") if instances else (
        msd_classes(settings, root / "classes.json") if settings else ("background", "foreground"))
    names, images, masks = [name for name, _, _ in pairs], [], []
    for _, image_path, mask_path in pairs:
        image, mask = _read_image(image_path), _read_image(mask_path)
        if image.ndim == 3 and image.shape[-1] in (3, 4) and image.shape[:2] == mask.shape:
            image = np.moveaxis(image[..., :3], -1, 0)
        elif image.ndim == 2:
            image = image[None]
        if image.shape[1:] != mask.shape or mask.ndim != 2:
            raise DataError(f"{mask_path} has shape {mask.shape} but its image has {image.shape[1:]}; "
                            "a mask must match its image pixel for pixel (2D single-channel)")
        if instances:
            if mask.min() < 0 or not np.all(mask == np.round(mask)):
                raise DataError(f"{mask_path} is declared an instance map but holds negative or "
                                "non-integer values")
            mask = mask.astype(np.int64)
        else:
            mask = check_labels(mask, classes, mask_path)
        images.append(np.ascontiguousarray(image, dtype=np.float32))
        masks.append(mask)
    if len({image.shape[0] for image in images}) > 1:
        raise DataError(f"{root}: the images mix grayscale and colour; convert them to one kind")
    return classes, names, images, masks, instances


class FileSegmentationTask:
    """A dataset prepared from files (``reader``: ``"msd"`` or ``"masks"``) into dig's cache."""

    def __init__(self, name: str, reader: str) -> None:
        self.name, self.reader, self.cache_name = name, reader, f"segmentation-{name}-v1"
        self._task: SegmentationTask | None = None

    def _hint(self) -> str:
        layout = ("an MSD task folder: dataset.json, imagesTr/, labelsTr/" if self.reader == "msd"
                  else "a folder with images/ and masks/ of matching names")
        return f"dig data prepare {self.name} --track segmentation --from DIR ({layout})"

    def prepare(self, source: str | os.PathLike | None = None) -> dict[str, Any]:
        if source is None:
            raise DataError(f"{self.name} is read from files: {self._hint()}")
        if self.reader == "msd":
            classes, names, images, labels = read_msd_folder(source)
            instances = False
        else:
            classes, names, images, labels, instances = read_mask_folder(source)
        ordered_split(len(names))
        arrays = {f"image_{i}": image for i, image in enumerate(images)} | {f"label_{i}": m for i, m in enumerate(labels)}
        manifest = {"dataset": self.name, "cases": len(names), "names": names, "classes": list(classes),
                    "dim": int(images[0].ndim - 1), "instances": instances, "path": str(source)}
        save_cached_arrays(self.cache_name, arrays, manifest)
        self._task = None
        return {key: value for key, value in manifest.items() if key != "names"}

    def load(self) -> SegmentationTask:
        if self._task is None:
            cached = load_cached_arrays(self.cache_name)
            if cached is None:
                raise DataError(f"{self.name} is not prepared: {self._hint()}")
            arrays, manifest = cached
            count = int(manifest["cases"])
            images = [arrays[f"image_{i}"] for i in range(count)]
            masks = [arrays[f"label_{i}"] for i in range(count)]
            instances = masks if manifest["instances"] else None
            labels = [(m > 0).astype(np.int64) for m in masks] if instances else masks
            splits = [Split(images[part], labels[part], instances[part] if instances else None)
                      for part in ordered_split(count)]
            self._task = SegmentationTask(self.name, int(manifest["dim"]), tuple(manifest["classes"]), *splits,
                                          f"{manifest['path']} ({count} cases)")
        return self._task
