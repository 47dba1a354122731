"""The self-supervision track (graph half): pre-train on a dataset's unlabelled graphs, freeze, probe.

Every job: ``build(in_features, **hparams)``, ``pretrain(graphs, seed)`` on all of the dataset's graphs
without labels, ``embed(graphs)``, then ``probe`` (nested 10-fold CV, hyper-parameters on training folds
only; ``probe.py``) with the job's seed for the outer split. The record holds the probe's mean over outer
folds on the ``test`` split; fold scores, their std and the chosen regularisation per fold go to ``extra``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from dig.registry import Entry, Registry
from dig.tracks.base import JobOutcome, Metric, metric_unit, per_budget
from dig.tracks.ssl.probe import probe

PROBE_FOLDS = 10


class SSLTrack:
    name = "ssl"
    method_kind = "model"
    default_datasets = ("solubility", "freesolv")

    def prepare(self, dataset: Entry, budget: str, options: Mapping[str, Any]) -> None:
        dataset.obj.load()

    def job_config(self, dataset: Entry, model: Entry, budget: str, options: Mapping[str, Any]) -> dict[str, Any]:
        data = dataset.obj.load()
        return {"budget": budget, "graphs": len(data.graphs), "task": data.task, "probe_folds": PROBE_FOLDS,
                "hparams": per_budget(model.meta, "hparams", budget)}

    def job_cost(self, registry: Registry, job) -> float:
        entry = registry.get("model", job.model, track=self.name)
        return float(job.config["graphs"]) * float(entry.meta.get("relative_cost", 1.0))

    def run_job(self, registry: Registry, dataset: Entry, model: Entry, seed: int, config: Mapping[str, Any],
                on_epoch=None) -> JobOutcome:
        data = dataset.obj.load()
        method = model.obj(data.in_features, **config["hparams"])
        start = time.perf_counter()
        history = method.pretrain(data.graphs, seed, on_epoch) or {}
        train_s = time.perf_counter() - start
        start = time.perf_counter()
        embeddings = method.embed(data.graphs)
        score = probe(embeddings, data.labels, data.task, seed, unit=data.unit, folds=int(config["probe_folds"]))
        eval_s = time.perf_counter() - start
        higher = data.task == "classification"
        metrics = [Metric("test", score.metric, score.mean, metric_unit(score.metric), higher)]
        extra = {"history": history, "fold_scores": list(score.folds), "fold_std": score.std,
                 "chosen_regularisation": list(score.chosen), "embedding_dim": int(embeddings.shape[1]),
                 "deduplication": data.deduplication}
        params = sum(p.numel() for p in method.parameters()) if callable(getattr(method, "parameters", None)) else 0
        return JobOutcome(metrics=metrics, epochs=int(history.get("epochs", 0)), params=params, train_s=train_s,
                          eval_s=eval_s, extra=extra)
