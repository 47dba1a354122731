"""The segmentation track: train on the training images with the checkpoint chosen on the validation images,
segment every test image once, score it (``metrics.py``).

A job: ``build(dim=, in_channels=, classes=, **hparams)``, ``fit(train, val, seed)``, then per test image
either ``predict(image)`` (the model's label map; instances from the model or, if it gives none, the
connected components of each class) or, for a box-prompted model, ``predict_boxes(image, boxes)`` with one
box per true instance, exact and jittered (each side moved by up to 10 % of the box size, seeded), as MedSAM
is evaluated. Metrics on the ``test`` split: Dice, IoU, HD95, NSD (and per-class Dice), AP50 and PQ where
the dataset has instances, ``box_dice_frac`` / ``jittered_box_dice_frac`` for prompted models, and
``inference_ms`` per image (``box_inference_ms`` per box for prompted models; a cost, lower is better). The
record's extra holds the history and a PNG of the first test image (image, truth, prediction) that ``dig
bench`` writes beside the CSV for the leaderboard.

Datasets with the same ``training_key`` (fluo-nuclei-2d and stardist-nuclei: the same training and validation
images, two test sets) share one fit per (model, seed, settings) within a bench (``dig.tracks.shared_fit``);
such a record says ``training_reused`` and its ``train_s`` is the original fit's.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from dig.registry import Entry, Registry
from dig.tracks.base import JobOutcome, Metric, metric_unit, per_budget
from dig.tracks.segmentation.metrics import (
    box_dice,
    instance_boxes,
    instance_scores,
    instances_from_labels,
    semantic_scores,
)
from dig.tracks.segmentation.overlay import overlay_png
from dig.tracks.segmentation.protocol import SegmentationTask
from dig.tracks.shared_fit import fit_once, scheduled_cost

BOX_JITTER = 0.1
JITTER_SEED = 2024


def jitter_boxes(boxes: list[tuple[int, ...]], shape: tuple[int, ...], rng: np.random.Generator) -> list[tuple[int, ...]]:
    """Each box side moved by a uniform offset of up to ``BOX_JITTER`` times the box's extent on that axis,
    clipped to the image and kept at least one pixel wide."""
    dim, out = len(shape), []
    for box in boxes:
        starts, stops = np.array(box[:dim], float), np.array(box[dim:], float)
        extent = stops - starts
        starts = starts + rng.uniform(-BOX_JITTER, BOX_JITTER, dim) * extent
        stops = stops + rng.uniform(-BOX_JITTER, BOX_JITTER, dim) * extent
        starts = np.clip(np.round(starts), 0, np.array(shape) - 1).astype(int)
        stops = np.clip(np.round(stops), starts + 1, np.array(shape)).astype(int)
        out.append(tuple(starts.tolist()) + tuple(stops.tolist()))
    return out


def masks_to_maps(masks: np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Per-box masks -> (semantic map: object vs background, instance map: later boxes win overlaps)."""
    instances = np.zeros(shape, dtype=np.int32)
    for k, mask in enumerate(masks, start=1):
        instances[mask.astype(bool)] = k
    return (instances > 0).astype(np.int64), instances


class SegmentationTrack:
    name = "segmentation"
    method_kind = "model"
    default_datasets = ("fluo-nuclei-2d", "stardist-nuclei", "monai-synthetic-3d")
    figure_panels = "image · truth outlines (green) · prediction outlines (magenta), first test image"

    def prepare(self, dataset: Entry, budget: str, options: Mapping[str, Any]) -> None:
        dataset.obj.load()

    def table_note(self, dataset: Entry, budget: str) -> str:
        task = dataset.obj.load()
        settings = {"default": "unet, gvtnet, monai: width 16, 2 down-samplings, Dice + CE, 2D 300 steps of 8 patches "
                               "of 64^2, 3D 150 steps of 2 patches of 32^3; nnunet: the network, patch and batch of "
                               "nnU-Net's plan, 100 (2D) / 30 (3D) steps; medsam-lite: 400 steps of 4 windows x 8 "
                               "boxes; all far below the papers' schedules",
                    "smoke": "a few steps"}.get(budget, "")
        transfer = "; trained on simulated images, tested on a real one" if task.external_test else ""
        return "; ".join(part for part in (settings, "checkpoint chosen on validation Dice, test images read once; "
                                           "HD95 in pixels, empty predictions count as the image diagonal" + transfer,
                                           "mean over training seeds") if part)

    def unsuited(self, dataset: Entry, model: Entry, budget: str) -> str | None:
        task = dataset.obj.load()
        if model.meta.get("prompted") and task.test.instances is None:
            return f"{model.name} is prompted with instance boxes and {dataset.name} has no instance maps"
        dims = tuple(model.meta.get("dims", (2, 3)))
        if task.dim not in dims:
            return f"{model.name} segments {'/'.join(map(str, dims))}D images and {dataset.name} is {task.dim}D"
        return None

    def job_config(self, dataset: Entry, model: Entry, budget: str, options: Mapping[str, Any]) -> dict[str, Any]:
        task = dataset.obj.load()
        hparams = per_budget(model.meta, "hparams", budget)
        hparams = {**{k: v for k, v in hparams.items() if k not in ("2d", "3d")}, **hparams.get(f"{task.dim}d", {})}
        return {"budget": budget, "dim": task.dim, "classes": list(task.classes), "in_channels": task.in_channels,
                "images": [len(task.train), len(task.val), len(task.test)],
                "voxels": int(sum(image[0].size for image in task.train.images)), "hparams": hparams}

    def job_cost(self, registry: Registry, job) -> float:
        entry = registry.get("model", job.model, track=self.name)
        steps = job.config["hparams"].get("steps", 1)
        cost = float(entry.meta.get("relative_cost", 1.0)) * steps * (4.0 if job.config["dim"] == 3 else 1.0)
        return scheduled_cost(registry.get("dataset", job.dataset, track=self.name), cost)

    def run_job(self, registry: Registry, dataset: Entry, model: Entry, seed: int, config: Mapping[str, Any],
                on_epoch=None) -> JobOutcome:
        task = dataset.obj.load()
        method = model.obj(dim=task.dim, in_channels=task.in_channels, classes=len(task.classes), **config["hparams"])
        identity = [config["hparams"], task.dim, task.in_channels, len(task.classes)]
        method, history, train_s, reused = fit_once(dataset, model, seed, identity, method,
                                                    lambda: method.fit(task.train, task.val, seed, on_epoch))
        start = time.perf_counter()
        if getattr(method, "prompted", False):
            metrics, figure, inference_ms = _prompted_scores(method, task, seed)
        else:
            metrics, figure, inference_ms = _dense_scores(method, task)
        cost_name = "box_inference_ms" if getattr(method, "prompted", False) else "inference_ms"
        metrics.append(Metric("test", cost_name, inference_ms, "ms", False))
        eval_s = time.perf_counter() - start
        params = sum(p.numel() for p in method.parameters()) if callable(getattr(method, "parameters", None)) else 0
        extra = {"history": history, "figure_png": figure, "test_images": len(task.test),
                 "external_test": task.external_test, "training_reused": reused}
        return JobOutcome(metrics=metrics, epochs=int(history.get("steps", 0)), params=params, train_s=train_s,
                          eval_s=eval_s, extra=extra)


def _metrics(scores: Mapping[str, float]) -> list[Metric]:
    return [Metric("test", name, value, metric_unit(name), not name.startswith("hd95")) for name, value in scores.items()]


def _dense_scores(method, task: SegmentationTask) -> tuple[list[Metric], str, float]:
    labels, instances, times = [], [], []
    for image in task.test.images:
        began = time.perf_counter()
        prediction = method.predict(image)
        times.append(1000 * (time.perf_counter() - began))
        labels.append(prediction.labels)
        if task.test.instances is not None:
            instances.append(prediction.instances if prediction.instances is not None
                             else instances_from_labels(prediction.labels))
    scores = semantic_scores(labels, task.test.labels, task.classes)
    if task.test.instances is not None:
        scores |= instance_scores(instances, task.test.instances)
    truth = task.test.instances[0] if task.test.instances is not None else task.test.labels[0]
    shown = instances[0] if task.test.instances is not None else labels[0]
    return _metrics(scores), overlay_png(task.test.images[0], truth, shown), float(np.mean(times))


def _prompted_scores(method, task: SegmentationTask, seed: int) -> tuple[list[Metric], str, float]:
    rng = np.random.default_rng(JITTER_SEED + seed)
    labels, instances, exact, jittered, times = [], [], [], [], []
    for image, truth in zip(task.test.images, task.test.instances, strict=True):
        ids, boxes = instance_boxes(truth)
        began = time.perf_counter()
        masks = method.predict_boxes(image, boxes)
        times.append(1000 * (time.perf_counter() - began) / max(1, len(boxes)))
        exact += box_dice(masks, truth, ids)
        jittered += box_dice(method.predict_boxes(image, jitter_boxes(boxes, truth.shape, rng)), truth, ids)
        semantic, instance_map = masks_to_maps(masks, truth.shape)
        labels.append(semantic)
        instances.append(instance_map)
    scores = semantic_scores(labels, task.test.labels, task.classes)
    scores |= instance_scores(instances, task.test.instances)
    scores |= {"box_dice_frac": float(np.mean(exact)), "jittered_box_dice_frac": float(np.mean(jittered))}
    return _metrics(scores), overlay_png(task.test.images[0], task.test.instances[0], instances[0]), float(np.mean(times))
