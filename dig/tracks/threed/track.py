"""The 3D molecular graphs track (CLI id ``3d``): property prediction on QM9 and friends."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import asdict, replace
from typing import Any

import numpy as np
import torch

from dig.errors import DataError, DigError, UnknownNameError
from dig.registry import Entry, Registry
from dig.tracks.base import JobOutcome, Metric, metric_unit, per_budget
from dig.tracks.threed.cost import CostMeasurement, dataset_kind, declared_cost, measure_relative_cost
from dig.tracks.threed.evaluators import force_mae
from dig.tracks.threed.train import (
    MoleculeLoader,
    TrainConfig,
    count_parameters,
    energy_offset,
    fit,
    predict,
    scored_std,
    target_columns,
    target_stats,
)
from dig.tracks.threed.validate import dataset_problems

TRAIN_CONFIGS: dict[str, TrainConfig] = {
    "smoke": TrainConfig(epochs=2, batch_size=32, lr=1e-3),
    # SchNet-equivalent epochs: 4 (5 until 2026-12-07, when the track's wall time was brought under 30 minutes)
    "default": TrainConfig(epochs=4, batch_size=32, lr=1e-3, warmup_epochs=0.4),
    # DIG / SphereNet protocol: Adam, lr 5e-4 halved every 100 epochs, batch 32, 1000 epochs (GPU scale).
    "paper": TrainConfig(epochs=1000, batch_size=32, lr=5e-4, schedule="step", step_epochs=100, gamma=0.5),
}


# Budgets in which every model gets the same CPU time on a dataset: the dataset's "train" epochs and warm-up
# are SchNet-equivalent, and a model with ``relative_cost`` c (its CPU time per molecule over SchNet's, measured
# at the default sizes) trains for max(min_epochs, epochs / c) epochs, a fraction of an epoch included (its
# cosine schedule and warm-up shrink with it); ``min_epochs`` (dataset, default 0: none) is a floor below which
# a model could not learn the task at all, which buys it more time than the others. The paper budget trains
# everyone equally many epochs.
EQUAL_TIME_BUDGETS = ("smoke", "default")
# Budgets that train one model per target, as the papers do (the others train every target jointly).
PER_TARGET_BUDGETS = ("paper",)


class ThreeDTrack:
    name = "3d"
    default_datasets = ("qm9", "xtb-aspirin", "xtb-ethanol")

    def __init__(self, registry: Registry | None = None) -> None:
        self.registry = registry  # where it is registered: checks the dataset names in models' relative_cost

    def prepare(self, dataset: Entry, budget: str, options: Mapping[str, Any]) -> None:
        """Build or read the dataset, then check it (``validate``) before any job trains on it."""
        problems = self.validate(dataset, budget)
        if problems:
            raise DataError("; ".join(problems) + f" (dig data validate {dataset.name} lists every problem)")

    def validate(self, dataset: Entry, budget: str) -> list[str]:
        """Every problem of the dataset for ``budget`` (empty when it is fine); see ``validate.py``."""
        return dataset_problems(dataset, budget)

    def unsuited(self, dataset: Entry, model: Entry, budget: str) -> str | None:
        """Why ``model`` does not apply to ``dataset``: its ``dataset_kinds`` meta lists the kinds it is meant for
        ("energy", "forces"; see ``dataset_kind``)."""
        kinds = model.meta.get("dataset_kinds")
        kind = dataset_kind(dataset, budget)
        if kinds is not None and kind not in kinds:
            return f"it is meant for {' and '.join(kinds)} datasets and {dataset.name} is a{'n' if kind == 'energy' else ''} {kind} dataset"
        return None

    def table_note(self, dataset: Entry, budget: str) -> str:
        """How the leaderboard's table for ``dataset`` was trained, when that differs from the papers."""
        reduced = ("reduced training sets, model sizes and epochs, equal CPU time per model: every model is "
                   "undertrained" if budget == "default" else "")
        protocol = self._target_note(dataset, budget)
        return "; ".join(part for part in (reduced, protocol) if part)

    def _target_note(self, dataset: Entry, budget: str) -> str:
        targets = list(dataset.obj.default_targets())
        if len(targets) > 1 and budget in PER_TARGET_BUDGETS:
            return f"one model per target, as in the papers ({', '.join(targets)})"
        if len(targets) > 1:
            return (f"joint, {len(targets)} targets: one model per seed predicts {', '.join(targets)} together (the "
                    f"papers train one model per target; --targets {targets[0]} trains one alone)")
        return ""

    def _targets(self, dataset: Entry, options: Mapping[str, Any]) -> list[str]:
        targets = list(options.get("targets") or dataset.obj.default_targets())
        try:
            dataset.obj.load().target_index(targets)
        except UnknownNameError as exc:
            raise UnknownNameError(f"dataset {dataset.name!r}: {exc} (pick the datasets that have them with "
                                   f"--datasets, e.g. --datasets qm9)") from exc
        return targets

    def job_config(self, dataset: Entry, model: Entry, budget: str, options: Mapping[str, Any]) -> dict[str, Any]:
        if budget not in TRAIN_CONFIGS:
            raise DigError(f"unknown budget {budget!r}; use one of {', '.join(TRAIN_CONFIGS)}")
        molecules = dataset.obj.load()
        split = dataset.obj.split(budget, len(molecules))
        dataset_train = per_budget(dataset.meta, "train", budget)
        min_epochs = float(dataset_train.pop("min_epochs", 0))
        train = replace(TRAIN_CONFIGS[budget], **dataset_train)
        known = self.registry.names("dataset", self.name) if self.registry is not None else (dataset.name,)
        cost = declared_cost(model, dataset_kind(dataset, budget), dataset.name, known)
        if budget in EQUAL_TIME_BUDGETS:
            epochs = max(min_epochs, train.epochs / cost)
            train = replace(train, epochs=round(epochs, 4), warmup_epochs=round(train.warmup_epochs * epochs / train.epochs, 4))
        train = replace(train, **per_budget(model.meta, "train", budget))
        targets = self._targets(dataset, options)
        config = {
            "budget": budget,
            "targets": targets,
            "split": {part: int(len(idx)) for part, idx in split.items()},
            "train": asdict(train),
            "hparams": per_budget(model.meta, "hparams", budget),
            "evaluator": dataset.meta.get("evaluator", "mae"),
            "relative_cost": cost,
        }
        if budget in PER_TARGET_BUDGETS and len(targets) > 1:
            config["target_training"] = "per-target"
        return config

    def measure_cost(self, registry: Registry, model: str, dataset: str) -> CostMeasurement:
        """``relative_cost`` of ``model`` on ``dataset`` at the default budget's sizes and batch size."""
        entry = registry.get("dataset", dataset, track=self.name)
        batch_size = per_budget(entry.meta, "train", "default").get("batch_size", TRAIN_CONFIGS["default"].batch_size)
        return measure_relative_cost(registry, model, dataset, batch_size=int(batch_size))

    def job_cost(self, registry: Registry, job) -> float:
        """Rough CPU time of ``job`` (for longest-first scheduling): molecule passes x atoms x model cost, where a
        training pass counts 1 (3 with forces) and an evaluation pass (validation after every epoch, validation
        and test at the end) 1/3 (1 with forces)."""
        molecules = registry.get("dataset", job.dataset, track=self.name).obj.load()
        train, split = job.config["train"], job.config["split"]
        forces = train["forces_weight"] > 0
        evaluated = split["valid"] * (math.ceil(train["epochs"]) + 1) + split["test"]
        passes = split["train"] * train["epochs"] * (3.0 if forces else 1.0) + evaluated * (1.0 if forces else 1 / 3)
        return passes * int(molecules.ptr[-1]) / max(len(molecules), 1) * job.config.get("relative_cost", 1.0)

    def run_job(
        self,
        registry: Registry,
        dataset: Entry,
        model: Entry,
        seed: int,
        config: Mapping[str, Any],
        on_epoch=None,
    ) -> JobOutcome:
        molecules = dataset.obj.load()
        split = dataset.obj.split(config["budget"], len(molecules))
        columns, targets = target_columns(molecules, config["targets"])
        targets = tuple(replace(t, dataset_std=std) for t, std in zip(targets, scored_std(molecules, columns), strict=True))
        train_config = TrainConfig(**config["train"])
        evaluator = registry.get("evaluator", config["evaluator"], track=self.name)

        with_forces = train_config.forces_weight > 0
        # the paper budget trains one model per target, as the papers do; other budgets one model for all
        groups = [[c] for c in columns] if config.get("target_training") == "per-target" else [columns]
        parts: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]]] = {"valid": [], "test": []}
        results, params, offsets = [], 0, []
        eval_s = 0.0
        for group_index, group in enumerate(groups):
            torch.manual_seed(seed)
            np.random.seed(seed)
            stats, loss_scale = target_stats(molecules, split["train"], group)
            net = model.obj(stats, **config["hparams"])
            loaders = {
                part: MoleculeLoader(
                    molecules, idx, group,
                    train_config.batch_size if part == "train" else train_config.eval_batch_size,
                    shuffle=part == "train", seed=seed,
                )
                for part, idx in split.items()
            }
            progress = None if on_epoch is None else _shifted(on_epoch, group_index, len(groups), train_config.epochs)
            results.append(fit(net, loaders["train"], loaders["valid"], loss_scale, train_config, model.name, progress))
            params += count_parameters(net)
            start = time.perf_counter()
            offsets.append(energy_offset(net, loaders["train"]) if with_forces else 0.0)
            for part in ("valid", "test"):  # the test split is read once, at the selected epoch
                pred, ref = predict(net, loaders[part], with_forces, offsets[-1])
                parts[part].append((pred.y, ref.y, pred.forces, ref.forces))
            eval_s += time.perf_counter() - start

        start = time.perf_counter()
        metrics: list[Metric] = []
        for part, outputs in parts.items():
            pred_y, ref_y = (np.concatenate([o[k] for o in outputs], axis=1) for k in (0, 1))
            values = dict(evaluator.obj(pred_y, ref_y, targets))
            if with_forces:
                values.update(force_mae(outputs[0][2], outputs[0][3], molecules.forces_unit))
            for name, value in values.items():
                metrics.append(Metric(part, name, float(value), metric_unit(name), evaluator.meta.get("higher_is_better", False)))
        eval_s += time.perf_counter() - start
        extra: dict[str, Any] = {"best_epoch": results[0].best_epoch, "history": results[0].history,
                                 "energy_offset": offsets[0]}
        if len(groups) > 1:
            extra["per_target"] = {targets[g].name: {"best_epoch": r.best_epoch, "history": r.history}
                                   for g, r in enumerate(results)}
        return JobOutcome(
            metrics=metrics,
            epochs=_whole_if_integral(round(results[0].epochs, 4)),
            params=params,
            train_s=sum(r.train_s for r in results),
            eval_s=eval_s,
            extra=extra,
        )


def _shifted(on_epoch, group: int, groups: int, epochs: int):
    """Progress of target ``group`` of ``groups`` trained one after another, as epochs of the whole job."""
    return lambda epoch, total, record: on_epoch(group * epochs + epoch, groups * epochs, record)


def _whole_if_integral(epochs: float) -> float | int:
    """``5`` for five whole epochs (as records always wrote them), ``0.6452`` for part of one."""
    return int(epochs) if float(epochs).is_integer() else epochs
