"""The self-supervision track: graphs (pre-train on unlabelled graphs, freeze, probe) and images
(self-supervised denoising, scored by PSNR/SSIM against clean images: ``denoising/``).

Every job: ``build(in_features, **hparams)`` (a model's hparams may differ per level: ``{"graph": {...},
"node": {...}}`` under each budget), ``pretrain(graphs, seed)`` on all of the dataset's graphs without
labels, ``embed(graphs)``, then the probe of the dataset's level (``probe.py``):
- graph level: nested 10-fold CV with the job's seed for the outer split; the record holds the mean over
  outer folds on the ``test`` split; fold scores, their std and the chosen regularisation go to ``extra``;
- node level: C on the validation nodes (recorded on the ``val`` split), the test nodes scored once.
An image-level job (``_run_image_job``) fits the denoiser on the training images (noisy only, unless the
method ``uses_clean``), its checkpoint chosen on the validation images, then scores each noise condition's
test images once: ``psnr_dB`` and ``ssim_index`` (means over conditions) and, where a dataset has several
noise conditions, ``psnr_<condition>_dB`` and ``ssim_<condition>_index``; the record keeps a picture of the last
(noisiest) condition's first test image: noisy | denoised | clean (``denoising_figure``).
A model runs only on datasets of a level it lists in its ``levels`` meta; the ``supervised`` row
(``uses_labels``) alone is also given labels: at node level the training and validation labels, never the test
labels; at graph level it trains once per outer fold of the probe's split on that fold's training graphs and
predicts its test graphs once.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from dig.figures import middle_slice, panels_png, to_rgb
from dig.registry import Entry, Registry
from dig.tracks.base import JobOutcome, Metric, metric_unit, per_budget
from dig.tracks.shared_fit import fit_once, kept_in_bench, scheduled_cost
from dig.tracks.ssl.denoising.metrics import denoising_scores
from dig.tracks.ssl.probe import probe, probe_nodes
from dig.tracks.ssl.protocol import ImageTask, Supervision

PROBE_FOLDS = 10


class SSLTrack:
    name = "ssl"
    method_kind = "model"
    figure_panels = "noisy · denoised · clean, central 128^2 crop of the noisiest condition's first test image"
    default_datasets = ("solubility", "freesolv", "qm9-gap", "moses-to-solubility", "moses-to-freesolv",
                        "csbm-homophilous", "csbm-heterophilous", "karate-club",
                        "fluo-sim-2d", "natural-gray", "stardist-nuclei")

    def prepare(self, dataset: Entry, budget: str, options: Mapping[str, Any]) -> None:
        """Build the dataset's caches once in the bench process, before parallel jobs would race to build them
        (a transfer set's pre-training graphs included)."""
        dataset.obj.load()
        if _is_transfer(dataset):
            dataset.obj.pretraining_graphs()

    def table_note(self, dataset: Entry, budget: str) -> str:
        """What the leaderboard's table for ``dataset`` measured."""
        level = getattr(dataset.obj, "level", "graph")
        if level == "image":
            settings = ("a 2-level U-Net of width 16 (GVTNet: the same with GVTOs), 200 steps of 8 patches of 48^2, "
                        "far fewer than the papers' 50,000 steps of 64" if budget == "default" else "")
            return "; ".join(part for part in (settings, "checkpoint chosen on validation images by each method's "
                                               "own loss (clean targets only for noise2true and gvtnet); PSNR and "
                                               "SSIM of the test images, mean over training seeds") if part)
        if level == "node":
            settings = "the papers' Cora settings (not reduced)" if budget != "smoke" else "a few epochs"
            return (f"node level, {settings}; logistic probe on the training nodes, C on the validation nodes, "
                    "test nodes read once; supervised sees the training labels only; mean over pre-training seeds")
        settings = ("GIN 3 x 128 (MVGRL: two GCNs of that size) pre-trained 100 steps of 128 graphs, fewer than the "
                    "papers' 20 epochs; supervised: the GIN trained 100 steps per outer fold, step chosen on a "
                    "validation tenth of the fold" if budget == "default" else "")
        transfer = (f"transfer: pre-trained on a fixed sample of MOSES training molecules, probed on "
                    f"{dataset.obj.target_name} with its folds" if _is_transfer(dataset) else "")
        return "; ".join(part for part in (transfer, settings, "linear probe by nested 10-fold CV (C or alpha chosen "
                                           "on training folds), mean over outer folds and pre-training seeds") if part)

    def unsuited(self, dataset: Entry, model: Entry, budget: str) -> str | None:
        level = getattr(dataset.obj, "level", "graph")
        levels = tuple(model.meta.get("levels", ("graph",)))
        if level not in levels:
            return f"{model.name} is a {'/'.join(levels)}-level method and {dataset.name} a {level}-level dataset"
        if _is_transfer(dataset) and not model.meta.get("pretrains", True):
            return (f"{model.name} does not pre-train, so its row on {dataset.name} would repeat its row on "
                    f"{dataset.obj.target_name}")
        return None

    def job_config(self, dataset: Entry, model: Entry, budget: str, options: Mapping[str, Any]) -> dict[str, Any]:
        data = dataset.obj.load()
        hparams = per_budget(model.meta, "hparams", budget)
        if data.level in hparams:
            hparams = dict(hparams[data.level])
        if data.level == "image":
            return {"budget": budget, "level": "image", "dim": data.dim, "images": len(data.train_noisy),
                    "pixels": int(sum(image.size for image in data.train_noisy)), "conditions": list(data.conditions),
                    "hparams": hparams}
        config = {"budget": budget, "level": data.level, "graphs": len(data.graphs), "task": data.task,
                  "hparams": hparams}
        if data.level == "graph":
            config["probe_folds"] = PROBE_FOLDS
        else:
            config["nodes"] = int(data.x.size(0))
        return config

    def job_cost(self, registry: Registry, job) -> float:
        entry = registry.get("model", job.model, track=self.name)
        if job.config.get("level") == "image":
            cost = float(entry.meta.get("relative_cost", 1.0)) * 15.0 * job.config["hparams"].get("steps", 20)
            return scheduled_cost(registry.get("dataset", job.dataset, track=self.name), cost)
        size = job.config.get("nodes", job.config["graphs"])
        return float(size) * float(entry.meta.get("relative_cost", 1.0))

    def run_job(self, registry: Registry, dataset: Entry, model: Entry, seed: int, config: Mapping[str, Any],
                on_epoch=None) -> JobOutcome:
        data = dataset.obj.load()
        if data.level == "image":
            return _run_image_job(data, dataset, model, seed, config, on_epoch)
        method = model.obj(data.in_features, **config["hparams"])
        if getattr(method, "uses_labels", False) and data.level == "graph":
            return _run_supervised_graph_job(method, data, seed, config, on_epoch)
        start = time.perf_counter()
        reused, pretrain_s = False, 0.0
        if getattr(method, "uses_labels", False):
            hidden = data.labels.copy()
            hidden[data.test] = -1  # the test labels never leave the probe
            supervision = Supervision(hidden, data.train, data.val)
            history = method.pretrain(data.graphs, seed, on_epoch, supervision=supervision) or {}
        elif _is_transfer(dataset):  # pre-trained on other molecules than the probed ones
            method, history, pretrain_s, reused = fit_once(
                dataset, model, seed, [config["hparams"], data.in_features], method,
                lambda: method.pretrain(dataset.obj.pretraining_graphs(), seed, on_epoch))
        else:
            history = method.pretrain(data.graphs, seed, on_epoch) or {}
        train_s = pretrain_s if reused else time.perf_counter() - start  # a reused fit: the seconds it took
        start = time.perf_counter()
        embeddings = method.embed(data.graphs)
        if data.level == "node":
            score = probe_nodes(embeddings, data.labels, data.train, data.val, data.test)
        else:
            score = probe(embeddings, data.labels, data.task, seed, unit=data.unit,
                          folds=int(config["probe_folds"]))
        eval_s = time.perf_counter() - start
        higher = data.task == "classification"
        metrics = [Metric("test", score.metric, score.mean, metric_unit(score.metric), higher)]
        if score.validation is not None:
            metrics.insert(0, Metric("val", score.metric, score.validation, metric_unit(score.metric), higher))
        extra = {"history": history, "fold_scores": list(score.folds), "fold_std": score.std,
                 "chosen_regularisation": list(score.chosen), "probe_unconverged_fits": score.unconverged_fits,
                 "embedding_dim": int(embeddings.shape[1]),
                 "deduplication": data.deduplication, "pretraining_reused": reused}
        return JobOutcome(metrics=metrics, epochs=int(history.get("epochs", 0)), params=_parameters(method), train_s=train_s,
                          eval_s=eval_s, extra=extra)


def _is_transfer(dataset: Entry) -> bool:
    """A transfer dataset pre-trains on other graphs than it probes (``pretraining_graphs()``)."""
    return callable(getattr(dataset.obj, "pretraining_graphs", None))


def _run_supervised_graph_job(method: Any, data, seed: int, config: Mapping[str, Any], on_epoch) -> JobOutcome:
    """The graph-level supervised row: one training per outer fold of the probe's split, each test fold
    predicted once (``SupervisedGraph.cross_validate``); recorded like a probe score."""
    start = time.perf_counter()
    score = method.cross_validate(data.graphs, data.labels, data.task, seed, folds=int(config["probe_folds"]),
                                  unit=data.unit, on_epoch=on_epoch)
    train_s = time.perf_counter() - start
    metrics = [Metric("test", score.metric, score.mean, metric_unit(score.metric), data.task == "classification")]
    extra = {"fold_scores": list(score.folds), "fold_std": score.std, "chosen_step": list(score.chosen),
             "deduplication": data.deduplication}
    return JobOutcome(metrics=metrics, epochs=0, params=_parameters(method), train_s=train_s, eval_s=0.0, extra=extra)


def _parameters(method: Any) -> int:
    """Trainable size of a method: its torch parameters, 0 for the untrained ones (classical denoisers)."""
    return sum(p.numel() for p in method.parameters()) if callable(getattr(method, "parameters", None)) else 0


FIGURE_CROP = 128


def denoising_figure(noisy: np.ndarray, denoised: np.ndarray, clean: np.ndarray, dim: int) -> str:
    """PNG of the central ``FIGURE_CROP``-sided crop (3D: of the middle slice) of noisy | denoised | clean, all
    three on the clean crop's display range, so that they compare pixel for pixel."""
    crops = []
    for image in (noisy, denoised, clean):
        image = middle_slice(image, dim)
        origin = [max(0, (side - FIGURE_CROP) // 2) for side in image.shape]
        crops.append(image[origin[0]:origin[0] + FIGURE_CROP, origin[1]:origin[1] + FIGURE_CROP])
    low, high = np.percentile(crops[2], (1.0, 99.5))
    return panels_png([to_rgb(crop, low, high) for crop in crops])


def _run_image_job(data: ImageTask, dataset: Entry, model: Entry, seed: int, config: Mapping[str, Any],
                   on_epoch) -> JobOutcome:
    """Fit (once per bench where the dataset shares its training, ``fit_once``), denoise every test image once,
    score it. A ``seed_independent`` method (the classical rows: no training, no randomness) is scored once per
    bench and the same scores are recorded for every seed, marked ``scores_reused``."""
    method = model.obj(dim=data.dim, **config["hparams"])

    def fit() -> dict:
        if getattr(method, "uses_clean", False):
            return method.fit(data.train_noisy, seed, on_epoch, clean=data.train_clean, val_noisy=data.val_noisy,
                              val_clean=data.val_clean)
        return method.fit(data.train_noisy, seed, on_epoch, val_noisy=data.val_noisy)

    method, history, train_s, reused = fit_once(dataset, model, seed, [config["hparams"], data.dim], method, fit)
    if getattr(method, "seed_independent", False):
        (metrics, scored, eval_s), built = kept_in_bench(f"scored/{model.name}",
                                                          [dataset.name, model.name, config["hparams"], data.dim],
                                                          lambda: _denoising_results(method, data))
    else:
        (metrics, scored, eval_s), built = _denoising_results(method, data), True
    extra = {"history": history, **scored, "training_reused": reused, "scores_reused": not built}
    return JobOutcome(metrics=metrics, epochs=int(history.get("steps", 0)), params=_parameters(method), train_s=train_s,
                      eval_s=eval_s, extra=extra)


def _denoising_results(method: Any, data: ImageTask) -> tuple[list[Metric], dict[str, Any], float]:
    """(metrics, the record's scoring extras, seconds): every test image of every condition denoised once;
    PSNR/SSIM per condition and their means; a picture of the noisiest condition's first test image."""
    start = time.perf_counter()
    metrics, per_condition, inference_ms, last_prediction = [], {}, [], {}
    for condition, (noisy, clean) in data.test.items():
        predictions = []
        for image in noisy:
            began = time.perf_counter()
            predictions.append(method.denoise(image))
            inference_ms.append(1000 * (time.perf_counter() - began))
        last_prediction[condition] = predictions[0]
        scores = denoising_scores(predictions, clean, data.data_range)
        per_condition[condition] = scores
        if len(data.test) > 1:
            metrics += [Metric("test", f"psnr_{condition}_dB", scores["psnr_dB"], "dB", True),
                        Metric("test", f"ssim_{condition}_index", scores["ssim_index"], "index", True)]
    metrics = [Metric("test", "psnr_dB", float(np.mean([s["psnr_dB"] for s in per_condition.values()])), "dB", True),
               Metric("test", "ssim_index", float(np.mean([s["ssim_index"] for s in per_condition.values()])),
                      "index", True)] + metrics
    condition = data.conditions[-1]
    figure_noisy, figure_clean = data.test[condition]
    scored = {"data_range": data.data_range, "inference_ms_per_image": float(np.mean(inference_ms)),
              "test_images": {c: len(noisy) for c, (noisy, _) in data.test.items()},
              "figure_png": denoising_figure(figure_noisy[0], last_prediction[condition], figure_clean[0], data.dim),
              "figure_condition": condition}
    return metrics, scored, time.perf_counter() - start
