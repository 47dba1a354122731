"""The generation track: fit a generator on a dataset's training SMILES, sample, score with MOSES's metrics.

Every job: ``build(vocabulary, max_atoms, **hparams)``, ``fit(train, valid, seed)``, ``sample(n, seed)`` with
n = ``SAMPLES[budget]`` (10,000 at default, as MOSES and GraphDF report), then ``generation_metrics`` against
the whole train split (novelty) and the dataset's test references. A metric that is undefined for a sample
(e.g. Scaf when no generated molecule has a two-ring scaffold) is left out of the record and named in its
``extra``; a sample with no valid molecule records validity 0 and says so.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

from dig.registry import Entry, Registry
from dig.tracks.base import JobOutcome, Metric, metric_unit, per_budget
from dig.tracks.generation.metrics import generation_metrics
from dig.tracks.generation.optimisation import (
    composition_metrics,
    constrained_optimisation_metrics,
    property_optimisation_metrics,
    top_molecules,
)

SAMPLES = {"smoke": 200, "default": 10_000, "paper": 30_000}
# Optimisation tasks: the generator's dynamics are decoded every ``RECORD_EVERY`` steps (DIG decodes every step).
RECORD_EVERY = {"smoke": 5, "default": 10, "paper": 1}
# Composition: molecules drawn from the composed generator and from each single one (ours: GraphEBM's Langevin
# sampling of 10,000 MOSES-size molecules takes about 6 CPU-minutes, three sets of them a job).
COMPOSITION_SAMPLES = {"smoke": 50, "default": 1000, "paper": 10_000}
GOAL_DIRECTED_TASKS = ("property", "constrained")  # what meta goal_directed=True offers unless goal_directed_tasks says
LOWER_IS_BETTER = ("fcd_",)


class GenerationTrack:
    name = "generation"
    method_kind = "model"
    default_datasets = ("qm9-smiles", "moses")

    def prepare(self, dataset: Entry, budget: str, options: Mapping[str, Any]) -> None:
        dataset.obj.load(budget)
        dataset.obj.references(budget)

    def unsuited(self, dataset: Entry, model: Entry, budget: str) -> str | None:
        """A model may name budgets it does not run at (meta ``unsuited_budgets``: budget -> reason)."""
        reason = (model.meta.get("unsuited_budgets") or {}).get(budget)
        if reason:
            return f"{model.name} does not run at the {budget} budget: {reason}"
        task = dataset.meta.get("task")
        if task and (not model.meta.get("goal_directed")
                     or task not in model.meta.get("goal_directed_tasks", GOAL_DIRECTED_TASKS)):
            missing = model.meta.get("goal_directed_missing", "it has no goal-directed training")
            return f"{dataset.name} is an optimisation task and {model.name} cannot optimise here: {missing}"
        return None

    def job_config(self, dataset: Entry, model: Entry, budget: str, options: Mapping[str, Any]) -> dict[str, Any]:
        data = dataset.obj.load(budget)
        config = {"budget": budget, "samples": SAMPLES[budget], "train_molecules": len(data.train),
                  "hparams": per_budget(model.meta, "hparams", budget)}
        if dataset.meta.get("task") == "composition":
            config.update(task="composition", samples=COMPOSITION_SAMPLES[budget])
        elif dataset.meta.get("task"):
            config.update(task=dataset.meta["task"], starts=len(dataset.obj.starts(budget)),
                          record_every=RECORD_EVERY[budget])
        return config

    def job_cost(self, registry: Registry, job) -> float:
        """For longest-first scheduling: samples x the model's ``relative_cost`` x the dataset's largest molecule
        (a job's time grows with it: on 2026-12-07 a MOSES job, 27 atoms, took 4.2x a QM9 job, 9 atoms, for
        train-sampler, 4.2x for GraphEBM and 5-6x for the flows)."""
        entry = registry.get("model", job.model, track=self.name)
        max_atoms = registry.get("dataset", job.dataset, track=self.name).obj.load(job.config["budget"]).max_atoms
        return float(job.config["samples"]) * float(entry.meta.get("relative_cost", 1.0)) * max_atoms

    def run_job(self, registry: Registry, dataset: Entry, model: Entry, seed: int, config: Mapping[str, Any],
                on_epoch=None) -> JobOutcome:
        if config.get("task") == "composition":
            return self._run_composition(dataset, model, seed, config, on_epoch)
        if config.get("task"):
            return self._run_optimisation(dataset, model, seed, config, on_epoch)
        data = dataset.obj.load(config["budget"])
        generator = model.obj(data.vocabulary, data.max_atoms, **config["hparams"])
        start = time.perf_counter()
        history = generator.fit(data.train, data.valid, seed, on_epoch) or {}
        train_s = time.perf_counter() - start
        start = time.perf_counter()
        samples = generator.sample(int(config["samples"]), seed)
        sample_s = time.perf_counter() - start
        if len(samples) != config["samples"]:
            raise ValueError(f"{model.name}.sample({config['samples']}) returned {len(samples)} SMILES")
        start = time.perf_counter()
        values = generation_metrics(samples, set(data.train_all), dataset.obj.references(config["budget"]))
        eval_s = time.perf_counter() - start
        undefined = sorted(name for name, value in values.items() if not math.isfinite(value))
        metrics = [Metric("test", name, float(value), metric_unit(name), not name.startswith(LOWER_IS_BETTER))
                   for name, value in values.items() if name not in undefined]
        for name, value in (getattr(generator, "last_sample", None) or {}).items():  # e.g. validity_without_check_frac
            metrics.append(Metric("test", name, float(value), metric_unit(name), True))
        metrics.append(Metric("test", "sampling_s", sample_s, "s", False))
        extra: dict[str, Any] = {"history": history, "examples": samples[:5], "undefined_metrics": undefined}
        if values["validity_frac"] == 0.0:
            extra["reason"] = "no valid molecule among the samples: the other metrics are undefined"
        params = sum(p.numel() for p in generator.parameters()) if callable(getattr(generator, "parameters", None)) else 0
        return JobOutcome(metrics=metrics, epochs=int(history.get("epochs", 0)), params=params, train_s=train_s,
                          eval_s=eval_s, extra=extra)

    def _run_optimisation(self, dataset: Entry, model: Entry, seed: int, config: Mapping[str, Any],
                          on_epoch=None) -> JobOutcome:
        """Goal-directed ``fit_goal_directed(train, values, seed)``, then ``optimise(starts, seed, record_every,
        target, task)`` (candidate SMILES per start; ``task`` "property" or "constrained");
        scored by ``optimisation.py``. ``oracle_calls_count``: the distinct molecules the evaluator scored to pick
        the result (what an online oracle would have been asked) plus the oracle calls the generator made while
        optimising (its ``oracle_calls``, e.g. GraphDF's PPO rewards); the training labels come with the dataset."""
        task, budget = dataset.obj, config["budget"]
        data = task.load(budget)
        generator = model.obj(data.vocabulary, data.max_atoms, **config["hparams"])
        start = time.perf_counter()
        history = generator.fit_goal_directed(data.train, task.train_values(budget).tolist(), seed, on_epoch) or {}
        train_s = time.perf_counter() - start
        starts = task.starts(budget)
        start = time.perf_counter()
        candidates = generator.optimise(starts, seed, record_every=int(config["record_every"]), target=task.target,
                                        task=task.task)
        optimise_s = time.perf_counter() - start
        if len(candidates) != len(starts):
            raise ValueError(f"{model.name}.optimise({len(starts)} starts) returned {len(candidates)} candidate lists")
        start = time.perf_counter()
        spent = int(getattr(generator, "oracle_calls", 0) or 0)
        extra: dict[str, Any] = {"history": history, "train_labels": len(data.train), "optimiser_oracle_calls": spent}
        if getattr(generator, "finetune_history", None):
            extra["finetune_history"] = generator.finetune_history
        if task.task == "property":
            pooled = list(dict.fromkeys(s for found in candidates for s in found))
            values, notes = property_optimisation_metrics(pooled, len(pooled) + spent, (task.target,), data.train_all)
            extra["undefined_metrics"] = notes
            extra["top_molecules"] = top_molecules(pooled, task.target)
        else:
            values = constrained_optimisation_metrics(starts, candidates)
            values["oracle_calls_count"] = float(sum(len(found) for found in candidates) + spent)
        eval_s = time.perf_counter() - start
        metrics = [Metric("test", name, float(value), metric_unit(name), not name.startswith("oracle_"))
                   for name, value in values.items()]
        metrics.append(Metric("test", "optimisation_s", optimise_s, "s", False))
        params = sum(p.numel() for p in generator.parameters()) if callable(getattr(generator, "parameters", None)) else 0
        return JobOutcome(metrics=metrics, epochs=int(history.get("epochs", 0)), params=params, train_s=train_s,
                          eval_s=eval_s, extra=extra)


    def _run_composition(self, dataset: Entry, model: Entry, seed: int, config: Mapping[str, Any],
                         on_epoch=None) -> JobOutcome:
        """``fit_composed(train, {property: values}, seed)``, then ``sample_composed(samples, seed)`` (SMILES per
        sample set: "composed" and, for a model that composes, "<property>_only"), scored by
        ``composition_metrics`` against the properties' training medians."""
        task, budget = dataset.obj, config["budget"]
        data = task.load(budget)
        generator = model.obj(data.vocabulary, data.max_atoms, **config["hparams"])
        values = {name: column.tolist() for name, column in task.train_values(budget).items()}
        start = time.perf_counter()
        history = generator.fit_composed(data.train, values, seed, on_epoch) or {}
        train_s = time.perf_counter() - start
        start = time.perf_counter()
        samples = generator.sample_composed(int(config["samples"]), seed)
        sample_s = time.perf_counter() - start
        if "composed" not in samples or any(len(found) != config["samples"] for found in samples.values()):
            raise ValueError(f"{model.name}.sample_composed({config['samples']}) must return that many SMILES per "
                             f"set, 'composed' among them; got {({k: len(v) for k, v in samples.items()})}")
        start = time.perf_counter()
        thresholds = task.thresholds(budget)
        values_out, notes = composition_metrics(samples, thresholds)
        eval_s = time.perf_counter() - start
        metrics = [Metric("test", name, float(value), metric_unit(name), True) for name, value in values_out.items()]
        metrics.append(Metric("test", "sampling_s", sample_s, "s", False))
        extra: dict[str, Any] = {"history": history, "thresholds": thresholds, "undefined_metrics": notes,
                                 "examples": {name: found[:5] for name, found in samples.items()}}
        params = sum(p.numel() for p in generator.parameters()) if callable(getattr(generator, "parameters", None)) else 0
        return JobOutcome(metrics=metrics, epochs=0, params=params, train_s=train_s, eval_s=eval_s, extra=extra)
