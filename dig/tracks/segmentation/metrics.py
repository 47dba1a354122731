"""The segmentation track's evaluator: MONAI's metrics for classes, stardist's ``matching`` for instances.

Per foreground class k (one-hot, background excluded), averaged over the test images where the class is
present in the truth or the prediction (an image where both lack it does not count):
- ``dice_frac`` = 2|P∩T| / (|P| + |T|) (``monai.metrics.DiceMetric``), ``iou_frac`` = |P∩T| / |P∪T|
  (``MeanIoU``);
- ``hd95_px``: the 95th percentile of the symmetric surface distances in pixels/voxels
  (``HausdorffDistanceMetric(percentile=95)``); where the prediction (or truth) is empty it is undefined and
  set to the image diagonal, the largest distance the image allows (so a model that finds nothing is not
  rewarded by a missing value);
- ``nsd<τ>px_frac``: normalised surface Dice at tolerance τ pixels (``SurfaceDiceMetric``, Nikolov et al.
  2021): the share of both surfaces within τ of the other.
With more than one foreground class the means over classes are reported and each class gets its own
``dice_<class>_frac``; a class absent from every test truth and prediction is left out (no score, no NaN).
Instances (datasets with instance maps): ``ap50_frac`` = TP / (TP + FP + FN) at IoU 0.5, pooled over the
test images (stardist's ``matching_dataset``: "average precision" as in Schmidt et al. 2018, Caicedo et al.
2019) and ``pq_frac`` = panoptic quality (Kirillov et al. 2019) from the same matching.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence

import numpy as np
import torch
from scipy import ndimage

NSD_TOLERANCE_PX = 2.0
INSTANCE_IOU = 0.5


def class_slug(name: str) -> str:
    """A class name as it appears in a metric name: lower case, runs of other characters as ``-``."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "class"


def _one_hot(label: np.ndarray, classes: int) -> torch.Tensor:
    tensor = torch.from_numpy(np.ascontiguousarray(label, dtype=np.int64))
    return torch.nn.functional.one_hot(tensor, classes).movedim(-1, 0)[None].float()


def semantic_scores(predictions: Sequence[np.ndarray], truths: Sequence[np.ndarray], classes: Sequence[str],
                    tolerance: float = NSD_TOLERANCE_PX) -> dict[str, float]:
    """Dice, IoU, HD95 and NSD of label maps (see the module docstring), means over images and classes."""
    from monai.metrics import DiceMetric, HausdorffDistanceMetric, MeanIoU, SurfaceDiceMetric

    if len(predictions) != len(truths) or not truths:
        raise ValueError(f"{len(predictions)} predictions for {len(truths)} label maps")
    count = len(classes)
    foreground = count - 1
    per_image = {"dice": [], "iou": [], "hd95": [], "nsd": []}
    dice_metric = DiceMetric(include_background=False, reduction="none", ignore_empty=False)
    iou_metric = MeanIoU(include_background=False, reduction="none", ignore_empty=False)
    hd95_metric = HausdorffDistanceMetric(include_background=False, percentile=95, reduction="none")
    nsd_metric = SurfaceDiceMetric([tolerance] * foreground, include_background=False, reduction="none")
    for prediction, truth in zip(predictions, truths, strict=True):
        if prediction.shape != truth.shape:
            raise ValueError(f"a prediction of shape {prediction.shape} for a label map of shape {truth.shape}")
        y_pred, y = _one_hot(prediction, count), _one_hot(truth, count)
        present = (y_pred[0, 1:].flatten(1).any(1) | y[0, 1:].flatten(1).any(1)).numpy()
        both = (y_pred[0, 1:].flatten(1).any(1) & y[0, 1:].flatten(1).any(1)).numpy()
        dice = dice_metric(y_pred, y)[0].numpy()
        iou = iou_metric(y_pred, y)[0].numpy()
        diagonal = float(np.linalg.norm(truth.shape))
        hd95 = np.full(foreground, diagonal)
        nsd = np.zeros(foreground)
        if both.any():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # MONAI warns about the classes that ``both`` leaves out
                hd = hd95_metric(y_pred, y)
                sd = nsd_metric(y_pred, y)
            hd95[both] = hd[0].numpy()[both]
            nsd[both] = sd[0].numpy()[both]
        for key, values in (("dice", dice), ("iou", iou), ("hd95", hd95), ("nsd", nsd)):
            per_image[key].append(np.where(present, values, np.nan))
    stacked = {key: np.stack(values) for key, values in per_image.items()}
    seen = np.isfinite(stacked["dice"]).any(axis=0)  # classes present in some test image's truth or prediction
    if not seen.any():
        raise ValueError("no foreground class appears in any truth or prediction; nothing to score")
    means = {key: np.nanmean(values[:, seen], axis=0) for key, values in stacked.items()}
    tolerance_name = f"{tolerance:g}".replace(".", "p")
    scores = {"dice_frac": float(means["dice"].mean()), "iou_frac": float(means["iou"].mean()),
              "hd95_px": float(means["hd95"].mean()), f"nsd{tolerance_name}px_frac": float(means["nsd"].mean())}
    if foreground > 1:
        for position, k in enumerate(np.flatnonzero(seen)):
            scores[f"dice_{class_slug(classes[k + 1])}_frac"] = float(means["dice"][position])
    return scores


def instances_from_labels(labels: np.ndarray) -> np.ndarray:
    """Instances as the connected components of each foreground class (full connectivity), numbered 1..n
    across classes."""
    from skimage.measure import label as connected_components

    out = np.zeros(labels.shape, dtype=np.int32)
    offset = 0
    for value in np.unique(labels):
        if value == 0:
            continue
        components = connected_components(labels == value, connectivity=labels.ndim)
        out[components > 0] = components[components > 0] + offset
        offset += int(components.max())
    return out


def instance_scores(predicted: Sequence[np.ndarray], truths: Sequence[np.ndarray],
                    threshold: float = INSTANCE_IOU) -> dict[str, float]:
    """``ap50_frac`` and ``pq_frac`` of instance maps, matched at IoU ``threshold`` over all images together."""
    from stardist.matching import matching_dataset

    result = matching_dataset(list(truths), list(predicted), thresh=threshold, by_image=False, show_progress=False)
    return {f"ap{round(threshold * 100)}_frac": float(result.accuracy), "pq_frac": float(result.panoptic_quality)}


def instance_boxes(instances: np.ndarray) -> tuple[list[int], list[tuple[int, ...]]]:
    """Instance ids and their tight boxes ``(start_0, .., start_d, stop_0, .., stop_d)`` (stops exclusive)."""
    ids, boxes = [], []
    for instance_id, window in enumerate(ndimage.find_objects(instances), start=1):
        if window is not None:
            ids.append(instance_id)
            boxes.append(tuple(s.start for s in window) + tuple(s.stop for s in window))
    return ids, boxes


def box_dice(masks: np.ndarray, instances: np.ndarray, ids: Sequence[int]) -> list[float]:
    """Dice of each box-prompted mask against the true instance ``ids[i]`` it was prompted with."""
    scores = []
    for mask, instance_id in zip(masks, ids, strict=True):
        truth = instances == instance_id
        denominator = mask.sum() + truth.sum()
        scores.append(float(2.0 * np.logical_and(mask, truth).sum() / denominator) if denominator else 1.0)
    return scores
